//! Decoder entry points shared by the cargo-fuzz targets (`fuzz/`) and their
//! proptest twins (`tests/fuzz_inputs.rs`), so both feed the same inputs to
//! the same code. Each takes arbitrary bytes, runs a decoder of data a crash,
//! a bad disk or a peer may have damaged, and returns `Err` only when a
//! property fails (the targets turn that into a crash). A decoder that
//! panics or hangs is caught by the harness running it.

use crate::backend::{meta, snapshot};
use crate::crash_point::NoCrash;
use crate::disk::{Disk, MemDisk};
use crate::proto::SnapshotMarker;
use crate::snap::{self, Snapshotter, record};
use crate::v2store::V2Store;
use crate::wal::{SegmentName, Wal, WalOptions};
use std::path::Path;
use std::sync::Arc;

/// A property a decoder broke.
#[derive(Debug)]
pub struct Violation(pub String);

fn violation(what: impl Into<String>) -> Violation {
    Violation(what.into())
}

const WAL_DIR: &str = "wal";

/// Splits `data` into WAL segment files and opens them as a WAL.
///
/// Layout: byte 0 picks the segment count (1 + b % 3) and whether the first
/// segment is segment 0 (bit 7, so the CRC chain seed is known); every
/// segment but the last is a little-endian u16 length then that many bytes,
/// the last takes the rest. Segment `i` is named after index `8 * i`.
///
/// Properties: reading markers, verifying the chain and opening never
/// panic; an open repairs at most once (a second open finds nothing to
/// repair and returns the same entries and hard state).
pub fn wal_segments(data: &[u8]) -> Result<(), Violation> {
    let Some((&head, mut rest)) = data.split_first() else {
        return Ok(());
    };
    let count = 1 + u64::from(head % 3);
    let first_seq = u64::from(head >> 7 == 0);
    let disk = Arc::new(MemDisk::new());
    let dir = Path::new(WAL_DIR);
    let io = |e: std::io::Error| violation(format!("memdisk: {e}"));
    disk.create_dir_all(dir).map_err(io)?;
    for i in 0..count {
        let bytes = if i + 1 == count {
            std::mem::take(&mut rest)
        } else {
            let len = match rest {
                [a, b, ..] => usize::from(u16::from_le_bytes([*a, *b])),
                _ => 0,
            };
            let body = rest.get(2..).unwrap_or_default();
            let (seg, tail) = body.split_at(len.min(body.len()));
            rest = tail;
            seg
        };
        let name = SegmentName {
            seq: first_seq + i,
            first_index: 8 * i,
        };
        let path = name.path(dir);
        disk.create(&path).map_err(io)?;
        disk.write_at(&path, 0, bytes).map_err(io)?;
    }

    let markers =
        Wal::snapshot_markers(disk.as_ref(), dir, crate::bugs::KnownBugs::NONE).unwrap_or_default();
    let _ = Wal::verify_chain(disk.as_ref(), dir, crate::bugs::KnownBugs::NONE);
    let mut at = vec![SnapshotMarker::default()];
    at.extend(markers.last().cloned());
    for marker in at {
        let open = |d: Arc<MemDisk>| {
            Wal::open(d, dir, &marker, WalOptions::default(), Arc::new(NoCrash))
                .map(|(_, contents)| contents)
        };
        let copy = Arc::new(disk.fork());
        let Ok(first) = open(copy.clone()) else {
            continue;
        };
        let second = open(copy)
            .map_err(|e| violation(format!("reopen after a successful open failed: {e}")))?;
        if second.repaired.is_some()
            || second.entries != first.entries
            || second.hard_state != first.hard_state
        {
            return Err(violation(format!(
                "repair is not idempotent: first {first:?}, second {second:?}"
            )));
        }
    }
    Ok(())
}

/// Decodes `data` as a v2 snapshot file (strictly, with a small payload
/// bound as well as the real one), then its data as a v2 store.
///
/// Properties: nothing panics; a decoded file re-encodes to the same bytes;
/// a recovered v2 store saves to bytes that recover to the same store; the
/// snapshotter loads the file under its own name or reports it corrupt.
pub fn v2_snapshot(data: &[u8]) -> Result<(), Violation> {
    let _ = record::decode(data, 64);
    let Ok(decoded) = record::decode(data, snap::MAX_PAYLOAD_BYTES) else {
        let _ = V2Store::recover(data);
        return Ok(());
    };
    let again = record::encode(&decoded.snapshot, snap::MAX_PAYLOAD_BYTES)
        .map_err(|e| violation(format!("decoded snapshot does not encode: {e:?}")))?;
    if again != data {
        return Err(violation("a decoded snapshot file re-encodes differently"));
    }
    if let Ok(v2) = V2Store::recover(&decoded.snapshot.data) {
        let saved = v2.save();
        let back = V2Store::recover(&saved)
            .map_err(|e| violation(format!("a saved v2 store does not recover: {e}")))?;
        if back.dump() != v2.dump() || back.save() != saved {
            return Err(violation("v2 store save/recover does not round-trip"));
        }
    }
    let disk = Arc::new(MemDisk::new());
    let dir = Path::new("snap");
    let m = &decoded.snapshot.marker;
    let name = snap::name::file_name(m.term, m.index);
    let io = |e: std::io::Error| violation(format!("memdisk: {e}"));
    disk.create_dir_all(dir).map_err(io)?;
    disk.create(&dir.join(&name)).map_err(io)?;
    disk.write_at(&dir.join(&name), 0, data).map_err(io)?;
    let loaded = Snapshotter::new(disk, dir)
        .load(&name)
        .map_err(|e| violation(format!("snapshotter refused a valid file: {e}")))?;
    if loaded != decoded.snapshot {
        return Err(violation("snapshotter loaded something else"));
    }
    Ok(())
}

/// Decodes `data` as the backend's `meta` values and as a backend snapshot
/// blob. Byte 0 picks which meta keys are present; the consistent index
/// value is the next `data[1] % 32` bytes, the conf state the rest.
///
/// Properties: nothing panics; a decoded consistent index re-encodes to a
/// value that decodes to the same index.
pub fn backend_meta(data: &[u8]) -> Result<(), Violation> {
    let _ = snapshot::decode(data);
    let Some((&head, rest)) = data.split_first() else {
        return Ok(());
    };
    let split = rest.first().map_or(0, |b| usize::from(b % 32));
    let body = rest.get(1..).unwrap_or_default();
    let (ci, cs) = body.split_at(split.min(body.len()));
    let ci = (head & 1 == 1).then_some(ci);
    let cs = (head & 2 == 2).then_some(cs);
    if let Ok(decoded) = meta::decode(ci, cs) {
        let again = meta::encode_consistent_index(decoded.consistent_index);
        let back = meta::decode_consistent_index(&again)
            .map_err(|e| violation(format!("re-encoded consistent index: {e}")))?;
        if back != decoded.consistent_index {
            return Err(violation("consistent index does not round-trip"));
        }
    }
    Ok(())
}
