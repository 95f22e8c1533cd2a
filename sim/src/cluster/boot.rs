//! Booting a member from its disk: bootstrap on first start, recovery
//! (snapshot, backend, WAL replay) after that, and the classification of a
//! boot that failed: a crash armed for the boot itself, or a recovery
//! violation.

use super::member_step::outcome_of;
use super::slot::Down;
use super::world::{WorldState, member_info};
use crate::checker;
use crate::checker::{Invariant, Violation};
use crate::fault::CrashKind;
use crate::panic_guard::guard;
use replica::disk::Disk;
use replica::member::{Member, WalMetadata};
use replica::node::{Node, NodeError};
use replica::proto::Member as MemberInfo;
use std::sync::Arc;

impl WorldState {
    /// Boots member `id` from its disk (bootstrapping it the first time).
    /// False if it did not come up.
    pub fn open_member(&mut self, id: u64, now_ms: u64) -> bool {
        let nodes = self.cfg.nodes;
        let config = self.cfg.node_config(id);
        let Some(slot) = self.members.get_mut(&id) else {
            return false;
        };
        let disk: Arc<dyn Disk> = slot.disk.clone();
        let hook = slot.hook.clone();
        let joining = slot.joining;
        let cluster_id = slot.cluster_id;
        slot.boots += 1;
        slot.paused_until = None;
        let opened = guard(|| match Member::is_initialized(disk.as_ref()) {
            Ok(true) => Node::open(disk, config, hook, now_ms),
            Ok(false) => {
                // A joining spare starts with no members: it learns them
                // from the leader's log or snapshot.
                let all: Vec<MemberInfo> = if joining {
                    Vec::new()
                } else {
                    (1..=nodes).map(member_info).collect()
                };
                let meta = WalMetadata {
                    member_id: id,
                    cluster_id,
                };
                Node::bootstrap(disk, config, hook, &meta, &all, now_ms)
            }
            Err(e) => Err(e.into()),
        });
        let boot_crash_armed = std::mem::take(&mut slot.armed.boot_crash);
        match opened {
            Ok(Ok(node)) => {
                self.booted(id, node, boot_crash_armed, now_ms);
                true
            }
            Ok(Err(e)) => {
                self.boot_failed(id, &e, now_ms);
                false
            }
            Err(panic) => {
                self.boot_broken(
                    id,
                    format!("member panicked while booting: {panic}"),
                    now_ms,
                );
                false
            }
        }
    }

    /// The member is up: count what its recovery did.
    fn booted(&mut self, id: u64, node: Node, boot_crash_armed: bool, now_ms: u64) {
        if let Some(sink) = self.cfg.capture.as_ref().filter(|s| s.member() == id) {
            sink.booted();
        }
        let rec = node.recovered().clone();
        let applied = node.member().applied_index();
        let v2_index = node.member().stores().v2.index();
        let unclean = node.member().stores().backend.opened_unclean();
        // What the replay applied counts as taken effect before the state
        // it left is judged.
        self.late_effects(id, &rec.replayed_v3, now_ms);
        let durable = match node.member().state_dump() {
            Ok(dump) => checker::check_durability_at_boot(
                self.history.acked_puts(),
                self.history.applied_deletes(),
                id,
                &dump,
                now_ms,
            ),
            Err(e) => Err(checker::Violation {
                invariant: checker::Invariant::MemberFailure,
                time_ms: now_ms,
                member: Some(id),
                detail: format!("state dump after its recovery failed: {e}"),
                diffs: Vec::new(),
            }),
        };
        if let Err(v) = durable {
            self.violation(v);
        }
        let Some(slot) = self.members.get_mut(&id) else {
            return;
        };
        if boot_crash_armed {
            // A crash during recovery that recovery never reached must not
            // fire later, in normal running.
            slot.hook.disarm();
            slot.armed.until = None;
            slot.armed.boot_crash_missed = true;
        }
        slot.node = Some(node);
        slot.down = None;
        slot.backend_commits = 0;
        slot.pending.clear();
        if unclean {
            self.stats.unclean_backend_opens += 1;
        }
        self.stats.replayed += rec.replayed;
        self.stats.replay_skipped_v3 += rec.replay_skipped_v3;
        if rec.install_finished {
            self.stats.boot_installs += 1;
            self.event(
                now_ms,
                Some(id),
                format_args!("finished an interrupted snapshot install at boot"),
            );
        }
        if let Some(repair) = &rec.wal_repair {
            self.wal_repaired(id, repair, now_ms);
        }
        self.event(
            now_ms,
            Some(id),
            format_args!(
                "open: snapshot {}, replayed {} ({} v3-skipped), applied {applied}{}",
                rec.snapshot.index,
                rec.replayed,
                rec.replay_skipped_v3,
                if unclean { ", backend repaired" } else { "" }
            ),
        );
        if let Err(v) = self.checks.v2_index.check_boot(id, v2_index, now_ms) {
            self.violation(v);
        }
        // After the v2-index check, which names a skipped v2 half better.
        self.replayed_v3_skipped(id, &rec.replayed_v3_skipped, now_ms);
    }

