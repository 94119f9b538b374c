//! A segment: one `.log` file of batches, mapped for reads, and its two sparse indexes.
//!
//! - `files.rs` — creating a new active segment and opening a sealed one;
//! - `scan.rs` — the checking scan of a log file: where the valid batches end, torn tail or
//!   corruption, and the indexes rebuilt from the batches;
//! - `recovery.rs` — reopening the active segment after a clean shutdown or a crash;
//! - `read.rs` — reads by offset and by timestamp, and [`ReadBatch`].

mod files;
mod read;
mod recovery;
mod scan;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use parking_lot::RwLock;

use super::batch::BatchHeader;
use super::index::{self, Indexes, OffsetEntry, TimeEntry};
use super::io;
use super::mmap::Map;
use crate::error::{Corruption, Error, Result};
use crate::fault::FaultInjector;

pub use read::ReadBatch;
use scan::scan;

/// `max_timestamp` of a segment whose indexes are not loaded yet.
const TIMESTAMP_UNKNOWN: i64 = i64::MIN;
/// `max_timestamp` of a segment without records.
pub(crate) const TIMESTAMP_NONE: i64 = i64::MIN + 1;

/// The file name stem of a segment: its base offset, 20 digits.
pub(crate) fn file_stem(base_offset: u64) -> String {
    format!("{base_offset:020}")
}

/// Parses `00000000000000000042.log` → 42.
pub(crate) fn parse_file_name(name: &str, extension: &str) -> Option<u64> {
    let stem = name.strip_suffix(extension)?.strip_suffix('.')?;
    if stem.len() != 20 || !stem.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    stem.parse().ok()
}

#[derive(Debug)]
pub(crate) struct Segment {
    pub base_offset: u64,
    pub log_path: PathBuf,
    pub index_path: PathBuf,
    pub time_index_path: PathBuf,
    map: Arc<Map>,
    /// `None` until loaded: sealed segments load their indexes on first use, so open is fast.
    indexes: RwLock<Option<Indexes>>,
    index_interval_bytes: u32,
    /// The offset after the last record of the segment.
    next_offset: AtomicU64,
    max_timestamp: AtomicI64,
    /// Set once the in-memory indexes were rebuilt from the log because an entry did not match it.
    indexes_rebuilt: AtomicBool,
}

/// An active segment as reopened: the segment, its files, where the writer resumes, and any
/// corruption recovery found (position and evidence).
pub(crate) type OpenedActive = (Arc<Segment>, SegmentFiles, IndexCursor, Option<(u64, Corruption)>);

/// Whether a read stopped because its budget ran out or because the segment had nothing more.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Flow {
    Continue,
    Stop,
}

/// The files of a new or reopened active segment, held by the partition's writer.
#[derive(Debug)]
pub(crate) struct SegmentFiles {
    pub log: Arc<File>,
    pub index: File,
    pub time_index: File,
}

/// Index-building state shared by the writer and by scans, so both produce the same indexes.
#[derive(Debug, Clone)]
pub(crate) struct IndexCursor {
    pub bytes_since_entry: u64,
    pub max_timestamp: i64,
    pub last_time_entry: i64,
    pub position: u64,
}

impl IndexCursor {
    pub fn new() -> IndexCursor {
        IndexCursor {
            bytes_since_entry: u64::MAX,
            max_timestamp: TIMESTAMP_NONE,
            last_time_entry: TIMESTAMP_NONE,
            position: 0,
        }
    }

    /// Entries to add for a batch about to be placed at `self.position`.
    pub fn entries_for(
        &mut self,
        base_offset: u64,
        h: &BatchHeader,
        interval: u32,
    ) -> (Option<OffsetEntry>, Option<TimeEntry>) {
        let relative_offset = (h.base_offset - base_offset) as u32;
        let mut offset_entry = None;
        let mut time_entry = None;
        self.max_timestamp = self.max_timestamp.max(h.max_timestamp);
        if self.bytes_since_entry >= interval as u64 {
            offset_entry = Some(OffsetEntry { relative_offset, position: self.position as u32 });
            self.bytes_since_entry = 0;
            if self.max_timestamp > self.last_time_entry {
                time_entry = Some(TimeEntry { timestamp: self.max_timestamp, relative_offset });
                self.last_time_entry = self.max_timestamp;
            }
        }
        self.bytes_since_entry += h.length as u64;
        self.position += h.length as u64;
        (offset_entry, time_entry)
    }

    /// The last time-index entry of a segment being sealed: records its maximum timestamp.
    pub fn final_time_entry(&mut self, relative_offset: u32) -> Option<TimeEntry> {
        (self.max_timestamp > self.last_time_entry).then(|| {
            self.last_time_entry = self.max_timestamp;
            TimeEntry { timestamp: self.max_timestamp, relative_offset }
        })
    }
}

impl Segment {
    /// The `.log`, `.index` and `.timeindex` paths of the segment at `base_offset` in `dir`.
    pub(crate) fn paths(dir: &Path, base_offset: u64) -> (PathBuf, PathBuf, PathBuf) {
        let stem = file_stem(base_offset);
        (dir.join(format!("{stem}.log")), dir.join(format!("{stem}.index")), dir.join(format!("{stem}.timeindex")))
    }

