use super::*;
use crate::backend::{BackendOptions, Table};
use crate::crash_point::NoCrash;
use crate::disk::{Disk, MemDisk, StdDisk};
use crate::proto::{Compare, CompareResult, CompareTarget};
use std::path::Path;
use std::sync::Arc;

const DB: &str = "member/v3.db";

fn open_be(disk: Arc<dyn Disk>) -> Backend {
    Backend::open(
        disk,
        Path::new(DB),
        BackendOptions::default(),
        Arc::new(NoCrash),
    )
    .unwrap()
}

fn mem() -> (Backend, Mvcc) {
    let be = open_be(Arc::new(MemDisk::new()));
    let mvcc = Mvcc::open(&be).unwrap();
    (be, mvcc)
}

fn put(m: &mut Mvcc, be: &mut Backend, k: &str, v: &str) -> Response {
    m.put(
        be,
        &PutRequest {
            key: k.into(),
            value: v.into(),
        },
    )
    .unwrap()
}

fn del(m: &mut Mvcc, be: &mut Backend, k: &str, end: &[u8]) -> Response {
    m.delete_range(
        be,
        &DeleteRangeRequest {
            key: k.into(),
            range_end: end.to_vec(),
        },
    )
    .unwrap()
}

fn get_at(m: &Mvcc, be: &Backend, k: &str, rev: i64) -> Result<Option<KeyValue>, MvccError> {
    let resp = m.range(
        be,
        &RangeRequest {
            key: k.into(),
            revision: rev,
            ..Default::default()
        },
    )?;
    Ok(resp.kvs.into_iter().next())
}

fn all_keys(m: &Mvcc, be: &Backend, rev: i64) -> Vec<String> {
    m.range(
        be,
        &RangeRequest {
            key: vec![0],
            range_end: vec![0],
            revision: rev,
            ..Default::default()
        },
    )
    .unwrap()
    .kvs
    .into_iter()
    .map(|kv| String::from_utf8(kv.key).unwrap())
    .collect()
}

fn kv(key: &str, value: &str, create: i64, modr: i64, version: i64) -> KeyValue {
    KeyValue {
        key: key.into(),
        create_revision: create,
        mod_revision: modr,
        version,
        value: value.into(),
    }
}

fn op_put(k: &str, v: &str) -> RequestOp {
    RequestOp {
        op: Some(Op::Put(PutRequest {
            key: k.into(),
            value: v.into(),
        })),
    }
}

fn op_get(k: &str) -> RequestOp {
    RequestOp {
        op: Some(Op::Range(RangeRequest {
            key: k.into(),
            ..Default::default()
        })),
    }
}

fn op_del(k: &str, end: &[u8]) -> RequestOp {
    RequestOp {
        op: Some(Op::DeleteRange(DeleteRangeRequest {
            key: k.into(),
            range_end: end.to_vec(),
        })),
    }
}

fn cmp(k: &str, target: CompareTarget, result: CompareResult, number: i64, value: &str) -> Compare {
    Compare {
        key: k.into(),
        target: target as i32,
        result: result as i32,
        number,
        value: value.into(),
    }
}

#[test]
fn put_put_delete_put_revisions_and_versions() {
    let (mut be, mut m) = mem();
    assert_eq!(m.current_revision(), 1, "the store revision starts at 1");
    assert_eq!(put(&mut m, &mut be, "a", "1").revision, 2);
    assert_eq!(put(&mut m, &mut be, "a", "2").revision, 3);
    let d = del(&mut m, &mut be, "a", b"");
    assert_eq!((d.revision, d.deleted), (4, 1));
    assert_eq!(put(&mut m, &mut be, "a", "3").revision, 5);

    assert_eq!(get_at(&m, &be, "a", 1).unwrap(), None);
    assert_eq!(
        get_at(&m, &be, "a", 2).unwrap(),
        Some(kv("a", "1", 2, 2, 1))
    );
    assert_eq!(
        get_at(&m, &be, "a", 3).unwrap(),
        Some(kv("a", "2", 2, 3, 2))
    );
    assert_eq!(get_at(&m, &be, "a", 4).unwrap(), None);
    assert_eq!(
        get_at(&m, &be, "a", 0).unwrap(),
        Some(kv("a", "3", 5, 5, 1))
    );
    assert!(matches!(
        get_at(&m, &be, "a", 6),
        Err(MvccError::FutureRevision {
            requested: 6,
            current: 5
        })
    ));
    // Deleting nothing makes no revision.
    let d = del(&mut m, &mut be, "zzz", b"");
    assert_eq!((d.revision, d.deleted), (5, 0));
    assert_eq!(m.current_revision(), 5);
    // Rows: 8-byte main, '_', 8-byte sub, and 't' for the tombstone.
    let rows: Vec<Vec<u8>> = be
        .range(Table::Key, b"", None)
        .unwrap()
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    let tomb = revision::encode(Rev { main: 4, sub: 0 }, true);
    assert_eq!(tomb.len(), 18);
    assert_eq!(tomb.last(), Some(&b't'));
    assert_eq!(rows.len(), 4);
    assert_eq!(rows[2], tomb);
}

