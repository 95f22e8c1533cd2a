//! The simulator, end to end: determinism, a run of consecutive seeds, and
//! a known bug that the invariants must catch.

use sim::config::RunConfig;
use sim::run::run;

fn short(seed: u64) -> RunConfig {
    RunConfig {
        duration_ms: 3_000,
        ..RunConfig::new(seed)
    }
}

#[test]
fn the_same_seed_twice_gives_the_same_trace_for_50_seeds() {
    let mut distinct = std::collections::BTreeSet::new();
    for seed in 1..=50 {
        let cfg = short(seed);
        let a = run(&cfg);
        let b = run(&cfg);
        assert_eq!(
            (a.trace_hash, a.trace_events),
            (b.trace_hash, b.trace_events),
            "seed {seed} is not deterministic"
        );
        // A drawn two-member world under many faults may be unavailable
        // most of the time, but it still boots, elects and faults.
        assert!(
            a.trace_events > 20,
            "seed {seed} did too little: {}",
            a.summary()
        );
        distinct.insert(a.trace_hash);
    }
    assert_eq!(
        distinct.len(),
        50,
        "different seeds must give different runs"
    );
}

#[test]
fn twenty_consecutive_default_seeds_pass() {
    let (mut faults, mut acked) = (0, 0);
    for seed in 1000..1020 {
        let report = run(&RunConfig::new(seed));
        assert!(
            report.passed(),
            "{}\n{}",
            report.summary(),
            report.failure_report()
        );
        // A drawn world may be unavailable much of the time (two members
        // under many faults), so the work is counted over all seeds.
        assert!(report.stats.acked > 0, "{}", report.summary());
        let s = &report.stats;
        acked += s.acked;
        faults += s.crashes + s.power_losses + s.point_crashes + s.eio_failures + s.partitions;
    }
    assert!(acked > 20 * 300, "the runs must serve clients: {acked}");
    assert!(
        faults >= 40,
        "the runs must actually inject faults: {faults}"
    );
}

#[cfg(feature = "known-bugs")]
#[test]
fn a_store_that_writes_the_consistent_index_only_on_explicit_commits_is_caught() {
    use replica::bugs::{Bug, KnownBugs};
    let mut bugs = KnownBugs::NONE;
    bugs.enable(Bug::CindexOnlyOnExplicitCommit).unwrap();
    let caught = (1..=20).find_map(|seed| {
        let cfg = RunConfig {
            bugs,
            ..RunConfig::new(seed)
        };
        let report = run(&cfg);
        (!report.passed()).then_some(report)
    });
    let report = caught.expect("the bug must be caught within 20 seeds");
    let text = report.failure_report();
    assert!(
        text.contains("reproduce: cargo run --release -p sim --features known-bugs -- run --seed"),
        "{text}"
    );
    assert!(
        text.contains("--bug cindex-only-on-explicit-commit"),
        "{text}"
    );
    assert!(
        text.contains(
            "shrink:    cargo run --release -p sim --features known-bugs -- shrink --seed"
        ),
        "the report says how to shrink the run: {text}"
    );
    // With the switch off, the same seed passes.
    let clean = run(&RunConfig::new(report.config.seed));
    assert!(clean.passed(), "{}", clean.failure_report());
}

#[test]
fn a_sweep_gives_the_same_runs_with_one_or_two_jobs() {
    let configs: Vec<RunConfig> = (200..212).map(short).collect();
    let one = sim::sweep::run_many(&configs, 1, &|_| {});
    let two = sim::sweep::run_many(&configs, 2, &|_| {});
    let hashes = |r: &[sim::run::RunReport]| -> Vec<(u64, u64)> {
        r.iter().map(|r| (r.config.seed, r.trace_hash)).collect()
    };
    assert_eq!(hashes(&one), hashes(&two));
}

/// A process crash is a crash for the backend too: the disk freezes before
/// the node is dropped, so redb never gets its clean close and repairs the
/// file at the next open. (Not every restart repairs: a member that crashes
/// again before its first commit after a repair leaves a file redb already
/// made clean.) Before the freeze, these runs had no repair at all.
#[test]
fn random_process_crashes_leave_the_backend_to_repair() {
    for seed in 1..=3 {
        let mut cfg = sim::config::RunConfig::new(seed);
        cfg.faults = [sim::fault::FaultClass::Crash].into_iter().collect();
        let report = sim::run::run(&cfg);
        assert!(report.passed(), "{}", report.failure_report());
        let s = &report.stats;
        assert!(s.crashes > 0, "seed {seed}: no process crash");
        assert!(
            s.unclean_backend_opens * 2 >= s.crashes,
            "seed {seed}: {} crashes but only {} backend repairs",
            s.crashes,
            s.unclean_backend_opens
        );
    }
}

/// A one-member cluster (what `restore` produces) commits alone. Its
/// random runs still stop it (one member may be down at a time: the
/// cluster is unavailable meanwhile), never partition it (no peer to cut
/// off) and never damage its platter (a quarantine would leave no quorum);
/// every acknowledged write must survive each boot.
#[test]
fn one_member_random_runs_pass_with_crashes() {
    for seed in 1..=4 {
        // The fixed world's settings and faults, with one member.
        let cfg = RunConfig {
            nodes: 1,
            ..RunConfig::fixed(seed)
        };
        let report = run(&cfg);
        assert!(
            report.passed(),
            "{}\n{}",
            report.summary(),
            report.failure_report()
        );
        let s = &report.stats;
        assert!(s.acked > 300, "seed {seed}: {}", report.summary());
        assert!(
            s.crashes + s.power_losses + s.point_crashes > 0 && s.restarts > 0,
            "seed {seed}: the lone member must be stopped and restarted: {}",
            report.summary()
        );
        assert_eq!(
            (s.partitions, s.corruptions),
            (0, 0),
            "seed {seed}: {}",
            report.summary()
        );
    }
}

