//! The `shrink` subcommand.

use crate::cli_run::RunSettings;
use clap::Args;
use sim::scenario::{self, Scenario};
use sim::shrink::{self, Shrunk};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Args, Debug)]
pub struct ShrinkArgs {
    /// The failing scenario (a path, or a name in `scenarios/`). Without
    /// it, the failing random run of `--seed` (with `--swarm`, `--nodes`,
    /// `--duration`, `--faults`) is shrunk: its fault schedule is recorded
    /// as explicit scenario steps first.
    #[arg(long)]
    pub scenario: Option<String>,
    /// The seed it fails with (default: the scenario's; required for a
    /// random run).
    #[arg(long)]
    pub seed: Option<u64>,
    #[command(flatten)]
    pub settings: RunSettings,
    /// Where to write the shrunk scenario (default: `shrunk-NAME-SEED.toml`,
    /// or `shrunk-random-seed-SEED.toml` for a random run).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// With a random run: write its recorded schedule as a scenario (to
    /// `--out`, default `recorded-seed-SEED.toml`), failing or not, without
    /// replaying or shrinking it.
    #[arg(long, conflicts_with = "scenario")]
    pub record_only: bool,
}

pub fn run(args: ShrinkArgs) -> anyhow::Result<ExitCode> {
    let bugs = crate::parse_bugs(&args.settings.bugs)?;
    let (seed, shrunk) = match &args.scenario {
        Some(name) => {
            let original = Scenario::load(&scenario::find(name)?)?;
            let seed = args.seed.unwrap_or(original.seed);
            let shrunk = shrink::shrink(&original, seed, bugs).map_err(anyhow::Error::msg)?;
            (seed, shrunk)
        }
        None => {
            let Some(seed) = args.seed else {
                anyhow::bail!("give --scenario, or the --seed of a failing random run");
            };
            let cfg = args.settings.config(seed)?;
            if args.record_only {
                let (recorded, report) = shrink::record_run(&cfg);
                let out = args
                    .out
                    .unwrap_or_else(|| PathBuf::from(format!("recorded-seed-{seed}.toml")));
                std::fs::write(
                    &out,
                    shrink::to_toml(&recorded).map_err(anyhow::Error::msg)?,
                )?;
                println!(
                    "{}\nits schedule of {} faults is written to {}",
                    report.summary(),
                    shrink::fault_count(&recorded.steps),
                    out.display()
                );
                return Ok(ExitCode::SUCCESS);
            }
            let run = shrink::shrink_random_run(&cfg).map_err(anyhow::Error::msg)?;
            println!(
                "recorded the random run's schedule: {} faults in {} steps",
                run.shrunk.faults_before, run.shrunk.steps_before
            );
            (seed, run.shrunk)
        }
    };
    // A recorded random run's name already carries its seed.
    let default_out = match &args.scenario {
        Some(_) => format!("shrunk-{}-{seed}.toml", shrunk_name(&shrunk)),
        None => format!("shrunk-{}.toml", shrunk_name(&shrunk)),
    };
    let out = args.out.unwrap_or_else(|| PathBuf::from(default_out));
    std::fs::write(
        &out,
        shrink::to_toml(&shrunk.scenario).map_err(anyhow::Error::msg)?,
    )?;
    println!(
        "shrunk {} (seed {seed}, fails with {}): {} steps ({} faults, {:.1}s simulated) -> {} steps ({} faults, {:.1}s simulated) in {} runs; written to {}",
        shrunk_name(&shrunk),
        shrunk.invariant,
        shrunk.steps_before,
        shrunk.faults_before,
        shrunk.simulated_ms_before as f64 / 1000.0,
        shrunk.steps_after,
        shrunk.faults_after,
        shrunk.simulated_ms_after as f64 / 1000.0,
        shrunk.runs,
        out.display()
    );
    let (features, bug_args) = sim::config::bug_flags(bugs);
    println!(
        "reproduce: cargo run --release -p sim{features} -- run --scenario {} --seed {seed}{bug_args}",
        out.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// The original's name (the shrunk scenario's, without `-shrunk`).
fn shrunk_name(shrunk: &Shrunk) -> &str {
    shrunk
        .scenario
        .name
        .strip_suffix("-shrunk")
        .unwrap_or(&shrunk.scenario.name)
}
