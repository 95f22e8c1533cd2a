//! One simulated run: the supervisor creates the cluster, injects seeded
//! faults for the configured duration, heals everything, waits for the
//! cluster to quiesce, and checks the invariants.

mod after_eio;
mod aimed_damage;
mod backup;
mod churn;
mod clients;
mod damage;
mod disk_time;
mod from_disks;
mod inject;
mod lifecycle;
mod network;
mod pause;
mod peer_cut;
mod restore;
mod schedule;
mod script_api;
mod supervisor;
mod verdict;
mod wal_layout;

pub use clients::ClientCheck;
pub use from_disks::run_from_disks;
pub use schedule::TimedStep;

pub(crate) use restore::DRAIN_MS;
pub(crate) use supervisor::Supervisor;

use crate::checker::Violation;
use crate::config::RunConfig;
use crate::stats::RunStats;
use madsim::runtime::Runtime;
use std::time::Duration;

/// Concurrent client sessions of the random workload.
pub(crate) const CLIENT_SESSIONS: u16 = 4;
/// The supervisor's step.
pub(crate) const STEP_MS: u64 = 10;
/// How long an armed fault waits for its moment before it is forgotten.
pub(crate) const ARMED_FAULT_TTL_MS: u64 = 3_000;
/// How long the cluster may take to quiesce after the faults stop.
pub(crate) const QUIESCE_LIMIT_MS: u64 = 30_000;

/// The outcome of a run.
#[derive(Debug, Clone)]
pub struct RunReport {
    pub config: RunConfig,
    pub stats: RunStats,
    pub violations: Vec<Violation>,
    /// Virtual time simulated, including the quiesce phase.
    pub simulated_ms: u64,
    pub trace_hash: u64,
    pub trace_events: u64,
    /// States recorded by scenario `snapshot` steps, in order.
    pub recorded: Vec<crate::snapshot_view::Recorded>,
    /// Every trace event, if the config asked to keep them.
    pub trace_records: Vec<crate::trace::TraceRecord>,
    /// The random faults that took effect, as scenario steps at their
    /// virtual times (random runs only; empty for scenarios).
    pub schedule: Vec<TimedStep>,
    /// The coverage probes the run reached (not in the trace hash).
    pub probes: crate::coverage::ProbeHits,
    /// The client history and its check (done after the simulation).
    pub clients: ClientCheck,
}

impl RunReport {
    pub fn passed(&self) -> bool {
        self.violations.is_empty()
    }

    /// The one-line summary.
    pub fn summary(&self) -> String {
        let s = &self.stats;
        format!(
            "seed {}: {} — {:.1}s simulated, {} requests acknowledged of {}, {} linearizable and {} serializable reads, {} indeterminate operations, {} key partitions unknown, {} applied ({} of a request already applied), {} crashes, {} power losses, {} crash-point stops, {} batch commits interrupted, {} EIO stops, {} partitions, {} peer-only partitions ({} with a slow disk), {} process pauses, {} restarts, {} snapshots ({} installed from a leader), {} torn WAL tails repaired, {} backends repaired after an unclean shutdown, {} cluster power cuts, {} power losses at a reboot's first sync, {} bytes damaged, {} bad sectors, {} misdirected writes ({} members quarantined), {} full-disk stops, {} slow disks, {} replayed ({} v3-skipped), {} snapshot restores, {} backup restores, {} members added ({} learners, {} promoted), {} removed, {} replaced, {} leader transfers, trace {:016x}",
            self.config.seed,
            if self.passed() { "ok" } else { "VIOLATION" },
            self.simulated_ms as f64 / 1000.0,
            s.acked,
            s.requests,
            s.linearizable_reads,
            s.serializable_reads,
            s.indeterminate,
            s.linearize_unknown,
            s.applied,
            s.applied_twice,
            s.crashes,
            s.power_losses,
            s.point_crashes,
            s.commit_crashes,
            s.eio_failures,
            s.partitions,
            s.peer_cuts,
            s.slow_peer_cuts,
            s.pauses,
            s.restarts,
            s.snapshots,
            s.snapshots_installed,
            s.wal_repairs,
            s.unclean_backend_opens,
            s.cluster_power_cuts,
            s.reboot_power_losses,
            s.corruptions,
            s.bad_sectors,
            s.misdirected_writes,
            s.quarantined,
            s.enospc_stops,
            s.slow_disks,
            s.replayed,
            s.replay_skipped_v3,
            s.snapshot_restores,
            s.backup_restores,
            s.members_added,
            s.learners_added,
            s.promotions,
            s.members_removed,
            s.members_replaced,
            s.leader_transfers,
            self.trace_hash,
        ) + &tears_without_target(s.tears_without_target)
    }

