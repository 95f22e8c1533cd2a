//! Reading segments: frames, the CRC chain, header structure, and the
//! torn-tail rule.
//!
//! Torn-tail rule. `save` issues one write per call and fsyncs it, and a new
//! segment is built in a temporary file, fsynced, renamed and the directory
//! fsynced before anything is appended to it. So the only bytes a crash can
//! leave half-written are those of the last save, at the end of the last
//! segment. A power loss keeps a prefix of that write (possibly nothing, the
//! whole of it, or a file extended with zeros by the filesystem). Hence, in
//! the LAST segment only:
//! - a frame cut short by end of file,
//! - a zero length word followed only by zeros,
//! - a record failing its CRC or decode with nothing but zeros/EOF after it,
//!
//! is the unsynced tail of the last save: truncate it (fsync) and warn. A bad
//! record followed by anything else non-zero (e.g. a valid record) cannot be
//! a torn tail and is corruption, as is any bad record in an earlier segment
//! or in a segment's header (its Crc and Metadata records, which were made
//! durable before the segment got its name).
//!
//! One refinement guards against a flipped bit in a length word, which would
//! otherwise make every later record look like the tail of a torn frame: a
//! torn frame only ever holds a *prefix* of its record, so if the bytes after
//! a bad length word already hold a complete record that continues the CRC
//! chain but is shorter than the word claims, the word is corrupt, not torn.

use super::WalError;
use super::record::{
    LEN_WORD, RecordType, WalRecord, decode_body_with_padding, decode_len_word, record_crc,
};
use super::segment::{SegmentName, display};
use crate::bugs::{Bug, KnownBugs};
use crate::disk::Disk;
use crate::proto::{Entry, HardState, SnapshotMarker};
use prost::Message;
use std::path::{Path, PathBuf};

/// A decoded record payload.
#[derive(Debug)]
pub(crate) enum Payload {
    Metadata(Vec<u8>),
    Entry(Entry),
    HardState(HardState),
    Snapshot(SnapshotMarker),
}

/// A record handed to a scan's visitor.
pub(crate) struct Visit<'a> {
    pub file: &'a str,
    pub offset: u64,
    pub payload: Payload,
}

/// A torn tail found at the end of the last segment (not yet repaired).
#[derive(Debug)]
pub(crate) struct TornTail {
    pub path: PathBuf,
    pub offset: u64,
    pub file_len: u64,
}

/// Where a scan stopped.
#[derive(Debug)]
pub(crate) struct ScanEnd {
    /// The chained CRC after the last valid record.
    pub crc: u32,
    /// Bytes of valid frames in the last segment.
    pub valid_len: u64,
    /// The torn tail of the last segment, if any.
    pub torn: Option<TornTail>,
    /// The metadata all segments agree on.
    pub metadata: Vec<u8>,
}

