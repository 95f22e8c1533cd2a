//! The supervisor: owns the madsim handle and the fault RNG, drives a run's
//! phases (faults, quiesce, final checks) and hands out its report. What it
//! does to members lives beside it: `lifecycle.rs` (kills, power losses,
//! restarts, armed faults), `network.rs` (partitions), `verdict.rs`
//! (convergence and the final checks), `script_api.rs` (what a scenario
//! script may ask of it).

use super::schedule::ScheduleRecorder;
use super::{CLIENT_SESSIONS, QUIESCE_LIMIT_MS, RunReport};
use crate::cluster::client::client_main;
use crate::cluster::member::member_main;
use crate::cluster::slot::Down;
use crate::cluster::wire::member_ip;
use crate::cluster::world::World;
use crate::config::RunConfig;
use crate::fault::PowerPlan;
use crate::rng::{STREAM_DAMAGE_AIM, STREAM_EIO_AIM, STREAM_FAULTS, STREAM_TEAR_AIM, stream};
use madsim::runtime::Handle;
use rand_chacha::ChaCha8Rng;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

pub(crate) struct Supervisor {
    pub(super) world: Arc<World>,
    pub(super) handle: Handle,
    pub(super) rng: ChaCha8Rng,
    /// Aims torn-write power losses at pending writes (`STREAM_TEAR_AIM`).
    pub(super) tear_rng: ChaCha8Rng,
    /// Aims rename EIOs at snapshot files (`STREAM_EIO_AIM`).
    pub(super) eio_aim_rng: ChaCha8Rng,
    /// Aims WAL damage (`STREAM_DAMAGE_AIM`, `run/aimed_damage.rs`).
    pub(super) damage_aim_rng: ChaCha8Rng,
    /// A WAL damage waiting for its target.
    pub(super) aimed_damage: Option<super::aimed_damage::AimedDamage>,
    /// Crashes after survived EIOs (`STREAM_EIO_AFTERMATH`).
    pub(super) eio_aftermath: super::after_eio::EioAftermath,
    /// Peer-only partitions (`STREAM_PEER_CUT`).
    pub(super) peer_cut_draws: super::peer_cut::PeerCutDraws,
    pub(super) restarts_due: BTreeMap<u64, u64>,
    /// Random faults are injected until this virtual time.
    pub(super) random_until: u64,
    /// Members a script stopped: they stay down until the script restarts
    /// them.
    pub(super) held_down: BTreeSet<u64>,
    pub(super) client_node: madsim::runtime::NodeHandle,
    /// Links cut by `isolate`, restored by a full heal.
    pub(super) isolated_links: Vec<(madsim::task::NodeId, madsim::task::NodeId)>,
    /// Records the random faults as scenario steps (random runs only).
    pub(super) schedule: Option<ScheduleRecorder>,
    /// Restarts a script asked to end in a power loss at the reboot's first
    /// sync, with that power loss's plan.
    pub(super) reboot_power_requests: BTreeMap<u64, Option<PowerPlan>>,
    /// The virtual time of the latest power loss by a kill, and how many
    /// members lost power at that instant (for `cluster_power_cuts`).
    pub(super) power_instant: (u64, u64),
    /// A backup restore waiting for the network to drain.
    pub(super) pending_backup: Option<super::backup::PendingBackup>,
    /// A restored cluster growing back to its size.
    pub(super) grow_back: Option<super::backup::GrowBack>,
    /// The random run's backup event (random runs only).
    pub(super) backup_event: Option<super::backup::BackupEvent>,
    /// The random run's membership churn (random runs only).
    pub(super) churn: Option<super::churn::Churn>,
    /// The kinds of client-check failure a scenario's `check` step has
    /// reported (the end of the run does not report them again).
    pub(super) clients_reported: Vec<crate::linearize::Kind>,
}

