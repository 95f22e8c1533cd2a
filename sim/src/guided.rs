//! Probe-guided scheduling (`sim sweep --guided --budget-runs N`): the
//! sweep runs consecutive seeds, but chooses each run's *knobs* (an arm:
//! today a set of fault classes) from the coverage seen so far in the same
//! sweep, to raise the hits of under-hit probes.
//!
//! The policy is a bandit over arms. An arm's value is the expected rarity
//! of what its runs reach: the mean over its runs of Σ 1/(1 + runs that hit
//! the probe so far), over the probes each run hit, plus an exploration
//! bonus `√(2 ln T / n)`; an arm never tried comes first. Runs go in
//! batches of [`BATCH`] (not the worker count): a batch's arms are chosen
//! from the coverage of every earlier batch, so a guided sweep is a
//! function of its starting seed and budget alone. When the swarm settings
//! land, an arm can set them too ([`Arm::apply`] is the one place).

use crate::config::RunConfig;
use crate::coverage::{Coverage, ProbeHits};
use crate::fault::FaultClass;
use crate::run::RunReport;
use crate::sweep::run_many;
use std::collections::BTreeMap;

/// Runs per batch: the arms of a batch are chosen together.
pub const BATCH: usize = 8;

/// One setting of the knobs a guided sweep may turn.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Arm {
    pub name: &'static str,
    /// The fault classes the run injects (`None`: the base config's).
    pub faults: Option<&'static [FaultClass]>,
}

impl Arm {
    /// Sets this arm's knobs on a run's config.
    pub fn apply(&self, cfg: &mut RunConfig) {
        if let Some(faults) = self.faults {
            cfg.faults = faults.iter().copied().collect();
        }
    }
}

use FaultClass::*;

/// The arms: the base run, and runs focused on a few fault classes each
/// (torn writes need power losses; a crash point stops a process).
pub const ARMS: [Arm; 7] = [
    Arm {
        name: "base",
        faults: None,
    },
    Arm {
        name: "power+torn",
        faults: Some(&[Power, Torn, Crash]),
    },
    Arm {
        name: "crash-points",
        faults: Some(&[Point, Crash]),
    },
    Arm {
        name: "io-errors",
        faults: Some(&[Eio, Enospc, Crash]),
    },
    Arm {
        name: "cluster-power",
        faults: Some(&[ClusterPower, Power, Torn]),
    },
    Arm {
        name: "damage",
        faults: Some(&[Bitrot, ReadError, Crash]),
    },
    Arm {
        name: "net+crash",
        faults: Some(&[Net, Crash, Point]),
    },
];

/// What the policy knows about one arm.
#[derive(Debug, Clone, Default)]
struct ArmStats {
    runs: u64,
    /// Per probe, the runs of this arm that hit it.
    probe_runs: BTreeMap<String, u64>,
}

/// The guidance policy: which arm the next run gets.
#[derive(Debug, Clone)]
pub struct Policy {
    arms: Vec<Arm>,
    stats: Vec<ArmStats>,
}

impl Default for Policy {
    fn default() -> Policy {
        Policy::new(ARMS.to_vec())
    }
}

impl Policy {
    pub fn new(arms: Vec<Arm>) -> Policy {
        let stats = vec![ArmStats::default(); arms.len()];
        Policy { arms, stats }
    }

    pub fn arms(&self) -> &[Arm] {
        &self.arms
    }

    /// The arms of the next `n` runs, given the sweep's coverage so far.
    pub fn choose(&self, coverage: &Coverage, n: usize) -> Vec<usize> {
        let rarity: BTreeMap<&str, f64> = coverage
            .rows()
            .iter()
            .map(|r| (r.name.as_str(), 1.0 / (1.0 + r.runs as f64)))
            .collect();
        let mut planned: Vec<u64> = self.stats.iter().map(|s| s.runs).collect();
        let total: u64 = planned.iter().sum();
        (0..n)
            .map(|i| {
                let t = (total + i as u64).max(1) as f64;
                let best = (0..self.arms.len())
                    .map(|a| (a, self.score(a, planned[a], t, &rarity)))
                    .fold((0, f64::NEG_INFINITY), |best, (a, s)| {
                        if s > best.1 { (a, s) } else { best }
                    });
                planned[best.0] += 1;
                best.0
            })
            .collect()
    }

