//! `sim backup` (offline backup of a real data directory) and `sim
//! bench-backup` (rounds of workload → backup --with-v3 → restore →
//! compare, on in-memory disks outside the simulator).

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use replica::backend::BackendOptions;
use replica::backup::{self, BackupOptions, check, source};
use replica::bugs::KnownBugs;
use replica::crash_point::NoCrash;
use replica::disk::{Disk, MemDisk, StdDisk};
use replica::member::{Member, StoreConfig, WalMetadata};
use replica::node::NodeConfig;
use replica::proto::{
    ConfChangeKind, ConfChangeRequest, Entry, EntryType, HardState, Member as MemberInfo,
};
use replica::verify::VerifyMode;
use replica::wal::WalOptions;
use sim::workload::Workload;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

/// `sim backup`: etcd's `backup --with-v3` on real directories.
#[derive(clap::Args, Debug)]
pub struct BackupArgs {
    /// The stopped member's data directory (holds `member/wal`, `member/snap`).
    #[arg(long)]
    pub data_dir: PathBuf,
    /// Where to write the new one-member cluster's data directory (must not
    /// hold a member).
    #[arg(long)]
    pub backup_dir: PathBuf,
    /// Copy the v3 backend too (without it the key space starts empty).
    #[arg(long)]
    pub with_v3: bool,
    /// The new member's id.
    #[arg(long, default_value_t = 1)]
    pub member_id: u64,
    /// The new cluster's id.
    #[arg(long, default_value_t = 1)]
    pub cluster_id: u64,
    /// Re-introduce a known backup bug (builds with `--features known-bugs`):
    /// `backup-shift-indexes`, `backup-no-cindex-update`.
    #[arg(long = "bug")]
    pub bugs: Vec<String>,
}

pub fn backup(args: BackupArgs) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(
        args.data_dir.is_dir(),
        "--data-dir {} is not a directory",
        args.data_dir.display()
    );
    let src = StdDisk::new(&args.data_dir)?;
    let dst = StdDisk::new(&args.backup_dir)?;
    let opts = BackupOptions {
        with_v3: args.with_v3,
        bugs: crate::parse_bugs(&args.bugs)?,
        ..BackupOptions::new(args.member_id, args.cluster_id)
    };
    let report = backup::backup(&src, &dst, &opts)
        .map_err(|e| anyhow::anyhow!("backup of {}: {e}", args.data_dir.display()))?;
    println!(
        "backup of {} written to {}",
        args.data_dir.display(),
        args.backup_dir.display()
    );
    println!(
        "  new member {:x} of cluster {:x}; snapshot index {} term {}",
        args.member_id, args.cluster_id, report.snapshot.index, report.snapshot.term
    );
    println!(
        "  {} entries up to commit {} (term {}); {} membership entries replaced by no-ops; {} uncommitted entries left out",
        report.entries,
        report.hard_state.commit,
        report.hard_state.term,
        report.stripped,
        report.dropped_uncommitted
    );
    match report.source_consistent_index {
        Some(ci) => println!(
            "  backend copied at consistent index {} (term {}); now {} (term {})",
            ci.index, ci.term, report.consistent_index.index, report.consistent_index.term
        ),
        None => println!(
            "  no v3 backend copied; empty key space at consistent index {}",
            report.consistent_index.index
        ),
    }
    if let Some(repair) = &report.source_wal_repair {
        println!(
            "  the source WAL had a torn tail: {} bytes at {} offset {} left out",
            repair.dropped_bytes, repair.file, repair.offset
        );
    }
    println!(
        "  verification: {}",
        if report.verified_state.is_some() {
            "passed"
        } else {
            "off (set REPLICA_VERIFY=all)"
        }
    );
    Ok(ExitCode::SUCCESS)
}

/// `sim bench-backup`: timed rounds of backup and restore.
#[derive(clap::Args, Debug)]
pub struct BenchBackupArgs {
    /// Rounds to run.
    #[arg(long, default_value_t = 1000)]
    pub rounds: u64,
    /// Committed entries written before each backup.
    #[arg(long, default_value_t = 50)]
    pub entries: u64,
    /// First seed (round r uses seed + r).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Re-introduce a known backup bug (builds with `--features known-bugs`).
    #[arg(long = "bug")]
    pub bugs: Vec<String>,
}

