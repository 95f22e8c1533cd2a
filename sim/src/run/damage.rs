//! Bit rot: a byte of a member's durable file changes on the platter. The
//! store must detect it (CRCs, redb's checksums) and fail-stop or repair
//! from what is intact; the fault contract is in `fault/mod.rs`.

use super::supervisor::Supervisor;
use crate::scenario_file::DamagedFile;
use replica::disk::Disk;
use replica::member::{BACKEND_FILE, SNAP_DIR, WAL_DIR};
use std::path::{Path, PathBuf};

impl Supervisor {
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
        let path = damaged_path(mem, file)
            .ok_or_else(|| format!("member {id} has no {file:?} file to damage"))?;
        let len = mem
            .durable_len(&path)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        if len == 0 {
            return Err(format!("{} is empty on the platter", path.display()));
        }
        let offset = ((at * len as f64) as u64).min(len - 1);
        mem.corrupt_durable(&path, offset, xor)
            .map_err(|e| format!("{}: {e}", path.display()))?;
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

    /// Whether any member's platter was damaged in this run.
    pub(crate) fn any_damaged(&self) -> bool {
        self.world.lock().members.values().any(|s| s.damaged)
    }
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
