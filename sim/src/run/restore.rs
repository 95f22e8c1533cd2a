//! Restoring the cluster inside a run: etcdutl's `snapshot restore` from
//! one member's backend file (`snapshot_restore`), and `backup --with-v3`
//! of one member restored as a one-member cluster that grows back
//! (`backup.rs` beside this one).
//!
//! # Cluster identity
//!
//! Member ids are the simulator's network addresses and the keys of the
//! checker's per-member tables, so a restored cluster reuses them: the
//! same slots, fresh disks, and a new cluster id in every WAL's metadata
//! (1 + the restores so far). Nothing of the old cluster runs any more when
//! the new one starts: every member is stopped first and the network is
//! given [`DRAIN_MS`] to deliver (to nobody) what the old members sent, so
//! no message of the old cluster reaches the new one.
//!
//! The checker's tables start again with the new log: the per-index
//! tables (fingerprints and sampled states) because index `i` of the new
//! log names another entry than index `i` of the old; the per-member v2
//! index table because each member's v2 store is new. The client history
//! drops what took effect after the restored state's revision (acknowledged
//! writes and applied deletes of the old cluster that the restore gives up
//! by design), so durability judges the new cluster by what it was given.

use super::supervisor::Supervisor;
use crate::checker::{Invariant, Violation};
use crate::cluster::slot::Down;
use crate::cluster::world::{WorldState, member_info};
use replica::backup::snapshot_restore::{SnapshotContents, snapshot_contents};
use replica::backup::{SnapshotRestoreOptions, restore_snapshot, save_backend_snapshot};
use replica::crash_point::NoCrash;
use replica::disk::Disk;
use replica::member::{Member, StateDump};
use std::sync::Arc;

/// How long the network gets to drain between stopping the old cluster and
/// starting the new one (well above the largest latency of any model).
pub(crate) const DRAIN_MS: u64 = 100;

impl Supervisor {
    /// The members of the cluster now: started and not removed.
    pub(crate) fn cluster_members(&self) -> Vec<u64> {
        let w = self.world.lock();
        w.members
            .iter()
            .filter(|(_, s)| s.started && !s.removed)
            .map(|(id, _)| *id)
            .collect()
    }

    /// Stops every member of `members` for a restore: killed as a process
    /// crash (their page caches stay), held down, nothing armed, every
    /// partition healed. Not counted as crashes.
    pub(crate) fn stop_cluster(&mut self, members: &[u64], why: &str) {
        let now = self.now_ms();
        self.heal_due(true);
        for &id in members {
            let mid = {
                let mut w = self.world.lock();
                let Some(slot) = w.slot_mut(id) else {
                    continue;
                };
                slot.crash_process();
                slot.hook.disarm();
                slot.disk.disarm();
                slot.armed = Default::default();
                slot.down = Some(Down::Waiting);
                slot.madsim_id
            };
            if let Some(mid) = mid {
                self.handle.kill(mid);
            }
            self.restarts_due.remove(&id);
            self.held_down.insert(id);
        }
        let mut w = self.world.lock();
        w.event(
            now,
            None,
            format_args!("members {members:?} stopped for {why}"),
        );
    }

    /// Restores the stopped `members` from member `from`'s backend file
    /// (etcdutl `snapshot restore`, once per member), checks each restored
    /// data directory offline (it boots, holds the snapshot's key space,
    /// and its consistent index is the new log's snapshot index), and
    /// restarts them. A failed restore or check is a recovery violation.
    pub(crate) fn snapshot_restore(&mut self, from: u64, members: &[u64]) {
        let now = self.now_ms();
        let taken = {
            let w = self.world.lock();
            let Some(slot) = w.slot(from) else {
                return;
            };
            save_backend_snapshot(slot.disk.mem())
                .and_then(|db| snapshot_contents(&db).map(|c| (db, c)))
        };
        let (db, contents) = match taken {
            Ok(t) => t,
            Err(e) => {
                return self.restore_failed(
                    members,
                    from,
                    format!("snapshot of member {from}: {e}"),
                );
            }
        };
        let mut w = self.world.lock();
        let cluster_id = restore_generation(&w);
        let infos: Vec<_> = members.iter().map(|id| member_info(*id)).collect();
        for &id in members {
            let opts = SnapshotRestoreOptions {
                members: infos.clone(),
                member_id: id,
                cluster_id,
                bugs: w.cfg.bugs,
            };
            let cfg = w.cfg.clone();
            let Some(slot) = w.slot_mut(id) else {
                continue;
            };
            slot.wipe(&cfg, id);
            let disk = slot.disk.clone();
            let checked = restore_snapshot(&db, disk.as_ref(), &opts)
                .map_err(|e| RestoreCheck::from(format!("snapshot restore of member {id}: {e}")))
                .and_then(|report| check_restored(&w, id, &contents, report.snapshot.index));
            if let Err(v) = checked {
                w.violation(v.into_violation(now, id));
                if let Some(slot) = w.slot_mut(id) {
                    slot.down = Some(Down::Broken);
                }
            }
        }
        w.stats.snapshot_restores += 1;
        new_cluster(&mut w, contents.v3.revision);
        w.event(
            now,
            Some(from),
            format_args!(
                "snapshot restore from member {from}'s backend (consistent index {}, revision {}) as cluster {cluster_id} of {members:?}",
                contents.consistent_index.index, contents.v3.revision
            ),
        );
        drop(w);
        self.start_restored(members);
    }

