//! Rebalancing 1 → 2 → 3 members (every assignor): each partition has exactly one owner, and no
//! partition is ever readable by two members, even while the old members have not yet rejoined.

use kappalog::{
    clock::ManualClock,
    groups::{AssignmentStrategy, GroupCoordinator, GroupError, GroupState, JoinRequest, Membership, TopicPartition},
    Store, StoreConfig, TopicConfig,
};

fn all_partitions() -> Vec<TopicPartition> {
    let mut v: Vec<TopicPartition> = (0..4).map(|p| TopicPartition::new("a", p)).collect();
    v.extend((0..3).map(|p| TopicPartition::new("b", p)));
    v
}

/// No partition is readable by two members; returns how many are readable by one.
fn readable_once(c: &GroupCoordinator, group: &str, members: &[&Membership]) -> usize {
    let mut readable = 0;
    for tp in all_partitions() {
        let readers = members.iter().filter(|m| c.check_fetch(group, &m.member_id, m.generation, &tp).is_ok()).count();
        assert!(readers <= 1, "{tp} is readable by {readers} members");
        readable += readers;
    }
    readable
}

/// Once everyone has rejoined: every partition owned exactly once, balanced, and `describe` agrees.
fn check_stable(c: &GroupCoordinator, group: &str, members: &[&Membership]) {
    let mut owned: Vec<TopicPartition> = members.iter().flat_map(|m| m.assignment.clone()).collect();
    owned.sort();
    assert_eq!(owned, all_partitions(), "every partition owned exactly once");
    let sizes: Vec<usize> = members.iter().map(|m| m.assignment.len()).collect();
    let (min, max) = (sizes.iter().min().unwrap(), sizes.iter().max().unwrap());
    assert!(max - min <= 1, "balanced: {sizes:?}");
    assert_eq!(readable_once(c, group, members), 7, "every partition readable by its owner");
    let d = c.describe(group).unwrap();
    assert_eq!(d.state, GroupState::Stable);
    assert_eq!(d.generation, members[0].generation);
    assert_eq!(d.members.len(), members.len());
    for p in &d.partitions {
        let owner = members.iter().find(|m| m.assignment.contains(&TopicPartition::new(&p.topic, p.partition)));
        assert_eq!(p.owner.as_deref(), owner.map(|m| m.member_id.as_str()));
    }
}

fn join(c: &GroupCoordinator, group: &str, id: Option<&str>, strategy: AssignmentStrategy) -> Membership {
    let req = JoinRequest {
        member_id: id.map(str::to_string),
        topics: vec!["a".into(), "b".into()],
        session_timeout_ms: 10_000,
        strategy,
        ..JoinRequest::default()
    };
    c.join(group, req).unwrap()
}

/// The old member learns of the new generation by its heartbeat failing, then rejoins.
fn rejoin(c: &GroupCoordinator, group: &str, m: &Membership, strategy: AssignmentStrategy) -> Membership {
    let err = c.heartbeat(group, &m.member_id, m.generation).unwrap_err();
    assert!(matches!(err, GroupError::IllegalGeneration { .. }), "{err}");
    assert!(err.to_string().ends_with("rejoin"), "{err}");
    let again = join(c, group, Some(&m.member_id), strategy);
    assert_eq!(again.member_id, m.member_id);
    again
}

#[test]
fn one_two_three_members_split_the_partitions() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(1_000_000);
    let store = Store::open(dir.path(), StoreConfig::default().clock(clock.clone())).unwrap();
    store.create_topic("a", 4, TopicConfig::default()).unwrap();
    store.create_topic("b", 3, TopicConfig::default()).unwrap();
    let c = store.groups().unwrap();
    for strategy in [AssignmentStrategy::Sticky, AssignmentStrategy::Range, AssignmentStrategy::RoundRobin] {
        let group = format!("g-{strategy}");
        let g = group.as_str();
        let m1 = join(&c, g, None, strategy);
        assert_eq!(m1.generation, 1);
        check_stable(&c, g, &[&m1]);

        clock.advance(100);
        let m2 = join(&c, g, None, strategy);
        assert_eq!(m2.generation, 2, "a join bumps the generation");
        assert_eq!(c.describe(g).unwrap().state, GroupState::Rebalancing);
        // m1 has not rejoined: it may still read its old partitions, m2 must wait for those.
        let stale_m1 = Membership { generation: 1, assignment: m1.assignment.clone(), ..m1.clone() };
        readable_once(&c, g, &[&stale_m1, &m2]);
        let m1 = rejoin(&c, g, &m1, strategy);
        let m2 = c.heartbeat(g, &m2.member_id, m2.generation).unwrap();
        assert!(m2.pending.is_empty(), "m1 released them by rejoining");
        check_stable(&c, g, &[&m1, &m2]);

        clock.advance(100);
        let m3 = join(&c, g, None, strategy);
        assert_eq!(m3.generation, 3);
        let m1 = rejoin(&c, g, &m1, strategy);
        readable_once(&c, g, &[&m1, &m2, &m3]);
        let m2 = rejoin(&c, g, &m2, strategy);
        let m3 = c.heartbeat(g, &m3.member_id, 3).unwrap();
        check_stable(&c, g, &[&m1, &m2, &m3]);
        if strategy == AssignmentStrategy::Sticky {
            // Sticky: the partitions m1 kept were already its own.
            let before = &stale_m1.assignment;
            assert!(m1.assignment.iter().all(|tp| before.contains(tp)), "{:?} ⊄ {before:?}", m1.assignment);
        }

        // A rejoin with an unchanged subscription does not start a new generation.
        assert_eq!(join(&c, g, Some(&m3.member_id), strategy).generation, 3);
    }
}

#[test]
fn new_partitions_rebalance() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(0);
    let store = Store::open(dir.path(), StoreConfig::default().clock(clock.clone())).unwrap();
    store.create_topic("a", 2, TopicConfig::default()).unwrap();
    let c = store.groups().unwrap();
    let m = c.join("g", JoinRequest { topics: vec!["a".into(), "later".into()], ..JoinRequest::default() }).unwrap();
    assert_eq!(m.assignment.len(), 2);
    store.add_partitions("a", 3).unwrap();
    store.create_topic("later", 1, TopicConfig::default()).unwrap();
    assert!(matches!(
        c.heartbeat("g", &m.member_id, m.generation),
        Err(GroupError::IllegalGeneration { generation: 1, current: 2, .. })
    ));
    let m = c.join("g", JoinRequest { member_id: Some(m.member_id), ..JoinRequest::default() }).unwrap();
    assert_eq!(m.assignment.len(), 0, "the rejoin changed the subscription to nothing");
    let m = c
        .join(
            "g",
            JoinRequest {
                member_id: Some(m.member_id),
                topics: vec!["a".into(), "later".into()],
                ..JoinRequest::default()
            },
        )
        .unwrap();
    assert_eq!(m.assignment.len(), 4);
    assert!(matches!(
        c.join("g", JoinRequest { strategy: AssignmentStrategy::Range, ..JoinRequest::default() }),
        Err(GroupError::InconsistentStrategy { .. })
    ));
}