/// Reads `segments` of `dir` in order, checking frames, the CRC chain across
/// segments (starting from `seed` if known) and metadata agreement, and hands
/// every Metadata/Entry/HardState/SnapshotMarker record to `visit`. A torn
/// tail of the last segment ends the scan; it is reported, not repaired.
pub(crate) fn scan(
    disk: &dyn Disk,
    dir: &Path,
    segments: &[SegmentName],
    seed: Option<u32>,
    bugs: KnownBugs,
    visit: &mut dyn FnMut(Visit<'_>) -> Result<(), WalError>,
) -> Result<ScanEnd, WalError> {
    let mut chain = seed;
    // The segment read before this one and where its records ended: a
    // chain that does not continue may be its fault (a lost tail).
    let mut previous: Option<(String, u64)> = None;
    let mut metadata: Option<Vec<u8>> = None;
    let mut end = ScanEnd {
        crc: seed.unwrap_or(0),
        valid_len: 0,
        torn: None,
        metadata: Vec::new(),
    };
    for (i, segment) in segments.iter().enumerate() {
        let is_last = i + 1 == segments.len();
        let mut reader = SegmentReader::new(disk, segment.path(dir), chain, previous.take())?;
        reader.switch_known_bugs(bugs);
        loop {
            let step = match reader.next() {
                // Known bug: a read error reads as the end of the segment.
                Err(WalError::Io { .. }) if bugs.has(Bug::WalReadErrorAsEof) => Step::End,
                step => step?,
            };
            match step {
                Step::End => break,
                Step::Record { offset, kind, data } => {
                    let Some(payload) = decode_payload(kind, data)
                        .map_err(|reason| WalError::corrupt(&reader.file, offset, reason))?
                    else {
                        continue;
                    };
                    if let Payload::Metadata(m) = &payload {
                        agree_on_metadata(&mut metadata, m, &reader.file, offset)?;
                    }
                    visit(Visit {
                        file: &reader.file,
                        offset,
                        payload,
                    })?;
                }
                Step::Bad(bad) => {
                    if is_last && reader.records >= HEADER_RECORDS && reader.is_torn(&bad)? {
                        end.torn = Some(TornTail {
                            path: reader.path.clone(),
                            offset: bad.offset,
                            file_len: reader.len,
                        });
                        break;
                    }
                    return Err(WalError::corrupt(&reader.file, bad.offset, bad.reason));
                }
            }
        }
        if reader.records < HEADER_RECORDS {
            return Err(WalError::corrupt(
                &reader.file,
                reader.pos,
                "segment lacks its crc and metadata header",
            ));
        }
        chain = Some(reader.crc);
        previous = Some((reader.file.clone(), reader.pos));
        end.crc = reader.crc;
        end.valid_len = reader.pos;
    }
    end.metadata = metadata.unwrap_or_default();
    Ok(end)
}

/// Keeps the first segment's metadata `m`, and fails if a later segment's
/// (at `file`, `offset`) differs from it.
fn agree_on_metadata(
    first: &mut Option<Vec<u8>>,
    m: &[u8],
    file: &str,
    offset: u64,
) -> Result<(), WalError> {
    match first {
        None => *first = Some(m.to_vec()),
        Some(first) if first.as_slice() != m => {
            return Err(WalError::MetadataMismatch {
                file: file.to_string(),
                offset,
            });
        }
        Some(_) => {}
    }
    Ok(())
}

/// Records at the start of every segment that were durable before the
/// segment was named: a Crc record, then a Metadata record.
const HEADER_RECORDS: u64 = 2;

fn decode_payload(kind: RecordType, data: Vec<u8>) -> Result<Option<Payload>, String> {
    let bad = |what: &str, e: prost::DecodeError| format!("{what} record does not decode: {e}");
    Ok(Some(match kind {
        RecordType::Crc => return Ok(None),
        RecordType::Metadata => Payload::Metadata(data),
        RecordType::Entry => {
            Payload::Entry(Entry::decode(data.as_slice()).map_err(|e| bad("entry", e))?)
        }
        RecordType::HardState => Payload::HardState(
            HardState::decode(data.as_slice()).map_err(|e| bad("hard state", e))?,
        ),
        RecordType::SnapshotMarker => Payload::Snapshot(
            SnapshotMarker::decode(data.as_slice()).map_err(|e| bad("snapshot marker", e))?,
        ),
    }))
}

enum Step {
    Record {
        offset: u64,
        kind: RecordType,
        data: Vec<u8>,
    },
    End,
    Bad(Bad),
}

/// A frame read whole: the record's body (`len` bytes) and its padding,
/// ending at file offset `end`.
struct Frame {
    buf: Vec<u8>,
    len: u64,
    end: u64,
}

struct Bad {
    offset: u64,
    reason: String,
    torn: TornIf,
}

/// Under which condition a bad frame in the last segment is a torn tail.
enum TornIf {
    Never,
    /// The frame runs past end of file.
    CutShort,
    /// Everything from this offset to end of file is zero.
    ZerosFrom(u64),
}

struct SegmentReader<'a> {
    disk: &'a dyn Disk,
    path: PathBuf,
    file: String,
    len: u64,
    pos: u64,
    /// The chained CRC after the last valid record.
    crc: u32,
    /// The CRC the segment's Crc record must carry, when the previous
    /// segment was read.
    seed: Option<u32>,
    /// Valid records read so far.
    records: u64,
    /// The previous segment's file and the end of its records.
    previous: Option<(String, u64)>,
    /// Whether each record's CRC is checked against its bytes (only the
    /// known bug `wal-crc-unchecked` turns this off).
    check_crc: bool,
    /// Whether a zero length word ends the records without a look at what
    /// follows (only the known bug `wal-zero-word-as-end` turns this on).
    zero_word_ends: bool,
}

impl<'a> SegmentReader<'a> {
    fn new(
        disk: &'a dyn Disk,
        path: PathBuf,
        seed: Option<u32>,
        previous: Option<(String, u64)>,
    ) -> Result<Self, WalError> {
        let file = display(&path);
        let len = disk.len(&path).map_err(|e| WalError::io(&file, e))?;
        Ok(SegmentReader {
            disk,
            path,
            file,
            len,
            pos: 0,
            crc: seed.unwrap_or(0),
            seed,
            records: 0,
            previous,
            check_crc: true,
            zero_word_ends: false,
        })
    }

