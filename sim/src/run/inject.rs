//! Random fault injection: which fault, on which member, when.
//!
//! Every fault comes from the supervisor's fault stream; the order of the
//! draws is part of a seed's meaning, so each step below says what it draws.

use super::STEP_MS;
use super::Supervisor;
use super::aimed_damage::AimedAt;
use crate::fault::{
    ArmedCrash, CrashKind, DiskFault, FaultClass, MemberFile, PowerLossKind, PowerPlan,
    SimCrashHook, SimDisk, TargetedEio, TargetedOp,
};
use crate::scenario_file::{Count, DamagedFile, EioOn, Mode, Step, tearable_sync_name};
use rand::Rng;
use rand::seq::{IndexedRandom, SliceRandom};
use replica::crash_point::CrashPoint;
use std::sync::Arc;

const CRASH_POINTS: [CrashPoint; 8] = CrashPoint::ALL;

/// What the fault draw needs to know about the world, read under one lock.
struct InjectionOdds {
    faults_per_second: f64,
    /// The run's fault classes that the cluster's size allows.
    classes: Vec<FaultClass>,
    max_down: usize,
    unavailable: usize,
    /// Running, connected members: the candidates for a new fault.
    up: Vec<u64>,
}

/// A scripted-step form of a crash at a point or a disk operation.
pub(super) fn crash_step(
    id: u64,
    at: Option<CrashPoint>,
    hit: u32,
    after_ops: Option<u64>,
    after_disk_ops: Option<u64>,
    mode: Mode,
) -> Step {
    Step::Crash {
        member: id.into(),
        mode,
        at: at.map(|p| p.name().to_string()),
        hit,
        after_ops: after_ops.map(Count::N),
        after_disk_ops: after_disk_ops.map(Count::N),
        plan_seed: None,
    }
}

impl Supervisor {
    /// Maybe injects one new fault on a running member.
    pub(crate) fn maybe_inject(&mut self) {
        let Some((class, id)) = self.draw_fault() else {
            return;
        };
        let now = self.world.now_ms();
        match class {
            FaultClass::Torn | FaultClass::Power if self.aims_tear(class) => {
                self.arm_tearable_power_loss(now, id);
            }
            FaultClass::Crash | FaultClass::Power | FaultClass::Torn => {
                self.inject_crash(now, id, class != FaultClass::Crash);
            }
            FaultClass::Eio => self.inject_eio(now, id),
            FaultClass::Point => {
                self.arm_point(id);
                self.arm_deadline(id);
            }
            FaultClass::Net => self.inject_partition(now, id),
            FaultClass::ClusterPower => self.inject_cluster_power_cut(id),
            FaultClass::Enospc => self.inject_full_disk(now, id),
            FaultClass::Bitrot | FaultClass::ReadError | FaultClass::Misdirect => {
                self.inject_damage(now, id, class);
            }
            FaultClass::Slow => self.inject_slow(now, id),
        }
    }

    /// Whether a power loss of `class` waits for a write to tear instead of
    /// striking now: three torn-write faults in four, and one power fault
    /// in four when torn writes are on (its loss would tear then too); the
    /// rest strike at once, anywhere. One draw from the aiming stream, only
    /// for those classes (and for `power` only with torn writes on).
    fn aims_tear(&mut self, class: FaultClass) -> bool {
        match class {
            FaultClass::Torn => self.tear_rng.random_ratio(3, 4),
            _ if self.world.lock().cfg.has(FaultClass::Torn) => self.tear_rng.random_ratio(1, 4),
            _ => false,
        }
    }

