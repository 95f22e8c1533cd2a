//! Cluster-wide crash-state enumeration (`sim explore --cluster`): at
//! chosen virtual instants of a run, every member loses power at once.
//!
//! A [`ClusterSink`] takes a fork of every member's disk (page cache and
//! pending operations) and the client history at each instant, and records
//! the run's state per applied index. Offline, each member's possible
//! power-loss states ([`member_states`]: every unsynced operation lost, all
//! kept, and each prefix of one file's pending operations, torn or not) are
//! pruned to distinct durable images, at most k per member; every
//! combination of one state per member is booted as a cluster on a fresh
//! madsim runtime ([`crate::run::run_from_disks`]), left to quiesce with no
//! faults and no clients, and checked: the run's own invariants
//! (convergence, recovery, restart equivalence among the booted members),
//! durability of every write acknowledged before the instant, and the
//! booted cluster's state at each index the original run had applied by
//! the instant against the original run's state there.

use super::{CrashState, Mismatch, PrefixPlan, compare_dumps, crash_states};
use crate::config::{Capture, ClusterInstant, RunConfig};
use crate::fault::SyncObserver;
use crate::pool::run_pool;
use replica::disk::{Disk, MemDisk, PendingOp, PowerLossPlan, Survival};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// States by applied index: the first state dump reported there.
type References = BTreeMap<u64, serde_json::Value>;

fn record_reference(
    refs: &Mutex<References>,
    index: u64,
    dump: &mut dyn FnMut() -> Option<replica::member::StateDump>,
) {
    let mut refs = refs.lock().unwrap_or_else(|e| e.into_inner());
    if let std::collections::btree_map::Entry::Vacant(slot) = refs.entry(index)
        && let Some(value) = dump().and_then(|d| serde_json::to_value(d).ok())
    {
        slot.insert(value);
    }
}

/// Every member's disk at one moment, forked, and what the clients had
/// been told by then.
#[derive(Debug)]
struct Captured {
    /// The instant asked for (the first supervisor step at or after it).
    at_ms: u64,
    /// The member whose sync came first after the instant, and the file.
    syncing: Option<(u64, PathBuf)>,
    disks: Vec<(u64, MemDisk)>,
    instant: ClusterInstant,
}

/// What the original run captures: the cluster just before the first file
/// sync (of any member, with pending operations) after each wanted instant,
/// and the run's state per applied index.
///
/// A member's step runs its disk operations and syncs them before its
/// messages leave, so between steps nothing is pending: a power loss
/// between steps has one state per member. The cut is therefore taken
/// inside a step, at a sync, where the syncing member's pending operations
/// give it several states, and any member whose process died mid-step
/// still holds its unsynced page cache. Every other member is between
/// steps at that instant, so the cut is consistent.
#[derive(Debug)]
pub struct ClusterSink {
    instants: Vec<u64>,
    next: AtomicUsize,
    armed: Mutex<Option<ClusterInstant>>,
    captured: Mutex<Vec<Captured>>,
    references: Mutex<References>,
}

impl ClusterSink {
    /// A sink that captures the cluster at the first sync after each of
    /// `instants` (virtual ms).
    pub fn new(mut instants: Vec<u64>) -> Arc<ClusterSink> {
        instants.sort_unstable();
        instants.dedup();
        Arc::new(ClusterSink {
            instants,
            next: AtomicUsize::new(0),
            armed: Mutex::new(None),
            captured: Mutex::new(Vec::new()),
            references: Mutex::new(BTreeMap::new()),
        })
    }
}

