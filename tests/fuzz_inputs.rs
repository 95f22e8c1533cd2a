//! The fuzz targets' inputs as proptest cases, so the normal test suite
//! (stable toolchain, no cargo-fuzz) runs the same decoders on the same kind
//! of input: arbitrary bytes, and real files from a small data directory
//! with seeded damage (bit flips, truncation, byte insertions and
//! deletions). `replica::fuzzing` holds the entry points the cargo-fuzz
//! targets in `fuzz/` call too.
//!
//! `FUZZ_SEED_DIR=DIR cargo test --test fuzz_inputs write_fuzz_seeds --
//! --ignored` writes the real files as seed corpora for the fuzz targets
//! (`ci/fuzz.sh` does this).

mod common;

use common::Fixture;
use proptest::prelude::*;
use replica::disk::Disk;
use replica::fuzzing;
use replica::member::{SNAP_DIR, WAL_DIR};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// Real inputs for each target, built once.
struct Seeds {
    wal: Vec<Vec<u8>>,
    snap: Vec<Vec<u8>>,
    meta: Vec<Vec<u8>>,
}

fn seeds() -> &'static Seeds {
    static SEEDS: OnceLock<Seeds> = OnceLock::new();
    SEEDS.get_or_init(|| {
        let fx = Fixture::build();
        let read = |p: &Path| fx.disk.read_all(p).expect("read");
        let segments: Vec<Vec<u8>> = fx
            .files()
            .iter()
            .filter(|f| f.starts_with(WAL_DIR))
            .map(|f| read(f))
            .collect();
        // One input per run of consecutive segments, in the target's layout
        // (the first one is not segment 0, so bit 7 of the head is set).
        let mut wal = Vec::new();
        for start in 0..segments.len() {
            for count in 1..=3.min(segments.len() - start) {
                let mut input = vec![0x80 | (count as u8 - 1)];
                for (i, seg) in segments[start..start + count].iter().enumerate() {
                    if i + 1 < count {
                        input.extend_from_slice(&(seg.len() as u16).to_le_bytes());
                    }
                    input.extend_from_slice(seg);
                }
                wal.push(input);
            }
        }
        let snap = fx
            .files()
            .iter()
            .filter(|f| f.starts_with(SNAP_DIR) && f.extension().is_some_and(|e| e == "snap"))
            .map(|f| read(f))
            .collect();
        // Meta values as the backend writes them: a consistent index
        // {index: 60, term: 1} and a conf state with three voters.
        let ci = [0x08, 60, 0x10, 1];
        let cs = [0x0a, 3, 1, 2, 3];
        let mut meta = vec![3u8, ci.len() as u8];
        meta.extend_from_slice(&ci);
        meta.extend_from_slice(&cs);
        Seeds {
            wal,
            snap,
            meta: vec![meta],
        }
    })
}

/// One seeded change to an input.
#[derive(Debug, Clone)]
enum Mutation {
    Flip { at: usize, bit: u8 },
    Truncate { at: usize },
    Insert { at: usize, byte: u8 },
    Delete { at: usize },
    Set { at: usize, byte: u8 },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        4 => (any::<usize>(), 0u8..8).prop_map(|(at, bit)| Mutation::Flip { at, bit }),
        1 => any::<usize>().prop_map(|at| Mutation::Truncate { at }),
        1 => (any::<usize>(), any::<u8>()).prop_map(|(at, byte)| Mutation::Insert { at, byte }),
        1 => any::<usize>().prop_map(|at| Mutation::Delete { at }),
        2 => (any::<usize>(), any::<u8>()).prop_map(|(at, byte)| Mutation::Set { at, byte }),
    ]
}

