//! The steps that change what the cluster is: membership changes, leader
//! transfers, and restores of the whole cluster (from a backend snapshot,
//! from a member's backup).

use super::script::{STEP_LIMIT_MS, Script};
use crate::run::DRAIN_MS;
use crate::scenario_file::Step;
use replica::proto::ConfChangeKind;
use std::time::Duration;

/// How long a leader transfer may take.
const TRANSFER_LIMIT_MS: u64 = 10_000;

impl Script<'_> {
    /// Membership changes, leader transfers and restores.
    pub(super) async fn membership_step(&mut self, step: &Step) -> Result<(), String> {
        match step {
            Step::AddMember { id, learner } => self.add_member(*id, *learner).await,
            Step::PromoteMember { id } => {
                let id = self.resolve(id)?;
                self.conf_change(ConfChangeKind::Promote, id, false).await?;
                self.sup.count(|s| s.promotions += 1);
                Ok(())
            }
            Step::RemoveMember { id } => {
                let id = self.resolve(id)?;
                self.remove_member(id).await
            }
            Step::TransferLeader { to } => {
                let to = self.resolve(to)?;
                self.transfer_leader(to).await
            }
            _ => self.restore_step(step).await,
        }
    }

    /// Asks the leader to hand over to `to`, and waits until `to` leads.
    pub(super) async fn transfer_leader(&mut self, to: u64) -> Result<(), String> {
        if self.sup.leader() == Some(to) {
            return Ok(());
        }
        self.sup.transfer_leader(to);
        if self
            .wait_for(TRANSFER_LIMIT_MS, |s| s.leader() == Some(to))
            .await
        {
            self.sup.count(|s| s.leader_transfers += 1);
            Ok(())
        } else {
            Err(format!(
                "member {to} did not take over leadership within 10s"
            ))
        }
    }

    /// `snapshot_restore`: every member stops, the network drains, and the
    /// supervisor restores the cluster (see `run/restore.rs`).
    async fn restore_step(&mut self, step: &Step) -> Result<(), String> {
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
