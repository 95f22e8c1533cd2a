//! The `run`, `replay`, `sweep` and `bench` subcommands.

use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use replica::bugs::KnownBugs;
use sim::config::RunConfig;
use sim::fault::FaultClass;
use sim::pin::Overrides;
use sim::report_merge::SweepSummary;
use sim::run::run as run_one;
use sim::scenario::{self, Scenario};
use sim::sweep::{self, JunitFile, Partition, Plan, SweepResult, run_many, run_sweep};
use std::collections::BTreeSet;
use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Settings shared by every random run.
#[derive(Args, Debug, Clone)]
pub struct RunSettings {
    /// `on`: each seed draws its world (cluster size, fault classes and
    /// rate, store settings, network, request pacing, duration); `off`: the
    /// fixed world (3 members, every fault class, 20 s) of earlier seeds.
    #[arg(long, default_value = "on", value_parser = parse_on_off, action = clap::ArgAction::Set)]
    pub swarm: bool,
    /// Cluster size (default: drawn; 3 with `--swarm off`).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=7))]
    pub nodes: Option<u64>,
    /// Virtual time with traffic and faults, e.g. `20s`, `500ms` (default:
    /// drawn; 20s with `--swarm off`).
    #[arg(long, value_parser = parse_duration)]
    pub duration: Option<Duration>,
    /// Fault classes to inject: any of crash, power, torn, eio, net, point,
    /// cluster-power, bitrot, enospc, read-error, misdirect, slow (comma
    /// separated), or `none` (default: drawn; all with `--swarm off`).
    #[arg(long, value_parser = sim::pin::parse_faults)]
    pub faults: Option<BTreeSet<FaultClass>>,
    /// Set one dimension of the world, the others drawn (or fixed with
    /// `--swarm off`), e.g. `--pin latency=20 --pin mix=fixed`; repeat for
    /// more. DIM is nodes, faults, fault_rate (per s), duration (s),
    /// snapshot_count, batch_limit, batch_interval (ms), wal_segment (KiB),
    /// packet_loss (per mille), latency (ms, the largest),
    /// request_interval (ms), mix (`reads:30,put:45,…,stretch:L/G`, any
    /// subset over the fixed mix), network or settings; VALUE `fixed` is
    /// the fixed world's (`--pin network=fixed`: its packet loss and
    /// latency). The reproduce command carries every pin that differs from
    /// the draw.
    #[arg(long = "pin", value_name = "DIM=VALUE")]
    pub pins: Vec<sim::pin::Pin>,
    /// Re-introduce a known historical bug (builds with `--features
    /// known-bugs` only), e.g. `cindex-only-on-explicit-commit`.
    #[arg(long = "bug")]
    pub bugs: Vec<String>,
}

impl RunSettings {
    pub(crate) fn config(&self, seed: u64) -> anyhow::Result<RunConfig> {
        Ok(self.config_with(seed, crate::parse_bugs(&self.bugs)?))
    }

    /// [`RunSettings::config`] with the bug switches already parsed.
    fn config_with(&self, seed: u64, bugs: KnownBugs) -> RunConfig {
        let set = Overrides {
            nodes: self.nodes,
            duration_ms: self.duration.map(|d| d.as_millis() as u64),
            faults: self.faults.clone(),
            pins: self.pins.clone(),
        };
        let mut cfg = RunConfig::random(seed, self.swarm, &set);
        cfg.bugs = bugs;
        cfg
    }
}

#[derive(Args, Debug)]
pub struct RunArgs {
    /// The run's seed: same seed, same run (default: 1, or the scenario's).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Run a scenario file (a path, or a name in `scenarios/`) instead of
    /// the random workload; the cluster settings come from the file.
    #[arg(long)]
    pub scenario: Option<String>,
    #[command(flatten)]
    pub settings: RunSettings,
    /// Print the virtual-time timeline (member ids, faults, restarts,
    /// applies, acknowledgements).
    #[arg(long)]
    pub trace: bool,
    /// Run twice and compare the hashes of the two event traces.
    #[arg(long)]
    pub check_determinism: bool,
    /// Write the run's events as a Chrome trace-event JSON file (open it in
    /// Perfetto or chrome://tracing): one track per member, virtual time.
    #[arg(long)]
    pub trace_out: Option<std::path::PathBuf>,
    /// On a linearizability failure, write its minimal failing sub-history
    /// as a self-contained HTML page (one lane per client session, the
    /// operations as bars on virtual time, the failing ones in red).
    #[arg(long)]
    pub history_out: Option<std::path::PathBuf>,
}

