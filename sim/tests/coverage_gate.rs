//! The sensitivity gate's coverage check (`sim coverage check`, run by
//! `ci/gate.sh`): a sweep that no longer reaches a probe the expected-hits
//! file lists fails the gate, naming the probe. Also, each named store
//! probe is reached by the catalogue scenario written for its state.

use std::path::Path;
use std::process::{Command, Output};

fn sim(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sim"))
        .args(args)
        .output()
        .expect("the sim binary runs")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Sweeps `scenario` with `seeds`, writing its coverage JSON to `json`.
fn sweep(scenario: &str, seeds: &str, json: &Path) {
    let out = sim(&[
        "sweep",
        "--scenarios",
        scenario,
        "--seeds",
        seeds,
        "--jobs",
        "1",
        "--coverage-json",
        json.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("| probe | runs that hit it |"),
        "{}",
        text(&out)
    );
}

#[test]
fn the_gate_fails_when_a_probe_it_used_to_hit_becomes_unreachable() {
    let dir = tempfile::tempdir().unwrap();
    let expected = dir.path().join("expected-hits.txt");
    let torn = dir.path().join("torn.coverage.json");
    let other = dir.path().join("other.coverage.json");
    // The "old" sweep reaches a torn WAL tail; its hits become the
    // committed expectation.
    sweep("07-torn-wal-tail", "7..8", &torn);
    let out = sim(&[
        "coverage",
        "update",
        "--expected",
        expected.to_str().unwrap(),
        torn.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let listed = std::fs::read_to_string(&expected).unwrap();
    assert!(
        listed.lines().any(|l| l == "wal.torn_tail_repaired"),
        "{listed}"
    );
    let out = sim(&[
        "coverage",
        "check",
        "--expected",
        expected.to_str().unwrap(),
        torn.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out));
    // A "new" sweep in which no torn tail is repaired any more (as when the
    // random run stopped tearing WAL writes): the gate fails and names it.
    sweep("03-crash-between-v2-and-v3", "3..4", &other);
    let out = sim(&[
        "coverage",
        "check",
        "--expected",
        expected.to_str().unwrap(),
        other.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("probe wal.torn_tail_repaired was expected"),
        "{}",
        text(&out)
    );
}

#[test]
fn store_probes_are_reached_by_their_scenarios() {
    use sim::scenario::{self, Scenario};
    let cases = [
        (
            "04-backend-ahead-of-snapshot",
            "boot.backend_ahead_of_snapshot",
        ),
        ("05-conf-change-replay", "replay.conf_change_over_backend"),
        ("07-torn-wal-tail", "wal.torn_tail_repaired"),
        (
            "08-lagging-follower-snapshot",
            "boot.snapshot_install_finished",
        ),
        (
            "01-batch-commit-crash-follower",
            "redb_commit.crash_before_header",
        ),
        (
            "03-crash-between-v2-and-v3",
            "crash_point.apply.between_v2_and_v3",
        ),
    ];
    for (name, probe) in cases {
        let sc = Scenario::load(&scenario::find(name).unwrap()).unwrap();
        let report = sc.run(sc.seed, replica::bugs::KnownBugs::NONE, false);
        assert!(
            report.probes.get(probe) > 0,
            "{name}: {}",
            report.probes.summary()
        );
    }
}

#[cfg(feature = "known-bugs")]
#[test]
fn the_detection_gate_fails_when_a_switch_is_caught_later_than_its_threshold() {
    let dir = tempfile::tempdir().unwrap();
    let thresholds = dir.path().join("thresholds.txt");
    // cindex-before-apply is caught well within 60 seeds (which seed
    // depends on the fault model); no switch can be caught within 0: a
    // detection regression as the gate sees one.
    std::fs::write(
        &thresholds,
        "cindex-before-apply 60\nv2-put-writes-v3-on-replay 0 # measured: 2\n",
    )
    .unwrap();
    let out = sim(&[
        "detect",
        "--jobs",
        "1",
        "--thresholds",
        thresholds.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let caught = text(&out)
        .lines()
        .any(|l| l.starts_with("| cindex-before-apply | 60 | ") && l.ends_with("| ok |"));
    assert!(caught, "{}", text(&out));
    assert!(
        text(&out).contains("| v2-put-writes-v3-on-replay | 0 | none within 0 | REGRESSED |"),
        "{}",
        text(&out)
    );
}
