//! Declarative scenarios: a script of client requests, faults, restarts and
//! checks (format in [`format`], documented in `scenarios/README.md`), run on
//! the same simulated cluster as the random runs.

pub mod format;
mod script;

pub use format::{Scenario, ScenarioError};

use crate::config::RunConfig;
use crate::run::{RunReport, Supervisor, runtime};
use replica::bugs::KnownBugs;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Every running member's state at a `snapshot` step.
#[derive(Debug, Clone, Serialize)]
pub struct Recorded {
    pub label: String,
    /// By member ("m1", …): the state dump, with the fields that may
    /// legitimately differ between members or runs redacted.
    pub members: BTreeMap<String, serde_json::Value>,
}

/// Fields of a state dump that are not part of what replicas must agree on
/// in a way a script can pin down: the term of the consistent index depends
/// on election timing.
pub const REDACTED_FIELDS: [&str; 1] = ["consistent_term"];

/// Strings longer than this are shown in snapshots by length, prefix and
/// hash (large values make sector-spanning WAL writes, but thousands of
/// repeated bytes would bury a snapshot diff).
pub const LONG_STRING: usize = 120;

/// Prepares a state dump for a snapshot: redacts [`REDACTED_FIELDS`] and
/// abbreviates every string longer than [`LONG_STRING`] to its length, its
/// first bytes and its FNV-1a hash, so a changed value still shows.
pub fn snapshot_view(mut dump: serde_json::Value) -> serde_json::Value {
    if let Some(obj) = dump.as_object_mut() {
        for field in REDACTED_FIELDS {
            if obj.contains_key(field) {
                obj.insert(field.to_string(), "[redacted]".into());
            }
        }
    }
    abbreviate_long_strings(&mut dump);
    dump
}

fn abbreviate_long_strings(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::String(s) if s.len() > LONG_STRING => {
            let mut hash = crate::trace::Fnv64::default();
            hash.update(s.as_bytes());
            let prefix: String = s.chars().take(16).collect();
            *s = format!("[{} bytes: {prefix}… fnv {:016x}]", s.len(), hash.finish());
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(abbreviate_long_strings),
        serde_json::Value::Object(fields) => fields.values_mut().for_each(abbreviate_long_strings),
        _ => {}
    }
}

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
        let mut cfg = RunConfig::new(seed);
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
        match &self.random {
            Some(r) => {
                cfg.duration_ms = r.duration_ms;
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
        rt.block_on(async move {
            let random = scenario.random.as_ref();
            let mut sup = Supervisor::start(cfg.clone(), random.is_some_and(|r| r.workload)).await;
            sup.random_until = cfg.duration_ms;
            script::run_steps(&mut sup, &scenario.steps).await;
            sup.quiesce().await;
            sup.final_checks();
            sup.report()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_view_redacts_and_abbreviates_long_strings() {
        let long = "x".repeat(3000);
        let other = format!("{}y", "x".repeat(2999));
        let view = |value: &str| {
            snapshot_view(serde_json::json!({
                "consistent_term": 7,
                "v3": {"keys": [{"key": "k1", "value": value}]},
            }))
        };
        let a = view(&long);
        assert_eq!(a["consistent_term"], "[redacted]");
        let shown = a["v3"]["keys"][0]["value"].as_str().unwrap();
        assert!(
            shown.starts_with("[3000 bytes: xxxxxxxxxxxxxxxx… fnv "),
            "{shown}"
        );
        // A different long value of the same length still shows as different.
        assert_ne!(
            view(&other)["v3"]["keys"][0]["value"],
            a["v3"]["keys"][0]["value"]
        );
        // Short values are untouched.
        assert_eq!(view("v12")["v3"]["keys"][0]["value"], "v12");
    }
}
