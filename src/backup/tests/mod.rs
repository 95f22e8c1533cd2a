//! Backup and restore tests. The fixture builds a source member by hand
//! (through `Member::save`/`apply`, as a Ready loop would), including raft
//! term changes that overwrite an uncommitted tail, so the WAL holds
//! duplicate indexes.

mod bad_input;
#[cfg(feature = "known-bugs")]
mod bugs;
mod crash;
mod proptests;
mod scenario;
mod snapshot_restore;

use super::*;
use crate::backend::BackendOptions;
use crate::crash_point::NoCrash;
use crate::member::{Member, SNAP_DIR, StoreConfig, WAL_DIR, WalMetadata};
use crate::proto::{
    ClusterVersionSetRequest, ConfChangeKind, ConfChangeRequest, DeleteRangeRequest,
    DowngradeInfoSetRequest, Entry, EntryType, MemberAttrSetRequest, PutRequest, Request,
    V2DeleteRequest, V2SetRequest, request,
};
use crate::wal::WalOptions;
use prost::Message;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

pub(super) const NEW_ID: u64 = 0xbac0;
pub(super) const NEW_CLUSTER: u64 = 0xc105;

pub(super) fn info(id: u64) -> MemberInfo {
    MemberInfo {
        id,
        name: format!("m{id}"),
        peer_urls: vec![format!("http://m{id}:2380")],
        client_urls: Vec::new(),
        is_learner: false,
    }
}

pub(super) fn store_config() -> StoreConfig {
    StoreConfig {
        snapshot_count: u64::MAX / 2,
        backend: BackendOptions {
            batch_limit: 1_000_000,
            batch_interval_ms: 1_000_000,
            ..BackendOptions::default()
        },
        // Small segments: the source WAL spans several files.
        wal: WalOptions {
            segment_size: 1024,
            ..WalOptions::default()
        },
        verify: VerifyMode::All,
        bugs: KnownBugs::NONE,
    }
}

pub(super) fn options() -> BackupOptions {
    BackupOptions {
        verify: VerifyMode::All,
        ..BackupOptions::new(NEW_ID, NEW_CLUSTER)
    }
}

