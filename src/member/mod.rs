//! A member's storage and apply path as one unit: boot (`open`), persist
//! (`save`), apply, snapshot, and the state dump replicas are compared by.
//!
//! Boot order, as etcd's: load the newest valid v2 snapshot that the WAL has
//! a marker for; open the backend; open the WAL at that marker; check the
//! boot invariants (`verify`); replay every committed entry after the
//! marker through the apply path, which skips the v3 half of entries the
//! backend already holds (`should_apply_v3`) and always applies the v2 half.
//!
//! Snapshot order, as etcd's: commit the backend (so its consistent index is
//! at least the snapshot's index before any file names that index), write the
//! v2 snapshot file, then the WAL marker, then release old WAL segments. A
//! crash between the file and the marker leaves an orphan snapshot file that
//! boot ignores, because it only trusts snapshots the WAL has a marker for.

mod dump;
mod error;

pub use dump::{KeyDump, StateDump, V3Dump, printable};
pub use error::StoreError;

use crate::apply::{Applied, ApplyContext, Stores, apply_entry};
use crate::backend::{Backend, BackendOptions};
use crate::bugs::KnownBugs;
use crate::crash_point::{CrashHook, CrashPoint};
use crate::disk::Disk;
use crate::membership::{Cluster, read_backend_membership};
use crate::mvcc::Mvcc;
use crate::proto::{
    ConfChangeKind, ConfChangeRequest, Entry, EntryType, HardState, Member as MemberInfo,
    SnapshotMarker,
};
use crate::snap::{Snapshot, Snapshotter};
use crate::v2store::V2Store;
use crate::verify::{BootFacts, VerifyMode, check_boot};
use crate::wal::{TailRepair, Wal, WalError, WalOptions};
use prost::Message;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Where a member keeps its files, relative to its data directory.
pub const WAL_DIR: &str = "member/wal";
pub const SNAP_DIR: &str = "member/snap";
pub const BACKEND_FILE: &str = "member/snap/db";

/// How many snapshot files to keep.
const SNAPSHOTS_KEPT: usize = 5;

/// Identity written into the WAL's metadata record.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct WalMetadata {
    #[prost(uint64, tag = "1")]
    pub member_id: u64,
    #[prost(uint64, tag = "2")]
    pub cluster_id: u64,
}

/// Store settings.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// Take a v2 snapshot after this many applied entries (etcd's
    /// `--snapshot-count`).
    pub snapshot_count: u64,
    pub backend: BackendOptions,
    pub wal: WalOptions,
    pub verify: VerifyMode,
    pub bugs: KnownBugs,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            snapshot_count: 10_000,
            backend: BackendOptions::default(),
            wal: WalOptions::default(),
            verify: VerifyMode::from_env(),
            bugs: KnownBugs::NONE,
        }
    }
}

/// What boot found, for the raft layer to start from.
#[derive(Debug, Clone)]
pub struct Recovered {
    pub metadata: WalMetadata,
    pub hard_state: HardState,
    /// The snapshot boot started from (index 0 if none).
    pub snapshot: SnapshotMarker,
    /// Every WAL entry after the snapshot, committed or not.
    pub entries: Vec<Entry>,
    /// A torn WAL tail that boot truncated.
    pub wal_repair: Option<TailRepair>,
    /// How many committed entries were replayed, and how many of them had
    /// their v3 half skipped because the backend already held them.
    pub replayed: u64,
    pub replay_skipped_v3: u64,
}

/// One member's durable state and apply path.
#[derive(Debug)]
pub struct Member {
    disk: Arc<dyn Disk>,
    config: StoreConfig,
    hook: Arc<dyn CrashHook>,
    wal: Wal,
    snapshotter: Snapshotter,
    stores: Stores,
    applied_index: u64,
    applied_term: u64,
    snapshot_index: u64,
    /// Set by the first failed save, apply, commit or snapshot: the durable
    /// state is then unknown (a failed fsync cannot be retried), so every
    /// later mutating call fails until the member is reopened.
    poisoned: Option<String>,
}

impl Member {
    /// Whether the data directory holds a member.
    pub fn is_initialized(disk: &dyn Disk) -> Result<bool, StoreError> {
        Ok(Wal::exists(disk, Path::new(WAL_DIR))?)
    }

