//! Kafka's four compaction guarantees, tombstone retention, gaps, merging, multi-pass cleaning,
//! the dirty-ratio trigger, the background cleaner and the statistics.

use std::collections::BTreeMap;

use kappalog::clock::Clock;
use kappalog::{
    clock::ManualClock, limits::OFFSET_MAP_BYTES_MIN, CleanupPolicy, Durability, Error, NewRecord, Partition, Record,
    Store, StoreConfig, TopicConfig,
};

const T0: i64 = 1_700_000_000_000;
const DELETE_RETENTION_MS: u64 = 10_000;

fn store(dir: &std::path::Path, clock: &std::sync::Arc<ManualClock>, interval_ms: u64, map: usize) -> Store {
    let cfg = StoreConfig::default().clock(clock.clone()).cleaner_interval_ms(interval_ms).offset_map_bytes(map);
    Store::open(dir, cfg).unwrap()
}

fn compacted() -> TopicConfig {
    TopicConfig::default()
        .segment_bytes(4096)
        .index_interval_bytes(256)
        .durability(Durability::None)
        .cleanup_policy(CleanupPolicy::Compact)
        .delete_retention_ms(DELETE_RETENTION_MS)
}

fn read_all(p: &Partition) -> Vec<Record> {
    p.cursor_from_start().fetch_limits(4096, 50).collect::<kappalog::Result<_>>().unwrap()
}

/// key → (offset, value) of the latest record of each key (a tombstone's value is `None`).
fn latest(records: &[Record]) -> BTreeMap<Vec<u8>, (u64, Option<Vec<u8>>)> {
    let mut m = BTreeMap::new();
    for r in records {
        m.insert(r.key.clone().unwrap().to_vec(), (r.offset, r.value.as_ref().map(|v| v.to_vec())));
    }
    m
}

#[test]
fn keyless_records_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let s = store(dir.path(), &clock, 0, OFFSET_MAP_BYTES_MIN);
    let p = s.create_topic("t", 1, compacted()).unwrap().partition(0).unwrap();
    let err = p.append(&[NewRecord::keyed("k", "v"), NewRecord::new("no key")]).unwrap_err();
    assert!(matches!(&err, Error::InvalidRecord(m) if m.contains("no key") && m.contains("compacted")), "{err}");
    assert_eq!(p.high_watermark(), 0, "nothing of a rejected append is written");
    let err = s.compact("t").map(|_| ()).and_then(|_| {
        s.create_topic("plain", 1, TopicConfig::default())?;
        s.compact("plain").map(|_| ())
    });
    assert!(matches!(err, Err(Error::InvalidConfig { field: "cleanup_policy", .. })), "{err:?}");
}

