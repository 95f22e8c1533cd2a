//! What a scenario's `snapshot` step records: every running member's state
//! dump, with the fields that may legitimately differ redacted and long
//! strings abbreviated, so an insta snapshot diff shows what diverged.

use serde::Serialize;
use std::collections::BTreeMap;

/// Every running member's state at a `snapshot` step.
#[derive(Debug, Clone, Serialize)]
pub struct Recorded {
    pub label: String,
    /// By member ("m1", …): the state dump, with the fields that may
    /// legitimately differ between members or runs redacted.
    pub members: BTreeMap<String, serde_json::Value>,
}

/// Fields of a state dump that are not part of what replicas must agree on
/// in a way a script can pin down: the term of the consistent index depends
/// on election timing.
pub const REDACTED_FIELDS: [&str; 1] = ["consistent_term"];

/// Strings longer than this are shown in snapshots by length, prefix and
/// hash (large values make sector-spanning WAL writes, but thousands of
/// repeated bytes would bury a snapshot diff).
pub const LONG_STRING: usize = 120;

/// Prepares a state dump for a snapshot: redacts [`REDACTED_FIELDS`] and
/// abbreviates every string longer than [`LONG_STRING`] to its length, its
/// first bytes and its FNV-1a hash, so a changed value still shows.
pub fn snapshot_view(mut dump: serde_json::Value) -> serde_json::Value {
    if let Some(obj) = dump.as_object_mut() {
        for field in REDACTED_FIELDS {
            if obj.contains_key(field) {
                obj.insert(field.to_string(), "[redacted]".into());
            }
        }
    }
    abbreviate_long_strings(&mut dump);
    dump
}

fn abbreviate_long_strings(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::String(s) if s.len() > LONG_STRING => {
            let mut hash = crate::trace::Fnv64::default();
            hash.update(s.as_bytes());
            let prefix: String = s.chars().take(16).collect();
            *s = format!("[{} bytes: {prefix}… fnv {:016x}]", s.len(), hash.finish());
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(abbreviate_long_strings),
        serde_json::Value::Object(fields) => fields.values_mut().for_each(abbreviate_long_strings),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_view_redacts_and_abbreviates_long_strings() {
        let long = "x".repeat(3000);
        let other = format!("{}y", "x".repeat(2999));
        let view = |value: &str| {
            snapshot_view(serde_json::json!({
                "consistent_term": 7,
                "v3": {"keys": [{"key": "k1", "value": value}]},
            }))
        };
        let a = view(&long);
        assert_eq!(a["consistent_term"], "[redacted]");
        let shown = a["v3"]["keys"][0]["value"].as_str().unwrap();
        assert!(
            shown.starts_with("[3000 bytes: xxxxxxxxxxxxxxxx… fnv "),
            "{shown}"
        );
        // A different long value of the same length still shows as different.
        assert_ne!(
            view(&other)["v3"]["keys"][0]["value"],
            a["v3"]["keys"][0]["value"]
        );
        // Short values are untouched.
        assert_eq!(view("v12")["v3"]["keys"][0]["value"], "v12");
    }
}