    /// Applies no Ready batch reported: a boot's replay (entries whose v3
    /// half ran), or a Ready that failed after applying. They go on the
    /// client history's apply stream like the Ready loop's (an entry the
    /// cluster applied only there would be unseen otherwise), and are
    /// fingerprinted for restart equivalence.
    pub(super) fn late_effects(
        &mut self,
        id: u64,
        applied: &[replica::apply::Applied],
        now_ms: u64,
    ) {
        for applied in applied.iter().filter(|a| a.applied_v3) {
            let Some(resp) = &applied.response else {
                continue;
            };
            if self.history.applied(applied.index, &outcome_of(resp)) {
                self.stats.applied_twice += 1;
            }
            let fp = checker::Fingerprint::of(applied, resp.revision, resp.v2_index);
            if let Err(v) = self.checks.entries.check(id, applied.index, fp, now_ms) {
                self.violation(v);
            }
        }
    }

    /// Counts and traces a torn WAL tail the boot cut off.
    fn wal_repaired(&mut self, id: u64, repair: &replica::wal::TailRepair, now_ms: u64) {
        self.stats.wal_repairs += 1;
        self.event(
            now_ms,
            Some(id),
            format_args!(
                "WAL torn tail repaired: {} at offset {} ({} bytes dropped)",
                repair.file, repair.offset, repair.dropped_bytes
            ),
        );
    }

    /// A boot's replayed entries whose v3 half was skipped: each compared
    /// with the outcome recorded for its index where the replay can show
    /// it (`EquivalenceTable::check_v3_skipped`); the last one with a
    /// response also by the revision the backend holds.
    fn replayed_v3_skipped(&mut self, id: u64, applied: &[replica::apply::Applied], now_ms: u64) {
        let last = applied
            .iter()
            .rev()
            .find(|a| a.response.is_some())
            .map(|a| a.index);
        for applied in applied {
            let Some(resp) = &applied.response else {
                continue;
            };
            let fp = checker::Fingerprint::of(applied, resp.revision, resp.v2_index);
            let with_revision = last == Some(applied.index);
            match self.checks.entries.check_v3_skipped(
                id,
                applied.index,
                &fp,
                with_revision,
                now_ms,
            ) {
                Ok(true) => self.stats.replay_skipped_fingerprinted += 1,
                Ok(false) => {}
                Err(v) => self.violation(v),
            }
        }
    }

    /// The boot returned an error: a crash armed for the boot itself fired
    /// (crash during recovery), or recovery failed after an allowed fault.
    fn boot_failed(&mut self, id: u64, e: &NodeError, now_ms: u64) {
        let Some(slot) = self.members.get_mut(&id) else {
            return;
        };
        let crashed = slot.disk.is_frozen() || e.crashed().is_some();
        if !crashed && slot.damaged {
            // The store detected the damage and refused to boot on it:
            // fail-stop, as it must. The member stays down.
            slot.down = Some(Down::Broken);
            self.stats.quarantined += 1;
            self.event(
                now_ms,
                Some(id),
                format_args!("quarantined: does not boot on its damaged platter: {e}"),
            );
            return;
        }
        if !crashed {
            self.boot_broken(
                id,
                format!("member failed to boot after an allowed fault: {e}"),
                now_ms,
            );
            return;
        }
        // A crash hook that fired says how it crashed; a disk that froze by
        // itself was armed at an operation count or at the next sync.
        let fired = slot.hook.take_fired();
        let power = fired.map_or(slot.armed.disk_crash_power, |f| f.kind == CrashKind::Power);
        slot.down = Some(Down::Failed {
            power_loss: power,
            expected: true,
        });
        self.stats.boot_crashes += 1;
        if fired.is_none() && std::mem::take(&mut slot.armed.power_at_reboot_sync) {
            self.stats.reboot_power_losses += 1;
        } else {
            self.stats.point_crashes += 1;
        }
        self.event(now_ms, Some(id), format_args!("crashed during boot: {e}"));
    }

    /// The member cannot boot: a recovery violation; it stays down.
    fn boot_broken(&mut self, id: u64, detail: String, now_ms: u64) {
        if let Some(slot) = self.members.get_mut(&id) {
            slot.down = Some(Down::Broken);
        }
        self.violation(Violation {
            invariant: Invariant::Recovery,
            time_ms: now_ms,
            member: Some(id),
            detail,
            diffs: Vec::new(),
        });
    }
}
