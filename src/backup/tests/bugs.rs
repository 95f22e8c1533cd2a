//! Each backup bug switch makes the scenario fail its gate: either
//! the backup refuses itself at verification, or the restored state differs
//! from the reference.

use super::*;
use crate::bugs::Bug;
use crate::disk::MemDisk;

struct Run {
    commit: u64,
    stripped: u64,
    expected: StateDump,
    result: Result<StateDump, BackupError>,
}

/// The scenario's backup with `bugs` on; the restored state, or why the
/// backup was refused.
fn run(bugs: &[Bug], verify: VerifyMode, with_v3: bool) -> Run {
    let src: Arc<dyn Disk> = Arc::new(MemDisk::new());
    let dst: Arc<dyn Disk> = Arc::new(MemDisk::new());
    let log = term_change_source(src.clone());
    let commit = log.commit;
    let snapshot_index = log.member.snapshot_index();
    let stripped = log
        .committed_membership()
        .into_iter()
        .filter(|i| *i > snapshot_index)
        .count() as u64;
    let membership = log.membership.clone();
    drop(log);
    let mut opts = BackupOptions {
        verify,
        with_v3,
        ..options()
    };
    let expected = expected(src.as_ref(), &membership, &opts);
    for bug in bugs {
        opts.bugs.enable(*bug).unwrap();
    }
    let result = backup(src.as_ref(), dst.as_ref(), &opts).map(|_| {
        // Boot without the boot checks: what would a member without
        // REPLICA_VERIFY run with?
        let config = StoreConfig {
            verify: VerifyMode::Off,
            ..store_config()
        };
        let (member, _) = Member::open(dst, config, Arc::new(NoCrash), 0).unwrap();
        member.state_dump().unwrap()
    });
    Run {
        commit,
        stripped,
        expected,
        result,
    }
}

#[test]
fn the_correct_backup_passes_the_same_gate() {
    let r = run(&[], VerifyMode::All, true);
    assert_eq!(r.result.unwrap(), r.expected);
}

#[test]
fn shifted_indexes_are_caught_by_the_comparison() {
    let r = run(&[Bug::BackupShiftIndexes], VerifyMode::All, true);
    // Internally consistent (the consistent index was moved along), so
    // verification passes; but every index after the first stripped entry
    // names a different entry than in the source.
    let restored = r.result.unwrap();
    assert_ne!(restored, r.expected);
    assert_eq!(restored.applied_index, r.commit - r.stripped);
    assert_ne!(restored.consistent_index, r.expected.consistent_index);
}

#[test]
fn a_stale_backend_meta_is_refused_by_verification() {
    let r = run(&[Bug::BackupNoCindexUpdate], VerifyMode::All, true);
    let err = r.result.unwrap_err();
    assert!(
        matches!(&err, BackupError::Verify(m) if m.contains("conf state")),
        "{err}"
    );
}

#[test]
fn a_stale_backend_meta_is_caught_by_the_comparison() {
    let r = run(&[Bug::BackupNoCindexUpdate], VerifyMode::Off, true);
    let restored = r.result.unwrap();
    assert_ne!(restored, r.expected);
    // The copied meta still names the old cluster's voters.
    assert_eq!(
        restored.conf_state.map(|cs| cs.voters),
        Some(vec![1, 2, 4]),
        "conf state of the source after removing 3"
    );
}

#[test]
fn without_v3_a_stale_consistent_index_is_refused_by_verification() {
    let r = run(&[Bug::BackupNoCindexUpdate], VerifyMode::All, false);
    let err = r.result.unwrap_err();
    assert!(
        matches!(&err, BackupError::Verify(m) if m.contains("behind the latest v2 snapshot")),
        "{err}"
    );
}

#[test]
fn shifted_indexes_with_a_stale_consistent_index_lose_v3_writes() {
    // The historical bug: entries removed and renumbered, the backend's
    // consistent index left pointing at the old numbering, so replay skips
    // the v3 half of entries the backend never saw.
    let r = run(
        &[Bug::BackupShiftIndexes, Bug::BackupNoCindexUpdate],
        VerifyMode::Off,
        true,
    );
    let restored = r.result.unwrap();
    assert_ne!(restored.v3, r.expected.v3);
    assert!(
        restored.v3.revision < r.expected.v3.revision,
        "writes were lost: revision {} < {}",
        restored.v3.revision,
        r.expected.v3.revision
    );
}
