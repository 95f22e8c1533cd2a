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
/// and a kept write is torn at a 512-byte sector boundary of the file with
/// some probability; each unsynced directory entry survives or not on its
/// own.
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
    /// Unsynced writes this plan could have torn (ones that cross a sector
    /// boundary); none means a torn or reordering loss had nothing to tear.
    pub tear_targets: u64,
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
            tear_targets: 0,
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
    /// changes, except that the last write is torn at a sector boundary of the file
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
        if let PendingOp::Write { offset, data } = op
            && self.reorder
            && !sector_cuts(*offset, data.len()).is_empty()
        {
            self.tear_targets += 1;
        }
        if !self.reorder || self.rng.random_bool(0.5) {
            self.lost += 1;
            return Survival::Lost;
        }
        if let PendingOp::Write { offset, data } = op {
            let cuts = sector_cuts(*offset, data.len());
            if !cuts.is_empty() && self.rng.random_bool(0.3) {
                self.torn += 1;
                let keep = cuts[self.rng.random_range(0..cuts.len())];
                return Survival::Torn { keep_bytes: keep };
            }
        }
        self.kept += 1;
        Survival::Kept
    }

    fn name_change(&mut self, _name: &Path) -> bool {
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
        let cuts = match op {
            PendingOp::Write { offset, data } => sector_cuts(*offset, data.len()),
            PendingOp::SetLen(_) => Vec::new(),
        };
        if cuts.is_empty() {
            self.lost += 1;
            return Survival::Lost;
        }
        self.tear_targets += 1;
        self.torn += 1;
        let keep = cuts[self.rng.random_range(0..cuts.len())];
        Survival::Torn { keep_bytes: keep }
    }
}

/// The lengths a write of `len` bytes at file offset `offset` can be torn
/// to: a disk persists whole sectors, so a torn write ends at a sector
/// boundary of the file strictly inside the written range. A write inside
/// one sector has none (it lands whole or not at all).
pub fn sector_cuts(offset: u64, len: usize) -> Vec<usize> {
    let sector = SECTOR as u64;
    let end = offset + len as u64;
    let first = (offset / sector + 1) * sector;
    (first..end)
        .step_by(SECTOR)
        .map(|boundary| (boundary - offset) as usize)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tears_end_at_sector_boundaries_of_the_file() {
        // A write from 100 to 1300 crosses the boundaries at 512 and 1024.
        assert_eq!(sector_cuts(100, 1200), vec![412, 924]);
        // Aligned: every inner boundary.
        assert_eq!(sector_cuts(0, 3 * SECTOR), vec![SECTOR, 2 * SECTOR]);
        // Inside one sector, or ending exactly at its boundary: no tear.
        assert!(sector_cuts(10, 400).is_empty());
        assert!(sector_cuts(0, SECTOR).is_empty());
    }
}
