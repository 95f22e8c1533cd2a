//! A backup interrupted at any write to the destination (the disk fails
//! the k-th operation, then the process dies or the power goes) never
//! leaves a destination that boots as a member, except the complete
//! backup; and a retry then succeeds.

use super::*;
use crate::disk::{FaultyDisk, MemDisk};
use crate::member::StoreError;

/// `dst` behind a [`FaultyDisk`] that fails its `k`-th mutating operation
/// and every one after it (the process is gone), counting them.
fn fail_from(dst: &Arc<MemDisk>, k: u64) -> FaultyDisk {
    let disk = FaultyDisk::new(dst.clone());
    disk.fail_mutations_from(k);
    disk
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
    let counter = FaultyDisk::new(full.clone());
    backup(src.as_ref(), &counter, &opts).unwrap();
    let total = counter.mutations();
    assert!(
        total >= 10,
        "the publish step writes several files ({total} ops)"
    );
    let complete = open(full).unwrap().state_dump().unwrap();

    for k in 0..total {
        let dst = Arc::new(MemDisk::new());
        let err = backup(src.as_ref(), &fail_from(&dst, k), &opts).unwrap_err();
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
