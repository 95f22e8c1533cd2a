//! etcd-style MVCC on the backend.
//!
//! The store revision starts at 1. Each write request (a put, a delete
//! range that deletes something, a txn whose branch writes) makes exactly one
//! new main revision; the writes inside it get sub revisions 0, 1, ... Every
//! write is a row of the `key` table (see [`revision`]) whose value is the
//! prost [`KeyValue`]; a delete writes a tombstone row holding just the key.
//! An in-memory index (key → generations of revisions) is rebuilt from that
//! table on [`Mvcc::open`], so revisions survive a restart.
//!
//! Writes go into the backend's batch buffer; the apply path decides when an
//! entry ends and the backend commits whole entries only, so this module
//! never sees a half-persisted request. After a crash the member rebuilds its
//! `Mvcc` from whatever commit survived.
//!
//! Requests are validated before anything is written: a request that fails
//! validation returns an error and changes neither the index nor the
//! backend's buffer.

mod compare;
mod key_index;
pub mod revision;

#[cfg(test)]
mod tests;

use crate::backend::{Backend, BackendError, Table};
use crate::bugs::{Bug, KnownBugs};
use crate::crash_point::Crashed;
use crate::proto::{
    DeleteRangeRequest, KeyValue, PutRequest, RangeRequest, RequestOp, Response, TxnRequest,
    request_op::Op,
};
use key_index::KeyHistory;
use prost::Message;
use revision::Rev;
use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound;

/// Meta key of the compact revision.
///
/// etcd records a "scheduled" and a "finished" compact revision because it
/// deletes compacted rows in the background over many transactions. Here a
/// compaction's deletions and this record are buffered by one apply of one
/// entry, and the backend commits only at entry boundaries in one redb
/// transaction, so they become durable together: one value suffices.
pub const COMPACT_REVISION_KEY: &[u8] = b"compact_revision";

/// The stored form of the compact revision.
#[derive(Clone, PartialEq, Eq, prost::Message)]
struct CompactRecord {
    #[prost(int64, tag = "1")]
    revision: i64,
}

/// MVCC failures. The request-level ones (`Compacted`, `FutureRevision`,
/// `DuplicateKey`, `InvalidRequest`) change nothing; the others mean the
/// member must stop.
#[derive(Debug, thiserror::Error)]
pub enum MvccError {
    #[error("mvcc: required revision {requested} has been compacted (compact revision {compact})")]
    Compacted { requested: i64, compact: i64 },
    #[error("mvcc: required revision {requested} is a future revision (current {current})")]
    FutureRevision { requested: i64, current: i64 },
    #[error("mvcc: duplicate key {key:?} in one txn branch")]
    DuplicateKey { key: String },
    #[error("mvcc: invalid request: {reason}")]
    InvalidRequest { reason: String },
    /// A `key` table row does not parse.
    #[error("mvcc: key table row {row} is corrupt: {reason}")]
    CorruptRow { row: String, reason: String },
    /// A meta value of the MVCC does not decode.
    #[error("mvcc: meta key {key:?} is corrupt: {reason}")]
    CorruptMeta { key: String, reason: String },
    /// The index names a revision the key table does not hold.
    #[error("mvcc: revision {rev} of key {key:?} is missing from the key table")]
    MissingRevision { key: String, rev: Rev },
    /// The driver stopped the member at a crash point.
    #[error(transparent)]
    Crashed(Crashed),
    #[error(transparent)]
    Backend(BackendError),
}

impl MvccError {
    /// Whether the request itself was invalid (the entry still applies, as
    /// a failed request), as opposed to a store failure that stops the member.
    pub fn is_request_error(&self) -> bool {
        matches!(
            self,
            MvccError::Compacted { .. }
                | MvccError::FutureRevision { .. }
                | MvccError::DuplicateKey { .. }
                | MvccError::InvalidRequest { .. }
        )
    }
}

impl From<BackendError> for MvccError {
    /// Keeps a crash a crash, so callers can match it without digging.
    fn from(e: BackendError) -> Self {
        match e {
            BackendError::Crashed(c) => MvccError::Crashed(c),
            e => MvccError::Backend(e),
        }
    }
}

impl From<Crashed> for MvccError {
    fn from(c: Crashed) -> Self {
        MvccError::Crashed(c)
    }
}

fn invalid(reason: impl Into<String>) -> MvccError {
    MvccError::InvalidRequest {
        reason: reason.into(),
    }
}

fn lossy(key: &[u8]) -> String {
    String::from_utf8_lossy(key).into_owned()
}

/// The keys a request names, per proto.rs: an empty `range_end` is the
/// single key, `[0]` is every key >= `key`, otherwise `[key, range_end)`.
#[derive(Clone, Debug)]
struct KeyRange {
    start: Vec<u8>,
    /// `None`: no upper bound.
    end: Option<Vec<u8>>,
    single: bool,
}

