//! The `shrink` subcommand.

use clap::Args;
use sim::scenario::{self, Scenario};
use sim::shrink;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Args, Debug)]
pub struct ShrinkArgs {
    /// The failing scenario (a path, or a name in `scenarios/`).
    #[arg(long)]
    pub scenario: String,
    /// The seed it fails with (default: the scenario's).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Known-bug switches it fails with (builds with `--features known-bugs`).
    #[arg(long = "bug")]
    pub bugs: Vec<String>,
    /// Where to write the shrunk scenario (default: `shrunk-NAME-SEED.toml`).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

pub fn run(args: ShrinkArgs) -> anyhow::Result<ExitCode> {
    let original = Scenario::load(&scenario::find(&args.scenario)?)?;
    let seed = args.seed.unwrap_or(original.seed);
    let bugs = crate::parse_bugs(&args.bugs)?;
    let shrunk = shrink::shrink(&original, seed, bugs).map_err(anyhow::Error::msg)?;
    let out = args
        .out
        .unwrap_or_else(|| PathBuf::from(format!("shrunk-{}-{seed}.toml", original.name)));
    std::fs::write(
        &out,
        shrink::to_toml(&shrunk.scenario).map_err(anyhow::Error::msg)?,
    )?;
    println!(
        "shrunk {} (seed {seed}, fails with {}): {} steps -> {} steps in {} runs; written to {}",
        original.name,
        shrunk.invariant,
        shrunk.steps_before,
        shrunk.steps_after,
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
