//! A fetch that waits (long-poll) answers only with records of partitions its instance still owns
//! when it answers. Here the instance loses its membership during the wait (a forced reset evicts
//! it), another instance takes the partition, and records arrive: no record goes to both.

mod broker_common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use broker_common::{Broker, Http, JSON_V2};
use serde_json::{json, Value};

fn offsets(recs: &Value) -> Vec<u64> {
    recs.as_array().unwrap().iter().map(|r| r["offset"].as_u64().unwrap()).collect()
}

fn in_flight(http: &Http) -> f64 {
    let text = http.client.get(format!("{}/metrics", http.base)).send().unwrap().text().unwrap();
    let line = text.lines().find(|l| l.starts_with("kappalog_http_requests_in_flight ")).expect("the gauge");
    line.rsplit(' ').next().unwrap().parse().unwrap()
}

#[test]
fn records_of_a_partition_revoked_during_the_wait_are_not_returned() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(dir.path(), &[]);
    let http = broker.client();
    http.create_topic("t", 1, json!({}));
    let new = |name: &str| {
        let body =
            json!({"name": name, "format": "json", "auto.offset.reset": "earliest", "auto.commit.enable": false});
        assert_eq!(http.post("/consumers/g", &body).0, 200);
        let base = format!("/consumers/g/instances/{name}");
        assert_eq!(http.post(&format!("{base}/subscription"), &json!({"topics": ["t"]})).0, 204);
        base
    };
    let a = new("a");

    // a waits for records (the topic is empty).
    let url = broker.url.clone();
    let waiting = std::thread::spawn(move || {
        Http::new(&url).get_accept("/consumers/g/instances/a/records?timeout=8000", JSON_V2)
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    while in_flight(&http) < 2.0 {
        assert!(Instant::now() < deadline, "the fetch never started");
        std::thread::sleep(Duration::from_millis(10));
    }

    // While it waits, a forced reset evicts it, b joins, records arrive.
    let reset = json!({"topic": "t", "strategy": "to_earliest", "dry_run": false, "force": true});
    let (s, plan) = http.post("/groups/g/reset-offsets", &reset);
    assert_eq!(s, 200, "{plan}");
    let b = new("b");
    let records: Vec<Value> = (0..10).map(|i| json!({"value": i})).collect();
    assert_eq!(http.post_as("/topics/t", JSON_V2, &json!({ "records": records })).0, 200);

    let (s, first) = waiting.join().unwrap();
    assert_eq!(s, 200, "{first}");
    // Then both poll (at least once) until every record came to one of them (a may own the
    // partition again).
    let mut got: [Vec<u64>; 2] = [offsets(&first), Vec::new()];
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        for (i, base) in [&a, &b].into_iter().enumerate() {
            let (s, recs) = http.get_accept(&format!("{base}/records?timeout=200"), JSON_V2);
            assert_eq!(s, 200, "{recs}");
            got[i].extend(offsets(&recs));
        }
        if got[0].len() + got[1].len() >= 10 {
            break;
        }
        assert!(Instant::now() < deadline, "a got {:?}, b got {:?}", got[0], got[1]);
    }
    let (a_set, b_set): (BTreeSet<u64>, BTreeSet<u64>) =
        (got[0].iter().copied().collect(), got[1].iter().copied().collect());
    assert!(a_set.is_disjoint(&b_set), "a got {a_set:?} and b got {b_set:?}");
    assert_eq!(a_set.union(&b_set).count(), 10);
}
