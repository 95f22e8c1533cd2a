//! The oracle, end to end: durability is judged by what took effect (a
//! scripted delete excuses the put it removed), a store that loses an
//! acknowledged put fails with `Durability` (at the end, and at the boots
//! after the loss) and the client history, nothing else, and a boot that
//! comes up behind its own v2 index is a `Recovery` violation.

use replica::bugs::KnownBugs;
use sim::checker::Invariant;
use sim::scenario::Scenario;

fn scenario(steps: &str) -> Scenario {
    let text = format!("name = \"oracle\"\ndescription = \"oracle test\"\n{steps}");
    Scenario::parse(&text).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn a_scripted_put_then_delete_passes_the_check() {
    let s = scenario(
        r#"
[[step]]
action = "put"
key = "a"
value = "1"

[[step]]
action = "delete"
key = "a"

[[step]]
action = "check"
"#,
    );
    let report = s.run(1, KnownBugs::NONE, false);
    assert!(report.passed(), "{}", report.failure_report());
}

#[cfg(feature = "known-bugs")]
mod known_bugs {
    use super::*;
    use replica::bugs::Bug;
    use sim::config::RunConfig;
    use sim::run::RunReport;

    fn with(bug: Bug) -> KnownBugs {
        let mut bugs = KnownBugs::NONE;
        bugs.enable(bug).expect("built with known-bugs");
        bugs
    }

    /// Durability fails on every member (but a quarantined one), and nothing but the client-side
    /// checks fails beside it (the replicas agree with each other).
    fn only_durability(report: &RunReport) {
        let text = report.failure_report();
        assert!(!report.passed(), "the lost put must be caught");
        assert!(
            report.violations.iter().all(|v| matches!(
                v.invariant,
                Invariant::Durability | Invariant::Linearizability
            )),
            "only durability and the client history may fail (the replicas agree): {text}"
        );
        let members: std::collections::BTreeSet<_> = report
            .violations
            .iter()
            .filter(|v| v.invariant == Invariant::Durability)
            .map(|v| v.member)
            .collect();
        // A member quarantined on its damaged platter (a random run's bit
        // rot or misdirected write) is not checked.
        let checked = 3 - report.stats.quarantined as usize;
        assert_eq!(members.len(), checked, "checked on every member: {text}");
    }

    #[test]
    fn a_put_acknowledged_but_never_written_is_a_durability_violation() {
        let s = scenario(
            r#"
[[step]]
action = "put"
key = "p000"
value = "small"

[[step]]
action = "puts"
count = 1
prefix = "p"
value_bytes = 3000

[[step]]
action = "check"
"#,
        );
        let report = s.run(1, with(Bug::PutAckBeforeV3Write), false);
        only_durability(&report);
        let detail = &report.violations[0].detail;
        assert!(
            detail.contains("key p000: revision 2 holds \"small\""),
            "{detail}"
        );
        let clean = s.run(1, KnownBugs::NONE, false);
        assert!(clean.passed(), "{}", clean.failure_report());
    }

    #[test]
    fn a_random_run_catches_a_put_acknowledged_but_never_written() {
        let cfg = RunConfig {
            duration_ms: 3_000,
            bugs: with(Bug::PutAckBeforeV3Write),
            // The fixed three-member world, which `only_durability` counts.
            ..RunConfig::fixed(1)
        };
        let report = sim::run::run(&cfg);
        only_durability(&report);
        // Caught as soon as a member recovers without it, not only at the end.
        assert!(
            report
                .violations
                .iter()
                .any(|v| v.detail.starts_with("after its recovery")),
            "{}",
            report.failure_report()
        );
    }

    /// With the dual requests skipped on replay, the restarted member comes
    /// up with a lower v2 index than it had applied: caught at the boot.
    #[test]
    fn a_boot_behind_its_v2_index_is_a_recovery_violation() {
        let path = sim::scenario::find("04-backend-ahead-of-snapshot").unwrap();
        let s = Scenario::load(&path).unwrap_or_else(|e| panic!("{e}"));
        let report = s.run(s.seed, with(Bug::V2SkippedWithV3), false);
        let first = report.violations.first().expect("caught");
        assert_eq!(first.invariant, Invariant::Recovery, "{first:?}");
        assert!(
            first.detail.contains("v2 store index went back from"),
            "{}",
            first.detail
        );
    }

    fn catalogue(name: &str) -> Scenario {
        let path = sim::scenario::find(name).unwrap_or_else(|e| panic!("{e}"));
        Scenario::load(&path).unwrap_or_else(|e| panic!("{e}"))
    }

    /// The restart-equivalence violation a boot's replay of an entry whose
    /// v3 half it skipped reports, with the fields that differ.
    fn skipped_replay_violation(report: &RunReport) -> (String, Vec<String>) {
        let v = report
            .violations
            .iter()
            .find(|v| {
                v.invariant == Invariant::RestartEquivalence
                    && v.detail
                        .contains("replayed it at boot with its v3 half skipped")
            })
            .unwrap_or_else(|| panic!("no skipped-replay violation: {}", report.failure_report()));
        (
            v.detail.clone(),
            v.diffs.iter().map(|d| d.path.clone()).collect(),
        )
    }

    /// The consistent index published before the entry's writes: a batch
    /// commit persists the index without the writes, so the next boot skips
    /// the entry's v3 half over a backend that never got it. Restart
    /// equivalence sees it at that boot, on the entry: the backend's
    /// revision is not the revision the entry left on the other members.
    /// (Before replayed v3-skipped entries were fingerprinted only the
    /// final convergence check, on another member, caught this scenario.)
    #[test]
    fn a_backend_that_claims_an_entry_it_lacks_is_caught_at_the_replay() {
        let s = catalogue("12-crash-during-replay");
        let report = s.run(s.seed, with(Bug::CindexBeforeApply), false);
        let (detail, fields) = skipped_replay_violation(&report);
        assert!(detail.contains("or the backend's revision"), "{detail}");
        assert!(fields.iter().any(|f| f == ".revision"), "{fields:?}");
        let clean = s.run(s.seed, KnownBugs::NONE, false);
        assert!(clean.passed(), "{}", clean.failure_report());
        assert!(clean.stats.replay_skipped_fingerprinted > 0);
    }

    /// A replay that skips the v2 half of a dual request along with its v3
    /// half: caught at the boot, on the entry itself (the v2 index after
    /// it), not only entries later when the next applies differ.
    #[test]
    fn a_replay_that_skips_the_v2_half_is_caught_on_the_skipped_entry() {
        let s = catalogue("04-backend-ahead-of-snapshot");
        let report = s.run(s.seed, with(Bug::V2SkippedWithV3), false);
        let (_, fields) = skipped_replay_violation(&report);
        assert!(fields.iter().any(|f| f == ".v2_index"), "{fields:?}");
        let clean = s.run(s.seed, KnownBugs::NONE, false);
        assert!(clean.passed(), "{}", clean.failure_report());
        assert!(clean.stats.replay_skipped_fingerprinted >= 10);
    }
}
