//! A compound fault: a member that got an injected EIO and carried on loses
//! power within a second.
//!
//! Errors on a failing disk come in bursts, and the host often goes down
//! soon after. What matters to the store is what it left on disk when it
//! carried on (a snapshot whose rename failed, a directory entry never
//! synced), and only a reboot reads that. Without this fault the member's
//! next crash is an independent draw seconds later, by when a store that
//! carried on over the error has usually repaired the damage (its next
//! snapshot, its next sync).
//!
//! It is a power loss, as after every EIO stop, not a process crash: the
//! page cache would keep the unsynced state, and a reboot that syncs what
//! it finds would hide a sync the store skipped. Every survived EIO gets
//! its power loss: survived EIOs are rare (about a dozen in 300 random
//! seeds with a switch on; the correct store stops on every EIO), and
//! drawing it three times in four lost the one seed within 150 that
//! catches `snapshot-rename-error-ignored`.

use super::supervisor::Supervisor;
use crate::fault::FaultClass;
use crate::rng::{STREAM_EIO_AFTERMATH, stream};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeMap;

/// The power loss comes this many milliseconds after the EIO was seen, at most.
const CRASH_WITHIN_MS: u64 = 1_000;

/// The decisions on survived EIOs, from their own stream
/// (`STREAM_EIO_AFTERMATH`), so the fault stream's draws keep their order.
pub(crate) struct EioAftermath {
    rng: ChaCha8Rng,
    /// Members seen running after an injected EIO in their current
    /// process: when each crashes (`None`: it has crashed).
    decided: BTreeMap<u64, Option<u64>>,
}

impl EioAftermath {
    pub(crate) fn new(seed: u64) -> EioAftermath {
        EioAftermath {
            rng: stream(seed, STREAM_EIO_AFTERMATH),
            decided: BTreeMap::new(),
        }
    }
}

impl Supervisor {
    /// While random EIOs are on: draws, for each member newly seen running
    /// after an injected EIO, when it crashes (from the aftermath stream),
    /// and crashes those whose moment has come. The EIO then counts as fired
    /// in the recorded schedule (the member survived it), and the crash is
    /// recorded as it happens, so a replay does both. A member that stops
    /// or restarts meanwhile is forgotten; the crash waits while the
    /// member could not go down without breaking the budget.
    pub(crate) fn follow_survived_eios(&mut self) {
        let now = self.now_ms();
        if now >= self.random_until || !self.world.lock().cfg.has(FaultClass::Eio) {
            return;
        }
        let survivors = self.eio_survivors();
        self.eio_aftermath
            .decided
            .retain(|id, _| survivors.contains(id));
        for id in survivors {
            if self.eio_aftermath.decided.contains_key(&id) {
                continue;
            }
            let delay = self.eio_aftermath.rng.random_range(0..=CRASH_WITHIN_MS);
            self.eio_aftermath.decided.insert(id, Some(now + delay));
        }
        let due: Vec<u64> = (self.eio_aftermath.decided.iter())
            .filter(|(_, at)| at.is_some_and(|t| t <= now))
            .map(|(id, _)| *id)
            .collect();
        for id in due {
            if self.may_crash_after_eio(id) {
                self.eio_aftermath.decided.insert(id, None);
                self.crash_after_eio(now, id);
            }
        }
    }

    /// Running members whose current process got an injected EIO.
    fn eio_survivors(&self) -> Vec<u64> {
        let w = self.world.lock();
        (w.members.iter())
            .filter(|(_, s)| s.is_running() && s.disk.eio_returned())
            .map(|(id, _)| *id)
            .collect()
    }

    /// Whether crashing `id` keeps the budget of members down (it is
    /// connected and nothing is armed on it, else it counts already).
    fn may_crash_after_eio(&self, id: u64) -> bool {
        let w = self.world.lock();
        let counted = w
            .slot(id)
            .is_some_and(|s| s.is_cut_off() || s.has_armed_fault());
        w.unavailable() - usize::from(counted) < w.cfg.max_down()
    }

    fn crash_after_eio(&mut self, now: u64, id: u64) {
        if let Some(s) = &mut self.schedule {
            s.eio_survived(id);
        }
        {
            let mut w = self.world.lock();
            w.stats.crashes_after_eio += 1;
            w.event(
                now,
                Some(id),
                format_args!("power loss after a survived EIO"),
            );
        }
        self.inject_crash(now, id, true);
    }
}
