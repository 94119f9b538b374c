//! The batch: Kafka's RecordBatch v2 (magic 2), the unit of append, of checksum and of recovery.
//! Byte for byte what Kafka writes; layout in `segment-format.md`, section 5. Big-endian.
//!
//! ```text
//! 0  baseOffset           i64  offset of the first record
//! 8  batchLength          i32  bytes after this field (the whole batch is batchLength + 12)
//! 12 partitionLeaderEpoch i32  PARTITION_LEADER_EPOCH (0) in batches kappalog writes
//! 16 magic                i8   2
//! 17 crc                  u32  CRC-32C (Castagnoli) of bytes [21, end)
//! 21 attributes           i16  bits 0-2 codec, 3 log-append time, 4 transactional, 5 control
//! 23 lastOffsetDelta      i32  last offset = baseOffset + lastOffsetDelta
//! 27 baseTimestamp        i64  record timestamps are deltas from this
//! 35 maxTimestamp         i64
//! 43 producerId           i64  -1: none
//! 51 producerEpoch        i16  -1: none
//! 53 baseSequence         i32  -1: none
//! 57 recordsCount         i32  >= 1
//! 61 records              recordsCount records (Kafka v2 records), compressed as one block when
//!                         the codec is not none
//! ```

use bytes::Bytes;

#[cfg(test)]
use super::record::RecordFields;
use super::record::{self, Record, RecordRef};
use crate::config::{BATCH_BYTES_MAX, BATCH_RECORDS_MAX};
use crate::error::Corruption;

/// The magic byte of Kafka's RecordBatch v2, the only batch format kappalog reads or writes.
pub(crate) const MAGIC: u8 = 2;

pub(crate) const BASE_OFFSET_OFFSET: usize = 0;
pub(crate) const LENGTH_OFFSET: usize = BASE_OFFSET_OFFSET + 8;
pub(crate) const PARTITION_LEADER_EPOCH_OFFSET: usize = LENGTH_OFFSET + 4;
pub(crate) const MAGIC_OFFSET: usize = PARTITION_LEADER_EPOCH_OFFSET + 4;
pub(crate) const CRC_OFFSET: usize = MAGIC_OFFSET + 1;
pub(crate) const ATTRIBUTES_OFFSET: usize = CRC_OFFSET + 4;
pub(crate) const LAST_OFFSET_DELTA_OFFSET: usize = ATTRIBUTES_OFFSET + 2;
pub(crate) const BASE_TIMESTAMP_OFFSET: usize = LAST_OFFSET_DELTA_OFFSET + 4;
pub(crate) const MAX_TIMESTAMP_OFFSET: usize = BASE_TIMESTAMP_OFFSET + 8;
pub(crate) const PRODUCER_ID_OFFSET: usize = MAX_TIMESTAMP_OFFSET + 8;
pub(crate) const PRODUCER_EPOCH_OFFSET: usize = PRODUCER_ID_OFFSET + 8;
pub(crate) const BASE_SEQUENCE_OFFSET: usize = PRODUCER_EPOCH_OFFSET + 2;
pub(crate) const RECORDS_COUNT_OFFSET: usize = BASE_SEQUENCE_OFFSET + 4;
/// Bytes of the batch header.
pub(crate) const HEADER_LEN: usize = RECORDS_COUNT_OFFSET + 4;
/// Bytes before `batchLength` counts (Kafka's `LOG_OVERHEAD`): baseOffset and batchLength.
pub(crate) const LOG_OVERHEAD: usize = PARTITION_LEADER_EPOCH_OFFSET;
/// The CRC covers the batch from here to its end (so not the base offset, the length, the
/// leader epoch nor the magic byte).
pub(crate) const CRC_START: usize = ATTRIBUTES_OFFSET;
/// The smallest record: length, attributes, timestamp delta, offset delta, key, value, header count.
pub(crate) const RECORD_LEN_MIN: usize = 7;

/// `partitionLeaderEpoch` of every batch kappalog writes: a single-node log whose leader epoch is
/// always 0, as a Kafka broker stamps it on its first leader epoch. Not covered by the CRC.
pub(crate) const PARTITION_LEADER_EPOCH: i32 = 0;

