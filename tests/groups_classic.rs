//! Kafka-managed (classic protocol) groups through the store's coordinator, on a manual clock:
//! two members join and split a topic, commit to the same offsets topic as HTTP groups, show in
//! describe with lag, are refused a reset unless forced, and one group is never managed both ways.

use std::time::Duration;

use bytes::Bytes;
use kappalog::clock::ManualClock;
use kappalog::groups::classic::{ClassicError, ClassicJoin, ClassicState, ClassicSync};
use kappalog::groups::{
    GroupCoordinator, GroupError, GroupState, JoinRequest, ResetRequest, ResetStrategy, TopicPartition,
};
use kappalog::{NewRecord, Store, StoreConfig, TopicConfig};

fn subscription(topics: &[&str]) -> Bytes {
    let mut b = vec![0, 0];
    b.extend_from_slice(&(topics.len() as i32).to_be_bytes());
    for t in topics {
        b.extend_from_slice(&(t.len() as i16).to_be_bytes());
        b.extend_from_slice(t.as_bytes());
    }
    b.extend_from_slice(&(-1i32).to_be_bytes());
    Bytes::from(b)
}

fn assignment(topic: &str, partitions: &[i32]) -> Bytes {
    let mut b = vec![0, 0];
    b.extend_from_slice(&1i32.to_be_bytes());
    b.extend_from_slice(&(topic.len() as i16).to_be_bytes());
    b.extend_from_slice(topic.as_bytes());
    b.extend_from_slice(&(partitions.len() as i32).to_be_bytes());
    for p in partitions {
        b.extend_from_slice(&p.to_be_bytes());
    }
    b.extend_from_slice(&(-1i32).to_be_bytes());
    Bytes::from(b)
}

fn join(member_id: &str) -> ClassicJoin {
    ClassicJoin {
        member_id: member_id.to_string(),
        client_id: "rdkafka".into(),
        client_host: "/127.0.0.1".into(),
        session_timeout_ms: 45_000,
        rebalance_timeout_ms: 60_000,
        protocol_type: "consumer".into(),
        protocols: vec![("range".into(), subscription(&["t"]))],
        require_known_member_id: true,
        ..ClassicJoin::default()
    }
}

fn setup() -> (tempfile::TempDir, Store, std::sync::Arc<ManualClock>, GroupCoordinator) {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(1_000_000);
    let store = Store::open(dir.path(), StoreConfig::default().clock(clock.clone())).unwrap();
    let t = store.create_topic("t", 4, TopicConfig::default()).unwrap();
    for p in 0..4 {
        t.partition(p).unwrap().append(&[NewRecord::new("a"), NewRecord::new("b")]).unwrap();
    }
    let c = store.groups().unwrap();
    (dir, store, clock, c)
}

async fn handshake(c: &GroupCoordinator) -> String {
    let r = c.classic_join("g", join("")).await;
    assert_eq!(r.error, Some(ClassicError::MemberIdRequired));
    r.member_id
}

async fn bounded<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(10), f).await.expect("answered within 10 s")
}

