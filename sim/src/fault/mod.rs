//! The fault model, in one place.
//!
//! # The fault contract
//!
//! Faults the store must **survive** (after a restart, the member recovers
//! and the cluster converges with nothing acknowledged lost):
//! - *process crash*, at any moment: the member's disk is frozen at that
//!   instant, then its node is dropped, so no destructor of the store
//!   writes after its process died (redb gets no clean close and repairs
//!   at the next open); tasks and memory are gone, the page cache
//!   ([`replica::disk::MemDisk`]'s volatile image) survives;
//! - *power loss*, at any moment: every unsynced write and unsynced directory
//!   change may be lost; the unsynced writes of a file that do survive may
//!   be any subset of them (a disk reorders until the fsync), and a surviving
//!   write may be torn at a 512-byte sector boundary of its file; each
//!   unsynced directory entry survives or not on its own. Synced data is intact
//!   (fsync-then-durable, powersafe overwrite, as redb's design assumes);
//! - *crash points*: a process crash or power loss at a named point in the
//!   store, or at the *k*-th disk operation after a trigger (so in the middle
//!   of a redb commit, between its writes and its sync);
//! - *I/O errors*: a failed `sync`, `write`, directory sync, create, rename
//!   or remove (EIO). The store must stop (fail-stop: never carry on after a
//!   failed fsync, nor count on a name whose directory sync failed); a
//!   failed file sync drops that file's dirty pages, as Linux does, and the
//!   member's restart after an EIO is preceded by a power loss of its disk.
//!   Errors on entry changes (the next rename half the time, else the next
//!   create or remove; scenario `eio` with `on = "create" | "rename" | "remove"`, or
//!   `"meta"` for whichever comes first: nothing changes) are part of the
//!   `eio` class, not a class of their own: they have the same contract
//!   (stop), the same bound (one armed fault per member, a minority down,
//!   forgotten after 3 s) and the same restart as every other EIO. A store
//!   that takes a failed rename of its new snapshot file for done is the
//!   bug they catch (`snapshot-rename-error-ignored`). A member still
//!   running after an injected EIO (it took the error for harmless, or
//!   carried on over it) loses power within a second in the random run
//!   (`run/after_eio.rs`, its own stream): errors on a failing disk come
//!   in bursts and take the host down, and the reboot reads what the
//!   member left on disk when it carried on. It stays within the budget of members down;
//!   the store may assume nothing more of it than of any crash;
//! - *network faults*: latency jitter, packet loss, partitions of one member,
//!   and *peer-only partitions* (scenario step `isolate` with `ms`; one in
//!   three random `net` faults, from its own stream): the member loses every
//!   link to the other members for 0.2 to 3 s while its clients still reach
//!   it, so it may accept proposals it cannot commit and be asked for reads
//!   it cannot confirm. The store may assume nothing about when a cut ends;
//!   it must not answer a linearizable read it has not confirmed with a
//!   quorum since it was asked. The bound: a cut member counts as down in
//!   the budget (a minority at a time), and every cut heals before the
//!   random phase ends, so a fully connected majority can always elect a
//!   leader and recover (`run/peer_cut.rs`).
//!
//! Faults the store must only **detect**: *bit rot* ([`FaultClass::Bitrot`],
//! scenario step `corrupt`): one byte of a durable WAL segment, snapshot or
//! backend file changes on the platter (and in the page cache), and the
//! member's process crashes so that its boot reads it. The store must not
//! serve or replicate the damaged data: its CRCs (WAL, snapshots) and redb's
//! page checksums must make it fail-stop, or it must repair from what is
//! intact (an older snapshot, the WAL). A damaged member that cannot boot
//! is *quarantined*: it stays down, and that is not a violation; booting
//! past the damage into a state its peers do not share is (convergence,
//! restart equivalence or the durability check after its recovery catches
//! it), and so is a panic. The bound: at most
//! one member per run is ever damaged, and only when no other member is
//! down, so a majority stays free of such faults (a damage fault drawn in
//! the run's last quarter while a member is down, cut off or armed waits
//! up to 3 s for that, `run/aimed_damage.rs`). The final record of the
//! newest WAL segment is never damaged: a flip there looks exactly like a
//! torn write and is cut at boot (as etcd does), silently dropping an
//! entry the member had acknowledged. That is a limit of the WAL format (it
//! has no way to tell the two apart), not a fault to survive; every
//! earlier record has a valid frame after it, which no torn write leaves,
//! so its damage must be reported. Half of the random WAL bit rot is
//! *aimed*: it waits (3 s at most, without holding the one-member budget)
//! until a member's newest segment holds the value of a put that its boot
//! would replay into the backend and then show (written after the
//! backend's latest sync, committed by a hard state there, the last put of
//! its key), and flips a byte of that value. A flip there still decodes,
//! so only the CRC can tell; most flips elsewhere break the decoding of
//! the record, entry or request, and such values exist only between a WAL
//! save and the backend's next commit, so an unaimed flip rarely lands in
//! one (`wal-crc-unchecked`, a reader that skips the CRC check, is caught
//! mostly by the aimed ones). The aim changes where the byte is, not what
//! the store may assume. *Latent sector errors*
//! ([`FaultClass::ReadError`], scenario step `read_error`): reads of one sector of such a file fail with EIO from
//! then on (a platter defect: it outlives restarts), and the process
//! crashes so the boot reads it. Same bound and same quarantine as bit rot;
//! a store that takes the read error for the end of its data instead of
//! failing is the bug this catches. In the WAL the random run puts the bad
//! sector where bit rot's unaimed flips go (among the records written since
//! the backend's latest sync): only there does a log cut short lose what a
//! boot shows. When the member has no such records, and half the time when
//! it has, the error is aimed instead (`run/aimed_damage.rs`): it waits, as
//! aimed bit rot does, for a member with committed puts past its backend's
//! sync and makes the first whole sector past that sync unreadable (so the
//! hard state that committed the backend's entries stays readable, and a
//! boot that stops at the error loses entries the member applied).
//! *Misdirected writes*
//! ([`FaultClass::Misdirect`], scenario step `misdirect`): the member's next
//! write to a live WAL segment or to its backend file lands `shift` bytes
//! past where it was aimed, in the same file (1 to 8 sectors in the WAL, 1
//! to 4 pages in the backend); the aimed-at bytes keep what they held, the
//! bytes it lands on are overwritten, and once it has landed the member's
//! process crashes so its boot reads the damage. Same bound and quarantine
//! as bit rot (at most one damaged member per run, every other member up
//! and nothing armed, three members or more, so a fully connected majority
//! never holds a misdirected write and can always recover). The shift is
//! always forward, and that is part of the bound: in the WAL it leaves a
//! zero length word followed by data, which no torn write leaves, so the
//! torn-tail rule can always call it corruption. A backward shift could
//! overwrite the segment's last synced records with a record that fails its
//! CRC and has nothing after it, which is byte for byte a torn tail (the
//! final-record limit of bit rot). In the backend, redb's page checksums
//! (verified at the unclean open the crash causes) must find the stale page
//! and roll back to the previous commit or refuse to open. A store that
//! takes a zero length word for the end of its log (preallocated space) is
//! the bug this catches (`wal-zero-word-as-end`). Lost fsyncs are not
//! injected (the offline corruption suite, `tests/corrupt.rs`, covers their
//! detection).
//!
//! *A full disk* ([`FaultClass::Enospc`], scenario step `disk_full`): the
//! member's disk gets a capacity a little above what it holds; a write or
//! `set_len` that would grow past it fails with `StorageFull`. The store
//! must stop cleanly (fail-stop, as after EIO) or refuse the write, never
//! treat the write as done; the restart gives it a bigger disk (no
//! capacity), and it must recover with nothing acknowledged lost. Bounded
//! like the other armed faults: one member at a time, forgotten after 3 s.
//!
//! Every fault is drawn from the run's seeded RNG and bounded: at most a
//! minority of members is down at a time, and every fault ends before the
//! quiesce phase. The one exception is a *cluster power cut*
//! ([`FaultClass::ClusterPower`], scenario step `power_off_all`): every
//! member, or a majority, loses power at the same virtual instant and
//! restarts. The store may assume only what a quorum had synced: every
//! acknowledged write was fsynced on a quorum before its reply, so it must
//! survive (the shape of etcd's lost-committed-write reports after a
//! simultaneous power loss). The random run draws it rarely: a quarter of
//! the faults of its class, about one in 28 faults. A power loss's choices come from its own stream, seeded by
//! one draw from the fault stream ([`PowerPlan`]), so a recorded run's
//! schedule can replay it exactly. With torn writes on, a random power loss
//! keeps a random subset of the unsynced writes, some torn
//! ([`PowerLossKind::Reorder`], half), keeps them all and tears each file's
//! last one ([`PowerLossKind::TearTail`], a quarter: the shape of a torn
//! WAL tail), or loses them all ([`PowerLossKind::Lose`], a quarter);
//! without, it loses them all. Between two of its steps a member has
//! synced everything it wrote, so a power loss at a random instant rarely
//! finds a write to tear: three torn-write faults in four (and one power
//! fault in four with torn writes on) are armed instead at the member's
//! next sync of a WAL segment, the backend or any file holding an unsynced
//! write across a sector boundary ([`DiskFault::CrashAtTearableSync`],
//! scenario `crash` with `at = "tearable_sync[.wal|.backend|.snapshot]"`),
//! and keep every write but tear the last, or keep a random subset; the
//! bound is every armed fault's (forgotten after 3 s). A write tears only at a 512-byte sector
//! boundary of its file (a disk persists whole sectors), and each unsynced
//! directory entry (created, renamed, removed) survives or not on its own.
//!
//! **Disk time** ([`FaultClass::Slow`], scenario step `slow`, scenario field
//! `disk_time`). With the class, every disk operation costs seeded virtual
//! time ([`DiskLatency`]: one model per run, a sync 0.2 to 3 ms, a write 5
//! to 30 µs, a read 2 to 20 µs, a create, rename or remove 20 to 100 µs, plus
//! 1 ns per byte moved, each times a jitter of 0.5 to 1.5), and the random
//! run makes one member's disk at a time 10 to 100 times slower for 0.5 to
//! 5 s (ending before the random phase does). With `net` on, half of those
//! episodes are instead a *host in trouble* (a compound fault,
//! `run/peer_cut.rs`): the disk 100 to 1000 times slower and, at the same
//! instant, the member cut off its peers (clients still reach it) for 2 to
//! 5 s and its process paused for half of that to all of it
//! (`run/pause.rs`: no step, no tick, its inbox fills, and it ticks once
//! when it resumes), aimed at the leader right after it answered a
//! linearizable read (armed for 3 s at most), within the budget of members
//! cut off. A slow
//! episode stalls a step at most until the episode ends: operations charged
//! in it cost the rest of the episode plus their normal cost at most (so a
//! snapshot's many syncs cannot put a member to sleep for minutes). The
//! model: the store is
//! synchronous, so the operations of a member's step take effect on the
//! disk at the instant it steps; what they cost accumulates on its
//! `SimDisk`, and the member's task sleeps that long in virtual time
//! before its outputs (raft messages, client replies) leave and before it
//! steps or ticks again (`cluster/member.rs`; a boot's operations are slept
//! off before the member joins the network). So a slow disk delays
//! everything a member says and does next, ticks and messages of the other
//! members interleave with its Ready batches, and a crash (its own, or a
//! peer's) can land while its outputs are unsent. The limit: a crash in
//! that window finds every operation of the step done, synced data durable
//! (it is a crash after the step's last operation, before its outputs),
//! never one half-way through a slow fsync; crash points and crashes at the
//! k-th disk operation cover the windows between operations. A slow disk
//! is not a failure: the store may assume nothing about disk speed, nor
//! that its raft ticks keep time (a stalled member ticks once when it
//! wakes; `lease-read-timed-by-ticks` is a store that does), and the
//! invariants are the same.
//!
//! **Cluster sizes.** A cluster has 1 to 7 members, even sizes included.
//! With *n* members a minority, `(n - 1) / 2`, may be down at once
//! ([`quorum`] stays up). For *n* = 1 and *n* = 2 that minority is empty,
//! which would mean no faults at all, so those clusters may have one member
//! down at a time instead: the cluster is unavailable until it returns
//! (requests go unanswered, which is allowed), safety must still hold and
//! nothing acknowledged may be lost; the quiesce phase restarts it. A
//! one-member cluster commits alone (its own fsync is the quorum), so every
//! acknowledged write is on its one disk. The random run injects no
//! partitions into a one-member cluster (with no peer, a partition only
//! cuts off its clients and reaches no store code path; the class is left
//! out of its draw, [`FaultClass::applies_to`]); a scenario may still
//! `partition` or `isolate` its member. A cluster power cut of a one-member
//! cluster is just a power loss of that member. Bit rot is injected only
//! where quarantining the damaged member leaves a quorum undamaged and able
//! to run (three members or more), so a random run always ends with a live
//! quorum: a quarantined member is not counted in convergence
//! (`run/verdict.rs`). A scenario that damages the only member of a
//! one-member cluster and gets it quarantined cannot quiesce, and fails.

