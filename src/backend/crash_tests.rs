//! Power loss in the middle of a redb commit: stop the disk at its k-th
//! operation for every k of one commit, then lose power in several ways, and
//! check that the reopened backend holds exactly the previous commit or the
//! new one (data and consistent index together).

use super::tests::{DB, image, open, write_a_then_buffer_b};
use super::*;
use crate::crash_point::NoCrash;
use crate::disk::{MemDisk, PendingOp, PowerLossPlan, Survival};
use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// A disk that fails its k-th mutating operation and every operation after
/// it (frozen), as a member stopped mid-commit would.
#[derive(Debug)]
pub(crate) struct FailingDisk {
    inner: Arc<MemDisk>,
    ops: AtomicU64,
    fail_at: AtomicU64,
    frozen: AtomicBool,
}

impl FailingDisk {
    pub(crate) fn new(inner: Arc<MemDisk>) -> FailingDisk {
        FailingDisk {
            inner,
            ops: AtomicU64::new(0),
            fail_at: AtomicU64::new(u64::MAX),
            frozen: AtomicBool::new(false),
        }
    }

    /// Fails the `k`-th mutating operation from now (0-based).
    pub(crate) fn fail_at(&self, k: u64) {
        self.ops.store(0, Ordering::SeqCst);
        self.fail_at.store(k, Ordering::SeqCst);
    }

    pub(crate) fn heal(&self) {
        self.fail_at.store(u64::MAX, Ordering::SeqCst);
        self.frozen.store(false, Ordering::SeqCst);
    }

    pub(crate) fn ops(&self) -> u64 {
        self.ops.load(Ordering::SeqCst)
    }

    fn check(&self, mutating: bool) -> io::Result<()> {
        if self.frozen.load(Ordering::SeqCst) {
            return Err(io::Error::other("disk frozen"));
        }
        if mutating {
            let n = self.ops.fetch_add(1, Ordering::SeqCst);
            if n == self.fail_at.load(Ordering::SeqCst) {
                self.frozen.store(true, Ordering::SeqCst);
                return Err(io::Error::other(format!("injected failure at op {n}")));
            }
        }
        Ok(())
    }
}

impl Disk for FailingDisk {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        self.check(true)?;
        self.inner.create_dir_all(dir)
    }
    fn create(&self, path: &Path) -> io::Result<()> {
        self.check(true)?;
        self.inner.create(path)
    }
    fn exists(&self, path: &Path) -> io::Result<bool> {
        self.check(false)?;
        self.inner.exists(path)
    }
    fn len(&self, path: &Path) -> io::Result<u64> {
        self.check(false)?;
        self.inner.len(path)
    }
    fn read_at(&self, path: &Path, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        self.check(false)?;
        self.inner.read_at(path, offset, buf)
    }
    fn write_at(&self, path: &Path, offset: u64, data: &[u8]) -> io::Result<()> {
        self.check(true)?;
        self.inner.write_at(path, offset, data)
    }
    fn set_len(&self, path: &Path, len: u64) -> io::Result<()> {
        self.check(true)?;
        self.inner.set_len(path, len)
    }
    fn sync(&self, path: &Path) -> io::Result<()> {
        self.check(true)?;
        self.inner.sync(path)
    }
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        self.check(true)?;
        self.inner.sync_dir(dir)
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.check(true)?;
        self.inner.rename(from, to)
    }
    fn remove(&self, path: &Path) -> io::Result<()> {
        self.check(true)?;
        self.inner.remove(path)
    }
    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        self.check(false)?;
        self.inner.list(dir)
    }
}

/// Which unsynced operations survive the power loss.
#[derive(Debug, Clone, Copy)]
enum Plan {
    /// Keep the first `n` pending operations, tear the next one at half
    /// (when `tear`), lose the rest.
    Prefix { n: usize, tear: bool },
    /// Keep the operations whose index has the given parity: a disk that
    /// reordered writes before the sync.
    Parity(usize),
    /// Keep all but the first (redb's header write).
    AllButFirst,
}

