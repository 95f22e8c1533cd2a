//! Boot and replay, end to end on the in-memory disk: the recovery rules
//! this project exists for.

use super::*;
use crate::backend::BackendOptions;
use crate::crash_point::NoCrash;
use crate::disk::MemDisk;
use crate::proto::{
    ClusterVersionSetRequest, DowngradeInfoSetRequest, MemberAttrSetRequest, PutRequest, Request,
    V2SetRequest, request,
};
use crate::verify::VerifyError;

fn info(id: u64) -> MemberInfo {
    MemberInfo {
        id,
        name: format!("m{id}"),
        peer_urls: vec![format!("http://m{id}:2380")],
        client_urls: Vec::new(),
        is_learner: false,
    }
}

fn config(bugs: KnownBugs) -> StoreConfig {
    StoreConfig {
        // Snapshots are taken by hand in these tests.
        snapshot_count: u64::MAX / 2,
        backend: BackendOptions {
            batch_limit: 1_000_000,
            batch_interval_ms: 1_000_000,
            ..BackendOptions::default()
        },
        wal: WalOptions::default(),
        verify: VerifyMode::All,
        bugs,
    }
}

/// One member on a MemDisk that can be power-cycled.
struct Harness {
    disk: Arc<MemDisk>,
    member: Member,
    next_index: u64,
    bugs: KnownBugs,
}

impl Harness {
    fn new(bugs: KnownBugs) -> Harness {
        let disk = Arc::new(MemDisk::new());
        let (member, _) = Member::bootstrap(
            disk.clone(),
            config(bugs),
            Arc::new(NoCrash),
            &WalMetadata {
                member_id: 1,
                cluster_id: 9,
            },
            &[info(1), info(2), info(3)],
            0,
        )
        .unwrap();
        let next_index = member.applied_index() + 1;
        Harness {
            disk,
            member,
            next_index,
            bugs,
        }
    }

    /// Persists and applies one entry, as a member's Ready loop does.
    fn commit(&mut self, entry_type: EntryType, data: Vec<u8>, context: Vec<u8>) -> Applied {
        let entry = Entry {
            term: 1,
            index: self.next_index,
            entry_type: entry_type as i32,
            data,
            context,
        };
        self.next_index += 1;
        let hs = HardState {
            term: 1,
            vote: 1,
            commit: entry.index,
        };
        self.member
            .save(Some(&hs), std::slice::from_ref(&entry))
            .unwrap();
        self.member.apply(&entry, 0).unwrap()
    }

    fn request(&mut self, kind: request::Kind) -> Applied {
        let req = Request {
            id: self.next_index,
            kind: Some(kind),
        };
        self.commit(EntryType::Normal, req.encode_to_vec(), Vec::new())
    }

    fn conf_change(&mut self, kind: ConfChangeKind, id: u64, learner: bool) -> Applied {
        let cc = ConfChangeRequest {
            kind: kind as i32,
            node_id: id,
            member: Some(MemberInfo {
                is_learner: learner,
                ..info(id)
            }),
            request_id: self.next_index,
        };
        self.commit(EntryType::ConfChange, Vec::new(), cc.encode_to_vec())
    }

    fn put(&mut self, key: &str, value: &str) {
        self.request(request::Kind::Put(PutRequest {
            key: key.into(),
            value: value.into(),
        }));
    }

    /// Power loss: unsynced state is gone (the WAL was fsynced per save; the
    /// backend keeps only what its last commit made durable), then boot.
    fn power_cycle(self) -> Result<(Harness, Recovered), StoreError> {
        let Harness {
            disk,
            member,
            next_index,
            bugs,
        } = self;
        drop(member);
        disk.crash_power_loss();
        let (member, recovered) = Member::open(disk.clone(), config(bugs), Arc::new(NoCrash), 0)?;
        Ok((
            Harness {
                disk,
                member,
                next_index,
                bugs,
            },
            recovered,
        ))
    }
}

