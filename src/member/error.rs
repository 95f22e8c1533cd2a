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