#[test]
fn the_four_guarantees_and_tombstones() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let s = store(dir.path(), &clock, 0, OFFSET_MAP_BYTES_MIN);
    let p = s.create_topic("t", 1, compacted()).unwrap().partition(0).unwrap();
    for i in 0..600u64 {
        let key = format!("key-{}", i % 25);
        // The last records of keys 1..5 are tombstones; key 0 had one earlier and came back.
        let rec = if (i >= 575 && (1..5).contains(&(i % 25))) || i == 500 {
            NewRecord::tombstone(key)
        } else {
            NewRecord::keyed(key, format!("value-{i}"))
        };
        p.append(&[rec]).unwrap();
        clock.advance(1);
    }
    p.roll().unwrap();
    // Guarantee 1: a consumer that keeps up sees every record (before the cleaner runs).
    let original = read_all(&p);
    assert_eq!(original.len(), 600);
    assert!(original.iter().enumerate().all(|(i, r)| r.offset == i as u64));
    let segments_before = p.segment_infos().unwrap().len();

    let report = s.compact("t").unwrap();
    let r = &report.partitions[0];
    assert!(r.passes >= 1 && r.records_removed > 500, "{r:?}");
    assert!(r.bytes_after < r.bytes_before / 5, "{r:?}");
    assert!(p.segment_infos().unwrap().len() < segments_before, "small neighbours merged");
    let after = read_all(&p);
    // Guarantee 2 and 3: order kept, offsets and contents unchanged.
    assert!(after.windows(2).all(|w| w[0].offset < w[1].offset));
    for rec in &after {
        assert_eq!(rec, &original[rec.offset as usize], "offset {} changed", rec.offset);
    }
    // Guarantee 4: the final value of every key, tombstones included (younger than the retention).
    assert_eq!(latest(&after), latest(&original));
    assert_eq!(after.len(), 25, "one record per key");
    assert!(after.iter().filter(|r| r.value.is_none()).count() == 4, "tombstones of keys 1..5 kept");
    // A read at a removed offset returns the next surviving record.
    let survivors: Vec<u64> = after.iter().map(|r| r.offset).collect();
    for removed in [0, 100, survivors[0] - 1] {
        assert!(!survivors.contains(&removed));
        assert_eq!(p.read(removed, 1 << 20, 1).unwrap()[0].offset, survivors[0]);
    }
    let stats = p.cleaner_stats().unwrap();
    assert_eq!(stats.dirty_ratio, 0.0);
    assert_eq!(stats.last_compaction.as_ref().unwrap().records_removed, r.records_removed);

    // Appends go on at the right offsets; a reopen reads the same log.
    assert_eq!(p.append(&[NewRecord::keyed("key-1", "after")]).unwrap().base_offset, 600);
    drop(p);
    drop(s);
    let s = store(dir.path(), &clock, 0, OFFSET_MAP_BYTES_MIN);
    let p = s.topic("t").unwrap().partition(0).unwrap();
    let reopened = read_all(&p);
    assert_eq!(&reopened[..25], &after[..]);
    assert_eq!(p.cleaner_stats().unwrap().first_dirty_offset, 600, "the checkpoint survives a reopen");

    // Past delete_retention_ms the tombstones go, and the keys they deleted stay deleted.
    p.roll().unwrap();
    clock.advance(DELETE_RETENTION_MS as i64 + 1_000);
    let r = s.compact("t").unwrap();
    // key-1's tombstone was superseded by the append above; the other three expired.
    assert_eq!(r.partitions[0].tombstones_removed, 3, "{r:?}");
    let last = read_all(&p);
    assert!(last.iter().all(|r| r.value.is_some()));
    let keys: Vec<String> = last.iter().map(|r| String::from_utf8(r.key.clone().unwrap().to_vec()).unwrap()).collect();
    for k in 2..5 {
        assert!(!keys.contains(&format!("key-{k}")), "key-{k} was deleted");
    }
    let key1 = last.iter().find(|r| r.key.as_deref() == Some(&b"key-1"[..])).unwrap();
    assert_eq!((key1.offset, key1.value.as_deref()), (600, Some(&b"after"[..])));
    assert_eq!(last.len(), 22);
}

#[test]
fn a_dirty_section_larger_than_the_map_takes_several_passes() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let s = store(dir.path(), &clock, 0, OFFSET_MAP_BYTES_MIN);
    let p = s.create_topic("t", 1, compacted().segment_bytes(64 * 1024)).unwrap().partition(0).unwrap();
    // 4000 keys, each written twice: far more keys than a 64 KiB map holds.
    for round in 0..2 {
        for chunk in (0..4000).collect::<Vec<_>>().chunks(100) {
            let recs: Vec<NewRecord> =
                chunk.iter().map(|k| NewRecord::keyed(format!("key-{k:05}"), format!("v{round}-{k}"))).collect();
            p.append(&recs).unwrap();
        }
    }
    p.roll().unwrap();
    let original = read_all(&p);
    let r = s.compact("t").unwrap();
    let r = &r.partitions[0];
    assert!(r.passes >= 3, "{r:?}");
    assert_eq!(r.records_removed, 4000, "{r:?}");
    let after = read_all(&p);
    assert_eq!(latest(&after), latest(&original));
    assert!(after.iter().all(|rec| rec.value.as_deref().unwrap().starts_with(b"v1-")));
}

