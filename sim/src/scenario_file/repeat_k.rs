//! The repeat variable `k` in any numeric field of a repeated step: a
//! repeat whose steps use `"k"` (or `"k * 100"`, `"k + 1"`,
//! `"current - k"`, …) outside `after_ops` / `after_disk_ops` is unrolled
//! before the steps are typed, one copy per iteration with `k` replaced by
//! its number. (`after_ops` / `after_disk_ops` take `"k"` as it is, so a
//! repeat that uses `k` only there stays a repeat.)

use super::{MAX_REPEAT, MAX_STEPS};
use toml::Value;

/// Fields that hold text, where `"k"` stays text.
const TEXT_FIELDS: &[&str] = &[
    "action",
    "key",
    "value",
    "range_end",
    "then_value",
    "else_value",
    "prefix",
    "path",
    "name",
    "label",
    "stat",
    "at",
    "crash_at",
    "mode",
    "on",
    "file",
    "target_version",
];

/// Fields that take `"k"` without unrolling.
const COUNT_FIELDS: &[&str] = &["after_ops", "after_disk_ops"];

/// The scenario as a TOML value with every repeat that needs it unrolled,
/// or `None` if none does (or the text is not TOML: the typed parse then
/// says where).
pub(super) fn unrolled(text: &str) -> Result<Option<Value>, String> {
    let Ok(mut root) = text.parse::<toml::Table>() else {
        return Ok(None);
    };
    let Some(Value::Array(steps)) = root.remove("step") else {
        return Ok(None);
    };
    let mut changed = false;
    let steps = unroll_steps(steps, &mut changed)?;
    root.insert("step".into(), Value::Array(steps));
    Ok(changed.then_some(Value::Table(root)))
}

/// `steps` with each repeat that uses `k` in a numeric field unrolled
/// (inner repeats first: an inner `k` is the inner repeat's).
fn unroll_steps(steps: Vec<Value>, changed: &mut bool) -> Result<Vec<Value>, String> {
    let mut out = Vec::with_capacity(steps.len());
    for mut step in steps {
        let Some(times) = repeat_times(&step) else {
            out.push(step);
            continue;
        };
        let taken = step.as_table_mut().and_then(|t| t.remove("steps"));
        let body = match taken {
            Some(Value::Array(body)) => unroll_steps(body, changed)?,
            _ => Vec::new(),
        };
        if !body.iter().any(uses_k) {
            if let Some(t) = step.as_table_mut() {
                t.insert("steps".into(), Value::Array(body));
            }
            out.push(step);
            continue;
        }
        if times > u64::from(MAX_REPEAT)
            || times.saturating_mul(body.len() as u64) > MAX_STEPS as u64
        {
            return Err(format!(
                "a repeat of {times} × {} steps that uses k: at most {MAX_REPEAT} times and {MAX_STEPS} steps",
                body.len()
            ));
        }
        *changed = true;
        for k in 1..=times {
            for inner in &body {
                out.push(substitute(inner, k as i64)?);
            }
        }
        if out.len() > MAX_STEPS {
            return Err(format!(
                "more than {MAX_STEPS} steps after unrolling repeats"
            ));
        }
    }
    Ok(out)
}

/// A repeat step's `times` (`None` if `step` is not a repeat).
fn repeat_times(step: &Value) -> Option<u64> {
    if step.get("action").and_then(Value::as_str) != Some("repeat") {
        return None;
    }
    Some(
        step.get("times")
            .and_then(Value::as_integer)
            .and_then(|t| u64::try_from(t).ok())
            .unwrap_or(0),
    )
}

/// The numeric fields of a step (not a repeat: its fields are its own).
fn numeric_fields(step: &Value) -> impl Iterator<Item = (&String, &Value)> {
    let is_repeat = repeat_times(step).is_some();
    // `version` is text in cluster_version, a number in txn.
    let text_version = step.get("action").and_then(Value::as_str) == Some("cluster_version");
    step.as_table()
        .into_iter()
        .flatten()
        .filter(move |(name, _)| {
            !is_repeat
                && !TEXT_FIELDS.contains(&name.as_str())
                && (!text_version || name.as_str() != "version")
        })
}