const NEW_ID: u64 = 0xb0;

fn store_config() -> StoreConfig {
    StoreConfig {
        snapshot_count: u64::MAX / 2,
        backend: BackendOptions {
            batch_limit: 1_000_000,
            batch_interval_ms: 1_000_000,
            ..BackendOptions::default()
        },
        wal: WalOptions::default(),
        verify: VerifyMode::from_env(),
        bugs: KnownBugs::NONE,
    }
}

/// Writes `entries` committed entries (seeded workload, conf changes, a
/// snapshot, a backend commit and a term change that overwrites an
/// uncommitted tail) to a new three-member member on `disk`.
fn write_source(disk: Arc<dyn Disk>, seed: u64, entries: u64) -> anyhow::Result<()> {
    let info = |id: u64| MemberInfo {
        id,
        name: format!("m{id}"),
        peer_urls: vec![format!("http://m{id}:2380")],
        client_urls: Vec::new(),
        is_learner: false,
    };
    let meta = WalMetadata {
        member_id: 1,
        cluster_id: 1,
    };
    let members = [info(1), info(2), info(3)];
    let (mut member, _) =
        Member::bootstrap(disk, store_config(), Arc::new(NoCrash), &meta, &members, 0)?;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut workload = Workload::new(ChaCha8Rng::seed_from_u64(seed ^ 0xbac), 16, vec![1, 2, 3]);
    let mut index = member.applied_index();
    let mut term = 1;
    let mut next_learner = 10;
    let mut make = |index: u64, term: u64, rng: &mut ChaCha8Rng, revision: i64| {
        if rng.random_range(0..10u32) == 0 {
            next_learner += 1;
            let cc = ConfChangeRequest {
                kind: ConfChangeKind::AddLearnerNode as i32,
                node_id: next_learner,
                member: Some(info(next_learner)),
                request_id: index,
            };
            Entry {
                term,
                index,
                entry_type: EntryType::ConfChange as i32,
                data: Vec::new(),
                context: prost::Message::encode_to_vec(&cc),
            }
        } else {
            Entry {
                term,
                index,
                entry_type: EntryType::Normal as i32,
                data: prost::Message::encode_to_vec(&workload.next_request(revision)),
                context: Vec::new(),
            }
        }
    };
    for i in 0..entries {
        if i == entries * 2 / 3 {
            // An uncommitted tail at this term, overwritten by the next.
            let tail: Vec<Entry> = (1..=3)
                .map(|k| make(index + k, term, &mut rng, 1))
                .collect();
            member.save(None, &tail)?;
            term += 1;
        }
        index += 1;
        let revision = member.stores().mvcc.current_revision();
        let entry = make(index, term, &mut rng, revision);
        let hs = HardState {
            term,
            vote: 1,
            commit: index,
        };
        member.save(Some(&hs), std::slice::from_ref(&entry))?;
        member.apply(&entry, 0)?;
        if i == entries / 2 {
            member.snapshot_now()?;
        }
        if i == entries * 3 / 4 {
            member.tick(u64::MAX / 2)?;
        }
    }
    Ok(())
}

/// One round; `Err` with the differing fields on a divergence.
pub(crate) fn round(seed: u64, entries: u64, bugs: KnownBugs) -> anyhow::Result<()> {
    let src: Arc<dyn Disk> = Arc::new(MemDisk::new());
    let dst: Arc<dyn Disk> = Arc::new(MemDisk::new());
    write_source(src.clone(), seed, entries)?;
    let opts = BackupOptions {
        verify: VerifyMode::from_env(),
        ..BackupOptions::new(NEW_ID, 0xc1)
    };
    let expected = check::expected_state(&source::read(src.as_ref(), true)?, &opts)?;
    let opts = BackupOptions { bugs, ..opts };
    backup::backup(src.as_ref(), dst.as_ref(), &opts)?;
    let node = backup::restore(
        dst,
        NodeConfig::new(NEW_ID, store_config()),
        Arc::new(NoCrash),
        0,
    )?;
    let mut got = node.member().state_dump()?;
    // The new leader's empty entry is the only entry past the backup.
    anyhow::ensure!(
        got.applied_index == expected.applied_index + 1
            && got.consistent_index == got.applied_index,
        "seed {seed}: applied {} consistent {} after restoring a backup at {}",
        got.applied_index,
        got.consistent_index,
        expected.applied_index
    );
    got.applied_index = expected.applied_index;
    got.consistent_index = expected.consistent_index;
    got.consistent_term = expected.consistent_term;
    let diffs = sim::diff::diff(&expected, &got);
    if !diffs.is_empty() {
        let shown: Vec<String> = diffs.iter().take(10).map(|d| format!("  {d}")).collect();
        anyhow::bail!(
            "seed {seed}: the restored backup differs from the source replayed with membership entries as no-ops:\n{}",
            shown.join("\n")
        );
    }
    Ok(())
}

