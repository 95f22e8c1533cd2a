//! The `explore` subcommand: crash-state enumeration of scenarios, at a
//! member's syncs (power loss) and before each of its disk operations
//! (process crash).

use clap::Args;
use replica::bugs::KnownBugs;
use sim::explore::{CaptureSink, ExploreReport, explore};
use sim::pool::run_pool;
use sim::scenario::{self, Scenario};
use sim::scenario_file::Step;
use sim::sweep::catalogue_matching;
use std::fmt::Write as _;
use std::process::ExitCode;
use std::time::Instant;

#[derive(Args, Debug)]
pub struct ExploreArgs {
    /// The scenario to run (a path, or a name in `scenarios/`), or a glob
    /// over the catalogue's names (`'*'`: every scenario).
    #[arg(long)]
    pub scenario: String,
    /// The run's seed (default: the scenario's).
    #[arg(long)]
    pub seed: Option<u64>,
    /// The member whose states are explored.
    #[arg(long, default_value_t = 1)]
    pub member: u64,
    /// Explore every member of the scenario (one run per member).
    #[arg(long)]
    pub all_members: bool,
    /// Power-loss crash states to check per run, at most.
    #[arg(long, default_value_t = 5000)]
    pub max_states: u64,
    /// Syncs to capture, at most (each is a copy of the member's disk).
    #[arg(long, default_value_t = 400)]
    pub max_syncs: usize,
    /// Process-crash states (one before each disk operation) per run, at
    /// most; 0 turns process crashes off.
    #[arg(long, default_value_t = 5000)]
    pub max_process_states: u64,
    /// Also explore the syncs of the member's bootstrap (before its first
    /// boot completes).
    #[arg(long)]
    pub include_bootstrap: bool,
    /// Re-introduce a known historical bug (builds with `--features
    /// known-bugs` only).
    #[arg(long = "bug")]
    pub bugs: Vec<String>,
    /// Cluster-wide enumeration: at each `--at-ms` instant every member
    /// loses power at once; every combination of the members' power-loss
    /// states is booted as a cluster and checked.
    #[arg(long, requires = "at_ms")]
    pub cluster: bool,
    /// Virtual instants (ms) of the cluster-wide power loss, comma-separated.
    #[arg(long, value_delimiter = ',')]
    pub at_ms: Vec<u64>,
    /// Power-loss states per member in cluster mode, at most (after
    /// pruning the ones that leave the same durable image).
    #[arg(long, default_value_t = 3)]
    pub per_member: usize,
    /// Combinations booted per instant in cluster mode, at most.
    #[arg(long, default_value_t = 64)]
    pub max_combinations: u64,
    /// Boot only this combination of each instant (cluster mode; the
    /// reproduce command of a failure names it).
    #[arg(long)]
    pub combination: Option<u64>,
    /// Worker threads: (scenario, member) pairs explored at once (cluster
    /// mode: combinations booted at once).
    #[arg(long, default_value_t = std::thread::available_parallelism().map_or(1, |n| n.get()))]
    pub jobs: usize,
}

/// The scenarios `name` selects: a glob over the catalogue, or one file.
fn scenarios(name: &str) -> anyhow::Result<Vec<Scenario>> {
    if name.contains(['*', '?']) {
        let found = catalogue_matching(name)?;
        anyhow::ensure!(!found.is_empty(), "no catalogue scenario matches {name:?}");
        return Ok(found);
    }
    Ok(vec![Scenario::load(&scenario::find(name)?)?])
}

/// What exploring one (scenario, member) found: its report lines, and
/// its counts for the totals.
#[derive(Default)]
struct Explored {
    text: String,
    power_states: u64,
    process_states: u64,
    failures: usize,
}

/// Why crash-state enumeration cannot judge a scenario's run, if it cannot:
/// the reference states are kept per applied index, and a restore starts a
/// new log (index `i` names another entry after it); a misdirected write
/// damages the platter on purpose, so a crash state after it must refuse
/// to boot (the run quarantines that member), which enumeration would
/// count as a failure.
fn not_explorable(sc: &Scenario) -> Option<&'static str> {
    if sc.has_step(&|s| matches!(s, Step::SnapshotRestore { .. } | Step::BackupRestore { .. })) {
        return Some(
            "the run restores the cluster, and the per-index reference does not span two logs",
        );
    }
    if sc.has_step(&|s| matches!(s, Step::Misdirect { .. })) {
        return Some(
            "a misdirected write damages a platter on purpose, so states after it must not boot",
        );
    }
    None
}

