//! The client-side oracle end to end: the random workload reads, the
//! checker searches every key within its budget, scripted reads parse and
//! run, and the stale-read switches are caught by the client history alone
//! (the replicas agree with each other and with their own past).

use replica::bugs::KnownBugs;
use sim::checker::Invariant;
use sim::config::RunConfig;
use sim::scenario::Scenario;

fn scenario(steps: &str) -> Scenario {
    let text = format!("name = \"reads\"\ndescription = \"read steps\"\n{steps}");
    Scenario::parse(&text).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn the_random_run_reads_and_its_history_is_searched_within_budget() {
    let report = sim::run::run(&RunConfig::new(1));
    assert!(report.passed(), "{}", report.failure_report());
    let s = &report.stats;
    let reads = s.linearizable_reads + s.serializable_reads;
    assert!(
        reads * 5 >= reads + s.requests,
        "reads are at least a fifth of the operations: {}",
        report.summary()
    );
    assert!(s.linearizable_reads > 0 && s.serializable_reads > 0);
    assert!(report.clients.keys >= 20, "every key is searched");
    assert!(s.linearize_steps > 0);
    assert_eq!(s.linearize_unknown, 0);
    assert!(report.summary().contains("linearizable and"));
}

#[test]
fn read_steps_parse_and_run() {
    let s = scenario(
        r#"
[[step]]
action = "put"
key = "a"
value = "1"

[[step]]
action = "range"
key = "a"

[[step]]
action = "range"
key = "a"
range_end = "b"
serializable = true
member = "follower"

[[step]]
action = "range"
key = "a"
revision = 1

[[step]]
action = "compact"
revision = 2

[[step]]
action = "range"
key = "a"
revision = 1
"#,
    );
    let report = s.run(1, KnownBugs::NONE, false);
    assert!(report.passed(), "{}", report.failure_report());
    assert_eq!(report.stats.linearizable_reads, 3);
    assert_eq!(report.stats.serializable_reads, 1);
}

#[test]
fn a_malformed_read_step_is_refused() {
    let text = "name = \"x\"\ndescription = \"x\"\n[[step]]\naction = \"range\"\nkey = \"a\"\nmember = \"nobody\"\n";
    assert!(Scenario::parse(text).is_err());
}

#[cfg(feature = "known-bugs")]
mod known_bugs {
    use super::*;
    use replica::bugs::Bug;
    use sim::run::RunReport;

    fn with(bug: Bug) -> KnownBugs {
        let mut bugs = KnownBugs::NONE;
        bugs.enable(bug).expect("built with known-bugs");
        bugs
    }

    fn catalogue(name: &str) -> Scenario {
        let path = sim::scenario::find(name).unwrap_or_else(|e| panic!("{e}"));
        Scenario::load(&path).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Caught by the client history and by nothing else: the replicas
    /// converge and agree entry by entry.
    fn only_the_client_history(report: &RunReport) {
        let text = report.failure_report();
        assert!(!report.passed(), "the stale read must be caught");
        assert!(
            report.violations.iter().all(|v| matches!(
                v.invariant,
                Invariant::Linearizability | Invariant::SerializableReads
            )),
            "only the client history may fail: {text}"
        );
    }

    /// Runs a catalogue scenario with `bug` on: caught by the client history
    /// alone; returns the failure report. (The scenario's wall time, < 5 s,
    /// is measured by `ci/known-bugs.sh`, not asserted here: a timed test
    /// fails on a loaded machine.)
    fn caught_by_clients_alone(name: &str, bug: Bug) -> RunReport {
        let s = catalogue(name);
        let report = s.run(s.seed, with(bug), false);
        only_the_client_history(&report);
        let clean = s.run(s.seed, KnownBugs::NONE, false);
        assert!(clean.passed(), "{}", clean.failure_report());
        report
    }

    /// A `check` step runs the client check on the history so far: the
    /// read answered past a compaction is reported at the step, seconds
    /// before the run ends (its detail says so).
    #[test]
    fn a_check_step_reports_a_client_violation_at_its_time() {
        let s = scenario(
            r#"
[random]
duration_ms = 0
faults = []
workload = false

[[step]]
action = "puts"
count = 4
prefix = "c"

[[step]]
action = "compact"
revision = "current - 1"

[[step]]
action = "range"
key = "c000"
revision = 2

[[step]]
action = "check"

[[step]]
action = "wait"
ms = 3000

[[step]]
action = "put"
key = "z"
value = "1"
"#,
        );
        let report = s.run(1, with(Bug::RangeRevisionUnchecked), false);
        only_the_client_history(&report);
        let v = &report.violations[0];
        assert!(v.detail.starts_with("at the check step at"), "{v:?}");
        assert!(
            v.time_ms + 2_900 <= report.simulated_ms,
            "reported at the check step ({} ms), not at the end ({} ms)",
            v.time_ms,
            report.simulated_ms
        );
        assert_eq!(
            report.violations.len(),
            1,
            "the end of the run adds no duplicate"
        );
        let clean = s.run(1, KnownBugs::NONE, false);
        assert!(clean.passed(), "{}", clean.failure_report());
    }

    /// A stale read after a restore is still caught: the history's restore
    /// handling (writes past the restored revision given up) masks nothing
    /// after it. A snapshot restore and a backup restore, each followed by
    /// scenario 22's rejoin-and-read block under `read-index-before-apply`;
    /// the failing operations are all on keys written after the restore.
    #[test]
    fn a_stale_read_after_a_restore_is_caught() {
        for restore in [
            "action = \"snapshot_restore\"\nfrom = \"leader\"",
            "action = \"backup_restore\"\nmember = \"follower\"",
        ] {
            let s = scenario(&format!(
                r#"
[network]
packet_loss = 0.0
max_latency_ms = 40

[random]
duration_ms = 0
faults = []
workload = false

[[step]]
action = "puts"
count = 10
prefix = "old"

[[step]]
action = "wait_converged"

[[step]]
{restore}

[[step]]
action = "wait_converged"

[[step]]
action = "repeat"
times = 12
  [[step.steps]]
  action = "isolate"
  member = "follower"

  [[step.steps]]
  action = "puts"
  count = 20
  prefix = "a"
  value_bytes = 2000

  [[step.steps]]
  action = "heal"

  [[step.steps]]
  action = "wait"
  ms = 1

  [[step.steps]]
  action = "range"
  key = "a000"
  member = "isolated"

[[step]]
action = "check"
"#
            ));
            let clean = s.run(22, KnownBugs::NONE, false);
            assert!(clean.passed(), "{restore}: {}", clean.failure_report());
            assert_eq!(
                clean.stats.snapshot_restores + clean.stats.backup_restores,
                1,
                "{restore}"
            );
            let report = s.run(22, with(Bug::ReadIndexBeforeApply), false);
            only_the_client_history(&report);
            let history = report.clients.history.as_ref().expect("kept on failure");
            for f in &report.clients.failures {
                for &op in &f.ops {
                    let shown = sim::linearize::describe(&history.ops[op]);
                    assert!(!shown.contains("old"), "{restore}: {shown}");
                }
            }
        }
    }

    /// Serializable-monotonic: a restarted member's reads from before its
    /// replay are true past states, so only the session's order sees them.
    #[test]
    fn serializable_read_before_replay_is_caught_by_the_session_order_alone() {
        let text = caught_by_clients_alone(
            "31-serializable-read-before-replay",
            Bug::SerializableReadBeforeReplay,
        )
        .failure_report();
        assert!(
            text.contains("VIOLATION serializable-reads")
                && text.contains("went back from revision"),
            "{text}"
        );
        assert!(
            !text.contains("where the writes in revision order leave"),
            "{text}"
        );
    }

    /// Compacted and future-revision errors: both reads of scenario 32 are
    /// answered with data, and both are reported.
    #[test]
    fn range_revision_unchecked_is_caught_by_the_revision_errors_alone() {
        let report =
            caught_by_clients_alone("32-range-revision-unchecked", Bug::RangeRevisionUnchecked);
        let details: Vec<&str> = report
            .clients
            .failures
            .iter()
            .map(|f| f.detail.as_str())
            .collect();
        assert!(
            details
                .iter()
                .any(|d| d.contains("succeeded after a compaction to")),
            "{details:?}"
        );
        assert!(
            details
                .iter()
                .any(|d| d.starts_with("a read at revision 1000 answered \"ok\"")),
            "{details:?}"
        );
    }

    /// Two writes claiming one revision: every member reuses it alike.
    #[test]
    fn revision_not_restored_after_compaction_is_caught_as_a_reused_revision() {
        let text = caught_by_clients_alone(
            "33-revision-reuse-after-compaction",
            Bug::RevisionNotRestoredAfterCompaction,
        )
        .failure_report();
        assert!(text.contains("two writes returned revision"), "{text}");
    }

    /// Catalogue scenario `name` with its one `action` step and the one
    /// expectation of `stat` taken out.
    fn without_step(name: &str, action: &str, stat: &str) -> Scenario {
        let path = sim::scenario::find(name).unwrap_or_else(|e| panic!("{e}"));
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{e}"));
        let blocks: Vec<&str> = text.split("[[step]]").collect();
        let kept: Vec<&str> = blocks
            .iter()
            .copied()
            .filter(|b| {
                !b.contains(&format!("action = \"{action}\""))
                    && !b.contains(&format!("stat = \"{stat}\""))
            })
            .collect();
        assert_eq!(
            kept.len() + 2,
            blocks.len(),
            "one {action} step, one expect"
        );
        Scenario::parse(&kept.join("[[step]]")).unwrap_or_else(|e| panic!("{e}"))
    }

    /// The tick-timed lease is caught by the client history alone, and only
    /// because the leader's disk stalls: without the slow step the lease
    /// runs out before the followers may elect anyone, and the read at the
    /// isolated old leader goes through a read index that cannot be
    /// confirmed (the client then asks the new leader).
    #[test]
    fn lease_read_timed_by_ticks_is_caught_by_scenario_34_only_with_its_slow_disk() {
        let report =
            caught_by_clients_alone("34-lease-read-on-a-slow-leader", Bug::LeaseReadTimedByTicks);
        let failure = &report.clients.failures[0];
        assert_eq!(failure.kind, sim::linearize::Kind::Linearizability);
        let history = report.clients.history.as_ref().expect("kept on failure");
        let shown: Vec<String> = failure
            .ops
            .iter()
            .map(|&op| sim::linearize::describe(&history.ops[op]))
            .collect();
        assert!(
            shown.iter().any(|o| o.contains("put a=new"))
                && shown
                    .iter()
                    .any(|o| o.contains("range a") && o.contains("a=old")),
            "the write through the new leader, then the old value: {shown:?}"
        );
        let s = without_step("34-lease-read-on-a-slow-leader", "slow", "slow_disks");
        let report = s.run(s.seed, with(Bug::LeaseReadTimedByTicks), false);
        assert!(report.passed(), "{}", report.failure_report());
        assert_eq!(report.stats.slow_disks, 0);
    }

    /// The same for a paused process: scenario 35 catches the lease only
    /// with its `pause` step; without it the old leader keeps ticking, its
    /// lease runs out, and the read at it cannot be confirmed.
    #[test]
    fn lease_read_timed_by_ticks_is_caught_by_scenario_35_only_with_its_pause() {
        let report = caught_by_clients_alone(
            "35-lease-read-on-a-paused-leader",
            Bug::LeaseReadTimedByTicks,
        );
        assert_eq!(report.stats.pauses, 1);
        let s = without_step("35-lease-read-on-a-paused-leader", "pause", "pauses");
        let report = s.run(s.seed, with(Bug::LeaseReadTimedByTicks), false);
        assert!(report.passed(), "{}", report.failure_report());
        assert_eq!(report.stats.pauses, 0);
    }

    #[test]
    fn read_index_before_apply_is_caught_by_scenario_22_alone() {
        let s = catalogue("22-read-index-before-apply");
        let report = s.run(s.seed, with(Bug::ReadIndexBeforeApply), false);
        only_the_client_history(&report);
        let failure = &report.clients.failures[0];
        assert_eq!(failure.kind, sim::linearize::Kind::Linearizability);
        assert!(failure.ops.len() <= 4, "shrunk: {failure:?}");
        let history = report.clients.history.as_ref().expect("kept on failure");
        let page = sim::linearize::render("22", &history.ops, failure);
        assert!(page.contains("op bad") && page.contains("client 100"));
    }

    #[test]
    fn serializable_read_from_stale_snapshot_is_caught_by_scenario_23_alone() {
        let s = catalogue("23-serializable-read-stale-snapshot");
        let report = s.run(s.seed, with(Bug::SerializableReadFromStaleSnapshot), false);
        only_the_client_history(&report);
        assert!(
            report.violations[0]
                .detail
                .contains("where the writes in revision order leave"),
            "{}",
            report.failure_report()
        );
    }

    #[test]
    fn a_random_run_catches_a_stale_serializable_read() {
        let cfg = RunConfig {
            bugs: with(Bug::SerializableReadFromStaleSnapshot),
            ..RunConfig::new(1)
        };
        only_the_client_history(&sim::run::run(&cfg));
    }

    /// A lost acknowledged put: the client history alone sees it (a later
    /// read returns an older version), besides the durability check.
    #[test]
    fn a_random_run_with_a_lost_put_fails_linearizability() {
        let cfg = RunConfig {
            bugs: with(Bug::PutAckBeforeV3Write),
            ..RunConfig::new(1)
        };
        let report = sim::run::run(&cfg);
        assert!(
            report
                .violations
                .iter()
                .any(|v| v.invariant == Invariant::Linearizability),
            "{}",
            report.failure_report()
        );
    }
}