impl PowerLossPlan for Plan {
    fn file_op(&mut self, _: &Path, i: usize, op: &PendingOp) -> Survival {
        match *self {
            Plan::Prefix { n, tear } => {
                if i < n {
                    Survival::Kept
                } else if i == n && tear {
                    match op {
                        PendingOp::Write { data, .. } => Survival::Torn {
                            keep_bytes: data.len() / 2,
                        },
                        PendingOp::SetLen(_) => Survival::Lost,
                    }
                } else {
                    Survival::Lost
                }
            }
            Plan::Parity(p) => {
                if i % 2 == p {
                    Survival::Kept
                } else {
                    Survival::Lost
                }
            }
            Plan::AllButFirst => {
                if i == 0 {
                    Survival::Lost
                } else {
                    Survival::Kept
                }
            }
        }
    }
    fn dir_changes(&mut self, _: &Path) -> bool {
        true
    }
}

fn plans(pending: usize) -> Vec<Plan> {
    let mut plans = vec![Plan::Parity(0), Plan::Parity(1), Plan::AllButFirst];
    for n in 0..=pending {
        plans.push(Plan::Prefix { n, tear: false });
        plans.push(Plan::Prefix { n, tear: true });
    }
    plans
}

#[test]
fn power_loss_at_every_disk_operation_of_a_commit_yields_old_or_new_state() {
    // The two states a crash may legitimately leave: A (committed, entry 3
    // only buffered) and B (entry 3 committed).
    let a = {
        let disk = Arc::new(MemDisk::new());
        let mut be = open(disk.clone(), BackendOptions::default());
        write_a_then_buffer_b(&mut be);
        drop(be);
        disk.crash_power_loss();
        image(&open(disk, BackendOptions::default()))
    };
    let b = {
        let mut be = open(Arc::new(MemDisk::new()), BackendOptions::default());
        write_a_then_buffer_b(&mut be);
        be.force_commit().unwrap();
        image(&be)
    };
    assert_eq!(a.1.consistent_index.index, 2);
    assert_eq!(b.1.consistent_index.index, 3);

    let mut saw_old = false;
    let mut saw_new = false;
    let mut k = 0u64;
    loop {
        let mem = Arc::new(MemDisk::new());
        let disk = Arc::new(FailingDisk::new(mem.clone()));
        let mut be = Backend::open(
            disk.clone(),
            Path::new(DB),
            BackendOptions::default(),
            Arc::new(NoCrash),
        )
        .unwrap();
        write_a_then_buffer_b(&mut be);
        disk.fail_at(k);
        let result = be.force_commit();
        let ops = disk.ops();
        if result.is_ok() {
            assert!(k >= ops, "commit succeeded although op {k} failed");
            assert!(k > 0, "a commit performs disk operations");
            break;
        }
        assert!(matches!(
            be.get(Table::Key, b"key000"),
            Err(BackendError::Poisoned { .. })
        ));
        drop(be);
        let pending = mem.pending_ops(Path::new(DB)).unwrap().len();
        eprintln!("k={k} ops={ops} pending={pending}");
        for plan in plans(pending) {
            let crashed = Arc::new(mem.fork());
            crashed.crash_power_loss_with(&mut plan.clone());
            let be = Backend::open(
                crashed,
                Path::new(DB),
                BackendOptions::default(),
                Arc::new(NoCrash),
            )
            .unwrap_or_else(|e| panic!("k={k} {plan:?}: reopen failed: {e}"));
            let got = image(&be);
            if got == a {
                saw_old = true;
            } else if got == b {
                saw_new = true;
            } else {
                panic!(
                    "k={k} {plan:?}: state is neither the previous nor the new commit \
                     (meta {:?})",
                    got.1
                );
            }
        }
        k += 1;
        assert!(k < 10_000, "commit never finished");
    }
    assert!(saw_old, "some crash must lose the commit");
    assert!(saw_new, "a crash after the sync must keep the commit");
}
