//! Saving, choosing and purging snapshot files.
//!
//! Crash consistency of `save`: the file is written under a temporary name
//! (`*.snap.tmp`, never taken for a snapshot), fsynced, renamed to its final
//! name, and the directory is fsynced ([`disk::write_atomically`]). A power
//! loss at any point leaves either no file under the final name or the
//! complete, synced one — never a torn file under a snapshot name. If a disk
//! breaks that promise (lost fsync, bit rot), the CRC catches it on load and
//! the file is quarantined, not used.
//!
//! Selection (`load_newest_available`) also needs the WAL: a snapshot is only
//! usable if the WAL holds its marker, because replay starts right after the
//! marker. A crash between saving the file and writing the marker leaves a
//! newer snapshot with no marker, which must be passed over.

use super::record::{self, MAX_HEADER_BYTES};
use super::{MAX_PAYLOAD_BYTES, SnapError, Snapshot, name};
use crate::bugs::{Bug, KnownBugs};
use crate::disk::{self, Disk};
use crate::proto::SnapshotMarker;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Reads and writes the snapshot files of one directory.
#[derive(Debug, Clone)]
pub struct Snapshotter {
    disk: Arc<dyn Disk>,
    dir: PathBuf,
    max_payload: u64,
    /// Known bug `snapshot-rename-error-ignored`.
    ignore_rename_error: bool,
}

/// Suffix of a file that failed to load, kept for inspection (as etcd does).
const BROKEN_SUFFIX: &str = ".broken";
/// Suffix `write_atomically` gives the temporary file of `x.snap`.
const TMP_SUFFIX: &str = ".snap.tmp";

impl Snapshotter {
    /// Snapshots in `dir` (relative to the disk's root). No I/O happens here;
    /// `save` creates the directory when needed.
    pub fn new(disk: Arc<dyn Disk>, dir: &Path) -> Self {
        Snapshotter {
            disk,
            dir: dir.to_path_buf(),
            max_payload: MAX_PAYLOAD_BYTES,
            ignore_rename_error: false,
        }
    }

    /// The same snapshotter with the store's known-bug switches.
    pub fn with_known_bugs(mut self, bugs: KnownBugs) -> Self {
        self.ignore_rename_error = bugs.has(Bug::SnapshotRenameErrorIgnored);
        self
    }

    /// The same snapshotter with a different payload bound (tests, tools).
    pub fn with_max_payload(mut self, bytes: u64) -> Self {
        self.max_payload = bytes;
        self
    }

    /// The snapshot directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The path of a snapshot file name inside the directory.
    pub fn path_of(&self, file_name: &str) -> PathBuf {
        self.dir.join(file_name)
    }

    /// Durably writes `snap` as `{term:016x}-{index:016x}.snap`, replacing a
    /// file of the same name. On `Ok` the file and its name are durable.
    pub fn save(&self, snap: &Snapshot) -> Result<(), SnapError> {
        let bytes = record::encode(snap, self.max_payload).map_err(|e| SnapError::TooLarge {
            size: e.0,
            max: self.max_payload,
        })?;
        let path = self.path_of(&name::file_name(snap.marker.term, snap.marker.index));
        self.disk
            .create_dir_all(&self.dir)
            .map_err(|e| self.io(&self.dir, e))?;
        if self.ignore_rename_error {
            return self.save_ignoring_rename_error(&path, &bytes);
        }
        disk::write_atomically(&*self.disk, &path, &bytes).map_err(|e| self.io(&path, e))
    }

    /// Known bug: `write_atomically`'s steps, but a failed rename of the
    /// temporary file is taken for done (a rename "cannot" fail), so the
    /// WAL marker that follows names a snapshot that is not there.
    fn save_ignoring_rename_error(&self, path: &Path, bytes: &[u8]) -> Result<(), SnapError> {
        let tmp = path.with_extension("snap.tmp");
        let err = |e| self.io(&tmp, e);
        self.disk.create(&tmp).map_err(err)?;
        self.disk.write_at(&tmp, 0, bytes).map_err(err)?;
        self.disk.sync(&tmp).map_err(err)?;
        if self.disk.rename(&tmp, path).is_err() {
            return Ok(());
        }
        self.disk.sync_dir(&self.dir).map_err(|e| self.io(path, e))
    }

    /// The newest snapshot (by index, then term) that decodes and whose
    /// (index, term) is among `wal_markers`; `None` if there is none.
    ///
    /// Files are tried newest first, as etcd does. A corrupt one is renamed
    /// to `*.broken` (kept for inspection, out of the way of the next start)
    /// and skipped; one without a WAL marker is skipped and left alone (it is
    /// a legitimate leftover of a crash before the marker was written). I/O
    /// errors are not corruption: they stop the search.
    pub fn load_newest_available(
        &self,
        wal_markers: &[SnapshotMarker],
    ) -> Result<Option<Snapshot>, SnapError> {
        Ok(self.load_newest_available_reporting(wal_markers)?.0)
    }

