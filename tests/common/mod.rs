//! A small real data directory for the hardening tests: one member on a
//! `MemDisk` with several WAL segments, two v2 snapshots and a backend with
//! several batch commits, plus the reference state after every entry.

#![allow(dead_code)] // each test binary uses its own part of this module

use prost::Message;
use replica::backend::BackendOptions;
use replica::crash_point::NoCrash;
use replica::disk::{Disk, MemDisk};
use replica::member::{
    BACKEND_FILE, Member, SNAP_DIR, StateDump, StoreConfig, StoreError, WAL_DIR, WalMetadata,
};
use replica::proto::{
    ClusterVersionSetRequest, DeleteRangeRequest, Entry, EntryType, HardState,
    Member as MemberInfo, MemberAttrSetRequest, PutRequest, Request, V2DeleteRequest, V2SetRequest,
    request,
};
use replica::verify::VerifyMode;
use replica::wal::WalOptions;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Entries after bootstrap (indexes 4..=LAST_INDEX).
pub const LAST_INDEX: u64 = 60;
/// Indexes at which a v2 snapshot is taken.
pub const SNAPSHOT_AT: [u64; 2] = [20, 40];

/// Small segments (several per run), a backend that commits every few
/// entries on the timer, snapshots only by hand, every boot check on.
pub fn config() -> StoreConfig {
    StoreConfig {
        snapshot_count: u64::MAX / 2,
        backend: BackendOptions {
            batch_limit: 1_000_000,
            batch_interval_ms: 50,
            ..BackendOptions::default()
        },
        wal: WalOptions {
            segment_size: 512,
            ..WalOptions::default()
        },
        verify: VerifyMode::All,
        ..StoreConfig::default()
    }
}

fn info(id: u64) -> MemberInfo {
    MemberInfo {
        id,
        name: format!("m{id}"),
        peer_urls: vec![format!("http://m{id}:2380")],
        client_urls: Vec::new(),
        is_learner: false,
    }
}

/// A fresh member of a three-member cluster (entries 1..=3 add the members).
pub fn bootstrap(disk: Arc<dyn Disk>) -> Result<Member, StoreError> {
    let (member, _) = Member::bootstrap(
        disk,
        config(),
        Arc::new(NoCrash),
        &WalMetadata {
            member_id: 1,
            cluster_id: 9,
        },
        &[info(1), info(2), info(3)],
        0,
    )?;
    Ok(member)
}

/// The committed entry at `index` (> 3): a fixed mix of v3 puts and deletes,
/// v2 sets and deletes, and requests that touch both stores.
pub fn entry(index: u64) -> Entry {
    let i = index;
    let kind = match i % 7 {
        0 | 2 => request::Kind::Put(PutRequest {
            key: format!("k{}", i % 5).into_bytes(),
            value: format!("value-{i}-{}", "x".repeat((i % 4) as usize * 8)).into_bytes(),
        }),
        1 => request::Kind::V2Set(V2SetRequest {
            path: format!("/app/k{}", i % 4),
            value: format!("v2-{i}"),
        }),
        3 => request::Kind::DeleteRange(DeleteRangeRequest {
            key: format!("k{}", (i + 2) % 5).into_bytes(),
            range_end: Vec::new(),
        }),
        4 => request::Kind::ClusterVersionSet(ClusterVersionSetRequest {
            version: format!("3.{}.0", i % 3),
        }),
        5 => request::Kind::V2Delete(V2DeleteRequest {
            path: format!("/app/k{}", (i + 1) % 4),
            recursive: false,
        }),
        _ => request::Kind::MemberAttrSet(MemberAttrSetRequest {
            member_id: 2,
            name: format!("m2-{i}"),
            client_urls: vec![format!("http://m2:{}", 2000 + i)],
        }),
    };
    Entry {
        term: 1,
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

/// The driver's clock when entry `index` is applied.
pub fn now_ms(index: u64) -> u64 {
    index * 20
}

/// One step of the run, as a member's Ready loop does it: persist the entry
/// and the hard state committing it, apply it, let the batch timer run, and
/// snapshot at [`SNAPSHOT_AT`].
pub fn step(member: &mut Member, index: u64) -> Result<(), StoreError> {
    let e = entry(index);
    let hs = HardState {
        term: 1,
        vote: 1,
        commit: index,
    };
    member.save(Some(&hs), std::slice::from_ref(&e))?;
    member.apply(&e, now_ms(index))?;
    member.tick(now_ms(index))?;
    if SNAPSHOT_AT.contains(&index) {
        member.snapshot_now()?;
    }
    Ok(())
}

/// The data directory after the run, and what a correct member holds.
pub struct Fixture {
    /// The durable image after a power loss at the end of the run.
    pub disk: MemDisk,
    /// The never-restarted member's state after each applied index.
    pub reference: BTreeMap<u64, StateDump>,
    /// The state a clean reopen of `disk` gives.
    pub baseline: StateDump,
}

impl Fixture {
    pub fn build() -> Fixture {
        let disk = Arc::new(MemDisk::new());
        let mut member = bootstrap(disk.clone()).expect("bootstrap");
        let mut reference = BTreeMap::new();
        reference.insert(member.applied_index(), member.state_dump().expect("dump"));
        for index in member.applied_index() + 1..=LAST_INDEX {
            step(&mut member, index).expect("reference run");
            reference.insert(index, member.state_dump().expect("dump"));
        }
        drop(member);
        // Whatever the backend had not committed is lost; the WAL was synced.
        disk.crash_power_loss();
        let pristine = disk.fork();
        let (reopened, _) =
            Member::open(Arc::new(disk.fork()), config(), Arc::new(NoCrash), 0).expect("reopen");
        let baseline = reopened.state_dump().expect("dump");
        assert_eq!(
            Some(&baseline),
            reference.get(&LAST_INDEX),
            "a clean reopen must give the reference state"
        );
        Fixture {
            disk: pristine,
            reference,
            baseline,
        }
    }

    /// The WAL segment appended to (the only one a torn tail can be in).
    pub fn last_segment(&self) -> Option<PathBuf> {
        let mut names = self.disk.list(Path::new(WAL_DIR)).expect("list");
        names.retain(|n| n.ends_with(".wal"));
        names.last().map(|n| Path::new(WAL_DIR).join(n))
    }

    /// The member's files: WAL segments, snapshot files, the backend.
    pub fn files(&self) -> Vec<PathBuf> {
        let mut files = Vec::new();
        for dir in [WAL_DIR, SNAP_DIR] {
            for name in self.disk.list(Path::new(dir)).expect("list") {
                let path = Path::new(dir).join(name);
                if path != Path::new(BACKEND_FILE) {
                    files.push(path);
                }
            }
        }
        files.push(PathBuf::from(BACKEND_FILE));
        files
    }
}
