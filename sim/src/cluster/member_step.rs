//! One iteration of a member's loop (deliver, tick, persist, apply) and what
//! the world does with its result: route replies, put WAL saves, backend
//! commits and applies on the timeline, feed the checker's tables. A member
//! that stops is classified here: an injected fault, or a failure nothing
//! explains.

use super::slot::Down;
use super::wire::{Wire, member_addr};
use super::world::WorldState;
use crate::checker::{Fingerprint, Invariant, Violation};
use crate::config::Capture;
use crate::fault::{ArmedCrash, CrashKind};
use crate::panic_guard::guard;
use replica::member::StateDump;
use replica::node::{Node, NodeError, ReadyOutput};
use replica::proto::Response;
use std::collections::BTreeMap;
use std::net::SocketAddr;

/// Full state dumps are compared after applied indexes divisible by this.
const STATE_SAMPLE_EVERY: u64 = 16;

/// What one step of a member produced: messages to send, and whether the
/// member still runs.
#[derive(Debug)]
pub enum StepOutcome {
    Running(Vec<(SocketAddr, Wire)>),
    Stopped(Vec<(SocketAddr, Wire)>),
}

impl WorldState {
    /// One iteration of member `id`'s loop: deliver `inbox`, tick, persist,
    /// apply. Returns what to send, and whether the member still runs.
    pub fn step_member(
        &mut self,
        id: u64,
        inbox: Vec<(Wire, SocketAddr)>,
        now_ms: u64,
        tick: bool,
    ) -> StepOutcome {
        let capture = self.cfg.capture.clone();
        let Some(slot) = self.members.get_mut(&id) else {
            return StepOutcome::Stopped(Vec::new());
        };
        let Some(node) = slot.node.as_mut() else {
            return StepOutcome::Stopped(Vec::new());
        };
        let mut out = Vec::new();
        let stepped = guard(|| drive(node, &mut slot.pending, inbox, now_ms, tick, &mut out));
        let ready = match stepped {
            Ok(Ok(ready)) => ready,
            Ok(Err(e)) => {
                // What the member handed to the network before it stopped
                // is on the wire.
                let sent = node.take_outbox();
                out.extend(sent.into_iter().map(|m| (member_addr(m.to), Wire::Raft(m))));
                // What it applied before stopping took effect all the same.
                let applied = node.take_unreported();
                let interrupted = node.take_interrupted();
                self.late_effects(id, &applied, now_ms);
                if let Some(entry) = interrupted {
                    self.history.interrupted(&entry);
                }
                self.member_stopped(id, now_ms, &e.to_string());
                return StepOutcome::Stopped(out);
            }
            Err(panic) => {
                slot.crash_process();
                slot.down = Some(Down::Failed {
                    power_loss: false,
                    expected: false,
                });
                self.violation(Violation {
                    invariant: Invariant::MemberFailure,
                    time_ms: now_ms,
                    member: Some(id),
                    detail: format!("member panicked: {panic}"),
                    diffs: Vec::new(),
                });
                return StepOutcome::Stopped(out);
            }
        };
        let record = take_ready(
            node,
            &mut slot.pending,
            &mut slot.backend_commits,
            capture.as_deref(),
            ready,
            &mut out,
        );
        slot.reads_answered += record.reads_answered;
        self.put_on_timeline(id, now_ms, &record);
        self.record_effects(id, &record);
        self.check_applied(id, now_ms, record);
        StepOutcome::Running(out)
    }

    /// WAL saves, backend commits, applies and snapshots on the timeline
    /// (and so in the trace hash).
    fn put_on_timeline(&mut self, id: u64, now_ms: u64, record: &ReadyRecord) {
        if record.wal_saves > 0 {
            self.trace.numbers(
                now_ms,
                id,
                "wal-save saves:",
                &[i64::from(record.wal_saves)],
            );
        }
        if record.new_commits > 0 {
            self.trace.numbers(
                now_ms,
                id,
                "backend-commit commits:",
                &[record.new_commits as i64],
            );
        }
        self.stats.applied += record.applied_count;
        self.stats.backend_commits += record.new_commits;
        if let Some((first, last)) = record.applied {
            self.trace.numbers(
                now_ms,
                id,
                "apply first,last,revision,v2:",
                &[
                    first as i64,
                    last as i64,
                    record.revision,
                    record.v2_index as i64,
                ],
            );
        }
        if let Some(index) = record.snapshot_taken {
            self.stats.snapshots += 1;
            self.event(now_ms, Some(id), format_args!("snapshot at {index}"));
        }
        if let Some(index) = record.snapshot_installed {
            self.stats.snapshots_installed += 1;
            self.event(
                now_ms,
                Some(id),
                format_args!("installed leader snapshot at {index}"),
            );
        }
    }

