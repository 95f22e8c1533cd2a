//! The checker on small hand-made histories: each check passes a correct
//! history and fails the bug it is there for.

use super::*;
use replica::proto::{KeyValue, PutRequest, RangeRequest, Request, request};

struct Builder {
    ops: Vec<Recorded>,
    seq: u64,
}

impl Builder {
    fn new() -> Builder {
        Builder {
            ops: Vec::new(),
            seq: 0,
        }
    }

    fn at(&mut self) -> Instant {
        self.seq += 1;
        Instant {
            seq: self.seq,
            us: self.seq * 1000,
        }
    }

    /// A put acknowledged at `revision` (`None`: indeterminate).
    fn put(&mut self, client: u32, key: &str, value: &str, revision: Option<i64>) {
        let invoke = self.at();
        let returned = revision.map(|_| self.at());
        self.ops.push(Recorded {
            client,
            call: Call::Write(Request {
                id: self.ops.len() as u64 + 1,
                kind: Some(request::Kind::Put(PutRequest {
                    key: key.into(),
                    value: value.into(),
                })),
            }),
            invoke,
            returned,
            response: revision.map(|revision| Response {
                revision,
                ..Response::default()
            }),
            served_by: Some(1),
        });
    }

    /// A read of `key` at `at` (0: current) answered at header `revision`
    /// with `kv` (value, mod revision, version) or `error`.
    #[allow(clippy::too_many_arguments)]
    fn read(
        &mut self,
        client: u32,
        key: &str,
        at: i64,
        serializable: bool,
        member: u64,
        revision: i64,
        kv: Option<(&str, i64, i64)>,
        error: &str,
    ) {
        let invoke = self.at();
        let returned = Some(self.at());
        let kvs = kv
            .map(|(value, m, version)| KeyValue {
                key: key.into(),
                create_revision: m - version + 1,
                mod_revision: m,
                version,
                value: value.into(),
            })
            .into_iter()
            .collect();
        self.ops.push(Recorded {
            client,
            call: Call::Read {
                id: 1000 + self.ops.len() as u64,
                range: RangeRequest {
                    key: key.into(),
                    revision: at,
                    ..RangeRequest::default()
                },
                serializable,
            },
            invoke,
            returned,
            response: Some(Response {
                revision,
                kvs,
                error: error.into(),
                ..Response::default()
            }),
            served_by: Some(member),
        });
    }

    fn check(&self) -> Report {
        check(&self.ops, &BTreeMap::new(), RUN_BUDGET)
    }
}

fn kinds(r: &Report) -> Vec<Kind> {
    r.failures.iter().map(|f| f.kind).collect()
}

#[test]
fn a_sequential_history_passes_and_a_stale_read_fails() {
    let mut h = Builder::new();
    h.put(1, "a", "1", Some(2));
    h.read(2, "a", 0, false, 2, 2, Some(("1", 2, 1)), "");
    assert!(h.check().failures.is_empty(), "{:?}", h.check());
    h.put(1, "a", "2", Some(3));
    h.read(2, "a", 0, false, 2, 2, Some(("1", 2, 1)), "");
    let report = h.check();
    assert_eq!(kinds(&report), vec![Kind::Linearizability]);
    assert_eq!(report.failures[0].ops, vec![2, 3], "the minimal pair");
    assert_eq!(report.failures[0].key.as_deref(), Some("a"));
}

#[test]
fn an_indeterminate_put_may_or_may_not_be_seen() {
    let mut h = Builder::new();
    h.put(1, "a", "1", None);
    h.read(2, "a", 0, false, 1, 1, None, "");
    h.read(2, "a", 0, false, 1, 2, Some(("1", 2, 1)), "");
    assert!(h.check().failures.is_empty(), "{:?}", h.check());
    // Seen, then not seen again: no single point explains both.
    h.read(2, "a", 0, false, 1, 2, None, "");
    assert_eq!(kinds(&h.check()), vec![Kind::Linearizability]);
}

