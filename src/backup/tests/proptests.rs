//! Random logs with term changes, snapshots, backend commits and
//! membership entries: the backup boots into the state of replaying the
//! original committed log with the membership entries as no-ops, and agrees
//! with the source itself outside the membership keys.

use super::*;
use crate::disk::MemDisk;
use proptest::prelude::*;

const KEYS: [&str; 4] = ["a", "b", "c", "d"];
const PATHS: [&str; 3] = ["/app/x", "/app/y", "/app/d/z"];
const VERSIONS: [&str; 3] = ["3.4.0", "3.5.0", "3.6.0"];

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..KEYS.len(), 0..KEYS.len()).prop_map(|(k, v)| Op::Put(KEYS[k], KEYS[v])),
        1 => (0..KEYS.len()).prop_map(|k| Op::Delete(KEYS[k])),
        2 => (0..PATHS.len(), 0..KEYS.len()).prop_map(|(p, v)| Op::V2Set(PATHS[p], KEYS[v])),
        1 => (0..PATHS.len()).prop_map(|p| Op::V2Delete(PATHS[p])),
        1 => (0..VERSIONS.len()).prop_map(|v| Op::Version(VERSIONS[v])),
        1 => Just(Op::Downgrade),
        1 => Just(Op::Empty),
        1 => (1u64..5).prop_map(Op::MemberAttr),
        1 => (1u64..5).prop_map(Op::V2MemberAttr),
        1 => (4u64..9).prop_map(Op::Add),
        1 => (4u64..9).prop_map(Op::AddLearner),
        1 => (1u64..7).prop_map(Op::Remove),
        1 => (4u64..9).prop_map(Op::Promote),
    ]
}

#[derive(Debug, Clone)]
enum Step {
    Append(Vec<Op>),
    /// Commit this many more entries (capped at the last index).
    Commit(u64),
    /// A new leader whose log ends this many entries past the commit.
    NewTerm(u64),
    BackendCommit,
    Snapshot,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => proptest::collection::vec(op(), 1..6).prop_map(Step::Append),
        3 => (0u64..6).prop_map(Step::Commit),
        1 => (0u64..3).prop_map(Step::NewTerm),
        1 => Just(Step::BackendCommit),
        1 => Just(Step::Snapshot),
    ]
}

fn run(log: &mut Log, steps: &[Step]) {
    for s in steps {
        match s {
            Step::Append(ops) => log.append(ops),
            Step::Commit(n) => log.commit_to((log.commit + n).min(log.last_index())),
            Step::NewTerm(past) => {
                let keep = (log.commit + past).min(log.last_index());
                log.new_term(keep);
            }
            Step::BackendCommit => {
                log.tick_backend();
            }
            Step::Snapshot => {
                if log.member.applied_index() > log.member.snapshot_index() {
                    log.member.snapshot_now().unwrap();
                }
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn backup_replays_like_the_original_with_membership_as_noops(
        steps in proptest::collection::vec(step(), 1..30),
        with_v3 in proptest::bool::weighted(0.8),
    ) {
        let src: Arc<dyn Disk> = Arc::new(MemDisk::new());
        let dst: Arc<dyn Disk> = Arc::new(MemDisk::new());
        let mut log = Log::bootstrap(src.clone());
        run(&mut log, &steps);
        let (commit, membership) = (log.commit, log.membership.clone());
        drop(log);

        let opts = BackupOptions { with_v3, ..options() };
        let expected = expected(src.as_ref(), &membership, &opts);
        backup(src.as_ref(), dst.as_ref(), &opts).unwrap();
        let restored = open(dst).unwrap().state_dump().unwrap();
        prop_assert_eq!(&restored, &expected);
        prop_assert_eq!(restored.applied_index, commit);
        prop_assert_eq!(restored.consistent_index, restored.applied_index);

        let source = open(src).unwrap().state_dump().unwrap();
        prop_assert_eq!(source.applied_index, commit);
        if with_v3 {
            prop_assert_eq!(&restored.v3, &source.v3);
        }
        prop_assert_eq!(
            check::v2_without_membership(&restored.v2),
            check::v2_without_membership(&source.v2)
        );
    }
}