#[test]
fn delete_range_with_range_end_makes_one_revision() {
    let (mut be, mut m) = mem();
    for k in ["a", "b", "bb", "c", "d"] {
        put(&mut m, &mut be, k, "v");
    }
    assert_eq!(m.current_revision(), 6);
    let d = del(&mut m, &mut be, "b", b"c");
    assert_eq!((d.deleted, d.revision), (2, 7));
    assert_eq!(all_keys(&m, &be, 0), vec!["a", "c", "d"]);
    // Two tombstones under one main revision, sub revisions 0 and 1.
    for sub in 0..2 {
        let row = revision::encode(Rev { main: 7, sub }, true);
        assert!(be.get(Table::Key, &row).unwrap().is_some(), "sub {sub}");
    }
    // [0] as range_end: every key >= key.
    let d = del(&mut m, &mut be, "c", &[0]);
    assert_eq!((d.deleted, d.revision), (2, 8));
    assert_eq!(all_keys(&m, &be, 0), vec!["a"]);
    assert_eq!(all_keys(&m, &be, 6), vec!["a", "b", "bb", "c", "d"]);
    // An inverted range is empty, not a panic.
    let d = del(&mut m, &mut be, "z", b"a");
    assert_eq!((d.deleted, d.revision), (0, 8));
    // An empty key with no range_end is invalid.
    assert!(matches!(
        m.delete_range(&mut be, &DeleteRangeRequest::default()),
        Err(MvccError::InvalidRequest { .. })
    ));
}

#[test]
fn range_limit_and_range_end_rules() {
    let (mut be, mut m) = mem();
    for k in ["a", "b", "c", "d"] {
        put(&mut m, &mut be, k, k);
    }
    let r = |key: &str, end: &[u8], limit: i64| {
        m.range(
            &be,
            &RangeRequest {
                key: key.into(),
                range_end: end.to_vec(),
                revision: 0,
                limit,
            },
        )
        .unwrap()
        .kvs
        .into_iter()
        .map(|kv| String::from_utf8(kv.key).unwrap())
        .collect::<Vec<_>>()
    };
    assert_eq!(r("b", b"", 0), vec!["b"]);
    assert_eq!(r("b", b"d", 0), vec!["b", "c"]);
    assert_eq!(r("b", &[0], 0), vec!["b", "c", "d"]);
    assert_eq!(r("", &[0], 2), vec!["a", "b"]);
    assert_eq!(r("d", b"b", 0), Vec::<String>::new());
}