pub fn bench(args: BenchBackupArgs) -> anyhow::Result<ExitCode> {
    let bugs = crate::parse_bugs(&args.bugs)?;
    // Wall-clock time, measured outside any simulation.
    let started = std::time::Instant::now();
    for r in 0..args.rounds {
        if let Err(e) = round(args.seed + r, args.entries, bugs) {
            println!("DIVERGENCE: {e:#}");
            let bug_args: String = args.bugs.iter().map(|b| format!(" --bug {b}")).collect();
            let features = if args.bugs.is_empty() {
                ""
            } else {
                " --features known-bugs"
            };
            println!(
                "reproduce: cargo run --release -p sim{features} -- bench-backup --rounds 1 --seed {} --entries {}{bug_args}",
                args.seed + r,
                args.entries
            );
            return Ok(ExitCode::from(1));
        }
    }
    let wall = started.elapsed().as_secs_f64();
    let per_s = args.rounds as f64 / wall.max(1e-9);
    println!("| figure | value |\n| --- | --- |");
    println!(
        "| rounds (workload of {} entries → backup --with-v3 → restore → compare) | {} |",
        args.entries, args.rounds
    );
    println!("| wall time | {wall:.2} s |");
    println!("| rounds per second | {per_s:.1} |");
    println!("| time for 1000 rounds | {:.1} s |", 1000.0 / per_s);
    println!(
        "| verification | {} |",
        if VerifyMode::from_env().enabled() {
            "on"
        } else {
            "off"
        }
    );
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use replica::member::StoreError;

    #[test]
    fn bench_rounds_find_no_divergence() {
        for seed in 1..=5 {
            round(seed, 40, KnownBugs::NONE).unwrap();
        }
    }

    #[test]
    fn backup_of_a_real_directory_boots_as_the_new_member() {
        let dir = tempfile::tempdir().unwrap();
        let (src, dst) = (dir.path().join("src"), dir.path().join("dst"));
        write_source(Arc::new(StdDisk::new(&src).unwrap()), 7, 40).unwrap();
        let args = |backup_dir: PathBuf| BackupArgs {
            data_dir: src.clone(),
            backup_dir,
            with_v3: true,
            member_id: 0xab,
            cluster_id: 0xcd,
            bugs: Vec::new(),
        };
        assert_eq!(backup(args(dst.clone())).unwrap(), ExitCode::SUCCESS);
        let disk = Arc::new(StdDisk::new(&dst).unwrap());
        let (member, recovered) = Member::open(disk, store_config(), Arc::new(NoCrash), 0).unwrap();
        assert_eq!(recovered.metadata.member_id, 0xab);
        assert_eq!(recovered.metadata.cluster_id, 0xcd);
        let members: Vec<u64> = member.stores().cluster.members.keys().copied().collect();
        assert_eq!(members, vec![0xab]);

        let err = backup(args(dst)).unwrap_err();
        assert!(err.to_string().contains("already holds a member"), "{err}");
        let missing = BackupArgs {
            data_dir: dir.path().join("nope"),
            ..args(dir.path().join("other"))
        };
        assert!(backup(missing).is_err());
        assert!(matches!(
            Member::open(
                Arc::new(StdDisk::new(dir.path().join("other")).unwrap()),
                store_config(),
                Arc::new(NoCrash),
                0
            ),
            Err(StoreError::NotInitialized)
        ));
    }
}
