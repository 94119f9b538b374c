//! Running real Kafka clients (kcat, the Python clients in `tests/kafka_clients/clients.py`)
//! against a broker. `.ci/run` installs them; a missing client fails the test under CI (`CI`
//! set) or with `KAPPALOG_KAFKA_CLIENTS=required`, and is reported loudly and skipped otherwise.
#![allow(dead_code)]

use std::io::Read;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// How long one client run may take.
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(120);

fn required() -> bool {
    std::env::var_os("CI").is_some() || std::env::var("KAPPALOG_KAFKA_CLIENTS").is_ok_and(|v| v == "required")
}

/// Whether `probe` (a command that exits 0 when the client is installed) succeeds; when it does
/// not: panics under CI, else prints why the test is skipped.
pub fn have(what: &str, probe: &mut Command) -> bool {
    let ok = probe.stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok_and(|s| s.success());
    if !ok {
        if required() {
            panic!("{what} is not installed (.ci/run installs it)");
        }
        eprintln!("SKIPPED: {what} is not installed; .ci/run installs it (CI fails without it)");
    }
    ok
}

pub fn have_kcat() -> bool {
    have("kcat", Command::new("kcat").arg("-V"))
}

pub fn have_python(module: &str) -> bool {
    have(&format!("the Python module {module}"), Command::new("python3").args(["-c", &format!("import {module}")]))
}

/// Waits for `child` to exit within `CLIENT_TIMEOUT` (killing it past that) and returns its output.
pub fn finish(mut child: Child, what: &str) -> Output {
    let deadline = Instant::now() + CLIENT_TIMEOUT;
    let (mut out, mut err) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
    let reader = std::thread::spawn(move || {
        let mut b = Vec::new();
        let _ = out.read_to_end(&mut b);
        b
    });
    let err_reader = std::thread::spawn(move || {
        let mut b = Vec::new();
        let _ = err.read_to_end(&mut b);
        b
    });
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} did not finish within {CLIENT_TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Output { status, stdout: reader.join().unwrap(), stderr: err_reader.join().unwrap() }
}

/// Runs `tests/kafka_clients/clients.py COMMAND ARGS...` and parses its JSON answer.
pub fn python(args: &[&str]) -> Value {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/kafka_clients/clients.py");
    let child = Command::new("python3")
        .arg(script)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3");
    let out = finish(child, &format!("clients.py {}", args[0]));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "clients.py {args:?} failed: {stderr}");
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("clients.py {}: {e}: {}", args[0], String::from_utf8_lossy(&out.stdout)))
}

/// Runs kcat with `args` and `stdin`, returning (stdout, stderr); it must exit 0.
pub fn kcat(args: &[&str], stdin: &[u8]) -> (String, String) {
    use std::io::Write;
    let mut child = Command::new("kcat")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kcat");
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin).unwrap();
    drop(input);
    let out = finish(child, "kcat");
    let (o, e) = (String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned());
    assert!(out.status.success(), "kcat {args:?} failed: {e}");
    (o, e)
}

pub fn b64(s: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(s)
}

/// Where `.ci/run` installs kafkajs.
pub const NODE_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/kafka_clients");

pub fn have_kafkajs() -> bool {
    have("kafkajs (npm)", Command::new("node").args(["-e", "require('kafkajs')"]).current_dir(NODE_DIR))
}

/// Runs `node tests/kafka_clients/SCRIPT ARGS...` and parses its JSON answer.
pub fn node(script: &str, args: &[&str]) -> Value {
    let child = Command::new("node")
        .arg(script)
        .args(args)
        .current_dir(NODE_DIR)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("node");
    let out = finish(child, script);
    assert!(out.status.success(), "{script} failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{script}: {e}"))
}
