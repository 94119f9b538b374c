use super::*;

fn run(spec: &str, records: &[(i64, &str, &str)]) -> (State, Vec<NewRecord>, Declarative) {
    let d = Declarative::new(ViewSpec::from_json(spec.as_bytes()).unwrap());
    let op = Operator::Declarative(Box::new(d));
    let mut st = State::default();
    let slot = st.set_offset("t", 0, 0);
    let origin = Origin { slot, topic: 0, partition: 0 };
    let mut out = Vec::new();
    for (i, (ts, key, value)) in records.iter().enumerate() {
        let rec =
            RecordRef::plain(i as u64, *ts, Some(key.as_bytes()), (!value.is_empty()).then_some(value.as_bytes()));
        op.apply(rec.into(), origin, || unreachable!("declarative views borrow records"), &mut st, &mut out);
    }
    let Operator::Declarative(d) = op else { unreachable!() };
    (st, out, *d)
}

fn windows(st: &State, key: &str) -> Vec<(i64, i64, u64)> {
    match st.snap.entries.get(key) {
        Some(Entry::Windows(ws)) => {
            ws.iter().map(|(s, w)| (*s, w.end, w.aggregates.0[0].to_json().as_u64().unwrap())).collect()
        }
        other => panic!("{other:?}"),
    }
}

const SESSION: &str = r#"{"name": "s", "source": {"topics": ["t"]},
    "window": {"type": "session", "gap_ms": 10, "grace_ms": 100},
    "aggregates": {"n": {"op": "count"}}}"#;

#[test]
fn an_out_of_order_record_bridges_two_sessions() {
    let (st, _, _) = run(SESSION, &[(0, "a", "{}"), (5, "a", "{}"), (20, "a", "{}"), (21, "a", "{}")]);
    assert_eq!(windows(&st, "a"), vec![(0, 15, 2), (20, 31, 2)], "20 - 5 is not less than the gap");
    let (st, _, _) = run(SESSION, &[(0, "a", "{}"), (5, "a", "{}"), (20, "a", "{}"), (21, "a", "{}"), (12, "a", "{}")]);
    assert_eq!(windows(&st, "a"), vec![(0, 31, 5)], "12 is within the gap of 5 and of 20");
    assert_eq!(st.window_count(), 1, "the merged sessions left the index");
}

#[test]
fn a_reversed_query_range_is_empty_not_a_panic() {
    let (st, _, d) = run(SESSION, &[(0, "a", "{}"), (20, "a", "{}")]);
    let op = Operator::Declarative(Box::new(d));
    let entry = st.snap.entries.get("a").unwrap();
    let starts = |from, to| op.show(entry, from, to).1.unwrap().iter().map(|w| w.start).collect::<Vec<_>>();
    assert_eq!(starts(None, None), vec![0, 20]);
    assert_eq!(starts(Some(20), Some(0)), Vec::<i64>::new());
    assert_eq!(starts(Some(i64::MAX), Some(i64::MIN)), Vec::<i64>::new());
    assert_eq!(starts(Some(0), Some(20)), vec![0], "from inclusive, to exclusive");
}

#[test]
fn closed_sessions_are_not_reopened_and_late_records_are_counted() {
    let records = [(0, "a", "{}"), (200, "b", "{}"), (5, "a", "{}"), (150, "a", "{}")];
    let (st, _, _) = run(SESSION, &records);
    // At watermark 200, a's session [0, 10) closed (10 + 100 <= 200): 5 is late.
    assert_eq!(st.snap.counters.late_records, 1);
    assert_eq!(windows(&st, "a"), vec![(0, 10, 1), (150, 160, 1)]);
}