/// Attribute bits 0-2: the compression codec (0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd).
pub(crate) const ATTRIBUTE_CODEC_MASK: u16 = 0x07;
/// Attribute bit 3: timestamps are the log-append time (`maxTimestamp` is every record's).
pub(crate) const ATTRIBUTE_LOG_APPEND_TIME: u16 = 0x08;
/// Attribute bit 4: a transactional batch (never written by kappalog; refused).
pub(crate) const ATTRIBUTE_TRANSACTIONAL: u16 = 0x10;
/// Attribute bit 5: a control batch (never written by kappalog; refused).
pub(crate) const ATTRIBUTE_CONTROL: u16 = 0x20;
const ATTRIBUTES_KNOWN: u16 = ATTRIBUTE_CODEC_MASK | ATTRIBUTE_LOG_APPEND_TIME;
/// The highest codec number (zstd).
pub(crate) const CODEC_MAX: u16 = 4;

const _: () = assert!(HEADER_LEN == 61);
const _: () = assert!(CRC_START == 21 && LOG_OVERHEAD == 12);

/// The producer fields of a batch (Kafka's idempotent producer): `-1` in each when the batch has
/// no producer ([`ProducerFields::NONE`]). Covered by the batch's CRC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ProducerFields {
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
}

impl ProducerFields {
    /// No producer: every field `-1`, what kappalog writes unless told otherwise.
    pub const NONE: ProducerFields = ProducerFields { producer_id: -1, producer_epoch: -1, base_sequence: -1 };

    /// Whether a producer id is set (`producer_id >= 0`).
    pub fn is_some(&self) -> bool {
        self.producer_id >= 0
    }
}

impl Default for ProducerFields {
    fn default() -> Self {
        ProducerFields::NONE
    }
}

/// The fixed header of a batch, decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BatchHeader {
    pub base_offset: u64,
    /// Bytes of the whole batch (the `batchLength` field plus [`LOG_OVERHEAD`]).
    pub length: u32,
    pub partition_leader_epoch: i32,
    pub crc: u32,
    pub attributes: u16,
    pub last_offset_delta: u32,
    /// `baseTimestamp`.
    pub first_timestamp: i64,
    pub max_timestamp: i64,
    pub producer: ProducerFields,
    pub record_count: u32,
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}
fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(b[at..at + 4].try_into().unwrap())
}
fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_be_bytes(b[at..at + 8].try_into().unwrap())
}
fn put(b: &mut [u8], at: usize, bytes: &[u8]) {
    b[at..at + bytes.len()].copy_from_slice(bytes);
}

impl BatchHeader {
    /// Parses and sanity-checks a header at the start of `b`. `Ok(None)`: `b` is shorter than a header.
    /// The checksum is not checked here: see [`verify`].
    pub fn parse(b: &[u8]) -> Result<Option<BatchHeader>, Corruption> {
        if b.len() < HEADER_LEN {
            return Ok(None);
        }
        let malformed = |s: String| Err(Corruption::Malformed(s));
        if b[MAGIC_OFFSET] != MAGIC {
            return malformed(format!("batch magic {} (expected {MAGIC})", b[MAGIC_OFFSET] as i8));
        }
        let batch_length = u32_at(b, LENGTH_OFFSET) as i32;
        let last_offset_delta = u32_at(b, LAST_OFFSET_DELTA_OFFSET) as i32;
        let record_count = u32_at(b, RECORDS_COUNT_OFFSET) as i32;
        let base_offset = u64_at(b, BASE_OFFSET_OFFSET) as i64;
        let attributes = u16_at(b, ATTRIBUTES_OFFSET);
        let total = batch_length as i64 + LOG_OVERHEAD as i64;
        if total < HEADER_LEN as i64 || total > BATCH_BYTES_MAX as i64 {
            return malformed(format!("batch length {batch_length}"));
        }
        if attributes & (ATTRIBUTE_TRANSACTIONAL | ATTRIBUTE_CONTROL) != 0 {
            return malformed(format!("transactional or control batch (attributes {attributes:#x}): not supported"));
        }
        if attributes & !ATTRIBUTES_KNOWN != 0 || attributes & ATTRIBUTE_CODEC_MASK > CODEC_MAX {
            return malformed(format!("unknown batch attributes {attributes:#x}"));
        }
        let records_len = total as usize - HEADER_LEN;
        let compressed = attributes & ATTRIBUTE_CODEC_MASK != 0;
        // A batch with no records (what compaction keeps of a producer's last batch, as Kafka's
        // cleaner does) is a bare header, and a bare header holds no records.
        if last_offset_delta < 0
            || record_count < 0
            || (record_count == 0) != (records_len == 0)
            || record_count as u32 > BATCH_RECORDS_MAX
            || record_count as i64 > last_offset_delta as i64 + 1
            || (!compressed && (record_count as usize) * RECORD_LEN_MIN > records_len)
        {
            return malformed(format!("record count {record_count} (last offset delta {last_offset_delta})"));
        }
        if base_offset < 0
            || (base_offset as u64).checked_add(last_offset_delta as u64).is_none_or(|o| o >= u64::MAX / 2)
        {
            return malformed(format!("base offset {base_offset}"));
        }
        Ok(Some(BatchHeader {
            base_offset: base_offset as u64,
            length: total as u32,
            partition_leader_epoch: u32_at(b, PARTITION_LEADER_EPOCH_OFFSET) as i32,
            crc: u32_at(b, CRC_OFFSET),
            attributes,
            last_offset_delta: last_offset_delta as u32,
            first_timestamp: u64_at(b, BASE_TIMESTAMP_OFFSET) as i64,
            max_timestamp: u64_at(b, MAX_TIMESTAMP_OFFSET) as i64,
            producer: ProducerFields {
                producer_id: u64_at(b, PRODUCER_ID_OFFSET) as i64,
                producer_epoch: u16_at(b, PRODUCER_EPOCH_OFFSET) as i16,
                base_sequence: u32_at(b, BASE_SEQUENCE_OFFSET) as i32,
            },
            record_count: record_count as u32,
        }))
    }