/// Drives two members through the same entries; `subject` gets a v2
/// snapshot, then a backend commit past it, then dual (v2 + backend)
/// requests whose backend half is committed, then an uncommitted tail.
/// Returns both, ready for the subject to be power-cycled.
fn backend_ahead_of_snapshot(bugs: KnownBugs) -> (Harness, Harness, u64) {
    let mut subject = Harness::new(bugs);
    let mut reference = Harness::new(KnownBugs::NONE);
    let mut snapshot_index = 0;
    for h in [&mut subject, &mut reference] {
        h.put("a", "1");
        h.request(request::Kind::V2Set(V2SetRequest {
            path: "/app/x".into(),
            value: "1".into(),
        }));
        snapshot_index = h.member.snapshot_now().unwrap().index;
        h.put("b", "2");
        h.request(request::Kind::ClusterVersionSet(ClusterVersionSetRequest {
            version: "3.5.0".into(),
        }));
        h.request(request::Kind::MemberAttrSet(MemberAttrSetRequest {
            member_id: 2,
            name: "m2-renamed".into(),
            client_urls: vec!["http://m2:2379".into()],
        }));
        h.request(request::Kind::DowngradeInfoSet(DowngradeInfoSetRequest {
            enabled: true,
            target_version: "3.4.0".into(),
        }));
        // An automatic batch commit: the backend is now ahead of the v2
        // snapshot, which is the situation etcd mis-recovered.
        h.member.stores.backend.force_commit().unwrap();
        h.put("c", "3");
        h.request(request::Kind::V2Set(V2SetRequest {
            path: "/app/y".into(),
            value: "2".into(),
        }));
    }
    (subject, reference, snapshot_index)
}

#[test]
fn replay_over_a_backend_ahead_of_the_snapshot_restores_v2_index_and_tree() {
    let (subject, reference, snapshot_index) = backend_ahead_of_snapshot(KnownBugs::NONE);
    let before = subject.member.state_dump().unwrap();
    let (subject, recovered) = subject.power_cycle().unwrap();
    assert_eq!(recovered.snapshot.index, snapshot_index);
    assert!(
        recovered.replay_skipped_v3 >= 4,
        "the dual requests must have been replayed over a backend that held them: {recovered:?}"
    );
    assert!(
        recovered.replayed > recovered.replay_skipped_v3,
        "the uncommitted tail is re-applied"
    );
    let after = subject.member.state_dump().unwrap();
    assert_eq!(after, before, "restart changed the member's state");
    assert_eq!(after, reference.member.state_dump().unwrap());
    assert_eq!(after.cluster.version.as_deref(), Some("3.5.0"));
    assert_eq!(after.backend_membership.version.as_deref(), Some("3.5.0"));
}

#[cfg(feature = "known-bugs")]
#[test]
fn skipping_the_v2_half_on_replay_diverges_the_v2_index() {
    let mut bugs = KnownBugs::NONE;
    bugs.enable(crate::bugs::Bug::V2SkippedWithV3).unwrap();
    let (subject, reference, _) = backend_ahead_of_snapshot(bugs);
    let (subject, _) = subject.power_cycle().unwrap();
    let after = subject.member.state_dump().unwrap();
    let expected = reference.member.state_dump().unwrap();
    assert!(
        after.v2.index < expected.v2.index,
        "the bug must lose v2 index increments: {} vs {}",
        after.v2.index,
        expected.v2.index
    );
    assert_ne!(after.cluster, expected.cluster);
}

/// Conf changes between the snapshot and the backend's consistent index.
fn conf_changes_ahead_of_snapshot(bugs: KnownBugs) -> (Harness, Harness) {
    let mut subject = Harness::new(bugs);
    let mut reference = Harness::new(KnownBugs::NONE);
    for h in [&mut subject, &mut reference] {
        h.put("a", "1");
        h.member.snapshot_now().unwrap();
        let added = h.conf_change(ConfChangeKind::AddLearnerNode, 4, true);
        assert!(added.conf_change.is_some(), "{added:?}");
        h.conf_change(ConfChangeKind::Promote, 4, false);
        h.conf_change(ConfChangeKind::RemoveNode, 3, false);
        let rejected = h.conf_change(ConfChangeKind::AddNode, 3, false);
        assert!(
            rejected
                .response
                .as_ref()
                .is_some_and(|r| !r.error.is_empty()),
            "re-adding a removed id is refused: {rejected:?}"
        );
        h.member.stores.backend.force_commit().unwrap();
        h.put("b", "2");
    }
    (subject, reference)
}

#[test]
fn conf_changes_replayed_over_the_backend_are_applied_to_it_once() {
    let (subject, reference) = conf_changes_ahead_of_snapshot(KnownBugs::NONE);
    let (subject, recovered) = subject.power_cycle().unwrap();
    assert!(recovered.replay_skipped_v3 >= 4, "{recovered:?}");
    let after = subject.member.state_dump().unwrap();
    assert_eq!(after, reference.member.state_dump().unwrap());
    assert!(after.cluster.members.contains_key(&4));
    assert!(!after.cluster.members[&4].is_learner);
    assert!(after.cluster.removed.contains(&3));
    assert_eq!(
        after.conf_state.as_ref().map(|cs| cs.voters.clone()),
        Some(vec![1, 2, 4])
    );
}