#[test]
fn txn_compares_choose_the_branch() {
    use CompareResult::*;
    use CompareTarget::*;
    let (mut be, mut m) = mem();
    put(&mut m, &mut be, "k", "v1"); // rev 2
    put(&mut m, &mut be, "k", "v2"); // rev 3: create 2, mod 3, version 2
    let cases: Vec<(Compare, bool)> = vec![
        (cmp("k", Version, Equal, 2, ""), true),
        (cmp("k", Version, Greater, 1, ""), true),
        (cmp("k", Version, Less, 2, ""), false),
        (cmp("k", Version, NotEqual, 2, ""), false),
        (cmp("k", Create, Equal, 2, ""), true),
        (cmp("k", Create, Greater, 2, ""), false),
        (cmp("k", Mod, Equal, 3, ""), true),
        (cmp("k", Mod, Less, 4, ""), true),
        (cmp("k", Value, Equal, 0, "v2"), true),
        (cmp("k", Value, Greater, 0, "v1"), true),
        (cmp("k", Value, Less, 0, "v1"), false),
        (cmp("k", Value, NotEqual, 0, "v1"), true),
        // A missing key: numbers are 0, value compares never match.
        (cmp("missing", Version, Equal, 0, ""), true),
        (cmp("missing", Create, Equal, 0, ""), true),
        (cmp("missing", Mod, Greater, -1, ""), true),
        (cmp("missing", Value, NotEqual, 0, "x"), false),
        (cmp("missing", Value, Equal, 0, ""), false),
    ];
    for (c, expect) in cases {
        let before = m.current_revision();
        let resp = m
            .txn(
                &mut be,
                &TxnRequest {
                    compare: vec![c.clone()],
                    success: vec![op_get("k")],
                    failure: vec![op_get("missing")],
                },
            )
            .unwrap();
        assert_eq!(resp.succeeded, expect, "{c:?}");
        assert_eq!(resp.kvs.len(), usize::from(expect), "{c:?}");
        assert_eq!(resp.revision, before, "a read-only txn makes no revision");
    }
    // Both branches write: success puts, failure deletes.
    let txn = |m: &mut Mvcc, be: &mut Backend, version: i64| {
        m.txn(
            be,
            &TxnRequest {
                compare: vec![cmp("k", Version, Equal, version, "")],
                success: vec![op_put("k", "ok"), op_put("other", "x"), op_get("k")],
                failure: vec![op_del("k", b""), op_get("k")],
            },
        )
        .unwrap()
    };
    let resp = txn(&mut m, &mut be, 2);
    assert!(resp.succeeded);
    assert_eq!(resp.revision, 4, "one revision for both puts");
    assert_eq!(
        resp.kvs,
        vec![kv("k", "ok", 2, 4, 3)],
        "reads see the txn's writes"
    );
    assert!(
        be.get(
            Table::Key,
            &revision::encode(Rev { main: 4, sub: 1 }, false)
        )
        .unwrap()
        .is_some()
    );
    let resp = txn(&mut m, &mut be, 2);
    assert!(!resp.succeeded);
    assert_eq!((resp.revision, resp.deleted), (5, 1));
    assert!(resp.kvs.is_empty());
    assert_eq!(all_keys(&m, &be, 0), vec!["other"]);
}

#[test]
fn invalid_txns_change_nothing() {
    let (mut be, mut m) = mem();
    put(&mut m, &mut be, "a", "1");
    let pending = be.pending_writes();
    let before = m.clone();
    let bad = [
        TxnRequest {
            success: vec![op_put("x", "1"), op_put("x", "2")],
            ..Default::default()
        },
        TxnRequest {
            failure: vec![op_del("a", b"z"), op_put("b", "1")],
            ..Default::default()
        },
        TxnRequest {
            compare: vec![Compare {
                key: b"a".to_vec(),
                target: 42,
                ..Default::default()
            }],
            ..Default::default()
        },
        TxnRequest {
            success: vec![op_put("y", "1"), RequestOp { op: None }],
            ..Default::default()
        },
        TxnRequest {
            success: vec![
                op_put("y", "1"),
                RequestOp {
                    op: Some(Op::Range(RangeRequest {
                        key: b"a".to_vec(),
                        revision: 99,
                        ..Default::default()
                    })),
                },
            ],
            ..Default::default()
        },
    ];
    for req in &bad {
        assert!(m.txn(&mut be, req).is_err(), "{req:?}");
        assert_eq!(m, before);
        assert_eq!(be.pending_writes(), pending);
    }
    assert!(matches!(
        m.txn(&mut be, &bad[0]),
        Err(MvccError::DuplicateKey { .. })
    ));
    assert!(matches!(
        m.put(&mut be, &PutRequest::default()),
        Err(MvccError::InvalidRequest { .. })
    ));
}

