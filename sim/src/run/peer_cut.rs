//! Peer-only partitions in the random run: a member cut off from every
//! other member for a while, its clients still reaching it (etcd's
//! robustness tests call it a "blackhole peer network").
//!
//! Two shapes, both drawn from their own stream (`STREAM_PEER_CUT`), so the
//! fault stream's draws keep their order:
//! - a variant of the `net` fault: one in three of its partitions cuts only
//!   the member's peer links, for the length the fault stream drew;
//! - a compound fault, *a host in trouble*: with `net` on, half of the slow
//!   episodes drawn instead stall the disk ten times worse (100 to 1000
//!   times slower: an fsync of 0.01 to 4.5 s, the multi-second stalls etcd
//!   warns about), cut the member off its peers for 2 to 5 s (never past
//!   the episode) and pause its process for half the cut to all of it
//!   (`run/pause.rs`), all at the same instant. It is aimed, as Jepsen aims
//!   its pauses, at the leader: it is armed, and strikes the leader right
//!   after it answers a linearizable read (within 3 s, else it is
//!   forgotten), the moment its next answers matter most. A host in
//!   trouble (an overloaded or paused VM, a failing controller) loses its
//!   CPU, its disk and its network together, and only together do they
//!   stall a leader while its clients can still ask it: alone, a slow or
//!   paused leader hears of the new term from its peers before it answers
//!   again, and a leader cut off that keeps running keeps ticking, so any
//!   clock it trusts runs out before a new leader is elected. A store that
//!   times a read lease by its own raft ticks (`lease-read-timed-by-ticks`)
//!   answers such reads from its old state.
//!
//!   Measured (failures in seeds 1..600, swarm on / `--swarm off`): with the
//!   slow disk and a 0.2 to 3 s cut, 8 / 25: the stall lasts only while the
//!   leader has writes to sync, so worlds with slow request pacing or few
//!   writes rarely caught it (every failure had pacing under 20 ms and the
//!   fixed 30 % reads). The pause makes the stall independent of the
//!   workload: 19 / 40; a 2 to 5 s cut gives the readers more time: 53 / 71.
//!   (A starved process that runs one step every 50 or 150 ms caught it
//!   less often than a pause: 14 / 24 and 14 / 32, its slices tick the
//!   lease away.) The swarm's remaining deficit is its omissions: a fourth
//!   of its worlds lack `net` or `slow`.
//!
//! The bound: a cut member counts as unavailable in the fault budget (a
//! minority at a time; a host in trouble strikes only within it, and
//! `FaultClass::applies_to` leaves `net` out of one-member clusters), no
//! new fault is drawn on it, and every cut ends before the random phase
//! does, so a fully connected majority can always elect a leader and
//! recover.

use super::supervisor::Supervisor;
use crate::fault::FaultClass;
use crate::rng::{STREAM_PEER_CUT, stream};
use crate::scenario_file::Step;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// How much worse a host in trouble's disk stalls than a slow disk's.
const TROUBLE_FACTOR: u64 = 10;

/// How long a host in trouble cuts its member off its peers (never past
/// its slow episode); its process pauses for half of that to all of it.
const CUT_MS: std::ops::Range<u64> = 2_000..5_000;

/// An armed host in trouble is forgotten after this long, as every armed
/// fault is.
const ARMED_FOR_MS: u64 = 3_000;

/// The peer cuts' own stream, and a host in trouble waiting for its moment.
pub(crate) struct PeerCutDraws {
    rng: ChaCha8Rng,
    armed: Option<HostTrouble>,
}

/// A slow episode, a peer cut and a process pause that strike one member
/// together.
#[derive(Clone, Copy, Debug)]
pub(super) struct HostTrouble {
    factor: u64,
    slow_ms: u64,
    cut_ms: u64,
    pause_ms: u64,
    expires: u64,
    /// The leader and how many linearizable reads it had answered, at the
    /// latest look.
    seen: Option<(u64, u64)>,
}

impl PeerCutDraws {
    pub(crate) fn new(seed: u64) -> PeerCutDraws {
        PeerCutDraws {
            rng: stream(seed, STREAM_PEER_CUT),
            armed: None,
        }
    }
}

impl Supervisor {
    /// Whether a `net` fault cuts only its member's peer links (one in
    /// three; one draw).
    pub(super) fn net_fault_cuts_peers_only(&mut self) -> bool {
        self.peer_cut_draws.rng.random_ratio(1, 3)
    }

