//! Records that cross a boundary: the WAL, snapshot files, the backend and
//! the wire. All are prost messages (derive only; no protoc, no build
//! script), so their encoding is stable and checked by their own decoders.

use serde::{Deserialize, Serialize};

/// A raft log entry as the store persists it.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct Entry {
    #[prost(uint64, tag = "1")]
    pub term: u64,
    #[prost(uint64, tag = "2")]
    pub index: u64,
    #[prost(enumeration = "EntryType", tag = "3")]
    pub entry_type: i32,
    #[prost(bytes = "vec", tag = "4")]
    pub data: Vec<u8>,
    /// For conf change entries: the encoded [`ConfChangeRequest`] (raft keeps
    /// its own encoding of the change in `data`; the store reads only this).
    #[prost(bytes = "vec", tag = "5")]
    pub context: Vec<u8>,
}

/// The kind of a raft log entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum EntryType {
    Normal = 0,
    ConfChange = 1,
    ConfChangeV2 = 2,
}

/// Raft's durable vote and commit.
#[derive(Clone, Copy, PartialEq, Eq, Serialize, Deserialize, prost::Message)]
pub struct HardState {
    #[prost(uint64, tag = "1")]
    pub term: u64,
    #[prost(uint64, tag = "2")]
    pub vote: u64,
    #[prost(uint64, tag = "3")]
    pub commit: u64,
}

/// The voters and learners in force at some log index.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, prost::Message)]
pub struct ConfState {
    #[prost(uint64, repeated, tag = "1")]
    pub voters: Vec<u64>,
    #[prost(uint64, repeated, tag = "2")]
    pub learners: Vec<u64>,
    #[prost(uint64, repeated, tag = "3")]
    pub voters_outgoing: Vec<u64>,
    #[prost(uint64, repeated, tag = "4")]
    pub learners_next: Vec<u64>,
    #[prost(bool, tag = "5")]
    pub auto_leave: bool,
}

/// Where a v2 snapshot cut the log: recorded in the WAL and in snapshot files.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, prost::Message)]
pub struct SnapshotMarker {
    #[prost(uint64, tag = "1")]
    pub index: u64,
    #[prost(uint64, tag = "2")]
    pub term: u64,
    #[prost(message, optional, tag = "3")]
    pub conf_state: Option<ConfState>,
}

/// A member of the cluster, as carried in a conf change's context and
/// stored in the v2 store and the backend.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, prost::Message)]
pub struct Member {
    #[prost(uint64, tag = "1")]
    pub id: u64,
    #[prost(string, tag = "2")]
    pub name: String,
    #[prost(string, repeated, tag = "3")]
    pub peer_urls: Vec<String>,
    #[prost(string, repeated, tag = "4")]
    pub client_urls: Vec<String>,
    #[prost(bool, tag = "5")]
    pub is_learner: bool,
}

/// The kind of a membership change, as proposed through raft.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum ConfChangeKind {
    AddNode = 0,
    RemoveNode = 1,
    AddLearnerNode = 2,
    /// Promote a learner to voter (raft sees an AddNode of a learner).
    Promote = 3,
    /// Update a member's peer URLs (no change for raft).
    UpdateNode = 4,
}

/// The payload of a conf change entry: what changes and the member it names.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct ConfChangeRequest {
    #[prost(enumeration = "ConfChangeKind", tag = "1")]
    pub kind: i32,
    #[prost(uint64, tag = "2")]
    pub node_id: u64,
    #[prost(message, optional, tag = "3")]
    pub member: Option<Member>,
    #[prost(uint64, tag = "4")]
    pub request_id: u64,
}

/// A stored v3 key-value pair, with etcd's revision bookkeeping.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, prost::Message)]
pub struct KeyValue {
    #[prost(bytes = "vec", tag = "1")]
    pub key: Vec<u8>,
    #[prost(int64, tag = "2")]
    pub create_revision: i64,
    #[prost(int64, tag = "3")]
    pub mod_revision: i64,
    #[prost(int64, tag = "4")]
    pub version: i64,
    #[prost(bytes = "vec", tag = "5")]
    pub value: Vec<u8>,
}

/// v3 put.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct PutRequest {
    #[prost(bytes = "vec", tag = "1")]
    pub key: Vec<u8>,
    #[prost(bytes = "vec", tag = "2")]
    pub value: Vec<u8>,
}

/// v3 range read. `range_end` follows etcd: empty means the single `key`,
/// `[0]` means every key >= `key`, otherwise the half-open `[key, range_end)`.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct RangeRequest {
    #[prost(bytes = "vec", tag = "1")]
    pub key: Vec<u8>,
    #[prost(bytes = "vec", tag = "2")]
    pub range_end: Vec<u8>,
    /// Read at this revision; 0 means the current one.
    #[prost(int64, tag = "3")]
    pub revision: i64,
    /// At most this many keys; 0 means no limit.
    #[prost(int64, tag = "4")]
    pub limit: i64,
}

/// v3 delete range (same `range_end` rules as [`RangeRequest`]).
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct DeleteRangeRequest {
    #[prost(bytes = "vec", tag = "1")]
    pub key: Vec<u8>,
    #[prost(bytes = "vec", tag = "2")]
    pub range_end: Vec<u8>,
}

/// What a txn compare looks at.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum CompareTarget {
    Version = 0,
    Create = 1,
    Mod = 2,
    Value = 3,
}

/// How a txn compare compares.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum CompareResult {
    Equal = 0,
    Greater = 1,
    Less = 2,
    NotEqual = 3,
}

