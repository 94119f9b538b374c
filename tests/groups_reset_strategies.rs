//! Every reset strategy, on a log whose timestamps are known: where each partition goes, the
//! clamping notes, the choice of partitions, and that executing stores exactly the plan.

use kappalog::{
    clock::ManualClock,
    groups::{GroupCoordinator, GroupError, ResetEntry, ResetRequest, ResetStrategy, TopicPartition},
    Error, NewRecord, Store, StoreConfig, TopicConfig,
};

const RECORDS: u64 = 100;

/// Record i of each partition has timestamp 1000 + 10 i; small segments, so the time index spans several.
fn setup() -> (tempfile::TempDir, Store, GroupCoordinator) {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(2_500);
    let store = Store::open(dir.path(), StoreConfig::default().clock(clock)).unwrap();
    let config = TopicConfig::default().segment_bytes(4096).index_interval_bytes(128);
    let t = store.create_topic("t", 2, config.clone()).unwrap();
    store.create_topic("u", 1, config).unwrap();
    for p in 0..2 {
        let part = t.partition(p).unwrap();
        for i in 0..RECORDS {
            part.append(&[NewRecord::new(format!("{i}-{}", "x".repeat(60))).with_timestamp(1_000 + 10 * i as i64)])
                .unwrap();
        }
        assert!(part.segment_infos().unwrap().len() > 2, "several segments");
    }
    let c = store.groups().unwrap();
    c.commit("g", None, &[(TopicPartition::new("t", 0), 50, None), (TopicPartition::new("t", 1), 20, None)]).unwrap();
    (dir, store, c)
}

fn dry(c: &GroupCoordinator, strategy: ResetStrategy) -> Vec<ResetEntry> {
    let req = ResetRequest { topic: Some("t".into()), partitions: None, strategy, execute: false, force: false };
    let plan = c.reset_offsets("g", req).unwrap();
    assert!(!plan.executed);
    assert_eq!(plan.entries.len(), 2);
    assert_eq!(plan.entries[0].current, Some(50));
    assert_eq!(plan.entries[1].current, Some(20));
    plan.entries
}

fn news(entries: &[ResetEntry]) -> Vec<u64> {
    entries.iter().map(|e| e.new).collect()
}

fn notes(entries: &[ResetEntry]) -> Vec<bool> {
    entries.iter().map(|e| e.note.is_some()).collect()
}

#[test]
fn every_strategy_goes_where_kafka_would() {
    let (_dir, _store, c) = setup();
    assert_eq!(news(&dry(&c, ResetStrategy::ToEarliest)), [0, 0]);
    assert_eq!(news(&dry(&c, ResetStrategy::ToLatest)), [RECORDS, RECORDS]);

    let e = dry(&c, ResetStrategy::ToOffset(70));
    assert_eq!((news(&e), notes(&e)), (vec![70, 70], vec![false, false]));
    let e = dry(&c, ResetStrategy::ToOffset(500));
    assert_eq!(news(&e), [RECORDS, RECORDS]);
    assert!(e[0].note.as_deref().unwrap().contains("above the high watermark 100: clamped"), "{e:?}");

    // A timestamp in the middle of the log: exactly a record's, and between two records.
    assert_eq!(news(&dry(&c, ResetStrategy::ToTimestamp(1_370))), [37, 37]);
    assert_eq!(news(&dry(&c, ResetStrategy::ToTimestamp(1_375))), [38, 38]);
    assert_eq!(news(&dry(&c, ResetStrategy::ToTimestamp(0))), [0, 0]);
    let e = dry(&c, ResetStrategy::ToTimestamp(99_999));
    assert_eq!((news(&e), notes(&e)), (vec![RECORDS, RECORDS], vec![true, true]));

    // The clock says 2500: 1130 ms ago is timestamp 1370.
    assert_eq!(news(&dry(&c, ResetStrategy::ByDuration(1_130))), [37, 37]);
    assert_eq!(news(&dry(&c, ResetStrategy::ByDuration(1_000_000))), [0, 0]);

    let e = dry(&c, ResetStrategy::ShiftBy(-10));
    assert_eq!((news(&e), notes(&e)), (vec![40, 10], vec![false, false]));
    let e = dry(&c, ResetStrategy::ShiftBy(-30));
    assert_eq!((news(&e), notes(&e)), (vec![20, 0], vec![false, true]));
    assert!(e[1].note.as_deref().unwrap().contains("-10 is below the log start offset 0"), "{e:?}");
    let e = dry(&c, ResetStrategy::ShiftBy(60));
    assert_eq!((news(&e), notes(&e)), (vec![RECORDS, 80], vec![true, false]));
    let e = dry(&c, ResetStrategy::ShiftBy(i64::MIN));
    assert_eq!(news(&e), [0, 0]);
}

#[test]
fn scope_and_execution() {
    let (_dir, _store, c) = setup();
    let req = |topic: Option<&str>, partitions: Option<Vec<u32>>, strategy, execute| ResetRequest {
        topic: topic.map(str::to_string),
        partitions,
        strategy,
        execute,
        force: false,
    };
    // Chosen partitions.
    let plan = c.reset_offsets("g", req(Some("t"), Some(vec![1]), ResetStrategy::ToEarliest, false)).unwrap();
    assert_eq!(plan.entries.iter().map(|e| (e.topic.as_str(), e.partition)).collect::<Vec<_>>(), [("t", 1)]);
    // All the group's topics: those it has offsets for ("t", not "u").
    let plan = c.reset_offsets("g", req(None, None, ResetStrategy::ToEarliest, false)).unwrap();
    assert_eq!(plan.entries.len(), 2);
    assert!(plan.entries.iter().all(|e| e.topic == "t"));
    // Bad requests.
    let err = c.reset_offsets("g", req(None, Some(vec![0]), ResetStrategy::ToEarliest, false)).unwrap_err();
    assert!(matches!(err, GroupError::InvalidRequest(_)), "{err}");
    let err = c.reset_offsets("g", req(Some("t"), Some(vec![2]), ResetStrategy::ToEarliest, false)).unwrap_err();
    assert!(matches!(err, GroupError::Log(Error::PartitionNotFound { partition: 2, .. })), "{err}");
    let err = c.reset_offsets("g", req(Some("nope"), None, ResetStrategy::ToEarliest, false)).unwrap_err();
    assert!(matches!(err, GroupError::Log(Error::TopicNotFound(_))), "{err}");
    let err = c.reset_offsets("g", req(Some("u"), None, ResetStrategy::ShiftBy(1), false)).unwrap_err();
    assert!(matches!(err, GroupError::NothingToShift { .. }), "{err}");
    // A topic without offsets can be reset to a position (Kafka allows it).
    let plan = c.reset_offsets("g", req(Some("u"), None, ResetStrategy::ToLatest, true)).unwrap();
    assert_eq!(plan.entries[0].current, None);
    assert_eq!(c.committed("g", &TopicPartition::new("u", 0)).unwrap().offset, 0);

    // Execute: the committed offsets become exactly the plan.
    let plan = c.reset_offsets("g", req(Some("t"), None, ResetStrategy::ToTimestamp(1_370), true)).unwrap();
    assert!(plan.executed);
    for e in &plan.entries {
        assert_eq!(c.committed("g", &TopicPartition::new(&e.topic, e.partition)).unwrap().offset, e.new);
    }
    assert_eq!(c.committed("g", &TopicPartition::new("t", 1)).unwrap().offset, 37);
}
