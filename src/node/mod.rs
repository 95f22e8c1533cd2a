//! A sans-IO cluster member: raft-rs's `RawNode` over the store.
//!
//! The driver owns time, the network and the disk: it calls [`Node::tick`],
//! [`Node::step`] with received messages, [`Node::propose`], and
//! [`Node::handle_ready`], which persists, applies and returns the messages
//! to send. Nothing here reads a clock, spawns, or draws a random number:
//! raft-rs's randomized election timeout is pinned
//! (`max_election_tick = min_election_tick + 1`) and the driver supplies
//! jitter through its tick schedule, so runs are reproducible.
//!
//! Ready order, as etcd's: messages that do not depend on the new state
//! (leader appends) may go at once; the snapshot, entries and hard state are
//! made durable (one WAL fsync) **before** `persisted_messages` (votes,
//! append responses) are released; then committed entries are applied.

mod convert;
mod lease;
mod log_store;

use convert::{entry_to_raft, entry_to_store};
pub use log_store::LogStore;

use crate::apply::Applied;
use crate::bugs::Bug;
use crate::crash_point::CrashHook;
use crate::disk::Disk;
use crate::member::{Member, Recovered, StoreConfig, StoreError, WalMetadata};
use crate::probe::Probe;
use crate::proto::{ConfChangeRequest, Member as MemberInfo, RangeRequest, Request, Response};
use convert::{
    conf_change_to_raft, conf_state_to_raft, hard_state_to_raft, hard_state_to_store,
    marker_to_raft, marker_to_store,
};
use lease::TickLease;
use prost::Message as _;
use raft::eraftpb::{Message, MessageType, Snapshot};
use raft::{RawNode, SnapshotStatus, StateRole, Storage as _};
use std::sync::Arc;

/// Raft and store settings of one member.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    pub id: u64,
    /// Election timeout in ticks (the driver adds jitter between ticks).
    pub election_tick: usize,
    pub heartbeat_tick: usize,
    /// Entries kept in the raft log behind a snapshot for slow followers
    /// (etcd's `SnapshotCatchUpEntries`).
    pub catch_up_entries: u64,
    pub store: StoreConfig,
}

impl NodeConfig {
    pub fn new(id: u64, store: StoreConfig) -> Self {
        NodeConfig {
            id,
            election_tick: 10,
            heartbeat_tick: 2,
            catch_up_entries: 50,
            store,
        }
    }
}

/// Why a node failed. Every variant stops the member (fail-stop).
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("raft: {0}")]
    Raft(#[from] raft::Error),
    #[error("unsupported: {0}")]
    Unsupported(&'static str),
}

impl NodeError {
    /// The crash point that stopped the member, if this is an injected crash.
    pub fn crashed(&self) -> Option<crate::crash_point::Crashed> {
        match self {
            NodeError::Store(e) => e.crashed(),
            NodeError::Raft(_) | NodeError::Unsupported(_) => None,
        }
    }
}

/// What one `handle_ready` produced.
#[derive(Debug, Default)]
pub struct ReadyOutput {
    /// Messages to send, in order.
    pub messages: Vec<Message>,
    /// Entries applied, with their results.
    pub applied: Vec<Applied>,
    /// A v2 snapshot was taken at this index.
    pub snapshot_taken: Option<u64>,
    /// A snapshot from the leader was installed at this index.
    pub snapshot_installed: Option<u64>,
    /// WAL saves (each one fsync) this Ready made.
    pub wal_saves: u32,
    /// WAL segments cut (a save that filled the segment starts a new one).
    pub wal_cuts: u64,
    /// Indexes of applied entries that compacted the v3 store (raised its
    /// compact revision).
    pub compacted: Vec<u64>,
    /// Linearizable reads answered, by the context they were asked with.
    pub reads: Vec<(Vec<u8>, Response)>,
}

/// A linearizable read waiting for raft to confirm its read index
/// (`index`), then for the member to apply up to it.
#[derive(Debug)]
struct PendingRead {
    ctx: Vec<u8>,
    req: RangeRequest,
    index: Option<u64>,
    /// The tick (of this member's raft clock) it was asked at.
    asked: u64,
}

/// Reads kept waiting at most (raft drops a read it cannot serve, e.g. one
/// asked of a leader that has not committed in its term; its client times
/// out and asks again).
const MAX_PENDING_READS: usize = 256;

/// One cluster member.
pub struct Node {
    id: u64,
    raw: RawNode<LogStore>,
    log: LogStore,
    member: Member,
    config: NodeConfig,
    recovered: Recovered,
    /// Messages handed to the network during the current `handle_ready`.
    /// On a crash midway, what was already handed out stays sent.
    outbox: Vec<Message>,
    /// Entries applied during the current `handle_ready`. On a failure
    /// midway they took effect in the store (a later backend commit may
    /// make them durable) but no `ReadyOutput` reports them.
    unreported: Vec<Applied>,
    /// The entry whose apply failed part-way (a crash inside it, e.g. after
    /// its backend commit): it may have taken effect without a report.
    interrupted: Option<crate::proto::Entry>,
    pending_reads: Vec<PendingRead>,
    /// The raft tick count, and the lease of `lease-read-timed-by-ticks`.
    lease: TickLease,
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node")
            .field("id", &self.id)
            .field("applied", &self.member.applied_index())
            .finish()
    }
}

