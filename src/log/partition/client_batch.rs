//! Appending a Kafka client's RecordBatch v2 as it came: validated, given its offsets (and, when the
//! topic says so, the log-append time or the topic's codec), then written through the same group
//! commit and durability as [`Partition::append`].

use bytes::Bytes;

use super::write::PreparedBatch;
use super::{Appended, Partition};
use crate::config::{TimestampType, TopicConfig};
use crate::error::{Error, Result};
use crate::log::batch::{
    self, BatchHeader, HeaderFields, ProducerFields, ATTRIBUTE_CODEC_MASK, ATTRIBUTE_LOG_APPEND_TIME,
};
use crate::log::{compression, record};

fn invalid(why: impl std::fmt::Display) -> Error {
    Error::InvalidRecord(format!("record batch: {why}"))
}

/// Validates a client's batch against the format and the topic's limits, and gives the bytes to
/// store (base offset still to be assigned). See [`Partition::append_batch`].
pub(super) fn prepare(client: Bytes, cfg: &TopicConfig, now: i64) -> Result<Vec<u8>> {
    if client.len() < batch::HEADER_LEN {
        return Err(invalid(format!("{} bytes is shorter than a batch header ({})", client.len(), batch::HEADER_LEN)));
    }
    let magic = client[batch::MAGIC_OFFSET];
    if magic != batch::MAGIC {
        return Err(invalid(format!("magic {} (only RecordBatch v2, magic 2, is accepted)", magic as i8)));
    }
    let h = BatchHeader::parse(&client).map_err(invalid)?.expect("at least a header");
    if h.len() != client.len() {
        return Err(invalid(format!("batchLength says {} bytes, the batch has {}", h.length, client.len())));
    }
    if h.record_count == 0 {
        // Kafka refuses them too: only its cleaner writes batches without records.
        return Err(invalid("recordsCount 0: a produced batch holds at least one record"));
    }
    if client.len() > cfg.max_message_bytes as usize {
        let max = cfg.max_message_bytes as u64;
        return Err(Error::LimitExceeded { limit: "max_message_bytes", value: client.len() as u64, max });
    }
    let found = batch::crc_of(&client);
    if found != h.crc {
        return Err(invalid(format!(
            "CRC-32C mismatch: the header says {:#010x}, the bytes give {found:#010x}",
            h.crc
        )));
    }
    if h.log_append_time() {
        return Err(invalid("the log-append-time attribute is the broker's to set, not a producer's"));
    }
    let records = compression::records_of(&h, &client).map_err(invalid)?;
    let max_timestamp = check_records(&h, &records, cfg)?;
    if max_timestamp != h.max_timestamp {
        return Err(invalid(format!(
            "maxTimestamp {} is not the records' greatest timestamp, {max_timestamp}",
            h.max_timestamp
        )));
    }
    let log_append = cfg.timestamp_type == TimestampType::LogAppendTime;
    let codec = cfg.compression_type.codec().unwrap_or(h.codec());
    let mut out = if codec != h.codec() {
        let mut out = Vec::with_capacity(batch::HEADER_LEN + records.len());
        out.resize(batch::HEADER_LEN, 0);
        compression::compress_into(codec, &records, &mut out)?;
        out
    } else {
        drop(records);
        client.try_into_mut().map_or_else(|shared| shared.to_vec(), Vec::from)
    };
    if codec != h.codec() || log_append {
        let mut attributes = (h.attributes & !ATTRIBUTE_CODEC_MASK) | codec;
        let mut max_timestamp = h.max_timestamp;
        if log_append {
            attributes |= ATTRIBUTE_LOG_APPEND_TIME;
            max_timestamp = now;
        }
        let fields = HeaderFields {
            base_offset: 0,
            attributes,
            timestamps: (h.first_timestamp, max_timestamp),
            record_count: h.record_count,
            last_offset_delta: h.last_offset_delta,
            producer: h.producer,
        };
        batch::finish(&mut out, &fields);
    } else {
        // Neither field is covered by the CRC: the producer's CRC stays right.
        out[batch::PARTITION_LEADER_EPOCH_OFFSET..batch::MAGIC_OFFSET]
            .copy_from_slice(&batch::PARTITION_LEADER_EPOCH.to_be_bytes());
    }
    Ok(out)
}

