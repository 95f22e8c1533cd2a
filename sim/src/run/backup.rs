//! `backup --with-v3` inside a run: every member stops, one member's data
//! dir is backed up and restored as a one-member cluster on a fresh disk,
//! checked against its source, and grown back to the cluster's size by
//! conf changes while the workload goes on. A scenario step asks for it;
//! a random run draws it for a share of its seeds (see [`BackupEvent`],
//! which also draws the random run's snapshot restore, `restore.rs`).
//!
//! The identity rules are `restore.rs`'s: the same member ids, a new
//! cluster id; the source keeps its id as the only member of the new
//! cluster, the others are wiped and join again with empty disks (each
//! added by an `AddNode` proposed on the leader, then started once the
//! leader has applied it; the leader takes a fresh v2 snapshot first, since
//! raft-rs ignores a snapshot whose conf state does not name the receiver).
//!
//! The backup runs without the library's own verification (etcd's backup
//! has none): the simulator's comparison is the gate. At the same applied
//! index the restored member must equal its source outside membership
//! (applied and consistent index and term, v3 key space, v2 values outside
//! `/0/members`), and its membership must be itself alone, in v2, in the
//! backend tables and in the backend's conf state.

use super::restore::{RestoreCheck, boot_copy, new_cluster, restore_generation};
use super::supervisor::Supervisor;
use crate::checker::{Invariant, Violation};
use crate::cluster::slot::Down;
use crate::cluster::world::{WorldState, conf_change_request, member_info};
use crate::rng::{STREAM_CLUSTER_EVENTS, stream};
use crate::scenario_file::Step;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use replica::backup::check::{single_voter, v2_without_membership};
use replica::backup::{BackupOptions, backup};
use replica::crash_point::NoCrash;
use replica::disk::Disk;
use replica::member::{Member, StateDump};
use replica::proto::ConfChangeKind;
use std::collections::VecDeque;
use std::sync::Arc;

/// How long the restored cluster may take to grow back to its size.
const GROW_LIMIT_MS: u64 = 20_000;
/// How long an `AddNode` proposal may go unapplied before it is proposed
/// again (a lost message, a new leader).
const PROPOSE_AGAIN_MS: u64 = 1_000;
/// Request ids of the grow-back's conf changes (apart from the clients').
const GROW_ID_BASE: u64 = 1 << 41;

/// The random run's restore events: one seed in [`BACKUP_SHARE`] restores
/// a backup at a time drawn from the second quarter of the run; one in
/// [`SNAPSHOT_RESTORE_SHARE`] (its own stream) restores the cluster from a
/// backend snapshot in the third quarter. The source is a running,
/// undamaged member.
pub(crate) struct BackupEvent {
    rng: ChaCha8Rng,
    pub(super) at_ms: Option<u64>,
    snapshot_at_ms: Option<u64>,
}

/// One seed in this many has a backup restored during its random run.
pub(crate) const BACKUP_SHARE: u32 = 8;
/// One seed in this many has its cluster restored from a backend snapshot.
pub(crate) const SNAPSHOT_RESTORE_SHARE: u32 = 16;
/// The snapshot restore's stream (apart from the backup's).
const STREAM_SNAPSHOT_RESTORE: u64 = 42;

/// Runs shorter than this draw no backup or snapshot restore: the restore
/// (stop, drain, restore, restart, grow back) must be over before the
/// random phase ends, because the quiesce restarts every stopped member
/// and would start a second process beside a restored one.
pub(crate) const MIN_RUN_MS: u64 = 4_000;

impl BackupEvent {
    /// Draws whether and when the run of `seed` (lasting `duration_ms`)
    /// restores a backup or a backend snapshot, from the run's
    /// cluster-events streams.
    pub(crate) fn draw(seed: u64, duration_ms: u64) -> BackupEvent {
        let mut rng = stream(seed, STREAM_CLUSTER_EVENTS);
        let at_ms = (duration_ms >= MIN_RUN_MS && rng.random_ratio(1, BACKUP_SHARE))
            .then(|| rng.random_range(duration_ms / 4..duration_ms / 2));
        let mut snap = stream(seed, STREAM_SNAPSHOT_RESTORE);
        let snapshot_at_ms = (duration_ms >= MIN_RUN_MS
            && snap.random_ratio(1, SNAPSHOT_RESTORE_SHARE))
        .then(|| snap.random_range(duration_ms / 2..duration_ms * 3 / 4));
        BackupEvent {
            rng,
            at_ms,
            snapshot_at_ms,
        }
    }
}

