//! Declarative scenarios: a script of client requests, faults, restarts and
//! checks (format in [`crate::scenario_file`], documented in `scenarios/README.md`), run on
//! the same simulated cluster as the random runs.

mod boot_disk_op;
mod compact;
mod expect;
mod fault_steps;
mod membership_steps;
mod network_steps;
mod requests;
mod script;
mod targeted_eio;
mod txn;

pub use crate::scenario_file::{Scenario, ScenarioError};

use crate::config::RunConfig;
use crate::run::{RunReport, Supervisor, runtime};
use replica::bugs::KnownBugs;
use std::path::{Path, PathBuf};

/// The directory of the scenario catalogue (`scenarios/` at the repository
/// root).
pub fn catalogue_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios")
}

/// A scenario named by path, or by name in the catalogue.
pub fn find(name_or_path: &str) -> Result<PathBuf, ScenarioError> {
    let path = Path::new(name_or_path);
    if path.exists() {
        return Ok(path.to_path_buf());
    }
    let in_catalogue = catalogue_dir().join(format!("{name_or_path}.toml"));
    if in_catalogue.exists() {
        return Ok(in_catalogue);
    }
    Err(ScenarioError {
        file: name_or_path.to_string(),
        message: format!(
            "no such file, and no scenario of that name in {}",
            catalogue_dir().display()
        ),
    })
}

impl Scenario {
    /// How the command line names this scenario: its name if it is in the
    /// catalogue, else its path.
    pub fn display_name(&self) -> String {
        let in_catalogue = match (
            self.path.parent().and_then(|p| p.canonicalize().ok()),
            catalogue_dir().canonicalize().ok(),
        ) {
            (Some(dir), Some(catalogue)) => dir == catalogue,
            _ => false,
        };
        match (in_catalogue, self.path.file_stem()) {
            (true, Some(stem)) => stem.to_string_lossy().into_owned(),
            _ => self.path.display().to_string(),
        }
    }

    /// The run configuration this scenario asks for.
    pub fn config(&self, seed: u64, bugs: KnownBugs, trace: bool) -> RunConfig {
        // The file sets the world, not the swarm.
        let mut cfg = RunConfig::fixed(seed);
        cfg.scenario = Some(self.display_name());
        cfg.nodes = self.nodes;
        cfg.spares = self.spares;
        cfg.bugs = bugs;
        cfg.trace = trace;
        cfg.snapshot_count = self.store.snapshot_count.unwrap_or(10_000);
        cfg.batch_limit = self.store.batch_limit.unwrap_or(10_000);
        cfg.batch_interval_ms = self.store.batch_interval_ms.unwrap_or(100);
        cfg.wal_segment_size = self.store.wal_segment_size.unwrap_or(64 * 1024);
        cfg.network = self.network;
        cfg.disk_time = self.disk_time;
        match &self.random {
            Some(r) => {
                cfg.duration_ms = r.duration_ms;
                cfg.request_interval_ms = r.request_interval_ms.unwrap_or(cfg.request_interval_ms);
                // Validated when the file was read.
                cfg.mix = r
                    .mix
                    .as_deref()
                    .and_then(|m| m.parse().ok())
                    .unwrap_or(cfg.mix);
                cfg.faults = r.faults.iter().filter_map(|f| f.parse().ok()).collect();
            }
            None => {
                cfg.duration_ms = 0;
                cfg.faults.clear();
            }
        }
        cfg
    }

    /// Runs the scenario with `seed`.
    pub fn run(&self, seed: u64, bugs: KnownBugs, trace: bool) -> RunReport {
        self.run_config(self.config(seed, bugs, trace))
    }

    /// Runs the scenario with a config from [`Scenario::config`] (adjusted,
    /// e.g. to keep the trace).
    pub fn run_config(&self, cfg: RunConfig) -> RunReport {
        let rt = runtime(&cfg, 600_000);
        let _quiet = crate::panic_guard::QuietPanics::new();
        let scenario = self.clone();
        let mut report = rt.block_on(async move {
            let random = scenario.random.as_ref();
            let mut sup = Supervisor::start(cfg.clone(), random.is_some_and(|r| r.workload)).await;
            script::run_steps(&mut sup, &scenario.steps).await;
            if let Some(random) = random {
                run_random_to_its_end(&mut sup, random.duration_ms).await;
            }
            sup.quiesce().await;
            sup.final_checks();
            sup.report()
        });
        report.check_clients();
        report
    }
}

/// The `[random]` part runs its whole `duration_ms` even when the steps end
/// earlier: its workload and faults go on until then.
async fn run_random_to_its_end(sup: &mut Supervisor, duration_ms: u64) {
    while sup.now_ms() < duration_ms {
        madsim::time::sleep(std::time::Duration::from_millis(crate::run::STEP_MS)).await;
        sup.poll();
    }
}