fn raft_logger() -> slog::Logger {
    slog::Logger::root(slog::Discard, slog::o!())
}

impl Node {
    /// Creates a member of a new cluster whose initial members are `initial`.
    /// A member joining an existing cluster passes an empty `initial`.
    pub fn bootstrap(
        disk: Arc<dyn Disk>,
        config: NodeConfig,
        hook: Arc<dyn CrashHook>,
        metadata: &WalMetadata,
        initial: &[MemberInfo],
        now_ms: u64,
    ) -> Result<Node, NodeError> {
        let (member, recovered) =
            Member::bootstrap(disk, config.store.clone(), hook, metadata, initial, now_ms)?;
        Self::start(member, recovered, config)
    }

    /// Restarts a member from its data directory.
    pub fn open(
        disk: Arc<dyn Disk>,
        config: NodeConfig,
        hook: Arc<dyn CrashHook>,
        now_ms: u64,
    ) -> Result<Node, NodeError> {
        let (member, recovered) = Member::open(disk, config.store.clone(), hook, now_ms)?;
        Self::start(member, recovered, config)
    }

    fn start(member: Member, recovered: Recovered, config: NodeConfig) -> Result<Node, NodeError> {
        let log = LogStore::default();
        let meta = marker_to_raft(&recovered.snapshot);
        // No payload yet: a follower that needs a snapshot triggers a fresh
        // one (see `handle_ready`), taken when the backend is exactly at the
        // snapshot index.
        let payload = Vec::new();
        let conf_state = member.stores().cluster.conf_state();
        let entries = recovered.entries.iter().map(entry_to_raft).collect();
        let mut hs = hard_state_to_raft(&recovered.hard_state);
        hs.commit = hs.commit.max(recovered.snapshot.index);
        log.reset(meta, payload, hs, entries);
        // Raft starts from the membership the applied log implies.
        log.set_conf_state(conf_state_to_raft(&conf_state));
        let raft_config = raft::Config {
            id: config.id,
            election_tick: config.election_tick,
            heartbeat_tick: config.heartbeat_tick,
            min_election_tick: config.election_tick,
            max_election_tick: config.election_tick + 1,
            applied: member.applied_index(),
            max_size_per_msg: 64 * 1024,
            max_inflight_msgs: 64,
            check_quorum: true,
            pre_vote: true,
            ..raft::Config::default()
        };
        let raw = RawNode::new(&raft_config, log.clone(), &raft_logger())?;
        Ok(Node {
            id: config.id,
            raw,
            log,
            member,
            config,
            recovered,
            outbox: Vec::new(),
            unreported: Vec::new(),
            interrupted: None,
            pending_reads: Vec::new(),
            lease: TickLease::default(),
        })
    }

    pub fn id(&self) -> u64 {
        self.id
    }

    /// What boot found (replayed entries, torn-tail repair).
    pub fn recovered(&self) -> &Recovered {
        &self.recovered
    }

    pub fn member(&self) -> &Member {
        &self.member
    }

