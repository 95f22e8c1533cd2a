//! The state of a run that outlives any member's process: disks, crash
//! hooks, the trace, the checker's tables, the client's acknowledgements.
//! Member tasks and the supervisor share it; madsim runs everything on one
//! thread, so the lock is never contended and never held across an await.

use super::wire::{Wire, member_addr};
use crate::checker::{AckedPut, EquivalenceTable, Fingerprint, Invariant, StateTable, Violation};
use crate::config::RunConfig;
use crate::fault::{ArmedCrash, CrashKind, SimCrashHook, SimDisk};
use crate::panic_guard::guard;
use crate::rng::{STREAM_JITTER_BASE, STREAM_WORKLOAD, stream};
use crate::trace::Trace;
use crate::workload::Workload;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use replica::disk::Disk;
use replica::member::{Member, WalMetadata};
use replica::node::{Node, NodeError, ReadyOutput};
use replica::proto::{Member as MemberInfo, Request, Response, request};
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

/// Run statistics for the summary line.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RunStats {
    pub requests: u64,
    pub acked: u64,
    pub applied: u64,
    pub crashes: u64,
    pub power_losses: u64,
    pub point_crashes: u64,
    pub commit_crashes: u64,
    pub eio_failures: u64,
    pub partitions: u64,
    pub restarts: u64,
    pub snapshots: u64,
    pub snapshots_installed: u64,
    pub wal_repairs: u64,
    pub replayed: u64,
    pub replay_skipped_v3: u64,
    pub torn_writes: u64,
}

/// What one step of a member produced: messages to send, and whether the
/// member still runs.
#[derive(Debug)]
pub enum Step {
    Running(Vec<(SocketAddr, Wire)>),
    Stopped(Vec<(SocketAddr, Wire)>),
}

/// Why a member is not running.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Down {
    /// It failed by itself (crash point, disk countdown, EIO, or a bug);
    /// the supervisor has not handled it yet.
    Failed { power_loss: bool, expected: bool },
    /// Killed and waiting for its restart.
    Waiting,
    /// It could not boot: a recovery violation; it stays down.
    Broken,
}

/// One member's durable side and bookkeeping.
#[derive(Debug)]
pub struct Slot {
    pub disk: Arc<SimDisk>,
    pub hook: Arc<SimCrashHook>,
    pub node: Option<Node>,
    pub down: Option<Down>,
    /// Client requests this member proposed, by request id (process memory:
    /// cleared on crash).
    pending: BTreeMap<u64, SocketAddr>,
    /// Tick jitter stream.
    jitter: ChaCha8Rng,
    pub madsim_id: Option<madsim::task::NodeId>,
    pub partitioned_until: Option<u64>,
    /// Whether the member's process was ever started (spare slots start
    /// when a scenario adds them).
    pub started: bool,
    /// Removed from the cluster: stopped, and no longer compared.
    pub removed: bool,
    /// A spare that joins an existing cluster (boots with an empty log).
    pub joining: bool,
    /// A crash armed at the k-th disk operation is a power loss.
    pub disk_crash_power: bool,
    /// How the next power loss goes, when a script step said so (else the
    /// run's fault classes decide).
    pub power_plan: Option<crate::fault::PowerPlan>,
    /// Boot attempts so far (finished, successfully or not).
    pub boots: u64,
    /// The supervisor armed a crash for the coming boot only.
    pub boot_crash_armed: bool,
    /// A boot finished without reaching its armed crash, which was then
    /// disarmed (the supervisor takes this to update its schedule).
    pub boot_crash_missed: bool,
    /// Backend commits of the running process seen so far.
    backend_commits: u64,
    /// An armed crash or I/O fault that has not fired is forgotten at this
    /// time, so a fault waiting for a point that never comes does not hold
    /// the fault budget for the rest of the run.
    pub armed_until: Option<u64>,
}

/// The shared world.
#[derive(Debug)]
pub struct World {
    state: Mutex<WorldState>,
    start: madsim::time::Instant,
}

/// Everything behind the world's lock.
#[derive(Debug)]
pub struct WorldState {
    pub cfg: RunConfig,
    pub members: BTreeMap<u64, Slot>,
    pub trace: Trace,
    pub table: EquivalenceTable,
    pub states: StateTable,
    pub violations: Vec<Violation>,
    pub acked: Vec<AckedPut>,
    pub maybe_deleted: BTreeSet<String>,
    pub stats: RunStats,
    pub stop_client: bool,
    /// States recorded by scenario `snapshot` steps.
    pub recorded: Vec<crate::snapshot_view::Recorded>,
    workload: Workload,
    last_revision: i64,
}

