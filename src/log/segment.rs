//! A segment: one `.log` file of batches, mapped for reads, and its two sparse indexes.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use parking_lot::RwLock;

use super::batch::{self, BatchHeader};
use super::index::{self, Indexes, OffsetEntry, TimeEntry};
use super::io;
use super::mmap::Map;
use super::record::{Record, RecordRef};
use crate::error::{Corruption, Error, Result};
use crate::fault::FaultInjector;

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

/// What a scan of a log file found.
#[derive(Debug, Default)]
pub(crate) struct Scan {
    /// End of the last valid batch: everything after it is a torn tail.
    pub valid_len: u64,
    /// Offset after the last valid batch, if any.
    pub next_offset: Option<u64>,
    pub max_timestamp: Option<i64>,
    pub indexes: Indexes,
    /// The first bad batch that valid batches follow: corruption, not a torn tail.
    pub corruption: Option<(u64, Corruption)>,
    /// Whether the bytes after `valid_len` were something other than a clean end.
    pub torn: bool,
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

/// Scans `data` (a whole log file) batch by batch, checking lengths, offsets and CRCs, and rebuilds
/// the indexes. A bad batch (including one whose length runs past the end of the file) followed by a
/// valid one is corruption: it is recorded and the scan goes on from the valid one. A bad or
/// incomplete batch with nothing valid after it is a torn tail: the scan stops.
pub(crate) fn scan(data: &[u8], base_offset: u64, index_interval: u32) -> Scan {
    let mut s = Scan::default();
    let mut cursor = IndexCursor::new();
    let mut expected = base_offset;
    let mut pos = 0usize;
    let mut force_entry = false;
    while pos < data.len() {
        match valid_batch_at(data, pos, expected) {
            Ok(h) => {
                if force_entry {
                    cursor.bytes_since_entry = u64::MAX;
                    force_entry = false;
                }
                cursor.position = pos as u64;
                let (oe, te) = cursor.entries_for(base_offset, &h, index_interval);
                s.indexes.offsets.extend(oe);
                s.indexes.times.extend(te);
                expected = h.next_offset();
                s.next_offset = Some(expected);
                pos += h.len();
                s.valid_len = pos as u64;
            }
            // A batch that runs past the end is a torn write only if nothing valid follows it:
            // a damaged length field in the middle of the file looks the same, and truncating
            // there would throw away every acknowledged batch after it.
            Err(tail) => match resync(data, pos + 1, expected) {
                Some(next) => {
                    if s.corruption.is_none() {
                        let detail = match tail {
                            TailKind::Bad(c) => c,
                            TailKind::Incomplete => Corruption::Malformed(format!(
                                "the batch length runs past the end of the file, yet a valid batch follows at byte {next}"
                            )),
                        };
                        s.corruption = Some((pos as u64, detail));
                    }
                    force_entry = true;
                    pos = next;
                }
                None => {
                    s.torn = true;
                    break;
                }
            },
        }
    }
    if let Some(next) = s.next_offset {
        s.max_timestamp = Some(cursor.max_timestamp);
        let last_rel = s.indexes.offsets.last().map_or(0, |e| e.relative_offset);
        let rel = (next - 1 - base_offset).max(last_rel as u64) as u32;
        s.indexes.times.extend(cursor.final_time_entry(rel));
    }
    s
}

enum TailKind {
    /// The batch runs past the end of the data: the classic torn write.
    Incomplete,
    Bad(Corruption),
}

fn valid_batch_at(data: &[u8], pos: usize, expected: u64) -> std::result::Result<BatchHeader, TailKind> {
    let h = match BatchHeader::parse(&data[pos..]) {
        Ok(Some(h)) => h,
        Ok(None) => return Err(TailKind::Incomplete),
        Err(c) => return Err(TailKind::Bad(c)),
    };
    if h.len() > data.len() - pos {
        return Err(TailKind::Incomplete);
    }
    batch::verify(&h, &data[pos..pos + h.len()]).map_err(TailKind::Bad)?;
    if h.base_offset < expected {
        return Err(TailKind::Bad(Corruption::Malformed(format!(
            "batch base offset {} is below the expected {expected}",
            h.base_offset
        ))));
    }
    Ok(h)
}

/// The first position at or after `from` where a whole valid batch starts.
fn resync(data: &[u8], from: usize, expected: u64) -> Option<usize> {
    let last = data.len().checked_sub(batch::HEADER_LEN)?;
    (from..=last).find(|&q| {
        data[q + batch::VERSION_OFFSET] == batch::FORMAT_VERSION && valid_batch_at(data, q, expected).is_ok()
    })
}

fn open_append(path: &Path) -> Result<File> {
    OpenOptions::new().create(true).read(true).append(true).open(path).map_err(|e| Error::io(path, e))
}

/// A log file is written at explicit positions (`pwrite`), not appended to: under `sync` its end
/// may be a zero-filled tail (see `Partition::write_staged`).
fn open_log(path: &Path, create_new: bool) -> Result<File> {
    let mut o = OpenOptions::new();
    o.read(true).write(true);
    match create_new {
        true => o.create_new(true),
        false => o.create(true),
    };
    o.open(path).map_err(|e| Error::io(path, e))
}

impl Segment {
    /// The `.log`, `.index` and `.timeindex` paths of the segment at `base_offset` in `dir`.
    pub(crate) fn paths(dir: &Path, base_offset: u64) -> (PathBuf, PathBuf, PathBuf) {
        let stem = file_stem(base_offset);
        (dir.join(format!("{stem}.log")), dir.join(format!("{stem}.index")), dir.join(format!("{stem}.timeindex")))
    }

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

