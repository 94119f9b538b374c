//! A partition that never gets data holds the watermark back until it has been idle for
//! `window.idle_timeout_ms` on the store clock; then the windows the other partition's records
//! closed are emitted. A record that comes to the idle partition later, behind the watermark, is
//! late (dropped and counted); a partition with records to read is never idle.

mod view_common;

use std::time::{Duration, Instant};

use kappalog::{clock::ManualClock, NewRecord, Store, StoreConfig, TopicConfig, Views};
use serde_json::json;
use view_common::{all_records, fast_views, wait};

const NOW: i64 = 1_700_000_000_000;

#[test]
fn an_idle_partition_stops_holding_the_watermark_after_idle_timeout_ms() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(NOW);
    let store = Store::open(dir.path(), StoreConfig::default().clock(clock.clone())).unwrap();
    let views = Views::open(&store, fast_views()).unwrap();
    let topic = store.create_topic("t", 2, TopicConfig::default()).unwrap();
    store.create_topic("out", 1, TopicConfig::default()).unwrap();
    let spec = r#"{"name": "w", "source": {"topics": ["t"]}, "key": "/k",
        "window": {"type": "tumbling", "size_ms": 100, "grace_ms": 0, "time": "/ts", "idle_timeout_ms": 1000},
        "aggregates": {"n": {"op": "count"}}, "emit": {"topic": "out", "on": "window_close"}}"#;
    let view = views.create_json(spec.as_bytes()).unwrap();
    let record = |ts: i64| NewRecord::new(json!({"k": "a", "ts": ts}).to_string());
    let p0 = topic.partition(0).unwrap();
    p0.append(&(0..5).map(|i| record(NOW - 1000 + i * 100)).collect::<Vec<_>>()).unwrap();
    wait(&view);
    // The store clock has not moved: partition 1 is not idle, and it has no data yet.
    assert_eq!(view.status().watermark, None);
    assert_eq!(store.topic("out").unwrap().partition(0).unwrap().high_watermark(), 0);

    clock.advance(1000);
    let deadline = Instant::now() + Duration::from_secs(30);
    while view.status().watermark.is_none() {
        assert!(Instant::now() < deadline, "partition 1 never went idle: {:?}", view.status());
        std::thread::sleep(Duration::from_millis(5));
    }
    let s = view.status();
    assert_eq!(s.watermark, Some(NOW - 600));
    let partitions: Vec<(Option<i64>, bool)> = s.lag.iter().map(|l| (l.watermark, l.idle)).collect();
    assert_eq!(partitions, vec![(Some(NOW - 600), true), (None, true)], "the status shows each partition");
    wait(&view);
    let emitted: Vec<i64> = all_records(&store, "out")
        .iter()
        .map(|(_, r)| {
            serde_json::from_slice::<serde_json::Value>(r.value.as_deref().unwrap()).unwrap()["start"].as_i64().unwrap()
        })
        .collect();
    assert_eq!(emitted, vec![NOW - 1000, NOW - 900, NOW - 800, NOW - 700], "the closed windows, once each");

    // Partition 1 wakes up with a record behind the watermark (late) and one ahead of it.
    topic.partition(1).unwrap().append(&[record(NOW - 950), record(NOW - 550)]).unwrap();
    wait(&view);
    let s = view.status();
    assert_eq!((s.late_records, s.counters.records_applied), (1, 6), "{s:?}");
}

#[test]
fn a_partition_with_records_to_read_is_never_idle() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(NOW);
    let store = Store::open(dir.path(), StoreConfig::default().clock(clock.clone())).unwrap();
    let topic = store.create_topic("t", 2, TopicConfig::default()).unwrap();
    // Partition 0 far ahead in event time, partition 1 behind; both written long ago.
    let record = |ts: i64| NewRecord::new(json!({"k": "a", "ts": ts}).to_string());
    for i in 0..50 {
        topic.partition(0).unwrap().append(&[record(NOW - 10_000 + i * 100)]).unwrap();
        topic.partition(1).unwrap().append(&[record(NOW - 100_000 + i * 100)]).unwrap();
    }
    clock.advance(3_600_000);
    let config = fast_views().read_records_max(3);
    let views = Views::open(&store, config).unwrap();
    let spec = r#"{"name": "w", "source": {"topics": ["t"]}, "key": "/k",
        "window": {"type": "tumbling", "size_ms": 100, "grace_ms": 0, "time": "/ts", "idle_timeout_ms": 0},
        "aggregates": {"n": {"op": "count"}}}"#;
    let view = views.create_json(spec.as_bytes()).unwrap();
    wait(&view);
    let s = view.status();
    assert_eq!((s.late_records, s.counters.records_applied), (0, 100), "{s:?}");
}
