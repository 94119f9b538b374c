//! Retention moves the log start past a group's committed offset: the group follows its
//! `auto_offset_reset` (earliest → the new log start, latest → the end, none → a clear error), and a
//! commit below the log start is still accepted (Kafka allows it).

use kappalog::{
    clock::ManualClock,
    groups::{AutoOffsetReset, GroupError, TopicPartition},
    Error, NewRecord, Store, StoreConfig, TopicConfig,
};

#[test]
fn a_committed_offset_below_the_log_start_follows_auto_offset_reset() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(1_000_000);
    let store = Store::open(dir.path(), StoreConfig::default().clock(clock.clone())).unwrap();
    let config = TopicConfig::default().segment_bytes(4096).retention_ms(60_000);
    let p = store.create_topic("events", 1, config).unwrap().partition(0).unwrap();
    for i in 0..200 {
        p.append(&[NewRecord::new(format!("event-{i}-{}", "x".repeat(100)))]).unwrap();
    }
    let groups = store.groups().unwrap();
    let tp = TopicPartition { topic: "events".into(), partition: 0 };
    groups.commit("g", None, &[(tp.clone(), 5, None)]).unwrap();
    assert_eq!(groups.starting_offset("g", &tp, AutoOffsetReset::None).unwrap(), 5);

    clock.advance(120_000);
    let report = store.enforce_retention("events").unwrap();
    let start = p.log_start_offset();
    assert!(start > 5, "retention moved the log start past the committed offset: {report:?}");
    assert_eq!(p.high_watermark(), 200);
    assert!(matches!(p.read(5, 4096, 1), Err(Error::OffsetOutOfRange { .. })));

    assert_eq!(groups.starting_offset("g", &tp, AutoOffsetReset::Earliest).unwrap(), start);
    assert_eq!(groups.starting_offset("g", &tp, AutoOffsetReset::Latest).unwrap(), 200);
    let err = groups.starting_offset("g", &tp, AutoOffsetReset::None).unwrap_err();
    assert!(matches!(err, GroupError::NoValidOffset { committed: Some(5), .. }), "{err}");

    // Committing below the log start is allowed, as in Kafka; above the high watermark is not.
    groups.commit("g", None, &[(tp.clone(), 1, None)]).unwrap();
    assert_eq!(groups.committed("g", &tp).unwrap().offset, 1);
    assert!(groups.commit("g", None, &[(tp.clone(), 201, None)]).is_err());
}
