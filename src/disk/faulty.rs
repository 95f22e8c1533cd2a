//! A [`MemDisk`] that fails operations on demand, for tests of fail-stop
//! behaviour.
//!
//! The WAL, the backend, the snapshotter, backup and a whole member are each
//! tested against the same kinds of I/O failure: an fsync or a write that
//! returns an error, and a process that dies at its k-th disk operation.
//! [`FaultyDisk`] is the one disk those tests share, so each of them states
//! which fault it wants instead of re-implementing every [`Disk`] method
//! around a [`MemDisk`]. It is public (not `#[cfg(test)]`) because
//! integration tests, fuzz targets and the simulator link the library as an
//! ordinary dependency.
//!
//! Operations fall into three classes. Reads (`exists`, `len`, `read_at`,
//! `list`) change nothing. Every other operation is a *mutation*; among them
//! `sync` and `sync_dir` are *syncs*, `write_at` and `set_len` are *writes*
//! (the default `append` and `truncate` go through them). Counters count
//! every attempted mutation, sync and write, failed or not; rules that take
//! a `k` count from the moment they are armed, 0-based (`k = 0` is the next
//! one). A failed operation never reaches the inner disk.

use super::{Disk, MemDisk};
use std::io;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

/// The class of an operation, as the fault rules see it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Class {
    Read,
    Write,
    Sync,
    /// A mutation that is neither a write nor a sync: `create_dir_all`,
    /// `create`, `rename`, `remove`.
    Namespace,
}

/// Counters and armed rules. Rule positions are absolute counter values.
#[derive(Debug, Default)]
struct Faults {
    mutations: u64,
    syncs: u64,
    writes: u64,
    injected: u64,
    /// The mutation that freezes the disk.
    freeze_at: Option<u64>,
    /// Every operation fails until `heal`.
    frozen: bool,
    /// The first of the mutations that all fail.
    fail_mutations_from: Option<u64>,
    /// The sync that fails, once.
    fail_sync_at: Option<u64>,
    /// The write that fails, once.
    fail_write_at: Option<u64>,
    fail_every_sync: bool,
    fail_every_write: bool,
}

/// Returns the counter's value and advances it.
fn next(counter: &mut u64) -> u64 {
    let n = *counter;
    *counter = n.saturating_add(1);
    n
}

impl Faults {
    /// Counts an operation of class `class`; returns why it must fail, if
    /// it must.
    fn verdict(&mut self, class: Class) -> Option<String> {
        let mutation = (class != Class::Read).then(|| next(&mut self.mutations));
        let sync = (class == Class::Sync).then(|| next(&mut self.syncs));
        let write = (class == Class::Write).then(|| next(&mut self.writes));
        if self.frozen {
            return Some("the disk is frozen".into());
        }
        let n = mutation?;
        if self.freeze_at == Some(n) {
            self.freeze_at = None;
            self.frozen = true;
            return Some(format!("mutation #{n} freezes the disk"));
        }
        if let Some(from) = self.fail_mutations_from.filter(|&from| n >= from) {
            return Some(format!("mutation #{n}; every mutation fails from #{from}"));
        }
        if let Some(s) = sync {
            if self.fail_every_sync {
                return Some(format!("sync #{s}; every sync fails"));
            }
            if self.fail_sync_at == Some(s) {
                self.fail_sync_at = None;
                return Some(format!("sync #{s}"));
            }
        }
        if let Some(w) = write {
            if self.fail_every_write {
                return Some(format!("write #{w}; every write fails"));
            }
            if self.fail_write_at == Some(w) {
                self.fail_write_at = None;
                return Some(format!("write #{w}"));
            }
        }
        None
    }
}

/// A [`MemDisk`] wrapper that injects I/O errors by rule (see the module
/// documentation for what counts as a mutation, a sync and a write).
///
/// Rules combine: an operation fails if any armed rule says so. Arming a
/// rule again moves it; [`FaultyDisk::heal`] disarms every rule and thaws a
/// frozen disk, keeping the counters. `FaultyDisk::default()` wraps a new,
/// empty [`MemDisk`].
#[derive(Debug, Default)]
pub struct FaultyDisk {
    inner: Arc<MemDisk>,
    faults: Mutex<Faults>,
}

