//! An in-memory [`Disk`] with a page cache and a platter.
//!
//! Every file (inode) keeps the bytes a running process sees (`data`, the page
//! cache) and the bytes that would survive a power loss (`durable`), plus the
//! list of operations issued since the last `sync` (`pending`). Directory
//! entries likewise exist twice: `names` (what `list` shows) and
//! `durable_names` (what survives a power loss; updated by `sync_dir`).
//!
//! A process crash changes nothing here (the page cache outlives the
//! process). A power loss rebuilds each file from its durable image plus the
//! subset of its pending operations that a [`PowerLossPlan`] lets through,
//! possibly torn, and each directory entry from its durable or (if the plan
//! says that entry's change made it) its volatile state. The default plan
//! drops everything unsynced.

use super::Disk;
use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

/// An operation issued on a file since its last successful `sync`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PendingOp {
    /// Bytes written at an offset.
    Write { offset: u64, data: Vec<u8> },
    /// The file's length was set (truncate or extend).
    SetLen(u64),
}

/// What a power loss leaves of one pending operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Survival {
    /// The operation never reached the platter.
    Lost,
    /// The operation reached the platter whole.
    Kept,
    /// Only the first `keep_bytes` bytes of a write reached the platter.
    Torn { keep_bytes: usize },
}

/// Decides, at a power loss, which unsynced state survives.
pub trait PowerLossPlan {
    /// The fate of pending operation `op_index` (0-based, issue order) of the
    /// file named `path`.
    fn file_op(&mut self, path: &Path, op_index: usize, op: &PendingOp) -> Survival;
    /// Whether the unsynced change of directory entry `name` survives (it
    /// was created, renamed to or from, or removed since its directory's
    /// last `sync_dir`). Each entry has its own fate: a rename whose
    /// directory was not synced may leave the old name, the new one, both
    /// or neither.
    fn name_change(&mut self, name: &Path) -> bool;
    /// Called before the pending operations of a file are decided, with
    /// their count (so a plan can single out the last one).
    fn begin_file(&mut self, _path: &Path, _pending: usize) {}
}

/// The plan that drops everything that was not synced.
struct DropUnsynced;

impl PowerLossPlan for DropUnsynced {
    fn file_op(&mut self, _: &Path, _: usize, _: &PendingOp) -> Survival {
        Survival::Lost
    }
    fn name_change(&mut self, _: &Path) -> bool {
        false
    }
}

#[derive(Debug, Clone, Default)]
struct Inode {
    data: Vec<u8>,
    durable: Vec<u8>,
    pending: Vec<PendingOp>,
}

#[derive(Debug, Clone, Default)]
struct MemState {
    next_ino: u64,
    inodes: BTreeMap<u64, Inode>,
    // Names are the paths' UTF-8 text: string keys compare with one memcmp,
    // where `PathBuf` keys compared component by component on every lookup.
    names: BTreeMap<String, u64>,
    durable_names: BTreeMap<String, u64>,
    dirs: BTreeSet<String>,
}

/// An in-memory disk that models the page cache and power loss.
#[derive(Debug, Default)]
pub struct MemDisk {
    state: Mutex<MemState>,
}

fn not_found(path: &Path) -> io::Error {
    io::Error::new(
        io::ErrorKind::NotFound,
        format!("{}: no such file", path.display()),
    )
}

/// A path as a name key (paths on this disk are UTF-8 by construction).
fn key(path: &Path) -> io::Result<&str> {
    path.to_str().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{}: not a UTF-8 path", path.display()),
        )
    })
}

/// The directory part of a name key (`""` at the top level).
fn parent(name: &str) -> &str {
    name.rsplit_once('/').map_or("", |(dir, _)| dir)
}

fn apply_op(bytes: &mut Vec<u8>, op: &PendingOp, keep: Option<usize>) {
    match op {
        PendingOp::Write { offset, data } => {
            let data = &data[..keep.unwrap_or(data.len()).min(data.len())];
            let start = *offset as usize;
            let end = start + data.len();
            if bytes.len() < end {
                bytes.resize(end, 0);
            }
            bytes[start..end].copy_from_slice(data);
        }
        PendingOp::SetLen(len) => bytes.resize(*len as usize, 0),
    }
}

impl MemState {
    fn ino(&self, path: &Path) -> io::Result<u64> {
        self.names
            .get(key(path)?)
            .copied()
            .ok_or_else(|| not_found(path))
    }

