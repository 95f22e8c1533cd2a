//! The scenario file format (TOML). `scenarios/README.md` documents it with
//! an example of every step kind.

use crate::fault::{FaultClass, MemberFile};
use crate::stats::RunStats;
use replica::crash_point::CrashPoint;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

mod repeat_k;

/// Bounds checked before anything is allocated for a scenario.
pub const MAX_NODES: u64 = 7;
pub const MAX_SPARES: u64 = 4;
pub const MAX_STEPS: usize = 10_000;
pub const MAX_REPEAT: u32 = 1_000;
pub const MAX_FILE_BYTES: u64 = 1 << 20;

/// A restart's `crash_at` that stops the boot at its `hit`-th disk
/// operation rather than at a named crash point.
pub const BOOT_DISK_OP: &str = "disk_op";

/// A crash's `at` that stops the member at its next sync of a file holding
/// an unsynced write across a sector boundary (so a power loss there has a
/// write to tear); `tearable_sync.wal`, `.backend` or `.snapshot` wait for
/// such a sync of that kind of file.
pub const TEARABLE_SYNC: &str = "tearable_sync";

/// The files a `tearable_sync` crash waits for (`None` inside: any file),
/// or `None` if `at` names no such crash.
pub fn tearable_sync_target(at: &str) -> Option<Option<MemberFile>> {
    match at.strip_prefix(TEARABLE_SYNC)? {
        "" => Some(None),
        ".wal" => Some(Some(MemberFile::Wal)),
        ".backend" => Some(Some(MemberFile::Backend)),
        ".snapshot" => Some(Some(MemberFile::Snapshot)),
        _ => None,
    }
}

/// The `at` of a `tearable_sync` crash waiting for `file`.
pub fn tearable_sync_name(file: Option<MemberFile>) -> String {
    let suffix = match file {
        None => "",
        Some(MemberFile::Wal) => ".wal",
        Some(MemberFile::Backend) => ".backend",
        Some(MemberFile::Snapshot) => ".snapshot",
    };
    format!("{TEARABLE_SYNC}{suffix}")
}

/// The member roles a step may name instead of an id.
pub const ROLES: [&str; 5] = ["leader", "follower", "any follower", "crashed", "isolated"];

/// A parsed scenario.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Short name; the insta snapshot is named after the file.
    pub name: String,
    pub description: String,
    /// The default seed (`--seed` overrides it).
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// Members started at the beginning (1..=7).
    #[serde(default = "default_nodes")]
    pub nodes: u64,
    /// Member slots that start only when an `add_member` step adds them.
    #[serde(default)]
    pub spares: u64,
    #[serde(default)]
    pub store: StoreSettings,
    /// A seeded random workload and random faults running beside the steps.
    pub random: Option<RandomSection>,
    /// The network model (default: lossless with 1–3 ms latency, or lossy
    /// with up to 15 ms when `[random]` injects `net` faults).
    pub network: Option<crate::config::NetworkModel>,
    /// Disk operations cost virtual time from the start (the latency model
    /// of the `slow` fault class; a recorded random run with that class
    /// sets it).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub disk_time: bool,
    #[serde(default, rename = "step")]
    pub steps: Vec<Step>,
    /// Where the file was read from (set by [`Scenario::load`]).
    #[serde(skip)]
    pub path: PathBuf,
}

fn default_seed() -> u64 {
    1
}

fn default_nodes() -> u64 {
    3
}

fn default_hit() -> u32 {
    1
}

/// Where in a file a damage step lands: a fraction of its length.
fn validate_fraction(at: f64) -> Result<(), String> {
    if (0.0..1.0).contains(&at) {
        Ok(())
    } else {
        Err(format!("at = {at}: expected a fraction from 0 to below 1"))
    }
}

fn default_xor() -> u8 {
    0x20
}

/// Which of a member's files a `corrupt` step damages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DamagedFile {
    /// The newest WAL segment.
    Wal,
    /// The newest v2 snapshot file.
    Snapshot,
    /// The backend database.
    Backend,
}

fn default_true() -> bool {
    true
}

/// Store settings; unset fields take the run's defaults.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct StoreSettings {
    pub snapshot_count: Option<u64>,
    pub batch_limit: Option<usize>,
    pub batch_interval_ms: Option<u64>,
    pub wal_segment_size: Option<u64>,
}

/// The `[random]` section.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RandomSection {
    /// How long the random workload and faults run, from the start.
    pub duration_ms: u64,
    /// Fault classes (crash, power, torn, eio, net, point); empty = none.
    #[serde(default)]
    pub faults: Vec<String>,
    /// Whether random client sessions run.
    #[serde(default = "default_true")]
    pub workload: bool,
    /// Pause between a session's requests (default 15 ms; a recorded
    /// swarm run carries the one it drew).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_interval_ms: Option<u64>,
    /// The random sessions' request mix in its text form (`mix::Mix`;
    /// default: the fixed mix; a recorded swarm run carries the one it
    /// drew).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mix: Option<String>,
}

/// Which member a step acts on.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(untagged)]
pub enum Target {
    /// A member id.
    Id(u64),
    /// `"leader"`, `"follower"` (the lowest-id running non-leader),
    /// `"crashed"` (the member the latest `crash`/`eio` step targeted), or
    /// `"isolated"` (the latest `isolate` step's), resolved when the step
    /// runs.
    Role(String),
}

impl From<u64> for Target {
    fn from(id: u64) -> Target {
        Target::Id(id)
    }
}

/// A crash's effect on the disk.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    #[default]
    Process,
    /// Unsynced writes and directory changes are lost.
    Power,
    /// Unsynced writes survive except each file's last one, which is torn
    /// at a sector boundary of its file (a torn WAL tail).
    Torn,
    /// Each file keeps a random subset of its unsynced writes (a disk may
    /// persist a later write before an earlier one), some of them torn;
    /// each directory's unsynced changes survive or not as a whole.
    Reorder,
}

