//! Membership churn in random runs: a learner added then promoted, a
//! member removed, a member replaced (removed, then a new id with an empty
//! data dir added, catching up from a leader snapshot), and leader
//! transfers. Drawn per seed from its own stream (see [`CHURN_SHARE`]);
//! each change runs as a queue of actions that the supervisor advances at
//! every poll, and each action is recorded as the scenario step that
//! replays it (`add_member`, `promote_member`, `remove_member`,
//! `transfer_leader`).
//!
//! Bounds, so a quorum can always be formed: a change starts only when
//! every member of the cluster runs and a leader exists; no random fault is
//! drawn while one is under way (the cluster is then below or above its
//! size); every change ends at the cluster's size (a cycle adds one voter
//! and removes one, a replacement removes one and adds one); a leader that
//! is to be removed hands over first; a run adds at most [`MAX_NEW_IDS`]
//! new ids. A change that does not finish within [`CHANGE_LIMIT_MS`] is a
//! convergence violation.

use super::supervisor::Supervisor;
use crate::checker::{Invariant, Violation};
use crate::cluster::slot::Slot;
use crate::cluster::world::conf_change_request;
use crate::rng::stream;
use crate::scenario_file::Step;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use replica::proto::ConfChangeKind;
use std::collections::VecDeque;

/// The churn stream (apart from the backup event's, so neither shifts the
/// other).
const STREAM_CHURN: u64 = 41;
/// One seed in this many has membership churn.
pub(crate) const CHURN_SHARE: u32 = 3;
/// New member ids a run may add (the format allows `nodes` + 4).
const MAX_NEW_IDS: u64 = 3;
/// How long one change may take.
const CHANGE_LIMIT_MS: u64 = 20_000;
/// How long a proposal may go unapplied before it is proposed again.
const AGAIN_MS: u64 = 1_000;
/// Request ids of the churn's conf changes.
const CHURN_ID_BASE: u64 = 1 << 42;

/// The kinds of change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Add a learner, promote it, remove a member (the leader, a follower
    /// or the new one).
    Cycle,
    /// Remove a member, add a new id as a voter.
    Replace,
    /// Hand leadership to a follower.
    Transfer,
}

/// One step of a change.
#[derive(Debug, Clone, Copy)]
enum Action {
    Add {
        id: u64,
        learner: bool,
    },
    Promote(u64),
    /// Remove a member drawn when the action starts.
    RemoveDrawn,
    Remove(u64),
    Transfer(u64),
    /// Hand leadership to a follower drawn when the action starts.
    TransferDrawn,
}

/// What the current action waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Not proposed yet, or proposed at this time.
    Proposed(Option<u64>),
    /// Added: the joiner has caught up once it reaches this index.
    CatchingUp(u64),
}

/// A run's churn: the changes still to come and the one under way.
pub(crate) struct Churn {
    rng: ChaCha8Rng,
    due: VecDeque<(u64, Kind)>,
    actions: VecDeque<Action>,
    phase: Phase,
    deadline_ms: u64,
    new_ids: u64,
    next_request_id: u64,
}

impl Churn {
    /// Draws whether the run of `seed` churns and when: one to three
    /// changes between a tenth and eight tenths of `duration_ms`.
    pub(crate) fn draw(seed: u64, duration_ms: u64) -> Churn {
        let mut rng = stream(seed, STREAM_CHURN);
        let mut due = Vec::new();
        if duration_ms >= 10 && rng.random_ratio(1, CHURN_SHARE) {
            for _ in 0..rng.random_range(1..=3) {
                let at = rng.random_range(duration_ms / 10..duration_ms * 8 / 10);
                let kind = [Kind::Cycle, Kind::Replace, Kind::Transfer][rng.random_range(0..3)];
                due.push((at, kind));
            }
        }
        due.sort_by_key(|(at, _)| *at);
        Churn {
            rng,
            due: due.into(),
            actions: VecDeque::new(),
            phase: Phase::Proposed(None),
            deadline_ms: 0,
            new_ids: 0,
            next_request_id: CHURN_ID_BASE,
        }
    }

