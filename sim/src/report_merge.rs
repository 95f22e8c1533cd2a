//! The reports of a sweep split over machines (`sweep --partition I/N`),
//! put back together: each partition writes its JUnit file and a summary
//! (`--summary FILE.json`); `sim merge-reports` adds them up into one JUnit
//! file, one summary and the same tables a single sweep prints.
//!
//! Merging is addition (runs, failures, times, statistic counts by name,
//! rows by label) and concatenation (failed runs, JUnit test cases), so
//! the merged tables equal those of the unpartitioned sweep except for
//! wall times and the order of JUnit cases.

use crate::coverage::{Coverage, FirstHit, ProbeRow};
use crate::swarm_table::{Cell, DimensionTally};
use crate::sweep::{FailedRun, Partition, Row, StatCount, SweepResult, xml_escape};
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;
use std::time::Duration;

/// What a sweep (or a merge of several) found, as a file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SweepSummary {
    /// The partitions this summary covers (`count:I/N` each).
    pub partitions: Vec<String>,
    pub runs: usize,
    pub not_started: usize,
    pub simulated_ms: u64,
    /// The runs' wall times added up, in seconds.
    pub wall_s: f64,
    pub rows: Vec<SummaryRow>,
    /// Run statistics: runs in which each happened, and its total.
    pub fired: Vec<SummaryCount>,
    pub failed: Vec<SummaryFailure>,
    /// Coverage probes: runs that hit each, hits, and the first run in the
    /// order of the whole (unpartitioned) plan.
    pub coverage: Vec<SummaryProbe>,
    /// Random runs and failures by (dimension, bucket) of their world:
    /// (dimension, bucket, label, runs, failed).
    pub dimensions: Vec<(usize, usize, String, u64, u64)>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SummaryProbe {
    pub name: String,
    pub description: String,
    pub runs: u64,
    pub hits: u64,
    /// (index in the whole plan, label, seed) of the first run that hit it.
    pub first: Option<(usize, String, u64)>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SummaryRow {
    pub label: String,
    pub runs: u64,
    pub failures: u64,
    pub simulated_ms: u64,
    pub wall_s: f64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SummaryCount {
    pub name: String,
    pub runs: u64,
    pub total: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SummaryFailure {
    pub scenario: String,
    pub seed: u64,
    pub reproduce: String,
}

impl SweepSummary {
    /// The summary of one sweep over `partition`.
    pub fn of(result: &SweepResult, partition: Partition) -> SweepSummary {
        // A run's index in its partition, as an index in the whole plan.
        let global = |local: usize| partition.index - 1 + local * partition.count;
        SweepSummary {
            partitions: vec![partition.to_string()],
            runs: result.runs,
            not_started: result.not_started,
            simulated_ms: result.simulated_ms,
            wall_s: result.wall.as_secs_f64(),
            rows: result
                .rows
                .iter()
                .map(|r| SummaryRow {
                    label: r.label.clone(),
                    runs: r.runs,
                    failures: r.failures,
                    simulated_ms: r.simulated_ms,
                    wall_s: r.wall.as_secs_f64(),
                })
                .collect(),
            fired: result
                .fired
                .iter()
                .map(|c| SummaryCount {
                    name: c.name.to_string(),
                    runs: c.runs,
                    total: c.total,
                })
                .collect(),
            failed: result
                .failed
                .iter()
                .map(|f| SummaryFailure {
                    scenario: f.scenario.clone(),
                    seed: f.seed,
                    reproduce: f.reproduce.clone(),
                })
                .collect(),
            dimensions: result
                .dimensions
                .cells()
                .map(|((d, b), label, c)| (d, b, label.to_string(), c.runs, c.failed))
                .collect(),
            coverage: result
                .coverage
                .rows()
                .iter()
                .map(|r| SummaryProbe {
                    name: r.name.clone(),
                    description: r.description.clone(),
                    runs: r.runs,
                    hits: r.hits,
                    first: r
                        .first
                        .as_ref()
                        .map(|f| (global(f.index), f.label.clone(), f.seed)),
                })
                .collect(),
        }
    }

    /// Adds `other` to this summary. Rows and statistics are matched by
    /// name (rows sorted by label, as a sweep's are; statistics in first-seen
    /// order, which is the build's order); failures sorted by (scenario,
    /// seed) so the merged list does not depend on the order of inputs.
    pub fn merge(&mut self, other: &SweepSummary) {
        self.partitions.extend(other.partitions.iter().cloned());
        self.runs += other.runs;
        self.not_started += other.not_started;
        self.simulated_ms += other.simulated_ms;
        self.wall_s += other.wall_s;
        for row in &other.rows {
            match self.rows.iter_mut().find(|r| r.label == row.label) {
                Some(r) => {
                    r.runs += row.runs;
                    r.failures += row.failures;
                    r.simulated_ms += row.simulated_ms;
                    r.wall_s += row.wall_s;
                }
                None => self.rows.push(row.clone()),
            }
        }
        for count in &other.fired {
            match self.fired.iter_mut().find(|c| c.name == count.name) {
                Some(c) => {
                    c.runs += count.runs;
                    c.total += count.total;
                }
                None => self.fired.push(count.clone()),
            }
        }
        self.rows.sort_by(|a, b| a.label.cmp(&b.label));
        self.dimensions.extend(other.dimensions.iter().cloned());
        for probe in &other.coverage {
            match self.coverage.iter_mut().find(|p| p.name == probe.name) {
                Some(p) => {
                    p.runs += probe.runs;
                    p.hits += probe.hits;
                    p.first = match (p.first.take(), probe.first.clone()) {
                        (Some(a), Some(b)) => Some(if b.0 < a.0 { b } else { a }),
                        (a, b) => a.or(b),
                    };
                }
                None => self.coverage.push(probe.clone()),
            }
        }
        self.failed.extend(other.failed.iter().cloned());
        self.failed
            .sort_by(|a, b| (&a.scenario, a.seed).cmp(&(&b.scenario, b.seed)));
    }

    /// The merged sweep as the result a single sweep returns, for the
    /// same tables. A statistic this build does not count is refused: the
    /// summaries came from another build, and dropping its counts would
    /// misreport what the sweep exercised.
    pub fn to_result(&self) -> Result<SweepResult, String> {
        let fired = self
            .fired
            .iter()
            .map(|c| {
                let name = crate::stats::RunStats::names()
                    .find(|n| *n == c.name)
                    .ok_or_else(|| {
                        format!(
                            "statistic {:?} is unknown to this build of sim: merge with the build that ran the sweep",
                            c.name
                        )
                    })?;
                Ok(StatCount {
                    name,
                    runs: c.runs,
                    total: c.total,
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
        Ok(SweepResult {
            rows: self
                .rows
                .iter()
                .map(|r| Row {
                    label: r.label.clone(),
                    runs: r.runs,
                    failures: r.failures,
                    simulated_ms: r.simulated_ms,
                    wall: Duration::from_secs_f64(r.wall_s.max(0.0)),
                })
                .collect(),
            runs: self.runs,
            not_started: self.not_started,
            failed: self
                .failed
                .iter()
                .map(|f| FailedRun {
                    scenario: f.scenario.clone(),
                    seed: f.seed,
                    reproduce: f.reproduce.clone(),
                })
                .collect(),
            simulated_ms: self.simulated_ms,
            wall: Duration::from_secs_f64(self.wall_s.max(0.0)),
            fired,
            dimensions: {
                let mut tally = DimensionTally::default();
                for (d, b, label, runs, failed) in &self.dimensions {
                    tally.add_cell(
                        (*d, *b),
                        label,
                        Cell {
                            runs: *runs,
                            failed: *failed,
                        },
                    );
                }
                tally
            },
            coverage: Coverage::from_rows(
                self.coverage
                    .iter()
                    .map(|p| ProbeRow {
                        name: p.name.clone(),
                        description: p.description.clone(),
                        runs: p.runs,
                        hits: p.hits,
                        first: p.first.clone().map(|(index, label, seed)| FirstHit {
                            index,
                            label,
                            seed,
                        }),
                    })
                    .collect(),
            )?,
        })
    }
}

/// A JUnit file `sim sweep --junit` wrote, that could not be read back.
#[derive(Debug, thiserror::Error)]
#[error("{file}: line {line}: {reason}")]
pub struct JunitError {
    pub file: String,
    pub line: usize,
    pub reason: String,
}

/// The totals and test cases of one JUnit report written by the sweep.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JunitReport {
    pub tests: u64,
    pub failures: u64,
    pub skipped: u64,
    pub time_s: f64,
    /// The `<testcase>` elements, verbatim, one string each.
    pub cases: Vec<String>,
    /// Text for the suite's `<system-out>` (the merged dimension table;
    /// a partition's own is not read back).
    pub system_out: String,
}

impl JunitReport {
    /// Reads a report in the sweep's own layout: the XML declaration, the
    /// `<testsuites>` and `<testsuite>` lines with the totals, the cases,
    /// and the two closing tags. Anything else is refused with its line.
    pub fn parse(file: &str, text: &str) -> Result<JunitReport, JunitError> {
        let err = |line: usize, reason: &str| JunitError {
            file: file.to_string(),
            line,
            reason: reason.to_string(),
        };
        let lines: Vec<&str> = text.lines().collect();
        let suite = lines
            .iter()
            .position(|l| l.trim_start().starts_with("<testsuite "))
            .ok_or_else(|| err(1, "no <testsuite> element"))?;
        let end = lines
            .iter()
            .rposition(|l| l.trim() == "</testsuite>")
            .filter(|&end| end > suite)
            .ok_or_else(|| err(lines.len(), "no </testsuite> after <testsuite>"))?;
        let head = lines[suite];
        let number = |name: &str| -> Result<f64, JunitError> {
            attribute(head, name)
                .and_then(|v| v.parse::<f64>().ok())
                .ok_or_else(|| err(suite + 1, &format!("missing or bad attribute {name}")))
        };
        let mut cases = Vec::new();
        let mut current = String::new();
        let mut in_system_out = false;
        for line in &lines[suite + 1..end] {
            // The suite's `<system-out>` (a partition's own dimension
            // table) is not a case; the merge writes the merged table.
            if in_system_out
                || (current.is_empty() && line.trim_start().starts_with("<system-out>"))
            {
                in_system_out = !line.contains("</system-out>");
                continue;
            }
            current.push_str(line);
            current.push('\n');
            let trimmed = line.trim_end();
            if trimmed.ends_with("/>") && line.trim_start().starts_with("<testcase")
                || trimmed.ends_with("</testcase>")
            {
                cases.push(std::mem::take(&mut current));
            }
        }
        if !current.trim().is_empty() {
            return Err(err(end, "an unterminated <testcase>"));
        }
        Ok(JunitReport {
            tests: number("tests")? as u64,
            failures: number("failures")? as u64,
            skipped: number("skipped")? as u64,
            time_s: number("time")?,
            cases,
            system_out: String::new(),
        })
    }

    pub fn merge(&mut self, other: JunitReport) {
        self.tests += other.tests;
        self.failures += other.failures;
        self.skipped += other.skipped;
        self.time_s += other.time_s;
        self.cases.extend(other.cases);
    }

    /// The report in the sweep's layout.
    pub fn render(&self) -> String {
        let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        let _ = writeln!(
            out,
            "<testsuites tests=\"{}\" failures=\"{}\" time=\"{:.3}\">",
            self.tests, self.failures, self.time_s
        );
        let _ = writeln!(
            out,
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"0\" skipped=\"{}\" time=\"{:.3}\">",
            xml_escape("sim sweep"),
            self.tests,
            self.failures,
            self.skipped,
            self.time_s
        );
        for case in &self.cases {
            out.push_str(case);
        }
        if !self.system_out.is_empty() {
            let _ = writeln!(
                out,
                "    <system-out>{}</system-out>",
                xml_escape(&self.system_out)
            );
        }
        out.push_str(crate::sweep::JUNIT_TAIL);
        out
    }
}

/// The value of attribute `name` in one XML start tag (no entities: the
/// sweep writes only numbers in the attributes read here).
fn attribute<'a>(tag: &'a str, name: &str) -> Option<&'a str> {
    let start = tag.find(&format!(" {name}=\""))? + name.len() + 3;
    let len = tag[start..].find('"')?;
    Some(&tag[start..start + len])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(partition: &str, runs: u64, failed: &[(&str, u64)]) -> SweepSummary {
        SweepSummary {
            partitions: vec![partition.into()],
            runs: runs as usize,
            not_started: 0,
            simulated_ms: runs * 20_000,
            wall_s: runs as f64 * 0.1,
            rows: vec![SummaryRow {
                label: "random".into(),
                runs,
                failures: failed.len() as u64,
                simulated_ms: runs * 20_000,
                wall_s: runs as f64 * 0.1,
            }],
            fired: vec![SummaryCount {
                name: "crashes".into(),
                runs,
                total: 2 * runs,
            }],
            failed: failed
                .iter()
                .map(|(s, seed)| SummaryFailure {
                    scenario: (*s).into(),
                    seed: *seed,
                    reproduce: format!("sim run --seed {seed}"),
                })
                .collect(),
            coverage: Vec::new(),
            dimensions: Vec::new(),
        }
    }

    #[test]
    fn summaries_add_up_and_failures_sort_whatever_the_input_order() {
        let mut a = summary("count:1/2", 3, &[("random", 7)]);
        let b = summary("count:2/2", 2, &[("random", 2)]);
        a.merge(&b);
        assert_eq!(a.runs, 5);
        assert_eq!(a.rows.len(), 1);
        assert_eq!((a.rows[0].runs, a.rows[0].failures), (5, 2));
        assert_eq!((a.fired[0].runs, a.fired[0].total), (5, 10));
        let seeds: Vec<u64> = a.failed.iter().map(|f| f.seed).collect();
        assert_eq!(seeds, [2, 7]);
        let mut c = summary("count:2/2", 2, &[("random", 2)]);
        c.merge(&summary("count:1/2", 3, &[("random", 7)]));
        assert_eq!(c.failed, a.failed);
    }

    #[test]
    fn a_statistic_this_build_does_not_count_is_refused_not_dropped() {
        let mut s = summary("count:1/1", 1, &[]);
        s.fired[0].name = "no_such_statistic".into();
        let err = s.to_result().unwrap_err();
        assert!(err.contains("no_such_statistic"), "{err}");
    }

    #[test]
    fn a_junit_report_survives_parse_merge_render() {
        let one = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites tests=\"2\" failures=\"1\" time=\"1.500\">\n  <testsuite name=\"sim sweep\" tests=\"2\" failures=\"1\" errors=\"0\" skipped=\"0\" time=\"1.500\">\n    <testcase classname=\"random\" name=\"seed 1\" time=\"0.700\"/>\n    <testcase classname=\"random\" name=\"seed 3\" time=\"0.800\">\n      <failure message=\"m\" type=\"violation\">text\nmore</failure>\n    </testcase>\n  </testsuite>\n</testsuites>\n";
        let two = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites tests=\"1\" failures=\"0\" time=\"0.500\">\n  <testsuite name=\"sim sweep\" tests=\"1\" failures=\"0\" errors=\"0\" skipped=\"4\" time=\"0.500\">\n    <testcase classname=\"random\" name=\"seed 2\" time=\"0.500\"/>\n  </testsuite>\n</testsuites>\n";
        let mut merged = JunitReport::parse("a.xml", one).unwrap();
        assert_eq!(merged.cases.len(), 2);
        merged.merge(JunitReport::parse("b.xml", two).unwrap());
        assert_eq!((merged.tests, merged.failures, merged.skipped), (3, 1, 4));
        let text = merged.render();
        let again = JunitReport::parse("merged.xml", &text).unwrap();
        assert_eq!(again, merged);
        assert!(text.contains("name=\"seed 3\""));
    }

    #[test]
    fn a_foreign_or_cut_junit_file_is_refused_with_its_line() {
        let err = JunitReport::parse("x.xml", "<html></html>").unwrap_err();
        assert!(err.to_string().contains("x.xml"), "{err}");
        let cut = "<testsuites>\n  <testsuite name=\"sim sweep\" tests=\"1\" failures=\"0\" skipped=\"0\" time=\"1\">\n    <testcase classname=\"random\" name=\"seed 1\">\n  </testsuite>\n";
        let err = JunitReport::parse("cut.xml", cut).unwrap_err();
        assert!(err.to_string().contains("unterminated"), "{err}");
        let no_totals = "<testsuite name=\"sim sweep\">\n</testsuite>\n";
        let err = JunitReport::parse("t.xml", no_totals).unwrap_err();
        assert!(err.to_string().contains("tests"), "{err}");
    }
}
