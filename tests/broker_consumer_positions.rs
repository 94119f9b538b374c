//! Consumer instance positions: manual assignment, seek to an offset / the beginning / the end,
//! pattern subscriptions that pick up new topics, and committed offsets as Confluent reports them.

mod broker_common;

use broker_common::{Broker, Http, JSON_V2};
use serde_json::{json, Value};

fn values(http: &Http, base: &str) -> Vec<i64> {
    let (s, recs) = http.get_accept(&format!("{base}/records?timeout=500"), JSON_V2);
    assert_eq!(s, 200, "{recs}");
    recs.as_array().unwrap().iter().map(|r| r["value"].as_i64().unwrap()).collect()
}

#[test]
fn seek_assign_and_pattern() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(dir.path(), &[]);
    let http = broker.client();
    http.create_topic("a", 1, json!({}));
    let records: Vec<Value> = (0..10).map(|i| json!({"value": i})).collect();
    assert_eq!(http.post_as("/topics/a", JSON_V2, &json!({ "records": records })).0, 200);

    // Manual assignment, latest by default: nothing until a seek.
    assert_eq!(http.post("/consumers/m", &json!({"name": "x", "format": "json"})).0, 200);
    let x = "/consumers/m/instances/x";
    let tp = json!([{"topic": "a", "partition": 0}]);
    assert_eq!(http.post(&format!("{x}/assignments"), &json!({"partitions": tp})).0, 204);
    assert_eq!(http.get(&format!("{x}/assignments")).1, json!({"partitions": tp}));
    assert!(values(&http, x).is_empty());
    assert_eq!(
        http.post(&format!("{x}/positions"), &json!({"offsets": [{"topic": "a", "partition": 0, "offset": 7}]})).0,
        204
    );
    assert_eq!(values(&http, x), vec![7, 8, 9]);
    assert_eq!(http.post(&format!("{x}/positions/beginning"), &json!({"partitions": tp})).0, 204);
    assert_eq!(values(&http, x), (0..10).collect::<Vec<_>>());
    assert_eq!(http.post(&format!("{x}/positions/end"), &json!({"partitions": tp})).0, 204);
    assert!(values(&http, x).is_empty());
    // A subscription on top of a manual assignment is refused.
    let (s, b) = http.post(&format!("{x}/subscription"), &json!({"topics": ["a"]}));
    assert_eq!((s, b["error_code"].clone()), (409, json!(40903)));
    // A seek outside the log is refused.
    let (s, _) =
        http.post(&format!("{x}/positions"), &json!({"offsets": [{"topic": "a", "partition": 0, "offset": 11}]}));
    assert_eq!(s, 422);
    // Commit (the last processed offset) and read it back as Kafka's next offset.
    let (s, b) =
        http.post(&format!("{x}/offsets"), &json!({"partitions": [{"topic": "a", "partition": 0, "offset": 4}]}));
    assert_eq!(s, 204, "{b}");
    let (s, c) = http.get(&format!("{x}/offsets"));
    assert_eq!(s, 200);
    assert_eq!(c["offsets"][0]["offset"], 5, "{c}");

    // Auto-commit (the default): what was fetched is committed at the next fetch and on delete.
    assert_eq!(
        http.post("/consumers/auto", &json!({"name": "z", "format": "json", "auto.offset.reset": "earliest"})).0,
        200
    );
    let z = "/consumers/auto/instances/z";
    assert_eq!(http.post(&format!("{z}/subscription"), &json!({"topics": ["a"]})).0, 204);
    assert_eq!(values(&http, z).len(), 10);
    assert_eq!(http.delete(z).0, 204);
    let (s, g) = http.get("/groups/auto");
    assert_eq!(s, 200, "{g}");
    assert_eq!(g["partitions"][0]["committed"], 10, "{g}");
    assert_eq!(g["partitions"][0]["lag"], 0, "{g}");

    // Pattern subscription: picks up a topic created afterwards.
    assert_eq!(
        http.post("/consumers/p", &json!({"name": "y", "format": "json", "auto.offset.reset": "earliest"})).0,
        200
    );
    let y = "/consumers/p/instances/y";
    assert_eq!(http.post(&format!("{y}/subscription"), &json!({"topic_pattern": "ev-.*"})).0, 204);
    assert!(values(&http, y).is_empty());
    http.create_topic("ev-1", 1, json!({}));
    assert_eq!(http.post_as("/topics/ev-1", JSON_V2, &json!({"records": [{"value": 42}]})).0, 200);
    assert_eq!(values(&http, y), vec![42]);
    let (_, sub) = http.get(&format!("{y}/subscription"));
    assert_eq!(sub["topics"], json!(["ev-1"]), "{sub}");
    assert_eq!(http.delete(&format!("{y}/subscription")).0, 204);
    assert_eq!(http.get(&format!("{y}/assignments")).1, json!({"partitions": []}));
}
