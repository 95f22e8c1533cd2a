//! An `eio` step aimed at one kind of file (`file = "wal"`) or at the n-th
//! sync, write or rename (`nth = 3`, or `"k"` in a repeat).

use super::script::{Script, count};
use crate::fault::{DiskFault, MemberFile, PowerPlan, TargetedEio, TargetedOp};
use crate::scenario_file::{Count, DamagedFile, EioOn, Step};

impl Script<'_> {
    /// Arms the targeted EIO; the member then stops on it and stays down
    /// until `restart`, as with any `eio` step.
    pub(super) fn targeted_eio(&mut self, step: &Step, k: Option<u64>) -> Result<(), String> {
        let Step::Eio {
            member,
            on,
            mode,
            plan_seed,
            file,
            nth,
        } = step
        else {
            return Ok(());
        };
        let id = self.resolve(member)?;
        self.crashed = Some(id);
        self.sup.hold_down(id);
        let plan = mode.power_loss().map(|kind| PowerPlan {
            kind,
            seed: *plan_seed,
        });
        self.sup.set_power_plan(id, plan);
        let target = TargetedEio {
            op: match on {
                EioOn::Sync => TargetedOp::Sync,
                EioOn::Rename => TargetedOp::Rename,
                _ => TargetedOp::Write,
            },
            nth: count(&Some(nth.clone().unwrap_or(Count::N(1))), k).max(1),
            file: file.map(member_file),
        };
        self.sup.arm_disk(id, DiskFault::FailNth(target), false);
        Ok(())
    }
}

fn member_file(file: DamagedFile) -> MemberFile {
    match file {
        DamagedFile::Wal => MemberFile::Wal,
        DamagedFile::Snapshot => MemberFile::Snapshot,
        DamagedFile::Backend => MemberFile::Backend,
    }
}
