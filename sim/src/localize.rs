//! Bug-onset localisation (`sim localize`): when did a failing run's
//! failure become inevitable?
//!
//! The run is replayed up to virtual time `t` exactly (its prefix is
//! deterministic), then forked: every random stream after `t` is re-seeded
//! ([`Fork`]), and `M` such suffixes are run. The share that fail with the
//! same invariant estimates the failure probability given the prefix. Early
//! forks redraw the faults that caused the failure and mostly pass; forks
//! after the decisive event (a batch commit that persisted a premature
//! consistent index, say) fail whatever comes next. The onset is the
//! earliest point from which every later point fails in at least
//! `certain` of its suffixes; bisection narrows it, and the events of the
//! original run inside the final window are named.

use crate::checker::Invariant;
use crate::config::RunConfig;
use crate::pool::run_pool;
use crate::run::{Fork, RunReport, run_forked};
use crate::trace::TraceRecord;
use std::sync::Mutex;

/// How hard to look.
#[derive(Debug, Clone, Copy)]
pub struct LocalizeOptions {
    /// Evenly spaced fork points from 0 to the failure.
    pub points: usize,
    /// Suffixes run at each point.
    pub suffixes: u64,
    /// Bisection steps inside the onset window.
    pub refine_steps: u32,
    /// The failure share that counts as certain.
    pub certain: f64,
    pub jobs: usize,
}

/// The failure share at one fork point.
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    pub at_ms: u64,
    pub runs: u64,
    pub failures: u64,
}

impl Point {
    pub fn share(&self) -> f64 {
        self.failures as f64 / self.runs.max(1) as f64
    }
}

/// What localisation found.
#[derive(Debug, Clone)]
pub struct Localization {
    pub invariant: Invariant,
    /// When the original run's first violation was seen.
    pub failed_at_ms: u64,
    /// Every point tried, in time order (the grid and the bisection).
    pub points: Vec<Point>,
    /// The window `(after, by]`: forks at `after` may still pass, forks at
    /// `by` and later fail with at least the certain share. `None`: no
    /// point reached it (the failure stays a matter of luck to the end).
    pub onset: Option<(u64, u64)>,
    /// The original run's events inside the onset window.
    pub events: Vec<TraceRecord>,
    /// Every event of the original run.
    pub trace: Vec<TraceRecord>,
}

#[derive(Debug, thiserror::Error)]
pub enum LocalizeError {
    #[error("seed {0} passes: there is no failure to localise")]
    Passes(u64),
}

/// Localises the onset of `cfg`'s failure.
pub fn localize(cfg: &RunConfig, opts: &LocalizeOptions) -> Result<Localization, LocalizeError> {
    let mut traced = cfg.clone();
    traced.keep_trace = true;
    let original = run_forked(&traced, None);
    let Some(first) = original.violations.iter().min_by_key(|v| v.time_ms) else {
        return Err(LocalizeError::Passes(cfg.seed));
    };
    let invariant = first.invariant;
    // A fork takes effect only during the random phase.
    let last_fork = first.time_ms.min(cfg.duration_ms.saturating_sub(1));
    let grid: Vec<u64> = (0..opts.points.max(2))
        .map(|i| last_fork * i as u64 / (opts.points.max(2) as u64 - 1))
        .collect();
    let mut points = measure(cfg, invariant, &grid, opts);
    let mut onset = onset_window(&points, opts.certain);
    for _ in 0..opts.refine_steps {
        let Some((after, by)) = onset else { break };
        if by <= after + 1 {
            break;
        }
        let middle = after + (by - after) / 2;
        points.extend(measure(cfg, invariant, &[middle], opts));
        points.sort_by_key(|p| p.at_ms);
        onset = onset_window(&points, opts.certain);
    }
    let events = onset
        .map(|(after, by)| {
            original
                .trace_records
                .iter()
                .filter(|r| r.time_ms > after && r.time_ms <= by)
                .cloned()
                .collect()
        })
        .unwrap_or_default();
    Ok(Localization {
        invariant,
        failed_at_ms: first.time_ms,
        points,
        onset,
        events,
        trace: original.trace_records.clone(),
    })
}

/// Runs the suffixes of every fork point in `at`, on the worker pool.
fn measure(
    cfg: &RunConfig,
    invariant: Invariant,
    at: &[u64],
    opts: &LocalizeOptions,
) -> Vec<Point> {
    let per_point = opts.suffixes.max(1);
    let count = at.len() * per_point as usize;
    let failures = Mutex::new(vec![0u64; at.len()]);
    run_pool(
        count,
        opts.jobs,
        None,
        |job| {
            let point = job / per_point as usize;
            let fork = Fork {
                at_ms: at[point],
                suffix: 1 + (job as u64 % per_point),
            };
            (point, fails_with(&run_forked(cfg, Some(fork)), invariant))
        },
        |_, (point, failed)| {
            if failed {
                failures.lock().unwrap_or_else(|e| e.into_inner())[point] += 1;
            }
        },
    );
    let failures = failures.into_inner().unwrap_or_else(|e| e.into_inner());
    at.iter()
        .zip(failures)
        .map(|(&at_ms, failures)| Point {
            at_ms,
            runs: per_point,
            failures,
        })
        .collect()
}

fn fails_with(report: &RunReport, invariant: Invariant) -> bool {
    report.violations.iter().any(|v| v.invariant == invariant)
}

/// The window `(after, by]` between the last point below the certain share
/// and the first point from which every point is at or above it (`after` =
/// `by` when even the first point is certain).
pub fn onset_window(points: &[Point], certain: f64) -> Option<(u64, u64)> {
    let first_certain_run = points
        .iter()
        .rposition(|p| p.share() < certain)
        .map_or(0, |i| i + 1);
    let by = points.get(first_certain_run)?.at_ms;
    let after = first_certain_run
        .checked_sub(1)
        .map_or(by, |i| points[i].at_ms);
    Some((after, by))
}

/// The failure share over time as terminal bars.
pub fn plot(points: &[Point]) -> String {
    let mut out = String::new();
    for p in points {
        let width = (p.share() * 40.0).round() as usize;
        out.push_str(&format!(
            "{:>8} ms |{:<40}| {:>3}/{}\n",
            p.at_ms,
            "#".repeat(width),
            p.failures,
            p.runs
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn points(shares: &[(u64, u64)]) -> Vec<Point> {
        shares
            .iter()
            .map(|&(at_ms, failures)| Point {
                at_ms,
                runs: 10,
                failures,
            })
            .collect()
    }

    #[test]
    fn the_onset_is_where_failure_becomes_and_stays_certain() {
        let p = points(&[(0, 1), (100, 0), (200, 9), (300, 3), (400, 10), (500, 10)]);
        assert_eq!(onset_window(&p, 0.9), Some((300, 400)));
        let always = points(&[(0, 10), (100, 9)]);
        assert_eq!(onset_window(&always, 0.9), Some((0, 0)));
        let never = points(&[(0, 1), (100, 8)]);
        assert_eq!(onset_window(&never, 0.9), None);
    }
}