    /// [`Snapshotter::load_newest_available`], also returning the corrupt
    /// files it quarantined on the way (newest first), so a caller that
    /// cannot use the fallback can say which file was damaged and where.
    pub fn load_newest_available_reporting(
        &self,
        wal_markers: &[SnapshotMarker],
    ) -> Result<(Option<Snapshot>, Vec<SnapError>), SnapError> {
        let mut corrupt = Vec::new();
        for file_name in self.list()? {
            match self.load(&file_name) {
                Ok(snap) => {
                    let m = &snap.marker;
                    if wal_markers
                        .iter()
                        .any(|w| w.index == m.index && w.term == m.term)
                    {
                        return Ok((Some(snap), corrupt));
                    }
                    tracing::warn!(
                        file = %self.path_of(&file_name).display(),
                        index = m.index,
                        term = m.term,
                        "skipping snapshot: the WAL has no marker for it"
                    );
                }
                Err(SnapError::Corrupt {
                    file,
                    offset,
                    reason,
                }) => {
                    tracing::warn!(
                        file = %file.display(),
                        offset,
                        reason = %reason,
                        "skipping corrupt snapshot; renaming it to *{BROKEN_SUFFIX}"
                    );
                    self.quarantine(&file_name)?;
                    corrupt.push(SnapError::Corrupt {
                        file,
                        offset,
                        reason,
                    });
                }
                Err(e) => return Err(e),
            }
        }
        Ok((None, corrupt))
    }

    /// Names of files quarantined (`*.broken`) by earlier loads, sorted.
    pub fn quarantined(&self) -> Result<Vec<String>, SnapError> {
        Ok(self
            .disk
            .list(&self.dir)
            .map_err(|e| self.io(&self.dir, e))?
            .into_iter()
            .filter(|n| n.ends_with(BROKEN_SUFFIX))
            .collect())
    }

    /// Loads one snapshot file strictly: any defect is `Corrupt` with the
    /// byte offset, including a name that disagrees with the contents.
    pub fn load(&self, file_name: &str) -> Result<Snapshot, SnapError> {
        let path = self.path_of(file_name);
        let corrupt = |offset: u64, reason: String| SnapError::Corrupt {
            file: path.clone(),
            offset,
            reason,
        };
        let len = match self.disk.len(&path) {
            Ok(len) => len,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(SnapError::NotFound { file: path });
            }
            Err(e) => return Err(self.io(&path, e)),
        };
        // Checked before reading, so a huge file is never pulled into memory.
        let max_len = self.max_payload.saturating_add(MAX_HEADER_BYTES);
        if len > max_len {
            return Err(corrupt(
                max_len,
                format!("file is {len} bytes, longer than any snapshot ({max_len})"),
            ));
        }
        let bytes = self.disk.read_all(&path).map_err(|e| self.io(&path, e))?;
        let decoded = record::decode(&bytes, self.max_payload)
            .map_err(|bad| corrupt(bad.offset, bad.reason))?;
        let m = &decoded.snapshot.marker;
        if let Some((term, index)) = name::parse(file_name)
            && (term, index) != (m.term, m.index)
        {
            return Err(corrupt(
                decoded.payload_offset,
                format!(
                    "file name says term {term} index {index}, contents say term {} index {}",
                    m.term, m.index
                ),
            ));
        }
        Ok(decoded.snapshot)
    }

    /// Snapshot file names, newest (by index, then term) first. Temporary,
    /// quarantined and foreign files are not listed.
    pub fn list(&self) -> Result<Vec<String>, SnapError> {
        let mut snaps: Vec<((u64, u64), String)> = self
            .disk
            .list(&self.dir)
            .map_err(|e| self.io(&self.dir, e))?
            .into_iter()
            .filter_map(|n| name::parse(&n).map(|(term, index)| ((index, term), n)))
            .collect();
        snaps.sort_by_key(|s| std::cmp::Reverse(s.0));
        Ok(snaps.into_iter().map(|(_, n)| n).collect())
    }

    /// Removes all but the newest `keep` snapshot files, and temporary files
    /// of interrupted saves, then syncs the directory. `*.broken` files stay.
    ///
    /// The caller must only purge once the snapshots it keeps have their WAL
    /// markers durably written, or a crash could leave no usable snapshot.
    pub fn purge(&self, keep: usize) -> Result<(), SnapError> {
        let mut doomed: Vec<String> = self.list()?.into_iter().skip(keep).collect();
        // Safe: saves are synchronous, so no save is in flight right now.
        doomed.extend(
            self.disk
                .list(&self.dir)
                .map_err(|e| self.io(&self.dir, e))?
                .into_iter()
                .filter(|n| n.ends_with(TMP_SUFFIX)),
        );
        if doomed.is_empty() {
            return Ok(());
        }
        for file_name in doomed {
            let path = self.path_of(&file_name);
            self.disk.remove(&path).map_err(|e| self.io(&path, e))?;
        }
        // A power loss before this sync may bring some removed files back;
        // they are older than the kept ones and a later purge removes them.
        self.disk
            .sync_dir(&self.dir)
            .map_err(|e| self.io(&self.dir, e))
    }

    /// Renames a corrupt snapshot to `*.broken` and makes that durable. If a
    /// power loss undoes the rename, the next start finds the file corrupt
    /// again and repeats it.
    fn quarantine(&self, file_name: &str) -> Result<(), SnapError> {
        let from = self.path_of(file_name);
        let to = self.path_of(&format!("{file_name}{BROKEN_SUFFIX}"));
        self.disk
            .rename(&from, &to)
            .map_err(|e| self.io(&from, e))?;
        self.disk
            .sync_dir(&self.dir)
            .map_err(|e| self.io(&self.dir, e))
    }

    fn io(&self, file: &Path, source: io::Error) -> SnapError {
        SnapError::Io {
            file: file.to_path_buf(),
            source,
        }
    }
}

#[cfg(test)]
mod tests;
