//! The WAL record and its on-disk frame.
//!
//! A frame is an 8-byte little-endian length word, the prost-encoded
//! [`WalRecord`], and zero padding up to an 8-byte boundary. The length word
//! keeps the record length in its low 56 bits; when padding is present its
//! top byte is `0x80 | pad` (bit 63 = "padded", bits 56..=58 = pad count),
//! the layout etcd uses. Bits 59..=62 must be zero. With frames 8-byte
//! aligned, a length word never straddles a sector, so a tear at sector
//! granularity leaves either a whole length word or none of it.

use prost::Message;

/// One WAL record: its type, the chained CRC32C, and the payload.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct WalRecord {
    #[prost(int64, tag = "1")]
    pub record_type: i64,
    #[prost(uint32, tag = "2")]
    pub crc: u32,
    #[prost(bytes = "vec", tag = "3")]
    pub data: Vec<u8>,
}

/// What a record's payload is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecordType {
    /// Opaque bytes given to `create`; repeated at the start of every segment.
    Metadata = 1,
    /// A `proto::Entry`.
    Entry = 2,
    /// A `proto::HardState`.
    HardState = 3,
    /// The chain seed: the CRC of everything before this segment.
    Crc = 4,
    /// A `proto::SnapshotMarker`.
    SnapshotMarker = 5,
}

impl RecordType {
    /// The type with this wire value.
    pub fn from_i64(value: i64) -> Option<RecordType> {
        Some(match value {
            1 => RecordType::Metadata,
            2 => RecordType::Entry,
            3 => RecordType::HardState,
            4 => RecordType::Crc,
            5 => RecordType::SnapshotMarker,
            _ => return None,
        })
    }
}

/// The chained CRC of a (non-Crc) record: CRC32C over the record type's
/// 8 little-endian bytes, then the data, continuing from `previous`.
///
/// etcd covers only the data. Then a flipped bit in the type (Entry=2 vs
/// HardState=3, Metadata=1 vs HardState=3 or SnapshotMarker=5) passes the
/// check and the payload is silently read as the wrong message, e.g. a hard
/// state becomes an entry that overwrites the log from index `vote`.
pub fn record_crc(previous: u32, record_type: i64, data: &[u8]) -> u32 {
    crc32c::crc32c_append(
        crc32c::crc32c_append(previous, &record_type.to_le_bytes()),
        data,
    )
}

/// Bytes of the length word in front of every record.
pub const LEN_WORD: u64 = 8;
/// The largest record a frame may carry. Reading also never trusts a length
/// beyond the bytes left in the file, so this only caps what a valid WAL can
/// hold (and what one read may allocate).
pub const MAX_RECORD_LEN: u64 = 256 << 20;

const PADDED: u64 = 1 << 63;
const LEN_MASK: u64 = (1 << 56) - 1;
const PAD_SHIFT: u32 = 56;
const RESERVED_MASK: u64 = 0xF << 59;

/// Zero bytes needed after a record of `len` bytes to reach an 8-byte boundary.
pub fn padding_for(len: u64) -> u64 {
    (8 - len % 8) % 8
}

/// The length word for a record of `len` bytes.
pub fn encode_len_word(len: u64) -> u64 {
    match padding_for(len) {
        0 => len,
        pad => len | PADDED | (pad << PAD_SHIFT),
    }
}

/// The record length and padding a length word announces, or why it is
/// invalid. A zero word is invalid here; readers treat it as "no frame".
pub fn decode_len_word(word: u64) -> Result<(u64, u64), &'static str> {
    let len = word & LEN_MASK;
    let pad = (word >> PAD_SHIFT) & 0x7;
    if word & RESERVED_MASK != 0 {
        return Err("reserved bits set in length word");
    }
    if len == 0 {
        return Err("zero record length");
    }
    let announced = if word & PADDED != 0 {
        if pad == 0 {
            return Err("padding flag set with zero padding");
        }
        pad
    } else if pad != 0 {
        return Err("padding count without padding flag");
    } else {
        0
    };
    if announced != padding_for(len) {
        return Err("padding does not match record length");
    }
    if len > MAX_RECORD_LEN {
        return Err("record length exceeds limit");
    }
    Ok((len, pad))
}

/// Appends the frame of `record` to `out`; refuses (returning the record's
/// length) a record over [`MAX_RECORD_LEN`].
pub fn encode_frame(record: &WalRecord, out: &mut Vec<u8>) -> Result<(), u64> {
    let len = record.encoded_len() as u64;
    if len > MAX_RECORD_LEN {
        return Err(len);
    }
    out.extend_from_slice(&encode_len_word(len).to_le_bytes());
    record.encode_raw(out);
    out.resize(out.len() + padding_for(len) as usize, 0);
    Ok(())
}

/// Why the bytes at some offset are not a frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrameError {
    /// The buffer ends inside the frame.
    Truncated,
    /// The length word is zero.
    ZeroWord,
    /// The length word is malformed.
    BadWord(&'static str),
    /// A padding byte is not zero.
    BadPadding,
    /// The record bytes are not a `WalRecord`.
    BadRecord(String),
}

