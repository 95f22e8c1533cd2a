//! The sweep's job runner over the scenario catalogue.

use sim::sweep::{JUNIT_TAIL, Job, Plan, SweepResult, catalogue_matching, junit_head, run_sweep};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// Adds every catalogue scenario matching `pattern` with each of `seeds`.
fn add(plan: &mut Plan, pattern: &str, seeds: std::ops::Range<u64>) {
    for scenario in catalogue_matching(pattern).unwrap() {
        plan.scenario(
            Arc::new(scenario),
            seeds.clone(),
            replica::bugs::KnownBugs::NONE,
        );
    }
}

/// A finished run as the callback saw it: (label, seed, trace hash).
type Seen = (String, u64, u64);

/// Sweeps `plan`; returns what the sweep kept, its JUnit report, and every
/// run the callback saw, sorted.
fn sweep(
    plan: &Plan,
    threads: usize,
    deadline: Option<Instant>,
) -> (SweepResult, String, Vec<Seen>) {
    let seen = Mutex::new(Vec::new());
    let mut cases = Vec::new();
    let (result, written) = run_sweep(plan, threads, deadline, &mut cases, &|o| {
        assert!(o.report.passed(), "{}", o.report.failure_report());
        let run = (o.label.clone(), o.report.config.seed, o.report.trace_hash);
        seen.lock().unwrap().push(run);
    });
    written.unwrap();
    let xml = junit_head(&result) + std::str::from_utf8(&cases).unwrap() + JUNIT_TAIL;
    let mut seen = seen.into_inner().unwrap();
    seen.sort();
    (result, xml, seen)
}

#[test]
fn a_scenario_sweep_gives_the_same_runs_with_one_or_two_jobs() {
    // Three cheap scenarios.
    let mut plan = Plan::default();
    for pattern in ["03-*", "04-*", "05-*"] {
        add(&mut plan, pattern, 1..3);
    }
    assert_eq!(plan.len(), 6);
    let (one, one_xml, one_seen) = sweep(&plan, 1, None);
    let (two, two_xml, two_seen) = sweep(&plan, 2, None);
    assert_eq!(one_seen.len(), 6);
    assert_eq!(one_seen, two_seen);
    assert_eq!(one.runs, 6);
    assert_eq!(one.rows.len(), 3);
    assert!(one.rows.iter().all(|r| r.runs == 2 && r.failures == 0));
    assert_eq!(
        (one.runs, one.failed.len(), one.simulated_ms),
        (two.runs, two.failed.len(), two.simulated_ms)
    );
    // The test cases come in job order whatever order the runs finish in.
    let cases = |xml: &str| -> Vec<String> {
        xml.lines()
            .filter(|l| l.contains("<testcase "))
            .map(|l| l.split(" time=").next().unwrap().to_string())
            .collect()
    };
    assert_eq!(cases(&one_xml), cases(&two_xml));
    assert_eq!(cases(&one_xml).len(), 6);
    assert!(
        cases(&one_xml)[3].contains("classname=\"04-backend-ahead-of-snapshot\" name=\"seed 2\"")
    );
    assert!(one_xml.contains("<testsuites tests=\"6\" failures=\"0\""));
    assert!(one_xml.ends_with("  </testsuite>\n</testsuites>\n"));
}

#[test]
fn a_passed_time_budget_starts_no_run() {
    let mut plan = Plan::default();
    add(&mut plan, "03-*", 1..4);
    let (ran, xml, seen) = sweep(&plan, 2, Some(Instant::now()));
    assert!(seen.is_empty());
    assert_eq!((ran.runs, ran.not_started), (0, 3));
    assert!(xml.contains("skipped=\"3\""));
    assert!(!xml.contains("<testcase"));
}