    /// Cuts member `id` off its peers for `ms` (cut to end before the
    /// random phase does), recorded as an `isolate` step with `ms`.
    pub(super) fn inject_peer_cut(&mut self, now: u64, id: u64, ms: u64) {
        let ms = ms.min(self.random_until.saturating_sub(now));
        if ms == 0 {
            return;
        }
        let step = Step::Isolate {
            member: id.into(),
            ms: Some(ms),
        };
        self.record(now, id, false, step);
        self.cut_from_peers(id, now + ms);
    }

    /// Whether a slow episode of `factor` for `slow_ms` is a host in
    /// trouble instead: with `net` on, half the time. Draws the go-ahead,
    /// then the cut's length and the pause's (only with `net` on).
    pub(super) fn draw_host_trouble(
        &mut self,
        now: u64,
        factor: u64,
        slow_ms: u64,
    ) -> Option<HostTrouble> {
        let net = {
            let w = self.world.lock();
            w.cfg.has(FaultClass::Net) && FaultClass::Net.applies_to(w.cfg.nodes)
        };
        if !net || !self.peer_cut_draws.rng.random_bool(0.5) {
            return None;
        }
        let cut_ms = self.peer_cut_draws.rng.random_range(CUT_MS).min(slow_ms);
        let pause_ms = self.peer_cut_draws.rng.random_range(cut_ms / 2..=cut_ms);
        Some(HostTrouble {
            factor: factor * TROUBLE_FACTOR,
            slow_ms,
            cut_ms,
            pause_ms,
            expires: now + ARMED_FOR_MS,
            seen: None,
        })
    }

    /// Arms a host in trouble: it strikes the leader as soon as it next
    /// answers a linearizable read.
    pub(super) fn arm_host_trouble(&mut self, now: u64, trouble: HostTrouble) {
        self.peer_cut_draws.armed = Some(trouble);
        self.world.lock().event(
            now,
            None,
            format_args!("armed a host in trouble at the leader's next linearizable read"),
        );
    }

    /// Whether a host in trouble is armed.
    pub(super) fn host_trouble_armed(&self) -> bool {
        self.peer_cut_draws.armed.is_some()
    }

    /// Strikes the armed host in trouble once the leader answered a
    /// linearizable read since the latest look; forgets it once expired.
    pub(crate) fn follow_host_trouble(&mut self) {
        let now = self.now_ms();
        let Some(mut trouble) = self.peer_cut_draws.armed else {
            return;
        };
        if now >= trouble.expires || now >= self.random_until {
            self.peer_cut_draws.armed = None;
            return;
        }
        let leader = {
            let w = self.world.lock();
            (w.leader()).and_then(|l| {
                w.slot(l)
                    .filter(|s| !s.is_cut_off())
                    .map(|s| (l, s.reads_answered))
            })
        };
        match (trouble.seen, leader) {
            (Some((was, before)), Some((id, reads))) if was == id && reads > before => {
                self.peer_cut_draws.armed = None;
                self.strike_host_trouble(now, id, trouble);
            }
            _ => {
                trouble.seen = leader;
                self.peer_cut_draws.armed = Some(trouble);
            }
        }
    }

    /// Member `id`'s disk slows, its process pauses and its peer links
    /// drop, if the fault budget allows (a minority cut off at a time).
    fn strike_host_trouble(&mut self, now: u64, id: u64, trouble: HostTrouble) {
        let may = {
            let w = self.world.lock();
            w.unavailable() < w.cfg.max_down()
        };
        let slow_ms = trouble.slow_ms.min(self.random_until.saturating_sub(now));
        if !may || slow_ms == 0 || self.slow_disk(id, trouble.factor, slow_ms).is_err() {
            return;
        }
        let step = Step::Slow {
            member: id.into(),
            factor: trouble.factor,
            ms: slow_ms,
        };
        self.record(now, id, false, step);
        let pause_ms = trouble.pause_ms.min(slow_ms);
        if pause_ms > 0 && self.pause_process(id, pause_ms).is_ok() {
            let step = Step::Pause {
                member: id.into(),
                ms: pause_ms,
            };
            self.record(now, id, false, step);
        }
        // `cut_from_peers` counts it as a peer cut with a slow disk.
        self.inject_peer_cut(now, id, trouble.cut_ms.min(slow_ms));
    }
}
