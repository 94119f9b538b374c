//! A member that stops heartbeating is evicted after its session timeout (lazily, by the clock);
//! its partitions move to the others, and it is told to join again.

use kappalog::{
    clock::ManualClock,
    groups::{GroupError, GroupState, JoinRequest, TopicPartition},
    Store, StoreConfig, TopicConfig,
};

#[test]
fn a_silent_member_is_evicted_and_its_partitions_move() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(1_000_000);
    let store = Store::open(dir.path(), StoreConfig::default().clock(clock.clone())).unwrap();
    store.create_topic("t", 6, TopicConfig::default()).unwrap();
    let c = store.groups().unwrap();
    let req = |id: Option<&str>| JoinRequest {
        member_id: id.map(str::to_string),
        topics: vec!["t".into()],
        session_timeout_ms: 10_000,
        ..JoinRequest::default()
    };
    let a = c.join("g", req(None)).unwrap();
    let b = c.join("g", req(None)).unwrap();
    let a = c.join("g", req(Some(&a.member_id))).unwrap();
    assert_eq!((a.assignment.len(), b.assignment.len()), (3, 3));
    let b_partitions = b.assignment.clone();

    // a keeps heartbeating; b goes silent. Exactly at the timeout b is still alive.
    clock.advance(6_000);
    c.heartbeat("g", &a.member_id, 2).unwrap();
    clock.advance(4_000);
    c.heartbeat("g", &a.member_id, 2).unwrap();
    assert_eq!(c.describe("g").unwrap().members.len(), 2, "10 s of silence is within a 10 s timeout");
    clock.advance(1);
    // The next call on the group evicts b and rebalances.
    let err = c.heartbeat("g", &a.member_id, 2).unwrap_err();
    assert!(matches!(err, GroupError::IllegalGeneration { current: 3, .. }), "{err}");
    let a = c.join("g", req(Some(&a.member_id))).unwrap();
    assert_eq!(a.generation, 3);
    assert_eq!(a.assignment, (0..6).map(|p| TopicPartition::new("t", p)).collect::<Vec<_>>());
    assert!(a.pending.is_empty(), "an evicted member holds nothing");
    for tp in &b_partitions {
        c.check_fetch("g", &a.member_id, 3, tp).unwrap();
    }

    // b comes back: told it is unknown, to join again without an id; its commit is refused.
    let err = c.heartbeat("g", &b.member_id, 2).unwrap_err();
    assert!(matches!(&err, GroupError::UnknownMember { member_id, .. } if *member_id == b.member_id));
    assert!(err.to_string().contains("join again without a member id"), "{err}");
    let err = c.commit("g", Some((&b.member_id, 2)), &[(b_partitions[0].clone(), 0, None)]).unwrap_err();
    assert!(matches!(err, GroupError::UnknownMember { .. }), "{err}");
    assert!(c.committed("g", &b_partitions[0]).is_none());

    // expire_sessions sweeps every group without any other call.
    clock.advance(10_001);
    assert_eq!(c.expire_sessions(), vec![("g".to_string(), a.member_id.clone())]);
    assert_eq!(c.describe("g").unwrap_err().to_string(), GroupError::GroupNotFound("g".into()).to_string());
    let fresh = c.join("g", req(None)).unwrap();
    assert_eq!(fresh.generation, 5, "eviction of a (4), then this join (5)");
    assert_eq!(c.describe("g").unwrap().state, GroupState::Stable);
}
