//! Bad input gets a clear Confluent-shaped error naming what was wrong, and writes nothing.

mod broker_common;

use broker_common::{Broker, BINARY_V2, JSON_V2};
use serde_json::json;

fn end_offsets(http: &broker_common::Http, topic: &str, partitions: u32) -> Vec<u64> {
    (0..partitions)
        .map(|p| http.get(&format!("/topics/{topic}/partitions/{p}/offsets")).1["end_offset"].as_u64().unwrap())
        .collect()
}

#[test]
fn bad_requests_are_rejected_with_their_reason_and_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(dir.path(), &["--body-bytes-max", "4096"]);
    let http = broker.client();
    http.create_topic("t", 2, json!({"max.message.bytes": 200}));
    http.create_topic("c", 1, json!({"cleanup.policy": "compact"}));
    let (s, _) = http.post_as("/topics/t/partitions/0", JSON_V2, &json!({"records": [{"value": "seed"}]}));
    assert_eq!(s, 200);
    let before = end_offsets(&http, "t", 2);

    let check =
        |what: &str, (status, body): (u16, serde_json::Value), want_status: u16, want_code: i64, needle: &str| {
            assert_eq!(status, want_status, "{what}: {body}");
            assert_eq!(body["error_code"], want_code, "{what}: {body}");
            let msg = body["message"].as_str().unwrap_or_default();
            assert!(msg.contains(needle), "{what}: message {msg:?} does not name {needle:?}");
        };

    // One record over max.message.bytes rejects the whole request (both partitions untouched).
    let big = "x".repeat(300);
    check(
        "record over the limit",
        http.post_as(
            "/topics/t",
            JSON_V2,
            &json!({"records": [{"value": "ok", "partition": 0}, {"value": big, "partition": 1}]}),
        ),
        422,
        42202,
        "max_message_bytes",
    );
    check(
        "body over the limit",
        http.post_as("/topics/t", JSON_V2, &json!({"records": [{"value": "y".repeat(5000)}]})),
        413,
        41300,
        "",
    );
    check(
        "malformed JSON",
        http.call("POST", "/topics/t", Some(JSON_V2), Some(b"{\"records\": [".to_vec())),
        422,
        42203,
        "malformed",
    );
    check(
        "wrong field type",
        http.post_as("/topics/t", JSON_V2, &json!({"records": [{"value": 1}, {"value": 2, "partition": "one"}]})),
        422,
        42203,
        "records[1].partition",
    );
    check(
        "invalid base64",
        http.post_as("/topics/t", BINARY_V2, &json!({"records": [{"value": "not base64!"}]})),
        422,
        42203,
        "records[0].value",
    );
    check("no records", http.post_as("/topics/t", JSON_V2, &json!({"records": []})), 422, 42203, "records");
    check(
        "keyless on compacted",
        http.post_as("/topics/c", JSON_V2, &json!({"records": [{"value": 1}]})),
        422,
        42202,
        "key",
    );
    check(
        "wrong content type",
        http.call("POST", "/topics/t", Some("text/plain"), Some(b"hi".to_vec())),
        415,
        41500,
        "content type",
    );
    check("invalid topic name", http.post("/topics", &json!({"name": "a/b"})), 422, 42206, "a/b");
    check(
        "bad config",
        http.post("/topics", &json!({"name": "n", "configs": {"retention.ms": "soon"}})),
        422,
        42206,
        "retention.ms",
    );
    check(
        "unknown topic",
        http.post_as("/topics/nope", JSON_V2, &json!({"records": [{"value": 1}]})),
        404,
        40401,
        "nope",
    );
    check(
        "unknown partition",
        http.post_as("/topics/t/partitions/9", JSON_V2, &json!({"records": [{"value": 1}]})),
        404,
        40402,
        "9",
    );
    check(
        "unknown partition (explicit)",
        http.post_as("/topics/t", JSON_V2, &json!({"records": [{"value": 1, "partition": 5}]})),
        404,
        40402,
        "5",
    );
    check("negative offset", http.get("/topics/t/partitions/0/records?offset=-1"), 400, 40000, "offset");
    check("non-numeric offset", http.get("/topics/t/partitions/0/records?offset=abc"), 400, 40000, "offset");
    check("non-numeric partition", http.get("/topics/t/partitions/x/offsets"), 400, 40000, "partition");
    check("offset past the end", http.get("/topics/t/partitions/0/records?offset=99"), 400, 40000, "out of range");
    check("unknown route", http.get("/nothing/here"), 404, 40400, "route");
    check("unknown instance", http.get("/consumers/g/instances/i/records"), 404, 40403, "\"i\"");
    let (s, _) = http.post("/consumers/g", &json!({"name": "i"}));
    assert_eq!(s, 200);
    check("duplicate instance", http.post("/consumers/g", &json!({"name": "i"})), 409, 40902, "exists");
    check("format mismatch", http.get_accept("/consumers/g/instances/i/records", JSON_V2), 406, 40601, "format");
    check("bad subscription", http.post("/consumers/g/instances/i/subscription", &json!({})), 422, 42208, "topic");
    check(
        "bad pattern",
        http.post("/consumers/g/instances/i/subscription", &json!({"topic_pattern": "("})),
        422,
        42208,
        "regular expression",
    );

    check(
        "write to an internal topic",
        http.post_as("/topics/__consumer_offsets", JSON_V2, &json!({"records": [{"key": 1, "value": 1}]})),
        403,
        40301,
        "internal",
    );
    check("delete an internal topic", http.delete("/topics/__consumer_offsets"), 403, 40301, "internal");

    assert_eq!(end_offsets(&http, "t", 2), before, "a rejected request wrote something");
}