impl SyncObserver for ClusterSink {
    fn before_sync(&self, mem: &MemDisk, path: &Path) {
        if mem.pending_ops(path).is_ok_and(|p| p.is_empty()) {
            return;
        }
        let Some(instant) = self.armed.lock().unwrap_or_else(|e| e.into_inner()).take() else {
            return;
        };
        let syncing = instant
            .disks
            .iter()
            .find(|(_, d)| std::ptr::eq(d.mem(), mem))
            .map(|(id, _)| (*id, path.to_path_buf()));
        let disks = instant
            .disks
            .iter()
            .map(|(id, d)| (*id, d.mem().fork()))
            .collect();
        self.captured
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(Captured {
                at_ms: instant.at_ms,
                syncing,
                disks,
                instant,
            });
    }
}

impl Capture for ClusterSink {
    /// No single member: every member's disk is observed.
    fn member(&self) -> u64 {
        0
    }
    fn observes(&self, _id: u64) -> bool {
        true
    }
    fn booted(&self) {}
    fn applied(&self, index: u64, dump: &mut dyn FnMut() -> Option<replica::member::StateDump>) {
        record_reference(&self.references, index, dump);
    }
    fn cluster_instant_due(&self, now_ms: u64) -> bool {
        let next = self.next.load(Ordering::Relaxed);
        let passed = self.instants[next.min(self.instants.len())..]
            .iter()
            .take_while(|t| **t <= now_ms)
            .count();
        self.next.store(next + passed, Ordering::Relaxed);
        passed > 0
    }
    fn cluster_captured(&self, instant: ClusterInstant) {
        *self.armed.lock().unwrap_or_else(|e| e.into_inner()) = Some(instant);
    }
}

/// What a booted combination's run sees: the members' starting disks, and
/// the state it reaches per applied index.
#[derive(Debug)]
struct BootSink {
    disks: BTreeMap<u64, MemDisk>,
    references: Mutex<References>,
}

impl SyncObserver for BootSink {
    fn before_sync(&self, _disk: &MemDisk, _path: &Path) {}
}

impl Capture for BootSink {
    fn member(&self) -> u64 {
        0
    }
    fn booted(&self) {}
    fn applied(&self, index: u64, dump: &mut dyn FnMut() -> Option<replica::member::StateDump>) {
        record_reference(&self.references, index, dump);
    }
    fn start_disk(&self, id: u64) -> Option<MemDisk> {
        self.disks.get(&id).map(MemDisk::fork)
    }
}

/// How one member's unsynced operations fare in a power loss.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemberPlan {
    /// Every unsynced write and name change is lost.
    LoseUnsynced,
    /// Everything in the page cache reached the platter.
    KeepPageCache,
    /// A prefix of one file's pending operations survives (the last one
    /// possibly torn), other files' are lost, name changes are kept.
    FilePrefix { path: PathBuf, state: CrashState },
}

impl fmt::Display for MemberPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MemberPlan::LoseUnsynced => write!(f, "every unsynced operation lost"),
            MemberPlan::KeepPageCache => write!(f, "the whole page cache kept"),
            MemberPlan::FilePrefix { path, state } => {
                write!(f, "{}: {} pending ops kept", path.display(), state.keep)?;
                match state.torn_last {
                    Some(b) => write!(f, ", the last torn at {b} bytes"),
                    None => Ok(()),
                }
            }
        }
    }
}

/// Keeps every pending operation and name change.
struct KeepAll;

impl PowerLossPlan for KeepAll {
    fn file_op(&mut self, _: &Path, _: usize, _: &PendingOp) -> Survival {
        Survival::Kept
    }
    fn name_change(&mut self, _: &Path) -> bool {
        true
    }
}

/// A member's disk after a plan.
#[derive(Debug)]
pub struct PlannedDisk {
    pub plan: MemberPlan,
    pub disk: MemDisk,
}

/// One member's power-loss states at an instant.
#[derive(Debug)]
pub struct MemberStates {
    pub member: u64,
    /// Plans tried.
    pub candidates: usize,
    /// Plans that left a durable image no earlier plan left.
    pub distinct: usize,
    /// The first k distinct states, in plan order.
    pub kept: Vec<PlannedDisk>,
}

