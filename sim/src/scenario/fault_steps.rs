//! The script's fault steps: `crash` (now, at a named point, or at the k-th
//! disk operation), `eio`, `misdirect`, `slow`, and `restart` (optionally
//! crashing its boot). Each stopping fault targets a member that then stays
//! down until the script restarts it.

use super::script::{STEP_LIMIT_MS, Script, count};
use crate::fault::{ArmedCrash, CrashKind, DiskFault, PowerPlan};
use crate::scenario_file::{EioOn, Mode, Step, Target, tearable_sync_target};
use replica::crash_point::CrashPoint;

/// What a `restart` step does to the boot it starts.
pub(super) enum BootFault {
    None,
    /// Crash at the hit-th pass of a crash point during the boot.
    CrashAt(CrashPoint, u32),
    /// Power loss at the boot's first sync (or the member's first after it).
    PowerAtSync,
    /// Crash at the boot's n-th disk operation.
    CrashAtDiskOp(u32),
}

impl Script<'_> {
    /// A `crash` step (`k`: the repeat variable).
    pub(super) fn crash(&mut self, step: &Step, k: Option<u64>) -> Result<(), String> {
        let Step::Crash {
            member,
            mode,
            at,
            hit,
            after_ops,
            after_disk_ops,
            plan_seed,
        } = step
        else {
            return Ok(());
        };
        let id = self.resolve(member)?;
        self.crashed = Some(id);
        let kind = mode.crash_kind();
        self.set_power_plan(id, *mode, *plan_seed);
        self.sup.hold_down(id);
        let point = at.as_deref().and_then(CrashPoint::from_name);
        let disk_ops = count(after_disk_ops, k);
        if let Some(file) = at.as_deref().and_then(tearable_sync_target) {
            let fault = DiskFault::CrashAtTearableSync(file);
            self.sup.arm_disk(id, fault, kind == CrashKind::Power);
        } else if let Some(point) = point {
            let crash = ArmedCrash {
                point,
                hits: *hit,
                kind,
                after_ops: count(after_ops, k),
            };
            self.sup.arm_crash(id, crash);
        } else if disk_ops > 0 {
            self.sup.arm_disk(
                id,
                DiskFault::CrashAfterOps(disk_ops),
                kind == CrashKind::Power,
            );
        } else {
            self.sup.kill(id, kind == CrashKind::Power);
        }
        Ok(())
    }

    /// An `eio` step: the member's next sync or write fails.
    pub(super) fn eio(
        &mut self,
        member: &Target,
        on: &EioOn,
        mode: Mode,
        plan_seed: Option<u64>,
    ) -> Result<(), String> {
        let id = self.resolve(member)?;
        self.crashed = Some(id);
        self.sup.hold_down(id);
        self.set_power_plan(id, mode, plan_seed);
        self.sup.arm_disk(id, on.fault(), false);
        Ok(())
    }

    /// A `misdirect` step (the member's `nth` next write to `file` lands
    /// `shift` bytes off; the supervisor then crashes it, and it stays down
    /// until `restart`, which waits for the write to land), or a `slow`
    /// step (the member's disk is `factor` times slower for `ms`).
    pub(super) fn disk_step(&mut self, step: &Step) -> Result<(), String> {
        match step {
            Step::Misdirect {
                member,
                file,
                nth,
                shift,
            } => {
                let id = self.resolve(member)?;
                self.crashed = Some(id);
                self.sup.hold_down(id);
                self.sup.arm_misdirect(id, *file, *nth, *shift)
            }
            Step::Slow { member, factor, ms } => {
                let id = self.resolve(member)?;
                self.sup.slow_disk(id, *factor, *ms)
            }
            _ => Ok(()),
        }
    }

    /// A `restart` step: waits for an armed crash to fire (or stops the
    /// member), restarts it, and waits for its boot — or, with `crash_at`,
    /// crashes that boot; with `power_at_sync`, the power fails at the
    /// reboot's first sync and the member stays down until the next
    /// `restart`.
    pub(super) async fn restart(
        &mut self,
        member: &Target,
        then: BootFault,
        mode: Mode,
        plan_seed: Option<u64>,
    ) -> Result<(), String> {
        let id = self.resolve(member)?;
        if self.sup.crash_armed(id) && !self.wait_for(STEP_LIMIT_MS, |s| s.is_down(id)).await {
            return Err(format!(
                "the crash armed on member {id} never fired: the scenario does not reach its crash point"
            ));
        }
        if !self.sup.is_down(id) {
            self.sup.hold_down(id);
            self.sup.kill(id, false);
        }
        // Let the supervisor take the stopped member down (and cut its
        // power if the crash asked for it) before the restart.
        self.sup.poll();
        self.sup.release(id);
        self.sup.clear_disk_crash_power(id);
        if let BootFault::PowerAtSync = then {
            let plan = mode.power_loss().map(|kind| PowerPlan {
                kind,
                seed: plan_seed,
            });
            self.sup.power_loss_at_reboot_sync(id, plan);
        }
        let boots_before = self.sup.boots(id);
        self.sup.restart_now(id);
        self.sup.poll();
        if let BootFault::CrashAt(point, hit) = then {
            return self
                .crash_during_boot(id, point, hit, mode, plan_seed)
                .await;
        }
        if let BootFault::CrashAtDiskOp(n) = then {
            return self.crash_boot_at_disk_op(id, n, mode, plan_seed).await;
        }
        if let BootFault::PowerAtSync = then {
            // Like a crash step's member, it stays down after its power
            // loss until the next `restart` (so a recorded schedule's own
            // restart step is the one that brings it back).
            self.crashed = Some(id);
            self.sup.hold_down(id);
            let settled = self
                .wait_for(STEP_LIMIT_MS, |s| s.boots(id) > boots_before)
                .await;
            return if settled {
                Ok(())
            } else {
                Err(format!("member {id} did not finish its boot within 30s"))
            };
        }
        if !self
            .wait_for(STEP_LIMIT_MS, |s| s.is_up_or_broken(id))
            .await
        {
            return Err(format!("member {id} did not boot within 30s"));
        }
        Ok(())
    }

    /// Arms a crash inside the boot that `restart` just started, and waits
    /// for it to fire; the member then stays down.
    async fn crash_during_boot(
        &mut self,
        id: u64,
        point: CrashPoint,
        hits: u32,
        mode: Mode,
        plan_seed: Option<u64>,
    ) -> Result<(), String> {
        self.crashed = Some(id);
        self.sup.hold_down(id);
        let boots_before = self.sup.boots(id);
        self.set_power_plan(id, mode, plan_seed);
        self.sup.arm_crash(
            id,
            ArmedCrash {
                point,
                hits,
                kind: mode.crash_kind(),
                after_ops: 0,
            },
        );
        let settled = self
            .wait_for(STEP_LIMIT_MS, |s| s.boots(id) > boots_before)
            .await;
        let booted = !self.sup.is_down(id);
        if !settled || booted {
            return Err(format!(
                "member {id} booted without reaching {point} (hit {hits}): there was nothing to crash in its recovery"
            ));
        }
        Ok(())
    }

    /// How the member's next power loss goes (a process crash: none).
    fn set_power_plan(&mut self, id: u64, mode: Mode, seed: Option<u64>) {
        let plan = mode.power_loss().map(|kind| PowerPlan { kind, seed });
        self.sup.set_power_plan(id, plan);
    }
}