    fn busy(&self) -> bool {
        !self.actions.is_empty()
    }
}

impl Supervisor {
    /// Whether a membership change is under way.
    pub(crate) fn churning(&self) -> bool {
        self.churn.as_ref().is_some_and(Churn::busy)
    }

    /// Counts a membership change in the run's statistics.
    pub(crate) fn count(&self, f: impl FnOnce(&mut crate::stats::RunStats)) {
        f(&mut self.world.lock().stats);
    }

    /// Makes member `id`'s slot if it has none (a new id joining).
    pub(crate) fn ensure_slot(&mut self, id: u64) {
        let mut w = self.world.lock();
        if !w.members.contains_key(&id) {
            let slot = Slot::new(&w.cfg, id);
            w.members.insert(id, slot);
        }
    }

    /// Asks the leader to hand leadership to `to`.
    pub(crate) fn transfer_leader(&mut self, to: u64) {
        let now = self.now_ms();
        let mut w = self.world.lock();
        let Some(leader) = w.leader() else {
            return;
        };
        if let Some(node) = w.slot_mut(leader).and_then(|s| s.node.as_mut()) {
            node.transfer_leader(to);
        }
        w.event(
            now,
            Some(leader),
            format_args!("leader transfer to {to} asked"),
        );
    }

    /// A running follower drawn from the churn stream ("any follower").
    pub(crate) fn any_follower(&mut self) -> Option<u64> {
        let followers = self.running_followers();
        if followers.is_empty() {
            return None;
        }
        if self.churn.is_none() {
            // A scenario: the same stream, with no random change drawn.
            let seed = self.world.lock().cfg.seed;
            self.churn = Some(Churn::draw(seed, 0));
        }
        let c = self.churn.as_mut()?;
        followers
            .get(c.rng.random_range(0..followers.len()))
            .copied()
    }

    fn running_followers(&self) -> Vec<u64> {
        let w = self.world.lock();
        let leader = w.leader();
        w.members
            .iter()
            .filter(|(id, s)| s.is_running() && Some(**id) != leader)
            .map(|(id, _)| *id)
            .collect()
    }

    /// Draws the run's churn (random runs only, not while `sim explore`
    /// captures a member's disk).
    pub(crate) fn draw_churn(&mut self) {
        let (seed, duration, capture) = {
            let w = self.world.lock();
            (w.cfg.seed, w.cfg.duration_ms, w.cfg.capture.is_some())
        };
        self.churn = Some(Churn::draw(seed, if capture { 0 } else { duration }));
    }

    /// One poll's share of the churn: start a due change when the cluster
    /// allows it, advance the one under way.
    pub(crate) fn poll_churn(&mut self) {
        let now = self.now_ms();
        let Some(c) = &self.churn else {
            return;
        };
        if c.busy() {
            if now > c.deadline_ms {
                self.churn_stalled(now);
            } else {
                self.advance_churn(now);
            }
            return;
        }
        let due = c.due.front().is_some_and(|(at, _)| *at <= now);
        if due && now < self.random_until && !self.restoring() && self.all_running() {
            self.start_change(now);
        }
    }

    /// Every member of the cluster runs, none cut off, and one leads.
    fn all_running(&self) -> bool {
        let w = self.world.lock();
        w.unavailable() == 0 && w.leader().is_some()
    }

