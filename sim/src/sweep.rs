//! Many runs on worker threads: random seeds or (scenario, seed) pairs,
//! an optional wall-clock budget, the per-scenario summary, and the JUnit
//! report a CI service reads.
//!
//! Each run owns its madsim runtime, so its outcome does not depend on the
//! number of workers or on the budget; the budget only decides how many
//! runs start.
//!
//! A sweep's memory does not grow with its runs: [`run_sweep`] folds each
//! finished run into per-label counters at once and streams its JUnit test
//! case out; of a passing run nothing is kept, of a failed one the line that
//! says how to reproduce it.

use crate::config::RunConfig;
use crate::coverage::Coverage;
use crate::pool::run_pool;
use crate::run::{RunReport, run as run_random};
use crate::scenario::{self, Scenario, ScenarioError};
use crate::stats::RunStats;
use crate::swarm_table::DimensionTally;
use replica::bugs::KnownBugs;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One run to do.
#[derive(Debug, Clone)]
pub enum Job {
    /// A seed of the random run.
    Random(Box<RunConfig>),
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

    /// Runs the job on this thread, timing it.
    fn run_timed(&self) -> Outcome {
        // Wall-clock time is read outside the simulation: it never reaches
        // the run's outcome.
        let started = Instant::now();
        let report = self.run();
        Outcome {
            label: self.label(),
            report,
            wall: started.elapsed(),
        }
    }
}

/// How a random run's config is made from its seed.
pub type ConfigFor = Arc<dyn Fn(u64) -> RunConfig + Send + Sync>;

/// A run of seeds of one kind of job.
#[derive(Clone)]
enum Group {
    Random {
        seeds: Range<u64>,
        config: ConfigFor,
    },
    Scenario {
        scenario: Arc<Scenario>,
        seeds: Range<u64>,
        bugs: KnownBugs,
    },
}

impl Group {
    fn seeds(&self) -> &Range<u64> {
        match self {
            Group::Random { seeds, .. } | Group::Scenario { seeds, .. } => seeds,
        }
    }

    fn len(&self) -> usize {
        let seeds = self.seeds();
        usize::try_from(seeds.end.saturating_sub(seeds.start)).unwrap_or(usize::MAX)
    }

    fn job(&self, offset: usize) -> Job {
        let seed = self.seeds().start + offset as u64;
        match self {
            Group::Random { config, .. } => Job::Random(Box::new(config(seed))),
            Group::Scenario { scenario, bugs, .. } => Job::Scenario {
                scenario: scenario.clone(),
                seed,
                bugs: *bugs,
            },
        }
    }
}

/// The runs of a sweep, in order: groups of seeds, each job made only when
/// a worker takes it, so a sweep of many seeds holds no list of its runs.
#[derive(Clone, Default)]
pub struct Plan {
    groups: Vec<Group>,
    partition: Partition,
}

/// One of `count` disjoint shares of a plan's runs (`cargo nextest
/// --partition count:I/N`): run `k` of the whole plan belongs to share
/// `k % count`, so shares are dealt round-robin and each is spread over
/// every group (a shard is not left with only the slowest scenario).
/// `index` is 1-based, as on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Partition {
    pub index: usize,
    pub count: usize,
}

impl Default for Partition {
    fn default() -> Partition {
        Partition { index: 1, count: 1 }
    }
}

impl std::str::FromStr for Partition {
    type Err = String;

    /// `count:I/N` or `I/N`, with 1 <= I <= N.
    fn from_str(s: &str) -> Result<Partition, String> {
        let spec = s.strip_prefix("count:").unwrap_or(s);
        let bad = || format!("bad partition {s:?}: expected count:I/N with 1 <= I <= N");
        let (index, count) = spec.split_once('/').ok_or_else(bad)?;
        let index: usize = index.parse().map_err(|_| bad())?;
        let count: usize = count.parse().map_err(|_| bad())?;
        if index == 0 || index > count {
            return Err(bad());
        }
        Ok(Partition { index, count })
    }
}

impl std::fmt::Display for Partition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "count:{}/{}", self.index, self.count)
    }
}

