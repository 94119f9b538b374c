//! The Kafka-client batch API: `Partition::append_batch` stores a client's RecordBatch v2 (encoded
//! here by an independent encoder, the `kafka-protocol` crate) as it came, with its offsets
//! assigned; `Partition::read_raw` gives the stored bytes of whole batches back, which the same
//! crate decodes (checking their CRC-32C). Every codec; log-append time; recompression to the
//! topic's codec; the checks that refuse a bad batch.

mod common;

use bytes::{Bytes, BytesMut};
use kafka_protocol::records::{
    Compression, Record as KafkaRecord, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use kappalog::{
    clock::ManualClock, CleanupPolicy, CompressionType, Durability, Error, Partition, Store, StoreConfig,
    TimestampType as TopicTimestampType, TopicConfig,
};

const CODECS: [Compression; 5] =
    [Compression::None, Compression::Gzip, Compression::Snappy, Compression::Lz4, Compression::Zstd];

fn kafka_record(i: i64, key: Option<&str>, value: &str) -> KafkaRecord {
    let mut headers: kafka_protocol::indexmap::IndexMap<_, _> = Default::default();
    headers.insert("trace".into(), Some(Bytes::from(format!("t{i}"))));
    KafkaRecord {
        transactional: false,
        control: false,
        delete_horizon: false,
        partition_leader_epoch: -1,
        producer_id: -1,
        producer_epoch: -1,
        timestamp_type: TimestampType::Creation,
        offset: i,
        // The encoder keeps records in one batch while `offset - sequence` is constant, and
        // writes the first record's sequence as the base sequence: -1, no producer.
        sequence: i as i32 - 1,
        timestamp: 1_000 + i,
        key: key.map(|k| Bytes::from(k.to_string())),
        value: Some(Bytes::from(value.to_string())),
        headers,
    }
}

/// A client's batch of `n` records (offsets 0..n), as a Kafka producer would send it.
fn client_batch(n: i64, compression: Compression, edit: impl Fn(&mut KafkaRecord)) -> Bytes {
    let records: Vec<KafkaRecord> = (0..n)
        .map(|i| {
            let mut r = kafka_record(i, Some(&format!("k{i}")), &format!(r#"{{"n":{i},"pad":"{}"}}"#, "x".repeat(50)));
            edit(&mut r);
            r
        })
        .collect();
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(&mut buf, &records, &RecordEncodeOptions { version: 2, compression }).unwrap();
    buf.freeze()
}

fn partition(store: &Store, name: &str, config: TopicConfig) -> Partition {
    store.create_topic(name, 1, config).unwrap().partition(0).unwrap()
}

fn decode(bytes: &Bytes) -> Vec<kafka_protocol::records::RecordSet> {
    RecordBatchDecoder::decode_all(&mut bytes.clone()).unwrap()
}

#[test]
fn client_batches_of_every_codec_are_stored_as_they_came() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
    for codec in CODECS {
        let p = partition(&store, &format!("t-{codec:?}").to_lowercase(), TopicConfig::default());
        let first = client_batch(5, codec, |_| {});
        let second = client_batch(3, codec, |_| {});
        let a = p.append_batch(first.clone()).unwrap();
        assert_eq!((a.base_offset, a.last_offset), (0, 4), "{codec:?}");
        let b = p.append_batch(second.clone()).unwrap();
        assert_eq!((b.base_offset, b.last_offset), (5, 7), "{codec:?}");
        assert_eq!(p.high_watermark(), 8, "sync durability: acknowledged once durable");

        // Decoded (and decompressed) like any records.
        let got = p.read(0, usize::MAX, usize::MAX).unwrap();
        assert_eq!(got.len(), 8, "{codec:?}");
        for (i, r) in got.iter().enumerate() {
            let j = if i < 5 { i } else { i - 5 };
            assert_eq!(r.offset, i as u64);
            assert_eq!(r.timestamp, 1_000 + j as i64, "{codec:?}");
            assert_eq!(r.key.as_deref(), Some(format!("k{j}").as_bytes()));
            assert_eq!(r.headers[0].value, Bytes::from(format!("t{j}")));
        }

        // A raw read inside the second batch gives that whole batch: the client's bytes with the
        // assigned base offset and leader epoch 0, everything else (the CRC too) unchanged.
        let raw = p.read_raw(6, usize::MAX).unwrap();
        assert_eq!((raw.base_offset, raw.next_offset, raw.high_watermark), (5, 8, 8), "{codec:?}");
        let mut expected = second.to_vec();
        expected[..8].copy_from_slice(&5i64.to_be_bytes());
        expected[12..16].copy_from_slice(&0i32.to_be_bytes());
        assert_eq!(&raw.bytes[..], &expected[..], "{codec:?}");
        let sets = decode(&raw.bytes);
        assert_eq!(sets.len(), 1);
        assert_eq!(sets[0].compression, codec);
        let offsets: Vec<i64> = sets[0].records.iter().map(|r| r.offset).collect();
        assert_eq!(offsets, [5, 6, 7]);
    }
}

#[test]
fn read_raw_gives_whole_batches_at_least_one() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
    let p = partition(&store, "t", TopicConfig::default().durability(Durability::None));
    let sizes: Vec<usize> = (0..4).map(|_| client_batch(4, Compression::None, |_| {}).len()).collect();
    for _ in 0..4 {
        p.append_batch(client_batch(4, Compression::None, |_| {})).unwrap();
    }
    // KIP-74: one whole batch even when it is larger than max_bytes.
    let one = p.read_raw(0, 1).unwrap();
    assert_eq!((one.bytes.len(), one.base_offset, one.next_offset), (sizes[0], 0, 4));
    let two = p.read_raw(3, sizes[0] + sizes[1]).unwrap();
    assert_eq!((two.bytes.len(), two.base_offset, two.next_offset), (sizes[0] + sizes[1], 0, 8));
    let all = p.read_raw(9, usize::MAX).unwrap();
    assert_eq!((all.base_offset, all.next_offset), (8, 16));
    assert_eq!(decode(&all.bytes).len(), 2);
    let end = p.read_raw(16, usize::MAX).unwrap();
    assert!(end.bytes.is_empty() && end.next_offset == 16);
    assert!(matches!(p.read_raw(17, 100), Err(Error::OffsetOutOfRange { .. })));
    // Batches kappalog encodes itself read the same way.
    p.append(&[kappalog::NewRecord::new("own")]).unwrap();
    let own = p.read_raw(16, usize::MAX).unwrap();
    let sets = decode(&own.bytes);
    assert_eq!(sets[0].records[0].offset, 16);
    assert_eq!(sets[0].records[0].value.as_deref(), Some(&b"own"[..]));
}

#[test]
fn log_append_time_and_the_topic_codec_are_applied() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), StoreConfig::default().clock(ManualClock::new(777_000))).unwrap();
    let lat = partition(&store, "lat", TopicConfig::default().timestamp_type(TopicTimestampType::LogAppendTime));
    lat.append_batch(client_batch(3, Compression::Lz4, |_| {})).unwrap();
    assert!(lat.read(0, usize::MAX, usize::MAX).unwrap().iter().all(|r| r.timestamp == 777_000));
    let raw = lat.read_raw(0, usize::MAX).unwrap().bytes;
    // Kafka's readers take every record's timestamp from maxTimestamp under log-append time (this
    // decoder reports only the type).
    let max = common::batch::MAX_TIMESTAMP;
    assert_eq!(i64::from_be_bytes(raw[max..max + 8].try_into().unwrap()), 777_000);
    let sets = decode(&raw);
    assert!(sets[0].records.iter().all(|r| r.timestamp_type == TimestampType::LogAppend));

    for (topic_codec, want) in [
        (CompressionType::Zstd, Compression::Zstd),
        (CompressionType::Uncompressed, Compression::None),
        (CompressionType::Snappy, Compression::Snappy),
    ] {
        let name = format!("re-{}", topic_codec.as_str());
        let p = partition(&store, &name, TopicConfig::default().compression_type(topic_codec));
        p.append_batch(client_batch(4, Compression::Gzip, |_| {})).unwrap();
        let sets = decode(&p.read_raw(0, usize::MAX).unwrap().bytes);
        assert_eq!(sets[0].compression, want, "{name}");
        assert_eq!(sets[0].records.len(), 4);
        assert_eq!(p.read(0, usize::MAX, usize::MAX).unwrap()[3].timestamp, 1_003);
    }
}

