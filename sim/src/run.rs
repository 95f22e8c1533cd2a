//! One simulated run: the supervisor creates the cluster, injects seeded
//! faults for the configured duration, heals everything, waits for the
//! cluster to quiesce, and checks the invariants.

use crate::checker::{self, Invariant, Violation};
use crate::cluster::client::client_main;
use crate::cluster::member::member_main;
use crate::cluster::wire::member_ip;
use crate::cluster::world::{Down, RunStats, STREAM_FAULTS, World, stream};
use crate::config::RunConfig;
use crate::fault::{ArmedCrash, CrashKind, DiskFault, FaultClass, SeededPowerLoss};
use madsim::runtime::{Handle, Runtime};
use rand::Rng;
use rand::seq::IndexedRandom;
use rand_chacha::ChaCha8Rng;
use replica::crash_point::CrashPoint;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// Concurrent client sessions.
const CLIENT_SESSIONS: u16 = 4;
/// The supervisor's step.
const STEP_MS: u64 = 10;
/// How long an armed fault waits for its moment before it is forgotten.
const ARMED_FAULT_TTL_MS: u64 = 3_000;
/// How long the cluster may take to quiesce after the faults stop.
const QUIESCE_LIMIT_MS: u64 = 30_000;

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
}

impl RunReport {
    pub fn passed(&self) -> bool {
        self.violations.is_empty()
    }

    /// The one-line summary.
    pub fn summary(&self) -> String {
        let s = &self.stats;
        format!(
            "seed {}: {} — {:.1}s simulated, {} requests acknowledged of {}, {} applied, {} crashes, {} power losses, {} crash-point stops, {} batch commits interrupted, {} EIO stops, {} partitions, {} restarts, {} snapshots ({} installed from a leader), {} torn WAL tails repaired, {} replayed ({} v3-skipped), trace {:016x}",
            self.config.seed,
            if self.passed() { "ok" } else { "VIOLATION" },
            self.simulated_ms as f64 / 1000.0,
            s.acked,
            s.requests,
            s.applied,
            s.crashes,
            s.power_losses,
            s.point_crashes,
            s.commit_crashes,
            s.eio_failures,
            s.partitions,
            s.restarts,
            s.snapshots,
            s.snapshots_installed,
            s.wal_repairs,
            s.replayed,
            s.replay_skipped_v3,
            self.trace_hash,
        )
    }

