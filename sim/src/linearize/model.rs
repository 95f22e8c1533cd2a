//! The etcd key-value model, one key at a time: the key's current value
//! (with create and mod revision and version) and the store revision the
//! operations linearized so far imply. An operation is projected onto each
//! key it touches (see `project.rs`) as a list of actions on that key.
//!
//! Revisions are what make the per-key split sound: every write makes one
//! new store revision and returns it, every read returns the revision it
//! read at, and the revision never goes backwards along a linearization.
//! So on each key a write must come after everything that saw an older
//! revision, and a read after every write it saw: the `floor` below.

/// An interned key (its index in the sorted key universe).
pub type Key = u32;
/// An interned value; ids are in byte order, so value compares work on them.
pub type Value = u32;
/// A revision that is not known (an indeterminate write's).
pub const UNKNOWN: i64 = -1;

/// A key's live version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Kv {
    pub value: Value,
    pub create: i64,
    pub modified: i64,
    pub version: i64,
}

impl Kv {
    /// Whether what a client read (`seen`, all fields known) can be this
    /// version (unknown revisions match any).
    pub fn admits(&self, seen: &Kv) -> bool {
        let rev = |model: i64, seen: i64| model == UNKNOWN || model == seen;
        self.value == seen.value
            && self.version == seen.version
            && rev(self.create, seen.create)
            && rev(self.modified, seen.modified)
    }
}

/// One key's state along a linearization.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyState {
    pub kv: Option<Kv>,
    /// The highest revision an operation linearized so far returned.
    pub floor: i64,
}

/// What a compare looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Version,
    Create,
    Mod,
    Value,
}

/// A txn guard on this key: `target cmp operand` must give `ordering`
/// (or, when `negate`, anything but it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Guard {
    pub target: Target,
    pub ordering: std::cmp::Ordering,
    pub negate: bool,
    /// A number, or a value id for value compares.
    pub operand: i64,
}

impl Guard {
    /// Whether the guard holds (`None`: it reads a revision the model does
    /// not know).
    pub fn holds(&self, kv: Option<&Kv>) -> Option<bool> {
        let field = |f: fn(&Kv) -> i64| kv.map_or(Some(0), |kv| Some(f(kv)).filter(|v| *v >= 0));
        let actual = match self.target {
            Target::Value => match kv {
                Some(kv) => Some(i64::from(kv.value)),
                None => return Some(false),
            },
            Target::Version => field(|kv| kv.version),
            Target::Create => field(|kv| kv.create),
            Target::Mod => field(|kv| kv.modified),
        }?;
        Some((actual.cmp(&self.operand) == self.ordering) != self.negate)
    }
}

/// What a delete must have found on this key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Found {
    Any,
    Present,
    Absent,
}

/// One step of an operation on one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// The guards on this key must all hold (`true`) or not all hold.
    Guards {
        guards: Vec<Guard>,
        all_hold: bool,
    },
    Put(Value),
    Delete(Found),
    /// A read of the key; `None`: what it returned is not known.
    Read(Option<Option<Kv>>),
}

/// An operation projected onto one key.
#[derive(Debug, Clone)]
pub struct KeyOp {
    /// The recorded operation it comes from.
    pub op: usize,
    /// The revision it returned, if known.
    pub stamp: Option<i64>,
    /// The ways it may have gone (one when its outcome is known).
    pub branches: Vec<Vec<Action>>,
}

/// The states `op` may lead to from `state` (none: it cannot be linearized
/// here).
pub fn step(state: &KeyState, op: &KeyOp, out: &mut Vec<KeyState>) {
    for branch in &op.branches {
        if let Some(next) = run_branch(state, op.stamp, branch) {
            out.push(next);
        }
    }
}

