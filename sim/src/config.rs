//! Settings of one simulated run.

use crate::checker::{AckedPut, AppliedDelete};
use crate::fault::{FaultClass, SimDisk, SyncObserver, quorum};
use crate::mix::Mix;
use crate::swarm::Swarm;
use replica::backend::BackendOptions;
use replica::bugs::KnownBugs;
use replica::disk::MemDisk;
use replica::member::{StateDump, StoreConfig};
use replica::node::NodeConfig;
use replica::verify::VerifyMode;
use replica::wal::WalOptions;
use std::collections::BTreeSet;
use std::sync::Arc;

/// What a run shows crash-state exploration (`sim explore`): one member's
/// disk before each of its syncs, when it has booted, and every member's
/// state after each applied index.
pub trait Capture: SyncObserver {
    /// The member whose syncs are observed.
    fn member(&self) -> u64;
    /// The member has booted (its bootstrap is complete).
    fn booted(&self);
    /// Some member applied up to `index`; `dump` gives its state.
    fn applied(&self, index: u64, dump: &mut dyn FnMut() -> Option<StateDump>);
    /// Whether member `id`'s disk shows this capture its syncs and
    /// operations.
    fn observes(&self, id: u64) -> bool {
        id == self.member()
    }
    /// Whether every member's disk is wanted now (`sim explore
    /// --cluster`); true once per wanted instant.
    fn cluster_instant_due(&self, _now_ms: u64) -> bool {
        false
    }
    /// Every member's disk at an instant [`Capture::cluster_instant_due`]
    /// asked for.
    fn cluster_captured(&self, _instant: ClusterInstant) {}
    /// The disk member `id` starts from instead of an empty one.
    fn start_disk(&self, _id: u64) -> Option<MemDisk> {
        None
    }
}

/// A cluster at one virtual instant, for `sim explore --cluster`: every
/// started member's disk (shared: the capture forks them at the moment it
/// chooses) and what the clients had been told by then.
#[derive(Debug)]
pub struct ClusterInstant {
    pub at_ms: u64,
    pub disks: Vec<(u64, Arc<SimDisk>)>,
    pub acked: Vec<AckedPut>,
    pub deletes: Vec<AppliedDelete>,
    /// The highest index any running member had applied (committed).
    pub applied: u64,
    /// A spare had joined or a member had been removed (a cluster booted
    /// from the disks would not have the same members).
    pub membership_changed: bool,
    /// A member's platter had been damaged on purpose (a booted cluster
    /// would not know that its refusal to boot is the right outcome).
    pub damaged: bool,
}

/// Everything that determines a run besides the code: same config, same run.
#[derive(Debug, Clone)]
pub struct RunConfig {
    pub seed: u64,
    /// The scenario file this run executes (`None`: the random run).
    pub scenario: Option<String>,
    /// Cluster size at the start (1..=7; the fault budget for each size is
    /// in the fault contract, `fault/mod.rs`).
    pub nodes: u64,
    /// Member slots that start only when a scenario adds them.
    pub spares: u64,
    /// Virtual time with faults and traffic; a quiesce phase follows.
    pub duration_ms: u64,
    pub faults: BTreeSet<FaultClass>,
    /// Print the event timeline as it happens.
    pub trace: bool,
    /// Keep every trace event in the report (for `--trace-out`).
    pub keep_trace: bool,
    /// Capture a member's syncs and every member's states for `sim
    /// explore` (`None` in normal runs).
    pub capture: Option<Arc<dyn Capture>>,
    pub bugs: KnownBugs,
    /// Raft tick period (each member adds seeded jitter).
    pub tick_ms: u64,
    pub snapshot_count: u64,
    pub batch_limit: usize,
    pub batch_interval_ms: u64,
    pub wal_segment_size: u64,
    /// Pause between client requests.
    pub request_interval_ms: u64,
    /// Expected faults per simulated second while faults are on.
    pub faults_per_second: f64,
    /// The network model, when set explicitly (a scenario's `[network]`,
    /// the swarm's draw); else [`RunConfig::network`] derives it from the
    /// fault classes.
    pub network: Option<NetworkModel>,
    /// Disk operations cost virtual time from the start even without the
    /// `slow` class (a scenario's `disk_time`, e.g. a replayed schedule).
    pub disk_time: bool,
    /// The random workload's request mix (reads, write kinds, stretches):
    /// the swarm's draw, or [`Mix::FIXED`].
    pub mix: Mix,
    /// Whether the swarm drew this random run's world ([`RunConfig::new`]),
    /// or it is the fixed one ([`RunConfig::fixed`], `--swarm off`).
    pub swarm: bool,
}

