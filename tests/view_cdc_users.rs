//! Change-data-capture sources: a generated change history of a `users` table in Debezium's
//! envelope (snapshot reads, creates, updates that move users between countries, deletes with
//! their tombstones, both envelope shapes, a few malformed events), over 1-4 partitions keyed by
//! the primary key as Debezium keys them. A table view equals the final table; an aggregating
//! view (count, sum, avg per country, emitted on update) equals a GROUP BY over it, live while
//! the history is appended (closed and reopened in the middle), in a view created after it, and
//! after a rebuild; the last emitted record per country is its final value (or a tombstone for a
//! country with no users left).
//!
//! `SEED=<n>` replays a run; `CASES=<n>` sets the number of random histories.

mod view_common;

use std::collections::BTreeMap;
use std::time::Duration;

use kappalog::{stream::RebuildFrom, NewRecord, Store, TopicConfig, View, ViewSpec};
use serde_json::{json, Value};
use view_common::{all_records, open, scan_all, Rng};

const TOPIC: &str = "pg.public.users";
const COUNTRIES: [&str; 4] = ["de", "fr", "it", "es"];
const TABLE: &str = r#"{"name": "users", "source": {"topics": ["pg.public.users"], "format": "debezium"}}"#;

fn per_country(name: &str, emit: &str) -> String {
    json!({"name": name, "source": {"topics": [TOPIC], "format": "debezium"}, "key": "/country",
        "aggregates": {"n": {"op": "count"}, "total": {"op": "sum", "field": "/score"},
                       "mean": {"op": "avg", "field": "/score"}},
        "emit": {"topic": emit}})
    .to_string()
}

/// A change event in Debezium's envelope, wrapped in `{"schema", "payload"}` or not.
fn event(op: &str, before: Option<&Value>, after: Option<&Value>, ts: i64, wrapped: bool) -> Value {
    let payload = json!({"op": op, "before": before, "after": after, "ts_ms": ts,
        "source": {"ts_ms": ts - 5, "db": "pg", "table": "users"}});
    if wrapped {
        json!({"schema": {"type": "struct", "name": "pg.public.users.Envelope"}, "payload": payload})
    } else {
        payload
    }
}

/// A random history: the records to append (in order) and the final table.
fn history(rng: &mut Rng) -> (Vec<NewRecord>, BTreeMap<i64, Value>) {
    let mut table: BTreeMap<i64, Value> = BTreeMap::new();
    let mut out = Vec::new();
    let mut ts = 1_700_000_000_000i64;
    let mut next_id = 0i64;
    // Keys have one shape per topic (their partition follows from it); values are mixed.
    let keys_wrapped = rng.below(2) == 0;
    let key = |id: i64, _value_wrapped: bool| {
        if keys_wrapped {
            json!({"schema": {"type": "struct"}, "payload": {"id": id}}).to_string()
        } else {
            json!({"id": id}).to_string()
        }
    };
    let row = |id: i64, rng: &mut Rng| {
        json!({"id": id, "country": COUNTRIES[rng.below(4) as usize], "score": rng.below(100) as i64 - 20,
               "name": format!("user{id}")})
    };
    // The snapshot: reads of the rows that existed.
    for _ in 0..rng.below(20) {
        let r = row(next_id, rng);
        let w = rng.below(2) == 0;
        out.push(NewRecord::keyed(key(next_id, w), event("r", None, Some(&r), ts, w).to_string()));
        table.insert(next_id, r);
        next_id += 1;
    }
    for _ in 0..(20 + rng.below(200)) {
        ts += rng.below(1000) as i64;
        let w = rng.below(2) == 0;
        let pick = |rng: &mut Rng, table: &BTreeMap<i64, Value>| {
            let ids: Vec<i64> = table.keys().copied().collect();
            ids[rng.below(ids.len() as u64) as usize]
        };
        match rng.below(10) {
            0..=2 => {
                let r = row(next_id, rng);
                out.push(NewRecord::keyed(key(next_id, w), event("c", None, Some(&r), ts, w).to_string()));
                table.insert(next_id, r);
                next_id += 1;
            }
            3..=6 if !table.is_empty() => {
                let id = pick(rng, &table);
                let old = table[&id].clone();
                let mut new = old.clone();
                if rng.below(2) == 0 {
                    new["country"] = json!(COUNTRIES[rng.below(4) as usize]);
                }
                new["score"] = json!(rng.below(100) as i64 - 20);
                // Debezium sends `before` only with a full replica identity.
                let before = (rng.below(2) == 0).then_some(&old);
                out.push(NewRecord::keyed(key(id, w), event("u", before, Some(&new), ts, w).to_string()));
                table.insert(id, new);
            }
            7..=8 if !table.is_empty() => {
                let id = pick(rng, &table);
                let old = table.remove(&id).unwrap();
                out.push(NewRecord::keyed(key(id, w), event("d", Some(&old), None, ts, w).to_string()));
                if rng.below(2) == 0 {
                    out.push(NewRecord::tombstone(key(id, w)));
                }
            }
            _ => {
                // Malformed: no op, or an unknown one, or no row.
                let bad = [json!({"after": {"id": 1}}), json!({"op": "x", "after": {}}), json!({"op": "c"})];
                out.push(NewRecord::keyed(key(0, w), bad[rng.below(3) as usize].to_string()));
            }
        }
    }
    (out, table)
}

