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
    /// A member failed while running (an error or a panic), without an
    /// injected fault to explain it.
    MemberFailure,
    /// The scenario did not do what it says (a request never acknowledged,
    /// an armed crash that never fired): its checks would be vacuous.
    Scenario,
}

impl fmt::Display for Invariant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Invariant::Convergence => "convergence",
            Invariant::RestartEquivalence => "restart-equivalence",
            Invariant::Durability => "durability",
            Invariant::Recovery => "recovery/verify",
            Invariant::MemberFailure => "member-failure",
            Invariant::Scenario => "scenario",
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

/// The checker's state during a run: the restart-equivalence tables and the
/// violations found so far.
#[derive(Debug, Default)]
pub struct Checks {
    pub entries: EquivalenceTable,
    pub states: StateTable,
    violations: Vec<Violation>,
}

impl Checks {
    /// Records `v`; false if a violation of the same invariant by the same
    /// member is already known (once a member diverged, every later entry
    /// differs too).
    pub fn record(&mut self, v: Violation) -> bool {
        let known = self
            .violations
            .iter()
            .any(|old| old.invariant == v.invariant && old.member == v.member);
        if !known {
            self.violations.push(v);
        }
        !known
    }

    /// Records `v` even if the same invariant already failed on that member.
    pub fn record_again(&mut self, v: Violation) {
        self.violations.push(v);
    }

    pub fn violations(&self) -> &[Violation] {
        &self.violations
    }
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

#[cfg(test)]
mod tests {
    //! Each invariant fails when one member's state is made to diverge.

    use super::*;
    use replica::member::{KeyDump, V3Dump};
    use replica::membership::{BackendMembership, Cluster};
    use replica::v2store::V2Store;

    fn dump() -> StateDump {
        StateDump {
            applied_index: 10,
            consistent_index: 10,
            consistent_term: 2,
            conf_state: None,
            v2: V2Store::new().dump(),
            v3: V3Dump {
                revision: 5,
                compact_revision: 0,
                keys: vec![KeyDump {
                    key: "k001".into(),
                    create_revision: 2,
                    mod_revision: 5,
                    version: 2,
                    value: "v9".into(),
                }],
            },
            cluster: Cluster::default(),
            backend_membership: BackendMembership::default(),
        }
    }

    #[test]
    fn convergence_reports_the_diverging_member_and_field() {
        let mut other = dump();
        other.v3.keys[0].value = "v8".into();
        assert!(check_convergence(&[(1, dump()), (2, dump())], 0).is_ok());
        let v = check_convergence(&[(1, dump()), (2, dump()), (3, other)], 7).unwrap_err();
        assert_eq!(v.invariant, Invariant::Convergence);
        assert_eq!(v.member, Some(3));
        assert_eq!(v.diffs.len(), 1);
        assert_eq!(v.diffs[0].path, ".v3.keys[0].value");
    }

    #[test]
    fn restart_equivalence_reports_a_different_outcome_of_the_same_entry() {
        let fp = Fingerprint {
            term: 2,
            revision: 5,
            v2_index: 7,
            error: String::new(),
            succeeded: true,
            deleted: 0,
            keys_read: 0,
            conf_change: false,
        };
        let mut table = EquivalenceTable::default();
        table.check(1, 10, fp.clone(), 0).unwrap();
        table.check(2, 10, fp.clone(), 0).unwrap();
        let skewed = Fingerprint { v2_index: 6, ..fp };
        let v = table.check(3, 10, skewed, 0).unwrap_err();
        assert_eq!(v.invariant, Invariant::RestartEquivalence);
        assert!(v.detail.contains("entry 10"), "{}", v.detail);
        assert_eq!(v.diffs[0].path, ".v2_index");
    }

    #[test]
    fn restart_equivalence_compares_full_states_at_sampled_indexes() {
        let mut table = StateTable::default();
        table.check(1, 16, &dump(), 0).unwrap();
        let mut other = dump();
        other.backend_membership.version = Some("3.4.0".into());
        let v = table.check(2, 16, &other, 0).unwrap_err();
        assert_eq!(v.diffs[0].path, ".backend_membership.version");
    }

    #[test]
    fn durability_reports_a_lost_or_overwritten_acknowledged_put() {
        let acked = |rev, value: &str| AckedPut {
            key: "k001".into(),
            value: value.into(),
            revision: rev,
        };
        let none = BTreeSet::new();
        assert!(check_durability(&[acked(5, "v9")], &none, &dump(), 0).is_ok());
        assert!(check_durability(&[acked(4, "old")], &none, &dump(), 0).is_ok());
        let lost = check_durability(&[acked(6, "v10")], &none, &dump(), 0).unwrap_err();
        assert_eq!(lost.invariant, Invariant::Durability);
        assert!(lost.detail.contains("revision 6"), "{}", lost.detail);
        let wrong = check_durability(&[acked(5, "v7")], &none, &dump(), 0).unwrap_err();
        assert!(wrong.detail.contains("\"v7\""), "{}", wrong.detail);
        let mut gone = dump();
        gone.v3.keys.clear();
        assert!(check_durability(&[acked(5, "v9")], &none, &gone, 0).is_err());
        let deleted: BTreeSet<String> = ["k001".to_string()].into();
        assert!(check_durability(&[acked(5, "v9")], &deleted, &gone, 0).is_ok());
    }
}