/// Full state dumps are compared after applied indexes divisible by this.
const STATE_SAMPLE_EVERY: u64 = 16;

pub fn member_info(id: u64) -> MemberInfo {
    MemberInfo {
        id,
        name: format!("m{id}"),
        peer_urls: vec![format!("http://10.0.0.{id}:2380")],
        client_urls: Vec::new(),
        is_learner: false,
    }
}

impl World {
    pub fn new(cfg: RunConfig) -> Arc<World> {
        let mut members = BTreeMap::new();
        for id in 1..=cfg.nodes + cfg.spares {
            let disk = SimDisk::new();
            if let Some(sink) = cfg.capture.as_ref().filter(|s| s.member() == id) {
                disk.capture_syncs(sink.clone());
            }
            let hook = SimCrashHook::new(disk.clone());
            members.insert(
                id,
                Slot {
                    disk,
                    hook,
                    node: None,
                    down: None,
                    pending: BTreeMap::new(),
                    jitter: stream(cfg.seed, STREAM_JITTER_BASE + id),
                    madsim_id: None,
                    partitioned_until: None,
                    started: id <= cfg.nodes,
                    removed: false,
                    joining: id > cfg.nodes,
                    disk_crash_power: false,
                    power_plan: None,
                    boots: 0,
                    boot_crash_armed: false,
                    boot_crash_missed: false,
                    backend_commits: 0,
                    armed_until: None,
                },
            );
        }
        let ids: Vec<u64> = (1..=cfg.nodes).collect();
        let workload = Workload::new(stream(cfg.seed, STREAM_WORKLOAD), 24, ids);
        let mut trace = Trace::new(cfg.trace);
        if cfg.keep_trace {
            trace.keep_records();
        }
        Arc::new(World {
            state: Mutex::new(WorldState {
                trace,
                cfg,
                members,
                table: EquivalenceTable::default(),
                states: StateTable::default(),
                violations: Vec::new(),
                acked: Vec::new(),
                maybe_deleted: BTreeSet::new(),
                stats: RunStats::default(),
                stop_client: false,
                recorded: Vec::new(),
                workload,
                last_revision: 1,
            }),
            start: madsim::time::Instant::now(),
        })
    }

    pub fn lock(&self) -> MutexGuard<'_, WorldState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Virtual milliseconds since the run started.
    pub fn now_ms(&self) -> u64 {
        self.start.elapsed().as_millis() as u64
    }
}

impl WorldState {
    pub fn event(&mut self, now_ms: u64, member: Option<u64>, what: std::fmt::Arguments<'_>) {
        self.trace.event(now_ms, member, what);
    }

    pub fn violation(&mut self, v: Violation) {
        // Once a member diverged, every later entry differs too: keep the
        // first report per invariant and member.
        if self
            .violations
            .iter()
            .any(|old| old.invariant == v.invariant && old.member == v.member)
        {
            return;
        }
        self.event(
            v.time_ms,
            v.member,
            format_args!("VIOLATION {}: {}", v.invariant, v.detail),
        );
        self.violations.push(v);
    }

    /// The delay before member `id`'s next tick: the period plus jitter.
    pub fn tick_delay_ms(&mut self, id: u64) -> u64 {
        let tick = self.cfg.tick_ms;
        self.members
            .get_mut(&id)
            .map_or(tick, |s| tick + s.jitter.random_range(0..=tick / 2))
    }