impl KeyRange {
    fn new(key: &[u8], range_end: &[u8]) -> Result<KeyRange, MvccError> {
        if range_end.is_empty() {
            if key.is_empty() {
                return Err(invalid("key is not provided"));
            }
            return Ok(KeyRange {
                start: key.to_vec(),
                end: None,
                single: true,
            });
        }
        Ok(KeyRange {
            start: key.to_vec(),
            end: (range_end != [0]).then(|| range_end.to_vec()),
            single: false,
        })
    }

    fn contains(&self, key: &[u8]) -> bool {
        if self.single {
            return key == self.start.as_slice();
        }
        key >= self.start.as_slice() && self.end.as_deref().is_none_or(|e| key < e)
    }

    /// The index entries in range, in key order.
    fn iter<'a>(
        &self,
        index: &'a BTreeMap<Vec<u8>, KeyHistory>,
    ) -> Box<dyn Iterator<Item = (&'a Vec<u8>, &'a KeyHistory)> + 'a> {
        if self.single {
            return Box::new(index.get_key_value(self.start.as_slice()).into_iter());
        }
        let lower = Bound::Included(self.start.as_slice());
        match self.end.as_deref() {
            // BTreeMap::range panics on an inverted range: it is empty.
            Some(e) if e <= self.start.as_slice() => Box::new(std::iter::empty()),
            Some(e) => Box::new(index.range::<[u8], _>((lower, Bound::Excluded(e)))),
            None => Box::new(index.range::<[u8], _>((lower, Bound::Unbounded))),
        }
    }
}

/// The revision a write request is building.
struct WriteRev {
    main: i64,
    next_sub: i64,
}

impl WriteRev {
    fn next(&mut self) -> Rev {
        let rev = Rev {
            main: self.main,
            sub: self.next_sub,
        };
        self.next_sub += 1;
        rev
    }

    fn wrote(&self) -> bool {
        self.next_sub > 0
    }
}

/// The MVCC store's in-memory state; its rows live in the backend.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mvcc {
    index: BTreeMap<Vec<u8>, KeyHistory>,
    current: i64,
    compact: i64,
    /// The backend's known-bug switches.
    bugs: KnownBugs,
}

impl Mvcc {
    /// Rebuilds the index from the `key` table and the compact revision
    /// from `meta`.
    pub fn open(be: &Backend) -> Result<Mvcc, MvccError> {
        let compact = match be.get(Table::Meta, COMPACT_REVISION_KEY)? {
            Some(bytes) => {
                CompactRecord::decode(bytes.as_slice())
                    .map_err(|e| MvccError::CorruptMeta {
                        key: lossy(COMPACT_REVISION_KEY),
                        reason: e.to_string(),
                    })?
                    .revision
            }
            None => 0,
        };
        let mut mvcc = Mvcc {
            index: BTreeMap::new(),
            current: 1,
            compact,
            bugs: be.known_bugs(),
        };
        // Rows come sorted by revision, i.e. in write order.
        for (row, value) in be.range(Table::Key, b"", None)? {
            let corrupt = |reason: String| MvccError::CorruptRow {
                row: revision::hex(&row),
                reason,
            };
            let (rev, tombstone) = revision::decode(&row).map_err(corrupt)?;
            let kv =
                KeyValue::decode(value.as_slice()).map_err(|e| corrupt(format!("value: {e}")))?;
            let history = mvcc.index.entry(kv.key.clone()).or_default();
            if tombstone {
                if !history.tombstone(rev) {
                    return Err(corrupt(format!(
                        "tombstone of {:?}, which does not exist at {rev}",
                        lossy(&kv.key)
                    )));
                }
            } else {
                history.restore_put(rev, kv.create_revision, kv.version);
            }
            mvcc.current = mvcc.current.max(rev.main);
        }
        // A compaction can remove the rows of the newest revision (a delete
        // at or below the compact revision), never the revision itself.
        if !mvcc.bugs.has(Bug::RevisionNotRestoredAfterCompaction) {
            mvcc.current = mvcc.current.max(mvcc.compact);
        }
        Ok(mvcc)
    }

    /// The latest main revision.
    pub fn current_revision(&self) -> i64 {
        self.current
    }

    /// Revisions below this one may have been forgotten (0: never compacted).
    pub fn compact_revision(&self) -> i64 {
        self.compact
    }

    /// Puts one key.
    pub fn put(&mut self, be: &mut Backend, req: &PutRequest) -> Result<Response, MvccError> {
        validate_put(req)?;
        let mut w = self.begin_write();
        self.put_row(be, &mut w, &req.key, &req.value);
        self.end_write(&w);
        Ok(self.response())
    }

