//! Specs that do not parse, break a rule or name a missing topic get a 422 (42210) whose message
//! names the field; nothing is created.

mod broker_common;

use broker_common::Broker;
use serde_json::Value;

fn rejected_field(http: &broker_common::Http, method: &str, path: &str, body: &str, field: &str) {
    let (s, e) = http.call(method, path, Some("application/json"), Some(body.as_bytes().to_vec()));
    assert_eq!(s, 422, "{method} {path} {body}: {e}");
    assert_eq!(e["error_code"].as_i64(), Some(42210), "{e}");
    let msg = e["message"].as_str().unwrap();
    assert!(msg.contains(&format!("invalid view spec: {field}:")), "{body}: expected field {field}: {msg}");
}

#[test]
fn bad_specs_get_422_naming_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(dir.path(), &[]);
    let http = broker.client();
    http.create_topic("orders", 1, serde_json::json!({}));
    http.create_topic("orders2", 1, serde_json::json!({}));
    let post = |body: &str, field: &str| rejected_field(&http, "POST", "/views", body, field);
    post(r#"{"name": "v", "source": {"topics": ["orders", "nope"]}}"#, "source.topics[1]");
    post(r#"{"name": "v", "source": {"topics": ["orders"]}, "emit": {"topic": "out"}}"#, "emit.topic");
    post(
        r#"{"name": "v", "source": {"topics": ["orders"]}, "window": {"type": "hopping", "size_ms": 1000, "advance_ms": 0}}"#,
        "window.advance_ms",
    );
    post(
        r#"{"name": "v", "source": {"topics": ["orders"]}, "having": {"any": [{"field": "/n", "op": "gt"}]}}"#,
        "having.any[0].value",
    );
    post(r#"{"name": "v", "source": {"topics": []}}"#, "source.topics");
    // Joins and change-data-capture sources.
    post(
        r#"{"name": "v", "source": {"topics": ["orders"]}, "join": {"table": "nope", "on": "/p", "as": "product"}}"#,
        "join.table",
    );
    post(
        r#"{"name": "v", "source": {"topics": ["orders"]}, "join": {"stream": "nope", "on": "/p", "other_key": "/p", "within_ms": 5, "as": "click"}}"#,
        "join.stream",
    );
    post(
        r#"{"name": "v", "source": {"topics": ["orders"]}, "join": {"table": "orders2", "on": "/product", "as": "product"}}"#,
        "join.as",
    );
    post(
        r#"{"name": "v", "source": {"topics": ["orders"], "format": "debezium"}, "key": "/c", "aggregates": {"m": {"op": "max", "field": "/x"}}}"#,
        "aggregates.m.op",
    );
    post("[]", "(document)");
    post("{not json", "(document)");

    let (s, names) = http.get("/views");
    assert_eq!((s, names), (200, Value::Array(vec![])));

    // A new definition is checked the same way, and must keep the name of the path.
    let (s, b) = http.post("/views", &serde_json::json!({"name": "v", "source": {"topics": ["orders"]}}));
    assert_eq!(s, 201, "{b}");
    rejected_field(&http, "PUT", "/views/v", r#"{"name": "v", "source": {"topics": ["gone"]}}"#, "source.topics[0]");
    rejected_field(&http, "PUT", "/views/v", r#"{"name": "w", "source": {"topics": ["orders"]}}"#, "name");
    let (s, st) = http.get("/views/v");
    assert_eq!((s, st["version"].as_u64()), (200, Some(1)), "{st}");
    let (s, e) = http.call(
        "PUT",
        "/views/nope",
        Some("application/json"),
        Some(br#"{"name": "nope", "source": {"topics": ["orders"]}}"#.to_vec()),
    );
    assert_eq!((s, e["error_code"].as_i64()), (404, Some(40410)), "{e}");
    let (s, e) = http.post("/views/v/rebuild", &serde_json::json!({"from_timestamp": "yesterday"}));
    assert_eq!(s, 422, "{e}");
}
