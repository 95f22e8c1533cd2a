//! `sim bench --scaling`: how a run's cost grows with cluster size, request
//! rate and duration. Each cell runs the same seeds with one setting
//! changed from the baseline (3 members, 100 requests/s offered, 20 s; the
//! rest of each seed's world as `--swarm` says) and
//! reports wall milliseconds per simulated second, and that cost divided by
//! the quantity it should be proportional to, so a non-linear cell stands
//! out as a drift in the last column.

use sim::config::RunConfig;
use sim::run::RunReport;
use sim::sweep::run_many;
use std::time::Instant;

/// Offered requests per second: every client session sends one request,
/// waits for its answer and pauses `request_interval_ms`, so the offered
/// rate is sessions × 1000 / interval (the achieved rate is lower by the
/// round trips and by unavailability under faults; the table shows it).
const SESSIONS: u64 = 4;

struct Cell {
    dimension: &'static str,
    /// What the cost should be proportional to, besides simulated time.
    per: &'static str,
    configure: fn(&mut RunConfig, u64),
}

const CELLS: [Cell; 3] = [
    Cell {
        dimension: "members",
        per: "member",
        configure: |c, v| c.nodes = v,
    },
    Cell {
        dimension: "requests/s offered",
        per: "request",
        configure: |c, v| c.request_interval_ms = SESSIONS * 1000 / v,
    },
    Cell {
        dimension: "simulated s",
        per: "simulated s",
        configure: |c, v| c.duration_ms = v * 1000,
    },
];

/// The values each dimension takes.
fn values(dimension: &str) -> &'static [u64] {
    match dimension {
        "members" => &[1, 3, 5, 7],
        "requests/s offered" => &[50, 100, 200],
        _ => &[20, 60, 180],
    }
}

/// How the bench makes a seed's config (its settings and switches).
pub type ConfigOf<'a> = &'a dyn Fn(u64) -> anyhow::Result<RunConfig>;

/// Prints the scaling table for seeds 1..=`seeds` of each cell, on `jobs`
/// workers.
pub fn print_table(seeds: u64, jobs: usize, config: ConfigOf<'_>) -> anyhow::Result<()> {
    println!(
        "\n| dimension | value | runs | requests/s achieved | wall ms per simulated s | wall ms per simulated s per unit |\n| --- | --- | --- | --- | --- | --- |"
    );
    for cell in &CELLS {
        for &value in values(cell.dimension) {
            let configs = (1..=seeds)
                .map(|seed| {
                    let mut cfg = baseline(config, seed)?;
                    (cell.configure)(&mut cfg, value);
                    Ok(cfg)
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            let started = Instant::now();
            let reports = run_many(&configs, jobs, &|_| {});
            let job_ms = started.elapsed().as_secs_f64() * 1000.0 * jobs as f64;
            let (rate, per_sim_s) = costs(&reports, job_ms);
            let unit = match cell.per {
                "member" => value as f64,
                "request" => rate.max(1e-9),
                _ => 1.0,
            };
            println!(
                "| {} | {value} | {} | {rate:.0} | {per_sim_s:.1} | {:.2} per {} |",
                cell.dimension,
                reports.len(),
                per_sim_s / unit,
                cell.per
            );
        }
    }
    Ok(())
}

/// The baseline cell: the seed's world as the bench's flags make it (the
/// swarm's, or the fixed one with `--swarm off`), with 3 members, 100
/// requests/s offered and 20 s.
fn baseline(config: ConfigOf<'_>, seed: u64) -> anyhow::Result<RunConfig> {
    let mut cfg = config(seed)?;
    cfg.nodes = 3;
    cfg.request_interval_ms = SESSIONS * 1000 / 100;
    cfg.duration_ms = 20_000;
    Ok(cfg)
}

/// Achieved requests per simulated second, and wall ms per simulated
/// second, over `reports` that took `job_ms` of worker time.
fn costs(reports: &[RunReport], job_ms: f64) -> (f64, f64) {
    let simulated_s: f64 = reports.iter().map(|r| r.simulated_ms as f64 / 1000.0).sum();
    let requests: u64 = reports.iter().map(|r| r.stats.requests).sum();
    let simulated_s = simulated_s.max(1e-9);
    (requests as f64 / simulated_s, job_ms / simulated_s)
}