    /// The full report of a failed run: what, where, the diff, and how to
    /// reproduce it.
    pub fn failure_report(&self) -> String {
        let mut out = String::new();
        for v in &self.violations {
            out.push_str(&format!(
                "VIOLATION {} — scenario: random, seed {}, virtual time {}.{:03}s, member {}\n  {}\n",
                v.invariant,
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
            "reproduce: {}\nreplay:    {} --trace\n",
            self.config.reproduce_command(),
            self.config.reproduce_command()
        ));
        out
    }
}

/// Runs one seed to completion.
pub fn run(cfg: &RunConfig) -> RunReport {
    let mut madsim_cfg = madsim::Config::default();
    if cfg.has(FaultClass::Net) {
        madsim_cfg.net.packet_loss_rate = 0.01;
        madsim_cfg.net.send_latency = Duration::from_millis(1)..Duration::from_millis(15);
    } else {
        madsim_cfg.net.send_latency = Duration::from_millis(1)..Duration::from_millis(3);
    }
    let mut rt = Runtime::with_seed_and_config(cfg.seed, madsim_cfg);
    // A hung run must not hang the harness.
    rt.set_time_limit(Duration::from_millis(
        cfg.duration_ms + QUIESCE_LIMIT_MS + 10_000,
    ));
    let cfg = cfg.clone();
    let _quiet = crate::panic_guard::QuietPanics::new();
    rt.block_on(supervise(cfg))
}

struct Supervisor {
    world: Arc<World>,
    handle: Handle,
    rng: ChaCha8Rng,
    restarts_due: BTreeMap<u64, u64>,
}

async fn supervise(cfg: RunConfig) -> RunReport {
    let world = World::new(cfg.clone());
    world
        .lock()
        .event(0, None, format_args!("settings: {}", cfg.settings_line()));
    let handle = Handle::current();
    for id in 1..=cfg.nodes {
        let w = world.clone();
        let node = handle
            .create_node()
            .name(format!("m{id}"))
            .ip(member_ip(id))
            .init(move || member_main(w.clone(), id))
            .build();
        if let Some(slot) = world.lock().members.get_mut(&id) {
            slot.madsim_id = Some(node.id());
        }
    }
    let client = handle
        .create_node()
        .name("client")
        .ip(crate::cluster::wire::client_ip())
        .build();
    for session in 0..CLIENT_SESSIONS {
        client.spawn(client_main(world.clone(), session));
    }
    let mut sup = Supervisor {
        world: world.clone(),
        handle,
        rng: stream(cfg.seed, STREAM_FAULTS),
        restarts_due: BTreeMap::new(),
    };
    // The fault phase.
    while world.now_ms() < cfg.duration_ms {
        madsim::time::sleep(Duration::from_millis(STEP_MS)).await;
        sup.handle_stopped(true);
        sup.restart_due();
        sup.heal_due(false);
        sup.expire_armed();
        sup.maybe_inject();
    }
    // The quiesce phase: no new faults, everything healed and restarted.
    world.lock().stop_client = true;
    sup.disarm_all();
    sup.heal_due(true);
    let deadline = world.now_ms() + QUIESCE_LIMIT_MS;
    let mut quiet_since = None;
    while world.now_ms() < deadline {
        madsim::time::sleep(Duration::from_millis(50)).await;
        sup.handle_stopped(false);
        sup.restart_due();
        if sup.converged() {
            // Quiet for a while: no stragglers still to apply.
            let since = *quiet_since.get_or_insert(world.now_ms());
            if world.now_ms() >= since + 500 {
                break;
            }
        } else {
            quiet_since = None;
        }
    }
    sup.final_checks();
    let simulated_ms = world.now_ms();
    let w = world.lock();
    RunReport {
        config: w.cfg.clone(),
        stats: w.stats.clone(),
        violations: w.violations.clone(),
        simulated_ms,
        trace_hash: w.trace.hash(),
        trace_events: w.trace.events(),
    }
}

const CRASH_POINTS: [CrashPoint; 8] = CrashPoint::ALL;

impl Supervisor {
    fn madsim_id(&self, id: u64) -> Option<madsim::task::NodeId> {
        self.world.lock().members.get(&id).and_then(|s| s.madsim_id)
    }

    /// Kills members whose process stopped by itself, applies the power
    /// loss their fault calls for, and schedules their restart.
    fn handle_stopped(&mut self, with_delay: bool) {
        let stopped: Vec<(u64, bool)> = self
            .world
            .lock()
            .members
            .iter()
            .filter_map(|(id, s)| match s.down {
                Some(Down::Failed { power_loss, .. }) => Some((*id, power_loss)),
                _ => None,
            })
            .collect();
        for (id, power) in stopped {
            if let Some(mid) = self.madsim_id(id) {
                self.handle.kill(mid);
            }
            if power {
                self.power_loss(id);
            }
            self.schedule_restart(id, with_delay);
        }
    }

    fn schedule_restart(&mut self, id: u64, with_delay: bool) {
        let now = self.world.now_ms();
        let delay = if with_delay {
            self.rng.random_range(100..2_000)
        } else {
            0
        };
        if let Some(slot) = self.world.lock().members.get_mut(&id) {
            slot.down = Some(Down::Waiting);
        }
        self.restarts_due.insert(id, now + delay);
    }

    fn restart_due(&mut self) {
        let now = self.world.now_ms();
        let due: Vec<u64> = self
            .restarts_due
            .iter()
            .filter(|(_, at)| **at <= now)
            .map(|(id, _)| *id)
            .collect();
        for id in due {
            self.restarts_due.remove(&id);
            let mid = {
                let mut w = self.world.lock();
                w.stats.restarts += 1;
                w.event(now, Some(id), format_args!("restart"));
                let Some(slot) = w.members.get_mut(&id) else {
                    continue;
                };
                slot.disk.reset_for_restart();
                slot.hook.disarm();
                slot.madsim_id
            };
            self.maybe_arm_boot_crash(id);
            if let Some(mid) = mid {
                self.handle.restart(mid);
            }
        }
    }

