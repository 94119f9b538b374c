//! Validating records against a topic's limits and encoding them as one batch.

use crate::config::{TimestampType, TopicConfig, BATCH_BYTES_MAX, BATCH_RECORDS_MAX};
use crate::error::{Error, Result};
use crate::log::batch::{self, HeaderFields, ProducerFields, ATTRIBUTE_LOG_APPEND_TIME};
use crate::log::record::{self, NewRecord, RecordFields};

/// What the encoder needs of record `i` of a batch.
fn fields(i: usize, r: &NewRecord, timestamp_delta: i64) -> RecordFields<'_> {
    let (key, value, headers) = (r.key.as_deref(), r.value.as_deref(), &r.headers);
    RecordFields { offset_delta: i as u32, timestamp_delta, key, value, headers }
}

/// Validates `records` against the topic's limits and encodes them as one batch (base offset 0),
/// with `producer`'s fields (covered by the CRC, computed here, off the writer lock).
///
/// One pass: each record is checked, sized and encoded in turn, into a pooled buffer sized by a
/// guess (every record as big as the first) that grows when the guess falls short: a separate
/// sizing pass would walk every record twice. A batch over
/// [`BATCH_BYTES_MAX`] is only sized from there on, so that its error gives its whole size.
pub(super) fn encode(records: &[NewRecord], cfg: &TopicConfig, now: i64, producer: ProducerFields) -> Result<Vec<u8>> {
    if records.is_empty() {
        return Err(Error::InvalidRecord("an append needs at least one record".into()));
    }
    if records.len() > BATCH_RECORDS_MAX as usize {
        return Err(Error::LimitExceeded {
            limit: "BATCH_RECORDS_MAX",
            value: records.len() as u64,
            max: BATCH_RECORDS_MAX as u64,
        });
    }
    let log_append = cfg.timestamp_type == TimestampType::LogAppendTime;
    let timestamp = |r: &NewRecord| if log_append { now } else { r.timestamp.unwrap_or(now) };
    let first_ts = timestamp(&records[0]);
    let fields_of = |i: usize, r| fields(i, r, timestamp(r).wrapping_sub(first_ts));
    // Later records' offset and timestamp deltas may take a few more varint bytes than the first's.
    let guess_per_record = record::encoded_len(record::body_len(&fields_of(0, &records[0]))) + 4;
    let bytes_max = BATCH_BYTES_MAX as usize;
    let mut buf = crate::log::buffers::take((batch::HEADER_LEN + records.len() * guess_per_record).min(bytes_max));
    let mut p = batch::HEADER_LEN;
    let mut max_ts = i64::MIN;
    // On an error the buffer is dropped, not given back to the pool: a rare path.
    for (i, r) in records.iter().enumerate() {
        if cfg.cleanup_policy.compacts() && r.key.is_none() {
            return Err(Error::InvalidRecord(format!("record {i} has no key, and the topic is compacted")));
        }
        if let Some(ts) = r.timestamp.filter(|ts| *ts < 0) {
            return Err(Error::InvalidRecord(format!("record {i}: timestamp {ts} is negative")));
        }
        let f = fields_of(i, r);
        let body = record::body_len(&f);
        let len = record::encoded_len(body);
        if len > cfg.max_message_bytes as usize {
            let max = cfg.max_message_bytes as u64;
            return Err(Error::LimitExceeded { limit: "max_message_bytes", value: len as u64, max });
        }
        if p + len > bytes_max {
            // Too big: size the rest (and check it) without encoding.
            p += len;
            continue;
        }
        if p + len > buf.len() {
            let rest = (records.len() - i - 1) * guess_per_record;
            buf.resize((p + len + rest).min(bytes_max), 0);
        }
        max_ts = max_ts.max(timestamp(r));
        p += record::encode(&mut buf[p..], &f, body);
    }
    if p > bytes_max {
        return Err(Error::LimitExceeded { limit: "BATCH_BYTES_MAX", value: p as u64, max: bytes_max as u64 });
    }
    buf.truncate(p);
    // The topic's codec, if it names one (`producer`: kappalog's own batches are uncompressed).
    let codec = cfg.compression_type.codec().unwrap_or(0);
    let mut buf = crate::log::compression::compress_batch(buf, codec)?;
    let attributes = codec | if log_append { ATTRIBUTE_LOG_APPEND_TIME } else { 0 };
    let (count, last_delta) = (records.len() as u32, (records.len() - 1) as u32);
    let fields = HeaderFields {
        base_offset: 0,
        attributes,
        timestamps: (first_ts, max_ts),
        record_count: count,
        last_offset_delta: last_delta,
        producer,
    };
    batch::finish(&mut buf, &fields);
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use crate::{CleanupPolicy, Header, NewRecord, Store, StoreConfig, TopicConfig};

    /// The encoder sizes and encodes in one pass into a buffer sized by a guess from the first
    /// record: batches whose later records are much bigger (the buffer grows) or much smaller (it
    /// is cut) read back exactly, also from reused buffers.
    #[test]
    fn one_pass_encoder_outgrows_and_undershoots_its_guess() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
        let p = store.create_topic("t", 1, TopicConfig::default()).unwrap().partition(0).unwrap();
        let record = |len: usize, i: usize| {
            let mut r = NewRecord::keyed(format!("k{i}"), vec![(i % 251) as u8; len]);
            r.headers =
                (0..i % 3).map(|h| Header { key: format!("h{h}"), value: vec![h as u8; i % 50].into() }).collect();
            r
        };
        let grows: Vec<NewRecord> = (0..300).map(|i| record(if i == 0 { 1 } else { 3000 + i }, i)).collect();
        let shrinks: Vec<NewRecord> = (0..300).map(|i| record(if i == 0 { 200_000 } else { i % 7 }, i)).collect();
        let mut expected = Vec::new();
        for batch in [&grows, &shrinks, &grows, &shrinks] {
            p.append(batch).unwrap();
            expected.extend(batch.iter().cloned());
        }
        let mut offset = 0;
        while offset < expected.len() as u64 {
            let got = p.read(offset, 1 << 20, usize::MAX).unwrap();
            assert!(!got.is_empty(), "nothing at {offset}");
            for r in got {
                let want = &expected[r.offset as usize];
                assert_eq!(
                    (&r.key, &r.value, &r.headers),
                    (&want.key, &want.value, &want.headers),
                    "offset {}",
                    r.offset
                );
                offset = r.offset + 1;
            }
        }
    }

    /// A batch over `BATCH_BYTES_MAX` is refused with its whole size (the records after the point
    /// where it went over are sized too), a per-record limit broken after that point is still the
    /// error given (as when every record was checked before the batch's size), and nothing is
    /// written.
    #[test]
    fn one_pass_encoder_reports_whole_batch_size_and_record_limits_first() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
        let cfg = TopicConfig { cleanup_policy: CleanupPolicy::Compact, ..TopicConfig::default() };
        let p = store.create_topic("t", 1, cfg.clone()).unwrap().partition(0).unwrap();
        let value = bytes::Bytes::from(vec![7u8; 1_000_000]);
        let records: Vec<NewRecord> = (0..70).map(|i| NewRecord::keyed(format!("{i}"), value.clone())).collect();
        let whole = super::batch::HEADER_LEN
            + records
                .iter()
                .enumerate()
                .map(|(i, r)| {
                    let f = super::fields(i, r, 0);
                    super::record::encoded_len(super::record::body_len(&f))
                })
                .sum::<usize>();
        match p.append(&records) {
            Err(crate::Error::LimitExceeded { limit: "BATCH_BYTES_MAX", value, .. }) => {
                assert_eq!(value, whole as u64, "the whole batch's size")
            }
            other => panic!("expected BATCH_BYTES_MAX, got {other:?}"),
        }
        let mut too_big = records.clone();
        too_big[69] = NewRecord::keyed("big", vec![0u8; cfg.max_message_bytes as usize]);
        assert!(matches!(p.append(&too_big), Err(crate::Error::LimitExceeded { limit: "max_message_bytes", .. })));
        let mut keyless = records.clone();
        keyless[69] = NewRecord::new(value.clone());
        assert!(matches!(p.append(&keyless), Err(crate::Error::InvalidRecord(_))));
        assert_eq!(p.log_end_offset(), 0, "nothing written");
        p.append(&records[..3]).unwrap();
        assert_eq!(p.log_end_offset(), 3);
    }
}