    /// A torn-write power loss aimed at a write it can tear: armed at the
    /// member's next sync of a WAL segment (half the time), of its backend
    /// file (a quarter) or of any file (a quarter: snapshots, WAL and
    /// backend alike) whose unsynced writes include one across a sector
    /// boundary. Between two steps a member has synced everything, so a
    /// power loss drawn at a random instant rarely finds such a write; this
    /// one waits for it (3 s at most, like every armed fault). It keeps
    /// every unsynced write and tears each file's last one, or keeps a
    /// random subset, half each. Draws (from its own stream) the file and
    /// the kind; the plan's seed comes from the fault stream when it fires.
    fn arm_tearable_power_loss(&mut self, now: u64, id: u64) {
        let file = match self.tear_rng.random_range(0..4) {
            0 | 1 => Some(MemberFile::Wal),
            2 => Some(MemberFile::Backend),
            _ => None,
        };
        let kind = if self.tear_rng.random_bool(0.5) {
            PowerLossKind::TearTail
        } else {
            PowerLossKind::Reorder
        };
        {
            let mut w = self.world.lock();
            let Some(slot) = w.slot_mut(id) else {
                return;
            };
            slot.armed.disk_crash_power = true;
            slot.armed.power_plan = Some(PowerPlan { kind, seed: None });
            slot.disk.arm(DiskFault::CrashAtTearableSync(file));
            w.event(
                now,
                Some(id),
                format_args!(
                    "armed {kind:?} power loss at the next sync with a write to tear ({file:?})"
                ),
            );
        }
        let step = Step::Crash {
            member: id.into(),
            mode: Mode::of_power_loss(kind),
            at: Some(tearable_sync_name(file)),
            hit: 1,
            after_ops: None,
            after_disk_ops: None,
            plan_seed: None,
        };
        self.record(now, id, true, step);
        self.arm_deadline(id);
    }

    /// Arms a misdirected write on the member's WAL (two in three: its next
    /// save) or backend file (one of its next 8 writes, so data pages as
    /// well as the header): it lands 1 to 8 sectors (WAL) or 1 to 4 pages
    /// (backend) past where it was aimed, and the member then
    /// crashes so its boot reads the damage. Bounded as bit rot is (one
    /// damaged member per run, late, every other member up; three members
    /// or more) and only on a member with nothing else armed, for 3 s at
    /// most. A shift past the aimed-at offset always leaves the aimed-at
    /// bytes as they were (zeros at a WAL's end) with the record after
    /// them: a hole the WAL's torn-tail rule can tell from a torn write.
    /// Draws the file, (for the backend) which write, and the shift (only
    /// once the bound holds).
    fn inject_misdirect(&mut self, now: u64, id: u64) {
        // Every member up and nothing armed on any (`may_damage`).
        if !self.may_damage(now) {
            return;
        }
        let (file, nth, shift) = if self.rng.random_ratio(2, 3) {
            (DamagedFile::Wal, 1, 512 * self.rng.random_range(1..=8u64))
        } else {
            let nth = self.rng.random_range(1..=8);
            (
                DamagedFile::Backend,
                nth,
                4096 * self.rng.random_range(1..=4u64),
            )
        };
        if self.arm_misdirect(id, file, nth, shift).is_err() {
            return;
        }
        let step = Step::Misdirect {
            member: id.into(),
            file,
            nth,
            shift,
        };
        self.record(now, id, true, step);
        self.arm_deadline(id);
    }

    /// Makes the member's disk 10 to 100 times slower for 0.5 to 5 s (cut
    /// to end before the random phase does), and maybe cuts it off its
    /// peers as well (`run/peer_cut.rs`). One slow disk at a time.
    /// Draws the factor and the length (only if no disk is slow).
    fn inject_slow(&mut self, now: u64, id: u64) {
        if self.any_slow() || self.host_trouble_armed() {
            return;
        }
        let factor = self.rng.random_range(10..=100);
        let ms = self
            .rng
            .random_range(500..=5_000)
            .min(self.random_until.saturating_sub(now));
        if let Some(trouble) = self.draw_host_trouble(now, factor, ms) {
            self.arm_host_trouble(now, trouble);
            return;
        }
        if ms == 0 || self.slow_disk(id, factor, ms).is_err() {
            return;
        }
        let step = Step::Slow {
            member: id.into(),
            factor,
            ms,
        };
        self.record(now, id, false, step);
    }