impl Plan {
    /// Adds the random run with each of `seeds`, its config made by
    /// `config`.
    pub fn random(&mut self, seeds: Range<u64>, config: ConfigFor) {
        self.groups.push(Group::Random { seeds, config });
    }

    /// Adds `scenario` with each of `seeds`.
    pub fn scenario(&mut self, scenario: Arc<Scenario>, seeds: Range<u64>, bugs: KnownBugs) {
        self.groups.push(Group::Scenario {
            scenario,
            seeds,
            bugs,
        });
    }

    /// Keeps only the runs of `partition` (of the plan's runs, not of
    /// those already kept).
    pub fn partition(&mut self, partition: Partition) {
        self.partition = partition;
    }

    /// How many runs (in this plan's partition).
    pub fn len(&self) -> usize {
        let all = self.unpartitioned_len();
        let first = self.partition.index - 1;
        all.saturating_sub(first).div_ceil(self.partition.count)
    }

    /// How many runs in all partitions together.
    pub fn unpartitioned_len(&self) -> usize {
        self.groups.iter().map(Group::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The `index`-th run of the partition (`None` from [`Plan::len`] on).
    pub fn job(&self, index: usize) -> Option<Job> {
        if index >= self.len() {
            return None;
        }
        let mut offset = self.partition.index - 1 + index * self.partition.count;
        for group in &self.groups {
            if offset < group.len() {
                return Some(group.job(offset));
            }
            offset -= group.len();
        }
        None
    }
}

/// A finished run, handed to the caller's callback as it finishes.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub label: String,
    pub report: RunReport,
    /// Wall time of the run (measured outside the simulation).
    pub wall: Duration,
}

/// Runs every config on `jobs` worker threads (each run on its own madsim
/// runtime, so its outcome does not depend on `jobs`), calling `done` as
/// each finishes; returns the reports in the order of `configs`. It keeps
/// every report: for a few runs (a benchmark, a test), not for a sweep.
pub fn run_many(
    configs: &[RunConfig],
    jobs: usize,
    done: &(dyn Fn(&RunReport) + Sync),
) -> Vec<RunReport> {
    let reports: Mutex<Vec<Option<RunReport>>> = Mutex::new(vec![None; configs.len()]);
    let run = |index: usize| run_random(&configs[index]);
    run_pool(configs.len(), jobs, None, run, |index, report| {
        done(&report);
        reports.lock().unwrap_or_else(|e| e.into_inner())[index] = Some(report);
    });
    reports
        .into_inner()
        .unwrap_or_else(|e| e.into_inner())
        .into_iter()
        .flatten()
        .collect()
}

/// A failed run, as the end of a sweep lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct FailedRun {
    /// The scenario's name, or `random`.
    pub scenario: String,
    pub seed: u64,
    pub reproduce: String,
}

/// What a sweep keeps of its runs: counters, and the failed runs.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SweepResult {
    /// The per-scenario summary, by label.
    pub rows: Vec<Row>,
    /// Runs that finished.
    pub runs: usize,
    /// Runs the time budget cut before they started.
    pub not_started: usize,
    /// The failed runs, in the order of the plan.
    pub failed: Vec<FailedRun>,
    pub simulated_ms: u64,
    /// The runs' wall times added up.
    pub wall: Duration,
    /// Per run statistic (in `RunStats::names` order): how many runs it
    /// happened in, and its total over all runs — what the sweep exercised.
    pub fired: Vec<StatCount>,
    /// Which coverage probes the runs reached.
    pub coverage: Coverage,
    /// Random runs and failures by each dimension of their world.
    pub dimensions: DimensionTally,
}

/// How often one run statistic happened over a sweep.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StatCount {
    pub name: &'static str,
    pub runs: u64,
    pub total: u64,
}

/// The running totals of a sweep, fed one finished run at a time in
/// whatever order they finish; the JUnit cases still come out in job order.
struct Tally<'w> {
    rows: BTreeMap<String, Row>,
    failed: Vec<(usize, FailedRun)>,
    runs: usize,
    simulated_ms: u64,
    wall: Duration,
    fired: Vec<StatCount>,
    coverage: Coverage,
    dimensions: DimensionTally,
    cases: CaseStream<'w>,
}

