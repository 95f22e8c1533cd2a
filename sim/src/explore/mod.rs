//! Crash-state enumeration (`sim explore`): instead of one seeded power
//! loss, the power-loss states of each sync of one member: every prefix of
//! the synced file's pending operations (not every subset, and not other
//! files' writes); and, with [`CaptureSink::with_process_crashes`], a
//! process crash before every disk operation of that member
//! ([`process`]).
//!
//! A run of a scenario captures, at each successful file `sync` of the
//! chosen member (the end of a backend commit or of a WAL save), a fork of
//! its disk *before* the sync, and records every member's state dump at the
//! end of each step as the reference state per applied index. Offline, for
//! each capture, the synced file keeps every prefix of its pending
//! operations (and, for the last kept write, each sector-aligned torn
//! variant); other files' unsynced operations are lost; directory changes
//! are kept (the journal committed them). Each state must boot, and its
//! state must equal the reference at the applied index it boots to.

mod cluster;
mod process;

pub use cluster::{
    ClusterFailure, ClusterOptions, ClusterReport, ClusterSink, InstantReport, MemberPlan,
    MemberStates, PlannedDisk, explore_cluster, member_states,
};
pub use process::{OpPoint, ProcessFailure, ProcessReport};

use crate::config::{Capture, RunConfig};
use crate::fault::{DiskOp, SyncObserver};
use crate::panic_guard::guard;
use process::ProcessCrashes;
use replica::crash_point::NoCrash;
use replica::disk::{Disk, MemDisk, PendingOp, PowerLossPlan, Survival};
use replica::member::{Member, StoreConfig, StoreError};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::fault::sector_cuts;

/// Torn variants tried per kept write, at most (spread over its sectors).
const MAX_TORN_VARIANTS: usize = 4;

/// A disk captured just before a sync.
#[derive(Debug)]
pub struct SyncPoint {
    pub disk: MemDisk,
    pub path: PathBuf,
}

/// What a run captures for exploration.
#[derive(Debug)]
pub struct CaptureSink {
    /// The member whose syncs are captured.
    pub member: u64,
    /// Captures kept at most.
    pub max_points: usize,
    points: Mutex<Vec<SyncPoint>>,
    /// Whether syncs are captured yet (from the member's first boot on,
    /// unless the bootstrap is explored too).
    active: std::sync::atomic::AtomicBool,
    /// By applied index: the first state dump any member reported there.
    references: Mutex<BTreeMap<u64, serde_json::Value>>,
    /// Process-crash states before every disk operation, if asked for.
    process: Option<ProcessCrashes>,
}

impl CaptureSink {
    pub fn new(member: u64, max_points: usize, include_bootstrap: bool) -> Arc<CaptureSink> {
        Arc::new(CaptureSink {
            member,
            max_points,
            points: Mutex::new(Vec::new()),
            active: std::sync::atomic::AtomicBool::new(include_bootstrap),
            references: Mutex::new(BTreeMap::new()),
            process: None,
        })
    }

    /// Like [`CaptureSink::new`], and also boots a process-crash state
    /// before each of the member's disk operations (at most `max_states`),
    /// with the member's store settings `store`.
    pub fn with_process_crashes(
        member: u64,
        max_points: usize,
        include_bootstrap: bool,
        store: StoreConfig,
        max_states: u64,
    ) -> Arc<CaptureSink> {
        let mut sink = CaptureSink::new(member, max_points, include_bootstrap);
        if let Some(s) = Arc::get_mut(&mut sink) {
            s.process = Some(ProcessCrashes::new(store, max_states));
        }
        sink
    }

    fn is_active(&self) -> bool {
        self.active.load(std::sync::atomic::Ordering::Relaxed)
    }
}

impl SyncObserver for CaptureSink {
    fn before_op(&self, mem: &MemDisk, op: DiskOp, path: &Path) {
        if let Some(process) = self.process.as_ref().filter(|_| self.is_active()) {
            process.before_op(mem, op, path);
        }
    }

