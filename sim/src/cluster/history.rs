//! What the clients did and what took effect: the workload that generates
//! their requests, the writes the cluster acknowledged, and the deletes the
//! apply stream shows were applied (for the durability check).

use crate::checker::{AckedPut, AppliedDelete};
use crate::linearize::{Call, Instant, Recorded};
use crate::mix::{Next, Phases};
use crate::workload::{READ_ID_BASE, ReadMix, ReadOp, Workload};
use replica::proto::{DeleteRangeRequest, Request, RequestOp, Response, request, request_op};
use std::collections::{BTreeMap, BTreeSet};

/// The client side of a run.
#[derive(Debug)]
pub struct ClientHistory {
    workload: Workload,
    /// The highest revision any acknowledgement carried (compactions aim
    /// below it).
    last_revision: i64,
    acked: Vec<AckedPut>,
    /// The requests issued that may delete (delete ranges and txns), by
    /// id: an applied entry carries only its response, and what it deleted
    /// is read from the request.
    deleting: BTreeMap<u64, Request>,
    /// The index of every entry recorded from the apply stream (each
    /// entry once: the first member to apply it).
    applied: BTreeSet<u64>,
    /// Each application of a request id, from the apply stream (a client
    /// retry after a timeout may propose a request twice, and both may
    /// commit); without the keys read.
    applications: BTreeMap<u64, Vec<Response>>,
    deletes: Vec<AppliedDelete>,
    reads: ReadMix,
    /// Stretches of a single kind, if the mix has them.
    phases: Phases,
    next_read_id: u64,
    /// Every client operation, in invoke order.
    ops: Vec<Recorded>,
    /// Restores so far: (the history's sequence number then, the restored
    /// revision).
    restores: Vec<(u64, i64)>,
    /// Request ids whose apply was interrupted by a crash: they may have
    /// taken effect once more than the apply stream shows (a crash after
    /// the entry's backend commit; its boot then skips it in replay).
    interrupted: BTreeSet<u64>,
    /// Orders every invoke and return.
    seq: u64,
    /// The random sessions stop at their next request.
    stopped: bool,
}

impl ClientHistory {
    pub fn new(workload: Workload, reads: ReadMix, phases: Phases) -> ClientHistory {
        ClientHistory {
            reads,
            phases,
            next_read_id: READ_ID_BASE,
            ops: Vec::new(),
            restores: Vec::new(),
            interrupted: BTreeSet::new(),
            seq: 0,
            workload,
            last_revision: 1,
            acked: Vec::new(),
            deleting: BTreeMap::new(),
            applied: BTreeSet::new(),
            applications: BTreeMap::new(),
            deletes: Vec::new(),
            stopped: false,
        }
    }

    /// The next random request.
    pub fn next_request(&mut self) -> Request {
        let req = self.workload.next_request(self.last_revision);
        self.issued(&req);
        req
    }

    /// The next random operation: a read or the next request, as the
    /// current stretch says or else as the read share's own draw decides.
    /// `recent`: the key the session last wrote.
    pub fn next_call(&mut self, recent: Option<&[u8]>) -> Call {
        let read = match self.phases.next_op() {
            Next::Mixed => self.reads.next_is_read(),
            Next::Read => true,
            Next::Write(kind) => {
                let req = self.workload.request_of(kind, self.last_revision);
                self.issued(&req);
                return Call::Write(req);
            }
        };
        if read {
            let ReadOp {
                id,
                range,
                serializable,
            } = self
                .reads
                .next_read(self.next_read_id, self.last_revision, recent);
            self.next_read_id += 1;
            Call::Read {
                id,
                range,
                serializable,
            }
        } else {
            Call::Write(self.next_request())
        }
    }

    /// The member (of `nodes`) the next random read goes to first.
    pub fn read_member(&mut self, nodes: u64) -> u64 {
        self.reads.member(nodes)
    }

    /// A fresh id for a scripted read.
    pub fn read_id(&mut self) -> u64 {
        self.next_read_id += 1;
        self.next_read_id - 1
    }

    fn instant(&mut self, us: u64) -> Instant {
        self.seq += 1;
        Instant { seq: self.seq, us }
    }

    /// Session `client` invokes `call` now; returns the operation's number
    /// for [`ClientHistory::returned`].
    pub fn invoked(&mut self, client: u32, call: Call, now_us: u64) -> usize {
        let invoke = self.instant(now_us);
        self.ops.push(Recorded {
            client,
            call,
            invoke,
            returned: None,
            response: None,
            served_by: None,
        });
        self.ops.len() - 1
    }

