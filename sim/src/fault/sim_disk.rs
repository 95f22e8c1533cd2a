//! The simulated disk of one member: a [`MemDisk`] that outlives the member's
//! process, plus the faults the run arms on it.
//!
//! Every operation passes one gate: a frozen disk (the member crashed at a
//! crash point or at its k-th operation) refuses everything, so nothing the
//! dead process would still have done can land; an armed operation countdown
//! freezes the disk at the k-th operation, an armed tearable-sync crash at
//! the next `sync` of a file that holds an unsynced write across a sector
//! boundary (so the power loss that follows has a write to tear); an armed
//! EIO fails the next
//! `sync` or `write`. A failed file `sync` also drops that file's unsynced
//! writes, as Linux does: a store that retries the fsync gets a success
//! that persisted nothing. An armed misdirection sends the next write to a
//! WAL segment or the backend file `shift` bytes past where it was aimed.
//! With a [`DiskLatency`], every operation that passes also costs virtual
//! time, which the member's task sleeps off.

use super::latency::{Cost, DiskLatency};
use super::power::{SECTOR, sector_cuts};
use crate::coverage::ProbeHits;
use replica::disk::{Disk, MemDisk, PendingOp, PowerLossPlan};
use replica::member::{BACKEND_FILE, WAL_DIR};
use replica::probe::Probe;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// The files a misdirected write can hit: those the store overwrites or
/// appends to in place (snapshots are written whole under a temporary name).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteTarget {
    /// A live WAL segment (`*.wal`).
    Wal,
    /// The backend (redb) file.
    Backend,
}

/// The directory entry changes an armed EIO may fail.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EntryOp {
    /// Whichever comes next: create, rename or remove.
    Any,
    /// `create` or `create_dir_all`.
    Create,
    Rename,
    Remove,
}

/// Which write goes astray, and how far.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Misdirection {
    pub target: WriteTarget,
    /// The `nth` next write to a `target` file (1 = the next one).
    pub nth: u32,
    /// How many bytes past its offset it lands.
    pub shift: u64,
}

impl WriteTarget {
    fn matches(self, path: &Path) -> bool {
        match self {
            WriteTarget::Wal => {
                path.starts_with(WAL_DIR) && path.extension().is_some_and(|e| e == "wal")
            }
            WriteTarget::Backend => path == Path::new(BACKEND_FILE),
        }
    }
}

/// An I/O fault armed on a disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DiskFault {
    /// Freeze (crash) at the k-th operation from now (1 = the next one).
    CrashAfterOps(u64),
    /// Fail the next `sync`/`sync_dir` with EIO.
    FailNextSync,
    /// Fail the next `write_at`/`set_len` with EIO.
    FailNextWrite,
    /// Freeze (crash) at the next `sync`/`sync_dir`, before it lands.
    CrashAtNextSync,
    /// Fail the next `sync_dir` with EIO (its entry changes stay unsynced).
    FailNextSyncDir,
    /// Fail the next directory entry change of this kind with EIO (nothing
    /// changes).
    FailNextEntry(EntryOp),
    /// The disk holds at most this many bytes: a write or `set_len` that
    /// would grow past it fails with `StorageFull` (ENOSPC).
    Capacity(u64),
    /// A write to a `target` file lands `shift` bytes past its offset, in
    /// the same file: the aimed-at bytes keep what they held.
    Misdirect(Misdirection),
    /// Fail the n-th sync (or write, or rename) from now, counting only
    /// those of one kind of file if it names one, with EIO.
    FailNth(TargetedEio),
    /// Freeze (crash) at the next `sync` of a file (of this kind, if it
    /// names one) whose unsynced writes include one that crosses a sector
    /// boundary of the file, before the sync lands: a power loss there has
    /// a write to tear.
    CrashAtTearableSync(Option<MemberFile>),
}

/// An EIO aimed at the n-th sync, write or rename, of any file or of one
/// kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TargetedEio {
    pub op: TargetedOp,
    /// 1 = the next matching operation.
    pub nth: u64,
    pub file: Option<MemberFile>,
}

