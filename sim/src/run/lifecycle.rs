//! Members going down and coming back: kills, power losses (with the plan
//! the fault classes or a script step chose), restarts after a delay,
//! crashes armed for a boot, and armed faults that expire unfired.

use super::ARMED_FAULT_TTL_MS;
use super::inject::crash_step;
use super::supervisor::Supervisor;
use crate::cluster::member::member_main;
use crate::cluster::slot::Down;
use crate::cluster::wire::member_ip;
use crate::fault::{
    ArmedCrash, CrashKind, DiskFault, FaultClass, PowerLossKind, PowerPlan, SeededPowerLoss,
};
use crate::scenario_file::{Mode, Step};
use rand::Rng;
use rand::SeedableRng;
use rand::seq::IndexedRandom;
use rand_chacha::ChaCha8Rng;
use replica::crash_point::CrashPoint;

impl Supervisor {
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
                slot.armed.power_plan = None;
                slot.armed.disk_crash_power = false;
                slot.armed.power_at_reboot_sync = false;
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
                        power_at_sync: false,
                    },
                );
            }
            let boot_crash = self.maybe_arm_boot_crash(id);
            match self.reboot_power_requests.remove(&id) {
                Some(plan) => self.arm_power_at_reboot_sync(id, plan),
                None if !boot_crash && self.draw_power_at_reboot_sync() => {
                    self.arm_power_at_reboot_sync(id, None);
                }
                None => {}
            }
            if let Some(mid) = mid {
                self.handle.restart(mid);
            }
        }
    }

    /// Whether the coming reboot gets a power loss at its first sync: one
    /// restart in six while random power faults are on (one draw, only
    /// then).
    fn draw_power_at_reboot_sync(&mut self) -> bool {
        let on = {
            let w = self.world.lock();
            let power = w.cfg.has(FaultClass::Power) || w.cfg.has(FaultClass::Torn);
            power && !w.history.is_stopped()
        };
        on && self.now_ms() < self.random_until && self.rng.random_ratio(1, 6)
    }

    /// The compound fault: the member just restarted after a crash and its
    /// boot reads what the page cache still held; the power fails at its
    /// first sync, before any of that is durable, so what the reboot saw and
    /// acted on is gone. `plan` says how the power loss goes (a replayed
    /// schedule's), else the run decides.
    fn arm_power_at_reboot_sync(&mut self, id: u64, plan: Option<PowerPlan>) {
        let now = self.now_ms();
        {
            let mut w = self.world.lock();
            let Some(slot) = w.slot_mut(id) else {
                return;
            };
            slot.disk.arm(DiskFault::CrashAtNextSync);
            slot.armed.disk_crash_power = true;
            slot.armed.power_at_reboot_sync = true;
            slot.armed.power_plan = plan;
            w.event(
                now,
                Some(id),
                format_args!("armed power loss at the first sync after this reboot"),
            );
        }
        if let Some(s) = &mut self.schedule {
            s.armed_power_at_reboot_sync(id);
        }
        self.arm_deadline(id);
    }

    /// Sometimes arms a crash inside the coming boot: in the middle of the
    /// replay, at one of its backend commits or between the v2 and v3
    /// halves of a replayed entry (crash during recovery).
    pub(crate) fn maybe_arm_boot_crash(&mut self, id: u64) -> bool {
        let (enabled, power, quiescing) = {
            let w = self.world.lock();
            (
                w.cfg.has(FaultClass::Point),
                w.cfg.has(FaultClass::Power) || w.cfg.has(FaultClass::Torn),
                w.history.is_stopped(),
            )
        };
        if !enabled || quiescing || !self.rng.random_bool(0.25) {
            return false;
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
                slot.armed.boot_crash = true;
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
        true
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
        // With torn writes on, a quarter of the power losses keep every
        // unsynced write and tear each file's last one (the shape of a torn
        // WAL tail, which a random subset rarely produces), a quarter lose
        // everything unsynced (the plain model, which a subset reaches only
        // by chance), and half keep a random subset.
        let how = slot.armed.power_plan.take();
        let kind = match how {
            Some(plan) => plan.kind,
            None if !reorder => PowerLossKind::Lose,
            None => match self.rng.random_range(0..4) {
                0 => PowerLossKind::TearTail,
                1 => PowerLossKind::Lose,
                _ => PowerLossKind::Reorder,
            },
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
        if kind != PowerLossKind::Lose && plan.tear_targets == 0 {
            w.stats.tears_without_target += 1;
            w.event(
                now,
                Some(id),
                format_args!("{kind:?} power loss found no multi-sector write to tear"),
            );
        }
    }

    /// Kills a running member now (a process crash between two of its
    /// steps), with or without a power loss.
    /// Cuts the power of `members` at this instant (a cluster or majority
    /// power cut); each restarts after its own delay. Recorded as one power
    /// crash per member at the same virtual time, which replays exactly.
    pub(crate) fn power_off(&mut self, members: &[u64]) {
        let now = self.world.now_ms();
        {
            let mut w = self.world.lock();
            w.event(now, None, format_args!("power cut of members {members:?}"));
        }
        for &id in members {
            if let Some(s) = &mut self.schedule {
                s.happened(now, id, crash_step(id, None, 1, None, None, Mode::Power));
            }
            self.kill(id, true);
        }
    }

    /// Members whose process runs now (removed ones aside), by id.
    pub(crate) fn running_members(&self) -> Vec<u64> {
        let w = self.world.lock();
        w.members
            .iter()
            .filter(|(_, s)| s.is_running())
            .map(|(id, _)| *id)
            .collect()
    }

    pub(crate) fn kill(&mut self, id: u64, power: bool) {
        let now = self.world.now_ms();
        {
            let mut w = self.world.lock();
            let Some(slot) = w.members.get_mut(&id) else {
                return;
            };
            slot.crash_process();
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
            self.count_power_cut(now);
        }
        self.schedule_restart(id, true);
    }

    /// Counts a cluster power cut when a majority of the members has lost
    /// power at this same instant (a random cut, `power_off_all`, or a
    /// replay's power crashes at one time all count alike).
    fn count_power_cut(&mut self, now: u64) {
        let (at, losses) = &mut self.power_instant;
        if *at != now {
            *at = now;
            *losses = 0;
        }
        *losses += 1;
        let mut w = self.world.lock();
        if *losses == crate::fault::quorum(w.cfg.nodes) {
            w.stats.cluster_power_cuts += 1;
        }
    }

    /// Starts a spare member's process (it boots empty and joins).
    pub(crate) fn start_member(&mut self, id: u64) {
        self.ensure_slot(id);
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
            // A removed member shuts down cleanly, as etcd's does: its
            // destructors may write.
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

    /// Forgets armed faults that did not fire in time, and records boot
    /// crashes that their boot never reached (the world disarmed them).
    pub(crate) fn expire_armed(&mut self) {
        let now = self.world.now_ms();
        let mut w = self.world.lock();
        let mut expired = Vec::new();
        for (id, slot) in w.members.iter_mut() {
            if slot.armed.until.is_some_and(|t| t <= now) {
                slot.armed.until = None;
                // The deadline outlives a fault that fired (the member
                // crashed and may be up again): only one still waiting is
                // forgotten and reported.
                let waiting = slot.has_armed_fault();
                // What the expired fault would have done when it fired.
                slot.armed.power_plan = None;
                slot.armed.disk_crash_power = false;
                slot.hook.disarm();
                slot.disk.disarm();
                if waiting {
                    expired.push(*id);
                }
            }
        }
        let mut missed = Vec::new();
        for (id, slot) in w.members.iter_mut() {
            if std::mem::take(&mut slot.armed.boot_crash_missed) {
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
            slot.armed.until = Some(until);
        }
    }

    pub(crate) fn disarm_all(&mut self) {
        let w = self.world.lock();
        for slot in w.members.values() {
            slot.hook.disarm();
            slot.disk.disarm();
        }
    }
}
