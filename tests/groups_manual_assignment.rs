//! Manual assignment (Kafka's assign()): a consumer reads explicit partitions without joining, and
//! commits under the group name; such commits are refused while the group has live members.

use kappalog::{
    groups::{AutoOffsetReset, GroupError, JoinRequest, TopicPartition},
    Consumer, ConsumerConfig, Error, NewRecord, Store, StoreConfig, TopicConfig,
};

#[test]
fn a_manually_assigned_consumer_reads_its_partitions_and_commits() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
    let t = store.create_topic("t", 3, TopicConfig::default()).unwrap();
    for p in 0..3 {
        t.partition(p).unwrap().append(&vec![NewRecord::new(format!("p{p}")); 10]).unwrap();
    }
    let coordinator = store.groups().unwrap();
    let config = ConsumerConfig::default().auto_offset_reset(AutoOffsetReset::Earliest);
    let tp = TopicPartition::new("t", 1);
    let mut c = Consumer::assign(&coordinator, "manual", vec![tp.clone()], config.clone()).unwrap();
    assert!(c.membership().is_none());
    let got = c.poll(4).unwrap();
    assert_eq!(got.len(), 4);
    assert!(got.iter().all(|(t, r)| *t == tp && r.value.as_deref() == Some(&b"p1"[..])));
    c.commit().unwrap();
    assert_eq!(coordinator.committed("manual", &tp).unwrap().offset, 4);
    assert!(coordinator.describe("manual").unwrap().members.is_empty(), "no membership");

    // A restarted manual consumer continues from the committed offset; seek moves it.
    let mut again = Consumer::assign(&coordinator, "manual", vec![tp.clone()], config.clone()).unwrap();
    assert_eq!(again.poll(100).unwrap().first().unwrap().1.offset, 4);
    again.seek(&tp, 8).unwrap();
    assert_eq!(again.poll(100).unwrap().iter().map(|(_, r)| r.offset).collect::<Vec<_>>(), [8, 9]);
    let err = again.seek(&TopicPartition::new("t", 0), 0).unwrap_err();
    assert!(matches!(err, GroupError::InvalidRequest(_)), "{err}");

    // A live member makes the group's offsets its own: manual commits are refused.
    let m = coordinator.join("manual", JoinRequest { topics: vec!["t".into()], ..JoinRequest::default() }).unwrap();
    let err = again.commit().unwrap_err();
    assert!(matches!(err, GroupError::ActiveMembers { members: 1, .. }), "{err}");
    assert_eq!(coordinator.committed("manual", &tp).unwrap().offset, 4);
    coordinator.leave("manual", &m.member_id).unwrap();
    again.commit().unwrap();
    assert_eq!(coordinator.committed("manual", &tp).unwrap().offset, 10);

    let err = Consumer::assign(&coordinator, "manual", vec![TopicPartition::new("t", 9)], config).unwrap_err();
    assert!(matches!(err, GroupError::Log(Error::PartitionNotFound { partition: 9, .. })), "{err}");
}
