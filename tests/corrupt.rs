//! The corruption suite: a small real data directory (several WAL segments,
//! two v2 snapshots, a backend) is damaged one way at a time — truncated at
//! a byte offset, or one bit flipped at a byte offset — and the member is
//! opened on the damaged copy. Every outcome must be one of:
//!
//! - **identical**: it opened with the state of an undamaged reopen (the
//!   damage was in slack, e.g. an older snapshot that boot does not read);
//! - **repaired**: it opened after a logged repair of a torn WAL tail, and
//!   its state is exactly the reference state at the index it reached (a
//!   prefix of the committed log);
//! - **typed error**: open failed with an error that names the damaged
//!   file.
//!
//! Never a panic, never a different state without a logged repair. The
//! counts per file are printed as a table (`cargo test corrupt --
//! --nocapture`). The suite tries a seeded sample of offsets;
//! `CORRUPT_EXHAUSTIVE=1` (see `ci/corrupt.sh`) tries every offset of every
//! file.

mod common;

use common::{Fixture, LAST_INDEX, config};
use replica::crash_point::NoCrash;
use replica::disk::{Disk, MemDisk};
use replica::member::{Member, StoreError};
use std::cell::Cell;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Once};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Damage {
    Truncate,
    Flip,
}

#[derive(Debug)]
enum Outcome {
    Identical,
    /// A torn WAL tail was cut; the state is the reference prefix at
    /// `applied` (`dropped` entries short of the undamaged reopen).
    Repaired {
        dropped: u64,
    },
    /// The last WAL segment was cut exactly at a record boundary: the bytes
    /// are those of a WAL whose writer stopped there, so there is nothing to
    /// detect; the state must be the reference prefix at that index.
    BoundaryPrefix {
        dropped: u64,
    },
    TypedError {
        names_file: bool,
        text: String,
    },
    Different(String),
    Panic(String),
}

#[derive(Debug, Default, Clone)]
struct Counts {
    tried: u64,
    identical: u64,
    repaired: u64,
    boundary_prefix: u64,
    max_dropped: u64,
    typed_error: u64,
    unlocated_error: u64,
    /// Typed errors that are a redb panic the backend contained.
    contained_panic: u64,
    different: u64,
    panics: u64,
    /// The first few failures, for the report.
    failures: Vec<String>,
}

impl Counts {
    fn add(&mut self, what: &str, outcome: Outcome) {
        self.tried += 1;
        match outcome {
            Outcome::Identical => self.identical += 1,
            Outcome::Repaired { dropped } => {
                self.repaired += 1;
                self.max_dropped = self.max_dropped.max(dropped);
            }
            Outcome::BoundaryPrefix { dropped } => {
                self.boundary_prefix += 1;
                self.max_dropped = self.max_dropped.max(dropped);
            }
            Outcome::TypedError { names_file, text } => {
                self.typed_error += 1;
                if text.contains("damaged database file") {
                    self.contained_panic += 1;
                }
                if !names_file {
                    self.unlocated_error += 1;
                    self.note(format!("{what}: UNLOCATED ERROR: {text}"));
                }
            }
            Outcome::Different(d) => {
                self.different += 1;
                self.note(format!("{what}: DIFFERENT STATE: {d}"));
            }
            Outcome::Panic(p) => {
                self.panics += 1;
                self.note(format!("{what}: PANIC: {p}"));
            }
        }
    }

    fn note(&mut self, s: String) {
        if self.failures.len() < 60 {
            self.failures.push(s);
        }
    }
}

thread_local! {
    static IN_CASE: Cell<bool> = const { Cell::new(false) };
}

/// Panics inside a case are outcomes to count, not noise to print.
fn quiet_panics_in_cases() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !IN_CASE.with(Cell::get) {
                default(info);
            }
        }));
    });
}