    /// Arm `a`'s value: the mean rarity of what its runs hit, plus the
    /// exploration bonus for `planned` runs at round `t`.
    fn score(&self, a: usize, planned: u64, t: f64, rarity: &BTreeMap<&str, f64>) -> f64 {
        if planned == 0 {
            return f64::INFINITY;
        }
        let stats = &self.stats[a];
        let value = if stats.runs == 0 {
            0.0
        } else {
            let sum: f64 = stats
                .probe_runs
                .iter()
                .map(|(p, n)| rarity.get(p.as_str()).copied().unwrap_or(1.0) * *n as f64)
                .sum();
            sum / stats.runs as f64
        };
        value + (2.0 * t.ln() / planned as f64).sqrt()
    }

    /// Counts a finished run of arm `a`.
    pub fn observe(&mut self, a: usize, hits: &ProbeHits) {
        let stats = &mut self.stats[a];
        stats.runs += 1;
        for (name, _) in hits.iter() {
            *stats.probe_runs.entry(name.to_string()).or_default() += 1;
        }
    }
}

/// A guided sweep's outcome.
#[derive(Debug, Clone)]
pub struct GuidedResult {
    pub coverage: Coverage,
    pub runs: usize,
    /// Per arm: its name and how many runs it got.
    pub arm_runs: Vec<(&'static str, u64)>,
    /// The failing runs: seed, arm, and how to reproduce.
    pub failed: Vec<(u64, &'static str, String)>,
    /// The 1-based place of the first failing run in the sweep (how many
    /// runs it took to find a failure).
    pub first_failure_run: Option<usize>,
}

/// Runs `budget` seeds from `start`, each config made by `base` and then
/// set by the arm the policy chose; stops early after the batch with the
/// first failure if `stop_at_failure`.
pub fn run_guided(
    base: &(dyn Fn(u64) -> RunConfig + Sync),
    start: u64,
    budget: usize,
    jobs: usize,
    stop_at_failure: bool,
) -> GuidedResult {
    let mut policy = Policy::default();
    let mut coverage = Coverage::new();
    let mut result_failed = Vec::new();
    let mut first_failure_run = None;
    let mut arm_runs = vec![0u64; policy.arms().len()];
    let mut done = 0;
    while done < budget && !(stop_at_failure && first_failure_run.is_some()) {
        let n = BATCH.min(budget - done);
        let arms = policy.choose(&coverage, n);
        let configs: Vec<RunConfig> = arms
            .iter()
            .enumerate()
            .map(|(i, a)| {
                let mut cfg = base(start + (done + i) as u64);
                policy.arms()[*a].apply(&mut cfg);
                cfg
            })
            .collect();
        let reports: Vec<RunReport> = run_many(&configs, jobs, &|_| {});
        for (i, (report, a)) in reports.iter().zip(&arms).enumerate() {
            let index = done + i;
            policy.observe(*a, &report.probes);
            coverage.add(
                index,
                policy.arms()[*a].name,
                report.config.seed,
                &report.probes,
            );
            arm_runs[*a] += 1;
            if !report.passed() {
                first_failure_run.get_or_insert(index + 1);
                result_failed.push((
                    report.config.seed,
                    policy.arms()[*a].name,
                    report.config.reproduce_command(),
                ));
            }
        }
        done += n;
    }
    GuidedResult {
        coverage,
        runs: done,
        arm_runs: policy.arms().iter().map(|a| a.name).zip(arm_runs).collect(),
        failed: result_failed,
        first_failure_run,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn untried_arms_come_first_then_the_arm_that_reaches_rare_probes() {
        let mut policy = Policy::default();
        let first = policy.choose(&Coverage::new(), ARMS.len());
        assert_eq!(first, (0..ARMS.len()).collect::<Vec<_>>());
        let mut coverage = Coverage::new();
        let mut common = ProbeHits::default();
        common.hit("fired.restarts");
        let mut rare = common.clone();
        rare.hit("wal.torn_tail_repaired");
        for (a, _) in ARMS.iter().enumerate() {
            for run in 0..20 {
                let hits = if a == 1 { &rare } else { &common };
                policy.observe(a, hits);
                coverage.add(a * 100 + run, ARMS[a].name, 1, hits);
            }
        }
        // The torn-tail probe is rarer than restarts: its arm is worth more.
        let next = policy.choose(&coverage, 1);
        assert_eq!(next, vec![1]);
    }
}
