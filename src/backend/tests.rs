use super::*;
#[cfg(feature = "known-bugs")]
use crate::bugs::{Bug, KnownBugs};
use crate::crash_point::NoCrash;
use crate::disk::{MemDisk, StdDisk};
use std::sync::Mutex;

pub(crate) const DB: &str = "member/v3.db";

pub(crate) fn open(disk: Arc<dyn Disk>, opts: BackendOptions) -> Backend {
    Backend::open(disk, Path::new(DB), opts, Arc::new(NoCrash)).unwrap()
}

/// Runs `f` on a fresh `MemDisk` and on a fresh `StdDisk` in a temp dir.
fn on_both_disks(f: impl Fn(Arc<dyn Disk>)) {
    f(Arc::new(MemDisk::new()));
    let dir = tempfile::tempdir().unwrap();
    f(Arc::new(StdDisk::new(dir.path()).unwrap()));
}

fn opts(batch_limit: usize, batch_interval_ms: u64) -> BackendOptions {
    BackendOptions {
        batch_limit,
        batch_interval_ms,
        ..BackendOptions::default()
    }
}

fn ci(index: u64, term: u64) -> ConsistentIndex {
    ConsistentIndex { index, term }
}

fn keys(be: &Backend, table: Table) -> Vec<Vec<u8>> {
    be.range(table, b"", None)
        .unwrap()
        .into_iter()
        .map(|(k, _)| k)
        .collect()
}

/// A crash hook whose crash point can be armed from the test.
#[derive(Debug, Default)]
pub(crate) struct ArmedHook {
    pub(crate) armed: Mutex<Option<CrashPoint>>,
}

impl CrashHook for ArmedHook {
    fn at(&self, point: CrashPoint) -> Result<(), Crashed> {
        if *self.armed.lock().unwrap() == Some(point) {
            return Err(Crashed { point });
        }
        Ok(())
    }
}

#[test]
fn reads_see_buffered_writes_and_committed_rows() {
    on_both_disks(|disk| {
        let mut be = open(disk, BackendOptions::default());
        be.put(Table::Key, b"a", b"1");
        be.put(Table::Key, b"b", b"2");
        be.put(Table::Members, b"a", b"member");
        be.force_commit().unwrap();
        be.put(Table::Key, b"c", b"3");
        be.delete(Table::Key, b"a");
        be.put(Table::Key, b"b", b"22");
        assert_eq!(be.get(Table::Key, b"a").unwrap(), None);
        assert_eq!(be.get(Table::Key, b"b").unwrap(), Some(b"22".to_vec()));
        assert_eq!(
            be.get(Table::Members, b"a").unwrap(),
            Some(b"member".to_vec())
        );
        assert_eq!(
            be.range(Table::Key, b"", None).unwrap(),
            vec![
                (b"b".to_vec(), b"22".to_vec()),
                (b"c".to_vec(), b"3".to_vec())
            ]
        );
        assert_eq!(keys(&be, Table::Key), vec![b"b".to_vec(), b"c".to_vec()]);
        assert_eq!(
            be.range(Table::Key, b"b", Some(b"c")).unwrap(),
            vec![(b"b".to_vec(), b"22".to_vec())]
        );
        assert!(be.range(Table::Key, b"c", Some(b"b")).unwrap().is_empty());
        assert!(be.range(Table::Key, b"c", Some(b"c")).unwrap().is_empty());
        assert_eq!(be.pending_writes(), 3);
    });
}

#[test]
fn automatic_batch_commit_persists_index_of_last_entry_it_contains() {
    on_both_disks(|disk| {
        let mut be = open(disk.clone(), opts(3, 1_000_000));
        // Entry 1: two writes, below the limit.
        be.put(Table::Key, b"k1", b"v1");
        be.put(Table::Key, b"k2", b"v2");
        be.set_consistent_index(1, 1);
        assert!(!be.end_entry(0).unwrap());
        assert_eq!(be.persisted_meta().unwrap().consistent_index, ci(0, 0));
        // Entry 2: the limit is reached at its boundary.
        be.put(Table::Key, b"k3", b"v3");
        be.put(Table::Cluster, b"version", b"3.6");
        be.set_consistent_index(2, 1);
        assert!(be.end_entry(0).unwrap());
        assert_eq!(be.commits(), 1);
        assert_eq!(be.pending_writes(), 0);
        assert_eq!(
            be.persisted_meta().unwrap(),
            PersistedMeta {
                consistent_index: ci(2, 1),
                conf_state: None
            }
        );
        drop(be);
        let be = open(disk, opts(3, 1_000_000));
        assert_eq!(be.consistent_index(), ci(2, 1));
        assert_eq!(keys(&be, Table::Key).len(), 3);
        assert_eq!(
            be.get(Table::Cluster, b"version").unwrap(),
            Some(b"3.6".to_vec())
        );
    });
}

