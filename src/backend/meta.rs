//! The raft metadata the backend keeps in its `meta` table: the consistent
//! index (the last applied entry whose effects are in the backend), its
//! term, and the conf state. Values are prost-encoded; a value that does not
//! decode is reported as [`BackendError::CorruptMeta`], never a panic.

use super::BackendError;
use crate::proto::ConfState;
use prost::Message;

/// Meta key of the consistent index and its term.
pub const CONSISTENT_INDEX_KEY: &[u8] = b"consistent_index";
/// Meta key of the conf state.
pub const CONF_STATE_KEY: &[u8] = b"conf_state";

/// The last entry whose effects the backend holds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct ConsistentIndex {
    pub index: u64,
    pub term: u64,
}

/// What redb holds now, as opposed to the in-memory (possibly uncommitted)
/// values.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PersistedMeta {
    pub consistent_index: ConsistentIndex,
    pub conf_state: Option<ConfState>,
}

/// The stored form of [`ConsistentIndex`].
#[derive(Clone, PartialEq, Eq, prost::Message)]
struct ConsistentIndexRecord {
    #[prost(uint64, tag = "1")]
    index: u64,
    #[prost(uint64, tag = "2")]
    term: u64,
}

pub(crate) fn encode_consistent_index(ci: ConsistentIndex) -> Vec<u8> {
    ConsistentIndexRecord {
        index: ci.index,
        term: ci.term,
    }
    .encode_to_vec()
}

pub(crate) fn decode_consistent_index(bytes: &[u8]) -> Result<ConsistentIndex, BackendError> {
    let r = ConsistentIndexRecord::decode(bytes).map_err(|e| corrupt(CONSISTENT_INDEX_KEY, e))?;
    Ok(ConsistentIndex {
        index: r.index,
        term: r.term,
    })
}

pub(crate) fn decode_conf_state(bytes: &[u8]) -> Result<ConfState, BackendError> {
    ConfState::decode(bytes).map_err(|e| corrupt(CONF_STATE_KEY, e))
}

fn corrupt(key: &[u8], e: prost::DecodeError) -> BackendError {
    BackendError::CorruptMeta {
        key: String::from_utf8_lossy(key).into_owned(),
        reason: e.to_string(),
    }
}

/// Reads both values from raw `meta` lookups.
pub(crate) fn decode(
    consistent_index: Option<&[u8]>,
    conf_state: Option<&[u8]>,
) -> Result<PersistedMeta, BackendError> {
    Ok(PersistedMeta {
        consistent_index: consistent_index
            .map(decode_consistent_index)
            .transpose()?
            .unwrap_or_default(),
        conf_state: conf_state.map(decode_conf_state).transpose()?,
    })
}
