//! [`Disk`] over `std::fs`, for real data directories (backup, dump, tests).

use super::Disk;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Component, Path, PathBuf};

/// A real directory on the local filesystem.
#[derive(Debug, Clone)]
pub struct StdDisk {
    root: PathBuf,
}

impl StdDisk {
    /// A disk rooted at `root` (created if missing).
    pub fn new(root: impl Into<PathBuf>) -> io::Result<Self> {
        let root = root.into();
        fs::create_dir_all(&root)?;
        Ok(Self { root })
    }

    /// The directory this disk is rooted at.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn full(&self, path: &Path) -> io::Result<PathBuf> {
        if path
            .components()
            .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir))
        {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("path {} escapes the data directory", path.display()),
            ));
        }
        Ok(self.root.join(path))
    }

    fn open_rw(&self, path: &Path) -> io::Result<File> {
        OpenOptions::new()
            .read(true)
            .write(true)
            .open(self.full(path)?)
    }
}

impl Disk for StdDisk {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        fs::create_dir_all(self.full(dir)?)
    }

    fn create(&self, path: &Path) -> io::Result<()> {
        OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .open(self.full(path)?)
            .map(drop)
    }

    fn exists(&self, path: &Path) -> io::Result<bool> {
        self.full(path)?.try_exists()
    }

    fn len(&self, path: &Path) -> io::Result<u64> {
        Ok(fs::metadata(self.full(path)?)?.len())
    }

    fn read_at(&self, path: &Path, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        let file = File::open(self.full(path)?)?;
        let mut done = 0;
        while done < buf.len() {
            match file.read_at(&mut buf[done..], offset + done as u64) {
                Ok(0) => break,
                Ok(n) => done += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
        Ok(done)
    }

    fn write_at(&self, path: &Path, offset: u64, data: &[u8]) -> io::Result<()> {
        self.open_rw(path)?.write_all_at(data, offset)
    }

    fn set_len(&self, path: &Path, len: u64) -> io::Result<()> {
        self.open_rw(path)?.set_len(len)
    }

    fn sync(&self, path: &Path) -> io::Result<()> {
        self.open_rw(path)?.sync_all()
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        File::open(self.full(dir)?)?.sync_all()
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        fs::rename(self.full(from)?, self.full(to)?)
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        fs::remove_file(self.full(path)?)
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        let dir = self.full(dir)?;
        let entries = match fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let mut names = Vec::new();
        for entry in entries {
            let entry = entry?;
            if entry.file_type()?.is_file() {
                names.push(entry.file_name().to_string_lossy().into_owned());
            }
        }
        names.sort();
        Ok(names)
    }
}
