//! The scenario file format (TOML). `scenarios/README.md` documents it with
//! an example of every step kind.

use crate::fault::FaultClass;
use crate::stats::RunStats;
use replica::crash_point::CrashPoint;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Bounds checked before anything is allocated for a scenario.
pub const MAX_NODES: u64 = 7;
pub const MAX_SPARES: u64 = 4;
pub const MAX_STEPS: usize = 10_000;
pub const MAX_REPEAT: u32 = 1_000;
pub const MAX_FILE_BYTES: u64 = 1 << 20;

/// The member roles a step may name instead of an id.
pub const ROLES: [&str; 4] = ["leader", "follower", "crashed", "isolated"];

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

/// Which operation an injected EIO fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EioOn {
    Sync,
    Write,
    /// A directory sync (its entry changes stay unsynced).
    SyncDir,
    /// A create, rename or remove (nothing changes).
    Meta,
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
    /// v3 txn: if `key`'s version equals `version`, put `then_value`,
    /// else put `else_value`.
    Txn {
        key: String,
        version: i64,
        then_value: String,
        else_value: String,
    },
    /// v3 compaction at `revision`.
    Compact {
        revision: i64,
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
    /// Adds member `id` (a spare slot), as a learner if `learner`; the
    /// member's process starts empty and catches up from the leader.
    AddMember {
        id: u64,
        #[serde(default)]
        learner: bool,
    },
    PromoteMember {
        id: u64,
    },
    /// Removes member `id`; its process is stopped once it is out.
    RemoveMember {
        id: u64,
    },
    /// Stops a member: now (no `at`, no `after_disk_ops`), at a named crash
    /// point (its `hit`-th hit; with `after_ops` = k, at the k-th disk
    /// operation after the point), or at its `after_disk_ops`-th next disk
    /// operation. It stays down until a `restart` step.
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
    /// crash point's `hit`-th hit (a crash during recovery); the member then
    /// stays down until the next `restart`.
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
    },
    /// Cuts a member off the network: until `heal`, or for `ms`.
    Partition {
        member: Target,
        ms: Option<u64>,
    },
    /// Cuts the links between a member and the other members (clients
    /// still reach it), so it may accept proposals it cannot commit.
    Isolate {
        member: Target,
    },
    /// Sends `count` puts straight to a member without waiting for them
    /// (they are never acknowledged, so durability does not count them).
    PutsTo {
        member: Target,
        count: u32,
        prefix: String,
    },
    /// Fails the scenario unless a run statistic reached `at_least`, so a
    /// scenario cannot pass without exercising what it is about.
    Expect {
        stat: String,
        at_least: u64,
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
        let scenario: Scenario = toml::from_str(text).map_err(|e| e.to_string())?;
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
            Step::Expect { stat, .. } if RunStats::names().all(|n| n != stat) => {
                let names: Vec<&str> = RunStats::names().collect();
                Err(format!("unknown stat {stat:?}; expected one of {names:?}"))
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
                    Some(p) if CrashPoint::from_name(p).is_none() => {
                        Err(format!("unknown crash point {p:?}"))
                    }
                    _ => Ok(()),
                }
            }
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
            Step::Range {
                member: Some(member),
                ..
            }
            | Step::Isolate { member }
            | Step::DiskFull { member, .. }
            | Step::PutsTo { member, .. }
            | Step::Partition { member, .. }
            | Step::ForceSnapshot { member } => self.validate_target(member),
            Step::Eio { member, mode, .. } => {
                self.validate_target(member)?;
                if *mode == Mode::Process {
                    return Err(
                        "an EIO stop loses unsynced state: mode is power, torn or reorder".into(),
                    );
                }
                Ok(())
            }
            Step::AddMember { id, .. } => self.validate_spare_slot(*id),
            Step::PromoteMember { id }
            | Step::RemoveMember { id }
            | Step::MemberAttrs { member: id, .. } => self.validate_member_id(*id),
            Step::Puts {
                count, value_bytes, ..
            } => validate_puts(*count, *value_bytes),
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

    fn validate_member_id(&self, id: u64) -> Result<(), String> {
        let slots = self.nodes + self.spares;
        if (1..=slots).contains(&id) {
            Ok(())
        } else {
            Err(format!("member {id} does not exist (1..={slots})"))
        }
    }

    fn validate_spare_slot(&self, id: u64) -> Result<(), String> {
        let slots = self.nodes + self.spares;
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
        && CrashPoint::from_name(p).is_none()
    {
        let names: Vec<_> = CrashPoint::ALL.iter().map(|p| p.name()).collect();
        return Err(format!(
            "unknown crash point {p:?}; expected one of {}",
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
        ] {
            assert!(
                actions.iter().any(|a| a == action),
                "{action} in {actions:?}"
            );
        }
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
