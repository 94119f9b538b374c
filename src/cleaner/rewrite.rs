//! Reading records without decoding them fully, and writing the cleaned segments.
//!
//! A cleaned batch keeps its input batch's base offset, base timestamp, attributes and producer
//! fields (as Kafka's cleaner does), and its surviving records are copied byte for byte (their
//! offset and timestamp deltas stay right). Only the header changes: length, CRC, record count,
//! `lastOffsetDelta` and `maxTimestamp`. `lastOffsetDelta` is the last *surviving* record's delta
//! (so `last offset + 1` is still the offset after the batch's last record), except in a batch with
//! a producer id, which keeps its own (so its last sequence stays right, Kafka's rule).
//! `maxTimestamp` is the survivors' greatest, except under log-append time, where it is every
//! record's timestamp and stays. A batch whose records all survive is copied whole.
//!
//! A batch none of whose records survives is dropped, unless it is the last batch of a producer
//! the partition remembers: then, as Kafka's cleaner does (`BatchRetention.RETAIN_EMPTY`), it stays
//! as an empty batch, a bare header ([`encode_empty`]), so that the producer's epoch and last
//! sequence survive compaction and a rebuild of the producer state from the log.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use bytes::Bytes;

use super::swap;
use crate::error::{Corruption, Error, Result};
use crate::fault::FaultInjector;
use crate::log::batch::{self, BatchHeader};
use crate::log::record::get_varlong;
use crate::log::segment::{IndexCursor, Segment};

/// One record of a batch, located but not decoded.
#[derive(Debug)]
pub(crate) struct RawRecord {
    /// Byte range of the whole record (its length varint included) in the batch's records.
    pub start: usize,
    pub end: usize,
    pub offset_delta: u32,
    pub timestamp_delta: i64,
    /// Byte range of the key in the batch's records; `None` for a keyless record.
    pub key: Option<std::ops::Range<usize>>,
    pub tombstone: bool,
}

impl RawRecord {
    pub fn offset(&self, h: &BatchHeader) -> u64 {
        h.base_offset + self.offset_delta as u64
    }
    pub fn key<'a>(&self, records: &'a [u8]) -> Option<&'a [u8]> {
        self.key.clone().map(|r| &records[r])
    }
    pub fn timestamp(&self, h: &BatchHeader) -> i64 {
        h.record_timestamp(self.timestamp_delta)
    }
}

/// Calls `f` for every record of a verified batch (header `h`, uncompressed records `b`), in order,
/// while it returns `true`. Checks what it reads.
pub(crate) fn for_each_record(
    h: &BatchHeader,
    b: &Bytes,
    mut f: impl FnMut(RawRecord) -> bool,
) -> std::result::Result<(), Corruption> {
    let bad = |i: u32, what: String| Corruption::Malformed(format!("record {i}: {what}"));
    let mut pos = 0;
    let mut last: Option<u32> = None;
    for i in 0..h.record_count {
        let start = pos;
        let len = get_varlong(b, &mut pos).ok_or_else(|| bad(i, "record length varint".into()))?;
        if len < 1 || len as usize > b.len() - pos {
            return Err(bad(i, format!("record length {len} exceeds the batch")));
        }
        let end = pos + len as usize;
        let body = &b[..end];
        let mut p = pos + 1; // attributes
        let ts = get_varlong(body, &mut p).ok_or_else(|| bad(i, "timestamp delta varint".into()))?;
        let od = get_varlong(body, &mut p).ok_or_else(|| bad(i, "offset delta varint".into()))?;
        if !(0..=h.last_offset_delta as i64).contains(&od) || last.is_some_and(|l| od <= l as i64) {
            return Err(bad(i, format!("offset delta {od} out of order")));
        }
        let key_len = get_varlong(body, &mut p).ok_or_else(|| bad(i, "key length varint".into()))?;
        let key = if key_len == -1 {
            None
        } else if key_len < 0 || key_len as usize > end - p {
            return Err(bad(i, format!("key length {key_len} exceeds the record")));
        } else {
            let k = p..p + key_len as usize;
            p += key_len as usize;
            Some(k)
        };
        let value_len = get_varlong(body, &mut p).ok_or_else(|| bad(i, "value length varint".into()))?;
        last = Some(od as u32);
        pos = end;
        let r = RawRecord { start, end, offset_delta: od as u32, timestamp_delta: ts, key, tombstone: value_len == -1 };
        if !f(r) {
            break;
        }
    }
    Ok(())
}