mod hook;
mod latency;
mod power;
mod sim_disk;

pub use hook::{ArmedCrash, CrashKind, SimCrashHook};
pub use latency::DiskLatency;
pub use power::{PowerLossKind, PowerPlan, SECTOR, SeededPowerLoss, sector_cuts};
pub use sim_disk::{
    DiskFault, DiskOp, EntryOp, MemberFile, Misdirection, SimDisk, SyncObserver, TargetedEio,
    TargetedOp, WriteTarget,
};

use std::fmt;
use std::str::FromStr;

/// A class of fault a run may inject.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FaultClass {
    /// Process crash (kill and restart).
    Crash,
    /// Power loss dropping unsynced state.
    Power,
    /// Power loss that also keeps seeded subsets of unsynced writes and tears
    /// the last one at a sector boundary of its file.
    Torn,
    /// fsync / write errors.
    Eio,
    /// Partitions, latency and packet loss.
    Net,
    /// Crashes at named crash points and at the k-th disk operation.
    Point,
    /// A power cut of the whole cluster, or of a majority, at one instant
    /// (rare: a data-centre power failure).
    ClusterPower,
    /// Silent corruption on the platter (a byte of a WAL segment, snapshot
    /// or backend file changes), then a process crash so the boot reads it.
    Bitrot,
    /// The disk fills up: writes past a seeded capacity fail with ENOSPC.
    Enospc,
    /// A latent sector error: reads of one sector of a WAL segment,
    /// snapshot or backend file fail with EIO, then a process crash so the
    /// boot reads it.
    ReadError,
    /// A misdirected write: the next write to a WAL segment or the backend
    /// file lands at a wrong offset in the same file, then a process crash
    /// so the boot reads it.
    Misdirect,
    /// Disk time: every operation costs seeded virtual time, and one
    /// member's disk at a time becomes 10 to 100 times slower for a while.
    Slow,
}

