//! Cluster membership, cluster version and downgrade info, kept in three
//! places: in memory (what the member acts on), in the v2 store (etcd's
//! `/0/members`, `/0/removed_members`, `/0/version` keys), and in the backend
//! (`members`, `members_removed`, `cluster` tables).
//!
//! Recovery rule (etcd's `ApplyBoth` / `ApplyV2storeOnly`): every writer takes
//! `apply_v3`. The in-memory and v2 halves are applied for every entry,
//! including entries replayed from the WAL at boot; the backend half only
//! when the entry is newer than the backend's consistent index, because the
//! backend already holds the effects of older entries. Applying a backend
//! half twice is not harmless: adding a member the backend already knows is
//! refused ([`MembershipError::BackendConflict`]), which is how a double
//! apply surfaces instead of silently passing.

mod v2keys;

use crate::backend::{Backend, BackendError, Table};
use crate::proto::{ConfState, DowngradeInfoSetRequest, Member};
use crate::v2store::{V2Error, V2Store};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

pub use v2keys::{member_attributes_key, member_dir, member_raft_attributes_key};

/// Backend key of the cluster version in the `cluster` table.
const CLUSTER_VERSION_KEY: &[u8] = b"clusterVersion";
/// Backend key of the downgrade info in the `cluster` table.
const DOWNGRADE_KEY: &[u8] = b"downgrade";

/// Why a membership change could not be applied.
#[derive(Debug, thiserror::Error)]
pub enum MembershipError {
    #[error("member {0:x} does not exist")]
    NoSuchMember(u64),
    #[error("member {0:x} already exists")]
    MemberExists(u64),
    #[error("member {0:x} was removed and cannot be re-added with the same id")]
    MemberRemoved(u64),
    #[error("member {0:x} is not a learner")]
    NotLearner(u64),
    #[error(
        "backend already holds the effect of this change for member {id:x} ({what}): a conf change applied to the backend twice"
    )]
    BackendConflict { id: u64, what: &'static str },
    #[error("v2 store: {0}")]
    V2(#[from] V2Error),
    #[error("backend: {0}")]
    Backend(#[from] BackendError),
    #[error("malformed membership record {key}: {reason}")]
    Corrupt { key: String, reason: String },
}

/// The downgrade state of the cluster.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DowngradeInfo {
    pub enabled: bool,
    pub target_version: String,
}

impl From<&DowngradeInfoSetRequest> for DowngradeInfo {
    fn from(r: &DowngradeInfoSetRequest) -> Self {
        DowngradeInfo {
            enabled: r.enabled,
            target_version: r.target_version.clone(),
        }
    }
}

/// The in-memory view of the cluster.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cluster {
    pub members: BTreeMap<u64, Member>,
    pub removed: BTreeSet<u64>,
    pub version: Option<String>,
    pub downgrade: Option<DowngradeInfo>,
}

/// Which member an update touches, how it is named in errors, and which v2
/// key it rewrites.
struct MemberChange {
    id: u64,
    what: &'static str,
    write_v2: fn(&mut V2Store, &Member) -> Result<(), MembershipError>,
}

/// What the backend's membership tables hold (for state comparison).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackendMembership {
    pub members: BTreeMap<String, Member>,
    pub removed: BTreeSet<String>,
    pub version: Option<String>,
    pub downgrade: Option<DowngradeInfo>,
}

fn id_key(id: u64) -> Vec<u8> {
    format!("{id:016x}").into_bytes()
}

fn to_json<T: Serialize>(value: &T) -> String {
    // Serialising plain structs of strings, numbers and bools cannot fail.
    serde_json::to_string(value).unwrap_or_default()
}

fn from_json<T: for<'de> Deserialize<'de>>(key: &str, bytes: &[u8]) -> Result<T, MembershipError> {
    serde_json::from_slice(bytes).map_err(|e| MembershipError::Corrupt {
        key: key.to_string(),
        reason: e.to_string(),
    })
}

impl Cluster {
    /// The raft configuration this membership implies (single-step changes
    /// only: no joint configurations).
    pub fn conf_state(&self) -> ConfState {
        let mut cs = ConfState::default();
        for m in self.members.values() {
            if m.is_learner {
                cs.learners.push(m.id);
            } else {
                cs.voters.push(m.id);
            }
        }
        cs
    }