impl Mode {
    /// How a crash of this mode stops the process (any power-loss mode is a
    /// power crash; [`Mode::power_loss`] says which loss).
    pub fn crash_kind(self) -> crate::fault::CrashKind {
        match self {
            Mode::Process => crate::fault::CrashKind::Process,
            _ => crate::fault::CrashKind::Power,
        }
    }

    /// The mode of a crash of `kind` (a power crash loses unsynced state).
    pub fn of_crash_kind(kind: crate::fault::CrashKind) -> Mode {
        match kind {
            crate::fault::CrashKind::Process => Mode::Process,
            crate::fault::CrashKind::Power => Mode::Power,
        }
    }

    /// The power loss this mode makes (`None` for a process crash).
    pub fn power_loss(self) -> Option<crate::fault::PowerLossKind> {
        use crate::fault::PowerLossKind;
        match self {
            Mode::Process => None,
            Mode::Power => Some(PowerLossKind::Lose),
            Mode::Torn => Some(PowerLossKind::TearTail),
            Mode::Reorder => Some(PowerLossKind::Reorder),
        }
    }

    /// The mode whose power loss is `kind`.
    pub fn of_power_loss(kind: crate::fault::PowerLossKind) -> Mode {
        use crate::fault::PowerLossKind;
        match kind {
            PowerLossKind::Lose => Mode::Power,
            PowerLossKind::TearTail => Mode::Torn,
            PowerLossKind::Reorder => Mode::Reorder,
        }
    }
}

fn default_power() -> Mode {
    Mode::Power
}

/// A number, or `"k"`: the iteration number (1-based) of the enclosing
/// `repeat`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(untagged)]
pub enum Count {
    N(u64),
    Var(String),
}

/// A revision: absolute, or `"current - N"` / `"current"`, relative to
/// the v3 store's revision when the step runs.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(untagged)]
pub enum Revision {
    Absolute(i64),
    Relative(String),
}

impl Revision {
    /// How far below the current revision a relative revision is (`None`
    /// for an absolute one).
    pub fn below_current(&self) -> Result<Option<i64>, String> {
        let Revision::Relative(text) = self else {
            return Ok(None);
        };
        let bad =
            || format!("revision {text:?}: expected a number, \"current\" or \"current - N\"");
        let rest = text.trim().strip_prefix("current").ok_or_else(bad)?.trim();
        if rest.is_empty() {
            return Ok(Some(0));
        }
        let n = rest.strip_prefix('-').ok_or_else(bad)?.trim();
        n.parse::<i64>()
            .ok()
            .filter(|n| *n >= 0)
            .map(Some)
            .ok_or_else(bad)
    }
}

/// One compare of a long-form txn step: `target(key) op value`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TxnCompare {
    pub key: String,
    pub target: TxnTarget,
    pub op: TxnCmp,
    /// A number for version, create and mod; text for value.
    pub value: TxnValue,
}

/// What a txn compare reads of its key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TxnTarget {
    Version,
    Create,
    Mod,
    Value,
}

/// How a txn compare compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
pub enum TxnCmp {
    #[serde(rename = "==")]
    Equal,
    #[serde(rename = "!=")]
    NotEqual,
    #[serde(rename = "<")]
    Less,
    #[serde(rename = ">")]
    Greater,
}

/// A txn compare's operand.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(untagged)]
pub enum TxnValue {
    Number(i64),
    Text(String),
}

/// One operation of a txn branch: exactly one of `put` (with `value`),
/// `delete` (optionally to `range_end`) or `get` (optionally to
/// `range_end`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TxnOp {
    pub put: Option<String>,
    pub value: Option<String>,
    pub delete: Option<String>,
    pub get: Option<String>,
    pub range_end: Option<String>,
}

/// Which operation an injected EIO fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EioOn {
    Sync,
    Write,
    /// A directory sync (its entry changes stay unsynced).
    SyncDir,
    /// The next create, rename or remove, whichever comes first (nothing
    /// changes).
    Meta,
    /// The next create.
    Create,
    /// The next rename.
    Rename,
    /// The next remove.
    Remove,
}

impl EioOn {
    /// The disk fault that fails this operation.
    pub fn fault(self) -> crate::fault::DiskFault {
        use crate::fault::{DiskFault, EntryOp};
        match self {
            EioOn::Sync => DiskFault::FailNextSync,
            EioOn::Write => DiskFault::FailNextWrite,
            EioOn::SyncDir => DiskFault::FailNextSyncDir,
            EioOn::Meta => DiskFault::FailNextEntry(EntryOp::Any),
            EioOn::Create => DiskFault::FailNextEntry(EntryOp::Create),
            EioOn::Rename => DiskFault::FailNextEntry(EntryOp::Rename),
            EioOn::Remove => DiskFault::FailNextEntry(EntryOp::Remove),
        }
    }
}