#[test]
fn compaction_forgets_old_revisions_and_is_validated() {
    let (mut be, mut m) = mem();
    put(&mut m, &mut be, "a", "1"); // 2
    put(&mut m, &mut be, "a", "2"); // 3
    put(&mut m, &mut be, "b", "1"); // 4
    del(&mut m, &mut be, "b", b""); // 5
    put(&mut m, &mut be, "a", "3"); // 6
    assert_eq!(be.range(Table::Key, b"", None).unwrap().len(), 5);

    assert_eq!(m.compact(&mut be, 5).unwrap().revision, 6);
    assert_eq!(m.compact_revision(), 5);
    assert_eq!(m.current_revision(), 6, "compaction makes no revision");
    // Left: a@3 (visible at 5) and a@6; b's whole generation is gone.
    assert_eq!(be.range(Table::Key, b"", None).unwrap().len(), 2);
    assert!(matches!(
        get_at(&m, &be, "a", 4),
        Err(MvccError::Compacted {
            requested: 4,
            compact: 5
        })
    ));
    assert_eq!(
        get_at(&m, &be, "a", 5).unwrap(),
        Some(kv("a", "2", 2, 3, 2))
    );
    assert_eq!(get_at(&m, &be, "b", 5).unwrap(), None);
    assert_eq!(
        get_at(&m, &be, "a", 0).unwrap(),
        Some(kv("a", "3", 2, 6, 3))
    );

    assert!(matches!(
        m.compact(&mut be, 5),
        Err(MvccError::Compacted { .. })
    ));
    assert!(matches!(
        m.compact(&mut be, 4),
        Err(MvccError::Compacted { .. })
    ));
    assert!(matches!(
        m.compact(&mut be, 7),
        Err(MvccError::FutureRevision { .. })
    ));
    // Versions continue across compaction.
    put(&mut m, &mut be, "a", "4");
    assert_eq!(
        get_at(&m, &be, "a", 0).unwrap(),
        Some(kv("a", "4", 2, 7, 4))
    );
}

#[test]
fn compacting_away_the_newest_delete_keeps_the_revision_on_reopen() {
    let (mut be, mut m) = mem();
    put(&mut m, &mut be, "a", "1"); // 2
    del(&mut m, &mut be, "a", b""); // 3
    m.compact(&mut be, 3).unwrap();
    assert!(be.range(Table::Key, b"", None).unwrap().is_empty());
    let reopened = Mvcc::open(&be).unwrap();
    assert_eq!(reopened, m);
    assert_eq!(reopened.current_revision(), 3);
}

/// A workload touching every kind of request, ending with a compaction.
fn workload(m: &mut Mvcc, be: &mut Backend) {
    for i in 0..30 {
        put(m, be, &format!("k{:02}", i % 7), &format!("v{i}"));
        if i % 5 == 4 {
            del(m, be, &format!("k{:02}", i % 3), b"");
        }
    }
    m.txn(
        be,
        &TxnRequest {
            compare: vec![cmp(
                "k01",
                CompareTarget::Version,
                CompareResult::Greater,
                0,
                "",
            )],
            success: vec![op_put("t1", "x"), op_del("k05", b"k07")],
            failure: vec![],
        },
    )
    .unwrap();
    let rev = m.current_revision() - 5;
    m.compact(be, rev).unwrap();
    put(m, be, "last", "x");
}

#[test]
fn reopen_rebuilds_identical_state() {
    let check = |disk: Arc<dyn Disk>, power_loss: Option<Arc<MemDisk>>| {
        let mut be = open_be(disk.clone());
        let mut m = Mvcc::open(&be).unwrap();
        workload(&mut m, &mut be);
        // The index rebuilt from the merged (buffered) view matches.
        assert_eq!(Mvcc::open(&be).unwrap(), m);
        be.set_consistent_index(10, 1);
        be.force_commit().unwrap();
        let dump = m.dump(&be).unwrap();
        assert!(!dump.is_empty());
        assert!(dump.windows(2).all(|w| w[0].key < w[1].key), "sorted");
        let old_reads: Vec<_> = (m.compact_revision()..=m.current_revision())
            .map(|rev| all_keys(&m, &be, rev))
            .collect();
        drop(be);
        if let Some(mem) = power_loss {
            mem.crash_power_loss();
        }
        let be = open_be(disk);
        let reopened = Mvcc::open(&be).unwrap();
        assert_eq!(reopened, m);
        assert_eq!(reopened.dump(&be).unwrap(), dump);
        let new_reads: Vec<_> = (m.compact_revision()..=m.current_revision())
            .map(|rev| all_keys(&reopened, &be, rev))
            .collect();
        assert_eq!(new_reads, old_reads);
    };
    let mem = Arc::new(MemDisk::new());
    check(mem.clone(), Some(mem));
    let dir = tempfile::tempdir().unwrap();
    check(Arc::new(StdDisk::new(dir.path()).unwrap()), None);
}

