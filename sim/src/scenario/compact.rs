//! A `compact` step relative to the current revision (`"current - N"`):
//! the script reads the revision the way a client would (a read-only txn's
//! header), then compacts N below it.

use super::requests::compact;
use super::script::Script;
use crate::scenario_file::Revision;
use replica::proto::{RangeRequest, RequestOp, TxnRequest, request, request_op};

impl Script<'_> {
    /// Compacts at `current - N` (an absolute revision is a plain request
    /// step, sent by `client_requests`).
    pub(super) async fn compact_relative(&mut self, revision: &Revision) -> Result<(), String> {
        let Some(below) = revision.below_current()? else {
            return Ok(());
        };
        let read = self
            .request(request::Kind::Txn(TxnRequest {
                compare: Vec::new(),
                success: vec![RequestOp {
                    op: Some(request_op::Op::Range(RangeRequest {
                        key: b"\0".to_vec(),
                        range_end: Vec::new(),
                        revision: 0,
                        limit: 1,
                    })),
                }],
                failure: Vec::new(),
            }))
            .await?;
        let at = read.revision - below;
        self.sup.event(
            None,
            format_args!("compact at current {} - {below} = {at}", read.revision),
        );
        let resp = self.request(compact(at)).await?;
        if !resp.error.is_empty() {
            return Err(format!("compaction at {at} was refused: {}", resp.error));
        }
        Ok(())
    }
}