    /// A latent sector error in the member's WAL, snapshot or backend file,
    /// then a process crash so its boot reads it. The same bound as bit rot
    /// (one damaged member per run, late, with every other member up). In
    /// the WAL, among the records written since the backend's latest sync,
    /// as bit rot's unaimed flips: a boot that takes the error for the end
    /// of the log (`wal-read-error-as-eof`) loses entries only there; a bad
    /// sector among entries the backend holds costs it nothing it shows.
    /// If the member has no such records, and half the time when it has
    /// (from the damage aim stream), the error waits instead for a member
    /// with committed puts past its backend's sync (`run/aimed_damage.rs`).
    /// Draws the file and where (where even when it waits, so that the
    /// fault stream keeps its order).
    fn inject_bad_sector(&mut self, now: u64, id: u64) {
        let Some(file) = self.draw_damaged_file(now) else {
            return;
        };
        let past_backend = match file {
            DamagedFile::Wal => self.wal_span_past_backend(id),
            _ => None,
        };
        let (lo, hi) = past_backend.unwrap_or((0.0, 1.0));
        let at = lo + (hi - lo) * self.rng.random::<f64>();
        if file == DamagedFile::Wal
            && (past_backend.is_none() || self.damage_aim_rng.random_bool(0.5))
        {
            self.arm_aimed_damage(now, AimedAt::PastBackend);
            return;
        }
        self.bad_sector_and_crash(now, id, file, at);
    }

    /// Makes the sector at `at` of the member's `file` unreadable, records
    /// the step and crashes the member's process so its boot reads it.
    pub(super) fn bad_sector_and_crash(&mut self, now: u64, id: u64, file: DamagedFile, at: f64) {
        if self.bad_sector(id, file, at).is_err() {
            return;
        }
        self.record(
            now,
            id,
            false,
            Step::ReadError {
                member: id.into(),
                file,
                at,
            },
        );
        self.inject_crash(now, id, false);
    }

    /// The bound shared by bit rot and latent sector errors (one damaged
    /// member per run, late in the random phase, every other member up);
    /// when it holds, draws which file is damaged.
    fn draw_damaged_file(&mut self, now: u64) -> Option<DamagedFile> {
        if !self.may_damage(now) {
            return None;
        }
        let files = [
            DamagedFile::Wal,
            DamagedFile::Snapshot,
            DamagedFile::Backend,
        ];
        Some(*files.choose(&mut self.rng).unwrap_or(&DamagedFile::Wal))
    }

    /// A fault that damages a platter: at once if its bound holds; drawn
    /// late in the random phase while a member is down, cut off or armed,
    /// it waits (3 s at most) for every member to be up
    /// (`run/aimed_damage.rs`); if another damage is waiting already, it
    /// is dropped (its own bound check refuses it).
    fn inject_damage(&mut self, now: u64, id: u64, class: FaultClass) {
        let waits = self.is_late(now) && !self.any_damaged() && !self.may_damage(now);
        if waits && self.aimed_damage.is_none() {
            self.arm_aimed_damage(now, AimedAt::Bound { class, id });
        } else {
            self.inject_damage_now(now, id, class);
        }
    }

    /// Injects a damage fault of `class` on member `id` now.
    pub(super) fn inject_damage_now(&mut self, now: u64, id: u64, class: FaultClass) {
        match class {
            FaultClass::Bitrot => self.inject_bitrot(now, id),
            FaultClass::ReadError => self.inject_bad_sector(now, id),
            _ => self.inject_misdirect(now, id),
        }
    }

    /// Whether `now` is in the last quarter of the random phase, where
    /// damage faults go.
    fn is_late(&self, now: u64) -> bool {
        now * 4 >= self.random_until * 3
    }

    /// The bound of every fault that damages a platter: no member damaged
    /// (or armed to be) yet in this run, the last quarter of the random
    /// phase, and every member up with nothing armed on it.
    pub(super) fn may_damage(&self, now: u64) -> bool {
        self.is_late(now) && !self.any_damaged() && self.world.lock().unavailable() == 0
    }

