//! The client-side oracle: was what the clients saw linearizable?
//!
//! Pure: a recorded client history (and the apply stream's list of what
//! each request id did) in, a verdict out; no cluster, no clock.
//!
//! - **Per key** (`search.rs`): Wing & Gong / Lowe over the operations
//!   touching one key of the finite key universe, with the etcd model of
//!   `model.rs`; returned revisions make the split sound (see there).
//!   Indeterminate operations have no return bound, as in Porcupine. Each
//!   run has a step budget; a key whose search runs out of it is `unknown`
//!   (counted, never a pass).
//! - **By revision** (`revisions.rs`): reads at a past revision, serializable
//!   reads, compaction and future-revision errors, revisions claimed twice.
//! - **On failure** the key's operations are shrunk to a minimal
//!   non-linearizable subset (`minimal`), which `html.rs` draws.

mod history;
mod html;
mod model;
mod project;
mod revisions;
mod search;

pub use history::{Call, Instant, Recorded};
pub use html::{describe, render};

use project::{Universe, instances, project};
use replica::proto::Response;
use search::{Outcome, Timed, search};
use std::collections::{BTreeMap, BTreeSet};

/// Search steps one run may spend (all keys together).
pub const RUN_BUDGET: u64 = 20_000_000;
/// Search steps shrinking a failure may spend.
const SHRINK_BUDGET: u64 = 2_000_000;

/// A run's client history: every operation, and every outcome the apply
/// stream showed per request id.
#[derive(Debug, Clone, Default)]
pub struct History {
    pub ops: Vec<Recorded>,
    pub applications: BTreeMap<u64, Vec<Response>>,
    /// Request ids that may have taken effect once more than the apply
    /// stream shows (an apply a crash interrupted after it landed).
    pub interrupted: BTreeSet<u64>,
}

/// Which check a failure comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// No linearization of a key's operations exists.
    Linearizability,
    /// A read contradicts the writes in revision order (past-revision and
    /// serializable reads), or two writes claim one revision.
    RevisionOrder,
    /// A session's serializable reads from one member went backwards.
    SerializableMonotonic,
}

/// One failure: the operations that make it (for a key's search, a
/// minimal non-linearizable subset), the key, and what is wrong.
#[derive(Debug, Clone)]
pub struct Failure {
    pub kind: Kind,
    pub key: Option<String>,
    /// The recorded operations that make the failure.
    pub ops: Vec<usize>,
    /// Every recorded operation on the key (for the picture).
    pub context: Vec<usize>,
    pub detail: String,
}

/// The verdict on a history.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub failures: Vec<Failure>,
    /// Keys searched, and those whose search ran out of budget.
    pub keys: u64,
    pub unknown: u64,
    pub steps: u64,
}

/// Checks `ops` (every client operation of a run) against the etcd model;
/// `applications` lists, per request id, every outcome the apply stream
/// showed. `budget` bounds the per-key searches of the whole run.
pub fn check(ops: &[Recorded], applications: &BTreeMap<u64, Vec<Response>>, budget: u64) -> Report {
    check_with(ops, applications, &BTreeSet::new(), budget)
}

/// [`check`], where each request id in `interrupted` may also have taken
/// effect once more, at an unknown revision (an indeterminate instance).
pub fn check_with(
    ops: &[Recorded],
    applications: &BTreeMap<u64, Vec<Response>>,
    interrupted: &BTreeSet<u64>,
    budget: u64,
) -> Report {
    let u = Universe::of(ops);
    let insts = instances(ops, applications, interrupted);
    let mut parts: BTreeMap<model::Key, Vec<Timed>> = BTreeMap::new();
    for inst in &insts {
        for (k, op) in project(&u, &ops[inst.source].call, inst) {
            parts.entry(k).or_default().push(Timed {
                op,
                invoke: inst.invoke,
                returned: inst.returned,
            });
        }
    }
    let mut report = Report::default();
    let mut left = budget;
    for (k, part) in parts {
        report.keys += 1;
        let (outcome, steps) = search(&part, left);
        left = left.saturating_sub(steps);
        report.steps += steps;
        match outcome {
            Outcome::Linearizable => {}
            Outcome::Unknown => report.unknown += 1,
            Outcome::Violation => report.failures.push(Failure {
                kind: Kind::Linearizability,
                key: Some(key_name(&u, k)),
                context: part.iter().map(|t| t.op.op).collect(),
                ops: minimal(part).iter().map(|t| t.op.op).collect(),
                detail: "no order of these operations, each taking effect between its invoke and its return, explains what they returned".into(),
            }),
        }
    }
    let (timeline, claimed) = revisions::Timeline::replay(&u, ops, &insts);
    let found = claimed
        .into_iter()
        .chain(revisions::check_reads(&u, ops, &insts, &timeline));
    for f in found {
        report.failures.push(Failure {
            kind: f.kind,
            key: f.key.map(|k| key_name(&u, k)),
            context: f.ops.clone(),
            ops: f.ops,
            detail: f.detail,
        });
    }
    report
}

fn key_name(u: &Universe, k: model::Key) -> String {
    String::from_utf8_lossy(&u.keys[k as usize]).into_owned()
}

/// Shrinks a key's non-linearizable operations to a subset from which no
/// operation can be dropped without making it linearizable (within the
/// shrink budget; what is left when it runs out still fails).
fn minimal(mut ops: Vec<Timed>) -> Vec<Timed> {
    let mut left = SHRINK_BUDGET;
    let mut i = ops.len();
    while i > 0 && left > 0 {
        i -= 1;
        let mut candidate = ops.clone();
        candidate.remove(i);
        let (outcome, steps) = search(&candidate, left);
        left = left.saturating_sub(steps);
        if outcome == Outcome::Violation {
            ops = candidate;
        }
    }
    ops
}

#[cfg(test)]
mod tests;