/// The operation a [`TargetedEio`] fails.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TargetedOp {
    /// A file `sync`.
    Sync,
    /// A `write_at` or `set_len`.
    Write,
    /// A `rename`, counted by the file renamed (its old name).
    Rename,
}

/// The kinds of file a member keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemberFile {
    /// A WAL segment.
    Wal,
    /// A v2 snapshot file (or a received backend waiting for its marker).
    Snapshot,
    /// The backend database.
    Backend,
}

impl MemberFile {
    /// Whether `path` is a file of this kind.
    pub fn holds(self, path: &Path) -> bool {
        use replica::member::{BACKEND_FILE, SNAP_DIR, WAL_DIR};
        match self {
            MemberFile::Wal => path.starts_with(WAL_DIR),
            MemberFile::Backend => path == Path::new(BACKEND_FILE),
            MemberFile::Snapshot => path.starts_with(SNAP_DIR) && path != Path::new(BACKEND_FILE),
        }
    }
}

#[derive(Debug, Default)]
struct Gate {
    frozen: bool,
    countdown: Option<u64>,
    fail_next_sync: bool,
    crash_at_next_sync: bool,
    fail_next_sync_dir: bool,
    fail_next_entry: Option<EntryOp>,
    capacity: Option<u64>,
    /// A write failed for lack of space since the last restart.
    full_returned: bool,
    fail_next_write: bool,
    /// An EIO aimed at the n-th matching sync or write (`nth` counts down).
    targeted: Option<TargetedEio>,
    /// An EIO was returned since the last restart (the member's failure is
    /// then expected, not a bug).
    eio_returned: bool,
    misdirect: Option<Misdirection>,
    /// A crash armed at the next sync with a write to tear (of files of
    /// one kind, or of any file).
    crash_at_tearable_sync: Option<Option<MemberFile>>,
    /// That crash fired since the last restart.
    tearable_sync_crashed: bool,
    /// The end of the latest write to a WAL segment (path, end offset).
    last_wal_write: Option<(PathBuf, u64)>,
    /// `last_wal_write` as it was at the latest sync of the backend file:
    /// WAL records past it hold entries the backend had not committed then.
    wal_end_at_backend_sync: Option<(PathBuf, u64)>,
    /// A misdirected write landed; what it did (taken by the supervisor).
    misdirected: Option<String>,
    ops: u64,
    /// Virtual time the operations cost (`None`: they cost nothing).
    latency: Option<DiskLatency>,
    /// Inside a redb commit (between `backend.commit.before` and
    /// `backend.commit.after`): how far the backend file has got.
    commit: Option<CommitPhase>,
}

/// How far a redb commit has got, as the backend file's operations show:
/// redb buffers the commit's pages and header (offset 0), writes them out,
/// then fsyncs the file once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum CommitPhase {
    /// No header write yet (page writes may have landed).
    BeforeHeader,
    /// The header write landed.
    HeaderWritten,
    /// The backend file was fsynced.
    Synced,
}

impl CommitPhase {
    /// The probe of a crash at an operation of kind `op` in this phase.
    fn crash_probe(self, op: OpKind) -> Probe {
        match (self, op) {
            (CommitPhase::BeforeHeader, _) => Probe::RedbCrashBeforeHeader,
            (CommitPhase::HeaderWritten, OpKind::Sync | OpKind::SyncDir) => Probe::RedbCrashAtSync,
            (CommitPhase::HeaderWritten, _) => Probe::RedbCrashBetweenHeaderAndPages,
            (CommitPhase::Synced, _) => Probe::RedbCrashAfterSync,
        }
    }
}

/// Sees a member's disk just before each file `sync` (crash-state
/// exploration forks it there). It must not touch the disk.
pub trait SyncObserver: Send + Sync + std::fmt::Debug {
    fn before_sync(&self, disk: &MemDisk, path: &Path);

    /// Sees the disk just before each operation that changes it (create,
    /// write, set_len, rename, remove, sync, sync_dir) and that the gate let
    /// through: a process crash there leaves the disk as it is now.
    fn before_op(&self, _disk: &MemDisk, _op: DiskOp, _path: &Path) {}
}