/// One scripted step.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(tag = "action", rename_all = "snake_case", deny_unknown_fields)]
pub enum Step {
    /// v3 put (acknowledged before the next step).
    Put {
        key: String,
        value: String,
    },
    /// `count` v3 puts of keys `<prefix>000`, `<prefix>001`, …, each value
    /// padded to `value_bytes` (large values make multi-sector writes).
    Puts {
        count: u32,
        prefix: String,
        #[serde(default)]
        value_bytes: usize,
    },
    /// v3 delete of one key, or of `[key, range_end)`.
    Delete {
        key: String,
        #[serde(default)]
        range_end: String,
    },
    /// v3 txn, short form: if `key`'s version equals `version`, put
    /// `then_value`, else put `else_value`. Long form: if every one of
    /// `compares` holds, run the `then` operations, else the `else` ones.
    Txn {
        #[serde(default, skip_serializing_if = "String::is_empty")]
        key: String,
        version: Option<i64>,
        then_value: Option<String>,
        else_value: Option<String>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        compares: Vec<TxnCompare>,
        #[serde(default, rename = "then", skip_serializing_if = "Vec::is_empty")]
        then_ops: Vec<TxnOp>,
        #[serde(default, rename = "else", skip_serializing_if = "Vec::is_empty")]
        else_ops: Vec<TxnOp>,
    },
    /// v3 compaction at `revision`: a number, or `"current - N"` (N
    /// below the store's revision when the step runs).
    Compact {
        revision: Revision,
    },
    /// A v3 range read (answered before the next step): one key, or
    /// `[key, range_end)`, at `revision` (0: the current one). Linearizable
    /// (raft ReadIndex) unless `serializable`; sent first to `member`
    /// (default: where the session's last request went).
    Range {
        key: String,
        #[serde(default)]
        range_end: String,
        #[serde(default)]
        revision: i64,
        #[serde(default)]
        serializable: bool,
        #[serde(default)]
        member: Option<Target>,
    },
    V2Set {
        path: String,
        value: String,
    },
    V2Delete {
        path: String,
        #[serde(default)]
        recursive: bool,
    },
    ClusterVersion {
        version: String,
    },
    MemberAttrs {
        member: u64,
        name: String,
    },
    Downgrade {
        enabled: bool,
        target_version: String,
    },
    /// Adds member `id` (a new id: `nodes` + 1 up to `nodes` + 4; a slot
    /// beyond `spares` is made when it joins), as a learner if `learner`;
    /// the member's process starts with an empty data dir and catches up
    /// from the leader (its log, or a snapshot).
    AddMember {
        id: u64,
        #[serde(default)]
        learner: bool,
    },
    /// Promotes a learner to a voter.
    PromoteMember {
        id: Target,
    },
    /// Removes a member (an id, "leader", "follower" or "any follower"; a
    /// leader hands leadership to a follower first); its process is
    /// stopped once it is out.
    RemoveMember {
        id: Target,
    },
    /// Asks the leader to hand leadership to `to` (raft-rs
    /// `transfer_leader`), and waits (bounded) until `to` leads.
    TransferLeader {
        to: Target,
    },
    /// Stops a member: now (no `at`, no `after_disk_ops`), at a named crash
    /// point (its `hit`-th hit; with `after_ops` = k, at the k-th disk
    /// operation after the point), at its `after_disk_ops`-th next disk
    /// operation, or (`at = "tearable_sync[.wal|.backend|.snapshot]"`) at
    /// its next sync of a file holding an unsynced write across a sector
    /// boundary. It stays down until a `restart` step.
    Crash {
        member: Target,
        #[serde(default)]
        mode: Mode,
        at: Option<String>,
        #[serde(default = "default_hit")]
        hit: u32,
        after_ops: Option<Count>,
        after_disk_ops: Option<Count>,
        /// Seeds the power loss's choices (which writes survive, where they
        /// tear); without it they come from the run's fault stream.
        plan_seed: Option<u64>,
    },
    /// Waits for a crash armed on the member to fire (bounded), then boots
    /// it from its disk. With `crash_at`, the boot itself is stopped at that
    /// crash point's `hit`-th hit (a crash during recovery), or with
    /// `crash_at = "disk_op"` at its `hit`-th disk operation; the member
    /// then stays down until the next `restart`.
    Restart {
        member: Target,
        crash_at: Option<String>,
        #[serde(default = "default_hit")]
        hit: u32,
        #[serde(default)]
        mode: Mode,
        plan_seed: Option<u64>,
        /// The power fails at the reboot's first sync (crash → reboot →
        /// power loss): what the reboot read from the page cache is lost.
        /// `mode` and `plan_seed` then describe that power loss.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        power_at_sync: bool,
    },
    /// Makes the member's next fsync or write fail; the member stops, loses
    /// its unsynced state (as `mode` says: power, torn or reorder), and
    /// stays down until `restart`.
    Eio {
        member: Target,
        on: EioOn,
        #[serde(default = "default_power")]
        mode: Mode,
        plan_seed: Option<u64>,
        /// Only a sync, write or rename of this kind of file counts (`on`
        /// is sync, write or rename; a rename counts by its old name).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        file: Option<DamagedFile>,
        /// The n-th matching sync, write or rename fails (default the next);
        /// `"k"` in a repeat.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        nth: Option<Count>,
    },
    /// Cuts a member off the network: until `heal`, or for `ms`.
    Partition {
        member: Target,
        ms: Option<u64>,
    },
    /// Cuts the links between a member and the other members (clients
    /// still reach it), so it may accept proposals it cannot commit: until
    /// `heal`, or for `ms` (a peer-only partition, which the random run's
    /// `net` and `slow` faults inject and the fault budget counts).
    Isolate {
        member: Target,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ms: Option<u64>,
    },
    /// Splits the members into `groups` (member ids): messages between
    /// members of different groups are lost, until `heal` or for `ms`.
    /// Members in no group keep every link; clients still reach everyone.
    Split {
        groups: Vec<Vec<u64>>,
        ms: Option<u64>,
    },
    /// Cuts one direction of a link: messages from `from` to `to` are
    /// lost (the other way still works), until `heal` or for `ms`.
    CutLink {
        from: Target,
        to: Target,
        ms: Option<u64>,
    },
    /// Per-message faults on the links from `from` to `to` (either omitted:
    /// any member): each message is lost with probability `drop`, sent
    /// twice with probability `duplicate`, and delayed by `delay_ms`; until
    /// `heal` or for `ms`.
    LinkFaults {
        from: Option<Target>,
        to: Option<Target>,
        #[serde(default)]
        drop: f64,
        #[serde(default)]
        duplicate: f64,
        #[serde(default)]
        delay_ms: u64,
        ms: Option<u64>,
    },
    /// Sends `count` puts straight to a member without waiting for them
    /// (they are never acknowledged, so durability does not count them).
    PutsTo {
        member: Target,
        count: u32,
        prefix: String,
    },
    /// Fails the scenario unless a run statistic is within bounds: at
    /// least `at_least` (so a scenario cannot pass without exercising what
    /// it is about), at most `at_most`, or exactly `equals` (`equals = 0`:
    /// none happened).
    Expect {
        stat: String,
        at_least: Option<u64>,
        at_most: Option<u64>,
        equals: Option<u64>,
    },
    /// Reconnects every partitioned member.
    Heal,
    /// Every running member loses power at this instant (unsynced state
    /// lost) and restarts after the supervisor's delay.
    PowerOffAll,
    /// The member's disk fills up: it can hold `free_bytes` more than it
    /// holds now; a write past that fails with ENOSPC. The member stops and
    /// stays down until `restart`, which gives it a bigger disk.
    DiskFull {
        member: Target,
        free_bytes: u64,
    },
    /// A latent sector error: from now on, reads of the sector at fraction
    /// `at` of the member's newest WAL segment, newest snapshot or backend
    /// file fail with EIO. Like `corrupt`, it takes a crash and restart to
    /// matter; a member that then cannot boot is quarantined.
    ReadError {
        member: Target,
        file: DamagedFile,
        at: f64,
    },
    /// Bit rot: one byte of the member's newest WAL segment, newest
    /// snapshot file or backend file changes on the platter (and in the page
    /// cache), at fraction `at` of its durable length. The member keeps
    /// running; a crash and restart make its boot read the damage. A member
    /// that then cannot boot is quarantined (stays down, no violation).
    Corrupt {
        member: Target,
        file: DamagedFile,
        at: f64,
        #[serde(default = "default_xor")]
        xor: u8,
    },
    /// A misdirected write: the member's `nth` next write (default 1: the
    /// next one) to its WAL (a live segment) or backend file lands `shift`
    /// bytes past where it was aimed, in the same file; once it has
    /// landed, the member's process
    /// crashes so its boot reads the damage. The member stays down until
    /// `restart` (which waits for the write); one that then cannot boot is
    /// quarantined.
    Misdirect {
        member: Target,
        file: DamagedFile,
        #[serde(default = "default_hit")]
        nth: u32,
        shift: u64,
    },
    /// The member's disk becomes `factor` times slower for `ms`. Disk
    /// operations then cost virtual time (the run's seeded model, which the
    /// `slow` fault class gives every disk from the start), and the member
    /// sleeps it off before its messages and replies leave.
    Slow {
        member: Target,
        factor: u64,
        ms: u64,
    },
    /// The member's process pauses for `ms` (its host descheduled it): it
    /// neither steps nor ticks, messages and requests wait in its inbox,
    /// and when it resumes its raft clock ticks once.
    Pause {
        member: Target,
        ms: u64,
    },
    /// etcdutl's `snapshot restore`: stops every member, takes `from`'s
    /// backend file as the snapshot, restores each member from it onto a
    /// fresh disk (a new cluster of the same member ids, its log starting
    /// at the member count), checks each restored member's key space and
    /// consistent index against the snapshot, and starts them.
    SnapshotRestore {
        from: Target,
    },
    /// `backup --with-v3` inside the run: stops every member, backs up
    /// `member`'s data dir, restores it as a one-member cluster on a fresh
    /// disk (same id, new cluster id), checks it against the source at the
    /// same applied index (outside membership), then grows it back to the
    /// cluster's size by conf changes (the others join with empty disks and
    /// catch up from a leader snapshot); the step ends once it has.
    BackupRestore {
        member: Target,
    },
    /// Takes a v2 snapshot on the member now.
    ForceSnapshot {
        member: Target,
    },
    /// Lets virtual time pass.
    Wait {
        ms: u64,
    },
    /// Lets virtual time pass until `ms` after the start (at once if it
    /// has): how a recorded fault schedule keeps its timing.
    WaitUntil {
        ms: u64,
    },
    /// Waits until every running member has applied everything committed.
    WaitConverged,
    /// Waits until converged, then checks convergence and durability now.
    Check,
    /// Waits until converged, then records every running member's state
    /// for the scenario's insta snapshot.
    Snapshot {
        #[serde(default)]
        label: String,
    },
    /// Runs `steps` `times` times; inside, `"k"` is the iteration number.
    Repeat {
        times: u32,
        steps: Vec<Step>,
    },
}