#[test]
fn producer_fields_are_kept() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
    let p = partition(&store, "t", TopicConfig::default());
    p.append_batch(client_batch(3, Compression::None, |r| {
        r.producer_id = 42;
        r.producer_epoch = 3;
        r.sequence = 10 + r.offset as i32;
    }))
    .unwrap();
    let sets = decode(&p.read_raw(0, usize::MAX).unwrap().bytes);
    let r = &sets[0].records[0];
    assert_eq!((r.producer_id, r.producer_epoch, r.sequence), (42, 3, 10));
    let batches = p.read_batches(0, usize::MAX, usize::MAX).unwrap();
    let f = batches[0].producer();
    assert_eq!((f.producer_id, f.producer_epoch, f.base_sequence), (42, 3, 10));
}

/// `edit` applied to a copy of a good batch; the CRC fixed afterwards when `fix_crc`.
fn edited(edit: impl Fn(&mut Vec<u8>), fix_crc: bool) -> Bytes {
    let mut b = client_batch(3, Compression::None, |_| {}).to_vec();
    edit(&mut b);
    if fix_crc {
        common::batch::fix_crc(&mut b);
    }
    Bytes::from(b)
}

#[test]
fn bad_batches_are_refused_with_what_was_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
    let p = partition(&store, "t", TopicConfig::default().max_message_bytes(2000));
    let compacted = partition(&store, "c", TopicConfig::default().cleanup_policy(CleanupPolicy::Compact));
    let cases: Vec<(&str, Bytes, &str)> = vec![
        ("short", Bytes::from_static(b"abc"), "shorter than a batch header"),
        ("magic 1", edited(|b| b[16] = 1, false), "magic 1"),
        ("crc", edited(|b| b[70] ^= 1, false), "CRC-32C mismatch"),
        ("length", edited(|b| b.push(0), false), "batchLength"),
        ("transactional", edited(|b| b[22] |= 0x10, true), "transactional"),
        ("control", edited(|b| b[22] |= 0x20, true), "control"),
        ("log append time", edited(|b| b[22] |= 0x08, true), "log-append-time"),
        ("codec 7", edited(|b| b[22] |= 0x07, true), "attributes"),
        ("records count", edited(|b| b[60] = 2, true), "lastOffsetDelta"),
        ("max timestamp", edited(|b| b[42] ^= 1, true), "maxTimestamp"),
        (
            "offset deltas",
            client_batch(3, Compression::None, |r| (r.offset, r.sequence) = (r.offset * 2, r.offset as i32 * 2 - 1)),
            "lastOffsetDelta",
        ),
    ];
    for (what, batch, expect) in cases {
        let e = p.append_batch(batch).unwrap_err();
        assert!(e.to_string().contains(expect), "{what}: {e}");
    }
    let big = client_batch(40, Compression::None, |_| {});
    assert!(matches!(p.append_batch(big), Err(Error::LimitExceeded { limit: "max_message_bytes", .. })));
    let keyless = client_batch(2, Compression::None, |r| r.key = None);
    let e = compacted.append_batch(keyless).unwrap_err();
    assert!(e.to_string().contains("no key"), "{e}");
    assert_eq!((p.log_end_offset(), compacted.log_end_offset()), (0, 0), "nothing written");
}

