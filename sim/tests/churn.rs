//! Membership churn in random runs: seeded, recorded as scenario steps,
//! and passing the invariants; the share of seeds with each kind.

use sim::config::RunConfig;
use sim::scenario_file::Step;

/// Seed 14 adds two learners, promotes them and removes two members (with
/// leader transfers); seed 4 replaces a member.
#[test]
fn random_runs_add_promote_remove_replace_and_transfer() {
    let cycle = sim::run::run(&RunConfig::new(14));
    assert!(cycle.passed(), "{}", cycle.failure_report());
    let s = &cycle.stats;
    assert!(
        s.learners_added >= 1 && s.promotions >= 1 && s.members_removed >= 1,
        "{}",
        cycle.summary()
    );
    assert!(s.leader_transfers >= 1, "{}", cycle.summary());
    let recorded =
        |r: &sim::run::RunReport, f: fn(&Step) -> bool| r.schedule.iter().any(|t| f(&t.step));
    assert!(recorded(&cycle, |s| matches!(
        s,
        Step::AddMember { learner: true, .. }
    )));
    assert!(recorded(&cycle, |s| matches!(
        s,
        Step::PromoteMember { .. }
    )));
    assert!(recorded(&cycle, |s| matches!(s, Step::RemoveMember { .. })));
    assert!(recorded(&cycle, |s| matches!(
        s,
        Step::TransferLeader { .. }
    )));

    let replace = sim::run::run(&RunConfig::new(4));
    assert!(replace.passed(), "{}", replace.failure_report());
    assert_eq!(replace.stats.members_replaced, 1, "{}", replace.summary());
    assert!(recorded(&replace, |s| matches!(
        s,
        Step::AddMember { learner: false, .. }
    )));
}

/// The same seed churns the same way twice.
#[test]
fn churn_is_deterministic() {
    let a = sim::run::run(&RunConfig::new(16));
    let b = sim::run::run(&RunConfig::new(16));
    assert_eq!(a.trace_hash, b.trace_hash);
    assert!(a.stats.members_added > 0);
}