/// A scenario file that could not be used.
#[derive(Debug, thiserror::Error)]
#[error("{file}: {message}")]
pub struct ScenarioError {
    pub file: String,
    pub message: String,
}

impl Scenario {
    /// Whether some step (in a repeat too) satisfies `pred`.
    pub fn has_step(&self, pred: &dyn Fn(&Step) -> bool) -> bool {
        fn any(steps: &[Step], pred: &dyn Fn(&Step) -> bool) -> bool {
            steps.iter().any(|s| match s {
                Step::Repeat { steps, .. } => any(steps, pred),
                s => pred(s),
            })
        }
        any(&self.steps, pred)
    }

    /// Reads and validates a scenario file.
    pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
        let err = |message: String| ScenarioError {
            file: path.display().to_string(),
            message,
        };
        let len = std::fs::metadata(path)
            .map_err(|e| err(format!("cannot read: {e}")))?
            .len();
        if len > MAX_FILE_BYTES {
            return Err(err(format!(
                "{len} bytes: a scenario file may hold at most {MAX_FILE_BYTES}"
            )));
        }
        let text = std::fs::read_to_string(path).map_err(|e| err(format!("cannot read: {e}")))?;
        let mut scenario = Scenario::parse(&text).map_err(err)?;
        scenario.path = path.to_path_buf();
        Ok(scenario)
    }

    /// Parses and validates scenario text (errors carry line and column).
    pub fn parse(text: &str) -> Result<Scenario, String> {
        let scenario: Scenario = match repeat_k::unrolled(text)? {
            None => toml::from_str(text).map_err(|e| e.to_string())?,
            Some(value) => value.try_into().map_err(|e| e.to_string())?,
        };
        scenario.validate()?;
        Ok(scenario)
    }

    fn validate(&self) -> Result<(), String> {
        if !(1..=MAX_NODES).contains(&self.nodes) {
            return Err(format!("nodes = {}: expected 1 to {MAX_NODES}", self.nodes));
        }
        if self.spares > MAX_SPARES {
            return Err(format!(
                "spares = {}: expected at most {MAX_SPARES}",
                self.spares
            ));
        }
        if let Some(r) = &self.random {
            for f in &r.faults {
                f.parse::<FaultClass>()?;
            }
            if r.request_interval_ms
                .is_some_and(|ms| !(1..=1000).contains(&ms))
            {
                return Err("random.request_interval_ms: expected 1 to 1000".into());
            }
            if let Some(mix) = &r.mix {
                mix.parse::<crate::mix::Mix>()
                    .map_err(|e| format!("random.mix: {e}"))?;
            }
        }
        if let Some(n) = &self.network {
            n.validate()?;
        }
        let mut count = 0;
        self.validate_steps(&self.steps, false, &mut count)
    }

    /// Validates `steps`, adding each to `count` (a repeat adds its body
    /// as often as it runs) so the whole scenario stays within bounds.
    fn validate_steps(
        &self,
        steps: &[Step],
        in_repeat: bool,
        count: &mut usize,
    ) -> Result<(), String> {
        for (i, step) in steps.iter().enumerate() {
            *count += 1;
            if *count > MAX_STEPS {
                return Err(format!("more than {MAX_STEPS} steps"));
            }
            let at = |m: String| format!("step {} ({step:?}): {m}", i + 1);
            match step {
                Step::Repeat { times, steps } => self.validate_repeat(*times, steps, count, at)?,
                _ => self.validate_step(step, in_repeat).map_err(at)?,
            }
        }
        Ok(())
    }

    /// A repeat's bounds; an error in its body names the inner step (`at`
    /// names this one).
    fn validate_repeat(
        &self,
        times: u32,
        steps: &[Step],
        count: &mut usize,
        at: impl Fn(String) -> String,
    ) -> Result<(), String> {
        if times > MAX_REPEAT {
            return Err(at(format!("times = {times}: at most {MAX_REPEAT}")));
        }
        let mut inner = 0;
        self.validate_steps(steps, true, &mut inner)?;
        *count += inner * times as usize;
        if *count > MAX_STEPS {
            return Err(at(format!("the repeat expands past {MAX_STEPS} steps")));
        }
        Ok(())
    }

    /// One step other than a repeat; the error does not say which step.
    fn validate_step(&self, step: &Step, in_repeat: bool) -> Result<(), String> {
        match step {
            Step::Crash {
                member,
                at,
                after_ops,
                after_disk_ops,
                hit,
                ..
            } => {
                self.validate_target(member)?;
                validate_count(after_ops, in_repeat)?;
                validate_count(after_disk_ops, in_repeat)?;
                validate_crash_trigger(at, after_ops, after_disk_ops, *hit)
            }
            Step::Restart {
                crash_at: Some(_),
                power_at_sync: true,
                ..
            } => Err(
                "a restart crashes its boot at a point or loses power at its first sync, not both"
                    .into(),
            ),
            Step::Restart {
                member, crash_at, ..
            } => {
                self.validate_target(member)?;
                match crash_at {
                    Some(p) if p != BOOT_DISK_OP && CrashPoint::from_name(p).is_none() => {
                        Err(format!("unknown crash point {p:?}"))
                    }
                    _ => Ok(()),
                }
            }
            Step::ReadError { .. }
            | Step::Corrupt { .. }
            | Step::Misdirect { .. }
            | Step::Slow { .. } => self.validate_disk_step(step),
            Step::Pause { member, ms } => {
                self.validate_target(member)?;
                match ms {
                    1..=60_000 => Ok(()),
                    _ => Err(format!("pause: ms {ms} (1 to 60000)")),
                }
            }
            Step::Range {
                member: Some(member),
                ..
            }
            | Step::Isolate { member, .. }
            | Step::DiskFull { member, .. }
            | Step::PutsTo { member, .. }
            | Step::Partition { member, .. }
            | Step::ForceSnapshot { member }
            | Step::SnapshotRestore { from: member }
            | Step::BackupRestore { member } => self.validate_target(member),
            Step::Eio { .. } => self.validate_eio(step, in_repeat),
            Step::AddMember { id, .. } => self.validate_spare_slot(*id),
            Step::PromoteMember { id }
            | Step::RemoveMember { id }
            | Step::TransferLeader { to: id } => self.validate_joined(id),
            Step::MemberAttrs { member: id, .. } => self.validate_member_id(*id),
            Step::Puts {
                count, value_bytes, ..
            } => validate_puts(*count, *value_bytes),
            Step::Expect { .. }
            | Step::Txn { .. }
            | Step::Compact { .. }
            | Step::Split { .. }
            | Step::CutLink { .. }
            | Step::LinkFaults { .. } => self.validate_values(step),
            _ => Ok(()),
        }
    }

    /// The steps that damage or slow a member's disk.
    fn validate_disk_step(&self, step: &Step) -> Result<(), String> {
        match step {
            Step::ReadError { member, at, .. } => {
                self.validate_target(member)?;
                validate_fraction(*at)
            }
            Step::Corrupt {
                member, at, xor, ..
            } => {
                self.validate_target(member)?;
                validate_fraction(*at)?;
                match xor {
                    0 => Err("xor = 0 changes nothing".into()),
                    _ => Ok(()),
                }
            }
            Step::Misdirect {
                member,
                file,
                nth,
                shift,
            } => {
                self.validate_target(member)?;
                validate_misdirect(*file, *nth, *shift)
            }
            Step::Slow { member, factor, ms } => {
                self.validate_target(member)?;
                match (factor, ms) {
                    (1..=1000, 1..=60_000) => Ok(()),
                    _ => Err(format!(
                        "slow: factor {factor} (1 to 1000), ms {ms} (1 to 60000)"
                    )),
                }
            }
            _ => Ok(()),
        }
    }

    fn validate_target(&self, target: &Target) -> Result<(), String> {
        match target {
            Target::Id(id) => self.validate_member_id(*id),
            Target::Role(r) if ROLES.contains(&r.as_str()) => Ok(()),
            Target::Role(r) => Err(format!(
                "member {r:?}: expected a member id or one of {ROLES:?}"
            )),
        }
    }

    /// An `expect`, `compact`, `split`, `cut_link` or `link_faults` step:
    /// bounds, expressions, groups and probabilities.
    fn validate_values(&self, step: &Step) -> Result<(), String> {
        match step {
            Step::Expect {
                stat,
                at_least,
                at_most,
                equals,
            } => validate_expect(stat, *at_least, *at_most, *equals),
            Step::Compact { revision } => revision.below_current().map(|_| ()),
            Step::Txn { .. } => validate_txn(step),
            Step::Split { groups, .. } => self.validate_groups(groups),
            Step::CutLink { from, to, .. } => {
                self.validate_target(from)?;
                self.validate_target(to)
            }
            Step::LinkFaults {
                from,
                to,
                drop,
                duplicate,
                ..
            } => self.validate_link_faults(from, to, *drop, *duplicate),
            _ => Ok(()),
        }
    }

    /// An `eio` step's member, how it loses power, and what it aims at.
    fn validate_eio(&self, step: &Step, in_repeat: bool) -> Result<(), String> {
        let Step::Eio {
            member,
            mode,
            on,
            file,
            nth,
            ..
        } = step
        else {
            return Ok(());
        };
        self.validate_target(member)?;
        validate_eio_target(*on, file, nth, in_repeat)?;
        if *mode == Mode::Process {
            return Err("an EIO stop loses unsynced state: mode is power, torn or reorder".into());
        }
        Ok(())
    }

    /// A split names two or more groups of existing members, each member
    /// in one group at most.
    fn validate_groups(&self, groups: &[Vec<u64>]) -> Result<(), String> {
        if groups.len() < 2 {
            return Err("a split needs at least two groups".into());
        }
        let mut seen = std::collections::BTreeSet::new();
        for id in groups.iter().flatten() {
            self.validate_member_id(*id)?;
            if !seen.insert(*id) {
                return Err(format!("member {id} is in two groups"));
            }
        }
        Ok(())
    }

    fn validate_link_faults(
        &self,
        from: &Option<Target>,
        to: &Option<Target>,
        drop: f64,
        duplicate: f64,
    ) -> Result<(), String> {
        for target in [from, to].into_iter().flatten() {
            self.validate_target(target)?;
        }
        for (name, p) in [("drop", drop), ("duplicate", duplicate)] {
            if !(0.0..=1.0).contains(&p) {
                return Err(format!("{name} = {p}: expected a probability from 0 to 1"));
            }
        }
        Ok(())
    }

    fn validate_member_id(&self, id: u64) -> Result<(), String> {
        let slots = self.nodes + self.spares;
        if (1..=slots).contains(&id) {
            Ok(())
        } else {
            Err(format!("member {id} does not exist (1..={slots})"))
        }
    }

    /// A member a membership step names: a role, or an id.
    fn validate_joined(&self, target: &Target) -> Result<(), String> {
        match target {
            Target::Id(id) => self.validate_joined_id(*id),
            role => self.validate_target(role),
        }
    }

    /// A member a membership step may name: one of the first members or
    /// one an `add_member` step may add.
    fn validate_joined_id(&self, id: u64) -> Result<(), String> {
        let slots = self.nodes + self.spares.max(MAX_SPARES);
        if (1..=slots).contains(&id) {
            Ok(())
        } else {
            Err(format!("member {id} does not exist (1..={slots})"))
        }
    }

    fn validate_spare_slot(&self, id: u64) -> Result<(), String> {
        let slots = self.nodes + self.spares.max(MAX_SPARES);
        if id <= self.nodes || id > slots {
            return Err(format!(
                "member {id} is not a spare slot ({}..={slots})",
                self.nodes + 1
            ));
        }
        Ok(())
    }
}