/// Opens a member on `disk` and classifies what happened.
fn open_and_classify(fx: &Fixture, disk: MemDisk, file: &Path, damage: Damage) -> Outcome {
    let disk = Arc::new(disk);
    IN_CASE.with(|c| c.set(true));
    let result = catch_unwind(AssertUnwindSafe(|| {
        let (member, recovered) = Member::open(disk.clone(), config(), Arc::new(NoCrash), 0)?;
        Ok::<_, StoreError>((member.state_dump()?, recovered.wal_repair))
    }));
    IN_CASE.with(|c| c.set(false));
    let (dump, repair) = match result {
        Err(panic) => {
            let msg = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            return Outcome::Panic(msg);
        }
        Ok(Err(e)) => {
            let name = file.file_name().map(|n| n.to_string_lossy().into_owned());
            let text = format!("{e}");
            return Outcome::TypedError {
                names_file: name.is_some_and(|n| text.contains(&n)),
                text,
            };
        }
        Ok(Ok(found)) => found,
    };
    let prefix = fx.reference.get(&dump.applied_index) == Some(&dump);
    let dropped = LAST_INDEX.saturating_sub(dump.applied_index);
    match repair {
        None if dump == fx.baseline => Outcome::Identical,
        None if prefix
            && damage == Damage::Truncate
            && Some(file) == fx.last_segment().as_deref() =>
        {
            Outcome::BoundaryPrefix { dropped }
        }
        None => Outcome::Different(format!(
            "no repair logged, applied {} (undamaged {})",
            dump.applied_index, fx.baseline.applied_index
        )),
        // A torn tail is only ever the end of the last segment.
        Some(repair) if prefix && Some(Path::new(&repair.file)) == fx.last_segment().as_deref() => {
            Outcome::Repaired { dropped }
        }
        Some(repair) => Outcome::Different(format!(
            "after repair {repair:?}: applied {} is not the reference state at that index",
            dump.applied_index
        )),
    }
}

fn damaged(fx: &Fixture, file: &Path, damage: Damage, offset: u64, bit: u8) -> MemDisk {
    let disk = fx.disk.fork();
    match damage {
        Damage::Truncate => {
            disk.set_len(file, offset).expect("truncate");
            disk.sync(file).expect("sync");
        }
        Damage::Flip => {
            assert!(disk.corrupt_durable(file, offset, 1 << bit).expect("flip"));
        }
    }
    disk
}

/// A small deterministic mixer (splitmix64), so samples and bits are seeded.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// The offsets to try in a file of `len` bytes: all of them, or `sample`
/// seeded ones (always including the first and last 64 bytes).
fn offsets(len: u64, sample: Option<u64>, seed: u64) -> Vec<u64> {
    match sample {
        Some(n) if n < len => {
            let mut set: std::collections::BTreeSet<u64> = (0..len.min(64))
                .chain(len.saturating_sub(64)..len)
                .collect();
            let mut i = 0;
            while (set.len() as u64) < n {
                set.insert(mix(seed ^ i) % len);
                i += 1;
            }
            set.into_iter().collect()
        }
        _ => (0..len).collect(),
    }
}

fn exhaustive() -> bool {
    std::env::var_os("CORRUPT_EXHAUSTIVE").is_some_and(|v| v != "0")
}

/// Damages every file of the fixture that `select` picks and returns the
/// counts per (file, damage).
fn run_suite(
    select: impl Fn(&Path) -> bool,
    sample_for: impl Fn(&Path) -> Option<u64>,
) -> BTreeMap<(String, Damage), Counts> {
    quiet_panics_in_cases();
    let fx = Fixture::build();
    let mut table = BTreeMap::new();
    for file in fx.files().into_iter().filter(|f| select(f)) {
        let len = fx.disk.len(&file).expect("len");
        let sample = if exhaustive() {
            None
        } else {
            sample_for(&file)
        };
        for damage in [Damage::Truncate, Damage::Flip] {
            let seed = mix(len ^ damage as u64);
            let mut counts = Counts::default();
            for offset in offsets(len, sample, seed) {
                let bit = (mix(seed ^ offset) % 8) as u8;
                let disk = damaged(&fx, &file, damage, offset, bit);
                let what = format!("{} {damage:?} at {offset} (bit {bit})", file.display());
                counts.add(&what, open_and_classify(&fx, disk, &file, damage));
            }
            table.insert((file.display().to_string(), damage), counts);
        }
    }
    table
}