    pub fn last_offset(&self) -> u64 {
        self.base_offset + self.last_offset_delta as u64
    }

    pub fn next_offset(&self) -> u64 {
        self.last_offset() + 1
    }

    pub fn len(&self) -> usize {
        self.length as usize
    }

    /// The compression codec number (attribute bits 0-2).
    pub fn codec(&self) -> u16 {
        self.attributes & ATTRIBUTE_CODEC_MASK
    }

    pub fn log_append_time(&self) -> bool {
        self.attributes & ATTRIBUTE_LOG_APPEND_TIME != 0
    }

    /// The timestamp of a record whose timestamp delta is `delta`: under log-append time every
    /// record's is `maxTimestamp` (Kafka's rule), else `baseTimestamp + delta`.
    #[inline(always)]
    pub fn record_timestamp(&self, delta: i64) -> i64 {
        if self.log_append_time() {
            self.max_timestamp
        } else {
            self.first_timestamp.wrapping_add(delta)
        }
    }
}

/// The CRC-32C a batch's header should hold: of bytes [`CRC_START`]`..` of `b`, the whole batch.
pub(crate) fn crc_of(b: &[u8]) -> u32 {
    crc32c::crc32c(&b[CRC_START..])
}

/// Checks a whole stored batch (`b.len() == header.length`): its CRC, and its partition leader
/// epoch (not covered by the CRC; kappalog stores [`PARTITION_LEADER_EPOCH`] in every batch).
pub(crate) fn verify(header: &BatchHeader, b: &[u8]) -> Result<(), Corruption> {
    debug_assert_eq!(b.len(), header.len());
    if header.partition_leader_epoch != PARTITION_LEADER_EPOCH {
        return Err(Corruption::Malformed(format!(
            "partition leader epoch {} (kappalog stores {PARTITION_LEADER_EPOCH})",
            header.partition_leader_epoch
        )));
    }
    let found = crc_of(b);
    if found != header.crc {
        return Err(Corruption::ChecksumMismatch { expected: header.crc, found });
    }
    Ok(())
}

/// Encodes one batch into `b`, which must be exactly its length: [`HEADER_LEN`] plus the
/// [`record::encoded_len`] of each record. Records come with their [`record::body_len`]; their
/// offset deltas must increase and their timestamp deltas are from `first_timestamp`. Every byte
/// of `b` is written (it may hold a reused buffer's old bytes). The partition's encoder does the
/// same in one pass with its checks (see `partition::encode`); tests build batches with this.
#[cfg(test)]
pub(crate) fn encode<'a>(
    b: &mut [u8],
    base_offset: u64,
    attributes: u16,
    (first_timestamp, max_timestamp): (i64, i64),
    records: impl Iterator<Item = (RecordFields<'a>, usize)>,
) -> BatchHeader {
    let mut p = HEADER_LEN;
    let mut count = 0u32;
    let mut last_delta = 0u32;
    for (r, body) in records {
        assert!(count == 0 || r.offset_delta > last_delta, "offset deltas must increase");
        p += record::encode(&mut b[p..], &r, body);
        last_delta = r.offset_delta;
        count += 1;
    }
    assert!(count > 0, "a batch holds at least one record");
    assert_eq!(p, b.len(), "the batch was sized for its records");
    let fields = HeaderFields {
        base_offset,
        attributes,
        timestamps: (first_timestamp, max_timestamp),
        record_count: count,
        last_offset_delta: last_delta,
        producer: ProducerFields::NONE,
    };
    finish(b, &fields)
}