/// The members that make a quorum in a cluster of `nodes` voters.
pub fn quorum(nodes: u64) -> u64 {
    nodes / 2 + 1
}

impl FaultClass {
    /// Whether the random run draws this class for a cluster of `nodes`
    /// members (see "Cluster sizes" above): no partitions of a lone member,
    /// and bit rot only if the member it may quarantine leaves a quorum.
    pub fn applies_to(self, nodes: u64) -> bool {
        match self {
            FaultClass::Net => nodes >= 2,
            FaultClass::Bitrot | FaultClass::ReadError | FaultClass::Misdirect => {
                nodes.saturating_sub(1) >= quorum(nodes)
            }
            _ => true,
        }
    }

    pub const ALL: [FaultClass; 12] = [
        FaultClass::Crash,
        FaultClass::Power,
        FaultClass::Torn,
        FaultClass::Eio,
        FaultClass::Net,
        FaultClass::Point,
        FaultClass::ClusterPower,
        FaultClass::Bitrot,
        FaultClass::Enospc,
        FaultClass::ReadError,
        FaultClass::Misdirect,
        FaultClass::Slow,
    ];

    pub fn name(self) -> &'static str {
        match self {
            FaultClass::Crash => "crash",
            FaultClass::Power => "power",
            FaultClass::Torn => "torn",
            FaultClass::Eio => "eio",
            FaultClass::Net => "net",
            FaultClass::Point => "point",
            FaultClass::ClusterPower => "cluster-power",
            FaultClass::Bitrot => "bitrot",
            FaultClass::Enospc => "enospc",
            FaultClass::ReadError => "read-error",
            FaultClass::Misdirect => "misdirect",
            FaultClass::Slow => "slow",
        }
    }
}

impl fmt::Display for FaultClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for FaultClass {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        FaultClass::ALL
            .into_iter()
            .find(|c| c.name() == s)
            .ok_or_else(|| {
                let names: Vec<_> = FaultClass::ALL.iter().map(|c| c.name()).collect();
                format!(
                    "unknown fault class {s:?}; expected one of {}",
                    names.join(", ")
                )
            })
    }
}
