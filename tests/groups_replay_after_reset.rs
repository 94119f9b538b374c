//! Replay: a consumer reads everything and commits; a new consumer of the group gets nothing; after
//! a reset to the earliest offsets, the next one gets every record again.

use std::collections::BTreeSet;

use kappalog::{
    groups::{AutoOffsetReset, ResetRequest, ResetStrategy},
    Consumer, ConsumerConfig, NewRecord, Store, StoreConfig, TopicConfig,
};

const RECORDS: usize = 300;

/// Polls until `n` records came (bounded: every poll here returns data while any is left).
fn drain(c: &mut Consumer, n: usize) -> BTreeSet<(u32, u64, Vec<u8>)> {
    let mut seen = BTreeSet::new();
    for _ in 0..1_000 {
        if seen.len() >= n {
            break;
        }
        for (tp, r) in c.poll(37).unwrap() {
            assert!(seen.insert((tp.partition, r.offset, r.value.unwrap().to_vec())), "a record twice");
        }
    }
    assert_eq!(seen.len(), n);
    assert!(c.poll(100).unwrap().is_empty(), "nothing more");
    seen
}

#[test]
fn replay_after_reset_to_earliest_returns_every_record_again() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
    let t = store.create_topic("events", 3, TopicConfig::default().segment_bytes(4096)).unwrap();
    for chunk in (0..RECORDS).collect::<Vec<_>>().chunks(50) {
        t.append(&chunk.iter().map(|i| NewRecord::keyed(format!("k{i}"), format!("event-{i}"))).collect::<Vec<_>>())
            .unwrap();
    }
    let coordinator = store.groups().unwrap();
    let config = ConsumerConfig::default().auto_offset_reset(AutoOffsetReset::Earliest);
    let subscribe = || Consumer::subscribe(&coordinator, "replayer", vec!["events".into()], config.clone()).unwrap();

    let mut first = subscribe();
    let all = drain(&mut first, RECORDS);
    first.commit().unwrap();
    first.close().unwrap();

    let mut second = subscribe();
    assert!(second.poll(100).unwrap().is_empty(), "the committed offsets are at the end");
    second.close().unwrap();

    let plan = coordinator
        .reset_offsets(
            "replayer",
            ResetRequest {
                topic: Some("events".into()),
                partitions: None,
                strategy: ResetStrategy::ToEarliest,
                execute: true,
                force: false,
            },
        )
        .unwrap();
    assert_eq!(plan.entries.iter().map(|e| e.current.unwrap()).sum::<u64>(), RECORDS as u64);
    assert!(plan.entries.iter().all(|e| e.new == 0));

    let mut third = subscribe();
    assert_eq!(drain(&mut third, RECORDS), all, "every record again");
    third.close().unwrap();
}