#[tokio::test]
async fn two_members_split_commit_describe_and_reset() {
    let (_dir, store, _clock, c) = setup();
    let a = handshake(&c).await;
    let ja = bounded(c.classic_join("g", join(&a))).await;
    assert_eq!((ja.error, ja.generation, ja.leader.as_str()), (None, 1, a.as_str()));
    let s = bounded(c.classic_sync(
        "g",
        ClassicSync {
            member_id: a.clone(),
            generation: 1,
            assignments: vec![(a.clone(), assignment("t", &[0, 1, 2, 3]))],
            ..ClassicSync::default()
        },
    ))
    .await;
    assert_eq!(s.error, None);

    // b joins: parked until a rejoins, told by its heartbeat.
    let b = handshake(&c).await;
    let c2 = c.clone();
    let b2 = b.clone();
    let jb = tokio::spawn(async move { c2.classic_join("g", join(&b2)).await });
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while c.classic_heartbeat("g", &a, 1) != Err(ClassicError::RebalanceInProgress) {
        assert!(std::time::Instant::now() < deadline, "the rebalance starts");
        tokio::task::yield_now().await;
    }
    // a commits its progress before rejoining (the old generation may still commit).
    let tp = |p| TopicPartition::new("t", p);
    // Past the log end is committed, as Kafka does; a negative offset is not.
    let commits = [(tp(0), 2, Some("m".into())), (tp(9), 1, None), (tp(1), 7, None), (tp(1), -1, None)];
    let answers = c.classic_commit("g", &a, 1, &commits);
    let refused = [Some(ClassicError::UnknownTopicOrPartition), None, Some(ClassicError::OffsetOutOfRange)];
    assert_eq!(answers, [&[None], &refused[..]].concat());
    let ja = bounded(c.classic_join("g", join(&a))).await;
    let jb = bounded(jb).await.unwrap();
    assert_eq!((ja.generation, jb.generation, ja.members.len(), jb.members.len()), (2, 2, 2, 0));
    let c2 = c.clone();
    let b2 = b.clone();
    let sb = tokio::spawn(async move {
        c2.classic_sync("g", ClassicSync { member_id: b2, generation: 2, ..ClassicSync::default() }).await
    });
    let sa = bounded(c.classic_sync(
        "g",
        ClassicSync {
            member_id: a.clone(),
            generation: 2,
            assignments: vec![(a.clone(), assignment("t", &[0, 1])), (b.clone(), assignment("t", &[2, 3]))],
            ..ClassicSync::default()
        },
    ))
    .await;
    let sb = bounded(sb).await.unwrap();
    assert_eq!((sa.assignment, sb.assignment), (assignment("t", &[0, 1]), assignment("t", &[2, 3])));

    // describe: Kafka's state, members' topics and assignments from their bytes, owners, lag.
    let d = c.describe("g").unwrap();
    let k = d.kafka.clone().expect("a Kafka-managed group");
    assert_eq!(
        (d.state, d.generation, k.state, k.protocol.as_deref()),
        (GroupState::Stable, 2, ClassicState::Stable, Some("range"))
    );
    assert_eq!(d.members.len(), 2);
    assert!(d.members.iter().all(|m| m.topics == vec!["t".to_string()]));
    let p0 = d.partitions.iter().find(|p| p.partition == 0).unwrap();
    assert_eq!((p0.committed, p0.lag, p0.owner.as_deref()), (Some(2), Some(0), Some(a.as_str())));
    assert_eq!(d.partitions.iter().find(|p| p.partition == 3).unwrap().owner.as_deref(), Some(b.as_str()));
    assert_eq!(c.classic_committed("g").unwrap()[&tp(0)].metadata.as_deref(), Some("m"));
    assert_eq!(c.classic_list()[0].protocol_type, "consumer");

    // One group, one manager: HTTP consumers may not join; admin operations need it empty.
    let http = c.join("g", JoinRequest { topics: vec!["t".into()], ..JoinRequest::default() });
    assert!(matches!(http, Err(GroupError::ManagedByKafka { members: 2, .. })), "{http:?}");
    let reset = |force| ResetRequest {
        topic: Some("t".into()),
        partitions: None,
        strategy: ResetStrategy::ToEarliest,
        execute: true,
        force,
    };
    assert!(matches!(c.reset_offsets("g", reset(false)), Err(GroupError::ActiveMembers { members: 2, .. })));
    assert_eq!(c.classic_delete("g"), Err(ClassicError::NonEmptyGroup));
    assert_eq!(c.classic_commit("g", "", -1, &[(tp(0), 0, None)]), vec![Some(ClassicError::UnknownMemberId)]);
    // Forced: the members are evicted and told so; the offsets are reset durably.
    let plan = c.reset_offsets("g", reset(true)).unwrap();
    assert!(plan.executed && plan.entries.iter().all(|e| e.new == 0));
    assert_eq!(c.classic_heartbeat("g", &a, 2), Err(ClassicError::UnknownMemberId));
    let d = c.describe("g").unwrap();
    assert_eq!((d.state, d.generation, d.members.len()), (GroupState::Empty, 3, 0), "no Kafka member is left");
    assert_eq!(d.kafka.map(|k| k.state), Some(ClassicState::Empty));
    drop(c);
    drop(store);
}

#[tokio::test]
async fn offsets_survive_a_restart_and_http_groups_refuse_kafka_joins() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
        store.create_topic("t", 1, TopicConfig::default()).unwrap().append(&[NewRecord::new("x")]).unwrap();
        let c = store.groups().unwrap();
        // A simple consumer (no group management) commits to an empty group.
        assert_eq!(c.classic_commit("simple", "", -1, &[(TopicPartition::new("t", 0), 1, None)]), vec![None]);
        // An HTTP-managed group refuses Kafka joins and Kafka commits.
        c.join("http", JoinRequest { topics: vec!["t".into()], ..JoinRequest::default() }).unwrap();
        let r = c.classic_join("http", join("")).await;
        assert_eq!(r.error, Some(ClassicError::InconsistentGroupProtocol));
        let d = c.classic_describe("http").unwrap();
        assert_eq!((d.state, d.protocol_type.as_str(), d.members.len()), (ClassicState::Stable, "", 0));
        assert_eq!(c.classic_describe("nope").unwrap().state, ClassicState::Dead);
        assert_eq!(c.classic_join("", join("")).await.error, Some(ClassicError::InvalidGroupId));
    }
    let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
    let c = store.groups().unwrap();
    assert_eq!(c.classic_committed("simple").unwrap()[&TopicPartition::new("t", 0)].offset, 1);
    c.classic_delete("simple").unwrap();
    assert_eq!(c.classic_delete("simple"), Err(ClassicError::GroupIdNotFound));
}

#[tokio::test]
async fn a_parked_join_is_answered_when_the_clock_passes_the_rebalance_timeout() {
    let (_dir, _store, clock, c) = setup();
    let a = handshake(&c).await;
    let ja = bounded(c.classic_join("g", join(&a))).await;
    bounded(
        c.classic_sync("g", ClassicSync { member_id: a.clone(), generation: ja.generation, ..ClassicSync::default() }),
    )
    .await;
    let b = handshake(&c).await;
    let c2 = c.clone();
    let jb = tokio::spawn(async move { c2.classic_join("g", join(&b)).await });
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while c.classic_heartbeat("g", &a, 1) != Err(ClassicError::RebalanceInProgress) {
        assert!(std::time::Instant::now() < deadline, "the rebalance starts");
        tokio::task::yield_now().await;
    }
    // a heartbeats through the rebalance but never rejoins.
    for _ in 0..5 {
        clock.advance(11_000);
        tokio::task::yield_now().await;
        assert_eq!(c.classic_heartbeat("g", &a, 1), Err(ClassicError::RebalanceInProgress));
        assert!(!jb.is_finished());
    }
    clock.advance(6_000); // 61 s after b joined: past the 60 s rebalance timeout
    c.classic_tick("g");
    let jb = bounded(jb).await.unwrap();
    assert_eq!((jb.error, jb.generation), (None, 2));
    assert_eq!(c.classic_heartbeat("g", &a, 1), Err(ClassicError::UnknownMemberId));
}
