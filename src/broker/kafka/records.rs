//! Kafka RecordBatch v2 (magic 2) as clients send and expect it: decoding a produced batch into
//! records, checked (CRC-32C, lengths and counts against the bytes that remain), and encoding
//! stored records as batches for Fetch.
//!
//! ```text
//! baseOffset i64 | batchLength i32 | partitionLeaderEpoch i32 | magic i8 | crc u32 (CRC-32C of
//! what follows) | attributes i16 | lastOffsetDelta i32 | baseTimestamp i64 | maxTimestamp i64 |
//! producerId i64 | producerEpoch i16 | baseSequence i32 | recordCount i32 | records
//! record: length varint | attributes i8 | timestampDelta varlong | offsetDelta varint |
//!         key varint-length bytes | value varint-length bytes | headers varint count, each
//!         key varint-length string, value varint-length bytes
//! ```

use bytes::{BufMut, Bytes, BytesMut};

use super::wire::{Error, Reader, Result};
use crate::log::RecordRef;
use crate::{Header, NewRecord};

/// Bytes before the records.
pub const BATCH_HEADER_BYTES: usize = 61;
/// Bytes of `baseOffset` and `batchLength`: the rest of a batch is `batchLength` long.
pub const LOG_OVERHEAD: usize = 12;
const CRC_START: usize = 21;
/// The smallest encoded record (length, attributes, three varints, two null lengths, no headers).
const RECORD_BYTES_MIN: usize = 7;
/// Attribute bits.
pub const COMPRESSION_MASK: i16 = 0x07;
pub const TIMESTAMP_LOG_APPEND: i16 = 0x08;
pub const TRANSACTIONAL: i16 = 0x10;
pub const CONTROL: i16 = 0x20;

/// A produced batch, decoded.
#[derive(Debug)]
pub struct ProducedBatch {
    pub records: Vec<NewRecord>,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
}

/// Why a produced batch is refused, as a Kafka error code and a message.
#[derive(Debug)]
pub struct Refused {
    pub code: i16,
    pub message: String,
}

fn refused(code: i16, message: impl Into<String>) -> Refused {
    Refused { code, message: message.into() }
}

/// Decodes every batch in a Produce request's `records` field.
pub fn decode_batches(mut data: Bytes) -> std::result::Result<Vec<ProducedBatch>, Refused> {
    use super::code::{CORRUPT_MESSAGE, INVALID_RECORD, UNSUPPORTED_COMPRESSION_TYPE};
    let mut out = Vec::new();
    if data.is_empty() {
        return Err(refused(CORRUPT_MESSAGE, "no record batch"));
    }
    while !data.is_empty() {
        if data.len() < BATCH_HEADER_BYTES {
            return Err(refused(CORRUPT_MESSAGE, format!("a record batch of {} bytes is truncated", data.len())));
        }
        let length = i32::from_be_bytes(data[8..12].try_into().unwrap_or_default());
        let total = usize::try_from(length).unwrap_or(0).saturating_add(LOG_OVERHEAD);
        if total < BATCH_HEADER_BYTES || total > data.len() {
            return Err(refused(
                CORRUPT_MESSAGE,
                format!("batchLength {length} does not fit the {} bytes", data.len()),
            ));
        }
        let batch = data.split_to(total);
        let magic = batch[16] as i8;
        if magic != 2 {
            return Err(refused(CORRUPT_MESSAGE, format!("message format v{magic}: only RecordBatch v2 is served")));
        }
        let crc = u32::from_be_bytes(batch[17..21].try_into().unwrap_or_default());
        let computed = crc32c::crc32c(&batch[CRC_START..]);
        if crc != computed {
            return Err(refused(CORRUPT_MESSAGE, format!("CRC-32C {crc:#010x} does not match {computed:#010x}")));
        }
        let mut r = Reader::new(batch.slice(CRC_START..));
        let parsed = (|| -> Result<_> {
            let attributes = r.i16("attributes")?;
            let last_offset_delta = r.i32("lastOffsetDelta")?;
            let base_timestamp = r.i64("baseTimestamp")?;
            r.i64("maxTimestamp")?;
            let producer_id = r.i64("producerId")?;
            let producer_epoch = r.i16("producerEpoch")?;
            let base_sequence = r.i32("baseSequence")?;
            let count = r.i32("recordCount")?;
            Ok((attributes, last_offset_delta, base_timestamp, producer_id, producer_epoch, base_sequence, count))
        })();
        let (attributes, last_offset_delta, base_timestamp, producer_id, producer_epoch, base_sequence, count) =
            parsed.map_err(|e| refused(CORRUPT_MESSAGE, e.to_string()))?;
        if attributes & COMPRESSION_MASK != 0 {
            return Err(refused(
                UNSUPPORTED_COMPRESSION_TYPE,
                format!("compression codec {} is not supported; produce uncompressed", attributes & COMPRESSION_MASK),
            ));
        }
        if attributes & (TRANSACTIONAL | CONTROL) != 0 {
            return Err(refused(INVALID_RECORD, "transactional and control batches are not supported"));
        }
        if count < 0 || (count as usize).saturating_mul(RECORD_BYTES_MIN) > r.remaining() {
            return Err(refused(CORRUPT_MESSAGE, format!("recordCount {count} cannot fit the batch")));
        }
        let mut records = Vec::with_capacity(count as usize);
        for i in 0..count {
            let rec = decode_record(&mut r, base_timestamp)
                .map_err(|e| refused(CORRUPT_MESSAGE, format!("record {i}: {e}")))?;
            if rec.1 != i {
                return Err(refused(INVALID_RECORD, format!("record {i} has offsetDelta {}", rec.1)));
            }
            records.push(rec.0);
        }
        if r.remaining() != 0 {
            return Err(refused(CORRUPT_MESSAGE, format!("{} bytes after the last record", r.remaining())));
        }
        if count == 0 || last_offset_delta != count - 1 {
            return Err(refused(
                INVALID_RECORD,
                format!("lastOffsetDelta {last_offset_delta} does not match recordCount {count}"),
            ));
        }
        out.push(ProducedBatch { records, producer_id, producer_epoch, base_sequence });
    }
    Ok(out)
}

