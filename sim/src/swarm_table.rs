//! The sweep's runs and failures by each dimension of a random run's world
//! (the swarm's draw, `swarm.rs`), bucketed, so a failure that needs, say,
//! a batch limit below 10 shows as failures in one bucket only.

use crate::config::RunConfig;
use crate::fault::FaultClass;
use crate::mix::RequestKind;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// Runs and failures in one bucket.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Cell {
    pub runs: u64,
    pub failed: u64,
}

/// Random runs counted by (dimension, bucket), both in table order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DimensionTally {
    cells: BTreeMap<(usize, usize), (String, Cell)>,
}

/// A numeric dimension: its name, the lower edges of its buckets (the
/// first is the smallest value drawn) and the unit of its labels.
struct Edges {
    name: &'static str,
    edges: &'static [u64],
    unit: &'static str,
}

/// Bucket edges of each numeric dimension, in table order (after `nodes`,
/// `swarm` and the fault classes). The first edge is the smallest value
/// the swarm draws; smaller values (set by hand) count in the first bucket.
/// Float dimensions are scaled to integers first.
const NUMERIC: [Edges; 13] = [
    Edges {
        name: "faults per minute",
        edges: &[0, 30, 60, 120, 240],
        unit: "",
    },
    Edges {
        name: "duration",
        edges: &[0, 10, 20, 30],
        unit: "s",
    },
    Edges {
        name: "snapshot_count",
        edges: &[5, 16, 64, 256, 1024, 4096],
        unit: "",
    },
    Edges {
        name: "batch_limit",
        edges: &[1, 2, 10, 100, 1000],
        unit: "",
    },
    Edges {
        name: "batch_interval",
        edges: &[10, 25, 50, 100, 250, 500],
        unit: "ms",
    },
    Edges {
        name: "wal_segment",
        edges: &[4, 16, 64, 256, 1024, 8192],
        unit: " KiB",
    },
    Edges {
        name: "packet_loss",
        edges: &[0, 1, 10, 30],
        unit: "‰",
    },
    Edges {
        name: "max_latency",
        edges: &[1, 3, 10, 30],
        unit: "ms",
    },
    Edges {
        name: "request_interval",
        edges: &[5, 10, 20, 50],
        unit: "ms",
    },
    Edges {
        name: "reads",
        edges: &[0, 10, 25, 50, 75],
        unit: "%",
    },
    Edges {
        name: "puts of writes",
        edges: &[0, 10, 25, 50, 75],
        unit: "%",
    },
    Edges {
        name: "compactions of writes",
        edges: &[0, 1, 5, 20],
        unit: "%",
    },
    Edges {
        name: "stretch length (0: none)",
        edges: &[0, 1, 16, 64],
        unit: " ops",
    },
];

/// The values of the numeric dimensions of `cfg`, in [`NUMERIC`] order.
fn numeric_values(cfg: &RunConfig) -> [u64; 13] {
    let net = cfg.network();
    let mix = &cfg.mix;
    [
        (cfg.faults_per_second * 60.0).round() as u64,
        cfg.duration_ms / 1000,
        cfg.snapshot_count,
        cfg.batch_limit as u64,
        cfg.batch_interval_ms,
        cfg.wal_segment_size / 1024,
        (net.packet_loss * 1000.0).round() as u64,
        net.max_latency_ms,
        cfg.request_interval_ms,
        u64::from(mix.read_percent),
        u64::from(mix.write_percent(RequestKind::Put)),
        u64::from(mix.write_percent(RequestKind::Compact)),
        mix.stretches.map_or(0, |s| u64::from(s.length)),
    ]
}

/// The on/off dimensions after `nodes`: the swarm, then each fault class.
const SWITCHES: usize = 1 + FaultClass::ALL.len();

/// Which bucket `value` falls in, and its label (`lo-hi`, `lo+` for the
/// last, the value alone for a bucket of one).
fn bucket(value: u64, edges: &[u64], unit: &str) -> (usize, String) {
    let i = edges.iter().rposition(|e| value >= *e).unwrap_or(0);
    let lo = edges.get(i).copied().unwrap_or(0);
    let label = match edges.get(i + 1) {
        None => format!("{lo}+{unit}"),
        Some(next) if *next == lo + 1 => format!("{lo}{unit}"),
        Some(next) => format!("{lo}-{}{unit}", next - 1),
    };
    (i, label)
}

