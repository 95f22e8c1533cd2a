//! The WAL's typed errors.

use crate::crash_point::Crashed;
use std::io;

/// Everything that can go wrong in the WAL.
#[derive(Debug, thiserror::Error)]
pub enum WalError {
    /// An I/O operation on `file` failed.
    #[error("wal i/o error on {file}: {source}")]
    Io {
        file: String,
        #[source]
        source: io::Error,
    },
    /// A segment holds bytes that are neither a valid record nor a torn tail.
    #[error("wal corrupt: {file} at offset {offset}: {reason}")]
    Corrupt {
        file: String,
        offset: u64,
        reason: String,
    },
    /// The snapshot marker to open at is not in the WAL.
    #[error("wal has no snapshot marker at index {index} term {term}")]
    SnapshotNotFound { index: u64, term: u64 },
    /// A metadata record disagrees with the first one read.
    #[error("wal metadata mismatch: {file} at offset {offset}")]
    MetadataMismatch { file: String, offset: u64 },
    /// An earlier write or fsync failed; the WAL refuses all further work.
    #[error("wal is poisoned by an earlier write or sync failure")]
    Poisoned,
    /// The driver stopped the member at a crash point.
    #[error(transparent)]
    Crashed(#[from] Crashed),
    /// `create` found a WAL already in the directory.
    #[error("wal already exists in {dir}")]
    AlreadyExists { dir: String },
    /// `open` found no segment files in the directory.
    #[error("no wal segments in {dir}")]
    NotFound { dir: String },
    /// A record would exceed the frame's length limit.
    #[error("wal record of {len} bytes exceeds the limit of {max} bytes")]
    RecordTooLarge { len: u64, max: u64 },
    /// `save` was given entries that are not consecutive.
    #[error("entries to save are not consecutive: index {index} follows {previous}")]
    NonConsecutive { previous: u64, index: u64 },
}

impl WalError {
    pub(crate) fn io(file: impl std::fmt::Display, source: io::Error) -> Self {
        WalError::Io {
            file: file.to_string(),
            source,
        }
    }

    pub(crate) fn corrupt(file: &str, offset: u64, reason: impl Into<String>) -> Self {
        WalError::Corrupt {
            file: file.to_string(),
            offset,
            reason: reason.into(),
        }
    }
}