    pub fn is_leader(&self) -> bool {
        self.raw.raft.state == StateRole::Leader
    }

    pub fn leader_id(&self) -> u64 {
        self.raw.raft.leader_id
    }

    pub fn term(&self) -> u64 {
        self.raw.raft.term
    }

    pub fn commit_index(&self) -> u64 {
        self.raw.raft.raft_log.committed
    }

    /// One logical clock tick.
    pub fn tick(&mut self) {
        self.lease.tick();
        self.raw.tick();
    }

    /// Starts an election now.
    pub fn campaign(&mut self) -> Result<(), NodeError> {
        Ok(self.raw.campaign()?)
    }

    /// Asks raft to hand leadership to member `to` (raft-rs
    /// `transfer_leader`): a leader catches `to` up, then tells it to
    /// campaign at once; any other member ignores the request.
    pub fn transfer_leader(&mut self, to: u64) {
        self.raw.transfer_leader(to);
    }

    /// Feeds a message from a peer. Messages from unknown or stale peers
    /// are dropped by raft; that is not an error of this member.
    pub fn step(&mut self, msg: Message) {
        if let Err(e) = self.raw.step(msg) {
            tracing::debug!(member = self.id, error = %e, "raft dropped a message");
        }
    }

    /// Proposes a client request (only the leader accepts).
    pub fn propose(&mut self, req: &Request) -> Result<(), NodeError> {
        Ok(self.raw.propose(Vec::new(), req.encode_to_vec())?)
    }

    /// Proposes a membership change (only the leader accepts).
    pub fn propose_conf_change(&mut self, cc: &ConfChangeRequest) -> Result<(), NodeError> {
        // raft-rs has no "update node" change; peer URL updates are applied
        // by the store but cannot be proposed through this node yet.
        let raft_cc = conf_change_to_raft(cc).ok_or(NodeError::Unsupported(
            "conf change kinds other than add, add learner, promote and remove",
        ))?;
        Ok(self.raw.propose_conf_change(cc.encode_to_vec(), raft_cc)?)
    }

    /// Starts a linearizable read (raft's ReadIndex): it is answered in the
    /// `reads` of a later [`Node::handle_ready`], once the leader confirmed
    /// the read index and this member has applied up to it. `ctx` names the
    /// read (unique per request).
    pub fn read_index(&mut self, ctx: Vec<u8>, req: RangeRequest) {
        if self.pending_reads.len() >= MAX_PENDING_READS {
            self.pending_reads.remove(0);
        }
        let asked = self.lease.now();
        if self.config.store.bugs.has(Bug::LeaseReadTimedByTicks)
            && self.is_leader()
            && self.raw.raft.commit_to_current_term()
            && self.lease.holds(self.term())
        {
            // The bug: the leader trusts a lease counted in its own ticks
            // and answers at its commit index without asking a quorum.
            let index = Some(self.commit_index());
            self.pending_reads.push(PendingRead {
                ctx,
                req,
                index,
                asked,
            });
            return;
        }
        self.pending_reads.push(PendingRead {
            ctx: ctx.clone(),
            req,
            index: None,
            asked,
        });
        self.raw.read_index(ctx);
    }

    /// A serializable read: this member's applied state, at once.
    pub fn serializable_read(&self, req: &RangeRequest) -> Result<Response, NodeError> {
        Ok(self.member.serializable_range(req)?)
    }

    /// Gives each pending read the index raft confirmed for it.
    fn note_read_states(
        &mut self,
        states: Vec<raft::ReadState>,
        out: &mut ReadyOutput,
    ) -> Result<(), NodeError> {
        let lease = self.config.store.bugs.has(Bug::LeaseReadTimedByTicks) && self.is_leader();
        let (term, lease_ticks) = (self.term(), self.config.election_tick as u64 / 2);
        for rs in states {
            for read in &mut self.pending_reads {
                if read.index.is_none() && read.ctx == rs.request_ctx {
                    read.index = Some(rs.index);
                    if lease {
                        self.lease.renew(term, read.asked, lease_ticks);
                    }
                }
            }
        }
        if self.config.store.bugs.has(Bug::ReadIndexBeforeApply) {
            // The bug: answered before this Ready's committed entries apply.
            self.serve_reads(out)?;
        }
        Ok(())
    }

