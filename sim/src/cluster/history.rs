//! What the clients did: the workload that generates their requests, and
//! what the cluster acknowledged (for the durability check).

use crate::checker::AckedPut;
use crate::workload::Workload;
use replica::proto::{Request, Response, request};
use std::collections::BTreeSet;

/// The client side of a run.
#[derive(Debug)]
pub struct ClientHistory {
    workload: Workload,
    /// The highest revision any acknowledgement carried (compactions aim
    /// below it).
    last_revision: i64,
    acked: Vec<AckedPut>,
    /// Keys some generated request may have deleted.
    maybe_deleted: BTreeSet<String>,
    /// The random sessions stop at their next request.
    stopped: bool,
}

impl ClientHistory {
    pub fn new(workload: Workload) -> ClientHistory {
        ClientHistory {
            workload,
            last_revision: 1,
            acked: Vec::new(),
            maybe_deleted: BTreeSet::new(),
            stopped: false,
        }
    }

    /// The next random request (recording which keys it may delete).
    pub fn next_request(&mut self) -> Request {
        let req = self.workload.next_request(self.last_revision);
        for (key, end) in deleted_ranges(&req) {
            for k in self.workload.key_names() {
                let kb = k.as_bytes();
                let hit = if end.is_empty() {
                    kb == key.as_slice()
                } else {
                    kb >= key.as_slice() && kb < end.as_slice()
                };
                if hit {
                    self.maybe_deleted.insert(k);
                }
            }
        }
        req
    }

    /// Records an acknowledged response to `req`.
    pub fn ack(&mut self, req: &Request, resp: &Response) {
        self.last_revision = self.last_revision.max(resp.revision);
        if let (Some(request::Kind::Put(p)), true) = (&req.kind, resp.error.is_empty()) {
            self.acked.push(AckedPut {
                key: String::from_utf8_lossy(&p.key).into_owned(),
                value: String::from_utf8_lossy(&p.value).into_owned(),
                revision: resp.revision,
            });
        }
    }

    pub fn acked_puts(&self) -> &[AckedPut] {
        &self.acked
    }

    pub fn maybe_deleted(&self) -> &BTreeSet<String> {
        &self.maybe_deleted
    }

    pub fn stop(&mut self) {
        self.stopped = true;
    }

    pub fn is_stopped(&self) -> bool {
        self.stopped
    }
}

/// The (key, range end) of every delete `req` may perform.
fn deleted_ranges(req: &Request) -> Vec<(Vec<u8>, Vec<u8>)> {
    match &req.kind {
        Some(request::Kind::DeleteRange(d)) => vec![(d.key.clone(), d.range_end.clone())],
        Some(request::Kind::Txn(t)) => t
            .success
            .iter()
            .chain(&t.failure)
            .filter_map(|op| match &op.op {
                Some(replica::proto::request_op::Op::DeleteRange(d)) => {
                    Some((d.key.clone(), d.range_end.clone()))
                }
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}
