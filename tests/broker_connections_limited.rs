//! Connections time out and are limited. A real broker with its open-file limit lowered to 256
//! (`prlimit`) keeps at most 128 connections, closes the rest at once with a log line, drops idle
//! connections after `keep_alive_idle_ms` and half-sent request heads after
//! `header_read_timeout_ms`; 300 idle connections never stop other clients for longer than
//! that, and the store can still open files (a new topic's segments).

mod broker_common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use broker_common::{Broker, Http};

/// Waits (bounded) until the server closes `s`: a read gives end of file or a reset.
fn closed_within(s: &mut TcpStream, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    let mut buf = [0; 1024];
    while Instant::now() < deadline {
        s.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => continue,
            Err(_) => return true,
        }
    }
    false
}

#[test]
fn idle_and_half_sent_connections_are_dropped_and_the_rest_refused() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("kappalog.toml");
    std::fs::write(&config, "header_read_timeout_ms = 1000\nkeep_alive_idle_ms = 2000\n").unwrap();
    let data = dir.path().join("data");
    let config_arg = config.to_str().unwrap();
    let mut broker =
        Broker::start_under(&["prlimit", "--nofile=256"], &data, &["--config", config_arg], Stdio::piped());
    let stderr = broker.child.as_mut().unwrap().stderr.take().unwrap();
    let log = Arc::new(Mutex::new(String::new()));
    let sink = Arc::clone(&log);
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            sink.lock().unwrap().push_str(&(line + "\n"));
        }
    });
    let addr = broker.url.trim_start_matches("http://").to_string();

    // A half-sent request line is dropped after the header-read timeout.
    let mut half = TcpStream::connect(&addr).unwrap();
    half.write_all(b"GET /hea").unwrap();
    let sent = Instant::now();
    assert!(closed_within(&mut half, Duration::from_secs(6)), "a half-sent request head was never dropped");
    assert!(sent.elapsed() >= Duration::from_millis(900), "dropped before its timeout: {:?}", sent.elapsed());

    // 300 connections that send nothing: at most 128 are kept, the others are closed at once.
    let mut idle: Vec<TcpStream> = (0..300).map(|_| TcpStream::connect(&addr).unwrap()).collect();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !log.lock().unwrap().contains("connection refused") {
        assert!(Instant::now() < deadline, "no log line about refused connections:\n{}", log.lock().unwrap());
        std::thread::sleep(Duration::from_millis(20));
    }
    let fds = std::fs::read_dir(format!("/proc/{}/fd", broker.child.as_ref().unwrap().id())).unwrap().count();
    assert!(fds < 256, "{fds} file descriptors open");

    // Within the idle timeout (and some slack) they are all gone, and other clients get through,
    // to a new topic whose files open.
    let http = Http::new(&broker.url);
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let created = http
            .client
            .post(format!("{}/topics", broker.url))
            .header("Content-Type", "application/json")
            .body(r#"{"name": "fresh", "partitions": 4}"#)
            .timeout(Duration::from_secs(2))
            .send();
        match created {
            Ok(r) if r.status().as_u16() == 201 => break,
            Ok(r) => panic!("creating a topic: {} {}", r.status(), r.text().unwrap_or_default()),
            Err(_) => assert!(Instant::now() < deadline, "no other client got through the idle connections"),
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let (s, b) = http.post("/topics/fresh", &serde_json::json!({"records": [{"value": 1}]}));
    assert_eq!(s, 200, "{b}");
    for (i, c) in idle.iter_mut().enumerate() {
        assert!(closed_within(c, Duration::from_secs(5)), "idle connection {i} is still open");
    }
    let metrics = http.client.get(format!("{}/metrics", broker.url)).send().unwrap().text().unwrap();
    let refused = metrics
        .lines()
        .find_map(|l| l.strip_prefix("kappalog_http_connections_refused_total "))
        .and_then(|v| v.trim().parse::<u64>().ok())
        .expect("the refused-connections counter");
    assert!(refused >= 300 - 128, "{refused} connections refused");
    let status = broker.terminate();
    assert!(status.success(), "{status:?}");
}
