//! Damage to a member's platter: bit rot (a byte of a durable file changes),
//! latent sector errors (reads of a sector fail) and misdirected writes (a
//! write lands at a wrong offset of its file). The store must detect it
//! (CRCs, redb's checksums, the read error itself) and fail-stop or repair
//! from what is intact; the fault contract is in `fault/mod.rs`.

use super::supervisor::Supervisor;
use crate::fault::{DiskFault, Misdirection, SECTOR, WriteTarget};
use crate::scenario_file::DamagedFile;
use replica::disk::{Disk, MemDisk};
use replica::member::{BACKEND_FILE, SNAP_DIR, WAL_DIR};
use std::path::{Path, PathBuf};

/// The last bytes of the newest WAL segment are left alone: more than its
/// largest record (a 3,000-byte put value plus key, entry and frame). A flip in the final record is indistinguishable from a
/// torn write, which boot cuts off (as etcd does): the member silently drops
/// an entry it had synced and acknowledged, and raft-rs then panics on the
/// leader's commit index ("to_commit … out of range"), or the v2-index check
/// sees the member boot behind itself. Random seeds 41 and 257 found exactly
/// that. It is a limit of the WAL format, written down here and in the fault
/// contract, not a fault the store can be asked to survive.
const WAL_TAIL_GUARD: u64 = 3200;

impl Supervisor {
    /// The fractions of member `id`'s newest WAL segment (as `corrupt`
    /// reads `at`) that hold records written after its backend's latest
    /// sync, before the tail guard: entries the boot replays into the
    /// backend. `None` if there are none (no backend sync yet in this
    /// process, a newer segment since, or nothing past the guard).
    pub(crate) fn wal_span_past_backend(&self, id: u64) -> Option<(f64, f64)> {
        let w = self.world.lock();
        let slot = w.slot(id)?;
        let (mark_path, mark) = slot.disk.wal_end_at_backend_sync()?;
        let (path, len) = damage_target(slot.disk.mem(), id, DamagedFile::Wal).ok()?;
        let span = len.checked_sub(WAL_TAIL_GUARD)?;
        (path == mark_path && mark < span).then(|| (mark as f64 / span as f64, 1.0))
    }

    /// Flips `xor` into the byte at fraction `at` of member `id`'s `file`
    /// (platter and page cache alike) and marks the member damaged. Err if
    /// the member has no such file yet.
    pub(crate) fn corrupt(
        &mut self,
        id: u64,
        file: DamagedFile,
        at: f64,
        xor: u8,
    ) -> Result<(), String> {
        let now = self.now_ms();
        let mut w = self.world.lock();
        let slot = w.slot_mut(id).ok_or(format!("no member {id}"))?;
        let mem = slot.disk.mem();
        let (path, len) = damage_target(mem, id, file)?;
        // The end of the newest WAL segment is never damaged: see
        // WAL_TAIL_GUARD.
        let guard = if file == DamagedFile::Wal {
            WAL_TAIL_GUARD
        } else {
            0
        };
        if len <= guard {
            return Err(format!(
                "{} holds {len} bytes: nothing before its last {guard} to damage",
                path.display()
            ));
        }
        let span = len - guard;
        let offset = ((at * span as f64) as u64).min(span - 1);
        let changed = mem
            .corrupt_durable(&path, offset, xor)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        if !changed {
            // The page cache is shorter than the platter there (an unsynced
            // truncation): nothing was damaged.
            return Err(format!("{} offset {offset}: out of range", path.display()));
        }
        slot.damaged = true;
        w.stats.corruptions += 1;
        w.event(
            now,
            Some(id),
            format_args!(
                "bit rot: {} offset {offset} of {len} xor {xor:#04x}",
                path.display()
            ),
        );
        Ok(())
    }

