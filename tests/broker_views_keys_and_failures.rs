//! Against a real broker: a view keyed by the record key answers the key as it was produced
//! (`"u1"` at `/keys/u1`, found by `?prefix=u`); a view keyed by a value field emits JSON keys, so
//! its emit topic reads back in the JSON format; a view whose source topic is deleted shows as
//! failed in `GET /views/{v}`, `/metrics` and `/health`, and again after a restart.

mod broker_common;
mod broker_views_common;

use broker_common::{Broker, JSON_V2};
use broker_views_common::*;
use serde_json::{json, Value};

#[test]
fn record_keys_as_produced_json_emit_keys_and_failed_views() {
    let dir = tempfile::tempdir().unwrap();
    let mut broker = Broker::start(dir.path(), &[]);
    let http = broker.client();
    for t in ["clicks", "out", "gone"] {
        http.create_topic(t, 1, json!({}));
    }
    let specs = [
        json!({"name": "per_key", "source": {"topics": ["clicks"]}, "aggregates": {"n": {"op": "count"}}}),
        json!({"name": "per_user", "source": {"topics": ["clicks"]}, "key": "/user",
               "aggregates": {"n": {"op": "count"}}, "emit": {"topic": "out", "on": "update"}}),
        json!({"name": "doomed", "source": {"topics": ["gone"]}, "aggregates": {"n": {"op": "count"}}}),
    ];
    for spec in &specs {
        let (s, b) = http.post("/views", spec);
        assert_eq!(s, 201, "{b}");
    }
    let records = vec![
        ("u1".to_string(), json!({"user": "u1"})),
        ("u1".to_string(), json!({"user": 42})),
        ("u2".to_string(), json!({"user": "u1"})),
    ];
    produce_json(&http, "clicks", &records);
    wait_caught_up(&http, "per_key", 1);
    wait_caught_up(&http, "per_user", 1);

    // The record key as produced: "u1" is u1.
    let (s, v) = http.get("/views/per_key/keys/u1");
    assert_eq!((s, &v), (200, &json!({"key": "u1", "value": {"n": 2}})), "{v}");
    let (s, page) = http.get("/views/per_key/keys?prefix=u");
    assert_eq!(s, 200, "{page}");
    let keys: Vec<&str> = page.as_array().unwrap().iter().map(|k| k["key"].as_str().unwrap()).collect();
    assert_eq!(keys, ["u1", "u2"]);
    let (s, v) = http.get("/views/per_user/keys/42");
    assert_eq!((s, &v["value"]), (200, &json!({"n": 1})), "{v}");

    // The emit topic reads back as JSON: keys are the JSON of the key field's value.
    let got: Vec<(Value, Value)> = wait_for("three emitted records", VIEW_WAIT, || {
        let (s, recs) = http.get_accept("/topics/out/partitions/0/records?offset=0&timeout=0", JSON_V2);
        assert_eq!(s, 200, "a JSON fetch of the emit topic: {recs}");
        let got: Vec<(Value, Value)> =
            recs.as_array().unwrap().iter().map(|r| (r["key"].clone(), r["value"].clone())).collect();
        if got.len() >= 3 {
            Ok(got)
        } else {
            Err(format!("{got:?}"))
        }
    });
    let want = [(json!("u1"), json!({"n": 1})), (json!(42), json!({"n": 1})), (json!("u1"), json!({"n": 2}))];
    assert_eq!(got, want);
    // And so does a JSON consumer of the emit topic, past its first record.
    let body = json!({"name": "c", "format": "json", "auto.offset.reset": "earliest"});
    let (s, r) = http.post("/consumers/readers", &body);
    assert_eq!(s, 200, "{r}");
    let base = "/consumers/readers/instances/c";
    let (s, r) = http.post(&format!("{base}/subscription"), &json!({"topics": ["out"]}));
    assert_eq!(s, 204, "{r}");
    let mut consumed: Vec<(Value, Value)> = Vec::new();
    wait_for("a JSON consumer reads the three emitted records", VIEW_WAIT, || {
        let (s, recs) = http.get_accept(&format!("{base}/records?timeout=200"), JSON_V2);
        assert_eq!(s, 200, "a JSON consumer of the emit topic: {recs}");
        consumed.extend(recs.as_array().unwrap().iter().map(|r| (r["key"].clone(), r["value"].clone())));
        if consumed.len() >= 3 {
            Ok(())
        } else {
            Err(format!("{consumed:?}"))
        }
    });
    assert_eq!(consumed, want);

    // A source topic deleted under a view: failed, everywhere.
    let (s, b) = http.delete("/topics/gone");
    assert!(s == 200 || s == 204, "{s} {b}");
    let failed = |http: &broker_common::Http| {
        wait_for("view doomed failed", VIEW_WAIT, || {
            let (s, st) = http.get("/views/doomed");
            if s == 200 && st["state"] == "failed" {
                Ok(st)
            } else {
                Err(format!("{s} {st}"))
            }
        })
    };
    for round in ["live", "after a restart"] {
        let http = broker.client();
        let st = failed(&http);
        assert!(st["error"].as_str().unwrap().contains(r#"source topic "gone""#), "{round}: {st}");
        let (s, h) = http.get("/health");
        assert_eq!((s, &h["status"]), (200, &json!("degraded")), "{round}: {h}");
        assert_eq!(h["failed_views"].as_array().unwrap().len(), 1, "{round}: {h}");
        assert_eq!(h["failed_views"][0]["view"], "doomed", "{round}: {h}");
        let metrics = http.client.get(format!("{}/metrics", http.base)).send().unwrap().text().unwrap();
        assert!(metrics.contains("kappalog_view_failed{view=\"doomed\"} 1"), "{round}: {metrics}");
        assert!(metrics.contains("kappalog_view_failed{view=\"per_key\"} 0"), "{round}: {metrics}");
        let (s, st) = http.get("/views/per_key");
        assert_eq!((s, &st["state"]), (200, &json!("running")), "{round}: {st}");
        if round == "live" {
            assert!(broker.terminate().success());
            broker = Broker::start(dir.path(), &[]);
        }
    }
    // Deleting the failed view makes the broker healthy again.
    let http = broker.client();
    let (s, b) = http.delete("/views/doomed");
    assert_eq!(s, 204, "{b}");
    let (s, h) = http.get("/health");
    assert_eq!((s, &h["status"]), (200, &json!("ok")), "{h}");
}
