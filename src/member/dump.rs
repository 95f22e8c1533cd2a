//! The state replicas must agree on, as one serialisable value.

use crate::membership::{BackendMembership, Cluster};
use crate::proto::ConfState;
use crate::v2store::V2Dump;
use serde::{Deserialize, Serialize};

/// One v3 key at the current revision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyDump {
    pub key: String,
    pub create_revision: i64,
    pub mod_revision: i64,
    pub version: i64,
    pub value: String,
}

/// The v3 key space.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct V3Dump {
    pub revision: i64,
    pub compact_revision: i64,
    pub keys: Vec<KeyDump>,
}

/// Everything about a member's state that every replica must agree on once
/// it has applied the same entries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateDump {
    /// The index of the last applied entry.
    pub applied_index: u64,
    /// The backend's consistent index and its term.
    pub consistent_index: u64,
    pub consistent_term: u64,
    /// The conf state the backend holds.
    pub conf_state: Option<ConfState>,
    pub v2: V2Dump,
    pub v3: V3Dump,
    /// Membership as the member acts on it (rebuilt from v2 on boot).
    pub cluster: Cluster,
    /// Membership as the backend holds it.
    pub backend_membership: BackendMembership,
}

/// Renders bytes as text when they are UTF-8, else as `0x…` hex, so dumps
/// stay readable and stable.
pub fn printable(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(s) => s.to_string(),
        Err(_) => {
            let mut out = String::from("0x");
            for b in bytes {
                out.push_str(&format!("{b:02x}"));
            }
            out
        }
    }
}
