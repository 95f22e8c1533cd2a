//! Process-crash states: the member's process dies just before one of its
//! disk operations (create, write, set_len, rename, remove, sync,
//! sync_dir). The page cache survives a process crash, so the state is the
//! disk exactly as the process left it; every such state is booted and its
//! state compared with the run's.
//!
//! A state is booted as the run reaches it, on a fork of the disk (a fork
//! per state kept until the end would cost a copy of the disk per
//! operation); what it booted to is kept, one copy per distinct state dump
//! and applied index, and compared with the run's reference states once the
//! run is over. A crash before a `sync` or `sync_dir` leaves what the
//! process reads unchanged, so a state with no changing operation since the
//! last booted one is counted and not booted again.

use super::boot_forked;
use crate::fault::DiskOp;
use replica::disk::MemDisk;
use replica::member::StoreConfig;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Where a process-crash state was taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpPoint {
    /// The member's disk operations before it (from the start of capture).
    pub op_index: u64,
    pub op: DiskOp,
    pub path: PathBuf,
}

/// A process-crash state that failed a check.
#[derive(Debug, Clone)]
pub struct ProcessFailure {
    pub at: OpPoint,
    pub detail: String,
    pub diffs: Vec<String>,
}

/// The outcome of the process-crash enumeration.
#[derive(Debug, Clone, Default)]
pub struct ProcessReport {
    /// States enumerated (one per disk operation, up to the bound).
    pub states: u64,
    /// States booted (the others equal the state booted before them).
    pub booted: u64,
    /// Distinct (applied index, state) pairs compared with the run's state.
    pub compared: u64,
    pub failures: Vec<ProcessFailure>,
}

#[derive(Debug, Default)]
struct Log {
    ops: u64,
    states: u64,
    booted: u64,
    /// Something a process would read changed since the last booted state.
    changed_since_boot: bool,
    /// By applied index: each distinct state dump booted there, with the
    /// first state that booted to it.
    dumps: BTreeMap<u64, Vec<(serde_json::Value, OpPoint)>>,
    failures: Vec<ProcessFailure>,
}

/// The process-crash half of a capture: boots each state as it comes.
#[derive(Debug)]
pub struct ProcessCrashes {
    store: StoreConfig,
    max_states: u64,
    log: Mutex<Log>,
}

impl ProcessCrashes {
    pub fn new(store: StoreConfig, max_states: u64) -> ProcessCrashes {
        ProcessCrashes {
            store,
            max_states,
            log: Mutex::new(Log {
                changed_since_boot: true,
                ..Log::default()
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Log> {
        self.log.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The process may crash before `op` on `disk`: boots that state unless
    /// it is the state booted last.
    pub fn before_op(&self, disk: &MemDisk, op: DiskOp, path: &Path) {
        let mut log = self.lock();
        let at = OpPoint {
            op_index: log.ops,
            op,
            path: path.to_path_buf(),
        };
        log.ops += 1;
        if log.states >= self.max_states {
            return;
        }
        log.states += 1;
        if log.changed_since_boot {
            log.booted += 1;
            log.changed_since_boot = false;
            self.boot(&mut log, disk.fork(), at);
        }
        if !op.keeps_view() {
            log.changed_since_boot = true;
        }
    }

    fn boot(&self, log: &mut Log, disk: MemDisk, at: OpPoint) {
        match boot_forked(disk, &self.store) {
            Ok(None) => {}
            Ok(Some(member)) => match member.state_dump().map(serde_json::to_value) {
                Ok(Ok(dump)) => {
                    let seen = log.dumps.entry(member.applied_index()).or_default();
                    if !seen.iter().any(|(d, _)| *d == dump) {
                        seen.push((dump, at));
                    }
                }
                Ok(Err(e)) => log
                    .failures
                    .push(failure(at, format!("state dump cannot be serialised: {e}"))),
                Err(e) => log
                    .failures
                    .push(failure(at, format!("no state dump: {e}"))),
            },
            Err(detail) => log.failures.push(failure(at, detail)),
        }
    }

    /// Compares every distinct booted state with the run's state at its
    /// applied index (`references`), and reports.
    pub fn finish(&self, references: &BTreeMap<u64, serde_json::Value>) -> ProcessReport {
        let mut log = self.lock();
        let mut report = ProcessReport {
            states: log.states,
            booted: log.booted,
            failures: std::mem::take(&mut log.failures),
            ..ProcessReport::default()
        };
        for (index, dumps) in &log.dumps {
            let Some(reference) = references.get(index) else {
                continue;
            };
            for (dump, at) in dumps {
                report.compared += 1;
                if let Err(m) = super::compare_dumps(dump, *index, reference) {
                    report.failures.push(ProcessFailure {
                        at: at.clone(),
                        detail: m.detail,
                        diffs: m.diffs,
                    });
                }
            }
        }
        report.failures.sort_by_key(|f| f.at.op_index);
        report
    }
}

fn failure(at: OpPoint, detail: String) -> ProcessFailure {
    ProcessFailure {
        at,
        detail,
        diffs: Vec::new(),
    }
}
