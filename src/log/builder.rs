//! An incremental batch encoder: each record is checked and encoded as it arrives, so that an
//! append of N records parsed from a request never holds N [`NewRecord`](super::NewRecord)s at
//! once, only the encoded batch (about the size of the records' bytes). The HTTP produce path
//! builds its batches with it; the checks are those of [`Partition::prepare`](super::Partition).

use super::batch::{self, HeaderFields, ATTRIBUTE_LOG_APPEND_TIME, HEADER_LEN};
use super::partition::{Partition, PreparedBatch};
use super::record::{self, Header, RecordFields};
use crate::config::{TimestampType, TopicConfig, BATCH_BYTES_MAX, BATCH_RECORDS_MAX};
use crate::error::{Error, Result};

/// One partition's batch being built; [`finish`](Self::finish) gives it to the writer.
#[derive(Debug)]
pub(crate) struct BatchBuilder {
    buf: Vec<u8>,
    cfg: TopicConfig,
    now: i64,
    count: u32,
    first_timestamp: i64,
    max_timestamp: i64,
    /// Set when an idempotent producer sends the batch.
    producer: Option<crate::log::ProducerBatch>,
}

impl BatchBuilder {
    /// A batch for `partition`, under its config and clock as they are now.
    pub(crate) fn new(partition: &Partition) -> BatchBuilder {
        BatchBuilder {
            buf: vec![0; HEADER_LEN],
            cfg: partition.config(),
            now: partition.clock().now_ms(),
            count: 0,
            first_timestamp: 0,
            max_timestamp: i64::MIN,
            producer: None,
        }
    }

    /// Makes it a batch of an idempotent producer (checked when it is written).
    pub(crate) fn set_producer(&mut self, producer: crate::log::ProducerBatch) {
        self.producer = Some(producer);
    }

    /// Checks and encodes one record; `index` names it in errors (its place in the request).
    pub(crate) fn push(
        &mut self,
        index: usize,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[Header],
        timestamp: Option<i64>,
    ) -> Result<()> {
        if self.count >= BATCH_RECORDS_MAX {
            let value = self.count as u64 + 1;
            return Err(Error::LimitExceeded { limit: "BATCH_RECORDS_MAX", value, max: BATCH_RECORDS_MAX as u64 });
        }
        if self.cfg.cleanup_policy.compacts() && key.is_none() {
            return Err(Error::InvalidRecord(format!("record {index} has no key, and the topic is compacted")));
        }
        if let Some(ts) = timestamp.filter(|ts| *ts < 0) {
            return Err(Error::InvalidRecord(format!("record {index}: timestamp {ts} is negative")));
        }
        let timestamp = match self.cfg.timestamp_type {
            TimestampType::LogAppendTime => self.now,
            TimestampType::CreateTime => timestamp.unwrap_or(self.now),
        };
        if self.count == 0 {
            self.first_timestamp = timestamp;
        }
        let timestamp_delta = timestamp.checked_sub(self.first_timestamp).ok_or_else(|| {
            Error::InvalidRecord(format!(
                "record {index}: timestamp {timestamp} is too far from the batch's first, {}",
                self.first_timestamp
            ))
        })?;
        let f = RecordFields { offset_delta: self.count, timestamp_delta, key, value, headers };
        let body = record::body_len(&f);
        let len = record::encoded_len(body);
        if len > self.cfg.max_message_bytes as usize {
            let max = self.cfg.max_message_bytes as u64;
            return Err(Error::LimitExceeded { limit: "max_message_bytes", value: len as u64, max });
        }
        let at = self.buf.len();
        if at + len > BATCH_BYTES_MAX as usize {
            let max = BATCH_BYTES_MAX as u64;
            return Err(Error::LimitExceeded { limit: "BATCH_BYTES_MAX", value: (at + len) as u64, max });
        }
        self.buf.resize(at + len, 0);
        record::encode(&mut self.buf[at..], &f, body);
        self.max_timestamp = self.max_timestamp.max(timestamp);
        self.count += 1;
        Ok(())
    }

    /// The finished batch, ready for [`Partition::write_prepared`].
    pub(crate) fn finish(mut self) -> Result<PreparedBatch> {
        if self.count == 0 {
            return Err(Error::InvalidRecord("an append needs at least one record".into()));
        }
        let log_append = self.cfg.timestamp_type == TimestampType::LogAppendTime;
        let codec = self.cfg.compression_type.codec().unwrap_or(0);
        self.buf = crate::log::compression::compress_batch(self.buf, codec)?;
        let attributes = codec | if log_append { ATTRIBUTE_LOG_APPEND_TIME } else { 0 };
        let timestamps = (self.first_timestamp, self.max_timestamp);
        let fields = HeaderFields {
            base_offset: 0,
            attributes,
            timestamps,
            record_count: self.count,
            last_offset_delta: self.count - 1,
            producer: crate::log::partition::producer_fields(self.producer.as_ref()),
        };
        batch::finish(&mut self.buf, &fields);
        Ok(PreparedBatch::encoded(self.buf, self.cfg, self.now, self.producer))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{CleanupPolicy, NewRecord, Store, StoreConfig};

    #[test]
    fn built_batches_read_back_like_appended_ones() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
        let p = store.create_topic("t", 1, TopicConfig::default()).unwrap().partition(0).unwrap();
        let mut b = BatchBuilder::new(&p);
        let h = [Header { key: "h".into(), value: bytes::Bytes::from_static(b"v") }];
        b.push(0, Some(b"k"), Some(b"one"), &h, Some(5)).unwrap();
        b.push(1, None, None, &[], Some(3)).unwrap();
        b.push(2, None, Some(b"three"), &[], None).unwrap();
        p.write_prepared(b.finish().unwrap()).unwrap();
        p.append(&[NewRecord::new("four")]).unwrap();
        let got = p.read(0, 1 << 20, 10).unwrap();
        assert_eq!(got.len(), 4);
        assert_eq!((got[0].key.as_deref(), got[0].value.as_deref()), (Some(&b"k"[..]), Some(&b"one"[..])));
        assert_eq!(got[0].headers, h);
        assert_eq!((got[0].timestamp, got[1].timestamp, got[1].value.as_deref()), (5, 3, None));
        assert_eq!((got[2].offset, got[3].offset), (2, 3));
    }

    #[test]
    fn limits_and_keys_are_checked_per_record() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
        let cfg = TopicConfig { cleanup_policy: CleanupPolicy::Compact, max_message_bytes: 100, ..Default::default() };
        let p = store.create_topic("c", 1, cfg).unwrap().partition(0).unwrap();
        let mut b = BatchBuilder::new(&p);
        let e = b.push(7, None, Some(b"v"), &[], None).unwrap_err();
        assert!(e.to_string().contains("record 7"), "{e}");
        let e = b.push(0, Some(b"k"), Some(&[0; 200]), &[], None).unwrap_err();
        assert!(matches!(e, Error::LimitExceeded { limit: "max_message_bytes", .. }), "{e}");
        b.push(0, Some(b"k"), Some(b"v"), &[], Some(i64::MAX)).unwrap();
        let e = b.push(1, Some(b"k"), Some(b"v"), &[], Some(i64::MIN)).unwrap_err();
        assert!(e.to_string().contains("negative"), "{e}");
        b.push(1, Some(b"k"), Some(b"v"), &[], Some(0)).unwrap();
        assert_eq!(b.count, 2);
    }
}
