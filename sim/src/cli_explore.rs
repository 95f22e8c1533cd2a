//! The `explore` subcommand: crash-state enumeration at one member's syncs.

use clap::Args;
use sim::explore::{CaptureSink, explore};
use sim::scenario::{self, Scenario};
use std::process::ExitCode;

#[derive(Args, Debug)]
pub struct ExploreArgs {
    /// The scenario to run (a path, or a name in `scenarios/`).
    #[arg(long)]
    pub scenario: String,
    /// The run's seed (default: the scenario's).
    #[arg(long)]
    pub seed: Option<u64>,
    /// The member whose syncs are explored.
    #[arg(long, default_value_t = 1)]
    pub member: u64,
    /// Crash states to check, at most.
    #[arg(long, default_value_t = 5000)]
    pub max_states: u64,
    /// Syncs to capture, at most (each is a copy of the member's disk).
    #[arg(long, default_value_t = 400)]
    pub max_syncs: usize,
    /// Also explore the syncs of the member's bootstrap (before its first
    /// boot completes).
    #[arg(long)]
    pub include_bootstrap: bool,
    /// Re-introduce a known historical bug (builds with `--features
    /// known-bugs` only).
    #[arg(long = "bug")]
    pub bugs: Vec<String>,
}

pub fn run(args: ExploreArgs) -> anyhow::Result<ExitCode> {
    let sc = Scenario::load(&scenario::find(&args.scenario)?)?;
    let seed = args.seed.unwrap_or(sc.seed);
    let bugs = crate::parse_bugs(&args.bugs)?;
    let sink = CaptureSink::new(args.member, args.max_syncs, args.include_bootstrap);
    let mut cfg = sc.config(seed, bugs, false);
    cfg.capture = Some(sink.clone());
    // Wall-clock time, outside any simulation.
    let started = std::time::Instant::now();
    let run = sc.run_config(cfg.clone());
    let ran = started.elapsed().as_secs_f64();
    let started = std::time::Instant::now();
    let report = explore(&cfg, &sink, args.max_states);
    let wall = started.elapsed().as_secs_f64();
    println!("{}", run.summary());
    println!(
        "explore: member {}, {} syncs captured, {} crash states ({} compared with the run's state), {} failed; {:.0} states/s (run {ran:.2}s, explore {wall:.2}s)",
        args.member,
        report.sync_points,
        report.states,
        report.compared,
        report.failures.len(),
        report.states as f64 / wall.max(1e-9),
    );
    for f in report.failures.iter().take(10) {
        println!(
            "CRASH STATE sync #{} of {}: keep {} pending ops{}: {}",
            f.point,
            f.path.display(),
            f.state.keep,
            f.state
                .torn_last
                .map_or_else(String::new, |b| format!(", the last torn at {b} bytes")),
            f.detail
        );
        for d in f.diffs.iter().take(10) {
            println!("    {d}");
        }
    }
    if report.failures.len() > 10 {
        println!("… {} more failing states", report.failures.len() - 10);
    }
    if !report.failures.is_empty() {
        let bug_args: String = args.bugs.iter().map(|b| format!(" --bug {b}")).collect();
        let features = if args.bugs.is_empty() {
            ""
        } else {
            " --features known-bugs"
        };
        println!(
            "reproduce: cargo run --release -p sim{features} -- explore --scenario {} --seed {seed} --member {} --max-states {} --max-syncs {}{bug_args}",
            args.scenario, args.member, args.max_states, args.max_syncs
        );
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}