/// The GROUP BY country of the final table, as the view shows it.
fn group_by(table: &BTreeMap<i64, Value>) -> BTreeMap<String, Value> {
    let mut groups: BTreeMap<String, (u64, i64)> = BTreeMap::new();
    for r in table.values() {
        let g = groups.entry(r["country"].as_str().unwrap().to_string()).or_default();
        g.0 += 1;
        g.1 += r["score"].as_i64().unwrap();
    }
    groups
        .into_iter()
        .map(|(c, (n, total))| (c, json!({"n": n, "total": total, "mean": total as f64 / n as f64})))
        .collect()
}

fn caught_up(view: &View) {
    assert!(view.wait_caught_up(Duration::from_secs(60)), "did not catch up: {:#?}", view.status());
}

fn check(what: &str, table_view: &View, groups_view: &View, table: &BTreeMap<i64, Value>, malformed: u64) {
    let expected_table: BTreeMap<String, Value> = table.iter().map(|(id, r)| (id.to_string(), r.clone())).collect();
    assert_eq!(scan_all(table_view), expected_table, "{what}: the table view is the final table");
    assert_eq!(scan_all(groups_view), group_by(table), "{what}: count, sum, avg per country are a GROUP BY");
    for v in [table_view, groups_view] {
        assert_eq!(v.status().error_records, malformed, "{what}: malformed envelopes are error records");
    }
}

/// The last emitted value per key of the emit topic (`None`: a tombstone).
fn last_emitted(store: &Store, topic: &str) -> BTreeMap<String, Option<Value>> {
    all_records(store, topic)
        .into_iter()
        .map(|(_, r)| {
            let key: String = serde_json::from_slice(r.key.as_deref().unwrap()).unwrap();
            (key, r.value.map(|v| serde_json::from_slice(&v).unwrap()))
        })
        .collect()
}

