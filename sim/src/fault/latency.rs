//! Disk time: what each disk operation costs in virtual time.
//!
//! The store is synchronous (sans-IO), so its operations take effect at the
//! instant the member steps. Their cost accumulates here, and the member's
//! task sleeps it off in virtual time (`cluster/member.rs`) before its
//! outputs (messages, client replies) leave and before it steps again. A
//! slow disk so delays what the member says and when it next ticks, and
//! other members' messages, ticks and crashes interleave with its work.

use crate::rng::{STREAM_DISK_JITTER_BASE, STREAM_DISK_MODEL, stream};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use std::time::Duration;

/// The kinds of operation that cost differently.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Cost {
    Read = 0,
    Write = 1,
    Sync = 2,
    SyncDir = 3,
    Meta = 4,
}

/// Nanoseconds per byte read or written (about 1 GB/s).
const NS_PER_BYTE: u64 = 1;

/// One member's disk clock.
#[derive(Debug)]
pub struct DiskLatency {
    /// Base cost of one operation of each [`Cost`] kind, in ns: the same
    /// disk model for every member of a run.
    base_ns: [u64; 5],
    /// Per-operation jitter (this member's own stream).
    jitter: ChaCha8Rng,
    /// A `slow` episode: every cost is multiplied by `factor` until `until_ms`.
    slow: Option<(u64, u64)>,
    /// Cost of the operations since the member last slept it off.
    owed_ns: u64,
    /// Of those, the normal-speed cost of the ones charged in a slow
    /// episode (`owed_ns` holds them times the factor).
    slowed_ns: u64,
}

impl DiskLatency {
    /// Member `id`'s disk clock in run `seed`. The model is drawn once per
    /// run (the same for every member): a sync costs 0.2 to 3 ms, a
    /// directory sync as much, a write 5 to 30 µs, a read 2 to 20 µs, an
    /// entry change 20 to 100 µs, plus 1 ns per byte moved.
    pub fn draw(seed: u64, id: u64) -> DiskLatency {
        let mut model = stream(seed, STREAM_DISK_MODEL);
        let sync = model.random_range(200_000..=3_000_000);
        let write = model.random_range(5_000..=30_000);
        let read = model.random_range(2_000..=20_000);
        let meta = model.random_range(20_000..=100_000);
        DiskLatency {
            base_ns: [read, write, sync, sync, meta],
            jitter: stream(seed, STREAM_DISK_JITTER_BASE + id),
            slow: None,
            owed_ns: 0,
            slowed_ns: 0,
        }
    }

    /// Charges one operation moving `bytes`: its base cost times a jitter
    /// of 0.5 to 1.5, times the slow factor.
    pub(super) fn charge(&mut self, kind: Cost, bytes: usize) {
        let base = self.base_ns[kind as usize];
        let jittered = self.jitter.random_range(base / 2..=base + base / 2);
        let cost = jittered + bytes as u64 * NS_PER_BYTE;
        let factor = self.slow.map_or(1, |(f, _)| f);
        if factor > 1 {
            self.slowed_ns = self.slowed_ns.saturating_add(cost);
        }
        self.owed_ns = self.owed_ns.saturating_add(cost.saturating_mul(factor));
    }

    /// Makes every operation `factor` times slower until `until_ms`.
    pub(super) fn slow_down(&mut self, factor: u64, until_ms: u64) {
        self.slow = Some((factor.max(1), until_ms));
    }

    /// Whether a slow episode is on.
    pub(super) fn is_slow(&self) -> bool {
        self.slow.is_some()
    }

    /// The time owed since the last call, for operations that ran from
    /// `now_ms` on; a slow episode past its end is over. The disk is slow
    /// only until the episode ends: the slowed operations take at most
    /// the rest of the episode plus their normal-speed cost (one step's
    /// many operations, a snapshot's, cannot stall the member far past it).
    pub(super) fn take_owed(&mut self, now_ms: u64) -> Duration {
        let mut owed = std::mem::take(&mut self.owed_ns);
        let slowed = std::mem::take(&mut self.slowed_ns);
        if let Some((factor, until)) = self.slow {
            let rest_ns = until.saturating_sub(now_ms).saturating_mul(1_000_000);
            let excess = slowed
                .saturating_mul(factor)
                .saturating_sub(rest_ns.saturating_add(slowed));
            owed = owed.saturating_sub(excess);
            if until <= now_ms {
                self.slow = None;
            }
        }
        Duration::from_nanos(owed)
    }

    /// A new process owes nothing for the old one's operations.
    pub(super) fn forgive(&mut self) {
        self.owed_ns = 0;
        self.slowed_ns = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::{Cost, DiskLatency};
    use std::time::Duration;

    /// A disk whose every operation costs 1 ms (no jitter, no bytes).
    fn one_ms_per_op() -> DiskLatency {
        let mut disk = DiskLatency::draw(1, 1);
        disk.base_ns = [1_000_000; 5];
        disk
    }

    #[test]
    fn slowed_operations_stall_the_member_at_most_until_the_episode_ends() {
        let mut disk = one_ms_per_op();
        disk.slow_down(100, 1_000);
        disk.charge(Cost::Sync, 0);
        let one = disk.take_owed(0);
        assert!(one >= Duration::from_millis(50) && one <= Duration::from_millis(150));
        for _ in 0..40 {
            disk.charge(Cost::Sync, 0);
        }
        let many = disk.take_owed(200);
        assert!(
            many > Duration::from_millis(800) && many <= Duration::from_millis(860),
            "the rest of the episode (800 ms) plus 40 ops at normal speed: {many:?}"
        );
        assert!(disk.is_slow());
        disk.charge(Cost::Sync, 0);
        let after = disk.take_owed(1_000);
        assert!(after <= Duration::from_millis(2), "{after:?}");
        assert!(!disk.is_slow(), "over at its end");
    }
}
