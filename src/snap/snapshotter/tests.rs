//! Snapshotter tests, on `MemDisk` and on `StdDisk` where the disk does not
//! matter, on `MemDisk` alone where a power loss is modelled.

use super::*;
use crate::disk::{FaultyDisk, MemDisk, PendingOp, PowerLossPlan, StdDisk, Survival};
use crate::proto::ConfState;

const DIR: &str = "member/snap";

fn marker(term: u64, index: u64) -> SnapshotMarker {
    SnapshotMarker {
        index,
        term,
        conf_state: Some(ConfState {
            voters: vec![1, 2, 3],
            learners: vec![4],
            ..Default::default()
        }),
    }
}

fn snap(term: u64, index: u64, data: &str) -> Snapshot {
    Snapshot {
        marker: marker(term, index),
        data: data.as_bytes().to_vec(),
    }
}

fn snapshotter(disk: Arc<dyn Disk>) -> Snapshotter {
    Snapshotter::new(disk, Path::new(DIR))
}

/// Runs `f` on a fresh `MemDisk` and on a `StdDisk` in a temporary directory.
fn on_both(f: impl Fn(Arc<dyn Disk>)) {
    f(Arc::new(MemDisk::new()));
    let tmp = tempfile::tempdir().unwrap();
    f(Arc::new(StdDisk::new(tmp.path()).unwrap()));
}

/// Flips bits of one byte in place and syncs, as bit rot would.
fn flip(disk: &dyn Disk, path: &Path, offset: u64) {
    let mut b = [0u8; 1];
    assert_eq!(disk.read_at(path, offset, &mut b).unwrap(), 1);
    disk.write_at(path, offset, &[b[0] ^ 0x5a]).unwrap();
    disk.sync(path).unwrap();
}

fn file_names(disk: &dyn Disk) -> Vec<String> {
    disk.list(Path::new(DIR)).unwrap()
}