    /// Operation `op` got `answer` from member `served_by` (`None`: the
    /// session gave up; the operation stays indeterminate).
    pub fn returned(&mut self, op: usize, answer: Option<(Response, Option<u64>)>, now_us: u64) {
        let Some((resp, served_by)) = answer else {
            return;
        };
        self.last_revision = self.last_revision.max(resp.revision);
        let at = self.instant(now_us);
        if let Some(rec) = self.ops.get_mut(op) {
            rec.returned = Some(at);
            rec.response = Some(resp);
            rec.served_by = served_by;
        }
    }

    /// Every client operation so far, as the checker must see them: an
    /// operation invoked before a restore and answered at a revision past
    /// the restored one (by the old cluster, whose later state the restore
    /// gave up) becomes indeterminate: it may or may not have taken effect,
    /// and in the restored cluster it did not. So does a serializable read
    /// invoked before a restore (see below).
    pub fn ops(&self) -> Vec<Recorded> {
        self.ops
            .iter()
            .map(|op| {
                let before_restore = |past: &dyn Fn(i64) -> bool| {
                    self.restores
                        .iter()
                        .any(|&(seq, revision)| op.invoke.seq <= seq && past(revision))
                };
                let serializable = matches!(
                    op.call,
                    Call::Read {
                        serializable: true,
                        ..
                    }
                );
                // A serializable read before a restore is not compared with
                // those after it either: the restored members are new
                // incarnations, which may start behind what it saw.
                let given_up = op.response.as_ref().is_some_and(|r| {
                    before_restore(&|revision| r.revision > revision || serializable)
                });
                if given_up {
                    Recorded {
                        returned: None,
                        response: None,
                        ..op.clone()
                    }
                } else {
                    op.clone()
                }
            })
            .collect()
    }

    /// Each application of each request id the apply stream showed.
    pub fn applications(&self) -> &BTreeMap<u64, Vec<Response>> {
        &self.applications
    }

    /// Keeps `req` if it may delete, so that its application can be read.
    pub fn issued(&mut self, req: &Request) {
        if matches!(
            req.kind,
            Some(request::Kind::DeleteRange(_) | request::Kind::Txn(_))
        ) {
            self.deleting.insert(req.id, req.clone());
        }
    }

    /// Records an acknowledged response to `req`: a successful put, or the
    /// puts of the txn branch that ran.
    pub fn ack(&mut self, req: &Request, resp: &Response) {
        self.last_revision = self.last_revision.max(resp.revision);
        if !resp.error.is_empty() {
            return;
        }
        let puts: Vec<&replica::proto::PutRequest> = match &req.kind {
            Some(request::Kind::Put(p)) => vec![p],
            Some(request::Kind::Txn(t)) => branch(t, resp.succeeded)
                .iter()
                .filter_map(|op| match &op.op {
                    Some(request_op::Op::Put(p)) => Some(p),
                    _ => None,
                })
                .collect(),
            _ => Vec::new(),
        };
        for p in puts {
            self.acked.push(AckedPut {
                key: String::from_utf8_lossy(&p.key).into_owned(),
                value: String::from_utf8_lossy(&p.value).into_owned(),
                revision: resp.revision,
            });
        }
    }

    /// Whether some member applied the entry at `index` already.
    pub fn has_applied(&self, index: u64) -> bool {
        self.applied.contains(&index)
    }

    /// A member applied entry `index` (its v3 half ran) with `resp`.
    /// Every member applies the same entries, so only the first report of
    /// an index is recorded. Returns whether the entry is a second (or
    /// later) application of its request.
    pub fn applied(&mut self, index: u64, resp: &Response) -> bool {
        if !self.applied.insert(index) {
            return false;
        }
        let times = self.applications.entry(resp.id).or_default();
        // The same application reported again (a restored cluster replays
        // its new log, whose entries up to the restore were seen already):
        // one effect, one instance.
        if times
            .iter()
            .any(|r| r.revision == resp.revision && r.succeeded == resp.succeeded)
        {
            return false;
        }
        times.push(resp.clone());
        let again = times.len() > 1;
        // A delete that found nothing made no revision and removed nothing;
        // only a request that deleted something is a delete that took effect.
        if !resp.error.is_empty() || resp.deleted == 0 {
            return again;
        }
        let ranges: Vec<&DeleteRangeRequest> = match self.deleting.get(&resp.id).map(|r| &r.kind) {
            Some(Some(request::Kind::DeleteRange(d))) => vec![d],
            Some(Some(request::Kind::Txn(t))) => branch(t, resp.succeeded)
                .iter()
                .filter_map(|op| match &op.op {
                    Some(request_op::Op::DeleteRange(d)) => Some(d),
                    _ => None,
                })
                .collect(),
            _ => Vec::new(),
        };
        for d in ranges {
            self.deletes.push(AppliedDelete {
                key: d.key.clone(),
                range_end: d.range_end.clone(),
                revision: resp.revision,
            });
        }
        again
    }

