//! Process pauses: a member's process descheduled by its host for a while
//! (Jepsen's SIGSTOP and SIGCONT, a VM paused or starved of CPU, a long
//! garbage-collection pause). Nothing is lost: its disk and page cache are
//! untouched, and messages and requests wait in its inbox. It neither steps
//! nor ticks, and when it resumes its raft clock ticks once, however long it
//! slept (`cluster/member.rs`), so a store that measures time in its own
//! ticks sees almost none pass.
//!
//! The contract: a pause ends on its own and is a minority event (the host
//! in trouble, the one random source, strikes within the fault budget, cut
//! off from its peers as well); a store may not assume its clock keeps pace
//! with the others' across one.

use super::supervisor::Supervisor;

impl Supervisor {
    /// Pauses member `id`'s process for `ms` from now (no effect on a
    /// member that is down).
    pub(crate) fn pause_process(&mut self, id: u64, ms: u64) -> Result<(), String> {
        let now = self.now_ms();
        let mut w = self.world.lock();
        let slot = w.slot_mut(id).ok_or(format!("no member {id}"))?;
        if slot.node.is_none() {
            return Ok(());
        }
        slot.paused_until = Some(now + ms);
        w.stats.pauses += 1;
        w.event(now, Some(id), format_args!("process paused for {ms} ms"));
        Ok(())
    }
}
