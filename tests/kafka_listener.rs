//! The Kafka listener's behaviour as a process: its counters in `/metrics`, the connection limit
//! (shared rule with HTTP), the idle timeout, and shutdown answering a parked fetch at once.

mod broker_common;
mod kafka_common;

use std::time::{Duration, Instant};

use broker_common::Broker;
use kafka_common::Conn;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;

fn parked_fetch(topic: &str) -> FetchRequest {
    let mut p = fetch_request::FetchPartition::default();
    p.partition_max_bytes = 1 << 20;
    let mut t = fetch_request::FetchTopic::default();
    t.topic = TopicName(StrBytes::from_string(topic.to_string()));
    t.partitions = vec![p];
    FetchRequest::default().with_max_wait_ms(30_000).with_min_bytes(1).with_max_bytes(1 << 20).with_topics(vec![t])
}

#[test]
fn metrics_count_requests_per_api_and_connections() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(dir.path(), &[]);
    let mut c = Conn::connect(&broker.kafka);
    for _ in 0..3 {
        c.call(3, &ApiVersionsRequest::default());
    }
    c.call(8, &MetadataRequest::default());
    let http = broker.client();
    let text = http.client.get(format!("{}/metrics", http.base)).send().unwrap().text().unwrap();
    assert!(text.contains("kappalog_kafka_requests_total{api=\"ApiVersions\",api_key=\"18\"} 3"), "{text}");
    assert!(text.contains("kappalog_kafka_requests_total{api=\"Metadata\",api_key=\"3\"} 1"));
    assert!(text.contains("kappalog_kafka_request_duration_seconds_count{api=\"Metadata\"} 1"));
    assert!(text.contains("kappalog_kafka_connections_open 1"), "{text}");
}

#[test]
fn connections_over_the_limit_are_closed_and_idle_ones_time_out() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("kappalog.toml");
    std::fs::write(&config, "connections_max = 2\nkafka_connections_max_idle_ms = 1000\n").unwrap();
    let broker = Broker::start(&dir.path().join("data"), &["--config", config.to_str().unwrap()]);
    let mut a = Conn::connect(&broker.kafka);
    let mut b = Conn::connect(&broker.kafka);
    assert_eq!(a.call(3, &ApiVersionsRequest::default()).error_code, 0);
    assert_eq!(b.call(3, &ApiVersionsRequest::default()).error_code, 0);
    let mut third = Conn::connect(&broker.kafka);
    assert!(third.closed(), "a third connection is closed at once");
    // Idle past kafka_connections_max_idle_ms: closed by the broker.
    let started = Instant::now();
    assert!(a.closed(), "an idle connection is closed");
    assert!(started.elapsed() < Duration::from_secs(10));
    let http = broker.client();
    let text = http.client.get(format!("{}/metrics", http.base)).send().unwrap().text().unwrap();
    assert!(text.contains("kappalog_kafka_connections_refused_total 1"), "{text}");
}

#[test]
fn shutdown_answers_a_parked_fetch_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut broker = Broker::start(dir.path(), &[]);
    broker.client().create_topic("w", 1, serde_json::json!({}));
    let mut c = Conn::connect(&broker.kafka);
    let (corr, frame) = c.frame(11, &parked_fetch("w"));
    c.send_raw(&frame);
    // Wait (bounded) until the fetch is parked (30 s wait, no data), then ask the broker to stop.
    let http = broker.client();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !http
        .client
        .get(format!("{}/metrics", http.base))
        .send()
        .unwrap()
        .text()
        .unwrap()
        .contains("kappalog_kafka_requests_in_flight 1")
    {
        assert!(Instant::now() < deadline, "the fetch never parked");
        std::thread::sleep(Duration::from_millis(20));
    }
    let started = Instant::now();
    let status = broker.terminate();
    let answer = c.read_frame().expect("the parked fetch is answered before the connection closes");
    let resp = Conn::decode::<FetchRequest>(11, corr, answer);
    assert_eq!(resp.responses[0].partitions[0].error_code, 0);
    assert!(started.elapsed() < Duration::from_secs(5), "answered at shutdown, not after the wait");
    assert!(status.success(), "{status:?}");
}
