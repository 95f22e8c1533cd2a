//! WAL behaviour tests, on `MemDisk` and (where it makes sense) `StdDisk`.

use super::record::{WalRecord, decode_frame};
use super::*;
use crate::bugs::KnownBugs;
use crate::crash_point::{Crashed, NoCrash};
use crate::disk::{FaultyDisk, MemDisk, PendingOp, PowerLossPlan, StdDisk, Survival};
use std::sync::Mutex;

fn dir() -> &'static Path {
    Path::new("member/wal")
}

fn ent(index: u64, term: u64) -> Entry {
    Entry {
        term,
        index,
        entry_type: 0,
        data: format!("entry {index} of term {term}").into_bytes(),
        context: Vec::new(),
    }
}

fn ents(range: std::ops::RangeInclusive<u64>, term: u64) -> Vec<Entry> {
    range.map(|i| ent(i, term)).collect()
}

fn hs(term: u64, commit: u64) -> HardState {
    HardState {
        term,
        vote: 1,
        commit,
    }
}

fn marker(index: u64, term: u64) -> SnapshotMarker {
    SnapshotMarker {
        index,
        term,
        conf_state: None,
    }
}

fn no_crash() -> Arc<dyn CrashHook> {
    Arc::new(NoCrash)
}

fn create(disk: &Arc<dyn Disk>, opts: WalOptions) -> Wal {
    Wal::create(disk.clone(), dir(), b"meta", opts, no_crash()).unwrap()
}

fn open_at(disk: &Arc<dyn Disk>, at: &SnapshotMarker) -> Result<(Wal, WalContents), WalError> {
    Wal::open(disk.clone(), dir(), at, WalOptions::default(), no_crash())
}

fn open(disk: &Arc<dyn Disk>) -> (Wal, WalContents) {
    open_at(disk, &marker(0, 0)).unwrap()
}

fn small() -> WalOptions {
    WalOptions {
        segment_size: 256,
        ..WalOptions::default()
    }
}

/// Runs `test` on a fresh MemDisk and a fresh StdDisk in a temporary dir.
fn with_disks(test: impl Fn(Arc<dyn Disk>)) {
    test(Arc::new(MemDisk::new()));
    let tmp = tempfile::tempdir().unwrap();
    test(Arc::new(StdDisk::new(tmp.path()).unwrap()));
}

fn segment_paths(disk: &dyn Disk) -> Vec<PathBuf> {
    segment::list_segments(disk, dir())
        .unwrap()
        .iter()
        .map(|s| s.path(dir()))
        .collect()
}

fn last_segment(disk: &dyn Disk) -> PathBuf {
    segment_paths(disk).pop().unwrap()
}

/// (offset, frame length, record) of every frame in a file of valid frames.
fn frames(bytes: &[u8]) -> Vec<(u64, u64, WalRecord)> {
    let mut out = Vec::new();
    let mut at = 0usize;
    while at < bytes.len() {
        let (record, len) = decode_frame(&bytes[at..]).unwrap();
        out.push((at as u64, len as u64, record));
        at += len;
    }
    out
}

fn rewrite(disk: &dyn Disk, path: &Path, bytes: &[u8]) {
    disk.create(path).unwrap();
    disk.write_at(path, 0, bytes).unwrap();
    disk.sync(path).unwrap();
}

fn expect_corrupt(result: Result<impl std::fmt::Debug, WalError>) -> (String, u64, String) {
    match result {
        Err(WalError::Corrupt {
            file,
            offset,
            reason,
        }) => (file, offset, reason),
        other => panic!("expected Corrupt, got {other:?}"),
    }
}

