//! The segment files are Kafka RecordBatch v2, byte for byte: an independent decoder (the
//! `kafka-protocol` crate's `RecordBatchDecoder`, which checks each batch's CRC-32C) decodes every
//! `.log` file kappalog wrote, of every codec, also after compaction, into the records appended.

use bytes::Bytes;
use kafka_protocol::records::{Compression, RecordBatchDecoder};
use kappalog::{
    clock::ManualClock, CleanupPolicy, CompressionType, Durability, NewRecord, Store, StoreConfig, TopicConfig,
};

const CODECS: [(CompressionType, Compression); 5] = [
    (CompressionType::Uncompressed, Compression::None),
    (CompressionType::Gzip, Compression::Gzip),
    (CompressionType::Snappy, Compression::Snappy),
    (CompressionType::Lz4, Compression::Lz4),
    (CompressionType::Zstd, Compression::Zstd),
];

/// Every record of every `.log` file of partition 0 of `topic`: (offset, key, value, headers).
#[allow(clippy::type_complexity)]
fn decode_files(
    dir: &std::path::Path,
    topic: &str,
    codec: Compression,
) -> Vec<(i64, Option<Bytes>, Option<Bytes>, Vec<(String, Option<Bytes>)>)> {
    let pdir = dir.join("topics").join(topic).join("0");
    let mut logs: Vec<_> = std::fs::read_dir(&pdir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .collect();
    logs.sort();
    let mut out = Vec::new();
    for log in logs {
        let mut data = Bytes::from(std::fs::read(&log).unwrap());
        for set in RecordBatchDecoder::decode_all(&mut data).unwrap_or_else(|e| panic!("{}: {e}", log.display())) {
            assert_eq!(set.version, 2);
            assert_eq!(set.compression, codec, "{}", log.display());
            for r in set.records {
                assert!(!r.transactional && !r.control);
                assert_eq!(r.partition_leader_epoch, 0);
                let headers = r.headers.iter().map(|(k, v)| (k.to_string(), v.clone())).collect();
                out.push((r.offset, r.key, r.value, headers));
            }
        }
    }
    out
}

#[test]
fn segment_files_decode_with_an_independent_decoder() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
        for (codec, _) in CODECS {
            let config =
                TopicConfig::default().compression_type(codec).segment_bytes(4096).durability(Durability::None);
            let p = store.create_topic(codec.as_str(), 1, config).unwrap().partition(0).unwrap();
            for b in 0..40 {
                let recs: Vec<NewRecord> = (0..5)
                    .map(|i| {
                        let n = b * 5 + i;
                        let r = if n % 9 == 0 {
                            NewRecord::tombstone(format!("k{n}"))
                        } else {
                            NewRecord::keyed(format!("k{n}"), format!(r#"{{"n":{n},"s":"{}"}}"#, "y".repeat(n % 40)))
                        };
                        r.with_header("h", format!("{n}")).with_timestamp(1_000 + n as i64)
                    })
                    .collect();
                p.append(&recs).unwrap();
            }
            assert!(p.stats().segments > 1, "several segments");
        }
    }
    let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
    for (codec, kafka_codec) in CODECS {
        let p = store.topic(codec.as_str()).unwrap().partition(0).unwrap();
        let ours = p.read(0, usize::MAX, usize::MAX).unwrap();
        let theirs = decode_files(dir.path(), codec.as_str(), kafka_codec);
        assert_eq!(theirs.len(), ours.len(), "{}", codec.as_str());
        for (t, o) in theirs.iter().zip(&ours) {
            assert_eq!(t.0 as u64, o.offset);
            assert_eq!((&t.1, &t.2), (&o.key, &o.value), "offset {}", o.offset);
            assert_eq!(t.3, vec![("h".to_string(), o.headers[0].value.clone())]);
        }
    }
}

#[test]
fn compacted_segment_files_decode_too() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(1_000_000);
    let store = Store::open(dir.path(), StoreConfig::default().clock(clock).cleaner_interval_ms(0)).unwrap();
    for (codec, kafka_codec) in CODECS {
        let config = TopicConfig::default()
            .compression_type(codec)
            .segment_bytes(4096)
            .durability(Durability::None)
            .cleanup_policy(CleanupPolicy::Compact);
        let p = store.create_topic(codec.as_str(), 1, config).unwrap().partition(0).unwrap();
        for b in 0..40 {
            let recs: Vec<NewRecord> =
                (0..5).map(|i| NewRecord::keyed(format!("k{}", (b * 5 + i) % 11), format!("v{b}.{i}"))).collect();
            p.append(&recs).unwrap();
        }
        p.roll().unwrap();
        store.compact(codec.as_str()).unwrap();
        let ours = p.read(0, usize::MAX, usize::MAX).unwrap();
        assert!(ours.len() < 200, "compacted");
        let theirs = decode_files(dir.path(), codec.as_str(), kafka_codec);
        let offsets: Vec<u64> = theirs.iter().map(|t| t.0 as u64).collect();
        assert_eq!(offsets, ours.iter().map(|r| r.offset).collect::<Vec<_>>(), "{}", codec.as_str());
    }
}
