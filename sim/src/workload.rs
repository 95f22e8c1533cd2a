//! A seeded random client workload: every request kind the store applies,
//! in the proportions of a [`Mix`] (the fixed world's keeps the v2 store,
//! the v3 key space and the dual (v2 + backend) membership requests all
//! busy; the swarm draws one per seed).

use crate::mix::{Mix, RequestKind};
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
    /// The weight of each write kind (the read share is [`ReadMix`]'s).
    mix: Mix,
}

impl Workload {
    /// A workload over `key_space` keys that may touch the attributes of
    /// `member_ids`, in the fixed world's mix.
    pub fn new(rng: ChaCha8Rng, key_space: u32, member_ids: Vec<u64>) -> Self {
        Workload {
            rng,
            next_id: 1,
            key_space,
            member_ids,
            mix: Mix::FIXED,
        }
    }

    /// The same workload with the write weights of `mix`.
    pub fn with_mix(self, mix: Mix) -> Self {
        Workload { mix, ..self }
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
    /// Draws the kind first (one number below the sum of the mix's
    /// weights: `0..100` in the fixed mix, as before mixes were drawn),
    /// then whatever that kind's generator draws.
    pub fn next_request(&mut self, current_revision: i64) -> Request {
        let total: u32 = self.mix.weights.iter().sum();
        let kind = self
            .mix
            .kind_of_ticket(self.rng.random_range(0..total.max(1)));
        self.request_of(kind, current_revision)
    }

    /// The next request, of `kind` (a stretch of one kind, [`crate::mix::Phases`]).
    pub fn request_of(&mut self, kind: RequestKind, current_revision: i64) -> Request {
        let id = self.next_id;
        self.next_id += 1;
        let kind = match kind {
            RequestKind::Put => self.put(),
            RequestKind::DeleteRange => self.delete_range(),
            RequestKind::Txn => request::Kind::Txn(self.txn()),
            RequestKind::Compact => self.compact(current_revision),
            RequestKind::V2Set => self.v2_set(),
            // v2 writes of membership keys: etcd routes these through the
            // membership writers, with the same v2/backend split on replay.
            RequestKind::V2Version => self.v2_cluster_version(),
            RequestKind::V2MemberAttributes => self.v2_member_attributes(),
            RequestKind::V2DeleteDir => self.v2_delete_dir(),
            RequestKind::ClusterVersionSet => self.cluster_version_set(),
            RequestKind::MemberAttrSet => self.member_attr_set(),
            RequestKind::DowngradeInfoSet => self.downgrade_info_set(),
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

    /// Reads `read_percent` of the operations (the fixed mix: 30).
    pub fn new(rng: ChaCha8Rng, key_space: u32, read_percent: u32) -> ReadMix {
        ReadMix {
            rng,
            key_space,
            read_percent,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::{STREAM_WORKLOAD, stream};

    /// The share of compactions and txns among 2000 requests of `mix`.
    fn shares(mix: Mix) -> (usize, usize) {
        let mut w = Workload::new(stream(8, STREAM_WORKLOAD), 24, vec![1, 2, 3]).with_mix(mix);
        let kinds: Vec<request::Kind> =
            (0..2000).filter_map(|_| w.next_request(100).kind).collect();
        let compacts = kinds
            .iter()
            .filter(|k| matches!(k, request::Kind::Compact(_)))
            .count();
        let txns = kinds
            .iter()
            .filter(|k| matches!(k, request::Kind::Txn(_)))
            .count();
        (compacts, txns)
    }

    #[test]
    fn a_drawn_mix_changes_the_request_kinds() {
        let (compacts, txns) = shares(Mix::FIXED);
        assert!(
            (20..70).contains(&compacts),
            "{compacts} compactions in the fixed mix"
        );
        assert!((140..260).contains(&txns), "{txns} txns in the fixed mix");
        let storm: Mix = "compact:200,txn:0".parse().unwrap_or_default();
        let (compacts, txns) = shares(storm);
        assert!(
            compacts > 1000,
            "{compacts} compactions in a compaction-heavy mix"
        );
        assert_eq!(txns, 0, "a kind of weight 0 is never issued");
    }
}
