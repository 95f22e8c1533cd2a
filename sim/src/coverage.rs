//! Coverage probes over runs: which named rare states a run reached, and,
//! over a sweep, how many runs reached each and which one first.
//!
//! The probe list is `replica::probe::Probe` (store states, and the redb
//! commit phases this harness observes), plus one probe per crash point
//! (`crash_point.<name>`: a crash armed at that point fired) and one per run
//! statistic (`fired.<stat>`: the statistic was non-zero, i.e. that fault
//! class fired). [`catalogue`] lists them all in one order.

use crate::stats::RunStats;
use replica::crash_point::CrashPoint;
use replica::probe::Probe;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

/// One probe: its name and what reaching it means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeInfo {
    pub name: String,
    pub description: String,
}

/// The name of the probe of a crash fired at `point`.
pub fn crash_point_probe(point: CrashPoint) -> String {
    format!("crash_point.{}", point.name())
}

/// The name of the probe of a run statistic.
fn stat_probe(stat: &str) -> String {
    format!("fired.{stat}")
}

/// Every probe, in a fixed order: the named ones, the crash points, the
/// run statistics.
pub fn catalogue() -> Vec<ProbeInfo> {
    let named = Probe::ALL.iter().map(|p| ProbeInfo {
        name: p.name().to_string(),
        description: p.description().to_string(),
    });
    let points = CrashPoint::ALL.iter().map(|p| ProbeInfo {
        name: crash_point_probe(*p),
        description: format!("a crash armed at crash point {} fired", p.name()),
    });
    let stats = RunStats::names().map(|s| ProbeInfo {
        name: stat_probe(s),
        description: format!("run statistic {s} was non-zero"),
    });
    named.chain(points).chain(stats).collect()
}

/// A run's probe hits: how often each probe was reached (only probes that
/// were). Deterministic: a function of the run, like its statistics; not in
/// the trace hash.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProbeHits(BTreeMap<String, u64>);

impl ProbeHits {
    /// Counts one hit of `name`.
    pub fn hit(&mut self, name: &str) {
        self.add(name, 1);
    }

    pub fn add(&mut self, name: &str, n: u64) {
        if n > 0 {
            *self.0.entry(name.to_string()).or_default() += n;
        }
    }

    /// Adds every hit of `other`.
    pub fn merge(&mut self, other: &ProbeHits) {
        for (name, n) in &other.0 {
            self.add(name, *n);
        }
    }

    /// Adds a probe hit for every non-zero statistic of `stats`.
    pub fn add_stats(&mut self, stats: &RunStats) {
        for name in RunStats::names() {
            self.add(&stat_probe(name), stats.get(name).unwrap_or(0));
        }
    }

    pub fn get(&self, name: &str) -> u64 {
        self.0.get(name).copied().unwrap_or(0)
    }

    /// The probes hit, by name.
    pub fn iter(&self) -> impl Iterator<Item = (&str, u64)> {
        self.0.iter().map(|(k, v)| (k.as_str(), *v))
    }

    /// The hit probes as one line (`name=count …`), for a run's report.
    pub fn summary(&self) -> String {
        let parts: Vec<String> = self.iter().map(|(k, v)| format!("{k}={v}")).collect();
        parts.join(" ")
    }
}

/// The run that first reached a probe: its place in the sweep's plan, its
/// label (scenario name or `random`) and seed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FirstHit {
    pub index: usize,
    pub label: String,
    pub seed: u64,
}

/// One probe over a sweep.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeRow {
    pub name: String,
    pub description: String,
    /// Runs that reached it.
    pub runs: u64,
    /// Hits over all runs.
    pub hits: u64,
    /// The earliest run in plan order that reached it.
    pub first: Option<FirstHit>,
}

/// A sweep's coverage, fed one run at a time in any order; the result does
/// not depend on the order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Coverage {
    rows: Vec<ProbeRow>,
}

impl Default for Coverage {
    fn default() -> Coverage {
        Coverage::new()
    }
}

impl Coverage {
    /// Every probe of the catalogue, none hit yet.
    pub fn new() -> Coverage {
        let rows = catalogue()
            .into_iter()
            .map(|p| ProbeRow {
                name: p.name,
                description: p.description,
                runs: 0,
                hits: 0,
                first: None,
            })
            .collect();
        Coverage { rows }
    }

    /// Counts the hits of the run at `index` in the plan.
    pub fn add(&mut self, index: usize, label: &str, seed: u64, hits: &ProbeHits) {
        for row in &mut self.rows {
            let n = hits.get(&row.name);
            if n == 0 {
                continue;
            }
            row.runs += 1;
            row.hits += n;
            if row.first.as_ref().is_none_or(|f| index < f.index) {
                row.first = Some(FirstHit {
                    index,
                    label: label.to_string(),
                    seed,
                });
            }
        }
    }

    /// A coverage read back from its rows (a merge of partitions'
    /// summaries): every row must name a probe of this build's catalogue,
    /// and probes the rows lack count as never hit.
    pub fn from_rows(rows: Vec<ProbeRow>) -> Result<Coverage, String> {
        let mut coverage = Coverage::new();
        for row in rows {
            let Some(slot) = coverage.rows.iter_mut().find(|r| r.name == row.name) else {
                return Err(format!(
                    "probe {:?} is unknown to this build of sim: merge with the build that ran the sweep",
                    row.name
                ));
            };
            *slot = row;
        }
        Ok(coverage)
    }

    /// The rows in catalogue order.
    pub fn rows(&self) -> &[ProbeRow] {
        &self.rows
    }

    /// How many probes were reached at least once.
    pub fn probes_hit(&self) -> usize {
        self.rows.iter().filter(|r| r.runs > 0).count()
    }