    /// Sometimes arms a crash inside the coming boot: in the middle of the
    /// replay, at one of its backend commits or between the v2 and v3
    /// halves of a replayed entry (crash during recovery).
    fn maybe_arm_boot_crash(&mut self, id: u64) {
        let (enabled, power, quiescing) = {
            let w = self.world.lock();
            (
                w.cfg.has(FaultClass::Point),
                w.cfg.has(FaultClass::Power) || w.cfg.has(FaultClass::Torn),
                w.stop_client,
            )
        };
        if !enabled || quiescing || !self.rng.random_bool(0.25) {
            return;
        }
        let point = *[
            CrashPoint::BackendCommitBefore,
            CrashPoint::BackendCommitAfter,
            CrashPoint::ApplyBetweenV2AndV3,
        ]
        .choose(&mut self.rng)
        .unwrap_or(&CrashPoint::BackendCommitAfter);
        let crash = ArmedCrash {
            point,
            hits: self.rng.random_range(1..=8),
            kind: if power && self.rng.random_bool(0.5) {
                CrashKind::Power
            } else {
                CrashKind::Process
            },
            after_ops: 0,
        };
        let now = self.world.now_ms();
        {
            let mut w = self.world.lock();
            if let Some(slot) = w.members.get(&id) {
                slot.hook.arm(crash);
            }
            w.event(
                now,
                Some(id),
                format_args!(
                    "armed {:?} crash during boot at {point} (hit {})",
                    crash.kind, crash.hits
                ),
            );
        }
        self.arm_deadline(id);
    }

    fn power_loss(&mut self, id: u64) {
        let now = self.world.now_ms();
        let reorder = self.world.lock().cfg.has(FaultClass::Torn);
        let mut w = self.world.lock();
        let Some(disk) = w.members.get(&id).map(|s| s.disk.clone()) else {
            return;
        };
        let mut plan = SeededPowerLoss::new(&mut self.rng, reorder);
        disk.power_loss(&mut plan);
        let (kept, torn, lost) = (plan.kept, plan.torn, plan.lost);
        w.stats.power_losses += 1;
        w.stats.torn_writes += torn;
        w.event(
            now,
            Some(id),
            format_args!("power loss: {kept} unsynced writes kept, {torn} torn, {lost} lost"),
        );
    }

    /// Kills a running member now (a process crash between two of its
    /// steps), with or without a power loss.
    fn kill(&mut self, id: u64, power: bool) {
        let now = self.world.now_ms();
        {
            let mut w = self.world.lock();
            let Some(slot) = w.members.get_mut(&id) else {
                return;
            };
            slot.node = None;
            slot.down = Some(Down::Waiting);
            w.stats.crashes += u64::from(!power);
            w.event(
                now,
                Some(id),
                format_args!("{}", if power { "power off" } else { "process crash" }),
            );
        }
        if let Some(mid) = self.madsim_id(id) {
            self.handle.kill(mid);
        }
        if power {
            self.power_loss(id);
        }
        self.schedule_restart(id, true);
    }

    fn heal_due(&mut self, all: bool) {
        let now = self.world.now_ms();
        let healed: Vec<(u64, Option<madsim::task::NodeId>)> = {
            let mut w = self.world.lock();
            let mut out = Vec::new();
            for (id, slot) in w.members.iter_mut() {
                if slot.partitioned_until.is_some_and(|t| all || t <= now) {
                    slot.partitioned_until = None;
                    out.push((*id, slot.madsim_id));
                }
            }
            for (id, _) in &out {
                w.event(now, Some(*id), format_args!("partition healed"));
            }
            out
        };
        for (_, mid) in healed {
            if let Some(mid) = mid {
                madsim::net::NetSim::current().unclog_node(mid);
            }
        }
    }

