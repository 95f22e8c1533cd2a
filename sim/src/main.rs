//! `sim`: the deterministic simulation harness's command line.

mod cli_backup;
mod cli_coverage;
mod cli_explore;
mod cli_explore_cluster;
mod cli_localize;
mod cli_merge;
mod cli_run;
mod cli_scaling;
mod cli_shrink;

use clap::{Parser, Subcommand};
use replica::bugs::{Bug, KnownBugs};
use sim::demo;
use std::path::PathBuf;
use std::process::ExitCode;

/// Finds restore-divergence bugs in the replica store by crashing it and
/// comparing every replica after recovery.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// One simulated run: a random workload and fault schedule from the
    /// seed on a cluster of members under virtual time. Exit 1 on a
    /// violated invariant, with the reproduce command.
    Run(cli_run::RunArgs),
    /// `run --trace` for a seed: the full virtual-time timeline, every fault
    /// and restart.
    Replay(cli_run::RunArgs),
    /// Many seeds of the random run, with a progress bar and a summary.
    /// Exit 1 if any seed violates an invariant.
    Sweep(cli_run::SweepArgs),
    /// For a failing seed: forks the run at points in virtual time,
    /// re-seeds everything after each fork, and reports the failure share
    /// as a function of time and the events at which the failure becomes
    /// (nearly) certain.
    Localize(cli_localize::LocalizeArgs),
    /// Adds up the JUnit reports and summaries of a partitioned sweep
    /// (`sweep --partition I/N`) into one of each and prints the sweep's
    /// tables. Exit 1 if any run failed.
    MergeReports(cli_merge::MergeArgs),
    /// Performance figures: simulated seconds per wall second and seeds per
    /// minute for the default random run.
    Bench(cli_run::BenchArgs),
    /// Crash-state enumeration: at every sync of one member during a
    /// scenario, each prefix of the synced file's pending writes (the last
    /// one also torn) must boot and match the run's state. Exit 1 on a
    /// failing state.
    Explore(cli_explore::ExploreArgs),
    /// Shrinks a failing scenario, or a failing random run (its fault
    /// schedule recorded as explicit steps first): removes steps, faults,
    /// members and workload while it still fails with the same invariant,
    /// and writes the result as a scenario file that reproduces the failure
    /// with no random fault left.
    Shrink(cli_shrink::ShrinkArgs),
    /// The sensitivity gate's coverage check: the probes a seed range used
    /// to hit (the committed expected-hits file) against sweeps' coverage
    /// JSON files.
    #[command(subcommand)]
    Coverage(cli_coverage::CoverageCommand),
    /// The sensitivity gate's detection check: each known-bug switch's first
    /// failing random seed must stay within its committed threshold (needs
    /// `--features known-bugs`).
    Detect(cli_coverage::DetectArgs),
    /// Offline backup of a stopped member's data directory into a new
    /// one-member cluster (etcd's `backup --with-v3`).
    Backup(cli_backup::BackupArgs),
    /// Timed rounds of workload → backup --with-v3 → restore → compare, on
    /// in-memory disks (not under the simulator).
    BenchBackup(cli_backup::BenchBackupArgs),
    /// Single-member restart check on a real directory: a member on disk is
    /// stopped at seeded moments and reopened; after every reopen its state
    /// must equal a never-stopped reference member's. Exit 1 on divergence.
    Demo {
        /// First seed of the sweep.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// How many consecutive seeds to run.
        #[arg(long, default_value_t = 20)]
        seeds: u64,
        /// Committed entries per seed.
        #[arg(long, default_value_t = 400)]
        entries: u64,
        /// Probability that the member is stopped after an entry.
        #[arg(long, default_value_t = 0.05)]
        stop_probability: f64,
        /// Keep the data directories here instead of a temporary directory.
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Re-introduce a known historical bug in the stopped member (builds
        /// with `--features known-bugs` only), e.g. `v2-skipped-with-v3`.
        #[arg(long = "bug")]
        bugs: Vec<String>,
    },
}

