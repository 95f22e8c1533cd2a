//! What a restored backup must hold, computed without the WAL rewrite, and
//! the checks run on a backup before it is published.
//!
//! The reference ([`expected_state`]) replays the source's own committed
//! entries straight into in-memory stores, membership entries treated as
//! no-ops, starting from the source's v2 snapshot and backend with the
//! membership reset to the new member. A restored backup must boot into
//! exactly this state: same applied index, consistent index, v2 index and
//! tree, v3 key space, membership. The simulator and `sim bench-backup`
//! compare against it.

use super::BackupOptions;
use super::error::BackupError;
use super::source::SourceState;
use super::translate::{is_membership_entry, noop_entry};
use crate::apply::{ApplyContext, Stores, apply_entry};
use crate::backend::{Backend, BackendOptions};
use crate::bugs::KnownBugs;
use crate::crash_point::NoCrash;
use crate::disk::{Disk, MemDisk};
use crate::member::{Member, StateDump, StoreConfig};
use crate::mvcc::Mvcc;
use crate::proto::ConfState;
use crate::v2store::V2Store;
use crate::verify::VerifyMode;
use std::path::Path;
use std::sync::Arc;

/// The single-voter conf state of a new one-member cluster.
pub fn single_voter(id: u64) -> ConfState {
    ConfState {
        voters: vec![id],
        ..ConfState::default()
    }
}

/// The state dump of bare stores at `applied_index` (as
/// [`Member::state_dump`] makes it for a member).
fn dump(stores: &Stores, applied_index: u64) -> Result<StateDump, BackupError> {
    crate::member::dump_stores(stores, applied_index)
        .map_err(|e| BackupError::build("reference dump", e))
}

/// The state a correct backup of `src` boots into (see the module comment).
pub fn expected_state(src: &SourceState, opts: &BackupOptions) -> Result<StateDump, BackupError> {
    expected_state_with(src, opts, &is_membership_entry)
}

/// [`expected_state`] with the caller's notion of which entries are
/// membership entries (tests pass the set their generator made).
pub fn expected_state_with(
    src: &SourceState,
    opts: &BackupOptions,
    is_membership: &dyn Fn(&crate::proto::Entry) -> bool,
) -> Result<StateDump, BackupError> {
    let marker = src.marker();
    let commit = src.commit();
    let mut v2 = match &src.snapshot {
        Some(s) => V2Store::recover(&s.data)?,
        None => V2Store::new(),
    };
    let disk: Arc<dyn Disk> = Arc::new(MemDisk::new());
    let mut backend = Backend::open(
        disk,
        Path::new("reference.db"),
        BackendOptions::default(),
        Arc::new(NoCrash),
    )
    .map_err(|e| BackupError::build("reference backend", e))?;
    match &src.backend {
        Some((bytes, _)) => backend
            .restore_from_bytes(bytes)
            .map_err(|e| BackupError::build("reference backend", e))?,
        // Without v3 the backend is empty and stands at the commit index.
        None => {
            let term = src
                .entries
                .iter()
                .find(|e| e.index == commit)
                .map_or(marker.term, |e| e.term);
            backend.set_consistent_index(commit, term);
        }
    }
    let cluster = super::membership::reset(&mut v2, &mut backend, &opts.new_member)?;
    backend.set_conf_state(&single_voter(opts.new_member.id));
    let mvcc = Mvcc::open(&backend).map_err(|e| BackupError::build("reference mvcc", e))?;
    let mut stores = Stores {
        v2,
        backend,
        mvcc,
        cluster,
    };
    let ctx = ApplyContext {
        now_ms: 0,
        hook: &NoCrash,
        bugs: KnownBugs::NONE,
    };
    for entry in src.entries.iter().filter(|e| e.index <= commit) {
        let entry = if is_membership(entry) {
            noop_entry(entry.index, entry.term)
        } else {
            entry.clone()
        };
        apply_entry(&mut stores, &entry, ctx)
            .map_err(|e| BackupError::build("reference replay", e))?;
    }
    dump(&stores, commit)
}

/// Boots the image (on a copy) with the boot checks on, and checks what a
/// one-member cluster needs: the consistent index at the applied index, and
/// the new member as the only member and voter everywhere.
pub fn verify_image(image: &MemDisk, opts: &BackupOptions) -> Result<StateDump, BackupError> {
    let fork: Arc<dyn Disk> = Arc::new(image.fork());
    let config = StoreConfig {
        verify: VerifyMode::All,
        bugs: KnownBugs::NONE,
        ..StoreConfig::default()
    };
    let (member, _) = Member::open(fork, config, Arc::new(NoCrash), 0)
        .map_err(|e| BackupError::Verify(format!("boot: {e}")))?;
    let state = member
        .state_dump()
        .map_err(|e| BackupError::Verify(format!("state: {e}")))?;
    let id = opts.new_member.id;
    let fail = |what: String| Err(BackupError::Verify(what));
    if state.consistent_index != state.applied_index {
        return fail(format!(
            "consistent index {} != applied index {} after replay",
            state.consistent_index, state.applied_index
        ));
    }
    if state.cluster.members.keys().copied().collect::<Vec<_>>() != [id] {
        return fail(format!(
            "members {:x?}, expected only {id:x}",
            state.cluster.members.keys().collect::<Vec<_>>()
        ));
    }
    let backend_ids: Vec<_> = state
        .backend_membership
        .members
        .values()
        .map(|m| m.id)
        .collect();
    if backend_ids != [id] || !state.backend_membership.removed.is_empty() {
        return fail(format!(
            "backend members {backend_ids:x?} (removed {:?}), expected only {id:x}",
            state.backend_membership.removed
        ));
    }
    if state.conf_state.as_ref() != Some(&single_voter(id)) {
        return fail(format!(
            "backend conf state {:?}, expected the single voter {id:x}",
            state.conf_state
        ));
    }
    Ok(state)
}

/// The v2 keys and values outside the membership directories: what must
/// equal the source's tree after a backup. Modification indexes are left
/// out: stripped entries no longer move the v2 index, and the membership
/// rewrite moves it, so later writes carry different indexes than in the
/// source (the reference in [`expected_state`] checks them exactly).
pub fn v2_without_membership(
    dump: &crate::v2store::V2Dump,
) -> std::collections::BTreeMap<String, String> {
    dump.leaves
        .iter()
        .filter(|(path, _)| !is_membership_path(path))
        .map(|(k, v)| (k.clone(), v.value.clone()))
        .collect()
}

fn is_membership_path(path: &str) -> bool {
    ["/0/members", "/0/removed_members"].iter().any(|dir| {
        path.strip_prefix(dir)
            .is_some_and(|r| r.is_empty() || r.starts_with('/'))
    })
}