#[test]
fn round_trip() {
    with_disks(|disk| {
        assert!(!Wal::exists(disk.as_ref(), dir()).unwrap());
        let mut wal = create(&disk, WalOptions::default());
        assert!(Wal::exists(disk.as_ref(), dir()).unwrap());
        wal.save(Some(&hs(1, 0)), &ents(1..=3, 1)).unwrap();
        wal.save(None, &ents(4..=4, 1)).unwrap();
        wal.save(Some(&hs(2, 4)), &ents(5..=7, 2)).unwrap();
        drop(wal);

        let (mut wal, contents) = open(&disk);
        let mut expected = ents(1..=4, 1);
        expected.extend(ents(5..=7, 2));
        assert_eq!(
            contents,
            WalContents {
                metadata: b"meta".to_vec(),
                hard_state: hs(2, 4),
                entries: expected.clone(),
                repaired: None,
            }
        );
        // The reopened WAL appends where the old one stopped.
        wal.save(Some(&hs(2, 7)), &ents(8..=8, 2)).unwrap();
        drop(wal);
        let (_, contents) = open(&disk);
        expected.push(ent(8, 2));
        assert_eq!(contents.entries, expected);
        assert_eq!(contents.hard_state, hs(2, 7));
        Wal::verify_chain(disk.as_ref(), dir(), KnownBugs::NONE).unwrap();
    });
}

#[test]
fn create_refuses_existing_wal_and_is_durable() {
    let mem = Arc::new(MemDisk::new());
    let disk: Arc<dyn Disk> = mem.clone();
    drop(create(&disk, WalOptions::default()));
    assert!(matches!(
        Wal::create(disk.clone(), dir(), b"x", WalOptions::default(), no_crash()),
        Err(WalError::AlreadyExists { .. })
    ));
    mem.crash_power_loss();
    let (_, contents) = open(&disk);
    assert_eq!(contents.metadata, b"meta");
    assert!(contents.entries.is_empty());
}

#[test]
fn crashed_create_leaves_no_wal_and_is_redone() {
    let mem = Arc::new(MemDisk::new());
    let disk: Arc<dyn Disk> = mem.clone();
    // A create that died after writing its temporary segment.
    disk.create_dir_all(dir()).unwrap();
    let first = SegmentName {
        seq: 0,
        first_index: 0,
    };
    disk.create(&first.tmp_path(dir())).unwrap();
    disk.write_at(&first.tmp_path(dir()), 0, b"partial")
        .unwrap();
    assert!(!Wal::exists(disk.as_ref(), dir()).unwrap());
    drop(create(&disk, WalOptions::default()));
    let (_, contents) = open(&disk);
    assert_eq!(contents.metadata, b"meta");
}

#[test]
fn saving_nothing_does_no_io() {
    let mem = Arc::new(MemDisk::new());
    let disk: Arc<dyn Disk> = mem.clone();
    let mut wal = create(&disk, WalOptions::default());
    let path = last_segment(disk.as_ref());
    let before = disk.read_all(&path).unwrap();
    wal.save(None, &[]).unwrap();
    wal.save(Some(&HardState::default()), &[]).unwrap();
    assert_eq!(disk.read_all(&path).unwrap(), before);
    assert!(mem.files_with_pending_ops().is_empty());
}

#[test]
fn save_refuses_non_consecutive_entries() {
    let disk: Arc<dyn Disk> = Arc::new(MemDisk::new());
    let mut wal = create(&disk, WalOptions::default());
    let bad = vec![ent(1, 1), ent(3, 1)];
    assert!(matches!(
        wal.save(None, &bad),
        Err(WalError::NonConsecutive {
            previous: 1,
            index: 3
        })
    ));
    // Nothing was written, so the WAL is still usable.
    wal.save(None, &ents(1..=2, 1)).unwrap();
}

/// Saves 1..=3 and then entry 4 alone; returns the last segment's bytes and
/// the byte range of entry 4's frame.
fn wal_with_last_record(disk: &Arc<dyn Disk>) -> (PathBuf, Vec<u8>, u64, u64) {
    let mut wal = create(disk, WalOptions::default());
    wal.save(Some(&hs(1, 2)), &ents(1..=3, 1)).unwrap();
    let path = last_segment(disk.as_ref());
    let start = disk.len(&path).unwrap();
    wal.save(None, &ents(4..=4, 1)).unwrap();
    let end = disk.len(&path).unwrap();
    (path.clone(), disk.read_all(&path).unwrap(), start, end)
}

