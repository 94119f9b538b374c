//! The consumer-group APIs over a real connection, at every advertised version, with the
//! `kafka-protocol` crate as the independent codec (requests it encodes decode with the broker's
//! codec; the broker's responses decode with it, every byte consumed): one member's whole life
//! (FindCoordinator, the JoinGroup handshake, SyncGroup, Heartbeat, OffsetCommit, OffsetFetch,
//! DescribeGroups, ListGroups, LeaveGroup, DeleteGroups), one group never managed both over
//! HTTP and by Kafka clients, and OffsetCommit taking any offset as Kafka does.

mod broker_common;
mod kafka_common;

use bytes::Bytes;
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::leave_group_request::MemberIdentity;
use kafka_protocol::messages::offset_commit_request::{OffsetCommitRequestPartition, OffsetCommitRequestTopic};
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopic;
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::{
    fetch_request, ApiKey, ApiVersionsRequest, BrokerId, DeleteGroupsRequest, DescribeGroupsRequest, FetchRequest,
    FindCoordinatorRequest, GroupId, HeartbeatRequest, JoinGroupRequest, LeaveGroupRequest, ListGroupsRequest,
    OffsetCommitRequest, OffsetFetchRequest, SyncGroupRequest, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use serde_json::json;

use broker_common::Broker;
use kafka_common::Conn;

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

fn join_req(group: &str, member: &str) -> JoinGroupRequest {
    JoinGroupRequest::default()
        .with_group_id(GroupId(s(group)))
        .with_session_timeout_ms(45_000)
        .with_rebalance_timeout_ms(60_000)
        .with_member_id(s(member))
        .with_protocol_type(s("consumer"))
        .with_protocols(vec![JoinGroupRequestProtocol::default()
            .with_name(s("range"))
            .with_metadata(Bytes::from_static(b"\0\0\0\0\0\x01\0\x01t\xff\xff\xff\xff"))])
}

const ASSIGNMENT: &[u8] = b"\0\0\0\0\0\x01\0\x01t\0\0\0\x01\0\0\0\0\xff\xff\xff\xff";

#[test]
fn every_group_api_at_every_advertised_version() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(dir.path(), &[]);
    broker.client().create_topic("t", 2, json!({}));
    let port: i32 = broker.kafka.rsplit(':').next().unwrap().parse().unwrap();
    let mut c = Conn::connect(&broker.kafka);

    // The advertised ranges are the ones this test walks.
    let versions = c.call(3, &ApiVersionsRequest::default());
    let range = |k: ApiKey| {
        let a = versions.api_keys.iter().find(|a| a.api_key == k as i16).unwrap_or_else(|| panic!("{k:?} advertised"));
        (a.min_version, a.max_version)
    };
    assert_eq!(range(ApiKey::FindCoordinator), (0, 2));
    assert_eq!(range(ApiKey::JoinGroup), (0, 5));
    assert_eq!(range(ApiKey::SyncGroup), (0, 3));
    assert_eq!(range(ApiKey::Heartbeat), (0, 3));
    assert_eq!(range(ApiKey::LeaveGroup), (0, 3));
    assert_eq!(range(ApiKey::OffsetCommit), (2, 7));
    assert_eq!(range(ApiKey::OffsetFetch), (1, 5));
    assert_eq!(range(ApiKey::DescribeGroups), (0, 4));
    assert_eq!(range(ApiKey::ListGroups), (0, 2));
    assert_eq!(range(ApiKey::DeleteGroups), (0, 1));

    for i in 0..=7i16 {
        let v = |k: ApiKey| {
            let (lo, hi) = range(k);
            i.clamp(lo, hi)
        };
        let group = format!("g-{i}");
        let gid = || GroupId(s(&group));
        let ctx = format!("round {i}");

        let fc = c.call(v(ApiKey::FindCoordinator), &FindCoordinatorRequest::default().with_key(s(&group)));
        assert_eq!((fc.error_code, fc.node_id.0, fc.host.as_str(), fc.port), (0, 0, "127.0.0.1", port), "{ctx}");

        let jv = v(ApiKey::JoinGroup);
        let mut member = String::new();
        if jv >= 4 {
            let r = c.call(jv, &join_req(&group, ""));
            assert_eq!((r.error_code, r.generation_id), (79, -1), "{ctx}: MEMBER_ID_REQUIRED from v4");
            member = r.member_id.to_string();
            assert!(member.starts_with("kappalog-test-"), "{ctx}: {member}");
        }
        let j = c.call(jv, &join_req(&group, &member));
        assert_eq!(j.error_code, 0, "{ctx}");
        if member.is_empty() {
            member = j.member_id.to_string();
        }
        assert_eq!((j.generation_id, j.leader.as_str(), j.member_id.as_str()), (1, member.as_str(), member.as_str()));
        assert_eq!(j.protocol_name.as_ref().map(|p| p.as_str()), Some("range"), "{ctx}");
        assert_eq!(j.members.len(), 1, "{ctx}");
        assert_eq!(&j.members[0].metadata[..], &join_req(&group, "").protocols[0].metadata[..]);

        let sync = SyncGroupRequest::default()
            .with_group_id(gid())
            .with_generation_id(1)
            .with_member_id(s(&member))
            .with_assignments(vec![SyncGroupRequestAssignment::default()
                .with_member_id(s(&member))
                .with_assignment(Bytes::from_static(ASSIGNMENT))]);
        let sr = c.call(v(ApiKey::SyncGroup), &sync);
        assert_eq!((sr.error_code, &sr.assignment[..]), (0, ASSIGNMENT), "{ctx}");

        let hb = |generation| {
            HeartbeatRequest::default().with_group_id(gid()).with_generation_id(generation).with_member_id(s(&member))
        };
        assert_eq!(c.call(v(ApiKey::Heartbeat), &hb(1)).error_code, 0, "{ctx}");
        assert_eq!(c.call(v(ApiKey::Heartbeat), &hb(7)).error_code, 22, "{ctx}: ILLEGAL_GENERATION");

        let topic = |name: &str, p: i32, offset| {
            OffsetCommitRequestTopic::default().with_name(TopicName(s(name))).with_partitions(vec![
                OffsetCommitRequestPartition::default()
                    .with_partition_index(p)
                    .with_committed_offset(offset)
                    .with_committed_metadata(Some(s("m"))),
            ])
        };
        let commit = OffsetCommitRequest::default()
            .with_group_id(gid())
            .with_generation_id_or_member_epoch(1)
            .with_member_id(s(&member))
            .with_topics(vec![topic("t", 0, 0), topic("missing", 0, 0)]);
        let cr = c.call(v(ApiKey::OffsetCommit), &commit);
        let codes: Vec<i16> = cr.topics.iter().map(|t| t.partitions[0].error_code).collect();
        assert_eq!(codes, vec![0, 3], "{ctx}");

        let ov = v(ApiKey::OffsetFetch);
        let fetch = OffsetFetchRequest::default().with_group_id(gid()).with_topics(Some(vec![
            OffsetFetchRequestTopic::default().with_name(TopicName(s("t"))).with_partition_indexes(vec![0, 1]),
        ]));
        let fr = c.call(ov, &fetch);
        let ps = &fr.topics[0].partitions;
        assert_eq!((ps[0].committed_offset, ps[0].metadata.as_ref().map(|m| m.as_str())), (0, Some("m")), "{ctx}");
        assert_eq!((ps[1].committed_offset, ps[1].error_code, fr.error_code), (-1, 0, 0), "{ctx}");
        if ov >= 2 {
            let all = c.call(ov, &OffsetFetchRequest::default().with_group_id(gid()).with_topics(None));
            assert_eq!((all.topics.len(), all.topics[0].partitions.len()), (1, 1), "{ctx}: null topics is all");
        }

        let d = c.call(v(ApiKey::DescribeGroups), &DescribeGroupsRequest::default().with_groups(vec![gid()]));
        let g = &d.groups[0];
        assert_eq!((g.error_code, g.group_state.as_str(), g.protocol_type.as_str()), (0, "Stable", "consumer"));
        assert_eq!((g.protocol_data.as_str(), g.members.len()), ("range", 1), "{ctx}");
        assert_eq!(
            (g.members[0].client_id.as_str(), &g.members[0].member_assignment[..]),
            ("kappalog-test", ASSIGNMENT)
        );
        assert_eq!(g.members[0].client_host.as_str(), "/127.0.0.1", "{ctx}: the client's address, as Kafka gives it");

        let l = c.call(v(ApiKey::ListGroups), &ListGroupsRequest::default());
        let listed = l.groups.iter().find(|g| g.group_id.0.as_str() == group).expect("listed");
        assert_eq!((l.error_code, listed.protocol_type.as_str()), (0, "consumer"), "{ctx}");

        let lv = v(ApiKey::LeaveGroup);
        let leave = if lv >= 3 {
            LeaveGroupRequest::default().with_group_id(gid()).with_members(vec![
                MemberIdentity::default().with_member_id(s(&member)),
                MemberIdentity::default().with_member_id(s("stranger")),
            ])
        } else {
            LeaveGroupRequest::default().with_group_id(gid()).with_member_id(s(&member))
        };
        let lr = c.call(lv, &leave);
        assert_eq!(lr.error_code, 0, "{ctx}");
        if lv >= 3 {
            let codes: Vec<i16> = lr.members.iter().map(|m| m.error_code).collect();
            assert_eq!(codes, vec![0, 25], "{ctx}: per member");
        }
        assert_eq!(c.call(v(ApiKey::Heartbeat), &hb(1)).error_code, 25, "{ctx}: UNKNOWN_MEMBER_ID after leaving");

        let del = DeleteGroupsRequest::default().with_groups_names(vec![gid()]);
        let dv = v(ApiKey::DeleteGroups);
        assert_eq!(c.call(dv, &del).results[0].error_code, 0, "{ctx}");
        assert_eq!(c.call(dv, &del).results[0].error_code, 69, "{ctx}: GROUP_ID_NOT_FOUND");
    }
}

