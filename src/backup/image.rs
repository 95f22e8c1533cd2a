//! Building the backup in memory: the v2 snapshot, the backend and the WAL
//! of a member of a new one-member cluster, laid out as a data directory.
//!
//! Nothing is written to the destination here; `publish` copies the image
//! once it is complete and verified.

use super::BackupOptions;
use super::error::BackupError;
use super::source::SourceState;
use super::translate::{Translated, translate};
use crate::backend::{Backend, BackendOptions, ConsistentIndex};
use crate::bugs::Bug;
use crate::crash_point::NoCrash;
use crate::disk::{Disk, MemDisk};
use crate::member::{BACKEND_FILE, SNAP_DIR, WAL_DIR, WalMetadata};
use crate::membership::Cluster;
use crate::proto::{ConfState, Entry, HardState, SnapshotMarker};
use crate::snap::{Snapshot, Snapshotter, name};
use crate::v2store::V2Store;
use crate::wal::{Wal, WalOptions};
use prost::Message;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// What the image holds, for the report.
#[derive(Debug, Clone)]
pub struct Image {
    pub disk: Arc<MemDisk>,
    pub snapshot: SnapshotMarker,
    pub hard_state: HardState,
    pub entries: u64,
    pub stripped: u64,
    pub dropped_uncommitted: u64,
    /// The consistent index the backend was written with.
    pub consistent_index: ConsistentIndex,
}

/// The DST WAL is always one segment, so that publishing it is one rename.
const ONE_SEGMENT: WalOptions = WalOptions {
    segment_size: u64::MAX,
    bugs: crate::bugs::KnownBugs::NONE,
};

/// The v2 store of the source snapshot, or an empty one.
fn source_v2(src: &SourceState) -> Result<V2Store, BackupError> {
    let Some(snap) = &src.snapshot else {
        return Ok(V2Store::new());
    };
    let file = PathBuf::from(SNAP_DIR).join(name::file_name(snap.marker.term, snap.marker.index));
    V2Store::recover(&snap.data).map_err(|e| BackupError::corrupt_v2(file, e))
}

/// Builds the image of the backup of `src`.
pub fn build(src: &SourceState, opts: &BackupOptions) -> Result<Image, BackupError> {
    let disk = Arc::new(MemDisk::new());
    let dyn_disk: Arc<dyn Disk> = disk.clone();
    let marker = src.marker();
    let commit = src.commit();

    // The log a new cluster replays: the committed entries after the
    // snapshot. The uncommitted tail is dropped, as etcd's
    // --force-new-cluster does on its first start: no quorum ever agreed
    // on it, and a one-member cluster would commit it at once.
    let committed: Vec<_> = src
        .entries
        .iter()
        .filter(|e| e.index <= commit)
        .cloned()
        .collect();
    let dropped_uncommitted = (src.entries.len() - committed.len()) as u64;
    let log: Translated = translate(marker.index, &committed, opts.bugs);
    let new_commit = log.map_index(commit);
    let hard_state = HardState {
        commit: new_commit,
        ..src.hard_state
    };
    let conf_state = ConfState {
        voters: vec![opts.new_member.id],
        ..ConfState::default()
    };

    // v2 and backend membership: the new member only.
    let mut v2 = source_v2(src)?;
    let file_of_snapshot =
        || PathBuf::from(SNAP_DIR).join(name::file_name(marker.term, marker.index));
    Cluster::recover_from_v2(&v2).map_err(|e| BackupError::corrupt_v2(file_of_snapshot(), e))?;
    let consistent_index = write_backend(dyn_disk.clone(), src, opts, &mut v2, &log, &conf_state)?;

    // The v2 snapshot, always written (also at index 0): boot rebuilds the
    // membership from it, and the stripped log no longer adds anyone.
    let snapshot = SnapshotMarker {
        index: marker.index,
        term: marker.term,
        conf_state: Some(conf_state),
    };
    Snapshotter::new(dyn_disk.clone(), Path::new(SNAP_DIR))
        .save(&Snapshot {
            marker: snapshot.clone(),
            data: v2.save(),
        })
        .map_err(|e| BackupError::build("snapshot", e))?;

    write_wal(dyn_disk, opts, &snapshot, &hard_state, &log.entries)?;
    Ok(Image {
        disk,
        snapshot,
        hard_state,
        entries: log.entries.len() as u64,
        stripped: log.stripped,
        dropped_uncommitted,
        consistent_index,
    })
}

/// The backup's backend: the source's copy (or an empty one) with the new
/// member as the whole membership and, unless the known bug leaves it, the
/// consistent index moved to the destination log; committed. Returns that
/// consistent index.
fn write_backend(
    disk: Arc<dyn Disk>,
    src: &SourceState,
    opts: &BackupOptions,
    v2: &mut V2Store,
    log: &Translated,
    conf_state: &ConfState,
) -> Result<ConsistentIndex, BackupError> {
    let mut backend = Backend::open(
        disk,
        Path::new(BACKEND_FILE),
        BackendOptions::default(),
        Arc::new(NoCrash),
    )
    .map_err(|e| BackupError::build("backend", e))?;
    if let Some((bytes, _)) = &src.backend {
        backend
            .restore_from_bytes(bytes)
            .map_err(|e| BackupError::build("backend copy", e))?;
    }
    super::membership::reset(v2, &mut backend, &opts.new_member)?;
    if !opts.bugs.has(Bug::BackupNoCindexUpdate) {
        // The backend holds the effects of the source entries up to its
        // consistent index (all of them, without v3: nothing will be
        // replayed into an empty key space). Point the index at the
        // destination entry that now ends that prefix, with that entry's
        // term, so replay applies exactly the entries after it.
        let held = match &src.backend {
            Some((_, ci)) => ci.index,
            None => src.commit(),
        };
        let index = log.map_index(held);
        let term = log.term_at(index, src.marker().term).ok_or_else(|| {
            BackupError::Build(format!("no destination entry at consistent index {index}"))
        })?;
        backend.set_consistent_index(index, term);
        backend.set_conf_state(conf_state);
    }
    backend
        .force_commit()
        .map_err(|e| BackupError::build("backend commit", e))?;
    Ok(backend.consistent_index())
}

/// The backup's WAL: the new member's metadata, the snapshot's marker (if
/// past 0), the hard state and the translated entries, in one segment.
fn write_wal(
    disk: Arc<dyn Disk>,
    opts: &BackupOptions,
    snapshot: &SnapshotMarker,
    hard_state: &HardState,
    entries: &[Entry],
) -> Result<(), BackupError> {
    let metadata = WalMetadata {
        member_id: opts.new_member.id,
        cluster_id: opts.new_cluster_id,
    };
    let mut wal = Wal::create(
        disk,
        Path::new(WAL_DIR),
        &metadata.encode_to_vec(),
        ONE_SEGMENT,
        Arc::new(NoCrash),
    )
    .map_err(|e| BackupError::build("WAL", e))?;
    if snapshot.index > 0 {
        wal.save_snapshot_marker(snapshot)
            .map_err(|e| BackupError::build("WAL marker", e))?;
    }
    wal.save(Some(hard_state), entries)
        .map_err(|e| BackupError::build("WAL entries", e))?;
    Ok(())
}
