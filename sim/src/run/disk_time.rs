//! Disk time: the seeded latency of every disk operation (with the `slow`
//! fault class), and slow episodes of one member's disk. The cost model
//! and its limit are in `fault/mod.rs` ("Disk time").

use super::supervisor::Supervisor;
use crate::cluster::world::World;
use crate::fault::{DiskLatency, FaultClass};

/// Gives every member's disk the run's latency model, if the run has the
/// `slow` class or asks for disk time (before any member starts).
pub(super) fn enable_disk_time(world: &World) {
    let w = world.lock();
    if !w.cfg.has(FaultClass::Slow) && !w.cfg.disk_time {
        return;
    }
    for (id, slot) in &w.members {
        slot.disk.set_latency(DiskLatency::draw(w.cfg.seed, *id));
    }
}

impl Supervisor {
    /// Member `id`'s disk becomes `factor` times slower for `ms`. A disk
    /// without disk time gets the run's model first (a scenario's `slow`
    /// step in a run without the class).
    pub(crate) fn slow_disk(&mut self, id: u64, factor: u64, ms: u64) -> Result<(), String> {
        let now = self.now_ms();
        let mut w = self.world.lock();
        let seed = w.cfg.seed;
        let slot = w.slot_mut(id).ok_or(format!("no member {id}"))?;
        if !slot.disk.has_latency() {
            slot.disk.set_latency(DiskLatency::draw(seed, id));
        }
        slot.disk.slow_down(factor, now + ms);
        w.stats.slow_disks += 1;
        w.event(
            now,
            Some(id),
            format_args!("slow disk: {factor}x for {ms} ms"),
        );
        Ok(())
    }

    /// Whether any member's disk is in a slow episode.
    pub(super) fn any_slow(&self) -> bool {
        self.world.lock().members.values().any(|s| s.disk.is_slow())
    }
}