/// Every file's name and bytes, hashed: two disks with the same digest
/// boot the same (after a power loss nothing is pending, so the page cache
/// is the platter).
fn image_digest(disk: &MemDisk) -> u64 {
    let mut h = DefaultHasher::new();
    for name in disk.file_names() {
        name.hash(&mut h);
        // An unreadable file hashes as its error, distinct from any bytes.
        match disk.read_all(&name) {
            Ok(bytes) => bytes.hash(&mut h),
            Err(e) => e.to_string().hash(&mut h),
        }
    }
    h.finish()
}

/// The plans tried for a disk, most telling first: all lost, all kept,
/// then each prefix of each file's pending operations.
fn plans(mem: &MemDisk) -> Vec<MemberPlan> {
    let mut plans = vec![MemberPlan::LoseUnsynced, MemberPlan::KeepPageCache];
    for path in mem.files_with_pending_ops() {
        let ops = mem.pending_ops(&path).unwrap_or_default();
        plans.extend(
            crash_states(&ops)
                .into_iter()
                .map(|state| MemberPlan::FilePrefix {
                    path: path.clone(),
                    state,
                }),
        );
    }
    plans
}

fn apply_plan(mem: &MemDisk, plan: &MemberPlan) -> MemDisk {
    let disk = mem.fork();
    match plan {
        MemberPlan::LoseUnsynced => disk.crash_power_loss(),
        MemberPlan::KeepPageCache => disk.crash_power_loss_with(&mut KeepAll),
        MemberPlan::FilePrefix { path, state } => disk.crash_power_loss_with(&mut PrefixPlan {
            target: path,
            keep: state.keep,
            torn_last: state.torn_last,
        }),
    }
    disk
}

/// Member `member`'s power-loss states of `mem`, pruned to distinct
/// durable images, the first `k` kept.
pub fn member_states(member: u64, mem: &MemDisk, k: usize) -> MemberStates {
    let plans = plans(mem);
    let mut seen = BTreeSet::new();
    let mut kept = Vec::new();
    for plan in &plans {
        let disk = apply_plan(mem, plan);
        if !seen.insert(image_digest(&disk)) {
            continue;
        }
        if kept.len() < k {
            kept.push(PlannedDisk {
                plan: plan.clone(),
                disk,
            });
        }
    }
    MemberStates {
        member,
        candidates: plans.len(),
        distinct: seen.len(),
        kept,
    }
}

/// Bounds of a cluster exploration.
#[derive(Debug, Clone, Copy)]
pub struct ClusterOptions {
    /// Power-loss states per member, at most (after pruning).
    pub per_member: usize,
    /// Combinations booted per instant, at most.
    pub max_combinations: u64,
    /// Boot only this combination of each instant (reproducing a failure).
    pub only: Option<u64>,
    /// Worker threads booting combinations.
    pub jobs: usize,
}

/// A booted combination that failed a check.
#[derive(Debug, Clone)]
pub struct ClusterFailure {
    pub at_ms: u64,
    pub combination: u64,
    /// Each member's plan.
    pub plans: Vec<(u64, MemberPlan)>,
    pub problems: Vec<String>,
    pub diffs: Vec<String>,
}

/// What exploring one instant found.
#[derive(Debug)]
pub struct InstantReport {
    pub at_ms: u64,
    /// The member whose sync the cut was taken before, and its file.
    pub syncing: Option<(u64, PathBuf)>,
    /// The highest index applied by then (the per-index comparison's end).
    pub applied: u64,
    pub acked: usize,
    /// Per member: plans tried, distinct images, states kept.
    pub members: Vec<(u64, usize, usize, usize)>,
    /// Combinations of every plan tried (before pruning; saturating).
    pub unpruned: u128,
    /// Combinations of the kept states.
    pub combinations: u64,
    /// Combinations booted and checked.
    pub booted: u64,
    /// Why the instant was not explored, if it was not.
    pub skipped: Option<String>,
}