#[test]
fn a_group_is_managed_over_http_or_by_kafka_clients_not_both() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(dir.path(), &[]);
    let http = broker.client();
    http.create_topic("t", 1, json!({}));
    let mut c = Conn::connect(&broker.kafka);

    // An HTTP member first: a Kafka join is INCONSISTENT_GROUP_PROTOCOL.
    assert_eq!(http.post("/consumers/web", &json!({"name": "i"})).0, 200);
    assert_eq!(http.post("/consumers/web/instances/i/subscription", &json!({"topics": ["t"]})).0, 204);
    assert_eq!(c.call(3, &join_req("web", "")).error_code, 23);

    // A Kafka member first: subscribing an HTTP consumer is a 409 naming the reason.
    let j = c.call(3, &join_req("kafka", ""));
    assert_eq!(j.error_code, 0);
    let (status, _) = http.post("/consumers/kafka", &json!({"name": "i"}));
    assert_eq!(status, 200);
    let (status, body) = http.post("/consumers/kafka/instances/i/subscription", &json!({"topics": ["t"]}));
    assert_eq!((status, body["error_code"].as_i64()), (409, Some(40903)), "{body}");
    assert!(body["message"].as_str().unwrap().contains("managed by Kafka clients"), "{body}");
    // HTTP sees the Kafka group, and refuses a reset while its member is live.
    let (status, d) = http.get("/groups/kafka");
    assert_eq!(
        (status, d["kafka"]["state"].as_str(), d["members"].as_array().map(Vec::len)),
        (200, Some("CompletingRebalance"), Some(1))
    );
    let (status, body) =
        http.post("/groups/kafka/reset-offsets", &json!({"topic": "t", "strategy": "to_earliest", "dry_run": false}));
    assert_eq!(status, 409, "{body}");
}

