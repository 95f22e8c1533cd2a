//! Restore from a backend snapshot alone: every member of the new cluster
//! boots (boot checks on) with the snapshot's key space and a consistent
//! index lowered to the new log's snapshot, and applies the v3 half of the
//! new cluster's entries. With `cindex-only-grows` the old, higher index
//! stays: the boot check refuses it, and without the check the new
//! cluster's writes are silently skipped.

use super::*;
use crate::backup::snapshot_restore::{SnapshotContents, snapshot_contents};
use crate::disk::MemDisk;

const RESTORED: [u64; 3] = [0x11, 0x12, 0x13];

/// The backend file of the scenario's source member, and what it holds.
fn snapshot() -> (Vec<u8>, SnapshotContents) {
    let src = Arc::new(MemDisk::new());
    drop(term_change_source(src.clone()));
    let db = save_backend_snapshot(src.as_ref()).unwrap();
    let contents = snapshot_contents(&db).unwrap();
    (db, contents)
}

fn restore_options(member_id: u64, bugs: KnownBugs) -> SnapshotRestoreOptions {
    SnapshotRestoreOptions {
        members: RESTORED.iter().map(|id| info(*id)).collect(),
        member_id,
        cluster_id: NEW_CLUSTER,
        bugs,
    }
}

fn restored(db: &[u8], id: u64, bugs: KnownBugs) -> (Arc<dyn Disk>, SnapshotRestoreReport) {
    let dst: Arc<dyn Disk> = Arc::new(MemDisk::new());
    let report = restore_snapshot(db, dst.as_ref(), &restore_options(id, bugs)).unwrap();
    (dst, report)
}

fn open_with(disk: Arc<dyn Disk>, verify: VerifyMode) -> Result<Member, crate::member::StoreError> {
    let config = StoreConfig {
        verify,
        ..store_config()
    };
    Member::open(disk, config, Arc::new(NoCrash), 0).map(|(m, _)| m)
}

#[test]
fn every_restored_member_boots_with_the_snapshot_keys_at_the_new_snapshot_index() {
    let (db, contents) = snapshot();
    assert!(
        contents.consistent_index.index > RESTORED.len() as u64,
        "the fixture must make the restore lower the index"
    );
    assert!(!contents.v3.keys.is_empty());
    for id in RESTORED {
        let (dst, report) = restored(&db, id, KnownBugs::NONE);
        assert_eq!(report.source_consistent_index, contents.consistent_index);
        assert_eq!(report.consistent_index.index, 3);
        let member = open_with(dst, VerifyMode::All).unwrap();
        let dump = member.state_dump().unwrap();
        assert_eq!(dump.v3, contents.v3);
        assert_eq!((dump.applied_index, dump.consistent_index), (3, 3));
        assert_eq!(dump.conf_state.unwrap().voters, RESTORED.to_vec());
        let ids: Vec<u64> = dump.cluster.members.keys().copied().collect();
        assert_eq!(ids, RESTORED.to_vec());
        assert!(dump.backend_membership.removed.is_empty());
    }
}

#[test]
fn the_first_entry_of_the_new_cluster_writes_v3() {
    let (db, contents) = snapshot();
    let (dst, _) = restored(&db, RESTORED[0], KnownBugs::NONE);
    let mut member = open_with(dst, VerifyMode::All).unwrap();
    let applied = member.apply(&Op::Put("new", "1").entry(4, 2), 0).unwrap();
    assert!(applied.applied_v3);
    let v3 = member.state_dump().unwrap().v3;
    assert_eq!(v3.revision, contents.v3.revision + 1);
    assert!(v3.keys.iter().any(|k| k.key == "new"));
}

#[test]
fn a_member_outside_the_new_cluster_or_a_used_destination_is_refused() {
    let (db, _) = snapshot();
    let dst = MemDisk::new();
    let err = restore_snapshot(&db, &dst, &restore_options(0x99, KnownBugs::NONE)).unwrap_err();
    assert!(matches!(err, BackupError::Build(_)), "{err}");
    assert!(!Member::is_initialized(&dst).unwrap());
    let (used, _) = restored(&db, RESTORED[0], KnownBugs::NONE);
    let err = restore_snapshot(
        &db,
        used.as_ref(),
        &restore_options(RESTORED[0], KnownBugs::NONE),
    )
    .unwrap_err();
    assert!(
        matches!(err, BackupError::DestinationNotEmpty { .. }),
        "{err}"
    );
}

#[test]
fn a_damaged_or_missing_backend_file_is_a_typed_source_error() {
    let err = save_backend_snapshot(&MemDisk::new()).unwrap_err();
    assert!(matches!(err, BackupError::MissingSource { .. }), "{err}");
    let dst = MemDisk::new();
    let err = restore_snapshot(
        b"not a database",
        &dst,
        &restore_options(RESTORED[0], KnownBugs::NONE),
    )
    .unwrap_err();
    assert!(matches!(err, BackupError::CorruptSource { .. }), "{err}");
    assert!(!Member::is_initialized(&dst).unwrap());
}

#[cfg(feature = "known-bugs")]
mod bug {
    use super::*;
    use crate::bugs::Bug;

    fn only_grows() -> KnownBugs {
        let mut bugs = KnownBugs::NONE;
        bugs.enable(Bug::CindexOnlyGrows).unwrap();
        bugs
    }

    #[test]
    fn cindex_only_grows_keeps_the_old_index_and_fails_the_boot_check() {
        let (db, contents) = snapshot();
        let (dst, report) = restored(&db, RESTORED[0], only_grows());
        assert_eq!(report.consistent_index, contents.consistent_index);
        let err = open_with(dst, VerifyMode::All).unwrap_err();
        assert!(
            matches!(err, crate::member::StoreError::BootCheck { .. }),
            "{err}"
        );
    }

    #[test]
    fn cindex_only_grows_without_the_boot_check_skips_the_new_clusters_writes() {
        let (db, contents) = snapshot();
        let (dst, _) = restored(&db, RESTORED[0], only_grows());
        let mut member = open_with(dst, VerifyMode::Off).unwrap();
        let applied = member.apply(&Op::Put("new", "1").entry(4, 2), 0).unwrap();
        assert!(!applied.applied_v3, "the bug must skip the v3 half");
        assert_eq!(member.state_dump().unwrap().v3, contents.v3);
    }
}
