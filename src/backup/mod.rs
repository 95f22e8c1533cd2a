//! Offline backup (`backup --with-v3`) and restore into a new one-member
//! cluster, after etcdutl's `backup` and `--force-new-cluster`.
//!
//! [`backup`] reads a stopped member's data directory (never writing it),
//! and writes into the backup directory the data directory of the only
//! member of a new cluster:
//! - the newest v2 snapshot the WAL has a marker for, its membership
//!   replaced by the new member (conf state: that single voter);
//! - a fresh WAL (new metadata: new member and cluster ids) holding the
//!   source's hard state and its committed entries after the snapshot, each
//!   membership entry replaced by a no-op **at the same index and term**
//!   (see [`translate`]: never removed, never shifted);
//! - with `with_v3`, the backend's committed tables (read through a redb
//!   read transaction), membership tables rewritten to the new member,
//!   consistent index pointing at the same entry as before (indexes do not
//!   move) and conf state set to the single voter; without it, an empty key
//!   space standing at the commit index (nothing to replay into v3).
//!
//! The result is built in memory, booted and checked there
//! ([`check::verify_image`], when verification is on), and only then
//! written to the destination in an order that makes it appear atomically
//! ([`publish`]). [`restore`] starts a raft node on it that elects itself;
//! other members then join through ordinary conf changes.
//!
//! # For the simulator's scenario step `backup` / `restore`
//!
//! With the source member stopped (its disk quiet):
//! 1. `let src_state = source::read(src_disk, true)?` and
//!    `let want = check::expected_state(&src_state, &opts)?` — the state the
//!    backup must boot into (the source's committed log replayed with its
//!    membership entries as no-ops, membership reset to `opts.new_member`);
//! 2. `backup(src_disk, dst_disk, &opts)?` with `opts.bugs` from the
//!    scenario (`backup-shift-indexes`, `backup-no-cindex-update`); an `Err`
//!    of kind `Verify` is the gate catching a bad backup;
//! 3. `restore(dst_disk, NodeConfig::new(opts.new_member.id, ..), hook,
//!    now)?` — a leader of a one-member cluster that has applied one more
//!    (empty) entry than `want.applied_index`, its log compacted to a fresh
//!    snapshot (`Node::snapshot_and_compact`: the log's membership entries
//!    are no-ops, so a joiner must start from the snapshot); its `state_dump()` must equal
//!    `want` except `applied_index`/`consistent_index`/`consistent_term`
//!    (one entry later), and `consistent_index == applied_index`;
//! 4. grow it with `propose_conf_change(AddNode)` and `Node::bootstrap`
//!    of each joiner with no initial members, calling `force_snapshot()` on
//!    the leader after each add (raft-rs ignores a snapshot whose conf state
//!    does not name the receiver, and the node reuses its last payload).
//!
//! Index `i` of the backup names the same entry as index `i` of the
//! source, so the v3 key space and the v2 values outside `/0/members` and
//! `/0/removed_members` ([`check::v2_without_membership`]) can be compared
//! with the source's history at the same applied index; the v2 index and
//! the membership differ by design (compare those with `want`).
//!
//! [`snapshot_restore`] is the other way back: a new cluster from a backend
//! snapshot alone (etcdutl's `snapshot restore`).

pub mod check;
mod error;
mod image;
mod membership;
mod publish;
pub mod snapshot_restore;
pub mod source;
pub mod translate;

#[cfg(test)]
mod tests;

pub use error::{BackupError, RestoreError};
pub use snapshot_restore::{
    SnapshotRestoreOptions, SnapshotRestoreReport, restore_snapshot, save_backend_snapshot,
};

use crate::backend::ConsistentIndex;
use crate::bugs::KnownBugs;
use crate::crash_point::CrashHook;
use crate::disk::Disk;
use crate::member::StateDump;
use crate::node::{Node, NodeConfig};
use crate::proto::{HardState, Member as MemberInfo, SnapshotMarker};
use crate::verify::VerifyMode;
use crate::wal::TailRepair;
use std::sync::Arc;

/// What to back up, and as whom.
#[derive(Debug, Clone)]
pub struct BackupOptions {
    /// Copy the v3 backend (etcd's `--with-v3`).
    pub with_v3: bool,
    /// The only member of the new cluster.
    pub new_member: MemberInfo,
    pub new_cluster_id: u64,
    /// Boot-check the result before publishing it (`REPLICA_VERIFY=all`).
    pub verify: VerifyMode,
    /// Known-bug switches: `backup-shift-indexes`, `backup-no-cindex-update`.
    pub bugs: KnownBugs,
}

