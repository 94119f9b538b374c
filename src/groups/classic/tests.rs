//! The classic state machine with explicit time: every transition, the timeouts, members joining
//! and leaving, and a model-based run.

use bytes::Bytes;
use tokio::sync::oneshot;

use super::state::{ClassicGroup, Reply};
use super::{ClassicError, ClassicJoin, ClassicJoinResponse, ClassicState, ClassicSync, ClassicSyncResponse};

const SESSION: i32 = 10_000;
const REBALANCE: i32 = 30_000;

fn join_req(member_id: &str, v4: bool) -> ClassicJoin {
    ClassicJoin {
        member_id: member_id.to_string(),
        client_id: "c".into(),
        client_host: "/127.0.0.1".into(),
        session_timeout_ms: SESSION,
        rebalance_timeout_ms: REBALANCE,
        protocol_type: "consumer".into(),
        protocols: vec![("range".into(), Bytes::from_static(b"r")), ("roundrobin".into(), Bytes::from_static(b"rr"))],
        require_known_member_id: v4,
        ..ClassicJoin::default()
    }
}

struct Ids(u32);
impl Ids {
    fn next(&mut self) -> impl FnOnce(&str) -> String + '_ {
        move |client| {
            self.0 += 1;
            format!("{client}-{}", self.0)
        }
    }
}

fn now_answer<T: std::fmt::Debug>(r: Reply<T>) -> T {
    match r {
        Reply::Now(t) => t,
        Reply::Parked(_) => panic!("expected an answer now"),
    }
}

fn parked<T>(r: Reply<T>) -> oneshot::Receiver<T> {
    match r {
        Reply::Parked(rx) => rx,
        Reply::Now(_) => panic!("expected a parked request"),
    }
}

fn ready<T>(rx: &mut oneshot::Receiver<T>) -> T {
    rx.try_recv().expect("answered")
}

fn waiting<T>(rx: &mut oneshot::Receiver<T>) {
    assert!(matches!(rx.try_recv(), Err(oneshot::error::TryRecvError::Empty)), "still parked");
}

