//! The v3 backend: redb behind a batch transaction, like etcd's backend
//! `batchTx`.
//!
//! Writes are buffered in an in-memory overlay (reads see it first) and the
//! whole buffer is committed in ONE durable redb write transaction: when an
//! entry boundary finds `batch_limit` writes pending ([`Backend::end_entry`]),
//! when the driver's timer finds `batch_interval_ms` elapsed
//! ([`Backend::commit_if_due`]), or on demand ([`Backend::force_commit`]).
//!
//! # The consistent index rule
//!
//! Every commit, automatic ones included, writes the in-memory consistent
//! index, its term and the conf state into the `meta` table in the same redb
//! write transaction as the buffered data (etcd's pre-commit hook). The apply
//! path buffers an entry's writes, then calls [`Backend::set_consistent_index`]
//! for that entry, then [`Backend::end_entry`]; commits happen only at those
//! boundaries (the driver is single-threaded and calls the timer commit
//! between entries). Hence the overlay always holds the writes of exactly the
//! entries up to the in-memory consistent index, and a commit can never make
//! an index durable without its entry's writes, nor writes without their
//! index. redb's commit is atomic, so after any crash the backend holds some
//! commit's data together with that commit's index, and replay re-applies
//! exactly the entries after it (`should_apply_v3`).
//!
//! As a guard, a timer commit ([`Backend::commit_if_due`]) is skipped while
//! writes were buffered after the last boundary (`set_consistent_index` or
//! `end_entry`): it would otherwise persist half an entry under the previous
//! entry's index.
//!
//! The apply path only ever raises the index (it writes it for entries
//! newer than it). One path must lower it: a restore from a backend
//! snapshot starts a new cluster whose log begins again at the number of
//! its members, while the copied backend names an entry of the old log
//! (etcd #13514: `UnsafeUpdateConsistentIndex` refuses to decrease, the
//! restore uses the forcing variant). That path calls
//! [`Backend::restore_consistent_index`], which may lower it.
//!
//! # Fail-stop
//!
//! A commit that fails (I/O error, crash point) leaves redb's durable state
//! unknown to us; the backend is then poisoned and every later call errors.
//! The member must be discarded and reopened, never retried.

pub(crate) mod meta;
pub(crate) mod snapshot;
mod storage;

#[cfg(test)]
mod crash_tests;
#[cfg(test)]
mod tests;

pub use meta::{CONF_STATE_KEY, CONSISTENT_INDEX_KEY, ConsistentIndex, PersistedMeta};

use crate::bugs::{Bug, KnownBugs};
use crate::crash_point::{CrashHook, CrashPoint, Crashed};
use crate::disk::Disk;
use crate::proto::ConfState;
use prost::Message;
use redb::{Database, Durability, ReadableDatabase, ReadableTable, TableDefinition, TableHandle};
use std::collections::BTreeMap;
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use storage::DiskStorage;

/// redb's page cache limit per member (redb's default is 1 GiB; the
/// simulator runs several members in one process).
const CACHE_SIZE: usize = 32 << 20;

/// Who asked for a commit: the batch itself (limit or timer) or a caller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum CommitKind {
    Automatic,
    Explicit,
}

/// When the batch transaction commits by itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BackendOptions {
    /// Commit at an entry boundary once this many writes are pending.
    pub batch_limit: usize,
    /// Commit on the driver's timer once this long has passed since the
    /// last commit.
    pub batch_interval_ms: u64,
    /// Known-bug switches that live in the backend (see `crate::bugs`).
    pub bugs: KnownBugs,
}

impl Default for BackendOptions {
    fn default() -> Self {
        BackendOptions {
            bugs: KnownBugs::NONE,
            batch_limit: 10_000,
            batch_interval_ms: 100,
        }
    }
}

/// The backend's tables.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Table {
    /// MVCC revisions.
    Key,
    /// Consistent index, term, conf state, compaction state.
    Meta,
    /// Cluster members.
    Members,
    /// Ids of removed members.
    MembersRemoved,
    /// Cluster version, downgrade info.
    Cluster,
}

type Def = TableDefinition<'static, &'static [u8], &'static [u8]>;

impl Table {
    /// Every table, in a fixed order.
    pub const ALL: [Table; 5] = [
        Table::Key,
        Table::Meta,
        Table::Members,
        Table::MembersRemoved,
        Table::Cluster,
    ];