    /// A restore that could not even start: the members stay down.
    fn restore_failed(&mut self, members: &[u64], from: u64, detail: String) {
        let now = self.now_ms();
        let mut w = self.world.lock();
        w.violation(Violation {
            invariant: Invariant::Recovery,
            time_ms: now,
            member: Some(from),
            detail,
            diffs: Vec::new(),
        });
        for id in members {
            if let Some(slot) = w.slot_mut(*id) {
                slot.down = Some(Down::Broken);
            }
        }
    }

    /// Boots the restored members (those that did not break) now. Not a
    /// restart: nothing is armed for the boot, and it is not recorded (the
    /// restore step that replays the run starts them the same way).
    pub(crate) fn start_restored(&mut self, members: &[u64]) {
        let now = self.now_ms();
        for &id in members {
            self.held_down.remove(&id);
            let mid = {
                let mut w = self.world.lock();
                let Some(slot) = w.slot_mut(id) else {
                    continue;
                };
                if matches!(slot.down, Some(Down::Broken)) {
                    continue;
                }
                slot.disk.reset_for_restart();
                slot.hook.disarm();
                let mid = slot.madsim_id;
                w.event(now, Some(id), format_args!("start on the restored disk"));
                mid
            };
            match mid {
                Some(mid) => self.handle.restart(mid),
                None => self.start_member(id),
            }
        }
    }
}

/// The cluster id of the next restored cluster (the first cluster is 1).
pub(super) fn restore_generation(w: &WorldState) -> u64 {
    1 + w.stats.snapshot_restores + w.stats.backup_restores
}

/// The checker's and the history's view of the old log ends here (see the
/// module comment): the restored state is at `revision`.
pub(super) fn new_cluster(w: &mut WorldState, revision: i64) {
    w.checks.entries = Default::default();
    w.checks.states = Default::default();
    w.checks.v2_index = Default::default();
    w.history.restored(revision);
}

/// Why a restored member failed its offline check.
pub(super) struct RestoreCheck {
    detail: String,
    diffs: Vec<crate::diff::FieldDiff>,
}

impl From<String> for RestoreCheck {
    fn from(detail: String) -> Self {
        RestoreCheck {
            detail,
            diffs: Vec::new(),
        }
    }
}

impl RestoreCheck {
    pub(super) fn new(detail: String, diffs: Vec<crate::diff::FieldDiff>) -> Self {
        RestoreCheck { detail, diffs }
    }

    pub(super) fn into_violation(self, time_ms: u64, id: u64) -> Violation {
        Violation {
            invariant: Invariant::Recovery,
            time_ms,
            member: Some(id),
            detail: self.detail,
            diffs: self.diffs,
        }
    }
}

/// Boots a copy of member `id`'s restored disk with the run's store
/// settings (boot checks on) and returns its state.
pub(super) fn boot_copy(w: &WorldState, id: u64) -> Result<StateDump, RestoreCheck> {
    let slot = w
        .slot(id)
        .ok_or_else(|| format!("member {id} has no slot"))?;
    let copy: Arc<dyn Disk> = Arc::new(slot.disk.mem().fork());
    let store = w.cfg.node_config(id).store;
    let (member, _) = Member::open(copy, store, Arc::new(NoCrash), 0)
        .map_err(|e| format!("restored member {id} does not boot: {e}"))?;
    Ok(member
        .state_dump()
        .map_err(|e| format!("restored member {id}: state dump: {e}"))?)
}

/// A member restored from a snapshot holds the snapshot's key space, and
/// its consistent index is the new log's snapshot index (lowered from the
/// snapshot's own).
fn check_restored(
    w: &WorldState,
    id: u64,
    contents: &SnapshotContents,
    snapshot_index: u64,
) -> Result<(), RestoreCheck> {
    let dump = boot_copy(w, id)?;
    if dump.v3 != contents.v3 {
        return Err(RestoreCheck {
            detail: format!("restored member {id}'s key space differs from the snapshot's"),
            diffs: crate::diff::diff(&dump.v3, &contents.v3),
        });
    }
    if dump.consistent_index != snapshot_index {
        return Err(format!(
            "restored member {id}'s consistent index is {}, not the new log's snapshot index {snapshot_index} (the snapshot's was {})",
            dump.consistent_index, contents.consistent_index.index
        )
        .into());
    }
    Ok(())
}
