//! A produce request's memory is bounded by its body, not by its number of records: the real
//! broker's peak resident memory (`VmHWM` in `/proc/<pid>/status`) grows by at most 4 times the
//! body for a body of tiny records near the records limit and for one far over it (refused while
//! parsing), and by at most `REQUEST_MEMORY_FACTOR` times for empty records (the worst case) to a
//! topic of several partitions. A `Content-Length` over `body_bytes_max` is refused from the
//! header, and requests over the budget of memory in flight get a 503 with `Retry-After`.

mod broker_common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use broker_common::Broker;
use kappalog::broker::http::budget::REQUEST_MEMORY_FACTOR;
use kappalog::broker::http::produce_body::PRODUCE_RECORDS_MAX;

/// A field of `/proc/<pid>/status`, in bytes.
fn status_bytes(pid: u32, field: &str) -> u64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read /proc/<pid>/status");
    let line = text.lines().find(|l| l.starts_with(field)).unwrap_or_else(|| panic!("{field} in {text}"));
    let kib: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kib * 1024
}

/// `{"records":[{"value":1},...]}` with `n` records.
fn tiny_records(n: usize) -> Vec<u8> {
    records_of(n, r#"{"value":1}"#)
}

fn records_of(n: usize, record: &str) -> Vec<u8> {
    let mut body = Vec::with_capacity(n * (record.len() + 1) + 16);
    body.extend_from_slice(br#"{"records":["#);
    for i in 0..n {
        if i > 0 {
            body.push(b',');
        }
        body.extend_from_slice(record.as_bytes());
    }
    body.extend_from_slice(b"]}");
    body
}

fn peak_growth(broker: &Broker, topic: &str, body: Vec<u8>, want_status: u16) -> (u64, u64) {
    let pid = broker.child.as_ref().unwrap().id();
    let http = broker.client();
    let before = status_bytes(pid, "VmHWM:");
    let len = body.len() as u64;
    let path = format!("/topics/{topic}");
    let (s, b) = http.call("POST", &path, Some("application/vnd.kafka.json.v2+json"), Some(body));
    assert_eq!(s, want_status, "{}", &b.to_string()[..b.to_string().len().min(300)]);
    if s == 200 {
        assert_eq!(b["offsets"].as_array().unwrap().len(), PRODUCE_RECORDS_MAX - 1);
    }
    (status_bytes(pid, "VmHWM:") - before, len)
}

#[test]
fn a_produce_of_tiny_records_peaks_within_four_times_its_body() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(dir.path(), &[]);
    let http = broker.client();
    http.create_topic("t", 1, serde_json::json!({"durability": "none"}));
    // Warm up: the first request's one-time allocations are not the request's.
    let (s, b) = http.call("POST", "/topics/t", None, Some(tiny_records(1000)));
    assert_eq!(s, 200, "{b}");

    let (grew, len) = peak_growth(&broker, "t", tiny_records(PRODUCE_RECORDS_MAX - 1), 200);
    eprintln!("accepted: body {len} B, peak grew {grew} B");
    assert!(grew <= 4 * len, "peak grew {grew} B for a body of {len} B");

    // Far over the records limit (about 5 M records): refused while parsing, within the bound too.
    let (grew, len) = peak_growth(&broker, "t", tiny_records(5_000_000), 422);
    eprintln!("refused: body {len} B, peak grew {grew} B");
    assert!(grew <= 4 * len, "peak grew {grew} B for a body of {len} B");
}

#[test]
fn a_produce_of_empty_records_peaks_within_the_documented_factor() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(dir.path(), &[]);
    let http = broker.client();
    http.create_topic("t", 4, serde_json::json!({"durability": "none"}));
    let (s, b) = http.call("POST", "/topics/t", None, Some(records_of(1000, "{}")));
    assert_eq!(s, 200, "{b}");
    let (grew, len) = peak_growth(&broker, "t", records_of(PRODUCE_RECORDS_MAX - 1, "{}"), 200);
    eprintln!("empty records: body {len} B, peak grew {grew} B");
    assert!(grew <= REQUEST_MEMORY_FACTOR as u64 * len, "peak grew {grew} B for a body of {len} B");
}

/// Sends `head` on a new connection and reads the response's status line within `within`.
fn status_of(addr: &str, head: &str, within: Duration) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(within)).unwrap();
    s.write_all(head.as_bytes()).unwrap();
    let mut got = Vec::new();
    let mut buf = [0; 4096];
    let deadline = Instant::now() + within;
    while !got.windows(4).any(|w| w == b"\r\n\r\n") {
        assert!(Instant::now() < deadline, "no response head within {within:?}: {:?}", String::from_utf8_lossy(&got));
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) => panic!("no response within {within:?}: {e}"),
        }
    }
    let text = String::from_utf8_lossy(&got).into_owned();
    let status = text.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    (status, text)
}

#[test]
fn an_oversized_content_length_is_refused_before_the_body_and_the_budget_is_shared() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("kappalog.toml");
    // Room for two requests of 1 MiB in flight (each reserves REQUEST_MEMORY_FACTOR MiB).
    let budget = (2 * REQUEST_MEMORY_FACTOR) << 20;
    std::fs::write(&config, format!("body_bytes_max = 1048576\nrequests_memory_bytes_max = {budget}\n")).unwrap();
    let broker = Broker::start(&dir.path().join("data"), &["--config", config.to_str().unwrap()]);
    let addr = broker.url.trim_start_matches("http://").to_string();
    broker.client().create_topic("t", 1, serde_json::json!({}));

    // Not one byte of the 2 GB body is sent: the 413 comes from the header.
    let head =
        "POST /topics/t HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 2000000000\r\n\r\n";
    let (status, text) = status_of(&addr, head, Duration::from_secs(5));
    assert_eq!(status, 413, "{text}");

    // Two requests that declare 1 MiB and send nothing more hold the whole budget...
    let head =
        "POST /topics/t HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1048576\r\n\r\n{";
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut s = TcpStream::connect(&addr).unwrap();
        s.write_all(head.as_bytes()).unwrap();
        held.push(s);
    }
    // ...until they are reserved (the metrics gauge shows it)...
    let http = broker.client();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = http.client.get(format!("{}/metrics", broker.url)).send().unwrap().text().unwrap();
        let reserved = text
            .lines()
            .find_map(|l| l.strip_prefix("kappalog_http_requests_memory_reserved_bytes "))
            .and_then(|v| v.trim().parse::<u64>().ok())
            .expect("the reserved-memory gauge");
        if reserved >= budget as u64 {
            break;
        }
        assert!(Instant::now() < deadline, "the two requests did not reserve the budget: {reserved}");
        std::thread::sleep(Duration::from_millis(20));
    }
    // ...so a third gets a 503 with Retry-After once it has waited for room.
    let body = r#"{"records":[{"value":1}]}"#;
    let head = format!(
        "POST /topics/t HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let (status, text) = status_of(&addr, &head, Duration::from_secs(15));
    assert_eq!(status, 503, "{text}");
    assert!(text.to_ascii_lowercase().contains("retry-after: 1"), "{text}");
    // Once they go, the budget is free again.
    drop(held);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (s, b) = http.call("POST", "/topics/t", Some("application/json"), Some(body.as_bytes().to_vec()));
        if s == 200 {
            break;
        }
        assert!(s == 503 && Instant::now() < deadline, "{s} {b}");
    }
}
