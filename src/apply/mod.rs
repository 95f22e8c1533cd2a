//! The apply path: one committed raft entry in, its effects on the v2 store,
//! the backend and the membership out.
//!
//! Recovery rules that live here:
//! - `should_apply_v3`: an entry's v3 half (MVCC, backend membership tables)
//!   is applied only when `entry.index > consistent_index`; the backend
//!   already holds the effects of every older entry.
//! - The v2 half is applied for **every** entry, replayed or not: the v2
//!   store is rebuilt at boot from an older snapshot and needs every entry
//!   after it. Requests that touch both stores (cluster version, member
//!   attributes, downgrade info, conf changes) therefore split into an
//!   always-applied v2 half and a conditional v3 half.
//! - The consistent index is moved to the entry only **after** the entry's
//!   writes are in the batch, and the batch may commit only after that
//!   (`Backend::end_entry`), so no commit holds an index without its writes.
//!   It moves even when the request fails: a failed request still consumes
//!   its index, and replay must not retry it.

mod v2route;

use crate::backend::{Backend, BackendError};
use crate::bugs::{Bug, KnownBugs};
use crate::crash_point::{CrashHook, CrashPoint, Crashed};
use crate::membership::{Cluster, DowngradeInfo, MembershipError};
use crate::mvcc::{Mvcc, MvccError};
use crate::proto::{
    ConfChangeKind, ConfChangeRequest, Entry, EntryType, Request, Response, request,
};
use crate::v2store::V2Store;
use prost::Message;

/// Everything an entry's apply may touch.
#[derive(Debug)]
pub struct Stores {
    pub v2: V2Store,
    pub backend: Backend,
    pub mvcc: Mvcc,
    pub cluster: Cluster,
}

/// The inputs of one apply besides the entry.
#[derive(Debug, Clone, Copy)]
pub struct ApplyContext<'a> {
    /// The driver's clock, for the batch commit timer.
    pub now_ms: u64,
    pub hook: &'a dyn CrashHook,
    pub bugs: KnownBugs,
}

/// What applying one entry produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    pub index: u64,
    pub term: u64,
    /// Whether the v3 half ran (`should_apply_v3`).
    pub applied_v3: bool,
    /// The result for the proposer of a request or conf change.
    pub response: Option<Response>,
    /// A conf change that took effect, for raft to apply too.
    pub conf_change: Option<ConfChangeRequest>,
}

/// Why an entry could not be applied. Every variant is fatal to the member:
/// request-level failures (a bad txn, a v2 set on a directory, a conf change
/// that fails validation) are not errors but a [`Response`] with `error` set.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error("entry {index}: undecodable payload: {reason}")]
    Decode { index: u64, reason: String },
    #[error("entry {index}: {source}")]
    Backend {
        index: u64,
        #[source]
        source: BackendError,
    },
    #[error("entry {index}: {source}")]
    Membership {
        index: u64,
        #[source]
        source: MembershipError,
    },
    #[error("entry {index}: {source}")]
    Mvcc {
        index: u64,
        #[source]
        source: MvccError,
    },
    #[error(transparent)]
    Crashed(#[from] Crashed),
}

impl ApplyError {
    /// The crash point that stopped the member, if this error is a crash.
    pub fn crashed(&self) -> Option<Crashed> {
        match self {
            ApplyError::Crashed(c) => Some(*c),
            ApplyError::Backend { source, .. } => source.as_crashed(),
            ApplyError::Membership {
                source: MembershipError::Backend(b),
                ..
            } => b.as_crashed(),
            _ => None,
        }
    }
}

/// etcd's `shouldApplyV3`: the backend has not yet seen this entry.
pub fn should_apply_v3(backend: &Backend, entry_index: u64) -> bool {
    entry_index > backend.consistent_index().index
}

