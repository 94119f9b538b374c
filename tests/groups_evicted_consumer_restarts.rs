//! A consumer evicted from its group (a forced reset, or its session timing out) has lost its
//! partitions, as Kafka's consumer does: when it joins again, it reads from the group's committed
//! offsets, not from the positions it held before. So a forced reset to the earliest offsets makes
//! a running consumer replay everything.

use std::collections::BTreeSet;

use kappalog::{
    groups::{AutoOffsetReset, ResetRequest, ResetStrategy},
    Consumer, ConsumerConfig, NewRecord, Store, StoreConfig, TopicConfig,
};

const RECORDS: usize = 120;

/// Polls until `n` records came (bounded: every poll here returns data while any is left).
fn drain(c: &mut Consumer, n: usize) -> BTreeSet<(u32, u64)> {
    let mut seen = BTreeSet::new();
    for _ in 0..1_000 {
        if seen.len() >= n {
            break;
        }
        for (tp, r) in c.poll(17).unwrap() {
            assert!(seen.insert((tp.partition, r.offset)), "{tp} {} twice", r.offset);
        }
    }
    assert_eq!(seen.len(), n);
    seen
}

#[test]
fn a_forced_reset_makes_a_running_consumer_replay_from_the_reset_offsets() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
    let t = store.create_topic("events", 2, TopicConfig::default()).unwrap();
    t.append(&(0..RECORDS).map(|i| NewRecord::keyed(format!("k{i}"), format!("e{i}"))).collect::<Vec<_>>()).unwrap();
    let coordinator = store.groups().unwrap();
    let config = ConsumerConfig::default().auto_offset_reset(AutoOffsetReset::Earliest);
    let mut consumer = Consumer::subscribe(&coordinator, "g", vec!["events".into()], config).unwrap();
    let all = drain(&mut consumer, RECORDS);
    consumer.commit().unwrap();
    assert!(consumer.poll(100).unwrap().is_empty(), "at the end");

    // The consumer is live: only a forced reset runs, and it evicts the consumer.
    let reset = ResetRequest {
        topic: Some("events".into()),
        partitions: None,
        strategy: ResetStrategy::ToEarliest,
        execute: true,
        force: true,
    };
    coordinator.reset_offsets("g", reset).unwrap();
    let member_before = consumer.membership().unwrap().member_id.clone();

    assert_eq!(drain(&mut consumer, RECORDS), all, "every record again, from the reset offsets");
    assert_ne!(consumer.membership().unwrap().member_id, member_before, "it joined again as a new member");
    assert!(consumer.poll(100).unwrap().is_empty());
}