/// Writes the first client-history failure of `report` as an HTML page.
fn write_history(path: &std::path::Path, report: &sim::run::RunReport) -> anyhow::Result<()> {
    let (Some(history), Some(failure)) = (&report.clients.history, report.clients.failures.first())
    else {
        println!("history: no client-history failure, nothing written");
        return Ok(());
    };
    let title = format!(
        "{} seed {}: {}",
        report.config.scenario.as_deref().unwrap_or("random run"),
        report.config.seed,
        failure.key.as_deref().unwrap_or("-")
    );
    let page = sim::linearize::render(&title, &history.ops, failure);
    std::fs::write(path, page)
        .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
    println!(
        "history: {} failing operations on key {} written to {}",
        failure.ops.len(),
        failure.key.as_deref().unwrap_or("-"),
        path.display()
    );
    Ok(())
}

pub(crate) fn default_jobs() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

#[derive(Args, Debug)]
pub struct SweepArgs {
    /// Seeds to run, as `A..B` (B excluded).
    #[arg(long, default_value = "1..21", value_parser = parse_range)]
    pub seeds: std::ops::Range<u64>,
    /// Worker threads (each seed's outcome is the same for any value).
    #[arg(long, default_value_t = default_jobs())]
    pub jobs: usize,
    /// Run every catalogue scenario whose name matches this glob (`*`,
    /// `?`; e.g. `'*'`, `'0?-*'`) with each seed, instead of the random run.
    #[arg(long)]
    pub scenarios: Option<String>,
    /// Without `--scenarios`, the sweep also runs every catalogue scenario
    /// once with its default seed; this leaves them out.
    #[arg(long)]
    pub no_catalogue: bool,
    /// Start no new run after this much wall time (e.g. `5m`, `90s`); the
    /// summary says how many ran.
    #[arg(long, value_parser = parse_duration)]
    pub time_budget: Option<Duration>,
    /// Write a JUnit XML report here: one test case per (scenario, seed).
    #[arg(long)]
    pub junit: Option<std::path::PathBuf>,
    /// Write the sweep's summary (tables, failed runs) here as JSON, for
    /// `sim merge-reports`.
    #[arg(long)]
    pub summary: Option<std::path::PathBuf>,
    /// Run only share I of N of the sweep's runs (`count:I/N` or `I/N`, as
    /// `cargo nextest --partition`): runs are dealt round-robin, so the N
    /// partitions are disjoint and together are the whole sweep.
    #[arg(long, default_value = "count:1/1")]
    pub partition: Partition,
    /// Probe-guided scheduling: run `--budget-runs` consecutive seeds from
    /// the start of `--seeds` (random runs only), each with the knobs the
    /// guidance policy chooses from the coverage seen so far.
    #[arg(long, requires = "budget_runs")]
    pub guided: bool,
    /// Runs of a guided sweep (its budget is in runs, not wall time, so it
    /// is deterministic).
    #[arg(long)]
    pub budget_runs: Option<usize>,
    /// Write the coverage table as JSON here (default: beside the JUnit
    /// report, `NAME.coverage.json`).
    #[arg(long)]
    pub coverage_json: Option<std::path::PathBuf>,
    #[command(flatten)]
    pub settings: RunSettings,
}