/// An operation that changes a disk, as [`SyncObserver::before_op`] sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DiskOp {
    Create,
    CreateDir,
    Write,
    SetLen,
    Rename,
    Remove,
    Sync,
    SyncDir,
}

impl DiskOp {
    pub fn name(self) -> &'static str {
        match self {
            DiskOp::Create => "create",
            DiskOp::CreateDir => "create_dir",
            DiskOp::Write => "write",
            DiskOp::SetLen => "set_len",
            DiskOp::Rename => "rename",
            DiskOp::Remove => "remove",
            DiskOp::Sync => "sync",
            DiskOp::SyncDir => "sync_dir",
        }
    }

    /// Whether it leaves what a process reads unchanged (a crash just after
    /// it is a crash just before it).
    pub fn keeps_view(self) -> bool {
        matches!(self, DiskOp::Sync | DiskOp::SyncDir)
    }
}

/// One member's disk.
#[derive(Debug)]
pub struct SimDisk {
    mem: MemDisk,
    gate: Mutex<Gate>,
    /// Latent sector errors: (file, sector) pairs whose reads fail with EIO.
    /// A platter defect: it outlives restarts.
    bad_sectors: Mutex<Vec<(PathBuf, u64)>>,
    /// Where `sync`s are captured for crash-state exploration (`sim
    /// explore`); `None` in normal runs.
    capture: Mutex<Option<Arc<dyn SyncObserver>>>,
    /// Coverage probes this disk observed (crashes inside a redb commit).
    probes: Mutex<ProbeHits>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum OpKind {
    Read,
    Write,
    Sync,
    /// `sync_dir`: a sync for `CrashAtNextSync` and `FailNextSync`, and the
    /// target of `FailNextSyncDir`.
    SyncDir,
    /// A directory entry change: create, create_dir_all, rename, remove.
    Entry(EntryOp),
    /// exists, len: a read for the gate, free of disk time (the inode is
    /// in memory).
    Stat,
}

impl OpKind {
    fn cost(self) -> Option<Cost> {
        match self {
            OpKind::Read => Some(Cost::Read),
            OpKind::Write => Some(Cost::Write),
            OpKind::Sync => Some(Cost::Sync),
            OpKind::SyncDir => Some(Cost::SyncDir),
            OpKind::Entry(_) => Some(Cost::Meta),
            OpKind::Stat => None,
        }
    }
}

fn crashed() -> io::Error {
    io::Error::other("simulated crash: the member's disk is frozen")
}

fn eio(what: &str) -> io::Error {
    io::Error::other(format!("simulated EIO on {what}"))
}

impl SimDisk {
    pub fn new() -> Arc<SimDisk> {
        SimDisk::with_mem(MemDisk::new())
    }

    /// A disk that starts with `mem`'s files (`sim explore --cluster`
    /// boots a cluster from captured images).
    pub fn with_mem(mem: MemDisk) -> Arc<SimDisk> {
        Arc::new(SimDisk {
            mem,
            gate: Mutex::new(Gate::default()),
            bad_sectors: Mutex::new(Vec::new()),
            capture: Mutex::new(None),
            probes: Mutex::new(ProbeHits::default()),
        })
    }

