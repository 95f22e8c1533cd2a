//! The supervisor: owns the madsim handle and the fault RNG, restarts and
//! heals members, waits for quiescence and runs the final checks.

use super::{ARMED_FAULT_TTL_MS, CLIENT_SESSIONS, QUIESCE_LIMIT_MS, RunReport};
use crate::checker::{self, Invariant, Violation};
use crate::cluster::client::client_main;
use crate::cluster::member::member_main;
use crate::cluster::wire::member_ip;
use crate::cluster::world::{Down, World};
use crate::config::RunConfig;
use crate::fault::{ArmedCrash, CrashKind, FaultClass, PowerLossKind, SeededPowerLoss};
use crate::rng::{STREAM_FAULTS, stream};
use crate::scenario_file::{Mode, Step};
use madsim::runtime::Handle;
use rand::Rng;
use rand::SeedableRng;
use rand::seq::IndexedRandom;
use rand_chacha::ChaCha8Rng;
use replica::crash_point::CrashPoint;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

pub(crate) struct Supervisor {
    pub(crate) world: Arc<World>,
    pub(crate) handle: Handle,
    pub(crate) rng: ChaCha8Rng,
    pub(crate) restarts_due: BTreeMap<u64, u64>,
    /// Random faults are injected until this virtual time.
    pub(crate) random_until: u64,
    /// Members a script stopped: they stay down until the script restarts
    /// them.
    pub(crate) held_down: BTreeSet<u64>,
    pub(crate) client_node: madsim::runtime::NodeHandle,
    /// Links cut by `isolate`, restored by a full heal.
    pub(crate) isolated_links: Vec<(madsim::task::NodeId, madsim::task::NodeId)>,
    /// Records the random faults as scenario steps (random runs only).
    pub(crate) schedule: Option<super::schedule::ScheduleRecorder>,
}

impl Supervisor {
    /// Creates the member nodes and the client node; with `random_clients`
    /// the random workload's sessions start at once.
    pub(crate) async fn start(cfg: RunConfig, random_clients: bool) -> Supervisor {
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
        let client_node = handle
            .create_node()
            .name("client")
            .ip(crate::cluster::wire::client_ip())
            .build();
        if random_clients {
            for session in 0..CLIENT_SESSIONS {
                client_node.spawn(client_main(world.clone(), session));
            }
        }
        // Let the members boot before anything else happens.
        madsim::time::sleep(Duration::from_millis(1)).await;
        Supervisor {
            world,
            handle,
            rng: stream(cfg.seed, STREAM_FAULTS),
            restarts_due: BTreeMap::new(),
            random_until: 0,
            held_down: BTreeSet::new(),
            client_node,
            isolated_links: Vec::new(),
            schedule: None,
        }
    }

    pub(crate) fn now_ms(&self) -> u64 {
        self.world.now_ms()
    }

    /// One supervisor step: handle stopped members, restarts, heals,
    /// expired faults, and (while random faults are on) new faults.
    pub(crate) fn poll(&mut self) {
        self.handle_stopped(true);
        self.restart_due();
        self.heal_due(false);
        self.expire_armed();
        if self.now_ms() < self.random_until {
            self.maybe_inject();
        }
    }

    /// Stops the faults and the random clients, heals, restarts everything,
    /// and waits until the cluster is quiet. Returns whether it converged.
    pub(crate) async fn quiesce(&mut self) -> bool {
        self.world.lock().stop_client = true;
        self.random_until = 0;
        self.held_down.clear();
        self.disarm_all();
        if let Some(s) = &mut self.schedule {
            s.stop();
        }
        self.heal_due(true);
        let deadline = self.now_ms() + QUIESCE_LIMIT_MS;
        let mut quiet_since = None;
        while self.now_ms() < deadline {
            madsim::time::sleep(Duration::from_millis(50)).await;
            self.handle_stopped(false);
            let down: Vec<u64> = self.stopped_waiting();
            for id in down {
                self.restarts_due.entry(id).or_insert(0);
            }
            self.restart_due();
            if self.converged() {
                // Quiet for a while: no stragglers still to apply.
                let since = *quiet_since.get_or_insert(self.now_ms());
                if self.now_ms() >= since + 500 {
                    return true;
                }
            } else {
                quiet_since = None;
            }
        }
        false
    }

    /// Members killed and not scheduled for a restart.
    pub(crate) fn stopped_waiting(&self) -> Vec<u64> {
        let w = self.world.lock();
        w.members
            .iter()
            .filter(|(id, s)| {
                matches!(s.down, Some(Down::Waiting)) && !self.restarts_due.contains_key(id)
            })
            .map(|(id, _)| *id)
            .collect()
    }