/// A count is a number, or `"k"` inside a repeat.
fn validate_count(count: &Option<Count>, in_repeat: bool) -> Result<(), String> {
    match count {
        Some(Count::Var(v)) if v != "k" => Err(format!("{v:?}: expected a number or \"k\"")),
        Some(Count::Var(_)) if !in_repeat => Err("\"k\" outside a repeat".into()),
        _ => Ok(()),
    }
}

/// What stops a crash step: a known crash point (then `after_ops` may
/// count from it) or a disk operation count, not both; and a hit from 1.
fn validate_crash_trigger(
    at: &Option<String>,
    after_ops: &Option<Count>,
    after_disk_ops: &Option<Count>,
    hit: u32,
) -> Result<(), String> {
    if let Some(p) = at
        && tearable_sync_target(p).is_some()
    {
        if after_ops.is_some() || after_disk_ops.is_some() || hit != 1 {
            return Err(format!("a {p:?} crash takes no count: the next such sync"));
        }
        return Ok(());
    }
    if let Some(p) = at
        && CrashPoint::from_name(p).is_none()
    {
        let names: Vec<_> = CrashPoint::ALL.iter().map(|p| p.name()).collect();
        return Err(format!(
            "unknown crash point {p:?}; expected one of {}, or {TEARABLE_SYNC}[.wal|.backend|.snapshot]",
            names.join(", ")
        ));
    }
    if at.is_some() && after_disk_ops.is_some() {
        return Err("give `at` or `after_disk_ops`, not both".into());
    }
    if at.is_none() && after_ops.is_some() {
        return Err("`after_ops` counts from a crash point: give `at`".into());
    }
    if hit == 0 {
        return Err("hit must be at least 1".into());
    }
    Ok(())
}