    /// A latent sector error: from now on, reads of the sector at fraction
    /// `at` of member `id`'s `file` fail with EIO. The member is marked
    /// damaged. Err if the member has no such file yet.
    pub(crate) fn bad_sector(&mut self, id: u64, file: DamagedFile, at: f64) -> Result<(), String> {
        let now = self.now_ms();
        let mut w = self.world.lock();
        let slot = w.slot_mut(id).ok_or(format!("no member {id}"))?;
        let mem = slot.disk.mem();
        let (path, len) = damage_target(mem, id, file)?;
        if len == 0 {
            return Err(format!("{} is empty on the platter", path.display()));
        }
        let sector = ((at * len as f64) as u64).min(len - 1) / SECTOR as u64;
        slot.disk.add_bad_sector(&path, sector);
        slot.damaged = true;
        w.stats.bad_sectors += 1;
        w.event(
            now,
            Some(id),
            format_args!(
                "latent sector error: {} sector {sector} ({len} bytes)",
                path.display()
            ),
        );
        Ok(())
    }

    /// Whether any member's platter was damaged in this run, or a
    /// misdirected write is armed to damage it.
    pub(crate) fn any_damaged(&self) -> bool {
        let w = self.world.lock();
        w.members
            .values()
            .any(|s| s.damaged || s.disk.misdirect_armed())
    }

    /// Arms a misdirected write: member `id`'s `nth` next write to its WAL
    /// or backend `file` lands `shift` bytes past where it was aimed. Once
    /// it has landed, [`Supervisor::handle_misdirected`] crashes the member.
    pub(crate) fn arm_misdirect(
        &mut self,
        id: u64,
        file: DamagedFile,
        nth: u32,
        shift: u64,
    ) -> Result<(), String> {
        let target = match file {
            DamagedFile::Wal => WriteTarget::Wal,
            DamagedFile::Backend => WriteTarget::Backend,
            DamagedFile::Snapshot => return Err("no misdirected snapshot writes".into()),
        };
        let now = self.now_ms();
        let mut w = self.world.lock();
        let slot = w.slot_mut(id).ok_or(format!("no member {id}"))?;
        slot.disk
            .arm(DiskFault::Misdirect(Misdirection { target, nth, shift }));
        w.event(
            now,
            Some(id),
            format_args!("armed a misdirected {target:?} write (write {nth}, +{shift} bytes)"),
        );
        Ok(())
    }

    /// Members whose misdirected write landed: each is marked damaged and
    /// its process crashes, so that its boot reads the damage (a running
    /// member never reads its WAL back, and redb checks its pages only when
    /// it opens). The crash belongs to the misdirect step, which the
    /// schedule now counts as fired.
    pub(crate) fn handle_misdirected(&mut self) {
        let now = self.now_ms();
        let landed: Vec<(u64, String, bool)> = {
            let mut w = self.world.lock();
            let mut landed = Vec::new();
            for (id, slot) in w.members.iter_mut() {
                if let Some(what) = slot.disk.take_misdirected() {
                    slot.damaged = true;
                    landed.push((*id, what, slot.node.is_some()));
                }
            }
            for (id, what, _) in &landed {
                w.stats.misdirected_writes += 1;
                w.event(now, Some(*id), format_args!("misdirected write: {what}"));
            }
            landed
        };
        for (id, _, running) in landed {
            if let Some(s) = &mut self.schedule {
                s.misdirect_landed(id);
            }
            if running {
                self.kill(id, false);
            }
        }
    }
}

/// The file a damage step names on member `id`'s disk, and its length on
/// the platter.
fn damage_target(disk: &MemDisk, id: u64, file: DamagedFile) -> Result<(PathBuf, u64), String> {
    let path = damaged_path(disk, file)
        .ok_or_else(|| format!("member {id} has no {file:?} file to damage"))?;
    let len = disk
        .durable_len(&path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    Ok((path, len))
}

/// The newest file of its kind on this disk (names sort by sequence or
/// index, so the last is the newest).
fn damaged_path(disk: &dyn Disk, file: DamagedFile) -> Option<PathBuf> {
    let newest = |dir: &str, suffix: &str| {
        let mut names: Vec<String> = disk.list(Path::new(dir)).ok()?;
        names.retain(|n| n.ends_with(suffix));
        names.sort();
        names.pop().map(|n| Path::new(dir).join(n))
    };
    match file {
        DamagedFile::Wal => newest(WAL_DIR, ".wal"),
        DamagedFile::Snapshot => newest(SNAP_DIR, ".snap"),
        DamagedFile::Backend => Some(PathBuf::from(BACKEND_FILE)),
    }
}
