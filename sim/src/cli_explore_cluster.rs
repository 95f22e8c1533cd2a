//! `sim explore --cluster`: cluster-wide crash-state enumeration of
//! scenarios at chosen virtual instants, with its report and the command
//! that reproduces each failing combination.

use replica::bugs::KnownBugs;
use sim::explore::{ClusterOptions, ClusterReport, ClusterSink, explore_cluster};
use sim::scenario::Scenario;
use std::fmt::Write as _;
use std::process::ExitCode;
use std::time::Instant;

/// What `explore --cluster` was asked for.
pub struct ClusterArgs {
    pub seed: Option<u64>,
    pub at_ms: Vec<u64>,
    pub opts: ClusterOptions,
    /// The known-bug switches by name (for the reproduce commands).
    pub bugs: Vec<String>,
}

/// Explores each scenario at `args.at_ms`; exit 1 if a combination failed.
pub fn run(
    args: &ClusterArgs,
    bugs: KnownBugs,
    scenarios: Vec<Scenario>,
) -> anyhow::Result<ExitCode> {
    let opts = args.opts;
    let mut failed = 0;
    for sc in scenarios {
        let seed = args.seed.unwrap_or(sc.seed);
        let mut cfg = sc.config(seed, bugs, false);
        let sink = ClusterSink::new(args.at_ms.clone());
        cfg.capture = Some(sink.clone());
        // Wall-clock time, outside any simulation.
        let started = Instant::now();
        let run = sc.run_config(cfg.clone());
        let report = explore_cluster(&cfg, &sink, opts);
        let wall = started.elapsed().as_secs_f64();
        println!(
            "explore --cluster {} seed {seed}: run {}",
            sc.display_name(),
            if run.passed() { "ok" } else { "VIOLATION" }
        );
        print!("{}", report_text(&report, wall));
        print!("{}", failures_text(&report, args, &sc, seed));
        failed += report.failures.len();
    }
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// One line per instant and a total.
fn report_text(report: &ClusterReport, wall: f64) -> String {
    let mut out = String::new();
    for i in &report.instants {
        let members: Vec<String> = i
            .members
            .iter()
            .map(|(id, tried, distinct, kept)| format!("m{id} {tried}->{distinct}->{kept}"))
            .collect();
        let _ = writeln!(
            out,
            "  instant {}ms{}: applied {}, {} writes acknowledged; states per member (plans -> distinct -> kept): {}; combinations {} before pruning, {} after, {} booted{}",
            i.at_ms,
            i.syncing
                .as_ref()
                .map_or_else(String::new, |(m, p)| format!(
                    ", before m{m}'s sync of {}",
                    p.display()
                )),
            i.applied,
            i.acked,
            members.join(", "),
            i.unpruned,
            i.combinations,
            i.booted,
            i.skipped
                .as_ref()
                .map_or_else(String::new, |why| format!(" (skipped: {why})")),
        );
    }
    for at in &report.missed {
        let _ = writeln!(out, "  instant {at}ms: no member synced anything after it");
    }
    let booted = report.booted();
    let _ = writeln!(
        out,
        "explore --cluster total: {} instants, {booted} combinations booted, {} failed, {wall:.1}s wall ({:.1} combinations/s)",
        report.instants.len(),
        report.failures.len(),
        booted as f64 / wall.max(1e-9)
    );
    out
}

/// The first failures, each with its per-member plan and a command that
/// boots that combination alone.
fn failures_text(report: &ClusterReport, args: &ClusterArgs, sc: &Scenario, seed: u64) -> String {
    let mut out = String::new();
    let bug_args: String = args.bugs.iter().map(|b| format!(" --bug {b}")).collect();
    let features = if args.bugs.is_empty() {
        ""
    } else {
        " --features known-bugs"
    };
    for f in report.failures.iter().take(10) {
        let _ = writeln!(
            out,
            "CLUSTER CRASH STATE at {}ms, combination {}:",
            f.at_ms, f.combination
        );
        for (id, plan) in &f.plans {
            let _ = writeln!(out, "    m{id}: {plan}");
        }
        for p in &f.problems {
            let _ = writeln!(out, "  {p}");
        }
        for d in f.diffs.iter().take(10) {
            let _ = writeln!(out, "    {d}");
        }
        let _ = writeln!(
            out,
            "  reproduce: cargo run --release -p sim{features} -- explore --cluster --scenario {} --seed {seed} --at-ms {} --per-member {} --combination {}{bug_args}",
            sc.display_name(),
            f.at_ms,
            args.opts.per_member,
            f.combination
        );
    }
    if report.failures.len() > 10 {
        let _ = writeln!(
            out,
            "… {} more failing combinations",
            report.failures.len() - 10
        );
    }
    out
}
