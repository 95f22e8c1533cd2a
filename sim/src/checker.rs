//! The invariants, kept apart from the store they judge.
//!
//! - **Convergence**: once faults stop and the cluster is quiet, every
//!   member's full state dump is identical.
//! - **Restart equivalence**: every member that applies entry *i* (in its
//!   Ready loop, or in a boot's replay when the entry's v3 half runs there)
//!   must see the same outcome of it as every other member: the v3 revision
//!   and v2 index after it, and the request's result. A restarted member
//!   whose recovered state differs from its pre-crash history shows up here
//!   at the first entry it applies after recovery, long before the end of
//!   the run.
//! - **Durability**: at the end, on every member (and right after each
//!   boot, for the writes at or below the revision it came up with), every
//!   acknowledged write (put, txn put) is visible with its value at its revision, or was
//!   superseded by something that took effect later: a newer put, or a
//!   delete applied at a newer revision. What took effect is read from the
//!   apply stream, not from what the clients generated.
//! - **Linearizability** (after the run, `linearize/`): the clients'
//!   history has a linearization under the etcd model; serializable reads
//!   match their member's state at the revision they report and never go
//!   back for one session and member.
//! - **Verify**: boot-time checks (`REPLICA_VERIFY`) pass at every open; a
//!   member that cannot boot after a fault the fault model allows is a
//!   violation too; and no boot comes up with a lower v2 index than its
//!   member had reached before.

use crate::diff::FieldDiff;
use replica::apply::Applied;
use replica::member::StateDump;
use std::collections::BTreeMap;
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
    /// What the clients saw has no linearization (a key's operations, or a
    /// read against the writes in revision order).
    Linearizability,
    /// A client session's serializable reads from one member went back in
    /// revision.
    SerializableReads,
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
            Invariant::Linearizability => "linearizability",
            Invariant::SerializableReads => "serializable-reads",
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
    pub v2_index: V2IndexTable,
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
    /// The request or conf change the entry carries (its identity).
    pub request_id: u64,
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
            request_id: r.id,
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

impl EquivalenceTable {
    /// Compares what a boot's replay can show of an entry whose v3 half it
    /// skipped (the backend already held it) with the entry's recorded
    /// outcome: the entry's identity (term, request id, conf change) and its
    /// v2 half (the v2 index after it), and, for the last such entry, the
    /// revision, since the backend then holds exactly the state after it.
    /// An index nobody recorded (the tables start again after a restore)
    /// is not recorded from here: its v3 outcome is unknown.
    pub fn check_v3_skipped(
        &mut self,
        member: u64,
        index: u64,
        fp: &Fingerprint,
        with_revision: bool,
        time_ms: u64,
    ) -> Result<bool, Violation> {
        let Some((first, known)) = self.seen.get(&index) else {
            return Ok(false);
        };
        let mut expected = Fingerprint {
            term: known.term,
            request_id: known.request_id,
            v2_index: known.v2_index,
            conf_change: known.conf_change,
            ..fp.clone()
        };
        if with_revision {
            expected.revision = known.revision;
        }
        if expected == *fp {
            return Ok(true);
        }
        Err(Violation {
            invariant: Invariant::RestartEquivalence,
            time_ms,
            member: Some(member),
            detail: format!(
                "entry {index}: member {member} replayed it at boot with its v3 half skipped \
                 (the backend held it), and its identity, v2 half{} differ from member {first}'s \
                 outcome",
                if with_revision {
                    " or the backend's revision"
                } else {
                    ""
                }
            ),
            diffs: crate::diff::diff(fp, &expected),
        })
    }
}

/// Full state dumps at sampled applied indexes, first come first recorded:
/// the state-level half of restart equivalence (a divergence in a value
/// that leaves every counter equal shows up here, not in the fingerprints).
/// Dumps are kept and compared as they are; only a mismatch is serialised,
/// for its field diffs (converting every sampled dump to JSON was ~3% of a
/// random run).
#[derive(Debug, Default)]
pub struct StateTable {
    seen: BTreeMap<u64, (u64, StateDump)>,
}

