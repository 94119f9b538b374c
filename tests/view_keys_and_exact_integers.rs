//! Keys as the user wrote them, and exact integers:
//! - a view keyed by the record key matches a JSON-string key by its value (`"u1"` is `u1`, and a
//!   prefix scan for `u` finds it), any other key by its bytes;
//! - emitted keys are JSON (`"u1"`, `42`), for updates and for closed windows;
//! - integer `min`/`max` stay exact, an integer `sum` whose partial value overflows `i64` but whose
//!   total fits stays exact, and a restart (from the checkpoint) gives the same exact values.

mod view_common;

use kappalog::{NewRecord, TopicConfig};
use serde_json::{json, Value};
use view_common::{all_records, open, scan_all, wait};

#[test]
fn record_keys_are_matched_as_produced() {
    let dir = tempfile::tempdir().unwrap();
    let (store, views) = open(dir.path());
    let t = store.create_topic("t", 2, TopicConfig::default()).unwrap();
    let spec = r#"{"name": "v", "source": {"topics": ["t"]}, "aggregates": {"n": {"op": "count"}}}"#;
    let view = views.create_json(spec.as_bytes()).unwrap();
    t.append(&[
        NewRecord::keyed(r#""u1""#, "{}"),
        NewRecord::keyed(r#""u1""#, "{}"),
        NewRecord::keyed("u2", "{}"),
        NewRecord::keyed("42", "{}"),
        NewRecord::keyed(r#""\u00e9t\u00e9""#, "{}"),
    ])
    .unwrap();
    wait(&view);
    assert_eq!(view.get("u1").unwrap().value, Some(json!({"n": 2})));
    assert!(view.get(r#""u1""#).is_none(), "the key is u1, not its JSON text");
    assert_eq!(view.get("42").unwrap().value, Some(json!({"n": 1})));
    assert_eq!(view.get("été").unwrap().value, Some(json!({"n": 1})));
    let found: Vec<String> = view.scan("u", 10).into_iter().map(|k| k.key).collect();
    assert_eq!(found, ["u1", "u2"]);
}

#[test]
fn emitted_keys_are_json() {
    let dir = tempfile::tempdir().unwrap();
    let (store, views) = open(dir.path());
    let t = store.create_topic("t", 1, TopicConfig::default()).unwrap();
    store.create_topic("updates", 1, TopicConfig::default()).unwrap();
    store.create_topic("closed", 1, TopicConfig::default()).unwrap();
    let updates = r#"{"name": "u", "source": {"topics": ["t"]}, "key": "/user",
        "aggregates": {"n": {"op": "count"}}, "emit": {"topic": "updates"}}"#;
    let closed = r#"{"name": "c", "source": {"topics": ["t"]}, "key": "/user",
        "window": {"type": "tumbling", "size_ms": 10, "grace_ms": 0, "time": "/ts"},
        "aggregates": {"n": {"op": "count"}}, "emit": {"topic": "closed", "on": "window_close"}}"#;
    let (u, c) = (views.create_json(updates.as_bytes()).unwrap(), views.create_json(closed.as_bytes()).unwrap());
    t.append(&[
        NewRecord::keyed("k", r#"{"user": "u1", "ts": 1}"#),
        NewRecord::keyed("k", r#"{"user": 42, "ts": 2}"#),
        NewRecord::keyed("k", r#"{"user": "u1", "ts": 25}"#),
    ])
    .unwrap();
    wait(&u);
    wait(&c);
    let keys = |topic: &str| -> Vec<Value> {
        all_records(&store, topic)
            .into_iter()
            .map(|(_, r)| serde_json::from_slice(&r.key.unwrap()).expect("an emitted key is JSON"))
            .collect()
    };
    assert_eq!(keys("updates"), [json!("u1"), json!(42), json!("u1")]);
    let mut closed_keys = keys("closed");
    closed_keys.sort_by_key(|k| k.to_string());
    assert_eq!(closed_keys, [json!("u1"), json!(42)], "the windows [0, 10) of u1 and 42 closed");
}

#[test]
fn integers_stay_exact_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let spec = r#"{"name": "v", "source": {"topics": ["t"]}, "key": "/k",
        "aggregates": {"lo": {"op": "min", "field": "/x"}, "hi": {"op": "max", "field": "/x"},
                       "total": {"op": "sum", "field": "/x"}}}"#;
    let max = i64::MAX;
    let big = 1_700_000_000_000_000_001_i64;
    let expected = json!({"lo": -5, "hi": big, "total": 2 * big - 1 - 5});
    {
        let (store, views) = open(dir.path());
        let t = store.create_topic("t", 1, TopicConfig::default()).unwrap();
        let view = views.create_json(spec.as_bytes()).unwrap();
        let xs = [big, big - 1, -5];
        t.append(&xs.iter().map(|x| NewRecord::keyed("k", format!(r#"{{"k": "a", "x": {x}}}"#))).collect::<Vec<_>>())
            .unwrap();
        wait(&view);
        assert_eq!(view.get("a").unwrap().value.unwrap(), expected, "not 1.7e18");
        // Partial sums: MAX, then past i64::MAX (checkpointed so); the total will fit.
        t.append(&vec![NewRecord::keyed("k", format!(r#"{{"k": "b", "x": {max}}}"#)); 2]).unwrap();
        wait(&view);
    }
    let (store, views) = open(dir.path());
    let view = views.get("v").unwrap();
    wait(&view);
    assert_eq!(scan_all(&view)["a"], expected, "exact after a restart");
    store.topic("t").unwrap().append(&[NewRecord::keyed("k", format!(r#"{{"k": "b", "x": {}}}"#, -max))]).unwrap();
    wait(&view);
    assert_eq!(view.get("b").unwrap().value.unwrap()["total"], json!(max), "the partial sum past i64 was kept exactly");
}
