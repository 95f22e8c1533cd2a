//! The Wing & Gong search, with Lowe's memoisation, over one key's
//! operations: walk the history's invoke and return events in order; at
//! an invoke, try to linearize that operation now (the model accepts it
//! and the pair (operations linearized, model states) is new); at a return
//! whose operation is not linearized yet, undo the last choice. An
//! operation without a return (indeterminate) may be linearized at any
//! point after its invoke, including after everything else, where it
//! changes nothing anyone saw: it may or may not have happened.
//!
//! The model is nondeterministic (an unknown outcome has several), so the
//! search carries the set of states the linearized prefix may be in.

use super::model::{KeyOp, KeyState, step};
use std::collections::HashSet;

/// An operation on one key with its real-time bounds (`returned: None`:
/// unbounded).
#[derive(Debug, Clone)]
pub struct Timed {
    pub op: KeyOp,
    pub invoke: u64,
    pub returned: Option<u64>,
}

/// The outcome of one search.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Linearizable,
    /// No linearization exists.
    Violation,
    /// The step budget ran out first.
    Unknown,
}

const NONE: usize = usize::MAX;

/// One event of the doubly linked list the search walks.
#[derive(Debug, Clone)]
struct Event {
    /// Index of the operation in the slice searched.
    op: usize,
    is_call: bool,
    /// The operation's other event.
    partner: usize,
    prev: usize,
    next: usize,
}

/// The events in time order behind a head sentinel (index 0).
fn events(ops: &[Timed]) -> Vec<Event> {
    let mut order: Vec<(u64, u64, usize, bool)> = Vec::with_capacity(ops.len() * 2);
    for (i, t) in ops.iter().enumerate() {
        order.push((t.invoke, 0, i, true));
        // Unbounded returns come last, in operation order.
        order.push((t.returned.unwrap_or(u64::MAX), i as u64, i, false));
    }
    order.sort_unstable();
    let mut list = vec![Event {
        op: NONE,
        is_call: false,
        partner: NONE,
        prev: NONE,
        next: NONE,
    }];
    let mut call_at = vec![NONE; ops.len()];
    for (_, _, op, is_call) in order {
        let at = list.len();
        if is_call {
            call_at[op] = at;
        }
        list.push(Event {
            op,
            is_call,
            partner: if is_call { NONE } else { call_at[op] },
            prev: at - 1,
            next: NONE,
        });
        list[at - 1].next = at;
    }
    for at in 1..list.len() {
        if !list[at].is_call {
            let call = list[at].partner;
            list[call].partner = at;
        }
    }
    list
}

fn lift(list: &mut [Event], call: usize) {
    for at in [call, list[call].partner] {
        let (prev, next) = (list[at].prev, list[at].next);
        list[prev].next = next;
        if next != NONE {
            list[next].prev = prev;
        }
    }
}

fn unlift(list: &mut [Event], call: usize) {
    for at in [list[call].partner, call] {
        let (prev, next) = (list[at].prev, list[at].next);
        list[prev].next = at;
        if next != NONE {
            list[next].prev = at;
        }
    }
}

/// Searches for a linearization of `ops` from the empty key, spending at
/// most `budget` steps; returns the outcome and the steps spent.
pub fn search(ops: &[Timed], budget: u64) -> (Outcome, u64) {
    let mut list = events(ops);
    let words = ops.len().div_ceil(64);
    let mut linearized = vec![0u64; words];
    let mut states = vec![KeyState::default()];
    let mut seen: HashSet<(Vec<u64>, Vec<KeyState>)> = HashSet::new();
    let mut calls: Vec<(usize, Vec<KeyState>)> = Vec::new();
    let mut at = list[0].next;
    let mut steps = 0u64;
    let mut next_states = Vec::new();
    while list[0].next != NONE {
        steps += 1;
        if steps > budget {
            return (Outcome::Unknown, steps);
        }
        let event = &list[at];
        if event.is_call {
            let op = event.op;
            next_states.clear();
            for s in &states {
                step(s, &ops[op].op, &mut next_states);
            }
            next_states.sort_unstable();
            next_states.dedup();
            if !next_states.is_empty() {
                linearized[op / 64] |= 1 << (op % 64);
                if seen.insert((linearized.clone(), next_states.clone())) {
                    let before = std::mem::replace(&mut states, next_states.clone());
                    calls.push((at, before));
                    lift(&mut list, at);
                    at = list[0].next;
                    continue;
                }
                linearized[op / 64] &= !(1 << (op % 64));
            }
            at = list[at].next;
        } else {
            let Some((call, before)) = calls.pop() else {
                return (Outcome::Violation, steps);
            };
            let op = list[call].op;
            linearized[op / 64] &= !(1 << (op % 64));
            states = before;
            unlift(&mut list, call);
            at = list[call].next;
        }
    }
    (Outcome::Linearizable, steps)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::linearize::model::{Action, Kv};

    fn timed(stamp: Option<i64>, action: Action, invoke: u64, returned: Option<u64>) -> Timed {
        Timed {
            op: KeyOp {
                op: 0,
                stamp,
                branches: vec![vec![action]],
            },
            invoke,
            returned,
        }
    }

    fn kv(value: u32, rev: i64) -> Option<Kv> {
        Some(Kv {
            value,
            create: rev,
            modified: rev,
            version: 1,
        })
    }

    #[test]
    fn concurrent_put_and_read_linearize_either_way() {
        let put = timed(Some(2), Action::Put(1), 1, Some(4));
        let read_new = timed(Some(2), Action::Read(Some(kv(1, 2))), 2, Some(3));
        let read_old = timed(Some(1), Action::Read(Some(None)), 2, Some(3));
        assert_eq!(
            search(&[put.clone(), read_new], 1000).0,
            Outcome::Linearizable
        );
        assert_eq!(search(&[put, read_old], 1000).0, Outcome::Linearizable);
    }

    #[test]
    fn a_read_after_an_acknowledged_put_must_see_it() {
        let put = timed(Some(2), Action::Put(1), 1, Some(2));
        let stale = timed(Some(1), Action::Read(Some(None)), 3, Some(4));
        assert_eq!(search(&[put, stale], 1000).0, Outcome::Violation);
    }

    #[test]
    fn an_indeterminate_put_may_or_may_not_have_happened() {
        let put = timed(None, Action::Put(1), 1, None);
        let absent = timed(Some(1), Action::Read(Some(None)), 3, Some(4));
        let present = Timed {
            invoke: 5,
            returned: Some(6),
            ..timed(Some(2), Action::Read(Some(kv(1, 2))), 0, None)
        };
        let ops = [put.clone(), absent.clone(), present];
        assert_eq!(search(&ops, 1000).0, Outcome::Linearizable);
        assert_eq!(search(&[put, absent], 1000).0, Outcome::Linearizable);
    }

    #[test]
    fn the_budget_gives_unknown_never_a_pass() {
        let ops: Vec<Timed> = (0..12)
            .map(|i| timed(None, Action::Put(i), 1, None))
            .chain([timed(Some(3), Action::Read(Some(kv(99, 3))), 2, Some(3))])
            .collect();
        assert_eq!(search(&ops, 50).0, Outcome::Unknown);
    }
}