#[test]
fn torn_tail_at_every_offset_is_repaired() {
    with_disks(|disk| {
        let (path, bytes, start, end) = wal_with_last_record(&disk);
        for cut in start + 1..end {
            rewrite(disk.as_ref(), &path, &bytes[..cut as usize]);
            let (_, contents) = open(&disk);
            assert_eq!(contents.entries, ents(1..=3, 1), "cut at {cut}");
            assert_eq!(contents.hard_state, hs(1, 2));
            assert_eq!(
                contents.repaired,
                Some(TailRepair {
                    file: path.display().to_string(),
                    offset: start,
                    dropped_bytes: cut - start,
                }),
                "cut at {cut}"
            );
            assert_eq!(disk.len(&path).unwrap(), start, "file truncated");
            let (_, again) = open(&disk);
            assert_eq!(again.repaired, None);
            assert_eq!(again.entries, ents(1..=3, 1));
        }
        // The tail of the last save overwritten by zeros (a filesystem that
        // extended the file but never wrote the data) is torn too.
        for zero_from in start..end {
            if bytes[zero_from as usize..].iter().all(|&b| b == 0) {
                continue; // only padding left: nothing changes
            }
            let mut zeroed = bytes.clone();
            zeroed[zero_from as usize..].fill(0);
            rewrite(disk.as_ref(), &path, &zeroed);
            let (_, contents) = open(&disk);
            assert_eq!(contents.entries, ents(1..=3, 1), "zeros from {zero_from}");
            assert_eq!(
                contents.repaired.map(|r| (r.offset, r.dropped_bytes)),
                Some((start, end - start))
            );
        }
    });
}

#[test]
fn repaired_wal_appends_after_the_cut() {
    let disk: Arc<dyn Disk> = Arc::new(MemDisk::new());
    let (path, bytes, start, end) = wal_with_last_record(&disk);
    rewrite(disk.as_ref(), &path, &bytes[..(start + end) as usize / 2]);
    let (mut wal, contents) = open(&disk);
    assert!(contents.repaired.is_some());
    wal.save(Some(&hs(2, 3)), &ents(4..=5, 2)).unwrap();
    drop(wal);
    let (_, contents) = open(&disk);
    let mut expected = ents(1..=3, 1);
    expected.extend(ents(4..=5, 2));
    assert_eq!(contents.entries, expected);
    Wal::verify_chain(disk.as_ref(), dir(), KnownBugs::NONE).unwrap();
}

/// Crashes at one crash point once armed.
#[derive(Debug, Default)]
struct ArmedCrash(Mutex<Option<CrashPoint>>);

impl ArmedCrash {
    fn arm(&self, point: CrashPoint) {
        *self.0.lock().unwrap() = Some(point);
    }
}

impl CrashHook for ArmedCrash {
    fn at(&self, point: CrashPoint) -> Result<(), Crashed> {
        if *self.0.lock().unwrap() == Some(point) {
            Err(Crashed { point })
        } else {
            Ok(())
        }
    }
}

/// A WAL holding 1..=3 (hard state 1/2) whose save of 4..=5 crashed at `point`.
fn crashed_save(point: CrashPoint) -> Arc<MemDisk> {
    let mem = Arc::new(MemDisk::new());
    let disk: Arc<dyn Disk> = mem.clone();
    let hook = Arc::new(ArmedCrash::default());
    let mut wal = Wal::create(disk, dir(), b"meta", WalOptions::default(), hook.clone()).unwrap();
    wal.save(Some(&hs(1, 2)), &ents(1..=3, 1)).unwrap();
    hook.arm(point);
    let err = wal.save(Some(&hs(1, 5)), &ents(4..=5, 1)).unwrap_err();
    assert!(matches!(err, WalError::Crashed(Crashed { point: p }) if p == point));
    assert!(matches!(
        wal.save(None, &ents(6..=6, 1)),
        Err(WalError::Poisoned)
    ));
    mem
}

#[test]
fn power_loss_before_sync_gives_previous_state() {
    let mem = crashed_save(CrashPoint::WalSaveBeforeSync);
    mem.crash_power_loss();
    let disk: Arc<dyn Disk> = mem;
    let (_, contents) = open(&disk);
    assert_eq!(contents.entries, ents(1..=3, 1));
    assert_eq!(contents.hard_state, hs(1, 2));
}