    /// Deletes every key in range; a delete that finds nothing makes no
    /// revision.
    pub fn delete_range(
        &mut self,
        be: &mut Backend,
        req: &DeleteRangeRequest,
    ) -> Result<Response, MvccError> {
        let range = KeyRange::new(&req.key, &req.range_end)?;
        let mut w = self.begin_write();
        let deleted = self.delete_rows(be, &mut w, &range);
        self.end_write(&w);
        Ok(Response {
            deleted,
            ..self.response()
        })
    }

    /// Reads keys at `req.revision` (0: the current revision).
    pub fn range(&self, be: &Backend, req: &RangeRequest) -> Result<Response, MvccError> {
        let (range, at) = self.validate_range(req)?;
        let kvs = self.read(be, &range, at, req.limit)?;
        Ok(Response {
            kvs,
            ..self.response()
        })
    }

    /// Runs `success` if every compare holds at the current revision, else
    /// `failure`; the branch's writes share one new main revision.
    pub fn txn(&mut self, be: &mut Backend, req: &TxnRequest) -> Result<Response, MvccError> {
        let compares = req
            .compare
            .iter()
            .map(compare::validate)
            .collect::<Result<Vec<_>, _>>()?;
        self.validate_branch(&req.success)?;
        self.validate_branch(&req.failure)?;
        let mut succeeded = true;
        for (c, (target, result)) in req.compare.iter().zip(compares) {
            let kv = self.current_kv(be, &c.key)?;
            if !compare::holds(c, target, result, kv.as_ref()) {
                succeeded = false;
                break;
            }
        }
        let branch = if succeeded {
            &req.success
        } else {
            &req.failure
        };
        let mut w = self.begin_write();
        let mut out = Response {
            succeeded,
            ..Response::default()
        };
        for op in branch {
            match &op.op {
                Some(Op::Range(r)) => {
                    let (range, at) = match r.revision {
                        // Reads see the txn's own earlier writes, as in etcd.
                        0 if w.wrote() => (KeyRange::new(&r.key, &r.range_end)?, w.main),
                        _ => self.validate_range(r)?,
                    };
                    out.kvs.extend(self.read(be, &range, at, r.limit)?);
                }
                Some(Op::Put(p)) => self.put_row(be, &mut w, &p.key, &p.value),
                Some(Op::DeleteRange(d)) => {
                    let range = KeyRange::new(&d.key, &d.range_end)?;
                    out.deleted += self.delete_rows(be, &mut w, &range);
                }
                None => return Err(invalid("txn op without an operation")),
            }
        }
        self.end_write(&w);
        out.revision = self.current;
        Ok(out)
    }

    /// Forgets revisions superseded at or before `rev` (each key keeps the
    /// put visible at `rev`) and records `rev` as the compact revision.
    pub fn compact(&mut self, be: &mut Backend, rev: i64) -> Result<Response, MvccError> {
        if rev <= self.compact {
            return Err(MvccError::Compacted {
                requested: rev,
                compact: self.compact,
            });
        }
        if rev > self.current {
            return Err(MvccError::FutureRevision {
                requested: rev,
                current: self.current,
            });
        }
        let mut emptied = Vec::new();
        for (key, history) in self.index.iter_mut() {
            for (r, tombstone) in history.compact(rev) {
                be.delete(Table::Key, &revision::encode(r, tombstone));
            }
            if history.is_empty() {
                emptied.push(key.clone());
            }
        }
        for key in emptied {
            self.index.remove(&key);
        }
        be.put(
            Table::Meta,
            COMPACT_REVISION_KEY,
            &CompactRecord { revision: rev }.encode_to_vec(),
        );
        self.compact = rev;
        Ok(self.response())
    }

    /// Every live key at the current revision, sorted by key.
    pub fn dump(&self, be: &Backend) -> Result<Vec<KeyValue>, MvccError> {
        let all = KeyRange {
            start: Vec::new(),
            end: None,
            single: false,
        };
        self.read(be, &all, self.current, 0)
    }

    fn response(&self) -> Response {
        Response {
            revision: self.current,
            ..Response::default()
        }
    }

    fn begin_write(&self) -> WriteRev {
        WriteRev {
            main: self.current + 1,
            next_sub: 0,
        }
    }

    fn end_write(&mut self, w: &WriteRev) {
        if w.wrote() {
            self.current = w.main;
        }
    }