    /// What took effect, for the durability check (the deletes applied,
    /// requests applied twice), and how far the member's v2 index got, for
    /// the check at its next boot.
    fn record_effects(&mut self, id: u64, record: &ReadyRecord) {
        self.stats.wal_cuts += record.wal_cuts;
        for index in &record.compacted {
            // Counted at the first member to apply it (before `applied`
            // below marks the index).
            self.stats.compactions += u64::from(!self.history.has_applied(*index));
        }
        for (index, resp) in &record.outcomes {
            if self.history.applied(*index, resp) {
                self.stats.applied_twice += 1;
            }
        }
        self.checks.v2_index.reached(id, record.v2_index);
    }

    /// Restart equivalence: every applied entry's outcome, and the full
    /// state at sampled indexes, against what other members recorded.
    fn check_applied(&mut self, id: u64, now_ms: u64, record: ReadyRecord) {
        for (index, fp) in record.checks {
            if let Err(v) = self.checks.entries.check(id, index, fp, now_ms) {
                self.violation(v);
            }
        }
        self.stats.state_dumps += u64::from(record.sampled.is_some());
        if let Some((index, dump)) = record.sampled
            && let Err(v) = self.checks.states.check(id, index, dump, now_ms)
        {
            self.violation(v);
        }
    }

    /// The member's process stopped with an error: classify it.
    pub(crate) fn member_stopped(&mut self, id: u64, now_ms: u64, reason: &str) {
        let Some(slot) = self.members.get_mut(&id) else {
            return;
        };
        // What stopped it, read before the process's own death freezes the
        // disk.
        let fired = slot.hook.take_fired();
        let frozen = slot.disk.is_frozen();
        let eio = slot.disk.eio_returned();
        let disk_crash_power = slot.armed.disk_crash_power;
        let tearable_sync = slot.disk.crashed_at_tearable_sync();
        let reboot_sync = std::mem::take(&mut slot.armed.power_at_reboot_sync);
        let damaged = slot.damaged;
        let full = slot.disk.full_returned();
        slot.crash_process();
        let (expected, power_loss, what) = match (fired, frozen, eio) {
            (Some(crash), true, _) => {
                if crash.after_ops > 0 {
                    self.stats.commit_crashes += 1;
                } else {
                    self.stats.point_crashes += 1;
                }
                (true, crash.kind == CrashKind::Power, describe(&crash))
            }
            (None, true, _) if reboot_sync => {
                self.stats.reboot_power_losses += 1;
                let what = "lost power at its first sync after a reboot".to_string();
                (true, true, what)
            }
            (None, true, _) if tearable_sync => {
                self.stats.aimed_tears += 1;
                let what = "crashed at a sync with an unsynced write to tear".to_string();
                (true, disk_crash_power, what)
            }
            (None, true, _) => {
                self.stats.point_crashes += 1;
                let what = "crashed at its k-th disk operation".to_string();
                (true, disk_crash_power, what)
            }
            (_, _, true) => {
                self.stats.eio_failures += 1;
                let what = format!("stopped after an injected EIO: {reason}");
                (true, true, what)
            }
            _ if full => {
                self.stats.enospc_stops += 1;
                let what = format!("stopped on a full disk: {reason}");
                (true, false, what)
            }
            _ if damaged => {
                let what = format!("stopped on its damaged platter: {reason}");
                (true, false, what)
            }
            _ => {
                let what = format!("failed without an injected fault: {reason}");
                (false, false, what)
            }
        };
        if let Some(slot) = self.members.get_mut(&id) {
            slot.down = Some(Down::Failed {
                power_loss,
                expected,
            });
        }
        self.event(now_ms, Some(id), format_args!("stopped: {what}"));
        if !expected {
            self.violation(Violation {
                invariant: Invariant::MemberFailure,
                time_ms: now_ms,
                member: Some(id),
                detail: what,
                diffs: Vec::new(),
            });
        }
    }
}

fn describe(crash: &ArmedCrash) -> String {
    format!("crashed at {} (+{} ops)", crash.point, crash.after_ops)
}

/// An applied request's outcome as the client history keeps it (without
/// the keys it read).
pub(super) fn outcome_of(resp: &Response) -> Response {
    Response {
        kvs: Vec::new(),
        error: resp.error.clone(),
        ..*resp
    }
}

/// What a Ready batch leaves for the timeline and the checker.
struct ReadyRecord {
    wal_saves: u32,
    new_commits: u64,
    applied_count: u64,
    /// First and last applied index.
    applied: Option<(u64, u64)>,
    /// Revision and v2 index after the batch.
    revision: i64,
    v2_index: u64,
    snapshot_taken: Option<u64>,
    snapshot_installed: Option<u64>,
    wal_cuts: u64,
    /// Indexes of applied compactions.
    compacted: Vec<u64>,
    /// Each applied request's outcome, by index.
    checks: Vec<(u64, Fingerprint)>,
    /// The response of each applied entry whose v3 half ran, by index
    /// (without the keys it read).
    outcomes: Vec<(u64, Response)>,
    /// The full state at a sampled last index.
    sampled: Option<(u64, StateDump)>,
    /// Linearizable reads answered to clients.
    reads_answered: u64,
}

