//! The single-member restart check on a real directory: one member on a
//! real disk and a reference member in memory receive the same committed
//! entries; the real one is stopped at seeded moments (dropping its
//! uncommitted backend batch, as a process crash does) and reopened, and
//! after every reopen its whole state must equal the reference's.
//!
//! This exercises the recovery rules end to end on real files without raft:
//! after a stop the backend is behind the WAL but usually ahead of the last
//! v2 snapshot, so replay must apply the v2 half of every entry and the v3
//! half only of entries past the consistent index.

use crate::diff::{FieldDiff, diff};
use crate::workload::Workload;
use prost::Message;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use replica::backend::BackendOptions;
use replica::bugs::KnownBugs;
use replica::crash_point::NoCrash;
use replica::disk::{Disk, MemDisk, StdDisk};
use replica::member::{Member, StoreConfig, WalMetadata};
use replica::proto::{Entry, EntryType, HardState, Member as MemberInfo};
use replica::verify::VerifyMode;
use replica::wal::WalOptions;
use std::path::Path;
use std::sync::Arc;

/// Settings of one demo run.
#[derive(Debug, Clone)]
pub struct DemoConfig {
    pub seed: u64,
    pub entries: u64,
    /// Probability that the real member is stopped after an entry.
    pub stop_probability: f64,
    /// Known-bug switches to turn on in the stopped member.
    pub bugs: KnownBugs,
}

/// What a demo run did.
#[derive(Debug, Default, Clone)]
pub struct DemoReport {
    pub entries: u64,
    pub restarts: u64,
    pub replayed: u64,
    pub replay_skipped_v3: u64,
    pub snapshots: u64,
    pub violation: Option<Violation>,
}

/// The first thing that went wrong in a run.
#[derive(Debug, Clone)]
pub struct Violation {
    /// The last entry index given to the members.
    pub index: u64,
    /// What failed, in one line.
    pub what: String,
    /// For a divergence: the differing fields (restarted vs reference).
    pub diffs: Vec<FieldDiff>,
}

fn store_config(bugs: KnownBugs) -> StoreConfig {
    StoreConfig {
        bugs,
        snapshot_count: 40,
        backend: BackendOptions {
            batch_limit: 16,
            batch_interval_ms: 100,
            ..BackendOptions::default()
        },
        wal: WalOptions {
            segment_size: 16 * 1024,
            ..WalOptions::default()
        },
        verify: VerifyMode::All,
    }
}

fn open(disk: Arc<dyn Disk>, bugs: KnownBugs, now_ms: u64) -> anyhow::Result<(Member, u64, u64)> {
    let (member, rec) = Member::open(disk, store_config(bugs), Arc::new(NoCrash), now_ms)?;
    Ok((member, rec.replayed, rec.replay_skipped_v3))
}

/// Runs the demo with the real member's data in `dir`.
pub fn run(dir: &Path, cfg: &DemoConfig) -> anyhow::Result<DemoReport> {
    let (mut real, mut reference, real_disk) = bootstrap_both(dir, cfg.bugs)?;
    let mut workload = Workload::new(ChaCha8Rng::seed_from_u64(cfg.seed), 24, vec![1]);
    let mut faults = ChaCha8Rng::seed_from_u64(cfg.seed ^ 0x5eed_fa17);
    let mut report = DemoReport::default();
    let mut index = reference.applied_index();
    for step in 0..cfg.entries {
        index += 1;
        let now_ms = step * 7;
        let request = workload.next_request(reference.stores().mvcc.current_revision());
        let entry = committed_entry(index, request.encode_to_vec());
        commit_to_both(&mut reference, &mut real, &entry, now_ms, &mut report)?;
        report.entries += 1;
        if faults.random_bool(cfg.stop_probability) {
            drop(real);
            real = match open(real_disk.clone(), cfg.bugs, now_ms) {
                Ok((reopened, replayed, skipped)) => {
                    report.restarts += 1;
                    report.replayed += replayed;
                    report.replay_skipped_v3 += skipped;
                    reopened
                }
                Err(e) => {
                    report.violation = Some(failed_to_reopen(index, &e));
                    return Ok(report);
                }
            };
            report.violation = divergence(&real, &reference, index)?;
            if report.violation.is_some() {
                return Ok(report);
            }
        }
    }
    report.violation = divergence(&real, &reference, index)?;
    Ok(report)
}