    /// Answers the pending reads whose read index the member has applied
    /// (with the known bug, every read whose index is known, applied or not).
    fn serve_reads(&mut self, out: &mut ReadyOutput) -> Result<(), NodeError> {
        let applied = self.member.applied_index();
        let early = self.config.store.bugs.has(Bug::ReadIndexBeforeApply);
        let (ready, waiting): (Vec<_>, Vec<_>) = std::mem::take(&mut self.pending_reads)
            .into_iter()
            .partition(|r| r.index.is_some_and(|i| early || i <= applied));
        self.pending_reads = waiting;
        for read in ready {
            let resp = self.member.range(&read.req)?;
            out.reads.push((read.ctx, resp));
        }
        Ok(())
    }

    /// Messages handed to the network by a `handle_ready` that then failed
    /// (a crash midway): they left before the crash, so the driver still
    /// delivers them.
    pub fn take_outbox(&mut self) -> Vec<Message> {
        std::mem::take(&mut self.outbox)
    }

    /// Entries a `handle_ready` that then failed had applied: they took
    /// effect in the store, so the driver still records them.
    pub fn take_unreported(&mut self) -> Vec<Applied> {
        std::mem::take(&mut self.unreported)
    }

    /// The entry a failed `handle_ready` was applying when it failed: it
    /// may have taken effect (a crash after its backend commit), so the
    /// driver counts it as possibly applied.
    pub fn take_interrupted(&mut self) -> Option<crate::proto::Entry> {
        self.interrupted.take()
    }

    /// The batch commit timer.
    pub fn commit_timer(&mut self, now_ms: u64) -> Result<bool, NodeError> {
        Ok(self.member.tick(now_ms)?)
    }

    /// Persists, applies and collects outgoing messages for everything raft
    /// has ready. Call after every tick, step and propose.
    pub fn handle_ready(&mut self, now_ms: u64) -> Result<ReadyOutput, NodeError> {
        let mut out = ReadyOutput::default();
        self.unreported.clear();
        if self.log.take_snapshot_request() {
            out.snapshot_taken = Some(self.force_snapshot()?);
        }
        if !self.raw.has_ready() {
            self.serve_reads(&mut out)?;
            return Ok(out);
        }
        let seq_before = self.member.wal_segment_seq();
        let mut rd = self.raw.ready();
        self.note_read_states(rd.take_read_states(), &mut out)?;
        // Leader appends may go out before the leader's own fsync (raft
        // counts the leader's vote only once it has persisted).
        self.outbox.extend(rd.take_messages());
        if !rd.snapshot().is_empty() {
            let snapshot = rd.snapshot().clone();
            self.install_snapshot(snapshot)?;
            out.snapshot_installed = Some(self.member.applied_index());
        }
        let entries: Vec<_> = rd.entries().iter().map(entry_to_store).collect();
        let hs = rd.hs().map(hard_state_to_store);
        let early_send = self.config.store.bugs.has(Bug::NoFsyncBeforeSend);
        if early_send {
            // The bug: votes and append acknowledgements leave before the
            // state they promise is durable.
            self.outbox.extend(rd.take_persisted_messages());
        }
        if hs.is_some() || !entries.is_empty() {
            out.wal_saves += 1;
        }
        self.member.save(hs.as_ref(), &entries)?;
        self.log.append(rd.entries())?;
        if let Some(hs) = rd.hs() {
            self.log.set_hard_state(hs.clone());
        }
        if !early_send {
            self.outbox.extend(rd.take_persisted_messages());
        }
        let committed = rd.take_committed_entries();
        self.apply_committed(&committed, now_ms, &mut out)?;
        let mut light = self.raw.advance(rd);
        if let Some(commit) = light.commit_index() {
            // raft-rs does not require this commit index to be durable, but
            // the backend may commit the entries it covers: persist it first
            // so that the consistent index never passes the durable commit.
            let mut hs = self.log.initial_state()?.hard_state;
            hs.commit = commit;
            self.member.save(Some(&hard_state_to_store(&hs)), &[])?;
            out.wal_saves += 1;
            self.log.set_hard_state(hs);
        }
        self.outbox.extend(light.take_messages());
        let committed = light.take_committed_entries();
        self.apply_committed(&committed, now_ms, &mut out)?;
        self.raw.advance_apply();
        out.wal_cuts = self.member.wal_segment_seq().saturating_sub(seq_before);
        self.serve_reads(&mut out)?;
        if let Some(marker) = self.member.maybe_snapshot()? {
            self.publish_snapshot(&marker)?;
            out.snapshot_taken = Some(marker.index);
        }
        // A leader waits for a sent snapshot to be reported before it talks
        // to that follower again; the driver hands it to the network now, so
        // report it sent (etcd does so once its transport has streamed it).
        // If it is lost, the follower rejects the next append and raft sends
        // a snapshot again.
        out.messages = std::mem::take(&mut self.outbox);
        for to in out
            .messages
            .iter()
            .filter(|m| m.get_msg_type() == MessageType::MsgSnapshot)
            .map(|m| m.to)
            .collect::<Vec<_>>()
        {
            self.raw.report_snapshot(to, SnapshotStatus::Finish);
        }
        Ok(out)
    }