impl FaultyDisk {
    /// A disk over `inner` with no fault armed.
    pub fn new(inner: Arc<MemDisk>) -> Self {
        FaultyDisk {
            inner,
            faults: Mutex::new(Faults::default()),
        }
    }

    /// The wrapped disk: inspect it, or crash it (`crash_power_loss`,
    /// `fork`) without going through the fault rules.
    pub fn inner(&self) -> &Arc<MemDisk> {
        &self.inner
    }

    fn faults(&self) -> MutexGuard<'_, Faults> {
        // The state is a few counters and flags, each update complete on its
        // own: a panic elsewhere while holding the lock cannot tear it.
        self.faults.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The `k`-th mutation from now fails and freezes the disk: every later
    /// operation, reads included, fails until [`FaultyDisk::heal`]. This is
    /// a process that died at that operation; nothing it would still have
    /// done lands.
    pub fn freeze_at(&self, k: u64) {
        let mut f = self.faults();
        f.freeze_at = Some(f.mutations.saturating_add(k));
    }

    /// The `k`-th mutation from now and every mutation after it fail; reads
    /// still pass. This is a process that died at that operation, while the
    /// test goes on reading what it left through the same disk.
    pub fn fail_mutations_from(&self, k: u64) {
        let mut f = self.faults();
        f.fail_mutations_from = Some(f.mutations.saturating_add(k));
    }

    /// The `k`-th sync (`sync` or `sync_dir`) from now fails, once.
    pub fn fail_nth_sync(&self, k: u64) {
        let mut f = self.faults();
        f.fail_sync_at = Some(f.syncs.saturating_add(k));
    }

    /// The `k`-th write (`write_at` or `set_len`) from now fails, once.
    pub fn fail_nth_write(&self, k: u64) {
        let mut f = self.faults();
        f.fail_write_at = Some(f.writes.saturating_add(k));
    }

    /// While `on`, every sync fails.
    pub fn set_fail_every_sync(&self, on: bool) {
        self.faults().fail_every_sync = on;
    }

    /// While `on`, every write fails.
    pub fn set_fail_every_write(&self, on: bool) {
        self.faults().fail_every_write = on;
    }

    /// Disarms every rule and thaws a frozen disk. Counters are kept.
    pub fn heal(&self) {
        let mut f = self.faults();
        *f = Faults {
            mutations: f.mutations,
            syncs: f.syncs,
            writes: f.writes,
            injected: f.injected,
            ..Faults::default()
        };
    }

    /// Whether a [`FaultyDisk::freeze_at`] rule has fired (and no
    /// [`FaultyDisk::heal`] since).
    pub fn is_frozen(&self) -> bool {
        self.faults().frozen
    }

    /// Mutations attempted so far, failed or not.
    pub fn mutations(&self) -> u64 {
        self.faults().mutations
    }

    /// Syncs (`sync`, `sync_dir`) attempted so far, failed or not.
    pub fn syncs(&self) -> u64 {
        self.faults().syncs
    }

    /// Writes (`write_at`, `set_len`) attempted so far, failed or not.
    pub fn writes(&self) -> u64 {
        self.faults().writes
    }

    /// Operations (reads included) this disk failed on purpose so far.
    pub fn injected_failures(&self) -> u64 {
        self.faults().injected
    }

    /// Counts the operation and fails it if a rule says so.
    fn gate(&self, class: Class, op: &str, path: &Path) -> io::Result<()> {
        let mut f = self.faults();
        match f.verdict(class) {
            None => Ok(()),
            Some(why) => {
                f.injected = f.injected.saturating_add(1);
                Err(io::Error::other(format!(
                    "injected failure: {op} {}: {why}",
                    path.display()
                )))
            }
        }
    }
}

