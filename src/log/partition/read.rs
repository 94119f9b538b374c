//! Reads: by offset (records, or lent batches) and by timestamp, and waiting for new data.

use std::sync::Arc;

use bytes::Bytes;

use super::Partition;
use crate::error::{Error, Result};
use crate::log::record::Record;
use crate::log::segment::{Flow, ReadBatch, Segment};

/// Whole stored batches, as [`Partition::read_raw`] gives them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawBatches {
    /// Kafka RecordBatch v2 batches back to back, exactly as stored (shared with the segment's
    /// map). Empty when there was nothing to read.
    pub bytes: Bytes,
    /// The first batch's base offset (at or below the offset asked for, when a batch holds it).
    pub base_offset: u64,
    /// The offset after the last batch: where the next read goes on.
    pub next_offset: u64,
    /// The high watermark when the read started.
    pub high_watermark: u64,
}

impl Partition {
    fn out_of_range(&self, offset: u64) -> Error {
        Error::OffsetOutOfRange {
            topic: self.inner.topic.to_string(),
            partition: self.inner.id,
            offset,
            log_start_offset: self.log_start_offset(),
            high_watermark: self.high_watermark(),
        }
    }

    /// Reads records from `offset` on: at most `max_records`, and batches up to about `max_bytes`
    /// (the first batch is returned whatever its size). Reading at the high watermark returns
    /// nothing; below the log start or above the high watermark is `OffsetOutOfRange`.
    /// Records share the segment's memory map (no copy).
    pub fn read(&self, offset: u64, max_bytes: usize, max_records: usize) -> Result<Vec<Record>> {
        let (mut out, mut bytes_read) = (Vec::new(), 0);
        self.read_segments(offset, max_records, |s, from, high_watermark| {
            s.read(from, high_watermark, max_bytes, max_records, &mut out, &mut bytes_read)
        })?;
        Ok(out)
    }

    /// Like [`read`](Self::read), with the same budgets and errors, but gives the CRC-checked
    /// batches, whose records [`ReadBatch::for_each`] lends instead of decoding them into owned
    /// `Record`s: no allocation or reference count per record. What views use to replay. Records
    /// are counted against `max_records` by offset span (so a compacted batch may give fewer), and
    /// `for_each` returns the offset to read next.
    ///
    /// ```
    /// use kappalog::{NewRecord, Store, StoreConfig, TopicConfig};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let store = Store::open(dir.path(), StoreConfig::default())?;
    /// let p = store.create_topic("clicks", 1, TopicConfig::default())?.partition(0)?;
    /// p.append(&[NewRecord::new("a"), NewRecord::new("bb"), NewRecord::new("ccc")])?;
    ///
    /// // Replay from offset 1: sum the value lengths without copying or allocating per record.
    /// let (mut next, mut value_bytes) = (1, 0);
    /// while next < p.high_watermark() {
    ///     for batch in p.read_batches(next, 1 << 20, 10_000)? {
    ///         next = batch.for_each(|r| value_bytes += r.value.map_or(0, |v| v.len()))?;
    ///     }
    /// }
    /// assert_eq!((next, value_bytes), (3, 5));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn read_batches(&self, offset: u64, max_bytes: usize, max_records: usize) -> Result<Vec<ReadBatch>> {
        let (mut out, mut bytes_read, mut records) = (Vec::new(), 0, 0);
        self.read_segments(offset, max_records, |s, from, high_watermark| {
            s.read_batches(from, high_watermark, max_bytes, max_records, &mut out, &mut bytes_read, &mut records)
        })?;
        Ok(out)
    }

    /// The stored bytes of whole batches from the one that holds `offset` (a read inside a batch
    /// returns that whole batch, as Kafka's fetch does): at least one batch, even one larger than
    /// `max_bytes` (Kafka's KIP-74), then more while the total stays within `max_bytes`, all from
    /// one segment (the next read goes on in the next). The bytes are Kafka RecordBatch v2 as
    /// stored (compressed batches stay compressed) and share the segment's memory map; each
    /// batch's CRC-32C was checked. Reading at the high watermark returns no bytes; below the log
    /// start or above the high watermark is `OffsetOutOfRange`.
    pub fn read_raw(&self, offset: u64, max_bytes: usize) -> Result<RawBatches> {
        let high_watermark = self.high_watermark();
        if offset < self.log_start_offset() || offset > high_watermark {
            return Err(self.out_of_range(offset));
        }
        let none = || RawBatches { bytes: Bytes::new(), base_offset: offset, next_offset: offset, high_watermark };
        if offset == high_watermark {
            return Ok(none());
        }
        let segments = self.segments();
        let first = segments.partition_point(|s| s.base_offset <= offset).saturating_sub(1);
        for s in &segments[first..] {
            if s.base_offset >= high_watermark {
                break;
            }
            let data = s.data();
            if let Some((range, base_offset, next_offset)) = s.read_raw(&data, offset, high_watermark, max_bytes)? {
                return Ok(RawBatches { bytes: data.slice(range), base_offset, next_offset, high_watermark });
            }
        }
        Ok(none())
    }

    /// The walk both reads share: checks `offset` against the log's range, then calls `read` with
    /// each segment below the high watermark from the one holding `offset` on (and the offset to
    /// read it from) until it says stop. Nothing is read at the high watermark or without budget.
    fn read_segments(
        &self,
        offset: u64,
        max_records: usize,
        mut read: impl FnMut(&Arc<Segment>, u64, u64) -> Result<Flow>,
    ) -> Result<()> {
        let high_watermark = self.high_watermark();
        if offset < self.log_start_offset() || offset > high_watermark {
            return Err(self.out_of_range(offset));
        }
        if offset == high_watermark || max_records == 0 {
            return Ok(());
        }
        let segments = self.segments();
        let first = segments.partition_point(|s| s.base_offset <= offset).saturating_sub(1);
        let mut from = offset;
        for s in &segments[first..] {
            if s.base_offset >= high_watermark || read(s, from, high_watermark)? == Flow::Stop {
                break;
            }
            from = from.max(s.next_offset());
        }
        Ok(())
    }

    /// The first offset at or after the log start whose record has a timestamp `>= timestamp`
    /// (Kafka's `offsetsForTimes`); `None` when every record is older.
    pub fn offset_for_timestamp(&self, timestamp: i64) -> Result<Option<u64>> {
        let high_watermark = self.high_watermark();
        let start = self.log_start_offset();
        let segments = self.segments();
        let first = segments.partition_point(|s| s.base_offset <= start).saturating_sub(1);
        for s in &segments[first..] {
            if s.max_timestamp()? < timestamp {
                continue;
            }
            if let Some(o) = s.find_timestamp(timestamp, start, high_watermark)? {
                return Ok(Some(o));
            }
        }
        Ok(None)
    }

    /// Waits until a record at `offset` or later can be read (the high watermark passes `offset`).
    /// A notification, not a poll.
    pub async fn wait_for_data(&self, offset: u64) {
        let mut rx = self.inner.high_watermark_tx.subscribe();
        let _ = rx.wait_for(|hw| *hw > offset).await;
    }
}

