//! What the scenario format's newer pieces do, end to end: each one runs a
//! scenario and shows the piece acting (and an `expect` failing when the
//! count it names is wrong).

use replica::bugs::KnownBugs;
use sim::checker::Invariant;
use sim::run::RunReport;
use sim::scenario::Scenario;
use sim::scenario_file::Step;

fn catalogue(name: &str) -> Scenario {
    let path = sim::scenario::find(name).unwrap();
    Scenario::load(&path).unwrap()
}

fn run(scenario: &Scenario) -> RunReport {
    scenario.run(scenario.seed, KnownBugs::NONE, false)
}

fn equals(stat: &str, n: u64) -> Step {
    Step::Expect {
        stat: stat.into(),
        at_least: None,
        at_most: None,
        equals: Some(n),
    }
}

/// Runs `scenario` with `extra` steps appended.
fn run_with(scenario: &Scenario, extra: Vec<Step>) -> RunReport {
    let mut s = scenario.clone();
    s.steps.extend(extra);
    run(&s)
}

/// The scenario violations of a run, as text.
fn scenario_failures(report: &RunReport) -> String {
    report
        .violations
        .iter()
        .filter(|v| v.invariant == Invariant::Scenario)
        .map(|v| v.detail.clone())
        .collect::<Vec<_>>()
        .join("\n")
}

/// A passing run, or the report of why not.
fn assert_passes(report: &RunReport) {
    assert!(
        report.passed(),
        "{}\n{}",
        report.summary(),
        report.failure_report()
    );
}

/// Asserts that `stat` counted exactly `n`: `equals n` passes and
/// `equals n + 1` fails naming the count.
fn assert_counts(scenario: &Scenario, stat: &str, n: u64) {
    let right = run_with(scenario, vec![equals(stat, n)]);
    assert_passes(&right);
    let wrong = run_with(scenario, vec![equals(stat, n + 1)]);
    let failures = scenario_failures(&wrong);
    let said = format!("expected {stat} == {}, got {n}", n + 1);
    assert!(failures.contains(&said), "{failures}");
}

#[test]
fn a_snapshot_install_finished_at_boot_is_counted() {
    assert_counts(
        &catalogue("08-lagging-follower-snapshot"),
        "boot_installs",
        1,
    );
}

#[test]
fn a_crash_during_boot_is_counted() {
    assert_counts(&catalogue("12-crash-during-replay"), "boot_crashes", 1);
}

/// The example scenario in `scenarios/README.md` called `name`: the
/// documentation's examples are run here, so they do what they say.
fn readme_example(name: &str) -> Scenario {
    let readme = include_str!("../../scenarios/README.md");
    let wanted = format!("name = \"{name}\"\n");
    let block = readme
        .split("```toml\n")
        .map(|b| &b[..b.find("```").unwrap_or(b.len())])
        .find(|b| b.starts_with(&wanted))
        .unwrap_or_else(|| panic!("no README example named {name}"));
    Scenario::parse(block).unwrap()
}

#[test]
fn compactions_and_wal_cuts_are_counted() {
    let scenario = readme_example("expect-bounds");
    assert_passes(&run(&scenario));
    assert_counts(&scenario, "compactions", 1);
    let report = run(&scenario);
    assert!(report.stats.wal_cuts >= 3, "{:?}", report.stats);
    // Every member cuts at the same indexes: a multiple of the member count.
    assert_eq!(report.stats.wal_cuts % 3, 0, "{:?}", report.stats);
}

#[test]
fn at_most_fails_when_the_run_did_more() {
    let scenario = readme_example("expect-bounds");
    let report = run_with(
        &scenario,
        vec![Step::Expect {
            stat: "wal_cuts".into(),
            at_least: None,
            at_most: Some(1),
            equals: None,
        }],
    );
    let failures = scenario_failures(&report);
    assert!(failures.contains("expected wal_cuts <= 1"), "{failures}");
}

#[test]
fn a_torn_power_loss_with_nothing_to_tear_is_counted_and_summarised() {
    let scenario = readme_example("tear-without-target");
    let report = run(&scenario);
    assert_passes(&report);
    assert!(
        report
            .summary()
            .contains("1 torn/reordering power losses found no multi-sector write"),
        "{}",
        report.summary()
    );
    assert_counts(&scenario, "tears_without_target", 1);
}