/// The outcome of a cluster exploration.
#[derive(Debug, Default)]
pub struct ClusterReport {
    pub instants: Vec<InstantReport>,
    /// Instants after which no member synced anything pending.
    pub missed: Vec<u64>,
    pub failures: Vec<ClusterFailure>,
}

impl ClusterReport {
    pub fn booted(&self) -> u64 {
        self.instants.iter().map(|i| i.booted).sum()
    }
}

/// Explores every instant `sink` captured during a run of `cfg`.
pub fn explore_cluster(cfg: &RunConfig, sink: &ClusterSink, opts: ClusterOptions) -> ClusterReport {
    let instants = std::mem::take(&mut *sink.captured.lock().unwrap_or_else(|e| e.into_inner()));
    let refs = sink
        .references
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    let mut boot_cfg = cfg.clone();
    boot_cfg.capture = None;
    boot_cfg.trace = false;
    boot_cfg.keep_trace = false;
    let mut report = ClusterReport::default();
    if let Some(missed) = sink.armed.lock().unwrap_or_else(|e| e.into_inner()).take() {
        report.missed.push(missed.at_ms);
    }
    for captured in &instants {
        let (summary, failures) = explore_instant(&boot_cfg, captured, &refs, opts);
        report.instants.push(summary);
        report.failures.extend(failures);
    }
    report
}

fn explore_instant(
    cfg: &RunConfig,
    captured: &Captured,
    refs: &References,
    opts: ClusterOptions,
) -> (InstantReport, Vec<ClusterFailure>) {
    let instant = &captured.instant;
    let states: Vec<MemberStates> = captured
        .disks
        .iter()
        .map(|(id, mem)| member_states(*id, mem, opts.per_member))
        .collect();
    let combinations = states.iter().map(|m| m.kept.len() as u64).product::<u64>();
    let mut summary = InstantReport {
        at_ms: captured.at_ms,
        syncing: captured.syncing.clone(),
        applied: instant.applied,
        acked: instant.acked.len(),
        members: states
            .iter()
            .map(|m| (m.member, m.candidates, m.distinct, m.kept.len()))
            .collect(),
        unpruned: states
            .iter()
            .fold(1u128, |n, m| n.saturating_mul(m.candidates as u128)),
        combinations,
        booted: 0,
        skipped: None,
    };
    let skipped = if instant.membership_changed {
        Some("the membership changed before the instant")
    } else if instant.damaged {
        Some("a member's platter was damaged on purpose")
    } else {
        None
    };
    if let Some(why) = skipped {
        summary.skipped = Some(why.to_string());
        return (summary, Vec::new());
    }
    let chosen: Vec<u64> = match opts.only {
        Some(c) if c < combinations => vec![c],
        Some(_) => Vec::new(),
        None => (0..combinations.min(opts.max_combinations)).collect(),
    };
    let found = Mutex::new(Vec::new());
    let work = |i: usize| boot_combination(cfg, captured, &states, chosen[i], refs);
    run_pool(chosen.len(), opts.jobs.max(1), None, work, |i, failure| {
        if let Some(f) = failure {
            found.lock().unwrap_or_else(|e| e.into_inner()).push((i, f));
        }
    });
    summary.booted = chosen.len() as u64;
    let mut failures = found.into_inner().unwrap_or_else(|e| e.into_inner());
    failures.sort_by_key(|(i, _)| *i);
    (summary, failures.into_iter().map(|(_, f)| f).collect())
}

/// Each member's state in combination `combination` (mixed radix over the
/// members, the first member's digit lowest).
fn choice(states: &[MemberStates], mut combination: u64) -> Vec<&PlannedDisk> {
    states
        .iter()
        .map(|m| {
            let n = m.kept.len().max(1) as u64;
            let digit = (combination % n) as usize;
            combination /= n;
            &m.kept[digit]
        })
        .collect()
}