    fn inode_mut(&mut self, path: &Path) -> io::Result<&mut Inode> {
        let ino = self.ino(path)?;
        self.inodes.get_mut(&ino).ok_or_else(|| not_found(path))
    }

    fn record(&mut self, path: &Path, op: PendingOp) -> io::Result<()> {
        let inode = self.inode_mut(path)?;
        apply_op(&mut inode.data, &op, None);
        inode.pending.push(op);
        Ok(())
    }

    /// Drops inodes that no name, volatile or durable, refers to.
    fn collect_garbage(&mut self) {
        let live: BTreeSet<u64> = self
            .names
            .values()
            .chain(self.durable_names.values())
            .copied()
            .collect();
        self.inodes.retain(|ino, _| live.contains(ino));
    }

    /// Names whose volatile entry differs from the durable one.
    fn names_with_unsynced_changes(&self) -> BTreeSet<String> {
        let changed = |(name, ino): (&String, &u64), other: &BTreeMap<String, u64>| {
            (other.get(name) != Some(ino)).then(|| name.clone())
        };
        self.names
            .iter()
            .filter_map(|e| changed(e, &self.durable_names))
            .chain(
                self.durable_names
                    .iter()
                    .filter_map(|e| changed(e, &self.names)),
            )
            .collect()
    }
}

impl MemDisk {
    /// An empty disk.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, MemState> {
        // A panic while holding the lock cannot leave the state half-updated
        // in a way that matters more than the panic itself: keep going.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// An independent copy of this disk, page cache and platter alike (used to
    /// explore many crash states from one point).
    pub fn fork(&self) -> MemDisk {
        MemDisk {
            state: Mutex::new(self.lock().clone()),
        }
    }

    /// An `fsync` of `path` that failed, as Linux reports one: the writes it
    /// would have persisted are gone (the kernel marks the dirty pages clean
    /// and they are dropped from the cache, so the file reads as on the
    /// platter), and nothing is left pending for a retry, so a later `sync`
    /// succeeds without persisting them (PostgreSQL's "fsyncgate").
    pub fn drop_dirty_pages(&self, path: &Path) -> io::Result<()> {
        let mut state = self.lock();
        let inode = state.inode_mut(path)?;
        inode.pending.clear();
        inode.data = inode.durable.clone();
        Ok(())
    }

    /// A power loss that drops every unsynced write and directory change.
    pub fn crash_power_loss(&self) {
        self.crash_power_loss_with(&mut DropUnsynced);
    }

    /// A power loss whose outcome for unsynced state is decided by `plan`.
    pub fn crash_power_loss_with(&self, plan: &mut dyn PowerLossPlan) {
        let mut state = self.lock();
        let mut names = state.durable_names.clone();
        for name in state.names_with_unsynced_changes() {
            if plan.name_change(Path::new(&name)) {
                match state.names.get(&name) {
                    Some(ino) => names.insert(name, *ino),
                    None => names.remove(&name),
                };
            }
        }
        state.names = names.clone();
        state.durable_names = names;
        state.collect_garbage();
        let mut by_ino: BTreeMap<u64, String> = BTreeMap::new();
        for (name, ino) in &state.names {
            by_ino.entry(*ino).or_insert_with(|| name.clone());
        }
        for (ino, inode) in state.inodes.iter_mut() {
            let path = by_ino.get(ino).cloned().unwrap_or_default();
            let mut bytes = std::mem::take(&mut inode.durable);
            plan.begin_file(Path::new(&path), inode.pending.len());
            for (i, op) in inode.pending.iter().enumerate() {
                match plan.file_op(Path::new(&path), i, op) {
                    Survival::Lost => {}
                    Survival::Kept => apply_op(&mut bytes, op, None),
                    Survival::Torn { keep_bytes } => apply_op(&mut bytes, op, Some(keep_bytes)),
                }
            }
            inode.pending.clear();
            inode.data = bytes.clone();
            inode.durable = bytes;
        }
    }

    /// The unsynced operations of a file, in issue order.
    pub fn pending_ops(&self, path: &Path) -> io::Result<Vec<PendingOp>> {
        let mut state = self.lock();
        Ok(state.inode_mut(path)?.pending.clone())
    }

    /// Paths of every file, sorted (for comparing images of two disks).
    pub fn file_names(&self) -> Vec<PathBuf> {
        self.lock().names.keys().map(PathBuf::from).collect()
    }

