//! The simulated disk of one member: a [`MemDisk`] that outlives the member's
//! process, plus the faults the run arms on it.
//!
//! Every operation passes one gate: a frozen disk (the member crashed at a
//! crash point or at its k-th operation) refuses everything, so nothing the
//! dead process would still have done can land; an armed operation countdown
//! freezes the disk at the k-th operation; an armed EIO fails the next
//! `sync` or `write`. A failed file `sync` also drops that file's unsynced
//! writes, as Linux does: a store that retries the fsync gets a success
//! that persisted nothing.

use super::power::SECTOR;
use replica::disk::{Disk, MemDisk, PowerLossPlan};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

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
    /// Fail the next create, rename or remove with EIO (nothing changes).
    FailNextMeta,
    /// The disk holds at most this many bytes: a write or `set_len` that
    /// would grow past it fails with `StorageFull` (ENOSPC).
    Capacity(u64),
    /// Fail the n-th sync (or write) from now, counting only those of one
    /// kind of file if it names one, with EIO.
    FailNth(TargetedEio),
}

/// An EIO aimed at the n-th sync or write, of any file or of one kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TargetedEio {
    /// A file `sync` (else a `write_at` / `set_len`).
    pub sync: bool,
    /// 1 = the next matching operation.
    pub nth: u64,
    pub file: Option<MemberFile>,
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
    fail_next_meta: bool,
    capacity: Option<u64>,
    /// A write failed for lack of space since the last restart.
    full_returned: bool,
    fail_next_write: bool,
    /// An EIO aimed at the n-th matching sync or write (`nth` counts down).
    targeted: Option<TargetedEio>,
    /// An EIO was returned since the last restart (the member's failure is
    /// then expected, not a bug).
    eio_returned: bool,
    ops: u64,
}

/// Sees a member's disk just before each file `sync` (crash-state
/// exploration forks it there). It must not touch the disk.
pub trait SyncObserver: Send + Sync + std::fmt::Debug {
    fn before_sync(&self, disk: &MemDisk, path: &Path);
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
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum OpKind {
    Read,
    Write,
    Sync,
    /// `sync_dir`: a sync for `CrashAtNextSync` and `FailNextSync`, and the
    /// target of `FailNextSyncDir`.
    SyncDir,
    /// create, create_dir_all, rename, remove.
    Meta,
}

fn crashed() -> io::Error {
    io::Error::other("simulated crash: the member's disk is frozen")
}

fn eio(what: &str) -> io::Error {
    io::Error::other(format!("simulated EIO on {what}"))
}

impl SimDisk {
    pub fn new() -> Arc<SimDisk> {
        Arc::new(SimDisk {
            mem: MemDisk::new(),
            gate: Mutex::new(Gate::default()),
            bad_sectors: Mutex::new(Vec::new()),
            capture: Mutex::new(None),
        })
    }

    fn gate(&self) -> MutexGuard<'_, Gate> {
        self.gate.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn pass(&self, kind: OpKind) -> io::Result<()> {
        let mut g = self.gate();
        if g.frozen {
            return Err(crashed());
        }
        g.ops += 1;
        if let Some(left) = g.countdown.as_mut() {
            *left = left.saturating_sub(1);
            if *left == 0 {
                g.countdown = None;
                g.frozen = true;
                return Err(crashed());
            }
        }
        let is_sync = matches!(kind, OpKind::Sync | OpKind::SyncDir);
        match kind {
            _ if is_sync && g.crash_at_next_sync => {
                g.crash_at_next_sync = false;
                g.frozen = true;
                Err(crashed())
            }
            OpKind::SyncDir if g.fail_next_sync_dir => {
                g.fail_next_sync_dir = false;
                g.eio_returned = true;
                Err(eio("sync_dir"))
            }
            OpKind::Meta if g.fail_next_meta => {
                g.fail_next_meta = false;
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

    /// A sync (or write) of `path` that passed the gate: fails it if it is
    /// the one a targeted EIO waits for.
    fn pass_targeted(&self, sync: bool, path: &Path) -> io::Result<()> {
        let mut g = self.gate();
        let Some(t) = g.targeted.as_mut() else {
            return Ok(());
        };
        if t.sync != sync || t.file.is_some_and(|f| !f.holds(path)) {
            return Ok(());
        }
        t.nth = t.nth.saturating_sub(1);
        if t.nth > 0 {
            return Ok(());
        }
        g.targeted = None;
        g.eio_returned = true;
        Err(eio(if sync {
            "targeted sync"
        } else {
            "targeted write"
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
            DiskFault::FailNextMeta => g.fail_next_meta = true,
            DiskFault::Capacity(bytes) => g.capacity = Some(bytes),
            DiskFault::FailNth(t) => g.targeted = Some(t),
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
        g.fail_next_meta = false;
        g.capacity = None;
        g.targeted = None;
    }

    /// Whether a fault is armed and has not fired yet.
    pub fn is_armed(&self) -> bool {
        let g = self.gate();
        g.countdown.is_some()
            || g.fail_next_sync
            || g.fail_next_write
            || g.crash_at_next_sync
            || g.fail_next_sync_dir
            || g.fail_next_meta
            || g.capacity.is_some()
            || g.targeted.is_some()
    }

    /// Stops every further operation (the process died here).
    pub fn freeze(&self) {
        self.gate().frozen = true;
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
        let ops = self.gate().ops;
        *self.gate() = Gate {
            ops,
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
        self.pass(OpKind::Meta)?;
        self.mem.create_dir_all(dir)
    }
    fn create(&self, path: &Path) -> io::Result<()> {
        self.pass(OpKind::Meta)?;
        self.mem.create(path)
    }
    fn exists(&self, path: &Path) -> io::Result<bool> {
        self.pass(OpKind::Read)?;
        self.mem.exists(path)
    }
    fn len(&self, path: &Path) -> io::Result<u64> {
        self.pass(OpKind::Read)?;
        self.mem.len(path)
    }
    fn read_at(&self, path: &Path, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        self.pass(OpKind::Read)?;
        self.readable(path, offset, buf.len())?;
        self.mem.read_at(path, offset, buf)
    }
    fn write_at(&self, path: &Path, offset: u64, data: &[u8]) -> io::Result<()> {
        self.pass(OpKind::Write)?;
        self.pass_targeted(false, path)?;
        self.room_for(path, offset + data.len() as u64)?;
        self.mem.write_at(path, offset, data)
    }
    fn set_len(&self, path: &Path, len: u64) -> io::Result<()> {
        self.pass(OpKind::Write)?;
        self.pass_targeted(false, path)?;
        self.room_for(path, len)?;
        self.mem.set_len(path, len)
    }
    fn sync(&self, path: &Path) -> io::Result<()> {
        if let Err(e) = self
            .pass(OpKind::Sync)
            .and_then(|()| self.pass_targeted(true, path))
        {
            // Linux semantics of a failed fsync: the writes it would have
            // persisted are lost, not kept pending for a retry.
            if !self.is_frozen() {
                self.mem.drop_dirty_pages(path)?;
            }
            return Err(e);
        }
        if let Some(sink) = self
            .capture
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
        {
            sink.before_sync(&self.mem, path);
        }
        self.mem.sync(path)
    }
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        self.pass(OpKind::SyncDir)?;
        self.mem.sync_dir(dir)
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.pass(OpKind::Meta)?;
        self.mem.rename(from, to)
    }
    fn remove(&self, path: &Path) -> io::Result<()> {
        self.pass(OpKind::Meta)?;
        self.mem.remove(path)
    }
    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        self.pass(OpKind::Read)?;
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
            sync: true,
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
}
