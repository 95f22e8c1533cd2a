//! `sim explore`: every crash state at a member's syncs during a scenario.

use replica::bugs::KnownBugs;
use sim::explore::{CaptureSink, ExploreReport, explore};
use sim::scenario::{self, Scenario};

fn explore_scenario(name: &str, bugs: KnownBugs) -> ExploreReport {
    let sc = Scenario::load(&scenario::find(name).unwrap()).unwrap();
    let sink = CaptureSink::new(2, 100, false);
    let mut cfg = sc.config(sc.seed, bugs, false);
    cfg.capture = Some(sink.clone());
    let run = sc.run_config(cfg.clone());
    if bugs.enabled().is_empty() {
        assert!(run.passed(), "{}", run.failure_report());
    }
    explore(&cfg, &sink, 2_000)
}

#[test]
fn every_crash_state_of_a_correct_store_boots_to_the_runs_state() {
    let report = explore_scenario("12-crash-during-replay", KnownBugs::NONE);
    assert!(report.sync_points > 20, "{report:?}");
    assert!(report.states > 200, "{report:?}");
    assert!(report.compared > 200, "{report:?}");
    assert!(report.failures.is_empty(), "{:?}", report.failures.first());
}

#[cfg(feature = "known-bugs")]
#[test]
fn explore_finds_the_consistent_index_bugs() {
    use replica::bugs::Bug;
    for bug in [Bug::CindexBeforeApply, Bug::CindexOnlyOnExplicitCommit] {
        let mut bugs = KnownBugs::NONE;
        bugs.enable(bug).unwrap();
        let report = explore_scenario("12-crash-during-replay", bugs);
        assert!(!report.failures.is_empty(), "{bug:?}: {report:?}");
    }
}

/// Explores `name`'s member 2 with a process crash before every disk
/// operation (power-loss states off).
fn explore_process_crashes(name: &str, bugs: KnownBugs) -> sim::explore::ProcessReport {
    let sc = Scenario::load(&scenario::find(name).unwrap()).unwrap();
    let mut cfg = sc.config(sc.seed, bugs, false);
    let store = cfg.node_config(2).store;
    let sink = CaptureSink::with_process_crashes(2, 0, false, store, 5_000);
    cfg.capture = Some(sink.clone());
    sc.run_config(cfg.clone());
    explore(&cfg, &sink, 0)
        .process
        .expect("process crashes were asked for")
}

#[test]
fn every_process_crash_state_of_a_correct_store_boots_to_the_runs_state() {
    let report = explore_process_crashes("12-crash-during-replay", KnownBugs::NONE);
    assert!(report.states > 100, "{report:?}");
    assert!(
        report.booted > 50 && report.booted < report.states,
        "{report:?}"
    );
    assert!(report.compared > 5, "{report:?}");
    assert!(report.failures.is_empty(), "{:?}", report.failures.first());
}

#[cfg(feature = "known-bugs")]
#[test]
fn process_crash_states_find_the_consistent_index_bugs() {
    use replica::bugs::Bug;
    for bug in [Bug::CindexBeforeApply, Bug::CindexOnlyOnExplicitCommit] {
        let mut bugs = KnownBugs::NONE;
        bugs.enable(bug).unwrap();
        let report = explore_process_crashes("12-crash-during-replay", bugs);
        assert!(!report.failures.is_empty(), "{bug:?}: {report:?}");
    }
}

/// Runs scenario `name` and boots every combination of the members'
/// power-loss states at the first sync after each of `instants`.
fn explore_cluster_of(
    name: &str,
    bugs: KnownBugs,
    instants: &[u64],
) -> sim::explore::ClusterReport {
    use sim::explore::{ClusterOptions, ClusterSink, explore_cluster};
    let sc = Scenario::load(&scenario::find(name).unwrap()).unwrap();
    let mut cfg = sc.config(sc.seed, bugs, false);
    let sink = ClusterSink::new(instants.to_vec());
    cfg.capture = Some(sink.clone());
    let run = sc.run_config(cfg.clone());
    if bugs.enabled().is_empty() {
        assert!(run.passed(), "{}", run.failure_report());
    }
    let opts = ClusterOptions {
        per_member: 3,
        max_combinations: 16,
        only: None,
        jobs: 1,
    };
    explore_cluster(&cfg, &sink, opts)
}

#[test]
fn every_cluster_crash_combination_of_a_correct_store_keeps_the_acknowledged_writes() {
    // Two cluster power cuts while writes are in flight.
    let report = explore_cluster_of(
        "14-cluster-power-cut",
        KnownBugs::NONE,
        &[150, 200, 250, 300, 350],
    );
    assert_eq!(report.instants.len(), 5, "{report:?}");
    // Writes were pending at each cut: some member had several states.
    assert!(
        report.instants.iter().all(|i| i.combinations > 1),
        "{report:?}"
    );
    assert!(report.instants.iter().any(|i| i.acked > 0), "{report:?}");
    assert!(report.booted() >= 10, "{report:?}");
    assert!(report.failures.is_empty(), "{:?}", report.failures.first());
}

/// Each check of a booted combination trips on a known bug: durability (a
/// write acknowledged before the power loss is gone from every member:
/// the scenario's own run passes), restart equivalence against the run's
/// state per index, and recovery.
#[cfg(feature = "known-bugs")]
#[test]
fn cluster_crash_combinations_find_a_lost_acknowledged_write_and_other_bugs() {
    use replica::bugs::Bug;
    for (bug, name, at, check) in [
        (Bug::CindexBeforeApply, "29-slow-disks", 500, "durability"),
        (
            Bug::V2SkippedWithV3,
            "14-cluster-power-cut",
            300,
            "restart equivalence",
        ),
        (
            Bug::CindexOnlyOnExplicitCommit,
            "14-cluster-power-cut",
            150,
            "recovery",
        ),
    ] {
        let mut bugs = KnownBugs::NONE;
        bugs.enable(bug).unwrap();
        let report = explore_cluster_of(name, bugs, &[at]);
        let found = report
            .failures
            .iter()
            .any(|f| f.problems.iter().any(|p| p.starts_with(check)));
        assert!(found, "{bug:?}: {report:?}");
    }
}
