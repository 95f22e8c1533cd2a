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
mod read;

pub use dump::{KeyDump, StateDump, V3Dump, printable};
pub use error::StoreError;

use crate::apply::{Applied, ApplyContext, Stores, apply_entry};
use crate::backend::{Backend, BackendOptions};
use crate::bugs::KnownBugs;
use crate::crash_point::{CrashHook, CrashPoint};
use crate::disk::Disk;
use crate::membership::{Cluster, read_backend_membership};
use crate::mvcc::Mvcc;
use crate::probe::Probe;
use crate::proto::{
    ConfChangeKind, ConfChangeRequest, Entry, EntryType, HardState, Member as MemberInfo,
    SnapshotMarker,
};
use crate::snap::{SnapError, Snapshot, Snapshotter};
use crate::v2store::V2Store;
use crate::verify::{BootFacts, VerifyMode, check_boot};
use crate::wal::{TailRepair, Wal, WalContents, WalError, WalOptions};
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

impl StoreConfig {
    /// The backend settings, with the known-bug switches applied.
    fn backend_options(&self) -> BackendOptions {
        BackendOptions {
            bugs: self.bugs,
            ..self.backend
        }
    }

    /// The WAL settings, with the known-bug switches applied.
    fn wal_options(&self) -> WalOptions {
        WalOptions {
            bugs: self.bugs,
            ..self.wal
        }
    }
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
    /// Boot finished a leader snapshot install that a crash interrupted
    /// (the received backend replaced the live one).
    pub install_finished: bool,
    /// The replayed entries whose v3 half ran, with their results (what
    /// took effect during the boot).
    pub replayed_v3: Vec<Applied>,
    /// The replayed entries whose v3 half was skipped (the backend already
    /// held them), with the result of their v2 half; their `revision` is
    /// the backend's, i.e. the state after the last of them.
    pub replayed_v3_skipped: Vec<Applied>,
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
    /// The v3 revision when this process last took or installed a snapshot
    /// (0: not since it booted); only a known-bug switch reads it.
    snapshot_revision: i64,
    /// The v3 revision the backend held when this process opened it, before
    /// the WAL replay; cleared by the first apply after boot. Only a
    /// known-bug switch reads it.
    pre_replay_revision: Option<i64>,
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
        let mut backend = open_backend(&disk, &config, &hook)?;
        backend.force_commit()?;
        drop(backend);
        let mut wal = Wal::create(
            disk.clone(),
            Path::new(WAL_DIR),
            &metadata.encode_to_vec(),
            config.wal_options(),
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

    /// Boots an existing member from its data directory, in etcd's boot
    /// order (see the module doc). Every step below touches the disk in the
    /// order written here; the simulator crashes at the k-th disk operation,
    /// so the steps must not be reordered.
    pub fn open(
        disk: Arc<dyn Disk>,
        config: StoreConfig,
        hook: Arc<dyn CrashHook>,
        now_ms: u64,
    ) -> Result<(Member, Recovered), StoreError> {
        if !Self::is_initialized(disk.as_ref())? {
            return Err(StoreError::NotInitialized);
        }
        disk.create_dir_all(Path::new(SNAP_DIR))?;
        let snapshotter =
            Snapshotter::new(disk.clone(), Path::new(SNAP_DIR)).with_known_bugs(config.bugs);
        let snapshot = load_newest_usable_snapshot(disk.as_ref(), &snapshotter, config.bugs)?;
        let mut backend = open_backend(&disk, &config, &hook)?;
        let (wal, contents) = open_wal_at_snapshot(&disk, &config, &hook, &snapshotter, &snapshot)?;
        let metadata = decode_wal_metadata(&contents.metadata)?;
        let marker = snapshot.marker;
        let install_finished = recover_received_backend(disk.as_ref(), &mut backend, &marker)?;
        if install_finished {
            hook.probe(Probe::BootInstallFinished);
        }
        probe_boot_state(hook.as_ref(), &backend, &marker, &contents.hard_state);
        let hard_state = effective_hard_state(contents.hard_state, &marker);
        if config.verify.enabled() {
            let facts = boot_facts(&backend, &marker, hard_state, &contents.entries);
            check_boot_invariants(disk.as_ref(), &wal, &facts, config.bugs)?;
        }
        let stores = recovered_stores(snapshot.v2, backend)?;
        let mut member = Member {
            disk,
            config,
            hook,
            wal,
            snapshotter,
            stores,
            applied_index: marker.index,
            applied_term: marker.term,
            snapshot_index: marker.index,
            snapshot_revision: 0,
            pre_replay_revision: None,
            poisoned: None,
        };
        let opened_at = member.stores.mvcc.current_revision();
        let replay = member.replay_committed(&contents.entries, hard_state.commit, now_ms)?;
        member.pre_replay_revision = Some(opened_at);
        let recovered = Recovered {
            metadata,
            hard_state,
            snapshot: marker,
            entries: contents.entries,
            wal_repair: contents.repaired,
            replayed: replay.replayed,
            replay_skipped_v3: replay.skipped_v3,
            install_finished,
            replayed_v3: replay.v3_applied,
            replayed_v3_skipped: replay.v3_skipped,
        };
        Ok((member, recovered))
    }

    /// Boot's last step: applies every committed entry after the snapshot
    /// (in log order). The apply path skips the v3 half of entries the
    /// backend already holds and always applies the v2 half; entries past
    /// the commit index are left for raft to decide.
    fn replay_committed(
        &mut self,
        entries: &[Entry],
        commit: u64,
        now_ms: u64,
    ) -> Result<Replay, StoreError> {
        let mut replay = Replay::default();
        for entry in entries {
            if entry.index > commit {
                break;
            }
            let applied = self.apply(entry, now_ms)?;
            replay.replayed += 1;
            if applied.applied_v3 {
                self.hook.probe(Probe::ReplayV3Applied);
                replay.v3_applied.push(applied);
            } else {
                self.hook.probe(Probe::ReplayV3Skipped);
                replay.skipped_v3 += 1;
                replay.v3_skipped.push(applied);
            }
        }
        Ok(replay)
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
            m.pre_replay_revision = None;
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
        self.snapshot_revision = self.stores.mvcc.current_revision();
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
        self.snapshot_revision = self.stores.mvcc.current_revision();
        Ok(())
    }

    /// Reports a coverage probe through the member's hook (for the raft
    /// layer, which holds no hook of its own).
    pub fn probe(&self, probe: Probe) {
        self.hook.probe(probe);
    }

    /// The index of the last applied entry.
    pub fn applied_index(&self) -> u64 {
        self.applied_index
    }

    /// The sequence number of the WAL segment appended to: it grows by one
    /// at each segment cut.
    pub fn wal_segment_seq(&self) -> u64 {
        self.wal.segments().last().map_or(0, |s| s.seq)
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
    Ok(StateDump {
        applied_index,
        consistent_index: ci.index,
        consistent_term: ci.term,
        conf_state: s.backend.conf_state(),
        v2: s.v2.dump(),
        v3: v3_dump(&s.mvcc, &s.backend)?,
        cluster: s.cluster.clone(),
        backend_membership: read_backend_membership(&s.backend)?,
    })
}

/// The v3 key space of `mvcc` over `backend` (a member's, or what a backend
/// snapshot holds).
pub fn v3_dump(mvcc: &Mvcc, backend: &Backend) -> Result<V3Dump, StoreError> {
    let keys = mvcc
        .dump(backend)?
        .into_iter()
        .map(|kv| KeyDump {
            key: printable(&kv.key),
            create_revision: kv.create_revision,
            mod_revision: kv.mod_revision,
            version: kv.version,
            value: printable(&kv.value),
        })
        .collect();
    Ok(V3Dump {
        revision: mvcc.current_revision(),
        compact_revision: mvcc.compact_revision(),
        keys,
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

/// The snapshot boot starts from, and the newer files it had to skip.
struct LoadedSnapshot {
    marker: SnapshotMarker,
    v2: V2Store,
    /// Newer snapshot files skipped as corrupt: named in the error if the
    /// WAL no longer reaches the snapshot boot fell back to.
    corrupt: Vec<SnapError>,
}

/// Boot step 1: the newest valid v2 snapshot the WAL has a marker for. A
/// file without a marker is the orphan of a snapshot that crashed before
/// its marker, and is ignored; no snapshot means an empty store at index 0.
fn load_newest_usable_snapshot(
    disk: &dyn Disk,
    snapshotter: &Snapshotter,
    bugs: KnownBugs,
) -> Result<LoadedSnapshot, StoreError> {
    let markers = Wal::snapshot_markers(disk, Path::new(WAL_DIR), bugs)?;
    let (snapshot, corrupt) = snapshotter.load_newest_available_reporting(&markers)?;
    let (marker, v2) = match snapshot {
        Some(s) => {
            let v2 = V2Store::recover(&s.data)?;
            (s.marker, v2)
        }
        None => (SnapshotMarker::default(), V2Store::new()),
    };
    Ok(LoadedSnapshot {
        marker,
        v2,
        corrupt,
    })
}

/// Boot step 2 (and bootstrap's first file): opens or creates the backend.
/// redb verifies its pages here and rolls a damaged newest commit back to
/// the previous intact one, which replay then redoes.
fn open_backend(
    disk: &Arc<dyn Disk>,
    config: &StoreConfig,
    hook: &Arc<dyn CrashHook>,
) -> Result<Backend, StoreError> {
    Ok(Backend::open(
        disk.clone(),
        Path::new(BACKEND_FILE),
        config.backend_options(),
        hook.clone(),
    )?)
}

/// Boot step 3: opens the WAL at the snapshot's marker (repairing a torn
/// tail), reading every entry after it.
fn open_wal_at_snapshot(
    disk: &Arc<dyn Disk>,
    config: &StoreConfig,
    hook: &Arc<dyn CrashHook>,
    snapshotter: &Snapshotter,
    snapshot: &LoadedSnapshot,
) -> Result<(Wal, WalContents), StoreError> {
    let opened = Wal::open(
        disk.clone(),
        Path::new(WAL_DIR),
        &snapshot.marker,
        config.wal_options(),
        hook.clone(),
    );
    match opened {
        Ok(opened) => Ok(opened),
        // Boot fell back past a corrupt snapshot to one the WAL no
        // longer reaches: name the snapshot, not just the marker.
        Err(wal @ WalError::SnapshotNotFound { .. }) => {
            let snapshots = unusable_snapshots(snapshotter, &snapshot.corrupt)?;
            if snapshots.is_empty() {
                return Err(wal.into());
            }
            Err(StoreError::UnusableSnapshot {
                snapshots: snapshots.join("; "),
                wal,
            })
        }
        Err(e) => Err(e.into()),
    }
}

/// The snapshots to blame when the WAL cannot reach boot's snapshot: the
/// corrupt ones skipped now and those quarantined by earlier boots.
fn unusable_snapshots(
    snapshotter: &Snapshotter,
    corrupt: &[SnapError],
) -> Result<Vec<String>, StoreError> {
    let mut snapshots: Vec<String> = corrupt.iter().map(|e| e.to_string()).collect();
    for broken in snapshotter.quarantined()? {
        snapshots.push(format!(
            "{} (quarantined earlier)",
            snapshotter.path_of(&broken).display()
        ));
    }
    Ok(snapshots)
}

/// The member and cluster identity the WAL was created with.
fn decode_wal_metadata(bytes: &[u8]) -> Result<WalMetadata, StoreError> {
    WalMetadata::decode(bytes).map_err(|e| StoreError::Malformed {
        what: "WAL metadata",
        reason: e.to_string(),
    })
}

/// Where a received backend waits until the WAL marker names its snapshot.
fn received_backend_path(index: u64) -> PathBuf {
    PathBuf::from(format!("{SNAP_DIR}/{index:016x}.snap.db"))
}

/// Finishes an install of a leader snapshot that a crash interrupted: the
/// WAL marker names the snapshot, but the live backend is still behind it.
/// Returns whether it did.
fn recover_received_backend(
    disk: &dyn Disk,
    backend: &mut Backend,
    marker: &SnapshotMarker,
) -> Result<bool, StoreError> {
    if marker.index == 0 || backend.consistent_index().index >= marker.index {
        return Ok(false);
    }
    let path = received_backend_path(marker.index);
    if !disk.exists(&path)? {
        return Ok(false);
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
    Ok(true)
}

/// Coverage probes of what boot found before replay: the backend ahead of
/// the snapshot, and the consistent index exactly at the saved commit.
fn probe_boot_state(
    hook: &dyn CrashHook,
    backend: &Backend,
    marker: &SnapshotMarker,
    saved: &HardState,
) {
    let ci = backend.consistent_index().index;
    if ci > marker.index {
        hook.probe(Probe::BootBackendAheadOfSnapshot);
        if ci == saved.commit {
            hook.probe(Probe::BootConsistentIndexAtCommit);
        }
    }
}

/// Everything up to a snapshot the WAL has a marker for is committed, and
/// its term has been seen, even if the hard state saved after installing it
/// was lost.
fn effective_hard_state(saved: HardState, marker: &SnapshotMarker) -> HardState {
    let mut hard_state = saved;
    hard_state.commit = hard_state.commit.max(marker.index);
    hard_state.term = hard_state.term.max(marker.term);
    hard_state
}

/// What boot's invariants are checked against.
fn boot_facts(
    backend: &Backend,
    marker: &SnapshotMarker,
    hard_state: HardState,
    entries: &[Entry],
) -> BootFacts {
    let ci = backend.consistent_index();
    BootFacts {
        consistent_index: ci.index,
        consistent_term: ci.term,
        snapshot_index: marker.index,
        hard_state,
        last_index: entries.last().map_or(marker.index, |e| e.index),
    }
}

/// Boot step 4 (`verify` on): the backend, hard state, snapshot and log
/// agree, and the WAL's CRC chain holds. A failed check names where the WAL
/// ends and the backend file.
fn check_boot_invariants(
    disk: &dyn Disk,
    wal: &Wal,
    facts: &BootFacts,
    bugs: KnownBugs,
) -> Result<(), StoreError> {
    check_boot(facts).map_err(|source| {
        let (file, offset) = wal.tail();
        StoreError::BootCheck {
            source,
            wal_end: format!("{} at offset {offset}", file.display()),
            backend: BACKEND_FILE.to_string(),
        }
    })?;
    Wal::verify_chain(disk, Path::new(WAL_DIR), bugs)?;
    Ok(())
}

/// The stores as of the snapshot, before replay: the membership is read
/// back from the v2 store, the MVCC key index rebuilt from the backend.
fn recovered_stores(v2: V2Store, backend: Backend) -> Result<Stores, StoreError> {
    let cluster = Cluster::recover_from_v2(&v2)?;
    let mvcc = Mvcc::open(&backend)?;
    Ok(Stores {
        v2,
        backend,
        mvcc,
        cluster,
    })
}

/// What boot's replay did, reported in [`Recovered`].
#[derive(Debug, Default)]
struct Replay {
    replayed: u64,
    skipped_v3: u64,
    v3_applied: Vec<Applied>,
    v3_skipped: Vec<Applied>,
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