fn init_logging() {
    // Without RUST_LOG no subscriber is installed: the simulator's hot loop
    // then pays nothing for the store's and madsim's spans.
    let Ok(filter) = tracing_subscriber::EnvFilter::try_from_default_env() else {
        return;
    };
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .without_time()
        .init();
}

fn main() -> ExitCode {
    init_logging();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run(args) => cli_run::run(args, false),
        Command::Replay(args) => cli_run::run(args, true),
        Command::Sweep(args) => cli_run::sweep(args),
        Command::Bench(args) => cli_run::bench(args),
        Command::MergeReports(args) => cli_merge::run(args),
        Command::Localize(args) => cli_localize::run(args),
        Command::Explore(args) => cli_explore::run(args),
        Command::Shrink(args) => cli_shrink::run(args),
        Command::Coverage(command) => cli_coverage::coverage(command),
        Command::Detect(args) => cli_coverage::detect(args),
        Command::Backup(args) => cli_backup::backup(args),
        Command::BenchBackup(args) => cli_backup::bench(args),
        Command::Demo {
            seed,
            seeds,
            entries,
            stop_probability,
            dir,
            bugs,
        } => parse_bugs(&bugs).and_then(|bugs| {
            run_demo(DemoArgs {
                first_seed: seed,
                seeds,
                entries,
                stop_probability,
                dir,
                bugs,
            })
        }),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

pub(crate) fn parse_bugs(names: &[String]) -> anyhow::Result<KnownBugs> {
    let mut bugs = KnownBugs::NONE;
    for name in names {
        let bug = Bug::from_name(name).ok_or_else(|| {
            let known: Vec<&str> = Bug::ALL.iter().map(|b| b.name()).collect();
            anyhow::anyhow!("unknown bug {name:?}; known: {}", known.join(", "))
        })?;
        bugs.enable(bug)?;
    }
    Ok(bugs)
}

struct DemoArgs {
    first_seed: u64,
    seeds: u64,
    entries: u64,
    stop_probability: f64,
    dir: Option<PathBuf>,
    bugs: KnownBugs,
}

fn run_demo(args: DemoArgs) -> anyhow::Result<ExitCode> {
    let DemoArgs {
        first_seed,
        seeds,
        entries,
        stop_probability,
        dir,
        bugs,
    } = args;
    let temp = tempfile::tempdir()?;
    let root = dir.unwrap_or_else(|| temp.path().to_path_buf());
    let mut totals = demo::DemoReport::default();
    for seed in first_seed..first_seed + seeds {
        let cfg = demo::DemoConfig {
            seed,
            entries,
            stop_probability,
            bugs,
        };
        let data_dir = root.join(format!("seed-{seed}"));
        let report = demo::run(&data_dir, &cfg)?;
        totals.entries += report.entries;
        totals.restarts += report.restarts;
        totals.replayed += report.replayed;
        totals.replay_skipped_v3 += report.replay_skipped_v3;
        totals.snapshots += report.snapshots;
        if let Some(v) = report.violation {
            println!(
                "VIOLATION: seed {seed}, after entry {}: {}",
                v.index, v.what
            );
            for d in v.diffs.iter().take(20) {
                println!("  {d}");
            }
            if v.diffs.len() > 20 {
                println!("  … {} more fields differ", v.diffs.len() - 20);
            }
            let (features, bug_args) = sim::config::bug_flags(bugs);
            println!(
                "reproduce: cargo run --release -p sim{features} -- demo --seed {seed} --seeds 1 --entries {entries} --stop-probability {stop_probability}{bug_args}"
            );
            return Ok(ExitCode::from(1));
        }
    }
    println!(
        "ok: {seeds} seeds, {} entries, {} restarts, {} entries replayed ({} with v3 skipped), {} snapshots, no divergence",
        totals.entries,
        totals.restarts,
        totals.replayed,
        totals.replay_skipped_v3,
        totals.snapshots
    );
    Ok(ExitCode::SUCCESS)
}
