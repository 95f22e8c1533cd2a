//! From the recorded history to what the checkers search: the key and value
//! universes (interned, in byte order), each operation's instances (an
//! acknowledged one, and every further application of a retried request
//! the apply stream showed; an indeterminate request is each of its
//! applications, or, if none was seen, one instance with an unknown
//! outcome), and each instance projected onto the keys it touches.

use super::history::{Call, Recorded};
use super::model::{Action, Found, Guard, Key, KeyOp, Kv, Target, Value};
use replica::proto::{
    Compare, CompareResult, CompareTarget, KeyValue, RangeRequest, Request, RequestOp, Response,
    TxnRequest, request, request_op,
};
use std::collections::BTreeMap;

/// The finite key and value universes of one history.
#[derive(Debug, Default)]
pub struct Universe {
    pub keys: Vec<Vec<u8>>,
    pub values: Vec<Vec<u8>>,
}

impl Universe {
    /// Every key and value any operation names or any response returned.
    pub fn of(ops: &[Recorded]) -> Universe {
        let mut keys = std::collections::BTreeSet::new();
        let mut values = std::collections::BTreeSet::new();
        for rec in ops {
            match &rec.call {
                Call::Write(req) => names_of_request(req, &mut keys, &mut values),
                Call::Read { range, .. } => {
                    keys.insert(range.key.clone());
                }
            }
            for kv in rec.response.iter().flat_map(|r| &r.kvs) {
                keys.insert(kv.key.clone());
                values.insert(kv.value.clone());
            }
        }
        Universe {
            keys: keys.into_iter().collect(),
            values: values.into_iter().collect(),
        }
    }

    pub fn key(&self, key: &[u8]) -> Option<Key> {
        self.keys
            .binary_search_by(|k| k.as_slice().cmp(key))
            .ok()
            .map(|i| i as Key)
    }

    pub fn value(&self, value: &[u8]) -> Option<Value> {
        self.values
            .binary_search_by(|v| v.as_slice().cmp(value))
            .ok()
            .map(|i| i as Value)
    }

    /// The universe's keys a range names (etcd's rules: an empty end is the
    /// key alone, `[0]` every key from it on, else `[key, end)`).
    pub fn keys_in(&self, start: &[u8], end: &[u8]) -> Vec<Key> {
        if end.is_empty() {
            return self.key(start).into_iter().collect();
        }
        let from = self.keys.partition_point(|k| k.as_slice() < start);
        let to = if end == [0] {
            self.keys.len()
        } else {
            self.keys.partition_point(|k| k.as_slice() < end)
        };
        (from..to.max(from)).map(|i| i as Key).collect()
    }

    /// A key-value pair as the model sees it.
    pub fn kv(&self, kv: &KeyValue) -> Option<(Key, Kv)> {
        Some((
            self.key(&kv.key)?,
            Kv {
                value: self.value(&kv.value)?,
                create: kv.create_revision,
                modified: kv.mod_revision,
                version: kv.version,
            },
        ))
    }
}

fn names_of_request(
    req: &Request,
    keys: &mut std::collections::BTreeSet<Vec<u8>>,
    values: &mut std::collections::BTreeSet<Vec<u8>>,
) {
    match &req.kind {
        Some(request::Kind::Put(p)) => {
            keys.insert(p.key.clone());
            values.insert(p.value.clone());
        }
        Some(request::Kind::DeleteRange(d)) => {
            keys.insert(d.key.clone());
        }
        Some(request::Kind::Txn(t)) => {
            for c in &t.compare {
                keys.insert(c.key.clone());
                values.insert(c.value.clone());
            }
            for op in t.success.iter().chain(&t.failure) {
                match &op.op {
                    Some(request_op::Op::Put(p)) => {
                        keys.insert(p.key.clone());
                        values.insert(p.value.clone());
                    }
                    Some(request_op::Op::DeleteRange(d)) => {
                        keys.insert(d.key.clone());
                    }
                    Some(request_op::Op::Range(r)) => {
                        keys.insert(r.key.clone());
                    }
                    None => {}
                }
            }
        }
        _ => {}
    }
}

/// One instance of an operation the checkers look at.
#[derive(Debug, Clone)]
pub struct Instance {
    /// The recorded operation.
    pub source: usize,
    pub invoke: u64,
    /// `None`: no return bound (indeterminate, or a further application).
    pub returned: Option<u64>,
    /// `None`: the outcome is unknown.
    pub output: Option<Response>,
    /// Whether `output` carries the keys read (the apply stream's do not).
    pub kvs_known: bool,
}