/// The restored cluster growing back to its size, one joiner at a time.
pub(crate) struct GrowBack {
    /// The restored leader compacted its log to a fresh snapshot (as
    /// `replica::backup::restore` does): joiners must start from it.
    compacted: bool,
    joiners: VecDeque<u64>,
    current: Option<Joining>,
    deadline_ms: u64,
    next_request_id: u64,
}

/// The member being added now.
struct Joining {
    id: u64,
    proposed_at: Option<u64>,
    /// The leader's applied index once the add took effect: the joiner has
    /// caught up when it reaches it.
    added_at: Option<u64>,
}

/// A restore waiting for the network to drain.
pub(crate) struct PendingBackup {
    source: u64,
    members: Vec<u64>,
    at_ms: u64,
    /// From the source's backend file alone (else its backup).
    snapshot: bool,
}

impl Supervisor {
    /// Starts a backup restore of `source`: the cluster stops now, the
    /// backup is taken once the network drained (at a later poll), then the
    /// restored cluster grows back. Recorded as a `backup_restore` step.
    pub(crate) fn begin_backup_restore(&mut self, source: u64) {
        self.begin_restore(source, false);
    }

    /// Stops the cluster for a restore of `source`'s backup, or (with
    /// `snapshot`) of its backend file alone, recorded as the step that
    /// replays it; the restore itself waits for the network to drain.
    fn begin_restore(&mut self, source: u64, snapshot: bool) {
        let now = self.now_ms();
        let members = self.cluster_members();
        if let Some(s) = &mut self.schedule {
            for id in &members {
                s.disarmed(*id);
            }
            let step = if snapshot {
                Step::SnapshotRestore {
                    from: source.into(),
                }
            } else {
                Step::BackupRestore {
                    member: source.into(),
                }
            };
            s.happened(now, source, step);
        }
        let why = if snapshot {
            "a snapshot restore"
        } else {
            "a backup"
        };
        self.stop_cluster(&members, why);
        self.pending_backup = Some(PendingBackup {
            source,
            members,
            at_ms: now + super::DRAIN_MS,
            snapshot,
        });
    }

    /// Whether a backup restore is under way (stopped, or growing back).
    pub(crate) fn restoring(&self) -> bool {
        self.pending_backup.is_some() || self.grow_back.is_some()
    }

    /// One poll's share of the backup restore and the random backup event.
    pub(crate) fn poll_backup(&mut self) {
        let now = self.now_ms();
        if self.pending_backup.as_ref().is_some_and(|p| now >= p.at_ms)
            && let Some(p) = self.pending_backup.take()
        {
            if p.snapshot {
                self.snapshot_restore(p.source, &p.members);
            } else {
                self.backup_restore(p.source, &p.members);
            }
        }
        self.grow_back_step();
        let Some(e) = &self.backup_event else {
            return;
        };
        let (backup, snapshot) = (e.at_ms, e.snapshot_at_ms);
        let quiet = now < self.random_until && !self.restoring() && !self.churning();
        for (at, is_snapshot) in [(backup, false), (snapshot, true)] {
            if !(quiet && at.is_some_and(|at| now >= at)) {
                continue;
            }
            if let Some(e) = &mut self.backup_event {
                *(if is_snapshot {
                    &mut e.snapshot_at_ms
                } else {
                    &mut e.at_ms
                }) = None;
            }
            if let Some(source) = self.draw_backup_source() {
                self.begin_restore(source, is_snapshot);
            }
            return;
        }
    }

    /// A running, undamaged member to back up, from the event's stream.
    fn draw_backup_source(&mut self) -> Option<u64> {
        let candidates: Vec<u64> = {
            let w = self.world.lock();
            w.members
                .iter()
                .filter(|(_, s)| s.is_running() && !s.damaged)
                .map(|(id, _)| *id)
                .collect()
        };
        let e = self.backup_event.as_mut()?;
        if candidates.is_empty() {
            return None;
        }
        Some(candidates[e.rng.random_range(0..candidates.len())])
    }

