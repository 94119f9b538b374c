//! Describe (state, generation, members, per-partition committed / log start / log end / lag /
//! owner), list, and delete (refused with live members; durable).

use kappalog::{
    groups::{GroupError, GroupState, JoinRequest, TopicPartition},
    NewRecord, Store, StoreConfig, TopicConfig,
};

#[test]
fn describe_list_and_delete() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
        let t = store.create_topic("t", 2, TopicConfig::default()).unwrap();
        t.partition(0).unwrap().append(&vec![NewRecord::new("v"); 10]).unwrap();
        t.partition(1).unwrap().append(&vec![NewRecord::new("v"); 4]).unwrap();
        let c = store.groups().unwrap();
        assert!(matches!(c.describe("g"), Err(GroupError::GroupNotFound(_))));

        let m = c.join("g", JoinRequest { topics: vec!["t".into()], ..JoinRequest::default() }).unwrap();
        c.commit("g", Some((&m.member_id, 1)), &[(TopicPartition::new("t", 0), 7, None)]).unwrap();
        c.commit("other", None, &[(TopicPartition::new("t", 1), 1, None)]).unwrap();
        assert_eq!(c.list(), ["g", "other"]);

        let d = c.describe("g").unwrap();
        assert_eq!((d.state, d.generation, d.members.len()), (GroupState::Stable, 1, 1));
        assert_eq!(d.members[0].member_id, m.member_id);
        assert_eq!(d.members[0].topics, ["t"]);
        assert_eq!(d.members[0].assignment.len(), 2);
        let rows: Vec<_> = d
            .partitions
            .iter()
            .map(|p| (p.partition, p.committed, p.log_start, p.log_end, p.lag, p.owner.clone()))
            .collect();
        let owner = Some(m.member_id.clone());
        assert_eq!(rows, [(0, Some(7), 0, 10, Some(3), owner.clone()), (1, None, 0, 4, None, owner)]);
        let json = serde_json::to_value(&d).unwrap();
        assert_eq!(json["state"], "Stable");
        assert_eq!(json["partitions"][0]["lag"], 3);

        let err = c.delete("g").unwrap_err();
        assert!(matches!(err, GroupError::ActiveMembers { .. }), "{err}");
        c.leave("g", &m.member_id).unwrap();
        let d = c.describe("g").unwrap();
        assert_eq!((d.state, d.generation), (GroupState::Empty, 2));
        assert_eq!(d.partitions.len(), 1, "only the committed partition without subscriptions");
        c.delete("g").unwrap();
        assert!(matches!(c.delete("g"), Err(GroupError::GroupNotFound(_))));
        assert!(c.committed("g", &TopicPartition::new("t", 0)).is_none());
        assert_eq!(c.list(), ["other"]);
    }
    // The delete is durable.
    let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
    let c = store.groups().unwrap();
    assert_eq!(c.list(), ["other"]);
    assert!(c.committed("g", &TopicPartition::new("t", 0)).is_none());
    assert_eq!(c.committed("other", &TopicPartition::new("t", 1)).unwrap().offset, 1);
}
