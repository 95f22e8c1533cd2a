//! The WAL rewrite: which entries are membership-related, and how they are
//! taken out of a log that a new one-member cluster will replay.
//!
//! Which entries are stripped (after etcdutl's `translateWAL`, which strips
//! conf changes, v2 PUTs of `/0/members/<id>/attributes` and
//! `ClusterMemberAttrSet`):
//! - every conf change entry;
//! - `MemberAttrSet` requests;
//! - v2 writes (set, delete, create-in-order) at or under `/0/members` or
//!   `/0/removed_members`: etcd strips only attribute PUTs, but here a v2
//!   write of any member key would plant an old member in the new cluster's
//!   v2 store, which is where membership is rebuilt from on boot.
//!
//! Kept: cluster version and downgrade requests (v2 `/0/version` included):
//! they describe the data, not who serves it.
//!
//! A stripped entry becomes a no-op **at the same index and term**. Removing
//! it and renumbering the rest (the `backup-shift-indexes` bug) makes every
//! later index name a different entry than in the source: the backend's
//! consistent index, the applied index of every replica and every history
//! keyed by index then disagree with the source's.

use crate::bugs::{Bug, KnownBugs};
use crate::proto::{Entry, EntryType, Request, request};
use prost::Message;

const MEMBER_DIRS: [&str; 2] = ["/0/members", "/0/removed_members"];

/// Whether a v2 path is at or below one of the membership directories.
fn is_member_path(path: &str) -> bool {
    let path = format!("/{}", path.trim_start_matches('/'));
    MEMBER_DIRS.iter().any(|dir| {
        path.strip_prefix(dir)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    })
}

/// Whether `entry` changes membership and must not reach the new cluster.
/// An undecodable normal entry is kept: the store's apply path reports it.
pub fn is_membership_entry(entry: &Entry) -> bool {
    match EntryType::try_from(entry.entry_type) {
        Ok(EntryType::ConfChange) | Ok(EntryType::ConfChangeV2) => true,
        Ok(EntryType::Normal) if !entry.data.is_empty() => {
            match Request::decode(entry.data.as_slice()) {
                Ok(req) => match req.kind {
                    Some(request::Kind::MemberAttrSet(_)) => true,
                    Some(request::Kind::V2Set(r)) => is_member_path(&r.path),
                    Some(request::Kind::V2Delete(r)) => is_member_path(&r.path),
                    Some(request::Kind::V2CreateInOrder(r)) => is_member_path(&r.dir),
                    _ => false,
                },
                Err(_) => false,
            }
        }
        _ => false,
    }
}

/// The no-op that takes a stripped entry's place.
pub fn noop_entry(index: u64, term: u64) -> Entry {
    Entry {
        term,
        index,
        entry_type: EntryType::Normal as i32,
        data: Request {
            id: 0,
            kind: Some(request::Kind::Noop(true)),
        }
        .encode_to_vec(),
        context: Vec::new(),
    }
}

/// The rewritten log and where each source index went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Translated {
    /// The entries to write, consecutive from `base + 1`.
    pub entries: Vec<Entry>,
    /// How many source entries were membership-related.
    pub stripped: u64,
    base: u64,
    /// For each source entry (`base + 1 + i`): the destination index of the
    /// last kept entry at or before it (`base` if none).
    map: Vec<u64>,
}

impl Translated {
    /// The destination index that holds what the source held up to and
    /// including `source_index` (identity unless indexes were shifted).
    pub fn map_index(&self, source_index: u64) -> u64 {
        if source_index <= self.base {
            return source_index;
        }
        let i = (source_index - self.base - 1) as usize;
        match self.map.get(i) {
            Some(dst) => *dst,
            // Past the translated log: shift by the total removed.
            None => source_index - (self.base + self.map.len() as u64 - self.last_index()),
        }
    }

    /// The destination's last index.
    pub fn last_index(&self) -> u64 {
        self.entries.last().map_or(self.base, |e| e.index)
    }

    /// The term of the destination entry at `index` (`base_term` at `base`).
    pub fn term_at(&self, index: u64, base_term: u64) -> Option<u64> {
        if index == self.base {
            return Some(base_term);
        }
        let i = index.checked_sub(self.base + 1)? as usize;
        self.entries.get(i).map(|e| e.term)
    }
}

