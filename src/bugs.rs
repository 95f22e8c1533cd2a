//! Switches that re-introduce historical etcd recovery bugs, so that the
//! simulator can prove it catches each one. They exist only in builds with
//! the `known-bugs` feature; in every other build [`KnownBugs::has`] is a
//! constant `false` and the buggy branches compile away.

use std::fmt;

/// One historical bug.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Bug {
    /// The consistent index becomes visible to a batch commit before the
    /// entry's writes (etcd #13766, v3.5.0–v3.5.2).
    CindexBeforeApply,
    /// Automatic batch commits do not write the consistent index.
    CindexOnlyOnExplicitCommit,
    /// Dual v2/v3 requests skip their v2 half when v3 is skipped.
    V2SkippedWithV3,
    /// v2 requests write the backend during replay regardless of the
    /// consistent index.
    V2PutWritesV3OnReplay,
    /// Conf changes are re-applied to the backend on replay.
    ConfchangeDoubleApply,
    /// A torn tail of the last WAL segment is fatal instead of repaired.
    NoTornTailRepair,
    /// Messages are sent before the WAL fsync.
    NoFsyncBeforeSend,
    /// Backup removes membership entries and shifts later indexes.
    BackupShiftIndexes,
    /// Backup does not update the backend's consistent index.
    BackupNoCindexUpdate,
    /// A failed WAL fsync is retried, and the save carries on when the retry
    /// succeeds (PostgreSQL's "fsyncgate": Linux dropped the pages, so the
    /// retry persists nothing).
    FsyncRetryAfterEio,
    /// The WAL reader trusts each record's stored CRC instead of checking
    /// it against the record's bytes (the chain still advances), so a
    /// damaged record whose length word is intact is read as valid.
    WalCrcUnchecked,
    /// A put of a value over 2 KiB is answered with success before its v3
    /// write, which is then dropped (a large-value path that acknowledges
    /// first and loses the write). Every member drops the same puts, so
    /// the replicas agree: only the durability check sees it.
    PutAckBeforeV3Write,
    /// The backend's storage layer treats a write that failed for lack of
    /// space (ENOSPC) as done, so redb commits pages that never reached the
    /// file.
    IgnoreStorageFull,
    /// A failed directory sync after a new WAL segment is renamed into
    /// place is ignored, so the segment's name may not survive a power loss
    /// while the log already counts on it.
    SyncDirErrorIgnored,
    /// The WAL reader takes a read error for the end of the segment, so a
    /// latent sector error silently cuts the log there.
    WalReadErrorAsEof,
    /// The WAL reader takes a zero length word for the end of the last
    /// segment's records (preallocated space, as etcd's decoder does)
    /// without checking that only zeros follow it, so the hole a
    /// misdirected write leaves where a record belonged cuts the log there:
    /// the synced records after it are dropped as a torn tail.
    WalZeroWordAsEnd,
    /// The consistent index may only grow: a restore from a backend
    /// snapshot cannot lower it to the new cluster's snapshot index, and
    /// the copied backend keeps the old cluster's higher index (the shape of
    /// etcd #13514's "consistent index must not decrease" rule applied to
    /// the one path that must lower it).
    CindexOnlyGrows,
    /// A failed rename of a new snapshot file into place is taken for done,
    /// so the WAL marker names a snapshot that is not there and the WAL
    /// segments before it are released: the next boot has no snapshot to
    /// start the log from.
    SnapshotRenameErrorIgnored,
    /// A linearizable read is answered as soon as raft confirms its read
    /// index, before the member has applied up to that index: a stale read
    /// that no replica's state ever shows.
    ReadIndexBeforeApply,
    /// A serializable read is served from the key-value state as of the
    /// member's last v2 snapshot, under the current revision: old values
    /// presented as new ones.
    SerializableReadFromStaleSnapshot,
    /// A restarted member serves serializable reads from the state its
    /// backend held when it opened, before the WAL replay, until it applies
    /// its first entry from the cluster (a read view taken at open and
    /// refreshed only by the next apply). Each answer is a true past state
    /// under its own revision, so only a session that read the member
    /// before the restart sees it: its reads go back in revision.
    SerializableReadBeforeReplay,
    /// A range at a past or future revision skips its bounds check: a
    /// compacted revision is read from whatever rows compaction left
    /// instead of failing with "compacted", and a future one is answered
    /// with the current state instead of failing with "future revision".
    RangeRevisionUnchecked,
    /// Reopening the MVCC store takes the current revision from the rows
    /// compaction left, not at least the compact revision (etcd restores
    /// `currentRev = max(currentRev, compactMainRev)`): after a compaction
    /// at a delete's revision and a restart of every member, the next write
    /// reuses a revision a write already returned.
    RevisionNotRestoredAfterCompaction,
    /// The leader answers linearizable reads from its own state under a
    /// lease counted in its raft ticks (renewed by each read index a quorum
    /// confirms, half the election timeout long), trusting that its
    /// ticks keep pace with the followers' clocks. A leader whose process
    /// stalls on a slow disk ticks too little: its lease outlives the
    /// election that replaced it, and it serves stale reads.
    LeaseReadTimedByTicks,
}