/// One record and its offset delta.
fn decode_record(r: &mut Reader, base_timestamp: i64) -> Result<(NewRecord, i32)> {
    let length = r.varint("record length")?;
    if length < 0 || length as usize > r.remaining() {
        return Err(Error::Length { field: "record length", len: length.into() });
    }
    let end = r.position() + length as usize;
    r.i8("record attributes")?;
    let timestamp_delta = r.varlong("timestampDelta")?;
    let offset_delta = r.varint("offsetDelta")?;
    let key = varbytes(r, "key")?;
    let value = varbytes(r, "value")?;
    let n = r.varint("headers count")?;
    if n < 0 || (n as usize).saturating_mul(2) > r.remaining() {
        return Err(Error::Count { field: "headers", count: n.max(0) as usize, remaining: r.remaining() });
    }
    let mut headers = Vec::with_capacity(n as usize);
    for _ in 0..n {
        let k = varbytes(r, "header key")?.ok_or(Error::Length { field: "header key", len: -1 })?;
        let key = std::str::from_utf8(&k).map_err(|_| Error::Utf8 { field: "header key" })?.to_string();
        let value = varbytes(r, "header value")?.unwrap_or_default();
        headers.push(Header { key, value });
    }
    if r.position() != end {
        return Err(Error::Invalid { field: "record length", reason: format!("{length} does not match its fields") });
    }
    let record = NewRecord {
        key,
        value,
        headers,
        timestamp: Some(base_timestamp.wrapping_add(timestamp_delta)),
        partition: None,
    };
    Ok((record, offset_delta))
}

fn varbytes(r: &mut Reader, field: &'static str) -> Result<Option<Bytes>> {
    match r.varint(field)? {
        -1 => Ok(None),
        n if n < 0 => Err(Error::Length { field, len: n.into() }),
        n => r.bytes_n(field, n as usize).map(Some),
    }
}

fn put_varlong(b: &mut BytesMut, v: i64) {
    let mut z = ((v << 1) ^ (v >> 63)) as u64;
    while z >= 0x80 {
        b.put_u8((z as u8) | 0x80);
        z >>= 7;
    }
    b.put_u8(z as u8);
}

fn put_varbytes(b: &mut BytesMut, v: Option<&[u8]>) {
    match v {
        None => put_varlong(b, -1),
        Some(v) => {
            put_varlong(b, v.len() as i64);
            b.put_slice(v);
        }
    }
}

/// Encodes stored records as one uncompressed RecordBatch v2 spanning `base_offset..=last_offset`
/// (offsets compaction removed are gaps in the deltas), appended to `out`.
pub fn encode_batch(
    out: &mut BytesMut,
    base_offset: u64,
    last_offset: u64,
    log_append_time: bool,
    records: &[RecordRef<'_>],
) {
    let start = out.len();
    let base_timestamp = records.first().map_or(0, |r| r.timestamp);
    let max_timestamp = records.iter().map(|r| r.timestamp).max().unwrap_or(base_timestamp);
    out.put_i64(base_offset as i64);
    out.put_i32(0); // batchLength, set below
    out.put_i32(-1); // partitionLeaderEpoch
    out.put_i8(2);
    out.put_u32(0); // crc, set below
    out.put_i16(if log_append_time { TIMESTAMP_LOG_APPEND } else { 0 });
    out.put_i32((last_offset - base_offset) as i32);
    out.put_i64(base_timestamp);
    out.put_i64(max_timestamp);
    out.put_i64(-1); // producerId
    out.put_i16(-1);
    out.put_i32(-1);
    out.put_i32(records.len() as i32);
    let mut body = BytesMut::new();
    for r in records {
        body.clear();
        body.put_i8(0);
        put_varlong(&mut body, r.timestamp - base_timestamp);
        put_varlong(&mut body, (r.offset - base_offset) as i64);
        put_varbytes(&mut body, r.key);
        put_varbytes(&mut body, r.value);
        let headers: Vec<(&str, &[u8])> = r.headers().collect();
        put_varlong(&mut body, headers.len() as i64);
        for (k, v) in headers {
            put_varbytes(&mut body, Some(k.as_bytes()));
            put_varbytes(&mut body, Some(v));
        }
        put_varlong(out, body.len() as i64);
        out.put_slice(&body);
    }
    let len = (out.len() - start - LOG_OVERHEAD) as i32;
    out[start + 8..start + 12].copy_from_slice(&len.to_be_bytes());
    let crc = crc32c::crc32c(&out[start + CRC_START..]);
    out[start + 17..start + 21].copy_from_slice(&crc.to_be_bytes());
}