fn mutate(mut bytes: Vec<u8>, mutations: &[Mutation]) -> Vec<u8> {
    for m in mutations {
        let len = bytes.len().max(1);
        match *m {
            Mutation::Flip { at, bit } => {
                if let Some(b) = bytes.get_mut(at % len) {
                    *b ^= 1 << bit;
                }
            }
            Mutation::Truncate { at } => bytes.truncate(at % len),
            Mutation::Insert { at, byte } => bytes.insert(at % (bytes.len() + 1), byte),
            Mutation::Delete { at } => {
                if !bytes.is_empty() {
                    bytes.remove(at % bytes.len());
                }
            }
            Mutation::Set { at, byte } => {
                if let Some(b) = bytes.get_mut(at % len) {
                    *b = byte;
                }
            }
        }
    }
    bytes
}

fn damaged(pick: impl Fn(&Seeds) -> &Vec<Vec<u8>>) -> impl Strategy<Value = Vec<u8>> {
    let inputs = pick(seeds()).clone();
    (0..inputs.len(), proptest::collection::vec(mutation(), 0..4))
        .prop_map(move |(i, ms)| mutate(inputs[i].clone(), &ms))
}

fn check(result: Result<(), fuzzing::Violation>) -> Result<(), TestCaseError> {
    result.map_err(|v| TestCaseError::fail(v.0))
}

/// Cases per property; `FUZZ_CASES` raises it (`ci/fuzz.sh` on a machine
/// without nightly).
fn cases(default: u32) -> ProptestConfig {
    let cases = std::env::var("FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default);
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(cases(1000))]

    #[test]
    fn fuzz_wal_segments_damaged(input in damaged(|s| &s.wal)) {
        check(fuzzing::wal_segments(&input))?;
    }

    #[test]
    fn fuzz_wal_segments_arbitrary(input in proptest::collection::vec(any::<u8>(), 0..600)) {
        check(fuzzing::wal_segments(&input))?;
    }

    #[test]
    fn fuzz_v2_snapshot_damaged(input in damaged(|s| &s.snap)) {
        check(fuzzing::v2_snapshot(&input))?;
    }

    #[test]
    fn fuzz_v2_snapshot_arbitrary(input in proptest::collection::vec(any::<u8>(), 0..600)) {
        check(fuzzing::v2_snapshot(&input))?;
    }

    #[test]
    fn fuzz_backend_meta_damaged(input in damaged(|s| &s.meta)) {
        check(fuzzing::backend_meta(&input))?;
    }

    #[test]
    fn fuzz_backend_meta_arbitrary(input in proptest::collection::vec(any::<u8>(), 0..200)) {
        check(fuzzing::backend_meta(&input))?;
    }
}

/// The undamaged seeds pass, and do reach deep: every real WAL input
/// opens, every real snapshot decodes.
#[test]
fn fuzz_seeds_are_valid_inputs() {
    let s = seeds();
    assert!(s.wal.len() >= 6 && s.snap.len() == 2);
    for input in s.wal.iter().chain(&s.snap).chain(&s.meta) {
        fuzzing::wal_segments(input).unwrap();
        fuzzing::v2_snapshot(input).unwrap();
        fuzzing::backend_meta(input).unwrap();
    }
    for snap in &s.snap {
        replica::snap::record::decode(snap, replica::snap::MAX_PAYLOAD_BYTES).unwrap();
    }
}

/// Writes the seeds as corpora for the cargo-fuzz targets.
#[test]
#[ignore = "tooling: run by ci/fuzz.sh with FUZZ_SEED_DIR set"]
fn write_fuzz_seeds() {
    let dir = PathBuf::from(std::env::var("FUZZ_SEED_DIR").expect("FUZZ_SEED_DIR"));
    let s = seeds();
    for (target, inputs) in [
        ("wal_segments", &s.wal),
        ("v2_snapshot", &s.snap),
        ("backend_meta", &s.meta),
    ] {
        let d = dir.join(target);
        std::fs::create_dir_all(&d).unwrap();
        for (i, input) in inputs.iter().enumerate() {
            std::fs::write(d.join(format!("seed-{i}")), input).unwrap();
        }
    }
}