    /// The table's name in redb.
    pub fn name(self) -> &'static str {
        match self {
            Table::Key => "key",
            Table::Meta => "meta",
            Table::Members => "members",
            Table::MembersRemoved => "members_removed",
            Table::Cluster => "cluster",
        }
    }

    fn def(self) -> Def {
        TableDefinition::new(self.name())
    }

    /// The table's stable number in snapshot blobs.
    fn id(self) -> u32 {
        match self {
            Table::Key => 1,
            Table::Meta => 2,
            Table::Members => 3,
            Table::MembersRemoved => 4,
            Table::Cluster => 5,
        }
    }

    fn from_id(id: u32) -> Option<Table> {
        Table::ALL.into_iter().find(|t| t.id() == id)
    }
}

/// Backend failures.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// The driver stopped the member at a crash point.
    #[error(transparent)]
    Crashed(#[from] Crashed),
    /// The database file could not be created.
    #[error("backend {path}: {op}: {source}")]
    Io {
        path: PathBuf,
        op: &'static str,
        #[source]
        source: std::io::Error,
    },
    /// redb failed (I/O errors of the disk arrive here too).
    #[error("backend {path}: {op}: {source}")]
    Redb {
        path: PathBuf,
        op: &'static str,
        #[source]
        source: Box<redb::Error>,
    },
    /// redb gave up on the file's structure (it panicked reading it).
    #[error("backend {path}: {op}: damaged database file: {reason}")]
    Damaged {
        path: PathBuf,
        op: &'static str,
        reason: String,
    },
    /// A `meta` value does not decode.
    #[error("backend meta key {key:?} is corrupt: {reason}")]
    CorruptMeta { key: String, reason: String },
    /// A snapshot blob does not decode or fails its checksum.
    #[error("backend snapshot is corrupt: {reason}")]
    CorruptSnapshot { reason: String },
    /// An earlier commit failed; the backend must be reopened.
    #[error("backend is poisoned by an earlier failed commit: {reason}")]
    Poisoned { reason: String },
}

impl BackendError {
    /// The crash point, if this error is a driver-ordered crash.
    pub fn as_crashed(&self) -> Option<Crashed> {
        match self {
            BackendError::Crashed(c) => Some(*c),
            _ => None,
        }
    }
}

/// A `(key, value)` row of a table.
pub type Row = (Vec<u8>, Vec<u8>);

/// A row with its table, as carried in a snapshot blob.
pub(crate) type TableRow = (Table, Vec<u8>, Vec<u8>);

/// Buffered writes of one table: `None` is a delete.
type Overlay = BTreeMap<Table, BTreeMap<Vec<u8>, Option<Vec<u8>>>>;

/// redb behind a batch transaction.
#[derive(Debug)]
pub struct Backend {
    db: Database,
    path: PathBuf,
    opts: BackendOptions,
    hook: Arc<dyn CrashHook>,
    overlay: Overlay,
    /// Writes buffered since the last commit (each put/delete counts).
    pending: usize,
    /// In-memory consistent index: durable only with the next commit.
    ci: ConsistentIndex,
    conf_state: Option<ConfState>,
    /// `ci` or `conf_state` changed since the last commit.
    meta_dirty: bool,
    /// Writes were buffered after the last entry boundary.
    mid_entry: bool,
    /// The latest time the driver told us about.
    clock_ms: u64,
    /// When the last commit happened (or when time was first seen).
    last_commit_ms: Option<u64>,
    commits: u64,
    poisoned: Option<String>,
    /// redb found the file not cleanly closed and repaired it at open.
    opened_unclean: bool,
}