/// The other bound of a pass: besides the keys, the map notes a bit per dirty offset (a sixteenth
/// of its budget: 32768 offsets for the smallest map), so a few keys over many records also take
/// several passes.
#[test]
fn many_records_of_few_keys_take_several_passes() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let s = store(dir.path(), &clock, 0, OFFSET_MAP_BYTES_MIN);
    let p = s.create_topic("t", 1, compacted().segment_bytes(256 * 1024)).unwrap().partition(0).unwrap();
    const RECORDS: u64 = 80_000;
    for chunk in (0..RECORDS).collect::<Vec<_>>().chunks(500) {
        let recs: Vec<NewRecord> =
            chunk.iter().map(|i| NewRecord::keyed(format!("k{}", i % 7), format!("{i}"))).collect();
        p.append(&recs).unwrap();
    }
    p.roll().unwrap();
    let original = read_all(&p);
    let r = s.compact("t").unwrap();
    let r = &r.partitions[0];
    assert!(r.passes >= 3, "{r:?}");
    assert_eq!(r.records_removed, RECORDS - 7, "{r:?}");
    let after = read_all(&p);
    assert_eq!(after.len(), 7);
    assert_eq!(latest(&after), latest(&original));
}

#[test]
fn lag_and_dirty_ratio_decide_what_is_cleaned() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let s = store(dir.path(), &clock, 0, OFFSET_MAP_BYTES_MIN);
    let cfg = compacted().min_compaction_lag_ms(60_000).min_cleanable_dirty_ratio(0.5);
    let p = s.create_topic("t", 1, cfg).unwrap().partition(0).unwrap();
    for i in 0..200 {
        p.append(&[NewRecord::keyed(format!("k{}", i % 3), format!("v{i}"))]).unwrap();
    }
    p.roll().unwrap();
    // Younger than the lag: not cleanable.
    assert_eq!(p.cleaner_stats().unwrap().cleanable_bytes, 0);
    let r = kappalog::cleaner::compact(&p, clock.now_ms(), OFFSET_MAP_BYTES_MIN).unwrap();
    assert_eq!((r.passes, r.records_removed), (0, 0));
    assert_eq!(read_all(&p).len(), 200);
    clock.advance(60_001);
    let stats = p.cleaner_stats().unwrap();
    assert_eq!(stats.dirty_ratio, 1.0);
    let r = kappalog::cleaner::compact_if_dirty(&p, clock.now_ms(), OFFSET_MAP_BYTES_MIN).unwrap();
    assert_eq!(r.records_removed, 197);
    // Now a little dirt: below the ratio, nothing happens unless forced.
    p.append(&[NewRecord::keyed("k0", "late")]).unwrap();
    p.roll().unwrap();
    clock.advance(60_001);
    let stats = p.cleaner_stats().unwrap();
    assert!(stats.dirty_ratio > 0.0 && stats.dirty_ratio < 0.5, "{stats:?}");
    let r = kappalog::cleaner::compact_if_dirty(&p, clock.now_ms(), OFFSET_MAP_BYTES_MIN).unwrap();
    assert_eq!(r.passes, 0);
    let r = kappalog::cleaner::compact(&p, clock.now_ms(), OFFSET_MAP_BYTES_MIN).unwrap();
    assert_eq!(r.records_removed, 1);
}

#[test]
fn the_background_cleaner_compacts_dirty_partitions() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let s = store(dir.path(), &clock, 5, OFFSET_MAP_BYTES_MIN);
    let cfg = compacted().min_cleanable_dirty_ratio(0.01);
    let p = s.create_topic("t", 1, cfg).unwrap().partition(0).unwrap();
    for i in 0..300 {
        p.append(&[NewRecord::keyed(format!("k{}", i % 10), format!("v{i}"))]).unwrap();
    }
    p.roll().unwrap();
    // Bounded wait on a condition (the cleaner runs every 5 ms of real time).
    let mut records = read_all(&p);
    for _ in 0..2_000 {
        if records.len() == 10 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
        records = read_all(&p);
    }
    assert_eq!(records.len(), 10, "the background cleaner did not finish within 10 s");
    assert!(p.cleaner_stats().unwrap().compactions > 0);
}