    /// Forgets armed faults that did not fire in time.
    fn expire_armed(&mut self) {
        let now = self.world.now_ms();
        let mut w = self.world.lock();
        let mut expired = Vec::new();
        for (id, slot) in w.members.iter_mut() {
            if slot.armed_until.is_some_and(|t| t <= now) {
                slot.armed_until = None;
                slot.hook.disarm();
                slot.disk.disarm();
                expired.push(*id);
            }
        }
        for id in expired {
            w.event(now, Some(id), format_args!("armed fault expired"));
        }
    }

    fn arm_deadline(&mut self, id: u64) {
        let until = self.world.now_ms() + ARMED_FAULT_TTL_MS;
        if let Some(slot) = self.world.lock().members.get_mut(&id) {
            slot.armed_until = Some(until);
        }
    }

    fn disarm_all(&mut self) {
        let w = self.world.lock();
        for slot in w.members.values() {
            slot.hook.disarm();
            slot.disk.disarm();
        }
    }

    /// Maybe injects one new fault on a running member.
    fn maybe_inject(&mut self) {
        let (rate, classes, max_down, unavailable, up) = {
            let w = self.world.lock();
            let up: Vec<u64> = w
                .members
                .iter()
                .filter(|(_, s)| s.node.is_some() && s.partitioned_until.is_none())
                .map(|(id, _)| *id)
                .collect();
            (
                w.cfg.faults_per_second,
                w.cfg.faults.iter().copied().collect::<Vec<_>>(),
                w.cfg.max_down(),
                w.unavailable(),
                up,
            )
        };
        if classes.is_empty() || unavailable >= max_down {
            return;
        }
        if !self
            .rng
            .random_bool((rate * STEP_MS as f64 / 1000.0).min(1.0))
        {
            return;
        }
        let (Some(&class), Some(&id)) = (classes.choose(&mut self.rng), up.choose(&mut self.rng))
        else {
            return;
        };
        let now = self.world.now_ms();
        match class {
            FaultClass::Crash => self.kill(id, false),
            FaultClass::Power | FaultClass::Torn => self.kill(id, true),
            FaultClass::Eio => {
                let fault = if self.rng.random_bool(0.5) {
                    DiskFault::FailNextSync
                } else {
                    DiskFault::FailNextWrite
                };
                let mut w = self.world.lock();
                if let Some(slot) = w.members.get(&id) {
                    slot.disk.arm(fault);
                }
                w.event(now, Some(id), format_args!("armed {fault:?}"));
                drop(w);
                self.arm_deadline(id);
            }
            FaultClass::Point => {
                self.arm_point(id);
                self.arm_deadline(id);
            }
            FaultClass::Net => {
                let until = now + self.rng.random_range(200..3_000);
                let mid = {
                    let mut w = self.world.lock();
                    w.stats.partitions += 1;
                    w.event(now, Some(id), format_args!("partitioned until {until}ms"));
                    let Some(slot) = w.members.get_mut(&id) else {
                        return;
                    };
                    slot.partitioned_until = Some(until);
                    slot.madsim_id
                };
                if let Some(mid) = mid {
                    madsim::net::NetSim::current().clog_node(mid);
                }
            }
        }
    }

    /// Arms a crash at a named point, at the k-th disk operation, or at the
    /// k-th disk operation of the next backend commit.
    fn arm_point(&mut self, id: u64) {
        let now = self.world.now_ms();
        let power = {
            let w = self.world.lock();
            w.cfg.has(FaultClass::Power) || w.cfg.has(FaultClass::Torn)
        };
        let kind = if power && self.rng.random_bool(0.5) {
            CrashKind::Power
        } else {
            CrashKind::Process
        };
        let choice = self.rng.random_range(0..3u32);
        let mut w = self.world.lock();
        let Some(slot) = w.members.get(&id) else {
            return;
        };
        let (hook, disk) = (slot.hook.clone(), slot.disk.clone());
        match choice {
            0 => {
                let point = *CRASH_POINTS
                    .choose(&mut self.rng)
                    .unwrap_or(&CrashPoint::WalSaveBeforeSync);
                let crash = ArmedCrash {
                    point,
                    hits: self.rng.random_range(1..=3),
                    kind,
                    after_ops: 0,
                };
                hook.arm(crash);
                w.event(
                    now,
                    Some(id),
                    format_args!("armed {kind:?} crash at {point} (hit {})", crash.hits),
                );
            }
            1 => {
                let crash = ArmedCrash {
                    point: CrashPoint::BackendCommitBefore,
                    hits: 1,
                    kind,
                    after_ops: self.rng.random_range(1..=24),
                };
                hook.arm(crash);
                w.event(
                    now,
                    Some(id),
                    format_args!(
                        "armed {kind:?} crash at disk op {} of the next backend commit",
                        crash.after_ops
                    ),
                );
            }
            _ => {
                let k = self.rng.random_range(1..=60);
                disk.arm(DiskFault::CrashAfterOps(k));
                w.event(now, Some(id), format_args!("armed crash at disk op +{k}"));
            }
        }
    }

