//! The broker as a real process: create a topic, produce JSON and binary records, read them back
//! (stateless fetch, long-poll), offsets, and a clean SIGTERM shutdown.

mod broker_common;

use std::time::{Duration, Instant};

use broker_common::{Broker, BINARY_V2, JSON_V2};
use serde_json::json;

#[test]
fn produce_then_fetch_then_clean_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let mut broker = Broker::start(dir.path(), &[]);
    let http = broker.client();
    http.create_topic("orders", 3, json!({"retention.ms": "60000"}));
    let (s, topics) = http.get("/topics");
    assert_eq!((s, topics), (200, json!(["orders"])));

    // JSON: values keep their structure; the records of one request to one partition are one batch.
    let (s, resp) = http.post_as(
        "/topics/orders/partitions/1",
        JSON_V2,
        &json!({"records": [{"key": "alice", "value": {"amount": 10}}, {"value": [1, 2, 3]}]}),
    );
    assert_eq!(s, 200, "{resp}");
    assert_eq!(resp["offsets"][0]["partition"], 1);
    assert_eq!(resp["offsets"][0]["offset"], 0);
    assert_eq!(resp["offsets"][1]["offset"], 1);
    assert!(resp["key_schema_id"].is_null());

    let (s, recs) = http.get_accept("/topics/orders/partitions/1/records?offset=0", JSON_V2);
    assert_eq!(s, 200, "{recs}");
    assert_eq!(recs[0]["key"], "alice");
    assert_eq!(recs[0]["value"], json!({"amount": 10}));
    assert_eq!(recs[1]["value"], json!([1, 2, 3]));

    // Binary, with headers and a timestamp, returned on ?include=.
    let (s, resp) = http.post_as(
        "/topics/orders",
        BINARY_V2,
        &json!({"records": [{"value": "aGVsbG8=", "partition": 2, "timestamp": 1234,
                             "headers": [{"name": "h", "value": "dg=="}]}]}),
    );
    assert_eq!(s, 200, "{resp}");
    let (s, recs) =
        http.get_accept("/topics/orders/partitions/2/records?offset=0&include=headers,timestamp", BINARY_V2);
    assert_eq!(s, 200, "{recs}");
    assert_eq!(recs[0]["value"], "aGVsbG8=");
    assert_eq!(recs[0]["timestamp"], 1234);
    assert_eq!(recs[0]["headers"], json!([{"name": "h", "value": "dg=="}]));

    let (s, o) = http.get("/topics/orders/partitions/1/offsets");
    assert_eq!((s, o), (200, json!({"beginning_offset": 0, "end_offset": 2})));

    // Long-poll: a fetch at the end returns as soon as a record arrives.
    let url = broker.url.clone();
    let waiter = std::thread::spawn(move || {
        let http = broker_common::Http::new(&url);
        let started = Instant::now();
        let (s, recs) = http.get_accept("/topics/orders/partitions/0/records?offset=0&timeout=30000", JSON_V2);
        (s, recs, started.elapsed())
    });
    // Whether the waiter is already parked or not, it must return the record, well before its timeout.
    let (s, _) = http.post_as("/topics/orders/partitions/0", JSON_V2, &json!({"records": [{"value": "late"}]}));
    assert_eq!(s, 200);
    let (s, recs, waited) = waiter.join().unwrap();
    assert_eq!(s, 200);
    assert_eq!(recs[0]["value"], "late");
    assert!(waited < Duration::from_secs(30), "the long-poll ran to its timeout");

    // Shutdown finishes in-flight requests: a parked long-poll returns at once (200, empty) instead
    // of holding the shutdown for its 30 s timeout.
    let url = broker.url.clone();
    let parked = std::thread::spawn(move || {
        let http = broker_common::Http::new(&url);
        http.get_accept("/topics/orders/partitions/2/records?offset=1&timeout=30000", JSON_V2)
    });
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let text = http.client.get(format!("{}/metrics", http.base)).send().unwrap().text().unwrap();
        let in_flight = text.lines().find_map(|l| l.strip_prefix("kappalog_http_requests_in_flight ")).unwrap();
        // This metrics request is one; the parked long-poll the other.
        if in_flight.trim().parse::<u64>().unwrap() >= 2 {
            break;
        }
        assert!(Instant::now() < deadline, "the long-poll never arrived");
        std::thread::yield_now();
    }
    let stopping = Instant::now();
    let status = broker.terminate();
    let (s, recs) = parked.join().unwrap();
    assert_eq!((s, recs), (200, json!([])));
    assert!(stopping.elapsed() < Duration::from_secs(10), "shutdown waited for the long-poll's timeout");
    assert!(status.success(), "exit status {status:?}");
    assert!(dir.path().join("clean-shutdown").exists(), "no clean-shutdown marker after SIGTERM");

    // Everything is there after a restart.
    let broker = Broker::start(dir.path(), &[]);
    let http = broker.client();
    assert_eq!(http.read_all("orders", 1).len(), 2);
    assert_eq!(http.read_all("orders", 0).len(), 1);
}
