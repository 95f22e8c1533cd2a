//! The request of a long-form `txn` step: several compares, several
//! operations per branch.

use crate::scenario_file::{TxnCmp, TxnCompare, TxnOp, TxnTarget, TxnValue};
use replica::proto::{
    Compare, CompareResult, CompareTarget, DeleteRangeRequest, PutRequest, RangeRequest, RequestOp,
    TxnRequest, request, request_op,
};

/// If every compare holds, run `then_ops`, else `else_ops`.
pub(super) fn long_txn(
    compares: &[TxnCompare],
    then_ops: &[TxnOp],
    else_ops: &[TxnOp],
) -> request::Kind {
    request::Kind::Txn(TxnRequest {
        compare: compares.iter().map(compare).collect(),
        success: then_ops.iter().map(operation).collect(),
        failure: else_ops.iter().map(operation).collect(),
    })
}

fn compare(c: &TxnCompare) -> Compare {
    let target = match c.target {
        TxnTarget::Version => CompareTarget::Version,
        TxnTarget::Create => CompareTarget::Create,
        TxnTarget::Mod => CompareTarget::Mod,
        TxnTarget::Value => CompareTarget::Value,
    };
    let result = match c.op {
        TxnCmp::Equal => CompareResult::Equal,
        TxnCmp::NotEqual => CompareResult::NotEqual,
        TxnCmp::Less => CompareResult::Less,
        TxnCmp::Greater => CompareResult::Greater,
    };
    let (number, value) = match &c.value {
        TxnValue::Number(n) => (*n, Vec::new()),
        TxnValue::Text(t) => (0, t.clone().into_bytes()),
    };
    Compare {
        key: c.key.clone().into_bytes(),
        target: target as i32,
        result: result as i32,
        number,
        value,
    }
}

/// A validated operation: a put, a delete or a get.
fn operation(op: &TxnOp) -> RequestOp {
    let bytes = |s: &Option<String>| s.clone().unwrap_or_default().into_bytes();
    let op = match (&op.put, &op.delete, &op.get) {
        (Some(key), _, _) => request_op::Op::Put(PutRequest {
            key: key.clone().into_bytes(),
            value: bytes(&op.value),
        }),
        (None, Some(key), _) => request_op::Op::DeleteRange(DeleteRangeRequest {
            key: key.clone().into_bytes(),
            range_end: bytes(&op.range_end),
        }),
        (None, None, key) => request_op::Op::Range(RangeRequest {
            key: bytes(key),
            range_end: bytes(&op.range_end),
            revision: 0,
            limit: 0,
        }),
    };
    RequestOp { op: Some(op) }
}