    fn start_change(&mut self, now: u64) {
        let nodes = self.cluster_members().len();
        let Some(c) = &mut self.churn else {
            return;
        };
        let Some((_, kind)) = c.due.pop_front() else {
            return;
        };
        let next_id = self.world.lock().members.keys().max().copied().unwrap_or(0) + 1;
        let new_id = (c.new_ids < MAX_NEW_IDS).then_some(next_id);
        let actions: Vec<Action> = match (kind, new_id) {
            (Kind::Transfer, _) | (_, None) if nodes > 1 => vec![Action::TransferDrawn],
            (Kind::Replace, Some(id)) if nodes > 1 => {
                vec![Action::RemoveDrawn, Action::Add { id, learner: false }]
            }
            (_, Some(id)) => vec![
                Action::Add { id, learner: true },
                Action::Promote(id),
                Action::RemoveDrawn,
            ],
            _ => Vec::new(),
        };
        c.new_ids += u64::from(new_id.is_some() && actions.len() > 1);
        c.actions = actions.into();
        c.phase = Phase::Proposed(None);
        c.deadline_ms = now + CHANGE_LIMIT_MS;
        let mut w = self.world.lock();
        w.event(now, None, format_args!("membership change: {kind:?}"));
        if kind == Kind::Replace && new_id.is_some() && nodes > 1 {
            w.stats.members_replaced += 1;
        }
    }

    fn churn_stalled(&mut self, now: u64) {
        let Some(c) = &mut self.churn else {
            return;
        };
        let left: Vec<Action> = c.actions.drain(..).collect();
        self.world.lock().violation(Violation {
            invariant: Invariant::Convergence,
            time_ms: now,
            member: None,
            detail: format!(
                "a membership change did not finish within {CHANGE_LIMIT_MS} ms: {left:?} left"
            ),
            diffs: Vec::new(),
        });
    }

    /// Advances the current action by what the cluster allows now.
    fn advance_churn(&mut self, now: u64) {
        let Some(leader) = self.world.lock().leader() else {
            return;
        };
        let Some(action) = self.churn.as_ref().and_then(|c| c.actions.front().copied()) else {
            return;
        };
        let done = match action {
            Action::TransferDrawn | Action::RemoveDrawn => {
                self.draw_target(action, leader);
                false
            }
            Action::Transfer(to) => self.step_transfer(now, leader, to),
            Action::Add { id, learner } => self.step_add(now, leader, id, learner),
            Action::Promote(id) => self.step_promote(now, leader, id),
            Action::Remove(id) => self.step_remove(now, leader, id),
        };
        if done && let Some(c) = &mut self.churn {
            c.actions.pop_front();
            c.phase = Phase::Proposed(None);
        }
    }

    /// Replaces a drawn action by one with its member: a transfer to any
    /// follower; a removal of the leader, a follower or (in a cycle) the
    /// newest member. Removing the leader hands over first.
    fn draw_target(&mut self, action: Action, leader: u64) {
        let followers = self.running_followers();
        let Some(c) = &mut self.churn else {
            return;
        };
        if followers.is_empty() {
            return;
        }
        let follower = followers[c.rng.random_range(0..followers.len())];
        let target = match (action, c.rng.random_range(0..3)) {
            (Action::TransferDrawn, _) => {
                c.actions[0] = Action::Transfer(follower);
                return;
            }
            (_, 0) => leader,
            (_, 1) => follower,
            _ => followers.iter().max().copied().unwrap_or(follower),
        };
        c.actions[0] = Action::Remove(target);
        if target == leader {
            c.actions.push_front(Action::Transfer(follower));
        }
    }

    /// Whether it is time to propose (again); marks it proposed.
    fn propose_due(&mut self, now: u64) -> bool {
        let Some(c) = &mut self.churn else {
            return false;
        };
        match c.phase {
            Phase::Proposed(Some(at)) if now < at + AGAIN_MS => false,
            Phase::Proposed(_) => {
                c.phase = Phase::Proposed(Some(now));
                true
            }
            Phase::CatchingUp(_) => false,
        }
    }

    /// Proposes a conf change on the leader (a refused one is proposed
    /// again later).
    fn propose(&mut self, leader: u64, kind: ConfChangeKind, id: u64, learner: bool) {
        let Some(c) = &mut self.churn else {
            return;
        };
        c.next_request_id += 1;
        let cc = conf_change_request(kind, id, learner, c.next_request_id);
        let mut w = self.world.lock();
        if let Some(node) = w.slot_mut(leader).and_then(|s| s.node.as_mut()) {
            let _ = node.propose_conf_change(&cc);
        }
    }