impl DimensionTally {
    /// Counts a run; scenario runs set their own world and are left out.
    pub fn add(&mut self, cfg: &RunConfig, failed: bool) {
        if cfg.scenario.is_some() {
            return;
        }
        self.count(0, cfg.nodes as usize, cfg.nodes.to_string(), failed);
        let switches = std::iter::once(cfg.swarm).chain(FaultClass::ALL.map(|c| cfg.has(c)));
        for (i, on) in switches.enumerate() {
            let label = if on { "on" } else { "off" };
            self.count(1 + i, usize::from(!on), label.to_string(), failed);
        }
        let first = 1 + SWITCHES;
        for (i, (dim, value)) in NUMERIC.iter().zip(numeric_values(cfg)).enumerate() {
            let (b, label) = bucket(value, dim.edges, dim.unit);
            self.count(first + i, b, label, failed);
        }
    }

    fn count(&mut self, dim: usize, bucket: usize, label: String, failed: bool) {
        let (_, cell) = self
            .cells
            .entry((dim, bucket))
            .or_insert_with(|| (label, Cell::default()));
        cell.runs += 1;
        cell.failed += u64::from(failed);
    }

    /// Every bucket: (dimension, bucket) in table order, its label, its
    /// counts (for a sweep's summary file, `report_merge`).
    pub fn cells(&self) -> impl Iterator<Item = ((usize, usize), &str, Cell)> {
        self.cells
            .iter()
            .map(|(key, (label, cell))| (*key, label.as_str(), *cell))
    }

    /// Adds a bucket's counts (a partition's summary, read back).
    pub fn add_cell(&mut self, key: (usize, usize), label: &str, cell: Cell) {
        let (_, mine) = self
            .cells
            .entry(key)
            .or_insert_with(|| (label.to_string(), Cell::default()));
        mine.runs += cell.runs;
        mine.failed += cell.failed;
    }

    /// The runs and failures of every bucket of `dimension` (as the table
    /// names it), in order.
    pub fn buckets(&self, dimension: &str) -> Vec<(String, Cell)> {
        let Some(dim) = (0..dimension_count()).find(|d| dimension_name(*d) == dimension) else {
            return Vec::new();
        };
        self.cells
            .range((dim, 0)..(dim + 1, 0))
            .map(|(_, (label, cell))| (label.clone(), *cell))
            .collect()
    }

    /// The table: one row per dimension, each bucket as `label: runs`, with
    /// `(N failed)` where runs failed. Empty without random runs.
    pub fn table(&self) -> String {
        if self.cells.is_empty() {
            return String::new();
        }
        let mut out = String::from(
            "| random runs by dimension | runs in each bucket (failures) |\n| --- | --- |\n",
        );
        for dim in 0..dimension_count() {
            let cells: Vec<String> = self
                .cells
                .range((dim, 0)..(dim + 1, 0))
                .map(|(_, (label, c))| match c.failed {
                    0 => format!("{label}: {}", c.runs),
                    f => format!("{label}: {} (**{f} failed**)", c.runs),
                })
                .collect();
            let _ = writeln!(out, "| {} | {} |", dimension_name(dim), cells.join(" · "));
        }
        out
    }
}

fn dimension_count() -> usize {
    1 + SWITCHES + NUMERIC.len()
}

/// The table's name of dimension `dim`.
fn dimension_name(dim: usize) -> String {
    match dim {
        0 => "nodes".to_string(),
        1 => "swarm".to_string(),
        d if d <= SWITCHES => format!("fault {}", FaultClass::ALL[d - 2].name()),
        d => NUMERIC
            .get(d - 1 - SWITCHES)
            .map_or_else(String::new, |e| e.name.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_have_ranges_and_an_open_last_one() {
        assert_eq!(bucket(1, &[0, 2, 10, 100], ""), (0, "0-1".to_string()));
        assert_eq!(bucket(9, &[0, 2, 10, 100], ""), (1, "2-9".to_string()));
        assert_eq!(
            bucket(5000, &[0, 2, 10, 100], "ms"),
            (3, "100+ms".to_string())
        );
        assert_eq!(bucket(0, &[0, 1], ""), (0, "0".to_string()));
    }

    #[test]
    fn a_failure_shows_in_its_bucket_only() {
        let mut tally = DimensionTally::default();
        for seed in 1..=40 {
            let cfg = RunConfig::new(seed);
            let failed = cfg.batch_limit < 10;
            tally.add(&cfg, failed);
        }
        let limits = tally.buckets("batch_limit");
        for (label, cell) in &limits {
            let small = label.as_str() == "1" || label.as_str() == "2-9";
            assert_eq!(cell.failed > 0, small && cell.runs > 0, "{label}: {cell:?}");
            assert!(!small || cell.failed == cell.runs);
        }
        let runs: u64 = tally.buckets("nodes").iter().map(|(_, c)| c.runs).sum();
        assert_eq!(runs, 40);
        assert!(tally.table().contains("| batch_limit | "));
        assert!(tally.table().contains("| compactions of writes | "));
        assert!(
            tally
                .table()
                .contains("| stretch length (0: none) | 0 ops: ")
        );
    }
}
