//! The membership rewrite shared by the backup image and the reference
//! replay: the new member becomes the only member, in v2 and the backend.

use super::error::BackupError;
use crate::backend::Backend;
use crate::membership::Cluster;
use crate::proto::Member as MemberInfo;
use crate::v2store::V2Store;

/// Where the v2 store lists removed members.
const REMOVED_DIR: &str = "/0/removed_members";

/// Replaces the membership of `v2` and `backend` by `member` alone.
///
/// `Cluster::reset_to_single_member` forgets the old members and the removed
/// ids; the then empty removed-members directory is dropped too, so the new
/// cluster's v2 membership looks as if it started from scratch (as etcd's
/// backup does), and old ids stay free to rejoin.
pub fn reset(
    v2: &mut V2Store,
    backend: &mut Backend,
    member: &MemberInfo,
) -> Result<Cluster, BackupError> {
    let mut cluster = Cluster::recover_from_v2(v2)?;
    cluster.reset_to_single_member(v2, backend, member)?;
    if v2.exists(REMOVED_DIR) {
        v2.delete(REMOVED_DIR, true)?;
    }
    Ok(cluster)
}
