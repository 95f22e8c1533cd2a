//! The seeded power-loss plan: which unsynced state survives.

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use replica::disk::{PendingOp, PowerLossPlan, Survival};
use std::path::Path;

/// The sector size at which a write can tear.
pub const SECTOR: usize = 512;

/// What a power loss does to the unsynced state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PowerLossKind {
    /// Every unsynced write and directory change is lost.
    Lose,
    /// Each file keeps a random subset of its unsynced writes, some torn.
    Reorder,
    /// Every unsynced write survives but each file's last one is torn.
    TearTail,
}

/// How the next power loss of a member goes: its kind, and the seed of the
/// plan's own RNG (so a recorded power loss can be replayed exactly).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PowerPlan {
    pub kind: PowerLossKind,
    /// `None`: drawn from the supervisor's fault stream when it happens.
    pub seed: Option<u64>,
}

/// A power loss whose surviving writes are chosen from a seeded RNG.
///
/// With `reorder` off, every unsynced write is lost (the plain model). With
/// it on, each file keeps a random subset of its unsynced operations (a
/// disk may persist a later write before an earlier one until the fsync),
/// and a kept write is torn after a multiple of 512 bytes with some probability;
/// each directory's unsynced changes survive or not as a whole.
#[derive(Debug)]
pub struct SeededPowerLoss<'a> {
    rng: &'a mut ChaCha8Rng,
    reorder: bool,
    /// Keep every unsynced write but tear the last one of each file.
    tear_tail: bool,
    /// Pending operations of the file being decided.
    file_pending: usize,
    /// Counts of what the plan did, for the run's statistics.
    pub kept: u64,
    pub torn: u64,
    pub lost: u64,
}

impl<'a> SeededPowerLoss<'a> {
    pub fn new(rng: &'a mut ChaCha8Rng, reorder: bool) -> Self {
        SeededPowerLoss {
            rng,
            reorder,
            tear_tail: false,
            file_pending: 0,
            kept: 0,
            torn: 0,
            lost: 0,
        }
    }
}

impl<'a> SeededPowerLoss<'a> {
    /// The plan of `kind`, drawing from `rng`.
    pub fn of_kind(rng: &'a mut ChaCha8Rng, kind: PowerLossKind) -> Self {
        match kind {
            PowerLossKind::Lose => SeededPowerLoss::new(rng, false),
            PowerLossKind::Reorder => SeededPowerLoss::new(rng, true),
            PowerLossKind::TearTail => SeededPowerLoss::tear_tail(rng),
        }
    }

    /// The plan that keeps every unsynced write of a file and its directory
    /// changes, except that the last write is torn after a multiple of 512 bytes
    /// inside it (or lost, if it is a single sector): the shape of a torn
    /// WAL tail.
    pub fn tear_tail(rng: &'a mut ChaCha8Rng) -> Self {
        SeededPowerLoss {
            tear_tail: true,
            ..SeededPowerLoss::new(rng, true)
        }
    }
}

impl PowerLossPlan for SeededPowerLoss<'_> {
    fn file_op(&mut self, path: &Path, op_index: usize, op: &PendingOp) -> Survival {
        if self.tear_tail {
            return self.tear_last(path, op_index, op);
        }
        if !self.reorder || self.rng.random_bool(0.5) {
            self.lost += 1;
            return Survival::Lost;
        }
        if let PendingOp::Write { data, .. } = op {
            let sectors = data.len().div_ceil(SECTOR);
            if sectors > 1 && self.rng.random_bool(0.3) {
                self.torn += 1;
                let keep = self.rng.random_range(0..sectors) * SECTOR;
                return Survival::Torn { keep_bytes: keep };
            }
        }
        self.kept += 1;
        Survival::Kept
    }

    fn dir_changes(&mut self, _dir: &Path) -> bool {
        self.tear_tail || (self.reorder && self.rng.random_bool(0.5))
    }

    fn begin_file(&mut self, _path: &Path, pending: usize) {
        self.file_pending = pending;
    }
}

impl SeededPowerLoss<'_> {
    fn tear_last(&mut self, _path: &Path, op_index: usize, op: &PendingOp) -> Survival {
        if op_index + 1 < self.file_pending {
            self.kept += 1;
            return Survival::Kept;
        }
        match op {
            PendingOp::Write { data, .. } if data.len() > SECTOR => {
                self.torn += 1;
                let sectors = data.len().div_ceil(SECTOR);
                let keep = self.rng.random_range(1..sectors) * SECTOR;
                Survival::Torn { keep_bytes: keep }
            }
            _ => {
                self.lost += 1;
                Survival::Lost
            }
        }
    }
}