#[test]
fn corrupt_rows_and_meta_are_typed_errors() {
    let (mut be, mut m) = mem();
    put(&mut m, &mut be, "a", "1");
    be.put(Table::Key, b"not-a-revision", b"");
    assert!(matches!(Mvcc::open(&be), Err(MvccError::CorruptRow { .. })));
    be.delete(Table::Key, b"not-a-revision");
    be.put(
        Table::Key,
        &revision::encode(Rev { main: 9, sub: 0 }, false),
        &[0xff; 3],
    );
    assert!(matches!(Mvcc::open(&be), Err(MvccError::CorruptRow { .. })));
    be.delete(
        Table::Key,
        &revision::encode(Rev { main: 9, sub: 0 }, false),
    );
    be.put(Table::Meta, COMPACT_REVISION_KEY, &[0xff; 3]);
    assert!(matches!(
        Mvcc::open(&be),
        Err(MvccError::CorruptMeta { .. })
    ));
}

mod model {
    //! The MVCC against a naive model: a full copy of the key space per
    //! revision.
    use super::*;
    use proptest::prelude::*;

    #[derive(Debug, Clone)]
    enum Step {
        Put(u8, u8),
        Delete(u8, u8),
        Compact(u8),
        Commit,
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            4 => (0u8..6, any::<u8>()).prop_map(|(k, v)| Step::Put(k, v)),
            2 => (0u8..6, 0u8..3).prop_map(|(k, n)| Step::Delete(k, n)),
            1 => any::<u8>().prop_map(Step::Compact),
            1 => Just(Step::Commit),
        ]
    }

    fn key(k: u8) -> Vec<u8> {
        vec![b'a' + k]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]
        #[test]
        fn matches_a_model_and_survives_reopen(steps in proptest::collection::vec(step(), 1..40)) {
            let (mut be, mut m) = mem();
            // states[rev] = the key space at that revision.
            let mut states: Vec<BTreeMap<Vec<u8>, KeyValue>> = vec![BTreeMap::new(); 2];
            for s in steps {
                let mut next = states.last().cloned().unwrap_or_default();
                let rev = states.len() as i64;
                match s {
                    Step::Put(k, v) => {
                        m.put(&mut be, &PutRequest { key: key(k), value: vec![v] }).unwrap();
                        let prev = next.get(&key(k)).cloned();
                        next.insert(key(k), KeyValue {
                            key: key(k),
                            create_revision: prev.as_ref().map_or(rev, |p| p.create_revision),
                            mod_revision: rev,
                            version: prev.map_or(1, |p| p.version + 1),
                            value: vec![v],
                        });
                        states.push(next);
                    }
                    Step::Delete(k, n) => {
                        let end = key(k + n);
                        let resp = m.delete_range(&mut be, &DeleteRangeRequest {
                            key: key(k),
                            range_end: if n == 0 { vec![] } else { end.clone() },
                        }).unwrap();
                        let before = next.len();
                        next.retain(|kk, _| !(kk.as_slice() >= key(k).as_slice()
                            && (if n == 0 { kk == &key(k) } else { kk < &end })));
                        prop_assert_eq!(resp.deleted as usize, before - next.len());
                        if resp.deleted > 0 {
                            states.push(next);
                        }
                    }
                    Step::Commit => be.force_commit().unwrap(),
                    Step::Compact(r) => {
                        let (compact, current) = (m.compact_revision(), m.current_revision());
                        let target = i64::from(r) % (current + 1);
                        let res = m.compact(&mut be, target);
                        prop_assert_eq!(res.is_ok(), target > compact && target <= current);
                    }
                }
                prop_assert_eq!(m.current_revision(), states.len() as i64 - 1);
            }
            for rev in 1..states.len() as i64 {
                let resp = m.range(&be, &RangeRequest { key: vec![0], range_end: vec![0], revision: rev, limit: 0 });
                if rev < m.compact_revision() {
                    let compacted = matches!(resp, Err(MvccError::Compacted { .. }));
                    prop_assert!(compacted);
                } else {
                    let want: Vec<KeyValue> = states[rev as usize].values().cloned().collect();
                    prop_assert_eq!(resp.unwrap().kvs, want);
                }
            }
            prop_assert_eq!(Mvcc::open(&be).unwrap(), m);
        }
    }
}