/// Rewrites `entries` (consecutive, starting at `base + 1`): membership
/// entries become no-ops in place, or, with the `backup-shift-indexes`
/// bug, are dropped and the later entries renumbered.
pub fn translate(base: u64, entries: &[Entry], bugs: KnownBugs) -> Translated {
    let shift = bugs.has(Bug::BackupShiftIndexes);
    let mut out = Vec::with_capacity(entries.len());
    let mut map = Vec::with_capacity(entries.len());
    let mut stripped = 0;
    for entry in entries {
        let membership = is_membership_entry(entry);
        stripped += u64::from(membership);
        if !shift {
            out.push(if membership {
                noop_entry(entry.index, entry.term)
            } else {
                entry.clone()
            });
        } else if !membership {
            let mut moved = entry.clone();
            moved.index = base + 1 + out.len() as u64;
            out.push(moved);
        }
        map.push(base + out.len() as u64);
    }
    Translated {
        entries: out,
        stripped,
        base,
        map,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::{
        MemberAttrSetRequest, PutRequest, V2CreateInOrderRequest, V2DeleteRequest, V2SetRequest,
    };

    fn normal(index: u64, term: u64, kind: request::Kind) -> Entry {
        Entry {
            term,
            index,
            entry_type: EntryType::Normal as i32,
            data: Request {
                id: index,
                kind: Some(kind),
            }
            .encode_to_vec(),
            context: Vec::new(),
        }
    }

    fn put(index: u64, term: u64) -> Entry {
        normal(
            index,
            term,
            request::Kind::Put(PutRequest {
                key: b"k".to_vec(),
                value: b"v".to_vec(),
            }),
        )
    }

    fn conf_change(index: u64, term: u64) -> Entry {
        Entry {
            term,
            index,
            entry_type: EntryType::ConfChange as i32,
            data: Vec::new(),
            context: vec![1, 2, 3],
        }
    }

    #[test]
    fn member_paths_are_recognised_and_lookalikes_are_not() {
        for p in [
            "/0/members",
            "/0/members/00000000000000aa/attributes",
            "0/members/1/raftAttributes",
            "/0/removed_members/2",
        ] {
            assert!(is_member_path(p), "{p}");
        }
        for p in [
            "/0/version",
            "/0/membersX",
            "/app/0/members",
            "/0/downgrade",
        ] {
            assert!(!is_member_path(p), "{p}");
        }
    }

    #[test]
    fn membership_requests_are_classified() {
        let set = |path: &str| {
            normal(
                1,
                1,
                request::Kind::V2Set(V2SetRequest {
                    path: path.into(),
                    value: "x".into(),
                }),
            )
        };
        assert!(is_membership_entry(&conf_change(1, 1)));
        assert!(is_membership_entry(&normal(
            1,
            1,
            request::Kind::MemberAttrSet(MemberAttrSetRequest::default())
        )));
        assert!(is_membership_entry(&set("/0/members/01/attributes")));
        assert!(is_membership_entry(&normal(
            1,
            1,
            request::Kind::V2Delete(V2DeleteRequest {
                path: "/0/removed_members/3".into(),
                recursive: false
            })
        )));
        assert!(is_membership_entry(&normal(
            1,
            1,
            request::Kind::V2CreateInOrder(V2CreateInOrderRequest {
                dir: "/0/members".into(),
                value: "x".into()
            })
        )));
        assert!(!is_membership_entry(&set("/0/version")));
        assert!(!is_membership_entry(&set("/app/a")));
        assert!(!is_membership_entry(&put(1, 1)));
        let empty = Entry {
            term: 1,
            index: 1,
            ..Entry::default()
        };
        assert!(!is_membership_entry(&empty), "a leader's empty entry");
    }

    #[test]
    fn noops_keep_index_and_term() {
        let src = vec![put(6, 1), conf_change(7, 2), put(8, 2), conf_change(9, 3)];
        let t = translate(5, &src, KnownBugs::NONE);
        assert_eq!(t.stripped, 2);
        let ids: Vec<(u64, u64)> = t.entries.iter().map(|e| (e.index, e.term)).collect();
        assert_eq!(ids, vec![(6, 1), (7, 2), (8, 2), (9, 3)]);
        assert_eq!(t.entries[1], noop_entry(7, 2));
        assert_eq!(t.entries[2], src[2]);
        for i in 0..=12 {
            assert_eq!(t.map_index(i), i, "identity at {i}");
        }
        assert_eq!(t.term_at(5, 9), Some(9));
        assert_eq!(t.term_at(9, 0), Some(3));
        assert_eq!(t.term_at(10, 0), None);
    }

    #[cfg(feature = "known-bugs")]
    #[test]
    fn the_shift_bug_drops_and_renumbers() {
        let mut bugs = KnownBugs::NONE;
        bugs.enable(Bug::BackupShiftIndexes).unwrap();
        let src = vec![put(6, 1), conf_change(7, 2), put(8, 2), conf_change(9, 3)];
        let t = translate(5, &src, bugs);
        let ids: Vec<(u64, u64)> = t.entries.iter().map(|e| (e.index, e.term)).collect();
        assert_eq!(ids, vec![(6, 1), (7, 2)], "put 8 moved to 7");
        assert_eq!(t.map_index(7), 6);
        assert_eq!(t.map_index(8), 7);
        assert_eq!(t.map_index(9), 7);
        assert_eq!(t.map_index(11), 9, "past the end: shifted by all removed");
    }
}