/// What [`finish`] writes into a batch's header.
#[derive(Debug, Clone, Copy)]
pub(crate) struct HeaderFields {
    pub base_offset: u64,
    pub attributes: u16,
    /// `(baseTimestamp, maxTimestamp)`.
    pub timestamps: (i64, i64),
    pub record_count: u32,
    pub last_offset_delta: u32,
    pub producer: ProducerFields,
}

/// Completes a batch whose records (compressed or not, as `attributes` says) are in
/// `b[HEADER_LEN..]` (`b` holds exactly the batch): writes every byte of its header, CRC included.
pub(crate) fn finish(b: &mut [u8], f: &HeaderFields) -> BatchHeader {
    assert!(b.len() >= HEADER_LEN && b.len() <= BATCH_BYTES_MAX as usize, "a batch of {} bytes", b.len());
    put(b, BASE_OFFSET_OFFSET, &f.base_offset.to_be_bytes());
    put(b, LENGTH_OFFSET, &((b.len() - LOG_OVERHEAD) as u32).to_be_bytes());
    put(b, PARTITION_LEADER_EPOCH_OFFSET, &PARTITION_LEADER_EPOCH.to_be_bytes());
    b[MAGIC_OFFSET] = MAGIC;
    put(b, ATTRIBUTES_OFFSET, &f.attributes.to_be_bytes());
    put(b, LAST_OFFSET_DELTA_OFFSET, &f.last_offset_delta.to_be_bytes());
    put(b, BASE_TIMESTAMP_OFFSET, &f.timestamps.0.to_be_bytes());
    put(b, MAX_TIMESTAMP_OFFSET, &f.timestamps.1.to_be_bytes());
    put(b, RECORDS_COUNT_OFFSET, &f.record_count.to_be_bytes());
    write_producer(b, &f.producer);
    let crc = crc_of(b);
    put(b, CRC_OFFSET, &crc.to_be_bytes());
    BatchHeader {
        base_offset: f.base_offset,
        length: b.len() as u32,
        partition_leader_epoch: PARTITION_LEADER_EPOCH,
        crc,
        attributes: f.attributes,
        last_offset_delta: f.last_offset_delta,
        first_timestamp: f.timestamps.0,
        max_timestamp: f.timestamps.1,
        producer: f.producer,
        record_count: f.record_count,
    }
}

fn write_producer(b: &mut [u8], p: &ProducerFields) {
    put(b, PRODUCER_ID_OFFSET, &p.producer_id.to_be_bytes());
    put(b, PRODUCER_EPOCH_OFFSET, &p.producer_epoch.to_be_bytes());
    put(b, BASE_SEQUENCE_OFFSET, &p.base_sequence.to_be_bytes());
}

/// Sets the producer fields of a finished batch and recomputes its CRC (which covers them: one
/// pass over the batch). Prefer giving them to the encoder when they are known before encoding.
#[cfg(test)]
pub(crate) fn set_producer(b: &mut [u8], p: &ProducerFields) -> u32 {
    write_producer(b, p);
    let crc = crc_of(b);
    put(b, CRC_OFFSET, &crc.to_be_bytes());
    crc
}

/// [`encode`] appending to `out` (tests build batches with it).
#[cfg(test)]
pub(crate) fn encode_to_vec<'a>(
    out: &mut Vec<u8>,
    base_offset: u64,
    attributes: u16,
    timestamps: (i64, i64),
    records: impl Iterator<Item = (RecordFields<'a>, usize)>,
) -> BatchHeader {
    let records: Vec<_> = records.collect();
    let len = HEADER_LEN + records.iter().map(|(_, body)| record::encoded_len(*body)).sum::<usize>();
    let start = out.len();
    out.resize(start + len, 0);
    encode(&mut out[start..], base_offset, attributes, timestamps, records.into_iter())
}