    /// Paths of files with unsynced operations, sorted.
    pub fn files_with_pending_ops(&self) -> Vec<PathBuf> {
        let state = self.lock();
        state
            .names
            .iter()
            .filter(|(_, ino)| state.inodes.get(ino).is_some_and(|i| !i.pending.is_empty()))
            .map(|(name, _)| PathBuf::from(name))
            .collect()
    }

    /// The bytes every file holds in the page cache (what a disk's
    /// capacity counts).
    pub fn used_bytes(&self) -> u64 {
        self.lock()
            .inodes
            .values()
            .map(|i| i.data.len() as u64)
            .sum()
    }

    /// The length of a file as it is on the platter.
    pub fn durable_len(&self, path: &Path) -> io::Result<u64> {
        let mut state = self.lock();
        Ok(state.inode_mut(path)?.durable.len() as u64)
    }

    /// Overwrites bytes of a file in both the page cache and the platter, as
    /// a bit rot or a misdirected write would. Returns false if out of range.
    pub fn corrupt_durable(&self, path: &Path, offset: u64, xor: u8) -> io::Result<bool> {
        let mut state = self.lock();
        let inode = state.inode_mut(path)?;
        let at = offset as usize;
        if at >= inode.durable.len() || at >= inode.data.len() {
            return Ok(false);
        }
        inode.durable[at] ^= xor;
        inode.data[at] ^= xor;
        Ok(true)
    }
}