#[derive(Args, Debug)]
pub struct BenchArgs {
    /// How many seeds to time.
    #[arg(long, default_value_t = 40)]
    pub seeds: u64,
    /// Worker threads.
    #[arg(long, default_value_t = default_jobs())]
    pub jobs: usize,
    /// Seeds per catalogue scenario to time (0: skip the catalogue).
    #[arg(long, default_value_t = 3)]
    pub scenario_seeds: u64,
    /// Backup rounds to time (`bench-backup`'s round; 0: skip).
    #[arg(long, default_value_t = 50)]
    pub backup_rounds: u64,
    /// Also print the scaling table: cost per simulated second for 1, 3,
    /// 5 and 7 members, 50, 100 and 200 requests/s, 20, 60 and 180 s runs
    /// (`--seeds` seeds per cell).
    #[arg(long)]
    pub scaling: bool,
    #[command(flatten)]
    pub settings: RunSettings,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    let (num, unit) = s
        .find(|c: char| !c.is_ascii_digit())
        .map_or((s, "s"), |i| s.split_at(i));
    let n: u64 = num.parse().map_err(|_| format!("bad duration {s:?}"))?;
    match unit {
        "ms" => Ok(Duration::from_millis(n)),
        "s" => Ok(Duration::from_secs(n)),
        "m" => Ok(Duration::from_secs(n * 60)),
        _ => Err(format!("bad duration unit in {s:?}: use ms, s or m")),
    }
}

fn parse_on_off(s: &str) -> Result<bool, String> {
    match s {
        "on" => Ok(true),
        "off" => Ok(false),
        _ => Err(format!("expected on or off, got {s:?}")),
    }
}

fn parse_range(s: &str) -> Result<std::ops::Range<u64>, String> {
    let (a, b) = s
        .split_once("..")
        .ok_or_else(|| format!("expected A..B, got {s:?}"))?;
    let a: u64 = a.parse().map_err(|_| format!("bad seed {a:?}"))?;
    let b: u64 = b.parse().map_err(|_| format!("bad seed {b:?}"))?;
    if b <= a {
        return Err(format!("empty seed range {s:?}"));
    }
    Ok(a..b)
}

pub fn run(args: RunArgs, trace: bool) -> anyhow::Result<ExitCode> {
    let trace = trace || args.trace;
    let scenario = match &args.scenario {
        Some(name) => Some(Scenario::load(&scenario::find(name)?)?),
        None => None,
    };
    let seed = args
        .seed
        .unwrap_or_else(|| scenario.as_ref().map_or(1, |s| s.seed));
    let bugs = crate::parse_bugs(&args.settings.bugs)?;
    let keep_trace = args.trace_out.is_some();
    let execute = |trace: bool| match &scenario {
        Some(s) => {
            let mut cfg = s.config(seed, bugs, trace);
            cfg.keep_trace = keep_trace;
            s.run_config(cfg)
        }
        None => {
            let mut cfg = args.settings.config_with(seed, bugs);
            cfg.trace = trace;
            cfg.keep_trace = keep_trace;
            run_one(&cfg)
        }
    };
    if scenario.is_none() {
        println!("{}", args.settings.config_with(seed, bugs).world_line());
    }
    let report = execute(trace);
    let cfg = report.config.clone();
    println!("{}", report.summary());
    println!("probes: {}", report.probes.summary());
    if cfg.scenario.is_none() {
        println!("  {}", cfg.world_line());
    }
    if let Some(path) = &args.trace_out {
        let members: Vec<u64> = (1..=cfg.nodes + cfg.spares).collect();
        let doc = sim::chrome_trace::to_json(&report.trace_records, &members);
        std::fs::write(path, serde_json::to_vec(&doc)?)
            .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
        println!(
            "trace: {} events written to {}",
            report.trace_records.len(),
            path.display()
        );
    }
    println!(
        "client history: {} operations, {} keys searched in {} steps ({} unknown), checked in {:.1} ms",
        report.stats.requests + report.stats.linearizable_reads + report.stats.serializable_reads,
        report.clients.keys,
        report.stats.linearize_steps,
        report.stats.linearize_unknown,
        report.clients.wall.as_secs_f64() * 1000.0
    );
    if let Some(path) = &args.history_out {
        write_history(path, &report)?;
    }
    if args.check_determinism {
        let again = execute(false);
        if again.trace_hash != report.trace_hash || again.trace_events != report.trace_events {
            println!(
                "NONDETERMINISM: seed {} gave trace {:016x} ({} events), then {:016x} ({} events)",
                cfg.seed,
                report.trace_hash,
                report.trace_events,
                again.trace_hash,
                again.trace_events
            );
            return Ok(ExitCode::from(1));
        }
        println!(
            "deterministic: two runs of seed {} gave the same trace {:016x} ({} events)",
            cfg.seed, report.trace_hash, report.trace_events
        );
    }
    if !report.passed() {
        print!("{}", report.failure_report());
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}

fn progress(len: u64) -> ProgressBar {
    let bar = ProgressBar::new(len);
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} runs  {msg}  [{elapsed_precise}]")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar
}