    fn gate(&self) -> MutexGuard<'_, Gate> {
        self.gate.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The gate of an operation moving `bytes`: a frozen disk refuses it,
    /// an armed fault may fail it, and a disk with latency charges it.
    fn pass(&self, kind: OpKind, bytes: usize) -> io::Result<()> {
        let mut g = self.gate();
        if g.frozen {
            return Err(crashed());
        }
        g.ops += 1;
        if let (Some(latency), Some(cost)) = (g.latency.as_mut(), kind.cost()) {
            latency.charge(cost, bytes);
        }
        if let Some(left) = g.countdown.as_mut() {
            *left = left.saturating_sub(1);
            if *left == 0 {
                g.countdown = None;
                g.frozen = true;
                self.probe_commit_crash(&mut g, kind);
                return Err(crashed());
            }
        }
        let is_sync = matches!(kind, OpKind::Sync | OpKind::SyncDir);
        match kind {
            _ if is_sync && g.crash_at_next_sync => {
                g.crash_at_next_sync = false;
                g.frozen = true;
                self.probe_commit_crash(&mut g, kind);
                Err(crashed())
            }
            OpKind::SyncDir if g.fail_next_sync_dir => {
                g.fail_next_sync_dir = false;
                g.eio_returned = true;
                Err(eio("sync_dir"))
            }
            OpKind::Entry(op)
                if g.fail_next_entry
                    .is_some_and(|f| f == EntryOp::Any || f == op) =>
            {
                g.fail_next_entry = None;
                g.eio_returned = true;
                Err(eio("a directory entry change"))
            }
            _ if is_sync && g.fail_next_sync => {
                g.fail_next_sync = false;
                g.eio_returned = true;
                Err(eio("sync"))
            }
            OpKind::Write if g.fail_next_write => {
                g.fail_next_write = false;
                g.eio_returned = true;
                Err(eio("write"))
            }
            _ => Ok(()),
        }
    }

    /// A crash froze the disk at an operation of kind `op`: inside a redb
    /// commit, that is a probe of the commit's phase.
    fn probe_commit_crash(&self, g: &mut Gate, op: OpKind) {
        if let Some(phase) = g.commit.take() {
            let probe = phase.crash_probe(op);
            self.probes
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .hit(probe.name());
        }
    }

    /// A redb commit starts (`true`) or returned (`false`); the crash hook
    /// tells the disk, which follows the commit's phase from then on.
    pub fn commit_window(&self, open: bool) {
        self.gate().commit = open.then_some(CommitPhase::BeforeHeader);
    }

    /// Follows an open commit window past a backend-file operation that
    /// landed.
    fn advance_commit(&self, path: &Path, op: OpKind, offset: u64) {
        let mut g = self.gate();
        let Some(phase) = g.commit else { return };
        if path != Path::new(BACKEND_FILE) {
            return;
        }
        g.commit = Some(match (phase, op) {
            (_, OpKind::Sync) => CommitPhase::Synced,
            (CommitPhase::BeforeHeader, OpKind::Write) if offset == 0 => CommitPhase::HeaderWritten,
            (phase, _) => phase,
        });
    }

    /// Shows the disk to the capture sink, if any, before a changing
    /// operation that passed the gate.
    fn observe(&self, op: DiskOp, path: &Path) {
        if let Some(sink) = self
            .capture
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
        {
            sink.before_op(&self.mem, op, path);
        }
    }

