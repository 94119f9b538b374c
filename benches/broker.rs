//! Load benchmark of the broker as a real process (`cargo bench --bench broker`):
//! 1. produce, 1000 records of 100 B per request, 16 concurrent connections: records/s;
//! 2. produce, one record per request, 16 concurrent connections: records/s;
//! 3. produce→consume latency (p50/p99) with a long-polling consumer, one record per request.
//!
//! Each throughput figure comes with a same-run baseline: the same appends through the library
//! (`Topic::append`, no HTTP) on the same machine, and the ratio broker / library.
//! Sizes scale with KAPPALOG_BENCH_SECONDS (default 5 per scenario).

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use kappalog::{NewRecord, Store, StoreConfig, TopicConfig};
use serde_json::json;

const CONNECTIONS: usize = 16;
const BATCH_RECORDS: usize = 1000;
const RECORD_BYTES: usize = 100;
const PARTITIONS: u32 = 4;
const LATENCY_SAMPLES: usize = 2000;

struct Broker(Child, String);

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start(dir: &std::path::Path) -> Broker {
    let mut child = Command::new(env!("CARGO_BIN_EXE_kappalog"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn the broker");
    let out = child.stdout.take().unwrap();
    let mut line = String::new();
    BufReader::new(out).read_line(&mut line).expect("the broker's first line");
    let url = line.trim().strip_prefix("kappalog listening on ").expect("listening line").to_string();
    Broker(child, url)
}

fn client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder().timeout(Duration::from_secs(60)).build().unwrap()
}

/// Runs `CONNECTIONS` threads posting `body` to `url` for `seconds`; returns records/s.
fn produce_load(url: &str, body: String, records_per_request: usize, seconds: f64) -> f64 {
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let body = Arc::new(body);
    let started = Instant::now();
    let threads: Vec<_> = (0..CONNECTIONS)
        .map(|_| {
            let (stop, done, body, url) = (stop.clone(), done.clone(), body.clone(), url.to_string());
            std::thread::spawn(move || {
                let c = client();
                while !stop.load(Ordering::Relaxed) {
                    let r = c
                        .post(&url)
                        .header("Content-Type", "application/vnd.kafka.binary.v2+json")
                        .body(body.as_str().to_string())
                        .send()
                        .expect("produce");
                    assert_eq!(r.status(), 200, "{:?}", r.text());
                    done.fetch_add(records_per_request as u64, Ordering::Relaxed);
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs_f64(seconds));
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().unwrap();
    }
    done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64()
}

/// The same appends through the library, `CONNECTIONS` threads: records/s.
fn library_load(records_per_append: usize, seconds: f64) -> f64 {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
    let topic = store.create_topic("bench", PARTITIONS, TopicConfig::default()).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let threads: Vec<_> = (0..CONNECTIONS)
        .map(|_| {
            let (stop, done, topic) = (stop.clone(), done.clone(), topic.clone());
            std::thread::spawn(move || {
                let value = vec![b'x'; RECORD_BYTES];
                while !stop.load(Ordering::Relaxed) {
                    let recs: Vec<NewRecord> = (0..records_per_append).map(|_| NewRecord::new(value.clone())).collect();
                    topic.append(&recs).unwrap();
                    done.fetch_add(records_per_append as u64, Ordering::Relaxed);
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs_f64(seconds));
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().unwrap();
    }
    done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64()
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --benches` passes nothing useful: run a short pass.
    let seconds: f64 = std::env::var("KAPPALOG_BENCH_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(5.0);
    let dir = tempfile::tempdir().unwrap();
    let broker = start(dir.path());
    let c = client();
    for (name, parts) in [("bench", PARTITIONS), ("latency", 1)] {
        let r =
            c.post(format!("{}/topics", broker.1)).json(&json!({"name": name, "partitions": parts})).send().unwrap();
        assert_eq!(r.status(), 201);
    }
    let value = base64::engine::general_purpose::STANDARD.encode(vec![b'x'; RECORD_BYTES]);
    let url = format!("{}/topics/bench", broker.1);

    let batch_body = json!({"records": vec![json!({"value": value}); BATCH_RECORDS]}).to_string();
    let batch = produce_load(&url, batch_body, BATCH_RECORDS, seconds);
    let batch_lib = library_load(BATCH_RECORDS, seconds);
    println!(
        "produce {BATCH_RECORDS}x{RECORD_BYTES} B per request, {CONNECTIONS} connections: {batch:.0} records/s \
         (library baseline {batch_lib:.0} records/s, ratio {:.2})",
        batch / batch_lib
    );

    let single_body = json!({"records": [{"value": value}]}).to_string();
    let single = produce_load(&url, single_body, 1, seconds);
    let single_lib = library_load(1, seconds);
    println!(
        "produce 1 record per request, {CONNECTIONS} connections: {single:.0} records/s \
         (library baseline {single_lib:.0} records/s, ratio {:.2})",
        single / single_lib
    );

    // Latency: one producer, one long-polling consumer on a one-partition topic.
    let base = broker.1.clone();
    let consumer = std::thread::spawn(move || {
        let c = client();
        let mut offset = 0u64;
        let mut samples = Vec::with_capacity(LATENCY_SAMPLES);
        while samples.len() < LATENCY_SAMPLES {
            let recs: serde_json::Value = c
                .get(format!("{base}/topics/latency/partitions/0/records?offset={offset}&timeout=5000"))
                .header("Accept", "application/vnd.kafka.json.v2+json")
                .send()
                .unwrap()
                .json()
                .unwrap();
            let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_micros() as f64;
            for r in recs.as_array().unwrap() {
                samples.push((now - r["value"].as_f64().unwrap()) / 1000.0);
                offset = r["offset"].as_u64().unwrap() + 1;
            }
        }
        samples
    });
    let c = client();
    for _ in 0..LATENCY_SAMPLES {
        let sent = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_micros() as u64;
        let r = c
            .post(format!("{}/topics/latency", broker.1))
            .header("Content-Type", "application/vnd.kafka.json.v2+json")
            .body(json!({"records": [{"value": sent}]}).to_string())
            .send()
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    let mut samples = consumer.join().unwrap();
    samples.sort_by(|a, b| a.partial_cmp(b).unwrap());
    println!(
        "produce→consume latency (long-poll, fsync per produce): p50 {:.2} ms, p99 {:.2} ms over {} records",
        percentile(&samples, 0.5),
        percentile(&samples, 0.99),
        samples.len()
    );
}
