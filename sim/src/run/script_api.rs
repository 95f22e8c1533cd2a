//! What a scenario script may ask of the supervisor: hold members down,
//! arm faults, restart, query roles, record states. The script never
//! reaches into the supervisor's or the world's fields.

use super::supervisor::Supervisor;
use crate::checker::Violation;
use crate::cluster::client::{ScriptRequest, script_session};
use crate::cluster::slot::Down;
use crate::fault::{ArmedCrash, DiskFault, PowerPlan};
use crate::snapshot_view::{Recorded, snapshot_view};
use futures_channel::mpsc::UnboundedReceiver;
use std::collections::BTreeMap;

impl Supervisor {
    /// A run statistic by name (for scenario `expect` steps); 0 for a name
    /// the format's validation would have refused.
    pub(crate) fn stat(&self, name: &str) -> u64 {
        self.world.lock().stats.get(name).unwrap_or(0)
    }

    /// Puts a line on the run's timeline.
    pub(crate) fn event(&self, member: Option<u64>, what: std::fmt::Arguments<'_>) {
        let now = self.now_ms();
        self.world.lock().event(now, member, what);
    }

    /// Records a violation found by the script itself.
    pub(crate) fn violation(&self, v: Violation) {
        self.world.lock().violation(v);
    }

    /// Keeps member `id` down when it stops, until [`Supervisor::release`].
    pub(crate) fn hold_down(&mut self, id: u64) {
        self.held_down.insert(id);
    }

    /// Lets a held-down member be restarted again.
    pub(crate) fn release(&mut self, id: u64) {
        self.held_down.remove(&id);
    }

    /// Makes the next restart of member `id` end in a power loss at its
    /// first sync (`plan`: how that power loss goes).
    pub(crate) fn power_loss_at_reboot_sync(&mut self, id: u64, plan: Option<PowerPlan>) {
        self.reboot_power_requests.insert(id, plan);
    }

    /// Restarts member `id` at the next poll.
    pub(crate) fn restart_now(&mut self, id: u64) {
        let now = self.now_ms();
        self.restarts_due.insert(id, now);
    }

    /// Starts the scenario's client session on the client node.
    pub(crate) fn start_script_session(&self, requests: UnboundedReceiver<ScriptRequest>) {
        self.client_node
            .spawn(script_session(self.world.clone(), requests));
    }

    /// Runs `task` on the client node.
    pub(crate) fn spawn_on_client<F>(&self, task: F)
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        self.client_node.spawn(task);
    }

    /// Arms a crash at a named point of member `id`.
    pub(crate) fn arm_crash(&self, id: u64, crash: ArmedCrash) {
        if let Some(slot) = self.world.lock().slot(id) {
            slot.hook.arm(crash);
        }
    }

    /// Arms a fault on member `id`'s disk; a crash at the k-th operation or
    /// at a sync with a write to tear is a power loss if `power`.
    pub(crate) fn arm_disk(&self, id: u64, fault: DiskFault, power: bool) {
        if let Some(slot) = self.world.lock().slot_mut(id) {
            if matches!(
                fault,
                DiskFault::CrashAfterOps(_) | DiskFault::CrashAtTearableSync(_)
            ) {
                slot.armed.disk_crash_power = power;
            }
            slot.disk.arm(fault);
        }
    }

    /// Forgets that a crash at the k-th disk operation was a power loss
    /// (the member is about to restart).
    pub(crate) fn clear_disk_crash_power(&self, id: u64) {
        if let Some(slot) = self.world.lock().slot_mut(id) {
            slot.armed.disk_crash_power = false;
        }
    }

    /// How member `id`'s next power loss goes (`None`: the run decides).
    pub(crate) fn set_power_plan(&self, id: u64, plan: Option<PowerPlan>) {
        if let Some(slot) = self.world.lock().slot_mut(id) {
            slot.armed.power_plan = plan;
        }
    }

    /// Gives member `id`'s disk room for `free_bytes` more than it holds.
    pub(crate) fn fill_disk(&self, id: u64, free_bytes: u64) {
        let now = self.now_ms();
        let mut w = self.world.lock();
        let Some(slot) = w.slot(id) else {
            return;
        };
        let capacity = slot.disk.mem().used_bytes() + free_bytes;
        slot.disk.arm(DiskFault::Capacity(capacity));
        w.event(
            now,
            Some(id),
            format_args!("disk full at {capacity} bytes ({free_bytes} free)"),
        );
    }

    /// Whether member `id` runs and a crash or disk fault is armed on it.
    pub(crate) fn crash_armed(&self, id: u64) -> bool {
        self.world
            .lock()
            .slot(id)
            .is_some_and(|s| s.node.is_some() && s.has_armed_fault())
    }

    /// Whether member `id`'s process is not running (an unknown id counts
    /// as down).
    pub(crate) fn is_down(&self, id: u64) -> bool {
        self.world.lock().slot(id).is_none_or(|s| s.node.is_none())
    }

    /// Whether member `id` is up, or can never come up (a failed boot).
    pub(crate) fn is_up_or_broken(&self, id: u64) -> bool {
        self.world
            .lock()
            .slot(id)
            .is_none_or(|s| s.node.is_some() || matches!(s.down, Some(Down::Broken)))
    }

    /// Boot attempts of member `id` so far.
    pub(crate) fn boots(&self, id: u64) -> u64 {
        self.world.lock().slot(id).map_or(0, |s| s.boots)
    }

    /// The member that leads now.
    pub(crate) fn leader(&self) -> Option<u64> {
        self.world.lock().leader()
    }

    /// The lowest-id running member that does not lead.
    pub(crate) fn running_follower(&self) -> Option<u64> {
        let w = self.world.lock();
        let leader = w.leader();
        w.members
            .iter()
            .find(|(id, s)| s.is_running() && Some(**id) != leader)
            .map(|(id, _)| *id)
    }

    /// Makes member `id` take a v2 snapshot now. A crash armed at a snapshot
    /// crash point may fire: the member then stops as after any armed crash.
    pub(crate) fn force_snapshot(&mut self, id: u64) -> Result<(), String> {
        let now = self.now_ms();
        let mut w = self.world.lock();
        let result = w
            .slot_mut(id)
            .and_then(|s| s.node.as_mut())
            .map(|n| n.force_snapshot());
        // An armed crash or an injected I/O error stops the member, as in
        // its own loop.
        let eio = w.slot(id).is_some_and(|s| s.disk.eio_returned());
        match result {
            Some(Ok(_)) => Ok(()),
            Some(Err(e)) if e.crashed().is_some() || eio => {
                w.member_stopped(id, now, &e.to_string());
                Ok(())
            }
            Some(Err(e)) => Err(format!("force_snapshot on member {id}: {e}")),
            None => Err(format!("force_snapshot: member {id} is not running")),
        }
    }

    /// Records every running member's state (held-down and removed members
    /// aside) under `label`, for the scenario's insta snapshot.
    pub(crate) fn record_states(&mut self, label: &str) {
        let mut members = BTreeMap::new();
        let mut w = self.world.lock();
        for (id, slot) in &w.members {
            if self.held_down.contains(id) || slot.removed {
                continue;
            }
            if let Some(dump) = slot
                .node
                .as_ref()
                .and_then(|n| n.member().state_dump().ok())
            {
                let value = serde_json::to_value(&dump).unwrap_or_default();
                members.insert(format!("m{id}"), snapshot_view(value));
            }
        }
        w.recorded.push(Recorded {
            label: label.to_string(),
            members,
        });
    }
}
