//! What a seed cannot avoid: the cost of the components every run is made
//! of, measured in this process, so `sim bench` can print a run's cost next
//! to the floor those components imply (the ratio is the figure to watch;
//! absolute times depend on the machine).
//!
//! - raft replication of one entry among three raft-rs nodes (in-memory log,
//!   messages handed over in memory, as the simulated network does);
//! - one backend commit of a typical batch (10 puts and the meta row) on a
//!   plain in-memory disk and on the simulated disk;
//! - one reopen of a backend of about 200 KiB;
//! - one full state dump of a member (restart equivalence compares them).
//!
//! Wall-clock time is read here on purpose: this module measures, it is
//! never part of a run.

use crate::fault::SimDisk;
use crate::stats::RunStats;
use raft::prelude::{ConfState, Entry as RaftEntry, Message};
use raft::storage::MemStorage;
use raft::{Config, RawNode};
use replica::backend::{Backend, BackendOptions, Table};
use replica::crash_point::NoCrash;
use replica::disk::{Disk, MemDisk};
use replica::member::{Member, StoreConfig, WalMetadata};
use replica::proto::{Entry, HardState, Member as MemberInfo, PutRequest, Request, request};
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

/// The measured cost of each component, in microseconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Floor {
    pub raft_entry_us: f64,
    pub commit_mem_us: f64,
    pub commit_sim_us: f64,
    pub reopen_us: f64,
    pub dump_us: f64,
}

/// A failure of the measurement itself (a component that errored).
#[derive(Debug, thiserror::Error)]
#[error("floor measurement failed in {what}: {detail}")]
pub struct FloorError {
    what: &'static str,
    detail: String,
}

fn fail(what: &'static str) -> impl Fn(String) -> FloorError {
    move |detail| FloorError { what, detail }
}

impl Floor {
    /// Measures every component, each the best of three tries (a floor:
    /// other work on the machine only ever adds time).
    pub fn measure() -> Result<Floor, FloorError> {
        let mem = || -> Arc<dyn Disk> { Arc::new(MemDisk::new()) };
        let sim = || -> Arc<dyn Disk> { SimDisk::new() };
        Ok(Floor {
            raft_entry_us: best(|| raft_entry_us(2_000)).map_err(fail("raft replication"))?,
            commit_mem_us: best(|| commit_us(mem(), 300))
                .map_err(fail("backend commit (memory)"))?,
            commit_sim_us: best(|| commit_us(sim(), 300))
                .map_err(fail("backend commit (simulated)"))?,
            reopen_us: best(|| reopen_us(20)).map_err(fail("backend reopen"))?,
            dump_us: best(|| dump_us(50)).map_err(fail("state dump"))?,
        })
    }

    /// The least wall time, in seconds, the work a run's statistics count
    /// could take: each replicated entry once, each backend commit on the
    /// simulated disk, each boot a reopen, each state dump.
    pub fn implied_s(&self, stats: &RunStats, members: u64) -> f64 {
        let entries = stats.applied as f64 / members.max(1) as f64;
        let us = entries * self.raft_entry_us
            + stats.backend_commits as f64 * self.commit_sim_us
            + stats.restarts as f64 * self.reopen_us
            + stats.state_dumps as f64 * self.dump_us;
        us / 1e6
    }
}

/// The least of three measurements.
fn best(measure: impl Fn() -> Result<f64, String>) -> Result<f64, String> {
    let mut least = f64::INFINITY;
    for _ in 0..3 {
        least = least.min(measure()?);
    }
    Ok(least)
}

/// Microseconds per entry for three raft-rs nodes replicating and
/// committing `entries` proposals of about 100 bytes.
fn raft_entry_us(entries: usize) -> Result<f64, String> {
    let voters = [1u64, 2, 3];
    let logger = slog::Logger::root(slog::Discard, slog::o!());
    let mut nodes = Vec::new();
    for id in voters {
        let storage = MemStorage::new_with_conf_state(ConfState::from((voters.to_vec(), vec![])));
        let config = Config {
            id,
            election_tick: 10,
            heartbeat_tick: 1,
            ..Config::default()
        };
        nodes.push(RawNode::new(&config, storage, &logger).map_err(|e| e.to_string())?);
    }
    nodes[0].campaign().map_err(|e| e.to_string())?;
    let mut committed = 0usize;
    pump(&mut nodes, &mut committed)?;
    let started = Instant::now();
    let payload = vec![7u8; 100];
    for _ in 0..entries {
        nodes[0]
            .propose(Vec::new(), payload.clone())
            .map_err(|e| e.to_string())?;
        pump(&mut nodes, &mut committed)?;
    }
    let wall = started.elapsed();
    if committed < entries {
        return Err(format!("{committed} of {entries} entries committed"));
    }
    Ok(wall.as_secs_f64() * 1e6 / entries as f64)
}

/// Handles every node's Ready until no message is left in flight.
fn pump(nodes: &mut [RawNode<MemStorage>], committed: &mut usize) -> Result<(), String> {
    loop {
        let mut inflight: Vec<Message> = Vec::new();
        for node in nodes.iter_mut() {
            if !node.has_ready() {
                continue;
            }
            let mut ready = node.ready();
            inflight.extend(ready.take_messages());
            *committed += count_normal(&ready.take_committed_entries());
            let store = node.raft.raft_log.store.clone();
            if !ready.entries().is_empty() {
                store
                    .wl()
                    .append(ready.entries())
                    .map_err(|e| e.to_string())?;
            }
            if let Some(hs) = ready.hs() {
                store.wl().set_hardstate(hs.clone());
            }
            inflight.extend(ready.take_persisted_messages());
            let mut light = node.advance(ready);
            if let Some(commit) = light.commit_index() {
                store.wl().mut_hard_state().commit = commit;
            }
            inflight.extend(light.take_messages());
            *committed += count_normal(&light.take_committed_entries());
            node.advance_apply();
        }
        if inflight.is_empty() && nodes.iter().all(|n| !n.has_ready()) {
            return Ok(());
        }
        for msg in inflight {
            let to = msg.to as usize;
            if let Some(node) = nodes.get_mut(to.wrapping_sub(1)) {
                // A message to a node that just stepped down is dropped,
                // as on a real network.
                let _ = node.step(msg);
            }
        }
    }
}