    /// Every member runs, agrees on the applied index, and has applied all
    /// that is committed.
    fn converged(&self) -> bool {
        let w = self.world.lock();
        let mut applied = None;
        for slot in w.members.values() {
            if matches!(slot.down, Some(Down::Broken)) {
                continue;
            }
            let Some(node) = &slot.node else {
                return false;
            };
            let a = node.member().applied_index();
            if node.commit_index() != a || *applied.get_or_insert(a) != a {
                return false;
            }
        }
        w.members
            .values()
            .any(|s| s.node.as_ref().is_some_and(|n| n.is_leader()))
    }

    fn final_checks(&mut self) {
        let now = self.world.now_ms();
        let mut w = self.world.lock();
        let converged = {
            drop(w);
            let c = self.converged();
            w = self.world.lock();
            c
        };
        if !converged {
            let status: Vec<String> = w
                .members
                .iter()
                .map(|(id, s)| match &s.node {
                    Some(n) => format!(
                        "m{id}: applied {} commit {} leader {}",
                        n.member().applied_index(),
                        n.commit_index(),
                        n.leader_id()
                    ),
                    None => format!("m{id}: down ({:?})", s.down),
                })
                .collect();
            w.violation(Violation {
                invariant: Invariant::Convergence,
                time_ms: now,
                member: None,
                detail: format!(
                    "the cluster did not quiesce within {}s after the faults stopped: {}",
                    QUIESCE_LIMIT_MS / 1000,
                    status.join("; ")
                ),
                diffs: Vec::new(),
            });
            return;
        }
        let mut dumps = Vec::new();
        for (id, slot) in &w.members {
            if let Some(node) = &slot.node {
                match node.member().state_dump() {
                    Ok(d) => dumps.push((*id, d)),
                    Err(e) => {
                        let v = Violation {
                            invariant: Invariant::Liveness,
                            time_ms: now,
                            member: Some(*id),
                            detail: format!("state dump failed: {e}"),
                            diffs: Vec::new(),
                        };
                        w.violations.push(v);
                        return;
                    }
                }
            }
        }
        if let Err(v) = checker::check_convergence(&dumps, now) {
            w.violation(v);
            return;
        }
        if let Some((_, dump)) = dumps.first() {
            let result = checker::check_durability(&w.acked, &w.maybe_deleted, dump, now);
            if let Err(v) = result {
                w.violation(v);
            }
        }
        w.event(
            now,
            None,
            format_args!("quiesced: {} members identical", dumps.len()),
        );
    }
}

/// Runs every config on `jobs` worker threads (each run on its own madsim
/// runtime, so its outcome does not depend on `jobs`), calling `done` as
/// each finishes; returns the reports in the order of `configs`.
pub fn run_many(
    configs: &[RunConfig],
    jobs: usize,
    done: &(dyn Fn(&RunReport) + Sync),
) -> Vec<RunReport> {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<RunReport>>> = Mutex::new(vec![None; configs.len()]);
    std::thread::scope(|scope| {
        for _ in 0..jobs.max(1) {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(cfg) = configs.get(i) else {
                        return;
                    };
                    let report = run(cfg);
                    done(&report);
                    results.lock().unwrap_or_else(|e| e.into_inner())[i] = Some(report);
                }
            });
        }
    });
    results
        .into_inner()
        .unwrap_or_else(|e| e.into_inner())
        .into_iter()
        .flatten()
        .collect()
}
