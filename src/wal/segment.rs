//! Segment file names and the directory listing.

use super::WalError;
use crate::disk::Disk;
use std::path::{Path, PathBuf};

/// Suffix of a segment file.
pub const SEGMENT_EXT: &str = ".wal";
/// Suffix of a segment being built; never read, removed by `open`.
pub const TMP_EXT: &str = ".wal.tmp";

/// A segment's identity: `{seq:016x}-{first_index:016x}.wal`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct SegmentName {
    /// Position in the WAL; consecutive segments differ by one.
    pub seq: u64,
    /// Index of the first entry the segment was cut for (one past the last
    /// index written before it). After a term change a segment may also hold
    /// lower indexes that overwrite earlier ones.
    pub first_index: u64,
}

impl SegmentName {
    /// The file name.
    pub fn file_name(&self) -> String {
        format!("{:016x}-{:016x}{SEGMENT_EXT}", self.seq, self.first_index)
    }

    /// The path of the segment in `dir`.
    pub fn path(&self, dir: &Path) -> PathBuf {
        dir.join(self.file_name())
    }

    /// The path of the segment's temporary file in `dir`.
    pub fn tmp_path(&self, dir: &Path) -> PathBuf {
        dir.join(format!("{}.tmp", self.file_name()))
    }

    /// Parses a segment file name; `None` for any other file.
    pub fn parse(name: &str) -> Option<SegmentName> {
        let stem = name.strip_suffix(SEGMENT_EXT)?;
        let (seq, first) = stem.split_once('-')?;
        Some(SegmentName {
            seq: parse_hex16(seq)?,
            first_index: parse_hex16(first)?,
        })
    }
}

fn parse_hex16(s: &str) -> Option<u64> {
    // from_str_radix alone would accept a sign and other widths.
    if s.len() != 16 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u64::from_str_radix(s, 16).ok()
}

/// The display name of a path in errors and logs.
pub fn display(path: &Path) -> String {
    path.display().to_string()
}

/// The segments in `dir`, by sequence number. Sequence numbers must be
/// consecutive: a hole means a segment was lost, and reading across it would
/// silently skip entries.
pub fn list_segments(disk: &dyn Disk, dir: &Path) -> Result<Vec<SegmentName>, WalError> {
    let names = disk.list(dir).map_err(|e| WalError::io(display(dir), e))?;
    let mut segments: Vec<SegmentName> =
        names.iter().filter_map(|n| SegmentName::parse(n)).collect();
    segments.sort();
    for pair in segments.windows(2) {
        if let [prev, next] = pair
            && next.seq != prev.seq.wrapping_add(1)
        {
            return Err(WalError::corrupt(
                &display(&next.path(dir)),
                0,
                format!("segment sequence jumps from {} to {}", prev.seq, next.seq),
            ));
        }
    }
    Ok(segments)
}

/// Names of leftover temporary segment files in `dir`.
pub fn list_tmp_files(disk: &dyn Disk, dir: &Path) -> Result<Vec<PathBuf>, WalError> {
    let names = disk.list(dir).map_err(|e| WalError::io(display(dir), e))?;
    Ok(names
        .iter()
        .filter(|n| n.ends_with(TMP_EXT))
        .map(|n| dir.join(n))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_round_trips() {
        let s = SegmentName {
            seq: 0x1f,
            first_index: 0xabc,
        };
        assert_eq!(s.file_name(), "000000000000001f-0000000000000abc.wal");
        assert_eq!(SegmentName::parse(&s.file_name()), Some(s));
    }

    #[test]
    fn rejects_other_names() {
        for name in [
            "0000000000000000-0000000000000000.wal.tmp",
            "+000000000000000-0000000000000000.wal",
            "000000000000000-0000000000000000.wal",
            "0000000000000000_0000000000000000.wal",
            "0000000000000000-000000000000000g.wal",
            "snap",
        ] {
            assert_eq!(SegmentName::parse(name), None, "{name}");
        }
    }
}
