//! A topic deleted and created again while the broker is down, or deleted by a `DELETE /topics`
//! that a crash cut between its two steps (the topic's directory gone, its committed offsets not
//! deleted yet), is a new topic to the broker when it restarts: a group never applies an offset
//! committed on the old topic to the new one, and a view over it fails visibly (naming the source)
//! instead of mixing its old state with the new records; a rebuild then reads the new topic.

mod broker_common;
mod broker_views_common;

use broker_common::{Broker, Http, JSON_V2};
use broker_views_common::{wait_caught_up, wait_for, VIEW_WAIT};
use kappalog::{NewRecord, Store, TopicConfig};
use serde_json::{json, Value};

fn produce(http: &Http, n: usize) {
    let records: Vec<Value> = (0..n).map(|i| json!({"key": "k", "value": {"k": "a", "i": i}})).collect();
    let (s, b) = http.post_as("/topics/t", JSON_V2, &json!({ "records": records }));
    assert_eq!(s, 200, "{b}");
}

/// Commits offset 100 of t-0 for group g (a manual assignment: a commit without members).
fn commit_100(http: &Http) {
    assert_eq!(http.post("/consumers/g", &json!({"name": "a", "format": "json"})).0, 200);
    let a = "/consumers/g/instances/a";
    assert_eq!(http.post(&format!("{a}/assignments"), &json!({"partitions": [{"topic": "t", "partition": 0}]})).0, 204);
    let commit = json!({"offsets": [{"topic": "t", "partition": 0, "offset": 99}]});
    assert_eq!(http.post(&format!("{a}/offsets"), &commit).0, 204);
    let (s, d) = http.get("/groups/g");
    assert_eq!((s, &d["partitions"][0]["committed"]), (200, &json!(100)), "{d}");
    assert_eq!(http.delete(a).0, 204);
}

/// Group g has no committed offset of t, and a member reads t from offset 0.
fn group_reads_from_the_start(http: &Http) {
    let (s, d) = http.get("/groups/g");
    if s == 200 {
        let stale = d["partitions"].as_array().unwrap().iter().any(|p| p["topic"] == "t" && !p["committed"].is_null());
        assert!(!stale, "the old topic's committed offset is still there: {d}");
    } else {
        assert_eq!(s, 404, "{d}");
    }
    let body = json!({"name": "b", "format": "json", "auto.offset.reset": "earliest"});
    assert_eq!(http.post("/consumers/g", &body).0, 200);
    let b = "/consumers/g/instances/b";
    assert_eq!(http.post(&format!("{b}/subscription"), &json!({"topics": ["t"]})).0, 204);
    let first = wait_for("the group reads the new topic", VIEW_WAIT, || {
        let (s, recs) = http.get_accept(&format!("{b}/records?timeout=200"), JSON_V2);
        assert_eq!(s, 200, "{recs}");
        recs.as_array().unwrap().first().map(|r| r["offset"].as_u64().unwrap()).ok_or_else(|| recs.to_string())
    });
    assert_eq!(first, 0, "the group skipped the new topic's first records");
    assert_eq!(http.delete(b).0, 204);
}

#[test]
fn offsets_of_a_topic_deleted_by_a_cut_short_delete_never_apply() {
    // Cut after the directory was moved to the trash, and after the trash was emptied.
    for moved_to_trash in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        let mut broker = Broker::start(dir.path(), &[]);
        let http = broker.client();
        http.create_topic("t", 1, json!({}));
        let (_, before) = http.get("/topics/t");
        produce(&http, 100);
        commit_100(&http);
        broker.kill9();
        // The first step of DELETE /topics/t, done as the broker does it; the crash comes before
        // the second (deleting the committed offsets).
        let topic_dir = dir.path().join("topics/t");
        if moved_to_trash {
            std::fs::create_dir_all(dir.path().join("trash")).unwrap();
            std::fs::rename(&topic_dir, dir.path().join("trash/t-1")).unwrap();
        } else {
            std::fs::remove_dir_all(&topic_dir).unwrap();
        }

        let broker = Broker::start(dir.path(), &[]);
        let http = broker.client();
        assert_eq!(http.get("/topics/t").0, 404);
        http.create_topic("t", 1, json!({}));
        let (_, after) = http.get("/topics/t");
        assert_ne!(before["topic_id"], after["topic_id"], "a new topic, a new id: {before} {after}");
        assert_eq!(after["topic_id"].as_str().map(str::len), Some(22), "{after}");
        produce(&http, 150);
        group_reads_from_the_start(&http);
    }
}

#[test]
fn a_view_whose_source_was_created_again_while_down_fails_until_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let mut broker = Broker::start(dir.path(), &[]);
    let http = broker.client();
    http.create_topic("t", 1, json!({}));
    let view = json!({"name": "n", "source": {"topics": ["t"]}, "key": "/k", "aggregates": {"n": {"op": "count"}}});
    let (s, b) = http.post("/views", &view);
    assert_eq!(s, 201, "{b}");
    produce(&http, 100);
    wait_caught_up(&http, "n", 1);
    assert_eq!(http.get("/views/n/keys/a").1["value"]["n"], 100);
    assert!(broker.terminate().success());

    // While the broker is down, the topic is deleted and created again (through the library,
    // which does not open the views), with 50 records.
    {
        let store = Store::builder(dir.path()).cleaner_interval_ms(0).open().unwrap();
        store.delete_topic("t").unwrap();
        let t = store.create_topic("t", 1, TopicConfig::default()).unwrap();
        let records: Vec<NewRecord> =
            (0..50).map(|i| NewRecord::keyed("k", format!(r#"{{"k":"a","i":{i}}}"#))).collect();
        t.append(&records).unwrap();
    }

    let broker = Broker::start(dir.path(), &[]);
    let http = broker.client();
    let status = wait_for("the view fails", VIEW_WAIT, || {
        let (s, st) = http.get("/views/n");
        if s == 200 && st["state"] == "failed" {
            Ok(st)
        } else {
            Err(format!("{s} {st}"))
        }
    });
    let error = status["error"].as_str().unwrap();
    assert!(error.contains("\"t\"") && error.contains("created again"), "the error names the source: {error}");
    let (_, health) = http.get("/health");
    assert_eq!(health["status"], "degraded", "{health}");
    assert_eq!(health["failed_views"][0]["view"], "n", "{health}");
    let metrics = http.client.get(format!("{}/metrics", http.base)).send().unwrap().text().unwrap();
    assert!(metrics.contains("kappalog_view_failed{view=\"n\"} 1"), "{metrics}");
    // Never the old state mixed with the new records: the failed version still holds the old
    // topic's count.
    assert_eq!(http.get("/views/n/keys/a").1["value"]["n"], 100);

    // A rebuild reads the new topic from its beginning.
    let (s, b) = http.post("/views/n/rebuild", &json!({}));
    assert_eq!(s, 202, "{b}");
    wait_caught_up(&http, "n", 2);
    assert_eq!(http.get("/views/n/keys/a").1["value"]["n"], 50);
    let (_, health) = http.get("/health");
    assert_eq!(health["status"], "ok", "{health}");
    // And it stays so across a restart.
    drop(broker);
    let broker = Broker::start(dir.path(), &[]);
    let http = broker.client();
    wait_caught_up(&http, "n", 2);
    assert_eq!(http.get("/views/n/keys/a").1["value"]["n"], 50);
}
