//! The write-ahead log: raft hard state, entries and snapshot markers in
//! segment files, in the spirit of etcd's `server/storage/wal`.
//!
//! Layout: a directory of segments `{seq:016x}-{first_index:016x}.wal`. Every
//! segment starts with a Crc record (the chained CRC of everything before
//! it, 0 for the first) and a Metadata record; segment 0 then holds
//! SnapshotMarker{0,0}, later segments the hard state current when they were
//! cut. Each record's CRC continues the previous one (over its type and
//! data, see [`record::record_crc`]), so the chain runs through every segment (see [`record`] for the frame, [`reader`] for
//! the torn-tail rule).
//!
//! Crash safety:
//! - `create` and segment cuts build the new segment as `NAME.wal.tmp`,
//!   fsync it, rename it to `NAME.wal` and fsync the directory. A segment
//!   name therefore only ever points at a durable, complete header; a crash
//!   before that leaves a `.tmp` file that `open` removes and `exists`
//!   ignores (so a crashed `create` is simply redone).
//! - `save` appends one buffer with one write and one fsync, so a crash can
//!   only leave a prefix of the last save, which `open` truncates.
//! - `open` fsyncs the last segment and the directory, because after a
//!   process crash it may read bytes that are only in the page cache: what it
//!   returns must be durable before raft acts on it.
//! - Any failed write, fsync, rename or remove poisons the WAL (a failed
//!   fsync leaves durability unknown; retrying it would lie).

mod error;
mod reader;
pub mod record;
mod segment;

#[cfg(test)]
mod tests;

pub use error::WalError;
pub use segment::SegmentName;

use crate::bugs::KnownBugs;
use crate::crash_point::{CrashHook, CrashPoint};
use crate::disk::{Disk, parent_dir};
use crate::probe::Probe;
use crate::proto::{Entry, HardState, SnapshotMarker};
use prost::Message;
use reader::{Payload, TornTail, Visit, scan};
use record::{MAX_RECORD_LEN, RecordType, WalRecord, encode_frame};
use segment::{display, list_segments, list_tmp_files};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// WAL tuning.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WalOptions {
    /// Cut to a new segment once the current one exceeds this many bytes.
    pub segment_size: u64,
    /// Known-bug switches that live in the WAL (see `crate::bugs`).
    pub bugs: crate::bugs::KnownBugs,
}

impl Default for WalOptions {
    fn default() -> Self {
        WalOptions {
            segment_size: 64 << 20,
            bugs: crate::bugs::KnownBugs::NONE,
        }
    }
}

/// A torn tail that `open` cut off the last segment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TailRepair {
    /// The segment's path (relative to the disk root).
    pub file: String,
    /// Where the file was truncated: the start of the torn frame.
    pub offset: u64,
    /// How many bytes were dropped.
    pub dropped_bytes: u64,
}

/// What `open` read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WalContents {
    pub metadata: Vec<u8>,
    /// The last hard state saved (default if none).
    pub hard_state: HardState,
    /// Entries after the snapshot marker, overwrites applied.
    pub entries: Vec<Entry>,
    pub repaired: Option<TailRepair>,
}

/// An open WAL positioned to append.
#[derive(Debug)]
pub struct Wal {
    disk: Arc<dyn Disk>,
    dir: PathBuf,
    opts: WalOptions,
    hook: Arc<dyn CrashHook>,
    /// Segments on disk, by sequence; the last one is appended to. Never empty.
    segments: Vec<SegmentName>,
    /// Bytes of valid frames in the last segment (where the next write goes).
    tail_len: u64,
    /// The chained CRC after the last record written.
    crc: u32,
    /// Index of the last entry (or snapshot marker, if later) written: the
    /// next segment is named after `last_index + 1`.
    last_index: u64,
    metadata: Vec<u8>,
    /// Repeated at the start of every new segment, so a reader starting at
    /// any segment finds the current hard state.
    hard_state: HardState,
    poisoned: bool,
}

/// Builds a buffer of frames while carrying the CRC chain.
struct Encoder {
    crc: u32,
    buf: Vec<u8>,
}

impl Encoder {
    fn new(crc: u32) -> Self {
        Encoder {
            crc,
            buf: Vec::new(),
        }
    }