    /// Fills the member's disk: it can hold 0 to 256 KiB more than it does
    /// now, for 3 s at most. Draws the free space.
    fn inject_full_disk(&mut self, now: u64, id: u64) {
        let free_bytes = self.rng.random_range(0..=256 * 1024);
        self.record(
            now,
            id,
            true,
            Step::DiskFull {
                member: id.into(),
                free_bytes,
            },
        );
        self.fill_disk(id, free_bytes);
        self.arm_deadline(id);
    }

    /// Damages one byte of the member's WAL, snapshot or backend file, then
    /// crashes its process so its boot reads the damage. Bounded: one
    /// member per run, only while every other member is up, only in
    /// clusters where the others make a quorum without it (three members
    /// or more: the class is not drawn otherwise, `FaultClass::applies_to`),
    /// and only in the last quarter of the random phase (a quarantined
    /// member stays down, which ends fault injection in a three- or
    /// four-member cluster). Draws the file, where, and the bits to flip
    /// (only once those hold); for the WAL, whether it waits instead for a
    /// replayed put's value to aim at (`arm_aimed_bitrot`).
    fn inject_bitrot(&mut self, now: u64, id: u64) {
        let Some(file) = self.draw_damaged_file(now) else {
            return;
        };
        // In a WAL segment, the entries a boot replays into a backend that
        // has not committed them yet: those written since the backend's
        // latest sync, else the newest tenth (damage to older entries is
        // skipped by replay or cut off with a snapshot: never read).
        let (lo, hi) = match file {
            DamagedFile::Wal => self.wal_span_past_backend(id).unwrap_or((0.9, 1.0)),
            _ => (0.0, 1.0),
        };
        let at = lo + (hi - lo) * self.rng.random::<f64>();
        let xor: u8 = self.rng.random_range(1..=255);
        if file == DamagedFile::Wal && self.damage_aim_rng.random_bool(0.5) {
            self.arm_aimed_damage(now, AimedAt::ReplayedValue { xor });
        } else {
            self.damage_and_crash(now, id, file, at, xor);
        }
    }

    /// Flips `xor` into the byte at `at` of the member's `file`, records
    /// the step and crashes the member's process so its boot reads it.
    pub(super) fn damage_and_crash(
        &mut self,
        now: u64,
        id: u64,
        file: DamagedFile,
        at: f64,
        xor: u8,
    ) {
        if self.corrupt(id, file, at, xor).is_err() {
            // No such file yet (no snapshot taken): nothing to damage.
            return;
        }
        let step = Step::Corrupt {
            member: id.into(),
            file,
            at,
            xor,
        };
        self.record(now, id, false, step);
        self.inject_crash(now, id, false);
    }

    /// Rarely (one draw in four), cuts the power of every member, or of a
    /// majority that includes `id`, at this instant (in a one-member
    /// cluster both are its power loss). Draws the go-ahead, then whole or
    /// majority, then (for a majority) its other members.
    fn inject_cluster_power_cut(&mut self, id: u64) {
        if !self.rng.random_ratio(1, 4) {
            return;
        }
        let mut running = self.running_members();
        if !self.rng.random_bool(0.5) {
            let majority = running.len() / 2 + 1;
            running.retain(|m| *m != id);
            running.shuffle(&mut self.rng);
            running.truncate(majority - 1);
            running.push(id);
            running.sort_unstable();
        }
        self.power_off(&running);
    }

    fn injection_odds(&self) -> InjectionOdds {
        let w = self.world.lock();
        let up: Vec<u64> = w
            .members
            .iter()
            .filter(|(_, s)| s.node.is_some() && !s.is_cut_off())
            .map(|(id, _)| *id)
            .collect();
        InjectionOdds {
            faults_per_second: w.cfg.faults_per_second,
            classes: (w.cfg.faults.iter().copied())
                .filter(|c| c.applies_to(w.cfg.nodes))
                .collect(),
            max_down: w.cfg.max_down(),
            unavailable: w.unavailable(),
            up,
        }
    }

