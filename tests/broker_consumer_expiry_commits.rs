//! A consumer instance that expires (idle past `consumer.instance.timeout.ms`, by the store's
//! clock) commits what it fetched, with auto-commit, and leaves its group, whether the reaper
//! finds it or a request does first. The HTTP router runs in-process over a store with a
//! `ManualClock`, so the expiry is exact.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use kappalog::broker::http::{router, AppState, HttpConfig};
use kappalog::{clock::ManualClock, groups::TopicPartition, NewRecord, Store, StoreConfig, TopicConfig};
use serde_json::{json, Value};
use tower::ServiceExt as _;

const TIMEOUT_MS: i64 = 1_000;

struct Api {
    state: AppState,
}

impl Api {
    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let mut req = Request::builder().method(method).uri(path);
        if body.is_some() {
            req = req.header("Content-Type", "application/json");
        }
        let req = req.body(body.map_or(Body::empty(), |b| Body::from(b.to_string()))).unwrap();
        let resp = router(self.state.clone()).oneshot(req).await.unwrap();
        let status = resp.status();
        let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20).await.unwrap();
        (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
    }

    /// A subscribed instance of group `g` that fetched all three records of `t`.
    async fn instance_that_fetched(&self, name: &str) -> String {
        let body = json!({"name": name, "format": "binary", "auto.offset.reset": "earliest",
                          "consumer.instance.timeout.ms": TIMEOUT_MS});
        assert_eq!(self.call("POST", "/consumers/g", Some(body)).await.0, StatusCode::OK);
        let base = format!("/consumers/g/instances/{name}");
        let (s, b) = self.call("POST", &format!("{base}/subscription"), Some(json!({"topics": ["t"]}))).await;
        assert_eq!(s, StatusCode::NO_CONTENT, "{b}");
        let (s, recs) = self.call("GET", &format!("{base}/records?timeout=0"), None).await;
        assert_eq!(s, StatusCode::OK, "{recs}");
        assert_eq!(recs.as_array().unwrap().len(), 3, "{recs}");
        base
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_expiry_paths_commit_what_was_fetched() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(1_000_000);
    let store = Store::open(dir.path(), StoreConfig::default().clock(clock.clone())).unwrap();
    let t = store.create_topic("t", 1, TopicConfig::default()).unwrap();
    t.append(&[NewRecord::new("a"), NewRecord::new("b"), NewRecord::new("c")]).unwrap();
    let state = AppState::new(store.clone(), HttpConfig::default()).unwrap();
    let api = Api { state: state.clone() };
    let groups = store.groups().unwrap();
    let tp = TopicPartition::new("t", 0);

    // Found expired by a request: not found, committed, gone from the group.
    let base = api.instance_that_fetched("on-access").await;
    assert_eq!(groups.committed("g", &tp), None, "auto-commit happens at the next fetch or on expiry");
    clock.advance(TIMEOUT_MS);
    assert_eq!(api.call("GET", &format!("{base}/assignments"), None).await.0, StatusCode::OK, "not idle past it yet");
    clock.advance(TIMEOUT_MS + 1);
    let (s, b) = api.call("GET", &format!("{base}/assignments"), None).await;
    assert_eq!((s, b["error_code"].clone()), (StatusCode::NOT_FOUND, json!(40403)), "{b}");
    assert_eq!(groups.committed("g", &tp).map(|c| c.offset), Some(3), "the access path commits");
    assert!(groups.describe("g").unwrap().members.is_empty(), "and leaves");

    // Found by the reaper: the same.
    groups
        .reset_offsets(
            "g",
            kappalog::groups::ResetRequest {
                topic: Some("t".into()),
                partitions: None,
                strategy: kappalog::groups::ResetStrategy::ToEarliest,
                execute: true,
                force: false,
            },
        )
        .unwrap();
    let base = api.instance_that_fetched("by-reaper").await;
    clock.advance(TIMEOUT_MS + 1);
    tokio::task::spawn_blocking(move || state.consumers().reap()).await.unwrap();
    assert_eq!(groups.committed("g", &tp).map(|c| c.offset), Some(3), "the reaper path commits");
    assert!(groups.describe("g").unwrap().members.is_empty(), "and leaves");
    let (s, _) = api.call("GET", &format!("{base}/assignments"), None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}
