//! A table join sees the table records appended before a source record, also while the view is
//! running live: each source record is appended right after the table record it must join with
//! (same key, same event time), and the view's result equals the as-of join of the whole history.

mod view_common;

use kappalog::{Durability, NewRecord, TopicConfig};
use serde_json::json;
use view_common::{open, wait, Rng};

const SPEC: &str = r#"{ "name": "tiers",
  "source": { "topics": ["events"] },
  "join": { "table": "users", "on": "/user", "as": "profile" },
  "filter": { "field": "/profile/tier", "op": "in", "value": ["on"] },
  "key": "/user",
  "aggregates": { "n": { "op": "count" } } }"#;

#[test]
fn records_join_the_table_version_appended_just_before_them() {
    let mut rng = Rng::from_env("join_arrival");
    let dir = tempfile::tempdir().unwrap();
    let (store, views) = open(dir.path());
    // No fsync per append: the appends of a table record and its source record are microseconds
    // apart, inside the window where a runner reads one topic and then the other.
    let fast = TopicConfig::default().durability(Durability::None);
    store.create_topic("users", 4, fast.clone()).unwrap();
    store.create_topic("events", 4, fast).unwrap();
    let view = views.create_json(SPEC.as_bytes()).unwrap();
    let (users, events) = (store.topic("users").unwrap(), store.topic("events").unwrap());
    let t0: i64 = 1_700_000_000_000;
    let mut passed = 0u64;
    let n = 20_000;
    for i in 0..n {
        let user = format!("u{}", rng.below(8));
        let on = rng.below(2) == 0;
        let t = t0 + i as i64;
        let tier = if on { "on" } else { "off" };
        users
            .append(&[NewRecord::keyed(json!(user).to_string(), json!({ "tier": tier }).to_string()).with_timestamp(t)])
            .unwrap();
        events
            .append(&[NewRecord::keyed(user.clone(), json!({ "user": user }).to_string()).with_timestamp(t)])
            .unwrap();
        passed += on as u64;
        if rng.below(4096) == 0 {
            // Let the view catch up now and then, so that it reads live, one record at a time.
            wait(&view);
        }
    }
    wait(&view);
    let c = view.status().counters;
    assert_eq!(c.records_unmatched, 0);
    assert_eq!(c.records_filtered, n - passed, "source records that saw a table version other than their own");
}
