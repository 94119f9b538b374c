//! Delete removes a view and its files; a rebuild interrupted by a restart resumes and completes;
//! a store has one `Views`.

mod view_common;

use kappalog::{stream::ViewRunState, NewRecord, TopicConfig, ViewSpec};
use view_common::{open, scan_all, wait};

const V1: &str = r#"{"name": "latest", "source": {"topics": ["users"]}}"#;
const V2: &str = r#"{"name": "latest", "source": {"topics": ["users"]},
    "filter": {"field": "/active", "op": "eq", "value": true}}"#;

#[test]
fn delete_and_a_rebuild_across_restart() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (store, views) = open(dir.path());
        let users = store.create_topic("users", 1, TopicConfig::default()).unwrap();
        let records: Vec<NewRecord> = (0..20_000)
            .map(|i| NewRecord::keyed(format!("u{}", i % 100), format!(r#"{{"i": {i}, "active": {}}}"#, i % 2 == 0)))
            .collect();
        users.append(&records).unwrap();
        users.append(&[NewRecord::tombstone("u7")]).unwrap();
        let view = views.create_json(V1.as_bytes()).unwrap();
        wait(&view);
        assert_eq!(view.scan("", 1000).len(), 99, "u7 was deleted by its tombstone");
        assert_eq!(view.get("u42").unwrap().value.unwrap()["i"], 19_942);
        views.update(ViewSpec::from_json(V2.as_bytes()).unwrap()).unwrap();
        // Stop right away: the rebuild is pending (or just done) when the process goes.
    }
    let (store, views) = open(dir.path());
    // One `Views` per store: a second open returns the same registry (no second runner).
    let again = kappalog::Views::open(&store, kappalog::ViewsConfig::default()).unwrap();
    assert_eq!(again.list(), vec!["latest".to_string()]);
    let view = again.get("latest").unwrap();
    drop(again);
    wait(&view);
    let status = view.status();
    assert_eq!((status.version, status.state), (2, ViewRunState::Running));
    let state = scan_all(&view);
    assert_eq!(state.len(), 50, "only even users (active) are in the filtered table");
    assert_eq!(state["u42"]["i"], 19_942);
    drop(view);

    views.delete("latest").unwrap();
    assert!(views.list().is_empty());
    assert!(!dir.path().join("views/latest").exists());
    // The name is free again; the new view starts from scratch.
    let view = views.create_json(V1.as_bytes()).unwrap();
    wait(&view);
    assert_eq!(view.status().version, 1);
    assert_eq!(view.scan("", 1000).len(), 99);
}