    /// Creates a new member of a new cluster: a WAL whose first entries add
    /// the initial members (term 1, committed), applied at once.
    pub fn bootstrap(
        disk: Arc<dyn Disk>,
        config: StoreConfig,
        hook: Arc<dyn CrashHook>,
        metadata: &WalMetadata,
        initial_members: &[MemberInfo],
        now_ms: u64,
    ) -> Result<(Member, Recovered), StoreError> {
        if Self::is_initialized(disk.as_ref())? {
            return Err(StoreError::AlreadyInitialized);
        }
        disk.create_dir_all(Path::new(SNAP_DIR))?;
        // The WAL's existence is what makes a member initialized, so it is
        // created last. Everything before it is redone by the next attempt:
        // a backend file left by an interrupted bootstrap (possibly empty
        // or half written by a power loss) holds nothing anyone was told,
        // and is replaced by a fresh, durably created one.
        let backend_path = Path::new(BACKEND_FILE);
        if disk.exists(backend_path)? {
            disk.remove(backend_path)?;
            disk.sync_dir(Path::new(SNAP_DIR))?;
        }
        let mut backend = Backend::open(
            disk.clone(),
            backend_path,
            BackendOptions {
                bugs: config.bugs,
                ..config.backend
            },
            hook.clone(),
        )?;
        backend.force_commit()?;
        drop(backend);
        let mut wal = Wal::create(
            disk.clone(),
            Path::new(WAL_DIR),
            &metadata.encode_to_vec(),
            WalOptions {
                bugs: config.bugs,
                ..config.wal
            },
            hook.clone(),
        )?;
        let entries: Vec<Entry> = initial_members
            .iter()
            .enumerate()
            .map(|(i, m)| bootstrap_entry(i as u64 + 1, m))
            .collect();
        // A member joining an existing cluster starts with an empty log and
        // learns everything from the leader.
        let hard_state = HardState {
            term: u64::from(!entries.is_empty()),
            vote: 0,
            commit: entries.len() as u64,
        };
        wal.save(Some(&hard_state), &entries)?;
        drop(wal);
        Self::open(disk, config, hook, now_ms)
    }

