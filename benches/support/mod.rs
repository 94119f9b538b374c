//! What the broker benchmarks share (`mod support;` in `benches/broker.rs` and `benches/kafka.rs`):
//! starting the real `kappalog serve`, the closed-loop HTTP produce load, and the library
//! baseline (`Topic::append`). Each benchmark uses part of it.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kappalog::{NewRecord, Store, StoreConfig, TopicConfig};

/// Concurrent connections (HTTP) and appending threads (library).
pub const CONNECTIONS: usize = 16;
/// Records per HTTP request and per library append of the batched scenario.
pub const BATCH_RECORDS: usize = 1000;
pub const RECORD_BYTES: usize = 100;
pub const PARTITIONS: u32 = 4;

/// The broker process (killed on drop) and its HTTP base URL.
pub struct Broker(pub Child, pub String);

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `kappalog serve` on 127.0.0.1 without a Kafka listener.
pub fn start(dir: &std::path::Path) -> Broker {
    launch(dir, false).0
}

/// Starts `kappalog serve` on 127.0.0.1 with its Kafka listener on a free port: the broker and
/// the Kafka address (`HOST:PORT`).
pub fn start_with_kafka(dir: &std::path::Path) -> (Broker, String) {
    let (broker, kafka) = launch(dir, true);
    (broker, kafka.expect("the Kafka listening line"))
}

fn launch(dir: &std::path::Path, kafka: bool) -> (Broker, Option<String>) {
    // Another build's binary, to compare two builds on the same machine.
    let binary = std::env::var_os("KAPPALOG_BENCH_BROKER").unwrap_or_else(|| env!("CARGO_BIN_EXE_kappalog").into());
    let mut child = Command::new(binary)
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .env("KAPPALOG_KAFKA_LISTEN", if kafka { "127.0.0.1:0" } else { "off" })
        .arg(dir)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn the broker");
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).expect("the broker's first line");
    let url = line.trim().strip_prefix("kappalog listening on ").expect("listening line").to_string();
    let kafka = kafka.then(|| {
        line.clear();
        out.read_line(&mut line).expect("the broker's Kafka line");
        line.trim().strip_prefix("kappalog kafka listening on ").expect("Kafka listening line").to_string()
    });
    (Broker(child, url), kafka)
}

/// Runs `CONNECTIONS` threads, each calling the closure `connect` made for it in a loop, for
/// `seconds`: calls/s times `per_call`.
pub fn closed_loop<F: FnMut() + Send + 'static>(seconds: f64, per_call: usize, connect: impl Fn() -> F) -> f64 {
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let threads: Vec<_> = (0..CONNECTIONS)
        .map(|_| {
            let (stop, done, mut call) = (stop.clone(), done.clone(), connect());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    call();
                    done.fetch_add(per_call as u64, Ordering::Relaxed);
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

/// The broker's fsync count, from `/metrics`.
pub fn fsyncs(base: &str) -> u64 {
    let text = client().get(format!("{base}/metrics")).send().unwrap().text().unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix("kappalog_fsync_duration_seconds_count "))
        .and_then(|n| n.trim().parse().ok())
        .expect("kappalog_fsync_duration_seconds_count in /metrics")
}

pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

pub fn client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder().timeout(Duration::from_secs(60)).build().unwrap()
}

/// Runs `CONNECTIONS` threads posting `body` to `url` for `seconds`; returns records/s.
pub fn produce_load(url: &str, body: String, records_per_request: usize, seconds: f64) -> f64 {
    closed_loop(seconds, records_per_request, || {
        let (c, url, body) = (client(), url.to_string(), body.clone());
        move || {
            let r = c
                .post(&url)
                .header("Content-Type", "application/vnd.kafka.binary.v2+json")
                .body(body.clone())
                .send()
                .expect("produce");
            assert_eq!(r.status(), 200, "{:?}", r.text());
        }
    })
}

/// The same appends through the library, `CONNECTIONS` threads: records/s.
pub fn library_load(records_per_append: usize, seconds: f64) -> f64 {
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