impl<'w> Tally<'w> {
    fn new(cases: &'w mut (dyn Write + Send)) -> Tally<'w> {
        Tally {
            rows: BTreeMap::new(),
            failed: Vec::new(),
            runs: 0,
            simulated_ms: 0,
            wall: Duration::ZERO,
            fired: RunStats::names()
                .map(|name| StatCount {
                    name,
                    ..StatCount::default()
                })
                .collect(),
            coverage: Coverage::new(),
            dimensions: DimensionTally::default(),
            cases: CaseStream::new(cases),
        }
    }

    /// Counts job `index`'s run and drops its report.
    fn add(&mut self, index: usize, outcome: Outcome) {
        let report = &outcome.report;
        let row = self
            .rows
            .entry(outcome.label.clone())
            .or_insert_with(|| Row {
                label: outcome.label.clone(),
                ..Row::default()
            });
        row.runs += 1;
        row.failures += u64::from(!report.passed());
        row.simulated_ms += report.simulated_ms;
        row.wall += outcome.wall;
        self.runs += 1;
        self.simulated_ms += report.simulated_ms;
        self.wall += outcome.wall;
        for count in &mut self.fired {
            let n = report.stats.get(count.name).unwrap_or(0);
            count.runs += u64::from(n > 0);
            count.total += n;
        }
        self.coverage
            .add(index, &outcome.label, report.config.seed, &report.probes);
        self.dimensions.add(&report.config, !report.passed());
        if !report.passed() {
            self.failed.push((
                index,
                FailedRun {
                    scenario: report.config.scenario.as_deref().unwrap_or("random").into(),
                    seed: report.config.seed,
                    reproduce: report.config.reproduce_command(),
                },
            ));
        }
        self.cases.add(index, junit_case(&outcome));
    }

    fn finish(mut self, not_started: usize) -> (SweepResult, io::Result<()>) {
        self.failed.sort_by_key(|(index, _)| *index);
        let result = SweepResult {
            rows: self.rows.into_values().collect(),
            runs: self.runs,
            not_started,
            failed: self.failed.into_iter().map(|(_, f)| f).collect(),
            simulated_ms: self.simulated_ms,
            wall: self.wall,
            fired: self.fired,
            coverage: self.coverage,
            dimensions: self.dimensions,
        };
        (result, self.cases.finish())
    }
}

/// JUnit test cases written in job order: a case waits here only until
/// every earlier job has finished.
struct CaseStream<'w> {
    out: &'w mut (dyn Write + Send),
    next: usize,
    waiting: BTreeMap<usize, String>,
    /// The first write error; nothing more is written after it.
    error: Option<io::Error>,
}