impl Supervisor {
    /// Creates the member nodes and the client node; with `random_clients`
    /// the random workload's sessions start at once. Random faults run
    /// until `cfg.duration_ms`.
    pub(crate) async fn start(cfg: RunConfig, random_clients: bool) -> Supervisor {
        let world = World::new(cfg.clone());
        super::disk_time::enable_disk_time(&world);
        world
            .lock()
            .event(0, None, format_args!("settings: {}", cfg.settings_line()));
        let handle = Handle::current();
        for id in 1..=cfg.nodes {
            let w = world.clone();
            let node = handle
                .create_node()
                .name(format!("m{id}"))
                .ip(member_ip(id))
                .init(move || member_main(w.clone(), id))
                .build();
            if let Some(slot) = world.lock().members.get_mut(&id) {
                slot.madsim_id = Some(node.id());
            }
        }
        let client_node = handle
            .create_node()
            .name("client")
            .ip(crate::cluster::wire::client_ip())
            .build();
        if random_clients {
            for session in 0..CLIENT_SESSIONS {
                client_node.spawn(client_main(world.clone(), session));
            }
        }
        // Let the members boot before anything else happens.
        madsim::time::sleep(Duration::from_millis(1)).await;
        Supervisor {
            world,
            handle,
            rng: stream(cfg.seed, STREAM_FAULTS),
            tear_rng: stream(cfg.seed, STREAM_TEAR_AIM),
            eio_aim_rng: stream(cfg.seed, STREAM_EIO_AIM),
            damage_aim_rng: stream(cfg.seed, STREAM_DAMAGE_AIM),
            aimed_damage: None,
            eio_aftermath: super::after_eio::EioAftermath::new(cfg.seed),
            peer_cut_draws: super::peer_cut::PeerCutDraws::new(cfg.seed),
            restarts_due: BTreeMap::new(),
            random_until: cfg.duration_ms,
            held_down: BTreeSet::new(),
            client_node,
            isolated_links: Vec::new(),
            schedule: None,
            reboot_power_requests: BTreeMap::new(),
            power_instant: (u64::MAX, 0),
            pending_backup: None,
            grow_back: None,
            backup_event: None,
            churn: None,
            clients_reported: Vec::new(),
        }
    }

    pub(crate) fn now_ms(&self) -> u64 {
        self.world.now_ms()
    }

    /// One supervisor step: handle stopped members, restarts, heals,
    /// expired faults, and (while random faults are on) new faults.
    pub(crate) fn poll(&mut self) {
        self.handle_stopped(true);
        self.handle_misdirected();
        self.restart_due();
        self.heal_due(false);
        self.expire_armed();
        self.poll_backup();
        self.poll_churn();
        self.capture_cluster_instant();
        self.follow_survived_eios();
        self.follow_host_trouble();
        // No random fault while a restored cluster grows back or a
        // membership change is under way: the cluster is not at its size,
        // and a fault could leave it without a quorum.
        if self.now_ms() < self.random_until && !self.restoring() && !self.churning() {
            self.fire_aimed_damage();
            self.maybe_inject();
        }
    }

    /// Forks the run: the fault stream, the world's streams and madsim's
    /// (network delays and losses) draw differently from now on, as
    /// suffix `suffix` of this seed. madsim's generator cannot be re-seeded,
    /// so it is advanced by a suffix-chosen number of draws: a different,
    /// still deterministic continuation.
    pub(crate) fn fork(&mut self, suffix: u64) {
        let (seed, now) = (self.world.lock().cfg.seed, self.now_ms());
        let forked = crate::rng::suffix_seed(seed, suffix);
        self.rng = stream(forked, STREAM_FAULTS);
        self.tear_rng = stream(forked, STREAM_TEAR_AIM);
        self.eio_aim_rng = stream(forked, STREAM_EIO_AIM);
        self.damage_aim_rng = stream(forked, STREAM_DAMAGE_AIM);
        self.eio_aftermath = super::after_eio::EioAftermath::new(forked);
        self.peer_cut_draws = super::peer_cut::PeerCutDraws::new(forked);
        self.world.lock().reseed(now, forked);
        for _ in 0..1 + forked % 1024 {
            let _: u64 = madsim::rand::random();
        }
    }

