//! Consistency checks run at every boot, enabled by `REPLICA_VERIFY=all`
//! (etcd's `ETCD_VERIFY`). They are on in every test (`.cargo/config.toml`
//! sets the variable) and in the simulator. A failed check is a value that
//! names both numbers, so a divergence is reported where it is first seen.

use crate::proto::HardState;
use std::fmt;

/// The environment variable that enables the checks.
pub const VERIFY_ENV: &str = "REPLICA_VERIFY";

/// Whether boot-time checks run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum VerifyMode {
    #[default]
    Off,
    All,
}

impl VerifyMode {
    /// `All` when `REPLICA_VERIFY=all`, otherwise `Off`.
    pub fn from_env() -> VerifyMode {
        match std::env::var(VERIFY_ENV) {
            Ok(v) if v == "all" => VerifyMode::All,
            _ => VerifyMode::Off,
        }
    }

    pub fn enabled(self) -> bool {
        self == VerifyMode::All
    }
}

/// A violated invariant of the durable state.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error(
        "backend consistent index {consistent_index} is behind the latest v2 snapshot index {snapshot_index}: entries between them are in neither"
    )]
    BackendBehindSnapshot {
        consistent_index: u64,
        snapshot_index: u64,
    },
    #[error(
        "backend consistent index {consistent_index} is ahead of the WAL's hard state commit {commit}: the backend applied uncommitted entries"
    )]
    BackendAheadOfCommit { consistent_index: u64, commit: u64 },
    #[error("backend term {backend_term} is ahead of the WAL's hard state term {hard_state_term}")]
    BackendTermAhead {
        backend_term: u64,
        hard_state_term: u64,
    },
    #[error("v2 store index went back from {before} to {after} across a restart")]
    V2IndexDecreased { before: u64, after: u64 },
    #[error("WAL: {0}")]
    WalChain(String),
    #[error(
        "WAL hard state commit {commit} is past the last entry {last_index}: committed entries are missing"
    )]
    CommitPastLog { commit: u64, last_index: u64 },
}

/// What the checks look at on boot, before replay.
#[derive(Clone, Copy, Debug)]
pub struct BootFacts {
    pub consistent_index: u64,
    pub consistent_term: u64,
    pub snapshot_index: u64,
    pub hard_state: HardState,
    /// The index of the last entry in the WAL (or the snapshot's, if none).
    pub last_index: u64,
}

impl fmt::Display for BootFacts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "consistent index {} (term {}), snapshot index {}, hard state commit {} term {}, last index {}",
            self.consistent_index,
            self.consistent_term,
            self.snapshot_index,
            self.hard_state.commit,
            self.hard_state.term,
            self.last_index
        )
    }
}

/// The boot-time invariants between the backend, the snapshot and the WAL.
pub fn check_boot(facts: &BootFacts) -> Result<(), VerifyError> {
    if facts.consistent_index < facts.snapshot_index {
        return Err(VerifyError::BackendBehindSnapshot {
            consistent_index: facts.consistent_index,
            snapshot_index: facts.snapshot_index,
        });
    }
    if facts.consistent_index > facts.hard_state.commit {
        return Err(VerifyError::BackendAheadOfCommit {
            consistent_index: facts.consistent_index,
            commit: facts.hard_state.commit,
        });
    }
    if facts.consistent_term > facts.hard_state.term {
        return Err(VerifyError::BackendTermAhead {
            backend_term: facts.consistent_term,
            hard_state_term: facts.hard_state.term,
        });
    }
    if facts.hard_state.commit > facts.last_index {
        return Err(VerifyError::CommitPastLog {
            commit: facts.hard_state.commit,
            last_index: facts.last_index,
        });
    }
    Ok(())
}

/// The v2 index must never go back across a restart (the caller keeps the
/// index it saw before the restart).
pub fn check_v2_index(before: u64, after: u64) -> Result<(), VerifyError> {
    if after < before {
        return Err(VerifyError::V2IndexDecreased { before, after });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts() -> BootFacts {
        BootFacts {
            consistent_index: 10,
            consistent_term: 2,
            snapshot_index: 5,
            hard_state: HardState {
                term: 3,
                vote: 1,
                commit: 12,
            },
            last_index: 15,
        }
    }

    #[test]
    fn consistent_state_passes() {
        assert_eq!(check_boot(&facts()), Ok(()));
        assert_eq!(check_v2_index(4, 4), Ok(()));
    }

    #[test]
    fn backend_behind_snapshot_names_both_indexes() {
        let f = BootFacts {
            consistent_index: 4,
            ..facts()
        };
        let err = check_boot(&f).unwrap_err();
        assert_eq!(
            err,
            VerifyError::BackendBehindSnapshot {
                consistent_index: 4,
                snapshot_index: 5
            }
        );
        let msg = err.to_string();
        assert!(msg.contains(" 4 ") && msg.contains(" 5"), "{msg}");
    }

    #[test]
    fn backend_ahead_of_commit_names_both_indexes() {
        let f = BootFacts {
            consistent_index: 13,
            ..facts()
        };
        let msg = check_boot(&f).unwrap_err().to_string();
        assert!(msg.contains("13") && msg.contains("12"), "{msg}");
    }

    #[test]
    fn backend_term_ahead_names_both_terms() {
        let f = BootFacts {
            consistent_term: 4,
            ..facts()
        };
        assert_eq!(
            check_boot(&f),
            Err(VerifyError::BackendTermAhead {
                backend_term: 4,
                hard_state_term: 3
            })
        );
    }

    #[test]
    fn commit_past_log_is_reported() {
        let f = BootFacts {
            last_index: 11,
            ..facts()
        };
        assert_eq!(
            check_boot(&f),
            Err(VerifyError::CommitPastLog {
                commit: 12,
                last_index: 11
            })
        );
    }

    #[test]
    fn v2_index_decrease_names_both_indexes() {
        let err = check_v2_index(9, 7).unwrap_err();
        assert_eq!(
            err,
            VerifyError::V2IndexDecreased {
                before: 9,
                after: 7
            }
        );
        assert!(err.to_string().contains("from 9 to 7"));
    }
}
