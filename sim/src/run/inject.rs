//! Random fault injection: which fault, on which member, when.

use super::STEP_MS;
use super::Supervisor;
use crate::fault::{ArmedCrash, CrashKind, DiskFault, FaultClass};
use crate::scenario_file::{Count, EioOn, Mode, Step};
use rand::Rng;
use rand::seq::IndexedRandom;
use replica::crash_point::CrashPoint;

const CRASH_POINTS: [CrashPoint; 8] = CrashPoint::ALL;

impl Supervisor {
    /// Maybe injects one new fault on a running member.
    pub(crate) fn maybe_inject(&mut self) {
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
            FaultClass::Crash | FaultClass::Power | FaultClass::Torn => {
                let power = class != FaultClass::Crash;
                self.record(
                    now,
                    id,
                    false,
                    Step::Crash {
                        member: id.into(),
                        mode: if power { Mode::Power } else { Mode::Process },
                        at: None,
                        hit: 1,
                        after_ops: None,
                        after_disk_ops: None,
                        plan_seed: None,
                    },
                );
                self.kill(id, power);
            }
            FaultClass::Eio => {
                let (fault, on) = if self.rng.random_bool(0.5) {
                    (DiskFault::FailNextSync, EioOn::Sync)
                } else {
                    (DiskFault::FailNextWrite, EioOn::Write)
                };
                self.record(
                    now,
                    id,
                    true,
                    Step::Eio {
                        member: id.into(),
                        on,
                        mode: Mode::Power,
                        plan_seed: None,
                    },
                );
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
                let ms = self.rng.random_range(200..3_000);
                self.record(
                    now,
                    id,
                    false,
                    Step::Partition {
                        member: id.into(),
                        ms: Some(ms),
                    },
                );
                self.partition(id, now + ms);
            }
        }
    }

    /// Adds a random fault to the recorded schedule, if one is kept.
    fn record(&mut self, now: u64, id: u64, armed: bool, step: Step) {
        if let Some(s) = &mut self.schedule {
            if armed {
                s.armed(now, id, step);
            } else {
                s.happened(now, id, step);
            }
        }
    }

    /// Arms a crash at a named point, at the k-th disk operation, or at the
    /// k-th disk operation of the next backend commit.
    pub(crate) fn arm_point(&mut self, id: u64) {
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
        let mode = Mode::of_crash_kind(kind);
        let crash_step = |at: Option<CrashPoint>,
                          hit: u32,
                          after_ops: Option<u64>,
                          after_disk_ops: Option<u64>,
                          mode: Mode| Step::Crash {
            member: id.into(),
            mode,
            at: at.map(|p| p.name().to_string()),
            hit,
            after_ops: after_ops.map(Count::N),
            after_disk_ops: after_disk_ops.map(Count::N),
            plan_seed: None,
        };
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
                drop(w);
                self.record(
                    now,
                    id,
                    true,
                    crash_step(Some(point), crash.hits, None, None, mode),
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
                drop(w);
                let step = crash_step(Some(crash.point), 1, Some(crash.after_ops), None, mode);
                self.record(now, id, true, step);
            }
            _ => {
                let k = self.rng.random_range(1..=60);
                disk.arm(DiskFault::CrashAfterOps(k));
                w.event(now, Some(id), format_args!("armed crash at disk op +{k}"));
                drop(w);
                let step = crash_step(None, 1, None, Some(k), Mode::Process);
                self.record(now, id, true, step);
            }
        }
    }
}
