//! The steps that change what the cluster is: restores of the whole
//! cluster (from a backend snapshot, from a member's backup).

use super::script::Script;
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
        Ok(())
    }
}