/// A misdirected write hits a WAL segment or the backend file (snapshots
/// are written whole under a temporary name), one of the next 64 writes
/// there, at least a length word (8 bytes) and at most 1 MiB away.
fn validate_misdirect(file: DamagedFile, nth: u32, shift: u64) -> Result<(), String> {
    if file == DamagedFile::Snapshot {
        return Err("misdirect: file is wal or backend".into());
    }
    if !(1..=64).contains(&nth) {
        return Err(format!("misdirect: nth = {nth}: 1 to 64"));
    }
    if !(8..=1 << 20).contains(&shift) {
        return Err(format!("misdirect: shift = {shift}: 8 to 1048576 bytes"));
    }
    Ok(())
}

/// An `expect` step names a statistic there is, and bounds it.
fn validate_expect(
    stat: &str,
    at_least: Option<u64>,
    at_most: Option<u64>,
    equals: Option<u64>,
) -> Result<(), String> {
    if RunStats::names().all(|n| n != stat) {
        let names: Vec<&str> = RunStats::names().collect();
        return Err(format!("unknown stat {stat:?}; expected one of {names:?}"));
    }
    validate_expect_bounds(at_least, at_most, equals)
}

/// An `expect` step names at least one bound; `equals` stands alone, and
/// a range is not empty.
fn validate_expect_bounds(
    at_least: Option<u64>,
    at_most: Option<u64>,
    equals: Option<u64>,
) -> Result<(), String> {
    match (at_least, at_most, equals) {
        (None, None, None) => Err("expect needs at_least, at_most or equals".into()),
        (Some(_), _, Some(_)) | (_, Some(_), Some(_)) => {
            Err("equals stands alone: drop at_least and at_most".into())
        }
        (Some(l), Some(h), None) if l > h => Err(format!("at_least = {l} > at_most = {h}")),
        _ => Ok(()),
    }
}