    /// Rebuilds the cluster from the v2 store (the state a v2 snapshot holds).
    pub fn recover_from_v2(v2: &V2Store) -> Result<Cluster, MembershipError> {
        v2keys::read_cluster(v2)
    }

    /// Adds a member (voter or learner).
    pub fn add_member(
        &mut self,
        v2: &mut V2Store,
        be: &mut Backend,
        member: &Member,
        apply_v3: bool,
    ) -> Result<(), MembershipError> {
        if self.removed.contains(&member.id) {
            return Err(MembershipError::MemberRemoved(member.id));
        }
        if self.members.contains_key(&member.id) {
            return Err(MembershipError::MemberExists(member.id));
        }
        v2keys::write_member(v2, member)?;
        if apply_v3 {
            let key = id_key(member.id);
            if be.get(Table::Members, &key)?.is_some()
                || be.get(Table::MembersRemoved, &key)?.is_some()
            {
                return Err(MembershipError::BackendConflict {
                    id: member.id,
                    what: "add",
                });
            }
            be.put(Table::Members, &key, to_json(member).as_bytes());
        }
        self.members.insert(member.id, member.clone());
        Ok(())
    }

    /// Removes a member; its id may never return.
    pub fn remove_member(
        &mut self,
        v2: &mut V2Store,
        be: &mut Backend,
        id: u64,
        apply_v3: bool,
    ) -> Result<(), MembershipError> {
        if !self.members.contains_key(&id) {
            return Err(if self.removed.contains(&id) {
                MembershipError::MemberRemoved(id)
            } else {
                MembershipError::NoSuchMember(id)
            });
        }
        v2keys::remove_member(v2, id)?;
        if apply_v3 {
            let key = id_key(id);
            if be.get(Table::MembersRemoved, &key)?.is_some() {
                return Err(MembershipError::BackendConflict { id, what: "remove" });
            }
            be.delete(Table::Members, &key);
            be.put(Table::MembersRemoved, &key, b"removed");
        }
        self.members.remove(&id);
        self.removed.insert(id);
        Ok(())
    }

    /// Promotes a learner to voter.
    pub fn promote_member(
        &mut self,
        v2: &mut V2Store,
        be: &mut Backend,
        id: u64,
        apply_v3: bool,
    ) -> Result<(), MembershipError> {
        let change = MemberChange {
            id,
            what: "promote",
            write_v2: v2keys::write_raft_attributes,
        };
        self.update_member(v2, be, change, apply_v3, |m| {
            if !m.is_learner {
                return Err(MembershipError::NotLearner(id));
            }
            m.is_learner = false;
            Ok(())
        })
    }

    /// Replaces a member's peer URLs.
    pub fn update_raft_attributes(
        &mut self,
        v2: &mut V2Store,
        be: &mut Backend,
        id: u64,
        peer_urls: &[String],
        apply_v3: bool,
    ) -> Result<(), MembershipError> {
        let change = MemberChange {
            id,
            what: "update",
            write_v2: v2keys::write_raft_attributes,
        };
        self.update_member(v2, be, change, apply_v3, |m| {
            m.peer_urls = peer_urls.to_vec();
            Ok(())
        })
    }

    /// Sets a member's published name and client URLs.
    pub fn update_attributes(
        &mut self,
        v2: &mut V2Store,
        be: &mut Backend,
        id: u64,
        name: &str,
        client_urls: &[String],
        apply_v3: bool,
    ) -> Result<(), MembershipError> {
        let change = MemberChange {
            id,
            what: "attributes",
            write_v2: v2keys::write_attributes,
        };
        self.update_member(v2, be, change, apply_v3, |m| {
            m.name = name.to_string();
            m.client_urls = client_urls.to_vec();
            Ok(())
        })
    }