    /// Backs up the stopped `source`, restores it on a fresh disk as the
    /// only member of a new cluster, checks it, and starts growing back.
    fn backup_restore(&mut self, source: u64, members: &[u64]) {
        let now = self.now_ms();
        let mut w = self.world.lock();
        let Some(old) = w.slot(source).map(|s| s.disk.clone()) else {
            return;
        };
        let checked = source_state(&w, old.mem().fork()).and_then(|want| {
            let cluster_id = restore_generation(&w);
            wipe_all(&mut w, members, cluster_id);
            let opts = BackupOptions {
                with_v3: true,
                new_member: member_info(source),
                new_cluster_id: cluster_id,
                verify: replica::verify::VerifyMode::Off,
                bugs: w.cfg.bugs,
            };
            let dst = w.slot(source).map(|s| s.disk.clone());
            let dst = dst.ok_or_else(|| format!("member {source} has no slot"))?;
            backup(old.mem(), dst.as_ref(), &opts)
                .map_err(|e| format!("backup of member {source}: {e}"))?;
            check_backup(&w, source, &want).map(|()| want)
        });
        let want = match checked {
            Ok(want) => want,
            Err(check) => {
                w.violation(check.into_violation(now, source));
                for id in members {
                    if let Some(slot) = w.slot_mut(*id) {
                        slot.down = Some(Down::Broken);
                    }
                }
                drop(w);
                members.iter().for_each(|id| {
                    self.held_down.remove(id);
                });
                return;
            }
        };
        w.stats.backup_restores += 1;
        new_cluster(&mut w, want.v3.revision);
        let joiners: VecDeque<u64> = members.iter().copied().filter(|id| *id != source).collect();
        for id in &joiners {
            if let Some(slot) = w.slot_mut(*id) {
                slot.started = false;
                slot.joining = true;
                slot.down = None;
            }
        }
        w.event(
            now,
            Some(source),
            format_args!(
                "backup of member {source} at applied index {} restored as a one-member cluster; {joiners:?} join again",
                want.applied_index
            ),
        );
        drop(w);
        for id in &joiners {
            self.held_down.remove(id);
        }
        self.start_restored(&[source]);
        self.grow_back = Some(GrowBack {
            compacted: false,
            joiners,
            current: None,
            deadline_ms: now + GROW_LIMIT_MS,
            next_request_id: GROW_ID_BASE,
        });
    }

    /// Advances the grow-back by what the cluster allows now: propose the
    /// next joiner's `AddNode` on the leader, start it once applied, wait
    /// until it has caught up, then the next.
    fn grow_back_step(&mut self) {
        let now = self.now_ms();
        let Some(g) = &mut self.grow_back else {
            return;
        };
        if now > g.deadline_ms {
            let left: Vec<u64> = g
                .current
                .iter()
                .map(|j| j.id)
                .chain(g.joiners.iter().copied())
                .collect();
            self.grow_back = None;
            self.world.lock().violation(Violation {
                invariant: Invariant::Convergence,
                time_ms: now,
                member: None,
                detail: format!(
                    "the restored cluster did not grow back within {GROW_LIMIT_MS} ms: {left:?} not joined"
                ),
                diffs: Vec::new(),
            });
            return;
        }
        let Some(leader) = self.world.lock().leader() else {
            return;
        };
        if !g.compacted {
            g.compacted = true;
            self.compact_restored_leader(leader);
            return;
        }
        let Some(g) = &mut self.grow_back else {
            return;
        };
        let Some(j) = &mut g.current else {
            match g.joiners.pop_front() {
                Some(id) => {
                    g.current = Some(Joining {
                        id,
                        proposed_at: None,
                        added_at: None,
                    })
                }
                None => {
                    self.grow_back = None;
                    let mut w = self.world.lock();
                    w.event(now, None, format_args!("the restored cluster grew back"));
                }
            }
            return;
        };
        let id = j.id;
        match j.added_at {
            Some(index) => {
                let caught_up = self.world.lock().has_applied(id, index);
                if caught_up {
                    g.current = None;
                    self.event(Some(id), format_args!("joined the restored cluster"));
                }
            }
            None => self.add_joiner(leader, now),
        }
    }

    /// The restored leader's log compacted to a fresh snapshot: its
    /// membership entries are no-ops, so a joiner fed the log from index 1
    /// would never learn the restored member. A failure stops the leader
    /// like any crash (its next boot has no joiner yet either).
    fn compact_restored_leader(&mut self, leader: u64) {
        let now = self.now_ms();
        let mut w = self.world.lock();
        let result = w
            .slot_mut(leader)
            .and_then(|s| s.node.as_mut())
            .map(|n| n.snapshot_and_compact());
        match result {
            Some(Ok(index)) => w.event(
                now,
                Some(leader),
                format_args!("restored leader compacted its log to a snapshot at {index}"),
            ),
            Some(Err(e)) if e.crashed().is_some() => w.member_stopped(leader, now, &e.to_string()),
            Some(Err(e)) => w.event(now, Some(leader), format_args!("compaction failed: {e}")),
            None => {}
        }
    }

