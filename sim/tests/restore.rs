//! Restores inside the simulator: a random run that draws a backup event
//! restores it, grows back and goes on with the workload and faults; one
//! that draws a snapshot restore restores the cluster from a member's
//! backend file and goes on; the catalogue's restores pass.

use replica::bugs::KnownBugs;
use sim::config::RunConfig;
use sim::scenario::{self, Scenario};

#[test]
fn a_random_run_restores_a_backup_grows_back_and_goes_on() {
    let report = sim::run::run(&RunConfig::new(12));
    assert!(report.passed(), "{}", report.failure_report());
    assert_eq!(report.stats.backup_restores, 1, "{}", report.summary());
    assert!(
        report
            .schedule
            .iter()
            .any(|t| matches!(t.step, sim::scenario_file::Step::BackupRestore { .. })),
        "the backup is recorded for shrink"
    );
}

#[test]
fn a_random_run_restores_from_a_backend_snapshot_and_goes_on() {
    let report = sim::run::run(&RunConfig::new(5));
    assert!(report.passed(), "{}", report.failure_report());
    assert_eq!(report.stats.snapshot_restores, 1, "{}", report.summary());
    assert!(
        report
            .schedule
            .iter()
            .any(|t| matches!(t.step, sim::scenario_file::Step::SnapshotRestore { .. })),
        "the snapshot restore is recorded for shrink"
    );
}

#[test]
fn the_catalogue_restores_pass_with_their_counters() {
    for (name, stat) in [
        ("24-snapshot-restore", "snapshot_restores"),
        ("25-backup-restore", "backup_restores"),
    ] {
        let path = scenario::find(name).unwrap_or_else(|e| panic!("{e}"));
        let s = Scenario::load(&path).unwrap_or_else(|e| panic!("{e}"));
        let report = s.run(s.seed, KnownBugs::NONE, false);
        assert!(report.passed(), "{name}: {}", report.failure_report());
        assert_eq!(report.stats.get(stat), Some(1), "{name}");
    }
}
