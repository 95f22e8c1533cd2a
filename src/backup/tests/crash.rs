//! A backup interrupted at any write to the destination (the disk fails
//! the k-th operation, then the process dies or the power goes) never
//! leaves a destination that boots as a member, except the complete
//! backup; and a retry then succeeds.

use super::*;
use crate::disk::MemDisk;
use crate::member::StoreError;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};

/// A disk that fails its `fail_at`-th mutating operation and every one
/// after it (the process is gone), counting them.
#[derive(Debug)]
struct FailAt {
    inner: Arc<MemDisk>,
    ops: AtomicU64,
    fail_at: u64,
}

impl FailAt {
    fn new(inner: Arc<MemDisk>, fail_at: u64) -> Self {
        FailAt {
            inner,
            ops: AtomicU64::new(0),
            fail_at,
        }
    }

    fn op(&self) -> io::Result<()> {
        let n = self.ops.fetch_add(1, Ordering::SeqCst);
        if n >= self.fail_at {
            return Err(io::Error::other(format!(
                "injected failure at operation {n}"
            )));
        }
        Ok(())
    }
}

impl Disk for FailAt {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        self.op()?;
        self.inner.create_dir_all(dir)
    }
    fn create(&self, path: &Path) -> io::Result<()> {
        self.op()?;
        self.inner.create(path)
    }
    fn exists(&self, path: &Path) -> io::Result<bool> {
        self.inner.exists(path)
    }
    fn len(&self, path: &Path) -> io::Result<u64> {
        self.inner.len(path)
    }
    fn read_at(&self, path: &Path, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read_at(path, offset, buf)
    }
    fn write_at(&self, path: &Path, offset: u64, data: &[u8]) -> io::Result<()> {
        self.op()?;
        self.inner.write_at(path, offset, data)
    }
    fn set_len(&self, path: &Path, len: u64) -> io::Result<()> {
        self.op()?;
        self.inner.set_len(path, len)
    }
    fn sync(&self, path: &Path) -> io::Result<()> {
        self.op()?;
        self.inner.sync(path)
    }
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        self.op()?;
        self.inner.sync_dir(dir)
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.op()?;
        self.inner.rename(from, to)
    }
    fn remove(&self, path: &Path) -> io::Result<()> {
        self.op()?;
        self.inner.remove(path)
    }
    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        self.inner.list(dir)
    }
}

/// The destination after an interrupted backup is either not a member or
/// exactly the complete backup.
fn assert_no_partial_member(disk: MemDisk, complete: &StateDump, what: &str) {
    match open(Arc::new(disk)) {
        Err(StoreError::NotInitialized) => {}
        Ok(member) => assert_eq!(
            &member.state_dump().unwrap(),
            complete,
            "{what}: a member that is not the complete backup"
        ),
        Err(e) => panic!("{what}: the destination looks like a broken member: {e}"),
    }
}

#[test]
fn an_interrupted_backup_never_leaves_a_partial_member() {
    let src = Arc::new(MemDisk::new());
    drop(term_change_source(src.clone()));
    let opts = options();

    let full = Arc::new(MemDisk::new());
    let counter = FailAt::new(full.clone(), u64::MAX);
    backup(src.as_ref(), &counter, &opts).unwrap();
    let total = counter.ops.load(Ordering::SeqCst);
    assert!(
        total >= 10,
        "the publish step writes several files ({total} ops)"
    );
    let complete = open(full).unwrap().state_dump().unwrap();

    for k in 0..total {
        let dst = Arc::new(MemDisk::new());
        let err = backup(src.as_ref(), &FailAt::new(dst.clone(), k), &opts).unwrap_err();
        assert!(
            matches!(err, BackupError::DestinationIo { .. }),
            "op {k}: {err}"
        );
        // The power goes: unsynced data and names are lost.
        let power_lost = dst.fork();
        power_lost.crash_power_loss();
        assert_no_partial_member(power_lost, &complete, &format!("power loss at op {k}"));
        // Only the process died: the page cache survives.
        assert_no_partial_member(dst.fork(), &complete, &format!("crash at op {k}"));

        // Running the backup again over the leftovers succeeds, unless the
        // first one had already published.
        match backup(src.as_ref(), dst.as_ref(), &opts) {
            Ok(_) => {}
            Err(BackupError::DestinationNotEmpty { .. }) => assert!(k + 2 >= total),
            Err(e) => panic!("retry after op {k}: {e}"),
        }
        assert_eq!(
            open(dst).unwrap().state_dump().unwrap(),
            complete,
            "retry after op {k}"
        );
    }
}