    fn before_sync(&self, mem: &MemDisk, path: &Path) {
        if !self.is_active() {
            return;
        }
        let mut points = self.points.lock().unwrap_or_else(|e| e.into_inner());
        if points.len() >= self.max_points || mem.pending_ops(path).is_ok_and(|p| p.is_empty()) {
            return;
        }
        points.push(SyncPoint {
            disk: mem.fork(),
            path: path.to_path_buf(),
        });
    }
}

impl Capture for CaptureSink {
    fn member(&self) -> u64 {
        self.member
    }

    fn booted(&self) {
        self.active
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }

    /// Records the state after entry `index`, if none is recorded yet.
    fn applied(&self, index: u64, dump: &mut dyn FnMut() -> Option<replica::member::StateDump>) {
        let mut refs = self.references.lock().unwrap_or_else(|e| e.into_inner());
        if let std::collections::btree_map::Entry::Vacant(slot) = refs.entry(index)
            && let Some(value) = dump().and_then(|d| serde_json::to_value(d).ok())
        {
            slot.insert(value);
        }
    }
}

/// Keeps a prefix of the target file's pending operations, the last one
/// possibly torn; loses every other file's.
struct PrefixPlan<'a> {
    target: &'a Path,
    keep: usize,
    torn_last: Option<usize>,
}

impl PowerLossPlan for PrefixPlan<'_> {
    fn file_op(&mut self, path: &Path, op_index: usize, _op: &PendingOp) -> Survival {
        if path != self.target || op_index >= self.keep {
            return Survival::Lost;
        }
        match self.torn_last {
            Some(keep_bytes) if op_index + 1 == self.keep => Survival::Torn { keep_bytes },
            _ => Survival::Kept,
        }
    }
    fn name_change(&mut self, _dir: &Path) -> bool {
        true
    }
}

/// One crash state: how many pending operations survive, and the torn
/// length of the last one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CrashState {
    pub keep: usize,
    pub torn_last: Option<usize>,
}

/// Every crash state of a file with these pending operations.
pub fn crash_states(ops: &[PendingOp]) -> Vec<CrashState> {
    let mut states = vec![CrashState {
        keep: 0,
        torn_last: None,
    }];
    for (i, op) in ops.iter().enumerate() {
        if let PendingOp::Write { offset, data } = op {
            let cuts = sector_cuts(*offset, data.len());
            let step = cuts.len().div_ceil(MAX_TORN_VARIANTS).max(1);
            for keep_bytes in cuts.into_iter().step_by(step) {
                states.push(CrashState {
                    keep: i + 1,
                    torn_last: Some(keep_bytes),
                });
            }
        }
        states.push(CrashState {
            keep: i + 1,
            torn_last: None,
        });
    }
    states
}

/// A crash state that failed a check.
#[derive(Debug, Clone)]
pub struct ExploreFailure {
    pub point: usize,
    pub path: PathBuf,
    pub state: CrashState,
    pub detail: String,
    pub diffs: Vec<String>,
}

/// The outcome of an exploration.
#[derive(Debug, Clone, Default)]
pub struct ExploreReport {
    pub sync_points: usize,
    pub states: u64,
    /// States whose applied index had a reference to compare with.
    pub compared: u64,
    pub failures: Vec<ExploreFailure>,
    /// The process-crash states, if the sink enumerated them.
    pub process: Option<ProcessReport>,
}

/// Explores the crash states of every captured sync, at most `max_states`.
pub fn explore(cfg: &RunConfig, sink: &CaptureSink, max_states: u64) -> ExploreReport {
    let points = std::mem::take(&mut *sink.points.lock().unwrap_or_else(|e| e.into_inner()));
    let refs = sink
        .references
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    let store = cfg.node_config(sink.member).store;
    let mut report = ExploreReport {
        sync_points: points.len(),
        process: sink.process.as_ref().map(|p| p.finish(&refs)),
        ..ExploreReport::default()
    };
    let _quiet = crate::panic_guard::QuietPanics::new();
    'points: for (n, point) in points.iter().enumerate() {
        let ops = point.disk.pending_ops(&point.path).unwrap_or_default();
        for state in crash_states(&ops) {
            if report.states >= max_states {
                break 'points;
            }
            report.states += 1;
            let fail = |Mismatch { detail, diffs }| ExploreFailure {
                point: n,
                path: point.path.clone(),
                state,
                detail,
                diffs,
            };
            let member = match boot_crash_state(point, state, &store) {
                Ok(Some(member)) => member,
                Ok(None) => continue,
                Err(detail) => {
                    report.failures.push(fail(Mismatch::detail(detail)));
                    continue;
                }
            };
            let index = member.applied_index();
            let Some(reference) = refs.get(&index) else {
                continue;
            };
            report.compared += 1;
            if let Err(mismatch) = compare_with_reference(&member, index, reference) {
                report.failures.push(fail(mismatch));
            }
        }
    }
    report
}