impl Disk for FaultyDisk {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        self.gate(Class::Namespace, "create_dir_all", dir)?;
        self.inner.create_dir_all(dir)
    }
    fn create(&self, path: &Path) -> io::Result<()> {
        self.gate(Class::Namespace, "create", path)?;
        self.inner.create(path)
    }
    fn exists(&self, path: &Path) -> io::Result<bool> {
        self.gate(Class::Read, "exists", path)?;
        self.inner.exists(path)
    }
    fn len(&self, path: &Path) -> io::Result<u64> {
        self.gate(Class::Read, "len", path)?;
        self.inner.len(path)
    }
    fn read_at(&self, path: &Path, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        self.gate(Class::Read, "read_at", path)?;
        self.inner.read_at(path, offset, buf)
    }
    fn write_at(&self, path: &Path, offset: u64, data: &[u8]) -> io::Result<()> {
        self.gate(Class::Write, "write_at", path)?;
        self.inner.write_at(path, offset, data)
    }
    fn set_len(&self, path: &Path, len: u64) -> io::Result<()> {
        self.gate(Class::Write, "set_len", path)?;
        self.inner.set_len(path, len)
    }
    fn sync(&self, path: &Path) -> io::Result<()> {
        self.gate(Class::Sync, "sync", path)?;
        self.inner.sync(path)
    }
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        self.gate(Class::Sync, "sync_dir", dir)?;
        self.inner.sync_dir(dir)
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.gate(Class::Namespace, "rename", from)?;
        self.inner.rename(from, to)
    }
    fn remove(&self, path: &Path) -> io::Result<()> {
        self.gate(Class::Namespace, "remove", path)?;
        self.inner.remove(path)
    }
    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        self.gate(Class::Read, "list", dir)?;
        self.inner.list(dir)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> &Path {
        Path::new(s)
    }

    /// Every step of [`script`], in order, with its class: the mutations are
    /// #0 create_dir_all, #1 write_at (write #0), #2 set_len (write #1),
    /// #3 sync (sync #0), #4 create, #5 sync_dir (sync #1), #6 rename,
    /// #7 remove.
    const ALL: [&str; 12] = [
        "create_dir_all",
        "exists",
        "write_at",
        "read_at",
        "set_len",
        "sync",
        "len",
        "create",
        "sync_dir",
        "list",
        "rename",
        "remove",
    ];

    /// Puts the files the script works on into the inner disk directly
    /// (neither counted nor subject to faults).
    fn prepare(inner: &MemDisk) {
        inner.create_dir_all(p("d")).unwrap();
        for f in ["d/f", "d/x", "d/y"] {
            inner.create(p(f)).unwrap();
        }
        let _ = inner.remove(p("d/g"));
    }

    /// Runs one operation of each kind (no step depends on an earlier one
    /// succeeding) and returns the steps that failed. Every failure must be
    /// an injected one.
    fn script(disk: &FaultyDisk) -> Vec<&'static str> {
        prepare(disk.inner());
        let mut buf = [0u8; 4];
        let results: [io::Result<()>; 12] = [
            disk.create_dir_all(p("d")),
            disk.exists(p("d/f")).map(drop),
            disk.write_at(p("d/f"), 0, b"abc"),
            disk.read_at(p("d/f"), 0, &mut buf).map(drop),
            disk.set_len(p("d/f"), 2),
            disk.sync(p("d/f")),
            disk.len(p("d/f")).map(drop),
            disk.create(p("d/g")),
            disk.sync_dir(p("d")),
            disk.list(p("d")).map(drop),
            disk.rename(p("d/x"), p("d/z")),
            disk.remove(p("d/y")),
        ];
        let mut failed = Vec::new();
        for (step, result) in ALL.into_iter().zip(results) {
            if let Err(e) = result {
                assert!(
                    e.to_string().starts_with("injected failure"),
                    "{step}: not an injected failure: {e}"
                );
                failed.push(step);
            }
        }
        failed
    }

    fn fresh() -> FaultyDisk {
        FaultyDisk::new(Arc::new(MemDisk::new()))
    }

    #[test]
    fn without_faults_every_operation_passes_through_and_is_counted() {
        let disk = fresh();
        assert!(script(&disk).is_empty());
        assert_eq!((disk.mutations(), disk.syncs(), disk.writes()), (8, 2, 2));
        assert_eq!(disk.injected_failures(), 0);
        let inner = disk.inner();
        assert_eq!(inner.read_all(p("d/f")).unwrap(), b"ab");
        assert!(inner.pending_ops(p("d/f")).unwrap().is_empty(), "synced");
        assert_eq!(inner.list(p("d")).unwrap(), vec!["f", "g", "z"]);
    }

    #[test]
    fn freeze_at_fails_that_mutation_and_everything_after_until_heal() {
        let disk = fresh();
        disk.freeze_at(3);
        assert!(!disk.is_frozen());
        assert_eq!(
            script(&disk),
            [
                "sync", "len", "create", "sync_dir", "list", "rename", "remove"
            ]
        );
        assert!(disk.is_frozen());
        assert_eq!(disk.injected_failures(), 7);
        // Failed attempts are counted all the same.
        assert_eq!(disk.mutations(), 8);
        // Nothing from the failed operations reached the inner disk.
        let inner = disk.inner();
        assert!(
            !inner.pending_ops(p("d/f")).unwrap().is_empty(),
            "never synced"
        );
        assert_eq!(inner.list(p("d")).unwrap(), vec!["f", "x", "y"]);

        assert_eq!(script(&disk), ALL, "frozen until healed");
        disk.heal();
        assert!(!disk.is_frozen());
        assert!(script(&disk).is_empty());
    }

    #[test]
    fn freeze_at_counts_from_now() {
        let disk = fresh();
        assert!(script(&disk).is_empty());
        disk.freeze_at(0);
        assert_eq!(script(&disk), ALL);
        disk.heal();
        disk.freeze_at(7);
        assert_eq!(script(&disk), ["remove"]);
        assert!(disk.is_frozen());
    }

    #[test]
    fn fail_mutations_from_fails_later_mutations_but_not_reads() {
        let disk = fresh();
        disk.fail_mutations_from(3);
        assert_eq!(
            script(&disk),
            ["sync", "create", "sync_dir", "rename", "remove"]
        );
        assert!(!disk.is_frozen());
        assert_eq!(
            script(&disk),
            [
                "create_dir_all",
                "write_at",
                "set_len",
                "sync",
                "create",
                "sync_dir",
                "rename",
                "remove"
            ]
        );
        disk.heal();
        assert!(script(&disk).is_empty());
    }

    #[test]
    fn fail_nth_sync_fails_that_sync_once() {
        let disk = fresh();
        disk.fail_nth_sync(1);
        assert_eq!(script(&disk), ["sync_dir"]);
        assert!(script(&disk).is_empty(), "once");
        disk.fail_nth_sync(0);
        assert_eq!(script(&disk), ["sync"]);
        assert_eq!(disk.syncs(), 6);
        assert_eq!(disk.injected_failures(), 2);
    }

    #[test]
    fn fail_nth_write_fails_that_write_once() {
        let disk = fresh();
        disk.fail_nth_write(0);
        assert_eq!(script(&disk), ["write_at"]);
        assert_eq!(disk.inner().read_all(p("d/f")).unwrap(), b"\0\0");
        assert!(script(&disk).is_empty(), "once");
        disk.fail_nth_write(1);
        assert_eq!(script(&disk), ["set_len"]);
        assert_eq!(disk.writes(), 6);
    }

    #[test]
    fn fail_every_sync_fails_all_syncs_while_set() {
        let disk = fresh();
        disk.set_fail_every_sync(true);
        assert_eq!(script(&disk), ["sync", "sync_dir"]);
        assert_eq!(script(&disk), ["sync", "sync_dir"]);
        disk.set_fail_every_sync(false);
        assert!(script(&disk).is_empty());
    }

    #[test]
    fn fail_every_write_fails_all_writes_while_set() {
        let disk = fresh();
        disk.set_fail_every_write(true);
        assert_eq!(script(&disk), ["write_at", "set_len"]);
        assert_eq!(disk.inner().read_all(p("d/f")).unwrap(), b"");
        // The provided methods go through the failing write.
        assert!(disk.append(p("d/f"), b"x").is_err());
        assert!(disk.truncate(p("d/f"), 0).is_err());
        assert_eq!(disk.read_all(p("d/f")).unwrap(), b"");
        disk.set_fail_every_write(false);
        assert!(script(&disk).is_empty());
    }

    #[test]
    fn heal_disarms_every_rule() {
        let disk = fresh();
        disk.freeze_at(5);
        disk.fail_mutations_from(6);
        disk.fail_nth_sync(0);
        disk.fail_nth_write(0);
        disk.set_fail_every_sync(true);
        disk.set_fail_every_write(true);
        disk.heal();
        assert!(script(&disk).is_empty());
        assert_eq!(disk.mutations(), 8, "counters survive heal");
    }
}
