//! The batch: the unit of append, of checksum and of recovery. Layout in `segment-format.md`.
//!
//! ```text
//! 0  length            u32  bytes of the whole batch, header included
//! 4  crc               u32  CRC-32 (IEEE, crc32fast) of bytes [8, length)
//! 8  version           u8   FORMAT_VERSION
//! 9  attributes        u16  bit 0: timestamps are log-append time; other bits zero
//! 11 base_offset       u64
//! 19 last_offset_delta u32  last offset = base_offset + last_offset_delta
//! 23 record_count      u32  >= 1
//! 27 first_timestamp   i64  record timestamps are deltas from this
//! 35 max_timestamp     i64
//! 43 records           record_count records (Kafka v2 record encoding)
//! ```

use bytes::Bytes;

#[cfg(test)]
use super::record::RecordFields;
use super::record::{self, Record, RecordRef};
use crate::config::{BATCH_BYTES_MAX, BATCH_RECORDS_MAX};
use crate::error::Corruption;

pub(crate) const FORMAT_VERSION: u8 = 1;

pub(crate) const LENGTH_OFFSET: usize = 0;
pub(crate) const CRC_OFFSET: usize = LENGTH_OFFSET + 4;
pub(crate) const VERSION_OFFSET: usize = CRC_OFFSET + 4;
pub(crate) const ATTRIBUTES_OFFSET: usize = VERSION_OFFSET + 1;
pub(crate) const BASE_OFFSET_OFFSET: usize = ATTRIBUTES_OFFSET + 2;
pub(crate) const LAST_OFFSET_DELTA_OFFSET: usize = BASE_OFFSET_OFFSET + 8;
pub(crate) const RECORD_COUNT_OFFSET: usize = LAST_OFFSET_DELTA_OFFSET + 4;
pub(crate) const FIRST_TIMESTAMP_OFFSET: usize = RECORD_COUNT_OFFSET + 4;
pub(crate) const MAX_TIMESTAMP_OFFSET: usize = FIRST_TIMESTAMP_OFFSET + 8;
/// Bytes of the batch header.
pub(crate) const HEADER_LEN: usize = MAX_TIMESTAMP_OFFSET + 8;
/// The smallest record: length, attributes, timestamp delta, offset delta, key, value, header count.
pub(crate) const RECORD_LEN_MIN: usize = 7;

/// Batches up to this size get their CRC computed from scratch; bigger ones combine the header's CRC
/// with the records' (computed once, outside the partition's lock, whatever the base offset).
const CRC_RECOMPUTE_BYTES_MAX: usize = 4096;

pub(crate) const ATTRIBUTE_LOG_APPEND_TIME: u16 = 1;
const ATTRIBUTES_KNOWN: u16 = ATTRIBUTE_LOG_APPEND_TIME;

const _: () = assert!(HEADER_LEN == 43);

/// The fixed header of a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BatchHeader {
    pub length: u32,
    pub crc: u32,
    pub attributes: u16,
    pub base_offset: u64,
    pub last_offset_delta: u32,
    pub record_count: u32,
    pub first_timestamp: i64,
    pub max_timestamp: i64,
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}
fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}

