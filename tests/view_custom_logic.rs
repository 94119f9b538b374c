//! A view written in Rust (`ViewLogic`): applied to every record, emitting, queried like any
//! other view, and resumed from its checkpoint when its logic is given again after a restart.

mod view_common;

use std::sync::Arc;

use kappalog::{stream::ViewLogic, NewRecord, Record, TopicConfig};
use serde_json::{json, Value};
use view_common::{open, wait};

/// Bytes and records per key; emits when a key passes 1000 bytes.
struct Volume;

impl ViewLogic for Volume {
    fn init(&self, _key: &str) -> Value {
        json!({"bytes": 0, "records": 0})
    }
    fn apply(&self, _key: &str, state: &mut Value, record: &Record) -> bool {
        let Some(v) = &record.value else { return false };
        let bytes = state["bytes"].as_u64().unwrap() + v.len() as u64;
        let records = state["records"].as_u64().unwrap() + 1;
        *state = json!({"bytes": bytes, "records": records});
        true
    }
    fn emit(&self, _key: &str, state: &Value) -> Option<Value> {
        (state["bytes"].as_u64().unwrap() > 1000).then(|| state.clone())
    }
}

fn append(store: &kappalog::Store, n: usize) {
    let records = (0..n).map(|i| NewRecord::keyed(format!("k{}", i % 3), "x".repeat(10 + i % 7))).collect::<Vec<_>>();
    store.topic("raw").unwrap().append(&records).unwrap();
}

fn volume_of(n: usize) -> Vec<(String, Value)> {
    let mut acc = [(0u64, 0u64); 3];
    for i in 0..n {
        acc[i % 3].0 += (10 + i % 7) as u64;
        acc[i % 3].1 += 1;
    }
    acc.iter().enumerate().map(|(k, (b, r))| (format!("k{k}"), json!({"bytes": b, "records": r}))).collect()
}

#[test]
fn custom_logic_applies_emits_and_resumes() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (store, views) = open(dir.path());
        store.create_topic("raw", 2, TopicConfig::default()).unwrap();
        store.create_topic("big", 1, TopicConfig::default()).unwrap();
        append(&store, 300);
        let view = views.create_custom("volume", &["raw"], Some("big"), Arc::new(Volume)).unwrap();
        wait(&view);
        let got: Vec<(String, Value)> = view.scan("k", 10).into_iter().map(|r| (r.key, r.value.unwrap())).collect();
        assert_eq!(got, volume_of(300));
        assert!(view.status().counters.records_emitted > 0);
        assert!(view.status().spec.is_none());
    }
    let (store, views) = open(dir.path());
    assert_eq!(views.list(), vec!["volume".to_string()], "known, waiting for its logic");
    assert!(views.get("volume").is_err());
    append(&store, 300);
    let view = views.create_custom("volume", &["raw"], Some("big"), Arc::new(Volume)).unwrap();
    wait(&view);
    let mut expected = volume_of(300);
    for (e, (_, add)) in expected.iter_mut().zip(volume_of(300)) {
        e.1 = json!({"bytes": e.1["bytes"].as_u64().unwrap() + add["bytes"].as_u64().unwrap(),
                     "records": e.1["records"].as_u64().unwrap() + add["records"].as_u64().unwrap()});
    }
    let got: Vec<(String, Value)> = view.scan("", 10).into_iter().map(|r| (r.key, r.value.unwrap())).collect();
    assert_eq!(got, expected);
    assert_eq!(view.status().counters.records_read, 600, "resumed from its checkpoint, nothing read twice");
}
