//! A `restart` whose boot crashes at its n-th disk operation
//! (`crash_at = "disk_op"`, `hit = n`): a crash anywhere in recovery, not
//! only at a named crash point.

use super::script::{STEP_LIMIT_MS, Script};
use crate::fault::{CrashKind, DiskFault};
use crate::scenario_file::Mode;

impl Script<'_> {
    /// Arms the n-th disk operation of the boot `restart` just started,
    /// and waits for the boot to end: it must have crashed there.
    pub(super) async fn crash_boot_at_disk_op(
        &mut self,
        id: u64,
        n: u32,
        mode: Mode,
        plan_seed: Option<u64>,
    ) -> Result<(), String> {
        self.crashed = Some(id);
        self.sup.hold_down(id);
        let boots_before = self.sup.boots(id);
        let plan = mode.power_loss().map(|kind| crate::fault::PowerPlan {
            kind,
            seed: plan_seed,
        });
        self.sup.set_power_plan(id, plan);
        let power = mode.crash_kind() == CrashKind::Power;
        self.sup
            .arm_disk(id, DiskFault::CrashAfterOps(u64::from(n)), power);
        let settled = self
            .wait_for(STEP_LIMIT_MS, |s| s.boots(id) > boots_before)
            .await;
        if !settled || !self.sup.is_down(id) {
            return Err(format!(
                "member {id} booted in fewer than {n} disk operations: there was nothing to crash at the {n}th"
            ));
        }
        Ok(())
    }
}
