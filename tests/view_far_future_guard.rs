//! An event time far after its record's timestamp (microseconds by mistake) counts as an error
//! record and changes nothing: the watermark stays and no window closes. `window.max_future_ms`
//! sets how far is too far.

mod view_common;

use kappalog::{NewRecord, TopicConfig};
use serde_json::json;
use view_common::{open, wait};

const T0: i64 = 1_700_000_000_000;

fn spec(name: &str, max_future: &str) -> String {
    format!(
        r#"{{"name": "{name}", "source": {{"topics": ["t"]}}, "key": "/k",
        "window": {{"type": "tumbling", "size_ms": 1000, "grace_ms": 0, "time": "/ts"{max_future}}},
        "aggregates": {{"n": {{"op": "count"}}}}}}"#
    )
}

#[test]
fn a_far_future_event_time_is_an_error_record() {
    let dir = tempfile::tempdir().unwrap();
    let (store, views) = open(dir.path());
    let topic = store.create_topic("t", 1, TopicConfig::default()).unwrap();
    let default = views.create_json(spec("default", "").as_bytes()).unwrap();
    let strict = views.create_json(spec("strict", r#", "max_future_ms": 10"#).as_bytes()).unwrap();
    let record = |ts: i64| NewRecord::new(json!({"k": "a", "ts": ts}).to_string()).with_timestamp(T0);
    topic.append(&[record(T0), record(T0 + 500), record(T0 * 1000), record(T0 + 10), record(T0 + 11)]).unwrap();
    wait(&default);
    wait(&strict);

    let s = default.status();
    assert_eq!((s.error_records, s.late_records, s.watermark), (1, 0, Some(T0 + 500)), "{s:?}");
    let windows = default.get("a").unwrap().windows.unwrap();
    assert_eq!(windows.len(), 1, "the microsecond time opened no window");
    assert_eq!(windows[0].value, json!({"n": 4}));

    let s = strict.status();
    assert_eq!((s.error_records, s.watermark), (3, Some(T0 + 10)), "more than 10 ms ahead is an error: {s:?}");
    assert_eq!(strict.get("a").unwrap().windows.unwrap()[0].value, json!({"n": 2}));
}
