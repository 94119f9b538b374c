//! A broker `kill -9`ed while a Kafka producer (confluent-kafka, acks=all) sends to a topic that
//! fsyncs before acknowledging: after a restart, every acknowledged record is present, once.

mod broker_common;
mod kafka_clients_common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use broker_common::Broker;
use kafka_clients_common::have_python;
use serde_json::json;

/// Acknowledgements to wait for before the kill.
const ACKED_BEFORE_KILL: usize = 500;
const DEADLINE: Duration = Duration::from_secs(60);

#[test]
fn every_acknowledged_record_survives_kill9() {
    if !have_python("confluent_kafka") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let acked = dir.path().join("acked.txt");
    let mut broker = Broker::start(&data, &[]);
    broker.client().create_topic("d", 1, json!({"durability": "sync"}));
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/kafka_clients/clients.py");
    let mut producer = Command::new("python3")
        .args([script, "produce_until_killed", &broker.kafka, "d", acked.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("python3");
    let deadline = Instant::now() + DEADLINE;
    let count = || std::fs::read_to_string(&acked).map_or(0, |s| s.lines().count());
    while count() < ACKED_BEFORE_KILL {
        assert!(Instant::now() < deadline, "only {} acknowledgements in {DEADLINE:?}", count());
        assert!(producer.try_wait().unwrap().is_none(), "the producer exited");
        std::thread::sleep(Duration::from_millis(20));
    }
    broker.kill9();
    let _ = producer.kill();
    let _ = producer.wait();
    let acknowledged: Vec<u64> =
        std::fs::read_to_string(&acked).unwrap().lines().filter_map(|l| l.parse().ok()).collect();
    assert!(acknowledged.len() >= ACKED_BEFORE_KILL);

    let broker = Broker::start(&data, &[]);
    let stored = broker.client().read_all("d", 0);
    let mut counts = std::collections::HashMap::new();
    for (_, value) in &stored {
        let v: u64 = String::from_utf8_lossy(value).parse().expect("a number");
        *counts.entry(v).or_insert(0u32) += 1;
    }
    for v in &acknowledged {
        assert_eq!(counts.get(v), Some(&1), "acknowledged record {v} is present exactly once");
    }
    eprintln!("{} acknowledged, {} stored", acknowledged.len(), stored.len());
}
