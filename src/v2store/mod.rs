//! etcd's v2 store, reduced to what recovery depends on: a tree of
//! directories and leaf values with a store-wide `index` that grows by
//! exactly one per successful modification, and a byte-stable snapshot
//! encoding.
//!
//! The v2 store is durable *only* through v2 snapshots plus WAL replay, and
//! replay re-applies every entry after the snapshot to it. Two members that
//! applied the same entries must therefore hold the same tree and the same
//! index; `dump` gives the simulator a value it can compare and print.
//!
//! - [`path`]: canonical key paths;
//! - [`store`]: the tree and its operations;
//! - [`codec`]: `save`/`recover` (sorted JSON, bounded parsing).

mod codec;
pub mod path;
mod store;

#[cfg(test)]
mod proptests;

pub use store::{LeafDump, NodeStat, V2Dump, V2Limits, V2Store};

/// Why a v2 store operation or a snapshot recovery failed. A failed
/// operation leaves the store unchanged (in particular, its index).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum V2Error {
    #[error("invalid path {path:?}: {reason}")]
    InvalidPath { path: String, reason: &'static str },
    #[error("path {path:?} has more than {max} components")]
    TooDeep { path: String, max: usize },
    #[error("{path}: not found")]
    NotFound { path: String },
    #[error("{path}: not a directory")]
    NotDir { path: String },
    #[error("{path}: is a directory")]
    IsDir { path: String },
    #[error("{path}: already exists")]
    NodeExists { path: String },
    #[error("{path}: directory not empty (delete it recursively)")]
    DirNotEmpty { path: String },
    #[error("the root directory cannot be deleted")]
    RootReadOnly,
    #[error("the store would hold more than {max} nodes")]
    TooManyNodes { max: usize },
    #[error("the store index would overflow")]
    IndexOverflow,
    /// The snapshot bytes are not the expected JSON (syntax, types, missing
    /// or unknown fields, nesting, too many nodes).
    #[error("malformed v2 store snapshot at line {line} column {column}: {reason}")]
    Malformed {
        line: usize,
        column: usize,
        reason: String,
    },
    /// The snapshot parsed but does not describe a valid tree.
    #[error("invalid v2 store snapshot at node {path:?}: {reason}")]
    BadShape { path: String, reason: String },
}