#[test]
fn power_loss_after_sync_keeps_the_save() {
    let mem = crashed_save(CrashPoint::WalSaveAfterSync);
    mem.crash_power_loss();
    let disk: Arc<dyn Disk> = mem;
    let (_, contents) = open(&disk);
    assert_eq!(contents.entries, ents(1..=5, 1));
    assert_eq!(contents.hard_state, hs(1, 5));
}

#[test]
fn open_makes_page_cache_contents_durable() {
    // A process crash before the fsync leaves the save in the page cache;
    // open returns it, so open must make it durable before raft relies on it.
    let mem = crashed_save(CrashPoint::WalSaveBeforeSync);
    let disk: Arc<dyn Disk> = mem.clone();
    let (_, contents) = open(&disk);
    assert_eq!(contents.entries, ents(1..=5, 1));
    mem.crash_power_loss();
    let (_, contents) = open(&disk);
    assert_eq!(contents.entries, ents(1..=5, 1));
}

/// Keeps the first `keep` bytes of every unsynced write.
struct TearAt(usize);

impl PowerLossPlan for TearAt {
    fn file_op(&mut self, _: &Path, _: usize, _: &PendingOp) -> Survival {
        Survival::Torn { keep_bytes: self.0 }
    }
    fn name_change(&mut self, _: &Path) -> bool {
        true
    }
}

#[test]
fn power_loss_tearing_the_last_save_anywhere_recovers_a_prefix() {
    let mem = crashed_save(CrashPoint::WalSaveBeforeSync);
    let path = last_segment(mem.as_ref());
    let pending = mem.pending_ops(&path).unwrap();
    let [PendingOp::Write { data, .. }] = pending.as_slice() else {
        panic!("one pending write expected, got {pending:?}");
    };
    let boundaries: Vec<usize> = frames(data).iter().map(|(o, _, _)| *o as usize).collect();
    let mut last_seen = 3;
    for keep in 0..=data.len() {
        let fork = Arc::new(mem.fork());
        fork.crash_power_loss_with(&mut TearAt(keep));
        let disk: Arc<dyn Disk> = fork;
        let (_, contents) = open(&disk);
        let n = contents.entries.len() as u64;
        assert!(
            (3..=5).contains(&n) && n >= last_seen,
            "keep {keep}: {n} entries"
        );
        assert_eq!(contents.entries, ents(1..=n, 1));
        last_seen = n;
        if keep == data.len() {
            assert_eq!(contents.repaired, None);
            assert_eq!(contents.hard_state, hs(1, 5));
        } else {
            // A tear at a frame boundary leaves nothing to repair.
            assert_eq!(
                contents.repaired.is_none(),
                boundaries.contains(&keep),
                "keep {keep}"
            );
        }
    }
    assert_eq!(last_seen, 5);
}

#[test]
fn flipped_byte_in_a_middle_record_is_corruption() {
    with_disks(|disk| {
        let mut wal = create(&disk, WalOptions::default());
        for i in 1..=6 {
            wal.save(Some(&hs(1, i - 1)), &ents(i..=i, 1)).unwrap();
        }
        drop(wal);
        let path = last_segment(disk.as_ref());
        let bytes = disk.read_all(&path).unwrap();
        let all = frames(&bytes);
        // The frame of entry 3, with valid records after it.
        let (offset, len, _) = all
            .iter()
            .find(|(_, _, r)| {
                r.record_type == RecordType::Entry as i64
                    && Entry::decode(r.data.as_slice()).unwrap().index == 3
            })
            .cloned()
            .unwrap();
        // Every byte of the frame, length word and padding included.
        for at in offset..offset + len {
            for xor in [0x01u8, 0x10, 0x80] {
                let mut damaged = bytes.clone();
                damaged[at as usize] ^= xor;
                rewrite(disk.as_ref(), &path, &damaged);
                let result = open_at(&disk, &marker(0, 0)).map(|(_, c)| c);
                assert!(result.is_err(), "byte {at} xor {xor:#x}: opened");
                let (file, bad_offset, reason) = expect_corrupt(result);
                assert_eq!(file, path.display().to_string(), "byte {at} xor {xor:#x}");
                assert_eq!(bad_offset, offset, "byte {at} xor {xor:#x}: {reason}");
                assert!(matches!(
                    Wal::verify_chain(disk.as_ref(), dir(), KnownBugs::NONE),
                    Err(WalError::Corrupt { .. })
                ));
            }
        }
    });
}