impl BackupOptions {
    /// A `--with-v3` backup for a new member `member_id` of cluster
    /// `cluster_id`, verified when `REPLICA_VERIFY=all`.
    pub fn new(member_id: u64, cluster_id: u64) -> Self {
        BackupOptions {
            with_v3: true,
            new_member: MemberInfo {
                id: member_id,
                name: "backup".into(),
                peer_urls: vec!["http://use-restore-to-start:2380".into()],
                client_urls: Vec::new(),
                is_learner: false,
            },
            new_cluster_id: cluster_id,
            verify: VerifyMode::from_env(),
            bugs: KnownBugs::NONE,
        }
    }
}

/// What a backup wrote.
#[derive(Debug, Clone)]
pub struct BackupReport {
    /// The snapshot the backup starts from (index 0: none in the source).
    pub snapshot: SnapshotMarker,
    /// The destination's hard state.
    pub hard_state: HardState,
    /// Entries written after the snapshot.
    pub entries: u64,
    /// Membership entries replaced by no-ops (or dropped, with the shift
    /// bug).
    pub stripped: u64,
    /// Uncommitted entries left out.
    pub dropped_uncommitted: u64,
    /// The source backend's consistent index (`None` without v3).
    pub source_consistent_index: Option<ConsistentIndex>,
    /// The destination backend's consistent index.
    pub consistent_index: ConsistentIndex,
    /// A torn tail of the source's WAL that was left out.
    pub source_wal_repair: Option<TailRepair>,
    /// The state the backup booted into during verification (`None` when
    /// verification is off).
    pub verified_state: Option<StateDump>,
}

/// Backs up the member in `src` into `dst` (see the module comment). `dst`
/// must not hold a member; on error it still does not.
pub fn backup(
    src: &dyn Disk,
    dst: &dyn Disk,
    opts: &BackupOptions,
) -> Result<BackupReport, BackupError> {
    publish::prepare(dst)?;
    let source = source::read(src, opts.with_v3)?;
    let image = image::build(&source, opts)?;
    let verified_state = if opts.verify.enabled() {
        Some(check::verify_image(&image.disk, opts)?)
    } else {
        None
    };
    publish::publish(&image.disk, dst)?;
    Ok(BackupReport {
        snapshot: image.snapshot,
        hard_state: image.hard_state,
        entries: image.entries,
        stripped: image.stripped,
        dropped_uncommitted: image.dropped_uncommitted,
        source_consistent_index: source.backend.as_ref().map(|(_, ci)| *ci),
        consistent_index: image.consistent_index,
        source_wal_repair: source.wal_repair,
        verified_state,
    })
}

/// How many Ready rounds a restored member gets to elect itself.
const ELECTION_ROUNDS: usize = 16;

/// Starts the backup in `dst` as the leader of a new one-member cluster
/// (etcd's `--force-new-cluster` start): checks that it was made for
/// `config.id` and that this member is its only voter, opens it (replaying
/// the WAL), campaigns, and returns once the member leads and has applied
/// its leader's first entry. Grow the cluster with `propose_conf_change`.
pub fn restore(
    dst: Arc<dyn Disk>,
    config: NodeConfig,
    hook: Arc<dyn CrashHook>,
    now_ms: u64,
) -> Result<Node, RestoreError> {
    let id = config.id;
    let mut node = Node::open(dst, config, hook, now_ms)?;
    let backup_id = node.recovered().metadata.member_id;
    if backup_id != id {
        return Err(RestoreError::MemberMismatch {
            backup: backup_id,
            asked: id,
        });
    }
    let cs = node.member().stores().cluster.conf_state();
    if cs != check::single_voter(id) {
        return Err(RestoreError::NotSingleVoter {
            id,
            voters: cs.voters,
            learners: cs.learners,
        });
    }
    node.campaign()?;
    for _ in 0..ELECTION_ROUNDS {
        node.handle_ready(now_ms)?;
        if node.is_leader() && node.member().applied_index() >= node.commit_index() {
            // Joiners must start from the snapshot, which holds the new
            // membership, never from log entries before it.
            node.snapshot_and_compact()?;
            return Ok(node);
        }
    }
    Err(RestoreError::NoLeader(id))
}