#[test]
fn save_load_round_trip() {
    on_both(|disk| {
        let s = snapshotter(disk.clone());
        let sn = snap(3, 0x2a, r#"{"index":42}"#);
        s.save(&sn).unwrap();
        let name = "0000000000000003-000000000000002a.snap";
        assert_eq!(s.list().unwrap(), vec![name]);
        assert_eq!(file_names(&*disk), vec![name], "no temporary file is left");
        assert_eq!(s.load(name).unwrap(), sn);
        assert_eq!(
            s.load_newest_available(&[marker(3, 42)]).unwrap(),
            Some(sn.clone())
        );
        // Saving the same snapshot again replaces the file.
        s.save(&sn).unwrap();
        assert_eq!(s.load(name).unwrap(), sn);
    });
}

#[test]
fn empty_directory_has_no_snapshot() {
    on_both(|disk| {
        let s = snapshotter(disk);
        assert_eq!(s.list().unwrap(), Vec::<String>::new());
        assert_eq!(s.load_newest_available(&[marker(1, 1)]).unwrap(), None);
        assert!(matches!(
            s.load("0000000000000001-0000000000000001.snap"),
            Err(SnapError::NotFound { .. })
        ));
    });
}

#[test]
fn newest_valid_is_chosen_by_index_then_term() {
    on_both(|disk| {
        let s = snapshotter(disk);
        let all = [(1, 10), (2, 20), (2, 30), (3, 30), (5, 25)];
        for (t, i) in all {
            s.save(&snap(t, i, &format!("t{t}i{i}"))).unwrap();
        }
        assert_eq!(
            s.list().unwrap(),
            vec![
                name::file_name(3, 30),
                name::file_name(2, 30),
                name::file_name(5, 25),
                name::file_name(2, 20),
                name::file_name(1, 10),
            ]
        );
        let markers: Vec<_> = all.iter().map(|&(t, i)| marker(t, i)).collect();
        assert_eq!(
            s.load_newest_available(&markers).unwrap(),
            Some(snap(3, 30, "t3i30"))
        );
        let without_newest: Vec<_> = markers
            .iter()
            .filter(|m| (m.term, m.index) != (3, 30))
            .cloned()
            .collect();
        assert_eq!(
            s.load_newest_available(&without_newest).unwrap(),
            Some(snap(2, 30, "t2i30"))
        );
    });
}

#[test]
fn snapshot_without_matching_wal_marker_is_not_chosen() {
    on_both(|disk| {
        let s = snapshotter(disk.clone());
        s.save(&snap(1, 10, "old")).unwrap();
        s.save(&snap(1, 20, "new")).unwrap();
        assert_eq!(
            s.load_newest_available(&[marker(1, 10)]).unwrap(),
            Some(snap(1, 10, "old"))
        );
        // Same index, other term: not a match.
        assert_eq!(s.load_newest_available(&[marker(2, 20)]).unwrap(), None);
        assert_eq!(s.load_newest_available(&[]).unwrap(), None);
        // Unmatched snapshots are left alone, not quarantined.
        assert_eq!(
            file_names(&*disk),
            vec![name::file_name(1, 10), name::file_name(1, 20)]
        );
    });
}

#[test]
fn corrupt_newest_is_skipped_and_renamed_broken() {
    on_both(|disk| {
        let s = snapshotter(disk.clone());
        let (old, new) = (snap(1, 10, "old store"), snap(2, 20, "new store"));
        let markers = [marker(1, 10), marker(2, 20)];
        let new_name = name::file_name(2, 20);
        let new_path = s.path_of(&new_name);
        s.save(&old).unwrap();
        s.save(&new).unwrap();
        let len = disk.len(&new_path).unwrap();
        for offset in 0..len {
            s.save(&new).unwrap(); // a fresh, good copy each round
            flip(&*disk, &new_path, offset);
            assert_eq!(
                s.load_newest_available(&markers).unwrap(),
                Some(old.clone()),
                "flip at {offset}"
            );
            assert_eq!(s.list().unwrap(), vec![name::file_name(1, 10)]);
            assert_eq!(
                file_names(&*disk),
                vec![name::file_name(1, 10), format!("{new_name}.broken"),],
                "flip at {offset}"
            );
            // The quarantined file is kept and still reads as corrupt.
            assert!(matches!(
                s.load(&format!("{new_name}.broken")),
                Err(SnapError::Corrupt { .. })
            ));
        }
    });
}

#[test]
fn load_of_truncated_file_is_corrupt_at_every_offset() {
    on_both(|disk| {
        let s = snapshotter(disk.clone());
        let sn = snap(4, 99, "a v2 store that is long enough to truncate");
        s.save(&sn).unwrap();
        let file_name = name::file_name(4, 99);
        let path = s.path_of(&file_name);
        let bytes = disk.read_all(&path).unwrap();
        for len in 0..bytes.len() {
            disk.create(&path).unwrap();
            disk.write_at(&path, 0, &bytes[..len]).unwrap();
            match s.load(&file_name) {
                Err(e @ SnapError::Corrupt { .. }) => {
                    let SnapError::Corrupt { file, offset, .. } = &e else {
                        unreachable!()
                    };
                    assert_eq!(file, &path);
                    assert!(*offset <= len as u64, "len {len}: {e}");
                    assert!(e.to_string().contains(&file_name), "{e}");
                }
                other => panic!("truncated to {len}: {other:?}"),
            }
        }
        disk.create(&path).unwrap();
        disk.write_at(&path, 0, &bytes).unwrap();
        assert_eq!(s.load(&file_name).unwrap(), sn);
    });
}

#[test]
fn name_that_disagrees_with_contents_is_corrupt() {
    on_both(|disk| {
        let s = snapshotter(disk.clone());
        s.save(&snap(1, 10, "x")).unwrap();
        let bytes = disk.read_all(&s.path_of(&name::file_name(1, 10))).unwrap();
        let wrong = s.path_of(&name::file_name(1, 11));
        disk.create(&wrong).unwrap();
        disk.write_at(&wrong, 0, &bytes).unwrap();
        match s.load(&name::file_name(1, 11)) {
            Err(SnapError::Corrupt { reason, .. }) => assert!(reason.contains("file name says")),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            s.load_newest_available(&[marker(1, 10), marker(1, 11)])
                .unwrap(),
            Some(snap(1, 10, "x"))
        );
    });
}

#[test]
fn payload_bound_applies_to_save_and_load() {
    on_both(|disk| {
        let small = snapshotter(disk.clone()).with_max_payload(64);
        let big = snap(1, 1, &"v".repeat(100));
        assert!(matches!(
            small.save(&big),
            Err(SnapError::TooLarge { max: 64, .. })
        ));
        assert_eq!(small.list().unwrap(), Vec::<String>::new());
        snapshotter(disk.clone()).save(&big).unwrap();
        match small.load(&name::file_name(1, 1)) {
            Err(SnapError::Corrupt { reason, .. }) => assert!(reason.contains("longer than")),
            other => panic!("{other:?}"),
        }
    });
}

#[test]
fn list_ignores_temporary_broken_and_foreign_files_and_purge_keeps_newest() {
    on_both(|disk| {
        let s = snapshotter(disk.clone());
        for i in 1..=5 {
            s.save(&snap(1, i, "x")).unwrap();
        }
        for junk in [
            format!("{}.tmp", name::file_name(1, 9)),
            format!("{}.broken", name::file_name(1, 8)),
            "db".to_string(),
        ] {
            disk.create(&s.path_of(&junk)).unwrap();
        }
        disk.sync_dir(Path::new(DIR)).unwrap();
        assert_eq!(s.list().unwrap().len(), 5);
        s.purge(2).unwrap();
        assert_eq!(
            s.list().unwrap(),
            vec![name::file_name(1, 5), name::file_name(1, 4)]
        );
        assert_eq!(
            file_names(&*disk),
            vec![
                name::file_name(1, 4),
                name::file_name(1, 5),
                format!("{}.broken", name::file_name(1, 8)),
                "db".to_string(),
            ],
            "the temporary file goes, quarantined and foreign files stay"
        );
        s.purge(2).unwrap();
        assert_eq!(s.list().unwrap().len(), 2);
        s.purge(0).unwrap();
        assert_eq!(s.list().unwrap(), Vec::<String>::new());
    });
}

#[test]
fn saved_and_purged_state_survives_power_loss() {
    let disk = Arc::new(MemDisk::new());
    let s = snapshotter(disk.clone());
    for i in 1..=3 {
        s.save(&snap(1, i, "x")).unwrap();
    }
    s.purge(1).unwrap();
    disk.crash_power_loss();
    assert_eq!(s.list().unwrap(), vec![name::file_name(1, 3)]);
    assert_eq!(s.load(&name::file_name(1, 3)).unwrap(), snap(1, 3, "x"));
}

/// `disk` behind a [`FaultyDisk`] whose mutating operations start failing
/// after `budget` of them, as if the process died there (every later
/// mutation fails too; reads still pass).
fn fail_after(disk: &Arc<MemDisk>, budget: u64) -> Arc<FaultyDisk> {
    let failing = Arc::new(FaultyDisk::new(disk.clone()));
    failing.fail_mutations_from(budget);
    failing
}

/// Lets every directory change through and tears every unsynced write at
/// `keep` bytes: the harshest outcome a power loss may have.
struct KeepDirsTearWrites {
    keep: usize,
}

impl PowerLossPlan for KeepDirsTearWrites {
    fn file_op(&mut self, _: &Path, _: usize, op: &PendingOp) -> Survival {
        match op {
            PendingOp::Write { data, .. } => Survival::Torn {
                keep_bytes: self.keep.min(data.len()),
            },
            PendingOp::SetLen(_) => Survival::Kept,
        }
    }
    fn name_change(&mut self, _: &Path) -> bool {
        true
    }
}

#[test]
fn crash_before_rename_dir_sync_keeps_old_snapshot() {
    let disk = Arc::new(MemDisk::new());
    let (old, new) = (snap(1, 10, "old"), snap(2, 20, "new"));
    snapshotter(disk.clone()).save(&old).unwrap();
    // save = create_dir_all, create tmp, write, sync, rename, sync_dir: the
    // sixth operation, the directory sync after the rename, fails.
    let failing = fail_after(&disk, 5);
    assert!(matches!(
        snapshotter(failing).save(&new),
        Err(SnapError::Io { .. })
    ));
    assert_eq!(
        file_names(&*disk),
        vec![name::file_name(1, 10), name::file_name(2, 20)],
        "before the power loss the rename is visible"
    );
    disk.crash_power_loss();
    let s = snapshotter(disk.clone());
    assert_eq!(file_names(&*disk), vec![name::file_name(1, 10)]);
    assert_eq!(
        s.load_newest_available(&[marker(1, 10), marker(2, 20)])
            .unwrap(),
        Some(old)
    );
}

#[test]
fn crash_at_every_operation_of_save_leaves_old_or_complete_new() {
    let (old, new) = (snap(1, 10, "old store"), snap(2, 20, "the new store"));
    let markers = [marker(1, 10), marker(2, 20)];
    let mut budget = 0;
    let mut saw_new_after_failure = false;
    loop {
        let disk = Arc::new(MemDisk::new());
        snapshotter(disk.clone()).save(&old).unwrap();
        let saved = snapshotter(fail_after(&disk, budget)).save(&new);
        for harsh in [false, true] {
            let image = Arc::new(disk.fork());
            if harsh {
                image.crash_power_loss_with(&mut KeepDirsTearWrites { keep: 3 });
            } else {
                image.crash_power_loss();
            }
            let s = snapshotter(image.clone());
            let chosen = s.load_newest_available(&markers).unwrap();
            if saved.is_ok() {
                assert_eq!(chosen, Some(new.clone()), "budget {budget}");
            } else if harsh {
                assert!(
                    chosen == Some(old.clone()) || chosen == Some(new.clone()),
                    "budget {budget}: {chosen:?}"
                );
                saw_new_after_failure |= chosen == Some(new.clone());
            } else {
                assert_eq!(chosen, Some(old.clone()), "budget {budget}");
            }
            // A torn file never sits under a snapshot name.
            assert!(
                !file_names(&*image).iter().any(|n| n.ends_with(".broken")),
                "budget {budget}: {:?}",
                file_names(&*image)
            );
        }
        if saved.is_ok() {
            break;
        }
        budget += 1;
    }
    assert_eq!(budget, 6, "save is six disk operations");
    assert!(
        saw_new_after_failure,
        "the renamed, synced file may survive"
    );
}

#[test]
fn torn_snapshot_file_is_skipped_and_renamed_broken() {
    // A writer that skipped the temp-file protocol (or a disk that lost the
    // fsync): the final name is durable, its contents are torn.
    let old = snap(1, 10, "old store");
    let new_bytes = record::encode(&snap(2, 20, "the new store"), u64::MAX).unwrap();
    let new_name = name::file_name(2, 20);
    for keep in 0..new_bytes.len() {
        let disk = Arc::new(MemDisk::new());
        let s = snapshotter(disk.clone());
        s.save(&old).unwrap();
        let path = s.path_of(&new_name);
        disk.create(&path).unwrap();
        disk.sync_dir(Path::new(DIR)).unwrap();
        disk.write_at(&path, 0, &new_bytes).unwrap();
        disk.crash_power_loss_with(&mut KeepDirsTearWrites { keep });
        assert_eq!(disk.len(&path).unwrap(), keep as u64);
        assert_eq!(
            s.load_newest_available(&[marker(1, 10), marker(2, 20)])
                .unwrap(),
            Some(old.clone()),
            "torn at {keep}"
        );
        assert_eq!(
            file_names(&*disk),
            vec![name::file_name(1, 10), format!("{new_name}.broken")]
        );
    }
}

#[test]
fn io_errors_are_not_taken_for_corruption() {
    let disk = Arc::new(MemDisk::new());
    snapshotter(disk.clone()).save(&snap(1, 10, "x")).unwrap();
    snapshotter(disk.clone()).save(&snap(1, 20, "y")).unwrap();
    flip(&*disk, &Path::new(DIR).join(name::file_name(1, 20)), 9);
    // Renaming the corrupt file fails: the error surfaces, nothing is chosen.
    let failing = snapshotter(fail_after(&disk, 0));
    assert!(matches!(
        failing.load_newest_available(&[marker(1, 10), marker(1, 20)]),
        Err(SnapError::Io { .. })
    ));
}