    fn apply_committed(
        &mut self,
        entries: &[raft::eraftpb::Entry],
        now_ms: u64,
        out: &mut ReadyOutput,
    ) -> Result<(), NodeError> {
        for e in entries {
            if e.index <= self.member.applied_index() {
                continue;
            }
            let compacted_before = self.member.stores().mvcc.compact_revision();
            let entry = entry_to_store(e);
            let applied = match self.member.apply(&entry, now_ms) {
                Ok(applied) => applied,
                Err(err) => {
                    self.interrupted = Some(entry);
                    return Err(err.into());
                }
            };
            if self.member.stores().mvcc.compact_revision() > compacted_before {
                out.compacted.push(applied.index);
            }
            if let Some(raft_cc) = applied.conf_change.as_ref().and_then(conf_change_to_raft) {
                let cs = self.raw.apply_conf_change(&raft_cc)?;
                self.log.set_conf_state(cs);
            }
            self.unreported.push(applied.clone());
            out.applied.push(applied);
        }
        Ok(())
    }

    /// Makes a local v2 snapshot available to lagging followers and trims
    /// the raft log behind it.
    fn publish_snapshot(&mut self, marker: &crate::proto::SnapshotMarker) -> Result<(), NodeError> {
        let mut snap = Snapshot::default();
        snap.set_metadata(marker_to_raft(marker));
        snap.data = self.member.snapshot_payload()?.into();
        let compact_to = marker.index.saturating_sub(self.config.catch_up_entries);
        self.log.set_snapshot(snap, compact_to);
        Ok(())
    }

    fn install_snapshot(&mut self, snapshot: Snapshot) -> Result<(), NodeError> {
        let marker = marker_to_store(snapshot.get_metadata());
        if self.log.has_no_entries() {
            self.member.probe(Probe::SnapshotToEmptyLog);
        }
        self.member.install_snapshot(&marker, &snapshot.data)?;
        self.log.apply_snapshot(snapshot);
        Ok(())
    }

    /// Takes a v2 snapshot now and drops every log entry up to it, so
    /// that a member that joins later catches up from this snapshot and
    /// never from older entries. A restored backup needs this before its
    /// first joiner: its membership lives only in its snapshot (the log's
    /// membership entries are no-ops), so a joiner fed the log from index 1
    /// would never learn the restored member.
    pub fn snapshot_and_compact(&mut self) -> Result<u64, NodeError> {
        let marker = self.member.snapshot_now()?;
        let mut snap = Snapshot::default();
        snap.set_metadata(marker_to_raft(&marker));
        snap.data = self.member.snapshot_payload()?.into();
        self.log.set_snapshot(snap, marker.index);
        Ok(marker.index)
    }

    /// Forces a v2 snapshot now (scenario step `force_snapshot`).
    pub fn force_snapshot(&mut self) -> Result<u64, NodeError> {
        let marker = self.member.snapshot_now()?;
        self.publish_snapshot(&marker)?;
        Ok(marker.index)
    }
}

#[cfg(test)]
mod tests;
