//! A consumer instance evicted from its group by a forced reset joins again at its next fetch and
//! reads from the reset offsets, not from the positions it held before (Kafka's consumer after
//! losing its partitions).

mod broker_common;

use broker_common::{Broker, Http, JSON_V2};
use serde_json::{json, Value};

/// Fetches until `n` values came (bounded: each fetch waits at most 500 ms).
fn values(http: &Http, base: &str, n: usize) -> Vec<i64> {
    let mut out = Vec::new();
    for _ in 0..40 {
        let (s, recs) = http.get_accept(&format!("{base}/records?timeout=500"), JSON_V2);
        assert_eq!(s, 200, "{recs}");
        out.extend(recs.as_array().unwrap().iter().map(|r| r["value"].as_i64().unwrap()));
        if out.len() >= n {
            break;
        }
    }
    out
}

#[test]
fn a_forced_reset_makes_a_live_instance_replay() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(dir.path(), &[]);
    let http = broker.client();
    http.create_topic("t", 1, json!({}));
    let records: Vec<Value> = (0..10).map(|i| json!({"value": i})).collect();
    assert_eq!(http.post_as("/topics/t", JSON_V2, &json!({ "records": records })).0, 200);
    let body = json!({"name": "c", "format": "json", "auto.offset.reset": "earliest"});
    assert_eq!(http.post("/consumers/g", &body).0, 200);
    let c = "/consumers/g/instances/c";
    assert_eq!(http.post(&format!("{c}/subscription"), &json!({"topics": ["t"]})).0, 204);
    assert_eq!(values(&http, c, 10), (0..10).collect::<Vec<_>>());
    let (s, b) = http.post(&format!("{c}/offsets"), &json!({}));
    assert_eq!(s, 204, "{b}");

    // The instance is a live member: only a forced reset runs, and it evicts the instance.
    let reset = json!({"topic": "t", "strategy": "to_earliest", "dry_run": false, "force": true});
    let (s, plan) = http.post("/groups/g/reset-offsets", &reset);
    assert_eq!(s, 200, "{plan}");
    assert_eq!(values(&http, c, 10), (0..10).collect::<Vec<_>>(), "every record again");
    assert_eq!(http.delete(c).0, 204);
}