/// The instances of every recorded v3 write and every answered read.
pub fn instances(
    ops: &[Recorded],
    applications: &BTreeMap<u64, Vec<Response>>,
    interrupted: &std::collections::BTreeSet<u64>,
) -> Vec<Instance> {
    let mut out = Vec::new();
    for (source, rec) in ops.iter().enumerate() {
        let base = Instance {
            source,
            invoke: rec.invoke.seq,
            returned: rec.returned.map(|r| r.seq),
            output: rec.response.clone(),
            kvs_known: true,
        };
        let req = match &rec.call {
            Call::Read { .. } if rec.response.is_some() => {
                out.push(base);
                continue;
            }
            Call::Read { .. } => continue,
            Call::Write(req) if is_v3_write(req) => req,
            Call::Write(_) => continue,
        };
        let mut applied = applications.get(&req.id).cloned().unwrap_or_default();
        if let Some(resp) = &rec.response {
            if let Some(i) = applied.iter().position(|a| same_outcome(a, resp)) {
                applied.remove(i);
            }
            out.push(base.clone());
        } else if applied.is_empty() {
            out.push(base.clone());
        }
        for app in applied {
            out.push(Instance {
                returned: None,
                output: Some(app),
                kvs_known: false,
                ..base.clone()
            });
        }
        // An apply a crash interrupted after it landed: one more instance,
        // indeterminate (it may or may not have taken effect).
        if interrupted.contains(&req.id) {
            out.push(Instance {
                returned: None,
                output: None,
                ..base.clone()
            });
        }
    }
    out
}

fn is_v3_write(req: &Request) -> bool {
    matches!(
        req.kind,
        Some(request::Kind::Put(_) | request::Kind::DeleteRange(_) | request::Kind::Txn(_))
            | Some(request::Kind::Compact(_))
    )
}

fn same_outcome(a: &Response, b: &Response) -> bool {
    (a.revision, a.succeeded, a.deleted, &a.error) == (b.revision, b.succeeded, b.deleted, &b.error)
}

/// The per-key projection of one instance, or nothing if it has no effect
/// the per-key search can see (a failed request, a compaction, a read at a
/// past revision or a serializable read: those are checked against the
/// revision order instead).
pub fn project(u: &Universe, call: &Call, inst: &Instance) -> BTreeMap<Key, KeyOp> {
    let mut per_key: BTreeMap<Key, Vec<Vec<Action>>> = BTreeMap::new();
    let out = inst.output.as_ref();
    if out.is_some_and(|o| !o.error.is_empty()) {
        return BTreeMap::new();
    }
    match call {
        Call::Read {
            range,
            serializable: false,
            ..
        } if range.revision == 0 => {
            if let Some(o) = out {
                read_actions(u, range, Some(&o.kvs), &mut per_key, 0);
            }
        }
        Call::Read { .. } => {}
        Call::Write(req) => match &req.kind {
            Some(request::Kind::Put(p)) => {
                if let (Some(k), Some(v)) = (u.key(&p.key), u.value(&p.value)) {
                    per_key.insert(k, vec![vec![Action::Put(v)]]);
                }
            }
            Some(request::Kind::DeleteRange(d)) => {
                let keys = u.keys_in(&d.key, &d.range_end);
                let found = found(out, keys.len());
                for k in keys {
                    per_key.insert(k, vec![vec![Action::Delete(found)]]);
                }
            }
            Some(request::Kind::Txn(t)) => txn_actions(u, t, inst, &mut per_key),
            _ => {}
        },
    }
    per_key
        .into_iter()
        .map(|(k, branches)| {
            let op = KeyOp {
                op: inst.source,
                stamp: out.map(|o| o.revision),
                branches,
            };
            (k, op)
        })
        .collect()
}

/// What a delete covering `covered` keys must have found on each, given
/// how many it deleted.
fn found(out: Option<&Response>, covered: usize) -> Found {
    match out.map(|o| o.deleted) {
        Some(0) => Found::Absent,
        Some(1) if covered == 1 => Found::Present,
        _ => Found::Any,
    }
}

/// A read's action on each key in its range, appended to branch `b`.
fn read_actions(
    u: &Universe,
    range: &RangeRequest,
    kvs: Option<&Vec<KeyValue>>,
    per_key: &mut BTreeMap<Key, Vec<Vec<Action>>>,
    b: usize,
) {
    let seen: BTreeMap<Key, Kv> = kvs
        .into_iter()
        .flatten()
        .filter_map(|kv| u.kv(kv))
        .collect();
    for k in u.keys_in(&range.key, &range.range_end) {
        let action = Action::Read(kvs.map(|_| seen.get(&k).copied()));
        branch_of(per_key, k, b).push(action);
    }
}

fn branch_of(per_key: &mut BTreeMap<Key, Vec<Vec<Action>>>, k: Key, b: usize) -> &mut Vec<Action> {
    let branches = per_key.entry(k).or_default();
    while branches.len() <= b {
        branches.push(Vec::new());
    }
    &mut branches[b]
}

