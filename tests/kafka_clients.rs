//! Real Kafka clients against the real broker on 127.0.0.1: kcat (Debian's, librdkafka 2.0.2),
//! kafka-python 3, confluent-kafka (librdkafka 2.16), aiokafka and kafkajs. Metadata, produce with keys and headers
//! (acks=all), an assign + seek consumer reading everything back, watermarks; and interop with the
//! HTTP API both ways (keys, values, headers, timestamps intact).

mod broker_common;
mod kafka_clients_common;

use broker_common::Broker;
use kafka_clients_common::{b64, have_kcat, have_python, kcat, python};
use serde_json::{json, Value};

#[test]
fn kcat_metadata_produce_with_keys_and_consume_to_the_end() {
    if !have_kcat() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(dir.path(), &[]);
    broker.client().create_topic("kc", 3, json!({}));
    let b = broker.kafka.as_str();
    let (meta, _) = kcat(&["-b", b, "-L", "-t", "kc"], b"");
    assert!(meta.contains("topic \"kc\" with 3 partitions"), "{meta}");
    assert!(meta.contains(&format!("broker 0 at {b} (controller)")), "{meta}");
    let lines: String = (0..200).map(|i| format!("key{i}:value {i}\n")).collect();
    for p in 0..3 {
        kcat(&["-b", b, "-P", "-t", "kc", "-p", &p.to_string(), "-K:", "-X", "acks=all"], lines.as_bytes());
    }
    for p in 0..3 {
        let (out, _) =
            kcat(&["-b", b, "-C", "-t", "kc", "-p", &p.to_string(), "-o", "beginning", "-e", "-f", "%k=%s@%o\n"], b"");
        let got: Vec<&str> = out.lines().collect();
        assert_eq!(got.len(), 200, "partition {p}: {out}");
        for (i, l) in got.iter().enumerate() {
            assert_eq!(*l, format!("key{i}=value {i}@{i}"), "partition {p}");
        }
    }
    let (meta, _) = kcat(&["-b", b, "-Q", "-t", "kc:0:0"], b"");
    assert!(meta.contains("kc [0] offset 0"), "offset by time 0 is the first record: {meta}");
}

fn check_roundtrip(out: &Value, n: usize) {
    let records = out["records"].as_array().unwrap();
    assert_eq!(records.len(), n, "{out}");
    let mut acked: Vec<(i64, i64)> =
        out["acked"].as_array().unwrap().iter().map(|a| (a[0].as_i64().unwrap(), a[1].as_i64().unwrap())).collect();
    acked.sort();
    acked.dedup();
    assert_eq!(acked.len(), n, "every acknowledgement names its own offset");
    let mut seen = vec![false; n];
    for r in records {
        let key = String::from_utf8(base64_decode(&r["key"])).unwrap();
        let i: usize = key.strip_prefix('k').unwrap().parse().unwrap();
        assert!(!seen[i], "record {i} read twice");
        seen[i] = true;
        assert_eq!(base64_decode(&r["value"]), format!("v{i}").into_bytes());
        assert_eq!(r["headers"], json!([["i", b64(&i.to_string())]]));
        assert_eq!(r["timestamp"], 1_700_000_000_000i64 + i as i64);
        assert!(acked.contains(&(r["partition"].as_i64().unwrap(), r["offset"].as_i64().unwrap())));
    }
}

fn base64_decode(v: &Value) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.decode(v.as_str().unwrap()).unwrap()
}

#[test]
fn kafka_python_produces_and_an_assigned_consumer_reads_everything() {
    if !have_python("kafka") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(dir.path(), &[]);
    let out = python(&["kafka_python_roundtrip", &broker.kafka, "kp", "300"]);
    assert!(out["topics"].as_array().unwrap().contains(&json!("kp")));
    check_roundtrip(&out, 300);
    let ends: i64 = out["ends"].as_object().unwrap().values().map(|v| v.as_i64().unwrap()).sum();
    assert_eq!(ends, 300);
}

#[test]
fn confluent_kafka_produces_and_an_assigned_consumer_reads_everything() {
    if !have_python("confluent_kafka") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(dir.path(), &[]);
    let out = python(&["confluent_roundtrip", &broker.kafka, "ck", "1000"]);
    assert_eq!(out["unflushed"], 0, "{out}");
    assert_eq!(out["errors"], json!([]));
    check_roundtrip(&out, 1000);
    let marks = out["watermarks"].as_object().unwrap();
    assert_eq!(marks.values().map(|m| m[1].as_i64().unwrap()).sum::<i64>(), 1000);
    assert!(marks.values().all(|m| m[0] == 0));
}

#[test]
fn aiokafka_produces_and_an_assigned_consumer_reads_everything() {
    if !have_python("aiokafka") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(dir.path(), &[]);
    broker.client().create_topic("aio", 1, json!({}));
    let out = python(&["aiokafka_roundtrip", &broker.kafka, "aio", "100"]);
    check_roundtrip(&out, 100);
}