    /// The probes this disk observed over the run.
    pub fn probe_hits(&self) -> ProbeHits {
        self.probes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// A sync, write or rename of `path` that passed the gate: fails it if
    /// it is the one a targeted EIO waits for.
    fn pass_targeted(&self, op: TargetedOp, path: &Path) -> io::Result<()> {
        let mut g = self.gate();
        let Some(t) = g.targeted.as_mut() else {
            return Ok(());
        };
        if t.op != op || t.file.is_some_and(|f| !f.holds(path)) {
            return Ok(());
        }
        t.nth = t.nth.saturating_sub(1);
        if t.nth > 0 {
            return Ok(());
        }
        g.targeted = None;
        g.eio_returned = true;
        Err(eio(match op {
            TargetedOp::Sync => "targeted sync",
            TargetedOp::Write => "targeted write",
            TargetedOp::Rename => "targeted rename",
        }))
    }

    /// Arms a fault.
    pub fn arm(&self, fault: DiskFault) {
        let mut g = self.gate();
        match fault {
            DiskFault::CrashAfterOps(k) => g.countdown = Some(k.max(1)),
            DiskFault::FailNextSync => g.fail_next_sync = true,
            DiskFault::FailNextWrite => g.fail_next_write = true,
            DiskFault::CrashAtNextSync => g.crash_at_next_sync = true,
            DiskFault::FailNextSyncDir => g.fail_next_sync_dir = true,
            DiskFault::FailNextEntry(op) => g.fail_next_entry = Some(op),
            DiskFault::Capacity(bytes) => g.capacity = Some(bytes),
            DiskFault::Misdirect(m) => g.misdirect = Some(m),
            DiskFault::FailNth(t) => g.targeted = Some(t),
            DiskFault::CrashAtTearableSync(file) => g.crash_at_tearable_sync = Some(file),
        }
    }

    /// Forgets armed faults that have not fired (the disk stays frozen if
    /// it is).
    pub fn disarm(&self) {
        let mut g = self.gate();
        g.countdown = None;
        g.fail_next_sync = false;
        g.fail_next_write = false;
        g.crash_at_next_sync = false;
        g.fail_next_sync_dir = false;
        g.fail_next_entry = None;
        g.capacity = None;
        g.misdirect = None;
        g.targeted = None;
        g.crash_at_tearable_sync = None;
    }

    /// Whether a fault is armed and has not fired yet.
    pub fn is_armed(&self) -> bool {
        let g = self.gate();
        g.countdown.is_some()
            || g.fail_next_sync
            || g.fail_next_write
            || g.crash_at_next_sync
            || g.fail_next_sync_dir
            || g.fail_next_entry.is_some()
            || g.capacity.is_some()
            || g.misdirect.is_some()
            || g.targeted.is_some()
            || g.crash_at_tearable_sync.is_some()
    }

    /// Where the WAL ended (segment, offset) when the backend file was
    /// last synced in this process: the records after it carry entries the
    /// backend did not hold then, which a boot replays into it.
    pub fn wal_end_at_backend_sync(&self) -> Option<(PathBuf, u64)> {
        self.gate().wal_end_at_backend_sync.clone()
    }

    /// Follows the WAL's end and the backend's syncs, for
    /// [`SimDisk::wal_end_at_backend_sync`].
    fn note_write_or_sync(&self, path: &Path, sync: bool, end: u64) {
        let mut g = self.gate();
        if sync && path == Path::new(BACKEND_FILE) {
            g.wal_end_at_backend_sync = g.last_wal_write.clone();
        } else if !sync && WriteTarget::Wal.matches(path) {
            g.last_wal_write = Some((path.to_path_buf(), end));
        }
    }

    /// Whether the disk froze at a sync with a write to tear (an armed
    /// [`DiskFault::CrashAtTearableSync`]) since the last restart.
    pub fn crashed_at_tearable_sync(&self) -> bool {
        self.gate().tearable_sync_crashed
    }

    /// Freezes the disk if a crash is armed at a sync with a write to tear
    /// and `path` is such a file: one of its unsynced writes crosses a
    /// sector boundary of the file.
    fn crash_if_tearable(&self, path: &Path) -> io::Result<()> {
        let mut g = self.gate();
        let Some(kind) = g.crash_at_tearable_sync else {
            return Ok(());
        };
        if g.frozen || kind.is_some_and(|k| !k.holds(path)) || !self.has_tearable_write(path) {
            return Ok(());
        }
        g.crash_at_tearable_sync = None;
        g.tearable_sync_crashed = true;
        g.frozen = true;
        self.probe_commit_crash(&mut g, OpKind::Sync);
        Err(crashed())
    }

    /// Whether one of `path`'s unsynced writes crosses a sector boundary of
    /// the file (a power loss can tear it).
    fn has_tearable_write(&self, path: &Path) -> bool {
        self.mem.pending_ops(path).is_ok_and(|ops| {
            ops.iter().any(|op| match op {
                PendingOp::Write { offset, data } => !sector_cuts(*offset, data.len()).is_empty(),
                PendingOp::SetLen(_) => false,
            })
        })
    }

    /// Whether a misdirected write is armed and has not landed yet.
    pub fn misdirect_armed(&self) -> bool {
        self.gate().misdirect.is_some()
    }

    /// Where a write of `len` bytes to `path` aimed at `offset` lands: at
    /// `offset`, or `shift` bytes further if it is the `nth` write to the
    /// file an armed misdirection targets (which then fires, once).
    fn aim(&self, path: &Path, offset: u64, len: usize) -> u64 {
        let mut g = self.gate();
        let Some(m) = g.misdirect.as_mut().filter(|m| m.target.matches(path)) else {
            return offset;
        };
        if m.nth > 1 {
            m.nth -= 1;
            return offset;
        }
        let landed = offset + m.shift;
        g.misdirect = None;
        g.misdirected = Some(format!(
            "{} write of {len} bytes aimed at offset {offset} landed at {landed}",
            path.display()
        ));
        landed
    }

    /// What a misdirected write that landed did, once.
    pub fn take_misdirected(&self) -> Option<String> {
        self.gate().misdirected.take()
    }

    /// Makes every operation cost virtual time, as `latency` says.
    pub fn set_latency(&self, latency: DiskLatency) {
        self.gate().latency = Some(latency);
    }

    /// A `slow` episode: operations cost `factor` times more until
    /// `until_ms` (no effect on a disk without latency).
    pub fn slow_down(&self, factor: u64, until_ms: u64) {
        if let Some(latency) = self.gate().latency.as_mut() {
            latency.slow_down(factor, until_ms);
        }
    }

    /// Whether operations cost virtual time.
    pub fn has_latency(&self) -> bool {
        self.gate().latency.is_some()
    }

    /// Whether a slow episode is on.
    pub fn is_slow(&self) -> bool {
        self.gate().latency.as_ref().is_some_and(|l| l.is_slow())
    }

    /// The virtual time the operations since the last call cost, for the
    /// member's task to sleep off (ends a slow episode past `now_ms`).
    pub fn take_owed(&self, now_ms: u64) -> Duration {
        self.gate()
            .latency
            .as_mut()
            .map_or(Duration::ZERO, |l| l.take_owed(now_ms))
    }

    /// Stops every further operation (the process died here).
    pub fn freeze(&self) {
        let mut g = self.gate();
        g.frozen = true;
        g.commit = None;
    }

    pub fn is_frozen(&self) -> bool {
        self.gate().frozen
    }

    /// Makes every read that touches `sector` (512-byte, counted from the
    /// file's start) of `path` fail with EIO, from now on.
    pub fn add_bad_sector(&self, path: &Path, sector: u64) {
        self.bad_sectors
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((path.to_path_buf(), sector));
    }

    /// EIO if `[offset, offset + len)` of `path` touches a bad sector.
    fn readable(&self, path: &Path, offset: u64, len: usize) -> io::Result<()> {
        let bad = self.bad_sectors.lock().unwrap_or_else(|e| e.into_inner());
        let first = offset / SECTOR as u64;
        let last = (offset + len.max(1) as u64 - 1) / SECTOR as u64;
        match bad
            .iter()
            .find(|(p, s)| p == path && (first..=last).contains(s))
        {
            Some((_, sector)) => Err(io::Error::other(format!(
                "simulated latent sector error: {} sector {sector}",
                path.display()
            ))),
            None => Ok(()),
        }
    }

    /// Whether a write failed for lack of space since the last restart.
    pub fn full_returned(&self) -> bool {
        self.gate().full_returned
    }

    /// Fails with `StorageFull` if growing `path` to `new_end` bytes would
    /// pass the disk's capacity.
    fn room_for(&self, path: &Path, new_end: u64) -> io::Result<()> {
        let Some(capacity) = self.gate().capacity else {
            return Ok(());
        };
        let growth = new_end.saturating_sub(self.mem.len(path)?);
        if growth > 0 && self.mem.used_bytes() + growth > capacity {
            self.gate().full_returned = true;
            return Err(io::Error::new(
                io::ErrorKind::StorageFull,
                format!("simulated ENOSPC: the disk holds {capacity} bytes"),
            ));
        }
        Ok(())
    }

    /// Whether an injected EIO explains a failure since the last restart.
    pub fn eio_returned(&self) -> bool {
        self.gate().eio_returned
    }

    /// Operations that passed the gate so far.
    pub fn ops(&self) -> u64 {
        self.gate().ops
    }

    /// Clears every armed fault and unfreezes: a new process starts.
    pub fn reset_for_restart(&self) {
        let mut g = self.gate();
        let mut latency = g.latency.take();
        if let Some(l) = latency.as_mut() {
            l.forgive();
        }
        *g = Gate {
            ops: g.ops,
            latency,
            ..Gate::default()
        };
    }

    /// A power loss decided by `plan`.
    pub fn power_loss(&self, plan: &mut dyn PowerLossPlan) {
        self.mem.crash_power_loss_with(plan);
    }

    /// Shows the disk to `sink` before each file `sync` that passes the
    /// gate.
    pub fn capture_syncs(&self, sink: Arc<dyn SyncObserver>) {
        *self.capture.lock().unwrap_or_else(|e| e.into_inner()) = Some(sink);
    }

    /// The underlying in-memory disk (for inspection in tests).
    pub fn mem(&self) -> &MemDisk {
        &self.mem
    }
}

impl Disk for SimDisk {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        self.pass(OpKind::Entry(EntryOp::Create), 0)?;
        self.observe(DiskOp::CreateDir, dir);
        self.mem.create_dir_all(dir)
    }
    fn create(&self, path: &Path) -> io::Result<()> {
        self.pass(OpKind::Entry(EntryOp::Create), 0)?;
        self.observe(DiskOp::Create, path);
        self.mem.create(path)
    }
    fn exists(&self, path: &Path) -> io::Result<bool> {
        self.pass(OpKind::Stat, 0)?;
        self.mem.exists(path)
    }
    fn len(&self, path: &Path) -> io::Result<u64> {
        self.pass(OpKind::Stat, 0)?;
        self.mem.len(path)
    }
    fn read_at(&self, path: &Path, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        self.pass(OpKind::Read, buf.len())?;
        self.readable(path, offset, buf.len())?;
        self.mem.read_at(path, offset, buf)
    }
    fn write_at(&self, path: &Path, offset: u64, data: &[u8]) -> io::Result<()> {
        self.pass(OpKind::Write, data.len())?;
        self.pass_targeted(TargetedOp::Write, path)?;
        let offset = self.aim(path, offset, data.len());
        self.room_for(path, offset + data.len() as u64)?;
        self.observe(DiskOp::Write, path);
        self.mem.write_at(path, offset, data)?;
        self.advance_commit(path, OpKind::Write, offset);
        self.note_write_or_sync(path, false, offset + data.len() as u64);
        Ok(())
    }
    fn set_len(&self, path: &Path, len: u64) -> io::Result<()> {
        self.pass(OpKind::Write, 0)?;
        self.pass_targeted(TargetedOp::Write, path)?;
        self.room_for(path, len)?;
        self.observe(DiskOp::SetLen, path);
        self.mem.set_len(path, len)
    }
    fn sync(&self, path: &Path) -> io::Result<()> {
        if let Err(e) = self
            .crash_if_tearable(path)
            .and_then(|()| self.pass(OpKind::Sync, 0))
            .and_then(|()| self.pass_targeted(TargetedOp::Sync, path))
        {
            // Linux semantics of a failed fsync: the writes it would have
            // persisted are lost, not kept pending for a retry.
            if !self.is_frozen() {
                self.mem.drop_dirty_pages(path)?;
            }
            return Err(e);
        }
        self.observe(DiskOp::Sync, path);
        if let Some(sink) = self
            .capture
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
        {
            sink.before_sync(&self.mem, path);
        }
        self.mem.sync(path)?;
        self.advance_commit(path, OpKind::Sync, 0);
        self.note_write_or_sync(path, true, 0);
        Ok(())
    }
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        self.pass(OpKind::SyncDir, 0)?;
        self.observe(DiskOp::SyncDir, dir);
        self.mem.sync_dir(dir)
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.pass(OpKind::Entry(EntryOp::Rename), 0)?;
        self.pass_targeted(TargetedOp::Rename, from)?;
        self.observe(DiskOp::Rename, from);
        self.mem.rename(from, to)
    }
    fn remove(&self, path: &Path) -> io::Result<()> {
        self.pass(OpKind::Entry(EntryOp::Remove), 0)?;
        self.observe(DiskOp::Remove, path);
        self.mem.remove(path)
    }
    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        self.pass(OpKind::Read, 0)?;
        self.mem.list(dir)
    }
}