    /// The probes no run reached, in catalogue order.
    pub fn never_hit(&self) -> Vec<&str> {
        self.rows
            .iter()
            .filter(|r| r.runs == 0)
            .map(|r| r.name.as_str())
            .collect()
    }

    /// The rows as the table shows them: never-hit probes first, then by
    /// the number of runs that reached them (rarest first); ties keep the
    /// catalogue order.
    pub fn sorted_rows(&self) -> Vec<&ProbeRow> {
        let mut rows: Vec<&ProbeRow> = self.rows.iter().collect();
        rows.sort_by_key(|r| r.runs);
        rows
    }

    /// The coverage as a Markdown table, never-hit probes first.
    pub fn table(&self) -> String {
        let mut out = format!(
            "coverage: {} of {} probes hit\n| probe | runs that hit it | hits | first run |\n| --- | --- | --- | --- |\n",
            self.probes_hit(),
            self.rows.len()
        );
        for r in self.sorted_rows() {
            let first = r.first.as_ref().map_or_else(
                || "NEVER HIT".to_string(),
                |f| format!("{} seed {}", f.label, f.seed),
            );
            let _ = writeln!(out, "| {} | {} | {} | {first} |", r.name, r.runs, r.hits);
        }
        out
    }

    /// The coverage as JSON: `{"runs": N, "probes": [{name, description,
    /// runs, hits, first: {label, seed} | null}, …]}`, never-hit first.
    pub fn to_json(&self, runs: usize) -> serde_json::Value {
        let probes: Vec<serde_json::Value> = self
            .sorted_rows()
            .into_iter()
            .map(|r| {
                serde_json::json!({
                    "name": r.name,
                    "description": r.description,
                    "runs": r.runs,
                    "hits": r.hits,
                    "first": r.first.as_ref().map(|f| serde_json::json!({
                        "label": f.label,
                        "seed": f.seed,
                    })),
                })
            })
            .collect();
        serde_json::json!({ "runs": runs, "probes": probes })
    }
}

/// The probes a coverage JSON document (see [`Coverage::to_json`]) says
/// were hit by at least one run.
pub fn hit_in_json(doc: &serde_json::Value) -> Result<BTreeSet<String>, String> {
    let probes = doc
        .get("probes")
        .and_then(|p| p.as_array())
        .ok_or("no \"probes\" array")?;
    let mut hit = BTreeSet::new();
    for p in probes {
        let name = p
            .get("name")
            .and_then(|n| n.as_str())
            .ok_or("a probe without a name")?;
        let runs = p
            .get("runs")
            .and_then(|r| r.as_u64())
            .ok_or("a probe without runs")?;
        if runs > 0 {
            hit.insert(name.to_string());
        }
    }
    Ok(hit)
}

/// The probe names of an expected-hits file: one per line; `#` starts a
/// comment; blank lines are ignored.
pub fn parse_expected(text: &str) -> Vec<String> {
    text.lines()
        .map(|l| l.split('#').next().unwrap_or("").trim())
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

/// An expected-hits file listing `hit` (sorted, one per line), under
/// `header` (comment lines).
pub fn expected_file(header: &str, hit: &BTreeSet<String>) -> String {
    let mut out: String = header.lines().map(|l| format!("# {l}\n")).collect();
    for name in hit {
        out.push_str(name);
        out.push('\n');
    }
    out
}

/// The expected probes that `hit` lacks: each one a lost coverage.
pub fn missing<'e>(expected: &'e [String], hit: &BTreeSet<String>) -> Vec<&'e str> {
    expected
        .iter()
        .filter(|p| !hit.contains(*p))
        .map(String::as_str)
        .collect()
}

/// Where a sweep writes its coverage: next to its JUnit report
/// (`sim-random.xml` → `sim-random.coverage.json`).
pub fn json_path_beside(junit: &std::path::Path) -> std::path::PathBuf {
    junit.with_extension("coverage.json")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_probe_expected_but_not_hit_is_missing() {
        let mut cov = Coverage::new();
        let mut hits = ProbeHits::default();
        hits.hit("wal.torn_tail_repaired");
        cov.add(0, "random", 1, &hits);
        let hit = hit_in_json(&cov.to_json(1)).unwrap();
        let expected =
            parse_expected("# header\nwal.torn_tail_repaired\nreplay.v3_skipped # why\n\n");
        assert_eq!(missing(&expected, &hit), vec!["replay.v3_skipped"]);
        let file = expected_file("h", &hit);
        assert_eq!(parse_expected(&file), vec!["wal.torn_tail_repaired"]);
        assert!(missing(&parse_expected(&file), &hit).is_empty());
    }

    #[test]
    fn catalogue_names_are_unique() {
        let mut names: Vec<String> = catalogue().into_iter().map(|p| p.name).collect();
        let n = names.len();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), n);
    }

    #[test]
    fn never_hit_probes_come_first_and_first_hit_is_the_earliest_run() {
        let mut cov = Coverage::new();
        let mut hits = ProbeHits::default();
        hits.hit("wal.torn_tail_repaired");
        cov.add(5, "random", 6, &hits);
        cov.add(2, "random", 3, &hits);
        let row = cov
            .rows()
            .iter()
            .find(|r| r.name == "wal.torn_tail_repaired")
            .unwrap();
        assert_eq!((row.runs, row.hits), (2, 2));
        assert_eq!(row.first.as_ref().map(|f| f.seed), Some(3));
        let sorted = cov.sorted_rows();
        assert_eq!(sorted[0].runs, 0);
        assert_eq!(sorted.last().unwrap().name, "wal.torn_tail_repaired");
        assert!(!cov.never_hit().contains(&"wal.torn_tail_repaired"));
        assert!(cov.table().contains("NEVER HIT"));
    }
}
