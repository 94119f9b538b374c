//! No input makes the broker panic: seeded garbage (random bytes, huge numbers, deep JSON, wrong
//! content types, odd path and query values) goes to every documented route; then the broker
//! still serves and the data written before is intact. Set KAPPALOG_GARBAGE_SEED to replay.

mod broker_common;

use broker_common::{Broker, JSON_V2};
use serde_json::{json, Value};

/// Requests sent.
const REQUESTS: usize = 3000;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<'a, T>(&mut self, list: &'a [T]) -> &'a T {
        &list[self.below(list.len())]
    }
}

const SEGMENTS: &[&str] = &[
    "t",
    "g",
    "i",
    "0",
    "1",
    "-1",
    "99999999999999999999",
    "%00",
    "%FF%FE",
    "..",
    "a%2Fb",
    "__consumer_offsets",
    "x",
    "%20",
    "18446744073709551616",
    "4294967295",
];
const QUERIES: &[&str] = &[
    "",
    "?offset=0",
    "?offset=-5",
    "?offset=abc",
    "?offset=99999999999999999999999",
    "?timeout=0&offset=0",
    "?max_bytes=0&offset=0",
    "?max_bytes=-1",
    "?include=everything",
    "?include=headers,timestamp&offset=0&timeout=1",
    "?%ZZ=1",
    "?timeout=18446744073709551615",
    "?timeout=99999999999999999999999&offset=0",
];
const TYPES: &[Option<&str>] = &[
    None,
    Some("application/json"),
    Some("application/vnd.kafka.json.v2+json"),
    Some("application/vnd.kafka.binary.v2+json"),
    Some("application/vnd.kafka.avro.v2+json"),
    Some("text/plain"),
    Some("a/b;;;=\"x"),
];
const METHODS: &[&str] = &["GET", "POST", "PUT", "DELETE", "PATCH"];

fn body(rng: &mut Rng) -> Vec<u8> {
    match rng.below(12) {
        0 => (0..rng.below(2000)).map(|_| rng.next() as u8).collect(),
        1 => format!("{}{}", "[".repeat(100_000), "]".repeat(100_000)).into_bytes(),
        2 => format!("{{\"records\":[{{\"value\":{}1{}}}]}}", "[".repeat(5000), "]".repeat(5000)).into_bytes(),
        3 => br#"{"records":[{"value":1e400,"partition":99999999999999999999,"timestamp":-9223372036854775809}]}"#
            .to_vec(),
        4 => br#"{"records":[{"key":"!!","value":"%%%","headers":[{"name":1}]}]}"#.to_vec(),
        5 => br#"{"name":"garbage","partitions":4294967295,"configs":{"segment.bytes":"1e99","retention.ms":[1]}}"#
            .to_vec(),
        6 => br#"{"topics":["t"],"topic_pattern":"(((("}"#.to_vec(),
        7 => br#"{"offsets":[{"topic":"t","partition":0,"offset":18446744073709551615}]}"#.to_vec(),
        8 => {
            br#"{"topic":"t","strategy":"shift_by","value":-9223372036854775808,"dry_run":false,"force":true}"#.to_vec()
        }
        9 => br#"{"partitions":[{"topic":"t","partition":4294967295}]}"#.to_vec(),
        10 => Vec::new(),
        _ => json!({"records": [{"value": "\u{0}\u{ffff}", "key": {"deep": [null, true]}}]}).to_string().into_bytes(),
    }
}

#[test]
fn garbage_to_every_route_does_not_break_the_broker() {
    let seed: u64 = std::env::var("KAPPALOG_GARBAGE_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64 | 1
    });
    eprintln!("garbage seed: {seed} (replay with KAPPALOG_GARBAGE_SEED={seed})");
    let dir = tempfile::tempdir().unwrap();
    let log_path = dir.path().join("broker.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let broker = Broker::start_with_stderr(&dir.path().join("data"), &["--body-bytes-max", "1048576"], log.into());
    let http = broker.client();
    http.create_topic("keep", 2, json!({}));
    http.create_topic("t", 1, json!({}));
    let records: Vec<Value> = (0..100).map(|i| json!({"key": format!("k{i}"), "value": {"n": i}})).collect();
    let (s, _) = http.post_as("/topics/keep", JSON_V2, &json!({ "records": records }));
    assert_eq!(s, 200);
    let before: Vec<_> = (0..2).map(|p| http.read_all("keep", p)).collect();

    let (s, spec) = http.get("/openapi.json");
    assert_eq!(s, 200);
    let routes: Vec<(String, String)> = spec["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, ops)| ops.as_object().unwrap().keys().map(move |m| (m.to_uppercase(), path.clone())))
        .collect();
    let mut rng = Rng(seed);
    for n in 0..REQUESTS {
        let (method, template) = rng.pick(&routes).clone();
        let method = if rng.below(5) == 0 { rng.pick(METHODS).to_string() } else { method };
        let path: String = template
            .split('/')
            .map(|seg| if seg.starts_with('{') { rng.pick(SEGMENTS).to_string() } else { seg.to_string() })
            .collect::<Vec<_>>()
            .join("/");
        let url = format!("{}{}{}", http.base, path, rng.pick(QUERIES));
        let mut req = http.client.request(reqwest::Method::from_bytes(method.as_bytes()).unwrap(), &url);
        if let Some(ct) = rng.pick(TYPES) {
            req = req.header("Content-Type", *ct);
        }
        if rng.below(3) == 0 {
            req = req.header("Accept", *rng.pick(&["application/vnd.kafka.json.v2+json", "*/*", "garbage"]));
        }
        let resp = match req.body(body(&mut rng)).send() {
            Ok(r) => r,
            Err(e) => {
                // The server may answer (404, 413) and close before reading a large body: the
                // client then fails writing it. That is fine as long as the server still serves.
                let (s, _) = http.get("/health");
                assert_eq!(s, 200, "seed {seed}, request {n}: {method} {url}: {e:?}, and then /health failed");
                continue;
            }
        };
        let status = resp.status().as_u16();
        let text = resp.text().unwrap_or_default();
        assert!(status < 500 || status == 503, "seed {seed}, request {n}: {method} {url} -> {status} {text}");
        if status >= 400 {
            let v: Value = serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("seed {seed}: {method} {url}: non-JSON error body {text:?}: {e}"));
            assert!(v["error_code"].is_i64() && v["message"].is_string(), "seed {seed}: {method} {url}: {text}");
        }
    }
    let (s, h) = http.get("/health");
    assert_eq!((s, &h["status"]), (200, &json!("ok")));
    let after: Vec<_> = (0..2).map(|p| http.read_all("keep", p)).collect();
    assert_eq!(before, after, "seed {seed}: the data changed");
    // A panic in a handler would only drop a connection: look for its message in the broker's log.
    let log = std::fs::read_to_string(&log_path).unwrap();
    assert!(!log.contains("panicked"), "seed {seed}: the broker panicked:\n{log}");
}
