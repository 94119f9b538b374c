//! The store owns one group coordinator and one views registry: handles from `store.groups()` and
//! `store.views()` are the same ones however often they are asked for, membership survives every
//! coordinator handle being dropped, and dropping the store's last handle releases the data
//! directory (no reference cycle keeps it locked).

use std::time::Duration;

use kappalog::groups::GroupError;
use kappalog::{Error, NewRecord, Store, StoreConfig, TopicConfig};

#[test]
fn store_owns_its_groups_and_views() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
        store.create_topic("t", 1, TopicConfig::default()).unwrap().append(&vec![NewRecord::new("v"); 3]).unwrap();
        let join = kappalog::groups::JoinRequest { topics: vec!["t".into()], ..Default::default() };
        let member = store.groups().unwrap().join("g", join).unwrap().member_id;
        // No coordinator handle is left: the store's own keeps the member.
        let described = store.clone().groups().unwrap().describe("g").unwrap();
        assert_eq!(described.members[0].member_id, member);

        let views = store.views().unwrap();
        let spec = br#"{"name": "n", "source": {"topics": ["t"]}, "aggregates": {"c": {"op": "count"}}}"#;
        views.create_json(spec).unwrap();
        drop(views);
        let view = store.views().unwrap().get("n").expect("the same registry, its view still running");
        assert!(view.wait_caught_up(Duration::from_secs(30)), "{:?}", view.status());
        assert_eq!(store.views().unwrap().list(), vec!["n".to_string()]);
        drop(view);

        // The coordinator's own store handle reaches the same registries while the store is open.
        let groups = store.groups().unwrap();
        assert_eq!(groups.store().groups().unwrap().describe("g").unwrap().members.len(), 1);
        drop(store);
        // The store is gone: its registries with it.
        assert!(matches!(groups.store().groups(), Err(GroupError::Log(Error::Closed))));
    }
    // The last handles went: the directory is free, the view resumes from its checkpoint.
    let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
    let view = store.views().unwrap().get("n").unwrap();
    assert!(view.wait_caught_up(Duration::from_secs(30)));
    let described = store.groups().unwrap().describe("g");
    assert!(
        matches!(described, Err(ref e) if !matches!(e, GroupError::Log(_))),
        "membership is not durable: {described:?}"
    );
}

#[test]
fn closed_views_stop_and_open_again() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
    store.create_topic("t", 1, TopicConfig::default()).unwrap().append(&vec![NewRecord::keyed("k", "{}"); 2]).unwrap();
    let views = store.views().unwrap();
    let spec = br#"{"name": "n", "source": {"topics": ["t"]}, "aggregates": {"c": {"op": "count"}}}"#;
    assert!(views.create_json(spec).unwrap().wait_caught_up(Duration::from_secs(30)));
    views.close();
    let again = store.views().unwrap();
    let view = again.get("n").expect("reopened from its definition");
    assert!(view.wait_caught_up(Duration::from_secs(30)));
    assert_eq!(view.get("k").unwrap().value.unwrap()["c"], 2, "resumed from its checkpoint");
}