    fn push(&mut self, kind: RecordType, data: Vec<u8>) -> Result<(), WalError> {
        // A Crc record carries the chain so far and does not extend it.
        let crc = match kind {
            RecordType::Crc => self.crc,
            _ => record::record_crc(self.crc, kind as i64, &data),
        };
        let record = WalRecord {
            record_type: kind as i64,
            crc,
            data,
        };
        encode_frame(&record, &mut self.buf).map_err(|len| WalError::RecordTooLarge {
            len,
            max: MAX_RECORD_LEN,
        })?;
        self.crc = crc;
        Ok(())
    }
}

/// Writes a complete segment under a temporary name, makes it durable, then
/// gives it its real name durably (see the module comment).
fn install_segment(
    disk: &dyn Disk,
    dir: &Path,
    name: SegmentName,
    bytes: &[u8],
    bugs: KnownBugs,
) -> Result<(), WalError> {
    let tmp = name.tmp_path(dir);
    let path = name.path(dir);
    let tmp_err = |e| WalError::io(display(&tmp), e);
    disk.create(&tmp).map_err(tmp_err)?;
    disk.write_at(&tmp, 0, bytes).map_err(tmp_err)?;
    disk.sync(&tmp).map_err(tmp_err)?;
    disk.rename(&tmp, &path)
        .map_err(|e| WalError::io(display(&path), e))?;
    match disk.sync_dir(dir) {
        // Known bug: carry on as if the name were durable.
        Err(_) if bugs.has(crate::bugs::Bug::SyncDirErrorIgnored) => Ok(()),
        synced => synced.map_err(|e| WalError::io(display(dir), e)),
    }
}

impl Wal {
    /// Whether `dir` holds a WAL (at least one segment file).
    pub fn exists(disk: &dyn Disk, dir: &Path) -> Result<bool, WalError> {
        // Any segment name counts; whether the WAL is readable is open's call.
        let names = disk.list(dir).map_err(|e| WalError::io(display(dir), e))?;
        Ok(names.iter().any(|n| SegmentName::parse(n).is_some()))
    }

    /// Creates a WAL in `dir`: segment 0 holding Crc(0), the metadata and
    /// SnapshotMarker{0,0}, durable when this returns.
    pub fn create(
        disk: Arc<dyn Disk>,
        dir: &Path,
        metadata: &[u8],
        opts: WalOptions,
        hook: Arc<dyn CrashHook>,
    ) -> Result<Wal, WalError> {
        if Self::exists(disk.as_ref(), dir)? {
            return Err(WalError::AlreadyExists { dir: display(dir) });
        }
        let dir_err = |e| WalError::io(display(dir), e);
        disk.create_dir_all(dir).map_err(dir_err)?;
        // The directory's own entry must be durable too.
        disk.sync_dir(parent_dir(dir)).map_err(dir_err)?;
        let marker = SnapshotMarker {
            index: 0,
            term: 0,
            conf_state: None,
        };
        let mut enc = Encoder::new(0);
        enc.push(RecordType::Crc, Vec::new())?;
        enc.push(RecordType::Metadata, metadata.to_vec())?;
        enc.push(RecordType::SnapshotMarker, marker.encode_to_vec())?;
        let first = SegmentName {
            seq: 0,
            first_index: 0,
        };
        install_segment(disk.as_ref(), dir, first, &enc.buf, opts.bugs)?;
        Ok(Wal {
            disk,
            dir: dir.to_path_buf(),
            opts,
            hook,
            segments: vec![first],
            tail_len: enc.buf.len() as u64,
            crc: enc.crc,
            last_index: 0,
            metadata: metadata.to_vec(),
            hard_state: HardState::default(),
            poisoned: false,
        })
    }

