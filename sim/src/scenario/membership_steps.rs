//! The steps that change what the cluster is: restores of the whole
//! cluster (from a backend snapshot, from a member's backup).

use super::script::{STEP_LIMIT_MS, Script};
use crate::run::DRAIN_MS;
use crate::scenario_file::Step;
use std::time::Duration;

impl Script<'_> {
    /// `snapshot_restore`: every member stops, the network drains, and the
    /// supervisor restores the cluster (see `run/restore.rs`).
    pub(super) async fn restore_step(&mut self, step: &Step) -> Result<(), String> {
        if let Step::SnapshotRestore { from } = step {
            let from = self.resolve(from)?;
            let members = self.sup.cluster_members();
            self.sup.stop_cluster(&members, "a snapshot restore");
            madsim::time::sleep(Duration::from_millis(DRAIN_MS)).await;
            self.sup.snapshot_restore(from, &members);
        }
        if let Step::BackupRestore { member } = step {
            let source = self.resolve(member)?;
            self.sup.begin_backup_restore(source);
            if !self.wait_for(STEP_LIMIT_MS, |s| !s.restoring()).await {
                return Err("the backup restore did not finish within 30s".into());
            }
        }
        Ok(())
    }
}
