//! Exactly-once emits across `kill -9` of a real broker: a view counts payments per user and
//! emits every update (`{"n": 1}`, `{"n": 2}`, ...) to another topic while records stream in; the
//! broker is killed mid-stream several times and started again. At the end the emit topic holds,
//! for each user, each count from 1 to the user's number of records exactly once, and the emit
//! sequence numbers of the view version are 0, 1, 2, ... without a gap or a repeat.

mod broker_common;
mod broker_views_common;

use std::collections::BTreeMap;

use broker_common::{Broker, JSON_V2};
use broker_views_common::*;
use kappalog::{Store, StoreConfig};
use serde_json::{json, Value};

const SPEC: &str = r#"{"name": "payments_per_user", "source": {"topics": ["payments"]}, "key": "/user",
    "aggregates": {"n": {"op": "count"}}, "emit": {"topic": "counts", "on": "update"}}"#;

/// Produces `batches` batches of 2,000 payments (so that the view has a backlog when the broker is
/// killed right after); returns false when a request failed.
fn produce(http: &broker_common::Http, rng: &mut Rng, batches: usize) -> bool {
    for _ in 0..batches {
        let recs: Vec<Value> = (0..2_000)
            .map(|_| {
                let user = format!("u{}", rng.below(40));
                json!({"key": user, "value": {"user": user, "amount": rng.below(100)}})
            })
            .collect();
        let (s, _) = http.post_as("/topics/payments", JSON_V2, &json!({ "records": recs }));
        if s != 200 {
            return false;
        }
    }
    true
}

fn header<'a>(r: &'a kappalog::Record, name: &str) -> &'a str {
    let h = r.headers.iter().find(|h| h.key == name).unwrap_or_else(|| panic!("no header {name}: {r:?}"));
    std::str::from_utf8(h.value.as_deref().expect("a value")).unwrap()
}

#[test]
fn emitted_records_exactly_once_across_kill_nine() {
    let mut rng = Rng::from_env("emitted_records_exactly_once_across_kill_nine");
    let dir = tempfile::tempdir().unwrap();
    let mut broker = Broker::start(dir.path(), &[]);
    let http = broker.client();
    http.create_topic("payments", 2, json!({}));
    http.create_topic("counts", 3, json!({}));
    let (s, b) = http.post("/views", &serde_json::from_str::<Value>(SPEC).unwrap());
    assert_eq!(s, 201, "{b}");
    for round in 0..4 {
        let http = broker.client();
        let batches = 1 + rng.below(5) as usize;
        assert!(produce(&http, &mut rng, batches), "round {round}: produce failed");
        // Killed while the view is (most likely) still applying and emitting what was produced.
        broker.kill9();
        eprintln!("round {round}: killed");
        broker = Broker::start(dir.path(), &[]);
    }
    let http = broker.client();
    wait_caught_up(&http, "payments_per_user", 1);
    // The last emits become visible at the checkpoint after catching up: wait for all of them.
    let (_, st) = http.get("/views/payments_per_user");
    let emitted = st["counters"]["records_emitted"].as_u64().unwrap();
    wait_for("every emit appended", VIEW_WAIT, || {
        let total: u64 = (0..3)
            .map(|p| http.get(&format!("/topics/counts/partitions/{p}/offsets")).1["end_offset"].as_u64().unwrap())
            .sum();
        if total >= emitted {
            Ok(())
        } else {
            Err(format!("{total} of {emitted} appended"))
        }
    });
    assert!(broker.terminate().success());

    let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
    let mut per_user: BTreeMap<String, u64> = BTreeMap::new();
    for p in store.topic("payments").unwrap().partitions().iter() {
        let mut next = 0;
        while next < p.high_watermark() {
            let batch = p.read(next, 1 << 20, 10_000).unwrap();
            next = batch.last().unwrap().offset + 1;
            for r in batch {
                let v: Value = serde_json::from_slice(r.value.as_deref().unwrap()).unwrap();
                *per_user.entry(v["user"].as_str().unwrap().to_string()).or_default() += 1;
            }
        }
    }
    let mut counts: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    let mut sequences = Vec::new();
    for p in store.topic("counts").unwrap().partitions().iter() {
        let mut next = 0;
        while next < p.high_watermark() {
            let batch = p.read(next, 1 << 20, 10_000).unwrap();
            next = batch.last().unwrap().offset + 1;
            for r in batch {
                assert_eq!(header(&r, kappalog::stream::EMIT_HEADER_VIEW), "payments_per_user");
                assert_eq!(header(&r, kappalog::stream::EMIT_HEADER_VERSION), "1");
                sequences.push(header(&r, kappalog::stream::EMIT_HEADER_SEQUENCE).parse::<u64>().unwrap());
                let key: String = serde_json::from_slice(&r.key.clone().unwrap())
                    .unwrap_or_else(|_| String::from_utf8(r.key.clone().unwrap().to_vec()).unwrap());
                let v: Value = serde_json::from_slice(r.value.as_deref().unwrap()).unwrap();
                counts.entry(key).or_default().push(v["n"].as_u64().unwrap());
            }
        }
    }
    let total: u64 = per_user.values().sum();
    assert!(total >= 4 * 2_000, "the rounds produced: {total}");
    sequences.sort_unstable();
    let expected_sequences: Vec<u64> = (0..total).collect();
    assert!(
        sequences == expected_sequences,
        "sequences: {} emitted for {total} inputs, not 0..{total} once each",
        sequences.len()
    );
    for (user, n) in &per_user {
        let mut got = counts.remove(user).unwrap_or_default();
        got.sort_unstable();
        assert_eq!(got, (1..=*n).collect::<Vec<_>>(), "user {user}: each count from 1 to {n} exactly once");
    }
    assert!(counts.is_empty(), "emits for keys with no input: {counts:?}");
}
