//! Shrinking: the result is smaller, is a valid scenario file, and still
//! fails the same way; a passing scenario has nothing to shrink.

use replica::bugs::KnownBugs;
use sim::scenario::{self, Scenario};
use sim::shrink;

fn catalogue(name: &str) -> Scenario {
    Scenario::load(&scenario::find(name).unwrap()).unwrap()
}

#[test]
fn a_passing_scenario_has_nothing_to_shrink() {
    let s = catalogue("04-backend-ahead-of-snapshot");
    let err = shrink::shrink(&s, s.seed, KnownBugs::NONE).unwrap_err();
    assert!(err.contains("nothing to shrink"), "{err}");
}

#[cfg(feature = "known-bugs")]
#[test]
fn a_shrunk_scenario_is_smaller_and_reproduces_the_failure() {
    use replica::bugs::Bug;
    let mut bugs = KnownBugs::NONE;
    bugs.enable(Bug::CindexBeforeApply).unwrap();
    let original = catalogue("12-crash-during-replay");
    let shrunk = shrink::shrink(&original, original.seed, bugs).unwrap();
    assert!(
        shrunk.steps_after < shrunk.steps_before,
        "{} -> {}",
        shrunk.steps_before,
        shrunk.steps_after
    );
    // Written out and read back, with no randomness left, it still fails
    // with the same invariant.
    let text = shrink::to_toml(&shrunk.scenario).unwrap();
    let reread = Scenario::parse(&text).unwrap();
    assert!(reread.random.is_none());
    let report = reread.run(reread.seed, bugs, false);
    assert!(
        report
            .violations
            .iter()
            .any(|v| v.invariant == shrunk.invariant),
        "{}",
        report.failure_report()
    );
    // Deterministic: shrinking again gives the same steps.
    let again = shrink::shrink(&original, original.seed, bugs).unwrap();
    assert_eq!(
        shrink::to_toml(&again.scenario).unwrap(),
        text,
        "shrinking is deterministic"
    );
}

#[cfg(feature = "known-bugs")]
#[test]
fn shrinking_reduces_members_to_three_when_the_failure_allows() {
    use replica::bugs::Bug;
    let mut bugs = KnownBugs::NONE;
    bugs.enable(Bug::CindexBeforeApply).unwrap();
    let mut five = catalogue("12-crash-during-replay");
    five.nodes = 5;
    let shrunk = shrink::shrink(&five, five.seed, bugs).unwrap();
    assert_eq!(shrunk.scenario.nodes, 3);
}
