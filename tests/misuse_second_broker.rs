//! Misuse of the binary: a second `kappalog serve` on a data directory a running broker holds
//! exits at once with a non-zero status and a message naming the directory and its lock, and the
//! first broker goes on serving; a data directory written by a newer format version is refused
//! with a message naming the file and the versions.

mod broker_common;

use std::io::Read;
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::time::Instant;

use broker_common::{Broker, BINARY_V2, START_TIMEOUT};
use serde_json::json;

/// Runs `kappalog serve` on `dir` (any port) and waits, bounded, for it to exit on its own.
/// Returns its status, stdout and stderr; a process still running at the deadline is killed and
/// the test fails.
fn serve_expecting_exit(dir: &Path) -> (ExitStatus, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_kappalog"))
        .arg("serve")
        .env("KAPPALOG_KAFKA_LISTEN", "off")
        .arg("--data-dir")
        .arg(dir)
        .args(["--listen", "127.0.0.1:0"])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn kappalog serve");
    let deadline = Instant::now() + START_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("kappalog serve on {} was still running after {START_TIMEOUT:?}", dir.display());
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    };
    let (mut out, mut err) = (String::new(), String::new());
    child.stdout.take().unwrap().read_to_string(&mut out).unwrap();
    child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    (status, out, err)
}

#[test]
fn a_second_broker_on_the_same_data_dir_exits_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let first = Broker::start(dir.path(), &[]);
    let http = first.client();
    http.create_topic("t", 1, json!({}));
    let (s, b) = http.post_as("/topics/t", BINARY_V2, &json!({"records": [{"value": "YmVmb3Jl"}]}));
    assert_eq!(s, 200, "{b}");

    let (status, out, err) = serve_expecting_exit(dir.path());
    assert!(!status.success(), "the second broker exited with {status}; stderr: {err}");
    assert_eq!(status.code(), Some(kappalog::broker::cli::EXIT_FAILURE), "stderr: {err}");
    assert!(!out.contains("listening"), "the second broker must not listen: {out}");
    let dir_text = dir.path().display().to_string();
    assert!(err.contains(&dir_text), "stderr names the data directory {dir_text}: {err}");
    assert!(err.contains("locked") && err.contains("LOCK"), "stderr names the lock: {err}");
    assert!(err.contains("another kappalog serve"), "stderr says what probably holds it: {err}");
    assert_eq!(err.lines().count(), 1, "one line, no panic or backtrace: {err}");

    // The first broker is untouched: it still appends and serves what it had.
    let (s, b) = http.post_as("/topics/t", BINARY_V2, &json!({"records": [{"value": "YWZ0ZXI="}]}));
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["offsets"][0]["offset"], 1, "{b}");
    let values: Vec<Vec<u8>> = http.read_all("t", 0).into_iter().map(|(_, v)| v).collect();
    assert_eq!(values, vec![b"before".to_vec(), b"after".to_vec()]);
}

#[test]
fn a_newer_format_version_makes_serve_exit_with_a_clear_message() {
    // Written by hand, not by a `Store` in this process: the other test forks brokers, and a fork
    // briefly holds every lock descriptor open at that moment.
    let dir = tempfile::tempdir().unwrap();
    let meta = dir.path().join("kappalog.json");
    let newer = format!("{{\"format_version\": {}}}", kappalog::limits::FORMAT_VERSION + 1);
    std::fs::write(&meta, &newer).unwrap();

    let (status, out, err) = serve_expecting_exit(dir.path());
    assert_eq!(status.code(), Some(kappalog::broker::cli::EXIT_FAILURE), "stderr: {err}");
    assert!(!out.contains("listening"), "{out}");
    assert!(err.contains(&meta.display().to_string()), "stderr names the file: {err}");
    let versions = format!(
        "format version {}; this build reads up to version {}",
        kappalog::limits::FORMAT_VERSION + 1,
        kappalog::limits::FORMAT_VERSION
    );
    assert!(err.contains(&versions), "stderr gives both versions: {err}");
    assert_eq!(std::fs::read_to_string(&meta).unwrap(), newer, "the refusal rewrote nothing");
}