/// Why a crash state failed: one line, and for a state that differs from
/// the run's, the differing fields.
struct Mismatch {
    detail: String,
    diffs: Vec<String>,
}

impl Mismatch {
    fn detail(detail: String) -> Mismatch {
        Mismatch {
            detail,
            diffs: Vec::new(),
        }
    }
}

/// Leaves a fork of the captured disk in `state` and boots a member from
/// it: `Ok(None)` when there is no member to boot yet, `Err` when it does
/// not boot or panics while booting.
fn boot_crash_state(
    point: &SyncPoint,
    state: CrashState,
    store: &StoreConfig,
) -> Result<Option<Member>, String> {
    let disk = point.disk.fork();
    disk.crash_power_loss_with(&mut PrefixPlan {
        target: &point.path,
        keep: state.keep,
        torn_last: state.torn_last,
    });
    boot_forked(disk, store)
}

/// Boots a member from `disk` (a fork in a crash state): `Ok(None)` when
/// there is no member to boot yet, `Err` when it does not boot or panics
/// while booting.
fn boot_forked(disk: MemDisk, store: &StoreConfig) -> Result<Option<Member>, String> {
    let disk: Arc<dyn Disk> = Arc::new(disk);
    match guard(|| Member::open(disk, store.clone(), Arc::new(NoCrash), 0)) {
        Ok(Ok((member, _))) => Ok(Some(member)),
        // A power loss before the bootstrap's WAL was renamed into place:
        // there is no member yet, and the next start bootstraps it again.
        Ok(Err(StoreError::NotInitialized)) => Ok(None),
        Ok(Err(e)) => Err(format!("does not boot: {e}")),
        Err(panic) => Err(format!("panicked while booting: {panic}")),
    }
}

/// Compares a booted crash state with the run's state after entry `index`.
fn compare_with_reference(
    member: &Member,
    index: u64,
    reference: &serde_json::Value,
) -> Result<(), Mismatch> {
    let dump = match member.state_dump() {
        // Unserialisable is a failure, never `null` (which could equal a
        // reference that failed the same way).
        Ok(d) => serde_json::to_value(d)
            .map_err(|e| Mismatch::detail(format!("state dump cannot be serialised: {e}")))?,
        Err(e) => return Err(Mismatch::detail(format!("no state dump: {e}"))),
    };
    compare_dumps(&dump, index, reference)
}

/// Compares a crash state's dump with the run's state after entry `index`.
fn compare_dumps(
    dump: &serde_json::Value,
    index: u64,
    reference: &serde_json::Value,
) -> Result<(), Mismatch> {
    if *dump == *reference {
        return Ok(());
    }
    Err(Mismatch {
        detail: format!("state after entry {index} differs from the run's"),
        diffs: crate::diff::diff(dump, reference)
            .iter()
            .map(ToString::to_string)
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fault::SECTOR;

    #[test]
    fn crash_states_are_every_prefix_and_torn_variants_of_the_last_write() {
        let ops = vec![
            PendingOp::Write {
                offset: 0,
                data: vec![1; 3 * SECTOR],
            },
            PendingOp::SetLen(10),
        ];
        let states = crash_states(&ops);
        let keep = |keep, torn_last| CrashState { keep, torn_last };
        assert_eq!(
            states,
            vec![
                keep(0, None),
                keep(1, Some(SECTOR)),
                keep(1, Some(2 * SECTOR)),
                keep(1, None),
                keep(2, None),
            ]
        );
    }
}
