//! Whatever stops a view's runner shows as `failed` with the error, never as a healthy
//! `running` view: a panic in the logic (caught at the runner's boundary), a source topic deleted
//! under the view. A reopen retries, and fails again, visibly, while the cause remains.

mod view_common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use kappalog::{
    stream::{ViewLogic, ViewRunState, ViewStatus},
    NewRecord, Record, TopicConfig, View,
};
use serde_json::{json, Value};
use view_common::{open, wait};

/// Counts records per key; panics on the key `boom` (a bug in the logic).
struct PanicsOnBoom;

impl ViewLogic for PanicsOnBoom {
    fn init(&self, _key: &str) -> Value {
        json!(0)
    }
    fn apply(&self, key: &str, state: &mut Value, _record: &Record) -> bool {
        assert_ne!(key, "boom", "the logic cannot handle this key");
        *state = json!(state.as_u64().unwrap() + 1);
        true
    }
}

fn wait_failed(view: &View) -> ViewStatus {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let st = view.status();
        if st.state == ViewRunState::Failed {
            return st;
        }
        assert!(Instant::now() < deadline, "the view did not fail: {st:#?}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn a_panic_in_the_runner_shows_as_failed_and_a_reopen_retries() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (store, views) = open(dir.path());
        let t = store.create_topic("t", 1, TopicConfig::default()).unwrap();
        let view = views.create_custom("counts", &["t"], None, Arc::new(PanicsOnBoom)).unwrap();
        t.append(&[NewRecord::keyed("a", "1"), NewRecord::keyed("a", "2")]).unwrap();
        wait(&view);
        t.append(&[NewRecord::keyed("boom", "3")]).unwrap();
        let st = wait_failed(&view);
        let error = st.error.clone().unwrap_or_default();
        assert!(error.contains("panicked") && error.contains("cannot handle this key"), "{st:#?}");
        assert!(!view.wait_caught_up(Duration::from_secs(1)), "a failed view never reports caught up");
        assert_eq!(view.get("a").unwrap().value, Some(json!(2)), "queries still answer");
    }
    // A reopen retries: the same record fails the same way, visibly.
    let (_store, views) = open(dir.path());
    let view = views.create_custom("counts", &["t"], None, Arc::new(PanicsOnBoom)).unwrap();
    let st = wait_failed(&view);
    assert!(st.error.unwrap().contains("panicked"));
    assert_eq!(view.get("a").unwrap().value, Some(json!(2)), "the checkpoint held what was applied before");
}

#[test]
fn a_source_topic_deleted_under_a_view_shows_as_failed() {
    let dir = tempfile::tempdir().unwrap();
    let spec = r#"{"name": "v", "source": {"topics": ["t", "u"]}, "aggregates": {"n": {"op": "count"}}}"#;
    {
        let (store, views) = open(dir.path());
        let t = store.create_topic("t", 2, TopicConfig::default()).unwrap();
        store.create_topic("u", 1, TopicConfig::default()).unwrap();
        let view = views.create_json(spec.as_bytes()).unwrap();
        t.append(&[NewRecord::keyed("a", "{}")]).unwrap();
        wait(&view);
        assert_eq!(view.status().state, ViewRunState::Running);
        store.delete_topic("u").unwrap();
        let st = wait_failed(&view);
        assert!(st.error.as_deref().unwrap().contains(r#"source topic "u""#), "{st:#?}");
        // Created again: still failed (its offsets are not the new topic's).
        store.create_topic("u", 1, TopicConfig::default()).unwrap();
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(view.status().state, ViewRunState::Failed);
    }
    {
        let (store, _views) = open(dir.path());
        store.delete_topic("u").unwrap();
    }
    {
        // Reopened without the topic: the view opens, shows its state, and is failed.
        let (_store, views) = open(dir.path());
        let view = views.get("v").unwrap();
        let st = wait_failed(&view);
        assert!(st.error.as_deref().unwrap().contains(r#"source topic "u""#), "{st:#?}");
        assert_eq!(view.get("a").unwrap().value, Some(json!({"n": 1})));
    }
}
