//! Real Kafka clients in consumer groups against the real binary on 127.0.0.1 (the scripts in
//! `tests/kafka_clients/`): a kafka-python group consumer commits and a new consumer of the group
//! resumes from the committed offsets; `kappalog groups describe` and `/metrics` show the Kafka
//! group's offsets and lag; an HTTP `reset-offsets to_earliest` makes the next consumer replay
//! everything; two confluent-kafka consumers split a 6-partition topic and, when one leaves, the
//! other takes over every partition; kafkajs and aiokafka group consumers read and commit.
//!
//! The clients come from PyPI and npm (`.ci/run` installs them; kafkajs into `tests/kafka_clients/node_modules`, or
//! where `KAFKAJS_NODE_PATH` says). Without them the tests say so and pass, except under CI
//! (`CI` set, or `KAPPALOG_KAFKA_CLIENTS=required` as `.ci/run` sets), where a missing client fails.

mod broker_common;

use std::path::PathBuf;
use std::process::{Command, Stdio};

use serde_json::{json, Value};

use broker_common::Broker;

/// Whether `python3` can import `module`; under CI a missing one is a failure.
fn python_has(module: &str) -> bool {
    let ok = Command::new("python3")
        .args(["-c", &format!("import {module}")])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        assert!(!clients_required(), "python3 cannot import {module}: .ci/run installs it");
        eprintln!("skipping: python3 cannot import {module} (pip install it to run this test)");
    }
    ok
}

/// Runs a client script (bounded by `timeout`, and by the script's own deadlines) and parses the
/// JSON it prints last.
fn script(name: &str, args: &[&str]) -> Value {
    let path: PathBuf = [env!("CARGO_MANIFEST_DIR"), "tests", "kafka_clients", name].iter().collect();
    let out = Command::new("timeout")
        .arg("150")
        .arg("python3")
        .arg(&path)
        .args(args)
        .stderr(Stdio::inherit())
        .output()
        .expect("run python3");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{name} failed ({}): {stdout}", out.status);
    let last = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(last).unwrap_or_else(|e| panic!("{name}: not JSON ({e}): {stdout}"))
}

/// The `NODE_PATH` holding kafkajs, if node can load it there; under CI a missing one is a failure.
fn kafkajs_node_path() -> Option<String> {
    let path = std::env::var("KAFKAJS_NODE_PATH")
        .unwrap_or_else(|_| format!("{}/tests/kafka_clients/node_modules", env!("CARGO_MANIFEST_DIR")));
    let ok = Command::new("node")
        .args(["-e", "require('kafkajs')"])
        .env("NODE_PATH", &path)
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        assert!(!clients_required(), "node cannot load kafkajs from {path}: .ci/run installs it");
        eprintln!("skipping: node cannot load kafkajs from {path} (cd tests/kafka_clients && npm install --no-save kafkajs@2.2.4)");
    }
    ok.then_some(path)
}

fn produce(broker: &Broker, topic: &str, values: &[(u32, &str)]) {
    let records: Vec<Value> = values.iter().map(|(p, v)| json!({"partition": p, "value": v})).collect();
    let (status, body) = broker.client().post_as(
        &format!("/topics/{topic}"),
        "application/vnd.kafka.json.v2+json",
        &json!({ "records": records }),
    );
    assert_eq!(status, 200, "{body}");
}

/// (partition, offset, value) of each record a script read, sorted.
fn read(v: &Value) -> Vec<(u64, u64, String)> {
    let mut out: Vec<(u64, u64, String)> = v["records"]
        .as_array()
        .expect("records")
        .iter()
        .map(|r| (r[0].as_u64().unwrap(), r[1].as_u64().unwrap(), r[2].as_str().unwrap().to_string()))
        .collect();
    out.sort();
    out
}

fn metrics(broker: &Broker) -> String {
    let c = broker.client();
    c.client.get(format!("{}/metrics", c.base)).send().expect("GET /metrics").text().expect("text")
}

