//! What the revision order alone decides. Every write whose outcome is
//! known returned the revision it made, so replaying them in revision
//! order gives each key's version at every revision: a read at a past
//! revision, and any serializable read (a member's applied state at the
//! revision it reports), must return exactly that. Keys an operation of
//! unknown outcome may have written are not replayed; for them only the
//! value's provenance is checked (some operation wrote it). Two writes
//! that claim one revision, a session's serializable reads that go
//! backwards on one member, and wrong compacted / future-revision errors
//! are violations too.

use super::Kind;
use super::history::{Call, Recorded};
use super::model::{Key, Kv};
use super::project::{Instance, Universe};
use replica::proto::{RangeRequest, Response, request, request_op};
use std::collections::{BTreeMap, BTreeSet};

/// Each key's versions by the revision that made them (`None`: deleted).
#[derive(Debug, Default)]
pub struct Timeline {
    versions: BTreeMap<Key, Vec<(i64, Option<Kv>)>>,
    /// Keys an operation of unknown outcome may have written.
    uncertain: BTreeSet<Key>,
    /// Every (key, value) any operation may have written.
    written: BTreeSet<(Key, u32)>,
}

/// A finding: the recorded operations involved, the key, and what is wrong.
#[derive(Debug, Clone)]
pub struct Finding {
    pub kind: Kind,
    pub ops: Vec<usize>,
    pub key: Option<Key>,
    pub detail: String,
}

impl Timeline {
    /// Replays the writes of known outcome in revision order; two that
    /// both changed something at one revision are reported.
    pub fn replay(u: &Universe, ops: &[Recorded], insts: &[Instance]) -> (Timeline, Vec<Finding>) {
        let mut t = Timeline::default();
        let mut known: Vec<(i64, &Instance)> = Vec::new();
        for inst in insts {
            let Call::Write(req) = &ops[inst.source].call else {
                continue;
            };
            collect_written(u, req, &mut t.written);
            match &inst.output {
                Some(o) if o.error.is_empty() => known.push((o.revision, inst)),
                Some(_) => {}
                None => t.uncertain.extend(written_keys(u, req, None)),
            }
        }
        known.sort_by_key(|(rev, inst)| (*rev, inst.invoke));
        let mut state: BTreeMap<Key, Kv> = BTreeMap::new();
        let mut writer_of: BTreeMap<i64, usize> = BTreeMap::new();
        let mut findings = Vec::new();
        for (rev, inst) in known {
            let (Call::Write(req), Some(out)) = (&ops[inst.source].call, &inst.output) else {
                continue;
            };
            if !wrote(req, out) {
                continue;
            }
            if let Some(first) = writer_of.insert(rev, inst.source) {
                findings.push(Finding {
                    kind: Kind::RevisionOrder,
                    ops: vec![first, inst.source],
                    key: None,
                    detail: format!("two writes returned revision {rev}"),
                });
            }
            t.apply(u, req, out, rev, &mut state);
        }
        (t, findings)
    }

    fn apply(
        &mut self,
        u: &Universe,
        req: &replica::proto::Request,
        out: &Response,
        rev: i64,
        state: &mut BTreeMap<Key, Kv>,
    ) {
        let mut changed = BTreeSet::new();
        let put = |k: Key, v: u32, state: &mut BTreeMap<Key, Kv>, changed: &mut BTreeSet<Key>| {
            let kv = match state.get(&k) {
                Some(old) => Kv {
                    value: v,
                    modified: rev,
                    version: old.version + 1,
                    create: old.create,
                },
                None => Kv {
                    value: v,
                    create: rev,
                    modified: rev,
                    version: 1,
                },
            };
            state.insert(k, kv);
            changed.insert(k);
        };
        let ops: Vec<request_op::Op> = match &req.kind {
            Some(request::Kind::Put(p)) => vec![request_op::Op::Put(p.clone())],
            Some(request::Kind::DeleteRange(d)) => vec![request_op::Op::DeleteRange(d.clone())],
            Some(request::Kind::Txn(t)) => {
                let branch = if out.succeeded {
                    &t.success
                } else {
                    &t.failure
                };
                branch.iter().filter_map(|o| o.op.clone()).collect()
            }
            _ => Vec::new(),
        };
        for op in ops {
            match op {
                request_op::Op::Put(p) => {
                    if let (Some(k), Some(v)) = (u.key(&p.key), u.value(&p.value)) {
                        put(k, v, state, &mut changed);
                    }
                }
                request_op::Op::DeleteRange(d) => {
                    for k in u.keys_in(&d.key, &d.range_end) {
                        if state.remove(&k).is_some() {
                            changed.insert(k);
                        }
                    }
                }
                request_op::Op::Range(_) => {}
            }
        }
        for k in changed {
            let kv = state.get(&k).copied();
            self.versions.entry(k).or_default().push((rev, kv));
        }
    }