    /// Opens the WAL at snapshot marker `at`: reads from the segment that can
    /// contain it to the end, returns the entries after it (overwrites
    /// applied), the last hard state and the metadata, repairs a torn tail of
    /// the last segment, and leaves the WAL positioned to append.
    pub fn open(
        disk: Arc<dyn Disk>,
        dir: &Path,
        at: &SnapshotMarker,
        opts: WalOptions,
        hook: Arc<dyn CrashHook>,
    ) -> Result<(Wal, WalContents), WalError> {
        let dir_err = |e| WalError::io(display(dir), e);
        remove_leftover_tmp_files(disk.as_ref(), dir)?;
        let segments = list_segments(disk.as_ref(), dir)?;
        let not_found = WalError::SnapshotNotFound {
            index: at.index,
            term: at.term,
        };
        let Some(last) = segments.last().copied() else {
            return Err(WalError::NotFound { dir: display(dir) });
        };
        let Some(read) = segments_holding(&segments, at.index) else {
            return Err(not_found);
        };
        let seed = read.first().filter(|s| s.seq == 0).map(|_| 0);

        let mut entries: Vec<Entry> = Vec::new();
        let mut hard_state = HardState::default();
        let mut found = at.index == 0;
        let mut last_index = read.first().map_or(0, |s| s.first_index.saturating_sub(1));
        let mut visit = |v: Visit<'_>| -> Result<(), WalError> {
            match v.payload {
                Payload::Metadata(_) => {}
                Payload::HardState(hs) => hard_state = hs,
                Payload::Snapshot(marker) => {
                    last_index = last_index.max(marker.index);
                    if marker.index == at.index && marker.term == at.term {
                        found = true;
                    }
                }
                Payload::Entry(entry) => {
                    last_index = entry.index;
                    if entry.index > at.index {
                        append_entry(&mut entries, at.index, entry)
                            .map_err(|reason| WalError::corrupt(v.file, v.offset, reason))?;
                    }
                }
            }
            Ok(())
        };
        let end = scan(disk.as_ref(), dir, read, seed, opts.bugs, &mut visit)?;
        if !found {
            return Err(not_found);
        }

        let repaired = repair_torn_tail(disk.as_ref(), end.torn, opts.bugs, hook.as_ref())?;
        let last_path = last.path(dir);
        let last_err = |e| WalError::io(display(&last_path), e);
        disk.sync(&last_path).map_err(last_err)?;
        disk.sync_dir(dir).map_err(dir_err)?;

