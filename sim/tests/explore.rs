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
