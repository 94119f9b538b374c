//! An instance with a fetch in flight is not idle: a long-poll longer than its
//! `consumer.instance.timeout.ms` neither expires the instance nor lets its group session lapse
//! (its partitions stay its own).

mod broker_common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use broker_common::{Broker, Http, JSON_V2};
use serde_json::json;

fn assigned(http: &Http, base: &str) -> BTreeSet<u64> {
    let (s, a) = http.get(&format!("{base}/assignments"));
    assert_eq!(s, 200, "{a}");
    a["partitions"].as_array().unwrap().iter().map(|p| p["partition"].as_u64().unwrap()).collect()
}

#[test]
fn a_long_poll_past_the_instance_timeout_keeps_the_instance_and_its_partitions() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(dir.path(), &[]);
    let http = broker.client();
    http.create_topic("t", 4, json!({}));
    for (name, timeout_ms) in [("a", 1_000), ("b", 300_000)] {
        let body = json!({"name": name, "format": "json", "consumer.instance.timeout.ms": timeout_ms});
        assert_eq!(http.post("/consumers/g", &body).0, 200);
        let (s, r) = http.post(&format!("/consumers/g/instances/{name}/subscription"), &json!({"topics": ["t"]}));
        assert_eq!(s, 204, "{r}");
    }
    let (a, b) = ("/consumers/g/instances/a", "/consumers/g/instances/b");
    let mine = assigned(&http, a);
    assert_eq!((mine.len(), assigned(&http, b).len()), (2, 2));

    // a waits 4 s for records, four times its idle timeout; the reaper runs every second.
    let url = broker.url.clone();
    let started = Instant::now();
    let waiting = std::thread::spawn(move || Http::new(&url).get_accept(&format!("{a}/records?timeout=4000"), JSON_V2));
    while !waiting.is_finished() {
        assert_eq!(assigned(&http, b).len(), 2, "b took a's partitions while a was waiting");
        assert!(started.elapsed() < Duration::from_secs(60), "the fetch never returned");
        std::thread::sleep(Duration::from_millis(100));
    }
    let (s, recs) = waiting.join().unwrap();
    assert_eq!(s, 200, "a expired during its own fetch: {recs}");
    assert_eq!(recs, json!([]));
    assert!(started.elapsed() >= Duration::from_millis(3_900), "it waited: {:?}", started.elapsed());
    assert_eq!(assigned(&http, a), mine, "a is still there and owns what it owned");
}
