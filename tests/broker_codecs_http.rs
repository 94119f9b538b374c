//! Every `compression.type` through the real broker: a topic created with it, records produced
//! over HTTP in the JSON and binary embedded formats, consumed over HTTP in both formats with
//! every key, value and header equal, and the batches on disk (`kappalog dump`) carrying the codec.

mod broker_common;
mod common;

use base64::Engine as _;
use broker_common::{Broker, BINARY_V2, JSON_V2};
use serde_json::{json, Value};

/// `compression.type` and the codec its batches are stored with (HTTP produce writes uncompressed
/// batches under `producer`).
const CODECS: [(&str, &str); 6] =
    [("none", "none"), ("gzip", "gzip"), ("snappy", "snappy"), ("lz4", "lz4"), ("zstd", "zstd"), ("producer", "none")];

/// A record as produced: key JSON, value JSON, headers (name, raw value).
type Produced = (Value, Value, Vec<(String, Option<Vec<u8>>)>);

fn b64(b: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(b)
}

#[test]
fn every_codec_round_trips_through_http_produce_and_consume() {
    let seed = common::seed();
    let mut rng = common::Rng::new(seed);
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(dir.path(), &[]);
    let http = broker.client();
    for (codec, stored) in CODECS {
        let topic = format!("c-{codec}");
        http.create_topic(&topic, 1, json!({"compression.type": codec}));
        let (s, cfg) = http.get(&format!("/topics/{topic}"));
        assert_eq!(s, 200, "{cfg}");
        let shown = if codec == "none" { "uncompressed" } else { codec }; // Kafka's synonym
        assert_eq!(cfg["configs"]["compression.type"], json!(shown), "{topic}: {cfg}");
        // (key JSON, value JSON, headers as name -> raw bytes) of every record, in offset order.
        let mut want: Vec<Produced> = Vec::new();
        for round in 0..4 {
            let n = 1 + rng.below(30) as usize;
            let mut recs = Vec::new();
            let mut batch = Vec::new();
            for i in 0..n {
                let key = json!(format!("k{}", rng.below(10)));
                // Compressible JSON-like values, with random parts.
                let value = json!({"user": format!("u{}", rng.below(100)), "n": i, "round": round,
                                   "text": "lorem ipsum dolor sit amet ".repeat(1 + rng.below(8) as usize),
                                   "r": rng.next_u64() % 1_000_000});
                let headers: Vec<(String, Option<Vec<u8>>)> = (0..rng.below(3))
                    .map(|h| {
                        let len = rng.below(12) as usize;
                        let v = if rng.below(4) == 0 { None } else { Some(rng.bytes(len)) };
                        (format!("h{h}"), v)
                    })
                    .collect();
                let hj: Vec<Value> =
                    headers.iter().map(|(k, v)| json!({"name": k, "value": v.as_ref().map(|v| b64(v))})).collect();
                if round % 2 == 0 {
                    recs.push(json!({"key": key, "value": value, "headers": hj}));
                } else {
                    recs.push(json!({"key": b64(key.to_string().as_bytes()),
                                     "value": b64(value.to_string().as_bytes()), "headers": hj}));
                }
                batch.push((key, value, headers));
            }
            let format = if round % 2 == 0 { JSON_V2 } else { BINARY_V2 };
            let (s, b) = http.post_as(&format!("/topics/{topic}/partitions/0"), format, &json!({"records": recs}));
            assert_eq!(s, 200, "{topic} round {round}: {b}");
            want.extend(batch);
        }
        for accept in [JSON_V2, BINARY_V2] {
            let mut got = Vec::new();
            while got.len() < want.len() {
                let (s, recs) = http.get_accept(
                    &format!("/topics/{topic}/partitions/0/records?offset={}&timeout=0&include=headers", got.len()),
                    accept,
                );
                assert_eq!(s, 200, "{recs}");
                let recs = recs.as_array().unwrap().clone();
                assert!(!recs.is_empty(), "{topic}: no records at offset {}", got.len());
                got.extend(recs);
            }
            assert_eq!(got.len(), want.len(), "{topic}");
            for (i, (r, (key, value, headers))) in got.iter().zip(&want).enumerate() {
                assert_eq!(r["offset"].as_u64(), Some(i as u64), "{topic}");
                let decode = |v: &Value| -> Value {
                    let raw = base64::engine::general_purpose::STANDARD.decode(v.as_str().unwrap()).unwrap();
                    serde_json::from_slice(&raw).unwrap()
                };
                let (k, v) = match accept {
                    JSON_V2 => (r["key"].clone(), r["value"].clone()),
                    _ => (decode(&r["key"]), decode(&r["value"])),
                };
                assert_eq!((&k, &v), (key, value), "{topic} offset {i} as {accept}");
                let hs: Vec<Value> =
                    headers.iter().map(|(k, v)| json!({"name": k, "value": v.as_ref().map(|v| b64(v))})).collect();
                let got_h = r.get("headers").cloned().unwrap_or(json!([]));
                let got_h = if got_h.is_null() { json!([]) } else { got_h };
                assert_eq!(got_h, Value::Array(hs), "{topic} offset {i} headers as {accept}");
            }
        }
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_kappalog"))
            .arg("dump")
            .arg(dir.path().join("topics").join(&topic).join("0"))
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let text = String::from_utf8_lossy(&out.stdout);
        let batches: Vec<&str> = text.lines().filter(|l| l.trim_start().starts_with("position ")).collect();
        assert_eq!(batches.len(), 4, "{topic}: one batch per produce request\n{text}");
        for l in batches {
            assert!(l.contains(&format!(" compression {stored} ")), "{topic}: {l}");
        }
    }
}
