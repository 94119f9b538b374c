//! A store written in format version 1 (12-byte `.timeindex` entries, no checksum) opens with this
//! build: every record reads back, every time lookup is right (the old time indexes are rebuilt
//! from the log), and the store is marked version 2 so that older builds refuse it from then on.

mod common;

use kappalog::{limits::FORMAT_VERSION, Durability, NewRecord, Store, StoreConfig, TopicConfig};

/// Rewrites a version-2 `.timeindex` as version 1 wrote it: each entry without its checksum.
fn as_version_1(timeindex: &[u8]) -> Vec<u8> {
    assert_eq!(timeindex.len() % 16, 0);
    timeindex.chunks_exact(16).flat_map(|e| e[..12].to_vec()).collect()
}

#[test]
fn a_version_1_store_is_read_and_upgraded() {
    assert_eq!(FORMAT_VERSION, 2);
    let dir = tempfile::tempdir().unwrap();
    let all = {
        let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
        let config = TopicConfig::default().segment_bytes(4096).index_interval_bytes(200).durability(Durability::None);
        let p = store.create_topic("t", 1, config).unwrap().partition(0).unwrap();
        for i in 0..300i64 {
            // Timestamps that go back now and then, so that the time index matters.
            let ts = 10_000 + i * 3 - (i % 7) * 5;
            p.append(&[NewRecord::keyed(format!("k{i}"), format!("v{i}")).with_timestamp(ts)]).unwrap();
        }
        p.read(0, usize::MAX, usize::MAX).unwrap()
    };

    // Make it a version-1 store.
    std::fs::write(dir.path().join("kappalog.json"), "{\n  \"format_version\": 1\n}").unwrap();
    let topic_json = dir.path().join("topics/t/topic.json");
    let meta = std::fs::read_to_string(&topic_json).unwrap();
    let v1_meta = meta.replace("\"format_version\": 2", "\"format_version\": 1");
    assert_ne!(meta, v1_meta);
    std::fs::write(&topic_json, &v1_meta).unwrap();
    let pdir = common::partition_dir(dir.path(), "t", 0);
    let timeindexes = common::segment_files(&pdir, "timeindex");
    assert!(timeindexes.len() >= 3, "several segments");
    for f in &timeindexes {
        let v1 = as_version_1(&std::fs::read(f).unwrap());
        std::fs::write(f, v1).unwrap();
    }

    {
        let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
        let meta = std::fs::read_to_string(dir.path().join("kappalog.json")).unwrap();
        assert!(meta.contains(&format!("\"format_version\": {FORMAT_VERSION}")), "upgraded: {meta}");
        assert_eq!(std::fs::read_to_string(&topic_json).unwrap(), v1_meta, "topic.json is left as it was");
        let p = store.topic("t").unwrap().partition(0).unwrap();
        assert_eq!(p.read(0, usize::MAX, usize::MAX).unwrap(), all);
        let (lo, hi) = (all.iter().map(|r| r.timestamp).min().unwrap(), all.iter().map(|r| r.timestamp).max().unwrap());
        for t in lo - 1..=hi + 1 {
            let want = all.iter().find(|r| r.timestamp >= t).map(|r| r.offset);
            assert_eq!(p.offset_for_timestamp(t).unwrap(), want, "t = {t}");
        }
    }
    // Every time index was rewritten in the version-2 layout, each entry with its checksum.
    for f in &timeindexes {
        let b = std::fs::read(f).unwrap();
        assert!(!b.is_empty() && b.len() % 16 == 0, "{}: {} bytes", f.display(), b.len());
        for e in b.chunks_exact(16) {
            assert_eq!(u32::from_le_bytes(e[12..].try_into().unwrap()), crc32fast::hash(&e[..12]), "{}", f.display());
        }
    }
    // And the upgraded store opens again, clean.
    let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
    assert_eq!(store.topic("t").unwrap().partition(0).unwrap().read(0, usize::MAX, usize::MAX).unwrap(), all);
}
