//! The `localize` subcommand: when did a failing seed's failure become
//! inevitable? (see `sim::localize`).

use crate::cli_run::{RunSettings, default_jobs};
use clap::Args;
use sim::localize::{Localization, LocalizeOptions, localize, plot};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Args, Debug)]
pub struct LocalizeArgs {
    /// The failing seed of the random run.
    #[arg(long)]
    pub seed: u64,
    #[command(flatten)]
    pub settings: RunSettings,
    /// Evenly spaced fork points from the start to the failure.
    #[arg(long, default_value_t = 12)]
    pub points: usize,
    /// Re-seeded suffixes run at each fork point.
    #[arg(long, default_value_t = 10)]
    pub suffixes: u64,
    /// Bisection steps that narrow the onset window.
    #[arg(long, default_value_t = 6)]
    pub refine: u32,
    /// The failure share that counts as certain.
    #[arg(long, default_value_t = 0.9)]
    pub certain: f64,
    #[arg(long, default_value_t = default_jobs())]
    pub jobs: usize,
    /// Write the original run's Chrome trace (Perfetto) with the failure
    /// share as a counter track.
    #[arg(long)]
    pub trace_out: Option<PathBuf>,
}

/// Exit 0 with the report; 2 if the seed passes.
pub fn run(args: LocalizeArgs) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(
        (0.0..=1.0).contains(&args.certain),
        "--certain {} is not a share between 0 and 1",
        args.certain
    );
    let cfg = args.settings.config(args.seed)?;
    let opts = LocalizeOptions {
        points: args.points,
        suffixes: args.suffixes,
        refine_steps: args.refine,
        certain: args.certain,
        jobs: args.jobs,
    };
    let found = localize(&cfg, &opts)?;
    print_report(&found, args.suffixes, args.certain);
    if let Some(path) = &args.trace_out {
        let members: Vec<u64> = (1..=cfg.nodes).collect();
        let mut doc = sim::chrome_trace::to_json(&found.trace, &members);
        if let Some(events) = doc["traceEvents"].as_array_mut() {
            for p in &found.points {
                events.push(serde_json::json!({
                    "name": "failure share after a fork", "ph": "C", "pid": 1, "tid": 0,
                    "ts": p.at_ms * 1000, "args": {"share": p.share()}
                }));
            }
        }
        std::fs::write(path, serde_json::to_string(&doc)?)
            .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
        println!("trace with the failure share: {}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}

fn print_report(found: &Localization, suffixes: u64, certain: f64) {
    println!(
        "{} first seen at {} ms; failure share of {suffixes} re-seeded suffixes forked at each time:",
        found.invariant, found.failed_at_ms
    );
    print!("{}", plot(&found.points));
    match found.onset {
        None => println!(
            "no fork point fails in {:.0}% of its suffixes: the failure stays a matter of luck to the end",
            certain * 100.0
        ),
        Some((after, by)) if after == by => println!(
            "certain from the first fork point ({by} ms): the configuration or the first events decide it"
        ),
        Some((after, by)) => {
            println!(
                "onset: between {after} ms and {by} ms the failure becomes (nearly) certain; the run's events there:"
            );
            for e in found.events.iter().take(40) {
                let who = e
                    .member
                    .map_or_else(|| "sim".to_string(), |m| format!("m{m}"));
                let numbers: Vec<String> =
                    e.numbers.iter().map(|(k, v)| format!("{k}={v}")).collect();
                println!(
                    "  {:>8} ms {who:>4} {} {}",
                    e.time_ms,
                    e.what,
                    numbers.join(" ")
                );
            }
            if found.events.len() > 40 {
                println!("  … {} more", found.events.len() - 40);
            }
        }
    }
}