impl StateTable {
    /// Records or compares member `member`'s full state after entry `index`.
    pub fn check(
        &mut self,
        member: u64,
        index: u64,
        dump: StateDump,
        time_ms: u64,
    ) -> Result<(), Violation> {
        match self.seen.get(&index) {
            None => {
                self.seen.insert(index, (member, dump));
                Ok(())
            }
            Some((_, known)) if *known == dump => Ok(()),
            Some((first, known)) => Err(Violation {
                invariant: Invariant::RestartEquivalence,
                time_ms,
                member: Some(member),
                detail: format!(
                    "state after entry {index}: member {member} differs from member {first}"
                ),
                diffs: crate::diff::diff(&dump, known),
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

/// An acknowledged write of one key: a put, or one put of the txn branch
/// that ran.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AckedPut {
    pub key: String,
    pub value: String,
    pub revision: i64,
}

/// A delete that took effect: it removed at least one live key of its range
/// at `revision` (a delete range, or a delete of the txn branch that ran).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppliedDelete {
    pub key: Vec<u8>,
    /// Empty: `key` alone; `[0]`: every key from `key` on; otherwise
    /// `[key, range_end)`.
    pub range_end: Vec<u8>,
    pub revision: i64,
}

impl AppliedDelete {
    /// Whether `key` is in the deleted range (etcd's range rules, written
    /// out here rather than borrowed from the store under test).
    pub fn covers(&self, key: &[u8]) -> bool {
        match self.range_end.as_slice() {
            [] => key == self.key.as_slice(),
            [0] => key >= self.key.as_slice(),
            end => key >= self.key.as_slice() && key < end,
        }
    }
}

/// Every acknowledged write must, in member `member`'s final state, be
/// visible with its value at its revision, or be superseded by something
/// that took effect later: a put (the key's `mod_revision` is newer) or an
/// applied delete covering the key at a newer revision. Every
/// acknowledgement is checked, not only each key's newest: a store that
/// acknowledges two writes of a key at the same revision has lost one.
pub fn check_durability(
    acked: &[AckedPut],
    deletes: &[AppliedDelete],
    member: u64,
    dump: &StateDump,
    time_ms: u64,
) -> Result<(), Violation> {
    let keys: BTreeMap<&str, _> = dump.v3.keys.iter().map(|k| (k.key.as_str(), k)).collect();
    for ack in acked {
        let key = ack.key.as_str();
        let problem = match keys.get(key) {
            Some(k) if k.mod_revision > ack.revision => None,
            Some(k) if k.mod_revision == ack.revision && k.value == ack.value => None,
            Some(k) if k.mod_revision == ack.revision => Some(format!(
                "revision {} holds {}, but the put acknowledged at that revision wrote {}",
                ack.revision,
                abbreviated(&k.value),
                abbreviated(&ack.value)
            )),
            Some(k) => Some(format!(
                "the put acknowledged at revision {} is lost: the key holds {} from revision {}",
                ack.revision,
                abbreviated(&k.value),
                k.mod_revision
            )),
            None => {
                let newest_delete = deletes
                    .iter()
                    .filter(|d| d.covers(key.as_bytes()))
                    .map(|d| d.revision)
                    .max();
                match newest_delete {
                    Some(d) if d > ack.revision => None,
                    Some(d) => Some(format!(
                        "the put acknowledged at revision {} is gone, and the newest applied delete of the key is older (revision {d})",
                        ack.revision
                    )),
                    None => Some(format!(
                        "the put acknowledged at revision {} is gone, and no applied delete covers the key",
                        ack.revision
                    )),
                }
            }
        };
        if let Some(problem) = problem {
            return Err(Violation {
                invariant: Invariant::Durability,
                time_ms,
                member: Some(member),
                detail: format!("member {member}, key {key}: {problem}"),
                diffs: Vec::new(),
            });
        }
    }
    Ok(())
}

/// Durability right after a member's recovery: every acknowledged write
/// at or below the revision the member came up with is visible or
/// superseded in its state (it may lag the cluster, never lose what it had).
pub fn check_durability_at_boot(
    acked: &[AckedPut],
    deletes: &[AppliedDelete],
    member: u64,
    dump: &StateDump,
    time_ms: u64,
) -> Result<(), Violation> {
    let upto = dump.v3.revision;
    let acked: Vec<AckedPut> = acked
        .iter()
        .filter(|a| a.revision <= upto)
        .cloned()
        .collect();
    let deletes: Vec<AppliedDelete> = deletes
        .iter()
        .filter(|d| d.revision <= upto)
        .cloned()
        .collect();
    check_durability(&acked, &deletes, member, dump, time_ms).map_err(|mut v| {
        v.detail = format!("after its recovery: {}", v.detail);
        v
    })
}

/// The client history's verdict as violations: the first failure of each
/// kind, naming the key and the operations (with how many more failed).
pub fn client_violations(
    ops: &[crate::linearize::Recorded],
    report: &crate::linearize::Report,
) -> Vec<(crate::linearize::Kind, Violation)> {
    use crate::linearize::Kind;
    let mut out: Vec<(Kind, Violation)> = Vec::new();
    for kind in [
        Kind::Linearizability,
        Kind::RevisionOrder,
        Kind::SerializableMonotonic,
    ] {
        let mut of_kind = report.failures.iter().filter(|f| f.kind == kind);
        let Some(first) = of_kind.next() else {
            continue;
        };
        let more = of_kind.count();
        let named: Vec<String> = first
            .ops
            .iter()
            .filter_map(|&i| ops.get(i).map(|op| (i, op)))
            .map(|(i, op)| {
                format!(
                    "#{i} client {}: {}",
                    op.client,
                    crate::linearize::describe(op)
                )
            })
            .collect();
        let last_us = first
            .ops
            .iter()
            .filter_map(|&i| ops.get(i))
            .map(|op| op.returned.map_or(op.invoke.us, |r| r.us))
            .max()
            .unwrap_or(0);
        out.push((
            kind,
            Violation {
                invariant: if kind == Kind::SerializableMonotonic {
                    Invariant::SerializableReads
                } else {
                    Invariant::Linearizability
                },
                time_ms: last_us / 1000,
                member: None,
                detail: format!(
                    "key {}: {}; operations: {}{}",
                    first.key.as_deref().unwrap_or("-"),
                    first.detail,
                    named.join("; "),
                    if more > 0 {
                        format!(" ({more} more failures of this kind)")
                    } else {
                        String::new()
                    }
                ),
                diffs: Vec::new(),
            },
        ));
    }
    out
}

/// A value as a report shows it: quoted, and cut after 40 characters.
fn abbreviated(value: &str) -> String {
    const SHOWN: usize = 40;
    match value.char_indices().nth(SHOWN) {
        Some((cut, _)) => format!("{:?}… ({} bytes)", &value[..cut], value.len()),
        None => format!("{value:?}"),
    }
}

/// The highest v2 index each member reached (applied in its Ready loop or
/// booted to): a boot replays every committed entry, and an entry is
/// applied only after its commit index is durable, so no boot may come up
/// with a lower v2 index than its member had before.
#[derive(Debug, Default)]
pub struct V2IndexTable {
    highest: BTreeMap<u64, u64>,
}

impl V2IndexTable {
    /// Member `member` reached `v2_index`.
    pub fn reached(&mut self, member: u64, v2_index: u64) {
        let high = self.highest.entry(member).or_default();
        *high = (*high).max(v2_index);
    }

    /// Member `member` booted to `v2_index`: a recovery violation naming both
    /// indexes if it is behind what the member had before.
    pub fn check_boot(
        &mut self,
        member: u64,
        v2_index: u64,
        time_ms: u64,
    ) -> Result<(), Violation> {
        let before = self.highest.get(&member).copied().unwrap_or(0);
        self.reached(member, v2_index);
        replica::verify::check_v2_index(before, v2_index).map_err(|e| Violation {
            invariant: Invariant::Recovery,
            time_ms,
            member: Some(member),
            detail: format!("member {member} booted behind what it had applied: {e}"),
            diffs: Vec::new(),
        })
    }
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

    /// The outcome of a put applied at entry 10 (any values would do).
    fn put_outcome() -> Fingerprint {
        Fingerprint {
            term: 2,
            request_id: 9,
            revision: 5,
            v2_index: 7,
            error: String::new(),
            succeeded: true,
            deleted: 0,
            keys_read: 0,
            conf_change: false,
        }
    }

    #[test]
    fn restart_equivalence_reports_a_different_outcome_of_the_same_entry() {
        let fp = put_outcome();
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
    fn a_v3_skipped_replay_is_compared_by_identity_v2_half_and_last_revision() {
        let fp = Fingerprint {
            deleted: 1,
            ..put_outcome()
        };
        let mut table = EquivalenceTable::default();
        assert!(!table.check_v3_skipped(1, 10, &fp, true, 0).unwrap());
        table.check(1, 10, fp.clone(), 0).unwrap();
        // The v3 result is not shown by a skipped replay; the backend's
        // revision counts only for the last skipped entry.
        let replayed = Fingerprint {
            revision: 8,
            deleted: 0,
            ..fp.clone()
        };
        assert!(table.check_v3_skipped(2, 10, &replayed, false, 0).unwrap());
        let v = table
            .check_v3_skipped(2, 10, &replayed, true, 0)
            .unwrap_err();
        assert_eq!(v.diffs[0].path, ".revision");
        let other_entry = Fingerprint {
            request_id: 10,
            ..fp.clone()
        };
        let v = table
            .check_v3_skipped(2, 10, &other_entry, false, 0)
            .unwrap_err();
        assert_eq!(v.diffs[0].path, ".request_id");
        let no_v2 = Fingerprint { v2_index: 6, ..fp };
        assert!(table.check_v3_skipped(2, 10, &no_v2, false, 0).is_err());
    }

    #[test]
    fn restart_equivalence_compares_full_states_at_sampled_indexes() {
        let mut table = StateTable::default();
        table.check(1, 16, dump(), 0).unwrap();
        let mut other = dump();
        other.backend_membership.version = Some("3.4.0".into());
        let v = table.check(2, 16, other, 0).unwrap_err();
        assert_eq!(v.diffs[0].path, ".backend_membership.version");
    }

    fn acked(revision: i64, value: &str) -> AckedPut {
        AckedPut {
            key: "k001".into(),
            value: value.into(),
            revision,
        }
    }

    fn deleted_at(revision: i64) -> AppliedDelete {
        AppliedDelete {
            key: b"k001".to_vec(),
            range_end: Vec::new(),
            revision,
        }
    }

    fn gone() -> StateDump {
        let mut d = dump();
        d.v3.keys.clear();
        d
    }

    #[test]
    fn durability_accepts_a_put_visible_at_its_revision() {
        assert!(check_durability(&[acked(5, "v9")], &[], 1, &dump(), 0).is_ok());
    }

    #[test]
    fn durability_accepts_a_put_superseded_by_a_later_put() {
        assert!(check_durability(&[acked(4, "old")], &[], 1, &dump(), 0).is_ok());
    }

    #[test]
    fn durability_reports_a_put_the_key_is_older_than() {
        let lost = check_durability(&[acked(6, "v10")], &[], 2, &dump(), 0).unwrap_err();
        assert_eq!(lost.invariant, Invariant::Durability);
        assert_eq!(lost.member, Some(2));
        assert!(lost.detail.contains("revision 6"), "{}", lost.detail);
    }

    #[test]
    fn durability_reports_another_value_at_the_acknowledged_revision() {
        let wrong = check_durability(&[acked(5, "v7")], &[], 1, &dump(), 0).unwrap_err();
        assert!(wrong.detail.contains("\"v7\""), "{}", wrong.detail);
    }

    #[test]
    fn durability_accepts_a_put_removed_by_a_later_applied_delete() {
        assert!(check_durability(&[acked(5, "v9")], &[deleted_at(6)], 1, &gone(), 0).is_ok());
        let range = AppliedDelete {
            key: b"k000".to_vec(),
            range_end: b"k002".to_vec(),
            revision: 6,
        };
        assert!(check_durability(&[acked(5, "v9")], &[range], 1, &gone(), 0).is_ok());
    }

    #[test]
    fn durability_reports_a_put_gone_after_only_an_older_delete() {
        let v = check_durability(&[acked(5, "v9")], &[deleted_at(4)], 1, &gone(), 0).unwrap_err();
        assert!(v.detail.contains("older (revision 4)"), "{}", v.detail);
    }

    #[test]
    fn durability_reports_a_put_gone_with_no_applied_delete() {
        let other_key = AppliedDelete {
            key: b"k002".to_vec(),
            range_end: Vec::new(),
            revision: 9,
        };
        let v = check_durability(&[acked(5, "v9")], &[other_key], 1, &gone(), 0).unwrap_err();
        assert!(v.detail.contains("no applied delete"), "{}", v.detail);
    }

    #[test]
    fn a_delete_covers_its_key_its_range_or_everything_from_its_key() {
        let d = |key: &[u8], range_end: &[u8]| AppliedDelete {
            key: key.to_vec(),
            range_end: range_end.to_vec(),
            revision: 1,
        };
        assert!(d(b"k1", b"").covers(b"k1"));
        assert!(!d(b"k1", b"").covers(b"k10"));
        assert!(d(b"k1", b"k1~").covers(b"k10"));
        assert!(!d(b"k1", b"k1~").covers(b"k2"));
        assert!(d(b"k1", &[0]).covers(b"zzz"));
        assert!(!d(b"k1", &[0]).covers(b"k0"));
    }

    #[test]
    fn a_boot_below_the_v2_index_reached_before_is_a_recovery_violation() {
        let mut table = V2IndexTable::default();
        assert!(
            table.check_boot(1, 0, 0).is_ok(),
            "a first boot has no before"
        );
        table.reached(1, 9);
        table.reached(1, 4);
        assert!(table.check_boot(1, 9, 0).is_ok());
        let v = table.check_boot(1, 7, 5).unwrap_err();
        assert_eq!(v.invariant, Invariant::Recovery);
        assert_eq!(v.member, Some(1));
        assert!(v.detail.contains("from 9 to 7"), "{}", v.detail);
        assert!(table.check_boot(2, 3, 0).is_ok(), "per member");
    }
}
