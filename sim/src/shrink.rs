//! Shrinking a failing scenario (`sim shrink`): delta debugging over its
//! `[random]` section (dropped, or its faults or workload dropped, its
//! duration halved), its member count (down to 3), its steps, its repeat
//! counts and its `puts` counts. A candidate is kept when it still fails with the same invariant
//! as the original (a scenario-authoring failure, such as a crash that no
//! longer fires, does not count), so the result reproduces the original
//! failure with every step that was not needed for it removed. Repeats are
//! also shortened. Everything is deterministic: same input, same result.

use crate::checker::Invariant;
use crate::run::RunReport;
use crate::scenario::Scenario;
use crate::scenario::format::{RandomSection, Step};
use replica::bugs::KnownBugs;

/// The outcome of a shrink.
#[derive(Debug)]
pub struct Shrunk {
    pub scenario: Scenario,
    pub invariant: Invariant,
    /// Steps (counting each step inside a repeat once per iteration).
    pub steps_before: usize,
    pub steps_after: usize,
    /// Candidate runs tried.
    pub runs: usize,
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
}

impl Search {
    fn fails_as(&mut self, candidate: &Scenario) -> bool {
        self.runs += 1;
        let report = candidate.run(self.seed, self.bugs, false);
        report
            .violations
            .iter()
            .any(|v| v.invariant == self.invariant)
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
        while random.duration_ms > 100 {
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
    /// steps) while the run still fails; then shrinks inside repeats.
    fn minimise(&mut self, mut steps: Vec<Step>) -> Vec<Step> {
        let mut chunk = steps.len().div_ceil(2).max(1);
        loop {
            let mut i = 0;
            while i < steps.len() {
                let end = (i + chunk).min(steps.len());
                let mut candidate = steps.clone();
                candidate.drain(i..end);
                if !candidate.is_empty() && self.fails(&candidate) {
                    steps = candidate;
                } else {
                    i += chunk;
                }
            }
            if chunk == 1 {
                break;
            }
            chunk = chunk.div_ceil(2);
        }
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

    /// Fewer members: down to 3 (the smallest cluster), as long as every
    /// step still names an existing member and the run still fails.
    fn minimise_members(&mut self) {
        while self.base.nodes > 3 {
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
    let mut search = Search {
        base: scenario.clone(),
        seed,
        bugs,
        invariant,
        runs: 1,
    };
    search.minimise_random();
    search.minimise_members();
    let steps = search.minimise(search.base.steps.clone());
    let shrunk = Scenario {
        name: format!("{}-shrunk", scenario.name),
        description: format!(
            "{} (shrunk with seed {seed} from {} steps: fails with {invariant})",
            scenario.description,
            step_count(&scenario.steps)
        ),
        seed,
        steps,
        ..search.base.clone()
    };
    Ok(Shrunk {
        steps_before: step_count(&scenario.steps),
        steps_after: step_count(&shrunk.steps),
        runs: search.runs,
        invariant,
        scenario: shrunk,
    })
}

/// The scenario as a TOML file in the catalogue's format.
pub fn to_toml(scenario: &Scenario) -> Result<String, String> {
    toml::to_string(scenario).map_err(|e| e.to_string())
}
