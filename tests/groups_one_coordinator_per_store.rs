//! `GroupCoordinator::open` on the same store returns the same coordinator (the broker and views
//! see the same members and offsets); after the store closes, a reopen gets a fresh one that
//! replays the offsets. The async variants run on the blocking pool.

use kappalog::{
    groups::{GroupState, JoinRequest, ResetRequest, ResetStrategy, TopicPartition},
    NewRecord, Store, StoreConfig, TopicConfig,
};

#[test]
fn one_coordinator_per_store() {
    let dir = tempfile::tempdir().unwrap();
    let tp = TopicPartition::new("t", 0);
    {
        let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
        store.create_topic("t", 1, TopicConfig::default()).unwrap().append(&vec![NewRecord::new("v"); 5]).unwrap();
        let broker = store.groups().unwrap();
        let views = store.clone().groups().unwrap();
        let m = broker.join("g", JoinRequest { topics: vec!["t".into()], ..JoinRequest::default() }).unwrap();
        assert_eq!(views.describe("g").unwrap().members[0].member_id, m.member_id);
        views.commit("g", Some((&m.member_id, m.generation)), &[(tp.clone(), 3, None)]).unwrap();
        assert_eq!(broker.committed("g", &tp).unwrap().offset, 3);
        broker.leave("g", &m.member_id).unwrap();
        assert_eq!(views.describe("g").unwrap().state, GroupState::Empty);
    }
    let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
    let c = store.groups().unwrap();
    assert_eq!(c.committed("g", &tp).unwrap().offset, 3);
    assert!(c.describe("g").unwrap().members.is_empty(), "membership is not durable");

    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    rt.block_on(async {
        c.commit_async("g".into(), None, vec![(tp.clone(), 4, None)]).await.unwrap();
        let req = ResetRequest {
            topic: None,
            partitions: None,
            strategy: ResetStrategy::ShiftBy(-1),
            execute: true,
            force: false,
        };
        assert_eq!(c.reset_offsets_async("g".into(), req).await.unwrap().entries[0].new, 3);
        c.delete_async("g".into()).await.unwrap();
    });
    assert!(c.list().is_empty());
}
