//! Two `Consumer`s of one group: each polls only its own partitions; after the second joins, the
//! first's stale commit is refused, its next poll rejoins, and between them they read every record
//! exactly once from the committed positions. Seeks to the beginning and end move positions.

use std::collections::BTreeSet;

use kappalog::{
    groups::{AutoOffsetReset, GroupError, TopicPartition},
    Consumer, ConsumerConfig, NewRecord, Store, StoreConfig, TopicConfig,
};

#[test]
fn consumers_share_partitions_and_commits_are_fenced() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
    let t = store.create_topic("t", 4, TopicConfig::default()).unwrap();
    for p in 0..4 {
        t.partition(p).unwrap().append(&vec![NewRecord::new(format!("p{p}")); 10]).unwrap();
    }
    let coordinator = store.groups().unwrap();
    let config = ConsumerConfig::default().auto_offset_reset(AutoOffsetReset::Earliest);
    let mut a = Consumer::subscribe(&coordinator, "g", vec!["t".into()], config.clone()).unwrap();
    let mut seen: BTreeSet<(u32, u64)> = BTreeSet::new();
    // a has processed half of partition 0: it commits that, and sets its positions to match.
    let tp0 = TopicPartition::new("t", 0);
    a.commit_offsets(&[(tp0.clone(), 5, None)]).unwrap();
    assert_eq!(coordinator.committed("g", &tp0).unwrap().offset, 5);
    for p in 0..4 {
        a.seek(&TopicPartition::new("t", p), if p == 0 { 5 } else { 0 }).unwrap();
    }
    a.commit().unwrap();
    for offset in 0..5 {
        seen.insert((0, offset));
    }

    let mut b = Consumer::subscribe(&coordinator, "g", vec!["t".into()], config).unwrap();
    let err = a.commit().unwrap_err();
    assert!(matches!(err, GroupError::IllegalGeneration { .. }), "{err}");
    // Bounded: each round either reads or the group settles.
    for _ in 0..50 {
        for c in [&mut a, &mut b] {
            for (tp, r) in c.poll(7).unwrap() {
                assert!(c.assignment().contains(&tp), "{tp} polled by a consumer that does not own it");
                assert!(seen.insert((tp.partition, r.offset)), "{tp}@{} read twice", r.offset);
            }
        }
        if seen.len() == 40 {
            break;
        }
    }
    assert_eq!(seen.len(), 40, "every record once");
    let (mut pa, mut pb) = (a.assignment(), b.assignment());
    assert_eq!((pa.len(), pb.len()), (2, 2));
    pa.append(&mut pb);
    pa.sort();
    assert_eq!(pa, (0..4).map(|p| TopicPartition::new("t", p)).collect::<Vec<_>>());

    a.commit().unwrap();
    b.commit().unwrap();
    let d = coordinator.describe("g").unwrap();
    assert!(d.partitions.iter().all(|p| p.lag == Some(0)), "{:?}", d.partitions);

    b.seek_to_beginning(&[]).unwrap();
    assert!(b.assignment().iter().all(|tp| b.position(tp) == Some(0)));
    assert_eq!(b.poll(100).unwrap().len(), 20);
    b.seek_to_end(&[]).unwrap();
    assert!(b.poll(100).unwrap().is_empty());
    b.close().unwrap();
    a.close().unwrap();
    assert!(coordinator.describe("g").unwrap().members.is_empty());
}
