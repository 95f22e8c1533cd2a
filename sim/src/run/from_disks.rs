//! The two run-side hooks of `sim explore --cluster`: handing the capture
//! every member's disk at an instant it asks for, and a run that boots
//! a cluster from given disks and lets it quiesce with no faults and no
//! clients.

use super::supervisor::Supervisor;
use super::{RunReport, runtime};
use crate::checker::{AckedPut, AppliedDelete};
use crate::config::{ClusterInstant, RunConfig};

impl Supervisor {
    /// Hands the capture every started member's disk and the client
    /// history, if it wants them now.
    pub(super) fn capture_cluster_instant(&self) {
        let now = self.now_ms();
        let w = self.world.lock();
        let Some(sink) = w.cfg.capture.clone() else {
            return;
        };
        if !sink.cluster_instant_due(now) {
            return;
        }
        let nodes = w.cfg.nodes;
        let disks = w
            .members
            .iter()
            .filter(|(_, s)| s.started && !s.removed)
            .map(|(id, s)| (*id, s.disk.clone()))
            .collect();
        let applied = w
            .members
            .values()
            .filter_map(|s| s.node.as_ref().map(|n| n.member().applied_index()))
            .max()
            .unwrap_or(0);
        let membership_changed = w
            .members
            .iter()
            .any(|(id, s)| s.removed || (s.started && *id > nodes));
        sink.cluster_captured(ClusterInstant {
            at_ms: now,
            disks,
            acked: w.history.acked_puts().to_vec(),
            deletes: w.history.applied_deletes().to_vec(),
            applied,
            membership_changed,
            damaged: w.members.values().any(|s| s.damaged),
        });
    }
}

/// Boots `cfg`'s members from the disks its capture supplies
/// ([`crate::config::Capture::start_disk`]), with no clients and no faults,
/// waits for the cluster to quiesce and runs the final checks, durability
/// included: `acked` and `deletes` are what an earlier run's clients were
/// told, which the booted cluster must keep.
pub fn run_from_disks(
    cfg: &RunConfig,
    acked: Vec<AckedPut>,
    deletes: Vec<AppliedDelete>,
) -> RunReport {
    let rt = runtime(cfg, 0);
    let _quiet = crate::panic_guard::QuietPanics::new();
    let cfg = cfg.clone();
    rt.block_on(async move {
        let mut sup = Supervisor::start(cfg, false).await;
        sup.world.lock().history.seed_outcomes(acked, deletes);
        sup.quiesce().await;
        sup.final_checks();
        sup.report()
    })
}
