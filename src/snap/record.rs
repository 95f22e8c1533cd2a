//! The snapshot file record.
//!
//! A snapshot file holds exactly one prost message, [`SnapshotRecord`]:
//!
//! ```text
//! offset 0   0x0d                 field 1 (crc), wire type fixed32
//!        1   crc: u32 LE          CRC32C (Castagnoli) of the payload bytes
//!        5   0x12                 field 2 (payload), length-delimited
//!        6   len: varint          payload length (at most 10 bytes)
//!        6+n payload              an encoded [`SnapshotPayload`]
//! ```
//!
//! Both fields are `optional` in the prost sense so they are always written
//! (proto3 would drop a zero CRC), which makes this layout the only encoding
//! [`encode`] produces. [`decode`] walks that layout by hand rather than
//! calling `SnapshotRecord::decode`, for two reasons: every failure can name
//! the byte offset where the file stops making sense, and it is strict — a
//! prost decode would accept a file truncated at a field boundary (even an
//! empty file) as a record with default fields, and skip trailing garbage.

use super::Snapshot;
use crate::proto::SnapshotMarker;
use prost::Message;

/// The record a snapshot file consists of.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SnapshotRecord {
    #[prost(fixed32, optional, tag = "1")]
    pub crc: Option<u32>,
    #[prost(bytes = "vec", optional, tag = "2")]
    pub payload: Option<Vec<u8>>,
}

/// What the CRC covers: the raft metadata and the v2 store's bytes.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SnapshotPayload {
    #[prost(message, optional, tag = "1")]
    pub marker: Option<SnapshotMarker>,
    #[prost(bytes = "vec", tag = "2")]
    pub data: Vec<u8>,
}

const CRC_KEY: u8 = 0x0d; // (1 << 3) | fixed32
const PAYLOAD_KEY: u8 = 0x12; // (2 << 3) | length-delimited
const CRC_AT: usize = 1;
const PAYLOAD_KEY_AT: usize = 5;
const LEN_AT: usize = 6;
/// The longest header: key, crc, key, a 10-byte varint.
pub const MAX_HEADER_BYTES: u64 = 16;

/// A payload too large to write: its size in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooLarge(pub u64);

/// Encodes a snapshot as a file's bytes, refusing payloads over `max_payload`
/// (a file we could not read back must never be written).
pub fn encode(snap: &Snapshot, max_payload: u64) -> Result<Vec<u8>, TooLarge> {
    let payload = SnapshotPayload {
        marker: Some(snap.marker.clone()),
        data: snap.data.clone(),
    }
    .encode_to_vec();
    let size = payload.len() as u64;
    if size > max_payload {
        return Err(TooLarge(size));
    }
    Ok(SnapshotRecord {
        crc: Some(crc32c::crc32c(&payload)),
        payload: Some(payload),
    }
    .encode_to_vec())
}

/// A decoded file: the snapshot and where its payload starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoded {
    pub snapshot: Snapshot,
    pub payload_offset: u64,
}

/// A decoding failure: the byte offset and what was wrong there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bad {
    pub offset: u64,
    pub reason: String,
}

fn bad(offset: usize, reason: impl Into<String>) -> Bad {
    Bad {
        offset: offset as u64,
        reason: reason.into(),
    }
}

