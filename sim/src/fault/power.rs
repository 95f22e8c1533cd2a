//! The seeded power-loss plan: which unsynced state survives.

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use replica::disk::{PendingOp, PowerLossPlan, Survival};
use std::path::Path;

/// The sector size at which a write can tear.
pub const SECTOR: usize = 512;

/// A power loss whose surviving writes are chosen from a seeded RNG.
///
/// With `reorder` off, every unsynced write is lost (the plain model). With
/// it on, each file keeps a random subset of its unsynced operations (a
/// disk may persist a later write before an earlier one until the fsync),
/// and a kept write is torn at a sector boundary with some probability;
/// each directory's unsynced changes survive or not as a whole.
#[derive(Debug)]
pub struct SeededPowerLoss<'a> {
    rng: &'a mut ChaCha8Rng,
    reorder: bool,
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
            kept: 0,
            torn: 0,
            lost: 0,
        }
    }
}

impl PowerLossPlan for SeededPowerLoss<'_> {
    fn file_op(&mut self, _path: &Path, _op_index: usize, op: &PendingOp) -> Survival {
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
        self.reorder && self.rng.random_bool(0.5)
    }
}