#[cfg(feature = "known-bugs")]
#[test]
fn a_failed_run_is_listed_and_its_report_is_the_junit_failure_text() {
    use replica::bugs::{Bug, KnownBugs};
    let mut bugs = KnownBugs::NONE;
    bugs.enable(Bug::V2SkippedWithV3)
        .expect("built with known-bugs");
    let mut plan = Plan::default();
    let scenario = catalogue_matching("04-*").unwrap().remove(0);
    plan.scenario(Arc::new(scenario), 1..3, bugs);
    let dir = std::env::temp_dir().join(format!("sim-sweep-junit-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("report.xml");
    let mut file = sim::sweep::JunitFile::create(&path);
    let (result, written) = run_sweep(&plan, 2, None, &mut file, &|_| {});
    written.unwrap();
    file.finish(&result).unwrap();
    let xml = std::fs::read_to_string(&path).unwrap();
    assert!(
        !dir.join("report.xml.part").exists(),
        "the cases file is removed"
    );
    std::fs::remove_dir_all(&dir).unwrap();
    let seeds: Vec<u64> = result.failed.iter().map(|f| f.seed).collect();
    assert_eq!(seeds, [1, 2], "failed runs in job order");
    assert!(
        result.failed[0]
            .reproduce
            .contains("--bug v2-skipped-with-v3")
    );
    // The first violation names the failure: the boot-time v2-index check
    // sees the skipped v2 half before restart equivalence does.
    assert_eq!(
        xml.matches("<failure message=\"recovery/verify: ").count(),
        2,
        "{xml}"
    );
    assert!(xml.contains("restart-equivalence"), "{xml}");
    assert!(xml.contains("reproduce: cargo run"), "{xml}");
    assert!(xml.contains("tests=\"2\" failures=\"2\""), "{xml}");
}

#[test]
fn a_plan_makes_its_jobs_in_order_one_at_a_time() {
    let mut plan = Plan::default();
    add(&mut plan, "07-*", 5..7);
    plan.random(
        10..13,
        Arc::new(|seed| sim::config::RunConfig::new(seed * 100)),
    );
    assert_eq!(plan.len(), 5);
    let described: Vec<(String, u64)> = (0..plan.len())
        .map(|i| match plan.job(i).unwrap() {
            Job::Random(cfg) => ("random".to_string(), cfg.seed),
            Job::Scenario { scenario, seed, .. } => (scenario.display_name(), seed),
        })
        .collect();
    let expected = [
        ("07-torn-wal-tail", 5),
        ("07-torn-wal-tail", 6),
        ("random", 1000),
        ("random", 1100),
        ("random", 1200),
    ];
    assert_eq!(
        described,
        expected.map(|(label, seed)| (label.to_string(), seed))
    );
    assert!(plan.job(5).is_none());
}

/// The fault table counts what the runs did: every statistic in it comes
/// from the runs' own counters, summed and counted per run.
#[test]
fn the_fired_table_counts_each_statistic_over_the_runs() {
    let mut plan = Plan::default();
    add(&mut plan, "14-*", 1..3);
    add(&mut plan, "16-*", 1..2);
    let (result, _, _) = sweep(&plan, 2, None);
    let fired = |name: &str| {
        result
            .fired
            .iter()
            .find(|c| c.name == name)
            .map(|c| (c.runs, c.total))
            .unwrap_or_else(|| panic!("{name} is not in the table"))
    };
    // Scenario 14 cuts the cluster's power twice per run; 16 damages one
    // byte once and quarantines that member.
    assert_eq!(fired("cluster_power_cuts"), (2, 4));
    assert_eq!(fired("corruptions"), (1, 1));
    assert_eq!(fired("quarantined"), (1, 1));
    assert_eq!(fired("eio_failures"), (0, 0));
    let table = sim::sweep::fired_table(&result.fired);
    assert!(table.contains("| cluster_power_cuts | 2 | 4 |"), "{table}");
}

#[test]
fn partitions_are_disjoint_cover_the_sweep_and_their_reports_merge_to_its_report() {
    use sim::report_merge::{JunitReport, SweepSummary};
    use sim::sweep::Partition;
    let mut whole = Plan::default();
    for pattern in ["03-*", "04-*", "05-*"] {
        add(&mut whole, pattern, 1..4);
    }
    let (all, all_xml, all_seen) = sweep(&whole, 2, None);
    assert_eq!(all_seen.len(), 9);
    let mut seen = Vec::new();
    let mut summary: Option<SweepSummary> = None;
    let mut junit: Option<JunitReport> = None;
    for index in 1..=4 {
        let partition = Partition { index, count: 4 };
        let mut plan = whole.clone();
        plan.partition(partition);
        let (result, xml, part_seen) = sweep(&plan, 2, None);
        assert_eq!(part_seen.len(), plan.len(), "{partition}");
        seen.extend(part_seen);
        let part = SweepSummary::of(&result, partition);
        let text = serde_json::to_string(&part).unwrap();
        let part: SweepSummary = serde_json::from_str(&text).unwrap();
        match &mut summary {
            Some(s) => s.merge(&part),
            None => summary = Some(part),
        }
        let report = JunitReport::parse("part.xml", &xml).unwrap();
        match &mut junit {
            Some(j) => j.merge(report),
            None => junit = Some(report),
        }
    }
    seen.sort();
    // Disjoint and complete: each (scenario, seed) exactly once, with the
    // trace hash of the unpartitioned sweep.
    assert_eq!(seen, all_seen);
    let merged = summary.unwrap().to_result().unwrap();
    assert_eq!(
        (merged.runs, merged.failed.len(), merged.simulated_ms),
        (all.runs, all.failed.len(), all.simulated_ms)
    );
    let rows = |r: &SweepResult| {
        let mut rows: Vec<_> = r
            .rows
            .iter()
            .map(|r| (r.label.clone(), r.runs, r.failures, r.simulated_ms))
            .collect();
        rows.sort();
        rows
    };
    assert_eq!(rows(&merged), rows(&all));
    assert_eq!(merged.fired, all.fired);
    assert_eq!(merged.coverage, all.coverage);
    assert_eq!(merged.dimensions, all.dimensions);
    let junit = junit.unwrap();
    let all_junit = JunitReport::parse("all.xml", &all_xml).unwrap();
    assert_eq!(junit.tests, all_junit.tests);
    let mut a = junit.cases.clone();
    let mut b = all_junit.cases.clone();
    let strip_time = |c: &mut Vec<String>| {
        for case in c.iter_mut() {
            *case = case.split(" time=").next().unwrap_or_default().to_string();
        }
        c.sort();
    };
    strip_time(&mut a);
    strip_time(&mut b);
    assert_eq!(a, b);
}

#[test]
fn a_partition_spec_is_parsed_as_nextest_spells_it() {
    use sim::sweep::Partition;
    assert_eq!(
        "count:2/3".parse::<Partition>(),
        Ok(Partition { index: 2, count: 3 })
    );
    assert_eq!("1/1".parse::<Partition>(), Ok(Partition::default()));
    for bad in ["0/2", "3/2", "count:1", "hash:1/2", "a/b"] {
        assert!(bad.parse::<Partition>().is_err(), "{bad}");
    }
}

/// A sweep of random runs counts them by each dimension of their world,
/// and a failure in the bucket of the world it ran in; the JUnit report
/// carries the table.
#[cfg(feature = "known-bugs")]
#[test]
fn the_dimension_table_counts_random_runs_and_failures_by_bucket() {
    use replica::bugs::{Bug, KnownBugs};
    let mut bugs = KnownBugs::NONE;
    bugs.enable(Bug::CindexOnlyOnExplicitCommit)
        .expect("built with known-bugs");
    // Seed 1 runs the fixed world with the switch (it fails there), the
    // others short swarm worlds.
    let config = move |seed| match seed {
        1 => sim::config::RunConfig {
            bugs,
            ..sim::config::RunConfig::fixed(1)
        },
        _ => sim::config::RunConfig {
            duration_ms: 2_000,
            ..sim::config::RunConfig::new(seed)
        },
    };
    let mut plan = Plan::default();
    plan.random(1..5, Arc::new(config));
    add(&mut plan, "03-*", 1..2);
    let dir = std::env::temp_dir().join(format!("sim-sweep-dims-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("report.xml");
    let mut file = sim::sweep::JunitFile::create(&path);
    let (result, written) = run_sweep(&plan, 2, None, &mut file, &|_| {});
    written.unwrap();
    file.finish(&result).unwrap();
    let xml = std::fs::read_to_string(&path).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    let failed: Vec<u64> = result.failed.iter().map(|f| f.seed).collect();
    assert_eq!(failed, [1], "{:?}", result.failed);
    // Four random runs (the scenario run is left out), one failed: in the
    // buckets of seed 1's world.
    let nodes = result.dimensions.buckets("nodes");
    assert_eq!(nodes.iter().map(|(_, c)| c.runs).sum::<u64>(), 4);
    let three = nodes.iter().find(|(label, _)| label == "3").unwrap().1;
    assert_eq!(three.failed, 1, "{nodes:?}");
    assert_eq!(nodes.iter().map(|(_, c)| c.failed).sum::<u64>(), 1);
    let swarm = result.dimensions.buckets("swarm");
    let off = swarm.iter().find(|(label, _)| label == "off").unwrap().1;
    assert_eq!((off.runs, off.failed), (1, 1), "{swarm:?}");
    let table = result.dimensions.table();
    assert!(
        table.contains("| batch_limit | ") && table.contains("(**1 failed**)"),
        "{table}"
    );
    assert!(
        xml.contains("<system-out>| random runs by dimension"),
        "{xml}"
    );
}