/// Sends raft's messages and the replies to the clients that proposed the
/// applied requests, and takes what the timeline and the checker need.
fn take_ready(
    node: &Node,
    pending: &mut BTreeMap<u64, SocketAddr>,
    backend_commits: &mut u64,
    capture: Option<&dyn Capture>,
    ready: ReadyOutput,
    out: &mut Vec<(SocketAddr, Wire)>,
) -> ReadyRecord {
    let mut messages = ready.messages;
    // raft-rs iterates its peers in hash order; a stable sort by
    // destination keeps each peer's stream in order and removes that order
    // from the run.
    messages.sort_by_key(|m| m.to);
    out.extend(
        messages
            .into_iter()
            .map(|m| (member_addr(m.to), Wire::Raft(m))),
    );
    let mut checks = Vec::new();
    let mut outcomes = Vec::new();
    for applied in &ready.applied {
        if let Some(resp) = &applied.response {
            checks.push((
                applied.index,
                Fingerprint::of(applied, resp.revision, resp.v2_index),
            ));
            if applied.applied_v3 {
                outcomes.push((applied.index, outcome_of(resp)));
            }
            if let Some(to) = pending.remove(&resp.id) {
                out.push((to, Wire::Response(resp.clone())));
            }
        }
    }
    let mut reads_answered = 0;
    for (ctx, resp) in ready.reads {
        let Ok(id) = <[u8; 8]>::try_from(ctx.as_slice()).map(u64::from_be_bytes) else {
            continue;
        };
        if let Some(to) = pending.remove(&id) {
            out.push((to, Wire::Response(Response { id, ..resp })));
            reads_answered += 1;
        }
    }
    let stores = node.member().stores();
    let (revision, v2_index) = (stores.mvcc.current_revision(), stores.v2.index());
    let first = ready.applied.first().map(|a| a.index);
    let last = ready.applied.last().map(|a| a.index);
    // `sim explore` keeps a reference state per applied index.
    if let (Some(sink), Some(last)) = (capture, last) {
        sink.applied(last, &mut || node.member().state_dump().ok());
    }
    // A full state comparison at sampled indexes (a dump costs about as
    // much as applying a few dozen entries).
    let sampled = last
        .filter(|i| i % STATE_SAMPLE_EVERY == 0)
        .and_then(|i| node.member().state_dump().ok().map(|d| (i, d)));
    let commits = stores.backend.commits();
    let new_commits = commits.saturating_sub(*backend_commits);
    *backend_commits = commits;
    ReadyRecord {
        wal_saves: ready.wal_saves,
        new_commits,
        applied_count: ready.applied.len() as u64,
        applied: first.zip(last),
        revision,
        v2_index,
        snapshot_taken: ready.snapshot_taken,
        snapshot_installed: ready.snapshot_installed,
        wal_cuts: ready.wal_cuts,
        compacted: ready.compacted,
        checks,
        outcomes,
        sampled,
        reads_answered,
    }
}

/// Delivers the inbox, ticks, and handles raft's Ready (runs under the
/// panic guard). A request reaches raft only on the leader; elsewhere the
/// client is told who leads. Reads: see [`Wire::Read`].
fn drive(
    node: &mut Node,
    pending: &mut BTreeMap<u64, SocketAddr>,
    inbox: Vec<(Wire, SocketAddr)>,
    now_ms: u64,
    tick: bool,
    out: &mut Vec<(SocketAddr, Wire)>,
) -> Result<ReadyOutput, NodeError> {
    for (wire, from) in inbox {
        let proposal = match wire {
            Wire::Raft(m) => {
                node.step(m);
                continue;
            }
            Wire::Request(req) => {
                let ok = node.is_leader() && node.propose(&req).is_ok();
                (ok, req.id)
            }
            Wire::ConfChange(cc) => {
                let ok = node.is_leader() && node.propose_conf_change(&cc).is_ok();
                (ok, cc.request_id)
            }
            Wire::Read {
                id,
                range,
                serializable,
            } => {
                if serializable {
                    let resp = node.serializable_read(&range)?;
                    out.push((from, Wire::Response(Response { id, ..resp })));
                    continue;
                }
                // A member that knows no leader cannot get a read index
                // (raft would drop the read): the client tries elsewhere.
                let ok = node.leader_id() != 0;
                if ok {
                    node.read_index(id.to_be_bytes().to_vec(), range);
                }
                (ok, id)
            }
            Wire::Response(_) | Wire::NotLeader { .. } => continue,
        };
        match proposal {
            (true, request_id) => {
                pending.insert(request_id, from);
            }
            (false, request_id) => out.push((
                from,
                Wire::NotLeader {
                    request_id,
                    leader: node.leader_id(),
                },
            )),
        }
    }
    if tick {
        node.tick();
    }
    node.commit_timer(now_ms)?;
    node.handle_ready(now_ms)
}