    /// Boots an existing member from its data directory.
    pub fn open(
        disk: Arc<dyn Disk>,
        config: StoreConfig,
        hook: Arc<dyn CrashHook>,
        now_ms: u64,
    ) -> Result<(Member, Recovered), StoreError> {
        let wal_dir = Path::new(WAL_DIR);
        if !Wal::exists(disk.as_ref(), wal_dir)? {
            return Err(StoreError::NotInitialized);
        }
        disk.create_dir_all(Path::new(SNAP_DIR))?;
        let snapshotter = Snapshotter::new(disk.clone(), Path::new(SNAP_DIR));
        let markers = Wal::snapshot_markers(disk.as_ref(), wal_dir)?;
        let (snapshot, corrupt_snapshots) =
            snapshotter.load_newest_available_reporting(&markers)?;
        let (marker, v2) = match snapshot {
            Some(s) => {
                let v2 = V2Store::recover(&s.data)?;
                (s.marker, v2)
            }
            None => (SnapshotMarker::default(), V2Store::new()),
        };
        let backend = Backend::open(
            disk.clone(),
            Path::new(BACKEND_FILE),
            BackendOptions {
                bugs: config.bugs,
                ..config.backend
            },
            hook.clone(),
        )?;
        let (wal, contents) = match Wal::open(
            disk.clone(),
            wal_dir,
            &marker,
            WalOptions {
                bugs: config.bugs,
                ..config.wal
            },
            hook.clone(),
        ) {
            Ok(opened) => opened,
            // Boot fell back past a corrupt snapshot to one the WAL no
            // longer reaches: name the snapshot, not just the marker.
            Err(wal @ WalError::SnapshotNotFound { .. }) => {
                let mut snapshots: Vec<String> =
                    corrupt_snapshots.iter().map(|e| e.to_string()).collect();
                for broken in snapshotter.quarantined()? {
                    snapshots.push(format!(
                        "{} (quarantined earlier)",
                        snapshotter.path_of(&broken).display()
                    ));
                }
                if snapshots.is_empty() {
                    return Err(wal.into());
                }
                return Err(StoreError::UnusableSnapshot {
                    snapshots: snapshots.join("; "),
                    wal,
                });
            }
            Err(e) => return Err(e.into()),
        };
        let metadata = WalMetadata::decode(contents.metadata.as_slice()).map_err(|e| {
            StoreError::Malformed {
                what: "WAL metadata",
                reason: e.to_string(),
            }
        })?;
        let mut backend = backend;
        recover_received_backend(disk.as_ref(), &mut backend, &marker)?;
        // Everything up to a snapshot the WAL has a marker for is committed,
        // and its term has been seen, even if the hard state saved after
        // installing it was lost.
        let mut hard_state = contents.hard_state;
        hard_state.commit = hard_state.commit.max(marker.index);
        hard_state.term = hard_state.term.max(marker.term);
        let ci = backend.consistent_index();
        if config.verify.enabled() {
            check_boot(&BootFacts {
                consistent_index: ci.index,
                consistent_term: ci.term,
                snapshot_index: marker.index,
                hard_state,
                last_index: contents.entries.last().map_or(marker.index, |e| e.index),
            })
            .map_err(|source| {
                let (file, offset) = wal.tail();
                StoreError::BootCheck {
                    source,
                    wal_end: format!("{} at offset {offset}", file.display()),
                    backend: BACKEND_FILE.to_string(),
                }
            })?;
            Wal::verify_chain(disk.as_ref(), wal_dir)?;
        }
        let cluster = Cluster::recover_from_v2(&v2)?;
        let mvcc = Mvcc::open(&backend)?;
        let mut member = Member {
            disk,
            config,
            hook,
            wal,
            snapshotter,
            stores: Stores {
                v2,
                backend,
                mvcc,
                cluster,
            },
            applied_index: marker.index,
            applied_term: marker.term,
            snapshot_index: marker.index,
            poisoned: None,
        };
        let mut replayed = 0;
        let mut replay_skipped_v3 = 0;
        for entry in &contents.entries {
            if entry.index > hard_state.commit {
                break;
            }
            let applied = member.apply(entry, now_ms)?;
            replayed += 1;
            if !applied.applied_v3 {
                replay_skipped_v3 += 1;
            }
        }
        let recovered = Recovered {
            metadata,
            hard_state,
            snapshot: marker,
            entries: contents.entries,
            wal_repair: contents.repaired,
            replayed,
            replay_skipped_v3,
        };
        Ok((member, recovered))
    }

    /// Persists raft's new entries and hard state: one WAL write, one fsync.
    pub fn save(
        &mut self,
        hard_state: Option<&HardState>,
        entries: &[Entry],
    ) -> Result<(), StoreError> {
        self.guard(|m| Ok(m.wal.save(hard_state, entries)?))
    }

    /// Runs a mutating step unless the member is poisoned; a failure poisons
    /// it (fail-stop: after a failed fsync nothing may be written again).
    fn guard<T>(
        &mut self,
        step: impl FnOnce(&mut Self) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.check_poisoned()?;
        let result = step(self);
        if let Err(e) = &result {
            tracing::warn!(error = %e, "member failed; refusing further work until reopened");
            self.poisoned = Some(e.to_string());
        }
        result
    }

    fn check_poisoned(&self) -> Result<(), StoreError> {
        match &self.poisoned {
            Some(reason) => Err(StoreError::Poisoned {
                reason: reason.clone(),
            }),
            None => Ok(()),
        }
    }

    /// Whether an earlier failure stopped the member (it must be reopened).
    pub fn is_poisoned(&self) -> bool {
        self.poisoned.is_some()
    }

    /// Applies one committed entry (in log order).
    pub fn apply(&mut self, entry: &Entry, now_ms: u64) -> Result<Applied, StoreError> {
        self.guard(|m| {
            let ctx = ApplyContext {
                now_ms,
                hook: m.hook.as_ref(),
                bugs: m.config.bugs,
            };
            let applied = apply_entry(&mut m.stores, entry, ctx)?;
            m.applied_index = entry.index;
            m.applied_term = entry.term;
            Ok(applied)
        })
    }

    /// The driver's timer: commits the backend batch if its interval passed.
    pub fn tick(&mut self, now_ms: u64) -> Result<bool, StoreError> {
        self.guard(|m| Ok(m.stores.backend.commit_if_due(now_ms)?))
    }

