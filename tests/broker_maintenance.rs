//! Maintenance over HTTP: `POST /topics/{t}/retention` and `POST /topics/{t}/compaction` run now
//! and report; the log shows the effect (log start moves; only the latest value per key is left).
//! The background cleaner is off (`--cleaner-interval-ms 0`) so only the requests act.

mod broker_common;

use std::collections::BTreeMap;

use base64::Engine as _;
use broker_common::{Broker, BINARY_V2};
use serde_json::json;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

#[test]
fn retention_and_compaction_run_on_request_and_report() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(dir.path(), &["--cleaner-interval-ms", "0"]);
    let http = broker.client();

    // Retention: old records (timestamp 1000) in small segments; 1 minute retention.
    http.create_topic("old", 1, json!({"segment.bytes": 4096, "retention.ms": 60000}));
    for i in 0..30 {
        let value = B64.encode(format!("{i:04}{}", "r".repeat(500)));
        let (s, b) = http.post_as("/topics/old", BINARY_V2, &json!({"records": [{"value": value, "timestamp": 1000}]}));
        assert_eq!(s, 200, "{b}");
    }
    let (s, report) = http.post("/topics/old/retention", &json!({}));
    assert_eq!(s, 200, "{report}");
    assert!(report["segments_removed"].as_u64().unwrap() > 0, "{report}");
    assert!(report["bytes_removed"].as_u64().unwrap() > 0, "{report}");
    let (_, o) = http.get("/topics/old/partitions/0/offsets");
    assert!(o["beginning_offset"].as_u64().unwrap() > 0, "{o}");
    assert_eq!(o["end_offset"], 30);

    // Compaction: 10 keys written 20 times each; afterwards one value per key, the latest.
    http.create_topic(
        "kv",
        1,
        json!({"cleanup.policy": "compact", "segment.bytes": 4096, "min.cleanable.dirty.ratio": "0"}),
    );
    let mut latest = BTreeMap::new();
    for round in 0..20 {
        let records: Vec<_> = (0..10)
            .map(|k| {
                let v = format!("k{k}-round{round}-{}", "c".repeat(100));
                latest.insert(format!("k{k}"), v.clone());
                json!({"key": B64.encode(format!("k{k}")), "value": B64.encode(v)})
            })
            .collect();
        assert_eq!(http.post_as("/topics/kv", BINARY_V2, &json!({ "records": records })).0, 200);
    }
    let (s, report) = http.post("/topics/kv/compaction", &json!({}));
    assert_eq!(s, 200, "{report}");
    assert!(report["records_removed"].as_u64().unwrap() > 0, "{report}");
    assert!(report["bytes_after"].as_u64().unwrap() < report["bytes_before"].as_u64().unwrap(), "{report}");
    let mut seen = BTreeMap::new();
    for (_, v) in http.read_all("kv", 0) {
        let v = String::from_utf8(v).unwrap();
        seen.insert(v.split('-').next().unwrap().to_string(), v);
    }
    assert_eq!(seen, latest, "the latest value of every key survives");

    let (s, b) = http.post("/topics/none/compaction", &json!({}));
    assert_eq!((s, &b["error_code"]), (404, &json!(40401)));
    let metrics = http.client.get(format!("{}/metrics", http.base)).send().unwrap().text().unwrap();
    assert!(metrics.contains("kappalog_cleaner_compactions{topic=\"kv\",partition=\"0\"} 1"), "{metrics}");
}
