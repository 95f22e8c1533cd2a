//! The sweep's job runner over the scenario catalogue.

use sim::sweep::{Job, catalogue_matching, junit_xml, run_jobs, summarize};
use std::sync::Arc;
use std::time::Instant;

fn jobs(pattern: &str, seeds: std::ops::Range<u64>) -> Vec<Job> {
    catalogue_matching(pattern)
        .unwrap()
        .into_iter()
        .map(Arc::new)
        .flat_map(|scenario| {
            seeds.clone().map(move |seed| Job::Scenario {
                scenario: scenario.clone(),
                seed,
                bugs: replica::bugs::KnownBugs::NONE,
            })
        })
        .collect()
}

#[test]
fn a_scenario_sweep_gives_the_same_runs_with_one_or_two_jobs() {
    // Three cheap scenarios.
    let jobs: Vec<Job> = ["03-*", "04-*", "05-*"]
        .iter()
        .flat_map(|p| jobs(p, 1..3))
        .collect();
    assert_eq!(jobs.len(), 6);
    let one = run_jobs(&jobs, 1, None, &|_| {});
    let two = run_jobs(&jobs, 2, None, &|_| {});
    assert_eq!(one.len(), 6);
    for (a, b) in one.iter().zip(&two) {
        assert_eq!(a.label, b.label);
        assert_eq!(a.report.config.seed, b.report.config.seed);
        assert_eq!(a.report.trace_hash, b.report.trace_hash, "{}", a.label);
        assert!(a.report.passed(), "{}", a.report.failure_report());
    }
    let rows = summarize(&one);
    assert_eq!(rows.len(), 3);
    assert!(rows.iter().all(|r| r.runs == 2 && r.failures == 0));
    let xml = junit_xml(&one, 0);
    assert_eq!(xml.matches("<testcase ").count(), 6);
    assert!(xml.contains("classname=\"04-backend-ahead-of-snapshot\" name=\"seed 2\""));
}

#[test]
fn a_passed_time_budget_starts_no_run() {
    let jobs = jobs("03-*", 1..4);
    let ran = run_jobs(&jobs, 2, Some(Instant::now()), &|_| {});
    assert!(ran.is_empty());
    let xml = junit_xml(&ran, jobs.len());
    assert!(xml.contains("skipped=\"3\""));
}
