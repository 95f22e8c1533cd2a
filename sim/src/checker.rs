//! The invariants, kept apart from the store they judge.
//!
//! - **Convergence**: once faults stop and the cluster is quiet, every
//!   member's full state dump is identical.
//! - **Restart equivalence**: every member that applies entry *i* (after
//!   its boot replay, whether or not it ever restarted) must see the same
//!   outcome of it as every other member: the v3 revision and v2 index after
//!   it, and the request's result. A restarted member whose recovered state
//!   differs from its pre-crash history shows up here at the first entry it
//!   applies after recovery, long before the end of the run.
//! - **Durability**: every acknowledged put is visible at the end, unless a
//!   later request may have deleted the key.
//! - **Verify**: boot-time checks (`REPLICA_VERIFY`) pass at every open; a
//!   member that cannot boot after a fault the fault model allows is a
//!   violation too.

use crate::diff::FieldDiff;
use replica::apply::Applied;
use replica::member::StateDump;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// Which invariant failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Invariant {
    Convergence,
    RestartEquivalence,
    Durability,
    /// Boot failed (verify or any other error) after an allowed fault.
    Recovery,
    /// A member failed while running, without an injected fault to explain it.
    Liveness,
}

impl fmt::Display for Invariant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Invariant::Convergence => "convergence",
            Invariant::RestartEquivalence => "restart-equivalence",
            Invariant::Durability => "durability",
            Invariant::Recovery => "recovery/verify",
            Invariant::Liveness => "member-failure",
        })
    }
}

/// One violated invariant.
#[derive(Debug, Clone)]
pub struct Violation {
    pub invariant: Invariant,
    pub time_ms: u64,
    pub member: Option<u64>,
    pub detail: String,
    pub diffs: Vec<FieldDiff>,
}

/// What every member must agree on about an applied entry.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Fingerprint {
    pub term: u64,
    pub revision: i64,
    pub v2_index: u64,
    pub error: String,
    pub succeeded: bool,
    pub deleted: i64,
    pub keys_read: usize,
    pub conf_change: bool,
}

impl Fingerprint {
    pub fn of(applied: &Applied, revision: i64, v2_index: u64) -> Fingerprint {
        let r = applied.response.clone().unwrap_or_default();
        Fingerprint {
            term: applied.term,
            revision,
            v2_index,
            error: r.error,
            succeeded: r.succeeded,
            deleted: r.deleted,
            keys_read: r.kvs.len(),
            conf_change: applied.conf_change.is_some(),
        }
    }
}

/// Fingerprints per applied index, first come first recorded.
#[derive(Debug, Default)]
pub struct EquivalenceTable {
    seen: BTreeMap<u64, (u64, Fingerprint)>,
}

impl EquivalenceTable {
    /// Records or compares member `member`'s outcome of entry `index`.
    pub fn check(
        &mut self,
        member: u64,
        index: u64,
        fp: Fingerprint,
        time_ms: u64,
    ) -> Result<(), Violation> {
        match self.seen.get(&index) {
            None => {
                self.seen.insert(index, (member, fp));
                Ok(())
            }
            Some((_, known)) if *known == fp => Ok(()),
            Some((first, known)) => Err(Violation {
                invariant: Invariant::RestartEquivalence,
                time_ms,
                member: Some(member),
                detail: format!(
                    "entry {index}: member {member} applied it differently from member {first}"
                ),
                diffs: crate::diff::diff(&fp, known),
            }),
        }
    }
}

/// Full state dumps at sampled applied indexes, first come first recorded:
/// the state-level half of restart equivalence (a divergence in a value
/// that leaves every counter equal shows up here, not in the fingerprints).
#[derive(Debug, Default)]
pub struct StateTable {
    seen: BTreeMap<u64, (u64, serde_json::Value)>,
}

impl StateTable {
    /// Records or compares member `member`'s full state after entry `index`.
    pub fn check(
        &mut self,
        member: u64,
        index: u64,
        dump: &StateDump,
        time_ms: u64,
    ) -> Result<(), Violation> {
        let value = serde_json::to_value(dump).unwrap_or_default();
        match self.seen.get(&index) {
            None => {
                self.seen.insert(index, (member, value));
                Ok(())
            }
            Some((_, known)) if *known == value => Ok(()),
            Some((first, known)) => Err(Violation {
                invariant: Invariant::RestartEquivalence,
                time_ms,
                member: Some(member),
                detail: format!(
                    "state after entry {index}: member {member} differs from member {first}"
                ),
                diffs: crate::diff::diff(&value, known),
            }),
        }
    }
}

/// Every member's dump must equal the first one's.
pub fn check_convergence(dumps: &[(u64, StateDump)], time_ms: u64) -> Result<(), Violation> {
    let Some((first_id, first)) = dumps.first() else {
        return Ok(());
    };
    for (id, dump) in &dumps[1..] {
        let diffs = crate::diff::diff(dump, first);
        if !diffs.is_empty() {
            return Err(Violation {
                invariant: Invariant::Convergence,
                time_ms,
                member: Some(*id),
                detail: format!("member {id} differs from member {first_id} after quiescing"),
                diffs,
            });
        }
    }
    Ok(())
}

/// An acknowledged put.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AckedPut {
    pub key: String,
    pub value: String,
    pub revision: i64,
}

/// Every acknowledged put must be visible, unless the key may have been
/// deleted by a later request (`maybe_deleted`).
pub fn check_durability(
    acked: &[AckedPut],
    maybe_deleted: &BTreeSet<String>,
    dump: &StateDump,
    time_ms: u64,
) -> Result<(), Violation> {
    let mut latest: BTreeMap<&str, &AckedPut> = BTreeMap::new();
    for a in acked {
        let e = latest.entry(a.key.as_str()).or_insert(a);
        if a.revision > e.revision {
            *e = a;
        }
    }
    let keys: BTreeMap<&str, _> = dump.v3.keys.iter().map(|k| (k.key.as_str(), k)).collect();
    for (key, ack) in latest {
        let lost = match keys.get(key) {
            Some(k) if k.mod_revision > ack.revision => false,
            Some(k) if k.mod_revision == ack.revision => {
                if k.value != ack.value {
                    return Err(Violation {
                        invariant: Invariant::Durability,
                        time_ms,
                        member: None,
                        detail: format!(
                            "key {key}: revision {} holds {:?}, but the put acknowledged at that revision wrote {:?}",
                            ack.revision, k.value, ack.value
                        ),
                        diffs: Vec::new(),
                    });
                }
                false
            }
            Some(_) => true,
            None => !maybe_deleted.contains(key),
        };
        if lost {
            return Err(Violation {
                invariant: Invariant::Durability,
                time_ms,
                member: None,
                detail: format!(
                    "key {key}: the put acknowledged at revision {} is lost (now: {:?})",
                    ack.revision,
                    keys.get(key).map(|k| (k.mod_revision, k.value.clone()))
                ),
                diffs: Vec::new(),
            });
        }
    }
    Ok(())
}