    /// Opens the last segment of a partition for appending. After a clean shutdown its indexes are
    /// trusted and only the bytes after the last index entry are scanned; otherwise (or when that
    /// fails) the whole file is scanned, a torn tail truncated and the indexes rewritten.
    pub fn open_active(
        dir: &Path,
        base_offset: u64,
        capacity: usize,
        index_interval_bytes: u32,
        clean: bool,
    ) -> Result<OpenedActive> {
        let (log_path, index_path, time_index_path) = Self::paths(dir, base_offset);
        let log = open_log(&log_path, false)?;
        let len = log.metadata().map_err(|e| Error::io(&log_path, e))?.len();
        let trusted = if clean {
            Self::tail_after_clean_shutdown(&log, &index_path, &time_index_path, base_offset, len)?
        } else {
            None
        };
        let (indexes, cursor, next_offset, corruption, rewrite) = match trusted {
            Some((indexes, cursor, next)) => (indexes, cursor, next, None, false),
            None => {
                let scan = {
                    // A temporary map for the scan, dropped before any truncation (mmap fact 3).
                    let map = Map::new(&log, len as usize, len as usize).map_err(|e| Error::io(&log_path, e))?;
                    let data = map.bytes();
                    scan(&data, base_offset, index_interval_bytes)
                };
                let torn = scan.valid_len < len;
                if torn {
                    tracing::warn!(path = %log_path.display(), from = len, to = scan.valid_len, "truncating a torn tail");
                }
                // Made even when nothing is torn: it also frees the blocks an append reserved past
                // the log's end before a crash (section 8 of segment-format.md).
                log.set_len(scan.valid_len).map_err(|e| Error::io(&log_path, e))?;
                if torn {
                    log.sync_all().map_err(|e| Error::io(&log_path, e))?;
                }
                if let Some((pos, c)) = &scan.corruption {
                    tracing::error!(path = %log_path.display(), position = pos, detail = %c, "corrupt batch in the active segment; it will be reported, not served");
                }
                let mut cursor = IndexCursor::new();
                cursor.position = scan.valid_len;
                cursor.max_timestamp = scan.max_timestamp.unwrap_or(TIMESTAMP_NONE);
                cursor.last_time_entry = scan.indexes.times.last().map_or(TIMESTAMP_NONE, |e| e.timestamp);
                cursor.bytes_since_entry =
                    scan.indexes.offsets.last().map_or(u64::MAX, |e| scan.valid_len - e.position as u64);
                // The scan added a final time entry; a writer that goes on must not repeat it.
                (scan.indexes, cursor, scan.next_offset.unwrap_or(base_offset), scan.corruption, true)
            }
        };
        let mut index = open_append(&index_path)?;
        let mut time_index = open_append(&time_index_path)?;
        if rewrite {
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
            match valid_batch_at(&data, pos, next) {
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
                let s = scan(&data, self.base_offset, self.index_interval_bytes);
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

    /// The valid batch starting at `pos` of `data` (length bounds and CRC checked).
    pub fn batch_at(&self, data: &Bytes, pos: usize) -> Result<(BatchHeader, Bytes)> {
        let (h, b) = self.batch_bounds_at(data, pos)?;
        batch::verify(&h, &b).map_err(|c| self.corrupted(pos, c))?;
        Ok((h, b))
    }

    /// The batch starting at `pos` of `data`, its length bounds checked but not its CRC: only for a
    /// batch that `batch_at` has already verified in the same map of this (sealed, immutable) file.
    pub(crate) fn batch_bounds_at(&self, data: &Bytes, pos: usize) -> Result<(BatchHeader, Bytes)> {
        let h = BatchHeader::parse(&data[pos..])
            .map_err(|c| self.corrupted(pos, c))?
            .ok_or_else(|| self.corrupted(pos, Corruption::Malformed("truncated batch header".into())))?;
        if h.len() > data.len() - pos {
            return Err(self.corrupted(
                pos,
                Corruption::Malformed(format!("batch of {} bytes runs past the end of the segment", h.length)),
            ));
        }
        Ok((h, data.slice(pos..pos + h.len())))
    }

    /// The position to start scanning from for `offset`, from the offset index, checked against the
    /// log: the batch there must start at the entry's offset. An index file can be damaged in ways its
    /// own checks do not see (a position or offset off by a little); trusting such an entry would
    /// report intact data as corrupt, or serve a later record for an earlier offset. On a mismatch the
    /// in-memory indexes are rebuilt from the log (once per segment) and the lookup repeated.
    fn seek(&self, data: &[u8], offset: u64) -> Result<usize> {
        let rel = offset.saturating_sub(self.base_offset);
        let (pos, entry_offset) = self.with_indexes(|ix| index::lookup_offset(&ix.offsets, rel))?;
        let (pos, entry_offset) = (pos as usize, self.base_offset + entry_offset as u64);
        let matches = pos >= data.len()
            || matches!(BatchHeader::parse(&data[pos..]), Ok(Some(h)) if h.base_offset == entry_offset);
        if matches {
            return Ok(pos);
        }
        // Under the write lock, so that concurrent readers wait for the rebuilt indexes.
        let mut guard = self.indexes.write();
        if !self.indexes_rebuilt.swap(true, Ordering::AcqRel) {
            tracing::warn!(path = %self.index_path.display(), position = pos, offset = entry_offset,
                "an index entry does not match the log; rebuilding the indexes in memory");
            *guard = Some(scan(data, self.base_offset, self.index_interval_bytes).indexes);
        }
        // Still no match after a rebuild: the log itself is damaged there, and the read reports it.
        Ok(guard.as_ref().map_or(0, |ix| index::lookup_offset(&ix.offsets, rel).0 as usize))
    }

    /// Reads records with offsets in `[offset, high_watermark)`, appending to `out`, within the budget.
    /// The first batch is read whatever its size, so a reader always makes progress.
    pub fn read(
        &self,
        offset: u64,
        high_watermark: u64,
        max_bytes: usize,
        max_records: usize,
        out: &mut Vec<Record>,
        bytes_read: &mut usize,
    ) -> Result<Flow> {
        let data = self.data();
        let mut pos = self.seek(&data, offset)?;
        self.map.prefault(pos, pos.saturating_add(max_bytes.saturating_sub(*bytes_read)));
        while pos < data.len() {
            let (h, b) = self.batch_at(&data, pos)?;
            if h.base_offset >= high_watermark {
                return Ok(Flow::Stop);
            }
            pos += h.len();
            if h.last_offset() < offset {
                continue;
            }
            if !out.is_empty() && *bytes_read + h.len() > max_bytes {
                return Ok(Flow::Stop);
            }
            batch::decode_records(&h, &b, offset, max_records, out).map_err(|c| self.corrupted(pos - h.len(), c))?;
            *bytes_read += h.len();
            if out.len() >= max_records || *bytes_read >= max_bytes {
                return Ok(Flow::Stop);
            }
        }
        Ok(Flow::Continue)
    }

    /// Like [`read`](Self::read), but gives the checked batches (shared with the map) instead of
    /// decoded records; [`ReadBatch::for_each`] then lends their records. Records are counted
    /// against `max_records` by offset span (an upper bound where compaction left gaps).
    #[allow(clippy::too_many_arguments)]
    pub fn read_batches(
        self: &Arc<Self>,
        offset: u64,
        high_watermark: u64,
        max_bytes: usize,
        max_records: usize,
        out: &mut Vec<ReadBatch>,
        bytes_read: &mut usize,
        records: &mut usize,
    ) -> Result<Flow> {
        let data = self.data();
        let mut pos = self.seek(&data, offset)?;
        self.map.prefault(pos, pos.saturating_add(max_bytes.saturating_sub(*bytes_read)));
        while pos < data.len() {
            let (header, bytes) = self.batch_at(&data, pos)?;
            if header.base_offset >= high_watermark {
                return Ok(Flow::Stop);
            }
            let position = pos;
            pos += header.len();
            if header.last_offset() < offset {
                continue;
            }
            if !out.is_empty() && *bytes_read + header.len() > max_bytes {
                return Ok(Flow::Stop);
            }
            let room = max_records.saturating_sub(*records);
            let span = (header.last_offset() - header.base_offset.max(offset)).saturating_add(1);
            *records += room.min(usize::try_from(span).unwrap_or(usize::MAX));
            *bytes_read += header.len();
            out.push(ReadBatch {
                header,
                bytes,
                min_offset: offset,
                max_records: room,
                segment: Arc::clone(self),
                position,
            });
            if *records >= max_records || *bytes_read >= max_bytes {
                return Ok(Flow::Stop);
            }
        }
        Ok(Flow::Continue)
    }

    /// The first record at or after `min_offset` (and below `high_watermark`) with a timestamp `>= ts`.
    pub fn find_timestamp(&self, ts: i64, min_offset: u64, high_watermark: u64) -> Result<Option<u64>> {
        let data = self.data();
        let start_rel = self.with_indexes(|ix| index::lookup_time(&ix.times, ts))?;
        let from = start_rel.map_or(self.base_offset, |r| self.base_offset + r as u64).max(min_offset);
        let mut pos = self.seek(&data, from)?;
        while pos < data.len() {
            let (h, b) = self.batch_at(&data, pos)?;
            if h.base_offset >= high_watermark {
                return Ok(None);
            }
            if h.max_timestamp >= ts && h.last_offset() >= min_offset {
                let mut recs = Vec::with_capacity(h.record_count as usize);
                batch::decode_records(&h, &b, min_offset, usize::MAX, &mut recs).map_err(|c| self.corrupted(pos, c))?;
                if let Some(r) = recs.iter().find(|r| r.timestamp >= ts) {
                    return Ok(Some(r.offset));
                }
            }
            pos += h.len();
        }
        Ok(None)
    }
}

/// Replaces the contents of a file opened in append mode.
fn rewrite_file(f: &mut File, path: &Path, bytes: Vec<u8>) -> Result<()> {
    use std::io::Write;
    f.set_len(0).map_err(|e| Error::io(path, e))?;
    f.write_all(&bytes).map_err(|e| Error::io(path, e))
}

/// Appends an index entry to its file.
pub(crate) fn append_entry(file: &File, path: &Path, bytes: &[u8], faults: Option<&FaultInjector>) -> Result<()> {
    io::append(file, path, bytes, faults)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::record;

    fn three_batches() -> (Vec<u8>, [usize; 3]) {
        let mut data = Vec::new();
        let mut starts = [0; 3];
        for (i, start) in starts.iter_mut().enumerate() {
            *start = data.len();
            let value = vec![b'v'; 100];
            let _ = batch::encode_to_vec(
                &mut data,
                10 + i as u64,
                0,
                (1_000, 1_000),
                std::iter::once(
                    record::RecordFields {
                        offset_delta: 0,
                        timestamp_delta: 0,
                        key: None,
                        value: Some(&value),
                        headers: &[],
                    }
                    .with_body_len(),
                ),
            );
        }
        (data, starts)
    }

    #[test]
    fn torn_tail_is_cut() {
        let (data, starts) = three_batches();
        let cut = &data[..data.len() - 5];
        let s = scan(cut, 10, 4096);
        assert!(s.torn && s.corruption.is_none());
        assert_eq!((s.valid_len, s.next_offset), (starts[2] as u64, Some(12)));
    }

    #[test]
    fn bad_length_in_the_middle_is_corruption_not_a_torn_tail() {
        let (mut data, starts) = three_batches();
        // The middle batch claims to run past the end of the log: valid data follows it.
        let huge = (data.len() as u32) * 2;
        data[starts[1]..starts[1] + 4].copy_from_slice(&huge.to_le_bytes());
        let s = scan(&data, 10, 4096);
        assert!(!s.torn);
        assert_eq!((s.valid_len, s.next_offset), (data.len() as u64, Some(13)));
        assert!(matches!(s.corruption, Some((p, _)) if p == starts[1] as u64), "{:?}", s.corruption);
        // The batch after the damage is indexed, so reads past it do not cross the damage.
        assert_eq!(s.indexes.offsets.last().map(|e| e.position), Some(starts[2] as u32));
    }

    #[test]
    fn file_names() {
        assert_eq!(file_stem(42), "00000000000000000042");
        assert_eq!(parse_file_name("00000000000000000042.log", "log"), Some(42));
        assert_eq!(parse_file_name("00000000000000000042.index", "log"), None);
        assert_eq!(parse_file_name("42.log", "log"), None);
        assert_eq!(parse_file_name("0000000000000000004x.log", "log"), None);
    }
}

/// A CRC-checked batch given by [`Partition::read_batches`](crate::Partition::read_batches), and
/// the part of it the read covers. It shares the segment's memory map; its records are lent by
/// [`for_each`](Self::for_each).
#[derive(Debug)]
pub struct ReadBatch {
    header: BatchHeader,
    bytes: Bytes,
    min_offset: u64,
    max_records: usize,
    /// Where the batch is, to name it if a record inside is malformed.
    segment: Arc<Segment>,
    position: usize,
}

impl ReadBatch {
    /// The offset of the batch's first record (which the read may not cover).
    pub fn base_offset(&self) -> u64 {
        self.header.base_offset
    }

    /// The offset of the batch's last record (which the read may not cover).
    pub fn last_offset(&self) -> u64 {
        self.header.last_offset()
    }

    /// The owned record [`Partition::read`](crate::Partition::read) would return for `record`, one
    /// of this batch's: its fields share the batch's bytes (no copy). The fields of a record lent by
    /// another batch are copied.
    pub fn to_record(&self, record: RecordRef<'_>) -> Record {
        record.to_record(&self.bytes)
    }

    /// Calls `f` with each record the read covers, in order; returns the offset to read next:
    /// past the batch's last offset when every covered record was given (so that offsets
    /// compaction removed at a batch's end are skipped, as Kafka's fetch does), else past the last
    /// record given. A record found malformed (inside a batch whose CRC matched) is
    /// `Error::Corrupted`; the records before it were given.
    pub fn for_each<'a>(&'a self, mut f: impl FnMut(RecordRef<'a>)) -> Result<u64> {
        let mut given = 0usize;
        let mut last = None;
        batch::for_each_record(&self.header, &self.bytes, self.min_offset, self.max_records, |r| {
            given += 1;
            last = Some(r.offset);
            f(r)
        })
        .map_err(|c| self.segment.corrupted(self.position, c))?;
        let covered = self.header.last_offset().saturating_sub(self.min_offset.max(self.header.base_offset)) + 1;
        Ok(match last {
            Some(l) if (given as u64) < covered && given >= self.max_records => l + 1,
            _ => self.header.last_offset() + 1,
        })
    }
}
