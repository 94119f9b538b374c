//! The broker checks its input at the edge: a topic config that overflows an i64 clock is a 422
//! naming it, `reset-offsets` with an empty `partitions` list is a 422 naming the field, `Accept`
//! is read with its q-values, a consumer instance's timeout has a minimum, and `serve` refuses a `consumer_instance_timeout_ms` below its minimum.

mod broker_common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use broker_common::{Broker, BINARY_V2, JSON_V2};
use serde_json::json;

#[test]
fn overflowing_configs_empty_partition_lists_and_q_values() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(dir.path(), &[]);
    let http = broker.client();
    let (s, b) =
        http.post("/topics", &json!({"name": "t", "partitions": 1, "configs": {"segment.ms": "9223372036854775808"}}));
    assert_eq!(s, 422, "{b}");
    assert!(b["message"].as_str().unwrap().contains("segment_ms"), "{b}");
    http.create_topic("t", 1, json!({}));
    let (s, b) = http.call(
        "PUT",
        "/topics/t/configs",
        Some("application/json"),
        Some(json!({"segment.ms": "18446744073709551615"}).to_string().into_bytes()),
    );
    assert_eq!(s, 422, "{b}");
    assert!(b["message"].as_str().unwrap().contains("segment_ms"), "{b}");

    assert_eq!(http.post_as("/topics/t", JSON_V2, &json!({"records": [{"value": {"a": 1}}]})).0, 200);
    let (s, b) =
        http.post("/groups/g/reset-offsets", &json!({"topic": "t", "partitions": [], "strategy": "to_earliest"}));
    assert_eq!(s, 422, "{b}");
    assert!(b["message"].as_str().unwrap().contains("partitions"), "{b}");

    // JSON is preferred (q=1 over 0.1), so the value comes back as JSON, not base64.
    let accept = format!("{BINARY_V2};q=0.1, {JSON_V2}");
    let (s, recs) = http.get_accept("/topics/t/partitions/0/records?offset=0&timeout=0", &accept);
    assert_eq!((s, recs[0]["value"].clone()), (200, json!({"a": 1})), "{recs}");
    let accept = format!("{JSON_V2};q=0, {BINARY_V2}");
    let (s, recs) = http.get_accept("/topics/t/partitions/0/records?offset=0&timeout=0", &accept);
    assert_eq!((s, recs[0]["value"].clone()), (200, json!("eyJhIjoxfQ==")), "{recs}");

    // A consumer instance whose timeout is below the minimum is refused, naming the field.
    let (s, b) = http.post("/consumers/g", &json!({"name": "c", "consumer.instance.timeout.ms": 0}));
    assert_eq!(s, 422, "{b}");
    assert!(b["message"].as_str().unwrap().contains("consumer.instance.timeout.ms"), "{b}");
    assert_eq!(http.post("/consumers/g", &json!({"name": "c", "consumer.instance.timeout.ms": 100})).0, 200);
}

#[test]
fn serve_refuses_a_consumer_instance_timeout_below_its_minimum() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("kappalog.toml");
    std::fs::write(&config, "consumer_instance_timeout_ms = 0\n").unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_kappalog"))
        .args(["serve", "--listen", "127.0.0.1:0", "--config", config.to_str().unwrap(), "--data-dir"])
        .env("KAPPALOG_KAFKA_LISTEN", "off")
        .arg(dir.path().join("data"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("serve ran with consumer_instance_timeout_ms = 0");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(!status.success());
    assert!(stderr.contains("consumer_instance_timeout_ms"), "{stderr}");
}