impl BatchHeader {
    /// Parses and sanity-checks a header at the start of `b`. `Ok(None)`: `b` is shorter than a header.
    /// The checksum is not checked here: see [`verify`].
    pub fn parse(b: &[u8]) -> Result<Option<BatchHeader>, Corruption> {
        if b.len() < HEADER_LEN {
            return Ok(None);
        }
        let malformed = |s: String| Err(Corruption::Malformed(s));
        let h = BatchHeader {
            length: u32_at(b, LENGTH_OFFSET),
            crc: u32_at(b, CRC_OFFSET),
            attributes: u16::from_le_bytes([b[ATTRIBUTES_OFFSET], b[ATTRIBUTES_OFFSET + 1]]),
            base_offset: u64_at(b, BASE_OFFSET_OFFSET),
            last_offset_delta: u32_at(b, LAST_OFFSET_DELTA_OFFSET),
            record_count: u32_at(b, RECORD_COUNT_OFFSET),
            first_timestamp: u64_at(b, FIRST_TIMESTAMP_OFFSET) as i64,
            max_timestamp: u64_at(b, MAX_TIMESTAMP_OFFSET) as i64,
        };
        if b[VERSION_OFFSET] != FORMAT_VERSION {
            return malformed(format!("batch version {} (expected {FORMAT_VERSION})", b[VERSION_OFFSET]));
        }
        let len = h.length as usize;
        if len < HEADER_LEN + RECORD_LEN_MIN || h.length > BATCH_BYTES_MAX {
            return malformed(format!("batch length {}", h.length));
        }
        if h.attributes & !ATTRIBUTES_KNOWN != 0 {
            return malformed(format!("unknown batch attributes {:#x}", h.attributes));
        }
        if h.record_count == 0
            || h.record_count > BATCH_RECORDS_MAX
            || h.record_count as u64 > h.last_offset_delta as u64 + 1
            || (h.record_count as usize) * RECORD_LEN_MIN > len - HEADER_LEN
        {
            return malformed(format!("record count {} (last offset delta {})", h.record_count, h.last_offset_delta));
        }
        if h.base_offset.checked_add(h.last_offset_delta as u64).is_none_or(|o| o >= u64::MAX / 2) {
            return malformed(format!("base offset {}", h.base_offset));
        }
        Ok(Some(h))
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
}

/// Checks the CRC of a whole batch (`b.len() == header.length`).
pub(crate) fn verify(header: &BatchHeader, b: &[u8]) -> Result<(), Corruption> {
    debug_assert_eq!(b.len(), header.len());
    let found = crc32fast::hash(&b[VERSION_OFFSET..]);
    if found != header.crc {
        return Err(Corruption::ChecksumMismatch { expected: header.crc, found });
    }
    Ok(())
}

/// Encodes one batch into `b`, which must be exactly its length: [`HEADER_LEN`] plus the
/// [`record::encoded_len`] of each record. Records come with their [`record::body_len`] (the caller
/// sized the batch with it, so it is not computed twice); their offset deltas must increase and
/// their timestamp deltas are from `first_timestamp`. Every byte of `b` is written (it may hold a
/// reused buffer's old bytes). Returns the header written and the CRC of the records (see
/// [`set_base_offset`]). The partition's encoder does the same in one pass with its checks (see
/// `partition::encode`); tests build batches with this.
#[cfg(test)]
pub(crate) fn encode<'a>(
    b: &mut [u8],
    base_offset: u64,
    attributes: u16,
    (first_timestamp, max_timestamp): (i64, i64),
    records: impl Iterator<Item = (RecordFields<'a>, usize)>,
) -> (BatchHeader, crc32fast::Hasher) {
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
    finish(b, base_offset, attributes, (first_timestamp, max_timestamp), count, last_delta)
}

/// Completes a batch whose records are encoded in `b[HEADER_LEN..]` (`b` holds exactly the batch):
/// writes every byte of its header, CRC included. Returns the header and the CRC of the records (see
/// [`set_base_offset`]).
pub(crate) fn finish(
    b: &mut [u8],
    base_offset: u64,
    attributes: u16,
    (first_timestamp, max_timestamp): (i64, i64),
    record_count: u32,
    last_offset_delta: u32,
) -> (BatchHeader, crc32fast::Hasher) {
    let h = BatchHeader {
        length: b.len() as u32,
        crc: 0,
        attributes,
        base_offset,
        last_offset_delta,
        record_count,
        first_timestamp,
        max_timestamp,
    };
    b[LENGTH_OFFSET..LENGTH_OFFSET + 4].copy_from_slice(&h.length.to_le_bytes());
    b[VERSION_OFFSET] = FORMAT_VERSION;
    b[ATTRIBUTES_OFFSET..ATTRIBUTES_OFFSET + 2].copy_from_slice(&attributes.to_le_bytes());
    b[BASE_OFFSET_OFFSET..BASE_OFFSET_OFFSET + 8].copy_from_slice(&base_offset.to_le_bytes());
    b[LAST_OFFSET_DELTA_OFFSET..LAST_OFFSET_DELTA_OFFSET + 4].copy_from_slice(&last_offset_delta.to_le_bytes());
    b[RECORD_COUNT_OFFSET..RECORD_COUNT_OFFSET + 4].copy_from_slice(&record_count.to_le_bytes());
    b[FIRST_TIMESTAMP_OFFSET..FIRST_TIMESTAMP_OFFSET + 8].copy_from_slice(&first_timestamp.to_le_bytes());
    b[MAX_TIMESTAMP_OFFSET..MAX_TIMESTAMP_OFFSET + 8].copy_from_slice(&max_timestamp.to_le_bytes());
    let mut body_crc = crc32fast::Hasher::new();
    body_crc.update(&b[HEADER_LEN..]);
    let crc = write_crc(b, &body_crc);
    (BatchHeader { crc, ..h }, body_crc)
}

/// [`encode`] appending to `out` (tests build batches with it).
#[cfg(test)]
pub(crate) fn encode_to_vec<'a>(
    out: &mut Vec<u8>,
    base_offset: u64,
    attributes: u16,
    timestamps: (i64, i64),
    records: impl Iterator<Item = (RecordFields<'a>, usize)>,
) -> (BatchHeader, crc32fast::Hasher) {
    let records: Vec<_> = records.collect();
    let len = HEADER_LEN + records.iter().map(|(_, body)| record::encoded_len(*body)).sum::<usize>();
    let start = out.len();
    out.resize(start + len, 0);
    encode(&mut out[start..], base_offset, attributes, timestamps, records.into_iter())
}

/// Computes and stores the CRC of a batch from its header bytes and the CRC of its records.
fn write_crc(b: &mut [u8], body_crc: &crc32fast::Hasher) -> u32 {
    let crc = if b.len() <= CRC_RECOMPUTE_BYTES_MAX {
        // Hashing a small batch again is cheaper than combining CRCs (some hundreds of ns).
        crc32fast::hash(&b[VERSION_OFFSET..])
    } else {
        let mut h = crc32fast::Hasher::new();
        h.update(&b[VERSION_OFFSET..HEADER_LEN]);
        h.combine(body_crc);
        h.finalize()
    };
    b[CRC_OFFSET..CRC_OFFSET + 4].copy_from_slice(&crc.to_le_bytes());
    crc
}

/// Gives an encoded batch its base offset (assigned under the partition's write lock) and fixes
/// its CRC without reading the records again.
pub(crate) fn set_base_offset(b: &mut [u8], base_offset: u64, body_crc: &crc32fast::Hasher) -> BatchHeader {
    b[BASE_OFFSET_OFFSET..BASE_OFFSET_OFFSET + 8].copy_from_slice(&base_offset.to_le_bytes());
    let crc = write_crc(b, body_crc);
    let h = BatchHeader::parse(b).expect("our own batch parses").expect("our own batch is whole");
    debug_assert_eq!(h.crc, crc);
    h
}

/// Decodes every record of a verified batch whose offset is `>= min_offset`, pushing them to `out`
/// (at most `max_records`). `batch` holds exactly the batch's bytes.
pub(crate) fn decode_records(
    header: &BatchHeader,
    batch: &Bytes,
    min_offset: u64,
    max_records: usize,
    out: &mut Vec<Record>,
) -> Result<(), Corruption> {
    let mut pos = HEADER_LEN;
    let mut last: Option<u64> = None;
    // Reserve once: growing `out` record by record moved every record several times.
    out.reserve((header.record_count as usize).min(max_records.saturating_sub(out.len())));
    for i in 0..header.record_count {
        if out.len() >= max_records && last.is_some() {
            break;
        }
        let rec = record::decode_shared(batch, &mut pos, header.base_offset, header.first_timestamp)
            .map_err(|e| Corruption::Malformed(format!("record {i}: {e}")))?;
        if rec.offset > header.last_offset() || last.is_some_and(|l| rec.offset <= l) {
            return Err(Corruption::Malformed(format!("record {i}: offset {} out of order", rec.offset)));
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

/// Calls `f` with each record of `batch` at or after `min_offset`, at most `max_records` of them
/// (records are borrowed from `batch`). Every record before the last one given is checked.
pub(crate) fn for_each_record<'a>(
    header: &BatchHeader,
    batch: &'a [u8],
    min_offset: u64,
    max_records: usize,
    mut f: impl FnMut(RecordRef<'a>),
) -> Result<(), Corruption> {
    let mut pos = HEADER_LEN;
    let mut last: Option<u64> = None;
    let mut given = 0;
    for i in 0..header.record_count {
        if given >= max_records && last.is_some() {
            break;
        }
        let rec = record::decode(batch, &mut pos, header.base_offset, header.first_timestamp)
            .map_err(|e| Corruption::Malformed(format!("record {i}: {e}")))?;
        if rec.offset > header.last_offset() || last.is_some_and(|l| rec.offset <= l) {
            return Err(Corruption::Malformed(format!("record {i}: offset {} out of order", rec.offset)));
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

/// Decodes every record of a batch, checking the whole batch (used by tools and fuzzing).
pub(crate) fn decode_all(batch: &Bytes) -> Result<(BatchHeader, Vec<Record>), Corruption> {
    let header = BatchHeader::parse(batch)?
        .ok_or_else(|| Corruption::Malformed(format!("{} bytes is shorter than a batch header", batch.len())))?;
    if header.len() != batch.len() {
        return Err(Corruption::Malformed(format!("batch length {} but {} bytes", header.length, batch.len())));
    }
    verify(&header, batch)?;
    let mut out = Vec::with_capacity(header.record_count as usize);
    decode_records(&header, batch, 0, usize::MAX, &mut out)?;
    if out.len() != header.record_count as usize {
        return Err(Corruption::Malformed("record count mismatch".into()));
    }
    Ok((header, out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::record::Header;

    fn sample(n: u32) -> Vec<u8> {
        sample_over(n, 0)
    }

    /// `n` sample records, encoded into a buffer whose old bytes were all `old`.
    fn sample_over(n: u32, old: u8) -> Vec<u8> {
        let headers = vec![Header::new("trace", Bytes::from_static(b"abc"))];
        let values: Vec<Vec<u8>> = (0..n).map(|i| format!("value-{i}").into_bytes()).collect();
        let records: Vec<_> = values
            .iter()
            .enumerate()
            .map(|(i, v)| {
                RecordFields {
                    offset_delta: i as u32,
                    timestamp_delta: i as i64,
                    key: if i % 2 == 0 { Some(b"key") } else { None },
                    value: Some(v),
                    headers: &headers,
                }
                .with_body_len()
            })
            .collect();
        let len = HEADER_LEN + records.iter().map(|(_, body)| record::encoded_len(*body)).sum::<usize>();
        let mut out = vec![old; len];
        let _ = encode(&mut out, 42, 0, (1_000, 1_000 + n as i64 - 1), records.into_iter());
        out
    }

    #[test]
    fn rebase_keeps_the_crc_right() {
        // Both ways of fixing the CRC: recomputed (small batch) and combined (big batch).
        for n in [4, 500] {
            let mut b = sample(n);
            assert_eq!(b.len() > CRC_RECOMPUTE_BYTES_MAX, n == 500, "{} bytes", b.len());
            let mut body = crc32fast::Hasher::new();
            body.update(&b[HEADER_LEN..]);
            let h = set_base_offset(&mut b, 1_000_000, &body);
            assert_eq!(h.base_offset, 1_000_000);
            let (h2, recs) = decode_all(&Bytes::from(b)).unwrap();
            assert_eq!(h, h2);
            assert_eq!(recs[0].offset, 1_000_000);
        }
    }

    /// The encoder writes every byte of its buffer: a reused buffer's old bytes never reach a batch
    /// (the partition encodes into pooled buffers that are not zeroed).
    #[test]
    fn encode_overwrites_a_reused_buffer() {
        let clean = sample(300);
        for old in [0xaa, 0xff] {
            assert_eq!(sample_over(300, old), clean, "old bytes {old:#x} showed through");
        }
    }

    #[test]
    fn roundtrip() {
        let b = Bytes::from(sample(5));
        let (h, recs) = decode_all(&b).unwrap();
        assert_eq!(
            (h.base_offset, h.record_count, h.last_offset(), h.first_timestamp, h.max_timestamp),
            (42, 5, 46, 1000, 1004)
        );
        assert_eq!(recs.len(), 5);
        assert_eq!(recs[3].offset, 45);
        assert_eq!(recs[3].timestamp, 1003);
        assert_eq!(recs[3].value.as_deref(), Some(&b"value-3"[..]));
        assert_eq!(recs[2].key.as_deref(), Some(&b"key"[..]));
        assert_eq!(recs[1].key, None);
    }

    #[test]
    fn every_flipped_byte_is_detected() {
        let good = sample(3);
        for i in 0..good.len() {
            let mut bad = good.clone();
            bad[i] ^= 0x5a;
            assert!(decode_all(&Bytes::from(bad)).is_err(), "flip at byte {i} went unnoticed");
        }
    }

    #[test]
    fn min_offset_and_budget() {
        let b = Bytes::from(sample(5));
        let h = BatchHeader::parse(&b).unwrap().unwrap();
        let mut out = Vec::new();
        decode_records(&h, &b, 44, 2, &mut out).unwrap();
        assert_eq!(out.iter().map(|r| r.offset).collect::<Vec<_>>(), [44, 45]);
    }
}