#[test]
fn flipped_byte_in_an_earlier_segment_is_corruption() {
    let mem = Arc::new(MemDisk::new());
    let disk: Arc<dyn Disk> = mem.clone();
    let mut wal = create(&disk, small());
    for i in 1..=20 {
        wal.save(None, &ents(i..=i, 1)).unwrap();
    }
    drop(wal);
    let paths = segment_paths(disk.as_ref());
    assert!(paths.len() >= 3);
    // The last record of the first segment: a torn tail if it were the last
    // segment, but here later segments prove it was synced.
    let first = &paths[0];
    let (offset, len, _) = frames(&disk.read_all(first).unwrap()).pop().unwrap();
    mem.corrupt_durable(first, offset + len - 1 - record::padding_for(len), 0x01)
        .unwrap();
    let (file, bad, _) = expect_corrupt(open_at(&disk, &marker(0, 0)));
    assert_eq!((file, bad), (first.display().to_string(), offset));
}

#[test]
fn term_change_overwrites_the_tail() {
    with_disks(|disk| {
        let mut wal = create(&disk, WalOptions::default());
        wal.save(Some(&hs(1, 2)), &ents(1..=5, 1)).unwrap();
        wal.save(Some(&hs(2, 3)), &ents(4..=6, 2)).unwrap();
        drop(wal);
        let mut expected = ents(1..=3, 1);
        expected.extend(ents(4..=6, 2));
        let (mut wal, contents) = open(&disk);
        assert_eq!(contents.entries, expected);
        // Overwrite again after reopening, further back.
        wal.save(Some(&hs(3, 3)), &ents(3..=3, 3)).unwrap();
        drop(wal);
        let (_, contents) = open(&disk);
        let mut expected = ents(1..=2, 1);
        expected.push(ent(3, 3));
        assert_eq!(contents.entries, expected);
    });
}

#[test]
fn term_change_across_segments() {
    with_disks(|disk| {
        // A segment size of 1 cuts after every save.
        let mut wal = create(
            &disk,
            WalOptions {
                segment_size: 1,
                ..WalOptions::default()
            },
        );
        wal.save(Some(&hs(1, 2)), &ents(1..=5, 1)).unwrap();
        wal.save(Some(&hs(2, 3)), &ents(4..=6, 2)).unwrap();
        wal.save(None, &ents(7..=7, 2)).unwrap();
        let names: Vec<(u64, u64)> = wal
            .segments()
            .iter()
            .map(|s| (s.seq, s.first_index))
            .collect();
        // Segment 2 was cut after the overwrite ended the log at 6.
        assert_eq!(names, vec![(0, 0), (1, 6), (2, 7), (3, 8)]);
        drop(wal);
        let mut expected = ents(1..=3, 1);
        expected.extend(ents(4..=7, 2));
        let (_, contents) = open(&disk);
        assert_eq!(contents.entries, expected);
        assert_eq!(contents.hard_state, hs(2, 3));
        Wal::verify_chain(disk.as_ref(), dir(), KnownBugs::NONE).unwrap();
    });
}

