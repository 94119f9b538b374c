//! Deleting a topic takes its committed offsets with it (as in Kafka): a group reads a topic
//! created again under the name from its beginning, not from the old topic's offsets, and a view
//! over the deleted topic fails visibly instead of mixing old and new records. Produce and
//! compaction racing `DELETE /topics` answer 2xx or 404, never a 5xx, and no error message ever
//! holds a path of the broker's data directory.

mod broker_common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use broker_common::{Broker, Http, JSON_V2};
use serde_json::{json, Value};

fn produce(http: &Http, topic: &str, n: usize) {
    let records: Vec<Value> = (0..n).map(|i| json!({ "value": i })).collect();
    let (s, b) = http.post_as(&format!("/topics/{topic}"), JSON_V2, &json!({ "records": records }));
    assert_eq!(s, 200, "{b}");
}

#[test]
fn a_deleted_topic_takes_its_offsets_and_fails_its_views() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(dir.path(), &[]);
    let http = broker.client();
    http.create_topic("t", 1, json!({}));
    produce(&http, "t", 100);
    let view = json!({"name": "n", "source": {"topics": ["t"]}, "key": "/k", "aggregates": {"n": {"op": "count"}}});
    let (s, b) = http.post("/views", &view);
    assert_eq!(s, 201, "{b}");
    // The group commits all 100 (manual assignment: a commit without members).
    assert_eq!(http.post("/consumers/g", &json!({"name": "a", "format": "json"})).0, 200);
    let a = "/consumers/g/instances/a";
    assert_eq!(http.post(&format!("{a}/assignments"), &json!({"partitions": [{"topic": "t", "partition": 0}]})).0, 204);
    let commit = json!({"offsets": [{"topic": "t", "partition": 0, "offset": 99}]});
    assert_eq!(http.post(&format!("{a}/offsets"), &commit).0, 204);
    assert_eq!(http.delete(a).0, 204);

    assert_eq!(http.delete("/topics/t").0, 204);
    http.create_topic("t", 1, json!({}));
    produce(&http, "t", 150);

    let (s, d) = http.get("/groups/g");
    if s == 200 {
        let stale = d["partitions"].as_array().unwrap().iter().any(|p| p["topic"] == "t" && !p["committed"].is_null());
        assert!(!stale, "the old topic's committed offset is still there: {d}");
    } else {
        assert_eq!(s, 404, "{d}");
    }
    // A member of the group reads the new topic from its beginning.
    let body = json!({"name": "b", "format": "json", "auto.offset.reset": "earliest"});
    assert_eq!(http.post("/consumers/g", &body).0, 200);
    let b = "/consumers/g/instances/b";
    assert_eq!(http.post(&format!("{b}/subscription"), &json!({"topics": ["t"]})).0, 204);
    let deadline = Instant::now() + Duration::from_secs(10);
    let first = loop {
        let (s, recs) = http.get_accept(&format!("{b}/records?timeout=200"), JSON_V2);
        assert_eq!(s, 200, "{recs}");
        if let Some(r) = recs.as_array().unwrap().first() {
            break r["offset"].as_u64().unwrap();
        }
        assert!(Instant::now() < deadline, "the group read nothing of the new topic");
    };
    assert_eq!(first, 0, "the group skipped the new topic's first records");

    // The view over the deleted topic failed, visibly.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (s, st) = http.get("/views/n");
        assert_eq!(s, 200, "{st}");
        if st["state"] == "failed" {
            break;
        }
        assert!(Instant::now() < deadline, "the view did not fail: {st}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn produce_and_compaction_racing_delete_are_not_server_errors() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(dir.path(), &[]);
    let data_dir = std::fs::canonicalize(dir.path()).unwrap().to_string_lossy().into_owned();
    let raw_dir = dir.path().to_string_lossy().into_owned();
    let http = broker.client();
    let config = json!({"segment.bytes": 4096, "cleanup.policy": "compact", "durability": "none"});
    http.create_topic("r", 2, config.clone());
    let stop = Arc::new(AtomicBool::new(false));
    let bad: Arc<Mutex<Vec<String>>> = Arc::default();
    let mut workers = Vec::new();
    for w in 0..3 {
        let (stop, bad, url) = (Arc::clone(&stop), Arc::clone(&bad), broker.url.clone());
        let (data_dir, raw_dir) = (data_dir.clone(), raw_dir.clone());
        workers.push(std::thread::spawn(move || {
            let http = Http::new(&url);
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let (s, b) = if w == 2 && n.is_multiple_of(4) {
                    http.post("/topics/r/compaction", &json!({}))
                } else {
                    let records: Vec<Value> =
                        (0..20).map(|i| json!({"key": format!("k{}", i % 5), "value": "v".repeat(200)})).collect();
                    http.post_as("/topics/r", JSON_V2, &json!({ "records": records }))
                };
                let text = b.to_string();
                if s >= 500 || text.contains(&data_dir) || text.contains(&raw_dir) {
                    bad.lock().unwrap().push(format!("{s} {text}"));
                }
                assert!(s == 200 || s == 404, "{s} {text}");
            }
            n
        }));
    }
    for _ in 0..30 {
        std::thread::sleep(Duration::from_millis(30));
        assert_eq!(http.delete("/topics/r").0, 204);
        http.create_topic("r", 2, config.clone());
    }
    stop.store(true, Ordering::Relaxed);
    let requests: u64 = workers.into_iter().map(|w| w.join().expect("a worker failed")).sum();
    eprintln!("{requests} requests over 30 delete/create cycles");
    assert!(bad.lock().unwrap().is_empty(), "{:?}", bad.lock().unwrap());
}