impl Bug {
    /// Every switch, in a fixed order.
    pub const ALL: [Bug; 24] = [
        Bug::CindexBeforeApply,
        Bug::CindexOnlyOnExplicitCommit,
        Bug::V2SkippedWithV3,
        Bug::V2PutWritesV3OnReplay,
        Bug::ConfchangeDoubleApply,
        Bug::NoTornTailRepair,
        Bug::NoFsyncBeforeSend,
        Bug::BackupShiftIndexes,
        Bug::BackupNoCindexUpdate,
        Bug::FsyncRetryAfterEio,
        Bug::WalCrcUnchecked,
        Bug::PutAckBeforeV3Write,
        Bug::IgnoreStorageFull,
        Bug::SyncDirErrorIgnored,
        Bug::WalReadErrorAsEof,
        Bug::WalZeroWordAsEnd,
        Bug::CindexOnlyGrows,
        Bug::SnapshotRenameErrorIgnored,
        Bug::ReadIndexBeforeApply,
        Bug::SerializableReadFromStaleSnapshot,
        Bug::SerializableReadBeforeReplay,
        Bug::RangeRevisionUnchecked,
        Bug::RevisionNotRestoredAfterCompaction,
        Bug::LeaseReadTimedByTicks,
    ];

    /// The switch's name on the command line and in scenario files.
    pub fn name(self) -> &'static str {
        match self {
            Bug::CindexBeforeApply => "cindex-before-apply",
            Bug::CindexOnlyOnExplicitCommit => "cindex-only-on-explicit-commit",
            Bug::V2SkippedWithV3 => "v2-skipped-with-v3",
            Bug::V2PutWritesV3OnReplay => "v2-put-writes-v3-on-replay",
            Bug::ConfchangeDoubleApply => "confchange-double-apply",
            Bug::NoTornTailRepair => "no-torn-tail-repair",
            Bug::NoFsyncBeforeSend => "no-fsync-before-send",
            Bug::BackupShiftIndexes => "backup-shift-indexes",
            Bug::BackupNoCindexUpdate => "backup-no-cindex-update",
            Bug::FsyncRetryAfterEio => "fsync-retry-after-eio",
            Bug::WalCrcUnchecked => "wal-crc-unchecked",
            Bug::PutAckBeforeV3Write => "put-ack-before-v3-write",
            Bug::IgnoreStorageFull => "ignore-storage-full",
            Bug::SyncDirErrorIgnored => "sync-dir-error-ignored",
            Bug::WalReadErrorAsEof => "wal-read-error-as-eof",
            Bug::WalZeroWordAsEnd => "wal-zero-word-as-end",
            Bug::CindexOnlyGrows => "cindex-only-grows",
            Bug::SnapshotRenameErrorIgnored => "snapshot-rename-error-ignored",
            Bug::ReadIndexBeforeApply => "read-index-before-apply",
            Bug::SerializableReadFromStaleSnapshot => "serializable-read-from-stale-snapshot",
            Bug::SerializableReadBeforeReplay => "serializable-read-before-replay",
            Bug::RangeRevisionUnchecked => "range-revision-unchecked",
            Bug::RevisionNotRestoredAfterCompaction => "revision-not-restored-after-compaction",
            Bug::LeaseReadTimedByTicks => "lease-read-timed-by-ticks",
        }
    }

    /// The switch with this name.
    pub fn from_name(name: &str) -> Option<Bug> {
        Self::ALL.into_iter().find(|b| b.name() == name)
    }

    fn bit(self) -> u32 {
        1 << (self as u32)
    }
}

impl fmt::Display for Bug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A switch was asked for in a build without the `known-bugs` feature.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("known-bug switch {0} needs a build with `--features known-bugs`")]
pub struct BugsDisabled(pub Bug);

/// The set of enabled bug switches (empty by default).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct KnownBugs {
    bits: u32,
}

impl KnownBugs {
    /// No bugs: the correct store.
    pub const NONE: KnownBugs = KnownBugs { bits: 0 };

    /// Whether this build can enable switches at all.
    pub const AVAILABLE: bool = cfg!(feature = "known-bugs");

    /// Enables one switch; refused in builds without the feature.
    pub fn enable(&mut self, bug: Bug) -> Result<(), BugsDisabled> {
        if !Self::AVAILABLE {
            return Err(BugsDisabled(bug));
        }
        self.bits |= bug.bit();
        Ok(())
    }

    /// Whether the switch is on (always false without the feature).
    #[inline]
    pub fn has(self, bug: Bug) -> bool {
        Self::AVAILABLE && self.bits & bug.bit() != 0
    }

    /// The enabled switches.
    pub fn enabled(self) -> Vec<Bug> {
        Bug::ALL.into_iter().filter(|b| self.has(*b)).collect()
    }
}