#[test]
fn a_table_keeps_the_latest_value_and_a_tombstone_deletes() {
    let spec = r#"{"name": "t", "source": {"topics": ["t"]}, "emit": {"topic": "out"}}"#;
    let (st, out, _) = run(spec, &[(0, "a", r#"{"v":1}"#), (0, "a", r#"{"v":2}"#), (0, "b", "{}"), (0, "b", "")]);
    assert_eq!(st.snap.entries.len(), 1);
    assert!(matches!(st.snap.entries.get("a"), Some(Entry::Latest { value, .. }) if value["v"] == 2));
    assert_eq!(out.len(), 4);
    assert!(out[3].value.is_none(), "the tombstone is emitted too");
}

#[test]
fn bad_records_are_counted_never_applied() {
    let spec = r#"{"name": "t", "source": {"topics": ["t"]}, "key": "/k",
        "aggregates": {"s": {"op": "sum", "field": "/x"}}}"#;
    let (st, _, _) = run(
        spec,
        &[(0, "", "nope"), (0, "", r#"{"x": 1}"#), (0, "", r#"{"k": "a"}"#), (0, "", r#"{"k": "a", "x": 2}"#)],
    );
    assert_eq!(st.snap.counters.error_records, 3);
    assert_eq!(st.snap.counters.records_applied, 1);
    assert!(matches!(st.snap.entries.get("a"), Some(Entry::Aggregates(a)) if a.0[0].to_json() == 2));
}

#[test]
fn a_checkpoint_of_an_earlier_build_gets_the_record_keys_of_this_one() {
    let spec = r#"{"name": "c", "source": {"topics": ["t"]}, "aggregates": {"n": {"op": "count"}}}"#;
    let op = Operator::Declarative(Box::new(Declarative::new(ViewSpec::from_json(spec.as_bytes()).unwrap())));
    // Written before `record_keys` existed: the JSON key "u1" kept its quotes; a binary u1 met it.
    let earlier = r#"{"offsets": [], "watermark": null, "counters": {"records_read": 4, "records_applied": 4,
        "records_filtered": 0, "late_records": 0, "error_records": 0, "records_emitted": 0},
        "entries": {"\"u1\"": {"aggregates": [{"count": 2}]}, "u1": {"aggregates": [{"count": 1}]},
                    "42": {"aggregates": [{"count": 1}]}}}"#;
    let snap: Snapshot = serde_json::from_str(earlier).unwrap();
    assert_eq!(snap.record_keys, RecordKeys::Bytes);
    let snap = op.upgrade(snap);
    let keys: Vec<(&String, Value)> = snap
        .entries
        .iter()
        .map(|(k, e)| match e {
            Entry::Aggregates(a) => (k, a.0[0].to_json()),
            e => panic!("{e:?}"),
        })
        .collect();
    assert_eq!(keys, [(&"42".to_string(), json!(1)), (&"u1".to_string(), json!(3))]);
    assert_eq!(snap.record_keys, RecordKeys::JsonStringValue);
    // This build's checkpoints say so, and are left as they are.
    let again: Snapshot = serde_json::from_str(&serde_json::to_string(&snap).unwrap()).unwrap();
    assert_eq!(op.upgrade(again.clone()), again);
}

#[test]
fn record_keys_and_emitted_keys() {
    let spec = r#"{"name": "t", "source": {"topics": ["t"]}, "emit": {"topic": "out"}}"#;
    let records = [(0, r#""u1""#, "{}"), (0, "u2", "{}"), (0, "42", "{}"), (0, r#""a\"b""#, "{}"), (0, r#""u1""#, "")];
    let (st, out, _) = run(spec, &records);
    let keys: Vec<&String> = st.snap.entries.iter().map(|(k, _)| k).collect();
    assert_eq!(keys, ["42", "a\"b", "u2"], "the tombstone of \"u1\" deleted u1");
    let emitted: Vec<String> =
        out.iter().map(|r| String::from_utf8(r.key.as_ref().unwrap().to_vec()).unwrap()).collect();
    assert_eq!(emitted, [r#""u1""#, r#""u2""#, "42", r#""a\"b""#, r#""u1""#]);
    assert!(out[4].value.is_none());
}
