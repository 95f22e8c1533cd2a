//! Random fault injection: which fault, on which member, when.

use super::STEP_MS;
use super::Supervisor;
use crate::fault::{ArmedCrash, CrashKind, DiskFault, FaultClass};
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
                self.partition(id, until);
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
}