/// Whether a step uses `k` where only unrolling can put a number.
fn uses_k(step: &Value) -> bool {
    numeric_fields(step).any(|(name, value)| {
        value.as_str().is_some_and(|s| {
            k_expression(s, 1).is_some() && !(COUNT_FIELDS.contains(&name.as_str()) && s == "k")
        })
    })
}

/// A copy of `step` with each `k` expression in a numeric field evaluated.
fn substitute(step: &Value, k: i64) -> Result<Value, String> {
    let mut copy = step.clone();
    let names: Vec<String> = numeric_fields(step)
        .filter(|(_, v)| v.as_str().is_some_and(|s| k_expression(s, k).is_some()))
        .map(|(n, _)| n.clone())
        .collect();
    for name in names {
        let Some(slot) = copy.get_mut(&name) else {
            continue;
        };
        let text = slot.as_str().unwrap_or_default().to_string();
        *slot = k_expression(&text, k)
            .ok_or_else(|| format!("{name} = {text:?}: not a k expression"))??;
    }
    Ok(copy)
}

/// `text` with `k` evaluated: an integer for `k`, `k + 1`, `2 * k`, …;
/// the string `"current - N"` for `"current - <expr>"`. `None` if `text`
/// is not an expression of `k`; an error if it overflows.
fn k_expression(text: &str, k: i64) -> Option<Result<Value, String>> {
    let trimmed = text.trim();
    if let Some(rest) = trimmed.strip_prefix("current") {
        let expr = rest.trim().strip_prefix('-')?;
        return Some(eval(expr, k)?.map(|n| Value::String(format!("current - {n}"))));
    }
    Some(eval(trimmed, k)?.map(Value::Integer))
}

/// Sums of products of integers and `k` (`None` unless `k` appears and the
/// text is nothing else).
fn eval(text: &str, k: i64) -> Option<Result<i64, String>> {
    if !text.contains('k') {
        return None;
    }
    let overflow = || format!("{text:?} overflows with k = {k}");
    let mut sum: i64 = 0;
    for term in split_terms(text)? {
        let mut product: i64 = 1;
        for factor in term.1.split('*') {
            let factor = match factor.trim() {
                "k" => k,
                n => n.parse::<i64>().ok()?,
            };
            let Some(p) = product.checked_mul(factor) else {
                return Some(Err(overflow()));
            };
            product = p;
        }
        let signed = if term.0 {
            product.checked_neg()
        } else {
            Some(product)
        };
        let Some(s) = signed.and_then(|p| sum.checked_add(p)) else {
            return Some(Err(overflow()));
        };
        sum = s;
    }
    Some(Ok(sum))
}

/// The `+`/`-` separated terms of `text`, each with whether it is
/// subtracted.
fn split_terms(text: &str) -> Option<Vec<(bool, &str)>> {
    let mut terms = Vec::new();
    let mut start = 0;
    let mut negative = false;
    for (i, c) in text.char_indices() {
        if c == '+' || c == '-' {
            terms.push((negative, text.get(start..i)?));
            negative = c == '-';
            start = i + 1;
        }
    }
    terms.push((negative, text.get(start..)?));
    // An empty term (a leading, trailing or doubled sign) is malformed.
    if terms.iter().any(|(_, t)| t.trim().is_empty()) {
        return None;
    }
    Some(terms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn k_expressions_evaluate_and_other_text_is_left_alone() {
        let n = |s: &str, k| k_expression(s, k).map(|r| r.unwrap());
        assert_eq!(n("k", 3), Some(Value::Integer(3)));
        assert_eq!(n("k * 100", 3), Some(Value::Integer(300)));
        assert_eq!(n("2*k + 1", 3), Some(Value::Integer(7)));
        assert_eq!(n("k - 1", 1), Some(Value::Integer(0)));
        assert_eq!(
            n("current - k", 2),
            Some(Value::String("current - 2".into()))
        );
        assert_eq!(n("leader", 2), None);
        assert_eq!(n("12", 2), None);
        assert_eq!(n("k +", 2), None);
        assert_eq!(n("kk", 2), None);
        assert!(k_expression("k * 9223372036854775807", 2).unwrap().is_err());
    }
}