#[test]
fn two_writes_may_not_claim_one_revision() {
    let mut h = Builder::new();
    h.put(1, "a", "1", Some(2));
    h.put(2, "b", "1", Some(2));
    assert_eq!(kinds(&h.check()), vec![Kind::RevisionOrder]);
}

#[test]
fn past_revision_reads_follow_the_revision_order_and_compaction() {
    let mut h = Builder::new();
    h.put(1, "a", "1", Some(2));
    h.put(1, "a", "2", Some(3));
    h.read(2, "a", 2, false, 1, 3, Some(("1", 2, 1)), "");
    h.read(
        2,
        "a",
        9,
        false,
        1,
        3,
        None,
        "mvcc: required revision 9 is a future revision",
    );
    assert!(h.check().failures.is_empty(), "{:?}", h.check());
    // Refused as compacted though nothing was compacted.
    h.read(
        2,
        "a",
        2,
        false,
        1,
        3,
        None,
        "mvcc: required revision 2 has been compacted",
    );
    assert_eq!(kinds(&h.check()), vec![Kind::RevisionOrder]);
    // And a past read that returns another version.
    let mut h2 = Builder::new();
    h2.put(1, "a", "1", Some(2));
    h2.put(1, "a", "2", Some(3));
    h2.read(2, "a", 2, false, 1, 3, Some(("2", 3, 2)), "");
    assert_eq!(kinds(&h2.check()), vec![Kind::RevisionOrder]);
}

#[test]
fn serializable_reads_may_lag_but_not_go_back_on_one_member() {
    let mut h = Builder::new();
    h.put(1, "a", "1", Some(2));
    h.put(1, "a", "2", Some(3));
    // Stale but consistent with its revision: fine.
    h.read(2, "a", 0, true, 3, 2, Some(("1", 2, 1)), "");
    h.read(2, "a", 0, true, 3, 3, Some(("2", 3, 2)), "");
    assert!(h.check().failures.is_empty(), "{:?}", h.check());
    h.read(2, "a", 0, true, 3, 2, Some(("1", 2, 1)), "");
    assert_eq!(kinds(&h.check()), vec![Kind::SerializableMonotonic]);
    // A value under a revision it does not belong to.
    let mut h2 = Builder::new();
    h2.put(1, "a", "1", Some(2));
    h2.put(1, "a", "2", Some(3));
    h2.read(2, "a", 0, true, 3, 3, Some(("1", 2, 1)), "");
    assert_eq!(kinds(&h2.check()), vec![Kind::RevisionOrder]);
}

#[test]
fn an_exhausted_budget_is_unknown_not_a_pass() {
    let mut h = Builder::new();
    for i in 0..14 {
        h.put(1 + i, "a", &format!("{i}"), None);
    }
    h.read(
        20,
        "a",
        0,
        false,
        1,
        5,
        Some(("nobody wrote this", 5, 1)),
        "",
    );
    let report = check(&h.ops, &BTreeMap::new(), 200);
    assert_eq!(report.unknown, 1);
    assert!(!kinds(&report).contains(&Kind::Linearizability));
}

/// A put whose first apply a crash interrupted after it landed (the boot
/// then skipped it in replay, so no member reported it) and whose retry
/// was acknowledged: the key was written twice by one request. Without
/// knowing the apply was interrupted, the read's version 2 has no writer;
/// with it, the interrupted apply is one more indeterminate instance.
#[test]
fn an_interrupted_apply_may_have_taken_effect_once_more() {
    let mut h = Builder::new();
    h.put(1, "a", "1", Some(3));
    h.read(2, "a", 0, false, 1, 3, Some(("1", 3, 2)), "");
    assert_eq!(kinds(&h.check()), [Kind::Linearizability]);
    let interrupted: BTreeSet<u64> = [1].into();
    let report = check_with(&h.ops, &BTreeMap::new(), &interrupted, RUN_BUDGET);
    assert!(report.failures.is_empty(), "{:?}", report.failures);
}