    fn record_change(&mut self, now: u64, member: u64, step: Step) {
        if let Some(s) = &mut self.schedule {
            s.happened(now, member, step);
        }
    }

    fn step_transfer(&mut self, now: u64, leader: u64, to: u64) -> bool {
        if leader == to {
            self.count(|s| s.leader_transfers += 1);
            return true;
        }
        if self.proposal_due(now, to, Step::TransferLeader { to: to.into() }) {
            self.transfer_leader(to);
        }
        false
    }

    /// Whether the change's proposal is due now; the first one is recorded
    /// as `step` (about member `id`) before it is made, so a replay of the
    /// schedule proposes it too.
    fn proposal_due(&mut self, now: u64, id: u64, step: Step) -> bool {
        let first = matches!(
            self.churn.as_ref().map(|c| c.phase),
            Some(Phase::Proposed(None))
        );
        if !self.propose_due(now) {
            return false;
        }
        if first {
            self.record_change(now, id, step);
        }
        true
    }

    /// The leader's view of member `id`: absent, learner, or voter.
    fn leader_sees(&self, leader: u64, id: u64) -> Option<bool> {
        let w = self.world.lock();
        let node = w.slot(leader).and_then(|s| s.node.as_ref())?;
        node.member()
            .stores()
            .cluster
            .members
            .get(&id)
            .map(|m| m.is_learner)
    }

    fn step_add(&mut self, now: u64, leader: u64, id: u64, learner: bool) -> bool {
        let phase = self.churn.as_ref().map(|c| c.phase);
        if let Some(Phase::CatchingUp(index)) = phase {
            let caught_up = self.world.lock().has_applied(id, index);
            if caught_up {
                self.event(Some(id), format_args!("joined and caught up"));
            }
            return caught_up;
        }
        if self.leader_sees(leader, id).is_some() {
            let applied = self.leader_applied(leader);
            // raft-rs ignores a snapshot whose conf state does not name
            // the receiver: a fresh one names the joiner.
            let _ = self.force_snapshot(leader);
            self.start_member(id);
            if let Some(c) = &mut self.churn {
                c.phase = Phase::CatchingUp(applied);
            }
            self.count(|s| {
                s.members_added += 1;
                s.learners_added += u64::from(learner);
            });
            return false;
        }
        let first = matches!(phase, Some(Phase::Proposed(None)));
        if self.propose_due(now) {
            if first {
                self.ensure_slot(id);
                self.record_change(now, id, Step::AddMember { id, learner });
            }
            let kind = if learner {
                ConfChangeKind::AddLearnerNode
            } else {
                ConfChangeKind::AddNode
            };
            self.propose(leader, kind, id, learner);
        }
        false
    }

    fn leader_applied(&self, leader: u64) -> u64 {
        let w = self.world.lock();
        w.slot(leader)
            .and_then(|s| s.node.as_ref())
            .map_or(0, |n| n.member().applied_index())
    }

    fn step_promote(&mut self, now: u64, leader: u64, id: u64) -> bool {
        if self.leader_sees(leader, id) == Some(false) {
            self.count(|s| s.promotions += 1);
            return true;
        }
        if self.proposal_due(now, id, Step::PromoteMember { id: id.into() }) {
            self.propose(leader, ConfChangeKind::Promote, id, false);
        }
        false
    }

    fn step_remove(&mut self, now: u64, leader: u64, id: u64) -> bool {
        if leader == id {
            // It took leadership back before its removal: hand over again.
            if let Some(to) = self.running_followers().first().copied()
                && let Some(c) = &mut self.churn
            {
                c.actions.push_front(Action::Transfer(to));
                c.phase = Phase::Proposed(None);
            }
            return false;
        }
        if self.leader_sees(leader, id).is_none() {
            self.retire(id);
            self.count(|s| s.members_removed += 1);
            return true;
        }
        if self.proposal_due(now, id, Step::RemoveMember { id: id.into() }) {
            self.propose(leader, ConfChangeKind::RemoveNode, id, false);
        }
        false
    }
}
