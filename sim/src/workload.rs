//! A seeded random client workload: every request kind the store applies,
//! in proportions that keep the v2 store, the v3 key space and the dual
//! (v2 + backend) membership requests all busy.

use rand::Rng;
use rand::seq::IndexedRandom;
use rand_chacha::ChaCha8Rng;
use replica::proto::{
    ClusterVersionSetRequest, CompactRequest, Compare, CompareResult, CompareTarget,
    DeleteRangeRequest, DowngradeInfoSetRequest, MemberAttrSetRequest, PutRequest, RangeRequest,
    Request, RequestOp, TxnRequest, V2DeleteRequest, V2SetRequest, request, request_op,
};

const VERSIONS: [&str; 3] = ["3.4.0", "3.5.0", "3.6.0"];

fn key_name(i: u32) -> String {
    format!("k{i:03}")
}

/// Generates requests from its own RNG stream.
#[derive(Debug)]
pub struct Workload {
    rng: ChaCha8Rng,
    next_id: u64,
    key_space: u32,
    member_ids: Vec<u64>,
}

impl Workload {
    /// A workload over `key_space` keys that may touch the attributes of
    /// `member_ids`.
    pub fn new(rng: ChaCha8Rng, key_space: u32, member_ids: Vec<u64>) -> Self {
        Workload {
            rng,
            next_id: 1,
            key_space,
            member_ids,
        }
    }

    fn key(&mut self) -> Vec<u8> {
        key_name(self.rng.random_range(0..self.key_space)).into_bytes()
    }

    /// Every key this workload may touch.
    pub fn key_names(&self) -> Vec<String> {
        (0..self.key_space).map(key_name).collect()
    }

    fn value(&mut self) -> Vec<u8> {
        format!("v{}", self.rng.random_range(0..1_000_000u32)).into_bytes()
    }

    /// A put's value: now and then one of several sectors, so that WAL
    /// writes span sector boundaries and a power loss can tear them (a torn
    /// WAL tail needs a write longer than one sector).
    fn put_value(&mut self) -> Vec<u8> {
        let mut value = self.value();
        if self.rng.random_bool(0.2) {
            let len = self.rng.random_range(600..=3_000);
            let fill = b'a' + (value.len() % 26) as u8;
            value.resize(len, fill);
        }
        value
    }

    /// The next request. `current_revision` bounds compaction targets.
    pub fn next_request(&mut self, current_revision: i64) -> Request {
        let id = self.next_id;
        self.next_id += 1;
        let roll = self.rng.random_range(0..100u32);
        let kind = match roll {
            0..=44 => request::Kind::Put(PutRequest {
                key: self.key(),
                value: self.put_value(),
            }),
            45..=52 => {
                let key = self.key();
                let range_end = if self.rng.random_bool(0.3) {
                    let mut end = key.clone();
                    end.push(b'~');
                    end
                } else {
                    Vec::new()
                };
                request::Kind::DeleteRange(DeleteRangeRequest { key, range_end })
            }
            53..=62 => request::Kind::Txn(self.txn()),
            63..=64 => request::Kind::Compact(CompactRequest {
                revision: self.rng.random_range(1..=current_revision.max(1)),
            }),
            65..=72 => request::Kind::V2Set(V2SetRequest {
                path: format!(
                    "/app/d{}/k{}",
                    self.rng.random_range(0..3u32),
                    self.rng.random_range(0..8u32)
                ),
                value: String::from_utf8_lossy(&self.value()).into_owned(),
            }),
            // v2 writes of membership keys: etcd routes these through the
            // membership writers, with the same v2/backend split on replay.
            73..=74 => request::Kind::V2Set(V2SetRequest {
                path: "/0/version".into(),
                value: VERSIONS
                    .choose(&mut self.rng)
                    .copied()
                    .unwrap_or("3.5.0")
                    .to_string(),
            }),
            75..=76 => {
                let id = self.member_ids.choose(&mut self.rng).copied().unwrap_or(1);
                request::Kind::V2Set(V2SetRequest {
                    path: format!("/0/members/{id:016x}/attributes"),
                    value: format!(
                        r#"{{"name":"m{id}-v2-{}","clientURLs":["http://m{id}:2379"]}}"#,
                        self.rng.random_range(0..100u32)
                    ),
                })
            }
            77..=80 => request::Kind::V2Delete(V2DeleteRequest {
                path: format!("/app/d{}", self.rng.random_range(0..3u32)),
                recursive: true,
            }),
            81..=86 => request::Kind::ClusterVersionSet(ClusterVersionSetRequest {
                version: VERSIONS
                    .choose(&mut self.rng)
                    .copied()
                    .unwrap_or("3.5.0")
                    .to_string(),
            }),
            87..=93 => {
                let member_id = self.member_ids.choose(&mut self.rng).copied().unwrap_or(1);
                request::Kind::MemberAttrSet(MemberAttrSetRequest {
                    member_id,
                    name: format!("m{member_id}-{}", self.rng.random_range(0..100u32)),
                    client_urls: vec![format!("http://m{member_id}:2379")],
                })
            }
            _ => request::Kind::DowngradeInfoSet(DowngradeInfoSetRequest {
                enabled: self.rng.random_bool(0.5),
                target_version: VERSIONS
                    .choose(&mut self.rng)
                    .copied()
                    .unwrap_or("3.4.0")
                    .to_string(),
            }),
        };
        Request {
            id,
            kind: Some(kind),
        }
    }

    fn txn(&mut self) -> TxnRequest {
        let key = self.key();
        let target = [
            CompareTarget::Version,
            CompareTarget::Create,
            CompareTarget::Mod,
            CompareTarget::Value,
        ]
        .choose(&mut self.rng)
        .copied()
        .unwrap_or(CompareTarget::Version);
        let result = [
            CompareResult::Equal,
            CompareResult::Greater,
            CompareResult::Less,
            CompareResult::NotEqual,
        ]
        .choose(&mut self.rng)
        .copied()
        .unwrap_or(CompareResult::Equal);
        let compare = Compare {
            key: key.clone(),
            target: target as i32,
            result: result as i32,
            number: self.rng.random_range(0..4),
            value: self.value(),
        };
        let put = RequestOp {
            op: Some(request_op::Op::Put(PutRequest {
                key: key.clone(),
                value: self.value(),
            })),
        };
        let other = self.key();
        let delete = RequestOp {
            op: Some(request_op::Op::DeleteRange(DeleteRangeRequest {
                key: other,
                range_end: Vec::new(),
            })),
        };
        let range = RequestOp {
            op: Some(request_op::Op::Range(RangeRequest {
                key,
                ..RangeRequest::default()
            })),
        };
        TxnRequest {
            compare: vec![compare],
            success: vec![put, range.clone()],
            failure: vec![delete, range],
        }
    }
}
