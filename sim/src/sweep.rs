//! Many runs on worker threads: random seeds or (scenario, seed) pairs,
//! an optional wall-clock budget, the per-scenario summary, and the JUnit
//! report a CI service reads.
//!
//! Each run owns its madsim runtime, so its outcome does not depend on the
//! number of workers or on the budget; the budget only decides how many
//! runs start.

use crate::config::RunConfig;
use crate::run::{RunReport, run as run_random};
use crate::scenario::{self, Scenario, ScenarioError};
use replica::bugs::KnownBugs;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One run to do.
#[derive(Debug, Clone)]
pub enum Job {
    /// A seed of the random run.
    Random(RunConfig),
    /// A scenario with a seed.
    Scenario {
        scenario: Arc<Scenario>,
        seed: u64,
        bugs: KnownBugs,
    },
}

impl Job {
    /// The name its summary row and JUnit class carry.
    pub fn label(&self) -> String {
        match self {
            Job::Random(_) => "random".to_string(),
            Job::Scenario { scenario, .. } => scenario.display_name(),
        }
    }

    pub fn run(&self) -> RunReport {
        match self {
            Job::Random(cfg) => run_random(cfg),
            Job::Scenario {
                scenario,
                seed,
                bugs,
            } => scenario.run(*seed, *bugs, false),
        }
    }
}

/// A finished run.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub label: String,
    pub report: RunReport,
    /// Wall time of the run (measured outside the simulation).
    pub wall: Duration,
}

/// Runs `jobs` on `threads` workers; no job starts after `deadline`.
/// Returns the finished runs in the order of `jobs` (a prefix of them if the
/// deadline passed), calling `done` as each finishes.
pub fn run_jobs(
    jobs: &[Job],
    threads: usize,
    deadline: Option<Instant>,
    done: &(dyn Fn(&Outcome) + Sync),
) -> Vec<Outcome> {
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<Outcome>>> = Mutex::new(vec![None; jobs.len()]);
    std::thread::scope(|scope| {
        for _ in 0..threads.max(1) {
            scope.spawn(|| {
                loop {
                    if deadline.is_some_and(|d| Instant::now() >= d) {
                        return;
                    }
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(job) = jobs.get(i) else {
                        return;
                    };
                    let started = Instant::now();
                    let report = job.run();
                    let outcome = Outcome {
                        label: job.label(),
                        report,
                        wall: started.elapsed(),
                    };
                    done(&outcome);
                    results.lock().unwrap_or_else(|e| e.into_inner())[i] = Some(outcome);
                }
            });
        }
    });
    results
        .into_inner()
        .unwrap_or_else(|e| e.into_inner())
        .into_iter()
        .flatten()
        .collect()
}

/// Whether `name` matches the shell-style `pattern` (`*` any run of
/// characters, `?` one character).
pub fn glob_match(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    // Iterative matcher with one backtrack point (the last `*`).
    let (mut pi, mut ni) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        match p.get(pi) {
            Some('*') => {
                star = Some((pi, ni));
                pi += 1;
            }
            Some(c) if *c == '?' || *c == n[ni] => {
                pi += 1;
                ni += 1;
            }
            _ => match star {
                Some((sp, sn)) => {
                    pi = sp + 1;
                    ni = sn + 1;
                    star = Some((sp, sn + 1));
                }
                None => return false,
            },
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// The catalogue scenarios whose name (file stem) matches `pattern` (a
/// trailing `.toml` is ignored), sorted by name.
pub fn catalogue_matching(pattern: &str) -> Result<Vec<Scenario>, ScenarioError> {
    let pattern = pattern.strip_suffix(".toml").unwrap_or(pattern);
    let dir = scenario::catalogue_dir();
    let entries = std::fs::read_dir(&dir).map_err(|e| ScenarioError {
        file: dir.display().to_string(),
        message: format!("cannot list the catalogue: {e}"),
    })?;
    let mut paths: Vec<_> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .filter(|p| {
            p.file_stem()
                .is_some_and(|s| glob_match(pattern, &s.to_string_lossy()))
        })
        .collect();
    paths.sort();
    paths.iter().map(|p| Scenario::load(p)).collect()
}

/// One row of the summary: every run of one scenario (or of the random
/// run).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Row {
    pub label: String,
    pub runs: u64,
    pub failures: u64,
    pub simulated_ms: u64,
    pub wall: Duration,
}

/// The per-scenario summary, by label.
pub fn summarize(outcomes: &[Outcome]) -> Vec<Row> {
    let mut rows: BTreeMap<&str, Row> = BTreeMap::new();
    for o in outcomes {
        let row = rows.entry(&o.label).or_insert_with(|| Row {
            label: o.label.clone(),
            ..Row::default()
        });
        row.runs += 1;
        row.failures += u64::from(!o.report.passed());
        row.simulated_ms += o.report.simulated_ms;
        row.wall += o.wall;
    }
    rows.into_values().collect()
}

/// The summary as a Markdown table.
pub fn summary_table(rows: &[Row]) -> String {
    let mut out = String::from(
        "| scenario | runs | failures | simulated s | wall s |\n| --- | --- | --- | --- | --- |\n",
    );
    for r in rows {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {:.1} | {:.2} |",
            r.label,
            r.runs,
            r.failures,
            r.simulated_ms as f64 / 1000.0,
            r.wall.as_secs_f64()
        );
    }
    out
}