impl Disk for MemDisk {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        let mut state = self.lock();
        let mut cur = key(dir)?;
        while !cur.is_empty() {
            state.dirs.insert(cur.to_string());
            cur = parent(cur);
        }
        Ok(())
    }

    fn create(&self, path: &Path) -> io::Result<()> {
        let mut state = self.lock();
        let name = key(path)?;
        let dir = parent(name);
        if !dir.is_empty() && !state.dirs.contains(dir) {
            return Err(not_found(Path::new(dir)));
        }
        if state.names.contains_key(name) {
            return state.record(path, PendingOp::SetLen(0));
        }
        let ino = state.next_ino;
        state.next_ino += 1;
        state.inodes.insert(ino, Inode::default());
        state.names.insert(name.to_string(), ino);
        Ok(())
    }

    fn exists(&self, path: &Path) -> io::Result<bool> {
        Ok(self.lock().names.contains_key(key(path)?))
    }

    fn len(&self, path: &Path) -> io::Result<u64> {
        Ok(self.lock().inode_mut(path)?.data.len() as u64)
    }

    fn read_at(&self, path: &Path, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        let mut state = self.lock();
        let data = &state.inode_mut(path)?.data;
        let start = (offset as usize).min(data.len());
        let n = buf.len().min(data.len() - start);
        buf[..n].copy_from_slice(&data[start..start + n]);
        Ok(n)
    }

    fn write_at(&self, path: &Path, offset: u64, data: &[u8]) -> io::Result<()> {
        self.lock().record(
            path,
            PendingOp::Write {
                offset,
                data: data.to_vec(),
            },
        )
    }

    fn set_len(&self, path: &Path, len: u64) -> io::Result<()> {
        self.lock().record(path, PendingOp::SetLen(len))
    }

    fn sync(&self, path: &Path) -> io::Result<()> {
        let mut state = self.lock();
        let inode = state.inode_mut(path)?;
        let pending = std::mem::take(&mut inode.pending);
        for op in &pending {
            apply_op(&mut inode.durable, op, None);
        }
        Ok(())
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        let mut state = self.lock();
        let dir = key(dir)?;
        let volatile: Vec<(String, u64)> = state
            .names
            .iter()
            .filter(|(name, _)| parent(name) == dir)
            .map(|(name, ino)| (name.clone(), *ino))
            .collect();
        state.durable_names.retain(|name, _| parent(name) != dir);
        state.durable_names.extend(volatile);
        state.collect_garbage();
        Ok(())
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut state = self.lock();
        let to = key(to)?.to_string();
        let ino = state
            .names
            .remove(key(from)?)
            .ok_or_else(|| not_found(from))?;
        state.names.insert(to, ino);
        Ok(())
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        let mut state = self.lock();
        state
            .names
            .remove(key(path)?)
            .ok_or_else(|| not_found(path))?;
        state.collect_garbage();
        Ok(())
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        let state = self.lock();
        let dir = key(dir)?;
        Ok(state
            .names
            .keys()
            .filter(|name| parent(name) == dir)
            .map(|name| {
                name.rsplit_once('/')
                    .map_or(name.as_str(), |(_, f)| f)
                    .to_string()
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> &Path {
        Path::new(s)
    }

    #[test]
    fn unsynced_writes_are_lost_on_power_loss() {
        let disk = MemDisk::new();
        disk.create_dir_all(p("d")).unwrap();
        disk.create(p("d/f")).unwrap();
        disk.sync_dir(p("d")).unwrap();
        disk.write_at(p("d/f"), 0, b"hello").unwrap();
        disk.sync(p("d/f")).unwrap();
        disk.append(p("d/f"), b" world").unwrap();
        assert_eq!(disk.read_all(p("d/f")).unwrap(), b"hello world");
        disk.crash_power_loss();
        assert_eq!(disk.read_all(p("d/f")).unwrap(), b"hello");
    }

    #[test]
    fn unsynced_create_and_rename_are_lost_on_power_loss() {
        let disk = MemDisk::new();
        disk.create_dir_all(p("d")).unwrap();
        disk.create(p("d/a")).unwrap();
        disk.write_at(p("d/a"), 0, b"x").unwrap();
        disk.sync(p("d/a")).unwrap();
        disk.crash_power_loss();
        assert!(
            !disk.exists(p("d/a")).unwrap(),
            "create was never made durable"
        );

        disk.create(p("d/a")).unwrap();
        disk.sync_dir(p("d")).unwrap();
        disk.rename(p("d/a"), p("d/b")).unwrap();
        assert_eq!(disk.list(p("d")).unwrap(), vec!["b"]);
        disk.crash_power_loss();
        assert_eq!(disk.list(p("d")).unwrap(), vec!["a"]);
    }

    #[test]
    fn process_crash_keeps_page_cache() {
        let disk = MemDisk::new();
        disk.create(p("f")).unwrap();
        disk.write_at(p("f"), 0, b"abc").unwrap();
        // Nothing to do for a process crash: a new reader sees the page cache.
        assert_eq!(disk.read_all(p("f")).unwrap(), b"abc");
    }

    struct TearSecondWrite;
    impl PowerLossPlan for TearSecondWrite {
        fn file_op(&mut self, _: &Path, i: usize, _: &PendingOp) -> Survival {
            match i {
                0 => Survival::Kept,
                1 => Survival::Torn { keep_bytes: 2 },
                _ => Survival::Lost,
            }
        }
        fn name_change(&mut self, _: &Path) -> bool {
            true
        }
    }

    #[test]
    fn plan_can_keep_and_tear_pending_writes() {
        let disk = MemDisk::new();
        disk.create(p("f")).unwrap();
        disk.write_at(p("f"), 0, b"aaaa").unwrap();
        disk.write_at(p("f"), 4, b"bbbb").unwrap();
        disk.write_at(p("f"), 8, b"cccc").unwrap();
        disk.crash_power_loss_with(&mut TearSecondWrite);
        assert_eq!(disk.read_all(p("f")).unwrap(), b"aaaabb");
    }

    #[test]
    fn a_failed_sync_loses_the_dirty_pages_and_a_retry_does_not_bring_them_back() {
        let disk = MemDisk::new();
        let f = p("d/f");
        disk.create_dir_all(p("d")).unwrap();
        disk.create(f).unwrap();
        disk.write_at(f, 0, b"old").unwrap();
        disk.sync(f).unwrap();
        disk.sync_dir(p("d")).unwrap();
        disk.write_at(f, 3, b"new").unwrap();
        disk.drop_dirty_pages(f).unwrap();
        let mut buf = [0u8; 6];
        let n = disk.read_at(f, 0, &mut buf).unwrap();
        assert_eq!(&buf[..n], b"old");
        disk.sync(f).unwrap();
        disk.crash_power_loss();
        let n = disk.read_at(f, 0, &mut buf).unwrap();
        assert_eq!(&buf[..n], b"old");
    }

    #[test]
    fn fork_is_independent() {
        let disk = MemDisk::new();
        disk.create(p("f")).unwrap();
        let copy = disk.fork();
        disk.write_at(p("f"), 0, b"x").unwrap();
        assert_eq!(copy.read_all(p("f")).unwrap(), b"");
    }
}
