//! `state.ttl_ms` drops keys not updated for that long in event time (counted, emitted as
//! tombstones, the same live as in a replay); `state.memory_bytes_max` fails a view whose state
//! passes it, with an error naming the bound; `state_bytes` shows in the status.

mod view_common;

use std::time::{Duration, Instant};

use kappalog::{
    stream::{ViewError, ViewRunState},
    NewRecord, TopicConfig,
};
use serde_json::json;
use view_common::{all_records, open, scan_all, wait};

fn rec(k: &str, ts: i64) -> NewRecord {
    NewRecord::new(json!({"k": k}).to_string()).with_timestamp(ts)
}

#[test]
fn keys_not_updated_for_ttl_ms_are_dropped_live_and_in_a_replay() {
    let dir = tempfile::tempdir().unwrap();
    let (store, views) = open(dir.path());
    let topic = store.create_topic("t", 2, TopicConfig::default()).unwrap();
    store.create_topic("out", 1, TopicConfig::default()).unwrap();
    let spec = |name: &str| {
        format!(
            r#"{{"name": "{name}", "source": {{"topics": ["t"]}}, "key": "/k", "aggregates": {{"n": {{"op": "count"}}}},
                "state": {{"ttl_ms": 1000}}, "emit": {{"topic": "out"}}}}"#
        )
    };
    let live = views.create_json(spec("live").as_bytes()).unwrap();
    let (p0, p1) = (topic.partition(0).unwrap(), topic.partition(1).unwrap());
    p0.append(&[rec("old", 1000), rec("a", 5000), rec("a", 9000)]).unwrap();
    wait(&live);
    // Partition 1 has no data yet: it holds the watermark (and so expiry) back.
    assert!(live.get("old").is_some(), "{:?}", live.status());
    assert_eq!(live.status().counters.keys_expired, 0);
    p1.append(&[rec("b", 5000), rec("mid", 7500), rec("b", 9000)]).unwrap();
    wait(&live);
    let status = live.status();
    assert_eq!(status.watermark, Some(9000), "{status:?}");
    // At watermark 5000 "old" (1000) expires; at 7500 "b" (5000), which 9000 then brings back
    // with a fresh count; at 9000 "mid" (7500).
    assert_eq!(status.counters.keys_expired, 3, "{status:?}");
    let table = scan_all(&live);
    assert_eq!(table.keys().cloned().collect::<Vec<_>>(), vec!["a", "b"], "{table:?}");
    assert_eq!((&table["a"], &table["b"]), (&json!({"n": 2}), &json!({"n": 1})));
    // The emit topic says the keys went away.
    let tombstones: Vec<String> = all_records(&store, "out")
        .into_iter()
        .filter(|(_, r)| r.value.is_none())
        .map(|(_, r)| String::from_utf8_lossy(r.key.as_deref().unwrap()).into_owned())
        .collect();
    assert_eq!(tombstones, vec!["\"old\"", "\"b\"", "\"mid\""]);

    // A view created after the data computes the same.
    let replay = views.create_json(spec("replay").as_bytes()).unwrap();
    wait(&replay);
    assert_eq!(scan_all(&replay), table);
    assert_eq!(replay.status().counters.keys_expired, 3);
    assert_eq!(replay.status().state_bytes, status.state_bytes);

    // The expiry times survive a restart: "a" and "b" expire after it as before.
    drop((live, replay));
    views.close();
    drop(store);
    let (store, views) = open(dir.path());
    let topic = store.topic("t").unwrap();
    topic.partition(0).unwrap().append(&[rec("c", 20_000)]).unwrap();
    topic.partition(1).unwrap().append(&[rec("c", 20_000)]).unwrap();
    for name in ["live", "replay"] {
        let v = views.get(name).unwrap();
        wait(&v);
        assert_eq!(scan_all(&v).keys().cloned().collect::<Vec<_>>(), vec!["c"], "{name}");
        assert_eq!(v.status().counters.keys_expired, 5, "{name}");
    }
}

#[test]
fn a_state_over_memory_bytes_max_fails_the_view_with_the_bound_named() {
    let dir = tempfile::tempdir().unwrap();
    let (store, views) = open(dir.path());
    let topic = store.create_topic("t", 1, TopicConfig::default()).unwrap();
    let max = 100_000u64;
    let spec = |name: &str, state: &str| {
        format!(
            r#"{{"name": "{name}", "source": {{"topics": ["t"]}}, "key": "/k",
                "aggregates": {{"n": {{"op": "count"}}}}{state}}}"#
        )
    };
    let bounded =
        views.create_json(spec("bounded", &format!(r#", "state": {{"memory_bytes_max": {max}}}"#)).as_bytes()).unwrap();
    let free = views.create_json(spec("free", "").as_bytes()).unwrap();
    let p = topic.partition(0).unwrap();
    p.append(&(0..100).map(|i| rec(&format!("key-{i}"), i)).collect::<Vec<_>>()).unwrap();
    wait(&bounded);
    let small = bounded.status().state_bytes;
    assert!(small > 100 * 10 && small < max, "100 keys: {small} bytes");
    for chunk in 0..10 {
        p.append(&(0..1000).map(|i| rec(&format!("key-{chunk}-{i}"), i)).collect::<Vec<_>>()).unwrap();
    }
    wait(&free);
    let grown = free.status();
    assert!(grown.state_bytes > max, "10,100 keys: {} bytes", grown.state_bytes);
    assert_eq!(grown.state, ViewRunState::Running);
    let deadline = Instant::now() + Duration::from_secs(30);
    while bounded.status().state != ViewRunState::Failed {
        assert!(Instant::now() < deadline, "the bound was not enforced: {:?}", bounded.status());
        std::thread::sleep(Duration::from_millis(5));
    }
    let error = bounded.status().error.unwrap();
    assert!(error.contains("state.memory_bytes_max") && error.contains(&max.to_string()), "{error}");
    // It stopped near the bound (within a read batch of keys), far below the unbounded state.
    assert!(bounded.status().state_bytes < grown.state_bytes);
}

#[test]
fn state_fields_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    let (store, views) = open(dir.path());
    store.create_topic("t", 1, TopicConfig::default()).unwrap();
    for (state, window, field) in [
        (r#"{"ttl_ms": 0}"#, "", "state.ttl_ms"),
        (r#"{"ttl_ms": 10}"#, r#", "window": {"type": "tumbling", "size_ms": 10}"#, "state.ttl_ms"),
        (r#"{"memory_bytes_max": 0}"#, "", "state.memory_bytes_max"),
    ] {
        let spec = format!(
            r#"{{"name": "v", "source": {{"topics": ["t"]}}, "key": "/k", "aggregates": {{"n": {{"op": "count"}}}},
                "state": {state}{window}}}"#
        );
        match views.create_json(spec.as_bytes()) {
            Err(ViewError::InvalidSpec { field: f, .. }) => assert_eq!(f, field, "{spec}"),
            other => panic!("{spec}: {other:?}"),
        }
    }
    let spec = r#"{"name": "v", "source": {"topics": ["t"]}, "key": "/k", "aggregates": {"n": {"op": "count"}},
        "state": {"ttl_mss": 10}}"#;
    assert!(views.create_json(spec.as_bytes()).is_err(), "unknown field refused");
}
