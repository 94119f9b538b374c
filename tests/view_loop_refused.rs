//! Views may not form a loop through their emit topics (`a` -> view -> `b` -> view -> `a`): every
//! result would be read again and emit again, for ever. Creating or redefining a view (declarative
//! or custom) that closes a loop is refused naming `emit.topic` and the path; nothing is started.
//! A view being rebuilt counts with both its definitions until the new one takes over.

mod view_common;

use std::time::Duration;

use kappalog::{
    stream::{ViewError, ViewLogic},
    NewRecord, Record, TopicConfig, ViewSpec,
};
use serde_json::{json, Value};
use view_common::open;

const WAIT: Duration = Duration::from_secs(60);

fn spec(name: &str, source: &str, emit: Option<&str>) -> ViewSpec {
    let mut spec = json!({"name": name, "source": {"topics": [source]}, "key": "/k",
        "aggregates": {"n": {"op": "count"}}});
    if let Some(emit) = emit {
        spec["emit"] = json!({"topic": emit});
    }
    ViewSpec::from_json(spec.to_string().as_bytes()).unwrap()
}

fn assert_loop_refused<T: std::fmt::Debug>(r: kappalog::stream::Result<T>, path: &str) {
    match r {
        Err(ViewError::InvalidSpec { field, reason }) => {
            assert_eq!(field, "emit.topic", "{reason}");
            assert!(reason.contains("loop") && reason.contains(path), "{reason}");
        }
        other => panic!("expected a loop refused on emit.topic, got {other:?}"),
    }
}

struct Count;

impl ViewLogic for Count {
    fn init(&self, _key: &str) -> Value {
        json!(0)
    }
    fn apply(&self, _key: &str, state: &mut Value, _record: &Record) -> bool {
        *state = json!(state.as_u64().unwrap() + 1);
        true
    }
    fn emit(&self, _key: &str, state: &Value) -> Option<Value> {
        Some(state.clone())
    }
}

#[test]
fn views_cannot_emit_in_a_loop() {
    let dir = tempfile::tempdir().unwrap();
    let (store, views) = open(dir.path());
    for t in ["a", "b", "c", "d"] {
        store.create_topic(t, 1, TopicConfig::default()).unwrap();
    }
    store.topic("a").unwrap().append(&[NewRecord::new(r#"{"k": "x"}"#)]).unwrap();
    views.create(spec("v1", "a", Some("b"))).unwrap();
    views.create(spec("v2", "b", Some("c"))).unwrap();

    // c -> a closes a -> v1 -> b -> v2 -> c.
    let a_to_c = r#""a" -> view "v1" -> "b" -> view "v2" -> "c""#;
    assert_loop_refused(views.create(spec("v3", "c", Some("a"))), a_to_c);
    assert!(views.get("v3").is_err(), "nothing was created");
    assert_loop_refused(views.create_custom("custom", &["c"], Some("a"), std::sync::Arc::new(Count)), a_to_c);
    assert!(views.get("custom").is_err(), "nothing was created");

    // Without the loop it is fine; redefining it into the loop is refused and starts no rebuild.
    let v3 = views.create(spec("v3", "c", Some("d"))).unwrap();
    assert_loop_refused(views.update(spec("v3", "c", Some("a"))), a_to_c);
    assert!(v3.wait_caught_up(WAIT));
    assert_eq!(v3.status().version, 1, "no rebuild was started");

    // Once v2 no longer emits into c (after its rebuild has taken over), v3 may emit into a.
    let v2 = views.update(spec("v2", "b", None)).unwrap();
    assert!(v2.wait_caught_up(WAIT));
    assert_eq!(v2.status().version, 2);
    views.update(spec("v3", "c", Some("a"))).unwrap();
    assert!(v3.wait_caught_up(WAIT));
    assert_eq!(v3.status().version, 2);
    // And now v2 may not emit into c again.
    assert_loop_refused(views.update(spec("v2", "b", Some("c"))), r#""c" -> view "v3" -> "a" -> view "v1" -> "b""#);
}
