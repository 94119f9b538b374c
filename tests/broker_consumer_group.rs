//! Two consumer instances in one group split a 4-partition topic and together read every record
//! exactly once; committed offsets survive the instances; an idle instance expires and its
//! partitions move to the other.

mod broker_common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use broker_common::{Broker, Http, JSON_V2};
use serde_json::{json, Value};

const RECORDS: usize = 400;

fn new_instance(http: &Http, group: &str, name: &str, extra: Value) -> String {
    let mut body =
        json!({"name": name, "format": "json", "auto.offset.reset": "earliest", "auto.commit.enable": "false"});
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    let (s, r) = http.post(&format!("/consumers/{group}"), &body);
    assert_eq!(s, 200, "{r}");
    assert!(r["base_uri"].as_str().unwrap().ends_with(&format!("/consumers/{group}/instances/{name}")));
    format!("/consumers/{group}/instances/{name}")
}

fn assigned(http: &Http, base: &str) -> BTreeSet<u64> {
    let (s, a) = http.get(&format!("{base}/assignments"));
    assert_eq!(s, 200, "{a}");
    a["partitions"].as_array().unwrap().iter().map(|p| p["partition"].as_u64().unwrap()).collect()
}

fn poll(http: &Http, base: &str) -> Vec<Value> {
    let (s, recs) = http.get_accept(&format!("{base}/records?timeout=200"), JSON_V2);
    assert_eq!(s, 200, "{recs}");
    recs.as_array().unwrap().clone()
}

#[test]
fn two_instances_split_partitions_and_read_everything_once() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(dir.path(), &[]);
    let http = broker.client();
    http.create_topic("clicks", 4, json!({}));
    for chunk in (0..RECORDS).collect::<Vec<_>>().chunks(50) {
        let records: Vec<Value> = chunk.iter().map(|i| json!({"key": format!("user-{i}"), "value": i})).collect();
        let (s, r) = http.post_as("/topics/clicks", JSON_V2, &json!({ "records": records }));
        assert_eq!(s, 200, "{r}");
    }

    let a = new_instance(&http, "readers", "a", json!({}));
    let b = new_instance(&http, "readers", "b", json!({}));
    for base in [&a, &b] {
        let (s, r) = http.post(&format!("{base}/subscription"), &json!({"topics": ["clicks"]}));
        assert_eq!(s, 204, "{r}");
    }
    let (pa, pb) = (assigned(&http, &a), assigned(&http, &b));
    assert_eq!(pa.len(), 2, "{pa:?} {pb:?}");
    assert_eq!(pb.len(), 2, "{pa:?} {pb:?}");
    assert!(pa.is_disjoint(&pb));

    let mut seen: Vec<u64> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while seen.len() < RECORDS {
        assert!(Instant::now() < deadline, "read {} of {RECORDS}", seen.len());
        for (base, mine) in [(&a, &pa), (&b, &pb)] {
            for r in poll(&http, base) {
                assert!(mine.contains(&r["partition"].as_u64().unwrap()), "{r} not from {base}'s partitions");
                seen.push(r["value"].as_u64().unwrap());
            }
            let (s, _) = http.call("POST", &format!("{base}/offsets"), None, None);
            assert_eq!(s, 204);
        }
    }
    seen.sort_unstable();
    assert_eq!(seen, (0..RECORDS as u64).collect::<Vec<_>>(), "every record exactly once");
    assert!(poll(&http, &a).is_empty() && poll(&http, &b).is_empty());

    // The group shows no lag once everything is committed.
    let (s, g) = http.get("/groups/readers");
    assert_eq!(s, 200, "{g}");
    assert_eq!(g["members"].as_array().unwrap().len(), 2);
    for p in g["partitions"].as_array().unwrap() {
        assert_eq!(p["lag"], 0, "{p}");
    }

    // A new instance after both leave starts from the committed offsets: nothing to read.
    for base in [&a, &b] {
        assert_eq!(http.delete(base).0, 204);
    }
    assert_eq!(http.get(&format!("{a}/assignments")).1["error_code"], 40403);
    let c = new_instance(&http, "readers", "c", json!({}));
    http.post(&format!("{c}/subscription"), &json!({"topics": ["clicks"]}));
    assert!(poll(&http, &c).is_empty());
}

#[test]
fn an_idle_instance_expires_and_its_partitions_move() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(dir.path(), &[]);
    let http = broker.client();
    http.create_topic("t", 4, json!({}));
    let idle = new_instance(&http, "g", "idle", json!({"consumer.instance.timeout.ms": 300}));
    let busy = new_instance(&http, "g", "busy", json!({}));
    for base in [&idle, &busy] {
        assert_eq!(http.post(&format!("{base}/subscription"), &json!({"topics": ["t"]})).0, 204);
    }
    assert_eq!(assigned(&http, &busy).len(), 2);
    // Only `busy` keeps talking; within a bounded time `idle` is removed and `busy` owns all four.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if assigned(&http, &busy).len() == 4 && http.get(&format!("{idle}/assignments")).1["error_code"] == 40403 {
            break;
        }
        assert!(Instant::now() < deadline, "the idle instance was never removed");
        std::thread::sleep(Duration::from_millis(50));
    }
}