/// Kafka's OffsetCommit does not check an offset against the log: one past the log end is
/// committed and fetched back, and a consumer resuming there gets OFFSET_OUT_OF_RANGE from Fetch
/// (its `auto.offset.reset` then applies). Only a negative offset, which cannot be stored, is refused.
#[test]
fn offset_commit_takes_an_offset_past_the_log_end_as_kafka_does() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start(dir.path(), &[]);
    let http = broker.client();
    http.create_topic("t", 1, json!({}));
    let (status, _) = http.post("/topics/t", &json!({"records": [{"value": "a"}, {"value": "b"}]}));
    assert_eq!(status, 200);
    let mut c = Conn::connect(&broker.kafka);
    let commit = |offset| {
        // A commit without a member (generation -1) to a group with no live members, as a
        // consumer with manual assignment sends.
        OffsetCommitRequest::default()
            .with_group_id(GroupId(s("manual")))
            .with_generation_id_or_member_epoch(-1)
            .with_member_id(s(""))
            .with_topics(vec![OffsetCommitRequestTopic::default().with_name(TopicName(s("t"))).with_partitions(vec![
                OffsetCommitRequestPartition::default().with_partition_index(0).with_committed_offset(offset),
            ])])
    };
    let committed = |c: &mut Conn| {
        let fetch = OffsetFetchRequest::default().with_group_id(GroupId(s("manual"))).with_topics(Some(vec![
            OffsetFetchRequestTopic::default().with_name(TopicName(s("t"))).with_partition_indexes(vec![0]),
        ]));
        c.call(5, &fetch).topics[0].partitions[0].committed_offset
    };
    for v in [2, 7] {
        let past = 1000 + i64::from(v);
        assert_eq!(c.call(v, &commit(past)).topics[0].partitions[0].error_code, 0, "v{v}: past the log end (2)");
        assert_eq!(committed(&mut c), past, "v{v}");
        assert_eq!(c.call(v, &commit(-5)).topics[0].partitions[0].error_code, 1, "v{v}: negative");
        assert_eq!(committed(&mut c), past, "v{v}: the refused commit changed nothing");
    }
    let (status, g) = http.get("/groups/manual");
    assert_eq!(
        (status, g["partitions"][0]["committed"].as_u64(), g["partitions"][0]["lag"].as_u64()),
        (200, Some(1007), Some(0)),
        "{g}"
    );

    let mut p = fetch_request::FetchPartition::default();
    p.fetch_offset = committed(&mut c);
    p.partition_max_bytes = 1 << 20;
    let mut t = fetch_request::FetchTopic::default();
    t.topic = TopicName(s("t"));
    t.partitions = vec![p];
    let mut fetch = FetchRequest::default();
    fetch.replica_id = BrokerId(-1);
    fetch.max_bytes = 1 << 20;
    fetch.topics = vec![t];
    let r = c.call(11, &fetch);
    let got = &r.responses[0].partitions[0];
    assert_eq!((got.error_code, got.high_watermark), (1, 2), "OFFSET_OUT_OF_RANGE at the committed offset");
}