    /// Whether a fault happens in this step, and if so its class and
    /// member. Draws: one bool (none if no fault may happen), then the
    /// class, then the member.
    fn draw_fault(&mut self) -> Option<(FaultClass, u64)> {
        let odds = self.injection_odds();
        if odds.classes.is_empty() || odds.unavailable >= odds.max_down {
            return None;
        }
        let per_step = (odds.faults_per_second * STEP_MS as f64 / 1000.0).min(1.0);
        if !self.rng.random_bool(per_step) {
            return None;
        }
        // Both choices are drawn, in this order, even if one comes up empty.
        let (Some(&class), Some(&id)) = (
            odds.classes.choose(&mut self.rng),
            odds.up.choose(&mut self.rng),
        ) else {
            return None;
        };
        Some((class, id))
    }

    /// Stops the member now: a process crash, or a power loss (the kill
    /// and its restart draw from the stream themselves).
    pub(super) fn inject_crash(&mut self, now: u64, id: u64, power: bool) {
        let mode = if power { Mode::Power } else { Mode::Process };
        self.record(now, id, false, crash_step(id, None, 1, None, None, mode));
        self.kill(id, power);
    }

    /// Arms a failed file sync or write (a third each), directory sync or
    /// entry change (a sixth each: a rename half the time, since renames
    /// are rarer than creates and removes and carry the store's atomic
    /// file replacements, else a create or a remove) on the member's disk.
    /// A failed rename is aimed, half the time, at the member's next rename
    /// of a snapshot file (the store's one atomic replacement of a whole
    /// file; WAL segment cuts are the other renames, and with small
    /// segments they would take nearly every unaimed one). Draws one
    /// number, and for an entry change which kind; for a rename, whether
    /// it is aimed (from its own stream).
    fn inject_eio(&mut self, now: u64, id: u64) {
        let on = match self.rng.random_range(0..6) {
            0 | 1 => EioOn::Sync,
            2 | 3 => EioOn::Write,
            4 => EioOn::SyncDir,
            _ => *[EioOn::Rename, EioOn::Rename, EioOn::Create, EioOn::Remove]
                .choose(&mut self.rng)
                .unwrap_or(&EioOn::Rename),
        };
        let aimed = on == EioOn::Rename && self.eio_aim_rng.random_bool(0.5);
        let (fault, file, nth) = if aimed {
            let target = TargetedEio {
                op: TargetedOp::Rename,
                nth: 1,
                file: Some(MemberFile::Snapshot),
            };
            let one = Some(Count::N(1));
            (DiskFault::FailNth(target), Some(DamagedFile::Snapshot), one)
        } else {
            (on.fault(), None, None)
        };
        self.record(
            now,
            id,
            true,
            Step::Eio {
                member: id.into(),
                on,
                mode: Mode::Power,
                plan_seed: None,
                file,
                nth,
            },
        );
        let mut w = self.world.lock();
        if let Some(slot) = w.members.get(&id) {
            slot.disk.arm(fault);
        }
        w.event(now, Some(id), format_args!("armed {fault:?}"));
        drop(w);
        self.arm_deadline(id);
    }

    /// Cuts the member off the network for a while, or (one in three, from
    /// the peer cuts' stream) off its peers only (`run/peer_cut.rs`). Draws
    /// its length.
    fn inject_partition(&mut self, now: u64, id: u64) {
        let ms = self.rng.random_range(200..3_000);
        if self.net_fault_cuts_peers_only() {
            self.inject_peer_cut(now, id, ms);
            return;
        }
        self.record(
            now,
            id,
            false,
            Step::Partition {
                member: id.into(),
                ms: Some(ms),
            },
        );
        self.partition(id, now + ms);
    }

    /// Adds a random fault to the recorded schedule, if one is kept.
    pub(super) fn record(&mut self, now: u64, id: u64, armed: bool, step: Step) {
        if let Some(s) = &mut self.schedule {
            if armed {
                s.armed(now, id, step);
            } else {
                s.happened(now, id, step);
            }
        }
    }