/// The sweep's runs: every matching catalogue scenario with each seed, or
/// the random run's seeds (after the catalogue at its default seeds, unless
/// `--no-catalogue`).
fn sweep_plan(args: &SweepArgs) -> anyhow::Result<Plan> {
    let bugs = crate::parse_bugs(&args.settings.bugs)?;
    let mut plan = Plan::default();
    if let Some(pattern) = &args.scenarios {
        let found = sweep::catalogue_matching(pattern)?;
        anyhow::ensure!(
            !found.is_empty(),
            "no scenario in {} matches {pattern:?}",
            scenario::catalogue_dir().display()
        );
        for sc in found {
            plan.scenario(Arc::new(sc), args.seeds.clone(), bugs);
        }
        plan.partition(args.partition);
        return Ok(plan);
    }
    if !args.no_catalogue {
        for sc in sweep::catalogue_matching("*")? {
            let seed = sc.seed;
            plan.scenario(Arc::new(sc), seed..seed + 1, bugs);
        }
    }
    let settings = args.settings.clone();
    plan.random(
        args.seeds.clone(),
        Arc::new(move |seed| settings.config_with(seed, bugs)),
    );
    plan.partition(args.partition);
    Ok(plan)
}

/// Runs the sweep under a progress bar that counts failures and prints each
/// failed run's report as it finishes.
fn sweep_with_progress(
    plan: &Plan,
    threads: usize,
    started: Instant,
    deadline: Option<Instant>,
    cases: &mut (dyn Write + Send),
) -> (SweepResult, std::io::Result<()>) {
    let bar = progress(plan.len() as u64);
    let failed = AtomicU64::new(0);
    let swept = run_sweep(plan, threads, deadline, cases, &|o| {
        if !o.report.passed() {
            failed.fetch_add(1, Ordering::Relaxed);
            // `println` on a hidden bar (not a terminal) prints nothing.
            bar.suspend(|| print!("{}", o.report.failure_report()));
        }
        let done = bar.position() + 1;
        let rate = done as f64 / started.elapsed().as_secs_f64().max(1e-9);
        bar.set_message(format!(
            "{} failed, {rate:.1} runs/s",
            failed.load(Ordering::Relaxed)
        ));
        bar.inc(1);
    });
    bar.finish_and_clear();
    swept
}