/// Checks every record of a client's batch: the count, offset deltas `0..n`, keys on a compacted
/// topic, sizes, timestamps and no bytes after the last record. Returns the greatest timestamp.
fn check_records(h: &BatchHeader, records: &[u8], cfg: &TopicConfig) -> Result<i64> {
    if h.last_offset_delta != h.record_count - 1 {
        return Err(invalid(format!(
            "lastOffsetDelta {} with {} records (a producer's batch has offsets 0..n-1)",
            h.last_offset_delta, h.record_count
        )));
    }
    let (mut pos, mut max_timestamp) = (0usize, i64::MIN);
    for i in 0..h.record_count {
        let start = pos;
        let r =
            record::decode(records, &mut pos, 0, h.first_timestamp).map_err(|e| invalid(format!("record {i}: {e}")))?;
        if r.offset != i as u64 {
            return Err(invalid(format!("record {i} has offset delta {} (expected {i})", r.offset)));
        }
        if pos - start > cfg.max_message_bytes as usize {
            let max = cfg.max_message_bytes as u64;
            return Err(Error::LimitExceeded { limit: "max_message_bytes", value: (pos - start) as u64, max });
        }
        if cfg.cleanup_policy.compacts() && r.key.is_none() {
            return Err(Error::InvalidRecord(format!("record {i} has no key, and the topic is compacted")));
        }
        if r.timestamp < 0 {
            return Err(invalid(format!("record {i}: timestamp {} is negative", r.timestamp)));
        }
        max_timestamp = max_timestamp.max(r.timestamp);
    }
    if pos != records.len() {
        return Err(invalid(format!("{} bytes after the last of its {} records", records.len() - pos, h.record_count)));
    }
    Ok(max_timestamp)
}

impl Partition {
    /// Checks a client's batch as [`append_batch`](Self::append_batch) does, writing nothing: the
    /// batch to queue (its producer fields are checked against the producer state when written).
    pub(crate) fn prepare_client_batch(&self, batch: Bytes) -> Result<PreparedBatch> {
        let cfg = self.inner.config.read().clone();
        let now = self.inner.clock.now_ms();
        let buf = prepare(batch, &cfg, now)?;
        // Checked against the partition's producer state when written (see `producer_state`).
        let producer = BatchHeader::parse(&buf).ok().flatten().map_or(ProducerFields::NONE, |h| h.producer);
        if producer.is_some() {
            producer.validate().map_err(|e| self.producer_error(e))?;
        }
        Ok(PreparedBatch::encoded(buf, cfg, now, producer))
    }

    /// Appends a Kafka client's RecordBatch v2 (magic 2) as one batch, and returns once it is
    /// durable under the topic's durability (the same group commit as [`append`](Self::append)).
    ///
    /// Checked, each failure an error that names it and writes nothing: magic 2, `batchLength`
    /// equal to the bytes given, the CRC-32C, no transactional or control batch, no log-append-time
    /// attribute, `recordsCount` records with offset deltas `0..n-1` and `lastOffsetDelta = n-1`,
    /// nothing after them, `maxTimestamp` the records' greatest, no negative timestamp, keys on a
    /// compacted topic, the batch and each record within `max_message_bytes`, and the records
    /// decompressing within [`DECOMPRESSED_BYTES_MAX`](crate::log::DECOMPRESSED_BYTES_MAX).
    ///
    /// Stored: the batch's bytes as they came, with the base offset the log assigns (not covered by
    /// the CRC) and partition leader epoch 0. Under `LogAppendTime` the log-append-time attribute
    /// and `maxTimestamp` (the append time) are set and the CRC computed again. Under a
    /// `compression_type` other than `producer`, records in another codec are compressed again with
    /// the topic's. Producer fields are kept as given, and a batch with a producer id is checked
    /// as [`append_with_producer`](Self::append_with_producer) checks it (a retry of one of the
    /// producer's last five batches gets its first offsets and is not written again; an
    /// out-of-order sequence or an older epoch is [`Error::Producer`]). Blocking: call it from a
    /// blocking thread.
    pub fn append_batch(&self, batch: Bytes) -> Result<Appended> {
        let prepared = self.prepare_client_batch(batch)?;
        self.append_prepared(prepared)
    }

    /// [`append_batch`](Self::append_batch) for async callers, as
    /// [`append_async`](Self::append_async): checked on the calling task, then the group commit.
    pub async fn append_batch_async(&self, batch: Bytes) -> Result<Appended> {
        let prepared = self.prepare_client_batch(batch)?;
        self.append_prepared_async(prepared).await
    }
}
