//! Txn guards: `target(key) result (number | value)`, as in proto.rs. A
//! missing key has version, create and mod revision 0 and never matches a
//! value compare.

use super::MvccError;
use crate::proto::{Compare, CompareResult, CompareTarget, KeyValue};
use std::cmp::Ordering;

/// Checks the compare's enums and key (done for every compare before any
/// is evaluated, so an invalid txn changes nothing).
pub(crate) fn validate(c: &Compare) -> Result<(CompareTarget, CompareResult), MvccError> {
    let invalid = |reason: String| MvccError::InvalidRequest { reason };
    if c.key.is_empty() {
        return Err(invalid("compare without a key".to_string()));
    }
    let target = CompareTarget::try_from(c.target)
        .map_err(|_| invalid(format!("unknown compare target {}", c.target)))?;
    let result = CompareResult::try_from(c.result)
        .map_err(|_| invalid(format!("unknown compare result {}", c.result)))?;
    Ok((target, result))
}

/// Whether the compare holds for the key's current value (`None`: missing).
pub(crate) fn holds(
    c: &Compare,
    target: CompareTarget,
    result: CompareResult,
    kv: Option<&KeyValue>,
) -> bool {
    let number = |f: fn(&KeyValue) -> i64| kv.map_or(0, f).cmp(&c.number);
    let ord = match target {
        CompareTarget::Value => match kv {
            Some(kv) => kv.value.as_slice().cmp(c.value.as_slice()),
            None => return false,
        },
        CompareTarget::Version => number(|kv| kv.version),
        CompareTarget::Create => number(|kv| kv.create_revision),
        CompareTarget::Mod => number(|kv| kv.mod_revision),
    };
    match result {
        CompareResult::Equal => ord == Ordering::Equal,
        CompareResult::Greater => ord == Ordering::Greater,
        CompareResult::Less => ord == Ordering::Less,
        CompareResult::NotEqual => ord != Ordering::Equal,
    }
}
