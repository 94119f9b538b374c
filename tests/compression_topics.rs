//! Per-topic `compression_type`: batches kappalog writes are stored compressed with the topic's
//! codec (the segment files say so), read back decompressed by every reader (records, lent
//! batches, time lookups, a view), and compaction works on compressed batches, keeping each
//! batch's codec and producer fields.

use std::time::{Duration, Instant};

use kappalog::log::{inspect_segment, ProducerFields};
use kappalog::{
    clock::ManualClock, CleanupPolicy, CompressionType, Durability, NewRecord, Store, StoreConfig, TopicConfig, Views,
    ViewsConfig,
};

const CODECS: [(CompressionType, &str); 6] = [
    (CompressionType::Producer, "none"),
    (CompressionType::Uncompressed, "none"),
    (CompressionType::Gzip, "gzip"),
    (CompressionType::Snappy, "snappy"),
    (CompressionType::Lz4, "lz4"),
    (CompressionType::Zstd, "zstd"),
];

fn records(batch: usize) -> Vec<NewRecord> {
    (0..20)
        .map(|i| {
            let n = batch * 20 + i;
            NewRecord::keyed(format!("k{}", n % 7), format!(r#"{{"user":"u{}","n":{n}}}"#, n % 7))
                .with_header("h", format!("{n}"))
                .with_timestamp(10_000 + n as i64)
        })
        .collect()
}

#[test]
fn every_codec_is_stored_compressed_and_read_back() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
    for (codec, name) in CODECS {
        let topic = format!("t-{}", codec.as_str());
        let config = TopicConfig::default().compression_type(codec).durability(Durability::None);
        let p = store.create_topic(&topic, 1, config).unwrap().partition(0).unwrap();
        let mut want = Vec::new();
        for b in 0..5 {
            let recs = records(b);
            p.append(&recs).unwrap();
            want.extend(recs);
        }
        let got = p.read(0, usize::MAX, usize::MAX).unwrap();
        assert_eq!(got.len(), want.len(), "{topic}");
        for (g, w) in got.iter().zip(&want) {
            assert_eq!((&g.key, &g.value, &g.headers, Some(g.timestamp)), (&w.key, &w.value, &w.headers, w.timestamp));
        }
        let mut lent = 0;
        for b in p.read_batches(3, usize::MAX, usize::MAX).unwrap() {
            b.for_each(|r| {
                assert!(r.value.is_some());
                lent += 1;
            })
            .unwrap();
        }
        assert_eq!(lent, want.len() - 3, "{topic}");
        assert_eq!(p.offset_for_timestamp(10_050).unwrap(), Some(50), "{topic}");
        let log = &p.segment_infos().unwrap()[0].path;
        let report = inspect_segment(log, None).unwrap();
        assert!(report.corruption.is_none(), "{topic}");
        assert!(report.batches.iter().all(|b| b.compression == name), "{topic}: {:?}", report.batches);
    }
}

#[test]
fn compaction_works_on_compressed_batches_and_keeps_codec_and_producer_fields() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(1_000_000);
    let store = Store::open(dir.path(), StoreConfig::default().clock(clock.clone()).cleaner_interval_ms(0)).unwrap();
    for (codec, name) in CODECS {
        let topic = format!("c-{}", codec.as_str());
        let config = TopicConfig::default()
            .compression_type(codec)
            .durability(Durability::None)
            .cleanup_policy(CleanupPolicy::Compact)
            .segment_bytes(4096);
        let p = store.create_topic(&topic, 1, config).unwrap().partition(0).unwrap();
        let producer = ProducerFields { producer_id: 9, producer_epoch: 2, base_sequence: 0 };
        for b in 0..30 {
            let seq = ProducerFields { base_sequence: b * 20, ..producer };
            p.append_with_producer(&records(b as usize), seq).unwrap();
        }
        p.roll().unwrap();
        let before = p.read(0, usize::MAX, usize::MAX).unwrap();
        store.compact(&topic).unwrap();
        let after = p.read(0, usize::MAX, usize::MAX).unwrap();
        assert!(after.len() < before.len(), "{topic}: compaction removed records");
        // The latest record of every key survives, with its bytes.
        for k in 0..7 {
            let key = format!("k{k}");
            let last = before.iter().rev().find(|r| r.key.as_deref() == Some(key.as_bytes())).unwrap();
            assert!(after.contains(last), "{topic}: {key}");
        }
        for b in p.read_batches(0, usize::MAX, usize::MAX).unwrap() {
            let f = b.producer();
            assert_eq!((f.producer_id, f.producer_epoch), (9, 2), "{topic}");
            assert_eq!(f.base_sequence as u64, b.base_offset(), "{topic}: the base sequence stays");
        }
        for s in p.segment_infos().unwrap() {
            let report = inspect_segment(&s.path, None).unwrap();
            assert!(report.corruption.is_none(), "{topic}");
            assert!(report.batches.iter().all(|b| b.compression == name && b.producer_id == 9), "{topic}");
        }
    }
}

#[test]
fn a_view_reads_a_compressed_topic() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
    let config = TopicConfig::default().compression_type(CompressionType::Zstd);
    let p = store.create_topic("events", 1, config).unwrap().partition(0).unwrap();
    for b in 0..3 {
        p.append(&records(b)).unwrap();
    }
    let views = Views::open(&store, ViewsConfig::default()).unwrap();
    let spec = r#"{"name": "per_user", "source": {"topics": ["events"]}, "key": "/user", "aggregates": {"n": {"op": "count"}}}"#;
    let view = views.create_json(spec.as_bytes()).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while view.status().counters.records_applied < 60 {
        assert!(Instant::now() < deadline, "the view did not catch up: {:?}", view.status());
        std::thread::sleep(Duration::from_millis(20));
    }
    let count = |u: usize| view.get(&format!("u{u}")).and_then(|k| k.value).map(|v| v["n"].as_u64().unwrap());
    let total: u64 = (0..7).map(|u| count(u).unwrap_or_else(|| panic!("u{u} missing"))).sum();
    assert_eq!(total, 60);
}