/// Escapes text for an XML attribute or element, dropping the characters
/// XML 1.0 cannot carry at all.
pub fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{fffe}' || c == '\u{ffff}' => {}
            c => out.push(c),
        }
    }
    out
}

/// The JUnit XML report: one test case per (scenario, seed), the failure
/// report as the failure's text; `not_started` runs (cut by the time
/// budget) are counted as skipped in the suite's attributes.
pub fn junit_xml(outcomes: &[Outcome], not_started: usize) -> String {
    let failures = outcomes.iter().filter(|o| !o.report.passed()).count();
    let wall: f64 = outcomes.iter().map(|o| o.wall.as_secs_f64()).sum();
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<testsuites tests=\"{}\" failures=\"{failures}\" time=\"{wall:.3}\">",
        outcomes.len()
    );
    let _ = writeln!(
        out,
        "  <testsuite name=\"sim sweep\" tests=\"{}\" failures=\"{failures}\" errors=\"0\" skipped=\"{not_started}\" time=\"{wall:.3}\">",
        outcomes.len()
    );
    for o in outcomes {
        let _ = write!(
            out,
            "    <testcase classname=\"{}\" name=\"seed {}\" time=\"{:.3}\"",
            xml_escape(&o.label),
            o.report.config.seed,
            o.wall.as_secs_f64()
        );
        if o.report.passed() {
            out.push_str("/>\n");
            continue;
        }
        let first = o
            .report
            .violations
            .first()
            .map_or_else(String::new, |v| format!("{}: {}", v.invariant, v.detail));
        let _ = writeln!(
            out,
            ">\n      <failure message=\"{}\" type=\"violation\">{}</failure>\n    </testcase>",
            xml_escape(&first),
            xml_escape(&o.report.failure_report())
        );
    }
    out.push_str("  </testsuite>\n</testsuites>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_matches_stars_and_question_marks() {
        assert!(glob_match("*", "01-batch"));
        assert!(glob_match("0?-*", "07-torn-wal-tail"));
        assert!(glob_match("*wal*", "07-torn-wal-tail"));
        assert!(glob_match("*-tail", "07-torn-wal-tail"));
        assert!(!glob_match("*-tails", "07-torn-wal-tail"));
        assert!(!glob_match("1?-*", "07-torn-wal-tail"));
        assert!(glob_match("a*b*c", "aXXbYYbc"));
        assert!(!glob_match("", "a"));
        assert!(glob_match("", ""));
    }

    #[test]
    fn xml_escape_covers_markup_quotes_and_control_characters() {
        assert_eq!(
            xml_escape("a<b>&\"c'\u{1}\n"),
            "a&lt;b&gt;&amp;&quot;c&apos;\n"
        );
    }

    #[test]
    fn catalogue_glob_selects_by_name() {
        let all = catalogue_matching("*").unwrap();
        assert!(all.len() >= 12, "{} scenarios", all.len());
        let torn = catalogue_matching("07-*.toml").unwrap();
        assert_eq!(torn.len(), 1);
        assert_eq!(torn[0].display_name(), "07-torn-wal-tail");
        assert!(catalogue_matching("no-such-*").unwrap().is_empty());
    }
}
