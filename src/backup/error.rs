//! Backup and restore errors. Every error about the source names the file
//! (relative to the source data directory) and why it was refused.

use crate::backend::BackendError;
use crate::member::StoreError;
use crate::membership::MembershipError;
use crate::node::NodeError;
use crate::snap::SnapError;
use crate::v2store::V2Error;
use crate::wal::WalError;
use std::io;
use std::path::PathBuf;

/// Why a backup was not produced. The destination then holds no member
/// (see `publish` for why a partial copy never looks like one).
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    /// A file or directory the backup needs is not in the source.
    #[error("source {}: missing", file.display())]
    MissingSource { file: PathBuf },
    /// A source file exists but cannot be used: truncated, corrupt, or
    /// undecodable. `offset` is the byte where the damage was found, when
    /// the reader knows it.
    #[error("source {}: corrupt{}: {reason}", file.display(), offset.map(|o| format!(" at offset {o}")).unwrap_or_default())]
    CorruptSource {
        file: PathBuf,
        offset: Option<u64>,
        reason: String,
    },
    /// Reading a source file failed.
    #[error("source {}: {source}", file.display())]
    SourceIo {
        file: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The source's files are individually fine but disagree (for example
    /// a backend behind its v2 snapshot): copying them would copy the
    /// inconsistency.
    #[error("source is inconsistent: {0}")]
    InconsistentSource(String),
    /// The destination already holds a member's WAL; a backup never writes
    /// over one.
    #[error("destination {} already holds a member's WAL", file.display())]
    DestinationNotEmpty { file: PathBuf },
    /// Writing the destination failed; what was written is not a member.
    #[error("destination {}: {source}", file.display())]
    DestinationIo {
        file: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The backup built in memory failed verification; nothing was written
    /// to the destination.
    #[error("backup refused: verification of the result failed: {0}")]
    Verify(String),
    /// Building the backup image failed (an internal error of the store
    /// code, not of the source files).
    #[error("building the backup: {0}")]
    Build(String),
}

impl BackupError {
    /// The source file this error is about, if any.
    pub fn source_file(&self) -> Option<&std::path::Path> {
        match self {
            BackupError::MissingSource { file }
            | BackupError::CorruptSource { file, .. }
            | BackupError::SourceIo { file, .. } => Some(file),
            _ => None,
        }
    }

    /// A WAL read of the source failed.
    pub(crate) fn from_source_wal(e: WalError) -> Self {
        match e {
            WalError::Corrupt {
                file,
                offset,
                reason,
            } => BackupError::CorruptSource {
                file: file.into(),
                offset: Some(offset),
                reason,
            },
            WalError::MetadataMismatch { file, offset } => BackupError::CorruptSource {
                file: file.into(),
                offset: Some(offset),
                reason: "metadata record disagrees with the first segment's".into(),
            },
            WalError::Io { file, source } if source.kind() == io::ErrorKind::NotFound => {
                BackupError::MissingSource { file: file.into() }
            }
            WalError::Io { file, source } => BackupError::SourceIo {
                file: file.into(),
                source,
            },
            WalError::NotFound { dir } => BackupError::MissingSource { file: dir.into() },
            WalError::SnapshotNotFound { index, term } => BackupError::InconsistentSource(format!(
                "the WAL has no marker for snapshot index {index} term {term}"
            )),
            other => BackupError::Build(format!("source WAL: {other}")),
        }
    }

    /// A snapshot file of the source could not be loaded.
    pub(crate) fn from_source_snap(e: SnapError) -> Self {
        match e {
            SnapError::Corrupt {
                file,
                offset,
                reason,
            } => BackupError::CorruptSource {
                file,
                offset: Some(offset),
                reason,
            },
            SnapError::NotFound { file } => BackupError::MissingSource { file },
            SnapError::Io { file, source } => BackupError::SourceIo { file, source },
            SnapError::TooLarge { size, max } => BackupError::CorruptSource {
                file: PathBuf::from(crate::member::SNAP_DIR),
                offset: None,
                reason: format!("snapshot of {size} bytes exceeds {max}"),
            },
        }
    }

    /// The source backend (or a file derived from it) is unusable.
    pub(crate) fn from_source_backend(file: &str, e: BackendError) -> Self {
        BackupError::CorruptSource {
            file: file.into(),
            offset: None,
            reason: e.to_string(),
        }
    }

    /// The v2 snapshot's payload does not decode into a store or cluster.
    pub(crate) fn corrupt_v2(file: PathBuf, reason: impl std::fmt::Display) -> Self {
        BackupError::CorruptSource {
            file,
            offset: None,
            reason: reason.to_string(),
        }
    }

    pub(crate) fn build(what: &str, e: impl std::fmt::Display) -> Self {
        BackupError::Build(format!("{what}: {e}"))
    }
}

impl From<V2Error> for BackupError {
    fn from(e: V2Error) -> Self {
        BackupError::build("v2 store", e)
    }
}

impl From<MembershipError> for BackupError {
    fn from(e: MembershipError) -> Self {
        BackupError::build("membership rewrite", e)
    }
}

/// Why a restore did not produce a running single-member cluster.
#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    #[error("opening the backup: {0}")]
    Store(#[from] StoreError),
    #[error("starting raft on the backup: {0}")]
    Node(#[from] NodeError),
    /// The backup was made for another member id.
    #[error("the backup is for member {backup:x}, not {asked:x}")]
    MemberMismatch { backup: u64, asked: u64 },
    /// The backup's membership is not exactly this one voter.
    #[error(
        "the backup's membership is not the single voter {id:x}: voters {voters:x?}, learners {learners:x?}"
    )]
    NotSingleVoter {
        id: u64,
        voters: Vec<u64>,
        learners: Vec<u64>,
    },
    /// The member did not become leader of its one-member cluster.
    #[error("member {0:x} did not elect itself")]
    NoLeader(u64),
}
