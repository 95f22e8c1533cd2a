//! Whether the cluster has quiesced, and the checks at the end of a run
//! (and at a scenario's `check` step): convergence of every counted member's
//! full state, then, on each of them, durability of the acknowledged writes.

use super::QUIESCE_LIMIT_MS;
use super::supervisor::Supervisor;
use crate::checker::{self, Invariant, Violation};
use crate::cluster::slot::{Down, Slot};
use replica::member::StateDump;

impl Supervisor {
    /// Whether a member takes part in convergence now. A quarantined
    /// member (`Down::Broken`) does not; the random run damages a member
    /// only where the others make a quorum without it, so a leader can
    /// still be elected (the fault contract, "Cluster sizes").
    fn counted(&self, id: u64, slot: &Slot) -> bool {
        slot.started
            && !slot.removed
            && !self.held_down.contains(&id)
            && !matches!(slot.down, Some(Down::Broken))
    }

    /// Every member runs, agrees on the applied index, and has applied all
    /// that is committed.
    pub(crate) fn converged(&self) -> bool {
        let w = self.world.lock();
        let mut applied = None;
        for (id, slot) in &w.members {
            if !self.counted(*id, slot) {
                continue;
            }
            let Some(node) = &slot.node else {
                return false;
            };
            let a = node.member().applied_index();
            if node.commit_index() != a || *applied.get_or_insert(a) != a {
                return false;
            }
        }
        w.members
            .values()
            .any(|s| s.node.as_ref().is_some_and(|n| n.is_leader()))
    }

    /// The checks at the end of a run (and at a scenario's `check` step):
    /// the cluster quiesced, every counted member's full state is the same,
    /// and on each of them every acknowledged write survived or was
    /// superseded by a later one that took effect.
    pub(crate) fn final_checks(&mut self) {
        let now = self.world.now_ms();
        if !self.converged() {
            self.not_quiesced(now);
            return;
        }
        let Some(dumps) = self.state_dumps(now) else {
            return;
        };
        let mut w = self.world.lock();
        if let Err(v) = checker::check_convergence(&dumps, now) {
            w.violation(v);
            return;
        }
        for (id, dump) in &dumps {
            let history = &w.history;
            let result = checker::check_durability(
                history.acked_puts(),
                history.applied_deletes(),
                *id,
                dump,
                now,
            );
            if let Err(v) = result {
                w.violation(v);
            }
        }
        w.event(
            now,
            None,
            format_args!("quiesced: {} members identical", dumps.len()),
        );
    }

    /// A convergence violation naming where each member stands.
    fn not_quiesced(&mut self, now: u64) {
        let mut w = self.world.lock();
        let status: Vec<String> = w
            .members
            .iter()
            .map(|(id, s)| match &s.node {
                Some(n) => format!(
                    "m{id}: applied {} commit {} leader {}",
                    n.member().applied_index(),
                    n.commit_index(),
                    n.leader_id()
                ),
                None => format!("m{id}: down ({:?})", s.down),
            })
            .collect();
        w.violation(Violation {
            invariant: Invariant::Convergence,
            time_ms: now,
            member: None,
            detail: format!(
                "the cluster did not quiesce within {}s after the faults stopped: {}",
                QUIESCE_LIMIT_MS / 1000,
                status.join("; ")
            ),
            diffs: Vec::new(),
        });
    }

    /// Every counted member's state dump; `None` (and a violation) if one
    /// cannot be made.
    fn state_dumps(&mut self, now: u64) -> Option<Vec<(u64, StateDump)>> {
        let mut w = self.world.lock();
        let mut dumps = Vec::new();
        for (id, slot) in &w.members {
            if !self.counted(*id, slot) {
                continue;
            }
            let Some(node) = &slot.node else {
                continue;
            };
            match node.member().state_dump() {
                Ok(d) => dumps.push((*id, d)),
                Err(e) => {
                    let v = Violation {
                        invariant: Invariant::MemberFailure,
                        time_ms: now,
                        member: Some(*id),
                        detail: format!("state dump failed: {e}"),
                        diffs: Vec::new(),
                    };
                    w.checks.record_again(v);
                    return None;
                }
            }
        }
        Some(dumps)
    }
}
