//! `--trace-out`: a scenario's kept trace as a Chrome trace-event file.

use sim::scenario::{self, Scenario};

#[test]
fn a_scenario_trace_exports_one_track_per_member_with_down_spans() {
    let sc = Scenario::load(&scenario::find("03-crash-between-v2-and-v3").unwrap()).unwrap();
    let mut cfg = sc.config(1, replica::bugs::KnownBugs::NONE, false);
    cfg.keep_trace = true;
    let members: Vec<u64> = (1..=cfg.nodes + cfg.spares).collect();
    let report = sc.run_config(cfg);
    assert!(report.passed(), "{}", report.failure_report());
    assert_eq!(report.trace_records.len() as u64, report.trace_events);

    let text = serde_json::to_string(&sim::chrome_trace::to_json(&report.trace_records, &members))
        .unwrap();
    let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
    let events = doc["traceEvents"].as_array().unwrap();
    for id in &members {
        assert!(
            events
                .iter()
                .any(|e| e["name"] == "thread_name" && e["tid"] == *id),
            "no track for m{id}"
        );
        assert!(
            events
                .iter()
                .any(|e| e["name"] == "apply" && e["tid"] == *id && e["ts"].as_u64().is_some()),
            "no applies on m{id}"
        );
    }
    // The scenario crashes a member and restarts it: a closed down span.
    assert!(
        events
            .iter()
            .any(|e| e["name"] == "down" && e["ph"] == "X" && e["dur"].as_u64() > Some(0)),
        "no down span"
    );
}

#[test]
fn without_an_export_no_events_are_kept() {
    let sc = Scenario::load(&scenario::find("03-crash-between-v2-and-v3").unwrap()).unwrap();
    let report = sc.run(1, replica::bugs::KnownBugs::NONE, false);
    assert!(report.trace_events > 0);
    assert!(report.trace_records.is_empty());
}