#[cfg(feature = "known-bugs")]
#[test]
fn conf_changes_applied_twice_to_the_backend_are_caught() {
    let mut bugs = KnownBugs::NONE;
    bugs.enable(crate::bugs::Bug::ConfchangeDoubleApply)
        .unwrap();
    let (subject, _) = conf_changes_ahead_of_snapshot(bugs);
    let Err(err) = subject.power_cycle() else {
        panic!("boot must fail");
    };
    assert!(
        err.to_string().contains("applied to the backend twice"),
        "{err}"
    );
}

#[test]
fn a_backend_behind_the_snapshot_fails_verify_with_both_indexes() {
    let mut h = Harness::new(KnownBugs::NONE);
    h.put("a", "1");
    let old_backend = h.disk.read_all(Path::new(BACKEND_FILE)).unwrap();
    h.put("b", "2");
    let snap = h.member.snapshot_now().unwrap();
    drop(h.member);
    // Hand-made inconsistency: the backend file from before the snapshot.
    h.disk.create(Path::new(BACKEND_FILE)).unwrap();
    h.disk
        .write_at(Path::new(BACKEND_FILE), 0, &old_backend)
        .unwrap();
    h.disk.sync(Path::new(BACKEND_FILE)).unwrap();
    let err = Member::open(
        h.disk.clone(),
        config(KnownBugs::NONE),
        Arc::new(NoCrash),
        0,
    )
    .expect_err("verify must refuse");
    match err {
        StoreError::BootCheck {
            source:
                VerifyError::BackendBehindSnapshot {
                    consistent_index,
                    snapshot_index,
                },
            ..
        } => {
            assert_eq!(snapshot_index, snap.index);
            assert!(consistent_index < snapshot_index);
        }
        other => panic!("unexpected error: {other}"),
    }
}

#[test]
fn restart_without_a_snapshot_replays_everything_and_matches() {
    let mut subject = Harness::new(KnownBugs::NONE);
    let mut reference = Harness::new(KnownBugs::NONE);
    for h in [&mut subject, &mut reference] {
        for i in 0..20 {
            h.put(&format!("k{}", i % 5), &format!("v{i}"));
        }
    }
    let (subject, recovered) = subject.power_cycle().unwrap();
    assert_eq!(recovered.snapshot.index, 0);
    assert_eq!(
        subject.member.state_dump().unwrap(),
        reference.member.state_dump().unwrap()
    );
}

#[test]
fn leader_snapshot_install_interrupted_after_the_marker_is_finished_at_boot() {
    let mut leader = Harness::new(KnownBugs::NONE);
    for i in 0..10 {
        leader.put(&format!("k{i}"), "v");
    }
    let marker = leader.member.snapshot_now().unwrap();
    let payload = leader.member.snapshot_payload().unwrap();

    struct CrashMidInstall;
    impl std::fmt::Debug for CrashMidInstall {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("CrashMidInstall")
        }
    }
    impl CrashHook for CrashMidInstall {
        fn at(&self, point: CrashPoint) -> Result<(), crate::crash_point::Crashed> {
            if point == CrashPoint::SnapshotApplyMidway {
                return Err(crate::crash_point::Crashed { point });
            }
            Ok(())
        }
    }
    let follower_disk = Arc::new(MemDisk::new());
    let meta = WalMetadata {
        member_id: 2,
        cluster_id: 9,
    };
    let (mut follower, _) = Member::bootstrap(
        follower_disk.clone(),
        config(KnownBugs::NONE),
        Arc::new(CrashMidInstall),
        &meta,
        &[],
        0,
    )
    .unwrap();
    let err = follower.install_snapshot(&marker, &payload).unwrap_err();
    assert!(err.crashed().is_some(), "{err}");
    drop(follower);
    follower_disk.crash_power_loss();
    let (follower, recovered) =
        Member::open(follower_disk, config(KnownBugs::NONE), Arc::new(NoCrash), 0).unwrap();
    assert_eq!(recovered.snapshot.index, marker.index);
    let (l, f) = (
        leader.member.state_dump().unwrap(),
        follower.state_dump().unwrap(),
    );
    assert_eq!(f.v3, l.v3);
    assert_eq!(f.v2, l.v2);
    assert_eq!(f.consistent_index, marker.index);
}
