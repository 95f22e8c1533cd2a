//! One member's place in the world: what outlives its process (the disk and
//! the crash hook), its process while it runs, and the supervisor's
//! bookkeeping about it (why it is down, which faults are armed for it).

use crate::config::RunConfig;
use crate::fault::{PowerPlan, SimCrashHook, SimDisk};
use crate::rng::{STREAM_JITTER_BASE, stream};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use replica::node::Node;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

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

/// Faults armed for a member that have not fired yet, and how they end.
#[derive(Debug, Default)]
pub struct ArmedFaults {
    /// A crash armed at the k-th disk operation is a power loss.
    pub disk_crash_power: bool,
    /// A power loss is armed at the first sync after a reboot (the compound
    /// fault: crash, a reboot that reads what the page cache held, then a
    /// power loss before that is synced).
    pub power_at_reboot_sync: bool,
    /// How the next power loss goes, when a script step said so (else the
    /// run's fault classes decide).
    pub power_plan: Option<PowerPlan>,
    /// The supervisor armed a crash for the coming boot only.
    pub boot_crash: bool,
    /// A boot finished without reaching its armed crash, which was then
    /// disarmed (the supervisor takes this to update its schedule).
    pub boot_crash_missed: bool,
    /// An armed crash or I/O fault that has not fired is forgotten at this
    /// time, so a fault waiting for a point that never comes does not hold
    /// the fault budget for the rest of the run.
    pub until: Option<u64>,
}

/// One member's durable side, process and bookkeeping.
#[derive(Debug)]
pub struct Slot {
    pub disk: Arc<SimDisk>,
    pub hook: Arc<SimCrashHook>,
    /// The member's process (`None` while it is down).
    pub node: Option<Node>,
    pub down: Option<Down>,
    /// Client requests this member proposed, by request id (process memory:
    /// cleared on crash).
    pub(super) pending: BTreeMap<u64, SocketAddr>,
    /// Backend commits of the running process seen so far.
    pub(super) backend_commits: u64,
    /// Tick jitter stream.
    jitter: ChaCha8Rng,
    pub madsim_id: Option<madsim::task::NodeId>,
    pub partitioned_until: Option<u64>,
    /// Cut off from the other members (clients still reach it) until then.
    pub peers_cut_until: Option<u64>,
    /// The member's process is paused (descheduled by its host) until
    /// then (process state: a new process is not paused).
    pub paused_until: Option<u64>,
    /// Linearizable reads this member answered, over all its processes.
    pub reads_answered: u64,
    /// Whether the member's process was ever started (spare slots start
    /// when a scenario adds them).
    pub started: bool,
    /// Removed from the cluster: stopped, and no longer compared.
    pub removed: bool,
    /// A spare that joins an existing cluster (boots with an empty log).
    pub joining: bool,
    /// Boot attempts so far (finished, successfully or not).
    pub boots: u64,
    /// Its platter was damaged on purpose (bit rot): failing to boot or
    /// stopping on the damage is what the store must do, not a violation.
    pub damaged: bool,
    pub armed: ArmedFaults,
    /// The cluster id its WAL is created with (a restore makes a new
    /// cluster: 1 + the restores before it).
    pub cluster_id: u64,
}

impl Slot {
    /// Member `id`'s slot at the start of a run: an empty disk, and a
    /// process only if it is one of the first `cfg.nodes` members.
    pub fn new(cfg: &RunConfig, id: u64) -> Slot {
        let disk = match cfg.capture.as_ref().and_then(|c| c.start_disk(id)) {
            Some(mem) => SimDisk::with_mem(mem),
            None => SimDisk::new(),
        };
        if let Some(sink) = cfg.capture.as_ref().filter(|s| s.observes(id)) {
            disk.capture_syncs(sink.clone());
        }
        let hook = SimCrashHook::new(disk.clone());
        Slot {
            disk,
            hook,
            node: None,
            down: None,
            pending: BTreeMap::new(),
            backend_commits: 0,
            jitter: stream(cfg.seed, STREAM_JITTER_BASE + id),
            madsim_id: None,
            partitioned_until: None,
            peers_cut_until: None,
            paused_until: None,
            reads_answered: 0,
            started: id <= cfg.nodes,
            removed: false,
            joining: id > cfg.nodes,
            boots: 0,
            damaged: false,
            armed: ArmedFaults::default(),
            cluster_id: 1,
        }
    }

    /// A fresh disk in place of the member's (a restore writes a new data
    /// directory onto it); what was armed or damaged on the old one goes
    /// with it.
    pub fn wipe(&mut self, cfg: &RunConfig, id: u64) {
        let disk = SimDisk::new();
        if let Some(sink) = cfg.capture.as_ref().filter(|s| s.member() == id) {
            disk.capture_syncs(sink.clone());
        }
        self.hook = SimCrashHook::new(disk.clone());
        self.disk = disk;
        self.damaged = false;
        self.armed = ArmedFaults::default();
    }

    /// The delay before the next tick: the period plus seeded jitter.
    pub(super) fn tick_delay_ms(&mut self, tick_ms: u64) -> u64 {
        tick_ms + self.jitter.random_range(0..=tick_ms / 2)
    }

    /// Tick jitter draws from `rng` from now on (a fork of the run).
    pub(super) fn reseed_jitter(&mut self, rng: ChaCha8Rng) {
        self.jitter = rng;
    }

    /// Its process runs and it is still a member.
    pub fn is_running(&self) -> bool {
        self.node.is_some() && !self.removed
    }

    pub fn is_leader(&self) -> bool {
        self.node.as_ref().is_some_and(|n| n.is_leader())
    }

    /// Cut off by a partition, or from its peers only: lost to the quorum.
    pub fn is_cut_off(&self) -> bool {
        self.partitioned_until.is_some() || self.peers_cut_until.is_some()
    }

    /// A crash or I/O fault is armed and waiting for its moment.
    pub fn has_armed_fault(&self) -> bool {
        self.hook.is_armed() || self.disk.is_armed()
    }

    /// The process dies: its disk is frozen first, so that nothing the
    /// store's destructors would write (redb's clean close: allocator state
    /// and a clean-shutdown header) lands, and only then is the node
    /// dropped. What it held in memory is gone; the page cache stays until a
    /// power loss says otherwise. The restart unfreezes the disk.
    pub fn crash_process(&mut self) {
        self.disk.freeze();
        self.node = None;
        self.pending.clear();
    }
}
