//! Out-of-order writeback at a simulated power loss: the seam records every write of a log or
//! index file that no completed fsync of that file covers yet, and copies the data directory as a
//! power loss could leave it, with any chosen set of those writes (or pieces of them: pages,
//! sectors) missing. A missing piece reads as zeros: a new file's bytes that were never written.
//! Writes an fsync covered are always there.

use std::path::{Path, PathBuf};

/// A write of a log or index file that no completed fsync covers yet (or a piece of one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnsyncedWrite {
    /// The file, as the store named it (inside the data directory it was opened on).
    pub path: PathBuf,
    /// Its first byte in the file.
    pub position: u64,
    pub len: u64,
    /// Order of the write among all recorded ones (its pieces share it).
    pub seq: u64,
}

impl UnsyncedWrite {
    /// The write cut at every multiple of `unit` bytes of the file (4096: the pages the kernel
    /// writes back one by one; 512: the sectors a device may tear a page into), in file order.
    pub fn pieces(&self, unit: u64) -> Vec<UnsyncedWrite> {
        assert!(unit > 0, "a piece has at least one byte");
        let (mut at, end) = (self.position, self.position + self.len);
        let mut out = Vec::new();
        while at < end {
            let next = ((at / unit + 1) * unit).min(end);
            out.push(UnsyncedWrite { path: self.path.clone(), position: at, len: next - at, seq: self.seq });
            at = next;
        }
        out
    }
}

#[derive(Debug, Default)]
pub(super) struct Writeback {
    recording: bool,
    next_seq: u64,
    unsynced: Vec<UnsyncedWrite>,
}

impl super::FaultInjector {
    /// Starts recording the writes of log and index files that no fsync covers yet (see
    /// [`unsynced_writes`](Self::unsynced_writes), [`crash_copy`](Self::crash_copy)).
    pub fn record_writeback(&self) {
        self.writeback.lock().recording = true;
    }

    /// The recorded writes no completed fsync covers, oldest first.
    pub fn unsynced_writes(&self) -> Vec<UnsyncedWrite> {
        self.writeback.lock().unsynced.clone()
    }

    /// Copies the data directory `from` (the store's, open and idle: the page cache holds every
    /// write) to `to` (regular files and directories, not `LOCK`) as a power loss could leave it:
    /// every byte of `missing` (unsynced writes or pieces of them, files of `from`) reads as zero.
    pub fn crash_copy(&self, from: &Path, to: &Path, missing: &[UnsyncedWrite]) -> std::io::Result<()> {
        copy_tree(from, to)?;
        for w in missing {
            let rel = w.path.strip_prefix(from).map_err(|_| std::io::Error::other("a write outside the directory"))?;
            let file = std::fs::OpenOptions::new().write(true).open(to.join(rel))?;
            crate::log::io::write_zeros(&file, w.position, w.position + w.len)?;
        }
        Ok(())
    }

    /// Whether writes are being recorded (a caller that must work to learn a write's position asks).
    pub(crate) fn recording_writeback(&self) -> bool {
        self.writeback.lock().recording
    }

    /// Records a write of `len` bytes at `position` of `path` that returned.
    pub(crate) fn wrote_at(&self, path: &Path, position: u64, len: u64) {
        let mut wb = self.writeback.lock();
        if wb.recording && len > 0 {
            let seq = wb.next_seq;
            wb.next_seq += 1;
            wb.unsynced.push(UnsyncedWrite { path: path.to_path_buf(), position, len, seq });
        }
    }

    /// Before an fsync: the number of the first write it does not cover.
    pub(crate) fn sync_starts(&self) -> u64 {
        self.writeback.lock().next_seq
    }

    /// After a successful fsync of `path` begun when `seq_end` was the next write's number: the
    /// writes of `path` before it are on stable storage.
    pub(crate) fn sync_done(&self, path: &Path, seq_end: u64) {
        self.writeback.lock().unsynced.retain(|w| !(w.path == path && w.seq < seq_end));
    }
}

fn copy_tree(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for e in std::fs::read_dir(from)? {
        let e = e?;
        let target = to.join(e.file_name());
        let ty = e.file_type()?;
        if ty.is_dir() {
            copy_tree(&e.path(), &target)?;
        } else if ty.is_file() && e.file_name() != crate::store::LOCK_FILE {
            std::fs::copy(e.path(), &target)?;
        }
    }
    Ok(())
}