    /// Changes an existing member: validate and modify a copy, write its v2
    /// half, then (when `apply_v3`) its backend record, then adopt it.
    fn update_member(
        &mut self,
        v2: &mut V2Store,
        be: &mut Backend,
        change: MemberChange,
        apply_v3: bool,
        modify: impl FnOnce(&mut Member) -> Result<(), MembershipError>,
    ) -> Result<(), MembershipError> {
        let mut member = self
            .members
            .get(&change.id)
            .cloned()
            .ok_or(MembershipError::NoSuchMember(change.id))?;
        modify(&mut member)?;
        (change.write_v2)(v2, &member)?;
        if apply_v3 {
            self.write_backend_member(be, &member, change.what)?;
        }
        self.members.insert(change.id, member);
        Ok(())
    }

    /// Sets the cluster version.
    pub fn set_version(
        &mut self,
        v2: &mut V2Store,
        be: &mut Backend,
        version: &str,
        apply_v3: bool,
    ) -> Result<(), MembershipError> {
        v2keys::write_version(v2, version)?;
        if apply_v3 {
            be.put(Table::Cluster, CLUSTER_VERSION_KEY, version.as_bytes());
        }
        self.version = Some(version.to_string());
        Ok(())
    }

    /// Sets the downgrade info.
    pub fn set_downgrade(
        &mut self,
        v2: &mut V2Store,
        be: &mut Backend,
        info: &DowngradeInfo,
        apply_v3: bool,
    ) -> Result<(), MembershipError> {
        v2keys::write_downgrade(v2, info)?;
        if apply_v3 {
            be.put(Table::Cluster, DOWNGRADE_KEY, to_json(info).as_bytes());
        }
        self.downgrade = Some(info.clone());
        Ok(())
    }

    /// Overwrites a member record the backend must already hold.
    fn write_backend_member(
        &self,
        be: &mut Backend,
        member: &Member,
        what: &'static str,
    ) -> Result<(), MembershipError> {
        let key = id_key(member.id);
        if be.get(Table::Members, &key)?.is_none() {
            return Err(MembershipError::BackendConflict {
                id: member.id,
                what,
            });
        }
        be.put(Table::Members, &key, to_json(member).as_bytes());
        Ok(())
    }

    /// Replaces the whole membership, in memory, in v2 and in the backend, by
    /// a single new member (backup/restore's rewrite to a new cluster).
    pub fn reset_to_single_member(
        &mut self,
        v2: &mut V2Store,
        be: &mut Backend,
        member: &Member,
    ) -> Result<(), MembershipError> {
        // The old members are forgotten, not removed: a removal would
        // record their ids under /0/removed_members, and the next boot
        // (which rebuilds membership from v2) would refuse them forever.
        for id in self.members.keys().copied().collect::<Vec<_>>() {
            v2keys::forget_member(v2, id)?;
            be.delete(Table::Members, &id_key(id));
        }
        for id in &self.removed {
            v2keys::forget_removed(v2, *id)?;
            be.delete(Table::MembersRemoved, &id_key(*id));
        }
        for (key, _) in be.range(Table::Members, b"", None)? {
            be.delete(Table::Members, &key);
        }
        for (key, _) in be.range(Table::MembersRemoved, b"", None)? {
            be.delete(Table::MembersRemoved, &key);
        }
        self.members.clear();
        self.removed.clear();
        v2keys::write_member(v2, member)?;
        be.put(
            Table::Members,
            &id_key(member.id),
            to_json(member).as_bytes(),
        );
        self.members.insert(member.id, member.clone());
        Ok(())
    }
}

/// Reads the backend's membership tables.
pub fn read_backend_membership(be: &Backend) -> Result<BackendMembership, MembershipError> {
    let mut out = BackendMembership::default();
    for (key, value) in be.range(Table::Members, b"", None)? {
        let key = String::from_utf8_lossy(&key).into_owned();
        let member: Member = from_json(&key, &value)?;
        out.members.insert(key, member);
    }
    for (key, _) in be.range(Table::MembersRemoved, b"", None)? {
        out.removed
            .insert(String::from_utf8_lossy(&key).into_owned());
    }
    if let Some(v) = be.get(Table::Cluster, CLUSTER_VERSION_KEY)? {
        out.version = Some(String::from_utf8_lossy(&v).into_owned());
    }
    if let Some(v) = be.get(Table::Cluster, DOWNGRADE_KEY)? {
        out.downgrade = Some(from_json("cluster/downgrade", &v)?);
    }
    Ok(out)
}