/// Gives an encoded batch its base offset (assigned under the partition's write lock). The CRC
/// does not cover the base offset: nothing else changes.
pub(crate) fn set_base_offset(b: &mut [u8], base_offset: u64) -> BatchHeader {
    put(b, BASE_OFFSET_OFFSET, &base_offset.to_be_bytes());
    BatchHeader::parse(b).expect("our own batch parses").expect("our own batch is whole")
}

/// The records of a verified, uncompressed batch (`batch` holds exactly its bytes), shared.
pub(crate) fn uncompressed_records(batch: &Bytes) -> Bytes {
    batch.slice(HEADER_LEN..)
}

/// Decodes every record of a batch whose offset is `>= min_offset`, pushing them to `out` (at most
/// `max_records`). `records` holds the batch's records, uncompressed (shared with the map, or the
/// output of decompression).
pub(crate) fn decode_records(
    header: &BatchHeader,
    records: &Bytes,
    min_offset: u64,
    max_records: usize,
    out: &mut Vec<Record>,
) -> Result<(), Corruption> {
    let mut pos = 0;
    let mut last: Option<u64> = None;
    // Reserve once: growing `out` record by record moved every record several times.
    out.reserve((header.record_count as usize).min(max_records.saturating_sub(out.len())));
    for i in 0..header.record_count {
        if out.len() >= max_records && last.is_some() {
            break;
        }
        let mut rec = record::decode_shared(records, &mut pos, header.base_offset, header.first_timestamp)
            .map_err(|e| Corruption::Malformed(format!("record {i}: {e}")))?;
        if rec.offset > header.last_offset() || last.is_some_and(|l| rec.offset <= l) {
            return Err(Corruption::Malformed(format!("record {i}: offset {} out of order", rec.offset)));
        }
        if header.log_append_time() {
            rec.timestamp = header.max_timestamp;
        }
        last = Some(rec.offset);
        if rec.offset >= min_offset {
            if out.len() >= max_records {
                break;
            }
            out.push(rec);
        }
    }
    Ok(())
}

/// Calls `f` with each record of `records` (a batch's records, uncompressed) at or after
/// `min_offset`, at most `max_records` of them (records are borrowed from `records`). Every record
/// before the last one given is checked.
pub(crate) fn for_each_record<'a>(
    header: &BatchHeader,
    records: &'a [u8],
    min_offset: u64,
    max_records: usize,
    mut f: impl FnMut(RecordRef<'a>),
) -> Result<(), Corruption> {
    let mut pos = 0;
    let mut last: Option<u64> = None;
    let mut given = 0;
    for i in 0..header.record_count {
        if given >= max_records && last.is_some() {
            break;
        }
        let mut rec = record::decode(records, &mut pos, header.base_offset, header.first_timestamp)
            .map_err(|e| Corruption::Malformed(format!("record {i}: {e}")))?;
        if rec.offset > header.last_offset() || last.is_some_and(|l| rec.offset <= l) {
            return Err(Corruption::Malformed(format!("record {i}: offset {} out of order", rec.offset)));
        }
        if header.log_append_time() {
            rec.timestamp = header.max_timestamp;
        }
        last = Some(rec.offset);
        if rec.offset >= min_offset {
            if given >= max_records {
                break;
            }
            given += 1;
            f(rec);
        }
    }
    Ok(())
}

/// The records of a verified batch, decompressed when its codec says so (bounded by
/// [`super::compression::DECOMPRESSED_BYTES_MAX`]).
pub(crate) fn records_of(header: &BatchHeader, batch: &Bytes) -> Result<Bytes, Corruption> {
    super::compression::records_of(header, batch)
}

/// Decodes every record of a batch, checking the whole batch (used by tools and fuzzing).
pub(crate) fn decode_all(batch: &Bytes) -> Result<(BatchHeader, Vec<Record>), Corruption> {
    let header = BatchHeader::parse(batch)?
        .ok_or_else(|| Corruption::Malformed(format!("{} bytes is shorter than a batch header", batch.len())))?;
    if header.len() != batch.len() {
        return Err(Corruption::Malformed(format!("batch length {} but {} bytes", header.length, batch.len())));
    }
    verify(&header, batch)?;
    let records = records_of(&header, batch)?;
    let mut out = Vec::with_capacity(header.record_count as usize);
    decode_records(&header, &records, 0, usize::MAX, &mut out)?;
    if out.len() != header.record_count as usize {
        return Err(Corruption::Malformed("record count mismatch".into()));
    }
    Ok((header, out))
}

#[cfg(test)]
mod tests;