fn sync_req(member_id: &str, generation: i32, assignments: &[(&str, &'static [u8])]) -> ClassicSync {
    ClassicSync {
        member_id: member_id.to_string(),
        generation,
        assignments: assignments.iter().map(|(m, a)| (m.to_string(), Bytes::from_static(a))).collect(),
        ..ClassicSync::default()
    }
}

/// One member through the v4 handshake, alone: it is leader, generation 1, Stable after its sync.
fn single(g: &mut ClassicGroup, ids: &mut Ids, now: i64) -> String {
    let r = now_answer(g.join(join_req("", true), now, ids.next()));
    assert_eq!(r.error, Some(ClassicError::MemberIdRequired));
    let id = r.member_id.clone();
    assert!(!id.is_empty());
    let mut rx = parked(g.join(join_req(&id, true), now, ids.next()));
    let j = ready(&mut rx);
    assert_eq!((j.error, j.leader.as_str(), j.members.len()), (None, id.as_str(), 1));
    assert_eq!(j.protocol_name.as_deref(), Some("range"));
    assert_eq!(g.state, ClassicState::CompletingRebalance);
    let mut s = parked(g.sync(sync_req(&id, j.generation, &[(&id, b"A")]), now));
    assert_eq!(ready(&mut s).assignment, Bytes::from_static(b"A"));
    assert_eq!(g.state, ClassicState::Stable);
    id
}

#[test]
fn member_id_required_only_from_v4() {
    let mut g = ClassicGroup::new("g");
    let mut ids = Ids(0);
    let a = single(&mut g, &mut ids, 0);
    assert_eq!(g.generation, 1);
    // An old client (v0-3) joins at once, without the handshake.
    let mut rx = parked(g.join(join_req("", false), 1, ids.next()));
    waiting(&mut rx);
    assert_eq!(g.state, ClassicState::PreparingRebalance);
    assert_eq!(g.heartbeat(&a, 1, 1), Err(ClassicError::RebalanceInProgress));
    let mut ra = parked(g.join(join_req(&a, true), 2, ids.next()));
    let (ja, jb) = (ready(&mut ra), ready(&mut rx));
    assert_eq!((ja.generation, jb.generation), (2, 2));
    assert_eq!((ja.members.len(), jb.members.len()), (2, 0), "only the leader gets the members");
    assert_eq!(jb.leader, a);
    assert!(!jb.member_id.is_empty());
}

#[test]
fn a_follower_waits_for_the_leaders_assignment() {
    let mut g = ClassicGroup::new("g");
    let mut ids = Ids(0);
    let a = single(&mut g, &mut ids, 0);
    let b = now_answer(g.join(join_req("", true), 1, ids.next())).member_id;
    let mut rb = parked(g.join(join_req(&b, true), 1, ids.next()));
    waiting(&mut rb);
    assert_eq!(g.heartbeat(&a, 1, 2), Err(ClassicError::RebalanceInProgress));
    let mut ra = parked(g.join(join_req(&a, true), 2, ids.next()));
    let (ja, jb) = (ready(&mut ra), ready(&mut rb));
    assert_eq!(g.state, ClassicState::CompletingRebalance);
    assert_eq!(g.heartbeat(&b, 2, 3), Ok(()), "heartbeats are fine while completing");
    assert_eq!(g.heartbeat(&b, 1, 3), Err(ClassicError::IllegalGeneration));
    let mut sb = parked(g.sync(sync_req(&b, jb.generation, &[]), 3));
    waiting(&mut sb);
    let mut sa = parked(g.sync(sync_req(&a, ja.generation, &[(&a, b"A"), (&b, b"B")]), 4));
    assert_eq!(ready(&mut sa).assignment, Bytes::from_static(b"A"));
    assert_eq!(ready(&mut sb).assignment, Bytes::from_static(b"B"));
    assert_eq!(g.state, ClassicState::Stable);
    // A follower's sync in Stable is answered at once; a stale generation is refused.
    assert_eq!(now_answer(g.sync(sync_req(&b, 2, &[]), 5)).assignment, Bytes::from_static(b"B"));
    assert_eq!(now_answer(g.sync(sync_req(&b, 1, &[]), 5)).error, Some(ClassicError::IllegalGeneration));
    assert_eq!(now_answer(g.sync(sync_req("x", 2, &[]), 5)).error, Some(ClassicError::UnknownMemberId));
    // A follower rejoining with the same metadata in Stable gets the current generation, no rebalance.
    let j = now_answer(g.join(join_req(&b, true), 6, ids.next()));
    assert_eq!((j.error, j.generation, g.state), (None, 2, ClassicState::Stable));
    // The leader rejoining starts a rebalance.
    let mut ra = parked(g.join(join_req(&a, true), 7, ids.next()));
    assert_eq!(g.state, ClassicState::PreparingRebalance);
    waiting(&mut ra);
}

#[test]
fn leaving_hands_over_and_empties() {
    let mut g = ClassicGroup::new("g");
    let mut ids = Ids(0);
    let a = single(&mut g, &mut ids, 0);
    let b = now_answer(g.join(join_req("", true), 1, ids.next())).member_id;
    let mut rb = parked(g.join(join_req(&b, true), 1, ids.next()));
    let mut ra = parked(g.join(join_req(&a, true), 1, ids.next()));
    let (_, jb) = (ready(&mut ra), ready(&mut rb));
    parked(g.sync(sync_req(&a, jb.generation, &[(&a, b"A"), (&b, b"B")]), 2));
    assert_eq!(g.state, ClassicState::Stable);
    // The leader leaves: b becomes the leader of the next generation, alone.
    assert_eq!(g.leave(&a, None, 3), Ok(()));
    assert_eq!(g.leave(&a, None, 3), Err(ClassicError::UnknownMemberId));
    assert_eq!(g.state, ClassicState::PreparingRebalance);
    assert_eq!(g.heartbeat(&b, 2, 3), Err(ClassicError::RebalanceInProgress));
    let mut rb = parked(g.join(join_req(&b, true), 4, ids.next()));
    let jb = ready(&mut rb);
    assert_eq!((jb.generation, jb.leader.as_str(), jb.members.len()), (3, b.as_str(), 1));
    assert_eq!(g.leave(&b, None, 5), Ok(()));
    assert_eq!((g.state, g.generation, g.is_active()), (ClassicState::Empty, 4, false));
    assert_eq!(g.heartbeat(&b, 3, 5), Err(ClassicError::UnknownMemberId));
}

#[test]
fn a_member_that_does_not_rejoin_is_removed_at_the_rebalance_timeout() {
    let mut g = ClassicGroup::new("g");
    let mut ids = Ids(0);
    let a = single(&mut g, &mut ids, 0);
    let b = now_answer(g.join(join_req("", true), 0, ids.next())).member_id;
    let mut rb = parked(g.join(join_req(&b, true), 0, ids.next()));
    // a keeps its session alive by heartbeats but never rejoins.
    let mut t = 0;
    while t < i64::from(REBALANCE) - 1 {
        t += 5_000.min(i64::from(REBALANCE) - 1 - t);
        assert_eq!(g.heartbeat(&a, 1, t), Err(ClassicError::RebalanceInProgress));
        g.tick(t);
        waiting(&mut rb);
    }
    assert_eq!(g.tick(i64::from(REBALANCE) - 1), Some(i64::from(REBALANCE)), "the join deadline is next");
    g.tick(i64::from(REBALANCE));
    let jb = ready(&mut rb);
    assert_eq!((jb.error, jb.generation, jb.leader.as_str()), (None, 2, b.as_str()));
    assert_eq!(g.heartbeat(&a, 1, REBALANCE as i64), Err(ClassicError::UnknownMemberId));
}

#[test]
fn a_silent_member_is_evicted_after_its_session_timeout() {
    let mut g = ClassicGroup::new("g");
    let mut ids = Ids(0);
    let a = single(&mut g, &mut ids, 0);
    let s = i64::from(SESSION);
    assert_eq!(g.tick(s), Some(s + 1));
    assert_eq!(g.heartbeat(&a, 1, s), Ok(()), "exactly at the timeout is still alive");
    g.tick(2 * s + 1);
    assert_eq!((g.state, g.generation), (ClassicState::Empty, 2));
    assert_eq!(g.heartbeat(&a, 1, 2 * s + 1), Err(ClassicError::UnknownMemberId));
}

#[test]
fn a_handed_out_id_expires_and_no_longer_holds_a_rebalance() {
    let mut g = ClassicGroup::new("g");
    let mut ids = Ids(0);
    let a = single(&mut g, &mut ids, 0);
    let _ghost = now_answer(g.join(join_req("", true), 0, ids.next())).member_id;
    assert!(g.is_active());
    assert_eq!(g.state, ClassicState::Stable, "a handed-out id does not start a rebalance");
    // a rejoins as leader: the rebalance waits for the id handed out, until it expires.
    let mut ra = parked(g.join(join_req(&a, true), 1, ids.next()));
    g.tick(i64::from(SESSION));
    waiting(&mut ra);
    g.tick(i64::from(SESSION) + 1);
    assert_eq!(ready(&mut ra).generation, 2);
}

#[test]
fn a_leader_that_never_syncs_is_removed_and_followers_rejoin() {
    let mut g = ClassicGroup::new("g");
    let mut ids = Ids(0);
    let a = single(&mut g, &mut ids, 0);
    let b = now_answer(g.join(join_req("", true), 1, ids.next())).member_id;
    let mut rb = parked(g.join(join_req(&b, true), 1, ids.next()));
    let mut ra = parked(g.join(join_req(&a, true), 1, ids.next()));
    let (_, jb) = (ready(&mut ra), ready(&mut rb));
    let mut sb = parked(g.sync(sync_req(&b, jb.generation, &[]), 2));
    // The leader heartbeats (its session stays alive) but never sends its assignment.
    for t in [10_000, 20_000] {
        assert_eq!(g.heartbeat(&a, jb.generation, t), Ok(()));
        g.tick(t);
    }
    g.tick(1 + i64::from(REBALANCE) - 1);
    waiting(&mut sb);
    g.tick(1 + i64::from(REBALANCE));
    assert_eq!(ready(&mut sb).error, Some(ClassicError::RebalanceInProgress));
    assert_eq!(g.state, ClassicState::PreparingRebalance);
    assert!(!g.members.contains_key(&a));
    let mut rb = parked(g.join(join_req(&b, true), 2 + i64::from(REBALANCE), ids.next()));
    assert_eq!(ready(&mut rb).leader, b);
}

#[test]
fn protocols_must_match_and_the_common_one_is_chosen() {
    let mut g = ClassicGroup::new("g");
    let mut ids = Ids(0);
    let bad = ClassicJoin { protocol_type: String::new(), ..join_req("", false) };
    assert_eq!(now_answer(g.join(bad, 0, ids.next())).error, Some(ClassicError::InconsistentGroupProtocol));
    let short = ClassicJoin { session_timeout_ms: 5_999, ..join_req("", false) };
    assert_eq!(now_answer(g.join(short, 0, ids.next())).error, Some(ClassicError::InvalidSessionTimeout));
    let long = ClassicJoin { session_timeout_ms: 45_000, ..join_req("", false) };
    let mut ra = parked(g.join(long, 0, ids.next()));
    let a = ready(&mut ra).member_id;
    let other_type = ClassicJoin { protocol_type: "connect".into(), ..join_req("", false) };
    assert_eq!(now_answer(g.join(other_type, 0, ids.next())).error, Some(ClassicError::InconsistentGroupProtocol));
    let disjoint = ClassicJoin { protocols: vec![("sticky".into(), Bytes::new())], ..join_req("", false) };
    assert_eq!(now_answer(g.join(disjoint, 0, ids.next())).error, Some(ClassicError::InconsistentGroupProtocol));
    // b supports only roundrobin: the one both support.
    let rr = ClassicJoin { protocols: vec![("roundrobin".into(), Bytes::from_static(b"b"))], ..join_req("", false) };
    let mut rb = parked(g.join(rr, 1, ids.next()));
    let mut ra = parked(g.join(join_req(&a, false), 1, ids.next()));
    let (ja, jb) = (ready(&mut ra), ready(&mut rb));
    assert_eq!((ja.protocol_name.as_deref(), jb.protocol_name.as_deref()), (Some("roundrobin"), Some("roundrobin")));
    let metadata: Vec<&[u8]> = ja.members.iter().map(|m| &m.metadata[..]).collect();
    assert!(metadata.contains(&&b"rr"[..]) && metadata.contains(&&b"b"[..]), "{metadata:?}");
    let wrong = ClassicSync { protocol_name: Some("range".into()), ..sync_req(&a, ja.generation, &[]) };
    assert_eq!(now_answer(g.sync(wrong, 2)).error, Some(ClassicError::InconsistentGroupProtocol));
}

#[test]
fn commits_are_checked_as_kafka_does() {
    let mut g = ClassicGroup::new("g");
    let mut ids = Ids(0);
    assert_eq!(g.validate_commit("", -1, 0), Ok(()), "a simple consumer commits to an empty group");
    let a = single(&mut g, &mut ids, 0);
    assert_eq!(g.validate_commit("", -1, 1), Err(ClassicError::UnknownMemberId));
    assert_eq!(g.validate_commit(&a, 1, 1), Ok(()));
    assert_eq!(g.validate_commit(&a, 0, 1), Err(ClassicError::IllegalGeneration));
    assert_eq!(g.validate_commit("x", 1, 1), Err(ClassicError::UnknownMemberId));
    // During PreparingRebalance the old generation may still commit (before rejoining).
    let _b = parked(g.join(join_req("", false), 2, ids.next()));
    assert_eq!(g.validate_commit(&a, 1, 2), Ok(()));
    let _ra = parked(g.join(join_req(&a, false), 2, ids.next()));
    assert_eq!(g.state, ClassicState::CompletingRebalance);
    assert_eq!(g.validate_commit(&a, 2, 3), Err(ClassicError::RebalanceInProgress));
}

#[test]
fn eviction_answers_parked_requests_and_kill_refuses_everything() {
    let mut g = ClassicGroup::new("g");
    let mut ids = Ids(0);
    let a = single(&mut g, &mut ids, 0);
    let mut rb = parked(g.join(join_req("", false), 1, ids.next()));
    g.evict_all();
    assert_eq!(ready(&mut rb).error, Some(ClassicError::UnknownMemberId));
    assert_eq!((g.state, g.is_active()), (ClassicState::Empty, false));
    assert_eq!(g.heartbeat(&a, 1, 2), Err(ClassicError::UnknownMemberId));
    g.kill();
    assert_eq!(
        now_answer(g.join(join_req("", false), 3, ids.next())).error,
        Some(ClassicError::CoordinatorNotAvailable)
    );
}

#[test]
fn a_repeated_join_answers_the_earlier_one() {
    let mut g = ClassicGroup::new("g");
    let mut ids = Ids(0);
    let a = single(&mut g, &mut ids, 0);
    let _b = parked(g.join(join_req("", false), 1, ids.next()));
    let mut first = parked(g.join(join_req(&a, false), 1, ids.next()));
    // Both joined: answered.
    assert_eq!(ready(&mut first).error, None);
    let mut r1 = parked(g.join(
        ClassicJoin { protocols: vec![("range".into(), Bytes::new())], ..join_req(&a, false) },
        2,
        ids.next(),
    ));
    let mut r2 = parked(g.join(join_req(&a, false), 2, ids.next()));
    assert_eq!(ready(&mut r1).error, Some(ClassicError::RebalanceInProgress));
    waiting(&mut r2);
}

/// Random operations against a model of who is a member: the machine never panics, members are
/// exactly those that joined and were not removed, a member's generation answer is the group's,
/// and at most one request per member is parked. Prints its seed.
#[test]
fn model_based_random_operations() {
    let seed: u64 = std::env::var("CLASSIC_MODEL_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64
    });
    println!("classic model seed {seed} (CLASSIC_MODEL_SEED={seed} replays it)");
    let mut rng = seed | 1;
    let mut next = move |n: u64| {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng % n
    };
    for _run in 0..50 {
        let mut g = ClassicGroup::new("g");
        let mut ids = Ids(0);
        let mut now = 0i64;
        let mut known: Vec<String> = Vec::new();
        let mut joins: Vec<(String, oneshot::Receiver<ClassicJoinResponse>)> = Vec::new();
        let mut syncs: Vec<oneshot::Receiver<ClassicSyncResponse>> = Vec::new();
        for _ in 0..200 {
            now += next(3_000) as i64;
            let generation_before = g.generation;
            let pick = |known: &Vec<String>, k: u64| known.get(k as usize % known.len().max(1)).cloned();
            match next(7) {
                0 | 1 => {
                    let v4 = next(2) == 0;
                    match g.join(join_req("", v4), now, ids.next()) {
                        Reply::Now(r) => {
                            if r.error == Some(ClassicError::MemberIdRequired) {
                                known.push(r.member_id);
                            }
                        }
                        Reply::Parked(rx) => joins.push((String::new(), rx)),
                    }
                    let handed_out = format!("c-{}", ids.0);
                    if !known.contains(&handed_out) {
                        known.push(handed_out);
                    }
                }
                2 => {
                    if let Some(id) = pick(&known, next(100)) {
                        if let Reply::Parked(rx) = g.join(join_req(&id, true), now, ids.next()) {
                            joins.push((id, rx));
                        }
                    }
                }
                3 => {
                    if let Some(id) = pick(&known, next(100)) {
                        let gen = g.generation;
                        let assignments: Vec<(String, Bytes)> =
                            g.members.keys().map(|m| (m.clone(), Bytes::from(m.clone()))).collect();
                        let req = ClassicSync { assignments, ..sync_req(&id, gen, &[]) };
                        if let Reply::Parked(rx) = g.sync(req, now) {
                            syncs.push(rx);
                        }
                    }
                }
                4 => {
                    if let Some(id) = pick(&known, next(100)) {
                        let _ = g.heartbeat(&id, g.generation, now);
                    }
                }
                5 => {
                    if let Some(id) = pick(&known, next(100)) {
                        let _ = g.leave(&id, None, now);
                    }
                }
                _ => {
                    g.tick(now);
                }
            }
            for (_, rx) in &mut joins {
                if let Ok(r) = rx.try_recv() {
                    if r.error.is_none() {
                        assert!(r.generation <= g.generation, "seed {seed}");
                        if !known.contains(&r.member_id) {
                            known.push(r.member_id.clone());
                        }
                        if r.leader == r.member_id {
                            assert!(!r.members.is_empty(), "seed {seed}: the leader gets the members");
                        }
                    }
                }
            }
            for rx in &mut syncs {
                let _ = rx.try_recv();
            }
            assert!(g.members.keys().all(|m| known.contains(m)), "seed {seed}: members are ids handed out");
            assert!(g.generation >= generation_before, "seed {seed}: generations only grow");
            match g.state {
                ClassicState::Empty => assert!(g.members.is_empty(), "seed {seed}"),
                ClassicState::Stable | ClassicState::CompletingRebalance => {
                    assert!(!g.members.is_empty(), "seed {seed}");
                    let leader = g.leader.clone().expect("a leader");
                    assert!(g.members.contains_key(&leader), "seed {seed}: the leader is a member");
                }
                ClassicState::PreparingRebalance => {}
                ClassicState::Dead => panic!("seed {seed}: never dead without kill"),
            }
        }
    }
}

#[test]
fn a_static_member_leaves_by_its_instance_id() {
    let mut g = ClassicGroup::new("g");
    let mut ids = Ids(0);
    let req = ClassicJoin { group_instance_id: Some("host-1".into()), ..join_req("", false) };
    let mut rx = parked(g.join(req, 0, ids.next()));
    assert_eq!(ready(&mut rx).error, None);
    assert_eq!(g.leave("", Some("host-2"), 1), Err(ClassicError::UnknownMemberId));
    assert_eq!(g.leave("", Some("host-1"), 1), Ok(()));
    assert_eq!((g.state, g.is_active()), (ClassicState::Empty, false));
}