/// Appends to `out` a batch made of the `kept` records of a batch (header `h`, uncompressed
/// records `records`), compressed with the batch's own codec.
pub(crate) fn encode_filtered(out: &mut Vec<u8>, h: &BatchHeader, records: &[u8], kept: &[RawRecord]) -> Result<()> {
    debug_assert!(!kept.is_empty());
    let mut plain = Vec::with_capacity(kept.iter().map(|r| r.end - r.start).sum());
    let mut max_delta = i64::MIN;
    for r in kept {
        plain.extend_from_slice(&records[r.start..r.end]);
        max_delta = max_delta.max(r.timestamp_delta);
    }
    let start = out.len();
    out.resize(start + batch::HEADER_LEN, 0);
    crate::log::compression::compress_into(h.codec(), &plain, out)?;
    let last_delta = match h.producer.is_some() {
        true => h.last_offset_delta,
        false => kept.last().expect("at least one record").offset_delta,
    };
    let max_ts = match h.log_append_time() {
        true => h.max_timestamp,
        false => h.first_timestamp.wrapping_add(max_delta),
    };
    let fields = batch::HeaderFields {
        base_offset: h.base_offset,
        attributes: h.attributes,
        timestamps: (h.first_timestamp, max_ts),
        record_count: kept.len() as u32,
        last_offset_delta: last_delta,
        producer: h.producer,
    };
    batch::finish(&mut out[start..], &fields);
    Ok(())
}

/// Appends to `out` the empty batch that stands for the batch `h` once compaction removed all its
/// records, as Kafka's `DefaultRecordBatch.writeEmptyHeader` writes it: a bare header (61 bytes,
/// `recordsCount` 0) with `h`'s base offset, `lastOffsetDelta`, producer id, epoch and base
/// sequence, attributes without a codec (nothing to compress), `baseTimestamp` -1 (Kafka's
/// `NO_TIMESTAMP`) and `h`'s `maxTimestamp`.
pub(crate) fn encode_empty(out: &mut Vec<u8>, h: &BatchHeader) -> BatchHeader {
    let start = out.len();
    out.resize(start + batch::HEADER_LEN, 0);
    let fields = batch::HeaderFields {
        base_offset: h.base_offset,
        attributes: h.attributes & !batch::ATTRIBUTE_CODEC_MASK,
        timestamps: (NO_TIMESTAMP, h.max_timestamp),
        record_count: 0,
        last_offset_delta: h.last_offset_delta,
        producer: h.producer,
    };
    batch::finish(&mut out[start..], &fields)
}

/// Kafka's `RecordBatch.NO_TIMESTAMP`.
const NO_TIMESTAMP: i64 = -1;

/// Bytes buffered before a cleaned log is written out.
const WRITE_BUFFER_BYTES: usize = 1 << 20;

/// A new segment being written as `.cleaned` files.
#[derive(Debug)]
pub(crate) struct CleanedSegment {
    pub base_offset: u64,
    log_path: PathBuf,
    log: File,
    buf: Vec<u8>,
    cursor: IndexCursor,
    interval: u32,
    offsets: Vec<u8>,
    times: Vec<u8>,
    last_offset: Option<u64>,
    pub size_bytes: u64,
}

fn create(path: &Path) -> Result<File> {
    File::options().create(true).truncate(true).write(true).open(path).map_err(|e| Error::io(path, e))
}

impl CleanedSegment {
    pub fn create(dir: &Path, base_offset: u64, interval: u32, faults: Option<&FaultInjector>) -> Result<Self> {
        let (log, _, _) = Segment::paths(dir, base_offset);
        let log_path = swap::cleaned_path(&log);
        swap::step(faults, "create a cleaned segment", &log_path)?;
        Ok(CleanedSegment {
            base_offset,
            log: create(&log_path)?,
            log_path,
            buf: Vec::with_capacity(WRITE_BUFFER_BYTES),
            cursor: IndexCursor::new(),
            interval,
            offsets: Vec::new(),
            times: Vec::new(),
            last_offset: None,
            size_bytes: 0,
        })
    }

