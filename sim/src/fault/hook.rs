//! Crash points for the simulator: the store calls the hook at each named
//! point; an armed hook freezes the member's disk and stops the member there.

use super::SimDisk;
use crate::coverage::{ProbeHits, crash_point_probe};
use replica::crash_point::{CrashHook, CrashPoint, Crashed};
use replica::probe::Probe;
use std::sync::{Arc, Mutex};

/// What happens to the disk when an armed crash fires.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CrashKind {
    /// The process dies; the page cache survives.
    Process,
    /// The power fails: unsynced state is at the mercy of the power-loss plan.
    Power,
}

/// A crash waiting at a point: fires at the `hits`-th time the point is hit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ArmedCrash {
    pub point: CrashPoint,
    pub hits: u32,
    pub kind: CrashKind,
    /// 0: crash at the point. k > 0: crash at the k-th disk operation after
    /// the point (with `backend.commit.before`, inside redb's commit).
    pub after_ops: u64,
}

#[derive(Debug, Default)]
struct HookState {
    armed: Option<ArmedCrash>,
    fired: Option<ArmedCrash>,
    /// Probes the store reported and crashes that fired, over every process
    /// of the member.
    probes: ProbeHits,
}

/// One member's crash hook; it lives as long as the member's disk.
#[derive(Debug)]
pub struct SimCrashHook {
    disk: Arc<SimDisk>,
    state: Mutex<HookState>,
}

impl SimCrashHook {
    pub fn new(disk: Arc<SimDisk>) -> Arc<SimCrashHook> {
        Arc::new(SimCrashHook {
            disk,
            state: Mutex::new(HookState::default()),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HookState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn arm(&self, crash: ArmedCrash) {
        self.lock().armed = Some(crash);
    }

    /// The crash that fired since the last restart, if any (cleared).
    pub fn take_fired(&self) -> Option<ArmedCrash> {
        self.lock().fired.take()
    }

    /// Whether a crash is armed and has not fired yet.
    pub fn is_armed(&self) -> bool {
        self.lock().armed.is_some()
    }

    /// The probes the member's processes reached, and the crash points at
    /// which a crash fired (the disk's own probes not included).
    pub fn probe_hits(&self) -> ProbeHits {
        self.lock().probes.clone()
    }

    /// Forgets an armed crash that did not fire, and a fired one.
    pub fn disarm(&self) {
        let mut s = self.lock();
        s.armed = None;
        s.fired = None;
    }
}

impl CrashHook for SimCrashHook {
    fn at(&self, point: CrashPoint) -> Result<(), Crashed> {
        if point == CrashPoint::BackendCommitAfter {
            self.disk.commit_window(false);
        }
        let result = self.fire_if_armed(point);
        if point == CrashPoint::BackendCommitBefore && result.is_ok() {
            self.disk.commit_window(true);
        }
        result
    }

    fn probe(&self, probe: Probe) {
        self.lock().probes.hit(probe.name());
    }
}

impl SimCrashHook {
    fn fire_if_armed(&self, point: CrashPoint) -> Result<(), Crashed> {
        let mut s = self.lock();
        let Some(armed) = s.armed.as_mut() else {
            return Ok(());
        };
        if armed.point != point {
            return Ok(());
        }
        armed.hits = armed.hits.saturating_sub(1);
        if armed.hits > 0 {
            return Ok(());
        }
        let fired = *armed;
        s.armed = None;
        s.fired = Some(fired);
        s.probes.hit(&crash_point_probe(point));
        drop(s);
        if fired.after_ops > 0 {
            self.disk
                .arm(super::DiskFault::CrashAfterOps(fired.after_ops));
            return Ok(());
        }
        self.disk.freeze();
        Err(Crashed { point })
    }
}
