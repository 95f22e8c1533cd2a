//! The `merge-reports` subcommand: the JUnit files and summaries of a
//! partitioned sweep (`sweep --partition I/N --junit F.xml --summary
//! F.json`) added up into one of each, with the tables a single sweep
//! prints.

use clap::Args;
use sim::report_merge::{JunitReport, SweepSummary};
use sim::sweep;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Args, Debug)]
pub struct MergeArgs {
    /// The partitions' reports: `*.xml` JUnit files and `*.json` summaries.
    #[arg(required = true)]
    pub inputs: Vec<PathBuf>,
    /// Write the merged JUnit report here.
    #[arg(long)]
    pub junit: Option<PathBuf>,
    /// Write the merged summary here.
    #[arg(long)]
    pub summary: Option<PathBuf>,
}

/// Exit 1 if any merged run failed (with each reproduce command), as the
/// sweep itself does; 2 on an unreadable input.
pub fn run(args: MergeArgs) -> anyhow::Result<ExitCode> {
    let mut junit: Option<JunitReport> = None;
    let mut summary: Option<SweepSummary> = None;
    for path in &args.inputs {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
        let name = path.display().to_string();
        match path.extension().and_then(|e| e.to_str()) {
            Some("xml") => {
                let report = JunitReport::parse(&name, &text)?;
                match &mut junit {
                    Some(merged) => merged.merge(report),
                    None => junit = Some(report),
                }
            }
            Some("json") => {
                let part: SweepSummary = serde_json::from_str(&text)
                    .map_err(|e| anyhow::anyhow!("{name}: not a sweep summary: {e}"))?;
                match &mut summary {
                    Some(merged) => merged.merge(&part),
                    None => summary = Some(part),
                }
            }
            _ => anyhow::bail!("{name}: expected a .xml JUnit report or a .json summary"),
        }
    }
    if let (Some(report), Some(merged)) = (&mut junit, &summary) {
        report.system_out = merged
            .to_result()
            .map_err(anyhow::Error::msg)?
            .dimensions
            .table();
    }
    if let (Some(report), Some(path)) = (&junit, &args.junit) {
        std::fs::write(path, report.render())
            .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
    }
    if let (Some(merged), Some(path)) = (&summary, &args.summary) {
        std::fs::write(path, serde_json::to_string_pretty(merged)?)
            .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
    }
    let failed = match (&summary, &junit) {
        (Some(merged), _) => print_summary(merged)?,
        (None, Some(report)) => {
            println!(
                "merged JUnit: {} runs, {} failed, {} skipped",
                report.tests, report.failures, report.skipped
            );
            report.failures
        }
        (None, None) => 0,
    };
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// The merged sweep's tables and failed runs; returns how many failed.
fn print_summary(merged: &SweepSummary) -> anyhow::Result<u64> {
    let result = merged.to_result().map_err(anyhow::Error::msg)?;
    print!("{}", sweep::summary_table(&result.rows));
    print!("{}", sweep::fired_table(&result.fired));
    print!("{}", result.dimensions.table());
    print!("{}", result.coverage.table());
    println!(
        "merged {} partitions ({}): {} runs, {} failed, {} not started, {:.0}s simulated",
        merged.partitions.len(),
        merged.partitions.join(", "),
        result.runs,
        result.failed.len(),
        result.not_started,
        result.simulated_ms as f64 / 1000.0
    );
    for f in &result.failed {
        println!("  {} seed {} failed: {}", f.scenario, f.seed, f.reproduce);
    }
    Ok(result.failed.len() as u64)
}
