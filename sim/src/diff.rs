//! A readable field-by-field difference between two serialisable states.

use serde::Serialize;
use serde_json::Value;

/// One differing field: its path and both values (`None` = absent).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldDiff {
    pub path: String,
    pub left: Option<String>,
    pub right: Option<String>,
}

impl std::fmt::Display for FieldDiff {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let show = |v: &Option<String>| v.clone().unwrap_or_else(|| "<absent>".into());
        write!(
            f,
            "{}: {} != {}",
            self.path,
            show(&self.left),
            show(&self.right)
        )
    }
}

/// Every leaf where `left` and `right` differ, in a stable order.
pub fn diff<T: Serialize>(left: &T, right: &T) -> Vec<FieldDiff> {
    let (l, r) = match (serde_json::to_value(left), serde_json::to_value(right)) {
        (Ok(l), Ok(r)) => (l, r),
        (l, r) => {
            return vec![FieldDiff {
                path: "<unserialisable>".into(),
                left: l.err().map(|e| e.to_string()),
                right: r.err().map(|e| e.to_string()),
            }];
        }
    };
    let mut out = Vec::new();
    walk("", Some(&l), Some(&r), &mut out);
    out
}

fn walk(path: &str, l: Option<&Value>, r: Option<&Value>, out: &mut Vec<FieldDiff>) {
    match (l, r) {
        (Some(Value::Object(a)), Some(Value::Object(b))) => {
            let keys: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
            for k in keys {
                walk(&format!("{path}.{k}"), a.get(k), b.get(k), out);
            }
        }
        (Some(Value::Array(a)), Some(Value::Array(b))) => {
            for i in 0..a.len().max(b.len()) {
                walk(&format!("{path}[{i}]"), a.get(i), b.get(i), out);
            }
        }
        (a, b) if a == b => {}
        (a, b) => out.push(FieldDiff {
            path: if path.is_empty() {
                ".".into()
            } else {
                path.to_string()
            },
            left: a.map(Value::to_string),
            right: b.map(Value::to_string),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reports_changed_added_and_removed_leaves() {
        let a = json!({"v2": {"index": 5, "keys": ["a", "b"]}, "x": 1});
        let b = json!({"v2": {"index": 6, "keys": ["a"]}, "y": 1});
        let d = diff(&a, &b);
        let paths: Vec<&str> = d.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(paths, vec![".v2.index", ".v2.keys[1]", ".x", ".y"]);
        assert_eq!(d[0].to_string(), ".v2.index: 5 != 6");
        assert_eq!(d[1].right, None);
    }

    #[test]
    fn equal_values_have_no_diff() {
        let a = json!({"a": [1, {"b": null}]});
        assert!(diff(&a, &a.clone()).is_empty());
    }
}
