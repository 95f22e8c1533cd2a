//! The `sim` binary as a user meets it: `--help` on every subcommand, exit
//! codes (0 passed, 1 a violated invariant with the reproduce command, 2 bad
//! input), and `shrink --record-only` writing a scenario `run` accepts.

use std::path::PathBuf;
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

const SUBCOMMANDS: [&str; 11] = [
    "run",
    "replay",
    "sweep",
    "bench",
    "explore",
    "coverage",
    "detect",
    "shrink",
    "backup",
    "bench-backup",
    "demo",
];

#[test]
fn every_subcommand_has_help() {
    let top = sim(&["--help"]);
    assert!(top.status.success(), "{}", text(&top));
    for sub in SUBCOMMANDS {
        assert!(text(&top).contains(sub), "`sim --help` lists {sub}");
        let out = sim(&[sub, "--help"]);
        assert!(out.status.success(), "sim {sub} --help: {}", text(&out));
        assert!(text(&out).contains("Usage: sim"), "sim {sub} --help");
    }
}

#[test]
fn bad_input_exits_2_with_a_reason() {
    let out = sim(&["run", "--scenario", "no-such-scenario"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("no-such-scenario"), "{}", text(&out));
    let out = sim(&["shrink"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("--seed"), "{}", text(&out));
}

#[test]
fn a_recorded_schedule_is_a_scenario_run_accepts() {
    let dir = tempfile::tempdir().unwrap();
    let file: PathBuf = dir.path().join("recorded.toml");
    let file_arg = file.to_str().unwrap();
    let out = sim(&[
        "shrink",
        "--seed",
        "3",
        "--duration",
        "5s",
        "--record-only",
        "--out",
        file_arg,
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let recorded = std::fs::read_to_string(&file).unwrap();
    assert!(recorded.contains("action = \"wait_until\""), "{recorded}");
    let out = sim(&["run", "--scenario", file_arg, "--seed", "3"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("ok"), "{}", text(&out));
}

#[cfg(feature = "known-bugs")]
#[test]
fn a_found_bug_exits_1_with_the_commands_to_reproduce_and_shrink_it() {
    let out = sim(&["run", "--seed", "1", "--bug", "put-ack-before-v3-write"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let report = text(&out);
    for line in [
        "reproduce: cargo run --release -p sim --features known-bugs -- run --seed 1",
        "shrink:    cargo run --release -p sim --features known-bugs -- shrink --seed 1",
    ] {
        assert!(report.contains(line), "missing {line:?} in:\n{report}");
    }
}