/// Applies one committed entry.
pub fn apply_entry(
    stores: &mut Stores,
    entry: &Entry,
    ctx: ApplyContext<'_>,
) -> Result<Applied, ApplyError> {
    let index = entry.index;
    let apply_v3 = should_apply_v3(&stores.backend, index);
    let be_err = |source| ApplyError::Backend { index, source };
    if ctx.bugs.has(Bug::CindexBeforeApply) && apply_v3 {
        // The bug: the index is published first, so a batch commit that
        // happens while the entry is being applied persists it without
        // (all of) the entry's writes.
        stores.backend.set_consistent_index(index, entry.term);
        // etcd's batch timer fires concurrently with apply; here it fires
        // at the worst moment: index published, writes not yet buffered.
        stores.backend.commit_if_due(ctx.now_ms).map_err(be_err)?;
    }
    let mut applied = Applied {
        index,
        term: entry.term,
        applied_v3: apply_v3,
        response: None,
        conf_change: None,
    };
    match EntryType::try_from(entry.entry_type) {
        Ok(EntryType::Normal) => {
            if !entry.data.is_empty() {
                let req =
                    Request::decode(entry.data.as_slice()).map_err(|e| ApplyError::Decode {
                        index,
                        reason: e.to_string(),
                    })?;
                applied.response = Some(apply_request(stores, &req, apply_v3, index, ctx)?);
            }
        }
        Ok(EntryType::ConfChange) => {
            let cc = ConfChangeRequest::decode(entry.context.as_slice()).map_err(|e| {
                ApplyError::Decode {
                    index,
                    reason: format!("conf change context: {e}"),
                }
            })?;
            let apply_cc_v3 = apply_v3 || ctx.bugs.has(Bug::ConfchangeDoubleApply);
            let outcome = apply_conf_change(stores, &cc, apply_cc_v3, index, ctx)?;
            let mut response = Response {
                id: cc.request_id,
                v2_index: stores.v2.index(),
                revision: stores.mvcc.current_revision(),
                ..Response::default()
            };
            match outcome {
                Ok(()) => {
                    applied.conf_change = Some(cc);
                    if apply_v3 {
                        stores.backend.set_conf_state(&stores.cluster.conf_state());
                    }
                }
                Err(e) => response.error = e.to_string(),
            }
            applied.response = Some(response);
        }
        Ok(EntryType::ConfChangeV2) | Err(_) => {
            return Err(ApplyError::Decode {
                index,
                reason: format!("unsupported entry type {}", entry.entry_type),
            });
        }
    }
    if apply_v3 {
        stores.backend.set_consistent_index(index, entry.term);
    }
    stores.backend.end_entry(ctx.now_ms).map_err(be_err)?;
    Ok(applied)
}

/// Applies a conf change. The outer error is fatal; the inner one is a
/// validation failure that turns the entry into a no-op.
fn apply_conf_change(
    stores: &mut Stores,
    cc: &ConfChangeRequest,
    apply_v3: bool,
    index: u64,
    ctx: ApplyContext<'_>,
) -> Result<Result<(), MembershipError>, ApplyError> {
    let Stores {
        v2,
        backend,
        cluster,
        ..
    } = stores;
    let kind = ConfChangeKind::try_from(cc.kind).map_err(|_| ApplyError::Decode {
        index,
        reason: format!("unknown conf change kind {}", cc.kind),
    })?;
    let member = cc.member.clone().unwrap_or_default();
    let result = match kind {
        ConfChangeKind::AddNode | ConfChangeKind::AddLearnerNode => {
            let mut member = member;
            member.id = cc.node_id;
            member.is_learner = kind == ConfChangeKind::AddLearnerNode;
            cluster.add_member(v2, backend, &member, apply_v3)
        }
        ConfChangeKind::RemoveNode => cluster.remove_member(v2, backend, cc.node_id, apply_v3),
        ConfChangeKind::Promote => cluster.promote_member(v2, backend, cc.node_id, apply_v3),
        ConfChangeKind::UpdateNode => {
            cluster.update_raft_attributes(v2, backend, cc.node_id, &member.peer_urls, apply_v3)
        }
    };
    ctx.hook.at(CrashPoint::ApplyBetweenV2AndV3)?;
    fatal_or_rejected(result, index)
}

/// Splits membership errors into fatal ones (the stores disagree, I/O) and
/// validation failures that only reject the request.
fn fatal_or_rejected(
    result: Result<(), MembershipError>,
    index: u64,
) -> Result<Result<(), MembershipError>, ApplyError> {
    match result {
        Err(
            e @ (MembershipError::BackendConflict { .. }
            | MembershipError::Backend(_)
            | MembershipError::Corrupt { .. }),
        ) => Err(ApplyError::Membership { index, source: e }),
        other => Ok(other),
    }
}

