//! `latest` and the plain table of latest values are decided by event time across partitions
//! (the greatest time wins; a tie goes to the higher partition, then the higher offset), not by
//! the order the view reads records in: live, in a view created after the data, and after a
//! restart (the checkpoint keeps what the decision needs).

mod view_common;

use kappalog::{NewRecord, Partition, TopicConfig, View};
use serde_json::{json, Value};
use view_common::{open, wait};

const TABLE: &str = r#"{"name": "table", "source": {"topics": ["t"]}}"#;
const LATEST: &str = r#"{"name": "latest", "source": {"topics": ["t"]}, "key": "/k",
    "aggregates": {"v": {"op": "latest", "field": "/v"}}}"#;

fn put(p: &Partition, v: &str, timestamp: i64) {
    p.append(&[NewRecord::keyed("k", json!({"k": "k", "v": v}).to_string()).with_timestamp(timestamp)]).unwrap();
}

/// What the table and the aggregate hold for key `k`.
fn held(table: &View, latest: &View) -> (Option<Value>, Option<Value>) {
    wait(table);
    wait(latest);
    let t = table.get("k").and_then(|r| r.value).map(|v| v["v"].clone());
    let l = latest.get("k").and_then(|r| r.value).map(|v| v["v"].clone());
    (t, l)
}

#[test]
fn the_greatest_event_time_wins_whatever_the_read_order() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (store, views) = open(dir.path());
        let topic = store.create_topic("t", 2, TopicConfig::default()).unwrap();
        let (p0, p1) = (topic.partition(0).unwrap(), topic.partition(1).unwrap());
        let (table, latest) =
            (views.create_json(TABLE.as_bytes()).unwrap(), views.create_json(LATEST.as_bytes()).unwrap());
        put(&p1, "new", 2000);
        assert_eq!(held(&table, &latest), (Some(json!("new")), Some(json!("new"))));
        put(&p0, "older, read later", 1000);
        assert_eq!(held(&table, &latest), (Some(json!("new")), Some(json!("new"))), "an older record read later loses");
        put(&p0, "tie in partition 0", 2000);
        assert_eq!(held(&table, &latest), (Some(json!("new")), Some(json!("new"))), "a tie goes to partition 1");
        p0.append(&[NewRecord::tombstone("k").with_timestamp(1500)]).unwrap();
        assert_eq!(held(&table, &latest).0, Some(json!("new")), "an older tombstone deletes nothing");

        // A view created after the data reads partition 0's records first or interleaved: the same.
        let replay = views.create_json(br#"{"name": "replay", "source": {"topics": ["t"]}}"#).unwrap();
        wait(&replay);
        assert_eq!(replay.get("k").and_then(|r| r.value).map(|v| v["v"].clone()), Some(json!("new")));
        views.close();
    }
    // After a restart the stamps come back from the checkpoints.
    let (store, views) = open(dir.path());
    let p0 = store.topic("t").unwrap().partition(0).unwrap();
    let (table, latest) = (views.get("table").unwrap(), views.get("latest").unwrap());
    put(&p0, "older, after the restart", 1999);
    assert_eq!(held(&table, &latest), (Some(json!("new")), Some(json!("new"))));
    put(&p0, "newest", 2001);
    assert_eq!(held(&table, &latest), (Some(json!("newest")), Some(json!("newest"))));
    p0.append(&[NewRecord::tombstone("k").with_timestamp(3000)]).unwrap();
    assert_eq!(held(&table, &latest).0, None, "a later tombstone deletes");
}
