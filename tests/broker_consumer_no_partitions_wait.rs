//! A fetch of an instance that owns no partitions waits up to its timeout instead of returning
//! at once (clients would poll in a loop), and returns early once partitions come to it: a topic
//! that its pattern matches is created, or the member that owned the partition leaves.

mod broker_common;

use std::time::{Duration, Instant};

use broker_common::{Broker, Http, JSON_V2};
use serde_json::{json, Value};

fn instance(http: &Http, name: &str, subscription: Value) -> String {
    let body = json!({"name": name, "format": "json", "auto.offset.reset": "earliest"});
    assert_eq!(http.post("/consumers/g", &body).0, 200);
    let base = format!("/consumers/g/instances/{name}");
    let (s, r) = http.post(&format!("{base}/subscription"), &subscription);
    assert_eq!(s, 204, "{r}");
    base
}

/// Starts a fetch of `base` with `timeout_ms` on another thread; joins to (status, body, elapsed).
fn fetch_in_background(http: &Http, base: &str, timeout_ms: u64) -> std::thread::JoinHandle<(u16, Value, Duration)> {
    let (url, path) = (http.base.clone(), format!("{base}/records?timeout={timeout_ms}"));
    std::thread::spawn(move || {
        let started = Instant::now();
        let (s, body) = Http::new(&url).get_accept(&path, JSON_V2);
        (s, body, started.elapsed())
    })
}

fn values(recs: &Value) -> Vec<i64> {
    recs.as_array().unwrap().iter().map(|r| r["value"].as_i64().unwrap()).collect()
}

#[test]
fn without_partitions_a_fetch_waits_its_timeout_or_until_partitions_come() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(dir.path(), &[]);
    let http = broker.client();

    // A pattern that matches nothing: the fetch takes its whole timeout.
    let p = instance(&http, "p", json!({"topic_pattern": "ev-.*"}));
    let (s, recs, waited) = fetch_in_background(&http, &p, 1_500).join().unwrap();
    assert_eq!((s, recs), (200, json!([])));
    assert!(waited >= Duration::from_millis(1_400), "returned after {waited:?} of a 1.5 s timeout");

    // A matching topic appears while the fetch waits: it returns its record, long before 20 s.
    let waiting = fetch_in_background(&http, &p, 20_000);
    http.create_topic("ev-1", 1, json!({}));
    assert_eq!(http.post_as("/topics/ev-1", JSON_V2, &json!({"records": [{"value": 42}]})).0, 200);
    let (s, recs, waited) = waiting.join().unwrap();
    assert_eq!((s, values(&recs)), (200, vec![42]), "{recs}");
    assert!(waited < Duration::from_secs(15), "{waited:?}");

    // One partition, two members: the one without it gets it when the other leaves.
    http.create_topic("one", 1, json!({}));
    let x = instance(&http, "x", json!({"topics": ["one"]}));
    let y = instance(&http, "y", json!({"topics": ["one"]}));
    let owners: Vec<usize> = [&x, &y]
        .iter()
        .map(|base| http.get(&format!("{base}/assignments")).1["partitions"].as_array().unwrap().len())
        .collect();
    assert_eq!(owners, vec![1, 0]);
    let waiting = fetch_in_background(&http, &y, 20_000);
    assert_eq!(http.delete(&x).0, 204);
    assert_eq!(http.post_as("/topics/one", JSON_V2, &json!({"records": [{"value": 7}]})).0, 200);
    let (s, recs, waited) = waiting.join().unwrap();
    assert_eq!((s, values(&recs)), (200, vec![7]), "{recs}");
    assert!(waited < Duration::from_secs(15), "{waited:?}");
}
