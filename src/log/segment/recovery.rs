//! Reopening the active segment: after a clean shutdown, trust the index files and check only the
//! batches after the last entry; otherwise scan the whole log, truncate a torn tail, report any
//! corruption and rewrite the indexes (segment-format.md, recovery).

use std::fs::File;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64};
use std::sync::Arc;

use parking_lot::RwLock;

use super::files::{open_append, open_log, rewrite_file};
use super::scan::{scan, valid_batch_at};
use super::{IndexCursor, OpenedActive, Segment, SegmentFiles, TIMESTAMP_NONE};
use crate::error::{Corruption, Error, Result};
use crate::log::index::{self, Indexes};
use crate::log::mmap::Map;
use crate::log::recovery_point::RecoveryPoint;

impl Segment {
    /// Opens the last segment of a partition for appending. After a clean shutdown its indexes are
    /// trusted and only the bytes after the last index entry are scanned; otherwise (or when that
    /// fails) the whole file is scanned, a torn tail truncated and the indexes rewritten.
    pub fn open_active(
        dir: &Path,
        base_offset: u64,
        capacity: usize,
        index_interval_bytes: u32,
        clean: bool,
        recovery_point: Option<RecoveryPoint>,
    ) -> Result<OpenedActive> {
        let (log_path, index_path, time_index_path) = Self::paths(dir, base_offset);
        let log = open_log(&log_path, false)?;
        let len = log.metadata().map_err(|e| Error::io(&log_path, e))?.len();
        let trusted = if clean {
            Self::tail_after_clean_shutdown(&log, &index_path, &time_index_path, base_offset, len)?
        } else {
            None
        };
        let recovered = match trusted {
            Some((indexes, cursor, next_offset)) => {
                Recovered { indexes, cursor, next_offset, corruption: None, rewrite_indexes: false }
            }
            None => {
                let recovery_position = RecoveryPoint::position_in(recovery_point, base_offset, len);
                // Its entries as they are, unchecked: only hints, each proven by the scan before use
                // (a rewritten index may lack the entry at position 0 that `decode_offsets` wants).
                let hints = std::fs::read(&index_path).ok().map(|b| {
                    let entry = |e: &[u8]| index::OffsetEntry {
                        relative_offset: u32::from_le_bytes(e[..4].try_into().unwrap()),
                        position: u32::from_le_bytes(e[4..].try_into().unwrap()),
                    };
                    b.chunks_exact(8).map(entry).collect::<Vec<_>>()
                });
                let at = (base_offset, len, index_interval_bytes, recovery_position);
                recover_by_scan(&log, &log_path, at, &hints.unwrap_or_default())?
            }
        };
        let Recovered { indexes, cursor, next_offset, corruption, rewrite_indexes } = recovered;
        let mut index = open_append(&index_path)?;
        let mut time_index = open_append(&time_index_path)?;
        if rewrite_indexes {
            rewrite_file(&mut index, &index_path, indexes.offsets.iter().flat_map(|e| e.encode()).collect())?;
            rewrite_file(&mut time_index, &time_index_path, indexes.times.iter().flat_map(|e| e.encode()).collect())?;
        }
        let published = cursor.position as usize;
        let map = Map::new(&log, capacity.max(published), published).map_err(|e| Error::io(&log_path, e))?;
        let seg = Segment {
            base_offset,
            log_path,
            index_path,
            time_index_path,
            map,
            indexes: RwLock::new(Some(indexes)),
            index_interval_bytes,
            next_offset: AtomicU64::new(next_offset.max(base_offset)),
            max_timestamp: AtomicI64::new(cursor.max_timestamp),
            indexes_rebuilt: AtomicBool::new(false),
        };
        Ok((Arc::new(seg), SegmentFiles { log: Arc::new(log), index, time_index }, cursor, corruption))
    }

