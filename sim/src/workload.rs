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

    /// Draws from `rng` from now on (a fork of the run, `sim localize`).
    pub fn reseed(&mut self, rng: ChaCha8Rng) {
        self.rng = rng;
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
    ///
    /// Draws the kind first, then whatever that kind's generator draws.
    pub fn next_request(&mut self, current_revision: i64) -> Request {
        let id = self.next_id;
        self.next_id += 1;
        let kind = match self.rng.random_range(0..100u32) {
            0..=44 => self.put(),
            45..=52 => self.delete_range(),
            53..=62 => request::Kind::Txn(self.txn()),
            63..=64 => self.compact(current_revision),
            65..=72 => self.v2_set(),
            // v2 writes of membership keys: etcd routes these through the
            // membership writers, with the same v2/backend split on replay.
            73..=74 => self.v2_cluster_version(),
            75..=76 => self.v2_member_attributes(),
            77..=80 => self.v2_delete_dir(),
            81..=86 => self.cluster_version_set(),
            87..=93 => self.member_attr_set(),
            _ => self.downgrade_info_set(),
        };
        Request {
            id,
            kind: Some(kind),
        }
    }

    /// One of the known cluster versions (`default` is never used: the
    /// list is not empty).
    fn version(&mut self, default: &str) -> String {
        VERSIONS
            .choose(&mut self.rng)
            .copied()
            .unwrap_or(default)
            .to_string()
    }

    /// One of the members this workload knows.
    fn member_id(&mut self) -> u64 {
        self.member_ids.choose(&mut self.rng).copied().unwrap_or(1)
    }

    fn put(&mut self) -> request::Kind {
        request::Kind::Put(PutRequest {
            key: self.key(),
            value: self.put_value(),
        })
    }

    /// A delete of one key, or (three times in ten) of every key it
    /// prefixes.
    fn delete_range(&mut self) -> request::Kind {
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

    fn compact(&mut self, current_revision: i64) -> request::Kind {
        request::Kind::Compact(CompactRequest {
            revision: self.rng.random_range(1..=current_revision.max(1)),
        })
    }

    fn v2_set(&mut self) -> request::Kind {
        request::Kind::V2Set(V2SetRequest {
            path: format!(
                "/app/d{}/k{}",
                self.rng.random_range(0..3u32),
                self.rng.random_range(0..8u32)
            ),
            value: String::from_utf8_lossy(&self.value()).into_owned(),
        })
    }

    fn v2_cluster_version(&mut self) -> request::Kind {
        request::Kind::V2Set(V2SetRequest {
            path: "/0/version".into(),
            value: self.version("3.5.0"),
        })
    }

    fn v2_member_attributes(&mut self) -> request::Kind {
        let id = self.member_id();
        request::Kind::V2Set(V2SetRequest {
            path: format!("/0/members/{id:016x}/attributes"),
            value: format!(
                r#"{{"name":"m{id}-v2-{}","clientURLs":["http://m{id}:2379"]}}"#,
                self.rng.random_range(0..100u32)
            ),
        })
    }

    fn v2_delete_dir(&mut self) -> request::Kind {
        request::Kind::V2Delete(V2DeleteRequest {
            path: format!("/app/d{}", self.rng.random_range(0..3u32)),
            recursive: true,
        })
    }

    fn cluster_version_set(&mut self) -> request::Kind {
        request::Kind::ClusterVersionSet(ClusterVersionSetRequest {
            version: self.version("3.5.0"),
        })
    }

    fn member_attr_set(&mut self) -> request::Kind {
        let member_id = self.member_id();
        request::Kind::MemberAttrSet(MemberAttrSetRequest {
            member_id,
            name: format!("m{member_id}-{}", self.rng.random_range(0..100u32)),
            client_urls: vec![format!("http://m{member_id}:2379")],
        })
    }

    fn downgrade_info_set(&mut self) -> request::Kind {
        request::Kind::DowngradeInfoSet(DowngradeInfoSetRequest {
            enabled: self.rng.random_bool(0.5),
            target_version: self.version("3.4.0"),
        })
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

/// A range read a client session asks for (`id` shares the request id
/// space: read ids start at [`READ_ID_BASE`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadOp {
    pub id: u64,
    pub range: RangeRequest,
    /// Served from any member's local state, may be stale; otherwise
    /// linearizable (raft ReadIndex).
    pub serializable: bool,
}

/// The v3 key a request writes or guards first, if any (what a session's
/// read-your-writes gets read).
pub fn key_of(req: &Request) -> Option<&[u8]> {
    match &req.kind {
        Some(request::Kind::Put(p)) => Some(&p.key),
        Some(request::Kind::DeleteRange(d)) => Some(&d.key),
        Some(request::Kind::Txn(t)) => t.compare.first().map(|c| c.key.as_slice()),
        _ => None,
    }
}

/// Read ids start here, far above any request id a run issues.
pub const READ_ID_BASE: u64 = 1 << 62;

/// The read/write choice and the reads, from their own stream, so the
/// write draws of [`Workload::next_request`] keep their order.
#[derive(Debug)]
pub struct ReadMix {
    rng: ChaCha8Rng,
    key_space: u32,
    /// Percent of operations that are reads.
    read_percent: u32,
}

impl ReadMix {
    /// Draws from `rng` from now on (a fork of the run, `sim localize`).
    pub fn reseed(&mut self, rng: ChaCha8Rng) {
        self.rng = rng;
    }

    pub fn new(rng: ChaCha8Rng, key_space: u32) -> ReadMix {
        ReadMix {
            rng,
            key_space,
            read_percent: 30,
        }
    }

    /// The member (of `nodes`) a read goes to first.
    pub fn member(&mut self, nodes: u64) -> u64 {
        self.rng.random_range(1..=nodes.max(1))
    }

    /// Whether the next operation is a read.
    pub fn next_is_read(&mut self) -> bool {
        self.rng.random_range(0..100) < self.read_percent
    }

    /// The next read: a get of one key (most; half of them of `recent`,
    /// the key the session last wrote, if any), a range of a few
    /// consecutive keys, or a get at a past (sometimes compacted, now and
    /// then future) revision; a third are serializable. `last_revision` is
    /// the highest revision clients have seen.
    pub fn next_read(&mut self, id: u64, last_revision: i64, recent: Option<&[u8]>) -> ReadOp {
        let first = self.rng.random_range(0..self.key_space);
        let serializable = self.rng.random_range(0..3) == 0;
        let mut range = RangeRequest {
            key: key_name(first).into_bytes(),
            ..RangeRequest::default()
        };
        match self.rng.random_range(0..100u32) {
            0..=29 => {}
            30..=59 => {
                if let Some(key) = recent {
                    range.key = key.to_vec();
                }
            }
            60..=84 => {
                let width = self.rng.random_range(2..=5);
                range.range_end = key_name((first + width).min(self.key_space)).into_bytes();
            }
            _ => range.revision = self.rng.random_range(1..=last_revision.max(1) + 3),
        }
        ReadOp {
            id,
            range,
            serializable,
        }
    }
}