#[test]
fn a_torn_power_loss_that_tears_is_not_counted_as_without_target() {
    // The torn WAL tail scenario's second crash tears a large WAL write.
    let report = run(&catalogue("07-torn-wal-tail"));
    assert_passes(&report);
    assert!(report.stats.torn_writes >= 1, "{:?}", report.stats);
    assert!(
        report.stats.tears_without_target < report.stats.power_losses,
        "{:?}",
        report.stats
    );
}

#[test]
fn compact_current_minus_n_compacts_n_below_the_revision() {
    let report = run(&readme_example("compact-relative"));
    assert_passes(&report);
    for dump in report.recorded[0].members.values() {
        // Five puts after the initial revision 1: revision 6, compacted at 4.
        assert_eq!(dump["v3"]["revision"], 6, "{dump}");
        assert_eq!(dump["v3"]["compact_revision"], 4, "{dump}");
    }
    let err = Scenario::parse(
        "name = \"x\"\ndescription = \"x\"\n[[step]]\naction = \"compact\"\nrevision = \"latest - 2\"\n",
    )
    .unwrap_err();
    assert!(err.contains("current - N"), "{err}");
}

#[test]
fn the_random_part_runs_its_whole_duration_after_the_steps_end() {
    let scenario = readme_example("random-runs-its-duration");
    let report = run(&scenario);
    assert_passes(&report);
    assert!(report.simulated_ms >= 3000, "{}", report.summary());
    // Without the random part the same script is over at once.
    let mut alone = scenario.clone();
    alone.random = None;
    let short = run(&alone);
    assert!(short.simulated_ms < 3000, "{}", short.summary());
    assert!(
        report.stats.acked > short.stats.acked + 10,
        "{}",
        report.summary()
    );
}

#[test]
fn k_reaches_every_numeric_field_of_a_repeated_step() {
    let scenario = readme_example("repeat-k-everywhere");
    // Unrolled: puts and wait for k = 1, 2, 3.
    let shape: Vec<String> = scenario.steps.iter().map(|s| format!("{s:?}")).collect();
    assert_eq!(shape.len(), 6, "{shape:?}");
    assert!(
        matches!(
            &scenario.steps[4],
            Step::Puts {
                count: 3,
                value_bytes: 3000,
                ..
            }
        ),
        "{shape:?}"
    );
    assert!(
        matches!(&scenario.steps[5], Step::Wait { ms: 300 }),
        "{shape:?}"
    );
    let report = run(&scenario);
    assert_passes(&report);
    assert_eq!(report.stats.acked, 1 + 2 + 3, "{}", report.summary());
    // Outside a repeat, "k" is no number.
    let err = Scenario::parse(
        "name = \"x\"\ndescription = \"x\"\n[[step]]\naction = \"wait\"\nms = \"k\"\n",
    )
    .unwrap_err();
    assert!(err.contains("invalid type"), "{err}");
}

#[test]
fn splits_cuts_and_link_faults_act_and_replay() {
    let scenario = readme_example("split-groups");
    let report = run(&scenario);
    assert_passes(&report);
    let again = run(&scenario);
    assert_eq!(report.trace_hash, again.trace_hash);
    assert!(report.stats.messages_dropped > 0, "{:?}", report.stats);
}

/// A split with no majority anywhere commits nothing; one with a majority
/// side commits.
#[test]
fn a_split_without_a_majority_side_commits_nothing() {
    let split = |groups: &str| {
        Scenario::parse(&format!(
            "name = \"s\"\ndescription = \"s\"\n[[step]]\naction = \"put\"\nkey = \"a\"\nvalue = \"1\"\n\
             [[step]]\naction = \"split\"\ngroups = {groups}\n\
             [[step]]\naction = \"put\"\nkey = \"b\"\nvalue = \"2\"\n"
        ))
        .unwrap()
    };
    assert_passes(&run(&split("[[1, 2], [3]]")));
    let stuck = run(&split("[[1], [2], [3]]"));
    let failures = scenario_failures(&stuck);
    assert!(failures.contains("never acknowledged"), "{failures}");
}

