//! Where membership lives in the v2 store (etcd's layout).
//!
//! ```text
//! /0/members/<id>/raftAttributes   {"peerURLs":[..],"isLearner":bool}
//! /0/members/<id>/attributes       {"name":"..","clientURLs":[..]}
//! /0/removed_members/<id>          ""
//! /0/version                       "3.5.0"
//! /0/downgrade                     {"enabled":bool,"target_version":".."}
//! ```

use super::{Cluster, DowngradeInfo, MembershipError, from_json, to_json};
use crate::proto::Member;
use crate::v2store::V2Store;
use serde::{Deserialize, Serialize};

const MEMBERS_DIR: &str = "/0/members";
const REMOVED_DIR: &str = "/0/removed_members";
const VERSION_KEY: &str = "/0/version";
const DOWNGRADE_KEY: &str = "/0/downgrade";

#[derive(Serialize, Deserialize)]
struct RaftAttributes {
    #[serde(rename = "peerURLs")]
    peer_urls: Vec<String>,
    #[serde(rename = "isLearner")]
    is_learner: bool,
}

#[derive(Serialize, Deserialize)]
struct Attributes {
    name: String,
    #[serde(rename = "clientURLs")]
    client_urls: Vec<String>,
}

/// The v2 directory of a member.
pub fn member_dir(id: u64) -> String {
    format!("{MEMBERS_DIR}/{id:016x}")
}

/// The v2 key of a member's raft attributes.
pub fn member_raft_attributes_key(id: u64) -> String {
    format!("{}/raftAttributes", member_dir(id))
}

/// The v2 key of a member's published attributes.
pub fn member_attributes_key(id: u64) -> String {
    format!("{}/attributes", member_dir(id))
}

pub(super) fn write_raft_attributes(v2: &mut V2Store, m: &Member) -> Result<(), MembershipError> {
    let attrs = RaftAttributes {
        peer_urls: m.peer_urls.clone(),
        is_learner: m.is_learner,
    };
    v2.set(&member_raft_attributes_key(m.id), &to_json(&attrs))?;
    Ok(())
}

pub(super) fn write_attributes(v2: &mut V2Store, m: &Member) -> Result<(), MembershipError> {
    let attrs = Attributes {
        name: m.name.clone(),
        client_urls: m.client_urls.clone(),
    };
    v2.set(&member_attributes_key(m.id), &to_json(&attrs))?;
    Ok(())
}

pub(super) fn write_member(v2: &mut V2Store, m: &Member) -> Result<(), MembershipError> {
    write_raft_attributes(v2, m)?;
    if !m.name.is_empty() || !m.client_urls.is_empty() {
        write_attributes(v2, m)?;
    }
    Ok(())
}

pub(super) fn remove_member(v2: &mut V2Store, id: u64) -> Result<(), MembershipError> {
    v2.delete(&member_dir(id), true)?;
    v2.set(&format!("{REMOVED_DIR}/{id:016x}"), "")?;
    Ok(())
}

pub(super) fn forget_member(v2: &mut V2Store, id: u64) -> Result<(), MembershipError> {
    v2.delete(&member_dir(id), true)?;
    Ok(())
}

pub(super) fn forget_removed(v2: &mut V2Store, id: u64) -> Result<(), MembershipError> {
    v2.delete(&format!("{REMOVED_DIR}/{id:016x}"), false)?;
    Ok(())
}

pub(super) fn write_version(v2: &mut V2Store, version: &str) -> Result<(), MembershipError> {
    v2.set(VERSION_KEY, version)?;
    Ok(())
}

pub(super) fn write_downgrade(
    v2: &mut V2Store,
    info: &DowngradeInfo,
) -> Result<(), MembershipError> {
    v2.set(DOWNGRADE_KEY, &to_json(info))?;
    Ok(())
}

fn parse_id(key: &str, name: &str) -> Result<u64, MembershipError> {
    u64::from_str_radix(name, 16).map_err(|_| MembershipError::Corrupt {
        key: key.to_string(),
        reason: format!("{name:?} is not a hex member id"),
    })
}

pub(super) fn read_cluster(v2: &V2Store) -> Result<Cluster, MembershipError> {
    let mut cluster = Cluster::default();
    if v2.exists(MEMBERS_DIR) {
        for name in v2.children(MEMBERS_DIR)? {
            let dir = format!("{MEMBERS_DIR}/{name}");
            let id = parse_id(&dir, &name)?;
            let raft_key = member_raft_attributes_key(id);
            let raft: RaftAttributes = match v2.get(&raft_key) {
                Some(json) => from_json(&raft_key, json.as_bytes())?,
                None => {
                    return Err(MembershipError::Corrupt {
                        key: raft_key,
                        reason: "member without raft attributes".into(),
                    });
                }
            };
            let attr_key = member_attributes_key(id);
            let attrs: Option<Attributes> = match v2.get(&attr_key) {
                Some(json) => Some(from_json(&attr_key, json.as_bytes())?),
                None => None,
            };
            let (name, client_urls) = attrs.map(|a| (a.name, a.client_urls)).unwrap_or_default();
            cluster.members.insert(
                id,
                Member {
                    id,
                    name,
                    peer_urls: raft.peer_urls,
                    client_urls,
                    is_learner: raft.is_learner,
                },
            );
        }
    }
    if v2.exists(REMOVED_DIR) {
        for name in v2.children(REMOVED_DIR)? {
            cluster.removed.insert(parse_id(REMOVED_DIR, &name)?);
        }
    }
    cluster.version = v2.get(VERSION_KEY);
    if let Some(json) = v2.get(DOWNGRADE_KEY) {
        cluster.downgrade = Some(from_json(DOWNGRADE_KEY, json.as_bytes())?);
    }
    Ok(cluster)
}
