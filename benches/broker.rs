//! Load benchmark of the broker as a real process (`cargo bench --bench broker`):
//! 1. produce, 1000 records of 100 B per request, 16 concurrent connections: records/s;
//! 2. produce, one record per request, 16 concurrent connections: records/s, and records per fsync;
//! 3. produce→consume latency (p50/p99) with a long-polling consumer, one record per request.
//!
//! Each throughput figure comes with a same-run baseline: the same appends through the library
//! (`Topic::append`, no HTTP) on the same machine, and the ratio broker / library. Scenario 2 is
//! also compared with Redis: `XADD` of one 100 B entry per command over 16 connections to a
//! `redis-server` with `appendfsync always` (fsync before the reply, as `sync` durability), started
//! on 127.0.0.1 when `redis-server` is on the PATH (skipped with a message otherwise). Broker and
//! Redis runs alternate, [`PAIRS`] of each; the medians are compared.
//! Sizes scale with KAPPALOG_BENCH_SECONDS (default 5 per scenario); KAPPALOG_BENCH_ONLY=single
//! runs scenario 2 alone; KAPPALOG_BENCH_BROKER=PATH runs that `kappalog` binary instead of this
//! build's.

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::json;
use support::{
    client, closed_loop, fsyncs, library_load, median, produce_load, start, BATCH_RECORDS, CONNECTIONS, PARTITIONS,
    RECORD_BYTES,
};
const LATENCY_SAMPLES: usize = 2000;
/// Alternated broker / Redis runs of the single-record scenario.
const PAIRS: usize = 3;