/// Packet loss and latency of the simulated network.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkModel {
    /// Probability that a message is dropped (0 to 0.5).
    pub packet_loss: f64,
    /// Each message takes 1 ms to this many ms (1 to 1000).
    pub max_latency_ms: u64,
}

impl NetworkModel {
    /// The lossy network of runs with `net` faults.
    pub const LOSSY: NetworkModel = NetworkModel {
        packet_loss: 0.01,
        max_latency_ms: 15,
    };
    /// The network of runs without them.
    pub const CLEAN: NetworkModel = NetworkModel {
        packet_loss: 0.0,
        max_latency_ms: 3,
    };

    pub fn validate(&self) -> Result<(), String> {
        if !(0.0..=0.5).contains(&self.packet_loss) {
            return Err(format!(
                "network.packet_loss = {}: expected 0 to 0.5",
                self.packet_loss
            ));
        }
        if !(1..=1000).contains(&self.max_latency_ms) {
            return Err(format!(
                "network.max_latency_ms = {}: expected 1 to 1000",
                self.max_latency_ms
            ));
        }
        Ok(())
    }
}

impl RunConfig {
    /// The default random run for a seed: the swarm draws its whole world
    /// from the seed ([`Swarm::draw`]).
    pub fn new(seed: u64) -> RunConfig {
        RunConfig::drawn(seed, Swarm::draw(seed, None))
    }

    /// The run of a drawn world.
    pub(crate) fn drawn(seed: u64, world: Swarm) -> RunConfig {
        RunConfig {
            nodes: world.nodes,
            duration_ms: world.duration_ms,
            faults: world.faults,
            snapshot_count: world.snapshot_count,
            batch_limit: world.batch_limit,
            batch_interval_ms: world.batch_interval_ms,
            wal_segment_size: world.wal_segment_size,
            request_interval_ms: world.request_interval_ms,
            faults_per_second: world.faults_per_second,
            network: Some(NetworkModel {
                packet_loss: world.packet_loss,
                max_latency_ms: world.max_latency_ms,
            }),
            mix: world.mix,
            swarm: true,
            ..RunConfig::fixed(seed)
        }
    }

    /// The fixed world (`--swarm off`, and the base of every scenario):
    /// three members, every fault class, a fault a second, 20 s. Store
    /// settings are drawn from the seed too (as FoundationDB's BUGGIFY
    /// widens the state space): tiny batch limits make automatic commits
    /// land inside replays and between entries, small snapshot counts make
    /// snapshots and leader snapshot installs frequent, small segments make
    /// WAL cuts and releases common.
    pub fn fixed(seed: u64) -> RunConfig {
        let settings = crate::swarm::fixed_settings(seed);
        RunConfig {
            seed,
            scenario: None,
            nodes: 3,
            spares: 0,
            duration_ms: 20_000,
            faults: FaultClass::ALL.into_iter().collect(),
            trace: false,
            keep_trace: false,
            capture: None,
            bugs: KnownBugs::NONE,
            tick_ms: 10,
            snapshot_count: settings.snapshot_count,
            batch_limit: settings.batch_limit,
            batch_interval_ms: settings.batch_interval_ms,
            wal_segment_size: settings.wal_segment_size,
            request_interval_ms: 15,
            faults_per_second: 1.0,
            network: None,
            disk_time: false,
            mix: Mix::FIXED,
            swarm: false,
        }
    }

    /// Member `id`'s store and raft settings in this run.
    pub fn node_config(&self, id: u64) -> NodeConfig {
        let store = StoreConfig {
            snapshot_count: self.snapshot_count,
            backend: BackendOptions {
                batch_limit: self.batch_limit,
                batch_interval_ms: self.batch_interval_ms,
                ..BackendOptions::default()
            },
            wal: WalOptions {
                segment_size: self.wal_segment_size,
                ..WalOptions::default()
            },
            verify: VerifyMode::All,
            bugs: self.bugs,
        };
        NodeConfig {
            catch_up_entries: 20,
            ..NodeConfig::new(id, store)
        }
    }

    /// The network model of this run.
    pub fn network(&self) -> NetworkModel {
        self.network.unwrap_or(if self.has(FaultClass::Net) {
            NetworkModel::LOSSY
        } else {
            NetworkModel::CLEAN
        })
    }

    /// The store settings, for the summary and the trace.
    pub fn settings_line(&self) -> String {
        format!(
            "snapshot every {} entries, batch limit {}, batch interval {}ms, WAL segment {} KiB",
            self.snapshot_count,
            self.batch_limit,
            self.batch_interval_ms,
            self.wal_segment_size / 1024
        )
    }

