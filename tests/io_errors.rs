//! Fsync and write errors under a short member run: for every k, the k-th
//! fsync (and, separately, the k-th write) of the run fails. The member must
//! return the error, refuse every later save, apply, tick and snapshot
//! without touching the disk (fail-stop: after a failed fsync durability is
//! unknown and retrying would lie), and after a power loss it must reopen
//! from what is durable, holding exactly the reference state at some index
//! no lower than the last entry whose save was acknowledged.

mod common;

use common::{bootstrap, config, entry, now_ms, step};
use replica::crash_point::NoCrash;
use replica::disk::{Disk, MemDisk};
use replica::member::{Member, StateDump, StoreError};
use replica::proto::HardState;
use std::collections::BTreeMap;
use std::io;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// The run: entries up to this index (a snapshot at 20, several WAL
/// segment cuts, several backend batch commits).
const RUN_TO: u64 = 28;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fail {
    Sync,
    Write,
}

/// A `MemDisk` that fails its k-th fsync (`sync` or `sync_dir`) or its k-th
/// write (`write_at` or `set_len`) once, and counts every mutating call.
#[derive(Debug)]
struct FailingDisk {
    inner: Arc<MemDisk>,
    kind: Fail,
    fail_at: AtomicU64,
    syncs: AtomicU64,
    writes: AtomicU64,
    /// Every mutating call, failed or not.
    mutations: AtomicU64,
}

impl FailingDisk {
    fn new(inner: Arc<MemDisk>, kind: Fail) -> FailingDisk {
        FailingDisk {
            inner,
            kind,
            fail_at: AtomicU64::new(u64::MAX),
            syncs: AtomicU64::new(0),
            writes: AtomicU64::new(0),
            mutations: AtomicU64::new(0),
        }
    }

    /// Fails the k-th call of this disk's kind from now on (0-based).
    fn arm(&self, k: u64) {
        let done = match self.kind {
            Fail::Sync => self.syncs.load(Ordering::SeqCst),
            Fail::Write => self.writes.load(Ordering::SeqCst),
        };
        self.fail_at.store(done + k, Ordering::SeqCst);
    }

    fn count(&self, kind: Fail) -> io::Result<()> {
        self.mutations.fetch_add(1, Ordering::SeqCst);
        let counter = match kind {
            Fail::Sync => &self.syncs,
            Fail::Write => &self.writes,
        };
        let n = counter.fetch_add(1, Ordering::SeqCst);
        if kind == self.kind && n == self.fail_at.load(Ordering::SeqCst) {
            return Err(io::Error::other(format!("injected {kind:?} failure #{n}")));
        }
        Ok(())
    }

    fn other_mutation(&self) {
        self.mutations.fetch_add(1, Ordering::SeqCst);
    }
}

impl Disk for FailingDisk {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        self.other_mutation();
        self.inner.create_dir_all(dir)
    }
    fn create(&self, path: &Path) -> io::Result<()> {
        self.other_mutation();
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
        self.count(Fail::Write)?;
        self.inner.write_at(path, offset, data)
    }
    fn set_len(&self, path: &Path, len: u64) -> io::Result<()> {
        self.count(Fail::Write)?;
        self.inner.set_len(path, len)
    }
    fn sync(&self, path: &Path) -> io::Result<()> {
        self.count(Fail::Sync)?;
        self.inner.sync(path)
    }
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        self.count(Fail::Sync)?;
        self.inner.sync_dir(dir)
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.other_mutation();
        self.inner.rename(from, to)
    }
    fn remove(&self, path: &Path) -> io::Result<()> {
        self.other_mutation();
        self.inner.remove(path)
    }
    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        self.inner.list(dir)
    }
}

/// The never-failing run's state after every index, and how many fsyncs
/// and writes it issued after bootstrap.
fn reference_run() -> (BTreeMap<u64, StateDump>, u64, u64) {
    let disk = Arc::new(FailingDisk::new(Arc::new(MemDisk::new()), Fail::Sync));
    let mut member = bootstrap(disk.clone()).expect("bootstrap");
    let (syncs, writes) = (
        disk.syncs.load(Ordering::SeqCst),
        disk.writes.load(Ordering::SeqCst),
    );
    let mut dumps = BTreeMap::new();
    dumps.insert(member.applied_index(), member.state_dump().expect("dump"));
    for index in member.applied_index() + 1..=RUN_TO {
        step(&mut member, index).expect("reference run");
        dumps.insert(index, member.state_dump().expect("dump"));
    }
    (
        dumps,
        disk.syncs.load(Ordering::SeqCst) - syncs,
        disk.writes.load(Ordering::SeqCst) - writes,
    )
}

