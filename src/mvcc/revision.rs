//! Revisions and their encoding as `key` table keys.
//!
//! A row key is the 8-byte big-endian main revision, `_`, the 8-byte
//! big-endian sub revision, and for a deletion a trailing `t` (tombstone).
//! Big-endian keeps the table sorted by revision, which lets [`super::Mvcc::open`]
//! replay it in write order.

use std::fmt;

/// Marks a deletion's row.
const TOMBSTONE: u8 = b't';
const SEPARATOR: u8 = b'_';
const LEN: usize = 17;

/// A store revision: one `main` per write request, `sub` numbering the
/// writes inside it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Rev {
    pub main: i64,
    pub sub: i64,
}

impl fmt::Display for Rev {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.main, self.sub)
    }
}

/// The `key` table key of a revision.
pub(crate) fn encode(rev: Rev, tombstone: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(LEN + 1);
    out.extend_from_slice(&rev.main.to_be_bytes());
    out.push(SEPARATOR);
    out.extend_from_slice(&rev.sub.to_be_bytes());
    if tombstone {
        out.push(TOMBSTONE);
    }
    out
}

/// Parses a `key` table key into its revision and tombstone flag.
pub(crate) fn decode(bytes: &[u8]) -> Result<(Rev, bool), String> {
    let tombstone = match bytes.len() {
        LEN => false,
        n if n == LEN + 1 => {
            if bytes.get(LEN) != Some(&TOMBSTONE) {
                return Err(format!("byte {LEN} is not the tombstone marker"));
            }
            true
        }
        n => return Err(format!("length {n}, expected {LEN} or {}", LEN + 1)),
    };
    if bytes.get(8) != Some(&SEPARATOR) {
        return Err("byte 8 is not the '_' separator".to_string());
    }
    let int = |range: std::ops::Range<usize>| -> Result<i64, String> {
        let arr: [u8; 8] = bytes
            .get(range)
            .and_then(|s| s.try_into().ok())
            .ok_or_else(|| "truncated revision".to_string())?;
        Ok(i64::from_be_bytes(arr))
    };
    let rev = Rev {
        main: int(0..8)?,
        sub: int(9..17)?,
    };
    if rev.main < 0 || rev.sub < 0 {
        return Err(format!("negative revision {rev}"));
    }
    Ok((rev, tombstone))
}

/// Lowercase hex, for naming a row in an error.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_order() {
        let a = encode(Rev { main: 2, sub: 0 }, false);
        let b = encode(Rev { main: 2, sub: 1 }, true);
        let c = encode(Rev { main: 256, sub: 0 }, false);
        assert!(a < b && b < c, "byte order is revision order");
        assert_eq!(decode(&a).unwrap(), (Rev { main: 2, sub: 0 }, false));
        assert_eq!(decode(&b).unwrap(), (Rev { main: 2, sub: 1 }, true));
    }

    #[test]
    fn malformed_keys_are_errors() {
        assert!(decode(b"short").is_err());
        let mut k = encode(Rev { main: 1, sub: 0 }, true);
        k[17] = b'x';
        assert!(decode(&k).is_err());
        let mut k = encode(Rev { main: 1, sub: 0 }, false);
        k[8] = b'-';
        assert!(decode(&k).is_err());
        assert!(decode(&encode(Rev { main: -1, sub: 0 }, false)).is_err());
    }
}
