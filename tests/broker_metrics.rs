//! `GET /metrics`: produce/fetch counters, latency histograms, partition gauges and group lag move
//! with the traffic.

mod broker_common;

use broker_common::{Broker, JSON_V2};
use serde_json::json;

fn metric(text: &str, line_start: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(line_start))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no metric {line_start} in:\n{text}"))
}

#[test]
fn metrics_follow_traffic() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(dir.path(), &[]);
    let http = broker.client();
    http.create_topic("m", 1, json!({}));
    let records: Vec<_> = (0..10).map(|i| json!({"value": i})).collect();
    assert_eq!(http.post_as("/topics/m", JSON_V2, &json!({ "records": records })).0, 200);
    assert_eq!(http.get_accept("/topics/m/partitions/0/records?offset=0&timeout=0", JSON_V2).0, 200);
    // A group that committed 4 of the 10 records: lag 6.
    let (s, _) = http.post("/consumers/g", &json!({"name": "c", "format": "json", "auto.offset.reset": "earliest"}));
    assert_eq!(s, 200);
    assert_eq!(http.post("/consumers/g/instances/c/subscription", &json!({"topics": ["m"]})).0, 204);
    let (s, b) = http
        .post("/consumers/g/instances/c/offsets", &json!({"offsets": [{"topic": "m", "partition": 0, "offset": 3}]}));
    assert_eq!(s, 204, "{b}");

    let text = http.client.get(format!("{}/metrics", http.base)).send().unwrap().text().unwrap();
    assert_eq!(metric(&text, "kappalog_produce_records_total "), 10.0);
    assert_eq!(metric(&text, "kappalog_fetch_records_total "), 10.0);
    assert_eq!(metric(&text, "kappalog_produce_append_duration_seconds_count "), 1.0);
    // The produce (sync durability) and the commit to __consumer_offsets each fsynced at least once.
    let fsyncs = metric(&text, "kappalog_fsync_duration_seconds_count ");
    assert!(fsyncs >= 2.0, "fsyncs: {fsyncs}");
    assert_eq!(metric(&text, "kappalog_fsync_duration_seconds_bucket{le=\"+Inf\"} "), fsyncs);
    assert!(metric(&text, "kappalog_fsync_duration_seconds_sum ") > 0.0);
    assert_eq!(metric(&text, "kappalog_partition_log_end_offset{topic=\"m\",partition=\"0\"}"), 10.0);
    assert_eq!(metric(&text, "kappalog_partition_log_start_offset{topic=\"m\",partition=\"0\"}"), 0.0);
    assert!(metric(&text, "kappalog_partition_size_bytes{topic=\"m\",partition=\"0\"}") > 0.0);
    assert_eq!(metric(&text, "kappalog_consumer_group_lag{group=\"g\",topic=\"m\",partition=\"0\"}"), 6.0);
    assert!(
        metric(&text, "kappalog_http_request_duration_seconds_count{method=\"POST\",route=\"/topics/{topic}\"}") >= 1.0
    );
}