    /// Takes a v2 snapshot if `snapshot_count` entries were applied since the
    /// last one.
    pub fn maybe_snapshot(&mut self) -> Result<Option<SnapshotMarker>, StoreError> {
        if self.applied_index < self.snapshot_index + self.config.snapshot_count {
            return Ok(None);
        }
        self.snapshot_now().map(Some)
    }

    /// Takes a v2 snapshot at the applied index now.
    pub fn snapshot_now(&mut self) -> Result<SnapshotMarker, StoreError> {
        self.guard(Self::snapshot_now_inner)
    }

    fn snapshot_now_inner(&mut self) -> Result<SnapshotMarker, StoreError> {
        // The backend must hold everything up to the snapshot index before a
        // snapshot file or marker names that index (verify's first check).
        self.stores.backend.force_commit()?;
        let marker = SnapshotMarker {
            index: self.applied_index,
            term: self.applied_term,
            conf_state: Some(self.stores.cluster.conf_state()),
        };
        self.snapshotter.save(&Snapshot {
            marker: marker.clone(),
            data: self.stores.v2.save(),
        })?;
        self.hook.at(CrashPoint::SnapshotAfterSaveBeforeMarker)?;
        self.wal.save_snapshot_marker(&marker)?;
        self.hook.at(CrashPoint::SnapshotAfterMarker)?;
        self.wal.release_before(marker.index)?;
        self.snapshotter.purge(SNAPSHOTS_KEPT)?;
        self.snapshot_index = marker.index;
        Ok(marker)
    }

    /// The state a lagging follower needs to catch up to the snapshot just
    /// taken: the v2 store and the committed backend, both exactly at the
    /// snapshot index. Only valid right after [`Member::snapshot_now`].
    pub fn snapshot_payload(&mut self) -> Result<Vec<u8>, StoreError> {
        self.check_poisoned()?;
        let ci = self.stores.backend.consistent_index().index;
        if self.applied_index != self.snapshot_index
            || self.stores.backend.pending_writes() > 0
            || ci != self.applied_index
        {
            return Err(StoreError::Malformed {
                what: "snapshot payload request",
                reason: format!(
                    "member moved past its snapshot (applied {}, snapshot {}, consistent index {ci})",
                    self.applied_index, self.snapshot_index
                ),
            });
        }
        Ok(SnapshotPayload {
            v2: self.stores.v2.save(),
            backend: self.stores.backend.snapshot_bytes()?,
        }
        .encode_to_vec())
    }

    /// Installs a snapshot received from the leader.
    ///
    /// Crash order: the received backend is first made durable beside the
    /// live one (`<index>.snap.db`), then the v2 snapshot file, then the WAL
    /// marker; only then is the live backend replaced. A crash after the
    /// marker finds the marker's snapshot and a backend behind it at boot,
    /// and finishes the install from the `.snap.db` file (as etcd's
    /// `RecoverSnapshotBackend`). A crash before the marker leaves files
    /// boot ignores.
    pub fn install_snapshot(
        &mut self,
        marker: &SnapshotMarker,
        payload: &[u8],
    ) -> Result<(), StoreError> {
        self.check_poisoned()?;
        let payload = SnapshotPayload::decode(payload).map_err(|e| StoreError::Malformed {
            what: "snapshot payload",
            reason: e.to_string(),
        })?;
        let v2 = V2Store::recover(&payload.v2)?;
        // The backend blob is written to disk and named by a WAL marker
        // before it replaces the live backend: a damaged one must be refused
        // now, or every later boot would try to finish installing it.
        Backend::check_snapshot_bytes(&payload.backend)?;
        // A payload that does not decode changed nothing; from here on a
        // failure leaves the files in an unknown state.
        self.guard(|m| m.install_decoded_snapshot(marker, payload, v2))
    }

    fn install_decoded_snapshot(
        &mut self,
        marker: &SnapshotMarker,
        payload: SnapshotPayload,
        v2: V2Store,
    ) -> Result<(), StoreError> {
        let db_path = received_backend_path(marker.index);
        crate::disk::write_atomically(self.disk.as_ref(), &db_path, &payload.backend)?;
        self.snapshotter.save(&Snapshot {
            marker: marker.clone(),
            data: payload.v2,
        })?;
        self.wal.save_snapshot_marker(marker)?;
        self.hook.at(CrashPoint::SnapshotApplyMidway)?;
        self.stores.backend.restore_from_bytes(&payload.backend)?;
        self.disk.remove(&db_path)?;
        self.stores.mvcc = Mvcc::open(&self.stores.backend)?;
        self.stores.cluster = Cluster::recover_from_v2(&v2)?;
        self.stores.v2 = v2;
        self.applied_index = marker.index;
        self.applied_term = marker.term;
        self.snapshot_index = marker.index;
        Ok(())
    }