    /// Stops the faults and the random clients, heals, restarts everything,
    /// and waits until the cluster is quiet. Returns whether it converged.
    pub(crate) async fn quiesce(&mut self) -> bool {
        self.world.lock().history.stop();
        self.random_until = 0;
        self.held_down.clear();
        self.disarm_all();
        if let Some(s) = &mut self.schedule {
            s.stop();
        }
        self.heal_due(true);
        let deadline = self.now_ms() + QUIESCE_LIMIT_MS;
        let mut quiet_since = None;
        while self.now_ms() < deadline {
            madsim::time::sleep(Duration::from_millis(50)).await;
            self.handle_stopped(false);
            self.handle_misdirected();
            let down: Vec<u64> = self.stopped_waiting();
            for id in down {
                self.restarts_due.entry(id).or_insert(0);
            }
            self.restart_due();
            self.poll_backup();
            self.poll_churn();
            if self.converged() && !self.restoring() && !self.churning() {
                // Quiet for a while: no stragglers still to apply.
                let since = *quiet_since.get_or_insert(self.now_ms());
                if self.now_ms() >= since + 500 {
                    return true;
                }
            } else {
                quiet_since = None;
            }
        }
        false
    }

    /// Members killed and not scheduled for a restart.
    pub(crate) fn stopped_waiting(&self) -> Vec<u64> {
        let w = self.world.lock();
        w.members
            .iter()
            .filter(|(id, s)| {
                matches!(s.down, Some(Down::Waiting)) && !self.restarts_due.contains_key(id)
            })
            .map(|(id, _)| *id)
            .collect()
    }

    /// The report of the run so far.
    pub(crate) fn report(&self) -> RunReport {
        let simulated_ms = self.now_ms();
        let w = self.world.lock();
        RunReport {
            config: w.cfg.clone(),
            stats: w.stats.clone(),
            violations: w.checks.violations().to_vec(),
            simulated_ms,
            trace_hash: w.trace.hash(),
            trace_events: w.trace.events(),
            recorded: w.recorded.clone(),
            trace_records: w.trace.records().to_vec(),
            schedule: self
                .schedule
                .as_ref()
                .map(|s| s.steps())
                .unwrap_or_default(),
            probes: run_probes(&w),
            clients: super::ClientCheck {
                reported: self.clients_reported.clone(),
                ..super::ClientCheck::of(crate::linearize::History {
                    ops: w.history.ops(),
                    applications: w.history.applications().clone(),
                    interrupted: w.history.interrupted_ids().clone(),
                })
            },
        }
    }

    /// Records the random faults that take effect as scenario steps (the
    /// random run does, so `sim shrink` can replay them).
    pub(crate) fn record_schedule(&mut self) {
        self.schedule = Some(ScheduleRecorder::default());
    }

    /// Draws the random run's cluster events from their own stream: a
    /// backup restored and grown back in one seed of
    /// [`super::backup::BACKUP_SHARE`]. Not while `sim explore` captures a
    /// member's disk (a restore replaces it).
    pub(crate) fn draw_cluster_events(&mut self) {
        let w = self.world.lock();
        if w.cfg.capture.is_none() {
            self.backup_event = Some(super::backup::BackupEvent::draw(
                w.cfg.seed,
                w.cfg.duration_ms,
            ));
        }
    }

    pub(crate) fn madsim_id(&self, id: u64) -> Option<madsim::task::NodeId> {
        self.world.lock().members.get(&id).and_then(|s| s.madsim_id)
    }
}

/// Every probe the run reached: the store's and the crash hooks' (per
/// member), the disks' (redb commit phases), and one per non-zero statistic.
fn run_probes(w: &crate::cluster::world::WorldState) -> crate::coverage::ProbeHits {
    let mut hits = crate::coverage::ProbeHits::default();
    for slot in w.members.values() {
        hits.merge(&slot.hook.probe_hits());
        hits.merge(&slot.disk.probe_hits());
    }
    hits.add_stats(&w.stats);
    hits
}