/// A `redis-server` with an append-only file fsynced before every reply, on a free port.
struct Redis {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Redis {
    /// `None` (with a message) when `redis-server` cannot be started.
    fn start() -> Option<Redis> {
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let spawned = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &port.to_string(), "--save", "", "--appendonly", "yes"])
            .args(["--appendfsync", "always", "--dir"])
            .arg(dir.path())
            .stdout(Stdio::null())
            .spawn();
        let child = match spawned {
            Ok(child) => child,
            Err(e) => {
                println!("redis-server not started ({e}): no Redis comparison (apt-get install redis-server)");
                return None;
            }
        };
        let redis = Redis { child, port, _dir: dir };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(mut c) = TcpStream::connect(("127.0.0.1", port)) {
                if c.write_all(b"PING\r\n").is_ok() {
                    let mut line = String::new();
                    if BufReader::new(&mut c).read_line(&mut line).is_ok() && line.starts_with("+PONG") {
                        return Some(redis);
                    }
                }
            }
            if Instant::now() > deadline {
                println!("redis-server did not answer on port {port}: no Redis comparison");
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `CONNECTIONS` threads each sending `XADD bench * v <100 B>` and reading the reply, for
    /// `seconds`: entries/s.
    fn xadd_load(&self, seconds: f64) -> f64 {
        let value = "x".repeat(RECORD_BYTES);
        let command =
            format!("*5\r\n$4\r\nXADD\r\n$5\r\nbench\r\n$1\r\n*\r\n$1\r\nv\r\n${RECORD_BYTES}\r\n{value}\r\n");
        closed_loop(seconds, 1, || {
            let stream = TcpStream::connect(("127.0.0.1", self.port)).expect("connect to redis");
            stream.set_nodelay(true).unwrap();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let (mut stream, command) = (stream, command.clone());
            move || {
                stream.write_all(command.as_bytes()).expect("XADD");
                // The reply is a bulk string: `$<len>\r\n<id>\r\n`.
                let mut line = String::new();
                reader.read_line(&mut line).expect("XADD reply");
                let len: usize = line.trim().strip_prefix('$').and_then(|n| n.parse().ok()).expect("a bulk reply");
                let mut id = vec![0; len + 2];
                reader.read_exact(&mut id).expect("the entry id");
            }
        })
    }
}

/// `CONNECTIONS` keep-alive HTTP/1.1 connections, each posting `body` to `path` and reading the
/// response in a loop, for `seconds`: requests/s times `per_request`. A minimal client (a written
/// request, a parsed status line and `Content-Length`), as light as the Redis client beside it, so
/// that on a small machine the client's CPU does not decide the figure.
fn produce_load_raw(addr: &str, path: &str, body: &str, per_request: usize, seconds: f64) -> f64 {
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/vnd.kafka.binary.v2+json\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    closed_loop(seconds, per_request, || {
        let stream = TcpStream::connect(addr).expect("connect to the broker");
        stream.set_nodelay(true).unwrap();
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let (mut stream, request) = (stream, request.clone());
        move || {
            stream.write_all(request.as_bytes()).expect("produce");
            let mut line = String::new();
            reader.read_line(&mut line).expect("status line");
            assert!(line.starts_with("HTTP/1.1 200"), "produce answered {line:?}");
            let mut length = 0;
            loop {
                line.clear();
                reader.read_line(&mut line).expect("a header");
                if line == "\r\n" {
                    break;
                }
                if let Some((name, value)) = line.split_once(':') {
                    if name.eq_ignore_ascii_case("content-length") {
                        length = value.trim().parse().expect("Content-Length");
                    }
                }
            }
            let mut body = vec![0; length];
            reader.read_exact(&mut body).expect("the response body");
        }
    })
}

/// CPU time (user and kernel, all threads) a process has used so far, in ns, from
/// `/proc/PID/task/*/schedstat` (Linux; 0 elsewhere). Threads that exited are not counted, so it is
/// read around runs of long-lived threads only.
fn cpu_ns(pid: u32) -> u64 {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else { return 0 };
    tasks
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .sum()
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

    let only_single = std::env::var("KAPPALOG_BENCH_ONLY").is_ok_and(|s| s == "single");
    if !only_single {
        let batch_body = json!({"records": vec![json!({"value": value}); BATCH_RECORDS]}).to_string();
        batch_scenario(&url, batch_body, seconds);
    }
    single_record_scenario(broker.0.id(), &broker.1, &value, seconds);
    if !only_single {
        latency_scenario(&broker.1);
    }
}

fn batch_scenario(url: &str, batch_body: String, seconds: f64) {
    let batch = produce_load(url, batch_body, BATCH_RECORDS, seconds);
    let batch_lib = library_load(BATCH_RECORDS, seconds);
    println!(
        "produce {BATCH_RECORDS}x{RECORD_BYTES} B per request, {CONNECTIONS} connections: {batch:.0} records/s \
         (library baseline {batch_lib:.0} records/s, ratio {:.2})",
        batch / batch_lib
    );
}

/// One record per request: the broker (with its records per fsync) and Redis `XADD` with
/// `appendfsync always`, alternated, then the library baseline.
fn single_record_scenario(broker_pid: u32, base: &str, value: &str, seconds: f64) {
    let addr = base.strip_prefix("http://").expect("an http:// address");
    let path = "/topics/bench";
    let single_body = json!({"records": [{"value": value}]}).to_string();
    let redis = Redis::start();
    let (mut broker_runs, mut redis_runs, mut per_fsync) = (Vec::new(), Vec::new(), Vec::new());
    // CPU µs per record or entry of the server process (all its threads, user and kernel).
    let (mut broker_cpu, mut redis_cpu) = (Vec::new(), Vec::new());
    for _ in 0..PAIRS {
        let fsyncs0 = fsyncs(base);
        let (cpu0, t0) = (cpu_ns(broker_pid), Instant::now());
        let rate = produce_load_raw(addr, path, &single_body, 1, seconds);
        let records = rate * t0.elapsed().as_secs_f64();
        broker_cpu.push((cpu_ns(broker_pid) - cpu0) as f64 / 1000.0 / records.max(1.0));
        let synced = fsyncs(base) - fsyncs0;
        broker_runs.push(rate);
        per_fsync.push(records / synced.max(1) as f64);
        if let Some(redis) = &redis {
            let (cpu0, t0) = (cpu_ns(redis.child.id()), Instant::now());
            let rate = redis.xadd_load(seconds);
            let entries = rate * t0.elapsed().as_secs_f64();
            redis_cpu.push((cpu_ns(redis.child.id()) - cpu0) as f64 / 1000.0 / entries.max(1.0));
            redis_runs.push(rate);
        }
    }
    let single = median(broker_runs.clone());
    let single_lib = library_load(1, seconds);
    println!(
        "produce 1 record per request, {CONNECTIONS} connections: {single:.0} records/s, {:.1} records per fsync, \
         {:.1} µs broker CPU per record (runs {broker_runs:.0?}; library baseline {single_lib:.0} records/s, ratio {:.2})",
        median(per_fsync),
        median(broker_cpu),
        single / single_lib
    );
    if redis.is_some() {
        let xadd = median(redis_runs.clone());
        println!(
            "redis-server XADD 1 entry per command, appendfsync always, {CONNECTIONS} connections: {xadd:.0} \
             entries/s, {:.1} µs redis-server CPU per entry (runs {redis_runs:.0?}); broker / Redis ratio {:.2}",
            median(redis_cpu),
            single / xadd
        );
    }
}

/// Latency: one producer, one long-polling consumer on a one-partition topic.
fn latency_scenario(base: &str) {
    let broker_url = base.to_string();
    let base = base.to_string();
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
            .post(format!("{broker_url}/topics/latency"))
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