impl Backend {
    /// Opens (creating if missing) the database at `path` on `disk`, and
    /// loads the consistent index, term and conf state from `meta`.
    pub fn open(
        disk: Arc<dyn Disk>,
        path: &Path,
        opts: BackendOptions,
        hook: Arc<dyn CrashHook>,
    ) -> Result<Backend, BackendError> {
        let storage = DiskStorage::open(disk, path)
            .map_err(|source| BackendError::Io {
                path: path.to_path_buf(),
                op: "create",
                source,
            })?
            .ignoring_full_disk(opts.bugs.has(Bug::IgnoreStorageFull));
        // redb repairs itself after an unclean shutdown (rolling back a
        // partially written commit); say so once, it explains a member whose
        // consistent index went back one batch.
        let repaired = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let seen = repaired.clone();
        let file = path.display().to_string();
        let mut db = contain_redb_panic(path, "open", || {
            redb::Builder::new()
                .set_cache_size(CACHE_SIZE)
                .set_repair_callback(move |_| {
                    if !seen.swap(true, std::sync::atomic::Ordering::Relaxed) {
                        tracing::warn!(file = %file, offset = 0u64, "backend: repairing after an unclean shutdown");
                    }
                })
                .create_with_backend(storage)
        })?
        .map_err(redb_err(path, "open"))?;
        // After a clean shutdown redb trusts the file and checks no page
        // checksums, so a flipped bit in a value would be read back as data.
        // Verify every page once per open; a damaged newest commit is rolled
        // back to the previous intact one (replay from the WAL redoes it).
        let intact = contain_redb_panic(path, "check integrity", || db.check_integrity())?
            .map_err(redb_err(path, "check integrity"))?;
        if !intact {
            tracing::warn!(
                file = %path.display(),
                "backend: integrity check failed; rolled back to the last intact commit"
            );
        }
        let mut be = Backend {
            db,
            path: path.to_path_buf(),
            opts,
            hook,
            overlay: Overlay::new(),
            pending: 0,
            ci: ConsistentIndex::default(),
            conf_state: None,
            meta_dirty: false,
            mid_entry: false,
            clock_ms: 0,
            last_commit_ms: None,
            commits: 0,
            poisoned: None,
            opened_unclean: repaired.load(std::sync::atomic::Ordering::Relaxed),
        };
        be.create_missing_tables()?;
        let meta = be.persisted_meta()?;
        be.ci = meta.consistent_index;
        be.conf_state = meta.conf_state;
        Ok(be)
    }

    /// Whether this open found the database not cleanly closed (its last
    /// writer died without redb's shutdown) and repaired it.
    pub fn opened_unclean(&self) -> bool {
        self.opened_unclean
    }

    /// A fresh database has no tables; reads of a missing table fail in
    /// redb, so create them all once (durably, with no data).
    fn create_missing_tables(&mut self) -> Result<(), BackendError> {
        let rtx = self.db.begin_read().map_err(self.err("begin read"))?;
        let names: Vec<String> = rtx
            .list_tables()
            .map_err(self.err("list tables"))?
            .map(|t| t.name().to_string())
            .collect();
        drop(rtx);
        if Table::ALL
            .iter()
            .all(|t| names.iter().any(|n| n == t.name()))
        {
            return Ok(());
        }
        let mut txn = self.db.begin_write().map_err(self.err("begin write"))?;
        txn.set_durability(Durability::Immediate)
            .map_err(self.err("set durability"))?;
        for t in Table::ALL {
            txn.open_table(t.def()).map_err(self.err("create table"))?;
        }
        txn.commit().map_err(self.err("commit"))
    }

    fn err<E: Into<redb::Error>>(&self, op: &'static str) -> impl FnOnce(E) -> BackendError {
        redb_err(&self.path, op)
    }

    fn check_poisoned(&self) -> Result<(), BackendError> {
        match &self.poisoned {
            Some(reason) => Err(BackendError::Poisoned {
                reason: reason.clone(),
            }),
            None => Ok(()),
        }
    }

    fn poison(&mut self, e: &BackendError) {
        tracing::warn!(path = %self.path.display(), error = %e, "backend commit failed; poisoned");
        self.poisoned = Some(e.to_string());
    }

    fn observe(&mut self, now_ms: u64) {
        self.clock_ms = self.clock_ms.max(now_ms);
        if self.last_commit_ms.is_none() {
            self.last_commit_ms = Some(self.clock_ms);
        }
    }

    /// Buffers a write.
    pub fn put(&mut self, table: Table, key: &[u8], value: &[u8]) {
        self.buffer(table, key, Some(value.to_vec()));
    }

    /// Buffers a delete.
    pub fn delete(&mut self, table: Table, key: &[u8]) {
        self.buffer(table, key, None);
    }

    fn buffer(&mut self, table: Table, key: &[u8], value: Option<Vec<u8>>) {
        self.overlay
            .entry(table)
            .or_default()
            .insert(key.to_vec(), value);
        self.pending += 1;
        self.mid_entry = true;
    }

