//! The read path: ranges served from the member's own MVCC state, without
//! the log. Whether a read is linearizable is the caller's business (the
//! node waits for raft's read index to be applied first); here a read is
//! just the member's state at a revision.

use super::{Member, StoreError};
use crate::bugs::Bug;
use crate::proto::{RangeRequest, Response};

impl Member {
    /// Reads `req` from the applied state. A request the MVCC refuses (a
    /// compacted or future revision, a malformed range) is answered with
    /// its error; only a store failure is an `Err`.
    pub fn range(&self, req: &RangeRequest) -> Result<Response, StoreError> {
        self.check_poisoned()?;
        let mvcc = &self.stores.mvcc;
        match mvcc.range(&self.stores.backend, req) {
            Ok(resp) => Ok(resp),
            Err(e) if e.is_request_error() => Ok(Response {
                revision: mvcc.current_revision(),
                error: e.to_string(),
                ..Response::default()
            }),
            Err(e) => Err(e.into()),
        }
    }

    /// A serializable read: the local applied state, which may lag the
    /// cluster's.
    pub fn serializable_range(&self, req: &RangeRequest) -> Result<Response, StoreError> {
        let stale_at = self.snapshot_revision;
        if self.config.bugs.has(Bug::SerializableReadFromStaleSnapshot)
            && req.revision == 0
            && stale_at > self.stores.mvcc.compact_revision()
        {
            // The bug: the snapshot's view, under the current revision.
            let old = RangeRequest {
                revision: stale_at,
                ..req.clone()
            };
            let mut resp = self.range(&old)?;
            resp.revision = self.stores.mvcc.current_revision();
            return Ok(resp);
        }
        if let Some(opened_at) = self.pre_replay_revision
            && self.config.bugs.has(Bug::SerializableReadBeforeReplay)
            && req.revision == 0
            && opened_at >= self.stores.mvcc.compact_revision()
        {
            // The bug: the read view the boot took before replaying the
            // WAL, answered honestly at its own (older) revision.
            let old = RangeRequest {
                revision: opened_at,
                ..req.clone()
            };
            let mut resp = self.range(&old)?;
            if resp.error.is_empty() {
                resp.revision = opened_at;
            }
            return Ok(resp);
        }
        self.range(req)
    }
}
