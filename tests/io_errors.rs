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
use replica::disk::{FaultyDisk, MemDisk};
use replica::member::{Member, StateDump, StoreError};
use replica::proto::HardState;
use std::collections::BTreeMap;
use std::sync::Arc;

/// The run: entries up to this index (a snapshot at 20, several WAL
/// segment cuts, several backend batch commits).
const RUN_TO: u64 = 28;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fail {
    Sync,
    Write,
}

/// Arms the failure of the k-th call of `kind` from now (0-based): an fsync
/// is a `sync` or `sync_dir`, a write a `write_at` or `set_len`; it fails
/// once.
fn arm(disk: &FaultyDisk, kind: Fail, k: u64) {
    match kind {
        Fail::Sync => disk.fail_nth_sync(k),
        Fail::Write => disk.fail_nth_write(k),
    }
}

/// The never-failing run's state after every index, and how many fsyncs
/// and writes it issued after bootstrap.
fn reference_run() -> (BTreeMap<u64, StateDump>, u64, u64) {
    let disk = Arc::new(FaultyDisk::new(Arc::new(MemDisk::new())));
    let mut member = bootstrap(disk.clone()).expect("bootstrap");
    let (syncs, writes) = (disk.syncs(), disk.writes());
    let mut dumps = BTreeMap::new();
    dumps.insert(member.applied_index(), member.state_dump().expect("dump"));
    for index in member.applied_index() + 1..=RUN_TO {
        step(&mut member, index).expect("reference run");
        dumps.insert(index, member.state_dump().expect("dump"));
    }
    (dumps, disk.syncs() - syncs, disk.writes() - writes)
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
        let disk = Arc::new(FaultyDisk::new(mem.clone()));
        let mut member = bootstrap(disk.clone()).expect("bootstrap");
        arm(&disk, kind, k);
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
        let before = disk.mutations();
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
            disk.mutations(),
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