    /// The value of `key`: the buffered write if any, else the committed one.
    pub fn get(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>, BackendError> {
        self.check_poisoned()?;
        if let Some(buffered) = self.overlay.get(&table).and_then(|rows| rows.get(key)) {
            return Ok(buffered.clone());
        }
        let rtx = self.db.begin_read().map_err(self.err("begin read"))?;
        let t = rtx
            .open_table(table.def())
            .map_err(self.err("open table"))?;
        let v = t.get(key).map_err(self.err("get"))?;
        Ok(v.map(|g| g.value().to_vec()))
    }

    /// Rows with `start <= key < end` (no end: to the last key), sorted,
    /// buffered writes merged over committed rows.
    pub fn range(
        &self,
        table: Table,
        start: &[u8],
        end: Option<&[u8]>,
    ) -> Result<Vec<Row>, BackendError> {
        self.check_poisoned()?;
        if end.is_some_and(|e| e <= start) {
            return Ok(Vec::new());
        }
        let upper = end.map_or(Bound::Unbounded, Bound::Excluded);
        let mut rows: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
        {
            let rtx = self.db.begin_read().map_err(self.err("begin read"))?;
            let t = rtx
                .open_table(table.def())
                .map_err(self.err("open table"))?;
            for item in t
                .range::<&[u8]>((Bound::Included(start), upper))
                .map_err(self.err("range"))?
            {
                let (k, v) = item.map_err(self.err("range"))?;
                rows.insert(k.value().to_vec(), v.value().to_vec());
            }
        }
        if let Some(buffered) = self.overlay.get(&table) {
            for (k, v) in buffered.range::<[u8], _>((Bound::Included(start), upper)) {
                match v {
                    Some(v) => rows.insert(k.clone(), v.clone()),
                    None => rows.remove(k),
                };
            }
        }
        Ok(rows.into_iter().collect())
    }

    /// The known-bug switches this backend was opened with (the MVCC layer
    /// above it reads them too).
    pub fn known_bugs(&self) -> KnownBugs {
        self.opts.bugs
    }

    /// The in-memory consistent index (durable only after the next commit).
    pub fn consistent_index(&self) -> ConsistentIndex {
        self.ci
    }

    /// The in-memory conf state (durable only after the next commit).
    pub fn conf_state(&self) -> Option<ConfState> {
        self.conf_state.clone()
    }

    /// Records that the entry `index` (of `term`) is applied. Call it only
    /// after the entry's writes are buffered: it marks an entry boundary.
    pub fn set_consistent_index(&mut self, index: u64, term: u64) {
        self.ci = ConsistentIndex { index, term };
        self.meta_dirty = true;
        self.mid_entry = false;
    }

    /// Points the consistent index at `index` of a new log, lower than
    /// before if need be (a restore from a backend snapshot: the copied
    /// backend names an entry of the old cluster's log). Persisted with the
    /// next commit; returns the index the backend now holds.
    pub fn restore_consistent_index(&mut self, index: u64, term: u64) -> ConsistentIndex {
        if self.opts.bugs.has(Bug::CindexOnlyGrows) && index < self.ci.index {
            // The bug: the "only grows" rule of the apply path applied to
            // the restore, which silently keeps the old cluster's index.
            return self.ci;
        }
        self.ci = ConsistentIndex { index, term };
        self.meta_dirty = true;
        self.ci
    }

    /// Records the conf state, persisted with the next commit.
    pub fn set_conf_state(&mut self, cs: &ConfState) {
        self.conf_state = Some(cs.clone());
        self.meta_dirty = true;
    }

    /// Ends an entry (its writes and its consistent index are buffered):
    /// commits if `batch_limit` writes are pending. Returns whether it did.
    pub fn end_entry(&mut self, now_ms: u64) -> Result<bool, BackendError> {
        self.check_poisoned()?;
        self.observe(now_ms);
        self.mid_entry = false;
        if self.pending >= self.opts.batch_limit {
            self.commit(CommitKind::Automatic)?;
            return Ok(true);
        }
        Ok(false)
    }

    /// The driver's timer: commits if anything is buffered and
    /// `batch_interval_ms` passed since the last commit. Returns whether it
    /// committed.
    pub fn commit_if_due(&mut self, now_ms: u64) -> Result<bool, BackendError> {
        self.check_poisoned()?;
        self.observe(now_ms);
        if !self.dirty() {
            return Ok(false);
        }
        let since = self.last_commit_ms.unwrap_or(self.clock_ms);
        if self.clock_ms.saturating_sub(since) < self.opts.batch_interval_ms {
            return Ok(false);
        }
        if self.mid_entry {
            tracing::debug!(path = %self.path.display(), "timer commit deferred: inside an entry");
            return Ok(false);
        }
        self.commit(CommitKind::Automatic)?;
        Ok(true)
    }

    /// Commits whatever is buffered (and the meta), now.
    pub fn force_commit(&mut self) -> Result<(), BackendError> {
        self.check_poisoned()?;
        self.commit(CommitKind::Explicit)
    }

    fn dirty(&self) -> bool {
        self.pending > 0 || self.meta_dirty
    }

    /// Writes buffered since the last commit.
    pub fn pending_writes(&self) -> usize {
        self.pending
    }

    /// Commits so far through this handle.
    pub fn commits(&self) -> u64 {
        self.commits
    }

    /// The meta values redb holds now, ignoring anything buffered.
    pub fn persisted_meta(&self) -> Result<PersistedMeta, BackendError> {
        self.check_poisoned()?;
        let rtx = self.db.begin_read().map_err(self.err("begin read"))?;
        let t = rtx
            .open_table(Table::Meta.def())
            .map_err(self.err("open table"))?;
        let ci = t.get(CONSISTENT_INDEX_KEY).map_err(self.err("get"))?;
        let cs = t.get(CONF_STATE_KEY).map_err(self.err("get"))?;
        meta::decode(
            ci.as_ref().map(|g| g.value()),
            cs.as_ref().map(|g| g.value()),
        )
    }

    /// Commits the overlay and the meta in one durable transaction; any
    /// failure poisons the backend.
    fn commit(&mut self, kind: CommitKind) -> Result<(), BackendError> {
        if let Err(e) = self.commit_inner(kind) {
            self.poison(&e);
            return Err(e);
        }
        self.committed()
    }

    /// The bookkeeping after a durable commit (batch or restore): nothing
    /// is buffered any more; then the `backend.commit.after` crash point.
    fn committed(&mut self) -> Result<(), BackendError> {
        self.overlay.clear();
        self.pending = 0;
        self.meta_dirty = false;
        self.mid_entry = false;
        self.commits += 1;
        self.last_commit_ms = Some(self.clock_ms);
        if let Err(c) = self.hook.at(CrashPoint::BackendCommitAfter) {
            let e = BackendError::Crashed(c);
            self.poison(&e);
            return Err(e);
        }
        Ok(())
    }

    fn commit_inner(&self, kind: CommitKind) -> Result<(), BackendError> {
        let mut txn = self.db.begin_write().map_err(self.err("begin write"))?;
        // Durability::None would keep the commit in memory only: every batch
        // commit must reach the disk.
        txn.set_durability(Durability::Immediate)
            .map_err(self.err("set durability"))?;
        for (table, rows) in &self.overlay {
            let mut t = txn
                .open_table(table.def())
                .map_err(self.err("open table"))?;
            for (k, v) in rows {
                match v {
                    Some(v) => t.insert(k.as_slice(), v.as_slice()).map(|_| ()),
                    None => t.remove(k.as_slice()).map(|_| ()),
                }
                .map_err(self.err("write"))?;
            }
        }
        let skip_meta =
            kind == CommitKind::Automatic && self.opts.bugs.has(Bug::CindexOnlyOnExplicitCommit);
        if !skip_meta {
            // The pre-commit hook: the index travels with the data it covers
            // (written last, so it wins over any buffered meta write).
            let mut t = txn
                .open_table(Table::Meta.def())
                .map_err(self.err("open table"))?;
            t.insert(
                CONSISTENT_INDEX_KEY,
                meta::encode_consistent_index(self.ci).as_slice(),
            )
            .map_err(self.err("write meta"))?;
            if let Some(cs) = &self.conf_state {
                t.insert(CONF_STATE_KEY, cs.encode_to_vec().as_slice())
                    .map_err(self.err("write meta"))?;
            }
        }
        // Dropping `txn` on a crash here aborts it: nothing becomes durable.
        self.hook.at(CrashPoint::BackendCommitBefore)?;
        txn.commit().map_err(self.err("commit"))
    }

    /// Every committed row of every table as one checked blob (buffered
    /// writes are committed first, so the blob matches the durable state).
    pub fn snapshot_bytes(&mut self) -> Result<Vec<u8>, BackendError> {
        self.force_commit()?;
        let rtx = self.db.begin_read().map_err(self.err("begin read"))?;
        let mut rows = Vec::new();
        for table in Table::ALL {
            let t = rtx
                .open_table(table.def())
                .map_err(self.err("open table"))?;
            for item in t.iter().map_err(self.err("iterate"))? {
                let (k, v) = item.map_err(self.err("iterate"))?;
                rows.push((table, k.value().to_vec(), v.value().to_vec()));
            }
        }
        Ok(snapshot::encode(rows))
    }

    /// Checks a snapshot blob (checksum, rows, meta values) without touching
    /// the database, so a damaged blob can be refused before anything that
    /// depends on it is made durable.
    pub fn check_snapshot_bytes(bytes: &[u8]) -> Result<(), BackendError> {
        let rows = snapshot::decode(bytes)?;
        let find = |key: &[u8]| {
            rows.iter()
                .find(|(t, k, _)| *t == Table::Meta && k.as_slice() == key)
                .map(|(_, _, v)| v.as_slice())
        };
        meta::decode(find(CONSISTENT_INDEX_KEY), find(CONF_STATE_KEY)).map(|_| ())
    }

    /// Replaces every table with the blob's rows in one durable commit and
    /// reloads the meta. Buffered writes are discarded (the snapshot
    /// supersedes them); callers restore between entries and rebuild the
    /// MVCC index afterwards. A corrupt blob changes nothing.
    pub fn restore_from_bytes(&mut self, bytes: &[u8]) -> Result<(), BackendError> {
        self.check_poisoned()?;
        let rows = snapshot::decode(bytes)?;
        // Check the meta before replacing anything, so a blob with a bad
        // meta value is rejected whole.
        let find = |key: &[u8]| {
            rows.iter()
                .find(|(t, k, _)| *t == Table::Meta && k.as_slice() == key)
                .map(|(_, _, v)| v.as_slice())
        };
        let meta = meta::decode(find(CONSISTENT_INDEX_KEY), find(CONF_STATE_KEY))?;
        if let Err(e) = self.restore_inner(&rows) {
            self.poison(&e);
            return Err(e);
        }
        self.ci = meta.consistent_index;
        self.conf_state = meta.conf_state;
        self.committed()
    }

    fn restore_inner(&self, rows: &[TableRow]) -> Result<(), BackendError> {
        let mut txn = self.db.begin_write().map_err(self.err("begin write"))?;
        txn.set_durability(Durability::Immediate)
            .map_err(self.err("set durability"))?;
        for table in Table::ALL {
            txn.delete_table(table.def())
                .map_err(self.err("delete table"))?;
            let mut t = txn
                .open_table(table.def())
                .map_err(self.err("open table"))?;
            for (_, k, v) in rows.iter().filter(|(t, _, _)| *t == table) {
                t.insert(k.as_slice(), v.as_slice())
                    .map_err(self.err("write"))?;
            }
        }
        self.hook.at(CrashPoint::BackendCommitBefore)?;
        txn.commit().map_err(self.err("commit"))
    }
}

/// Runs a redb call that reads file structures before verifying them: redb
/// panics on some damaged structures (a corrupt allocator state after a
/// clean shutdown, for one). A damaged file must be an error naming it, not
/// a crashed process, so such a panic is turned into `BackendError::Damaged`.
fn contain_redb_panic<T>(
    path: &Path,
    op: &'static str,
    call: impl FnOnce() -> T,
) -> Result<T, BackendError> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(call)).map_err(|panic| {
        let reason = panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "redb panicked".to_string());
        BackendError::Damaged {
            path: path.to_path_buf(),
            op,
            reason,
        }
    })
}

fn redb_err<E: Into<redb::Error>>(path: &Path, op: &'static str) -> impl FnOnce(E) -> BackendError {
    let path = path.to_path_buf();
    move |e| BackendError::Redb {
        path,
        op,
        source: Box::new(e.into()),
    }
}