    fn read_exact(&self, offset: u64, buf: &mut [u8]) -> Result<(), WalError> {
        let mut done = 0;
        while done < buf.len() {
            let rest = buf.get_mut(done..).unwrap_or_default();
            let n = self
                .disk
                .read_at(&self.path, offset + done as u64, rest)
                .map_err(|e| WalError::io(&self.file, e))?;
            if n == 0 {
                return Err(WalError::corrupt(
                    &self.file,
                    offset + done as u64,
                    "file shrank while reading",
                ));
            }
            done += n;
        }
        Ok(())
    }

    fn bad(offset: u64, reason: impl Into<String>, torn: TornIf) -> Step {
        Step::Bad(Bad {
            offset,
            reason: reason.into(),
            torn,
        })
    }

    fn next(&mut self) -> Result<Step, WalError> {
        let offset = self.pos;
        let frame = match self.read_frame(offset)? {
            Ok(frame) => frame,
            Err(step) => return Ok(step),
        };
        let len = frame.len;
        let body = frame.buf.get(..len as usize).unwrap_or_default();
        let bad_body = |reader: &Self, reason: String| {
            if reader.holds_shorter_record(body, len) {
                Self::bad(
                    offset,
                    "length word disagrees with the record after it",
                    TornIf::Never,
                )
            } else {
                Self::bad(offset, reason, TornIf::ZerosFrom(frame.end))
            }
        };
        let record = match decode_body_with_padding(&frame.buf, len as usize) {
            Ok(record) => record,
            Err(e) => return Ok(bad_body(self, format!("bad record: {e:?}"))),
        };
        // A Crc record carries the chain; every other record extends it.
        let chained = record_crc(self.crc, record.record_type, &record.data);
        // Known bug: trust the stored CRC, and chain on from it.
        let chained = if self.check_crc { chained } else { record.crc };
        if self.records > 0 && record.crc != chained {
            return Ok(bad_body(
                self,
                format!(
                    "crc mismatch: record has {:08x}, chain gives {chained:08x}",
                    record.crc
                ),
            ));
        }
        let kind = match self.placed_kind(offset, &record) {
            Ok(kind) => kind,
            Err(step) => return Ok(step),
        };
        self.crc = if kind == RecordType::Crc {
            record.crc
        } else {
            chained
        };
        self.pos = frame.end;
        self.records += 1;
        Ok(Step::Record {
            offset,
            kind,
            data: record.data,
        })
    }

    /// The frame at `offset` (its length word read and its body and padding
    /// within the file), or the step that ends the records there: the end
    /// of the file, or a bad length word or a frame cut short.
    fn read_frame(&self, offset: u64) -> Result<Result<Frame, Step>, WalError> {
        let remaining = self.len.saturating_sub(offset);
        if remaining == 0 {
            return Ok(Err(Step::End));
        }
        if remaining < LEN_WORD {
            return Ok(Err(Self::bad(
                offset,
                "length word cut short by end of file",
                TornIf::CutShort,
            )));
        }
        let mut word = [0u8; 8];
        self.read_exact(offset, &mut word)?;
        let word = u64::from_le_bytes(word);
        let body_start = offset + LEN_WORD;
        if word == 0 {
            return Ok(Err(Self::bad(
                offset,
                "zero length word",
                self.torn_if_zero_word(body_start),
            )));
        }
        let (len, pad) = match decode_len_word(word) {
            Ok(lp) => lp,
            Err(reason) => {
                return Ok(Err(Self::bad(
                    offset,
                    reason,
                    TornIf::ZerosFrom(body_start),
                )));
            }
        };
        // decode_len_word bounds len by MAX_RECORD_LEN, and every read below
        // is further bounded by the bytes left in the file.
        let available = remaining - LEN_WORD;
        if len + pad > available {
            let mut body = vec![0u8; len.min(available) as usize];
            self.read_exact(body_start, &mut body)?;
            return Ok(Err(if self.holds_shorter_record(&body, len) {
                Self::bad(
                    offset,
                    "length word disagrees with the record after it",
                    TornIf::Never,
                )
            } else {
                Self::bad(offset, "record cut short by end of file", TornIf::CutShort)
            }));
        }
        let mut buf = vec![0u8; (len + pad) as usize];
        self.read_exact(body_start, &mut buf)?;
        Ok(Ok(Frame {
            buf,
            len,
            end: body_start + len + pad,
        }))
    }

