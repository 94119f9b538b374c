//! Kafka clients' batches (`Partition::append_batch`) with producer fields go through the same
//! producer state as library appends: a retried batch (compressed or not) gets its first offsets
//! and is not written again, also after a crash; out-of-order sequences and fenced epochs are the
//! errors a Kafka client expects (error codes 45 and 47).

mod common;

use bytes::{Bytes, BytesMut};
use kafka_protocol::records::{
    Compression, Record as KafkaRecord, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use kappalog::log::ProducerFields;
use kappalog::{Error, NewRecord, Store, StoreConfig, TopicConfig};

/// A producer's batch of `n` records with sequences from `sequence`, as a Kafka client sends it.
fn batch(producer_id: i64, epoch: i16, sequence: i32, n: i64, compression: Compression) -> Bytes {
    let records: Vec<KafkaRecord> = (0..n)
        .map(|i| KafkaRecord {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id,
            producer_epoch: epoch,
            timestamp_type: TimestampType::Creation,
            offset: i,
            sequence: sequence + i as i32,
            timestamp: 1_000 + i,
            key: None,
            value: Some(Bytes::from(format!("{producer_id}-{sequence}-{i}-{}", "v".repeat(200)))),
            headers: Default::default(),
        })
        .collect();
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(&mut buf, &records, &RecordEncodeOptions { version: 2, compression }).unwrap();
    buf.freeze()
}

fn kafka_code(e: &Error) -> i16 {
    match e {
        Error::Producer { error, .. } => error.kafka_code(),
        other => panic!("not a producer error: {other}"),
    }
}

#[test]
fn client_batches_are_deduplicated_by_their_producer_fields() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
    let p = store.create_topic("t", 1, TopicConfig::default().segment_bytes(4096)).unwrap().partition(0).unwrap();
    let (id, epoch) = store.init_producer_id().unwrap();
    let mut acked = Vec::new();
    let mut sequence = 0;
    for (i, codec) in [Compression::None, Compression::Zstd, Compression::Lz4].into_iter().cycle().take(12).enumerate()
    {
        let b = batch(id, epoch, sequence, 1 + i as i64 % 3, codec);
        let a = p.append_batch(b.clone()).unwrap();
        assert_eq!(p.append_batch(b).unwrap(), a, "batch {i}: a retry gets the same answer");
        acked.push(a);
        sequence += 1 + i as i32 % 3;
    }
    let end = p.log_end_offset();
    // A library append continues the same producer's sequences.
    let lib = p.append_with_producer(
        &[NewRecord::new("lib")],
        ProducerFields { producer_id: id, producer_epoch: epoch, base_sequence: sequence },
    );
    assert_eq!(lib.unwrap().base_offset, end);
    let gap = p.append_batch(batch(id, epoch, sequence + 5, 1, Compression::None)).unwrap_err();
    assert_eq!(kafka_code(&gap), 45, "{gap}");
    p.append_batch(batch(id, epoch + 1, 0, 2, Compression::Gzip)).unwrap();
    let fenced = p.append_batch(batch(id, epoch, sequence + 1, 1, Compression::None)).unwrap_err();
    assert_eq!(kafka_code(&fenced), 47, "{fenced}");
    let bad = p.append_batch(batch(id, -3, 0, 1, Compression::None)).unwrap_err();
    assert_eq!(kafka_code(&bad), 87, "{bad}");
    assert_eq!(p.log_end_offset(), end + 3);

    // After a crash (a copy of the open store's files), the last five batches are still known.
    let image = tempfile::tempdir().unwrap();
    common::copy_dir(dir.path(), image.path());
    common::forget_clean_shutdown(image.path());
    let crashed = Store::open(image.path(), StoreConfig::default()).unwrap();
    let q = crashed.topic("t").unwrap().partition(0).unwrap();
    let again = q.append_batch(batch(id, epoch + 1, 0, 2, Compression::Gzip)).unwrap();
    assert_eq!((again.base_offset, q.log_end_offset()), (end + 1, end + 3));
}
