//! Where things are in a WAL segment, for the damage that aims at it
//! (`run/damage.rs`): where its final frame starts (a flip there is
//! indistinguishable from a torn write, so bit rot leaves it alone), and
//! where its puts keep their values (bytes a flip can change while every
//! record, entry and request around them still decodes: only the CRC can
//! tell).

use prost::Message;
use replica::proto::{Entry, EntryType, HardState, PutRequest, Request, request};
use replica::wal::record::{RecordType, decode_frame};

/// One put's value in a WAL segment: its file offsets `start..end`, the
/// index of its entry, and its key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ValueSpan {
    pub start: u64,
    pub end: u64,
    pub index: u64,
    pub key: Vec<u8>,
}

/// A WAL segment's frames from some frame boundary on, as far as they
/// decode.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct WalLayout {
    /// Where the final decodable frame starts (where the bytes read start,
    /// if none decodes).
    pub final_frame: u64,
    /// The values of its puts (plain ones), in file order.
    pub values: Vec<ValueSpan>,
    /// The highest commit index of those frames' hard states (0 if none).
    pub commit: u64,
}

impl WalLayout {
    /// The values a boot applies and then shows: those of entries
    /// committed by the hard states read, the last put of their key among
    /// them.
    pub fn last_committed_values(&self) -> Vec<&ValueSpan> {
        let committed: Vec<&ValueSpan> = (self.values.iter())
            .filter(|v| v.index <= self.commit)
            .collect();
        (committed.iter().enumerate())
            .filter(|(i, v)| !committed.iter().skip(i + 1).any(|later| later.key == v.key))
            .map(|(_, v)| *v)
            .collect()
    }
}

/// Reads the layout of `bytes`, the part of a WAL segment from offset
/// `from` (a frame boundary) to its end; offsets are the segment's.
pub(crate) fn wal_layout(bytes: &[u8], from: u64) -> WalLayout {
    let mut layout = WalLayout {
        final_frame: from,
        ..WalLayout::default()
    };
    let mut at = 0usize;
    while let Some(rest) = bytes.get(at..) {
        let Ok((record, frame_len)) = decode_frame(rest) else {
            break;
        };
        layout.final_frame = from + at as u64;
        let frame = rest.get(..frame_len).unwrap_or_default();
        match RecordType::from_i64(record.record_type) {
            Some(RecordType::Entry) => {
                if let Some((index, put)) = entry_put(&record.data)
                    && let Some(pos) = find_last(frame, &put.value)
                {
                    let start = from + (at + pos) as u64;
                    layout.values.push(ValueSpan {
                        start,
                        end: start + put.value.len() as u64,
                        index,
                        key: put.key,
                    });
                }
            }
            Some(RecordType::HardState) => {
                if let Ok(hs) = HardState::decode(record.data.as_slice()) {
                    layout.commit = layout.commit.max(hs.commit);
                }
            }
            _ => {}
        }
        at += frame_len;
    }
    layout
}

/// The index of the entry encoded in `data` and its put, if its request
/// is one. The puts inside a transaction are left out: only one of its
/// branches takes effect.
fn entry_put(data: &[u8]) -> Option<(u64, PutRequest)> {
    let entry = Entry::decode(data).ok()?;
    if entry.entry_type != EntryType::Normal as i32 {
        return None;
    }
    match Request::decode(entry.data.as_slice()).ok()?.kind {
        Some(request::Kind::Put(put)) => Some((entry.index, put)),
        _ => None,
    }
}

/// Where `needle` last occurs in `haystack`: a put's value is stored
/// verbatim, the last field of its request and of its entry.
fn find_last(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return None;
    }
    haystack.windows(needle.len()).rposition(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;
    use replica::wal::record::{WalRecord, encode_frame};

    fn frame(out: &mut Vec<u8>, record_type: RecordType, data: Vec<u8>) -> u64 {
        let start = out.len() as u64;
        let record = WalRecord {
            record_type: record_type as i64,
            crc: 7,
            data,
        };
        encode_frame(&record, out).expect("a small record");
        start
    }

    fn put_entry(index: u64, key: &str, value: &str) -> Vec<u8> {
        let request = Request {
            id: index,
            kind: Some(request::Kind::Put(PutRequest {
                key: key.into(),
                value: value.into(),
            })),
        };
        let entry = Entry {
            term: 1,
            index,
            data: request.encode_to_vec(),
            ..Entry::default()
        };
        entry.encode_to_vec()
    }

    fn hard_state(commit: u64) -> Vec<u8> {
        let hs = HardState {
            term: 1,
            vote: 1,
            commit,
        };
        hs.encode_to_vec()
    }

    #[test]
    fn finds_values_the_final_frame_and_the_last_committed_put_of_each_key() {
        let mut wal = Vec::new();
        frame(&mut wal, RecordType::Entry, put_entry(5, "a", "first-a"));
        frame(&mut wal, RecordType::Entry, put_entry(6, "b", "only-b"));
        frame(&mut wal, RecordType::Entry, put_entry(7, "a", "second-a"));
        frame(&mut wal, RecordType::HardState, hard_state(7));
        frame(
            &mut wal,
            RecordType::Entry,
            put_entry(8, "b", "uncommitted-b"),
        );
        let last = frame(&mut wal, RecordType::HardState, hard_state(7));

        let layout = wal_layout(&wal, 0);
        assert_eq!(layout.final_frame, last);
        assert_eq!(layout.commit, 7);
        let values: Vec<&[u8]> = (layout.values.iter())
            .map(|v| &wal[v.start as usize..v.end as usize])
            .collect();
        let expected: [&[u8]; 4] = [b"first-a", b"only-b", b"second-a", b"uncommitted-b"];
        assert_eq!(values, expected);
        let shown: Vec<u64> = (layout.last_committed_values().iter())
            .map(|v| v.index)
            .collect();
        assert_eq!(shown, [6, 7]);
    }

    #[test]
    fn reads_from_a_frame_boundary_and_stops_at_what_does_not_decode() {
        let mut wal = Vec::new();
        frame(&mut wal, RecordType::Entry, put_entry(5, "a", "early"));
        let from = frame(&mut wal, RecordType::Entry, put_entry(6, "b", "late"));
        wal.extend_from_slice(&[0xff; 16]);
        let layout = wal_layout(&wal[from as usize..], from);
        assert_eq!(layout.final_frame, from);
        assert_eq!(layout.values.len(), 1);
        assert_eq!(&wal[layout.values[0].start as usize..][..4], b"late");
        assert_eq!(wal_layout(&[], 40).final_frame, 40);
    }
}
