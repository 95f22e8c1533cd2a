//! redb's [`StorageBackend`] over the [`Disk`] trait.
//!
//! Every byte redb reads or writes, and every `sync_data` of a commit, goes
//! through the member's disk, so the simulator sees (and can crash between)
//! the individual writes of a redb commit. redb's lock methods keep their
//! "unsupported" defaults: a member is the only process using its file, and
//! redb's default `ExclusiveWriter` mode works without locks.

use crate::disk::Disk;
use redb::StorageBackend;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// One redb database file on a [`Disk`].
#[derive(Debug, Clone)]
pub(crate) struct DiskStorage {
    disk: Arc<dyn Disk>,
    path: PathBuf,
    /// Known bug `ignore-storage-full`: a write refused for lack of space
    /// is reported as done.
    ignore_full: bool,
}

impl DiskStorage {
    /// Uses the file at `path`, creating it (durably) if it is missing.
    ///
    /// The file's directory entry is synced before redb writes anything: redb
    /// fsyncs only the file's data, so without this a power loss could drop
    /// the whole file after redb believed its first commit durable.
    pub(crate) fn open(disk: Arc<dyn Disk>, path: &Path) -> io::Result<DiskStorage> {
        if !disk.exists(path)? {
            let dir = crate::disk::parent_dir(path);
            if !dir.as_os_str().is_empty() {
                disk.create_dir_all(dir)?;
            }
            disk.create(path)?;
            disk.sync(path)?;
            disk.sync_dir(dir)?;
        }
        Ok(DiskStorage {
            disk,
            path: path.to_path_buf(),
            ignore_full: false,
        })
    }

    /// Re-introduces the known bug `ignore-storage-full`.
    pub(crate) fn ignoring_full_disk(self, ignore_full: bool) -> DiskStorage {
        DiskStorage {
            ignore_full,
            ..self
        }
    }

    /// A failed write, unless the known bug swallows a full disk.
    fn written(&self, result: io::Result<()>) -> io::Result<()> {
        match result {
            Err(e) if self.ignore_full && e.kind() == io::ErrorKind::StorageFull => Ok(()),
            other => other,
        }
    }

    fn annotate(&self, op: &str, offset: u64, e: io::Error) -> io::Error {
        io::Error::new(
            e.kind(),
            format!("{} at offset {offset}: {op}: {e}", self.path.display()),
        )
    }
}

impl StorageBackend for DiskStorage {
    fn len(&self) -> Result<u64, io::Error> {
        self.disk.len(&self.path)
    }

    fn read(&self, offset: u64, out: &mut [u8]) -> Result<(), io::Error> {
        // redb requires the whole range to exist: a short read is an error.
        let mut done = 0usize;
        while done < out.len() {
            let at = offset + done as u64;
            let n = self
                .disk
                .read_at(&self.path, at, &mut out[done..])
                .map_err(|e| self.annotate("read", at, e))?;
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!(
                        "{} at offset {at}: read past end of file ({} of {} bytes missing)",
                        self.path.display(),
                        out.len() - done,
                        out.len()
                    ),
                ));
            }
            done += n;
        }
        Ok(())
    }

    fn set_len(&self, len: u64) -> Result<(), io::Error> {
        self.written(self.disk.set_len(&self.path, len))
            .map_err(|e| self.annotate("set_len", len, e))
    }

    fn sync_data(&self) -> Result<(), io::Error> {
        self.disk
            .sync(&self.path)
            .map_err(|e| self.annotate("sync", 0, e))
    }

    fn write(&self, offset: u64, data: &[u8]) -> Result<(), io::Error> {
        self.written(self.disk.write_at(&self.path, offset, data))
            .map_err(|e| self.annotate("write", offset, e))
    }
}