#[cfg(feature = "known-bugs")]
#[test]
fn with_the_explicit_only_bug_automatic_commits_leave_the_index_behind() {
    let mut bugs = KnownBugs::NONE;
    bugs.enable(Bug::CindexOnlyOnExplicitCommit).unwrap();
    let mut be = open(
        Arc::new(MemDisk::new()),
        BackendOptions {
            bugs,
            ..opts(1, 1_000_000)
        },
    );
    be.put(Table::Key, b"k1", b"v1");
    be.set_consistent_index(1, 1);
    assert!(be.end_entry(0).unwrap(), "the limit commits");
    assert_eq!(
        be.persisted_meta().unwrap().consistent_index,
        ci(0, 0),
        "the data is durable but its index is not: a replay would apply it again"
    );
    be.force_commit().unwrap();
    assert_eq!(be.persisted_meta().unwrap().consistent_index, ci(1, 1));
}

#[test]
fn commit_if_due_honours_the_interval() {
    let mut be = open(Arc::new(MemDisk::new()), opts(10_000, 100));
    assert!(!be.commit_if_due(0).unwrap(), "nothing pending");
    be.put(Table::Key, b"a", b"1");
    be.set_consistent_index(5, 2);
    assert!(!be.end_entry(10).unwrap());
    assert!(!be.commit_if_due(50).unwrap());
    assert!(!be.commit_if_due(99).unwrap());
    assert_eq!(be.commits(), 0);
    assert!(be.commit_if_due(100).unwrap());
    assert_eq!(be.persisted_meta().unwrap().consistent_index, ci(5, 2));
    assert!(!be.commit_if_due(500).unwrap(), "nothing pending");
    // The interval counts from the last commit (at 100), not from the
    // first write after it.
    be.put(Table::Key, b"b", b"2");
    be.set_consistent_index(6, 2);
    assert!(be.commit_if_due(550).unwrap(), "550 - 100 >= interval");
    assert_eq!(be.commits(), 2);
    be.put(Table::Key, b"c", b"3");
    be.set_consistent_index(7, 2);
    assert!(!be.commit_if_due(600).unwrap());
    assert!(be.commit_if_due(650).unwrap());
    assert_eq!(be.persisted_meta().unwrap().consistent_index, ci(7, 2));
}

#[test]
fn timer_commit_waits_for_the_entry_boundary() {
    let mut be = open(Arc::new(MemDisk::new()), opts(10_000, 100));
    be.set_consistent_index(1, 1);
    be.end_entry(0).unwrap();
    // Entry 2 has buffered a write but not yet its index.
    be.put(Table::Key, b"a", b"1");
    assert!(!be.commit_if_due(1_000).unwrap());
    assert_eq!(be.commits(), 0);
    be.set_consistent_index(2, 1);
    assert!(be.commit_if_due(1_000).unwrap());
    assert_eq!(be.persisted_meta().unwrap().consistent_index, ci(2, 1));
}

#[test]
fn meta_only_changes_are_committed_and_conf_state_persists() {
    on_both_disks(|disk| {
        let mut be = open(disk.clone(), BackendOptions::default());
        let cs = ConfState {
            voters: vec![1, 2, 3],
            learners: vec![4],
            ..Default::default()
        };
        be.set_conf_state(&cs);
        be.set_consistent_index(9, 3);
        assert!(be.commit_if_due(0).is_ok());
        assert!(be.commit_if_due(100).unwrap());
        drop(be);
        let be = open(disk, BackendOptions::default());
        assert_eq!(be.consistent_index(), ci(9, 3));
        assert_eq!(be.conf_state(), Some(cs.clone()));
        assert_eq!(
            be.persisted_meta().unwrap(),
            PersistedMeta {
                consistent_index: ci(9, 3),
                conf_state: Some(cs)
            }
        );
    });
}

/// The image a test compares: every row of every table, and the meta.
pub(crate) type Image = (Vec<(Table, Vec<Row>)>, PersistedMeta);

pub(crate) fn image(be: &Backend) -> Image {
    let rows = Table::ALL
        .into_iter()
        .map(|t| (t, be.range(t, b"", None).unwrap()))
        .collect();
    (rows, be.persisted_meta().unwrap())
}

