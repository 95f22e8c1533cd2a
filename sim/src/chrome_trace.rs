//! A run's trace as a Chrome trace-event file (`{"traceEvents":[...]}`),
//! which Perfetto and `chrome://tracing` open: one track (thread) per
//! member on virtual time, plus track 0 for the supervisor and the client.
//!
//! Most events are instants; a member's time down (from its crash or stop
//! to its next boot) and its time partitioned become spans, and so does a
//! slow-disk episode (its event says how long it lasts).

use crate::trace::TraceRecord;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

/// The process id of every event (the whole cluster is one "process").
const PID: u64 = 1;

/// The event's name: the text before its first `:`, ` at ` or ` until `
/// (so "snapshot at 256" and "snapshot at 512" share a name), shortened.
fn name_of(what: &str) -> String {
    let mut head = what;
    for cut in [":", " at ", " until "] {
        head = head.split_once(cut).map_or(head, |(h, _)| h);
    }
    head.chars().take(48).collect()
}

/// Which span an event opens or closes.
enum Span {
    Open(&'static str),
    Close(&'static str),
    None,
}

fn span_of(name: &str) -> Span {
    match name {
        "process crash" | "power off" | "stopped" | "crashed during boot" => Span::Open("down"),
        "open" => Span::Close("down"),
        "partitioned" | "isolated from the other members" => Span::Open("partitioned"),
        "partition healed" => Span::Close("partitioned"),
        "cut off from its peers" => Span::Open("cut off from its peers"),
        "peer links healed" => Span::Close("cut off from its peers"),
        _ => Span::None,
    }
}

/// The length of a slow-disk episode, from its event ("slow disk: 40x for
/// 1200 ms").
fn slow_disk_ms(what: &str) -> Option<u64> {
    let rest = what.strip_prefix("slow disk: ")?;
    let (_, ms) = rest.split_once(" for ")?;
    ms.strip_suffix(" ms")?.parse().ok()
}

fn track(member: Option<u64>) -> u64 {
    member.unwrap_or(0)
}

/// The trace-event document for `records` of a run with member ids
/// `members`.
pub fn to_json(records: &[TraceRecord], members: &[u64]) -> Value {
    let mut events = vec![json!({
        "name": "process_name", "ph": "M", "pid": PID, "tid": 0,
        "args": {"name": "cluster (virtual time)"}
    })];
    events.push(json!({
        "name": "thread_name", "ph": "M", "pid": PID, "tid": 0,
        "args": {"name": "sim (supervisor, client)"}
    }));
    for id in members {
        events.push(json!({
            "name": "thread_name", "ph": "M", "pid": PID, "tid": id,
            "args": {"name": format!("m{id}")}
        }));
        events.push(json!({
            "name": "thread_sort_index", "ph": "M", "pid": PID, "tid": id,
            "args": {"sort_index": id}
        }));
    }
    // Open spans: (track, span name) → start in µs.
    let mut open: BTreeMap<(u64, &'static str), u64> = BTreeMap::new();
    let mut last_us = 0;
    for r in records {
        let ts = r.time_ms * 1000;
        last_us = last_us.max(ts);
        let tid = track(r.member);
        let name = name_of(&r.what);
        let mut args = Map::new();
        if r.numbers.is_empty() {
            args.insert("detail".into(), Value::String(r.what.clone()));
        }
        for (k, v) in &r.numbers {
            args.insert(k.clone(), json!(v));
        }
        match span_of(&name) {
            Span::Open(span) => {
                open.entry((tid, span)).or_insert(ts);
            }
            Span::Close(span) => {
                if let Some(start) = open.remove(&(tid, span)) {
                    events.push(json!({
                        "name": span, "ph": "X", "pid": PID, "tid": tid,
                        "ts": start, "dur": ts - start,
                    }));
                }
            }
            Span::None => {}
        }
        if let Some(ms) = slow_disk_ms(&r.what) {
            events.push(json!({
                "name": "slow disk", "ph": "X", "pid": PID, "tid": tid,
                "ts": ts, "dur": ms * 1000,
            }));
        }
        events.push(json!({
            "name": name, "cat": if r.numbers.is_empty() { "event" } else { "apply" },
            "ph": "i", "s": "t", "pid": PID, "tid": tid, "ts": ts, "args": args,
        }));
    }
    // Spans still open at the end (a member that never came back).
    for ((tid, span), start) in open {
        events.push(json!({
            "name": span, "ph": "X", "pid": PID, "tid": tid,
            "ts": start, "dur": last_us - start,
        }));
    }
    json!({ "traceEvents": events, "displayTimeUnit": "ms" })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(time_ms: u64, member: Option<u64>, what: &str) -> TraceRecord {
        TraceRecord {
            time_ms,
            member,
            what: what.into(),
            numbers: Vec::new(),
        }
    }

    #[test]
    fn a_crash_and_the_next_boot_make_a_down_span() {
        let records = vec![
            rec(5, Some(2), "process crash"),
            TraceRecord {
                time_ms: 6,
                member: Some(1),
                what: "apply".into(),
                numbers: vec![("first".into(), 3), ("last".into(), 4)],
            },
            rec(9, Some(2), "open: snapshot 0, replayed 3"),
        ];
        let doc = to_json(&records, &[1, 2, 3]);
        let events = doc["traceEvents"].as_array().unwrap();
        let down: Vec<_> = events.iter().filter(|e| e["name"] == "down").collect();
        assert_eq!(down.len(), 1);
        assert_eq!(down[0]["tid"], 2);
        assert_eq!(down[0]["ts"], 5000);
        assert_eq!(down[0]["dur"], 4000);
        let apply = events.iter().find(|e| e["name"] == "apply").unwrap();
        assert_eq!(apply["args"]["last"], 4);
        assert_eq!(apply["tid"], 1);
        let open = events.iter().find(|e| e["name"] == "open").unwrap();
        assert_eq!(open["args"]["detail"], "open: snapshot 0, replayed 3");
        let names = events.iter().filter(|e| e["name"] == "thread_name").count();
        assert_eq!(names, 4);
    }

    #[test]
    fn a_slow_disk_episode_is_a_span_of_its_length() {
        let records = vec![rec(7, Some(3), "slow disk: 40x for 1200 ms")];
        let doc = to_json(&records, &[1, 2, 3]);
        let events = doc["traceEvents"].as_array().unwrap();
        let span = events
            .iter()
            .find(|e| e["name"] == "slow disk" && e["ph"] == "X")
            .unwrap();
        assert_eq!(span["tid"], 3);
        assert_eq!(span["ts"], 7000);
        assert_eq!(span["dur"], 1_200_000);
    }
}
