//! Raft's view of the log: the entries after the last snapshot, the hard
//! state and the conf state, rebuilt from the WAL at boot (as etcd fills its
//! raft `MemoryStorage`). The durable copy is the WAL; this is only the
//! in-memory index raft reads from. Unlike raft-rs's `MemStorage`, nothing
//! here panics on a bad request: it answers with raft's storage errors.

use raft::eraftpb::{ConfState, Entry, HardState, Snapshot, SnapshotMetadata};
use raft::{GetEntriesContext, RaftState, Storage, StorageError};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

#[derive(Debug, Default)]
struct Inner {
    hard_state: HardState,
    conf_state: ConfState,
    /// The newest snapshot, with the payload a lagging follower receives.
    snapshot: Snapshot,
    /// Entries with index > snapshot index (possibly fewer, once compacted:
    /// `entries[0].index` is then the first available).
    entries: Vec<Entry>,
    /// Index of the last entry compacted away (>= snapshot index is not
    /// required: the log may keep entries before the snapshot for catch-up).
    compacted_index: u64,
    compacted_term: u64,
    /// Raft asked for a snapshot to send and none with a payload was ready.
    snapshot_requested: bool,
}

/// A cheaply cloneable handle; raft-rs owns one, the node keeps another.
#[derive(Debug, Clone, Default)]
pub struct LogStore {
    inner: Arc<RwLock<Inner>>,
}

fn entry_unavailable() -> raft::Error {
    raft::Error::Store(StorageError::Unavailable)
}

impl LogStore {
    fn read(&self) -> RwLockReadGuard<'_, Inner> {
        self.inner.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, Inner> {
        self.inner.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts from a snapshot point (index 0 for none) and the entries after it.
    pub fn reset(
        &self,
        meta: SnapshotMetadata,
        payload: Vec<u8>,
        hard_state: HardState,
        entries: Vec<Entry>,
    ) {
        let mut w = self.write();
        w.compacted_index = meta.index;
        w.compacted_term = meta.term;
        w.conf_state = meta.get_conf_state().clone();
        w.snapshot = Snapshot::default();
        w.snapshot.set_metadata(meta);
        w.snapshot.data = payload.into();
        w.hard_state = hard_state;
        w.entries = entries;
    }

    /// Sets the conf state raft reports at start (the one implied by the
    /// applied log).
    pub fn set_conf_state(&self, cs: ConfState) {
        self.write().conf_state = cs;
    }

    pub fn set_hard_state(&self, hs: HardState) {
        self.write().hard_state = hs;
    }

    /// Appends entries, replacing any existing entries from the first new
    /// index on (raft's overwrite after a term change).
    pub fn append(&self, ents: &[Entry]) -> Result<(), raft::Error> {
        let Some(first) = ents.first() else {
            return Ok(());
        };
        let mut w = self.write();
        let first_available = w.compacted_index + 1;
        let last = w.entries.last().map_or(w.compacted_index, |e| e.index);
        if first.index < first_available {
            return Err(raft::Error::Store(StorageError::Compacted));
        }
        if first.index > last + 1 {
            return Err(entry_unavailable());
        }
        let keep = (first.index - first_available) as usize;
        w.entries.truncate(keep);
        w.entries.extend_from_slice(ents);
        Ok(())
    }

    /// Installs a snapshot received from the leader: the log restarts after it.
    pub fn apply_snapshot(&self, snapshot: Snapshot) {
        let mut w = self.write();
        let meta = snapshot.get_metadata().clone();
        w.compacted_index = meta.index;
        w.compacted_term = meta.term;
        w.conf_state = meta.get_conf_state().clone();
        if w.hard_state.commit < meta.index {
            w.hard_state.commit = meta.index;
        }
        if w.hard_state.term < meta.term {
            w.hard_state.term = meta.term;
        }
        w.entries.clear();
        w.snapshot = snapshot;
    }

    /// Records a newer local snapshot (with the payload to send to lagging
    /// followers) and drops entries up to `compact_to`.
    pub fn set_snapshot(&self, snapshot: Snapshot, compact_to: u64) {
        let mut w = self.write();
        w.snapshot = snapshot;
        if compact_to > w.compacted_index {
            let term = w
                .entries
                .iter()
                .find(|e| e.index == compact_to)
                .map(|e| e.term);
            if let Some(term) = term {
                let drop = (compact_to - w.compacted_index) as usize;
                let drop = drop.min(w.entries.len());
                w.entries.drain(..drop);
                w.compacted_index = compact_to;
                w.compacted_term = term;
            }
        }
    }

    /// Whether raft asked for a snapshot that was not ready (cleared).
    pub fn take_snapshot_request(&self) -> bool {
        std::mem::take(&mut self.write().snapshot_requested)
    }

    /// Whether the log holds no entry past its snapshot.
    pub fn has_no_entries(&self) -> bool {
        self.read().entries.is_empty()
    }

    /// The newest snapshot's index.
    pub fn snapshot_index(&self) -> u64 {
        self.read().snapshot.get_metadata().index
    }
}

impl Storage for LogStore {
    fn initial_state(&self) -> raft::Result<RaftState> {
        let r = self.read();
        Ok(RaftState::new(r.hard_state.clone(), r.conf_state.clone()))
    }

    fn entries(
        &self,
        low: u64,
        high: u64,
        max_size: impl Into<Option<u64>>,
        _context: GetEntriesContext,
    ) -> raft::Result<Vec<Entry>> {
        let r = self.read();
        if low <= r.compacted_index {
            return Err(raft::Error::Store(StorageError::Compacted));
        }
        let last = r.entries.last().map_or(r.compacted_index, |e| e.index);
        if high > last + 1 || low > high {
            return Err(entry_unavailable());
        }
        let lo = (low - r.compacted_index - 1) as usize;
        let hi = (high - r.compacted_index - 1) as usize;
        let mut out = Vec::with_capacity(hi - lo);
        let limit = max_size.into().unwrap_or(u64::MAX);
        let mut size = 0u64;
        for e in &r.entries[lo..hi] {
            size += (e.data.len() + e.context.len() + 16) as u64;
            if !out.is_empty() && size > limit {
                break;
            }
            out.push(e.clone());
        }
        Ok(out)
    }

    fn term(&self, idx: u64) -> raft::Result<u64> {
        let r = self.read();
        if idx == r.compacted_index {
            return Ok(r.compacted_term);
        }
        if idx < r.compacted_index {
            return Err(raft::Error::Store(StorageError::Compacted));
        }
        r.entries
            .get((idx - r.compacted_index - 1) as usize)
            .map(|e| e.term)
            .ok_or_else(entry_unavailable)
    }

    fn first_index(&self) -> raft::Result<u64> {
        Ok(self.read().compacted_index + 1)
    }

    fn last_index(&self) -> raft::Result<u64> {
        let r = self.read();
        Ok(r.entries.last().map_or(r.compacted_index, |e| e.index))
    }

    fn snapshot(&self, request_index: u64, to: u64) -> raft::Result<Snapshot> {
        let mut w = self.write();
        let cs = w.snapshot.get_metadata().get_conf_state();
        // A snapshot taken before `to` joined does not name it; raft-rs on
        // the follower would ignore it, so ask for a fresh one.
        let names_peer = cs.voters.contains(&to) || cs.learners.contains(&to);
        if w.snapshot.get_metadata().index < request_index
            || w.snapshot.data.is_empty()
            || !names_peer
        {
            w.snapshot_requested = true;
            return Err(raft::Error::Store(
                StorageError::SnapshotTemporarilyUnavailable,
            ));
        }
        Ok(w.snapshot.clone())
    }
}
