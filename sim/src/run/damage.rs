//! Damage to a member's platter: bit rot (a byte of a durable file changes),
//! latent sector errors (reads of a sector fail) and misdirected writes (a
//! write lands at a wrong offset of its file). The store must detect it
//! (CRCs, redb's checksums, the read error itself) and fail-stop or repair
//! from what is intact; the fault contract is in `fault/mod.rs`.

use super::supervisor::Supervisor;
use super::wal_layout::{ValueSpan, WalLayout, wal_layout};
use crate::fault::{DiskFault, Misdirection, SECTOR, WriteTarget};
use crate::scenario_file::DamagedFile;
use replica::disk::{Disk, MemDisk};
use replica::member::{BACKEND_FILE, SNAP_DIR, WAL_DIR};
use replica::wal::SegmentName;
use std::path::{Path, PathBuf};

impl Supervisor {
    /// The fractions of member `id`'s newest WAL segment (as `corrupt`
    /// reads `at`) that hold records written after its backend's latest
    /// sync, before the segment's final frame: entries the boot replays
    /// into the backend. `None` if there are none (no backend sync yet in
    /// this process, or nothing past it but the final frame).
    pub(crate) fn wal_span_past_backend(&self, id: u64) -> Option<(f64, f64)> {
        let (past, span, _) = self.wal_past_backend(id)?;
        (past < span).then(|| (past as f64 / span as f64, 1.0))
    }

    /// The fraction of member `id`'s newest WAL segment (as `bad_sector`
    /// reads `at`) of the first whole sector past its backend's latest
    /// sync, if a put value its boot replays starts there or later. A boot
    /// that stops at a read error there keeps every record the backend's
    /// commit needs (the hard state that committed its entries came
    /// before) and loses entries the member applied.
    pub(crate) fn first_sector_past_backend(&self, id: u64) -> Option<f64> {
        let (past, _, layout) = self.wal_past_backend(id)?;
        let sector = past.div_ceil(SECTOR as u64) * SECTOR as u64;
        let lost_value = (layout.last_committed_values().iter()).any(|v| v.start >= sector);
        let len = {
            let w = self.world.lock();
            damage_target(w.slot(id)?.disk.mem(), id, DamagedFile::Wal)
                .ok()?
                .1
        };
        (lost_value && sector < len).then(|| (sector as f64 + 0.5) / len as f64)
    }

    /// The put values in member `id`'s newest WAL segment that its boot
    /// replays into the backend and then shows: written after the
    /// backend's latest sync, before the segment's final frame, committed
    /// by its hard states, the last put of their key (`WalLayout`). Their
    /// damage still decodes, and a boot that replays it holds a value its
    /// peers never wrote. Also the number of bytes `corrupt` spreads `at`
    /// over there. `None` if there are none.
    pub(crate) fn replayed_put_values(&self, id: u64) -> Option<(Vec<ValueSpan>, u64)> {
        let (past, span, layout) = self.wal_past_backend(id)?;
        let values: Vec<ValueSpan> = (layout.last_committed_values().into_iter())
            .filter(|v| v.start >= past && v.end <= span)
            .cloned()
            .collect();
        (!values.is_empty()).then_some((values, span))
    }

    /// Member `id`'s newest WAL segment: the offset from which its records
    /// were written after the backend's latest sync in this process (0 if
    /// that sync came before the segment), the bytes bit rot may damage
    /// (all before the final frame: see `wal_damage_span`), and its layout.
    fn wal_past_backend(&self, id: u64) -> Option<(u64, u64, WalLayout)> {
        let w = self.world.lock();
        let slot = w.slot(id)?;
        let (mark_path, mark) = slot.disk.wal_end_at_backend_sync()?;
        let (path, len) = damage_target(slot.disk.mem(), id, DamagedFile::Wal).ok()?;
        let past = if path == mark_path {
            mark
        } else if segment_seq(&mark_path)? < segment_seq(&path)? {
            0
        } else {
            return None;
        };
        // The mark is the end of a write, so a frame boundary: only the
        // records past it are read (this runs at every step while a bit
        // rot waits for a value to aim at).
        let tail = durable_bytes(slot.disk.mem(), &path, past, len).ok()?;
        let layout = wal_layout(&tail, past);
        Some((past, layout.final_frame, layout))
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
        let span = match file {
            DamagedFile::Wal => wal_damage_span(mem, &path, len)?,
            _ => len,
        };
        if span == 0 {
            return Err(format!("{}: nothing to damage", path.display()));
        }
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

/// The bytes of a WAL segment that bit rot may damage: every byte before
/// its final frame. A flip in the final record is indistinguishable from a
/// torn write, which boot cuts off (as etcd does): the member silently
/// drops an entry it had synced and acknowledged, and raft-rs then panics
/// on the leader's commit index ("to_commit … out of range"), or the
/// v2-index check sees the member boot behind itself (random seeds 41 and
/// 257 found exactly that when the final record was fair game). It is a
/// limit of the WAL format, written down here and in the fault contract,
/// not a fault the store can be asked to survive. Any earlier record has a
/// valid frame after it, which no torn write leaves: its damage is
/// corruption the reader must report.
fn wal_damage_span(disk: &MemDisk, path: &Path, len: u64) -> Result<u64, String> {
    let bytes = durable_bytes(disk, path, 0, len)?;
    Ok(wal_layout(&bytes, 0).final_frame)
}

/// Bytes `from..len` of `path` (`len` its durable length), read through
/// the page cache, which holds the same bytes between two steps of a
/// member.
fn durable_bytes(disk: &MemDisk, path: &Path, from: u64, len: u64) -> Result<Vec<u8>, String> {
    let mut bytes = vec![0u8; len.saturating_sub(from) as usize];
    let mut done = 0;
    while done < bytes.len() {
        let rest = bytes.get_mut(done..).unwrap_or_default();
        let n = (disk.read_at(path, from + done as u64, rest))
            .map_err(|e| format!("{}: {e}", path.display()))?;
        if n == 0 {
            break;
        }
        done += n;
    }
    bytes.truncate(done);
    Ok(bytes)
}

/// The sequence number of a WAL segment's path (`None` for any other file,
/// such as a segment still being built under its temporary name).
fn segment_seq(path: &Path) -> Option<u64> {
    SegmentName::parse(path.file_name()?.to_str()?).map(|s| s.seq)
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
