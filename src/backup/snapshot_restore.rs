//! Restore from a backend snapshot alone (etcdutl's `snapshot restore`):
//! a new cluster of `members` whose key space is the snapshot's, with no
//! WAL, no v2 snapshot and no membership of the old cluster.
//!
//! Each member's data directory is built the same way (as etcdutl runs once
//! per member with the same `--initial-cluster`):
//! - the backend: the snapshot's committed tables, membership tables
//!   rewritten to `members`, conf state all of them as voters, and the
//!   consistent index pointed at the new log's snapshot `(n, 1)`, where `n`
//!   is the member count. The snapshot's own index named an entry of the
//!   old log and is usually far higher: the index must be *lowered*
//!   ([`Backend::restore_consistent_index`]), or the new cluster would skip
//!   the v3 half of its entries up to the old index;
//! - a v2 snapshot at `(n, 1)` holding the membership only (v2 keys are not
//!   in a backend snapshot);
//! - a WAL: metadata (member and cluster id), the marker of that snapshot,
//!   and the hard state `{term 1, commit n}`.
//!
//! The image is built in memory and published like a backup's
//! ([`super::publish`]); the members then boot as usual and elect a leader.

use super::error::BackupError;
use super::publish;
use crate::backend::{Backend, BackendOptions, ConsistentIndex};
use crate::bugs::KnownBugs;
use crate::crash_point::NoCrash;
use crate::disk::{Disk, MemDisk};
use crate::member::{BACKEND_FILE, SNAP_DIR, V3Dump, WAL_DIR, WalMetadata, v3_dump};
use crate::membership::Cluster;
use crate::mvcc::Mvcc;
use crate::proto::{ConfState, HardState, Member as MemberInfo, SnapshotMarker};
use crate::snap::{Snapshot, Snapshotter};
use crate::v2store::V2Store;
use crate::wal::{Wal, WalOptions};
use prost::Message;
use std::path::Path;
use std::sync::Arc;

/// Whom a restored data directory is for.
#[derive(Debug, Clone)]
pub struct SnapshotRestoreOptions {
    /// The new cluster's members (etcd's `--initial-cluster`), all voters.
    pub members: Vec<MemberInfo>,
    /// Which of them this data directory is.
    pub member_id: u64,
    pub cluster_id: u64,
    /// Known-bug switches: `cindex-only-grows`.
    pub bugs: KnownBugs,
}

/// What a restore wrote.
#[derive(Debug, Clone)]
pub struct SnapshotRestoreReport {
    /// The consistent index the snapshot was taken at (old log).
    pub source_consistent_index: ConsistentIndex,
    /// The snapshot the new log starts from.
    pub snapshot: SnapshotMarker,
    /// The consistent index the restored backend holds (must equal
    /// `snapshot`'s index and term).
    pub consistent_index: ConsistentIndex,
}

/// What a backend snapshot holds: its key space and consistent index.
#[derive(Debug, Clone)]
pub struct SnapshotContents {
    pub v3: V3Dump,
    pub consistent_index: ConsistentIndex,
}

/// `etcdctl snapshot save` of a stopped member: a copy of its backend file
/// (never modifying it). What the page cache holds is what a reader sees.
pub fn save_backend_snapshot(src: &dyn Disk) -> Result<Vec<u8>, BackupError> {
    let path = Path::new(BACKEND_FILE);
    src.read_all(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            BackupError::MissingSource {
                file: path.to_path_buf(),
            }
        } else {
            BackupError::SourceIo {
                file: path.to_path_buf(),
                source: e,
            }
        }
    })
}

/// Opens a copy of the backend file `db` (redb checks and, after an unclean
/// shutdown, repairs the copy), returning the backend on that copy.
fn open_copy(db: &[u8]) -> Result<Backend, BackupError> {
    let staging: Arc<dyn Disk> = Arc::new(MemDisk::new());
    let path = Path::new(BACKEND_FILE);
    let build = |e| BackupError::build("staging copy", e);
    staging.create_dir_all(Path::new(SNAP_DIR)).map_err(build)?;
    staging.create(path).map_err(build)?;
    staging.write_at(path, 0, db).map_err(build)?;
    staging.sync(path).map_err(build)?;
    Backend::open(staging, path, BackendOptions::default(), Arc::new(NoCrash))
        .map_err(|e| BackupError::from_source_backend(BACKEND_FILE, e))
}

/// The key space and consistent index of the backend file `db`.
pub fn snapshot_contents(db: &[u8]) -> Result<SnapshotContents, BackupError> {
    let backend = open_copy(db)?;
    let mvcc = Mvcc::open(&backend).map_err(|e| BackupError::build("snapshot mvcc", e))?;
    let v3 = v3_dump(&mvcc, &backend).map_err(|e| BackupError::build("snapshot dump", e))?;
    Ok(SnapshotContents {
        v3,
        consistent_index: backend.consistent_index(),
    })
}

