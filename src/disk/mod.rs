//! The storage seam: every byte the store reads or writes goes through [`Disk`].
//!
//! Paths are relative to the disk's root (a member's data directory), use `/`
//! separators, and never contain `..`. Two implementations live here:
//! [`StdDisk`] over `std::fs` for real data directories, and [`MemDisk`], an
//! in-memory disk that separates what was written from what was made durable,
//! so a power loss can be modelled. The simulator wraps [`MemDisk`] to inject
//! faults, and tests use [`FaultyDisk`], a [`MemDisk`] that fails operations
//! by rule; the store never knows which one it runs on.

mod faulty;
mod mem;
mod std_disk;

pub use faulty::FaultyDisk;
pub use mem::{MemDisk, PendingOp, PowerLossPlan, Survival};
pub use std_disk::StdDisk;

use std::fmt;
use std::io;
use std::path::Path;

/// A directory of files with explicit durability.
///
/// Durability contract (what every implementation promises, and what the
/// simulator's [`MemDisk`] enforces): data written with `write_at`/`append`/
/// `set_len` is durable only after `sync` of that file returns `Ok`; a file's
/// creation, removal or rename is durable only after `sync_dir` of its parent
/// directory returns `Ok`. A failed `sync` leaves durability unknown: callers
/// must stop writing (fail-stop), never retry and carry on.
pub trait Disk: Send + Sync + fmt::Debug {
    /// Creates a directory and its parents. Directories are durable at once.
    fn create_dir_all(&self, dir: &Path) -> io::Result<()>;
    /// Creates an empty file, truncating an existing one.
    fn create(&self, path: &Path) -> io::Result<()>;
    /// Whether a file exists.
    fn exists(&self, path: &Path) -> io::Result<bool>;
    /// The file's length in bytes.
    fn len(&self, path: &Path) -> io::Result<u64>;
    /// Reads up to `buf.len()` bytes at `offset`; returns fewer at end of file.
    fn read_at(&self, path: &Path, offset: u64, buf: &mut [u8]) -> io::Result<usize>;
    /// Writes `data` at `offset`, extending the file (with zeros) if needed.
    fn write_at(&self, path: &Path, offset: u64, data: &[u8]) -> io::Result<()>;
    /// Sets the file's length, truncating or zero-extending it.
    fn set_len(&self, path: &Path, len: u64) -> io::Result<()>;
    /// Makes the file's data durable.
    fn sync(&self, path: &Path) -> io::Result<()>;
    /// Makes the directory's entries (creates, renames, removes) durable.
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;
    /// Atomically renames a file, replacing `to` if it exists.
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    /// Removes a file.
    fn remove(&self, path: &Path) -> io::Result<()>;
    /// The names of the files in `dir`, sorted. A missing directory is empty.
    fn list(&self, dir: &Path) -> io::Result<Vec<String>>;

    /// Appends `data` at the end of the file; returns the offset it starts at.
    fn append(&self, path: &Path, data: &[u8]) -> io::Result<u64> {
        let offset = self.len(path)?;
        self.write_at(path, offset, data)?;
        Ok(offset)
    }

    /// Shortens the file to `len` bytes (an alias of `set_len` that says why).
    fn truncate(&self, path: &Path, len: u64) -> io::Result<()> {
        self.set_len(path, len)
    }

    /// Reads the whole file.
    fn read_all(&self, path: &Path) -> io::Result<Vec<u8>> {
        let len = self.len(path)?;
        let len = usize::try_from(len)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "file too large to read"))?;
        let mut buf = vec![0u8; len];
        let mut done = 0;
        while done < len {
            let n = self.read_at(path, done as u64, &mut buf[done..])?;
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "file shrank while reading",
                ));
            }
            done += n;
        }
        Ok(buf)
    }
}

/// Writes `data` to `path` so that after this returns the file exists with
/// exactly `data`, or (after a crash before it returns) the old file is intact:
/// write a temporary file, sync it, rename it over `path`, sync the directory.
pub fn write_atomically(disk: &dyn Disk, path: &Path, data: &[u8]) -> io::Result<()> {
    let tmp = path.with_extension(match path.extension() {
        Some(ext) => format!("{}.tmp", ext.to_string_lossy()),
        None => "tmp".to_string(),
    });
    disk.create(&tmp)?;
    disk.write_at(&tmp, 0, data)?;
    disk.sync(&tmp)?;
    disk.rename(&tmp, path)?;
    disk.sync_dir(parent_dir(path))
}

/// The parent directory of a relative path (`""` for a top-level file).
pub fn parent_dir(path: &Path) -> &Path {
    path.parent().unwrap_or_else(|| Path::new(""))
}
