//! A key, time or aggregate field that is valid JSON but not representable (a lone surrogate
//! `"\ud800"`, `1e999`, a 400-digit integer) is an error record: the view counts it and goes on,
//! and a restart resumes. A float sum that overflows to infinity checkpoints and resumes too.

mod view_common;

use kappalog::{stream::ViewRunState, NewRecord, TopicConfig};
use view_common::{open, scan_all, wait};

fn poisons() -> Vec<String> {
    vec![r#""\ud800""#.to_string(), "1e999".to_string(), "-1e999".to_string(), format!("1{}", "0".repeat(400))]
}

/// Each spec, with a good record and a poisoned one (the poison in the field under test).
struct Case {
    spec: &'static str,
    good: fn() -> String,
    bad: fn(&str) -> String,
}

fn cases() -> Vec<Case> {
    vec![
        // The key captured raw (a count per key parses nothing else).
        Case {
            spec: r#"{"name": "v", "source": {"topics": ["t"]}, "key": "/k", "aggregates": {"n": {"op": "count"}}}"#,
            good: || r#"{"k": "a"}"#.into(),
            bad: |p| format!(r#"{{"k": {p}}}"#),
        },
        // The key looked up in the whole document (a table).
        Case {
            spec: r#"{"name": "v", "source": {"topics": ["t"]}, "key": "/k"}"#,
            good: || r#"{"k": "a"}"#.into(),
            bad: |p| format!(r#"{{"k": {p}}}"#),
        },
        // A nested key.
        Case {
            spec: r#"{"name": "v", "source": {"topics": ["t"]}, "key": "/o/k", "aggregates": {"n": {"op": "count"}}}"#,
            good: || r#"{"o": {"k": "a"}}"#.into(),
            bad: |p| format!(r#"{{"o": {{"k": {p}}}}}"#),
        },
        // The event time.
        Case {
            spec: r#"{"name": "v", "source": {"topics": ["t"]}, "key": "/k",
                "window": {"type": "tumbling", "size_ms": 1000, "grace_ms": 0, "time": "/ts"},
                "aggregates": {"n": {"op": "count"}}}"#,
            good: || r#"{"k": "a", "ts": 5}"#.into(),
            bad: |p| format!(r#"{{"k": "a", "ts": {p}}}"#),
        },
        // An aggregate's field.
        Case {
            spec: r#"{"name": "v", "source": {"topics": ["t"]}, "key": "/k",
                "aggregates": {"s": {"op": "sum", "field": "/x"}, "hi": {"op": "max", "field": "/x"}}}"#,
            good: || r#"{"k": "a", "x": 2}"#.into(),
            bad: |p| format!(r#"{{"k": "a", "x": {p}}}"#),
        },
        // The latest value of a field.
        Case {
            spec: r#"{"name": "v", "source": {"topics": ["t"]}, "key": "/k",
                "aggregates": {"last": {"op": "latest", "field": "/x"}}}"#,
            good: || r#"{"k": "a", "x": 2}"#.into(),
            bad: |p| format!(r#"{{"k": "a", "x": {p}}}"#),
        },
    ]
}

#[test]
fn unrepresentable_values_are_error_records_and_the_view_goes_on() {
    for (i, case) in cases().iter().enumerate() {
        let dir = tempfile::tempdir().unwrap();
        let records: Vec<NewRecord> = poisons()
            .iter()
            .flat_map(|p| [NewRecord::keyed("k", (case.good)()), NewRecord::keyed("k", (case.bad)(p))])
            .collect();
        let bad = poisons().len() as u64;
        let expected = {
            let (store, views) = open(dir.path());
            let t = store.create_topic("t", 1, TopicConfig::default()).unwrap();
            t.append(&records).unwrap();
            let view = views.create_json(case.spec.as_bytes()).unwrap();
            wait(&view);
            let st = view.status();
            assert_eq!(st.state, ViewRunState::Running, "case {i}: {st:#?}");
            assert_eq!(st.error_records, bad, "case {i}: {st:#?}");
            assert_eq!(st.counters.records_applied, bad, "case {i}: {st:#?}");
            // More records after the poison are applied: the view did not stop.
            t.append(&[NewRecord::keyed("k", (case.good)())]).unwrap();
            wait(&view);
            assert_eq!(view.status().counters.records_applied, bad + 1, "case {i}");
            scan_all(&view)
        };
        // A restart resumes from the checkpoint, and a rebuild replays the poison and finishes.
        let (_store, views) = open(dir.path());
        let view = views.get("v").unwrap();
        wait(&view);
        assert_eq!(scan_all(&view), expected, "case {i}: the same state after a restart");
        views.rebuild("v", kappalog::stream::RebuildFrom::Beginning).unwrap();
        wait(&view);
        let st = view.status();
        assert_eq!((st.version, st.state, st.error_records), (2, ViewRunState::Running, bad), "case {i}: {st:#?}");
        assert_eq!(scan_all(&view), expected, "case {i}: the same state after a rebuild");
    }
}

#[test]
fn a_record_key_that_is_an_unrepresentable_json_string_is_an_error_record() {
    let dir = tempfile::tempdir().unwrap();
    let (store, views) = open(dir.path());
    let t = store.create_topic("t", 1, TopicConfig::default()).unwrap();
    let spec = r#"{"name": "v", "source": {"topics": ["t"]}, "aggregates": {"n": {"op": "count"}}}"#;
    let view = views.create_json(spec.as_bytes()).unwrap();
    t.append(&[
        NewRecord::keyed(r#""\ud800""#, "{}"),
        NewRecord::keyed(r#""u1""#, "{}"),
        NewRecord::tombstone(r#""\udc00""#),
    ])
    .unwrap();
    wait(&view);
    let st = view.status();
    assert_eq!((st.state, st.error_records, st.counters.records_applied), (ViewRunState::Running, 2, 1), "{st:#?}");
    assert_eq!(view.get("u1").unwrap().value.unwrap()["n"], 1);
}

#[test]
fn a_float_sum_that_overflows_checkpoints_and_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let spec = r#"{"name": "v", "source": {"topics": ["t"]}, "key": "/k",
        "aggregates": {"s": {"op": "sum", "field": "/x"}, "m": {"op": "avg", "field": "/x"},
                       "lo": {"op": "min", "field": "/x"}}}"#;
    let expected = {
        let (store, views) = open(dir.path());
        let t = store.create_topic("t", 1, TopicConfig::default()).unwrap();
        let view = views.create_json(spec.as_bytes()).unwrap();
        t.append(&vec![NewRecord::keyed("k", r#"{"k": "a", "x": 1.5e308}"#); 3]).unwrap();
        wait(&view);
        let got = scan_all(&view);
        assert_eq!(got["a"]["lo"], 1.5e308);
        assert_eq!(got["a"]["s"], serde_json::Value::Null, "an infinite sum shows as null: {got:?}");
        got
    };
    let (store, views) = open(dir.path());
    let view = views.get("v").unwrap();
    wait(&view);
    assert_eq!(view.status().state, ViewRunState::Running);
    assert_eq!(scan_all(&view), expected, "the checkpoint with an infinite sum reads back");
    store.topic("t").unwrap().append(&[NewRecord::keyed("k", r#"{"k": "a", "x": 1}"#)]).unwrap();
    wait(&view);
    assert_eq!(view.status().counters.records_applied, 4);
}
