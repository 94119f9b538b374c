//! The `http_bodies` fuzz target's harness, shared with `tests/http_bodies_fuzz_seeds.rs` (which
//! includes this file by path): a broker's router over a store in a temporary directory, called
//! in-process; one input is one request whose first byte picks the route and content type and
//! whose remaining bytes are the body.
//!
//! Properties: no panic; no 5xx; every 4xx body is JSON `{"error_code": <status × 100 + detail>,
//! "message": <string>}`; every 2xx body is empty or JSON; and, when the harness is dropped, the
//! data directory opens again (store, group coordinator, views): no request can leave the broker
//! unable to restart. And a request's peak resident memory (Linux: `VmHWM`, reset before each
//! request through `/proc/self/clear_refs`) grows by at most `REQUEST_MEMORY_FACTOR` times its
//! body plus [`MEMORY_SLACK_BYTES`].
#![allow(dead_code)]

use std::path::Path;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use kappalog::broker::http::budget::REQUEST_MEMORY_FACTOR;
use kappalog::broker::http::{router, AppState, HttpConfig};
use kappalog::{CleanupPolicy, Durability, Store, StoreConfig, TopicConfig, Views, ViewsConfig};
use tower::ServiceExt;

/// Largest request body the harness's broker accepts (bigger ones get a 413).
pub const BODY_BYTES_MAX: usize = 1024 * 1024;
/// The topics' data stays under about partitions × this (retention by size, small segments).
const RETENTION_BYTES: i64 = 256 * 1024;
const SEGMENT_BYTES: u64 = 32 * 1024;
/// A spec that `PUT /views/v` bodies replace; its source is `t`.
const VIEW_SPEC: &str =
    r#"{"name": "v", "source": {"topics": ["t"]}, "key": "/k", "aggregates": {"n": {"op": "count"}}}"#;

/// What a request's peak memory may exceed `REQUEST_MEMORY_FACTOR` x its body by: the runtime's
/// and the background threads' allocations, page granularity.
pub const MEMORY_SLACK_BYTES: u64 = 16 << 20;

/// A field of `/proc/self/status` in bytes (`None` where there is no such file).
fn status_bytes(field: &str) -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = text.lines().find(|l| l.starts_with(field))?;
    Some(line.split_whitespace().nth(1)?.parse::<u64>().ok()? * 1024)
}

/// Resets the peak resident memory to the current one and returns it.
fn reset_peak() -> Option<u64> {
    std::fs::write("/proc/self/clear_refs", "5").ok()?;
    status_bytes("VmRSS:")
}

/// How long a view gets to catch up before the reopen check.
const VIEW_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

/// The routes an input can reach: (method, path, content type).
pub const ROUTES: &[(&str, &str, Option<&str>)] = &[
    ("POST", "/topics/t", Some("application/vnd.kafka.binary.v2+json")),
    ("POST", "/topics/t", Some("application/vnd.kafka.json.v2+json")),
    ("POST", "/topics/t/partitions/0", Some("application/vnd.kafka.binary.v2+json")),
    ("POST", "/topics/t/partitions/1", Some("application/vnd.kafka.json.v2+json")),
    ("POST", "/topics/c", Some("application/vnd.kafka.json.v2+json")),
    ("POST", "/topics/t", None),
    ("POST", "/consumers/g/instances/i/offsets", Some("application/vnd.kafka.v2+json")),
    ("POST", "/groups/g/reset-offsets", Some("application/json")),
    ("POST", "/views", Some("application/json")),
    ("PUT", "/views/v", Some("application/json")),
];

#[derive(Debug)]
pub struct Harness {
    // Dropped in this order: the router and state (views stop), then the runtime, then the files.
    app: Option<axum::Router>,
    state: Option<AppState>,
    runtime: tokio::runtime::Runtime,
    dir: tempfile::TempDir,
    /// Requests served since the harness was made.
    pub requests: u64,
    /// The body of the last response.
    pub last_body: String,
}

fn topic_config(policy: CleanupPolicy) -> TopicConfig {
    TopicConfig::default()
        .segment_bytes(SEGMENT_BYTES)
        .retention_bytes(RETENTION_BYTES)
        .durability(Durability::None)
        .cleanup_policy(policy)
}

fn store_config() -> StoreConfig {
    StoreConfig::default().cleaner_interval_ms(500)
}