    /// The full report of a failed run: what, where, the diff, and how to
    /// reproduce it.
    pub fn failure_report(&self) -> String {
        let mut out = String::new();
        for v in &self.violations {
            out.push_str(&format!(
                "VIOLATION {} — scenario: {}, seed {}, virtual time {}.{:03}s, member {}\n  {}\n",
                v.invariant,
                self.config.scenario.as_deref().unwrap_or("random"),
                self.config.seed,
                v.time_ms / 1000,
                v.time_ms % 1000,
                v.member.map_or_else(|| "-".to_string(), |m| m.to_string()),
                v.detail
            ));
            for d in v.diffs.iter().take(30) {
                out.push_str(&format!("    {d}\n"));
            }
            if v.diffs.len() > 30 {
                out.push_str(&format!(
                    "    … {} more fields differ\n",
                    v.diffs.len() - 30
                ));
            }
        }
        out.push_str(&format!(
            "reproduce: {}\nreplay:    {} --trace\nshrink:    {}\n",
            self.config.reproduce_command(),
            self.config.reproduce_command(),
            self.config.shrink_command()
        ));
        out
    }
}

/// The summary's note on torn or reordering power losses that had nothing
/// to tear (so they tested less than they say); empty if there were none.
fn tears_without_target(count: u64) -> String {
    match count {
        0 => String::new(),
        n => format!(
            " ({n} torn/reordering power losses found no multi-sector write to tear, so tore nothing)"
        ),
    }
}

/// A run's madsim runtime. Tasks still pending when a madsim runtime is
/// dropped are never freed (madsim issue #242: a pending task's waker sits in
/// the network or a channel that the task itself keeps alive), and with them
/// the whole cluster a run built: several MB per run, so a long sweep grew
/// without bound. [`RunRuntime::block_on`] therefore kills every node once
/// the run's future is done and lets the executor drop their tasks.
pub(crate) struct RunRuntime(Runtime);

impl RunRuntime {
    /// Runs `main` to completion, then frees every task the run left.
    pub(crate) fn block_on<F: std::future::Future>(&self, main: F) -> F::Output {
        let output = self.0.block_on(main);
        self.free_tasks();
        output
    }

    /// Kills every node (by name: madsim lists nodes by name only) and runs
    /// the executor once, which drops the killed nodes' tasks inside the
    /// runtime's context. The run's report is already taken, so nothing
    /// here reaches it.
    fn free_tasks(&self) {
        let handle = self.0.handle();
        for name in handle.metrics().num_tasks_by_node().into_keys() {
            handle.kill(name);
        }
        self.0.block_on(async {});
    }
}

/// The madsim runtime of a run: seeded, with the network model the fault
/// classes ask for, and bounded in virtual time.
pub(crate) fn runtime(cfg: &RunConfig, extra_ms: u64) -> RunRuntime {
    let mut madsim_cfg = madsim::Config::default();
    let network = cfg.network();
    madsim_cfg.net.packet_loss_rate = network.packet_loss;
    // madsim draws from the half-open range, which must not be empty: a
    // maximum of 1 ms gives (almost exactly) 1 ms.
    let min = Duration::from_millis(1);
    let max = Duration::from_millis(network.max_latency_ms).max(min + Duration::from_micros(1));
    madsim_cfg.net.send_latency = min..max;
    let mut rt = Runtime::with_seed_and_config(cfg.seed, madsim_cfg);
    // A hung run must not hang the harness.
    rt.set_time_limit(Duration::from_millis(
        cfg.duration_ms + QUIESCE_LIMIT_MS + 10_000 + extra_ms,
    ));
    RunRuntime(rt)
}

/// Runs one seed of the random workload to completion.
pub fn run(cfg: &RunConfig) -> RunReport {
    run_forked(cfg, None)
}

/// Where a run's randomness forks (`sim localize`): at the first
/// supervisor step at or after `at_ms`, every random stream is re-seeded as
/// suffix `suffix`. Before that step the run is the seed's own, event for
/// event; a fork at or after the end of the random phase changes nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fork {
    pub at_ms: u64,
    pub suffix: u64,
}

/// [`run`], forked at `fork` if given.
pub fn run_forked(cfg: &RunConfig, fork: Option<Fork>) -> RunReport {
    let rt = runtime(cfg, 0);
    let _quiet = crate::panic_guard::QuietPanics::new();
    let cfg = cfg.clone();
    let mut fork = fork;
    let mut report = rt.block_on(async move {
        let mut sup = Supervisor::start(cfg.clone(), true).await;
        sup.record_schedule();
        sup.draw_cluster_events();
        sup.draw_churn();
        while sup.now_ms() < cfg.duration_ms {
            madsim::time::sleep(Duration::from_millis(STEP_MS)).await;
            if let Some(f) = fork.take_if(|f| sup.now_ms() >= f.at_ms && f.at_ms < cfg.duration_ms)
            {
                sup.fork(f.suffix);
            }
            sup.poll();
        }
        sup.quiesce().await;
        sup.final_checks();
        sup.report()
    });
    report.check_clients();
    report
}
