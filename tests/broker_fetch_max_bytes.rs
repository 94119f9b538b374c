//! A fetch returns records up to its `max_bytes` (at least one, so a reader always progresses),
//! for stateless fetches and consumer polls alike, even when the log holds them in one big batch.
//! A record that is not JSON, fetched as JSON, does not hide the records before it: they are
//! returned, and the fetch from it answers a 406 naming its offset, which a consumer seeks past.

mod broker_common;

use broker_common::{Broker, BINARY_V2, JSON_V2};
use serde_json::{json, Value};

fn offsets(recs: &Value) -> Vec<u64> {
    recs.as_array().unwrap_or_else(|| panic!("{recs}")).iter().map(|r| r["offset"].as_u64().unwrap()).collect()
}

#[test]
fn max_bytes_bounds_stateless_fetches_and_consumer_polls() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(dir.path(), &[]);
    let http = broker.client();
    http.create_topic("t", 1, json!({"durability": "none"}));
    // One produce, so one batch of 20,000 values of 1026 bytes (a JSON string of 1024 x).
    let value = "x".repeat(1024);
    let records: Vec<Value> = (0..20_000).map(|_| json!({ "value": value })).collect();
    let (s, b) = http.post_as("/topics/t", JSON_V2, &json!({ "records": records }));
    assert_eq!(s, 200, "{b}");

    let fetch = |query: &str| {
        let (s, recs) = http.get_accept(&format!("/topics/t/partitions/0/records?{query}&timeout=0"), JSON_V2);
        assert_eq!(s, 200, "{recs}");
        offsets(&recs)
    };
    assert_eq!(fetch("offset=0&max_bytes=1000"), vec![0], "at least one record");
    assert_eq!(fetch("offset=5&max_bytes=10000"), (5..14).collect::<Vec<_>>());
    assert_eq!(fetch("offset=0").len(), 1024 * 1024 / 1026, "the default max_bytes, 1 MiB");

    assert_eq!(http.post("/consumers/g", &json!({"name": "c", "format": "json"})).0, 200);
    let c = "/consumers/g/instances/c";
    assert_eq!(http.post(&format!("{c}/assignments"), &json!({"partitions": [{"topic": "t", "partition": 0}]})).0, 204);
    let at = json!({"offsets": [{"topic": "t", "partition": 0, "offset": 100}]});
    assert_eq!(http.post(&format!("{c}/positions"), &at).0, 204);
    let (s, recs) = http.get_accept(&format!("{c}/records?max_bytes=10000&timeout=0"), JSON_V2);
    assert_eq!(s, 200, "{recs}");
    assert_eq!(offsets(&recs), (100..109).collect::<Vec<_>>());
    let (s, recs) = http.get_accept(&format!("{c}/records?max_bytes=1&timeout=0"), JSON_V2);
    assert_eq!((s, offsets(&recs)), (200, vec![109]));
}

#[test]
fn a_record_that_is_not_json_does_not_block_json_readers() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(dir.path(), &[]);
    let http = broker.client();
    http.create_topic("j", 1, json!({}));
    // "1", "2", the bytes ff fe (not JSON), "3": in one batch.
    let records = json!({"records": [{"value": "MQ=="}, {"value": "Mg=="}, {"value": "//4="}, {"value": "Mw=="}]});
    let (s, b) = http.post_as("/topics/j", BINARY_V2, &records);
    assert_eq!(s, 200, "{b}");

    let fetch =
        |offset: u64| http.get_accept(&format!("/topics/j/partitions/0/records?offset={offset}&timeout=0"), JSON_V2);
    let (s, recs) = fetch(0);
    assert_eq!((s, offsets(&recs)), (200, vec![0, 1]), "the records before the bad one");
    let (s, e) = fetch(2);
    assert_eq!((s, e["error_code"].clone()), (406, json!(40610)), "{e}");
    assert!(e["message"].as_str().unwrap().contains("offset 2"), "{e}");
    let (s, recs) = fetch(3);
    assert_eq!((s, offsets(&recs)), (200, vec![3]));
    // As binary, every record reads.
    let (s, recs) = http.get_accept("/topics/j/partitions/0/records?offset=0&timeout=0", BINARY_V2);
    assert_eq!((s, offsets(&recs)), (200, vec![0, 1, 2, 3]));

    // A JSON consumer at the bad record gets the 4xx naming it, and seeks past it.
    assert_eq!(http.post("/consumers/g", &json!({"name": "c", "format": "json"})).0, 200);
    let c = "/consumers/g/instances/c";
    assert_eq!(http.post(&format!("{c}/assignments"), &json!({"partitions": [{"topic": "j", "partition": 0}]})).0, 204);
    let seek = |offset: u64| {
        let at = json!({"offsets": [{"topic": "j", "partition": 0, "offset": offset}]});
        assert_eq!(http.post(&format!("{c}/positions"), &at).0, 204);
    };
    // From the start: the records before the bad one, then the bad one's 4xx.
    seek(0);
    let (s, recs) = http.get_accept(&format!("{c}/records?timeout=0"), JSON_V2);
    assert_eq!((s, offsets(&recs)), (200, vec![0, 1]), "a JSON poll returns the records before the bad one");
    let (s, e) = http.get_accept(&format!("{c}/records?timeout=0"), JSON_V2);
    assert_eq!(s, 406, "{e}");
    seek(2);
    let (s, e) = http.get_accept(&format!("{c}/records?timeout=0"), JSON_V2);
    assert_eq!(s, 406, "{e}");
    assert!(e["message"].as_str().unwrap().contains("offset 2"), "{e}");
    seek(3);
    let (s, recs) = http.get_accept(&format!("{c}/records?timeout=0"), JSON_V2);
    assert_eq!((s, offsets(&recs)), (200, vec![3]));
}
