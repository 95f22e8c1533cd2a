//! The client history's check. It runs after the simulation has finished
//! (outside madsim, so its wall time is real time): the linearizability
//! search and the revision-order checks of `linearize`, as violations of
//! the run. A scenario's `check` step also runs it on the history so far
//! ([`Supervisor::check_clients_so_far`]).

use super::RunReport;
use super::supervisor::Supervisor;
use crate::checker::client_violations;
use crate::linearize::{self, Failure, History, Kind, RUN_BUDGET};
use std::sync::Arc;
use std::time::Duration;

/// A run's client history and what its check found.
#[derive(Debug, Clone, Default)]
pub struct ClientCheck {
    /// The history, until it is checked; kept afterwards only when the
    /// check failed (for `--history-out`).
    pub history: Option<Arc<History>>,
    pub failures: Vec<Failure>,
    /// Keys searched, and the wall time the check took.
    pub keys: u64,
    pub wall: Duration,
    /// The kinds of failure a scenario's `check` step already reported
    /// as violations of the run.
    pub reported: Vec<Kind>,
}

impl ClientCheck {
    pub fn of(history: History) -> ClientCheck {
        ClientCheck {
            history: Some(Arc::new(history)),
            ..ClientCheck::default()
        }
    }
}

impl RunReport {
    /// Checks the client history (once) and adds its violations.
    pub fn check_clients(&mut self) {
        let Some(history) = self.clients.history.clone() else {
            return;
        };
        if !self.clients.failures.is_empty() || self.clients.keys > 0 {
            return;
        }
        let start = std::time::Instant::now();
        let report = linearize::check_with(
            &history.ops,
            &history.applications,
            &history.interrupted,
            RUN_BUDGET,
        );
        self.clients.wall = start.elapsed();
        self.stats.linearize_unknown += report.unknown;
        self.stats.linearize_steps += report.steps;
        // A `check` step may have reported a kind of failure already.
        for (kind, v) in client_violations(&history.ops, &report) {
            if !self.clients.reported.contains(&kind) {
                self.violations.push(v);
            }
        }
        self.clients.keys = report.keys;
        self.clients.failures = report.failures;
        if self.clients.failures.is_empty() {
            self.clients.history = None;
        }
    }
}

impl Supervisor {
    /// A scenario's `check` step: the client check on the history so far.
    /// An operation still in flight at this cut has no answer yet, so it is
    /// indeterminate here (it may or may not take effect), exactly as one
    /// whose session gave up; the end of the run checks the whole history
    /// again (its unknown keys are counted there, not here). A failure is
    /// reported at the step's time.
    pub(crate) fn check_clients_so_far(&mut self) {
        let now = self.now_ms();
        let world = self.world.clone();
        let mut w = world.lock();
        let history = History {
            ops: w.history.ops(),
            applications: w.history.applications().clone(),
            interrupted: w.history.interrupted_ids().clone(),
        };
        let report = linearize::check_with(
            &history.ops,
            &history.applications,
            &history.interrupted,
            RUN_BUDGET,
        );
        for (kind, mut v) in client_violations(&history.ops, &report) {
            if self.clients_reported.contains(&kind) {
                continue;
            }
            self.clients_reported.push(kind);
            v.detail = format!("at the check step at {now} ms: {}", v.detail);
            v.time_ms = now;
            w.checks.record_again(v.clone());
            w.event(
                now,
                None,
                format_args!("VIOLATION {}: {}", v.invariant, v.detail),
            );
        }
    }
}