    /// The most members that may be down at once: a minority, so a quorum
    /// stays up; one in a cluster of one or two members, which has no
    /// minority to spare and is unavailable while that member is down.
    pub fn max_down(&self) -> usize {
        self.nodes.saturating_sub(quorum(self.nodes)).max(1) as usize
    }

    pub fn has(&self, class: FaultClass) -> bool {
        self.faults.contains(&class)
    }

    /// The command line that reproduces this run.
    pub fn reproduce_command(&self) -> String {
        self.command("run")
    }

    /// The command line that shrinks this run if it fails.
    pub fn shrink_command(&self) -> String {
        self.command("shrink")
    }

    /// `sim SUBCOMMAND` with the arguments that select this run (`run` and
    /// `shrink` take the same ones).
    fn command(&self, subcommand: &str) -> String {
        let (features, bugs) = bug_flags(self.bugs);
        let selection = match &self.scenario {
            Some(path) => format!("--scenario {path} --seed {}", self.seed),
            None if self.swarm => format!("--seed {}{}", self.seed, self.swarm_overrides()),
            None => {
                let base = RunConfig {
                    nodes: self.nodes,
                    duration_ms: self.duration_ms,
                    faults: self.faults.clone(),
                    ..RunConfig::fixed(self.seed)
                };
                format!(
                    "--seed {} --swarm off --nodes {} --duration {}ms --faults {}{}",
                    self.seed,
                    self.nodes,
                    self.duration_ms,
                    faults_arg(&self.faults),
                    self.pin_args(&base)
                )
            }
        };
        format!("cargo run --release -p sim{features} -- {subcommand} {selection}{bugs}")
    }

    /// The flags a swarm run needs besides its seed: each setting the
    /// command line can make that differs from the seed's draw (`--nodes`,
    /// `--duration`, `--faults`, and `--pin` for the other dimensions).
    fn swarm_overrides(&self) -> String {
        let mut args = String::new();
        let mut nodes = None;
        if self.nodes != Swarm::draw(self.seed, None).nodes {
            nodes = Some(self.nodes);
            args += &format!(" --nodes {}", self.nodes);
        }
        let drawn = Swarm::draw(self.seed, nodes);
        if self.duration_ms != drawn.duration_ms {
            args += &format!(" --duration {}ms", self.duration_ms);
        }
        if self.faults != drawn.faults {
            args += &format!(" --faults {}", faults_arg(&self.faults));
        }
        args + &self.pin_args(&RunConfig::drawn(self.seed, drawn))
    }

    /// The run's world in one line: size, faults, length, store settings,
    /// network, client pacing, request mix, and whether the swarm drew it.
    pub fn world_line(&self) -> String {
        let net = self.network();
        format!(
            "world ({}): {} members, faults {} at {}/s for {}ms, {}, packet loss {}%, latency 1-{}ms, a request every {}ms per session, mix {}",
            if self.swarm {
                "swarm"
            } else {
                "fixed, --swarm off"
            },
            self.nodes,
            faults_arg(&self.faults),
            self.faults_per_second,
            self.duration_ms,
            self.settings_line(),
            net.packet_loss * 100.0,
            net.max_latency_ms,
            self.request_interval_ms,
            self.mix_line()
        )
    }

    /// The request mix for people: the read share, each write kind's share
    /// of the writes (percent, kinds of weight 0 as `off`), the stretches.
    pub fn mix_line(&self) -> String {
        let kinds: Vec<String> = crate::mix::KINDS
            .iter()
            .map(|k| match self.mix.weight(*k) {
                0 => format!("{} off", k.name()),
                _ => format!("{} {}%", k.name(), self.mix.write_percent(*k)),
            })
            .collect();
        let stretches = match self.mix.stretches {
            None => "no stretches".to_string(),
            Some(s) => format!(
                "stretches of ~{} ops of one kind every ~{} ops",
                s.length, s.gap
            ),
        };
        format!(
            "{}% reads; writes {}; {stretches}",
            self.mix.read_percent,
            kinds.join(" ")
        )
    }
}

/// Fault classes as `--faults` takes them.
fn faults_arg(faults: &BTreeSet<FaultClass>) -> String {
    if faults.is_empty() {
        return "none".to_string();
    }
    let names: Vec<&str> = faults.iter().map(|f| f.name()).collect();
    names.join(",")
}

/// The command-line pieces that re-enable `bugs` in a reproduce command:
/// the cargo feature (or nothing) and the `--bug` arguments.
pub fn bug_flags(bugs: KnownBugs) -> (&'static str, String) {
    let enabled = bugs.enabled();
    let features = if enabled.is_empty() {
        ""
    } else {
        " --features known-bugs"
    };
    let args = enabled.iter().map(|b| format!(" --bug {b}")).collect();
    (features, args)
}