impl Harness {
    /// A store with topics `t` (2 partitions) and `c` (compacted), a view `v` over `t`, and a
    /// consumer instance `i` of group `g` with `t`'s partitions assigned (no live group members,
    /// so both commits and offset resets apply).
    pub fn new() -> Harness {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), store_config()).unwrap();
        store.create_topic("t", 2, topic_config(CleanupPolicy::Delete)).unwrap();
        store.create_topic("c", 1, topic_config(CleanupPolicy::Compact)).unwrap();
        let state = {
            let _enter = runtime.enter();
            let config = HttpConfig { body_bytes_max: BODY_BYTES_MAX, ..HttpConfig::default() };
            AppState::new(store, config).unwrap()
        };
        let app = router(state.clone());
        let mut h = Harness { app: Some(app), state: Some(state), runtime, dir, requests: 0, last_body: String::new() };
        for (method, path, body, want) in [
            ("POST", "/views", VIEW_SPEC, 201),
            (
                "POST",
                "/consumers/g",
                r#"{"name": "i", "format": "binary", "consumer.instance.timeout.ms": 86400000}"#,
                200,
            ),
            (
                "POST",
                "/consumers/g/instances/i/assignments",
                r#"{"partitions": [{"topic": "t", "partition": 0}, {"topic": "t", "partition": 1}]}"#,
                204,
            ),
            ("POST", "/topics/t", r#"{"records": [{"key": "a", "value": {"k": "x"}}, {"value": {"k": "y"}}]}"#, 200),
        ] {
            let (status, text) = h.call(method, path, Some("application/json"), body.as_bytes().to_vec());
            assert_eq!(status.as_u16(), want, "setup {method} {path}: {text}");
        }
        h
    }

    pub fn data_dir(&self) -> &Path {
        self.dir.path()
    }

    fn call(&mut self, method: &str, path: &str, content_type: Option<&str>, body: Vec<u8>) -> (StatusCode, String) {
        let (status, text, _) = self.call_measured(method, path, content_type, body);
        (status, text)
    }

    /// [`call`](Self::call), also giving how much the process's peak memory grew until the
    /// response's head came back (the broker streams long bodies; the harness's copy of the
    /// response is not the broker's memory).
    fn call_measured(
        &mut self,
        method: &str,
        path: &str,
        content_type: Option<&str>,
        body: Vec<u8>,
    ) -> (StatusCode, String, Option<u64>) {
        let mut req = Request::builder().method(Method::from_bytes(method.as_bytes()).unwrap()).uri(path);
        if let Some(ct) = content_type {
            req = req.header("content-type", ct);
        }
        let req = req.body(Body::from(body)).unwrap();
        let app = self.app.clone().expect("open");
        self.requests += 1;
        let before = reset_peak();
        self.runtime.block_on(async move {
            let resp = app.oneshot(req).await.expect("the router is infallible");
            let grew = before.zip(status_bytes("VmHWM:")).map(|(before, peak)| peak.saturating_sub(before));
            let status = resp.status();
            let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX).await.expect("a response body");
            (status, String::from_utf8(bytes.to_vec()).expect("response bodies are UTF-8"), grew)
        })
    }

    /// One input: the first byte picks the route, the rest is the body. Checks the response and
    /// returns its status.
    pub fn run(&mut self, data: &[u8]) -> u16 {
        let (&first, body) = data.split_first().unwrap_or((&0, &[]));
        let (method, path, content_type) = ROUTES[first as usize % ROUTES.len()];
        let (status, text, grew) = self.call_measured(method, path, content_type, body.to_vec());
        let what = || format!("{method} {path} with {:?}", String::from_utf8_lossy(&body[..body.len().min(200)]));
        assert!(!status.is_server_error(), "{}: {status} {text}", what());
        if let Some(grew) = grew {
            // The harness's copy of the body is the request's too.
            let bound = (REQUEST_MEMORY_FACTOR as u64 + 1) * body.len() as u64 + MEMORY_SLACK_BYTES;
            assert!(grew <= bound, "{}: peak memory grew {grew} B for a body of {} B", what(), body.len());
        }
        if status.is_client_error() {
            let v: serde_json::Value =
                serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {status}: not JSON: {text:?}: {e}", what()));
            let code = v["error_code"].as_i64().unwrap_or_else(|| panic!("{}: no error_code: {text}", what()));
            assert!(v["message"].as_str().is_some_and(|m| !m.is_empty()), "{}: no message: {text}", what());
            assert_eq!(code / 100, status.as_u16() as i64, "{}: error_code {code} for {status}", what());
        } else if !text.is_empty() {
            serde_json::from_str::<serde_json::Value>(&text)
                .unwrap_or_else(|e| panic!("{}: {status}: not JSON: {text:?}: {e}", what()));
        }
        if method == "POST" && path == "/views" && status == StatusCode::CREATED {
            // Views run threads: remove the one just made, so that the harness stays small.
            let name = serde_json::from_str::<serde_json::Value>(&text).unwrap()["name"].as_str().unwrap().to_string();
            let views = self.state.as_ref().unwrap().views().clone();
            views.delete(&name).unwrap_or_else(|e| panic!("delete the new view {name:?}: {e}"));
        }
        self.last_body = text;
        status.as_u16()
    }

    /// Closes the broker and opens its data directory again as a broker would at start.
    pub fn reopen_check(&mut self) {
        // Let every view finish what it was doing (a rebuild may be about to write its results).
        let views = self.state.as_ref().expect("open").views().clone();
        for name in views.list() {
            if let Ok(v) = views.get(&name) {
                v.wait_caught_up(VIEW_WAIT);
            }
        }
        drop(views);
        drop((self.app.take(), self.state.take()));
        let store = Store::open(self.dir.path(), store_config()).expect("the store opens again");
        store.groups().expect("the group coordinator opens again");
        let views = Views::open(&store, ViewsConfig::default()).expect("the views open again");
        views.close();
    }
}

impl Default for Harness {
    fn default() -> Self {
        Harness::new()
    }
}