    /// Appends one encoded, valid batch (`bytes`, header `h`).
    pub fn push(&mut self, h: &BatchHeader, bytes: &[u8]) -> Result<()> {
        debug_assert_eq!(h.len(), bytes.len());
        let (oe, te) = self.cursor.entries_for(self.base_offset, h, self.interval);
        if let Some(e) = oe {
            self.offsets.extend_from_slice(&e.encode());
        }
        if let Some(e) = te {
            self.times.extend_from_slice(&e.encode());
        }
        self.last_offset = Some(h.last_offset());
        self.size_bytes += bytes.len() as u64;
        self.buf.extend_from_slice(bytes);
        if self.buf.len() >= WRITE_BUFFER_BYTES {
            self.log.write_all(&self.buf).map_err(|e| Error::io(&self.log_path, e))?;
            self.buf.clear();
        }
        Ok(())
    }

    /// Writes the rest and both indexes, and fsyncs all three files.
    pub fn finish(mut self, dir: &Path, faults: Option<&FaultInjector>) -> Result<()> {
        if let Some(last) = self.last_offset {
            if let Some(e) = self.cursor.final_time_entry((last - self.base_offset) as u32) {
                self.times.extend_from_slice(&e.encode());
            }
        }
        self.log.write_all(&self.buf).map_err(|e| Error::io(&self.log_path, e))?;
        let (_, index, time_index) = Segment::paths(dir, self.base_offset);
        let mut files = vec![(self.log, self.log_path)];
        for (path, bytes) in [(index, &self.offsets), (time_index, &self.times)] {
            let path = swap::cleaned_path(&path);
            swap::step(faults, "write a cleaned index", &path)?;
            let mut f = create(&path)?;
            f.write_all(bytes).map_err(|e| Error::io(&path, e))?;
            files.push((f, path));
        }
        for (f, path) in files {
            swap::step(faults, "fsync a cleaned file", &path)?;
            f.sync_all().map_err(|e| Error::io(&path, e))?;
        }
        Ok(())
    }
}

/// The new segments of a pass: small neighbours merge, because a new segment is started only when
/// the next batch would take the current one past `segment_bytes` (or its offsets past the `u32`
/// relative offsets of the index). The first starts at the first rewritten segment's base offset;
/// each later one at the base offset of its first batch.
pub(crate) struct Output<'a> {
    dir: &'a Path,
    faults: Option<&'a FaultInjector>,
    segment_bytes: u64,
    interval: u32,
    current: Option<CleanedSegment>,
    /// (base offset, bytes) of every segment started, in order.
    pub written: Vec<(u64, u64)>,
}

impl<'a> Output<'a> {
    pub fn new(dir: &'a Path, faults: Option<&'a FaultInjector>, segment_bytes: u64, interval: u32) -> Output<'a> {
        Output { dir, faults, segment_bytes, interval, current: None, written: Vec::new() }
    }

    /// Starts a new segment at `base_offset`, after finishing the current one.
    pub fn start(&mut self, base_offset: u64) -> Result<()> {
        self.finish()?;
        self.current = Some(CleanedSegment::create(self.dir, base_offset, self.interval, self.faults)?);
        self.written.push((base_offset, 0));
        Ok(())
    }

    /// Appends a valid batch, starting a new segment first when it would not fit.
    pub fn push(&mut self, h: &BatchHeader, bytes: &[u8]) -> Result<()> {
        let cur = self.current.as_ref().expect("started");
        let full = cur.size_bytes > 0 && cur.size_bytes + bytes.len() as u64 > self.segment_bytes;
        if full || h.last_offset() - cur.base_offset > u32::MAX as u64 {
            self.start(h.base_offset)?;
        }
        let cur = self.current.as_mut().expect("started");
        cur.push(h, bytes)?;
        self.written.last_mut().expect("started").1 = cur.size_bytes;
        Ok(())
    }

    /// Finishes the current segment (see [`CleanedSegment::finish`]).
    pub fn finish(&mut self) -> Result<()> {
        match self.current.take() {
            Some(cur) => cur.finish(self.dir, self.faults),
            None => Ok(()),
        }
    }
}