#[test]
fn bad_splits_and_probabilities_are_rejected() {
    let parse = |step: &str| {
        Scenario::parse(&format!(
            "name = \"s\"\ndescription = \"s\"\n[[step]]\n{step}\n"
        ))
    };
    let e = parse("action = \"split\"\ngroups = [[1, 2], [2, 3]]").unwrap_err();
    assert!(e.contains("member 2 is in two groups"), "{e}");
    let e = parse("action = \"split\"\ngroups = [[1, 2, 3]]").unwrap_err();
    assert!(e.contains("at least two groups"), "{e}");
    let e = parse("action = \"link_faults\"\ndrop = 1.5").unwrap_err();
    assert!(e.contains("drop = 1.5"), "{e}");
}

#[test]
fn a_txn_with_several_compares_and_operations_takes_the_right_branch() {
    let report = run(&readme_example("txn-long"));
    assert_passes(&report);
    for dump in report.recorded[0].members.values() {
        let keys: Vec<(String, String)> = dump["v3"]["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| {
                let text = |f: &str| k[f].as_str().unwrap_or_default().to_string();
                (text("key"), text("value"))
            })
            .collect();
        let want = [
            ("a", "1"),
            ("c", "both held"),
            ("d", "one failed"),
            ("e", "else ran"),
        ];
        let want: Vec<(String, String)> = want
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        assert_eq!(keys, want, "{dump}");
    }
    let mixed = Scenario::parse(
        "name = \"x\"\ndescription = \"x\"\n[[step]]\naction = \"txn\"\nkey = \"a\"\n\
         compares = [{ key = \"a\", target = \"value\", op = \"==\", value = 1 }]\n",
    )
    .unwrap_err();
    assert!(mixed.contains("not both"), "{mixed}");
}

#[test]
fn a_restart_crashes_its_boot_at_each_disk_operation() {
    let scenario = readme_example("boot-crash-at-each-disk-op");
    assert_passes(&run(&scenario));
    assert_counts(&scenario, "boot_crashes", 12);
    // A boot has far fewer than a million disk operations: the step says so.
    let mut too_far = scenario.clone();
    too_far.steps.truncate(2);
    too_far.steps.push(
        Scenario::parse(
            "name = \"x\"\ndescription = \"x\"\n[[step]]\naction = \"restart\"\nmember = \"crashed\"\ncrash_at = \"disk_op\"\nhit = 1000000\n",
        )
        .unwrap()
        .steps[0]
            .clone(),
    );
    let failures = scenario_failures(&run(&too_far));
    assert!(
        failures.contains("fewer than 1000000 disk operations"),
        "{failures}"
    );
}

#[test]
fn an_eio_aimed_at_the_backends_second_sync_fails_that_sync() {
    let scenario = readme_example("eio-targeted");
    let mut cfg = scenario.config(scenario.seed, KnownBugs::NONE, false);
    cfg.keep_trace = true;
    let report = scenario.run_config(cfg);
    assert_passes(&report);
    let stops: Vec<String> = report
        .trace_records
        .iter()
        .map(|r| format!("{r:?}"))
        .filter(|r| r.contains("injected EIO"))
        .collect();
    assert_eq!(stops.len(), 1, "{stops:?}");
    assert!(stops[0].contains("targeted sync"), "{stops:?}");
}

/// `[random].mix` sets the random sessions' request mix (a recorded swarm
/// run carries the one it drew); a mix that names no known kind is refused.
#[test]
fn a_random_section_carries_its_request_mix() {
    let text = |mix: &str| {
        format!(
            "name = \"mix\"\ndescription = \"d\"\nnodes = 3\n[random]\nduration_ms = 2000\nmix = \"{mix}\"\n"
        )
    };
    let scenario = Scenario::parse(&text("reads:80,compact:50,stretch:10/20")).unwrap();
    let cfg = scenario.config(1, replica::bugs::KnownBugs::NONE, false);
    assert_eq!(cfg.mix.read_percent, 80);
    assert_eq!(cfg.mix.weight(sim::mix::RequestKind::Compact), 50);
    assert!(cfg.mix.stretches.is_some());
    assert!(run(&scenario).passed());
    assert!(Scenario::parse(&text("reads:80,teleport:5")).is_err());
}
