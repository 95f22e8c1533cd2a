//! Run statistics: what the summary line, the sweep table and a scenario's
//! `expect` steps count.

/// Counters of one run.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RunStats {
    pub requests: u64,
    pub acked: u64,
    pub applied: u64,
    pub crashes: u64,
    pub power_losses: u64,
    pub point_crashes: u64,
    pub commit_crashes: u64,
    pub eio_failures: u64,
    pub partitions: u64,
    pub restarts: u64,
    pub snapshots: u64,
    pub snapshots_installed: u64,
    pub wal_repairs: u64,
    pub replayed: u64,
    pub replay_skipped_v3: u64,
    /// Replayed entries whose v3 half was skipped that restart equivalence
    /// compared with their recorded outcome (identity and v2 half).
    pub replay_skipped_fingerprinted: u64,
    pub torn_writes: u64,
    /// Boots whose backend had not been closed cleanly (redb repaired it).
    pub unclean_backend_opens: u64,
    /// Instants at which a majority of the members lost power together (a
    /// cluster or majority power cut; in a one-member cluster, any power
    /// loss by a kill).
    pub cluster_power_cuts: u64,
    /// Power losses at the first sync after a reboot (crash → reboot →
    /// power loss).
    pub reboot_power_losses: u64,
    /// Bytes damaged on a member's platter (bit rot).
    pub corruptions: u64,
    /// Latent sector errors injected (reads of a sector fail).
    pub bad_sectors: u64,
    /// Damaged members that could not boot and stay down.
    pub quarantined: u64,
    /// Members that stopped on a full disk (ENOSPC).
    pub enospc_stops: u64,
    /// Misdirected writes that landed (a write at a wrong offset of its
    /// file).
    pub misdirected_writes: u64,
    /// Slow-disk episodes (one member's disk 10-100x slower for a while).
    pub slow_disks: u64,
    /// Members cut off from their peers only, for a while (clients still
    /// reach them): a peer-only partition, random or scripted.
    pub peer_cuts: u64,
    /// Of those, the ones that cut a member whose disk was in a slow
    /// episode (a host in trouble, `run/peer_cut.rs`, or its replay).
    pub slow_peer_cuts: u64,
    /// Process pauses (a member's process descheduled for a while: a host
    /// in trouble, or a `pause` step).
    pub pauses: u64,
    /// Entries that applied a request id already applied at an earlier
    /// index (a client retry proposed it again and both committed).
    pub applied_twice: u64,
    /// Boots that finished a leader snapshot install a crash interrupted.
    pub boot_installs: u64,
    /// Boots stopped by an injected crash or power loss (a crash during
    /// recovery).
    pub boot_crashes: u64,
    /// Compactions that took effect (each log index once, whichever member
    /// applied it first).
    pub compactions: u64,
    /// WAL segment cuts on every member.
    pub wal_cuts: u64,
    /// Torn or reordering power losses that found no multi-sector write to
    /// tear, so acted as a clean power loss.
    pub tears_without_target: u64,
    /// Power losses armed at a sync with a write to tear that fired (the
    /// random run's torn-write faults aimed at a pending multi-sector
    /// write).
    pub aimed_tears: u64,
    /// Power losses of a member shortly after it carried on past an
    /// injected EIO (a compound fault, `run/after_eio.rs`).
    pub crashes_after_eio: u64,
    /// Member-to-member messages lost, sent twice, or delayed by scripted
    /// link rules (`split`, `cut_link`, `link_faults` steps).
    pub messages_dropped: u64,
    pub messages_duplicated: u64,
    pub messages_delayed: u64,
    /// Backend commits on every member (for `sim bench`'s floor; not a
    /// fault, so not in the sweep's table).
    pub backend_commits: u64,
    /// Full state dumps taken for restart equivalence (the same).
    pub state_dumps: u64,
    /// Clusters restored from a member's backend snapshot alone (etcdutl
    /// `snapshot restore`).
    pub snapshot_restores: u64,
    /// Clusters restored from a member's `backup --with-v3` and grown back
    /// to their size.
    pub backup_restores: u64,
    /// Members added by a conf change (learners included), removed, and
    /// replaced (removed, then a new id with an empty data dir added).
    pub members_added: u64,
    pub learners_added: u64,
    pub promotions: u64,
    pub members_removed: u64,
    pub members_replaced: u64,
    /// Leadership handed to a chosen follower (raft-rs `transfer_leader`).
    pub leader_transfers: u64,
    /// Client reads issued: linearizable (ReadIndex) and serializable.
    pub linearizable_reads: u64,
    pub serializable_reads: u64,
    /// Client operations whose session gave up (they may or may not have
    /// taken effect).
    pub indeterminate: u64,
    /// Key partitions whose linearizability search ran out of its step
    /// budget (verdict unknown), and the search steps taken.
    pub linearize_unknown: u64,
    pub linearize_steps: u64,
}

/// Reads one counter.
type Reader = fn(&RunStats) -> u64;

