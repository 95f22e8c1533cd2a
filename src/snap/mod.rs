//! v2 snapshot files, after etcd's `server/etcdserver/api/snap`.
//!
//! A snapshot is raft metadata ([`SnapshotMarker`]: index, term, conf state)
//! plus opaque data (the serialised v2 store). Each lives in its own file
//! `{term:016x}-{index:016x}.snap` in the snapshot directory:
//!
//! - [`name`]: file names;
//! - [`record`]: the on-disk record (prost, CRC32C over the payload) and its
//!   strict decoder;
//! - [`snapshotter`]: save, load, newest-valid selection, purge.
//!
//! A snapshot file is only useful together with the WAL's marker for it: the
//! WAL replays entries *after* the marker, so a snapshot without a marker
//! (saved, then a crash before the marker was written) must not be used.

pub mod name;
pub mod record;
mod snapshotter;

pub use snapshotter::Snapshotter;

use crate::proto::SnapshotMarker;
use std::io;
use std::path::PathBuf;

/// The largest snapshot payload (marker + data, encoded) we write or read:
/// 1 GiB. It bounds the allocation made from a file's length field; etcd's
/// v2 store is tiny in practice (its v3 data lives in the backend, not here).
pub const MAX_PAYLOAD_BYTES: u64 = 1 << 30;

/// A v2 snapshot: where it cut the log, and the v2 store's bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    pub marker: SnapshotMarker,
    pub data: Vec<u8>,
}

/// Why a snapshot could not be saved or loaded.
#[derive(Debug, thiserror::Error)]
pub enum SnapError {
    #[error("{}: {source}", file.display())]
    Io {
        file: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{}: corrupt snapshot at byte {offset}: {reason}", file.display())]
    Corrupt {
        file: PathBuf,
        offset: u64,
        reason: String,
    },
    #[error("{}: no such snapshot file", file.display())]
    NotFound { file: PathBuf },
    #[error("snapshot payload of {size} bytes exceeds the bound of {max} bytes")]
    TooLarge { size: u64, max: u64 },
}
