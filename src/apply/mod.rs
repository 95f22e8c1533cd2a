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
use crate::probe::Probe;
use crate::proto::{
    ConfChangeKind, ConfChangeRequest, Entry, EntryType, Request, Response, request,
};
use crate::v2store::{V2Error, V2Store};
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

/// The value size above which the `put-ack-before-v3-write` bug drops a
/// put.
const LARGE_PUT_BYTES: usize = 2048;

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
            if !apply_v3 {
                ctx.hook.probe(Probe::ReplayConfChangeOverBackend);
            }
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

/// Applies a normal entry's request by its kind: v3 only, v2 only, or dual
/// (a v2 half always, a v3 half only when `apply_v3`). The error is fatal;
/// a request that fails on its own terms is answered with `error` set.
fn apply_request(
    stores: &mut Stores,
    req: &Request,
    apply_v3: bool,
    index: u64,
    ctx: ApplyContext<'_>,
) -> Result<Response, ApplyError> {
    let kind = request_kind(req, index)?;
    let mut apply = RequestApply {
        stores,
        apply_v3,
        index,
        ctx,
        response: Response {
            id: req.id,
            ..Response::default()
        },
    };
    match kind {
        request::Kind::Put(r)
            if ctx.bugs.has(Bug::PutAckBeforeV3Write) && r.value.len() > LARGE_PUT_BYTES =>
        {
            // The bug: answered as a success at the current revision, and
            // the write is never made.
            apply.v3_only(|_, _| Ok(Response::default()))?;
        }
        request::Kind::Put(r) => apply.v3_only(|mvcc, be| mvcc.put(be, r))?,
        request::Kind::DeleteRange(r) => apply.v3_only(|mvcc, be| mvcc.delete_range(be, r))?,
        request::Kind::Txn(r) => apply.v3_only(|mvcc, be| mvcc.txn(be, r))?,
        request::Kind::Compact(r) => apply.v3_only(|mvcc, be| mvcc.compact(be, r.revision))?,
        request::Kind::Noop(_) => {}
        request::Kind::V2Set(r) => apply.v2_set(&r.path, &r.value)?,
        request::Kind::V2Delete(r) => apply.v2_only(|v2| v2.delete(&r.path, r.recursive)),
        request::Kind::V2CreateInOrder(r) => {
            apply.v2_only(|v2| v2.create_in_order(&r.dir, &r.value).map(|_| 0));
        }
        request::Kind::ClusterVersionSet(r) => {
            apply.dual(|cluster, v2, be, v3| cluster.set_version(v2, be, &r.version, v3))?;
        }
        request::Kind::MemberAttrSet(r) => apply.dual(|cluster, v2, be, v3| {
            cluster.update_attributes(v2, be, r.member_id, &r.name, &r.client_urls, v3)
        })?,
        request::Kind::DowngradeInfoSet(r) => apply.dual(|cluster, v2, be, v3| {
            cluster.set_downgrade(v2, be, &DowngradeInfo::from(r), v3)
        })?,
    }
    Ok(apply.finish())
}

/// What the request does; one without a kind cannot be applied at all.
fn request_kind(req: &Request, index: u64) -> Result<&request::Kind, ApplyError> {
    req.kind.as_ref().ok_or_else(|| ApplyError::Decode {
        index,
        reason: "request without a kind".into(),
    })
}

/// One request being applied: the stores it may touch, whether its entry's
/// v3 half runs, and the response it builds.
struct RequestApply<'s, 'c> {
    stores: &'s mut Stores,
    apply_v3: bool,
    index: u64,
    ctx: ApplyContext<'c>,
    response: Response,
}

impl RequestApply<'_, '_> {
    /// A v3-only request (put, delete range, txn, compact): the v2 store
    /// never sees it, so replaying an entry the backend holds does nothing.
    fn v3_only(
        &mut self,
        op: impl FnOnce(&mut Mvcc, &mut Backend) -> Result<Response, MvccError>,
    ) -> Result<(), ApplyError> {
        if !self.apply_v3 {
            return Ok(());
        }
        self.ctx.hook.at(CrashPoint::ApplyBetweenV2AndV3)?;
        match op(&mut self.stores.mvcc, &mut self.stores.backend) {
            Ok(r) => {
                self.response = Response {
                    id: self.response.id,
                    ..r
                };
                Ok(())
            }
            // An invalid request still consumes its entry: answered, not fatal.
            Err(e) if e.is_request_error() => {
                self.response.error = e.to_string();
                Ok(())
            }
            Err(source) => Err(ApplyError::Mvcc {
                index: self.index,
                source,
            }),
        }
    }

    /// A v2 write on an ordinary key: v2 only, applied on every replay.
    fn v2_only(&mut self, op: impl FnOnce(&mut V2Store) -> Result<u64, V2Error>) {
        v2route::result(op(&mut self.stores.v2), &mut self.response);
    }

    /// A v2 set, which on a membership key is a membership change with the
    /// same v2/v3 split as the dual requests (see `v2route`).
    fn v2_set(&mut self, path: &str, value: &str) -> Result<(), ApplyError> {
        let replay_v3 = self.apply_v3 || self.ctx.bugs.has(Bug::V2PutWritesV3OnReplay);
        match v2route::set(self.stores, path, value, replay_v3, &mut self.response) {
            Some(outcome) => self.record_membership(outcome),
            None => Ok(()),
        }
    }

    /// A dual request (cluster version, member attributes, downgrade info):
    /// its v2 half always runs, its backend half only when `apply_v3`.
    fn dual(
        &mut self,
        op: impl FnOnce(&mut Cluster, &mut V2Store, &mut Backend, bool) -> Result<(), MembershipError>,
    ) -> Result<(), ApplyError> {
        // Dual requests apply their v2 half unconditionally; with the
        // `v2-skipped-with-v3` bug, the whole request is skipped on replay.
        if !self.apply_v3 && self.ctx.bugs.has(Bug::V2SkippedWithV3) {
            return Ok(());
        }
        let Stores {
            v2,
            backend,
            cluster,
            ..
        } = &mut *self.stores;
        let outcome = op(cluster, v2, backend, self.apply_v3);
        self.record_membership(outcome)
    }

    /// A membership writer's outcome: store disagreement or I/O is fatal, a
    /// failed validation only answers the request; then the crash point.
    fn record_membership(
        &mut self,
        outcome: Result<(), MembershipError>,
    ) -> Result<(), ApplyError> {
        if let Err(e) = fatal_or_rejected(outcome, self.index)? {
            self.response.error = e.to_string();
        }
        self.ctx.hook.at(CrashPoint::ApplyBetweenV2AndV3)?;
        Ok(())
    }

    /// The response, stamped with where the stores stand after the request.
    fn finish(self) -> Response {
        Response {
            revision: self.stores.mvcc.current_revision(),
            v2_index: self.stores.v2.index(),
            ..self.response
        }
    }
}
