//! Missing, truncated and corrupt source files give a typed error that
//! names the file, leave the destination without a member, and leave the
//! source as it was.

use super::*;
use crate::disk::MemDisk;
use crate::member::{BACKEND_FILE, StoreError};

/// A source built by the scenario, with `damage` applied to it.
fn damaged(damage: impl FnOnce(&MemDisk)) -> Arc<MemDisk> {
    let src = Arc::new(MemDisk::new());
    drop(term_change_source(src.clone()));
    damage(&src);
    src
}

fn wal_segments(disk: &dyn Disk) -> Vec<PathBuf> {
    disk.list(Path::new(WAL_DIR))
        .unwrap()
        .into_iter()
        .map(|n| Path::new(WAL_DIR).join(n))
        .collect()
}

fn snapshot_file(disk: &dyn Disk) -> PathBuf {
    let names = disk.list(Path::new(SNAP_DIR)).unwrap();
    let name = names.iter().find(|n| n.ends_with(".snap")).unwrap();
    Path::new(SNAP_DIR).join(name)
}

fn flip(disk: &MemDisk, path: &Path, offset: u64) {
    let mut byte = [0u8];
    assert_eq!(disk.read_at(path, offset, &mut byte).unwrap(), 1);
    disk.write_at(path, offset, &[byte[0] ^ 0x5a]).unwrap();
    disk.sync(path).unwrap();
}

fn cut(disk: &MemDisk, path: &Path, len: u64) {
    disk.set_len(path, len).unwrap();
    disk.sync(path).unwrap();
}

/// Backs up `src`, expecting a refusal; checks that nothing became a
/// member and the source was not touched.
fn refused(src: &MemDisk) -> BackupError {
    let dst = Arc::new(MemDisk::new());
    let before = files(src);
    let err = backup(src, dst.as_ref(), &options()).unwrap_err();
    assert_eq!(files(src), before, "the source changed");
    assert!(matches!(open(dst), Err(StoreError::NotInitialized)));
    err
}

#[test]
fn an_empty_source_is_missing_its_wal() {
    let err = refused(&MemDisk::new());
    assert!(
        matches!(&err, BackupError::MissingSource { file } if file == Path::new(WAL_DIR)),
        "{err}"
    );
    assert!(err.to_string().contains("member/wal"), "{err}");
}

#[test]
fn a_missing_backend_is_named() {
    let src = damaged(|d| d.remove(Path::new(BACKEND_FILE)).unwrap());
    let err = refused(&src);
    assert!(
        matches!(&err, BackupError::MissingSource { file } if file == Path::new(BACKEND_FILE)),
        "{err}"
    );
}

#[test]
fn a_corrupt_snapshot_is_named_with_its_offset() {
    let mut file = PathBuf::new();
    let src = damaged(|d| {
        file = snapshot_file(d);
        let len = d.len(&file).unwrap();
        flip(d, &file, len / 2);
    });
    let err = refused(&src);
    assert!(
        matches!(&err, BackupError::CorruptSource { file: f, offset: Some(_), .. } if *f == file),
        "{err}"
    );
    assert_eq!(err.source_file(), Some(file.as_path()));
}

#[test]
fn a_truncated_snapshot_is_named() {
    let mut file = PathBuf::new();
    let src = damaged(|d| {
        file = snapshot_file(d);
        let len = d.len(&file).unwrap();
        cut(d, &file, len - 7);
    });
    let err = refused(&src);
    assert_eq!(err.source_file(), Some(file.as_path()), "{err}");
    assert!(matches!(err, BackupError::CorruptSource { .. }), "{err}");
}

#[test]
fn a_corrupt_wal_segment_is_named_with_its_offset() {
    let mut file = PathBuf::new();
    let src = damaged(|d| {
        let segments = wal_segments(d);
        assert!(segments.len() >= 2, "{segments:?}");
        file = segments[0].clone();
        let len = d.len(&file).unwrap();
        flip(d, &file, len / 2);
    });
    let err = refused(&src);
    assert!(
        matches!(&err, BackupError::CorruptSource { file: f, offset: Some(_), .. } if *f == file),
        "{err}"
    );
}

#[test]
fn a_truncated_wal_segment_that_is_not_the_last_is_named() {
    let mut file = PathBuf::new();
    let src = damaged(|d| {
        let segments = wal_segments(d);
        file = segments[0].clone();
        let len = d.len(&file).unwrap();
        cut(d, &file, len - 5);
    });
    let err = refused(&src);
    assert_eq!(err.source_file(), Some(file.as_path()), "{err}");
}

#[test]
fn a_corrupt_backend_is_named() {
    let src = damaged(|d| {
        let path = Path::new(BACKEND_FILE);
        for offset in 0..64 {
            flip(d, path, offset);
        }
    });
    let err = refused(&src);
    assert!(
        matches!(&err, BackupError::CorruptSource { file, .. } if file == Path::new(BACKEND_FILE)),
        "{err}"
    );
}

#[test]
fn a_truncated_backend_is_named() {
    let src = damaged(|d| cut(d, Path::new(BACKEND_FILE), 100));
    let err = refused(&src);
    assert_eq!(err.source_file(), Some(Path::new(BACKEND_FILE)), "{err}");
}
