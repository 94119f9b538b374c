//! A header sent with `"value": null` (or no value) comes back as `null`, one sent with `""` as
//! `""`: Kafka's null/empty distinction is kept through the real broker, for produce bodies in
//! the JSON and binary embedded formats, fetched in both formats, by the stateless fetch and by a
//! consumer instance, and after a restart; `kappalog dump` and `kappalog consume
//! --print-headers` show them apart too.

mod broker_common;

use std::time::{Duration, Instant};

use broker_common::{Broker, Http, BINARY_V2, JSON_V2};
use serde_json::{json, Value};

/// The headers sent with every record: null, absent (null), empty, and a value ("a" in base64).
fn headers() -> Value {
    json!([{"name": "n", "value": null}, {"name": "absent"}, {"name": "e", "value": ""}, {"name": "v", "value": "YQ=="}])
}

/// What a fetch must answer for them.
fn expected() -> Value {
    json!([{"name": "n", "value": null}, {"name": "absent", "value": null}, {"name": "e", "value": ""},
           {"name": "v", "value": "YQ=="}])
}

fn produce(http: &Http) {
    let json_body = json!({"records": [{"value": {"x": 1}, "headers": headers()}]});
    let (s, b) = http.post_as("/topics/t", JSON_V2, &json_body);
    assert_eq!(s, 200, "{b}");
    // "eyJ4IjoyfQ==" is {"x":2}: readable in both formats.
    let binary_body = json!({"records": [{"value": "eyJ4IjoyfQ==", "headers": headers()}]});
    let (s, b) = http.post_as("/topics/t", BINARY_V2, &binary_body);
    assert_eq!(s, 200, "{b}");
}

fn check_stateless(http: &Http) {
    for accept in [JSON_V2, BINARY_V2] {
        let (s, recs) = http.get_accept("/topics/t/partitions/0/records?offset=0&timeout=0&include=headers", accept);
        assert_eq!(s, 200, "{recs}");
        let recs = recs.as_array().unwrap();
        assert_eq!(recs.len(), 2, "{recs:?}");
        for r in recs {
            assert_eq!(r["headers"], expected(), "fetched as {accept}: {r}");
        }
    }
}

#[test]
fn null_header_values_stay_null_and_empty_ones_empty() {
    let dir = tempfile::tempdir().unwrap();
    let mut broker = Broker::start(dir.path(), &[]);
    let http = broker.client();
    http.create_topic("t", 1, json!({}));
    produce(&http);
    check_stateless(&http);

    // A consumer instance in each format.
    for (name, format, accept) in [("j", "json", JSON_V2), ("b", "binary", BINARY_V2)] {
        let body = json!({"name": name, "format": format, "auto.offset.reset": "earliest"});
        assert_eq!(http.post(&format!("/consumers/g-{name}"), &body).0, 200);
        let base = format!("/consumers/g-{name}/instances/{name}");
        assert_eq!(http.post(&format!("{base}/subscription"), &json!({"topics": ["t"]})).0, 204);
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut got = Vec::new();
        while got.len() < 2 {
            let (s, recs) = http.get_accept(&format!("{base}/records?timeout=200&include=headers"), accept);
            assert_eq!(s, 200, "{recs}");
            got.extend(recs.as_array().unwrap().iter().cloned());
            assert!(Instant::now() < deadline, "the consumer read {} of 2 records", got.len());
        }
        for r in &got {
            assert_eq!(r["headers"], expected(), "consumed as {format}: {r}");
        }
        assert_eq!(http.delete(&base).0, 204);
    }

    // `kappalog consume --print-headers` prints a null value as `null`, an empty one as nothing.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_kappalog"))
        .args(["consume", "-t", "t", "--print-headers", "--broker", &broker.url])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text} {}", String::from_utf8_lossy(&out.stderr));
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines, ["n:null,absent:null,e:,v:a\t{\"x\":1}", "n:null,absent:null,e:,v:a\t{\"x\":2}"], "{text}");

    assert!(broker.terminate().success());
    // `kappalog dump --records` prints a null value as the bare name, an empty one as `name=`.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_kappalog"))
        .args(["dump", "--records"])
        .arg(dir.path().join("topics/t/0"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert_eq!(text.matches(" headers n absent e= v=a\n").count(), 2, "{text}");
    let broker = Broker::start(dir.path(), &[]);
    check_stateless(&broker.client());
}