/// The statistics a scenario's `expect` step may name and a sweep's fault
/// table shows, with how to read each: the one list the format's
/// validation, the runner and the sweep use.
const NAMED: &[(&str, Reader)] = &[
    ("wal_repairs", |s| s.wal_repairs),
    ("commit_crashes", |s| s.commit_crashes),
    ("point_crashes", |s| s.point_crashes),
    ("snapshots", |s| s.snapshots),
    ("snapshots_installed", |s| s.snapshots_installed),
    ("replay_skipped_v3", |s| s.replay_skipped_v3),
    ("restarts", |s| s.restarts),
    ("power_losses", |s| s.power_losses),
    ("eio_failures", |s| s.eio_failures),
    ("unclean_backend_opens", |s| s.unclean_backend_opens),
    ("cluster_power_cuts", |s| s.cluster_power_cuts),
    ("reboot_power_losses", |s| s.reboot_power_losses),
    ("corruptions", |s| s.corruptions),
    ("bad_sectors", |s| s.bad_sectors),
    ("quarantined", |s| s.quarantined),
    ("enospc_stops", |s| s.enospc_stops),
    ("crashes", |s| s.crashes),
    ("partitions", |s| s.partitions),
    ("torn_writes", |s| s.torn_writes),
    ("replayed", |s| s.replayed),
    ("applied_twice", |s| s.applied_twice),
    ("misdirected_writes", |s| s.misdirected_writes),
    ("slow_disks", |s| s.slow_disks),
    ("snapshot_restores", |s| s.snapshot_restores),
    ("backup_restores", |s| s.backup_restores),
    ("members_added", |s| s.members_added),
    ("learners_added", |s| s.learners_added),
    ("promotions", |s| s.promotions),
    ("members_removed", |s| s.members_removed),
    ("members_replaced", |s| s.members_replaced),
    ("leader_transfers", |s| s.leader_transfers),
    ("boot_installs", |s| s.boot_installs),
    ("boot_crashes", |s| s.boot_crashes),
    ("compactions", |s| s.compactions),
    ("wal_cuts", |s| s.wal_cuts),
    ("tears_without_target", |s| s.tears_without_target),
    ("messages_dropped", |s| s.messages_dropped),
    ("messages_duplicated", |s| s.messages_duplicated),
    ("messages_delayed", |s| s.messages_delayed),
    ("linearizable_reads", |s| s.linearizable_reads),
    ("serializable_reads", |s| s.serializable_reads),
    ("indeterminate", |s| s.indeterminate),
    ("linearize_unknown", |s| s.linearize_unknown),
    ("aimed_tears", |s| s.aimed_tears),
    ("crashes_after_eio", |s| s.crashes_after_eio),
    ("peer_cuts", |s| s.peer_cuts),
    ("slow_peer_cuts", |s| s.slow_peer_cuts),
    ("pauses", |s| s.pauses),
];

impl RunStats {
    /// The names an `expect` step may use.
    pub fn names() -> impl Iterator<Item = &'static str> {
        NAMED.iter().map(|(name, _)| *name)
    }

    /// The statistic called `name`, if there is one.
    pub fn get(&self, name: &str) -> Option<u64> {
        NAMED
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, read)| read(self))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_reads_its_own_counter() {
        let stats = RunStats {
            wal_repairs: 1,
            commit_crashes: 2,
            point_crashes: 3,
            snapshots: 4,
            snapshots_installed: 5,
            replay_skipped_v3: 6,
            restarts: 7,
            power_losses: 8,
            eio_failures: 9,
            unclean_backend_opens: 10,
            cluster_power_cuts: 11,
            reboot_power_losses: 12,
            corruptions: 13,
            bad_sectors: 14,
            quarantined: 15,
            enospc_stops: 16,
            crashes: 17,
            partitions: 18,
            torn_writes: 19,
            replayed: 20,
            applied_twice: 21,
            misdirected_writes: 22,
            slow_disks: 23,
            snapshot_restores: 24,
            backup_restores: 25,
            members_added: 26,
            learners_added: 27,
            promotions: 28,
            members_removed: 29,
            members_replaced: 30,
            leader_transfers: 31,
            boot_installs: 32,
            boot_crashes: 33,
            compactions: 34,
            wal_cuts: 35,
            tears_without_target: 36,
            messages_dropped: 37,
            messages_duplicated: 38,
            messages_delayed: 39,
            linearizable_reads: 40,
            serializable_reads: 41,
            indeterminate: 42,
            linearize_unknown: 43,
            aimed_tears: 44,
            crashes_after_eio: 45,
            peer_cuts: 46,
            slow_peer_cuts: 47,
            pauses: 48,
            ..RunStats::default()
        };
        let read: Vec<u64> = RunStats::names().filter_map(|n| stats.get(n)).collect();
        assert_eq!(read, (1..=48).collect::<Vec<_>>());
        assert_eq!(stats.get("no_such_stat"), None);
    }
}
