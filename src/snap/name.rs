//! Snapshot file names: `{term:016x}-{index:016x}.snap`, lowercase hex.
//!
//! Only names of exactly this form are snapshots. Everything else in the
//! directory — a temporary file of an interrupted save (`*.snap.tmp`), a
//! quarantined file (`*.snap.broken`), anything foreign — is ignored.

const SUFFIX: &str = ".snap";
const HEX: usize = 16;
const LEN: usize = HEX + 1 + HEX + SUFFIX.len();

/// The file name of the snapshot at (`term`, `index`).
pub fn file_name(term: u64, index: u64) -> String {
    format!("{term:016x}-{index:016x}{SUFFIX}")
}

/// The (`term`, `index`) a snapshot file name encodes, if it is one.
pub fn parse(name: &str) -> Option<(u64, u64)> {
    if name.len() != LEN || !name.ends_with(SUFFIX) {
        return None;
    }
    let term = name.get(..HEX)?;
    let index = name.get(HEX + 1..2 * HEX + 1)?;
    if name.get(HEX..HEX + 1)? != "-" || !is_lower_hex(term) || !is_lower_hex(index) {
        return None;
    }
    Some((
        u64::from_str_radix(term, 16).ok()?,
        u64::from_str_radix(index, 16).ok()?,
    ))
}

fn is_lower_hex(s: &str) -> bool {
    s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        assert_eq!(file_name(1, 0x2a), "0000000000000001-000000000000002a.snap");
        assert_eq!(parse(&file_name(1, 0x2a)), Some((1, 0x2a)));
        assert_eq!(parse(&file_name(u64::MAX, 0)), Some((u64::MAX, 0)));
    }

    #[test]
    fn other_names_are_not_snapshots() {
        for n in [
            "0000000000000001-000000000000002a.snap.tmp",
            "0000000000000001-000000000000002a.snap.broken",
            "0000000000000001-000000000000002A.snap",
            "+000000000000001-000000000000002a.snap",
            "0000000000000001_000000000000002a.snap",
            "000000000000001-000000000000002a.snap",
            "0000000000000001-000000000000002a.sna",
            "db",
            "",
        ] {
            assert_eq!(parse(n), None, "{n}");
        }
    }
}