/// Decodes the frame at the start of `buf`: the record and the frame length.
/// Checks framing only; the CRC chain is the reader's business.
pub fn decode_frame(buf: &[u8]) -> Result<(WalRecord, usize), FrameError> {
    let word: [u8; 8] = buf
        .get(..8)
        .and_then(|b| b.try_into().ok())
        .ok_or(FrameError::Truncated)?;
    let word = u64::from_le_bytes(word);
    if word == 0 {
        return Err(FrameError::ZeroWord);
    }
    let (len, pad) = decode_len_word(word).map_err(FrameError::BadWord)?;
    // len <= MAX_RECORD_LEN, so these fit in usize on every supported target.
    let body_end = 8 + len as usize;
    let frame_end = body_end + pad as usize;
    let frame = buf.get(..frame_end).ok_or(FrameError::Truncated)?;
    let record = decode_body_with_padding(&frame[8..], body_end - 8)?;
    Ok((record, frame_end))
}

/// Decodes the record in the first `len` bytes of `body_and_padding`; the
/// bytes after it (the padding) must be zero.
pub fn decode_body_with_padding(
    body_and_padding: &[u8],
    len: usize,
) -> Result<WalRecord, FrameError> {
    let (body, padding) = body_and_padding.split_at(len.min(body_and_padding.len()));
    if padding.iter().any(|&b| b != 0) {
        return Err(FrameError::BadPadding);
    }
    let record = WalRecord::decode(body).map_err(|e| FrameError::BadRecord(e.to_string()))?;
    // prost accepts non-canonical bytes (a u32 varint with bits above 32,
    // unknown fields, repeated fields), so a flipped bit in the crc field
    // could decode to the very same record. Our encoder is canonical: demand
    // the exact bytes back.
    if record.encoded_len() != body.len() || record.encode_to_vec() != body {
        return Err(FrameError::BadRecord(
            "non-canonical record encoding".into(),
        ));
    }
    Ok(record)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn record(record_type: i64, crc: u32, data: &[u8]) -> WalRecord {
        WalRecord {
            record_type,
            crc,
            data: data.to_vec(),
        }
    }

    #[test]
    fn frames_are_aligned_and_flag_padding() {
        for len in 0..40usize {
            let rec = record(2, 7, &vec![0xab; len]);
            let mut buf = Vec::new();
            encode_frame(&rec, &mut buf).unwrap();
            assert_eq!(buf.len() % 8, 0);
            let word = u64::from_le_bytes(buf[..8].try_into().unwrap());
            let body = rec.encoded_len() as u64;
            assert_eq!(word & LEN_MASK, body);
            assert_eq!(word & PADDED != 0, !body.is_multiple_of(8));
            assert_eq!(decode_frame(&buf), Ok((rec, buf.len())));
        }
    }

    #[test]
    fn bad_words_are_rejected() {
        assert_eq!(decode_len_word(0), Err("zero record length"));
        // Length 9 needs 7 bytes of padding.
        assert!(decode_len_word(9).is_err());
        assert!(decode_len_word(9 | PADDED | (6 << PAD_SHIFT)).is_err());
        assert_eq!(decode_len_word(9 | PADDED | (7 << PAD_SHIFT)), Ok((9, 7)));
        assert!(decode_len_word(16 | (1 << 60)).is_err());
        assert!(decode_len_word(MAX_RECORD_LEN + 8).is_err());
    }

    #[test]
    fn non_canonical_and_padded_garbage_is_rejected() {
        let mut buf = Vec::new();
        encode_frame(&record(3, 1, b"abc"), &mut buf).unwrap();
        let last = buf.len() - 1;
        buf[last] = 1; // padding byte
        assert_eq!(decode_frame(&buf), Err(FrameError::BadPadding));
        // crc = 1 written as a two-byte varint: same value, other bytes.
        let body = [0x08, 0x03, 0x10, 0x81, 0x00];
        let mut frame = encode_len_word(5).to_le_bytes().to_vec();
        frame.extend_from_slice(&body);
        frame.resize(16, 0);
        assert!(matches!(
            decode_frame(&frame),
            Err(FrameError::BadRecord(_))
        ));
    }

    #[test]
    fn crc_covers_the_type() {
        assert_ne!(record_crc(0, 2, b"x"), record_crc(0, 3, b"x"));
        assert_ne!(record_crc(1, 2, b"x"), record_crc(0, 2, b"x"));
    }

    proptest! {
        #[test]
        fn codec_round_trips(
            record_type in any::<i64>(),
            crc in any::<u32>(),
            data in proptest::collection::vec(any::<u8>(), 0..600),
        ) {
            let rec = record(record_type, crc, &data);
            let mut buf = Vec::new();
            encode_frame(&rec, &mut buf).unwrap();
            prop_assert_eq!(buf.len() % 8, 0);
            prop_assert_eq!(decode_frame(&buf), Ok((rec.clone(), buf.len())));
            // Frames concatenate.
            let mut two = buf.clone();
            encode_frame(&rec, &mut two).unwrap();
            let (first, n) = decode_frame(&two).unwrap();
            prop_assert_eq!(&first, &rec);
            prop_assert_eq!(decode_frame(&two[n..]), Ok((rec, buf.len())));
        }

        #[test]
        fn decoding_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = decode_frame(&bytes);
            if let Ok((_, n)) = decode_frame(&bytes) {
                prop_assert!(n <= bytes.len() && n % 8 == 0);
            }
        }

        #[test]
        fn decoding_arbitrary_records_behind_a_valid_word_never_panics(
            body in proptest::collection::vec(any::<u8>(), 1..300),
        ) {
            let mut frame = encode_len_word(body.len() as u64).to_le_bytes().to_vec();
            frame.extend_from_slice(&body);
            frame.resize(frame.len() + padding_for(body.len() as u64) as usize, 0);
            if let Ok((rec, n)) = decode_frame(&frame) {
                prop_assert_eq!(n, frame.len());
                prop_assert_eq!(rec.encode_to_vec(), body);
            }
        }
    }
}
