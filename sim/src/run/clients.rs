//! The client history's check. It runs after the simulation has finished
//! (outside madsim, so its wall time is real time): the linearizability
//! search and the revision-order checks of `linearize`, as violations of
//! the run.

use super::RunReport;
use crate::checker::client_violations;
use crate::linearize::{self, Failure, History, RUN_BUDGET};
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
        self.violations
            .extend(client_violations(&history.ops, &report));
        self.clients.keys = report.keys;
        self.clients.failures = report.failures;
        if self.clients.failures.is_empty() {
            self.clients.history = None;
        }
    }
}
