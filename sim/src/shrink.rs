//! Shrinking a failing scenario or random run (`sim shrink`).
//!
//! A random run is first turned into a scenario whose every fault is an
//! explicit step at its recorded virtual time ([`scenario_of_random_run`]),
//! which must fail again before it is shrunk. Delta debugging then runs over
//! the scenario's `[random]` section (dropped, or its faults or workload
//! dropped, its duration halved), its member count (down to 1), its steps (a
//! `wait_until` with the step after it), its repeat and `puts` counts, and
//! its timeline (every `wait_until` scaled down). A candidate is kept when it
//! still fails with the same invariant as the original (a scenario-authoring
//! failure, such as a crash that no longer fires, does not count), so the
//! result reproduces the original failure with every step that was not
//! needed for it removed. Everything is deterministic: same input, same
//! result.

use crate::checker::Invariant;
use crate::config::RunConfig;
use crate::run::RunReport;
use crate::scenario::Scenario;
use crate::scenario_file::{RandomSection, Step, StoreSettings};
use replica::bugs::KnownBugs;

/// The outcome of a shrink.
#[derive(Debug)]
pub struct Shrunk {
    pub scenario: Scenario,
    pub invariant: Invariant,
    /// Steps (counting each step inside a repeat once per iteration).
    pub steps_before: usize,
    pub steps_after: usize,
    /// Fault steps (see [`fault_count`]).
    pub faults_before: usize,
    pub faults_after: usize,
    /// Virtual time of the failing run before and after shrinking.
    pub simulated_ms_before: u64,
    pub simulated_ms_after: u64,
    /// Candidate runs tried.
    pub runs: usize,
}

/// Fault steps (crashes, EIOs, restarts, partitions, isolations) a
/// scenario executes, expanding repeats.
pub fn fault_count(steps: &[Step]) -> usize {
    steps
        .iter()
        .map(|s| match s {
            Step::Repeat { times, steps } => *times as usize * fault_count(steps),
            Step::Crash { .. }
            | Step::Eio { .. }
            | Step::Restart { .. }
            | Step::Partition { .. }
            | Step::Isolate { .. } => 1,
            _ => 0,
        })
        .sum()
}

/// Steps a scenario executes, expanding repeats.
pub fn step_count(steps: &[Step]) -> usize {
    steps
        .iter()
        .map(|s| match s {
            Step::Repeat { times, steps } => *times as usize * step_count(steps),
            _ => 1,
        })
        .sum()
}

fn first_invariant(report: &RunReport) -> Option<Invariant> {
    report
        .violations
        .iter()
        .map(|v| v.invariant)
        .find(|i| *i != Invariant::Scenario)
}

struct Search {
    base: Scenario,
    seed: u64,
    bugs: KnownBugs,
    invariant: Invariant,
    runs: usize,
    /// Virtual time of the latest failing candidate: every failing
    /// candidate is kept, so at the end this is the result's.
    failing_ms: u64,
}

impl Search {
    fn fails_as(&mut self, candidate: &Scenario) -> bool {
        self.runs += 1;
        let report = candidate.run(self.seed, self.bugs, false);
        let fails = report
            .violations
            .iter()
            .any(|v| v.invariant == self.invariant);
        if fails {
            self.failing_ms = report.simulated_ms;
        }
        fails
    }

    fn fails(&mut self, steps: &[Step]) -> bool {
        let candidate = Scenario {
            steps: steps.to_vec(),
            ..self.base.clone()
        };
        self.fails_as(&candidate)
    }

    /// Drops the `[random]` section, or else its faults, or else its
    /// workload, and halves its duration, while the run still fails.
    fn minimise_random(&mut self) {
        let Some(mut random) = self.base.random.clone() else {
            return;
        };
        let without = Scenario {
            random: None,
            ..self.base.clone()
        };
        if self.fails_as(&without) {
            self.base = without;
            return;
        }
        let simpler = [
            RandomSection {
                faults: Vec::new(),
                ..random.clone()
            },
            RandomSection {
                workload: false,
                ..random.clone()
            },
        ];
        for candidate_random in simpler {
            let candidate = Scenario {
                random: Some(candidate_random.clone()),
                ..self.base.clone()
            };
            if self.fails_as(&candidate) {
                random = candidate_random;
                self.base = candidate;
            }
        }
        // Without random faults the duration changes nothing to shorten.
        while random.duration_ms > 100 && !random.faults.is_empty() {
            let shorter = RandomSection {
                duration_ms: random.duration_ms / 2,
                ..random.clone()
            };
            let candidate = Scenario {
                random: Some(shorter.clone()),
                ..self.base.clone()
            };
            if !self.fails_as(&candidate) {
                break;
            }
            random = shorter;
            self.base = candidate;
        }
    }