/// One client request or membership change, as the fixture writes it.
#[derive(Debug, Clone)]
pub(super) enum Op {
    /// The empty entry a new leader appends.
    Empty,
    Put(&'static str, &'static str),
    Delete(&'static str),
    V2Set(&'static str, &'static str),
    V2Delete(&'static str),
    Version(&'static str),
    Downgrade,
    MemberAttr(u64),
    V2MemberAttr(u64),
    Add(u64),
    AddLearner(u64),
    Remove(u64),
    Promote(u64),
}

impl Op {
    /// Whether the fixture means this op as a membership change (kept
    /// apart from the library's own classification on purpose).
    pub(super) fn is_membership(&self) -> bool {
        matches!(
            self,
            Op::MemberAttr(_)
                | Op::V2MemberAttr(_)
                | Op::Add(_)
                | Op::AddLearner(_)
                | Op::Remove(_)
                | Op::Promote(_)
        )
    }

    fn entry(&self, index: u64, term: u64) -> Entry {
        let normal = |kind| Entry {
            term,
            index,
            entry_type: EntryType::Normal as i32,
            data: Request {
                id: index,
                kind: Some(kind),
            }
            .encode_to_vec(),
            context: Vec::new(),
        };
        let conf = |kind: ConfChangeKind, id: u64| Entry {
            term,
            index,
            entry_type: EntryType::ConfChange as i32,
            data: Vec::new(),
            context: ConfChangeRequest {
                kind: kind as i32,
                node_id: id,
                member: Some(info(id)),
                request_id: index,
            }
            .encode_to_vec(),
        };
        match self {
            Op::Empty => Entry {
                term,
                index,
                ..Entry::default()
            },
            Op::Put(k, v) => normal(request::Kind::Put(PutRequest {
                key: k.as_bytes().to_vec(),
                value: v.as_bytes().to_vec(),
            })),
            Op::Delete(k) => normal(request::Kind::DeleteRange(DeleteRangeRequest {
                key: k.as_bytes().to_vec(),
                range_end: Vec::new(),
            })),
            Op::V2Set(p, v) => normal(request::Kind::V2Set(V2SetRequest {
                path: p.to_string(),
                value: v.to_string(),
            })),
            Op::V2Delete(p) => normal(request::Kind::V2Delete(V2DeleteRequest {
                path: p.to_string(),
                recursive: true,
            })),
            Op::Version(v) => normal(request::Kind::ClusterVersionSet(ClusterVersionSetRequest {
                version: v.to_string(),
            })),
            Op::Downgrade => normal(request::Kind::DowngradeInfoSet(DowngradeInfoSetRequest {
                enabled: true,
                target_version: "3.4.0".into(),
            })),
            Op::MemberAttr(id) => normal(request::Kind::MemberAttrSet(MemberAttrSetRequest {
                member_id: *id,
                name: format!("m{id}-at-{index}"),
                client_urls: vec![format!("http://m{id}:2379")],
            })),
            Op::V2MemberAttr(id) => normal(request::Kind::V2Set(V2SetRequest {
                path: format!("/0/members/{id:016x}/attributes"),
                value: format!(r#"{{"name":"v2-{index}","clientURLs":[]}}"#),
            })),
            Op::Add(id) => conf(ConfChangeKind::AddNode, *id),
            Op::AddLearner(id) => conf(ConfChangeKind::AddLearnerNode, *id),
            Op::Remove(id) => conf(ConfChangeKind::RemoveNode, *id),
            Op::Promote(id) => conf(ConfChangeKind::Promote, *id),
        }
    }
}

/// A member's log driven by hand: appends at the current term, term
/// changes that overwrite the uncommitted tail, commits (hard state saved,
/// then entries applied), backend commits and snapshots.
pub(super) struct Log {
    pub member: Member,
    pub term: u64,
    /// The log as raft holds it now: index `i` at `entries[i - 1]`.
    pub entries: Vec<Entry>,
    pub commit: u64,
    /// (index, term) of every entry written as a membership change,
    /// overwritten ones included.
    pub membership: BTreeSet<(u64, u64)>,
    now: u64,
}

impl Log {
    /// A three-member cluster's first member: entries 1..=3 add the members.
    pub fn bootstrap(disk: Arc<dyn Disk>) -> Log {
        let members = [info(1), info(2), info(3)];
        let (member, _) = Member::bootstrap(
            disk,
            store_config(),
            Arc::new(NoCrash),
            &WalMetadata {
                member_id: 1,
                cluster_id: 7,
            },
            &members,
            0,
        )
        .unwrap();
        let entries: Vec<Entry> = members
            .iter()
            .enumerate()
            .map(|(i, m)| crate::member::bootstrap_entry(i as u64 + 1, m))
            .collect();
        Log {
            member,
            term: 1,
            membership: entries.iter().map(|e| (e.index, e.term)).collect(),
            commit: entries.len() as u64,
            entries,
            now: 0,
        }
    }

    pub fn last_index(&self) -> u64 {
        self.entries.len() as u64
    }

    fn hard_state(&self) -> HardState {
        HardState {
            term: self.term,
            vote: 1,
            commit: self.commit,
        }
    }

    /// Saves `ops` as new entries at the current term.
    pub fn append(&mut self, ops: &[Op]) {
        let first = self.last_index() + 1;
        let new: Vec<Entry> = ops
            .iter()
            .enumerate()
            .map(|(i, op)| {
                let e = op.entry(first + i as u64, self.term);
                if op.is_membership() {
                    self.membership.insert((e.index, e.term));
                }
                e
            })
            .collect();
        self.member.save(Some(&self.hard_state()), &new).unwrap();
        self.entries.extend(new);
    }

    /// A new leader at the next term whose log ends at `keep`: its next
    /// entries overwrite everything after `keep` (which must be committed
    /// or later).
    pub fn new_term(&mut self, keep: u64) {
        assert!(keep >= self.commit && keep <= self.last_index());
        self.term += 1;
        // The new leader's log (the WAL keeps the old tail until the next
        // append overwrites it).
        self.entries.truncate(keep as usize);
        self.member.save(Some(&self.hard_state()), &[]).unwrap();
    }

    /// Commits and applies up to `index`.
    pub fn commit_to(&mut self, index: u64) {
        assert!(index <= self.last_index());
        let from = self.commit;
        self.commit = index;
        self.member.save(Some(&self.hard_state()), &[]).unwrap();
        for e in &self.entries[from as usize..index as usize] {
            self.member.apply(e, self.now).unwrap();
        }
    }

    /// The backend's batch timer fires: the consistent index becomes
    /// durable at the last applied entry.
    pub fn backend_commit(&mut self) {
        assert!(self.tick_backend(), "nothing to commit");
    }

    /// The batch timer fires; returns whether anything was committed.
    pub fn tick_backend(&mut self) -> bool {
        self.now += 10_000_000;
        self.member.tick(self.now).unwrap()
    }

    /// Committed entries the fixture wrote as membership changes.
    pub fn committed_membership(&self) -> BTreeSet<u64> {
        self.entries[..self.commit as usize]
            .iter()
            .filter(|e| self.membership.contains(&(e.index, e.term)))
            .map(|e| e.index)
            .collect()
    }
}

/// The issue's scenario: entries at term 1, a snapshot, a term-2 leader
/// overwriting an uncommitted term-1 tail (membership entries in both the
/// overwritten and the new tail), the backend committed at a term-2 entry,
/// then more committed and uncommitted entries. The member is dropped
/// without a final backend commit, so its backend is behind its commit.
pub(super) fn term_change_source(disk: Arc<dyn Disk>) -> Log {
    let mut log = Log::bootstrap(disk);
    log.append(&[
        Op::Put("a", "1"),
        Op::V2Set("/app/x", "1"),
        Op::Add(4),
        Op::Put("b", "1"),
        Op::MemberAttr(2),
        Op::V2Set("/app/y", "1"),
        Op::Version("3.5.0"),
        Op::Put("c", "1"),
        Op::V2MemberAttr(1),
        Op::Put("a", "2"),
    ]);
    log.commit_to(log.last_index());
    log.member.snapshot_now().unwrap();
    let s = log.commit;
    log.append(&[
        Op::Put("d", "1"),
        Op::AddLearner(5),
        Op::V2Set("/app/z", "1"),
        Op::Put("e", "1"),
        // The uncommitted term-1 tail, overwritten below.
        Op::Put("lost", "1"),
        Op::Remove(2),
        Op::Put("lost", "2"),
        Op::V2Set("/app/lost", "1"),
    ]);
    log.commit_to(s + 4);
    log.new_term(s + 4);
    log.append(&[
        Op::Empty,
        Op::Put("f", "2"),
        Op::MemberAttr(1),
        Op::V2MemberAttr(4),
        Op::Put("g", "2"),
        Op::Remove(3),
        Op::Delete("a"),
        Op::Version("3.6.0"),
        Op::V2Delete("/app/x"),
        Op::Promote(5),
        Op::Put("h", "2"),
        Op::Downgrade,
        Op::V2Set("/0/version", "3.6.1"),
        Op::Put("i", "2"),
        // Uncommitted at the end.
        Op::Put("j", "2"),
        Op::Add(6),
    ]);
    log.commit_to(s + 4 + 6);
    log.backend_commit();
    log.commit_to(log.last_index() - 2);
    log
}

/// Every file under the member's directories, for "the source is
/// unchanged" checks.
pub(super) fn files(disk: &dyn Disk) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    for dir in [WAL_DIR, SNAP_DIR] {
        for name in disk.list(Path::new(dir)).unwrap() {
            let path = Path::new(dir).join(name);
            out.insert(path.clone(), disk.read_all(&path).unwrap());
        }
    }
    out
}

/// Opens a data directory as a member with the boot checks on.
pub(super) fn open(disk: Arc<dyn Disk>) -> Result<Member, crate::member::StoreError> {
    Member::open(disk, store_config(), Arc::new(NoCrash), 0).map(|(m, _)| m)
}

/// The state a backup of `src` must boot into, computed by the library's
/// reference replay with the fixture's own list of membership entries.
pub(super) fn expected(
    src: &dyn Disk,
    log_membership: &BTreeSet<(u64, u64)>,
    opts: &BackupOptions,
) -> StateDump {
    let source = source::read(src, opts.with_v3).unwrap();
    check::expected_state_with(&source, opts, &|e: &Entry| {
        log_membership.contains(&(e.index, e.term))
    })
    .unwrap()
}
