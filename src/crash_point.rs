//! Named crash points: places in the store where a test driver may stop the
//! member, as if the process died or the power failed right there.
//!
//! The store calls [`CrashHook::at`] at each point. The default hook does
//! nothing (a virtual call per point, no allocation). A driver that wants a
//! crash returns [`Crashed`] and, in the same breath, makes its disk refuse
//! every further operation, so no write after the point can ever land. The
//! store propagates the error and the driver discards the member.

use crate::probe::Probe;
use std::fmt;

/// A place in the store where a crash is interesting.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CrashPoint {
    /// WAL records written, not yet fsynced.
    WalSaveBeforeSync,
    /// WAL records fsynced, not yet acknowledged to raft.
    WalSaveAfterSync,
    /// A backend batch is about to be committed.
    BackendCommitBefore,
    /// A backend batch was committed.
    BackendCommitAfter,
    /// An entry's v2 half is applied, its v3 half not yet.
    ApplyBetweenV2AndV3,
    /// A v2 snapshot file is saved, its WAL marker not yet written.
    SnapshotAfterSaveBeforeMarker,
    /// The WAL snapshot marker is written, old segments not yet released.
    SnapshotAfterMarker,
    /// A snapshot received from the leader is being applied.
    SnapshotApplyMidway,
}

impl CrashPoint {
    /// Every crash point, in a fixed order.
    pub const ALL: [CrashPoint; 8] = [
        CrashPoint::WalSaveBeforeSync,
        CrashPoint::WalSaveAfterSync,
        CrashPoint::BackendCommitBefore,
        CrashPoint::BackendCommitAfter,
        CrashPoint::ApplyBetweenV2AndV3,
        CrashPoint::SnapshotAfterSaveBeforeMarker,
        CrashPoint::SnapshotAfterMarker,
        CrashPoint::SnapshotApplyMidway,
    ];

    /// The stable name used in scenario files and traces.
    pub fn name(self) -> &'static str {
        match self {
            CrashPoint::WalSaveBeforeSync => "wal.save.before_sync",
            CrashPoint::WalSaveAfterSync => "wal.save.after_sync",
            CrashPoint::BackendCommitBefore => "backend.commit.before",
            CrashPoint::BackendCommitAfter => "backend.commit.after",
            CrashPoint::ApplyBetweenV2AndV3 => "apply.between_v2_and_v3",
            CrashPoint::SnapshotAfterSaveBeforeMarker => "snapshot.after_save_before_marker",
            CrashPoint::SnapshotAfterMarker => "snapshot.after_marker",
            CrashPoint::SnapshotApplyMidway => "snapshot.apply_midway",
        }
    }

    /// The crash point with this name.
    pub fn from_name(name: &str) -> Option<CrashPoint> {
        Self::ALL.into_iter().find(|p| p.name() == name)
    }
}

impl fmt::Display for CrashPoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The member was stopped at a crash point by its driver.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("crashed at {point}")]
pub struct Crashed {
    pub point: CrashPoint,
}

/// Called by the store at every crash point and coverage probe.
pub trait CrashHook: Send + Sync + fmt::Debug {
    /// Returns `Err` to stop the member here.
    fn at(&self, point: CrashPoint) -> Result<(), Crashed>;

    /// The store reached a probe's state (see [`crate::probe`]). A real
    /// member's hook ignores it; the simulator counts it.
    fn probe(&self, _probe: Probe) {}
}

/// The hook of a real member: never crashes.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoCrash;

impl CrashHook for NoCrash {
    fn at(&self, _: CrashPoint) -> Result<(), Crashed> {
        Ok(())
    }
}