    /// Removes chunks of steps (halving the chunk size down to single
    /// steps) while the run still fails; then shrinks inside repeats. A
    /// `wait_until` goes with the step after it (a recorded fault and its
    /// time are removed together).
    fn minimise(&mut self, steps: Vec<Step>) -> Vec<Step> {
        let mut units = timed_units(steps);
        let mut chunk = units.len().div_ceil(2).max(1);
        loop {
            let mut i = 0;
            while i < units.len() {
                let end = (i + chunk).min(units.len());
                let mut candidate = units.clone();
                candidate.drain(i..end);
                if !candidate.is_empty() && self.fails(&candidate.concat()) {
                    units = candidate;
                } else {
                    i += chunk;
                }
            }
            if chunk == 1 {
                break;
            }
            chunk = chunk.div_ceil(2);
        }
        let mut steps = units.concat();
        for i in 0..steps.len() {
            let Step::Repeat {
                times,
                steps: inner,
            } = steps[i].clone()
            else {
                continue;
            };
            let mut times = times;
            while times > 1 {
                let fewer = times / 2;
                let mut candidate = steps.clone();
                candidate[i] = Step::Repeat {
                    times: fewer,
                    steps: inner.clone(),
                };
                if self.fails(&candidate) {
                    times = fewer;
                    steps = candidate;
                } else {
                    break;
                }
            }
        }
        // Shorter workloads: halve each `puts` step's count.
        for i in 0..steps.len() {
            while let Step::Puts {
                count,
                prefix,
                value_bytes,
            } = steps[i].clone()
            {
                if count <= 1 {
                    break;
                }
                let mut candidate = steps.clone();
                candidate[i] = Step::Puts {
                    count: count / 2,
                    prefix,
                    value_bytes,
                };
                if !self.fails(&candidate) {
                    break;
                }
                steps = candidate;
            }
        }
        steps
    }

    /// Brings a recorded schedule forward: scales every `wait_until` time
    /// by 1/2 (or else 3/4) while the run still fails, so less workload
    /// runs before each fault.
    fn compress_timeline(&mut self) {
        'shorter: while self
            .base
            .steps
            .iter()
            .any(|s| matches!(s, Step::WaitUntil { ms } if *ms > 100))
        {
            for (num, den) in [(1, 2), (3, 4)] {
                let scaled: Vec<Step> = self
                    .base
                    .steps
                    .iter()
                    .map(|s| match s {
                        Step::WaitUntil { ms } => Step::WaitUntil { ms: ms * num / den },
                        other => other.clone(),
                    })
                    .collect();
                if self.fails(&scaled) {
                    self.base.steps = scaled;
                    continue 'shorter;
                }
            }
            break;
        }
    }

    /// Fewer members: down to 1 (the smallest cluster), as long as every
    /// step still names an existing member and the run still fails with
    /// the same invariant (a step naming a role no member holds any more,
    /// such as "follower" in a one-member cluster, is an authoring failure,
    /// not the original one).
    fn minimise_members(&mut self) {
        while self.base.nodes > 1 {
            let candidate = Scenario {
                nodes: self.base.nodes - 1,
                ..self.base.clone()
            };
            let valid = to_toml(&candidate)
                .ok()
                .is_some_and(|t| Scenario::parse(&t).is_ok());
            if !valid || !self.fails_as(&candidate) {
                break;
            }
            self.base = candidate;
        }
    }
}

/// Groups steps into units for removal: a `wait_until` with the step
/// after it, every other step alone.
fn timed_units(steps: Vec<Step>) -> Vec<Vec<Step>> {
    let mut units: Vec<Vec<Step>> = Vec::new();
    let mut waiting = false;
    for step in steps {
        let is_wait = matches!(step, Step::WaitUntil { .. });
        match units.last_mut() {
            Some(unit) if waiting => unit.push(step),
            _ => units.push(vec![step]),
        }
        waiting = is_wait;
    }
    units
}

/// A random run's recorded fault schedule as a scenario: the run's store
/// settings, network model and seeded client workload, and every fault
/// that took effect as an explicit step (with its power-loss plan seed)
/// after a `wait_until` of its virtual time. No fault is random any more.
pub fn scenario_of_random_run(report: &RunReport) -> Scenario {
    let cfg = &report.config;
    let mut steps = Vec::new();
    for timed in &report.schedule {
        steps.push(Step::WaitUntil { ms: timed.at_ms });
        steps.push(timed.step.clone());
    }
    // The workload runs until the random run's faults would have stopped.
    steps.push(Step::WaitUntil {
        ms: cfg.duration_ms,
    });
    let faults: Vec<&str> = cfg.faults.iter().map(|f| f.name()).collect();
    Scenario {
        name: format!("random-seed-{}", cfg.seed),
        description: format!(
            "The fault schedule of the random run with seed {} ({} members, {} ms, faults {}), recorded as steps",
            cfg.seed,
            cfg.nodes,
            cfg.duration_ms,
            faults.join(",")
        ),
        seed: cfg.seed,
        nodes: cfg.nodes,
        spares: 0,
        store: StoreSettings {
            snapshot_count: Some(cfg.snapshot_count),
            batch_limit: Some(cfg.batch_limit),
            batch_interval_ms: Some(cfg.batch_interval_ms),
            wal_segment_size: Some(cfg.wal_segment_size),
        },
        random: Some(RandomSection {
            duration_ms: cfg.duration_ms,
            faults: Vec::new(),
            workload: true,
            request_interval_ms: Some(cfg.request_interval_ms),
            mix: (cfg.mix != crate::mix::Mix::FIXED).then(|| cfg.mix.to_string()),
        }),
        network: Some(cfg.network()),
        disk_time: cfg.disk_time || cfg.has(crate::fault::FaultClass::Slow),
        steps,
        path: Default::default(),
    }
}