    /// Checks a range request's key rules, limit and revision; returns the
    /// range and the revision to read at.
    fn validate_range(&self, req: &RangeRequest) -> Result<(KeyRange, i64), MvccError> {
        let range = KeyRange::new(&req.key, &req.range_end)?;
        if req.limit < 0 {
            return Err(invalid(format!("negative limit {}", req.limit)));
        }
        let at = match req.revision {
            0 => self.current,
            r if r < 0 => return Err(invalid(format!("negative revision {r}"))),
            // The bug: no bounds check; a future revision reads the current
            // state, a compacted one whatever rows compaction left.
            r if self.bugs.has(Bug::RangeRevisionUnchecked) => r.min(self.current),
            r if r > self.current => {
                return Err(MvccError::FutureRevision {
                    requested: r,
                    current: self.current,
                });
            }
            r if r < self.compact => {
                return Err(MvccError::Compacted {
                    requested: r,
                    compact: self.compact,
                });
            }
            r => r,
        };
        Ok((range, at))
    }

    /// Checks a txn branch before anything runs: every op well formed, no
    /// key put twice, no put inside a deleted range (etcd's rule, so the
    /// result never depends on the order of ops inside one revision).
    fn validate_branch(&self, ops: &[RequestOp]) -> Result<(), MvccError> {
        let mut puts = BTreeSet::new();
        let mut deletes = Vec::new();
        for op in ops {
            match &op.op {
                Some(Op::Range(r)) => {
                    self.validate_range(r)?;
                }
                Some(Op::Put(p)) => {
                    validate_put(p)?;
                    if !puts.insert(p.key.as_slice()) {
                        return Err(MvccError::DuplicateKey { key: lossy(&p.key) });
                    }
                }
                Some(Op::DeleteRange(d)) => deletes.push(KeyRange::new(&d.key, &d.range_end)?),
                None => return Err(invalid("txn op without an operation")),
            }
        }
        if let Some(key) = puts.iter().find(|k| deletes.iter().any(|d| d.contains(k))) {
            return Err(MvccError::DuplicateKey { key: lossy(key) });
        }
        Ok(())
    }

    fn put_row(&mut self, be: &mut Backend, w: &mut WriteRev, key: &[u8], value: &[u8]) {
        let rev = w.next();
        let (create_revision, version) = self.index.entry(key.to_vec()).or_default().put(rev);
        let kv = KeyValue {
            key: key.to_vec(),
            create_revision,
            mod_revision: rev.main,
            version,
            value: value.to_vec(),
        };
        be.put(
            Table::Key,
            &revision::encode(rev, false),
            &kv.encode_to_vec(),
        );
    }

    fn delete_rows(&mut self, be: &mut Backend, w: &mut WriteRev, range: &KeyRange) -> i64 {
        let live: Vec<Vec<u8>> = range
            .iter(&self.index)
            .filter(|(_, h)| h.live().is_some())
            .map(|(k, _)| k.clone())
            .collect();
        for key in &live {
            let rev = w.next();
            if let Some(h) = self.index.get_mut(key) {
                h.tombstone(rev);
            }
            let tomb = KeyValue {
                key: key.clone(),
                ..KeyValue::default()
            };
            be.put(
                Table::Key,
                &revision::encode(rev, true),
                &tomb.encode_to_vec(),
            );
        }
        live.len() as i64
    }

    fn current_kv(&self, be: &Backend, key: &[u8]) -> Result<Option<KeyValue>, MvccError> {
        match self.index.get(key).and_then(|h| h.visible_at(self.current)) {
            Some(rev) => self.load(be, key, rev).map(Some),
            None => Ok(None),
        }
    }

    /// The keys in `range` as of main revision `at`; `limit` 0 is no limit.
    fn read(
        &self,
        be: &Backend,
        range: &KeyRange,
        at: i64,
        limit: i64,
    ) -> Result<Vec<KeyValue>, MvccError> {
        let limit = usize::try_from(limit).unwrap_or(0);
        let mut kvs = Vec::new();
        for (key, history) in range.iter(&self.index) {
            if limit > 0 && kvs.len() >= limit {
                break;
            }
            if let Some(rev) = history.visible_at(at) {
                kvs.push(self.load(be, key, rev)?);
            }
        }
        Ok(kvs)
    }

    fn load(&self, be: &Backend, key: &[u8], rev: Rev) -> Result<KeyValue, MvccError> {
        let row = revision::encode(rev, false);
        let bytes = be
            .get(Table::Key, &row)?
            .ok_or_else(|| MvccError::MissingRevision {
                key: lossy(key),
                rev,
            })?;
        let kv = KeyValue::decode(bytes.as_slice()).map_err(|e| MvccError::CorruptRow {
            row: revision::hex(&row),
            reason: format!("value: {e}"),
        })?;
        if kv.key != key {
            return Err(MvccError::CorruptRow {
                row: revision::hex(&row),
                reason: format!(
                    "holds key {:?}, index expects {:?}",
                    lossy(&kv.key),
                    lossy(key)
                ),
            });
        }
        Ok(kv)
    }
}

fn validate_put(req: &PutRequest) -> Result<(), MvccError> {
    if req.key.is_empty() {
        return Err(invalid("key is not provided"));
    }
    Ok(())
}
