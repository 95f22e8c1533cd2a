//! Reading the source data directory without changing it.
//!
//! The store's readers repair as they go (a torn WAL tail is truncated, a
//! corrupt snapshot is renamed `*.broken`, redb rolls back a half-written
//! commit). A backup must not touch its source, so the files are first
//! copied byte for byte into an in-memory staging disk and the readers run
//! there. The backend is then read through a redb read transaction on the
//! staged copy ([`Backend::snapshot_bytes`]): what the backup keeps is a
//! committed state redb has checked, never the raw bytes of the file.

use super::error::BackupError;
use crate::backend::{Backend, BackendOptions, ConsistentIndex};
use crate::crash_point::NoCrash;
use crate::disk::{Disk, MemDisk};
use crate::member::{BACKEND_FILE, SNAP_DIR, WAL_DIR};
use crate::proto::{Entry, HardState, SnapshotMarker};
use crate::snap::{Snapshot, Snapshotter, name};
use crate::wal::{TailRepair, Wal, WalOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Everything a backup takes from the source.
#[derive(Debug)]
pub struct SourceState {
    /// The newest v2 snapshot the WAL has a marker for (`None`: boot would
    /// start from an empty v2 store at index 0).
    pub snapshot: Option<Snapshot>,
    pub hard_state: HardState,
    /// WAL entries after the snapshot, overwrites after term changes
    /// resolved, committed or not.
    pub entries: Vec<Entry>,
    /// A torn WAL tail that the staged copy had cut off (the source's own
    /// boot would do the same).
    pub wal_repair: Option<TailRepair>,
    /// The backend's committed tables as a checked blob, and the consistent
    /// index they are at (`None` unless asked for).
    pub backend: Option<(Vec<u8>, ConsistentIndex)>,
}

impl SourceState {
    /// The snapshot marker replay starts after.
    pub fn marker(&self) -> SnapshotMarker {
        self.snapshot
            .as_ref()
            .map(|s| s.marker.clone())
            .unwrap_or_default()
    }

    /// The commit index boot would use: a snapshot with a WAL marker is
    /// committed even if the hard state saved after it was lost.
    pub fn commit(&self) -> u64 {
        self.hard_state.commit.max(self.marker().index)
    }
}

fn io_err(file: &Path, e: io::Error) -> BackupError {
    if e.kind() == io::ErrorKind::NotFound {
        BackupError::MissingSource {
            file: file.to_path_buf(),
        }
    } else {
        BackupError::SourceIo {
            file: file.to_path_buf(),
            source: e,
        }
    }
}

/// Copies one source file into the staging disk.
fn stage_file(src: &dyn Disk, staging: &MemDisk, path: &Path) -> Result<(), BackupError> {
    let bytes = src.read_all(path).map_err(|e| io_err(path, e))?;
    let build = |e| BackupError::build("staging copy", e);
    staging
        .create_dir_all(crate::disk::parent_dir(path))
        .map_err(build)?;
    staging.create(path).map_err(build)?;
    staging.write_at(path, 0, &bytes).map_err(build)?;
    staging.sync(path).map_err(build)?;
    staging
        .sync_dir(crate::disk::parent_dir(path))
        .map_err(build)
}

/// Copies the WAL segments, the snapshot files and (when asked) the
/// backend files of `src` into a fresh staging disk.
fn stage(src: &dyn Disk, with_v3: bool) -> Result<MemDisk, BackupError> {
    let staging = MemDisk::new();
    let wal_dir = Path::new(WAL_DIR);
    let segments: Vec<String> = src
        .list(wal_dir)
        .map_err(|e| io_err(wal_dir, e))?
        .into_iter()
        .filter(|n| crate::wal::SegmentName::parse(n).is_some())
        .collect();
    if segments.is_empty() {
        return Err(BackupError::MissingSource {
            file: wal_dir.to_path_buf(),
        });
    }
    for name in &segments {
        stage_file(src, &staging, &wal_dir.join(name))?;
    }
    let snap_dir = Path::new(SNAP_DIR);
    for name in src.list(snap_dir).map_err(|e| io_err(snap_dir, e))? {
        let is_snapshot = name::parse(&name).is_some();
        let is_backend = with_v3 && (name == "db" || name.ends_with(".snap.db"));
        if is_snapshot || is_backend {
            stage_file(src, &staging, &snap_dir.join(name))?;
        }
    }
    if with_v3 && !staging.exists(Path::new(BACKEND_FILE)).unwrap_or(false) {
        return Err(BackupError::MissingSource {
            file: PathBuf::from(BACKEND_FILE),
        });
    }
    Ok(staging)
}

/// The newest snapshot file whose (index, term) has a WAL marker. Unlike
/// boot, a corrupt candidate is an error, not a reason to fall back: a
/// backup should not silently start from an older state than the member's.
fn newest_snapshot(
    staging: &Arc<MemDisk>,
    markers: &[SnapshotMarker],
) -> Result<Option<Snapshot>, BackupError> {
    let snapshotter = Snapshotter::new(staging.clone(), Path::new(SNAP_DIR));
    for file_name in snapshotter.list().map_err(BackupError::from_source_snap)? {
        let Some((term, index)) = name::parse(&file_name) else {
            continue;
        };
        if !markers.iter().any(|m| m.index == index && m.term == term) {
            continue;
        }
        return snapshotter
            .load(&file_name)
            .map(Some)
            .map_err(BackupError::from_source_snap);
    }
    Ok(None)
}

/// The backend as of its last commit, finishing an interrupted leader
/// snapshot install the way boot does (a `<index>.snap.db` beside a backend
/// behind the snapshot).
fn read_backend(
    staging: &Arc<MemDisk>,
    marker: &SnapshotMarker,
) -> Result<(Vec<u8>, ConsistentIndex), BackupError> {
    let disk: Arc<dyn Disk> = staging.clone();
    let mut backend = Backend::open(
        disk,
        Path::new(BACKEND_FILE),
        BackendOptions::default(),
        Arc::new(NoCrash),
    )
    .map_err(|e| BackupError::from_source_backend(BACKEND_FILE, e))?;
    if backend.consistent_index().index < marker.index {
        let received = format!("{SNAP_DIR}/{:016x}.snap.db", marker.index);
        if staging.exists(Path::new(&received)).unwrap_or(false) {
            let bytes = staging
                .read_all(Path::new(&received))
                .map_err(|e| io_err(Path::new(&received), e))?;
            backend
                .restore_from_bytes(&bytes)
                .map_err(|e| BackupError::from_source_backend(&received, e))?;
        }
    }
    let bytes = backend
        .snapshot_bytes()
        .map_err(|e| BackupError::from_source_backend(BACKEND_FILE, e))?;
    Ok((bytes, backend.consistent_index()))
}

/// Reads the source (read-only) and checks that its parts agree.
pub fn read(src: &dyn Disk, with_v3: bool) -> Result<SourceState, BackupError> {
    let staging = Arc::new(stage(src, with_v3)?);
    let wal_dir = Path::new(WAL_DIR);
    let markers = Wal::snapshot_markers(staging.as_ref(), wal_dir, crate::bugs::KnownBugs::NONE)
        .map_err(BackupError::from_source_wal)?;
    let snapshot = newest_snapshot(&staging, &markers)?;
    let marker = snapshot
        .as_ref()
        .map(|s| s.marker.clone())
        .unwrap_or_default();
    let disk: Arc<dyn Disk> = staging.clone();
    let (_wal, contents) = Wal::open(
        disk,
        wal_dir,
        &marker,
        WalOptions::default(),
        Arc::new(NoCrash),
    )
    .map_err(BackupError::from_source_wal)?;
    let backend = if with_v3 {
        Some(read_backend(&staging, &marker)?)
    } else {
        None
    };
    let state = SourceState {
        snapshot,
        hard_state: contents.hard_state,
        entries: contents.entries,
        wal_repair: contents.repaired,
        backend,
    };
    check_consistent(&state)?;
    Ok(state)
}

/// The source invariants a backup relies on (the same ones boot verifies).
fn check_consistent(state: &SourceState) -> Result<(), BackupError> {
    let marker = state.marker();
    let commit = state.commit();
    let last = state.entries.last().map_or(marker.index, |e| e.index);
    if commit > last {
        return Err(BackupError::InconsistentSource(format!(
            "hard state commit {commit} is past the last WAL entry {last}"
        )));
    }
    if let Some((_, ci)) = &state.backend {
        if ci.index < marker.index {
            return Err(BackupError::InconsistentSource(format!(
                "backend consistent index {} is behind the v2 snapshot at {}",
                ci.index, marker.index
            )));
        }
        if ci.index > commit {
            return Err(BackupError::InconsistentSource(format!(
                "backend consistent index {} is past the commit index {commit}",
                ci.index
            )));
        }
    }
    Ok(())
}