#[test]
fn segments_cut_release_and_read_across() {
    with_disks(|disk| {
        let mut wal = create(&disk, small());
        for i in 1..=40 {
            wal.save(Some(&hs(1, i)), &ents(i..=i, 1)).unwrap();
        }
        let segments = wal.segments().to_vec();
        assert!(segments.len() >= 4, "{segments:?}");
        for pair in segments.windows(2) {
            assert_eq!(pair[1].seq, pair[0].seq + 1);
            assert!(pair[1].first_index > pair[0].first_index);
        }
        Wal::verify_chain(disk.as_ref(), dir(), KnownBugs::NONE).unwrap();
        let (_, contents) = open(&disk);
        assert_eq!(contents.entries, ents(1..=40, 1));
        assert_eq!(contents.hard_state, hs(1, 40));

        // Snapshot at 25, then release everything before its segment.
        wal.save_snapshot_marker(&marker(25, 1)).unwrap();
        wal.release_before(25).unwrap();
        let holder = segments.iter().rposition(|s| s.first_index <= 25).unwrap();
        assert_eq!(wal.segments(), &segments[holder..]);
        let on_disk: Vec<String> = disk
            .list(dir())
            .unwrap()
            .into_iter()
            .filter(|n| n.ends_with(".wal"))
            .collect();
        let kept: Vec<String> = segments[holder..].iter().map(|s| s.file_name()).collect();
        assert_eq!(on_disk, kept);
        wal.save(Some(&hs(1, 41)), &ents(41..=41, 1)).unwrap();
        drop(wal);

        Wal::verify_chain(disk.as_ref(), dir(), KnownBugs::NONE).unwrap();
        let (_, contents) = open_at(&disk, &marker(25, 1)).unwrap();
        assert_eq!(contents.entries, ents(26..=41, 1));
        assert_eq!(contents.hard_state, hs(1, 41));
        // The start of the log is gone.
        assert!(matches!(
            open_at(&disk, &marker(0, 0)),
            Err(WalError::SnapshotNotFound { index: 0, term: 0 })
        ));
        assert_eq!(
            Wal::snapshot_markers(disk.as_ref(), dir(), KnownBugs::NONE).unwrap(),
            vec![marker(25, 1)]
        );
    });
}

#[test]
fn release_before_an_early_index_keeps_everything() {
    let disk: Arc<dyn Disk> = Arc::new(MemDisk::new());
    let mut wal = create(&disk, small());
    for i in 1..=20 {
        wal.save(None, &ents(i..=i, 1)).unwrap();
    }
    let before = wal.segments().to_vec();
    wal.release_before(0).unwrap();
    wal.release_before(1).unwrap();
    assert_eq!(wal.segments(), before.as_slice());
    // Even far past the end the last segment stays.
    wal.release_before(u64::MAX).unwrap();
    assert_eq!(wal.segments(), &before[before.len() - 1..]);
}

#[test]
fn broken_chain_between_segments_is_an_error() {
    with_disks(|disk| {
        let mut wal = create(&disk, small());
        for i in 1..=20 {
            wal.save(None, &ents(i..=i, 1)).unwrap();
        }
        drop(wal);
        let paths = segment_paths(disk.as_ref());
        let middle = &paths[1];
        let bytes = disk.read_all(middle).unwrap();
        let (_, len, mut crc_record) = frames(&bytes).remove(0);
        assert_eq!(crc_record.record_type, RecordType::Crc as i64);
        // Same length, wrong seed.
        crc_record.crc ^= 0x0100_0000;
        let mut frame = Vec::new();
        record::encode_frame(&crc_record, &mut frame).unwrap();
        assert_eq!(frame.len() as u64, len);
        let mut damaged = bytes.clone();
        damaged[..frame.len()].copy_from_slice(&frame);
        rewrite(disk.as_ref(), middle, &damaged);

        let (file, offset, reason) =
            expect_corrupt(Wal::verify_chain(disk.as_ref(), dir(), KnownBugs::NONE));
        assert_eq!(
            (file.as_str(), offset),
            (middle.display().to_string().as_str(), 0)
        );
        assert!(reason.contains("chain"), "{reason}");
        expect_corrupt(open_at(&disk, &marker(0, 0)));
    });
}

#[test]
fn missing_middle_segment_is_an_error() {
    let disk: Arc<dyn Disk> = Arc::new(MemDisk::new());
    let mut wal = create(&disk, small());
    for i in 1..=20 {
        wal.save(None, &ents(i..=i, 1)).unwrap();
    }
    drop(wal);
    let paths = segment_paths(disk.as_ref());
    disk.remove(&paths[1]).unwrap();
    let (file, _, reason) =
        expect_corrupt(Wal::verify_chain(disk.as_ref(), dir(), KnownBugs::NONE));
    assert_eq!(file, paths[2].display().to_string());
    assert!(reason.contains("sequence"), "{reason}");
    expect_corrupt(open_at(&disk, &marker(0, 0)));
}

