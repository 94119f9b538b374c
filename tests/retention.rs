//! Retention by time (ManualClock) and by bytes (small segments): whole sealed segments go, oldest
//! first; the log start moves durably; reads below it are out of range; held records stay readable.

use kappalog::{clock::ManualClock, CleanupPolicy, Error, NewRecord, Store, StoreConfig, TopicConfig};

const T0: i64 = 1_700_000_000_000;

fn config(clock: &std::sync::Arc<ManualClock>) -> StoreConfig {
    StoreConfig::default().clock(clock.clone()).cleaner_interval_ms(0)
}

fn topic_config(retention_ms: i64, retention_bytes: i64) -> TopicConfig {
    TopicConfig::default()
        .segment_bytes(4096)
        .index_interval_bytes(256)
        .retention_ms(retention_ms)
        .retention_bytes(retention_bytes)
}

/// Appends `n` records of ~100 bytes at the clock's time, one per append.
fn fill(p: &kappalog::Partition, n: u64) {
    for i in 0..n {
        p.append(&[NewRecord::keyed(format!("k{i}"), "v".repeat(100))]).unwrap();
    }
}

#[test]
fn by_time_deletes_old_sealed_segments_only() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let store = Store::open(dir.path(), config(&clock)).unwrap();
    let t = store.create_topic("t", 1, topic_config(60_000, -1)).unwrap();
    let p = t.partition(0).unwrap();
    fill(&p, 100); // old records, several segments
    let old_segments = p.segment_infos().unwrap();
    assert!(old_segments.len() >= 3, "{old_segments:?}");
    p.roll().unwrap();
    clock.advance(50_000);
    fill(&p, 10); // young records in their own segment, then the active one
    p.roll().unwrap();
    fill(&p, 1);

    // A reader that holds records of a segment about to go.
    let held = p.read(0, 1 << 20, 5).unwrap();

    // Not yet old enough: nothing goes.
    let r = store.enforce_retention("t").unwrap();
    assert_eq!(r.segments_removed, 0);
    assert_eq!(p.log_start_offset(), 0);

    clock.advance(10_001); // the first 100 records are now 60.001 s old, the next 10 are 10.001 s old
    let r = store.enforce_retention("t").unwrap();
    assert_eq!(r.segments_removed, old_segments.len(), "{r:?}");
    assert_eq!(p.log_start_offset(), 100);
    assert_eq!(r.partitions[0].log_start_offset_after, 100);
    assert!(r.bytes_removed > 0);
    for s in &old_segments {
        assert!(!s.path.exists(), "{} should be deleted", s.path.display());
    }
    assert!(matches!(p.read(99, 1 << 20, 10), Err(Error::OffsetOutOfRange { log_start_offset: 100, .. })));
    assert!(matches!(p.read(0, 1 << 20, 10), Err(Error::OffsetOutOfRange { .. })));
    assert_eq!(p.read(100, 1 << 20, 1).unwrap()[0].offset, 100);
    // The held records are still whole.
    assert_eq!(held.len(), 5);
    assert_eq!(held[4].key.as_deref(), Some(&b"k4"[..]));
    assert_eq!(held[4].value.as_deref().unwrap(), "v".repeat(100).as_bytes());
    assert_eq!(p.cleaner_stats().unwrap().last_retention.unwrap().removed.len(), old_segments.len());

    // Much later: every sealed segment goes, the active one stays.
    clock.advance(1_000_000);
    store.enforce_retention("t").unwrap();
    assert_eq!(p.log_start_offset(), 110);
    assert_eq!(p.segment_infos().unwrap().len(), 1);
    assert_eq!(p.read(110, 1 << 20, 10).unwrap().len(), 1);

    // The log start survives a reopen.
    drop((t, p));
    drop(store);
    let store = Store::open(dir.path(), config(&clock)).unwrap();
    let p = store.topic("t").unwrap().partition(0).unwrap();
    assert_eq!(p.log_start_offset(), 110);
    assert_eq!(p.high_watermark(), 111);
    assert!(matches!(p.read(109, 1 << 20, 10), Err(Error::OffsetOutOfRange { .. })));
}

#[test]
fn by_bytes_keeps_the_partition_under_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let store = Store::open(dir.path(), config(&clock)).unwrap();
    let t = store.create_topic("t", 1, topic_config(-1, 10_000)).unwrap();
    let p = t.partition(0).unwrap();
    fill(&p, 400);
    let before = p.segment_infos().unwrap();
    let total: u64 = before.iter().map(|s| s.size_bytes).sum();
    assert!(total > 30_000, "{total}");
    let r = store.enforce_retention("t").unwrap();
    let after = p.segment_infos().unwrap();
    let kept: u64 = after.iter().map(|s| s.size_bytes).sum();
    // Kafka's rule: a segment goes while the partition stays at least `retention_bytes` without it,
    // so what is kept is at least the limit, and less than the limit plus the oldest kept segment.
    assert!(kept >= 10_000 && kept - after[0].size_bytes < 10_000, "kept {kept} bytes: {after:?}");
    let removed = r.partitions[0].removed.len();
    assert!(removed > 0);
    assert_eq!(after[0].base_offset, before[removed].base_offset, "oldest first");
    assert_eq!(p.log_start_offset(), before[removed].base_offset);
    assert_eq!(r.bytes_removed, total - kept);
    // Records from the log start on are all there.
    let recs = p.read(p.log_start_offset(), 1 << 20, 1000).unwrap();
    assert_eq!(recs.len() as u64, 400 - p.log_start_offset());
}

#[test]
fn compact_only_topics_have_no_retention() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let store = Store::open(dir.path(), config(&clock)).unwrap();
    let cfg = (topic_config(1, 1)).cleanup_policy(CleanupPolicy::Compact);
    let t = store.create_topic("t", 1, cfg).unwrap();
    fill(&t.partition(0).unwrap(), 100);
    clock.advance(1_000_000);
    assert_eq!(store.enforce_retention("t").unwrap().segments_removed, 0);
}

#[test]
fn interrupted_deletion_is_finished_on_open() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let store = Store::open(dir.path(), config(&clock)).unwrap();
    let t = store.create_topic("t", 1, topic_config(-1, -1)).unwrap();
    let p = t.partition(0).unwrap();
    fill(&p, 100);
    let segs = p.segment_infos().unwrap();
    let pdir = p.dir().to_path_buf();
    drop((t, p));
    drop(store);
    // A crash after the log start was persisted, before the files were deleted: write the file as
    // retention does (offset u64 LE, CRC-32 of those 8 bytes).
    let start = segs[2].base_offset;
    let mut b = start.to_le_bytes().to_vec();
    b.extend_from_slice(&crc32(&b).to_le_bytes());
    std::fs::write(pdir.join("log-start-offset"), &b).unwrap();
    let store = Store::open(dir.path(), config(&clock)).unwrap();
    let p = store.topic("t").unwrap().partition(0).unwrap();
    assert_eq!(p.log_start_offset(), start);
    assert!(!segs[0].path.exists() && !segs[1].path.exists() && segs[2].path.exists());
    assert_eq!(p.read(start, 1 << 20, 1).unwrap()[0].offset, start);
}

fn crc32(b: &[u8]) -> u32 {
    // CRC-32 (IEEE), bitwise: the test checks the format independently of the crate.
    let mut crc = !0u32;
    for &x in b {
        crc ^= x as u32;
        for _ in 0..8 {
            crc = if crc & 1 != 0 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    !crc
}
