//! The files of a segment: creating a new active segment, opening a sealed one.

use std::fs::{File, OpenOptions};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64};
use std::sync::Arc;

use parking_lot::RwLock;

use super::{Segment, SegmentFiles, TIMESTAMP_NONE, TIMESTAMP_UNKNOWN};
use crate::error::{Error, Result};
use crate::log::index::Indexes;
use crate::log::io;
use crate::log::mmap::Map;

pub(super) fn open_append(path: &Path) -> Result<File> {
    OpenOptions::new().create(true).read(true).append(true).open(path).map_err(|e| Error::io(path, e))
}

/// A log file is written at explicit positions (`pwrite`), not appended to: under `sync` its end
/// may be a zero-filled tail (see `Partition::write_staged`).
pub(super) fn open_log(path: &Path, create_new: bool) -> Result<File> {
    let mut o = OpenOptions::new();
    o.read(true).write(true);
    match create_new {
        true => o.create_new(true),
        false => o.create(true),
    };
    o.open(path).map_err(|e| Error::io(path, e))
}

/// Replaces the contents of a file opened in append mode.
pub(super) fn rewrite_file(f: &mut File, path: &Path, bytes: Vec<u8>) -> Result<()> {
    use std::io::Write;
    f.set_len(0).map_err(|e| Error::io(path, e))?;
    f.write_all(&bytes).map_err(|e| Error::io(path, e))
}

impl Segment {
    /// Creates the three files of a new, empty active segment and fsyncs the directory.
    pub fn create(
        dir: &Path,
        base_offset: u64,
        capacity: usize,
        index_interval_bytes: u32,
    ) -> Result<(Arc<Segment>, SegmentFiles)> {
        let (log_path, index_path, time_index_path) = Self::paths(dir, base_offset);
        let create =
            |p: &Path| OpenOptions::new().create_new(true).read(true).append(true).open(p).map_err(|e| Error::io(p, e));
        let log = open_log(&log_path, true)?;
        // Index files are derived from the log: a leftover one (say, from an interrupted run) is
        // replaced, while a leftover log is an error, never overwritten.
        for p in [&index_path, &time_index_path] {
            match std::fs::remove_file(p) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(Error::io(p, e)),
                _ => {}
            }
        }
        let index = create(&index_path)?;
        let time_index = create(&time_index_path)?;
        io::sync_dir(dir)?;
        let map = Map::new(&log, capacity, 0).map_err(|e| Error::io(&log_path, e))?;
        let seg = Segment {
            base_offset,
            log_path,
            index_path,
            time_index_path,
            map,
            indexes: RwLock::new(Some(Indexes::default())),
            index_interval_bytes,
            next_offset: AtomicU64::new(base_offset),
            max_timestamp: AtomicI64::new(TIMESTAMP_NONE),
            indexes_rebuilt: AtomicBool::new(false),
        };
        Ok((Arc::new(seg), SegmentFiles { log: Arc::new(log), index, time_index }))
    }

    /// Opens a sealed segment without reading it: indexes load on first use.
    pub fn open_sealed(
        dir: &Path,
        base_offset: u64,
        next_offset: u64,
        index_interval_bytes: u32,
    ) -> Result<Arc<Segment>> {
        let (log_path, index_path, time_index_path) = Self::paths(dir, base_offset);
        let log = File::open(&log_path).map_err(|e| Error::io(&log_path, e))?;
        let len = log.metadata().map_err(|e| Error::io(&log_path, e))?.len() as usize;
        let map = Map::new(&log, len, len).map_err(|e| Error::io(&log_path, e))?;
        Ok(Arc::new(Segment {
            base_offset,
            log_path,
            index_path,
            time_index_path,
            map,
            indexes: RwLock::new(None),
            index_interval_bytes,
            next_offset: AtomicU64::new(next_offset),
            max_timestamp: AtomicI64::new(TIMESTAMP_UNKNOWN),
            indexes_rebuilt: AtomicBool::new(false),
        }))
    }
}