/// A txn step is in its short form (key, version, then_value and
/// else_value) or its long form (compares, then, else), not both; each
/// compare's operand fits its target; each operation is one kind.
fn validate_txn(step: &Step) -> Result<(), String> {
    let Step::Txn {
        key,
        version,
        then_value,
        else_value,
        compares,
        then_ops,
        else_ops,
    } = step
    else {
        return Ok(());
    };
    let short = [
        version.is_some(),
        then_value.is_some(),
        else_value.is_some(),
    ];
    let long = !(compares.is_empty() && then_ops.is_empty() && else_ops.is_empty());
    match (short.iter().filter(|s| **s).count(), long) {
        (3, false) if !key.is_empty() => {}
        (0, true) if key.is_empty() => {}
        (_, true) => {
            return Err(
                "a txn has key, version, then_value and else_value, or compares, then and else, not both"
                    .into(),
            );
        }
        _ => return Err("a short txn needs key, version, then_value and else_value".into()),
    }
    for c in compares {
        match (c.target, &c.value) {
            (TxnTarget::Value, TxnValue::Text(_)) => {}
            (TxnTarget::Value, TxnValue::Number(_)) => {
                return Err(format!(
                    "compare of {:?}'s value: the operand is text",
                    c.key
                ));
            }
            (_, TxnValue::Number(_)) => {}
            (t, TxnValue::Text(_)) => {
                return Err(format!(
                    "compare of {:?}'s {t:?}: the operand is a number",
                    c.key
                ));
            }
        }
    }
    for op in then_ops.iter().chain(else_ops) {
        let kinds = [&op.put, &op.delete, &op.get]
            .iter()
            .filter(|k| k.is_some())
            .count();
        if kinds != 1 || op.value.is_some() != op.put.is_some() {
            return Err(format!(
                "txn operation {op:?}: give put with value, delete, or get (range_end optional)"
            ));
        }
        if op.put.is_some() && op.range_end.is_some() {
            return Err("a txn put has no range_end".into());
        }
    }
    Ok(())
}

/// An EIO aimed at one kind of file or at the n-th operation is a sync, a
/// write or a rename one.
fn validate_eio_target(
    on: EioOn,
    file: &Option<DamagedFile>,
    nth: &Option<Count>,
    in_repeat: bool,
) -> Result<(), String> {
    validate_count(nth, in_repeat)?;
    let targeted = file.is_some() || nth.is_some();
    if targeted && !matches!(on, EioOn::Sync | EioOn::Write | EioOn::Rename) {
        return Err(
            "file and nth aim an EIO at a sync, a write or a rename: on is sync, write or rename"
                .into(),
        );
    }
    if matches!(nth, Some(Count::N(0))) {
        return Err("nth counts from 1".into());
    }
    Ok(())
}