#[cfg(test)]
mod tests {
    use crate::{CleanupPolicy, Header, NewRecord, Store, StoreConfig, TopicConfig};

    /// `read_batches` lends the records `read` returns (a prefix of them, never fewer than one
    /// when `read` has some), and the offset it says to read next skips no record, also across
    /// the gaps compaction leaves and at segment boundaries.
    #[test]
    fn read_batches_lend_what_read_returns() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
        let cfg = TopicConfig { segment_bytes: 4096, cleanup_policy: CleanupPolicy::Compact, ..TopicConfig::default() };
        let p = store.create_topic("t", 1, cfg).unwrap().partition(0).unwrap();
        let mut n = 0u64;
        for batch in 0..60u64 {
            let records: Vec<NewRecord> = (0..1 + batch % 7)
                .map(|_| {
                    n += 1;
                    let mut r = NewRecord::keyed(format!("k{}", n % 11), format!("value {n}"));
                    if n.is_multiple_of(5) {
                        r.headers.push(Header { key: "h".into(), value: format!("{n}").into() });
                    }
                    r
                })
                .collect();
            p.append(&records).unwrap();
        }
        p.roll().unwrap();
        store.compact("t").unwrap();
        let all = p.read(p.log_start_offset(), usize::MAX, usize::MAX).unwrap();
        assert!(all.len() < n as usize, "compaction left gaps");
        for offset in p.log_start_offset()..=p.high_watermark() {
            for (max_bytes, max_records) in
                [(1, 1), (1, 5), (200, 3), (1000, 1000), (usize::MAX, 2), (usize::MAX, usize::MAX)]
            {
                let read = p.read(offset, max_bytes, max_records).unwrap();
                let batches = p.read_batches(offset, max_bytes, max_records).unwrap();
                let mut lent = Vec::new();
                let mut next = offset;
                for b in &batches {
                    next = b.for_each(|r| lent.push(b.to_record(r))).unwrap();
                }
                assert!(!lent.is_empty() || read.is_empty(), "offset {offset} {max_bytes} {max_records}");
                assert_eq!(lent[..], read[..lent.len()], "offset {offset} {max_bytes} {max_records}");
                if let Some(last) = lent.last() {
                    assert!(next > last.offset, "offset {offset}: next {next} after {}", last.offset);
                }
                let following =
                    all.iter().find(|r| r.offset >= offset && lent.last().is_none_or(|l| r.offset > l.offset));
                if let Some(f) = following {
                    assert!(next <= f.offset, "offset {offset}: next {next} skips record {}", f.offset);
                } else {
                    assert!(next <= p.high_watermark());
                }
            }
        }
    }
}
