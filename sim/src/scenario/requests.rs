//! The client requests a scenario's request steps stand for: one builder per
//! step kind, pure, so what a step sends can be read (and tested) apart from
//! how the script waits for it.

use crate::scenario_file::{Revision, Step, Target};
use replica::proto::{
    ClusterVersionSetRequest, CompactRequest, Compare, CompareResult, CompareTarget,
    DeleteRangeRequest, DowngradeInfoSetRequest, MemberAttrSetRequest, PutRequest, RangeRequest,
    RequestOp, TxnRequest, V2DeleteRequest, V2SetRequest, request, request_op,
};

/// The requests `step` sends, in order, each after the previous one is
/// acknowledged; `None` if it is not a client request step.
pub(super) fn client_requests(step: &Step) -> Option<Vec<request::Kind>> {
    let one = |kind| Some(vec![kind]);
    match step {
        Step::Put { key, value } => one(put(key, value.as_bytes())),
        Step::Puts {
            count,
            prefix,
            value_bytes,
        } => Some(numbered_puts(*count, prefix, *value_bytes)),
        Step::Delete { key, range_end } => one(request::Kind::DeleteRange(DeleteRangeRequest {
            key: key.clone().into_bytes(),
            range_end: range_end.clone().into_bytes(),
        })),
        Step::Txn {
            key,
            version: Some(version),
            then_value: Some(then_value),
            else_value: Some(else_value),
            ..
        } => one(version_txn(key, *version, then_value, else_value)),
        Step::Txn {
            compares,
            then_ops,
            else_ops,
            ..
        } => one(super::txn::long_txn(compares, then_ops, else_ops)),
        Step::Compact {
            revision: Revision::Absolute(revision),
        } => one(compact(*revision)),
        Step::V2Set { path, value } => one(request::Kind::V2Set(V2SetRequest {
            path: path.clone(),
            value: value.clone(),
        })),
        Step::V2Delete { path, recursive } => one(request::Kind::V2Delete(V2DeleteRequest {
            path: path.clone(),
            recursive: *recursive,
        })),
        Step::ClusterVersion { version } => {
            one(request::Kind::ClusterVersionSet(ClusterVersionSetRequest {
                version: version.clone(),
            }))
        }
        Step::MemberAttrs { member, name } => {
            one(request::Kind::MemberAttrSet(MemberAttrSetRequest {
                member_id: *member,
                name: name.clone(),
                client_urls: vec![format!("http://10.0.0.{member}:2379")],
            }))
        }
        Step::Downgrade {
            enabled,
            target_version,
        } => one(request::Kind::DowngradeInfoSet(DowngradeInfoSetRequest {
            enabled: *enabled,
            target_version: target_version.clone(),
        })),
        _ => None,
    }
}

pub(super) fn compact(revision: i64) -> request::Kind {
    request::Kind::Compact(CompactRequest { revision })
}

/// The read a `range` step stands for: the range, whether it is
/// serializable, and the member it goes to first.
pub(super) struct StepRead {
    pub range: RangeRequest,
    pub serializable: bool,
    pub member: Option<Target>,
}

/// The read `step` sends; `None` if it is not a read step.
pub(super) fn client_read(step: &Step) -> Option<StepRead> {
    let Step::Range {
        key,
        range_end,
        revision,
        serializable,
        member,
    } = step
    else {
        return None;
    };
    Some(StepRead {
        range: RangeRequest {
            key: key.clone().into_bytes(),
            range_end: range_end.clone().into_bytes(),
            revision: *revision,
            limit: 0,
        },
        serializable: *serializable,
        member: member.clone(),
    })
}

fn put(key: &str, value: &[u8]) -> request::Kind {
    request::Kind::Put(PutRequest {
        key: key.as_bytes().to_vec(),
        value: value.to_vec(),
    })
}

/// `count` puts of `{prefix}000`, `{prefix}001`, …: values `v0`, `v1`, …
/// padded with `x` to `value_bytes`.
fn numbered_puts(count: u32, prefix: &str, value_bytes: usize) -> Vec<request::Kind> {
    (0..count)
        .map(|i| {
            let mut value = format!("v{i}");
            if value.len() < value_bytes {
                value.push_str(&"x".repeat(value_bytes - value.len()));
            }
            put(&format!("{prefix}{i:03}"), value.as_bytes())
        })
        .collect()
}

/// If `key`'s version equals `version`, put `then_value`, else `else_value`.
fn version_txn(key: &str, version: i64, then_value: &str, else_value: &str) -> request::Kind {
    let put_op = |v: &str| RequestOp {
        op: Some(request_op::Op::Put(PutRequest {
            key: key.as_bytes().to_vec(),
            value: v.as_bytes().to_vec(),
        })),
    };
    request::Kind::Txn(TxnRequest {
        compare: vec![Compare {
            key: key.as_bytes().to_vec(),
            target: CompareTarget::Version as i32,
            result: CompareResult::Equal as i32,
            number: version,
            value: Vec::new(),
        }],
        success: vec![put_op(then_value)],
        failure: vec![put_op(else_value)],
    })
}