    /// The record's type, if it is known and in its place: a segment opens
    /// with a Crc record that continues the previous segment's chain, then
    /// Metadata; no other Crc record follows.
    fn placed_kind(&self, offset: u64, record: &WalRecord) -> Result<RecordType, Step> {
        let Some(kind) = RecordType::from_i64(record.record_type) else {
            let reason = format!("unknown record type {}", record.record_type);
            return Err(Self::bad(offset, reason, TornIf::Never));
        };
        let misplaced = match (self.records, kind) {
            (0, RecordType::Crc) => None,
            (0, _) => Some("segment does not start with a crc record"),
            (_, RecordType::Crc) => Some("crc record inside a segment"),
            (1, RecordType::Metadata) => None,
            (1, _) => Some("second record is not metadata"),
            _ => None,
        };
        if let Some(reason) = misplaced {
            return Err(Self::bad(offset, reason, TornIf::Never));
        }
        if kind == RecordType::Crc
            && let Some(seed) = self.seed
            && record.crc != seed
        {
            let mut reason = format!(
                "crc record {:08x} does not continue the chain {seed:08x}",
                record.crc
            );
            if let Some((file, end)) = &self.previous {
                reason.push_str(&format!(
                    " of {file}, whose records end at offset {end}: \
                     {file} lost records at its end or this header is damaged"
                ));
            }
            return Err(Self::bad(offset, reason, TornIf::Never));
        }
        Ok(kind)
    }

    /// Turns on the reader's known-bug switches.
    fn switch_known_bugs(&mut self, bugs: KnownBugs) {
        self.check_crc = !bugs.has(Bug::WalCrcUnchecked);
        self.zero_word_ends = bugs.has(Bug::WalZeroWordAsEnd);
    }

    /// When a zero length word is a torn tail: when only zeros follow it
    /// (a hole with data after it is what a misdirected write leaves).
    fn torn_if_zero_word(&self, body_start: u64) -> TornIf {
        // Known bug: a zero word is taken for preallocated space.
        if self.zero_word_ends {
            TornIf::CutShort
        } else {
            TornIf::ZerosFrom(body_start)
        }
    }

    /// Whether `body` starts with a complete record, shorter than the `claimed`
    /// length, that continues the CRC chain: proof that the length word, not
    /// the write, is damaged (a torn frame holds only a prefix of its record).
    fn holds_shorter_record(&self, body: &[u8], claimed: u64) -> bool {
        let mut at = 0usize;
        // A record has three fields; allow a few unknown ones, no more.
        for _ in 0..8 {
            let Some(next) = skip_field(body, at) else {
                return false;
            };
            at = next;
            if at as u64 >= claimed {
                return false;
            }
            if let Some(Ok(record)) = body.get(..at).map(|b| decode_body_with_padding(b, at))
                && matches!(RecordType::from_i64(record.record_type), Some(k) if k != RecordType::Crc)
                && record.crc == record_crc(self.crc, record.record_type, &record.data)
            {
                return true;
            }
        }
        false
    }

    fn is_torn(&self, bad: &Bad) -> Result<bool, WalError> {
        match bad.torn {
            TornIf::Never => Ok(false),
            TornIf::CutShort => Ok(true),
            TornIf::ZerosFrom(from) => self.zeros_from(from),
        }
    }

    /// Whether every byte from `from` to end of file is zero.
    fn zeros_from(&self, from: u64) -> Result<bool, WalError> {
        const CHUNK: u64 = 64 << 10;
        let mut at = from;
        let mut buf = vec![0u8; CHUNK as usize];
        while at < self.len {
            let n = (self.len - at).min(CHUNK) as usize;
            let chunk = buf.get_mut(..n).unwrap_or_default();
            self.read_exact(at, chunk)?;
            if chunk.iter().any(|&b| b != 0) {
                return Ok(false);
            }
            at += n as u64;
        }
        Ok(true)
    }
}

fn read_varint(buf: &[u8], at: usize) -> Option<(u64, usize)> {
    let mut value = 0u64;
    for i in 0..10 {
        let byte = *buf.get(at.checked_add(i)?)?;
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Some((value, at + i + 1));
        }
    }
    None
}

/// The end of the protobuf field starting at `at`, if it is complete.
fn skip_field(buf: &[u8], at: usize) -> Option<usize> {
    let (key, at) = read_varint(buf, at)?;
    let end = match key & 7 {
        0 => return read_varint(buf, at).map(|(_, end)| end),
        1 => at.checked_add(8)?,
        2 => {
            let (len, at) = read_varint(buf, at)?;
            at.checked_add(usize::try_from(len).ok()?)?
        }
        5 => at.checked_add(4)?,
        _ => return None,
    };
    (end <= buf.len()).then_some(end)
}