        let contents = WalContents {
            metadata: end.metadata.clone(),
            hard_state,
            entries,
            repaired,
        };
        let wal = Wal {
            disk,
            dir: dir.to_path_buf(),
            opts,
            hook,
            segments,
            tail_len: end.valid_len,
            crc: end.crc,
            last_index: last_index.max(at.index),
            metadata: end.metadata,
            hard_state,
            poisoned: false,
        };
        Ok((wal, contents))
    }

    /// Every snapshot marker in the WAL, in log order (etcd's
    /// `ValidSnapshotEntries`). Read-only: a torn tail ends the read.
    pub fn snapshot_markers(
        disk: &dyn Disk,
        dir: &Path,
        bugs: KnownBugs,
    ) -> Result<Vec<SnapshotMarker>, WalError> {
        let segments = list_segments(disk, dir)?;
        let seed = segments.first().filter(|s| s.seq == 0).map(|_| 0);
        let mut markers = Vec::new();
        scan(disk, dir, &segments, seed, bugs, &mut |v| {
            if let Payload::Snapshot(m) = v.payload {
                markers.push(m);
            }
            Ok(())
        })?;
        Ok(markers)
    }

    /// Reads every segment and checks frames, payloads, metadata agreement
    /// and the CRC chain end to end. A torn tail of the last segment (which
    /// `open` would repair) is not an error.
    pub fn verify_chain(disk: &dyn Disk, dir: &Path, bugs: KnownBugs) -> Result<(), WalError> {
        let segments = list_segments(disk, dir)?;
        if segments.is_empty() {
            return Err(WalError::NotFound { dir: display(dir) });
        }
        let seed = segments.first().filter(|s| s.seq == 0).map(|_| 0);
        scan(disk, dir, &segments, seed, bugs, &mut |_| Ok(()))?;
        Ok(())
    }

    /// Appends `entries` then `hard_state` (a default hard state counts as
    /// none) in one write and one fsync, then cuts a new segment if the
    /// current one is over size. Nothing to save means no I/O.
    pub fn save(
        &mut self,
        hard_state: Option<&HardState>,
        entries: &[Entry],
    ) -> Result<(), WalError> {
        self.check_poisoned()?;
        let hard_state = hard_state.filter(|hs| **hs != HardState::default());
        if entries.is_empty() && hard_state.is_none() {
            return Ok(());
        }
        for pair in entries.windows(2) {
            if let [a, b] = pair
                && b.index != a.index.wrapping_add(1)
            {
                return Err(WalError::NonConsecutive {
                    previous: a.index,
                    index: b.index,
                });
            }
        }
        let mut enc = Encoder::new(self.crc);
        for entry in entries {
            enc.push(RecordType::Entry, entry.encode_to_vec())?;
        }
        if let Some(hs) = hard_state {
            enc.push(RecordType::HardState, hs.encode_to_vec())?;
        }
        let result = self.append_synced(&enc.buf, true);
        self.poison_on_err(result)?;
        self.crc = enc.crc;
        self.tail_len += enc.buf.len() as u64;
        if let Some(last) = entries.last() {
            // An overwrite after a term change ends the log here, even if
            // higher indexes were written before.
            self.last_index = last.index;
        }
        if let Some(hs) = hard_state {
            self.hard_state = *hs;
        }
        if self.tail_len > self.opts.segment_size {
            let result = self.cut();
            self.poison_on_err(result)?;
        }
        Ok(())
    }

    /// Appends a snapshot marker and fsyncs it.
    pub fn save_snapshot_marker(&mut self, marker: &SnapshotMarker) -> Result<(), WalError> {
        self.check_poisoned()?;
        let mut enc = Encoder::new(self.crc);
        enc.push(RecordType::SnapshotMarker, marker.encode_to_vec())?;
        let result = self.append_synced(&enc.buf, false);
        self.poison_on_err(result)?;
        self.crc = enc.crc;
        self.tail_len += enc.buf.len() as u64;
        self.last_index = self.last_index.max(marker.index);
        Ok(())
    }

    /// Removes the segments wholly before the one that holds `index` (that
    /// one is kept), oldest first, syncing the directory after each removal
    /// so that a crash never leaves a hole in the sequence.
    pub fn release_before(&mut self, index: u64) -> Result<(), WalError> {
        self.check_poisoned()?;
        // Same choice as `open`: the newest segment cut at or before `index`.
        let Some(keep) = self.segments.iter().rposition(|s| s.first_index <= index) else {
            return Ok(());
        };
        let result = self.remove_segments(keep);
        self.poison_on_err(result)
    }

    /// The segment appended to and the end of its valid records, e.g. for
    /// errors that must say where the log ends.
    pub fn tail(&self) -> (PathBuf, u64) {
        (self.tail_path(), self.tail_len)
    }

    /// The segments currently on disk, oldest first.
    pub fn segments(&self) -> &[SegmentName] {
        &self.segments
    }

    /// Removes the `count` oldest segments (never the last one).
    fn remove_segments(&mut self, count: usize) -> Result<(), WalError> {
        for _ in 0..count {
            if self.segments.len() <= 1 {
                break;
            }
            let Some(oldest) = self.segments.first().copied() else {
                break;
            };
            let path = oldest.path(&self.dir);
            self.disk
                .remove(&path)
                .map_err(|e| WalError::io(display(&path), e))?;
            self.disk
                .sync_dir(&self.dir)
                .map_err(|e| WalError::io(display(&self.dir), e))?;
            self.segments.remove(0);
        }
        Ok(())
    }

    fn check_poisoned(&self) -> Result<(), WalError> {
        if self.poisoned {
            Err(WalError::Poisoned)
        } else {
            Ok(())
        }
    }

    fn poison_on_err<T>(&mut self, result: Result<T, WalError>) -> Result<T, WalError> {
        if result.is_err() {
            self.poisoned = true;
        }
        result
    }

    fn tail_path(&self) -> PathBuf {
        match self.segments.last() {
            Some(s) => s.path(&self.dir),
            None => self.dir.clone(),
        }
    }

    /// One write, (crash point), one fsync, (crash point).
    fn append_synced(&self, bytes: &[u8], crash_points: bool) -> Result<(), WalError> {
        let path = self.tail_path();
        let err = |e| WalError::io(display(&path), e);
        self.disk
            .write_at(&path, self.tail_len, bytes)
            .map_err(err)?;
        if crash_points {
            self.hook.at(CrashPoint::WalSaveBeforeSync)?;
        }
        let synced = match self.disk.sync(&path) {
            Err(_) if self.opts.bugs.has(crate::bugs::Bug::FsyncRetryAfterEio) => {
                self.disk.sync(&path)
            }
            synced => synced,
        };
        synced.map_err(err)?;
        if crash_points {
            self.hook.at(CrashPoint::WalSaveAfterSync)?;
        }
        Ok(())
    }

    /// Starts a new segment named after the next index, carrying the chain,
    /// the metadata and the current hard state.
    fn cut(&mut self) -> Result<(), WalError> {
        let Some(tail) = self.segments.last().copied() else {
            return Err(WalError::NotFound {
                dir: display(&self.dir),
            });
        };
        let next = SegmentName {
            seq: tail.seq + 1,
            first_index: self.last_index + 1,
        };
        let mut enc = Encoder::new(self.crc);
        enc.push(RecordType::Crc, Vec::new())?;
        enc.push(RecordType::Metadata, self.metadata.clone())?;
        enc.push(RecordType::HardState, self.hard_state.encode_to_vec())?;
        install_segment(
            self.disk.as_ref(),
            &self.dir,
            next,
            &enc.buf,
            self.opts.bugs,
        )?;
        self.segments.push(next);
        self.tail_len = enc.buf.len() as u64;
        self.crc = enc.crc;
        Ok(())
    }
}