#[test]
fn kafka_python_group_commits_resumes_and_replays_after_an_http_reset() {
    if !python_has("kafka") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(dir.path(), &[]);
    broker.client().create_topic("kp", 3, json!({}));
    produce(&broker, "kp", &[(0, "a"), (1, "b"), (2, "c"), (0, "d"), (1, "e")]);

    let first = read(&script("group_consume_python.py", &[&broker.kafka, "kp", "kp", "5"]));
    assert_eq!(first.len(), 5, "{first:?}");
    let (status, d) = broker.client().get("/groups/kp");
    assert_eq!(status, 200);
    let committed: u64 = d["partitions"].as_array().unwrap().iter().map(|p| p["committed"].as_u64().unwrap()).sum();
    assert_eq!(committed, 5, "{d}");

    // A new consumer of the group (the first one closed) resumes after the committed offsets.
    produce(&broker, "kp", &[(2, "f"), (0, "g")]);
    let m = metrics(&broker);
    assert!(m.contains("kappalog_consumer_group_lag{group=\"kp\",topic=\"kp\",partition=\"0\"} 1"), "{m}");
    let second = read(&script("group_consume_python.py", &[&broker.kafka, "kp", "kp", "2"]));
    // The values were produced as JSON strings.
    assert_eq!(second, vec![(0, 2, "\"g\"".to_string()), (2, 1, "\"f\"".to_string())]);

    // The CLI describes the Kafka group like any other.
    let out = Command::new(env!("CARGO_BIN_EXE_kappalog"))
        .args(["groups", "describe", "kp", "--output", "json"])
        .env("KAPPALOG_BROKER", &broker.url)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && text.contains("\"lag\": 0"), "{text}");

    // HTTP reset to the earliest offsets: the next Kafka consumer replays everything.
    let (status, plan) = broker
        .client()
        .post("/groups/kp/reset-offsets", &json!({"topic": "kp", "strategy": "to_earliest", "dry_run": false}));
    assert_eq!((status, plan["executed"].as_bool()), (200, Some(true)), "{plan}");
    let replay = read(&script("group_consume_python.py", &[&broker.kafka, "kp", "kp", "7", "--no-commit"]));
    let mut all = first.clone();
    all.extend(second);
    all.sort();
    assert_eq!(replay, all);
}

#[test]
fn confluent_kafka_consumers_split_a_topic_and_one_takes_over() {
    if !python_has("confluent_kafka") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(dir.path(), &[]);
    broker.client().create_topic("six", 6, json!({}));
    let v = script("group_split_confluent.py", &[&broker.kafka, "six", "split", "6"]);
    let split = v["split"].as_array().unwrap_or_else(|| panic!("the two consumers never split the partitions: {v}"));
    let (a, b) = (split[0].as_array().unwrap(), split[1].as_array().unwrap());
    assert_eq!((a.len(), b.len()), (3, 3), "{v}");
    assert_eq!(v["after"], json!([0, 1, 2, 3, 4, 5]), "{v}");
}

#[test]
fn kafkajs_group_consumer_reads_and_commits() {
    let Some(node_path) = kafkajs_node_path() else { return };
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(dir.path(), &[]);
    broker.client().create_topic("kj", 2, json!({}));
    produce(&broker, "kj", &[(0, "a"), (1, "b"), (0, "c")]);
    let script: PathBuf =
        [env!("CARGO_MANIFEST_DIR"), "tests", "kafka_clients", "group_consume_kafkajs.js"].iter().collect();
    let out = Command::new("timeout")
        .args(["150", "node"])
        .arg(&script)
        .args([broker.kafka.as_str(), "kj", "kj", "3"])
        .env("NODE_PATH", &node_path)
        .stderr(Stdio::inherit())
        .output()
        .expect("run node");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "kafkajs failed: {stdout}");
    let v: Value = serde_json::from_str(stdout.lines().last().unwrap_or_default()).expect("JSON");
    assert_eq!(read(&v).len(), 3, "{v}");
    let (_, d) = broker.client().get("/groups/kj");
    let committed: Vec<u64> =
        d["partitions"].as_array().unwrap().iter().map(|p| p["committed"].as_u64().unwrap_or(0)).collect();
    assert_eq!(committed, vec![2, 1], "kafkajs committed what it read: {d}");
    assert_eq!(d["kafka"]["protocol_type"], "consumer", "{d}");
}

#[test]
fn aiokafka_group_consumer_reads_and_commits() {
    if !python_has("aiokafka") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(dir.path(), &[]);
    broker.client().create_topic("ai", 2, json!({}));
    produce(&broker, "ai", &[(0, "a"), (1, "b"), (0, "c")]);
    let v = script("group_consume_aiokafka.py", &[&broker.kafka, "ai", "ai", "3"]);
    assert_eq!(read(&v).len(), 3, "{v}");
    let (_, d) = broker.client().get("/groups/ai");
    let committed: Vec<u64> =
        d["partitions"].as_array().unwrap().iter().map(|p| p["committed"].as_u64().unwrap_or(0)).collect();
    assert_eq!(committed, vec![2, 1], "aiokafka committed what it read: {d}");
}

/// Whether a missing client is a failure: under CI (`CI` set) or when `.ci/run` says so
/// (`KAPPALOG_KAFKA_CLIENTS=required`).
fn clients_required() -> bool {
    std::env::var_os("CI").is_some() || std::env::var("KAPPALOG_KAFKA_CLIENTS").is_ok_and(|v| v == "required")
}
