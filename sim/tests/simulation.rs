//! The simulator, end to end: determinism, a run of consecutive seeds, and
//! a known bug that the invariants must catch.

use sim::config::RunConfig;
use sim::run::run;

fn short(seed: u64) -> RunConfig {
    RunConfig {
        duration_ms: 3_000,
        ..RunConfig::new(seed)
    }
}

#[test]
fn the_same_seed_twice_gives_the_same_trace_for_50_seeds() {
    let mut distinct = std::collections::BTreeSet::new();
    for seed in 1..=50 {
        let cfg = short(seed);
        let a = run(&cfg);
        let b = run(&cfg);
        assert_eq!(
            (a.trace_hash, a.trace_events),
            (b.trace_hash, b.trace_events),
            "seed {seed} is not deterministic"
        );
        assert!(
            a.trace_events > 100,
            "seed {seed} did too little: {}",
            a.summary()
        );
        distinct.insert(a.trace_hash);
    }
    assert_eq!(
        distinct.len(),
        50,
        "different seeds must give different runs"
    );
}

#[test]
fn twenty_consecutive_default_seeds_pass() {
    let mut faults = 0;
    for seed in 1000..1020 {
        let report = run(&RunConfig::new(seed));
        assert!(
            report.passed(),
            "{}\n{}",
            report.summary(),
            report.failure_report()
        );
        assert!(report.stats.acked > 300, "{}", report.summary());
        let s = &report.stats;
        faults += s.crashes + s.power_losses + s.point_crashes + s.eio_failures + s.partitions;
    }
    assert!(
        faults >= 40,
        "the runs must actually inject faults: {faults}"
    );
}

#[cfg(feature = "known-bugs")]
#[test]
fn a_store_that_writes_the_consistent_index_only_on_explicit_commits_is_caught() {
    use replica::bugs::{Bug, KnownBugs};
    let mut bugs = KnownBugs::NONE;
    bugs.enable(Bug::CindexOnlyOnExplicitCommit).unwrap();
    let caught = (1..=20).find_map(|seed| {
        let cfg = RunConfig {
            bugs,
            ..RunConfig::new(seed)
        };
        let report = run(&cfg);
        (!report.passed()).then_some(report)
    });
    let report = caught.expect("the bug must be caught within 20 seeds");
    let text = report.failure_report();
    assert!(
        text.contains("reproduce: cargo run --release -p sim --features known-bugs -- run --seed"),
        "{text}"
    );
    assert!(
        text.contains("--bug cindex-only-on-explicit-commit"),
        "{text}"
    );
    assert!(
        text.contains(
            "shrink:    cargo run --release -p sim --features known-bugs -- shrink --seed"
        ),
        "the report says how to shrink the run: {text}"
    );
    // With the switch off, the same seed passes.
    let clean = run(&RunConfig::new(report.config.seed));
    assert!(clean.passed(), "{}", clean.failure_report());
}

#[test]
fn a_sweep_gives_the_same_runs_with_one_or_two_jobs() {
    let configs: Vec<RunConfig> = (200..212).map(short).collect();
    let one = sim::sweep::run_many(&configs, 1, &|_| {});
    let two = sim::sweep::run_many(&configs, 2, &|_| {});
    let hashes = |r: &[sim::run::RunReport]| -> Vec<(u64, u64)> {
        r.iter().map(|r| (r.config.seed, r.trace_hash)).collect()
    };
    assert_eq!(hashes(&one), hashes(&two));
}