/// Boots one combination as a cluster and checks it.
fn boot_combination(
    cfg: &RunConfig,
    captured: &Captured,
    states: &[MemberStates],
    combination: u64,
    refs: &References,
) -> Option<ClusterFailure> {
    let instant = &captured.instant;
    let picked = choice(states, combination);
    let disks = states
        .iter()
        .zip(&picked)
        .map(|(m, p)| (m.member, p.disk.fork()))
        .collect();
    let sink = Arc::new(BootSink {
        disks,
        references: Mutex::new(BTreeMap::new()),
    });
    let mut cfg = cfg.clone();
    cfg.capture = Some(sink.clone());
    let run = crate::run::run_from_disks(&cfg, instant.acked.clone(), instant.deletes.clone());
    let mut problems: Vec<String> = run
        .violations
        .iter()
        .map(|v| format!("{}: {}", v.invariant, v.detail))
        .collect();
    let mut diffs = run
        .violations
        .iter()
        .flat_map(|v| v.diffs.iter().take(10).map(ToString::to_string))
        .collect::<Vec<String>>();
    let booted = sink.references.lock().unwrap_or_else(|e| e.into_inner());
    for (index, dump) in booted.range(..=instant.applied) {
        let Some(reference) = refs.get(index) else {
            continue;
        };
        if let Err(Mismatch { detail, diffs: d }) = compare_dumps(dump, *index, reference) {
            problems.push(format!("restart equivalence: {detail}"));
            diffs.extend(d.into_iter().take(10));
            break;
        }
    }
    if problems.is_empty() {
        return None;
    }
    Some(ClusterFailure {
        at_ms: captured.at_ms,
        combination,
        plans: states
            .iter()
            .zip(&picked)
            .map(|(m, p)| (m.member, p.plan.clone()))
            .collect(),
        problems,
        diffs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn member_states_are_pruned_to_distinct_durable_images() {
        let disk = MemDisk::new();
        let (dir, file) = (Path::new("d"), Path::new("d/f"));
        disk.create_dir_all(dir).unwrap();
        disk.create(file).unwrap();
        disk.write_at(file, 0, b"durable").unwrap();
        disk.sync(file).unwrap();
        disk.sync_dir(dir).unwrap();
        disk.write_at(file, 7, b"+pending").unwrap();
        let states = member_states(1, &disk, 8);
        // All lost, all kept, and the file's prefixes 0 and 1: the prefixes
        // leave the same images as the first two.
        assert_eq!(states.candidates, 4);
        assert_eq!(states.distinct, 2);
        let plans: Vec<&MemberPlan> = states.kept.iter().map(|s| &s.plan).collect();
        assert_eq!(
            plans,
            [&MemberPlan::LoseUnsynced, &MemberPlan::KeepPageCache]
        );
        assert_eq!(
            states.kept[1].disk.read_all(file).unwrap(),
            b"durable+pending"
        );
        // At most k kept, however many are distinct.
        assert_eq!(member_states(1, &disk, 1).kept.len(), 1);
    }

    #[test]
    fn combinations_count_in_mixed_radix_over_the_members() {
        let disk = MemDisk::new();
        let file = Path::new("f");
        disk.create(file).unwrap();
        disk.sync_dir(Path::new("")).unwrap();
        disk.write_at(file, 0, b"x").unwrap();
        let states = [member_states(1, &disk, 2), member_states(2, &disk, 2)];
        let plans =
            |c| -> Vec<MemberPlan> { choice(&states, c).iter().map(|p| p.plan.clone()).collect() };
        assert_eq!(
            plans(1),
            [MemberPlan::KeepPageCache, MemberPlan::LoseUnsynced]
        );
        assert_eq!(
            plans(2),
            [MemberPlan::LoseUnsynced, MemberPlan::KeepPageCache]
        );
    }
}