    /// After a clean shutdown: trust the index files and scan only from the last indexed batch.
    /// `None` when anything does not add up (the caller then scans everything).
    fn tail_after_clean_shutdown(
        log: &File,
        index_path: &Path,
        time_index_path: &Path,
        base_offset: u64,
        len: u64,
    ) -> Result<Option<(Indexes, IndexCursor, u64)>> {
        let offsets = std::fs::read(index_path).ok().and_then(|b| index::decode_offsets(&b, len).ok());
        let times_raw = std::fs::read(time_index_path).ok();
        let Some(offsets) = offsets else { return Ok(None) };
        let start = offsets.last().map_or(0, |e| e.position as usize);
        let map = Map::new(log, len as usize, len as usize).map_err(|e| Error::io(index_path, e))?;
        let data = map.bytes();
        let mut pos = start;
        let mut next = offsets.last().map_or(base_offset, |e| base_offset + e.relative_offset as u64);
        let mut max_ts = TIMESTAMP_NONE;
        while pos < data.len() {
            match valid_batch_at(&data, pos, next, true) {
                Ok(h) => {
                    next = h.next_offset();
                    max_ts = max_ts.max(h.max_timestamp);
                    pos += h.len();
                }
                Err(_) => return Ok(None),
            }
        }
        let Some(times) = times_raw.and_then(|b| index::decode_times(&b, next - base_offset).ok()) else {
            return Ok(None);
        };
        let last_time = times.last().map_or(TIMESTAMP_NONE, |e| e.timestamp);
        let cursor = IndexCursor {
            bytes_since_entry: if offsets.is_empty() { u64::MAX } else { len - start as u64 },
            max_timestamp: max_ts.max(last_time),
            last_time_entry: last_time,
            position: len,
        };
        Ok(Some((Indexes { offsets, times }, cursor, next)))
    }
}

/// What reopening the active segment found: its indexes, where the writer resumes, any corruption,
/// and whether the index files must be rewritten from `indexes`.
struct Recovered {
    indexes: Indexes,
    cursor: IndexCursor,
    next_offset: u64,
    corruption: Option<(u64, Corruption)>,
    rewrite_indexes: bool,
}

/// Scans the whole log file (base offset, length, index interval, position of the recovery point
/// in it), truncates it to its valid batches and rebuilds the indexes (the index files are then
/// rewritten from them). `hints`: the entries of its old offset index, if it decoded.
fn recover_by_scan(
    log: &File,
    log_path: &Path,
    (base_offset, len, index_interval, recovery_position): (u64, u64, u32, u64),
    hints: &[index::OffsetEntry],
) -> Result<Recovered> {
    let scan = {
        // A temporary map for the scan, dropped before any truncation (mmap fact 3).
        let map = Map::new(log, len as usize, len as usize).map_err(|e| Error::io(log_path, e))?;
        let data = map.bytes();
        scan(&data, base_offset, index_interval, recovery_position, hints)
    };
    let torn = scan.valid_len < len;
    if torn {
        tracing::warn!(path = %log_path.display(), from = len, to = scan.valid_len, "truncating a torn tail");
    }
    // Made even when nothing is torn: it also frees the blocks an append reserved past
    // the log's end before a crash (section 8 of segment-format.md).
    log.set_len(scan.valid_len).map_err(|e| Error::io(log_path, e))?;
    if torn {
        log.sync_all().map_err(|e| Error::io(log_path, e))?;
    }
    if let Some((pos, c)) = &scan.corruption {
        tracing::error!(path = %log_path.display(), position = pos, detail = %c, "corrupt batch in the active segment; it will be reported, not served");
    }
    let mut cursor = IndexCursor::new();
    cursor.position = scan.valid_len;
    cursor.max_timestamp = scan.max_timestamp.unwrap_or(TIMESTAMP_NONE);
    cursor.last_time_entry = scan.indexes.times.last().map_or(TIMESTAMP_NONE, |e| e.timestamp);
    cursor.bytes_since_entry = scan.indexes.offsets.last().map_or(u64::MAX, |e| scan.valid_len - e.position as u64);
    // The scan added a final time entry; a writer that goes on must not repeat it.
    Ok(Recovered {
        indexes: scan.indexes,
        cursor,
        next_offset: scan.next_offset.unwrap_or(base_offset),
        corruption: scan.corruption,
        rewrite_indexes: true,
    })
}
