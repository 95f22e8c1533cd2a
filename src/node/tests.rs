//! A deterministic in-process cluster (no simulator): nodes on in-memory
//! disks exchanging messages through a queue. Checks that the Ready loop,
//! restarts and leader snapshots keep every replica identical.

use super::*;
use crate::backend::BackendOptions;
use crate::crash_point::NoCrash;
use crate::disk::MemDisk;
use crate::proto::{PutRequest, request};
use crate::verify::VerifyMode;
use crate::wal::WalOptions;
use std::collections::{BTreeMap, BTreeSet, VecDeque};

fn store_config() -> StoreConfig {
    StoreConfig {
        snapshot_count: 20,
        backend: BackendOptions {
            batch_limit: 7,
            batch_interval_ms: 100,
            ..BackendOptions::default()
        },
        wal: WalOptions {
            segment_size: 4096,
            ..WalOptions::default()
        },
        verify: VerifyMode::All,
        bugs: crate::bugs::KnownBugs::NONE,
    }
}

fn node_config(id: u64) -> NodeConfig {
    NodeConfig {
        catch_up_entries: 5,
        ..NodeConfig::new(id, store_config())
    }
}

fn info(id: u64) -> MemberInfo {
    MemberInfo {
        id,
        name: format!("m{id}"),
        peer_urls: vec![format!("http://m{id}:2380")],
        client_urls: Vec::new(),
        is_learner: false,
    }
}

struct Cluster {
    disks: BTreeMap<u64, Arc<MemDisk>>,
    nodes: BTreeMap<u64, Node>,
    queue: VecDeque<Message>,
    isolated: BTreeSet<u64>,
    now_ms: u64,
}

impl Cluster {
    fn new(n: u64) -> Cluster {
        let members: Vec<_> = (1..=n).map(info).collect();
        let mut c = Cluster {
            disks: BTreeMap::new(),
            nodes: BTreeMap::new(),
            queue: VecDeque::new(),
            isolated: BTreeSet::new(),
            now_ms: 0,
        };
        for id in 1..=n {
            let disk = Arc::new(MemDisk::new());
            let meta = WalMetadata {
                member_id: id,
                cluster_id: 1,
            };
            let node = Node::bootstrap(
                disk.clone(),
                node_config(id),
                Arc::new(NoCrash),
                &meta,
                &members,
                0,
            )
            .unwrap();
            c.disks.insert(id, disk);
            c.nodes.insert(id, node);
        }
        c
    }

    /// Processes every node's Ready and delivers queued messages until the
    /// cluster is quiet.
    fn settle(&mut self) {
        for _ in 0..10_000 {
            for node in self.nodes.values_mut() {
                let out = node.handle_ready(self.now_ms).unwrap();
                self.queue.extend(out.messages);
            }
            let Some(msg) = self.queue.pop_front() else {
                return;
            };
            if self.isolated.contains(&msg.to) || self.isolated.contains(&msg.from) {
                continue;
            }
            if let Some(node) = self.nodes.get_mut(&msg.to) {
                node.step(msg);
            }
        }
        panic!("cluster did not settle");
    }

    fn tick(&mut self, n: usize) {
        for _ in 0..n {
            self.now_ms += 10;
            for node in self.nodes.values_mut() {
                node.tick();
                node.commit_timer(self.now_ms).unwrap();
            }
            self.settle();
        }
    }

    fn leader(&self) -> u64 {
        self.nodes
            .values()
            .find(|n| n.is_leader())
            .map(Node::id)
            .expect("a leader")
    }

    fn put(&mut self, i: u64) {
        let leader = self.leader();
        let req = Request {
            id: i,
            kind: Some(request::Kind::Put(PutRequest {
                key: format!("k{}", i % 13).into_bytes(),
                value: format!("v{i}").into_bytes(),
            })),
        };
        self.nodes.get_mut(&leader).unwrap().propose(&req).unwrap();
        self.settle();
    }

    fn restart(&mut self, id: u64) {
        self.nodes.remove(&id);
        let disk = self.disks[&id].clone();
        disk.crash_power_loss();
        let node = Node::open(disk, node_config(id), Arc::new(NoCrash), self.now_ms).unwrap();
        self.nodes.insert(id, node);
    }

    /// Asserts every member holds the same state and returns its v3 revision.
    fn assert_converged(&self) -> i64 {
        let dumps: Vec<_> = self
            .nodes
            .values()
            .map(|n| (n.id(), n.member().state_dump().unwrap()))
            .collect();
        let (first_id, first) = &dumps[0];
        for (id, dump) in &dumps[1..] {
            assert_eq!(dump, first, "member {id} differs from member {first_id}");
        }
        first.v3.revision
    }
}

fn elect(c: &mut Cluster) {
    c.nodes.get_mut(&1).unwrap().campaign().unwrap();
    c.settle();
    c.tick(3);
    assert_eq!(c.leader(), 1);
}

#[test]
fn three_members_replicate_and_converge() {
    let mut c = Cluster::new(3);
    elect(&mut c);
    for i in 0..60 {
        c.put(i);
    }
    c.tick(20);
    assert_eq!(c.assert_converged(), 61, "every put made one revision");
    let applied = c.nodes[&1].member().applied_index();
    assert!(applied >= 63, "applied {applied}");
    assert!(
        c.nodes[&1].member().snapshot_index() > 0,
        "snapshots were taken"
    );
}

#[test]
fn a_follower_restarted_after_power_loss_rejoins_and_converges() {
    let mut c = Cluster::new(3);
    elect(&mut c);
    for i in 0..30 {
        c.put(i);
        if i % 11 == 5 {
            c.restart(3);
        }
    }
    c.tick(30);
    assert_eq!(c.assert_converged(), 31);
    assert!(
        c.nodes[&3].recovered().replayed > 0,
        "the restart replayed the WAL"
    );
}

#[test]
fn a_lagging_follower_catches_up_from_a_leader_snapshot() {
    let mut c = Cluster::new(3);
    elect(&mut c);
    c.isolated.insert(3);
    for i in 0..80 {
        c.put(i);
    }
    let leader_first = c.nodes[&1].log.first_index().unwrap();
    assert!(
        leader_first > 2,
        "the leader compacted its log to {leader_first}"
    );
    c.isolated.clear();
    c.tick(40);
    assert_eq!(c.assert_converged(), 81);
    assert!(c.nodes[&3].member().snapshot_index() >= leader_first - 1);
}