/// Decodes a whole snapshot file, strictly (see the module comment).
pub fn decode(bytes: &[u8], max_payload: u64) -> Result<Decoded, Bad> {
    let expect_key = |at: usize, key: u8, what: &str| match bytes.get(at) {
        None => Err(bad(at, format!("file ends before the {what} field"))),
        Some(&b) if b == key => Ok(()),
        Some(&b) => Err(bad(
            at,
            format!("expected the {what} field key {key:#04x}, found {b:#04x}"),
        )),
    };
    expect_key(0, CRC_KEY, "crc")?;
    let crc = bytes
        .get(CRC_AT..CRC_AT + 4)
        .and_then(|b| <[u8; 4]>::try_from(b).ok())
        .map(u32::from_le_bytes)
        .ok_or_else(|| bad(bytes.len(), "file ends inside the crc field"))?;
    expect_key(PAYLOAD_KEY_AT, PAYLOAD_KEY, "payload")?;

    let mut rest = bytes.get(LEN_AT..).unwrap_or_default();
    let before = rest.len();
    let len = prost::encoding::decode_varint(&mut rest)
        .map_err(|e| bad(LEN_AT, format!("bad payload length varint: {e}")))?;
    let start = LEN_AT + (before - rest.len());
    if len > max_payload {
        return Err(bad(
            LEN_AT,
            format!("payload length {len} exceeds the bound of {max_payload} bytes"),
        ));
    }
    // `len <= max_payload` fits in usize on the 64-bit targets we build for;
    // a failed conversion is reported like any other bad length.
    let end = usize::try_from(len)
        .ok()
        .and_then(|l| start.checked_add(l))
        .ok_or_else(|| bad(LEN_AT, format!("payload length {len} is not addressable")))?;
    let payload = bytes.get(start..end).ok_or_else(|| {
        bad(
            bytes.len(),
            format!("file ends inside the payload: {len} bytes from offset {start} expected"),
        )
    })?;
    if end < bytes.len() {
        return Err(bad(
            end,
            format!("{} unexpected bytes after the record", bytes.len() - end),
        ));
    }
    let actual = crc32c::crc32c(payload);
    if actual != crc {
        return Err(bad(
            start,
            format!("payload crc mismatch: stored {crc:#010x}, computed {actual:#010x}"),
        ));
    }
    // The CRC matched, so the bytes are what the writer wrote; a decode
    // failure here means a writer bug or a foreign file, not bit rot.
    let decoded = SnapshotPayload::decode(payload)
        .map_err(|e| bad(start, format!("payload does not decode: {e}")))?;
    let marker = decoded
        .marker
        .ok_or_else(|| bad(start, "payload has no snapshot marker"))?;
    Ok(Decoded {
        snapshot: Snapshot {
            marker,
            data: decoded.data,
        },
        payload_offset: start as u64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::ConfState;
    use proptest::prelude::*;

    fn snap(data: &[u8]) -> Snapshot {
        Snapshot {
            marker: SnapshotMarker {
                index: 42,
                term: 7,
                conf_state: Some(ConfState {
                    voters: vec![1, 2, 3],
                    ..Default::default()
                }),
            },
            data: data.to_vec(),
        }
    }

    #[test]
    fn round_trip_and_layout() {
        let s = snap(b"{\"index\":1}");
        let bytes = encode(&s, u64::MAX).unwrap();
        assert_eq!(bytes[0], CRC_KEY);
        assert_eq!(bytes[5], PAYLOAD_KEY);
        let d = decode(&bytes, u64::MAX).unwrap();
        assert_eq!(d.snapshot, s);
        assert_eq!(d.payload_offset, 7);
        // The hand-walked layout is the prost encoding of SnapshotRecord.
        let rec = SnapshotRecord::decode(bytes.as_slice()).unwrap();
        let payload = rec.payload.unwrap();
        assert_eq!(rec.crc, Some(crc32c::crc32c(&payload)));
        assert_eq!(&bytes[7..], payload.as_slice());
    }

    #[test]
    fn empty_data_and_empty_marker_still_encode_both_fields() {
        let s = Snapshot {
            marker: SnapshotMarker::default(),
            data: Vec::new(),
        };
        let bytes = encode(&s, u64::MAX).unwrap();
        assert_eq!(decode(&bytes, u64::MAX).unwrap().snapshot, s);
    }

    #[test]
    fn every_truncation_and_every_byte_flip_is_detected() {
        let bytes = encode(&snap(b"some v2 store bytes"), u64::MAX).unwrap();
        for len in 0..bytes.len() {
            let e = decode(&bytes[..len], u64::MAX).unwrap_err();
            assert!(e.offset <= len as u64, "{len}: {e:?}");
        }
        for at in 0..bytes.len() {
            let mut b = bytes.clone();
            b[at] ^= 0x40;
            assert!(decode(&b, u64::MAX).is_err(), "flip at {at} went unnoticed");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert_eq!(
            decode(&longer, u64::MAX).unwrap_err().offset,
            bytes.len() as u64
        );
    }

    #[test]
    fn payload_bound_is_enforced_both_ways() {
        let s = snap(&[7u8; 100]);
        assert!(matches!(encode(&s, 50), Err(TooLarge(n)) if n > 100));
        let bytes = encode(&s, u64::MAX).unwrap();
        let e = decode(&bytes, 50).unwrap_err();
        assert_eq!(e.offset, LEN_AT as u64);
        // A huge claimed length is refused before anything is allocated.
        let mut forged = bytes[..LEN_AT].to_vec();
        prost::encoding::encode_varint(u64::MAX, &mut forged);
        assert!(
            decode(&forged, MAX_HEADER_BYTES)
                .unwrap_err()
                .reason
                .contains("exceeds")
        );
    }

    #[test]
    fn a_valid_crc_over_a_foreign_payload_is_still_refused() {
        let payload = vec![0xffu8; 3];
        let bytes = SnapshotRecord {
            crc: Some(crc32c::crc32c(&payload)),
            payload: Some(payload),
        }
        .encode_to_vec();
        assert!(
            decode(&bytes, u64::MAX)
                .unwrap_err()
                .reason
                .contains("decode")
        );
        let no_marker = SnapshotPayload {
            marker: None,
            data: vec![1],
        }
        .encode_to_vec();
        let bytes = SnapshotRecord {
            crc: Some(crc32c::crc32c(&no_marker)),
            payload: Some(no_marker),
        }
        .encode_to_vec();
        assert!(
            decode(&bytes, u64::MAX)
                .unwrap_err()
                .reason
                .contains("marker")
        );
    }

    proptest! {
        #[test]
        fn decode_of_arbitrary_bytes_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
            let _ = decode(&bytes, 1 << 20);
        }
    }
}