#[cfg(test)]
mod targeted_eio_tests {
    use super::*;

    /// Only syncs of the named kind of file count, and the n-th fails.
    #[test]
    fn a_targeted_eio_fails_the_nth_sync_of_its_file_kind_only() {
        let disk = SimDisk::new();
        let wal = Path::new("member/wal/0000000000000000-0000000000000000.wal");
        let db = Path::new("member/snap/db");
        let snap = Path::new("member/snap/0000000000000001-0000000000000005.snap");
        for p in [wal, db, snap] {
            disk.create_dir_all(p.parent().unwrap()).unwrap();
            disk.create(p).unwrap();
            disk.write_at(p, 0, b"x").unwrap();
        }
        assert!(MemberFile::Wal.holds(wal) && !MemberFile::Wal.holds(db));
        assert!(MemberFile::Backend.holds(db) && !MemberFile::Snapshot.holds(db));
        assert!(MemberFile::Snapshot.holds(snap));
        disk.arm(DiskFault::FailNth(TargetedEio {
            op: TargetedOp::Sync,
            nth: 2,
            file: Some(MemberFile::Backend),
        }));
        disk.sync(wal).unwrap();
        disk.sync(db).unwrap();
        disk.sync(wal).unwrap();
        disk.write_at(db, 0, b"y").unwrap();
        assert!(disk.sync(db).is_err());
        assert!(disk.eio_returned() && !disk.is_armed());
    }