/// The leader's commit counts each entry once (followers apply too, but
/// only node 1's view is counted: it proposes everything).
fn count_normal(entries: &[RaftEntry]) -> usize {
    entries.iter().filter(|e| !e.data.is_empty()).count()
}

/// A value of the workload's usual size.
fn value(i: u64) -> Vec<u8> {
    format!("v{i:07}-{}", "x".repeat(40)).into_bytes()
}

/// Microseconds per commit of 10 puts and the meta row on `disk`.
fn commit_us(disk: Arc<dyn Disk>, commits: u64) -> Result<f64, String> {
    let path = Path::new("db");
    let mut backend = Backend::open(disk, path, BackendOptions::default(), Arc::new(NoCrash))
        .map_err(|e| e.to_string())?;
    // The first commits grow the file and warm the allocator: timed from
    // the 50th on.
    let mut started = Instant::now();
    for c in 0..commits + 50 {
        if c == 50 {
            started = Instant::now();
        }
        for k in 0..10 {
            let key = format!("k{:03}-{c}", k % 24);
            backend.put(Table::Key, key.as_bytes(), &value(c));
        }
        backend.set_consistent_index(c + 1, 1);
        backend.force_commit().map_err(|e| e.to_string())?;
    }
    Ok(started.elapsed().as_secs_f64() * 1e6 / commits as f64)
}

/// Microseconds per reopen of a backend of about 200 KiB.
fn reopen_us(reopens: u32) -> Result<f64, String> {
    let disk: Arc<dyn Disk> = Arc::new(MemDisk::new());
    let path = Path::new("db");
    let open = || {
        Backend::open(
            disk.clone(),
            path,
            BackendOptions::default(),
            Arc::new(NoCrash),
        )
        .map_err(|e| e.to_string())
    };
    let mut backend = open()?;
    let mut c = 0;
    while disk.len(path).map_err(|e| e.to_string())? < 200 * 1024 {
        for k in 0..50 {
            backend.put(Table::Key, format!("k{k:03}-{c}").as_bytes(), &value(c));
        }
        backend.set_consistent_index(c + 1, 1);
        backend.force_commit().map_err(|e| e.to_string())?;
        c += 1;
    }
    drop(backend);
    let started = Instant::now();
    for _ in 0..reopens {
        drop(open()?);
    }
    Ok(started.elapsed().as_secs_f64() * 1e6 / f64::from(reopens))
}

/// Microseconds per state dump of a member that applied 2,000 puts over
/// 24 keys.
fn dump_us(dumps: u32) -> Result<f64, String> {
    let info = |id: u64| MemberInfo {
        id,
        name: format!("m{id}"),
        peer_urls: vec![format!("http://m{id}:2380")],
        client_urls: Vec::new(),
        is_learner: false,
    };
    let disk: Arc<dyn Disk> = Arc::new(MemDisk::new());
    let (mut member, _) = Member::bootstrap(
        disk,
        StoreConfig::default(),
        Arc::new(NoCrash),
        &WalMetadata {
            member_id: 1,
            cluster_id: 9,
        },
        &[info(1), info(2), info(3)],
        0,
    )
    .map_err(|e| e.to_string())?;
    let first = member.applied_index() + 1;
    for index in first..first + 2_000 {
        let req = Request {
            id: index,
            kind: Some(request::Kind::Put(PutRequest {
                key: format!("k{:03}", index % 24).into_bytes(),
                value: value(index),
            })),
        };
        let entry = Entry {
            term: 1,
            index,
            data: prost::Message::encode_to_vec(&req),
            ..Entry::default()
        };
        let hs = HardState {
            term: 1,
            vote: 1,
            commit: index,
        };
        member
            .save(Some(&hs), std::slice::from_ref(&entry))
            .map_err(|e| e.to_string())?;
        member.apply(&entry, 0).map_err(|e| e.to_string())?;
    }
    let started = Instant::now();
    for _ in 0..dumps {
        member.state_dump().map_err(|e| e.to_string())?;
    }
    Ok(started.elapsed().as_secs_f64() * 1e6 / f64::from(dumps))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_implied_floor_counts_each_component_of_a_run() {
        let floor = Floor {
            raft_entry_us: 10.0,
            commit_mem_us: 0.0,
            commit_sim_us: 100.0,
            reopen_us: 1_000.0,
            dump_us: 50.0,
        };
        let stats = RunStats {
            applied: 3_000,
            backend_commits: 500,
            restarts: 4,
            state_dumps: 20,
            ..RunStats::default()
        };
        // 1,000 entries on 3 members, 500 commits, 4 boots, 20 dumps.
        let expected = (1_000.0 * 10.0 + 500.0 * 100.0 + 4.0 * 1_000.0 + 20.0 * 50.0) / 1e6;
        assert!((floor.implied_s(&stats, 3) - expected).abs() < 1e-12);
    }
}
