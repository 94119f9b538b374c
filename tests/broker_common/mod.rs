//! A real `kappalog serve` child process on 127.0.0.1 (port 0), and a blocking HTTP client.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

/// How long a broker gets to start or stop.
pub const START_TIMEOUT: Duration = Duration::from_secs(30);

pub struct Broker {
    pub child: Option<Child>,
    pub url: String,
    /// The Kafka listener's address (`127.0.0.1:PORT`).
    pub kafka: String,
    pub data_dir: PathBuf,
}

impl Broker {
    pub fn start(data_dir: &Path, extra: &[&str]) -> Broker {
        Broker::start_with_stderr(data_dir, extra, Stdio::inherit())
    }

    /// Like [`start`](Self::start), with the broker's stderr (its logs, any panic message) going to `stderr`.
    pub fn start_with_stderr(data_dir: &Path, extra: &[&str], stderr: Stdio) -> Broker {
        Broker::start_under(&[], data_dir, extra, stderr)
    }

    /// Like [`start_with_stderr`](Self::start_with_stderr), run by `wrapper` (a command and its
    /// arguments, such as `prlimit --nofile=256`) when it is not empty.
    pub fn start_under(wrapper: &[&str], data_dir: &Path, extra: &[&str], stderr: Stdio) -> Broker {
        let mut command = match wrapper.split_first() {
            None => Command::new(env!("CARGO_BIN_EXE_kappalog")),
            Some((program, args)) => {
                let mut c = Command::new(program);
                c.args(args).arg(env!("CARGO_BIN_EXE_kappalog"));
                c
            }
        };
        let mut child = command
            .arg("serve")
            .arg("--data-dir")
            .arg(data_dir)
            .args(["--listen", "127.0.0.1:0"])
            .args(extra)
            .env("KAPPALOG_KAFKA_LISTEN", "127.0.0.1:0")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("spawn the broker");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(url) = line.strip_prefix("kappalog listening on ") {
                    let _ = tx.send(url.to_string());
                }
                if let Some(addr) = line.strip_prefix("kappalog kafka listening on ") {
                    let _ = tx.send(format!("kafka {addr}"));
                }
            }
        });
        let mut next = || match rx.recv_timeout(START_TIMEOUT) {
            Ok(line) => line,
            Err(e) => {
                let _ = child.kill();
                panic!("the broker did not start within {START_TIMEOUT:?}: {e}");
            }
        };
        let url = next();
        // The Kafka line follows the HTTP one unless the test turned the listener off.
        let off = extra.windows(2).any(|w| w == ["--kafka-listen", "off"]);
        let kafka =
            if off { String::new() } else { next().strip_prefix("kafka ").expect("the Kafka line").to_string() };
        Broker { child: Some(child), url, kafka, data_dir: data_dir.to_path_buf() }
    }

    /// `kill -9`: no flush, no shutdown marker.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().expect("SIGKILL");
            c.wait().expect("reap");
        }
    }

    /// SIGTERM, then waits (bounded) for the exit status.
    pub fn terminate(&mut self) -> ExitStatus {
        let mut c = self.child.take().expect("running");
        let sent = Command::new("kill").args(["-TERM", &c.id().to_string()]).status().expect("run kill");
        assert!(sent.success(), "kill -TERM failed");
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(status) = c.try_wait().expect("try_wait") {
                return status;
            }
            assert!(Instant::now() < deadline, "the broker did not exit within {START_TIMEOUT:?} of SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn client(&self) -> Http {
        Http::new(&self.url)
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

pub struct Http {
    pub client: reqwest::blocking::Client,
    pub base: String,
}

pub const JSON_V2: &str = "application/vnd.kafka.json.v2+json";
pub const BINARY_V2: &str = "application/vnd.kafka.binary.v2+json";

impl Http {
    pub fn new(base: &str) -> Http {
        let client = reqwest::blocking::Client::builder().timeout(Duration::from_secs(60)).build().expect("client");
        Http { client, base: base.to_string() }
    }

    /// Any request; returns (status, body parsed as JSON or Null).
    pub fn call(&self, method: &str, path: &str, content_type: Option<&str>, body: Option<Vec<u8>>) -> (u16, Value) {
        let m = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut req = self.client.request(m, format!("{}{path}", self.base));
        if let Some(ct) = content_type {
            req = req.header("Content-Type", ct);
        }
        if let Some(b) = body {
            req = req.body(b);
        }
        let resp = req.send().unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let status = resp.status().as_u16();
        let bytes = resp.bytes().expect("body");
        (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
    }

    pub fn get(&self, path: &str) -> (u16, Value) {
        self.call("GET", path, None, None)
    }
    pub fn get_accept(&self, path: &str, accept: &str) -> (u16, Value) {
        let resp = self.client.get(format!("{}{path}", self.base)).header("Accept", accept).send().expect("send");
        let status = resp.status().as_u16();
        (status, resp.json().unwrap_or(Value::Null))
    }
    pub fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        self.call("POST", path, Some("application/json"), Some(body.to_string().into_bytes()))
    }
    pub fn post_as(&self, path: &str, content_type: &str, body: &Value) -> (u16, Value) {
        self.call("POST", path, Some(content_type), Some(body.to_string().into_bytes()))
    }
    pub fn delete(&self, path: &str) -> (u16, Value) {
        self.call("DELETE", path, None, None)
    }

    /// Creates a topic, asserting success.
    pub fn create_topic(&self, name: &str, partitions: u32, configs: Value) {
        let (s, b) =
            self.post("/topics", &serde_json::json!({"name": name, "partitions": partitions, "configs": configs}));
        assert_eq!(s, 201, "create {name}: {b}");
    }

    /// Every record of a partition, read with the stateless fetch (binary values decoded).
    pub fn read_all(&self, topic: &str, partition: u32) -> Vec<(u64, Vec<u8>)> {
        use base64::Engine as _;
        let mut out = Vec::new();
        let (s, o) = self.get(&format!("/topics/{topic}/partitions/{partition}/offsets"));
        assert_eq!(s, 200, "{o}");
        let end = o["end_offset"].as_u64().unwrap();
        let mut next = o["beginning_offset"].as_u64().unwrap();
        while next < end {
            let (s, recs) = self.get_accept(
                &format!("/topics/{topic}/partitions/{partition}/records?offset={next}&timeout=0"),
                BINARY_V2,
            );
            assert_eq!(s, 200, "{recs}");
            let recs = recs.as_array().unwrap().clone();
            assert!(!recs.is_empty(), "no progress at offset {next} of {end}");
            for r in recs {
                let off = r["offset"].as_u64().unwrap();
                let v = base64::engine::general_purpose::STANDARD.decode(r["value"].as_str().unwrap()).unwrap();
                out.push((off, v));
                next = off + 1;
            }
        }
        out
    }
}
