//! Commits are fenced by generation: a member from an older generation is told to rejoin, and a
//! member may commit only partitions it owns (and that their previous owner released).

use kappalog::{
    groups::{GroupError, JoinRequest},
    NewRecord, Store, StoreConfig, TopicConfig,
};

#[test]
fn commits_from_an_old_generation_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
    let t = store.create_topic("t", 2, TopicConfig::default()).unwrap();
    for p in 0..2 {
        t.partition(p).unwrap().append(&vec![NewRecord::new("x"); 10]).unwrap();
    }
    let c = store.groups().unwrap();
    let req = |id: Option<&str>| JoinRequest {
        member_id: id.map(str::to_string),
        topics: vec!["t".into()],
        ..JoinRequest::default()
    };
    let a = c.join("g", req(None)).unwrap();
    let [p0, p1] = [a.assignment[0].clone(), a.assignment[1].clone()];
    c.commit("g", Some((&a.member_id, 1)), &[(p0.clone(), 3, None), (p1.clone(), 4, None)]).unwrap();

    let b = c.join("g", req(None)).unwrap();
    assert_eq!(b.generation, 2);
    let err = c.commit("g", Some((&a.member_id, 1)), &[(p0.clone(), 7, None)]).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("member {} of group \"g\" is from generation 1 but the group is at generation 2: rejoin", a.member_id)
    );
    assert!(matches!(err, GroupError::IllegalGeneration { generation: 1, current: 2, .. }));
    assert_eq!(c.committed("g", &p0).unwrap().offset, 3, "the rejected commit changed nothing");

    // b owns one partition now but cannot commit it until a releases it by rejoining.
    let moved = b.assignment[0].clone();
    assert_eq!(b.pending, vec![moved.clone()]);
    let err = c.commit("g", Some((&b.member_id, 2)), &[(moved.clone(), 9, None)]).unwrap_err();
    assert!(matches!(&err, GroupError::NotReleased { previous_owner, .. } if *previous_owner == a.member_id), "{err}");

    let a = c.join("g", req(Some(&a.member_id))).unwrap();
    assert_eq!(a.generation, 2);
    let kept = a.assignment[0].clone();
    c.commit("g", Some((&a.member_id, 2)), &[(kept.clone(), 8, None)]).unwrap();
    assert_eq!(c.committed("g", &kept).unwrap().offset, 8);
    let err = c.commit("g", Some((&a.member_id, 2)), &[(moved.clone(), 9, None)]).unwrap_err();
    assert!(matches!(err, GroupError::NotAssigned { .. }), "{err}");
    c.commit("g", Some((&b.member_id, 2)), &[(moved.clone(), 9, None)]).unwrap();
    assert_eq!(c.committed("g", &moved).unwrap().offset, 9);

    // A commit from a future generation is just as wrong.
    let err = c.commit("g", Some((&b.member_id, 5)), &[(moved, 10, None)]).unwrap_err();
    assert!(matches!(err, GroupError::IllegalGeneration { generation: 5, current: 2, .. }), "{err}");
}