#[test]
fn open_at_snapshot_marker() {
    with_disks(|disk| {
        let mut wal = create(&disk, WalOptions::default());
        wal.save(Some(&hs(1, 5)), &ents(1..=10, 1)).unwrap();
        wal.save_snapshot_marker(&marker(5, 1)).unwrap();
        wal.save(Some(&hs(2, 10)), &ents(11..=12, 2)).unwrap();
        wal.save_snapshot_marker(&marker(10, 1)).unwrap();
        drop(wal);

        assert_eq!(
            Wal::snapshot_markers(disk.as_ref(), dir(), KnownBugs::NONE).unwrap(),
            vec![marker(0, 0), marker(5, 1), marker(10, 1)]
        );
        let (_, contents) = open_at(&disk, &marker(5, 1)).unwrap();
        let mut expected = ents(6..=10, 1);
        expected.extend(ents(11..=12, 2));
        assert_eq!(contents.entries, expected);
        assert_eq!(contents.hard_state, hs(2, 10));
        let (_, contents) = open_at(&disk, &marker(10, 1)).unwrap();
        assert_eq!(contents.entries, ents(11..=12, 2));
        for missing in [marker(7, 1), marker(5, 2), marker(13, 2)] {
            assert!(
                matches!(
                    open_at(&disk, &missing),
                    Err(WalError::SnapshotNotFound { index, term })
                        if (index, term) == (missing.index, missing.term)
                ),
                "{missing:?}"
            );
        }
    });
}

#[test]
fn snapshot_marker_names_later_segments() {
    // A marker past the last entry (a snapshot received from the leader)
    // moves the next segment's first index past it.
    let disk: Arc<dyn Disk> = Arc::new(MemDisk::new());
    let mut wal = create(
        &disk,
        WalOptions {
            segment_size: 1,
            ..WalOptions::default()
        },
    );
    wal.save(None, &ents(1..=2, 1)).unwrap();
    wal.save_snapshot_marker(&marker(100, 3)).unwrap();
    wal.save(Some(&hs(3, 100)), &ents(101..=102, 3)).unwrap();
    let firsts: Vec<u64> = wal.segments().iter().map(|s| s.first_index).collect();
    assert_eq!(firsts, vec![0, 3, 103]);
    wal.release_before(100).unwrap();
    drop(wal);
    let (_, contents) = open_at(&disk, &marker(100, 3)).unwrap();
    assert_eq!(contents.entries, ents(101..=102, 3));
}

fn assert_poisoned(wal: &mut Wal) {
    assert!(matches!(
        wal.save(None, &ents(9..=9, 1)),
        Err(WalError::Poisoned)
    ));
    assert!(matches!(
        wal.save_snapshot_marker(&marker(1, 1)),
        Err(WalError::Poisoned)
    ));
    assert!(matches!(wal.release_before(1), Err(WalError::Poisoned)));
}

#[test]
fn fsync_failure_poisons() {
    let failing = Arc::new(FaultyDisk::default());
    let disk: Arc<dyn Disk> = failing.clone();
    let mut wal = create(&disk, WalOptions::default());
    wal.save(Some(&hs(1, 1)), &ents(1..=2, 1)).unwrap();
    failing.set_fail_every_sync(true);
    assert!(matches!(
        wal.save(Some(&hs(1, 2)), &ents(3..=3, 1)),
        Err(WalError::Io { .. })
    ));
    // The disk recovers; the WAL must not.
    failing.set_fail_every_sync(false);
    assert_poisoned(&mut wal);
}

#[test]
fn write_failure_poisons() {
    let failing = Arc::new(FaultyDisk::default());
    let disk: Arc<dyn Disk> = failing.clone();
    let mut wal = create(&disk, WalOptions::default());
    failing.set_fail_every_write(true);
    assert!(matches!(
        wal.save_snapshot_marker(&marker(1, 1)),
        Err(WalError::Io { .. })
    ));
    failing.set_fail_every_write(false);
    assert_poisoned(&mut wal);
}

#[test]
fn failed_cut_poisons() {
    let failing = Arc::new(FaultyDisk::default());
    let disk: Arc<dyn Disk> = failing.clone();
    let mut wal = create(
        &disk,
        WalOptions {
            segment_size: 1,
            ..WalOptions::default()
        },
    );
    // The save's own write succeeds; the cut's temporary segment does not.
    failing.set_fail_every_sync(false);
    wal.save(None, &ents(1..=1, 1)).unwrap();
    failing.set_fail_every_write(true);
    assert!(wal.save(None, &ents(2..=2, 1)).is_err());
    failing.set_fail_every_write(false);
    assert_poisoned(&mut wal);
}