/// The outcome of shrinking a random run.
#[derive(Debug)]
pub struct ShrunkRun {
    /// The recorded schedule as a scenario, before shrinking.
    pub recorded: Scenario,
    pub shrunk: Shrunk,
}

/// Shrinks a failing random run: records its fault schedule, checks that
/// the schedule replayed as a scenario fails with the same invariant, then
/// shrinks that scenario.
pub fn shrink_random_run(cfg: &RunConfig) -> Result<ShrunkRun, String> {
    let (recorded, report) = record_run(cfg);
    let invariant = first_invariant(&report).ok_or_else(|| {
        format!(
            "the random run with seed {} does not violate an invariant: nothing to shrink",
            cfg.seed
        )
    })?;
    let replay = recorded.run(cfg.seed, cfg.bugs, false);
    if !replay.violations.iter().any(|v| v.invariant == invariant) {
        return Err(format!(
            "the random run with seed {} fails with {invariant}, but its recorded schedule of {} faults replayed as a scenario does not ({}); shrink the random run's scenario by hand, or try another seed",
            cfg.seed,
            fault_count(&recorded.steps),
            first_invariant(&replay)
                .map_or("it passes".to_string(), |i| format!("it fails with {i}"))
        ));
    }
    let shrunk = shrink_as(
        &recorded,
        cfg.seed,
        cfg.bugs,
        (invariant, replay.simulated_ms),
        2,
    );
    Ok(ShrunkRun { recorded, shrunk })
}

/// Runs a random run and records its fault schedule as a scenario.
pub fn record_run(cfg: &RunConfig) -> (Scenario, RunReport) {
    let report = crate::run::run(cfg);
    (scenario_of_random_run(&report), report)
}

/// Shrinks `scenario` run with `seed` and `bugs`. Errors if it does not
/// fail to begin with.
pub fn shrink(scenario: &Scenario, seed: u64, bugs: KnownBugs) -> Result<Shrunk, String> {
    let report = scenario.run(seed, bugs, false);
    let invariant = first_invariant(&report).ok_or_else(|| {
        format!(
            "{} with seed {seed} does not violate an invariant: nothing to shrink",
            scenario.name
        )
    })?;
    Ok(shrink_as(
        scenario,
        seed,
        bugs,
        (invariant, report.simulated_ms),
        1,
    ))
}

/// Shrinks `scenario`, known to fail with `invariant` after `simulated_ms`
/// of virtual time (`runs` runs spent to learn that).
fn shrink_as(
    scenario: &Scenario,
    seed: u64,
    bugs: KnownBugs,
    (invariant, simulated_ms): (Invariant, u64),
    runs: usize,
) -> Shrunk {
    let mut search = Search {
        base: scenario.clone(),
        seed,
        bugs,
        invariant,
        runs,
        failing_ms: simulated_ms,
    };
    search.minimise_random();
    search.minimise_members();
    search.base.steps = search.minimise(search.base.steps.clone());
    // Steps that named the higher members may be gone now.
    search.minimise_members();
    search.compress_timeline();
    let steps = search.base.steps.clone();
    let shrunk = Scenario {
        name: format!("{}-shrunk", scenario.name),
        description: format!(
            "{} (shrunk with seed {seed} from {} steps, {} faults: fails with {invariant})",
            scenario.description,
            step_count(&scenario.steps),
            fault_count(&scenario.steps)
        ),
        seed,
        steps,
        ..search.base.clone()
    };
    Shrunk {
        simulated_ms_before: simulated_ms,
        simulated_ms_after: search.failing_ms,
        runs: search.runs,
        steps_before: step_count(&scenario.steps),
        steps_after: step_count(&shrunk.steps),
        faults_before: fault_count(&scenario.steps),
        faults_after: fault_count(&shrunk.steps),
        invariant,
        scenario: shrunk,
    }
}

/// The scenario as a TOML file in the catalogue's format.
pub fn to_toml(scenario: &Scenario) -> Result<String, String> {
    toml::to_string(scenario).map_err(|e| e.to_string())
}