    /// The cluster was restored to a state at `revision` under a new log:
    /// what took effect after it is gone by design (acknowledged writes and
    /// applied deletes of later revisions), and the new log's indexes name
    /// new entries.
    ///
    /// For the client history the same holds: an operation invoked before
    /// the restore and answered at a later revision (a write, or a read
    /// that saw such writes) becomes indeterminate, and every application at
    /// a later revision is dropped; the state the history then implies at
    /// the restore is the restored one. Operations stay in place (their
    /// numbers are how sessions report answers): [`ClientHistory::ops`]
    /// applies the restores when the checker asks.
    pub fn restored(&mut self, revision: i64) {
        self.acked.retain(|p| p.revision <= revision);
        self.deletes.retain(|d| d.revision <= revision);
        self.restores.push((self.seq, revision));
        for responses in self.applications.values_mut() {
            responses.retain(|r| r.revision <= revision);
        }
        self.applications
            .retain(|_, responses| !responses.is_empty());
        self.applied.clear();
        self.last_revision = revision;
    }

    /// A member crashed while applying `entry`: if it is a client request,
    /// it may have taken effect unseen.
    pub fn interrupted(&mut self, entry: &replica::proto::Entry) {
        use prost::Message;
        if entry.entry_type != replica::proto::EntryType::Normal as i32 || entry.data.is_empty() {
            return;
        }
        if let Ok(req) = Request::decode(entry.data.as_slice()) {
            self.interrupted.insert(req.id);
        }
    }

    /// Request ids that may have taken effect once more than reported.
    pub fn interrupted_ids(&self) -> &BTreeSet<u64> {
        &self.interrupted
    }

    /// Starts from another run's acknowledged writes and applied deletes
    /// (`sim explore --cluster`: a cluster booted from that run's disks
    /// must keep them).
    pub fn seed_outcomes(&mut self, acked: Vec<AckedPut>, deletes: Vec<AppliedDelete>) {
        self.acked = acked;
        self.deletes = deletes;
    }

    pub fn acked_puts(&self) -> &[AckedPut] {
        &self.acked
    }

    pub fn applied_deletes(&self) -> &[AppliedDelete] {
        &self.deletes
    }

    /// The workload draws from `rng` from now on (a fork of the run).
    pub fn reseed_workload(&mut self, rng: rand_chacha::ChaCha8Rng) {
        self.workload.reseed(rng);
    }

    /// The read mix draws from `rng` from now on (a fork of the run).
    pub fn reseed_reads(&mut self, rng: rand_chacha::ChaCha8Rng) {
        self.reads.reseed(rng);
    }

    /// The stretches draw from `rng` from now on (a fork).
    pub fn reseed_stretches(&mut self, rng: rand_chacha::ChaCha8Rng) {
        self.phases.reseed(rng);
    }

    pub fn stop(&mut self) {
        self.stopped = true;
    }

    pub fn is_stopped(&self) -> bool {
        self.stopped
    }
}

/// The ops of the txn branch that ran.
fn branch(txn: &replica::proto::TxnRequest, succeeded: bool) -> &[RequestOp] {
    if succeeded {
        &txn.success
    } else {
        &txn.failure
    }
}

#[cfg(test)]
mod tests {
    //! What took effect is read from the apply stream: a delete counts once
    //! it was applied and removed something, never because it was issued.

    use super::*;
    use crate::checker::{Invariant, check_durability};
    use crate::rng::{STREAM_WORKLOAD, stream};
    use replica::member::StateDump;
    use replica::proto::{PutRequest, TxnRequest};

    fn history() -> ClientHistory {
        ClientHistory::new(
            Workload::new(stream(1, STREAM_WORKLOAD), 24, vec![1]),
            ReadMix::new(stream(1, crate::rng::STREAM_READS), 24, 30),
            Phases::new(
                stream(1, crate::rng::STREAM_MIX_STRETCHES),
                &crate::mix::Mix::FIXED,
            ),
        )
    }