fn print_and_check(title: &str, table: &BTreeMap<(String, Damage), Counts>) {
    let mut out = String::new();
    let _ = writeln!(out, "\n{title}");
    let _ = writeln!(
        out,
        "{:<50} {:<8} {:>6} {:>9} {:>8} {:>8} {:>11} {:>9} {:>10} {:>9} {:>6} {:>7}",
        "file",
        "damage",
        "tried",
        "identical",
        "repaired",
        "boundary",
        "typed-error",
        "unlocated",
        "redb-panic",
        "different",
        "panics",
        "dropped"
    );
    for ((file, damage), c) in table {
        let _ = writeln!(
            out,
            "{:<50} {:<8} {:>6} {:>9} {:>8} {:>8} {:>11} {:>9} {:>10} {:>9} {:>6} {:>7}",
            file,
            format!("{damage:?}"),
            c.tried,
            c.identical,
            c.repaired,
            c.boundary_prefix,
            c.typed_error,
            c.unlocated_error,
            c.contained_panic,
            c.different,
            c.panics,
            c.max_dropped
        );
    }
    for c in table.values() {
        for f in &c.failures {
            let _ = writeln!(out, "  {f}");
        }
    }
    println!("{out}");
    let panics: u64 = table.values().map(|c| c.panics).sum();
    let different: u64 = table.values().map(|c| c.different).sum();
    let unlocated: u64 = table.values().map(|c| c.unlocated_error).sum();
    assert_eq!(panics, 0, "panics while opening damaged data:{out}");
    assert_eq!(different, 0, "silently different state:{out}");
    assert_eq!(
        unlocated, 0,
        "errors that do not name the damaged file:{out}"
    );
}

fn is_wal(f: &Path) -> bool {
    f.starts_with(replica::member::WAL_DIR)
}

fn is_snap(f: &Path) -> bool {
    f.extension().is_some_and(|e| e == "snap")
}

fn is_backend(f: &Path) -> bool {
    f == Path::new(replica::member::BACKEND_FILE)
}

#[test]
fn corrupt_wal_segments_at_every_offset() {
    let table = run_suite(is_wal, |_| None);
    assert!(table.len() >= 6, "expected several WAL segments: {table:?}");
    print_and_check("WAL segments", &table);
}

#[test]
fn corrupt_v2_snapshots_at_every_offset() {
    let table = run_suite(is_snap, |_| None);
    assert_eq!(table.len(), 4, "expected two snapshot files: {table:?}");
    print_and_check("v2 snapshot files", &table);
}

#[test]
fn corrupt_backend_at_sampled_offsets() {
    let table = run_suite(is_backend, |_| Some(2_000));
    print_and_check("backend (redb)", &table);
}

/// The fixture really has what the suite claims to damage.
#[test]
fn corrupt_fixture_has_segments_snapshots_and_backend() {
    let fx = Fixture::build();
    let files: Vec<PathBuf> = fx.files();
    assert!(files.iter().filter(|f| is_wal(f)).count() >= 3, "{files:?}");
    assert_eq!(files.iter().filter(|f| is_snap(f)).count(), 2, "{files:?}");
    assert!(files.iter().any(|f| is_backend(f)), "{files:?}");
    for f in &files {
        println!("{} {} bytes", f.display(), fx.disk.len(f).unwrap());
    }
}

/// A leader's snapshot whose backend blob is damaged in transit is refused
/// before any file names it: otherwise the WAL marker would make every
/// later boot try (and fail) to finish installing it.
#[test]
fn corrupt_leader_snapshot_is_refused_before_anything_is_written() {
    use prost::Message;
    use replica::member::SnapshotPayload;
    use replica::proto::SnapshotMarker;

    let fx = Fixture::build();
    let (mut leader, _) =
        Member::open(Arc::new(fx.disk.fork()), config(), Arc::new(NoCrash), 0).expect("open");
    let marker: SnapshotMarker = leader.snapshot_now().expect("snapshot");
    let mut payload =
        SnapshotPayload::decode(leader.snapshot_payload().expect("payload").as_slice()).unwrap();
    let at = payload.backend.len() / 2;
    payload.backend[at] ^= 0x10;

    let follower_disk = Arc::new(MemDisk::new());
    let mut follower = common::bootstrap(follower_disk.clone()).expect("bootstrap");
    let files = |d: &MemDisk| {
        [replica::member::WAL_DIR, replica::member::SNAP_DIR].map(|dir| {
            (
                d.list(Path::new(dir)).unwrap(),
                d.list(Path::new(dir))
                    .unwrap()
                    .iter()
                    .map(|n| d.len(&Path::new(dir).join(n)).unwrap())
                    .collect::<Vec<_>>(),
            )
        })
    };
    let before = files(&follower_disk);
    let err = follower
        .install_snapshot(&marker, &payload.encode_to_vec())
        .expect_err("a damaged blob must be refused");
    assert!(err.to_string().contains("checksum"), "{err}");
    assert_eq!(
        files(&follower_disk),
        before,
        "the refused snapshot touched the disk"
    );
    assert!(
        !follower.is_poisoned(),
        "nothing was written: the member can go on"
    );
    drop(follower);
    follower_disk.crash_power_loss();
    Member::open(follower_disk, config(), Arc::new(NoCrash), 0).expect("reopen");
}