/// Commits entries 1..=2 (state A), then buffers entry 3 (state B).
pub(crate) fn write_a_then_buffer_b(be: &mut Backend) {
    for i in 0..20u32 {
        be.put(Table::Key, format!("key{i:03}").as_bytes(), &[b'a'; 300]);
    }
    be.set_consistent_index(1, 1);
    be.end_entry(0).unwrap();
    be.put(Table::Members, b"m1", b"member one");
    be.set_conf_state(&ConfState {
        voters: vec![1],
        ..Default::default()
    });
    be.set_consistent_index(2, 1);
    be.end_entry(0).unwrap();
    be.force_commit().unwrap();
    // Entry 3: overwrite, delete, add, in several tables.
    for i in 0..10u32 {
        be.put(Table::Key, format!("key{i:03}").as_bytes(), &[b'b'; 500]);
    }
    for i in 10..15u32 {
        be.delete(Table::Key, format!("key{i:03}").as_bytes());
    }
    for i in 100..130u32 {
        be.put(Table::Key, format!("key{i:03}").as_bytes(), &[b'n'; 200]);
    }
    be.put(Table::Cluster, b"version", b"3.6.0");
    be.delete(Table::Members, b"m1");
    be.put(Table::MembersRemoved, b"m1", b"");
    be.set_conf_state(&ConfState {
        voters: vec![1, 2],
        ..Default::default()
    });
    be.set_consistent_index(3, 2);
    be.end_entry(0).unwrap();
}

#[test]
fn power_loss_without_commit_returns_to_previous_commit() {
    let disk = Arc::new(MemDisk::new());
    let mut be = open(disk.clone(), BackendOptions::default());
    write_a_then_buffer_b(&mut be);
    let fork = Arc::new(disk.fork());
    let a = {
        let a_disk = Arc::new(disk.fork());
        a_disk.crash_power_loss();
        image(&open(a_disk, BackendOptions::default()))
    };
    assert_eq!(a.1.consistent_index, ci(2, 1));
    be.force_commit().unwrap();
    let b = image(&be);
    assert_eq!(b.1.consistent_index, ci(3, 2));
    assert_ne!(a.0, b.0);
    // The fork was taken with entry 3 only buffered in memory.
    fork.crash_power_loss();
    let reopened = open(fork, BackendOptions::default());
    assert_eq!(image(&reopened), a);
    assert_eq!(reopened.consistent_index(), ci(2, 1));
    // A process crash (drop) after the commit keeps B.
    drop(be);
    assert_eq!(image(&open(disk, BackendOptions::default())), b);
}

#[test]
fn process_crash_without_commit_on_std_disk_returns_to_previous_commit() {
    let dir = tempfile::tempdir().unwrap();
    let disk: Arc<dyn Disk> = Arc::new(StdDisk::new(dir.path()).unwrap());
    let mut be = open(disk.clone(), BackendOptions::default());
    write_a_then_buffer_b(&mut be);
    drop(be);
    let be = open(disk, BackendOptions::default());
    assert_eq!(be.consistent_index(), ci(2, 1));
    assert_eq!(
        be.get(Table::Members, b"m1").unwrap(),
        Some(b"member one".to_vec())
    );
    assert_eq!(be.get(Table::Cluster, b"version").unwrap(), None);
    assert_eq!(keys(&be, Table::Key).len(), 20);
}

#[test]
fn crash_at_commit_points_keeps_data_and_index_together() {
    for point in [
        CrashPoint::BackendCommitBefore,
        CrashPoint::BackendCommitAfter,
    ] {
        let disk = Arc::new(MemDisk::new());
        let hook = Arc::new(ArmedHook::default());
        let mut be = Backend::open(
            disk.clone(),
            Path::new(DB),
            BackendOptions::default(),
            hook.clone(),
        )
        .unwrap();
        write_a_then_buffer_b(&mut be);
        *hook.armed.lock().unwrap() = Some(point);
        let err = be.force_commit().unwrap_err();
        assert_eq!(err.as_crashed(), Some(Crashed { point }));
        assert!(matches!(
            be.get(Table::Key, b"key000"),
            Err(BackendError::Poisoned { .. })
        ));
        let after = Arc::new(disk.fork());
        after.crash_power_loss();
        let be = open(after, BackendOptions::default());
        let expect = if point == CrashPoint::BackendCommitBefore {
            ci(2, 1)
        } else {
            ci(3, 2)
        };
        assert_eq!(be.consistent_index(), expect, "{point}");
        let members = be.get(Table::Members, b"m1").unwrap();
        let version = be.get(Table::Cluster, b"version").unwrap();
        if expect.index == 2 {
            assert_eq!(members, Some(b"member one".to_vec()));
            assert_eq!(version, None);
            assert_eq!(keys(&be, Table::Key).len(), 20);
        } else {
            assert_eq!(members, None);
            assert_eq!(version, Some(b"3.6.0".to_vec()));
            assert_eq!(keys(&be, Table::Key).len(), 45);
        }
    }
}

