//! Like Kafka, a reset is refused while the group has live members, dry run or not; `force` plans
//! without evicting on a dry run, and evicts the members when executing.

use kappalog::{
    groups::{GroupError, GroupState, JoinRequest, ResetRequest, ResetStrategy, TopicPartition},
    NewRecord, Store, StoreConfig, TopicConfig,
};

#[test]
fn a_reset_is_refused_while_members_are_live_unless_forced() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
    let t = store.create_topic("t", 2, TopicConfig::default()).unwrap();
    t.partition(0).unwrap().append(&vec![NewRecord::new("v"); 10]).unwrap();
    let c = store.groups().unwrap();
    let m = c.join("g", JoinRequest { topics: vec!["t".into()], ..JoinRequest::default() }).unwrap();
    let tp = TopicPartition::new("t", 0);
    c.commit("g", Some((&m.member_id, m.generation)), &[(tp.clone(), 6, None)]).unwrap();
    let req = |execute, force| ResetRequest {
        topic: Some("t".into()),
        partitions: None,
        strategy: ResetStrategy::ToEarliest,
        execute,
        force,
    };
    for execute in [false, true] {
        let err = c.reset_offsets("g", req(execute, false)).unwrap_err();
        assert!(matches!(err, GroupError::ActiveMembers { members: 1, .. }), "{err}");
        assert!(err.to_string().contains("or force"), "{err}");
    }
    assert_eq!(c.committed("g", &tp).unwrap().offset, 6);

    // A forced dry run plans and leaves the member alone.
    let plan = c.reset_offsets("g", req(false, true)).unwrap();
    assert_eq!((plan.entries[0].current, plan.entries[0].new, plan.executed), (Some(6), 0, false));
    c.heartbeat("g", &m.member_id, m.generation).unwrap();

    // A forced execution evicts the member and applies the plan.
    let plan = c.reset_offsets("g", req(true, true)).unwrap();
    assert!(plan.executed);
    assert_eq!(c.committed("g", &tp).unwrap().offset, 0);
    let err = c.heartbeat("g", &m.member_id, m.generation).unwrap_err();
    assert!(matches!(err, GroupError::UnknownMember { .. }), "{err}");
    let d = c.describe("g").unwrap();
    assert_eq!((d.state, d.generation, d.members.len()), (GroupState::Empty, 2, 0));

    // Without members, no force is needed.
    c.reset_offsets("g", req(true, false)).unwrap();
}