/// One txn guard: `target(key) result (number | value)`. A missing key has
/// version, create and mod revision 0 and never matches a value compare.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct Compare {
    #[prost(bytes = "vec", tag = "1")]
    pub key: Vec<u8>,
    #[prost(enumeration = "CompareTarget", tag = "2")]
    pub target: i32,
    #[prost(enumeration = "CompareResult", tag = "3")]
    pub result: i32,
    /// Compared against version / create / mod revision.
    #[prost(int64, tag = "4")]
    pub number: i64,
    /// Compared against the value.
    #[prost(bytes = "vec", tag = "5")]
    pub value: Vec<u8>,
}

/// One operation inside a txn branch.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct RequestOp {
    #[prost(oneof = "request_op::Op", tags = "1, 2, 3")]
    pub op: Option<request_op::Op>,
}

/// The operations a txn branch may hold.
pub mod request_op {
    /// One txn operation.
    #[derive(Clone, PartialEq, Eq, prost::Oneof)]
    pub enum Op {
        #[prost(message, tag = "1")]
        Range(super::RangeRequest),
        #[prost(message, tag = "2")]
        Put(super::PutRequest),
        #[prost(message, tag = "3")]
        DeleteRange(super::DeleteRangeRequest),
    }
}

/// v3 txn: if every compare holds, run `success`, else `failure`.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct TxnRequest {
    #[prost(message, repeated, tag = "1")]
    pub compare: Vec<Compare>,
    #[prost(message, repeated, tag = "2")]
    pub success: Vec<RequestOp>,
    #[prost(message, repeated, tag = "3")]
    pub failure: Vec<RequestOp>,
}

/// v3 compaction: forget superseded revisions below `revision`.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct CompactRequest {
    #[prost(int64, tag = "1")]
    pub revision: i64,
}

/// v2 set of a leaf key.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct V2SetRequest {
    #[prost(string, tag = "1")]
    pub path: String,
    #[prost(string, tag = "2")]
    pub value: String,
}

/// v2 delete of a key (and its children when `recursive`).
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct V2DeleteRequest {
    #[prost(string, tag = "1")]
    pub path: String,
    #[prost(bool, tag = "2")]
    pub recursive: bool,
}

/// v2 create of an in-order key under a directory (POST in etcd v2).
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct V2CreateInOrderRequest {
    #[prost(string, tag = "1")]
    pub dir: String,
    #[prost(string, tag = "2")]
    pub value: String,
}

/// Set the cluster version (written to v2 and the backend).
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct ClusterVersionSetRequest {
    #[prost(string, tag = "1")]
    pub version: String,
}

/// Set a member's published attributes (written to v2 and the backend).
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct MemberAttrSetRequest {
    #[prost(uint64, tag = "1")]
    pub member_id: u64,
    #[prost(string, tag = "2")]
    pub name: String,
    #[prost(string, repeated, tag = "3")]
    pub client_urls: Vec<String>,
}

/// Set the downgrade info (written to v2 and the backend).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, prost::Message)]
pub struct DowngradeInfoSetRequest {
    #[prost(bool, tag = "1")]
    pub enabled: bool,
    #[prost(string, tag = "2")]
    pub target_version: String,
}

/// The payload of a normal raft entry: one client request.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct Request {
    /// Unique per proposal, so the proposer can match the result.
    #[prost(uint64, tag = "1")]
    pub id: u64,
    #[prost(oneof = "request::Kind", tags = "2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12")]
    pub kind: Option<request::Kind>,
}

/// The request kinds.
pub mod request {
    /// One request.
    #[derive(Clone, PartialEq, Eq, prost::Oneof)]
    pub enum Kind {
        #[prost(message, tag = "2")]
        Put(super::PutRequest),
        #[prost(message, tag = "3")]
        DeleteRange(super::DeleteRangeRequest),
        #[prost(message, tag = "4")]
        Txn(super::TxnRequest),
        #[prost(message, tag = "5")]
        Compact(super::CompactRequest),
        #[prost(message, tag = "6")]
        V2Set(super::V2SetRequest),
        #[prost(message, tag = "7")]
        V2Delete(super::V2DeleteRequest),
        #[prost(message, tag = "8")]
        V2CreateInOrder(super::V2CreateInOrderRequest),
        #[prost(message, tag = "9")]
        ClusterVersionSet(super::ClusterVersionSetRequest),
        #[prost(message, tag = "10")]
        MemberAttrSet(super::MemberAttrSetRequest),
        #[prost(message, tag = "11")]
        DowngradeInfoSet(super::DowngradeInfoSetRequest),
        /// An entry that changes nothing (backup's replacement for stripped
        /// membership entries; the empty entry a new leader appends).
        #[prost(bool, tag = "12")]
        Noop(bool),
    }
}

/// The result of applying one request, as returned to its proposer.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct Response {
    /// The request's id.
    #[prost(uint64, tag = "1")]
    pub id: u64,
    /// The v3 store revision after the request.
    #[prost(int64, tag = "2")]
    pub revision: i64,
    /// Txn: whether the compares held.
    #[prost(bool, tag = "3")]
    pub succeeded: bool,
    /// Delete range: how many keys were deleted.
    #[prost(int64, tag = "4")]
    pub deleted: i64,
    /// Range (also inside a txn): the keys read.
    #[prost(message, repeated, tag = "5")]
    pub kvs: Vec<KeyValue>,
    /// Empty on success; otherwise why the request failed (a failed request
    /// still consumes its log index).
    #[prost(string, tag = "6")]
    pub error: String,
    /// The v2 store index after the request.
    #[prost(uint64, tag = "7")]
    pub v2_index: u64,
}
