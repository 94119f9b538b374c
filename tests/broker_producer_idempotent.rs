//! Idempotent produce over HTTP: `POST /producers`, a retried request answered with the first
//! attempt's offsets and not written again, and the errors (out-of-order sequence, fenced epoch,
//! bad producer fields, a producer's request without a partition on a topic of several).

mod broker_common;

use broker_common::Broker;
use serde_json::{json, Value};

fn produce(http: &broker_common::Http, path: &str, values: &[&str], producer: Value) -> (u16, Value) {
    let records: Vec<Value> = values.iter().map(|v| json!({ "value": v })).collect();
    http.post(path, &json!({ "records": records, "producer": producer }))
}

#[test]
fn retried_produce_requests_are_written_once() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(dir.path(), &[]);
    let http = broker.client();
    http.create_topic("t", 2, json!({}));
    let (s, p) = http.post("/producers", &json!({}));
    assert_eq!(s, 200, "{p}");
    let (id, epoch) = (p["producer_id"].as_i64().unwrap(), p["producer_epoch"].as_i64().unwrap());
    let (s, other) = http.post("/producers", &json!({}));
    assert_eq!(s, 200);
    assert_ne!(other["producer_id"], p["producer_id"]);

    let path = "/topics/t/partitions/1";
    let producer = |sequence: i64| json!({"id": id, "epoch": epoch, "sequence": sequence});
    let (s, first) = produce(&http, path, &["a", "b"], producer(0));
    assert_eq!(s, 200, "{first}");
    let (s, again) = produce(&http, path, &["a", "b"], producer(0));
    assert_eq!((s, &again["offsets"]), (200, &first["offsets"]));
    let (s, next) = produce(&http, path, &["c"], producer(2));
    assert_eq!((s, next["offsets"][0]["offset"].as_u64()), (200, Some(2)));

    let (s, e) = produce(&http, path, &["d"], producer(7));
    assert_eq!((s, e["error_code"].as_i64()), (409, Some(40920)), "{e}");
    assert!(e["message"].as_str().unwrap().contains("expected base sequence 3"), "{e}");
    let (s, e) = produce(&http, path, &["d"], json!({"id": id, "epoch": epoch + 1, "sequence": 0}));
    assert_eq!(s, 200, "a newer epoch starting at 0: {e}");
    let (s, e) = produce(&http, path, &["d"], producer(3));
    assert_eq!((s, e["error_code"].as_i64()), (409, Some(40921)), "{e}");
    let (s, e) = produce(&http, path, &["d"], json!({"id": -5, "epoch": 0, "sequence": 0}));
    assert_eq!((s, e["error_code"].as_i64()), (422, Some(42220)), "{e}");
    let (s, e) = produce(&http, path, &["d"], json!({"id": id, "epoch": 0}));
    assert_eq!((s, e["error_code"].as_i64()), (422, Some(42203)), "{e}");
    assert!(e["message"].as_str().unwrap().contains("producer"), "{e}");
    let (s, e) = produce(&http, "/topics/t", &["d"], producer(3));
    assert_eq!((s, e["error_code"].as_i64()), (422, Some(42221)), "{e}");

    let (s, o) = http.get("/topics/t/partitions/1/offsets");
    assert_eq!((s, o["end_offset"].as_u64()), (200, Some(4)), "a b c d: the retry and the refused ones wrote nothing");
}
