//! The member's error: every lower error, with the crash case singled out.

use crate::apply::ApplyError;
use crate::backend::BackendError;
use crate::crash_point::Crashed;
use crate::membership::MembershipError;
use crate::mvcc::MvccError;
use crate::snap::SnapError;
use crate::v2store::V2Error;
use crate::verify::VerifyError;
use crate::wal::WalError;

/// Why a member could not open, apply or persist.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("data directory has no WAL: the member was never bootstrapped")]
    NotInitialized,
    #[error("data directory already holds a WAL: refusing to bootstrap over it")]
    AlreadyInitialized,
    #[error("WAL: {0}")]
    Wal(#[from] WalError),
    #[error("snapshot: {0}")]
    Snap(#[from] SnapError),
    #[error("v2 store: {0}")]
    V2(#[from] V2Error),
    #[error("backend: {0}")]
    Backend(#[from] BackendError),
    #[error("mvcc: {0}")]
    Mvcc(#[from] MvccError),
    #[error("membership: {0}")]
    Membership(#[from] MembershipError),
    #[error("apply: {0}")]
    Apply(#[from] ApplyError),
    #[error("verify: {0}")]
    Verify(#[from] VerifyError),
    /// A boot check failed: the WAL and the backend disagree. Either file
    /// may be the damaged one, so both are named.
    #[error("verify: {source} (the WAL ends in {wal_end}; the backend is {backend})")]
    BootCheck {
        #[source]
        source: VerifyError,
        wal_end: String,
        backend: String,
    },
    /// The newest snapshot the WAL can be replayed from is unusable, and the
    /// WAL no longer reaches back to an older one.
    #[error("no usable v2 snapshot: {snapshots}; {wal}")]
    UnusableSnapshot {
        /// The corrupt snapshot files, with offsets and reasons.
        snapshots: String,
        #[source]
        wal: WalError,
    },
    /// An earlier write, fsync or apply failed: the member's durable state
    /// is unknown, so it refuses all further work and must be reopened.
    #[error("member refuses further work after an earlier failure: {reason}")]
    Poisoned { reason: String },
    #[error("malformed {what}: {reason}")]
    Malformed { what: &'static str, reason: String },
    #[error(transparent)]
    Crashed(#[from] Crashed),
    #[error("disk: {0}")]
    Io(#[from] std::io::Error),
}

impl StoreError {
    /// The crash point that stopped the member, if this error is a crash
    /// injected by the driver rather than a real failure.
    pub fn crashed(&self) -> Option<Crashed> {
        match self {
            StoreError::Crashed(c) => Some(*c),
            StoreError::Apply(e) => e.crashed(),
            StoreError::Backend(e) => e.as_crashed(),
            StoreError::Wal(WalError::Crashed(c)) => Some(*c),
            _ => None,
        }
    }
}
