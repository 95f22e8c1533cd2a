//! The sensitivity gate's commands: `coverage check|update` (the probes a
//! seed range used to hit, against the committed expected-hits file) and
//! `detect` (each known-bug switch's first failing random seed, against a
//! committed threshold).

use clap::{Args, Subcommand};
use replica::bugs::Bug;
use sim::config::RunConfig;
use sim::coverage::{expected_file, hit_in_json, missing, parse_expected};
use sim::sweep::run_many;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Subcommand, Debug)]
pub enum CoverageCommand {
    /// Exit 1 if a probe the expected-hits file lists was hit by no run of
    /// the given coverage files (`sweep --junit`'s `*.coverage.json`).
    Check(CoverageFiles),
    /// Rewrites the expected-hits file: every probe some run of the given
    /// coverage files hit. Review the diff before committing it.
    Update(CoverageFiles),
}

#[derive(Args, Debug)]
pub struct CoverageFiles {
    /// The committed expected-hits file (e.g. `ci/expected-hits-random.txt`).
    #[arg(long)]
    pub expected: PathBuf,
    /// Coverage JSON files written by sweeps; a probe counts as hit if any
    /// file has a run that hit it.
    #[arg(required = true)]
    pub coverage: Vec<PathBuf>,
}

const EXPECTED_HEADER: &str = "Probes one of the gate's sweeps hit (ci/gate.sh fails when one is no
longer hit). Written by `sim coverage update`; regenerate deliberately
(ci/README.md says how) and review the diff: a line that disappears is a
state no longer tested.";

/// The probes hit by any run of the coverage files.
fn hit_in_files(files: &[PathBuf]) -> anyhow::Result<BTreeSet<String>> {
    let mut hit = BTreeSet::new();
    for path in files {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
        let doc: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| anyhow::anyhow!("{}: not JSON: {e}", path.display()))?;
        hit.extend(hit_in_json(&doc).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?);
    }
    Ok(hit)
}

pub fn coverage(command: CoverageCommand) -> anyhow::Result<ExitCode> {
    match command {
        CoverageCommand::Check(files) => check(&files),
        CoverageCommand::Update(files) => {
            let hit = hit_in_files(&files.coverage)?;
            std::fs::write(&files.expected, expected_file(EXPECTED_HEADER, &hit))
                .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", files.expected.display()))?;
            println!("{}: {} probes", files.expected.display(), hit.len());
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn check(files: &CoverageFiles) -> anyhow::Result<ExitCode> {
    let text = std::fs::read_to_string(&files.expected)
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", files.expected.display()))?;
    let expected = parse_expected(&text);
    let hit = hit_in_files(&files.coverage)?;
    let lost = missing(&expected, &hit);
    if lost.is_empty() {
        println!("coverage gate: all {} expected probes hit", expected.len());
        return Ok(ExitCode::SUCCESS);
    }
    for name in &lost {
        println!(
            "coverage gate: probe {name} was expected (in {}) but no run hit it",
            files.expected.display()
        );
    }
    println!(
        "coverage gate FAILED: {} of {} expected probes no longer hit",
        lost.len(),
        expected.len()
    );
    Ok(ExitCode::from(1))
}

#[derive(Args, Debug)]
pub struct DetectArgs {
    /// The committed thresholds: `switch max_seed` per line; the gate fails
    /// if the switch's first failing random seed is past `max_seed`.
    #[arg(long, default_value = "ci/detection-thresholds.txt")]
    pub thresholds: PathBuf,
    /// Instead of checking, measure each switch up to this many seeds and
    /// print the lines of a new thresholds file (first failing seed × 2,
    /// at least +10).
    #[arg(long)]
    pub measure: Option<u64>,
    /// Worker threads.
    #[arg(long, default_value_t = std::thread::available_parallelism().map_or(1, |n| n.get()))]
    pub jobs: usize,
    /// Search with probe-guided scheduling (`sweep --guided`) instead of
    /// the default random run: the figure is then the number of runs to
    /// the first failure.
    #[arg(long)]
    pub guided: bool,
}

/// One line of the thresholds file.
struct Threshold {
    bug: Bug,
    max_seed: u64,
}

fn parse_thresholds(path: &Path) -> anyhow::Result<Vec<Threshold>> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
    let mut out = Vec::new();
    for line in parse_expected(&text) {
        let mut words = line.split_whitespace();
        let (Some(name), Some(max), None) = (words.next(), words.next(), words.next()) else {
            anyhow::bail!(
                "{}: expected `switch max_seed`, got {line:?}",
                path.display()
            );
        };
        let bug = Bug::from_name(name)
            .ok_or_else(|| anyhow::anyhow!("{}: unknown switch {name}", path.display()))?;
        out.push(Threshold {
            bug,
            max_seed: max.parse()?,
        });
    }
    Ok(out)
}

/// The first random seed in `1..=max_seed` that fails with `bug` on,
/// running `jobs` seeds at a time in order.
fn first_failing_seed(
    bug: Bug,
    max_seed: u64,
    jobs: usize,
    guided: bool,
) -> anyhow::Result<Option<u64>> {
    let mut bugs = replica::bugs::KnownBugs::NONE;
    bugs.enable(bug)?;
    if guided {
        let base = move |seed| {
            let mut cfg = RunConfig::new(seed);
            cfg.bugs = bugs;
            cfg
        };
        let result = sim::guided::run_guided(&base, 1, max_seed as usize, jobs, true);
        return Ok(result.first_failure_run.map(|n| n as u64));
    }
    let mut start = 1;
    while start <= max_seed {
        let end = (start + jobs.max(1) as u64).min(max_seed + 1);
        let configs: Vec<RunConfig> = (start..end)
            .map(|seed| {
                let mut cfg = RunConfig::new(seed);
                cfg.bugs = bugs;
                cfg
            })
            .collect();
        let reports = run_many(&configs, jobs, &|_| {});
        if let Some(r) = reports.iter().find(|r| !r.passed()) {
            return Ok(Some(r.config.seed));
        }
        start = end;
    }
    Ok(None)
}

pub fn detect(args: DetectArgs) -> anyhow::Result<ExitCode> {
    if let Some(limit) = args.measure {
        // The backup switches break `sim backup`, which a random run never
        // calls: the backup tests catch them.
        let random_bugs = Bug::ALL
            .into_iter()
            .filter(|b| !matches!(b, Bug::BackupShiftIndexes | Bug::BackupNoCindexUpdate));
        for bug in random_bugs {
            match first_failing_seed(bug, limit, args.jobs, args.guided)? {
                Some(first) => println!(
                    "{} {}  # measured first failing seed: {first}",
                    bug.name(),
                    (first * 2).max(first + 10)
                ),
                None => println!("# {}: no failing seed within {limit}", bug.name()),
            }
        }
        return Ok(ExitCode::SUCCESS);
    }
    let mut regressed = 0;
    println!("| switch | threshold | first failing seed | |\n| --- | --- | --- | --- |");
    for t in parse_thresholds(&args.thresholds)? {
        let first = first_failing_seed(t.bug, t.max_seed, args.jobs, args.guided)?;
        let verdict = if first.is_some() { "ok" } else { "REGRESSED" };
        regressed += usize::from(first.is_none());
        let shown = first.map_or_else(|| format!("none within {}", t.max_seed), |s| s.to_string());
        println!(
            "| {} | {} | {shown} | {verdict} |",
            t.bug.name(),
            t.max_seed
        );
    }
    if regressed > 0 {
        println!(
            "detection gate FAILED: {regressed} switch(es) no longer caught within their threshold"
        );
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}