#[test]
fn malformed_meta_is_a_typed_error() {
    let disk = Arc::new(MemDisk::new());
    let mut be = open(disk.clone(), BackendOptions::default());
    // No conf state is set, so the commit does not overwrite this value.
    be.put(Table::Meta, CONF_STATE_KEY, &[0xff, 0xff, 0xff]);
    be.force_commit().unwrap();
    match be.persisted_meta() {
        Err(BackendError::CorruptMeta { key, .. }) => assert_eq!(key, "conf_state"),
        other => panic!("expected CorruptMeta, got {other:?}"),
    }
    drop(be);
    match Backend::open(
        disk,
        Path::new(DB),
        BackendOptions::default(),
        Arc::new(NoCrash),
    ) {
        Err(BackendError::CorruptMeta { key, .. }) => assert_eq!(key, "conf_state"),
        other => panic!("expected CorruptMeta, got {other:?}"),
    }
}

#[test]
fn snapshot_round_trip_replaces_every_table() {
    on_both_disks(|disk| {
        let src_disk = Arc::new(MemDisk::new());
        let mut src = open(src_disk, BackendOptions::default());
        write_a_then_buffer_b(&mut src);
        // snapshot_bytes commits the buffered entry first.
        let blob = src.snapshot_bytes().unwrap();
        assert_eq!(src.pending_writes(), 0);
        let want = image(&src);

        let mut dst = open(disk.clone(), BackendOptions::default());
        dst.put(Table::Key, b"zzz-only-here", b"x");
        dst.put(Table::Members, b"m9", b"x");
        dst.set_consistent_index(50, 7);
        dst.force_commit().unwrap();
        dst.put(Table::Key, b"buffered", b"x");

        let mut bad = blob.clone();
        let mid = bad.len() / 2;
        bad[mid] ^= 0x40;
        assert!(matches!(
            dst.restore_from_bytes(&bad),
            Err(BackendError::CorruptSnapshot { .. })
        ));
        assert_eq!(
            dst.consistent_index(),
            ci(50, 7),
            "a bad blob changes nothing"
        );

        dst.restore_from_bytes(&blob).unwrap();
        assert_eq!(image(&dst), want);
        assert_eq!(dst.consistent_index(), ci(3, 2));
        assert_eq!(dst.conf_state(), want.1.conf_state);
        assert_eq!(dst.get(Table::Key, b"buffered").unwrap(), None);
        drop(dst);
        assert_eq!(image(&open(disk, BackendOptions::default())), want);
    });
}

#[test]
fn failed_commit_poisons_the_backend() {
    use crate::disk::FaultyDisk;
    let inner = Arc::new(MemDisk::new());
    let disk = Arc::new(FaultyDisk::new(inner));
    let mut be = open(disk.clone(), BackendOptions::default());
    be.put(Table::Key, b"a", b"1");
    be.set_consistent_index(1, 1);
    disk.freeze_at(0);
    assert!(matches!(be.force_commit(), Err(BackendError::Redb { .. })));
    disk.heal();
    // Even with a healthy disk again, nothing is retried.
    assert!(matches!(
        be.force_commit(),
        Err(BackendError::Poisoned { .. })
    ));
    assert!(matches!(
        be.end_entry(0),
        Err(BackendError::Poisoned { .. })
    ));
    assert!(matches!(
        be.commit_if_due(10_000),
        Err(BackendError::Poisoned { .. })
    ));
    assert!(matches!(
        be.get(Table::Key, b"a"),
        Err(BackendError::Poisoned { .. })
    ));
    assert!(matches!(
        be.range(Table::Key, b"", None),
        Err(BackendError::Poisoned { .. })
    ));
    assert!(matches!(
        be.persisted_meta(),
        Err(BackendError::Poisoned { .. })
    ));
    assert!(matches!(
        be.snapshot_bytes(),
        Err(BackendError::Poisoned { .. })
    ));
    assert!(matches!(
        be.restore_from_bytes(b""),
        Err(BackendError::Poisoned { .. })
    ));
}

#[test]
fn an_open_after_a_crash_is_unclean_and_after_a_close_is_not() {
    let mem = Arc::new(MemDisk::new());
    let disk: Arc<dyn Disk> = mem.clone();
    let mut be = open(disk.clone(), BackendOptions::default());
    assert!(!be.opened_unclean(), "a new database is not a repair");
    be.put(Table::Key, b"a", b"1");
    be.force_commit().unwrap();
    // The process dies here: the disk as it is, without redb's close.
    let crashed: Arc<dyn Disk> = Arc::new(mem.fork());
    drop(be);
    let after_crash = open(crashed, BackendOptions::default());
    assert!(after_crash.opened_unclean());
    assert_eq!(keys(&after_crash, Table::Key), vec![b"a".to_vec()]);
    let after_close = open(disk, BackendOptions::default());
    assert!(!after_close.opened_unclean());
}
