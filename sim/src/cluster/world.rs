//! The state of a run that outlives any member's process: the member slots
//! (disks, crash hooks), the trace, the checker's tables, the client
//! history and the statistics. Member tasks and the supervisor share it;
//! madsim runs everything on one thread, so the lock is never contended and
//! never held across an await.
//!
//! What a member does with it lives beside it: booting in `boot.rs`, one
//! step of its loop in `member_step.rs`.

use super::history::ClientHistory;
use super::slot::Slot;
use crate::checker::{Checks, Violation};
use crate::config::RunConfig;
use crate::linearize::Call;
use crate::mix::Phases;
use crate::rng::{STREAM_MIX_STRETCHES, STREAM_READS, STREAM_WORKLOAD, stream};
use crate::snapshot_view::Recorded;
use crate::stats::RunStats;
use crate::trace::Trace;
use crate::workload::{ReadMix, Workload};
use replica::proto::{ConfChangeKind, ConfChangeRequest, Member as MemberInfo, Request, Response};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

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
    pub checks: Checks,
    pub history: ClientHistory,
    pub stats: RunStats,
    /// States recorded by scenario `snapshot` steps.
    pub recorded: Vec<Recorded>,
    /// Scripted link cuts and per-message faults between members.
    pub links: super::links::LinkRules,
}

/// How member `id` describes itself to the cluster.
pub fn member_info(id: u64) -> MemberInfo {
    MemberInfo {
        id,
        name: format!("m{id}"),
        peer_urls: vec![format!("http://10.0.0.{id}:2380")],
        client_urls: Vec::new(),
        is_learner: false,
    }
}

/// The conf change that adds (as a learner or a voter), promotes or removes
/// member `id`, proposed as request `request_id`.
pub fn conf_change_request(
    kind: ConfChangeKind,
    id: u64,
    learner: bool,
    request_id: u64,
) -> ConfChangeRequest {
    ConfChangeRequest {
        kind: kind as i32,
        node_id: id,
        member: Some(MemberInfo {
            is_learner: learner,
            ..member_info(id)
        }),
        request_id,
    }
}

impl World {
    pub fn new(cfg: RunConfig) -> Arc<World> {
        let members = (1..=cfg.nodes + cfg.spares)
            .map(|id| (id, Slot::new(&cfg, id)))
            .collect();
        let ids: Vec<u64> = (1..=cfg.nodes).collect();
        let cfg_seed = cfg.seed;
        let workload = Workload::new(stream(cfg.seed, STREAM_WORKLOAD), 24, ids).with_mix(cfg.mix);
        let reads = ReadMix::new(stream(cfg.seed, STREAM_READS), 24, cfg.mix.read_percent);
        let phases = Phases::new(stream(cfg.seed, STREAM_MIX_STRETCHES), &cfg.mix);
        let mut trace = Trace::new(cfg.trace);
        if cfg.keep_trace {
            trace.keep_records();
        }
        Arc::new(World {
            state: Mutex::new(WorldState {
                trace,
                cfg,
                members,
                checks: Checks::default(),
                history: ClientHistory::new(workload, reads, phases),
                stats: RunStats::default(),
                recorded: Vec::new(),
                links: super::links::LinkRules::new(stream(cfg_seed, crate::rng::STREAM_LINKS)),
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

    /// Virtual microseconds since the run started.
    pub fn now_us(&self) -> u64 {
        self.start.elapsed().as_micros() as u64
    }
}

impl WorldState {
    pub fn event(&mut self, now_ms: u64, member: Option<u64>, what: std::fmt::Arguments<'_>) {
        self.trace.event(now_ms, member, what);
    }

    /// Records a violation (the first per invariant and member) and puts
    /// it on the timeline.
    pub fn violation(&mut self, v: Violation) {
        let (time_ms, member) = (v.time_ms, v.member);
        let line = format!("VIOLATION {}: {}", v.invariant, v.detail);
        if self.checks.record(v) {
            self.event(time_ms, member, format_args!("{line}"));
        }
    }

    /// The delay before member `id`'s next tick: the period plus jitter.
    pub fn tick_delay_ms(&mut self, id: u64) -> u64 {
        let tick = self.cfg.tick_ms;
        self.members
            .get_mut(&id)
            .map_or(tick, |s| s.tick_delay_ms(tick))
    }

    pub fn slot(&self, id: u64) -> Option<&Slot> {
        self.members.get(&id)
    }

    pub fn slot_mut(&mut self, id: u64) -> Option<&mut Slot> {
        self.members.get_mut(&id)
    }

    /// Whether member `id` runs and has applied `index` (a joiner that did
    /// has caught up with the log as it was when it was added).
    pub fn has_applied(&self, id: u64, index: u64) -> bool {
        self.slot(id)
            .and_then(|s| s.node.as_ref())
            .is_some_and(|n| n.member().applied_index() >= index)
    }

    /// The member that leads now, if any runs as leader.
    pub fn leader(&self) -> Option<u64> {
        self.members
            .iter()
            .find(|(_, s)| s.is_leader())
            .map(|(id, _)| *id)
    }

    /// The next random client operation (a request or a read); `recent`:
    /// the key the session last wrote.
    pub fn next_call(&mut self, recent: Option<&[u8]>) -> Call {
        let call = self.history.next_call(recent);
        self.count_call(&call);
        call
    }

    /// Counts a client operation by kind.
    pub fn count_call(&mut self, call: &Call) {
        match call {
            Call::Write(_) => self.stats.requests += 1,
            Call::Read {
                serializable: true, ..
            } => self.stats.serializable_reads += 1,
            Call::Read { .. } => self.stats.linearizable_reads += 1,
        }
    }

    /// Records the answer to client operation `op` (`None`: given up).
    pub fn returned(&mut self, op: usize, answer: Option<(Response, Option<u64>)>, now_us: u64) {
        if answer.is_none() {
            self.stats.indeterminate += 1;
        }
        self.history.returned(op, answer, now_us);
    }

    /// Records an acknowledged response to `req`.
    pub fn ack(&mut self, now_ms: u64, req: &Request, resp: &Response) {
        self.stats.acked += 1;
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
        self.history.ack(req, resp);
    }

    /// Every stream the world draws from (the workload, its reads and
    /// stretches, each member's tick jitter) is re-seeded from `seed` (a fork of the run, `sim
    /// localize`).
    pub fn reseed(&mut self, now_ms: u64, seed: u64) {
        self.history.reseed_workload(stream(seed, STREAM_WORKLOAD));
        self.history
            .reseed_reads(stream(seed, crate::rng::STREAM_READS));
        self.history
            .reseed_stretches(stream(seed, STREAM_MIX_STRETCHES));
        for (id, slot) in &mut self.members {
            slot.reseed_jitter(stream(seed, crate::rng::STREAM_JITTER_BASE + id));
        }
        self.event(now_ms, None, format_args!("fork: random streams re-seeded"));
    }

    /// Members that are not running or are cut off (for the fault budget).
    pub fn unavailable(&self) -> usize {
        self.members
            .values()
            .filter(|s| s.started && !s.removed)
            .filter(|s| s.node.is_none() || s.is_cut_off() || s.has_armed_fault())
            .count()
    }
}