    /// Key `k` at revision `rev`; `None` if it is uncertain.
    pub fn at(&self, k: Key, rev: i64) -> Option<Option<Kv>> {
        if self.uncertain.contains(&k) {
            return None;
        }
        let versions = self.versions.get(&k).map_or(&[][..], Vec::as_slice);
        let i = versions.partition_point(|(r, _)| *r <= rev);
        Some(i.checked_sub(1).and_then(|i| versions[i].1))
    }

    /// Whether some operation may have written `value` to `k`.
    pub fn was_written(&self, k: Key, value: u32) -> bool {
        self.written.contains(&(k, value))
    }
}

/// Whether a write with this outcome made a revision.
fn wrote(req: &replica::proto::Request, out: &Response) -> bool {
    match &req.kind {
        Some(request::Kind::Put(_)) => true,
        Some(request::Kind::DeleteRange(_)) => out.deleted > 0,
        Some(request::Kind::Txn(t)) => {
            let branch = if out.succeeded {
                &t.success
            } else {
                &t.failure
            };
            out.deleted > 0
                || branch
                    .iter()
                    .any(|o| matches!(o.op, Some(request_op::Op::Put(_))))
        }
        _ => false,
    }
}

/// The keys a write may change (`outcome`: the txn branch, or both).
fn written_keys(u: &Universe, req: &replica::proto::Request, outcome: Option<bool>) -> Vec<Key> {
    let mut keys = Vec::new();
    let mut of_op = |op: &request_op::Op| match op {
        request_op::Op::Put(p) => keys.extend(u.key(&p.key)),
        request_op::Op::DeleteRange(d) => keys.extend(u.keys_in(&d.key, &d.range_end)),
        request_op::Op::Range(_) => {}
    };
    match &req.kind {
        Some(request::Kind::Put(p)) => of_op(&request_op::Op::Put(p.clone())),
        Some(request::Kind::DeleteRange(d)) => of_op(&request_op::Op::DeleteRange(d.clone())),
        Some(request::Kind::Txn(t)) => {
            let branches: Vec<&Vec<replica::proto::RequestOp>> = match outcome {
                Some(true) => vec![&t.success],
                Some(false) => vec![&t.failure],
                None => vec![&t.success, &t.failure],
            };
            for op in branches.into_iter().flatten().filter_map(|o| o.op.as_ref()) {
                of_op(op);
            }
        }
        _ => {}
    }
    keys
}