    /// The current joiner: proposed (again) on the leader, or, once the
    /// leader applied its add, started after a fresh leader snapshot.
    fn add_joiner(&mut self, leader: u64, now: u64) {
        let Some(g) = &mut self.grow_back else {
            return;
        };
        let Some(j) = &mut g.current else {
            return;
        };
        let id = j.id;
        let mut w = self.world.lock();
        let Some(node) = w.slot_mut(leader).and_then(|s| s.node.as_mut()) else {
            return;
        };
        if node.member().stores().cluster.members.contains_key(&id) {
            j.added_at = Some(node.member().applied_index());
            drop(w);
            // A failed snapshot stops the leader like any crash; the
            // joiner then catches up from the next leader.
            let _ = self.force_snapshot(leader);
            self.start_joiner(id);
            return;
        }
        if j.proposed_at.is_some_and(|at| now < at + PROPOSE_AGAIN_MS) {
            return;
        }
        j.proposed_at = Some(now);
        g.next_request_id += 1;
        let cc = conf_change_request(ConfChangeKind::AddNode, id, false, g.next_request_id);
        // A refused proposal (a conf change still pending, leadership
        // lost) is proposed again later.
        let _ = node.propose_conf_change(&cc);
        w.event(
            now,
            Some(leader),
            format_args!("proposed adding member {id}"),
        );
    }

    /// Starts a wiped member's process: it boots empty and joins.
    fn start_joiner(&mut self, id: u64) {
        let mid = {
            let mut w = self.world.lock();
            let Some(slot) = w.slot_mut(id) else {
                return;
            };
            slot.started = true;
            slot.madsim_id
        };
        match mid {
            Some(mid) => self.handle.restart(mid),
            None => self.start_member(id),
        }
    }
}

/// The source's own state: a copy of its disk booted with the run's
/// settings (replaying its committed log).
fn source_state(w: &WorldState, copy: replica::disk::MemDisk) -> Result<StateDump, RestoreCheck> {
    let copy: Arc<dyn Disk> = Arc::new(copy);
    let store = w.cfg.node_config(1).store;
    let (member, _) = Member::open(copy, store, Arc::new(NoCrash), 0)
        .map_err(|e| format!("the backup's source does not boot: {e}"))?;
    Ok(member
        .state_dump()
        .map_err(|e| format!("the backup's source: state dump: {e}"))?)
}

/// Fresh disks for every member, all of the new cluster.
fn wipe_all(w: &mut WorldState, members: &[u64], cluster_id: u64) {
    let cfg = w.cfg.clone();
    for &id in members {
        if let Some(slot) = w.slot_mut(id) {
            slot.wipe(&cfg, id);
            slot.cluster_id = cluster_id;
        }
    }
}

/// The restored member against its source (see the module comment).
fn check_backup(w: &WorldState, id: u64, want: &StateDump) -> Result<(), RestoreCheck> {
    let got = boot_copy(w, id)?;
    let at = |what: &str| format!("restored backup of member {id}: {what}");
    let same_place = (got.applied_index, got.consistent_index, got.consistent_term)
        == (
            want.applied_index,
            want.consistent_index,
            want.consistent_term,
        );
    if !same_place {
        return Err(at(&format!(
            "applied index {}, consistent index {} (term {}); the source is at {}, {} (term {})",
            got.applied_index,
            got.consistent_index,
            got.consistent_term,
            want.applied_index,
            want.consistent_index,
            want.consistent_term
        ))
        .into());
    }
    if got.v3 != want.v3 {
        return Err(RestoreCheck::new(
            at("the v3 key space differs from the source's"),
            crate::diff::diff(&got.v3, &want.v3),
        ));
    }
    let (got_v2, want_v2) = (
        v2_without_membership(&got.v2),
        v2_without_membership(&want.v2),
    );
    if got_v2 != want_v2 {
        return Err(RestoreCheck::new(
            at("v2 values outside membership differ from the source's"),
            crate::diff::diff(&got_v2, &want_v2),
        ));
    }
    let alone = Some(single_voter(id));
    if got.conf_state != alone
        || got.cluster.conf_state() != single_voter(id)
        || got.backend_membership.members.len() != 1
        || !got.backend_membership.removed.is_empty()
    {
        return Err(at(&format!(
            "membership is not member {id} alone: backend conf state {:?}, members {:?}, backend members {:?}",
            got.conf_state,
            got.cluster.members.keys().collect::<Vec<_>>(),
            got.backend_membership.members.keys().collect::<Vec<_>>()
        ))
        .into());
    }
    Ok(())
}