fn run_branch(state: &KeyState, stamp: Option<i64>, actions: &[Action]) -> Option<KeyState> {
    let mut s = *state;
    let mut wrote = false;
    let new_rev = stamp.unwrap_or(UNKNOWN);
    for action in actions {
        match action {
            Action::Guards { guards, all_hold } => {
                let mut all = Some(true);
                for g in guards {
                    all = match (all, g.holds(s.kv.as_ref())) {
                        (Some(false), _) | (_, Some(false)) => Some(false),
                        (Some(true), Some(true)) => Some(true),
                        _ => None,
                    };
                }
                if all.is_some_and(|a| a != *all_hold) {
                    return None;
                }
            }
            Action::Put(value) => {
                s.kv = Some(match s.kv {
                    Some(kv) => Kv {
                        value: *value,
                        modified: new_rev,
                        version: kv.version + 1,
                        create: kv.create,
                    },
                    None => Kv {
                        value: *value,
                        create: new_rev,
                        modified: new_rev,
                        version: 1,
                    },
                });
                wrote = true;
            }
            Action::Delete(found) => {
                match (found, s.kv.is_some()) {
                    (Found::Present, false) | (Found::Absent, true) => return None,
                    _ => {}
                }
                wrote |= s.kv.take().is_some();
            }
            Action::Read(Some(seen)) => match (s.kv, seen) {
                (None, None) => {}
                (Some(kv), Some(seen)) if kv.admits(seen) => s.kv = Some(*seen),
                _ => return None,
            },
            Action::Read(None) => {}
        }
    }
    if let Some(rev) = stamp {
        if (wrote && s.floor >= rev) || s.floor > rev {
            return None;
        }
        s.floor = rev;
    }
    Some(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(stamp: Option<i64>, actions: Vec<Action>) -> KeyOp {
        KeyOp {
            op: 0,
            stamp,
            branches: vec![actions],
        }
    }

    fn next(state: &KeyState, op: &KeyOp) -> Vec<KeyState> {
        let mut out = Vec::new();
        step(state, op, &mut out);
        out
    }

    #[test]
    fn a_put_sets_revisions_and_a_read_must_see_them() {
        let start = KeyState::default();
        let put = op(Some(5), vec![Action::Put(7)]);
        let after = next(&start, &put);
        let kv = Kv {
            value: 7,
            create: 5,
            modified: 5,
            version: 1,
        };
        assert_eq!(after[0].kv, Some(kv));
        let read = op(Some(6), vec![Action::Read(Some(Some(kv)))]);
        assert_eq!(next(&after[0], &read).len(), 1);
        let stale = op(Some(6), vec![Action::Read(Some(None))]);
        assert!(next(&after[0], &stale).is_empty());
        // A read that returned an older revision cannot follow the put.
        let old = op(Some(4), vec![Action::Read(Some(None))]);
        assert!(next(&after[0], &old).is_empty());
    }

    #[test]
    fn an_unknown_revision_is_learned_from_the_first_read() {
        let start = KeyState::default();
        let put = op(None, vec![Action::Put(1)]);
        let after = next(&start, &put);
        let seen = Kv {
            value: 1,
            create: 9,
            modified: 9,
            version: 1,
        };
        let read = op(Some(9), vec![Action::Read(Some(Some(seen)))]);
        let learned = next(&after[0], &read);
        assert_eq!(learned[0].kv, Some(seen));
    }

    #[test]
    fn a_guard_on_an_unknown_revision_admits_both_outcomes() {
        let kv = Kv {
            value: 1,
            create: UNKNOWN,
            modified: UNKNOWN,
            version: 1,
        };
        let guard = Guard {
            target: Target::Mod,
            ordering: std::cmp::Ordering::Equal,
            negate: false,
            operand: 3,
        };
        assert_eq!(guard.holds(Some(&kv)), None);
        let version = Guard {
            target: Target::Version,
            ..guard
        };
        assert_eq!(version.holds(Some(&kv)), Some(false));
        assert_eq!(version.holds(None), Some(false));
    }
}
