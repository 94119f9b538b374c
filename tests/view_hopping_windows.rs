//! Hopping windows (size 10 s, advance 2 s, so each record is in 5 windows) with min / max / avg /
//! latest on the record timestamp: every window equals a batch computation; closed windows past
//! their retention are evicted.

mod view_common;

use std::collections::BTreeMap;

use kappalog::{NewRecord, TopicConfig};
use serde_json::{json, Value};
use view_common::{all_records, open, wait, Rng};

const SPEC: &str = r#"{"name": "temps", "source": {"topics": ["readings"]}, "key": "/sensor",
    "window": {"type": "hopping", "size_ms": 10000, "advance_ms": 2000, "grace_ms": 0, "retention_ms": 60000},
    "aggregates": {"lo": {"op": "min", "field": "/t"}, "hi": {"op": "max", "field": "/t"},
                   "mean": {"op": "avg", "field": "/t"}, "last": {"op": "latest", "field": "/t"}}}"#;
const SIZE: i64 = 10_000;
const ADVANCE: i64 = 2_000;
const RETENTION: i64 = 60_000;

#[test]
fn hopping_windows_match_a_batch_computation_and_expire() {
    let mut rng = Rng::from_env("hopping_windows");
    let dir = tempfile::tempdir().unwrap();
    let (store, views) = open(dir.path());
    let topic = store.create_topic("readings", 1, TopicConfig::default()).unwrap();
    let view = views.create_json(SPEC.as_bytes()).unwrap();
    let records: Vec<NewRecord> = (0..3_000i64)
        .map(|i| {
            let v = json!({"sensor": format!("s{}", rng.below(4)), "t": rng.below(400) as i64 - 100});
            NewRecord::new(v.to_string()).with_timestamp(i * 97) // in order: nothing is late
        })
        .collect();
    topic.append(&records).unwrap();
    wait(&view);

    let mut watermark = 0;
    let mut windows: BTreeMap<(String, i64), Vec<i64>> = BTreeMap::new();
    for (_, r) in all_records(&store, "readings") {
        let v: Value = serde_json::from_slice(r.value.as_deref().unwrap()).unwrap();
        watermark = r.timestamp;
        let mut start = r.timestamp.div_euclid(ADVANCE) * ADVANCE;
        while start > r.timestamp - SIZE {
            windows
                .entry((v["sensor"].as_str().unwrap().to_string(), start))
                .or_default()
                .push(v["t"].as_i64().unwrap());
            start -= ADVANCE;
        }
    }
    let mut expected: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for ((sensor, start), ts) in windows {
        if start + SIZE + RETENTION <= watermark {
            continue; // evicted
        }
        let mean = ts.iter().sum::<i64>() as f64 / ts.len() as f64;
        expected.entry(sensor).or_default().push(json!({"start": start, "end": start + SIZE, "value": {
            "lo": ts.iter().min(), "hi": ts.iter().max(), "mean": mean, "last": ts.last()}}));
    }
    for (sensor, want) in &expected {
        let got = serde_json::to_value(view.get(sensor).unwrap().windows.unwrap()).unwrap();
        assert_eq!(got, json!(want), "sensor {sensor}");
    }
    let status = view.status();
    assert_eq!(status.late_records, 0);
    assert_eq!(status.windows, expected.values().map(Vec::len).sum::<usize>(), "old windows were evicted");
    assert!(watermark > SIZE + RETENTION, "the data spans past the retention");
}
