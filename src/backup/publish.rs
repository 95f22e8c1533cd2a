//! Writing the finished image into the destination so that a crash at any
//! point leaves either the complete backup or no member at all.
//!
//! A data directory is a member only if `member/wal` holds a segment
//! ([`Member::is_initialized`](crate::member::Member::is_initialized); boot
//! refuses anything else as `NotInitialized`). The image's WAL is a single
//! segment, so its rename is the commit point:
//!
//! 1. every file is written as `<final name>.tmp` and fsynced;
//! 2. the snapshot file and the backend are renamed to their final names
//!    and `member/snap` is fsynced;
//! 3. the WAL segment is renamed and `member/wal` is fsynced.
//!
//! Before step 3 is durable, `member/wal` has no segment and the directory
//! is not a member; after it, every other file is already durable. `.tmp`
//! files are ours: a WAL open removes `*.wal.tmp`, a snapshot purge
//! `*.snap.tmp`, and a new backup removes all of them first. Renames stay
//! inside one directory (the `Disk` trait renames files, not directories).

use super::error::BackupError;
use crate::disk::{Disk, MemDisk};
use crate::member::{SNAP_DIR, WAL_DIR};
use crate::wal::SegmentName;
use std::io;
use std::path::{Path, PathBuf};

const TMP: &str = ".tmp";

fn dst_err(file: &Path) -> impl FnOnce(io::Error) -> BackupError + '_ {
    move |source| BackupError::DestinationIo {
        file: file.to_path_buf(),
        source,
    }
}

fn tmp_of(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(TMP);
    PathBuf::from(s)
}

/// Refuses a destination that already holds a member, and removes the
/// temporary files an interrupted backup left.
pub fn prepare(dst: &dyn Disk) -> Result<(), BackupError> {
    let wal_dir = Path::new(WAL_DIR);
    let names = dst.list(wal_dir).map_err(dst_err(wal_dir))?;
    if names.iter().any(|n| SegmentName::parse(n).is_some()) {
        return Err(BackupError::DestinationNotEmpty {
            file: wal_dir.to_path_buf(),
        });
    }
    for dir in [WAL_DIR, SNAP_DIR] {
        let dir = Path::new(dir);
        let mut removed = false;
        for name in dst.list(dir).map_err(dst_err(dir))? {
            if name.ends_with(TMP) {
                let path = dir.join(&name);
                dst.remove(&path).map_err(dst_err(&path))?;
                removed = true;
            }
        }
        if removed {
            dst.sync_dir(dir).map_err(dst_err(dir))?;
        }
    }
    Ok(())
}

/// Copies the image's files into `dst` (see the module comment for the
/// order that makes this atomic).
pub fn publish(image: &MemDisk, dst: &dyn Disk) -> Result<(), BackupError> {
    let snap_dir = Path::new(SNAP_DIR);
    let wal_dir = Path::new(WAL_DIR);
    let listing = |dir: &Path| {
        image
            .list(dir)
            .map_err(|e| BackupError::build("image listing", e))
    };
    let snap_files: Vec<PathBuf> = listing(snap_dir)?
        .into_iter()
        .map(|n| snap_dir.join(n))
        .collect();
    let wal_files: Vec<PathBuf> = listing(wal_dir)?
        .into_iter()
        .map(|n| wal_dir.join(n))
        .collect();
    let [segment] = wal_files.as_slice() else {
        return Err(BackupError::Build(format!(
            "the image's WAL must be one segment, found {}",
            wal_files.len()
        )));
    };
    for dir in [snap_dir, wal_dir] {
        dst.create_dir_all(dir).map_err(dst_err(dir))?;
    }
    for path in snap_files.iter().chain(std::iter::once(segment)) {
        let bytes = image
            .read_all(path)
            .map_err(|e| BackupError::build("image read", e))?;
        let tmp = tmp_of(path);
        dst.create(&tmp).map_err(dst_err(&tmp))?;
        dst.write_at(&tmp, 0, &bytes).map_err(dst_err(&tmp))?;
        dst.sync(&tmp).map_err(dst_err(&tmp))?;
    }
    for path in &snap_files {
        dst.rename(&tmp_of(path), path).map_err(dst_err(path))?;
    }
    dst.sync_dir(snap_dir).map_err(dst_err(snap_dir))?;
    // The commit point.
    dst.rename(&tmp_of(segment), segment)
        .map_err(dst_err(segment))?;
    dst.sync_dir(wal_dir).map_err(dst_err(wal_dir))
}