pub fn run(args: ExploreArgs) -> anyhow::Result<ExitCode> {
    let bugs = crate::parse_bugs(&args.bugs)?;
    if args.cluster {
        let cluster = crate::cli_explore_cluster::ClusterArgs {
            seed: args.seed,
            at_ms: args.at_ms.clone(),
            opts: sim::explore::ClusterOptions {
                per_member: args.per_member,
                max_combinations: args.max_combinations,
                only: args.combination,
                jobs: args.jobs,
            },
            bugs: args.bugs.clone(),
        };
        return crate::cli_explore_cluster::run(&cluster, bugs, scenarios(&args.scenario)?);
    }
    let mut jobs = Vec::new();
    for sc in scenarios(&args.scenario)? {
        if let Some(why) = not_explorable(&sc) {
            println!("explore {}: skipped: {why}", sc.display_name());
            continue;
        }
        let seed = args.seed.unwrap_or(sc.seed);
        let cfg = sc.config(seed, bugs, false);
        let members: Vec<u64> = if args.all_members {
            (1..=cfg.nodes + cfg.spares).collect()
        } else {
            vec![args.member]
        };
        let sc = std::sync::Arc::new(sc);
        jobs.extend(members.into_iter().map(|m| (sc.clone(), seed, m)));
    }
    // Wall-clock time, outside any simulation.
    let started = Instant::now();
    let found: std::sync::Mutex<Vec<Option<Explored>>> =
        std::sync::Mutex::new((0..jobs.len()).map(|_| None).collect());
    let work = |i: usize| {
        let (sc, seed, member) = &jobs[i];
        explore_member(&args, bugs, (sc, *seed, *member))
    };
    run_pool(jobs.len(), args.jobs, None, work, |i, explored| {
        found.lock().unwrap_or_else(|e| e.into_inner())[i] = Some(explored);
    });
    let found = found.into_inner().unwrap_or_else(|e| e.into_inner());
    let mut totals = Explored::default();
    for e in found.into_iter().flatten() {
        print!("{}", e.text);
        totals.power_states += e.power_states;
        totals.process_states += e.process_states;
        totals.failures += e.failures;
    }
    let wall = started.elapsed().as_secs_f64();
    println!(
        "explore total: {} power-loss states, {} process-crash states, {} failed, {wall:.1}s wall on {} jobs ({:.0} states/s)",
        totals.power_states,
        totals.process_states,
        totals.failures,
        args.jobs,
        (totals.power_states + totals.process_states) as f64 / wall.max(1e-9)
    );
    Ok(if totals.failures == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Runs `sc` capturing `member`'s disk, explores its crash states, and
/// reports one line (and the failures).
fn explore_member(
    args: &ExploreArgs,
    bugs: KnownBugs,
    (sc, seed, member): (&Scenario, u64, u64),
) -> Explored {
    let mut cfg = sc.config(seed, bugs, false);
    let sink = if args.max_process_states > 0 {
        let store = cfg.node_config(member).store;
        CaptureSink::with_process_crashes(
            member,
            args.max_syncs,
            args.include_bootstrap,
            store,
            args.max_process_states,
        )
    } else {
        CaptureSink::new(member, args.max_syncs, args.include_bootstrap)
    };
    cfg.capture = Some(sink.clone());
    // Wall-clock time, outside any simulation: the run includes booting
    // the process-crash states.
    let started = Instant::now();
    let run = sc.run_config(cfg.clone());
    let report = explore(&cfg, &sink, args.max_states);
    let wall = started.elapsed().as_secs_f64();
    let process = report.process.clone().unwrap_or_default();
    let failures = report.failures.len() + process.failures.len();
    let mut text = format!(
        "explore {} seed {seed} member {member}: run {}; power loss: {} syncs, {} states ({} compared), {} failed; process crash: {} states ({} booted, {} distinct compared), {} failed; {:.2}s, {:.0} states/s\n",
        sc.display_name(),
        if run.passed() { "ok" } else { "VIOLATION" },
        report.sync_points,
        report.states,
        report.compared,
        report.failures.len(),
        process.states,
        process.booted,
        process.compared,
        process.failures.len(),
        wall,
        (report.states + process.states) as f64 / wall.max(1e-9),
    );
    print_failures(&mut text, &report);
    if failures > 0 {
        let bug_args: String = args.bugs.iter().map(|b| format!(" --bug {b}")).collect();
        let features = if args.bugs.is_empty() {
            ""
        } else {
            " --features known-bugs"
        };
        let _ = writeln!(
            text,
            "reproduce: cargo run --release -p sim{features} -- explore --scenario {} --seed {seed} --member {member} --max-states {} --max-syncs {} --max-process-states {}{bug_args}",
            sc.display_name(),
            args.max_states,
            args.max_syncs,
            args.max_process_states
        );
    }
    Explored {
        text,
        power_states: report.states,
        process_states: process.states,
        failures,
    }
}

fn print_failures(out: &mut String, report: &ExploreReport) {
    for f in report.failures.iter().take(10) {
        let _ = writeln!(
            out,
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
            let _ = writeln!(out, "    {d}");
        }
    }
    if report.failures.len() > 10 {
        let _ = writeln!(
            out,
            "… {} more failing power-loss states",
            report.failures.len() - 10
        );
    }
    let Some(process) = &report.process else {
        return;
    };
    for f in process.failures.iter().take(10) {
        let _ = writeln!(
            out,
            "PROCESS CRASH before disk operation #{} ({} {}): {}",
            f.at.op_index,
            f.at.op.name(),
            f.at.path.display(),
            f.detail
        );
        for d in f.diffs.iter().take(10) {
            let _ = writeln!(out, "    {d}");
        }
    }
    if process.failures.len() > 10 {
        let _ = writeln!(
            out,
            "… {} more failing process-crash states",
            process.failures.len() - 10
        );
    }
}
