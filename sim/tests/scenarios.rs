//! Every scenario in `scenarios/` runs with its default seed: the invariants
//! must hold, and the states its `snapshot` steps record must match the
//! insta snapshot kept in `snapshots/` (`cargo insta review` to accept an
//! intended change).

use replica::bugs::KnownBugs;
use sim::scenario::Scenario;

#[test]
fn catalogue() {
    insta::glob!("../../scenarios", "*.toml", |path| {
        let scenario = Scenario::load(path).unwrap_or_else(|e| panic!("{e}"));
        let report = scenario.run(scenario.seed, KnownBugs::NONE, false);
        assert!(
            report.passed(),
            "{}\n{}",
            report.summary(),
            report.failure_report()
        );
        assert!(
            !report.recorded.is_empty(),
            "{}: a scenario must record at least one snapshot",
            path.display()
        );
        let mut settings = insta::Settings::clone_current();
        settings.set_snapshot_path("../../snapshots");
        settings.set_prepend_module_to_snapshot(false);
        settings.set_description(scenario.description.clone());
        settings.set_omit_expression(true);
        settings.bind(|| insta::assert_yaml_snapshot!("scenario", report.recorded));
    });
}
