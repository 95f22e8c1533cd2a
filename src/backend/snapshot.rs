//! The backend snapshot blob: every committed row of every table, as one
//! prost message wrapped with a CRC-32C, so a blob damaged in transit or on
//! disk is rejected before it replaces anything.

use super::{BackendError, Table, TableRow};
use prost::Message;

#[derive(Clone, PartialEq, Eq, prost::Message)]
struct Row {
    #[prost(uint32, tag = "1")]
    table: u32,
    #[prost(bytes = "vec", tag = "2")]
    key: Vec<u8>,
    #[prost(bytes = "vec", tag = "3")]
    value: Vec<u8>,
}

#[derive(Clone, PartialEq, Eq, prost::Message)]
struct Body {
    #[prost(message, repeated, tag = "1")]
    rows: Vec<Row>,
}

#[derive(Clone, PartialEq, Eq, prost::Message)]
struct Envelope {
    #[prost(bytes = "vec", tag = "1")]
    body: Vec<u8>,
    #[prost(fixed32, tag = "2")]
    crc: u32,
}

/// Encodes rows as `(table, key, value)`.
pub(crate) fn encode(rows: Vec<TableRow>) -> Vec<u8> {
    let body = Body {
        rows: rows
            .into_iter()
            .map(|(table, key, value)| Row {
                table: table.id(),
                key,
                value,
            })
            .collect(),
    }
    .encode_to_vec();
    let crc = crc32c::crc32c(&body);
    Envelope { body, crc }.encode_to_vec()
}

/// Decodes and checks a blob made by [`encode`].
pub(crate) fn decode(bytes: &[u8]) -> Result<Vec<TableRow>, BackendError> {
    let corrupt = |reason: String| BackendError::CorruptSnapshot { reason };
    let env = Envelope::decode(bytes).map_err(|e| corrupt(format!("envelope: {e}")))?;
    let actual = crc32c::crc32c(&env.body);
    if actual != env.crc {
        return Err(corrupt(format!(
            "checksum mismatch: stored {:#010x}, computed {actual:#010x}",
            env.crc
        )));
    }
    let body = Body::decode(env.body.as_slice()).map_err(|e| corrupt(format!("body: {e}")))?;
    body.rows
        .into_iter()
        .enumerate()
        .map(|(i, row)| {
            let table = Table::from_id(row.table)
                .ok_or_else(|| corrupt(format!("row {i}: unknown table id {}", row.table)))?;
            Ok((table, row.key, row.value))
        })
        .collect()
}