    pub fn next_offset(&self) -> u64 {
        self.next_offset.load(Ordering::Acquire)
    }

    /// Bytes of log readable now.
    pub fn size(&self) -> u64 {
        self.map.published() as u64
    }

    /// The newest timestamp in the segment (`TIMESTAMP_NONE` when empty).
    pub fn max_timestamp(&self) -> Result<i64> {
        let ts = self.max_timestamp.load(Ordering::Acquire);
        if ts != TIMESTAMP_UNKNOWN {
            return Ok(ts);
        }
        let ts = self.with_indexes(|ix| ix.times.last().map_or(TIMESTAMP_NONE, |e| e.timestamp))?;
        self.max_timestamp.store(ts, Ordering::Release);
        Ok(ts)
    }

    /// Loads the indexes now if they are not loaded. The cleaner calls it before it deletes or
    /// replaces the segment's files, so that readers still holding this segment never read (or
    /// rebuild) index files by a path that is gone or names a new file.
    pub(crate) fn load_indexes_now(&self) -> Result<()> {
        self.with_indexes(|_| ())?;
        self.max_timestamp().map(|_| ())
    }

    /// Deletes the segment's three files (a missing one is fine). The caller fsyncs the directory.
    /// Readers holding this segment keep reading its map (mmap fact 3).
    pub(crate) fn remove_files(&self) -> Result<()> {
        for p in [&self.log_path, &self.index_path, &self.time_index_path] {
            match std::fs::remove_file(p) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::io(p, e)),
            }
        }
        Ok(())
    }

    /// Runs `f` over the loaded indexes, loading (or rebuilding) them first if needed.
    fn with_indexes<T>(&self, f: impl FnOnce(&Indexes) -> T) -> Result<T> {
        if let Some(ix) = &*self.indexes.read() {
            return Ok(f(ix));
        }
        let mut guard = self.indexes.write();
        if guard.is_none() {
            *guard = Some(self.load_indexes()?);
        }
        Ok(f(guard.as_ref().unwrap()))
    }

    /// Reads the index files of a sealed segment; rebuilds both from the log when either is damaged.
    fn load_indexes(&self) -> Result<Indexes> {
        let len = self.size();
        let rel_end = self.next_offset() - self.base_offset;
        let offsets =
            std::fs::read(&self.index_path).map_err(|e| e.to_string()).and_then(|b| index::decode_offsets(&b, len));
        let times = std::fs::read(&self.time_index_path)
            .map_err(|e| e.to_string())
            .and_then(|b| index::decode_times(&b, rel_end));
        match (offsets, times) {
            (Ok(offsets), Ok(times)) if len == 0 || !offsets.is_empty() => Ok(Indexes { offsets, times }),
            (o, t) => {
                let why = o.err().or(t.err()).unwrap_or_else(|| "empty index".into());
                tracing::warn!(path = %self.index_path.display(), %why, "rebuilding the indexes of a sealed segment");
                let data = self.map.bytes();
                let s = scan(&data, self.base_offset, self.index_interval_bytes, u64::MAX, &[]);
                let write = |p: &Path, b: Vec<u8>| io::write_atomic(p, &b);
                write(&self.index_path, s.indexes.offsets.iter().flat_map(|e| e.encode()).collect())?;
                write(&self.time_index_path, s.indexes.times.iter().flat_map(|e| e.encode()).collect())?;
                Ok(s.indexes)
            }
        }
    }

    /// Called by the writer after `write()` returned: makes the batch readable and indexes it.
    pub fn publish(&self, h: &BatchHeader, position_end: u64, entries: (Option<OffsetEntry>, Option<TimeEntry>)) {
        if entries.0.is_some() || entries.1.is_some() {
            let mut ix = self.indexes.write();
            let ix = ix.as_mut().expect("the active segment's indexes are loaded");
            ix.offsets.extend(entries.0);
            ix.times.extend(entries.1);
        }
        self.max_timestamp.fetch_max(h.max_timestamp, Ordering::AcqRel);
        self.next_offset.store(h.next_offset(), Ordering::Release);
        self.map.publish(position_end as usize);
    }

    /// Adds the final time-index entry when the segment is sealed.
    pub fn push_time_entry(&self, e: TimeEntry) {
        self.indexes.write().as_mut().expect("active segment indexes are loaded").times.push(e);
    }

    /// The mapped bytes of the segment as one shared `Bytes`.
    pub fn data(&self) -> Bytes {
        self.map.bytes()
    }

    fn corrupted(&self, position: usize, detail: Corruption) -> Error {
        Error::Corrupted { path: self.log_path.clone(), position: position as u64, detail }
    }
}

/// Appends an index entry to its file.
pub(crate) fn append_entry(file: &File, path: &Path, bytes: &[u8], faults: Option<&FaultInjector>) -> Result<()> {
    io::append(file, path, bytes, faults)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names() {
        assert_eq!(file_stem(42), "00000000000000000042");
        assert_eq!(parse_file_name("00000000000000000042.log", "log"), Some(42));
        assert_eq!(parse_file_name("00000000000000000042.index", "log"), None);
        assert_eq!(parse_file_name("42.log", "log"), None);
        assert_eq!(parse_file_name("0000000000000000004x.log", "log"), None);
    }
}