/// A txn's actions per key: its guards, then the ops of the branch that
/// ran (both branches, as alternatives, when the outcome is unknown).
fn txn_actions(
    u: &Universe,
    t: &TxnRequest,
    inst: &Instance,
    per_key: &mut BTreeMap<Key, Vec<Vec<Action>>>,
) {
    let out = inst.output.as_ref();
    let outcomes: Vec<bool> = match out {
        Some(o) => vec![o.succeeded],
        None => vec![true, false],
    };
    let guard_keys: Vec<Option<Key>> = t.compare.iter().map(|c| u.key(&c.key)).collect();
    let single_guard_key = match guard_keys.first() {
        Some(Some(k)) if guard_keys.iter().all(|g| *g == Some(*k)) => Some(*k),
        _ => None,
    };
    let touched = touched_keys(u, t, &outcomes);
    for (b, succeeded) in outcomes.iter().enumerate() {
        for k in &touched {
            branch_of(per_key, *k, b);
        }
        // Held: every guard held, on every key. Failed: at least one did
        // not, which pins a key only when all guards are on it.
        for (k, guards) in guards_by_key(u, &t.compare) {
            if *succeeded || single_guard_key == Some(k) {
                branch_of(per_key, k, b).push(Action::Guards {
                    guards,
                    all_hold: *succeeded,
                });
            }
        }
        let ops = if *succeeded { &t.success } else { &t.failure };
        let covered: usize = ops
            .iter()
            .map(|op| match &op.op {
                Some(request_op::Op::DeleteRange(d)) => u.keys_in(&d.key, &d.range_end).len(),
                _ => 0,
            })
            .sum();
        for op in ops {
            branch_op(u, op, out, inst.kvs_known, covered, per_key, b);
        }
    }
}

fn branch_op(
    u: &Universe,
    op: &RequestOp,
    out: Option<&Response>,
    kvs_known: bool,
    covered: usize,
    per_key: &mut BTreeMap<Key, Vec<Vec<Action>>>,
    b: usize,
) {
    match &op.op {
        Some(request_op::Op::Put(p)) => {
            if let (Some(k), Some(v)) = (u.key(&p.key), u.value(&p.value)) {
                branch_of(per_key, k, b).push(Action::Put(v));
            }
        }
        Some(request_op::Op::DeleteRange(d)) => {
            let found = found(out, covered);
            for k in u.keys_in(&d.key, &d.range_end) {
                branch_of(per_key, k, b).push(Action::Delete(found));
            }
        }
        Some(request_op::Op::Range(r)) => {
            let kvs = out.filter(|_| kvs_known && r.revision == 0).map(|o| &o.kvs);
            read_actions(u, r, kvs, per_key, b);
        }
        None => {}
    }
}

/// Every key a txn may touch in the outcomes considered.
fn touched_keys(u: &Universe, t: &TxnRequest, outcomes: &[bool]) -> Vec<Key> {
    let mut keys: Vec<Key> = t.compare.iter().filter_map(|c| u.key(&c.key)).collect();
    for succeeded in outcomes {
        let ops = if *succeeded { &t.success } else { &t.failure };
        for op in ops {
            match &op.op {
                Some(request_op::Op::Put(p)) => keys.extend(u.key(&p.key)),
                Some(request_op::Op::DeleteRange(d)) => {
                    keys.extend(u.keys_in(&d.key, &d.range_end))
                }
                Some(request_op::Op::Range(r)) => keys.extend(u.keys_in(&r.key, &r.range_end)),
                None => {}
            }
        }
    }
    keys.sort_unstable();
    keys.dedup();
    keys
}

fn guards_by_key(u: &Universe, compares: &[Compare]) -> BTreeMap<Key, Vec<Guard>> {
    let mut by_key: BTreeMap<Key, Vec<Guard>> = BTreeMap::new();
    for c in compares {
        if let (Some(k), Some(g)) = (u.key(&c.key), guard(u, c)) {
            by_key.entry(k).or_default().push(g);
        }
    }
    by_key
}

fn guard(u: &Universe, c: &Compare) -> Option<Guard> {
    use std::cmp::Ordering;
    let target = match CompareTarget::try_from(c.target).ok()? {
        CompareTarget::Version => Target::Version,
        CompareTarget::Create => Target::Create,
        CompareTarget::Mod => Target::Mod,
        CompareTarget::Value => Target::Value,
    };
    let (ordering, negate) = match CompareResult::try_from(c.result).ok()? {
        CompareResult::Equal => (Ordering::Equal, false),
        CompareResult::Greater => (Ordering::Greater, false),
        CompareResult::Less => (Ordering::Less, false),
        CompareResult::NotEqual => (Ordering::Equal, true),
    };
    let operand = match target {
        Target::Value => i64::from(u.value(&c.value)?),
        _ => c.number,
    };
    Some(Guard {
        target,
        ordering,
        negate,
        operand,
    })
}