/// Bounds that keep a `puts` step's memory and run time small.
fn validate_puts(count: u32, value_bytes: usize) -> Result<(), String> {
    if count > 10_000 {
        return Err(format!("count = {count}: at most 10000"));
    }
    if value_bytes > 1 << 20 {
        return Err(format!("value_bytes = {value_bytes}: at most 1 MiB"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_err(text: &str) -> String {
        Scenario::parse(text).unwrap_err()
    }

    const HEAD: &str = "name = \"t\"\ndescription = \"d\"\n";

    #[test]
    fn a_minimal_scenario_parses() {
        let s = Scenario::parse(&format!(
            "{HEAD}[[step]]\naction = \"put\"\nkey = \"a\"\nvalue = \"1\"\n[[step]]\naction = \"check\"\n"
        ))
        .unwrap();
        assert_eq!(s.nodes, 3);
        assert_eq!(s.steps.len(), 2);
    }

    #[test]
    fn unknown_actions_and_fields_are_rejected_with_the_line() {
        let e = parse_err(&format!("{HEAD}[[step]]\naction = \"explode\"\n"));
        assert!(e.contains("line 4") && e.contains("explode"), "{e}");
        let e = parse_err(&format!(
            "{HEAD}[[step]]\naction = \"put\"\nkey = \"a\"\nvalue = \"1\"\ncolour = 2\n"
        ));
        assert!(e.contains("colour"), "{e}");
    }

    #[test]
    fn bad_crash_points_members_and_sizes_are_rejected() {
        let e = parse_err(&format!(
            "{HEAD}[[step]]\naction = \"crash\"\nmember = 1\nat = \"nowhere\"\n"
        ));
        assert!(
            e.contains("unknown crash point") && e.contains("wal.save.before_sync"),
            "{e}"
        );
        let e = parse_err(&format!(
            "{HEAD}[[step]]\naction = \"restart\"\nmember = 9\n"
        ));
        assert!(e.contains("member 9 does not exist"), "{e}");
        let e = parse_err(&format!("{HEAD}nodes = 1000000\n"));
        assert!(e.contains("nodes = 1000000"), "{e}");
        let e = parse_err(&format!("{HEAD}nodes = 0\n"));
        assert!(e.contains("expected 1 to 7"), "{e}");
        let e = parse_err(&format!(
            "{HEAD}[[step]]\naction = \"repeat\"\ntimes = 1000\n[[step.steps]]\naction = \"repeat\"\ntimes = 1000\n[[step.steps.steps]]\naction = \"wait\"\nms = 1\n"
        ));
        assert!(e.contains("expands past"), "{e}");
        let e = parse_err(&format!(
            "{HEAD}[[step]]\naction = \"crash\"\nmember = 1\nafter_disk_ops = \"k\"\n"
        ));
        assert!(e.contains("outside a repeat"), "{e}");
    }

    /// The format documentation's example is a valid scenario, so the
    /// documentation cannot drift from the parser.
    #[test]
    fn the_readme_example_parses() {
        let readme = include_str!("../../scenarios/README.md");
        let start = readme.find("```toml\n").expect("a toml block") + "```toml\n".len();
        let len = readme[start..].find("```").expect("the block ends");
        let example = Scenario::parse(&readme[start..start + len]).unwrap();
        assert!(example.network.is_some() && example.random.is_some());
        // Each step's `action` tag, as the file spells it.
        let actions: Vec<String> = example
            .steps
            .iter()
            .map(|s| serde_json::to_value(s).unwrap()["action"].to_string())
            .collect();
        for action in [
            "\"wait_until\"",
            "\"crash\"",
            "\"eio\"",
            "\"partition\"",
            "\"restart\"",
            "\"repeat\"",
            "\"power_off_all\"",
            "\"corrupt\"",
            "\"disk_full\"",
            "\"read_error\"",
            "\"misdirect\"",
            "\"slow\"",
            "\"snapshot_restore\"",
            "\"backup_restore\"",
            "\"transfer_leader\"",
            "\"split\"",
            "\"cut_link\"",
            "\"link_faults\"",
        ] {
            assert!(
                actions.iter().any(|a| a == action),
                "{action} in {actions:?}"
            );
        }
    }

    /// Every other example in the format documentation (one per newer
    /// piece of the format) is a whole valid scenario too.
    #[test]
    fn every_readme_example_parses() {
        let readme = include_str!("../../scenarios/README.md");
        let mut parsed = 0;
        for block in readme.split("```toml\n").skip(1) {
            let text = &block[..block.find("```").expect("the block ends")];
            Scenario::parse(text).unwrap_or_else(|e| panic!("{e}\n{text}"));
            parsed += 1;
        }
        assert!(parsed >= 2, "{parsed} examples");
    }

    #[test]
    fn expect_bounds_that_say_nothing_or_contradict_are_rejected() {
        assert!(validate_expect_bounds(None, None, None).is_err());
        assert!(validate_expect_bounds(Some(1), None, Some(1)).is_err());
        assert!(validate_expect_bounds(Some(3), Some(2), None).is_err());
        assert!(validate_expect_bounds(None, Some(0), None).is_ok());
    }

    #[test]
    fn a_restart_loses_power_at_its_first_sync_or_crashes_at_a_point_not_both() {
        let one = |extra: &str| {
            Scenario::parse(&format!(
                "name = \"x\"\ndescription = \"x\"\n[[step]]\naction = \"restart\"\nmember = 1\n{extra}"
            ))
        };
        let ok = one("power_at_sync = true\nmode = \"reorder\"").unwrap();
        assert!(matches!(
            ok.steps[0],
            Step::Restart {
                power_at_sync: true,
                mode: Mode::Reorder,
                ..
            }
        ));
        let both = one("power_at_sync = true\ncrash_at = \"backend.commit.after\"");
        assert!(both.is_err());
    }

    const CATALOGUE_FILE: &str =
        include_str!("../../scenarios/01-batch-commit-crash-follower.toml");

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(500))]

        /// The scenario parser's fuzz twin: any text is an error or a
        /// scenario, never a panic.
        #[test]
        fn parsing_arbitrary_text_never_panics(text in "[ -~\n\\[\\]\"=]{0,300}") {
            let _ = Scenario::parse(&text);
        }

        /// Damaged catalogue files: one byte replaced, or the file cut short.
        #[test]
        fn parsing_damaged_scenarios_never_panics(at in 0usize..CATALOGUE_FILE.len(), byte in 0u8..128, cut in proptest::bool::ANY) {
            let mut bytes = CATALOGUE_FILE.as_bytes().to_vec();
            if cut {
                bytes.truncate(at);
            } else {
                bytes[at] = byte;
            }
            let text = String::from_utf8_lossy(&bytes);
            let _ = Scenario::parse(&text);
        }
    }
}