pub fn sweep(args: SweepArgs) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(
        !(args.guided && args.partition != Partition::default()),
        "--guided chooses each run from the coverage of the runs before it: it cannot be partitioned"
    );
    if args.guided {
        return guided_sweep(&args);
    }
    let plan = sweep_plan(&args)?;
    let mut junit = args.junit.as_deref().map(JunitFile::create);
    let mut no_junit = std::io::sink();
    let cases: &mut (dyn Write + Send) = match &mut junit {
        Some(file) => file,
        None => &mut no_junit,
    };
    // Wall-clock time is read here, outside any simulation: it decides
    // which runs start, never how a run goes.
    let started = Instant::now();
    let deadline = args.time_budget.map(|b| started + b);
    let (result, cases_written) = sweep_with_progress(&plan, args.jobs, started, deadline, cases);
    print!("{}", sweep::summary_table(&result.rows));
    print!("{}", sweep::fired_table(&result.fired));
    if args.partition != Partition::default() {
        println!(
            "partition {} of the sweep's {} runs",
            args.partition,
            plan.unpartitioned_len()
        );
    }
    print!("{}", result.coverage.table());
    write_coverage_json(&args, &result)?;
    print!("{}", result.dimensions.table());
    println!(
        "sweep: {} runs, {} failed, {:.0}s simulated in {:.1}s wall ({} jobs)",
        result.runs,
        result.failed.len(),
        result.simulated_ms as f64 / 1000.0,
        started.elapsed().as_secs_f64(),
        args.jobs
    );
    if result.not_started > 0 {
        println!(
            "time budget reached: {} of {} runs ran, {} not started",
            result.runs,
            plan.len(),
            result.not_started
        );
    }
    if let (Some(file), Some(path)) = (junit, &args.junit) {
        cases_written
            .and_then(|()| file.finish(&result))
            .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
    }
    if let Some(path) = &args.summary {
        let summary = SweepSummary::of(&result, args.partition);
        std::fs::write(path, serde_json::to_string_pretty(&summary)?)
            .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
    }
    for f in &result.failed {
        println!("  {} seed {} failed: {}", f.scenario, f.seed, f.reproduce);
    }
    Ok(if result.failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// `sweep --guided`: the policy chooses each run's knobs; prints the
/// coverage table and the runs per arm.
fn guided_sweep(args: &SweepArgs) -> anyhow::Result<ExitCode> {
    let bugs = crate::parse_bugs(&args.settings.bugs)?;
    let settings = args.settings.clone();
    let base = move |seed| settings.config_with(seed, bugs);
    let budget = args.budget_runs.unwrap_or(0);
    let started = Instant::now();
    let result = sim::guided::run_guided(&base, args.seeds.start, budget, args.jobs, false);
    print!("{}", result.coverage.table());
    let arms: Vec<String> = result
        .arm_runs
        .iter()
        .map(|(a, n)| format!("{a} {n}"))
        .collect();
    println!("guided: runs per arm: {}", arms.join(", "));
    println!(
        "guided sweep: {} runs from seed {}, {} probes hit, {} failed, {:.1}s wall",
        result.runs,
        args.seeds.start,
        result.coverage.probes_hit(),
        result.failed.len(),
        started.elapsed().as_secs_f64()
    );
    if let Some(path) = &args.coverage_json {
        let json = serde_json::to_string_pretty(&result.coverage.to_json(result.runs))?;
        std::fs::write(path, json + "\n")?;
    }
    for (seed, arm, reproduce) in &result.failed {
        println!("  random seed {seed} (arm {arm}) failed: {reproduce}");
    }
    Ok(if result.failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Writes the sweep's coverage as JSON where `--coverage-json` says, or
/// beside the JUnit report.
fn write_coverage_json(args: &SweepArgs, result: &SweepResult) -> anyhow::Result<()> {
    let path = match (&args.coverage_json, &args.junit) {
        (Some(path), _) => path.clone(),
        (None, Some(junit)) => sim::coverage::json_path_beside(junit),
        (None, None) => return Ok(()),
    };
    let json = serde_json::to_string_pretty(&result.coverage.to_json(result.runs))?;
    std::fs::write(&path, json + "\n")
        .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))
}

pub fn bench(args: BenchArgs) -> anyhow::Result<ExitCode> {
    bench_random(&args)?;
    if args.scenario_seeds > 0 {
        bench_catalogue(&args)?;
    }
    bench_explore()?;
    if args.backup_rounds > 0 {
        bench_backup(args.backup_rounds)?;
    }
    if args.scaling {
        crate::cli_scaling::print_table(args.seeds, args.jobs, &|seed| args.settings.config(seed))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// The random run's seeds: the table's head and its first rows.
fn bench_random(args: &BenchArgs) -> anyhow::Result<()> {
    let configs = (1..=args.seeds)
        .map(|seed| args.settings.config(seed))
        .collect::<anyhow::Result<Vec<_>>>()?;
    // Wall-clock time is measured here, outside any simulation: it never
    // reaches a run's outcome.
    let started = Instant::now();
    let reports = run_many(&configs, args.jobs, &|_| {});
    let wall = started.elapsed().as_secs_f64();
    let floor = sim::floor::Floor::measure()?;
    let simulated_s: f64 = reports.iter().map(|r| r.simulated_ms as f64 / 1000.0).sum();
    let failed = reports.iter().filter(|r| !r.passed()).count();
    println!("| figure ({} jobs) | value |\n| --- | --- |", args.jobs);
    println!("| random seeds | {} ({failed} failed) |", args.seeds);
    println!("| simulated s per wall s | {:.0} |", simulated_s / wall);
    println!(
        "| seeds per minute | {:.0} |",
        args.seeds as f64 / wall * 60.0
    );
    println!(
        "| wall s per seed per job | {:.3} |",
        wall * args.jobs as f64 / args.seeds as f64
    );
    print_floor(&floor, &reports, wall * args.jobs as f64);
    Ok(())
}

/// The component costs measured in this process, and the run's cost
/// (`job_s`: wall time × jobs) as a multiple of the floor they imply.
fn print_floor(floor: &sim::floor::Floor, reports: &[sim::run::RunReport], job_s: f64) {
    let implied: f64 = reports
        .iter()
        .map(|r| floor.implied_s(&r.stats, r.config.nodes))
        .sum();
    println!(
        "| floor: raft replication, µs per entry (3 raft-rs nodes) | {:.1} |",
        floor.raft_entry_us
    );
    println!(
        "| floor: backend commit of 10 puts + meta, µs (memory disk) | {:.1} |",
        floor.commit_mem_us
    );
    println!(
        "| floor: backend commit of 10 puts + meta, µs (simulated disk) | {:.1} |",
        floor.commit_sim_us
    );
    println!(
        "| floor: backend reopen of 200 KiB, µs | {:.0} |",
        floor.reopen_us
    );
    println!("| floor: member state dump, µs | {:.0} |", floor.dump_us);
    println!("| floor the runs imply, s (entries, commits, boots, dumps) | {implied:.2} |");
    println!(
        "| run cost / floor (wall s × jobs ÷ floor s) | {:.1}× |",
        job_s / implied.max(1e-9)
    );
}

/// Every catalogue scenario with seeds 1..=`scenario_seeds`.
fn bench_catalogue(args: &BenchArgs) -> anyhow::Result<()> {
    let bugs = crate::parse_bugs(&args.settings.bugs)?;
    let scenarios = sweep::catalogue_matching("*")?;
    let count = scenarios.len();
    let mut plan = Plan::default();
    for sc in scenarios {
        plan.scenario(Arc::new(sc), 1..args.scenario_seeds + 1, bugs);
    }
    let started = Instant::now();
    let (result, _) = run_sweep(&plan, args.jobs, None, &mut std::io::sink(), &|_| {});
    let wall = started.elapsed().as_secs_f64();
    let simulated_s = result.simulated_ms as f64 / 1000.0;
    println!(
        "| catalogue runs ({} scenarios × {} seeds) | {} ({} failed) |",
        count,
        args.scenario_seeds,
        result.runs,
        result.failed.len()
    );
    println!(
        "| catalogue runs per second | {:.1} |",
        result.runs as f64 / wall.max(1e-9)
    );
    println!(
        "| catalogue simulated s per wall s | {:.0} |",
        simulated_s / wall.max(1e-9)
    );
    Ok(())
}

/// Crash-state enumeration on one scenario's member.
fn bench_explore() -> anyhow::Result<()> {
    let sc = Scenario::load(&scenario::find("12-crash-during-replay")?)?;
    let sink = sim::explore::CaptureSink::new(2, 400, false);
    let mut cfg = sc.config(sc.seed, replica::bugs::KnownBugs::NONE, false);
    cfg.capture = Some(sink.clone());
    sc.run_config(cfg.clone());
    let started = Instant::now();
    let report = sim::explore::explore(&cfg, &sink, 100_000);
    let wall = started.elapsed().as_secs_f64();
    println!(
        "| explore states per second (12-crash-during-replay, member 2: {} states, {} failed, 1 thread) | {:.0} |",
        report.states,
        report.failures.len(),
        report.states as f64 / wall.max(1e-9)
    );
    Ok(())
}

fn bench_backup(rounds: u64) -> anyhow::Result<()> {
    let started = Instant::now();
    for r in 0..rounds {
        crate::cli_backup::round(1 + r, 50, replica::bugs::KnownBugs::NONE)?;
    }
    let wall = started.elapsed().as_secs_f64();
    println!(
        "| backup rounds per second (50 entries → backup → restore → compare, 1 thread) | {:.1} |",
        rounds as f64 / wall.max(1e-9)
    );
    Ok(())
}