    /// A targeted rename EIO counts only renames of its kind of file (by
    /// the old name), and nothing changes.
    #[test]
    fn a_targeted_rename_eio_fails_the_snapshot_rename_only() {
        let disk = SimDisk::new();
        let wal_tmp = Path::new("member/wal/0.tmp");
        let snap_tmp = Path::new("member/snap/0000000000000001-0000000000000005.snap.tmp");
        for p in [wal_tmp, snap_tmp] {
            disk.create_dir_all(p.parent().unwrap()).unwrap();
            disk.create(p).unwrap();
        }
        disk.arm(DiskFault::FailNth(TargetedEio {
            op: TargetedOp::Rename,
            nth: 1,
            file: Some(MemberFile::Snapshot),
        }));
        disk.rename(wal_tmp, Path::new("member/wal/0.wal")).unwrap();
        let snap = snap_tmp.with_extension("");
        assert!(disk.rename(snap_tmp, &snap).is_err());
        assert!(disk.exists(snap_tmp).unwrap() && !disk.exists(&snap).unwrap());
        assert!(disk.eio_returned() && !disk.is_armed());
    }
}

#[cfg(test)]
mod tearable_sync_tests {
    use super::*;

    /// The crash waits for a sync of its kind of file whose unsynced
    /// writes cross a sector boundary; other syncs pass.
    #[test]
    fn a_tearable_sync_crash_waits_for_a_write_across_a_sector_boundary() {
        let disk = SimDisk::new();
        let wal = Path::new("member/wal/0000000000000000-0000000000000000.wal");
        let db = Path::new("member/snap/db");
        for p in [wal, db] {
            disk.create_dir_all(p.parent().unwrap()).unwrap();
            disk.create(p).unwrap();
        }
        disk.arm(DiskFault::CrashAtTearableSync(Some(MemberFile::Wal)));
        // Inside one sector: nothing to tear.
        disk.write_at(wal, 0, &[1; 500]).unwrap();
        disk.sync(wal).unwrap();
        // The backend is not the file it waits for.
        disk.write_at(db, 0, &[2; 4096]).unwrap();
        disk.sync(db).unwrap();
        // Across the boundary at 512: the sync does not land.
        disk.write_at(wal, 500, &[3; 100]).unwrap();
        assert!(disk.sync(wal).is_err());
        assert!(disk.is_frozen() && disk.crashed_at_tearable_sync());
        assert_eq!(disk.mem().pending_ops(wal).unwrap().len(), 1);
    }
}
