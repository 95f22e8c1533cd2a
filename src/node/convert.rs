//! Conversions between raft-rs's protobuf types and the store's records.
//! Both directions are lossless for every field the store keeps.

use crate::proto::{self, ConfChangeKind, ConfChangeRequest};
use raft::eraftpb;

pub fn entry_to_store(e: &eraftpb::Entry) -> proto::Entry {
    proto::Entry {
        term: e.term,
        index: e.index,
        entry_type: match e.get_entry_type() {
            eraftpb::EntryType::EntryNormal => proto::EntryType::Normal as i32,
            eraftpb::EntryType::EntryConfChange => proto::EntryType::ConfChange as i32,
            eraftpb::EntryType::EntryConfChangeV2 => proto::EntryType::ConfChangeV2 as i32,
        },
        data: e.data.to_vec(),
        context: e.context.to_vec(),
    }
}

pub fn entry_to_raft(e: &proto::Entry) -> eraftpb::Entry {
    let mut out = eraftpb::Entry {
        term: e.term,
        index: e.index,
        data: e.data.clone().into(),
        context: e.context.clone().into(),
        ..Default::default()
    };
    out.set_entry_type(match proto::EntryType::try_from(e.entry_type) {
        Ok(proto::EntryType::ConfChange) => eraftpb::EntryType::EntryConfChange,
        Ok(proto::EntryType::ConfChangeV2) => eraftpb::EntryType::EntryConfChangeV2,
        _ => eraftpb::EntryType::EntryNormal,
    });
    out
}

pub fn hard_state_to_store(hs: &eraftpb::HardState) -> proto::HardState {
    proto::HardState {
        term: hs.term,
        vote: hs.vote,
        commit: hs.commit,
    }
}

pub fn hard_state_to_raft(hs: &proto::HardState) -> eraftpb::HardState {
    eraftpb::HardState {
        term: hs.term,
        vote: hs.vote,
        commit: hs.commit,
        ..Default::default()
    }
}

pub fn conf_state_to_raft(cs: &proto::ConfState) -> eraftpb::ConfState {
    eraftpb::ConfState {
        voters: cs.voters.clone(),
        learners: cs.learners.clone(),
        voters_outgoing: cs.voters_outgoing.clone(),
        learners_next: cs.learners_next.clone(),
        auto_leave: cs.auto_leave,
        ..Default::default()
    }
}

pub fn conf_state_to_store(cs: &eraftpb::ConfState) -> proto::ConfState {
    proto::ConfState {
        voters: cs.voters.clone(),
        learners: cs.learners.clone(),
        voters_outgoing: cs.voters_outgoing.clone(),
        learners_next: cs.learners_next.clone(),
        auto_leave: cs.auto_leave,
    }
}

pub fn marker_to_raft(m: &proto::SnapshotMarker) -> eraftpb::SnapshotMetadata {
    let mut out = eraftpb::SnapshotMetadata {
        index: m.index,
        term: m.term,
        ..Default::default()
    };
    out.set_conf_state(conf_state_to_raft(
        &m.conf_state.clone().unwrap_or_default(),
    ));
    out
}

pub fn marker_to_store(m: &eraftpb::SnapshotMetadata) -> proto::SnapshotMarker {
    proto::SnapshotMarker {
        index: m.index,
        term: m.term,
        conf_state: Some(conf_state_to_store(m.get_conf_state())),
    }
}

/// The raft-level change a store conf change makes (None: raft sees no
/// change, e.g. a peer URL update).
pub fn conf_change_to_raft(cc: &ConfChangeRequest) -> Option<eraftpb::ConfChange> {
    let change_type = match ConfChangeKind::try_from(cc.kind).ok()? {
        ConfChangeKind::AddNode | ConfChangeKind::Promote => eraftpb::ConfChangeType::AddNode,
        ConfChangeKind::AddLearnerNode => eraftpb::ConfChangeType::AddLearnerNode,
        ConfChangeKind::RemoveNode => eraftpb::ConfChangeType::RemoveNode,
        ConfChangeKind::UpdateNode => return None,
    };
    let mut out = eraftpb::ConfChange::default();
    out.set_change_type(change_type);
    out.node_id = cc.node_id;
    Some(out)
}
