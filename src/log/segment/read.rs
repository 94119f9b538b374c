//! Reads from a segment: checked batches at a position, the seek through the offset index, reads
//! of records or of whole batches by offset, and the search by timestamp.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::Bytes;

use super::scan::scan;
use super::{Flow, Segment};
use crate::error::{Corruption, Result};
use crate::log::batch::{self, BatchHeader};
use crate::log::index;
use crate::log::record::{Record, RecordRef};

impl Segment {
    /// The valid batch starting at `pos` of `data` (length bounds and CRC checked).
    pub fn batch_at(&self, data: &Bytes, pos: usize) -> Result<(BatchHeader, Bytes)> {
        let (h, b) = self.batch_bounds_at(data, pos)?;
        batch::verify(&h, &b).map_err(|c| self.corrupted(pos, c))?;
        Ok((h, b))
    }

    /// [`batch_at`](Self::batch_at), plus the checks of the one field the CRC does not cover, the
    /// base offset (Kafka's layout): the batch starts at or after `*expected` (the offset after the
    /// batch before it, or the segment's base), ends before the segment's next offset `upper`, and
    /// the header of the batch after it, when there is one, starts after its last offset. Moves
    /// `*expected` past the batch.
    pub(crate) fn batch_in_place(
        &self,
        data: &Bytes,
        pos: usize,
        expected: &mut u64,
        upper: u64,
    ) -> Result<(BatchHeader, Bytes)> {
        let (h, b) = self.batch_at(data, pos)?;
        let next = pos + h.len();
        let follower = match data.len() - next >= batch::HEADER_LEN {
            true => BatchHeader::parse(&data[next..]).ok().flatten().map(|n| n.base_offset),
            false => None,
        };
        if h.base_offset < *expected || h.last_offset() >= upper || follower.is_some_and(|f| f <= h.last_offset()) {
            return Err(self.corrupted(
                pos,
                Corruption::Malformed(format!(
                    "batch offsets {}..={} out of place (expected from {}, below {upper}, next batch at {})",
                    h.base_offset,
                    h.last_offset(),
                    *expected,
                    follower.map_or("none".to_string(), |f| f.to_string())
                )),
            ));
        }
        *expected = h.next_offset();
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
            *guard = Some(scan(data, self.base_offset, self.index_interval_bytes, u64::MAX, &[]).indexes);
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
        let (upper, mut expected) = (self.next_offset(), self.base_offset);
        let mut pos = self.seek(&data, offset)?;
        self.map.prefault(pos, pos.saturating_add(max_bytes.saturating_sub(*bytes_read)));
        while pos < data.len() {
            let (h, b) = self.batch_in_place(&data, pos, &mut expected, upper)?;
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
            let records = batch::records_of(&h, &b).map_err(|c| self.corrupted(pos - h.len(), c))?;
            batch::decode_records(&h, &records, offset, max_records, out)
                .map_err(|c| self.corrupted(pos - h.len(), c))?;
            *bytes_read += h.len();
            // A batch that gave no record (compaction emptied it, or removed the records from
            // `offset` on) ends no read: the reader would get nothing and not move.
            if out.len() >= max_records || (*bytes_read >= max_bytes && !out.is_empty()) {
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
        let (upper, mut expected) = (self.next_offset(), self.base_offset);
        let mut pos = self.seek(&data, offset)?;
        self.map.prefault(pos, pos.saturating_add(max_bytes.saturating_sub(*bytes_read)));
        while pos < data.len() {
            let (header, bytes) = self.batch_in_place(&data, pos, &mut expected, upper)?;
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
            let plain = batch::records_of(&header, &bytes).map_err(|c| self.corrupted(position, c))?;
            out.push(ReadBatch {
                header,
                records: plain,
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

    /// The stored bytes of whole batches below `high_watermark`, from the one that holds `offset`
    /// (or the first after it) on: at least one batch, then more while they fit in `max_bytes`.
    /// Every batch's CRC and place are checked. Returns the byte range in `data` and the offsets
    /// covered (the first batch's base offset, the offset after the last one), or `None` when
    /// nothing at or after `offset` is in this segment.
    pub fn read_raw(
        &self,
        data: &Bytes,
        offset: u64,
        high_watermark: u64,
        max_bytes: usize,
    ) -> Result<Option<(std::ops::Range<usize>, u64, u64)>> {
        let (upper, mut expected) = (self.next_offset(), self.base_offset);
        let mut pos = self.seek(data, offset)?;
        let mut found: Option<(usize, u64)> = None;
        let mut next_offset = offset;
        while pos < data.len() {
            let (h, _) = self.batch_in_place(data, pos, &mut expected, upper)?;
            if h.base_offset >= high_watermark {
                break;
            }
            if h.last_offset() < offset {
                pos += h.len();
                continue;
            }
            match found {
                None => found = Some((pos, h.base_offset)),
                Some((start, _)) if pos + h.len() - start > max_bytes => break,
                Some(_) => {}
            }
            pos += h.len();
            next_offset = h.next_offset();
        }
        Ok(found.map(|(start, base)| (start..pos.min(data.len()), base, next_offset)))
    }

    /// The first record at or after `min_offset` (and below `high_watermark`) with a timestamp `>= ts`.
    pub fn find_timestamp(&self, ts: i64, min_offset: u64, high_watermark: u64) -> Result<Option<u64>> {
        let data = self.data();
        let start_rel = self.with_indexes(|ix| index::lookup_time(&ix.times, ts))?;
        let from = start_rel.map_or(self.base_offset, |r| self.base_offset + r as u64).max(min_offset);
        let (upper, mut expected) = (self.next_offset(), self.base_offset);
        let mut pos = self.seek(&data, from)?;
        while pos < data.len() {
            let (h, b) = self.batch_in_place(&data, pos, &mut expected, upper)?;
            if h.base_offset >= high_watermark {
                return Ok(None);
            }
            if h.max_timestamp >= ts && h.last_offset() >= min_offset {
                let mut recs = Vec::with_capacity(h.record_count as usize);
                let records = batch::records_of(&h, &b).map_err(|c| self.corrupted(pos, c))?;
                batch::decode_records(&h, &records, min_offset, usize::MAX, &mut recs)
                    .map_err(|c| self.corrupted(pos, c))?;
                if let Some(r) = recs.iter().find(|r| r.timestamp >= ts) {
                    return Ok(Some(r.offset));
                }
            }
            pos += h.len();
        }
        Ok(None)
    }
}

/// A CRC-checked batch given by [`Partition::read_batches`](crate::Partition::read_batches), and
/// the part of it the read covers. It shares the segment's memory map; its records are lent by
/// [`for_each`](Self::for_each).
#[derive(Debug)]
pub struct ReadBatch {
    header: BatchHeader,
    /// The whole batch as stored.
    bytes: Bytes,
    /// Its records, uncompressed (shared with `bytes` when the batch is not compressed).
    records: Bytes,
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
        record.to_record(&self.records)
    }

    /// The batch's producer fields (all `-1` when it has no producer).
    pub fn producer(&self) -> crate::log::ProducerFields {
        self.header.producer
    }

    /// The batch's bytes as stored (Kafka's RecordBatch v2, compressed or not), shared with the map.
    pub fn raw(&self) -> &Bytes {
        &self.bytes
    }

    /// Calls `f` with each record the read covers, in order; returns the offset to read next:
    /// past the batch's last offset when every covered record was given (so that offsets
    /// compaction removed at a batch's end are skipped, as Kafka's fetch does), else past the last
    /// record given. A record found malformed (inside a batch whose CRC matched) is
    /// `Error::Corrupted`; the records before it were given.
    pub fn for_each<'a>(&'a self, mut f: impl FnMut(RecordRef<'a>)) -> Result<u64> {
        let mut given = 0usize;
        let mut last = None;
        batch::for_each_record(&self.header, &self.records, self.min_offset, self.max_records, |r| {
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
