//! Resource limits: length fields that claim gigabytes, and snapshots that
//! claim huge trees, are refused before anything of that size is allocated.
//! A counting allocator records the largest single allocation made while a
//! check runs on this thread.

use prost::Message;
use replica::crash_point::NoCrash;
use replica::disk::{Disk, MemDisk};
use replica::proto::SnapshotMarker;
use replica::snap::Snapshotter;
use replica::v2store::{V2Limits, V2Store};
use replica::wal::{Wal, WalError, WalOptions};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::path::Path;
use std::sync::Arc;

struct Tracking;

thread_local! {
    static TRACK: Cell<bool> = const { Cell::new(false) };
    static PEAK: Cell<usize> = const { Cell::new(0) };
}

fn note(size: usize) {
    let _ = TRACK.try_with(|t| {
        if t.get() {
            let _ = PEAK.try_with(|p| p.set(p.get().max(size)));
        }
    });
}

// SAFETY: forwards to the system allocator; the bookkeeping allocates nothing.
unsafe impl GlobalAlloc for Tracking {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        // SAFETY: same contract as ours.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size);
        // SAFETY: same contract as ours.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOC: Tracking = Tracking;

/// Runs `f` and returns its result with the largest single allocation it made.
fn peak_allocation<T>(f: impl FnOnce() -> T) -> (T, usize) {
    PEAK.with(|p| p.set(0));
    TRACK.with(|t| t.set(true));
    let out = f();
    TRACK.with(|t| t.set(false));
    (out, PEAK.with(Cell::get))
}

/// No allocation sized by a forged length: well under a mebibyte.
const BOUND: usize = 1 << 20;

const WAL_DIR: &str = "wal";

/// A WAL whose only segment is followed by `tail`.
fn wal_with_tail(tail: &[u8]) -> Arc<MemDisk> {
    let disk = Arc::new(MemDisk::new());
    let wal = Wal::create(
        disk.clone(),
        Path::new(WAL_DIR),
        b"meta",
        WalOptions::default(),
        Arc::new(NoCrash),
    )
    .expect("create");
    let (path, end) = wal.tail();
    drop(wal);
    disk.write_at(&path, end, tail).expect("write");
    disk.sync(&path).expect("sync");
    disk
}

fn open_wal(disk: Arc<MemDisk>) -> Result<replica::wal::WalContents, WalError> {
    Wal::open(
        disk,
        Path::new(WAL_DIR),
        &SnapshotMarker::default(),
        WalOptions::default(),
        Arc::new(NoCrash),
    )
    .map(|(_, c)| c)
}

#[test]
fn wal_length_word_claiming_gigabytes_is_refused_without_allocating() {
    // 4 GiB: over the record limit. Non-zero bytes follow, so it cannot be
    // a torn tail: a typed error naming the file and offset.
    let mut tail = (4u64 << 30).to_le_bytes().to_vec();
    tail.extend_from_slice(&[0xab; 64]);
    let (result, peak) = peak_allocation(|| open_wal(wal_with_tail(&tail)));
    match result {
        Err(WalError::Corrupt { file, reason, .. }) => {
            assert!(
                file.ends_with(".wal") && reason.contains("exceeds"),
                "{reason}"
            );
        }
        other => panic!("expected a corrupt-length error, got {other:?}"),
    }
    assert!(peak < BOUND, "allocated {peak} bytes");
}

#[test]
fn wal_length_word_past_end_of_file_reads_only_what_is_there() {
    // 200 MiB: within the record limit but far past the end of the file:
    // the unsynced tail of a torn save, cut off with a logged repair.
    let mut tail = (200u64 << 20).to_le_bytes().to_vec();
    tail.extend_from_slice(&[0xab; 64]);
    let (result, peak) = peak_allocation(|| open_wal(wal_with_tail(&tail)));
    let contents = result.expect("a frame cut short at the end is a torn tail");
    assert!(contents.repaired.is_some());
    assert!(peak < BOUND, "allocated {peak} bytes");
}

#[test]
fn snapshot_length_claiming_a_huge_payload_is_refused_without_allocating() {
    let disk = Arc::new(MemDisk::new());
    let dir = Path::new("snap");
    disk.create_dir_all(dir).unwrap();
    let name = "0000000000000001-0000000000000005.snap";
    // The record header with a payload length of 2^40 bytes, and a little
    // payload.
    let mut bytes = vec![0x0d, 0, 0, 0, 0, 0x12];
    prost::encoding::encode_varint(1 << 40, &mut bytes);
    bytes.extend_from_slice(&[1; 32]);
    disk.create(&dir.join(name)).unwrap();
    disk.write_at(&dir.join(name), 0, &bytes).unwrap();
    let snapshotter = Snapshotter::new(disk.clone(), dir);
    let (result, peak) = peak_allocation(|| snapshotter.load(name));
    let err = result.expect_err("must be refused");
    assert!(err.to_string().contains(name), "{err}");
    assert!(err.to_string().contains("exceeds"), "{err}");
    assert!(peak < BOUND, "allocated {peak} bytes");

    // A file longer than any snapshot is refused before it is read.
    let small = Snapshotter::new(disk.clone(), dir).with_max_payload(64);
    disk.write_at(&dir.join(name), 0, &[7; 4096]).unwrap();
    let (result, peak) = peak_allocation(|| small.load(name));
    assert!(result.expect_err("too long").to_string().contains("longer"));
    assert!(peak < 4096, "read a file it had to refuse: {peak} bytes");
}

#[test]
fn v2_snapshot_claiming_a_huge_tree_is_refused() {
    // A tree over the node bound and a key over the depth bound (with the
    // bounds lowered so the test stays small; the defaults are 2^20 nodes
    // and 64 levels).
    let limits = V2Limits {
        max_depth: 8,
        max_nodes: 100,
    };
    let mut big = V2Store::with_limits(V2Limits {
        max_depth: 64,
        max_nodes: 1 << 20,
    });
    for i in 0..500 {
        big.set(&format!("/k{i}"), "v").unwrap();
    }
    let bytes = big.save();
    let (result, peak) = peak_allocation(|| V2Store::recover_with_limits(&bytes, limits));
    assert!(result.is_err(), "a tree over the node bound was accepted");
    assert!(
        peak < bytes.len(),
        "allocated {peak} for {} bytes",
        bytes.len()
    );

    let mut deep = V2Store::new();
    deep.set("/a/b/c/d/e/f/g/h/i/j", "v").unwrap();
    assert!(V2Store::recover_with_limits(&deep.save(), limits).is_err());
}

#[test]
fn backend_blob_with_a_huge_field_length_is_refused_without_allocating() {
    // An envelope whose body field claims 1 GiB.
    let mut blob = vec![0x0a];
    prost::encoding::encode_varint(1 << 30, &mut blob);
    blob.extend_from_slice(&[0; 16]);
    let (result, peak) = peak_allocation(|| replica::backend::Backend::check_snapshot_bytes(&blob));
    assert!(result.is_err());
    assert!(peak < BOUND, "allocated {peak} bytes");
    // And a real member refuses it as a leader snapshot before writing.
    let payload = replica::member::SnapshotPayload {
        v2: V2Store::new().save(),
        backend: blob,
    }
    .encode_to_vec();
    assert!(!payload.is_empty());
}