/// Writes into `dst` the data directory of member `opts.member_id` of a new
/// cluster restored from the backend file `db` (see the module comment).
/// `dst` must not hold a member; on error it still does not.
pub fn restore_snapshot(
    db: &[u8],
    dst: &dyn Disk,
    opts: &SnapshotRestoreOptions,
) -> Result<SnapshotRestoreReport, BackupError> {
    if !opts.members.iter().any(|m| m.id == opts.member_id) {
        return Err(BackupError::Build(format!(
            "member {:x} is not among the restored cluster's members",
            opts.member_id
        )));
    }
    publish::prepare(dst)?;
    let mut source = open_copy(db)?;
    let source_consistent_index = source.consistent_index();
    let bytes = source
        .snapshot_bytes()
        .map_err(|e| BackupError::from_source_backend(BACKEND_FILE, e))?;
    drop(source);

    let image = Arc::new(MemDisk::new());
    let disk: Arc<dyn Disk> = image.clone();
    let snapshot = SnapshotMarker {
        index: opts.members.len() as u64,
        term: 1,
        conf_state: Some(ConfState {
            voters: opts.members.iter().map(|m| m.id).collect(),
            ..ConfState::default()
        }),
    };
    let (v2, consistent_index) = restored_backend(&disk, &bytes, &snapshot, opts)?;
    Snapshotter::new(disk.clone(), Path::new(SNAP_DIR))
        .save(&Snapshot {
            marker: snapshot.clone(),
            data: v2.save(),
        })
        .map_err(|e| BackupError::build("snapshot", e))?;
    write_wal(disk, &snapshot, opts)?;
    publish::publish(&image, dst)?;
    Ok(SnapshotRestoreReport {
        source_consistent_index,
        snapshot,
        consistent_index,
    })
}

/// The image's backend: the snapshot's tables, the new membership, and the
/// consistent index lowered to the new log's snapshot. Returns the v2 store
/// holding the same membership.
fn restored_backend(
    disk: &Arc<dyn Disk>,
    bytes: &[u8],
    snapshot: &SnapshotMarker,
    opts: &SnapshotRestoreOptions,
) -> Result<(V2Store, ConsistentIndex), BackupError> {
    let mut backend = Backend::open(
        disk.clone(),
        Path::new(BACKEND_FILE),
        BackendOptions {
            bugs: opts.bugs,
            ..BackendOptions::default()
        },
        Arc::new(NoCrash),
    )
    .map_err(|e| BackupError::build("backend", e))?;
    backend
        .restore_from_bytes(bytes)
        .map_err(|e| BackupError::build("backend copy", e))?;
    let mut v2 = V2Store::new();
    let mut cluster = Cluster::recover_from_v2(&v2)?;
    let (first, rest) = opts
        .members
        .split_first()
        .ok_or_else(|| BackupError::Build("a restored cluster needs a member".into()))?;
    cluster.reset_to_single_member(&mut v2, &mut backend, first)?;
    for m in rest {
        cluster.add_member(&mut v2, &mut backend, m, true)?;
    }
    backend.restore_consistent_index(snapshot.index, snapshot.term);
    if let Some(cs) = &snapshot.conf_state {
        backend.set_conf_state(cs);
    }
    backend
        .force_commit()
        .map_err(|e| BackupError::build("backend commit", e))?;
    Ok((v2, backend.consistent_index()))
}

/// The image's WAL: metadata, the snapshot's marker, the hard state.
fn write_wal(
    disk: Arc<dyn Disk>,
    snapshot: &SnapshotMarker,
    opts: &SnapshotRestoreOptions,
) -> Result<(), BackupError> {
    let metadata = WalMetadata {
        member_id: opts.member_id,
        cluster_id: opts.cluster_id,
    };
    // One segment, so that publishing the WAL is one rename.
    let one_segment = WalOptions {
        segment_size: u64::MAX,
        bugs: KnownBugs::NONE,
    };
    let mut wal = Wal::create(
        disk,
        Path::new(WAL_DIR),
        &metadata.encode_to_vec(),
        one_segment,
        Arc::new(NoCrash),
    )
    .map_err(|e| BackupError::build("WAL", e))?;
    wal.save_snapshot_marker(snapshot)
        .map_err(|e| BackupError::build("WAL marker", e))?;
    let hard_state = HardState {
        term: snapshot.term,
        vote: 0,
        commit: snapshot.index,
    };
    wal.save(Some(&hard_state), &[])
        .map_err(|e| BackupError::build("WAL hard state", e))
}