#[test]
fn records_cross_between_http_and_kafka_intact() {
    if !have_python("kafka") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(dir.path(), &[]);
    let http = broker.client();
    http.create_topic("x", 2, json!({}));
    // HTTP -> Kafka.
    let sent: Vec<Value> = (0..20)
        .map(|i| {
            json!({"partition": i % 2, "key": b64(&format!("hk{i}")), "value": b64(&format!("hv{i}")),
                   "timestamp": 1_600_000_000_000i64 + i, "headers": [{"name": "a", "value": b64(&i.to_string())},
                                                                     {"name": "a", "value": b64("dup")}]})
        })
        .collect();
    let (status, body) = http.post_as("/topics/x", "application/vnd.kafka.binary.v2+json", &json!({"records": sent}));
    assert_eq!(status, 200, "{body}");
    let out = python(&["consume", &broker.kafka, "x", "2", "20"]);
    let records = out["records"].as_array().unwrap();
    assert_eq!(records.len(), 20, "{out}");
    for r in records {
        let key = String::from_utf8(base64_decode(&r["key"])).unwrap();
        let i: i64 = key.strip_prefix("hk").unwrap().parse().unwrap();
        assert_eq!(r["partition"], i % 2);
        assert_eq!(base64_decode(&r["value"]), format!("hv{i}").into_bytes());
        assert_eq!(r["timestamp"], 1_600_000_000_000i64 + i);
        assert_eq!(r["headers"], json!([["a", b64(&i.to_string())], ["a", b64("dup")]]), "repeated header names kept");
    }
    // Kafka -> HTTP.
    let records: Vec<Value> = (0..10)
        .map(|i| {
            json!({"partition": 1, "key": b64(&format!("kk{i}")), "value": b64(&format!("kv{i}")),
                   "timestamp": 1_650_000_000_000i64 + i, "headers": [["h", b64(&format!("x{i}"))]]})
        })
        .collect();
    let out = python(&["produce", &broker.kafka, "x", &serde_json::to_string(&records).unwrap()]);
    assert_eq!(out["acked"].as_array().unwrap().len(), 10);
    let (status, got) = http.get_accept(
        "/topics/x/partitions/1/records?offset=10&include=headers,timestamp",
        "application/vnd.kafka.binary.v2+json",
    );
    assert_eq!(status, 200, "{got}");
    let got = got.as_array().unwrap();
    assert_eq!(got.len(), 10, "{got:?}");
    for (i, r) in got.iter().enumerate() {
        assert_eq!(r["offset"], 10 + i as i64);
        assert_eq!(r["key"], b64(&format!("kk{i}")));
        assert_eq!(r["value"], b64(&format!("kv{i}")));
        assert_eq!(r["timestamp"], 1_650_000_000_000i64 + i as i64);
        assert_eq!(r["headers"], json!([{"name": "h", "value": b64(&format!("x{i}"))}]));
    }
}

#[test]
fn kafkajs_creates_a_topic_and_produces() {
    if !kafka_clients_common::have_kafkajs() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(dir.path(), &[]);
    let out = kafka_clients_common::node("kafkajs_produce.js", &[&broker.kafka, "js", "50"]);
    assert_eq!(out["created"], true, "{out}");
    let offsets = out["offsets"].as_array().unwrap();
    let high: i64 = offsets.iter().map(|o| o["high"].as_str().unwrap().parse::<i64>().unwrap()).sum();
    assert_eq!(high, 50, "{out}");
    let stored: usize = (0..2).map(|p| broker.client().read_all("js", p).len()).sum();
    assert_eq!(stored, 50);
}

#[test]
fn kcat_produces_with_each_codec_and_the_batches_are_stored_compressed() {
    if !have_kcat() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let broker = Broker::start(&data, &[]);
    let b = broker.kafka.as_str();
    for codec in ["none", "gzip", "snappy", "lz4", "zstd"] {
        let topic = format!("z-{codec}");
        broker.client().create_topic(&topic, 1, json!({}));
        let lines: String = (0..300).map(|i| format!("key{i}:{codec} value {i} {}\n", "x".repeat(i % 50))).collect();
        kcat(
            &["-b", b, "-P", "-t", &topic, "-K:", "-z", codec, "-X", "acks=all", "-X", "linger.ms=50"],
            lines.as_bytes(),
        );
        let (out, _) = kcat(&["-b", b, "-C", "-t", &topic, "-o", "beginning", "-e", "-f", "%k:%s\n"], b"");
        assert_eq!(out, lines, "{codec}: every record read back");
        let segment = data.join(format!("topics/{topic}/0/00000000000000000000.log"));
        let dump =
            std::process::Command::new(env!("CARGO_BIN_EXE_kappalog")).arg("dump").arg(&segment).output().unwrap();
        let dump = String::from_utf8_lossy(&dump.stdout);
        // librdkafka 2.0 (Debian's kcat) uses lz4 only when the broker has FindCoordinator v0
        // (its feature map); otherwise it sends lz4 batches uncompressed.
        let lz4_usable = kappalog::broker::kafka::advertised().any(|(key, lo, _)| key == 10 && lo == 0);
        let expected = if codec == "lz4" && !lz4_usable { "none" } else { codec };
        assert!(dump.contains(&format!("compression {expected}")), "{codec}: batches stored as sent: {dump}");
    }
}