fn assert_poisoned(result: Result<impl std::fmt::Debug, StoreError>, what: &str, k: u64) {
    match result {
        Err(StoreError::Poisoned { .. }) => {}
        other => panic!("k={k}: {what} after a failure must be refused, got {other:?}"),
    }
}

/// Fails the k-th operation of `kind` for every k of the run.
fn every_failure(kind: Fail) {
    let (reference, syncs, writes) = reference_run();
    let total = match kind {
        Fail::Sync => syncs,
        Fail::Write => writes,
    };
    assert!(total > 20, "the run issues too few {kind:?} calls: {total}");
    let mut reopened_at = BTreeMap::<u64, u64>::new();
    for k in 0..total {
        let mem = Arc::new(MemDisk::new());
        let disk = Arc::new(FailingDisk::new(mem.clone(), kind));
        let mut member = bootstrap(disk.clone()).expect("bootstrap");
        disk.arm(k);
        // The last index whose save (entry + committing hard state, one
        // fsync) returned Ok: acknowledged to raft, so it must survive.
        let mut acked = member.applied_index();
        let mut failed_at = None;
        for index in member.applied_index() + 1..=RUN_TO {
            let e = entry(index);
            let hs = HardState {
                term: 1,
                vote: 1,
                commit: index,
            };
            if member.save(Some(&hs), std::slice::from_ref(&e)).is_err() {
                failed_at = Some(index);
                break;
            }
            acked = index;
            let rest = member
                .apply(&e, now_ms(index))
                .and_then(|_| member.tick(now_ms(index)))
                .and_then(|_| match common::SNAPSHOT_AT.contains(&index) {
                    true => member.snapshot_now().map(|_| ()),
                    false => Ok(()),
                });
            if rest.is_err() {
                failed_at = Some(index);
                break;
            }
        }
        let failed_at =
            failed_at.unwrap_or_else(|| panic!("k={k}: the injected {kind:?} failure went unseen"));
        assert!(member.is_poisoned(), "k={k}: the member must stop");
        // Refusals must not touch the disk.
        let before = disk.mutations.load(Ordering::SeqCst);
        let next = entry(failed_at + 1);
        let hs = HardState {
            term: 1,
            vote: 1,
            commit: failed_at + 1,
        };
        assert_poisoned(
            member.save(Some(&hs), std::slice::from_ref(&next)),
            "save",
            k,
        );
        assert_poisoned(member.apply(&next, now_ms(failed_at + 1)), "apply", k);
        assert_poisoned(member.tick(u64::MAX / 2), "tick", k);
        assert_poisoned(member.snapshot_now(), "snapshot", k);
        assert_eq!(
            disk.mutations.load(Ordering::SeqCst),
            before,
            "k={k}: a poisoned member wrote to its disk"
        );
        drop(member);

        mem.crash_power_loss();
        let (member, _) = Member::open(mem.clone(), config(), Arc::new(NoCrash), 0)
            .unwrap_or_else(|e| panic!("k={k} (failed at index {failed_at}): reopen failed: {e}"));
        let applied = member.applied_index();
        assert!(
            applied >= acked,
            "k={k}: acknowledged index {acked} lost, reopened at {applied}"
        );
        assert_eq!(
            Some(&member.state_dump().expect("dump")),
            reference.get(&applied),
            "k={k}: reopened state at {applied} differs from the reference"
        );
        *reopened_at.entry(failed_at).or_default() += 1;
    }
    println!("{kind:?}: {total} injected failures; failing index -> cases: {reopened_at:?}");
}

#[test]
fn every_fsync_failure_stops_the_member_and_reopens_from_durable_state() {
    every_failure(Fail::Sync);
}

#[test]
fn every_write_failure_stops_the_member_and_reopens_from_durable_state() {
    every_failure(Fail::Write);
}