fn collect_written(u: &Universe, req: &replica::proto::Request, out: &mut BTreeSet<(Key, u32)>) {
    let puts: Vec<&replica::proto::PutRequest> = match &req.kind {
        Some(request::Kind::Put(p)) => vec![p],
        Some(request::Kind::Txn(t)) => t
            .success
            .iter()
            .chain(&t.failure)
            .filter_map(|o| match &o.op {
                Some(request_op::Op::Put(p)) => Some(p),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    };
    for p in puts {
        if let (Some(k), Some(v)) = (u.key(&p.key), u.value(&p.value)) {
            out.insert((k, v));
        }
    }
}

/// Checks every answered read that the per-key search does not: reads at a
/// past revision and serializable reads.
pub fn check_reads(
    u: &Universe,
    ops: &[Recorded],
    insts: &[Instance],
    timeline: &Timeline,
) -> Vec<Finding> {
    let mut findings = Vec::new();
    let compactions = compactions(ops, insts);
    // The last revision each session saw from each member (serializable).
    let mut last_seen: BTreeMap<(u32, Option<u64>), (i64, usize)> = BTreeMap::new();
    for (i, rec) in ops.iter().enumerate() {
        let (
            Call::Read {
                range,
                serializable,
                ..
            },
            Some(resp),
        ) = (&rec.call, &rec.response)
        else {
            continue;
        };
        if *serializable {
            let key = (rec.client, rec.served_by);
            if let Some((before, j)) = last_seen.get(&key).copied()
                && resp.revision < before
            {
                findings.push(Finding {
                    kind: Kind::SerializableMonotonic,
                    ops: vec![j, i],
                    key: None,
                    detail: format!(
                        "serializable reads of session {} from member {:?} went back from revision {before} to {}",
                        rec.client, rec.served_by, resp.revision
                    ),
                });
            }
            last_seen.insert(key, (resp.revision, i));
        } else if range.revision == 0 {
            continue;
        }
        if let Some(f) = check_errors(i, rec, range, resp, &compactions) {
            findings.push(f);
            continue;
        }
        if resp.error.is_empty() {
            let at = if range.revision > 0 {
                range.revision
            } else {
                resp.revision
            };
            findings.extend(check_result(u, i, range, resp, at, timeline));
        }
    }
    findings
}

/// Compactions: (revision, op, invoke, return if acknowledged and ok).
type Compaction = (i64, usize, u64, Option<u64>);

fn compactions(ops: &[Recorded], insts: &[Instance]) -> Vec<Compaction> {
    insts
        .iter()
        .filter_map(|inst| {
            let Call::Write(req) = &ops[inst.source].call else {
                return None;
            };
            let Some(request::Kind::Compact(c)) = &req.kind else {
                return None;
            };
            if inst.output.as_ref().is_some_and(|o| !o.error.is_empty()) {
                return None;
            }
            let done = inst.returned.filter(|_| inst.output.is_some());
            Some((c.revision, inst.source, inst.invoke, done))
        })
        .collect()
}

/// A compacted or future-revision answer (or a success where one of them
/// was due) that the history contradicts.
fn check_errors(
    i: usize,
    rec: &Recorded,
    range: &RangeRequest,
    resp: &Response,
    compactions: &[Compaction],
) -> Option<Finding> {
    let h = range.revision;
    let finding = |ops: Vec<usize>, detail: String| {
        Some(Finding {
            kind: Kind::RevisionOrder,
            ops,
            key: None,
            detail,
        })
    };
    let future = resp.error.contains("future revision");
    let compacted = resp.error.contains("compacted");
    if h > 0 && (h > resp.revision) != future && (future || resp.error.is_empty()) {
        return finding(
            vec![i],
            format!(
                "a read at revision {h} answered {:?} at revision {}",
                if future { "future revision" } else { "ok" },
                resp.revision
            ),
        );
    }
    let returned = rec.returned.map_or(u64::MAX, |r| r.seq);
    if compacted && !compactions.iter().any(|c| c.0 > h && c.2 < returned) {
        return finding(
            vec![i],
            format!(
                "a read at revision {h} was refused as compacted, but no compaction above {h} had been asked for"
            ),
        );
    }
    let linearizable = matches!(
        rec.call,
        Call::Read {
            serializable: false,
            ..
        }
    );
    if linearizable
        && resp.error.is_empty()
        && let Some(c) = compactions
            .iter()
            .find(|c| c.0 > h && c.3.is_some_and(|done| done < rec.invoke.seq))
    {
        return finding(
            vec![c.1, i],
            format!(
                "a linearizable read at revision {h} succeeded after a compaction to {} had been acknowledged",
                c.0
            ),
        );
    }
    None
}

/// The read's keys against the replayed versions at `at`.
fn check_result(
    u: &Universe,
    i: usize,
    range: &RangeRequest,
    resp: &Response,
    at: i64,
    timeline: &Timeline,
) -> Vec<Finding> {
    let seen: BTreeMap<Key, Kv> = resp.kvs.iter().filter_map(|kv| u.kv(kv)).collect();
    let mut findings = Vec::new();
    for k in u.keys_in(&range.key, &range.range_end) {
        let got = seen.get(&k).copied();
        if let Some(kv) = got
            && !timeline.was_written(k, kv.value)
        {
            findings.push(Finding {
                kind: Kind::RevisionOrder,
                ops: vec![i],
                key: Some(k),
                detail: "a read returned a value no operation wrote".into(),
            });
            continue;
        }
        match timeline.at(k, at) {
            Some(expected) if expected != got => findings.push(Finding {
                kind: Kind::RevisionOrder,
                ops: vec![i],
                key: Some(k),
                detail: format!(
                    "a read at revision {at} returned {} where the writes in revision order leave {}",
                    show(got),
                    show(expected)
                ),
            }),
            _ => {}
        }
    }
    findings
}

fn show(kv: Option<Kv>) -> String {
    match kv {
        Some(kv) => format!(
            "value #{} (mod {}, version {})",
            kv.value, kv.modified, kv.version
        ),
        None => "no key".into(),
    }
}