    /// Arms a crash at a named point, at the k-th disk operation, or at the
    /// k-th disk operation of the next backend commit.
    ///
    /// Draws the crash kind (only if power faults are on) and which of the
    /// three, even for a member that is gone; then what that one needs.
    pub(crate) fn arm_point(&mut self, id: u64) {
        let now = self.world.now_ms();
        let power = {
            let w = self.world.lock();
            w.cfg.has(FaultClass::Power) || w.cfg.has(FaultClass::Torn)
        };
        let kind = if power && self.rng.random_bool(0.5) {
            CrashKind::Power
        } else {
            CrashKind::Process
        };
        let choice = self.rng.random_range(0..3u32);
        let Some((hook, disk)) = self.fault_handles(id) else {
            return;
        };
        match choice {
            0 => self.arm_named_point(now, id, kind, &hook),
            1 => self.arm_in_next_commit(now, id, kind, &hook),
            _ => self.arm_disk_op(now, id, kind, &disk),
        }
    }

    /// The member's crash hook and disk, if it has a slot.
    fn fault_handles(&self, id: u64) -> Option<(Arc<SimCrashHook>, Arc<SimDisk>)> {
        let w = self.world.lock();
        let slot = w.members.get(&id)?;
        Some((slot.hook.clone(), slot.disk.clone()))
    }

    /// A crash at the 1st to 3rd hit of a named crash point. Draws the
    /// point, then the hit.
    fn arm_named_point(&mut self, now: u64, id: u64, kind: CrashKind, hook: &SimCrashHook) {
        let point = *CRASH_POINTS
            .choose(&mut self.rng)
            .unwrap_or(&CrashPoint::WalSaveBeforeSync);
        let crash = ArmedCrash {
            point,
            hits: self.rng.random_range(1..=3),
            kind,
            after_ops: 0,
        };
        let mut w = self.world.lock();
        hook.arm(crash);
        w.event(
            now,
            Some(id),
            format_args!("armed {kind:?} crash at {point} (hit {})", crash.hits),
        );
        drop(w);
        let step = crash_step(
            id,
            Some(point),
            crash.hits,
            None,
            None,
            Mode::of_crash_kind(kind),
        );
        self.record(now, id, true, step);
    }

    /// A crash at the k-th disk operation of the next backend commit (in
    /// the middle of a redb commit). Draws k.
    fn arm_in_next_commit(&mut self, now: u64, id: u64, kind: CrashKind, hook: &SimCrashHook) {
        let crash = ArmedCrash {
            point: CrashPoint::BackendCommitBefore,
            hits: 1,
            kind,
            after_ops: self.rng.random_range(1..=24),
        };
        let mut w = self.world.lock();
        hook.arm(crash);
        w.event(
            now,
            Some(id),
            format_args!(
                "armed {kind:?} crash at disk op {} of the next backend commit",
                crash.after_ops
            ),
        );
        drop(w);
        let step = crash_step(
            id,
            Some(crash.point),
            1,
            Some(crash.after_ops),
            None,
            Mode::of_crash_kind(kind),
        );
        self.record(now, id, true, step);
    }

    /// A process crash or power loss at the k-th next disk operation,
    /// counted from now, whatever routine the member is in (WAL save or
    /// cut, snapshot, install, compaction, a boot): every window between two
    /// operations is reachable. Draws k.
    fn arm_disk_op(&mut self, now: u64, id: u64, kind: CrashKind, disk: &SimDisk) {
        let k = self.rng.random_range(1..=120);
        let mut w = self.world.lock();
        if let Some(slot) = w.slot_mut(id) {
            slot.armed.disk_crash_power = kind == CrashKind::Power;
        }
        disk.arm(DiskFault::CrashAfterOps(k));
        w.event(
            now,
            Some(id),
            format_args!("armed {kind:?} crash at disk op +{k}"),
        );
        drop(w);
        let step = crash_step(id, None, 1, None, Some(k), Mode::of_crash_kind(kind));
        self.record(now, id, true, step);
    }
}