/// Adds `entry` (index > `base`) to `entries`, which hold `base + 1..`: an
/// index at or below the last one replaces the tail from there (raft's
/// overwrite after a term change); an index past the end leaves a gap.
fn append_entry(entries: &mut Vec<Entry>, base: u64, entry: Entry) -> Result<(), String> {
    let next = base + entries.len() as u64 + 1;
    if entry.index > next {
        return Err(format!(
            "entry index {} leaves a gap after index {}",
            entry.index,
            next - 1
        ));
    }
    entries.truncate((entry.index - base - 1) as usize);
    entries.push(entry);
    Ok(())
}

/// Cuts the torn tail a scan found off the last segment (the unsynced end
/// of the last save a power loss tore), and says so; `None` if there was
/// none.
fn repair_torn_tail(
    disk: &dyn Disk,
    torn: Option<TornTail>,
    bugs: KnownBugs,
    hook: &dyn CrashHook,
) -> Result<Option<TailRepair>, WalError> {
    let Some(torn) = torn else {
        return Ok(None);
    };
    if bugs.has(crate::bugs::Bug::NoTornTailRepair) {
        // The bug: the unsynced end of the last save is taken for
        // corruption, so a member cannot boot after a power loss.
        return Err(WalError::Corrupt {
            file: display(&torn.path),
            offset: torn.offset,
            reason: "torn record at the end of the last segment".into(),
        });
    }
    disk.truncate(&torn.path, torn.offset)
        .map_err(|e| WalError::io(display(&torn.path), e))?;
    let repair = TailRepair {
        file: display(&torn.path),
        offset: torn.offset,
        dropped_bytes: torn.file_len - torn.offset,
    };
    tracing::warn!(
        file = %repair.file,
        offset = repair.offset,
        dropped_bytes = repair.dropped_bytes,
        "wal: truncated a torn tail left by an unsynced save"
    );
    hook.probe(Probe::WalTornTailRepaired);
    Ok(Some(repair))
}

/// Removes the leftovers of a segment create or cut that crashed before
/// its rename.
fn remove_leftover_tmp_files(disk: &dyn Disk, dir: &Path) -> Result<(), WalError> {
    for tmp in list_tmp_files(disk, dir)? {
        disk.remove(&tmp)
            .map_err(|e| WalError::io(display(&tmp), e))?;
    }
    Ok(())
}

/// The segments from the newest one cut at or before `index` to the end
/// (`None` if every segment starts after it). Anything newer than the
/// snapshot at `index` lives there or later: a later cut is named after the
/// last index at that time, so a segment named <= index that comes after an
/// older one means the log was cut back below index, which overwrote
/// whatever the older segments held above it.
fn segments_holding(segments: &[SegmentName], index: u64) -> Option<&[SegmentName]> {
    let start = segments.iter().rposition(|s| s.first_index <= index)?;
    segments.get(start..)
}