impl<'w> CaseStream<'w> {
    fn new(out: &'w mut (dyn Write + Send)) -> CaseStream<'w> {
        CaseStream {
            out,
            next: 0,
            waiting: BTreeMap::new(),
            error: None,
        }
    }

    fn add(&mut self, index: usize, case: String) {
        self.waiting.insert(index, case);
        while let Some(case) = self.waiting.remove(&self.next) {
            self.next += 1;
            if self.error.is_none()
                && let Err(e) = self.out.write_all(case.as_bytes())
            {
                self.error = Some(e);
            }
        }
    }

    fn finish(self) -> io::Result<()> {
        // The runs that ran are a prefix of the plan, so none is left
        // waiting.
        assert!(self.waiting.is_empty(), "a run finished out of plan order");
        match self.error {
            Some(e) => Err(e),
            None => self.out.flush(),
        }
    }
}

/// Runs the jobs of `plan` on `threads` workers; no job starts after
/// `deadline`. Calls `done` as each run finishes, then counts the run and
/// writes its JUnit test case to `cases` (in the order of the plan; see
/// [`JunitFile`]). The second value is the first error writing `cases`, if
/// any.
pub fn run_sweep(
    plan: &Plan,
    threads: usize,
    deadline: Option<Instant>,
    cases: &mut (dyn Write + Send),
    done: &(dyn Fn(&Outcome) + Sync),
) -> (SweepResult, io::Result<()>) {
    let count = plan.len();
    let run = |index: usize| {
        plan.job(index)
            .expect("the pool takes indexes below the plan's length")
            .run_timed()
    };
    let tally = Mutex::new(Tally::new(cases));
    let ran = run_pool(count, threads, deadline, run, |index, outcome| {
        done(&outcome);
        tally
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .add(index, outcome);
    });
    tally
        .into_inner()
        .unwrap_or_else(|e| e.into_inner())
        .finish(count - ran)
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

/// What the sweep exercised: for each run statistic, the runs it happened
/// in and its total. A fault class that never fired shows 0 runs.
pub fn fired_table(fired: &[StatCount]) -> String {
    let mut out = String::from("| statistic | runs with it | total |\n| --- | --- | --- |\n");
    for c in fired {
        let _ = writeln!(out, "| {} | {} | {} |", c.name, c.runs, c.total);
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

/// One JUnit test case: the run's label as the class, `seed N` as the
/// name, the failure report as the failure's text.
fn junit_case(outcome: &Outcome) -> String {
    let report = &outcome.report;
    let mut out = format!(
        "    <testcase classname=\"{}\" name=\"seed {}\" time=\"{:.3}\"",
        xml_escape(&outcome.label),
        report.config.seed,
        outcome.wall.as_secs_f64()
    );
    if report.passed() {
        out.push_str("/>\n");
        return out;
    }
    let first = report
        .violations
        .first()
        .map_or_else(String::new, |v| format!("{}: {}", v.invariant, v.detail));
    let _ = writeln!(
        out,
        ">\n      <failure message=\"{}\" type=\"violation\">{}</failure>\n    </testcase>",
        xml_escape(&first),
        xml_escape(&report.failure_report())
    );
    out
}

/// The JUnit report's opening, up to its first test case: the totals of
/// the sweep; runs cut by the time budget count as skipped.
pub fn junit_head(result: &SweepResult) -> String {
    let failures = result.failed.len();
    let wall = result.wall.as_secs_f64();
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<testsuites tests=\"{}\" failures=\"{failures}\" time=\"{wall:.3}\">",
        result.runs
    );
    let _ = writeln!(
        out,
        "  <testsuite name=\"sim sweep\" tests=\"{}\" failures=\"{failures}\" errors=\"0\" skipped=\"{}\" time=\"{wall:.3}\">",
        result.runs, result.not_started
    );
    out
}

/// The JUnit report's closing, after its last test case.
pub const JUNIT_TAIL: &str = "  </testsuite>\n</testsuites>\n";

/// A JUnit report being written: the test cases go to `PATH.part` as runs
/// finish (the totals that open the report are known only at the end), and
/// [`JunitFile::finish`] writes `PATH` from the totals and that file. A
/// file that cannot be created fails the writes, and so `finish`.
pub struct JunitFile {
    path: PathBuf,
    part: PathBuf,
    cases: Result<BufWriter<File>, io::Error>,
}

impl JunitFile {
    pub fn create(path: &Path) -> JunitFile {
        let mut part = path.as_os_str().to_owned();
        part.push(".part");
        let part = PathBuf::from(part);
        let cases = File::create(&part).map(BufWriter::new);
        JunitFile {
            path: path.to_path_buf(),
            part,
            cases,
        }
    }

    fn cases(&mut self) -> io::Result<&mut BufWriter<File>> {
        self.cases
            .as_mut()
            .map_err(|e| io::Error::new(e.kind(), e.to_string()))
    }

    /// Writes the report of `result` and removes the cases file.
    pub fn finish(mut self, result: &SweepResult) -> io::Result<()> {
        self.cases()?.flush()?;
        let mut out = BufWriter::new(File::create(&self.path)?);
        out.write_all(junit_head(result).as_bytes())?;
        io::copy(&mut File::open(&self.part)?, &mut out)?;
        let table = result.dimensions.table();
        if !table.is_empty() {
            writeln!(out, "    <system-out>{}</system-out>", xml_escape(&table))?;
        }
        out.write_all(JUNIT_TAIL.as_bytes())?;
        out.flush()?;
        std::fs::remove_file(&self.part)
    }
}

impl Write for JunitFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.cases()?.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.cases()?.flush()
    }
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