#[test]
fn a_users_change_history_gives_the_final_table_and_a_group_by() {
    let mut rng = Rng::from_env("view_cdc_users");
    let cases = std::env::var("CASES").ok().and_then(|s| s.parse().ok()).unwrap_or(6);
    for case in 0..cases {
        let (records, table) = history(&mut rng);
        let malformed = records
            .iter()
            .filter(|r| r.value.as_ref().is_some_and(|v| !String::from_utf8_lossy(v).contains(r#""ts_ms""#)))
            .count() as u64;
        let dir = tempfile::tempdir().unwrap();
        let (mut store, mut views) = open(dir.path());
        let partitions = 1 + rng.below(4) as u32;
        store.create_topic(TOPIC, partitions, TopicConfig::default()).unwrap();
        for t in ["out_live", "out_after"] {
            store.create_topic(t, 1, TopicConfig::default()).unwrap();
        }
        let mut live_table = views.create_json(TABLE.as_bytes()).unwrap();
        let mut live = views.create_json(per_country("live", "out_live").as_bytes()).unwrap();
        let reopen_at = rng.below(records.len() as u64 + 1) as usize;
        let mut at = 0;
        while at < records.len() {
            let n = (1 + rng.below(30) as usize).min(records.len() - at);
            store.topic(TOPIC).unwrap().append(&records[at..at + n]).unwrap();
            if at <= reopen_at && reopen_at < at + n {
                // Closed and reopened: the rows held for retraction resume from the checkpoint.
                drop((live, live_table));
                views.close();
                store.close().unwrap();
                (store, views) = open(dir.path());
                (live, live_table) = (views.get("live").unwrap(), views.get("users").unwrap());
            }
            at += n;
            if rng.below(3) == 0 {
                caught_up(&live);
            }
        }
        caught_up(&live_table);
        caught_up(&live);
        let what = format!("case {case} ({partitions} partitions, {} records)", records.len());
        check(&format!("{what} live"), &live_table, &live, &table, malformed);

        let after = views.create_json(per_country("after", "out_after").as_bytes()).unwrap();
        caught_up(&after);
        check(&format!("{what} created after"), &live_table, &after, &table, malformed);
        for emit in ["out_live", "out_after"] {
            let mut expected: BTreeMap<String, Option<Value>> =
                group_by(&table).into_iter().map(|(k, v)| (k, Some(v))).collect();
            let last = last_emitted(&store, emit);
            for k in last.keys() {
                // A country that has no users left ends with a tombstone.
                expected.entry(k.clone()).or_insert(None);
            }
            assert_eq!(last, expected, "{what}: the last emit per country is its value ({emit})");
        }

        views.rebuild("users", RebuildFrom::Beginning).unwrap();
        views.rebuild("live", RebuildFrom::Beginning).unwrap();
        caught_up(&live_table);
        caught_up(&live);
        assert_eq!(live.status().version, 2);
        check(&format!("{what} rebuilt"), &live_table, &live, &table, malformed);
        views.close();
    }
}

#[test]
fn aggregates_that_cannot_retract_are_refused_naming_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let (store, views) = open(dir.path());
    store.create_topic(TOPIC, 1, TopicConfig::default()).unwrap();
    for (op, field) in [("min", "aggregates.lo.op"), ("max", "aggregates.lo.op"), ("latest", "aggregates.lo.op")] {
        let spec = json!({"name": "v", "source": {"topics": [TOPIC], "format": "debezium"}, "key": "/country",
            "aggregates": {"lo": {"op": op, "field": "/score"}}});
        match views.create_json(spec.to_string().as_bytes()) {
            Err(kappalog::stream::ViewError::InvalidSpec { field: f, reason }) => {
                assert_eq!(f, field, "{reason}");
                assert!(reason.contains("retract"), "{reason}");
            }
            other => panic!("{op}: expected a refusal, got {other:?}"),
        }
    }
    let windowed = json!({"name": "v", "source": {"topics": [TOPIC], "format": "debezium"}, "key": "/country",
        "window": {"type": "tumbling", "size_ms": 10}, "aggregates": {"n": {"op": "count"}}});
    assert!(matches!(
        ViewSpec::from_json(windowed.to_string().as_bytes()),
        Err(kappalog::stream::ViewError::InvalidSpec { field, .. }) if field == "window"
    ));
    // The Rust API: the same spec built in code.
    let mut spec = ViewSpec::from_json(per_country("rust", "nowhere").as_bytes()).unwrap();
    spec.emit = None;
    spec.source = kappalog::stream::SourceSpec::debezium([TOPIC]).primary_key("/id");
    let view = views.create(spec).unwrap();
    let row = json!({"id": 1, "country": "de", "score": 3});
    store.topic(TOPIC).unwrap().append(&[NewRecord::new(event("c", None, Some(&row), 5, false).to_string())]).unwrap();
    caught_up(&view);
    assert_eq!(scan_all(&view), BTreeMap::from([("de".to_string(), json!({"n": 1, "total": 3, "mean": 3.0}))]));
}