/// The member under test (on a real disk in `dir`, with `bugs`), the
/// reference member (in memory, without bugs), and the real one's disk.
fn bootstrap_both(dir: &Path, bugs: KnownBugs) -> anyhow::Result<(Member, Member, Arc<dyn Disk>)> {
    let members = [MemberInfo {
        id: 1,
        name: "m1".into(),
        peer_urls: vec!["http://m1:2380".into()],
        client_urls: Vec::new(),
        is_learner: false,
    }];
    let meta = WalMetadata {
        member_id: 1,
        cluster_id: 7,
    };
    let real_disk: Arc<dyn Disk> = Arc::new(StdDisk::new(dir)?);
    let mem_disk: Arc<dyn Disk> = Arc::new(MemDisk::new());
    let hook = Arc::new(NoCrash);
    let (real, _) = Member::bootstrap(
        real_disk.clone(),
        store_config(bugs),
        hook.clone(),
        &meta,
        &members,
        0,
    )?;
    let (reference, _) = Member::bootstrap(
        mem_disk,
        store_config(KnownBugs::NONE),
        hook,
        &meta,
        &members,
        0,
    )?;
    Ok((real, reference, real_disk))
}

/// Entry `index` of the single-member cluster's only term.
fn committed_entry(index: u64, data: Vec<u8>) -> Entry {
    Entry {
        term: 1,
        index,
        entry_type: EntryType::Normal as i32,
        data,
        context: Vec::new(),
    }
}

/// Gives `entry`, committed, to both members (reference first): save,
/// apply, tick, and a snapshot if due (only the reference's are counted).
fn commit_to_both(
    reference: &mut Member,
    real: &mut Member,
    entry: &Entry,
    now_ms: u64,
    report: &mut DemoReport,
) -> anyhow::Result<()> {
    let hs = HardState {
        term: 1,
        vote: 1,
        commit: entry.index,
    };
    for (i, m) in [reference, real].into_iter().enumerate() {
        m.save(Some(&hs), std::slice::from_ref(entry))?;
        m.apply(entry, now_ms)?;
        m.tick(now_ms)?;
        if m.maybe_snapshot()?.is_some() && i == 0 {
            report.snapshots += 1;
        }
    }
    Ok(())
}

/// The fault model allows a process stop at any entry boundary: a member
/// that cannot boot after one is a bug (not an error of the run).
fn failed_to_reopen(index: u64, e: &anyhow::Error) -> Violation {
    Violation {
        index,
        what: format!("member failed to reopen after a stop: {e}"),
        diffs: Vec::new(),
    }
}

/// The divergence of the real member from the reference, if any.
fn divergence(real: &Member, reference: &Member, index: u64) -> anyhow::Result<Option<Violation>> {
    let d = diff(&real.state_dump()?, &reference.state_dump()?);
    Ok((!d.is_empty()).then(|| diverged(index, d)))
}

fn diverged(index: u64, diffs: Vec<FieldDiff>) -> Violation {
    Violation {
        index,
        what: "restarted member diverged from the reference".into(),
        diffs,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(seed: u64, bugs: KnownBugs) -> DemoConfig {
        DemoConfig {
            seed,
            entries: 300,
            stop_probability: 0.05,
            bugs,
        }
    }

    #[test]
    fn restarts_on_a_real_directory_match_the_reference() {
        for seed in 1..=3 {
            let dir = tempfile::tempdir().unwrap();
            let report = run(dir.path(), &cfg(seed, KnownBugs::NONE)).unwrap();
            assert!(
                report.violation.is_none(),
                "seed {seed}: {:?}",
                report.violation
            );
            assert!(
                report.restarts > 0 && report.replay_skipped_v3 > 0,
                "{report:?}"
            );
        }
    }

    #[cfg(feature = "known-bugs")]
    #[test]
    fn skipping_the_v2_half_on_replay_is_reported_as_a_divergence() {
        let mut bugs = KnownBugs::NONE;
        bugs.enable(replica::bugs::Bug::V2SkippedWithV3).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let report = run(dir.path(), &cfg(1, bugs)).unwrap();
        let v = report.violation.expect("the bug must be caught");
        assert!(
            v.diffs.iter().any(|d| d.path == ".v2.index"),
            "{:?}",
            v.diffs
        );
    }
}