#[test]
fn metadata_must_agree_across_segments() {
    let disk: Arc<dyn Disk> = Arc::new(MemDisk::new());
    let mut wal = create(
        &disk,
        WalOptions {
            segment_size: 1,
            ..WalOptions::default()
        },
    );
    wal.save(Some(&hs(1, 1)), &ents(1..=1, 1)).unwrap();
    drop(wal);
    // The last segment holds only its header; rebuild it with other metadata
    // and a valid chain.
    let path = last_segment(disk.as_ref());
    let header = frames(&disk.read_all(&path).unwrap());
    let mut enc = Encoder::new(header[0].2.crc);
    enc.push(RecordType::Crc, Vec::new()).unwrap();
    enc.push(RecordType::Metadata, b"other".to_vec()).unwrap();
    enc.push(RecordType::HardState, hs(1, 1).encode_to_vec())
        .unwrap();
    rewrite(disk.as_ref(), &path, &enc.buf);
    let crc_frame_len = header[0].1;
    match open_at(&disk, &marker(0, 0)) {
        Err(WalError::MetadataMismatch { file, offset }) => {
            assert_eq!((file, offset), (path.display().to_string(), crc_frame_len));
        }
        other => panic!("expected MetadataMismatch, got {other:?}"),
    }
}

#[test]
fn open_removes_leftover_temporary_segments() {
    let disk: Arc<dyn Disk> = Arc::new(MemDisk::new());
    drop(create(&disk, WalOptions::default()));
    let tmp = SegmentName {
        seq: 1,
        first_index: 1,
    }
    .tmp_path(dir());
    disk.create(&tmp).unwrap();
    disk.write_at(&tmp, 0, b"half a segment").unwrap();
    let (mut wal, _) = open(&disk);
    assert!(!disk.exists(&tmp).unwrap());
    wal.save(None, &ents(1..=1, 1)).unwrap();
}

#[test]
fn power_loss_after_a_cut_keeps_everything_synced() {
    let mem = Arc::new(MemDisk::new());
    let disk: Arc<dyn Disk> = mem.clone();
    let mut wal = create(&disk, small());
    for i in 1..=20 {
        wal.save(Some(&hs(1, i)), &ents(i..=i, 1)).unwrap();
    }
    assert!(wal.segments().len() > 2);
    mem.crash_power_loss();
    let (_, contents) = open(&disk);
    assert_eq!(contents.entries, ents(1..=20, 1));
    assert_eq!(contents.hard_state, hs(1, 20));
}

#[test]
fn gap_in_entries_is_corruption() {
    let disk: Arc<dyn Disk> = Arc::new(MemDisk::new());
    let mut wal = create(&disk, WalOptions::default());
    wal.save(None, &ents(1..=2, 1)).unwrap();
    wal.save(None, &ents(5..=5, 1)).unwrap();
    drop(wal);
    let (_, _, reason) = expect_corrupt(open_at(&disk, &marker(0, 0)));
    assert!(reason.contains("gap"), "{reason}");
}

mod prop {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Opening a WAL whose last segment has arbitrary bytes after its
        /// header never panics; it repairs or refuses.
        #[test]
        fn open_never_panics_on_garbage_tail(garbage in proptest::collection::vec(any::<u8>(), 0..200)) {
            let disk: Arc<dyn Disk> = Arc::new(MemDisk::new());
            let mut wal = create(&disk, WalOptions::default());
            wal.save(None, &ents(1..=2, 1)).unwrap();
            drop(wal);
            let path = last_segment(disk.as_ref());
            let mut bytes = disk.read_all(&path).unwrap();
            bytes.extend_from_slice(&garbage);
            rewrite(disk.as_ref(), &path, &bytes);
            match open_at(&disk, &marker(0, 0)) {
                Ok((_, contents)) => prop_assert_eq!(contents.entries, ents(1..=2, 1)),
                Err(WalError::Corrupt { .. }) => {}
                Err(e) => prop_assert!(false, "unexpected error {e:?}"),
            }
        }
    }
}
