//! Coverage probes: named rare states a test run should reach, so that a
//! green run can also say *what was tested*.
//!
//! The store reports a probe through `CrashHook::probe` (in
//! `crash_point.rs`, which imports this module) when it passes one of these
//! states. The default does nothing (the same
//! empty virtual call as a crash point that is never armed), so a real
//! member pays nothing; the simulator's hook counts the hits per run. Probes
//! the harness observes itself (a crash inside a redb commit, by phase) are
//! listed here too, so that this table is the one list of named probes; the
//! simulator adds one probe per crash point and per run statistic.
//!
//! Adding a probe is one line in the table below, plus the call at its
//! state.

/// Declares the probe table: variant, stable name, one-line description.
macro_rules! probes {
    ($($variant:ident = $name:literal: $description:literal,)*) => {
        /// A named state a run may reach.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Probe {
            $($variant,)*
        }

        impl Probe {
            /// Every probe, in table order.
            pub const ALL: &'static [Probe] = &[$(Probe::$variant,)*];

            /// The stable name reports and the expected-hits file use.
            pub fn name(self) -> &'static str {
                match self {
                    $(Probe::$variant => $name,)*
                }
            }

            /// What reaching it means, in one line.
            pub fn description(self) -> &'static str {
                match self {
                    $(Probe::$variant => $description,)*
                }
            }
        }
    };
}

probes! {
    BootBackendAheadOfSnapshot = "boot.backend_ahead_of_snapshot":
        "a boot found the backend's consistent index past the snapshot it started from",
    BootConsistentIndexAtCommit = "boot.consistent_index_at_commit":
        "a boot found the consistent index exactly at the saved hard-state commit, past the snapshot (verify's ci <= commit boundary)",
    BootInstallFinished = "boot.snapshot_install_finished":
        "a boot finished a leader-snapshot install that a crash interrupted after its WAL marker",
    ReplayV3Skipped = "replay.v3_skipped":
        "boot replayed a committed entry whose v3 half the backend already held (v2 only)",
    ReplayV3Applied = "replay.v3_applied":
        "boot replayed a committed entry past the consistent index (v2 and v3)",
    ReplayConfChangeOverBackend = "replay.conf_change_over_backend":
        "a conf change was replayed over a backend that already held it",
    WalTornTailRepaired = "wal.torn_tail_repaired":
        "opening the WAL truncated a torn tail of its last segment",
    SnapshotToEmptyLog = "install.leader_snapshot_to_empty_log":
        "a follower with no log entries past its snapshot installed a leader's snapshot",
    RedbCrashBeforeHeader = "redb_commit.crash_before_header":
        "harness: a crash inside a redb commit before its header write landed",
    RedbCrashBetweenHeaderAndPages = "redb_commit.crash_between_header_and_pages":
        "harness: a crash inside a redb commit at a page write after the header landed",
    RedbCrashAtSync = "redb_commit.crash_at_sync":
        "harness: a crash inside a redb commit at its fsync (header and pages written, not synced)",
    RedbCrashAfterSync = "redb_commit.crash_after_sync":
        "harness: a crash inside a redb commit after its fsync, before the commit returned",
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_described() {
        let mut names: Vec<&str> = Probe::ALL.iter().map(|p| p.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Probe::ALL.len());
        assert!(Probe::ALL.iter().all(|p| !p.description().is_empty()));
    }
}