    /// The report of the run so far.
    pub(crate) fn report(&self) -> RunReport {
        let simulated_ms = self.now_ms();
        let w = self.world.lock();
        RunReport {
            config: w.cfg.clone(),
            stats: w.stats.clone(),
            violations: w.violations.clone(),
            simulated_ms,
            trace_hash: w.trace.hash(),
            trace_events: w.trace.events(),
            recorded: w.recorded.clone(),
            trace_records: w.trace.records().to_vec(),
            schedule: self
                .schedule
                .as_ref()
                .map(|s| s.steps())
                .unwrap_or_default(),
        }
    }

    pub(crate) fn madsim_id(&self, id: u64) -> Option<madsim::task::NodeId> {
        self.world.lock().members.get(&id).and_then(|s| s.madsim_id)
    }

    /// Kills members whose process stopped by itself, applies the power
    /// loss their fault calls for, and schedules their restart.
    pub(crate) fn handle_stopped(&mut self, with_delay: bool) {
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
            if let Some(s) = &mut self.schedule {
                s.fired(id);
            }
            if power {
                self.power_loss(id);
            }
            self.schedule_restart(id, with_delay);
        }
    }

    pub(crate) fn schedule_restart(&mut self, id: u64, with_delay: bool) {
        let now = self.world.now_ms();
        let delay = if with_delay {
            self.rng.random_range(100..2_000)
        } else {
            0
        };
        if let Some(slot) = self.world.lock().members.get_mut(&id) {
            slot.down = Some(Down::Waiting);
        }
        // A member a script stopped waits for the script's `restart`.
        if !self.held_down.contains(&id) {
            self.restarts_due.insert(id, now + delay);
        }
    }

    /// Cuts the links between member `id` and every other member.
    pub(crate) fn isolate(&mut self, id: u64) {
        let now = self.now_ms();
        let ids: Vec<(u64, Option<madsim::task::NodeId>)> = {
            let mut w = self.world.lock();
            w.event(
                now,
                Some(id),
                format_args!("isolated from the other members"),
            );
            w.members.iter().map(|(i, s)| (*i, s.madsim_id)).collect()
        };
        let Some(me) = ids.iter().find(|(i, _)| *i == id).and_then(|(_, m)| *m) else {
            return;
        };
        let net = madsim::net::NetSim::current();
        for (other, mid) in ids {
            if let (true, Some(mid)) = (other != id, mid) {
                net.clog_link(me, mid);
                net.clog_link(mid, me);
                self.isolated_links.push((me, mid));
            }
        }
    }

    /// A run statistic by name (for scenario `expect` steps).
    pub(crate) fn stat(&self, name: &str) -> u64 {
        let w = self.world.lock();
        let s = &w.stats;
        match name {
            "wal_repairs" => s.wal_repairs,
            "commit_crashes" => s.commit_crashes,
            "point_crashes" => s.point_crashes,
            "snapshots" => s.snapshots,
            "snapshots_installed" => s.snapshots_installed,
            "replay_skipped_v3" => s.replay_skipped_v3,
            "restarts" => s.restarts,
            "power_losses" => s.power_losses,
            "eio_failures" => s.eio_failures,
            _ => 0,
        }
    }

    /// Cuts member `id` off the network until `until` (virtual ms).
    pub(crate) fn partition(&mut self, id: u64, until: u64) {
        let now = self.now_ms();
        let mid = {
            let mut w = self.world.lock();
            w.stats.partitions += 1;
            if until == u64::MAX {
                w.event(now, Some(id), format_args!("partitioned"));
            } else {
                w.event(now, Some(id), format_args!("partitioned until {until}ms"));
            }
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

    /// Starts a spare member's process (it boots empty and joins).
    pub(crate) fn start_member(&mut self, id: u64) {
        let w = self.world.clone();
        let node = self
            .handle
            .create_node()
            .name(format!("m{id}"))
            .ip(member_ip(id))
            .init(move || member_main(w.clone(), id))
            .build();
        if let Some(slot) = self.world.lock().members.get_mut(&id) {
            slot.madsim_id = Some(node.id());
            slot.started = true;
        }
    }

    /// Stops a member that was removed from the cluster for good.
    pub(crate) fn retire(&mut self, id: u64) {
        let now = self.now_ms();
        let mid = {
            let mut w = self.world.lock();
            let Some(slot) = w.members.get_mut(&id) else {
                return;
            };
            slot.node = None;
            slot.removed = true;
            slot.down = None;
            let mid = slot.madsim_id;
            w.event(
                now,
                Some(id),
                format_args!("removed from the cluster: stopped"),
            );
            mid
        };
        self.restarts_due.remove(&id);
        if let Some(mid) = mid {
            self.handle.kill(mid);
        }
    }

    /// Whether a member takes part in convergence now.
    fn counted(&self, id: u64, slot: &crate::cluster::world::Slot) -> bool {
        slot.started
            && !slot.removed
            && !self.held_down.contains(&id)
            && !matches!(slot.down, Some(Down::Broken))
    }

    pub(crate) fn restart_due(&mut self) {
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
                slot.power_plan = None;
                slot.madsim_id
            };
            if let Some(s) = &mut self.schedule {
                s.disarmed(id);
                s.happened(
                    now,
                    id,
                    Step::Restart {
                        member: id.into(),
                        crash_at: None,
                        hit: 1,
                        mode: Mode::Process,
                        plan_seed: None,
                    },
                );
            }
            self.maybe_arm_boot_crash(id);
            if let Some(mid) = mid {
                self.handle.restart(mid);
            }
        }
    }

    /// Sometimes arms a crash inside the coming boot: in the middle of the
    /// replay, at one of its backend commits or between the v2 and v3
    /// halves of a replayed entry (crash during recovery).
    pub(crate) fn maybe_arm_boot_crash(&mut self, id: u64) {
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
        if let Some(s) = &mut self.schedule {
            s.armed_boot_crash(
                id,
                point.name(),
                crash.hits,
                Mode::of_crash_kind(crash.kind),
            );
        }
        {
            let mut w = self.world.lock();
            if let Some(slot) = w.members.get_mut(&id) {
                slot.hook.arm(crash);
                slot.boot_crash_armed = true;
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

    pub(crate) fn power_loss(&mut self, id: u64) {
        let now = self.world.now_ms();
        let reorder = self.world.lock().cfg.has(FaultClass::Torn);
        let mut w = self.world.lock();
        let Some(slot) = w.members.get_mut(&id) else {
            return;
        };
        let disk = slot.disk.clone();
        // A script step may have said how this power loss goes; else the
        // run's fault classes do. Either way the plan draws from its own
        // seed, which the schedule records so a replay loses the same writes.
        // With torn writes on, a third of the power losses keep every
        // unsynced write and tear each file's last one: the shape of a torn
        // WAL tail, which a random subset rarely produces.
        let how = slot.power_plan.take();
        let kind = match how {
            Some(plan) => plan.kind,
            None if !reorder => PowerLossKind::Lose,
            None if self.rng.random_ratio(1, 3) => PowerLossKind::TearTail,
            None => PowerLossKind::Reorder,
        };
        let seed = how
            .and_then(|p| p.seed)
            .unwrap_or_else(|| self.rng.random());
        let mut plan_rng = ChaCha8Rng::seed_from_u64(seed);
        let mut plan = SeededPowerLoss::of_kind(&mut plan_rng, kind);
        disk.power_loss(&mut plan);
        if let Some(s) = &mut self.schedule {
            s.power_loss(id, kind, seed);
        }
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
    pub(crate) fn kill(&mut self, id: u64, power: bool) {
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

    pub(crate) fn heal_due(&mut self, all: bool) {
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
        if all {
            for (a, b) in std::mem::take(&mut self.isolated_links) {
                madsim::net::NetSim::current().unclog_link(a, b);
                madsim::net::NetSim::current().unclog_link(b, a);
            }
        }
    }

    /// Forgets armed faults that did not fire in time, and records boot
    /// crashes that their boot never reached (the world disarmed them).
    pub(crate) fn expire_armed(&mut self) {
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
        let mut missed = Vec::new();
        for (id, slot) in w.members.iter_mut() {
            if std::mem::take(&mut slot.boot_crash_missed) {
                missed.push(*id);
            }
        }
        for id in &expired {
            w.event(now, Some(*id), format_args!("armed fault expired"));
        }
        for id in &missed {
            w.event(
                now,
                Some(*id),
                format_args!("boot finished before its armed crash: disarmed"),
            );
        }
        if let Some(s) = &mut self.schedule {
            for id in expired.into_iter().chain(missed) {
                s.disarmed(id);
            }
        }
    }

    pub(crate) fn arm_deadline(&mut self, id: u64) {
        let until = self.world.now_ms() + ARMED_FAULT_TTL_MS;
        if let Some(slot) = self.world.lock().members.get_mut(&id) {
            slot.armed_until = Some(until);
        }
    }

    pub(crate) fn disarm_all(&mut self) {
        let w = self.world.lock();
        for slot in w.members.values() {
            slot.hook.disarm();
            slot.disk.disarm();
        }
    }

    /// Every member runs, agrees on the applied index, and has applied all
    /// that is committed.
    pub(crate) fn converged(&self) -> bool {
        let w = self.world.lock();
        let mut applied = None;
        for (id, slot) in &w.members {
            if !self.counted(*id, slot) {
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

    pub(crate) fn final_checks(&mut self) {
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
            if !self.counted(*id, slot) {
                continue;
            }
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