    fn put(id: u64, key: &str, value: &str) -> Request {
        Request {
            id,
            kind: Some(request::Kind::Put(PutRequest {
                key: key.into(),
                value: value.into(),
            })),
        }
    }

    fn delete(id: u64, key: &str) -> Request {
        Request {
            id,
            kind: Some(request::Kind::DeleteRange(DeleteRangeRequest {
                key: key.into(),
                range_end: Vec::new(),
            })),
        }
    }

    fn answer(id: u64, revision: i64, deleted: i64, succeeded: bool) -> Response {
        Response {
            id,
            revision,
            deleted,
            succeeded,
            ..Response::default()
        }
    }

    /// A final state in which no key is left.
    fn empty_state() -> StateDump {
        StateDump {
            applied_index: 0,
            consistent_index: 0,
            consistent_term: 0,
            conf_state: None,
            v2: replica::v2store::V2Store::new().dump(),
            v3: replica::member::V3Dump {
                revision: 0,
                compact_revision: 0,
                keys: Vec::new(),
            },
            cluster: replica::membership::Cluster::default(),
            backend_membership: replica::membership::BackendMembership::default(),
        }
    }

    fn durable(h: &ClientHistory) -> Result<(), crate::checker::Violation> {
        check_durability(h.acked_puts(), h.applied_deletes(), 1, &empty_state(), 0)
    }

    #[test]
    fn a_delete_issued_but_never_applied_excuses_nothing() {
        let mut h = history();
        h.ack(&put(1, "a", "1"), &answer(1, 2, 0, false));
        h.issued(&delete(2, "a"));
        let v = durable(&h).unwrap_err();
        assert_eq!(v.invariant, Invariant::Durability);
    }

    #[test]
    fn an_applied_delete_that_removed_something_excuses_the_older_put() {
        let mut h = history();
        h.ack(&put(1, "a", "1"), &answer(1, 2, 0, false));
        h.issued(&delete(2, "a"));
        assert!(!h.applied(7, &answer(2, 3, 1, false)));
        assert!(durable(&h).is_ok());
    }

    #[test]
    fn a_delete_that_found_nothing_is_no_delete() {
        let mut h = history();
        h.ack(&put(1, "a", "1"), &answer(1, 2, 0, false));
        h.issued(&delete(2, "a"));
        h.applied(7, &answer(2, 3, 0, false));
        assert!(durable(&h).is_err());
    }

    #[test]
    fn each_entry_is_recorded_once_and_a_second_application_is_counted() {
        let mut h = history();
        h.issued(&delete(2, "a"));
        assert!(!h.applied(7, &answer(2, 3, 1, false)));
        assert!(!h.applied(7, &answer(2, 3, 1, false)), "another member");
        assert_eq!(h.applied_deletes().len(), 1);
        assert!(h.applied(9, &answer(2, 4, 1, false)), "a retried request");
        assert_eq!(h.applied_deletes().len(), 2);
    }

    #[test]
    fn a_txn_acknowledges_and_deletes_only_in_the_branch_that_ran() {
        let op = |r: Request| RequestOp {
            op: Some(match r.kind {
                Some(request::Kind::Put(p)) => request_op::Op::Put(p),
                Some(request::Kind::DeleteRange(d)) => request_op::Op::DeleteRange(d),
                _ => unreachable!(),
            }),
        };
        let txn = Request {
            id: 3,
            kind: Some(request::Kind::Txn(TxnRequest {
                compare: Vec::new(),
                success: vec![op(put(0, "b", "2"))],
                failure: vec![op(delete(0, "a"))],
            })),
        };
        let mut h = history();
        h.ack(&put(1, "a", "1"), &answer(1, 2, 0, false));
        h.issued(&txn);
        // The success branch ran: its put is acknowledged, the failure
        // branch's delete never happened.
        h.applied(5, &answer(3, 3, 0, true));
        h.ack(&txn, &answer(3, 3, 0, true));
        assert_eq!(h.acked_puts().len(), 2);
        assert!(h.applied_deletes().is_empty());
        // The failure branch ran (a retry): its delete took effect.
        h.applied(6, &answer(3, 4, 1, false));
        assert_eq!(h.applied_deletes().len(), 1);
        assert_eq!(h.applied_deletes()[0].revision, 4);
    }
}