    /// Boots member `id` from its disk (bootstrapping it the first time).
    pub fn open_member(&mut self, id: u64, now_ms: u64) -> bool {
        let cfg = self.cfg.clone();
        let Some(slot) = self.members.get_mut(&id) else {
            return false;
        };
        let disk: Arc<dyn Disk> = slot.disk.clone();
        let hook = slot.hook.clone();
        let config = cfg.node_config(id);
        let joining = slot.joining;
        slot.boots += 1;
        let opened = guard(|| match Member::is_initialized(disk.as_ref()) {
            Ok(true) => Node::open(disk, config, hook, now_ms),
            Ok(false) => {
                let all: Vec<MemberInfo> = if joining {
                    Vec::new()
                } else {
                    (1..=cfg.nodes).map(member_info).collect()
                };
                let meta = WalMetadata {
                    member_id: id,
                    cluster_id: 1,
                };
                Node::bootstrap(disk, config, hook, &meta, &all, now_ms)
            }
            Err(e) => Err(e.into()),
        });
        let boot_crash_armed = std::mem::take(&mut slot.boot_crash_armed);
        let opened = match opened {
            Ok(result) => result,
            Err(panic) => {
                slot.down = Some(Down::Broken);
                self.violation(Violation {
                    invariant: Invariant::Recovery,
                    time_ms: now_ms,
                    member: Some(id),
                    detail: format!("member panicked while booting: {panic}"),
                    diffs: Vec::new(),
                });
                return false;
            }
        };
        match opened {
            Ok(node) => {
                if let Some(sink) = cfg.capture.as_ref().filter(|s| s.member() == id) {
                    sink.booted();
                }
                let rec = node.recovered().clone();
                let applied = node.member().applied_index();
                if boot_crash_armed {
                    // A crash during recovery that recovery never reached
                    // must not fire later, in normal running.
                    slot.hook.disarm();
                    slot.armed_until = None;
                    slot.boot_crash_missed = true;
                }
                slot.node = Some(node);
                slot.down = None;
                slot.backend_commits = 0;
                slot.pending.clear();
                self.stats.replayed += rec.replayed;
                self.stats.replay_skipped_v3 += rec.replay_skipped_v3;
                if let Some(repair) = &rec.wal_repair {
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
                self.event(
                    now_ms,
                    Some(id),
                    format_args!(
                        "open: snapshot {}, replayed {} ({} v3-skipped), applied {applied}",
                        rec.snapshot.index, rec.replayed, rec.replay_skipped_v3
                    ),
                );
                true
            }
            Err(e) if slot.disk.is_frozen() || e.crashed().is_some() => {
                // A crash armed for the boot itself (crash during recovery).
                let fired = slot.hook.take_fired();
                let power = fired.is_some_and(|f| f.kind == CrashKind::Power);
                slot.down = Some(Down::Failed {
                    power_loss: power,
                    expected: true,
                });
                self.stats.point_crashes += 1;
                self.event(now_ms, Some(id), format_args!("crashed during boot: {e}"));
                false
            }
            Err(e) => {
                slot.down = Some(Down::Broken);
                self.violation(Violation {
                    invariant: Invariant::Recovery,
                    time_ms: now_ms,
                    member: Some(id),
                    detail: format!("member failed to boot after an allowed fault: {e}"),
                    diffs: Vec::new(),
                });
                false
            }
        }
    }

    /// One iteration of member `id`'s loop: deliver `inbox`, tick, persist,
    /// apply. Returns what to send, or `None` when the member stopped.
    pub fn step_member(
        &mut self,
        id: u64,
        inbox: Vec<(Wire, SocketAddr)>,
        now_ms: u64,
        tick: bool,
    ) -> Step {
        let Some(slot) = self.members.get_mut(&id) else {
            return Step::Stopped(Vec::new());
        };
        let Some(node) = slot.node.as_mut() else {
            return Step::Stopped(Vec::new());
        };
        let mut out = Vec::new();
        let stepped = guard(|| Self::drive(node, &mut slot.pending, inbox, now_ms, tick, &mut out));
        let result = match stepped {
            Ok(result) => result,
            Err(panic) => {
                slot.node = None;
                slot.pending.clear();
                slot.down = Some(Down::Failed {
                    power_loss: false,
                    expected: false,
                });
                self.violation(Violation {
                    invariant: Invariant::Liveness,
                    time_ms: now_ms,
                    member: Some(id),
                    detail: format!("member panicked: {panic}"),
                    diffs: Vec::new(),
                });
                return Step::Stopped(out);
            }
        };
        let Some(node) = slot.node.as_mut() else {
            return Step::Stopped(out);
        };
        let ready = match result {
            Ok(ready) => ready,
            Err(e) => {
                // What the member handed to the network before it stopped
                // is on the wire.
                let sent = node.take_outbox();
                out.extend(sent.into_iter().map(|m| (member_addr(m.to), Wire::Raft(m))));
                let reason = e.to_string();
                self.member_stopped(id, now_ms, &reason);
                return Step::Stopped(out);
            }
        };
        let mut messages = ready.messages;
        // raft-rs iterates its peers in hash order; a stable sort by
        // destination keeps each peer's stream in order and removes that
        // order from the run.
        messages.sort_by_key(|m| m.to);
        for m in messages {
            out.push((member_addr(m.to), Wire::Raft(m)));
        }
        let (revision, v2_index) = {
            let stores = node.member().stores();
            (stores.mvcc.current_revision(), stores.v2.index())
        };
        let mut replies = Vec::new();
        let mut checks = Vec::new();
        for applied in &ready.applied {
            if let Some(resp) = &applied.response {
                checks.push((
                    applied.index,
                    Fingerprint::of(applied, resp.revision, resp.v2_index),
                ));
                if let Some(to) = slot.pending.remove(&resp.id) {
                    replies.push((to, Wire::Response(resp.clone())));
                }
            }
        }
        out.extend(replies);
        let (first, last) = (
            ready.applied.first().map(|a| a.index),
            ready.applied.last().map(|a| a.index),
        );
        // `sim explore` keeps a reference state per applied index.
        if let (Some(sink), Some(last)) = (&self.cfg.capture, last) {
            sink.applied(last, &mut || node.member().state_dump().ok());
        }
        // A full state comparison at sampled indexes (a dump costs about as
        // much as applying a few dozen entries).
        let sampled = last
            .filter(|i| i % STATE_SAMPLE_EVERY == 0)
            .and_then(|i| node.member().state_dump().ok().map(|d| (i, d)));
        // WAL saves and backend commits, for the timeline (and the hash).
        let commits = node.member().stores().backend.commits();
        let new_commits = commits.saturating_sub(slot.backend_commits);
        slot.backend_commits = commits;
        if ready.wal_saves > 0 {
            self.trace
                .numbers(now_ms, id, "wal-save saves:", &[i64::from(ready.wal_saves)]);
        }
        if new_commits > 0 {
            self.trace
                .numbers(now_ms, id, "backend-commit commits:", &[new_commits as i64]);
        }
        let snapshot_taken = ready.snapshot_taken;
        let snapshot_installed = ready.snapshot_installed;
        self.stats.applied += ready.applied.len() as u64;
        if let (Some(first), Some(last)) = (first, last) {
            self.trace.numbers(
                now_ms,
                id,
                "apply first,last,revision,v2:",
                &[first as i64, last as i64, revision, v2_index as i64],
            );
        }
        if let Some(index) = snapshot_taken {
            self.stats.snapshots += 1;
            self.event(now_ms, Some(id), format_args!("snapshot at {index}"));
        }
        if let Some(index) = snapshot_installed {
            self.stats.snapshots_installed += 1;
            self.event(
                now_ms,
                Some(id),
                format_args!("installed leader snapshot at {index}"),
            );
        }
        for (index, fp) in checks {
            if let Err(v) = self.table.check(id, index, fp, now_ms) {
                self.violation(v);
            }
        }
        if let Some((index, dump)) = sampled
            && let Err(v) = self.states.check(id, index, &dump, now_ms)
        {
            self.violation(v);
        }
        Step::Running(out)
    }

    /// Delivers the inbox, ticks, and handles raft's Ready (runs under the
    /// panic guard).
    fn drive(
        node: &mut Node,
        pending: &mut BTreeMap<u64, SocketAddr>,
        inbox: Vec<(Wire, SocketAddr)>,
        now_ms: u64,
        tick: bool,
        out: &mut Vec<(SocketAddr, Wire)>,
    ) -> Result<ReadyOutput, NodeError> {
        for (wire, from) in inbox {
            match wire {
                Wire::Raft(m) => node.step(m),
                Wire::Request(req) => {
                    let accepted = node.is_leader() && node.propose(&req).is_ok();
                    if accepted {
                        pending.insert(req.id, from);
                    } else {
                        let leader = node.leader_id();
                        out.push((
                            from,
                            Wire::NotLeader {
                                request_id: req.id,
                                leader,
                            },
                        ));
                    }
                }
                Wire::ConfChange(cc) => {
                    let accepted = node.is_leader() && node.propose_conf_change(&cc).is_ok();
                    if accepted {
                        pending.insert(cc.request_id, from);
                    } else {
                        out.push((
                            from,
                            Wire::NotLeader {
                                request_id: cc.request_id,
                                leader: node.leader_id(),
                            },
                        ));
                    }
                }
                Wire::Response(_) | Wire::NotLeader { .. } => {}
            }
        }
        if tick {
            node.tick();
        }
        node.commit_timer(now_ms)?;
        node.handle_ready(now_ms)
    }

    /// The member's process stopped with an error: classify it.
    pub(crate) fn member_stopped(&mut self, id: u64, now_ms: u64, reason: &str) {
        let Some(slot) = self.members.get_mut(&id) else {
            return;
        };
        slot.node = None;
        slot.pending.clear();
        let fired = slot.hook.take_fired();
        let frozen = slot.disk.is_frozen();
        let eio = slot.disk.eio_returned();
        let (expected, power_loss, what) = match (fired, frozen, eio) {
            (
                Some(ArmedCrash {
                    point,
                    kind,
                    after_ops,
                    ..
                }),
                true,
                _,
            ) => {
                if after_ops > 0 {
                    self.stats.commit_crashes += 1;
                } else {
                    self.stats.point_crashes += 1;
                }
                (
                    true,
                    kind == CrashKind::Power,
                    format!("crashed at {point} (+{after_ops} ops)"),
                )
            }
            (None, true, _) => {
                self.stats.point_crashes += 1;
                let power = self.members.get(&id).is_some_and(|s| s.disk_crash_power);
                (
                    true,
                    power,
                    "crashed at its k-th disk operation".to_string(),
                )
            }
            (_, _, true) => {
                self.stats.eio_failures += 1;
                (
                    true,
                    true,
                    format!("stopped after an injected EIO: {reason}"),
                )
            }
            _ => (
                false,
                false,
                format!("failed without an injected fault: {reason}"),
            ),
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
                invariant: Invariant::Liveness,
                time_ms: now_ms,
                member: Some(id),
                detail: what,
                diffs: Vec::new(),
            });
        }
    }

    /// The next client request (recording which keys it may delete).
    pub fn next_request(&mut self) -> Request {
        let req = self.workload.next_request(self.last_revision);
        let mut deleted = Vec::new();
        match &req.kind {
            Some(request::Kind::DeleteRange(d)) => {
                deleted.push((d.key.clone(), d.range_end.clone()))
            }
            Some(request::Kind::Txn(t)) => {
                for op in t.success.iter().chain(&t.failure) {
                    if let Some(replica::proto::request_op::Op::DeleteRange(d)) = &op.op {
                        deleted.push((d.key.clone(), d.range_end.clone()));
                    }
                }
            }
            _ => {}
        }
        let names = self.workload.key_names();
        for (key, end) in deleted {
            for k in names.iter().cloned() {
                let kb = k.as_bytes();
                let hit = if end.is_empty() {
                    kb == key.as_slice()
                } else {
                    kb >= key.as_slice() && kb < end.as_slice()
                };
                if hit {
                    self.maybe_deleted.insert(k);
                }
            }
        }
        self.stats.requests += 1;
        req
    }

    /// Records an acknowledged response to `req`.
    pub fn ack(&mut self, now_ms: u64, req: &Request, resp: &Response) {
        self.stats.acked += 1;
        self.last_revision = self.last_revision.max(resp.revision);
        self.trace.numbers(
            now_ms,
            0,
            "ack request,revision,v2,ok:",
            &[
                req.id as i64,
                resp.revision,
                resp.v2_index as i64,
                i64::from(resp.error.is_empty()),
            ],
        );
        if let (Some(request::Kind::Put(p)), true) = (&req.kind, resp.error.is_empty()) {
            self.acked.push(AckedPut {
                key: String::from_utf8_lossy(&p.key).into_owned(),
                value: String::from_utf8_lossy(&p.value).into_owned(),
                revision: resp.revision,
            });
        }
    }

    /// Members that are not running or are cut off (for the fault budget).
    pub fn unavailable(&self) -> usize {
        self.members
            .values()
            .filter(|s| s.started && !s.removed)
            .filter(|s| {
                s.node.is_none()
                    || s.partitioned_until.is_some()
                    || s.hook.is_armed()
                    || s.disk.is_armed()
            })
            .count()
    }
}