    /// The index of the last applied entry.
    pub fn applied_index(&self) -> u64 {
        self.applied_index
    }

    /// The term of the last applied entry.
    pub fn applied_term(&self) -> u64 {
        self.applied_term
    }

    /// The index of the latest v2 snapshot.
    pub fn snapshot_index(&self) -> u64 {
        self.snapshot_index
    }

    /// The stores, read-only (for checks and dumps).
    pub fn stores(&self) -> &Stores {
        &self.stores
    }

    /// The disk this member runs on.
    pub fn disk(&self) -> &Arc<dyn Disk> {
        &self.disk
    }

    /// The data directory layout's WAL path.
    pub fn wal_dir() -> PathBuf {
        PathBuf::from(WAL_DIR)
    }

    /// Everything replicas must agree on.
    pub fn state_dump(&self) -> Result<StateDump, StoreError> {
        dump_stores(&self.stores, self.applied_index)
    }
}

/// The state dump of `stores` after applying up to `applied_index` (the
/// member's own dump, and the reference a backup is checked against).
pub fn dump_stores(stores: &Stores, applied_index: u64) -> Result<StateDump, StoreError> {
    let s = stores;
    let ci = s.backend.consistent_index();
    let keys = s
        .mvcc
        .dump(&s.backend)?
        .into_iter()
        .map(|kv| KeyDump {
            key: printable(&kv.key),
            create_revision: kv.create_revision,
            mod_revision: kv.mod_revision,
            version: kv.version,
            value: printable(&kv.value),
        })
        .collect();
    Ok(StateDump {
        applied_index,
        consistent_index: ci.index,
        consistent_term: ci.term,
        conf_state: s.backend.conf_state(),
        v2: s.v2.dump(),
        v3: V3Dump {
            revision: s.mvcc.current_revision(),
            compact_revision: s.mvcc.compact_revision(),
            keys,
        },
        cluster: s.cluster.clone(),
        backend_membership: read_backend_membership(&s.backend)?,
    })
}

/// What a leader sends a follower that is too far behind for log entries.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct SnapshotPayload {
    /// The serialised v2 store at the snapshot index.
    #[prost(bytes = "vec", tag = "1")]
    pub v2: Vec<u8>,
    /// The backend's tables at the snapshot index.
    #[prost(bytes = "vec", tag = "2")]
    pub backend: Vec<u8>,
}

/// Where a received backend waits until the WAL marker names its snapshot.
fn received_backend_path(index: u64) -> PathBuf {
    PathBuf::from(format!("{SNAP_DIR}/{index:016x}.snap.db"))
}

/// Finishes an install of a leader snapshot that a crash interrupted: the
/// WAL marker names the snapshot, but the live backend is still behind it.
fn recover_received_backend(
    disk: &dyn Disk,
    backend: &mut Backend,
    marker: &SnapshotMarker,
) -> Result<(), StoreError> {
    if marker.index == 0 || backend.consistent_index().index >= marker.index {
        return Ok(());
    }
    let path = received_backend_path(marker.index);
    if !disk.exists(&path)? {
        return Ok(());
    }
    tracing::warn!(
        file = %path.display(),
        snapshot_index = marker.index,
        consistent_index = backend.consistent_index().index,
        "backend is behind the snapshot: finishing an interrupted snapshot install"
    );
    let bytes = disk.read_all(&path)?;
    backend.restore_from_bytes(&bytes)?;
    disk.remove(&path)?;
    Ok(())
}

/// The conf change entry that adds an initial member at bootstrap.
pub fn bootstrap_entry(index: u64, member: &MemberInfo) -> Entry {
    let cc = ConfChangeRequest {
        kind: ConfChangeKind::AddNode as i32,
        node_id: member.id,
        member: Some(member.clone()),
        request_id: 0,
    };
    Entry {
        term: 1,
        index,
        entry_type: EntryType::ConfChange as i32,
        data: Vec::new(),
        context: cc.encode_to_vec(),
    }
}

#[cfg(test)]
mod tests;