#[test]
fn a_parked_join_is_answered_at_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let mut broker = Broker::start(dir.path(), &[]);
    let mut a = Conn::connect(&broker.kafka);
    let mut b = Conn::connect(&broker.kafka);
    let ja = a.call(3, &join_req("g", ""));
    assert_eq!((ja.error_code, ja.generation_id), (0, 1), "a alone: generation 1 at once");
    let a_id = ja.member_id;
    // b's join waits for a to rejoin (up to the 60 s rebalance timeout)...
    let (corr, frame) = b.frame(3, &join_req("g", ""));
    b.send_raw(&frame);
    let hb =
        HeartbeatRequest::default().with_group_id(GroupId(s("g"))).with_generation_id(1).with_member_id(a_id.clone());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while a.call(1, &hb).error_code != 27 {
        assert!(std::time::Instant::now() < deadline, "b's join starts a rebalance");
    }
    let started = std::time::Instant::now();
    // ...until the broker stops: it answers COORDINATOR_NOT_AVAILABLE and exits.
    assert!(broker.terminate().success());
    assert!(started.elapsed() < std::time::Duration::from_secs(30), "{:?}", started.elapsed());
    let resp = Conn::decode::<JoinGroupRequest>(3, corr, b.read_frame().expect("an answer before the close"));
    assert_eq!(resp.error_code, 15);
}