/// A batch whose records expand past the decompression bound is refused, not allocated.
#[test]
fn a_compression_bomb_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
    let p = partition(&store, "t", TopicConfig::default());
    let mut b = client_batch(1, Compression::None, |_| {}).to_vec();
    b.truncate(common::batch::HEADER_LEN);
    let zeros = vec![0u8; kappalog::limits::DECOMPRESSED_BYTES_MAX + 1024];
    b.extend_from_slice(&zstd::bulk::compress(&zeros, 3).unwrap());
    b[22] |= 4; // zstd
    let len = b.len() as u32;
    common::batch::set_len(&mut b, len);
    common::batch::fix_crc(&mut b);
    let e = p.append_batch(Bytes::from(b)).unwrap_err();
    assert!(e.to_string().contains("expand past"), "{e}");
}

#[test]
fn the_async_variant_goes_through_the_group_commit() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
    let p = partition(&store, "t", TopicConfig::default());
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let a = rt.block_on(p.append_batch_async(client_batch(2, Compression::Snappy, |_| {}))).unwrap();
    assert_eq!((a.base_offset, a.last_offset), (0, 1));
    assert_eq!(p.high_watermark(), 2);
    let e = rt.block_on(p.append_batch_async(Bytes::from_static(&[0; 70]))).unwrap_err();
    assert!(e.to_string().contains("magic 0"), "{e}");
}