fn apply_request(
    stores: &mut Stores,
    req: &Request,
    apply_v3: bool,
    index: u64,
    ctx: ApplyContext<'_>,
) -> Result<Response, ApplyError> {
    let mut response = Response {
        id: req.id,
        ..Response::default()
    };
    let mvcc_result = |r: Result<Response, MvccError>, response: &mut Response| match r {
        Ok(r) => {
            *response = Response { id: req.id, ..r };
            Ok(())
        }
        Err(e) if e.is_request_error() => {
            response.error = e.to_string();
            Ok(())
        }
        Err(source) => Err(ApplyError::Mvcc { index, source }),
    };
    let Some(kind) = &req.kind else {
        return Err(ApplyError::Decode {
            index,
            reason: "request without a kind".into(),
        });
    };
    // Dual requests apply their v2 half unconditionally; with the
    // `v2-skipped-with-v3` bug, the whole request is skipped on replay.
    let skip_v2_of_dual = !apply_v3 && ctx.bugs.has(Bug::V2SkippedWithV3);
    let membership = match kind {
        request::Kind::Put(r) if apply_v3 => {
            ctx.hook.at(CrashPoint::ApplyBetweenV2AndV3)?;
            mvcc_result(stores.mvcc.put(&mut stores.backend, r), &mut response)?;
            None
        }
        request::Kind::DeleteRange(r) if apply_v3 => {
            ctx.hook.at(CrashPoint::ApplyBetweenV2AndV3)?;
            mvcc_result(
                stores.mvcc.delete_range(&mut stores.backend, r),
                &mut response,
            )?;
            None
        }
        request::Kind::Txn(r) if apply_v3 => {
            ctx.hook.at(CrashPoint::ApplyBetweenV2AndV3)?;
            mvcc_result(stores.mvcc.txn(&mut stores.backend, r), &mut response)?;
            None
        }
        request::Kind::Compact(r) if apply_v3 => {
            ctx.hook.at(CrashPoint::ApplyBetweenV2AndV3)?;
            mvcc_result(
                stores.mvcc.compact(&mut stores.backend, r.revision),
                &mut response,
            )?;
            None
        }
        request::Kind::Put(_)
        | request::Kind::DeleteRange(_)
        | request::Kind::Txn(_)
        | request::Kind::Compact(_)
        | request::Kind::Noop(_) => None,
        request::Kind::V2Set(r) => {
            let replay_v3 = apply_v3 || ctx.bugs.has(Bug::V2PutWritesV3OnReplay);
            v2route::set(stores, &r.path, &r.value, replay_v3, &mut response)
        }
        request::Kind::V2Delete(r) => {
            v2route::result(stores.v2.delete(&r.path, r.recursive), &mut response);
            None
        }
        request::Kind::V2CreateInOrder(r) => {
            v2route::result(
                stores.v2.create_in_order(&r.dir, &r.value).map(|_| 0),
                &mut response,
            );
            None
        }
        request::Kind::ClusterVersionSet(r) if !skip_v2_of_dual => {
            let Stores {
                v2,
                backend,
                cluster,
                ..
            } = stores;
            Some(cluster.set_version(v2, backend, &r.version, apply_v3))
        }
        request::Kind::MemberAttrSet(r) if !skip_v2_of_dual => {
            let Stores {
                v2,
                backend,
                cluster,
                ..
            } = stores;
            Some(cluster.update_attributes(
                v2,
                backend,
                r.member_id,
                &r.name,
                &r.client_urls,
                apply_v3,
            ))
        }
        request::Kind::DowngradeInfoSet(r) if !skip_v2_of_dual => {
            let Stores {
                v2,
                backend,
                cluster,
                ..
            } = stores;
            Some(cluster.set_downgrade(v2, backend, &DowngradeInfo::from(r), apply_v3))
        }
        request::Kind::ClusterVersionSet(_)
        | request::Kind::MemberAttrSet(_)
        | request::Kind::DowngradeInfoSet(_) => None,
    };
    if let Some(result) = membership {
        if let Err(e) = fatal_or_rejected(result, index)? {
            response.error = e.to_string();
        }
        ctx.hook.at(CrashPoint::ApplyBetweenV2AndV3)?;
    }
    response.revision = stores.mvcc.current_revision();
    response.v2_index = stores.v2.index();
    Ok(response)
}