/// A network whose every message takes 1 ms (`max_latency_ms = 1`, the
/// smallest the format and the swarm allow) used to hand madsim an empty
/// latency range, which panicked in the client's first send.
#[test]
fn a_one_millisecond_network_runs() {
    let cfg = RunConfig {
        network: Some(sim::config::NetworkModel {
            packet_loss: 0.0,
            max_latency_ms: 1,
        }),
        ..short(6)
    };
    let report = run(&cfg);
    assert!(report.passed(), "{}", report.failure_report());
    assert!(report.stats.acked > 0);
}

/// A swarm run is reproduced by its seed alone; a flag appears only when
/// it differs from the draw, and `--swarm off` runs carry their fixed world.
#[test]
fn the_reproduce_command_names_only_what_the_seed_does_not_draw() {
    use sim::pin::Overrides;
    let drawn = RunConfig::new(5);
    assert!(
        drawn.reproduce_command().ends_with("-- run --seed 5"),
        "{}",
        drawn.reproduce_command()
    );
    let other = if drawn.nodes == 1 { 2 } else { 1 };
    let set = Overrides {
        nodes: Some(other),
        duration_ms: Some(1_234),
        ..Overrides::default()
    };
    let overridden = RunConfig::random(5, true, &set);
    assert_eq!(overridden.nodes, other);
    assert!(
        overridden.faults.iter().all(|c| c.applies_to(other)),
        "the classes are drawn for the size the run has"
    );
    let command = overridden.reproduce_command();
    assert!(
        command.ends_with(&format!("--seed 5 --nodes {other} --duration 1234ms")),
        "{command}"
    );
    // Overriding with the drawn value changes nothing.
    let same = Overrides {
        nodes: Some(drawn.nodes),
        ..Overrides::default()
    };
    assert!(
        RunConfig::random(5, true, &same)
            .reproduce_command()
            .ends_with("--seed 5")
    );
    let fixed = RunConfig::random(5, false, &Overrides::default());
    assert!(
        fixed
            .reproduce_command()
            .contains("--seed 5 --swarm off --nodes 3 --duration 20000ms --faults crash,"),
        "{}",
        fixed.reproduce_command()
    );
    assert!(
        fixed
            .world_line()
            .starts_with("world (fixed, --swarm off): 3 members")
    );
    assert!(drawn.world_line().starts_with("world (swarm): "));
}

/// The swarm varies every dimension over seeds; the fixed world does not.
#[test]
fn swarm_worlds_differ_by_seed_and_the_fixed_world_does_not() {
    let worlds: Vec<RunConfig> = (1..=60).map(RunConfig::new).collect();
    let distinct = |f: &dyn Fn(&RunConfig) -> u64| {
        worlds
            .iter()
            .map(f)
            .collect::<std::collections::BTreeSet<_>>()
            .len()
    };
    assert!(distinct(&|c| c.nodes) >= 5);
    assert!(distinct(&|c| c.faults.len() as u64) >= 5);
    assert!(distinct(&|c| c.batch_limit as u64) >= 30);
    assert!(distinct(&|c| c.request_interval_ms) >= 20);
    assert!(distinct(&|c| c.duration_ms) == 3);
    assert!(distinct(&|c| u64::from(c.mix.read_percent)) == 5);
    assert!(distinct(&|c| u64::from(c.mix.write_percent(sim::mix::RequestKind::Compact))) >= 4);
    assert!(distinct(&|c| c.mix.stretches.map_or(0, |s| u64::from(s.length))) >= 10);
    let fixed: Vec<RunConfig> = (1..=60).map(RunConfig::fixed).collect();
    assert!(fixed.iter().all(|c| c.nodes == 3
        && c.faults.len() == sim::fault::FaultClass::ALL.len()
        && c.mix == sim::mix::Mix::FIXED
        && !c.swarm));
    let off = sim::pin::Overrides::default();
    assert!((1..=60).all(|s| RunConfig::random(s, false, &off).mix == sim::mix::Mix::FIXED));
}

/// A drawn mix reaches the clients: a read-only mix's run reads far more
/// than the fixed mix's, and a stretch-heavy compaction mix compacts more.
#[test]
fn the_drawn_mix_shapes_what_the_clients_send() {
    let with_mix = |mix: &str| {
        let cfg = RunConfig {
            mix: mix.parse().expect(mix),
            ..short(4)
        };
        let report = run(&cfg);
        assert!(report.passed(), "{mix}: {}", report.failure_report());
        report
    };
    let fixed = with_mix("fixed");
    let reads = with_mix("reads:90");
    let count = |r: &sim::run::RunReport| r.stats.linearizable_reads + r.stats.serializable_reads;
    assert!(
        count(&reads) > 2 * count(&fixed),
        "{} vs {}",
        count(&reads),
        count(&fixed)
    );
    let storm = with_mix("compact:100,stretch:40/40");
    assert!(
        storm.stats.compactions > 2 * fixed.stats.compactions.max(1),
        "{:?}",
        storm.stats
    );
}
