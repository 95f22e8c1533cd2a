//! `replica`: the store under test, an etcd-style member's storage and apply
//! path. Synchronous and sans-IO: every file operation goes through
//! [`disk::Disk`], time comes in from the caller, and nothing here knows
//! about simulation. See `docs/ARCHITECTURE.md` for the module map.

pub mod apply;
pub mod backend;
pub mod backup;
pub mod bugs;
pub mod crash_point;
pub mod disk;
pub mod fuzzing;
pub mod member;
pub mod membership;
pub mod mvcc;
pub mod node;
pub mod probe;
pub mod proto;
pub mod snap;
pub mod v2store;
pub mod verify;
pub mod wal;
