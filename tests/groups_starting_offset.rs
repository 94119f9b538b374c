//! Where a group starts: the committed offset when valid, else auto_offset_reset (none is a clear
//! error). Commits above the high watermark, with oversized metadata, or to unknown partitions are
//! refused and store nothing.

mod common;

use kappalog::{
    clock::ManualClock,
    groups::{AutoOffsetReset, GroupError, TopicPartition, OFFSET_METADATA_BYTES_MAX},
    Error, NewRecord, Store, StoreConfig, TopicConfig,
};

#[test]
fn starting_offsets_and_commit_validation() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(77_000);
    let store = Store::open(dir.path(), StoreConfig::default().clock(clock)).unwrap();
    let t = store.create_topic("t", 1, TopicConfig::default()).unwrap();
    t.partition(0).unwrap().append(&vec![NewRecord::new("v"); 10]).unwrap();
    let c = store.groups().unwrap();
    let tp = TopicPartition::new("t", 0);

    assert_eq!(c.starting_offset("g", &tp, AutoOffsetReset::Earliest).unwrap(), 0);
    assert_eq!(c.starting_offset("g", &tp, AutoOffsetReset::Latest).unwrap(), 10);
    let err = c.starting_offset("g", &tp, AutoOffsetReset::None).unwrap_err();
    assert!(matches!(err, GroupError::NoValidOffset { committed: None, .. }), "{err}");
    assert_eq!(
        err.to_string(),
        "group \"g\" has no committed offset for t-0 (valid offsets are 0..=10) and auto_offset_reset is none"
    );

    let err = c.commit("g", None, &[(tp.clone(), 11, None)]).unwrap_err();
    assert!(matches!(err, GroupError::OffsetAboveHighWatermark { offset: 11, high_watermark: 10, .. }), "{err}");
    let err = c.commit("g", None, &[(tp.clone(), 1, Some("x".repeat(OFFSET_METADATA_BYTES_MAX + 1)))]).unwrap_err();
    assert!(matches!(err, GroupError::MetadataTooLarge { .. }), "{err}");
    let err = c.commit("g", None, &[(tp.clone(), 1, None), (TopicPartition::new("t", 1), 0, None)]).unwrap_err();
    assert!(matches!(err, GroupError::Log(Error::PartitionNotFound { .. })), "{err}");
    assert!(c.committed("g", &tp).is_none(), "refused commits store nothing, not even their valid parts");
    assert!(c.list().is_empty());

    c.commit("g", None, &[(tp.clone(), 10, Some("at the end".into()))]).unwrap();
    let committed = c.committed("g", &tp).unwrap();
    assert_eq!(
        (committed.offset, committed.metadata.as_deref(), committed.commit_timestamp),
        (10, Some("at the end"), 77_000)
    );
    for policy in [AutoOffsetReset::Earliest, AutoOffsetReset::Latest, AutoOffsetReset::None] {
        assert_eq!(c.starting_offset("g", &tp, policy).unwrap(), 10);
    }
    c.commit("g", None, &[(tp.clone(), 3, None)]).unwrap();
    assert_eq!(c.starting_offset("g", &tp, AutoOffsetReset::Latest).unwrap(), 3, "commits may move back");

    for bad in ["", "a\nb"] {
        let err = c.commit(bad, None, &[(tp.clone(), 3, None)]).unwrap_err();
        assert!(matches!(err, GroupError::InvalidGroupName { .. }), "{err}");
    }
}

/// A committed offset the log no longer reaches (records lost from an unsynced tail) is out of range:
/// the group restarts by its auto_offset_reset, and `none` names the committed offset and the range.
#[test]
fn an_out_of_range_committed_offset_falls_back_to_auto_offset_reset() {
    let dir = tempfile::tempdir().unwrap();
    let tp = TopicPartition::new("t", 0);
    let log_path = {
        let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
        let config = TopicConfig::default().durability(kappalog::Durability::None);
        let p = store.create_topic("t", 1, config).unwrap().partition(0).unwrap();
        p.append(&vec![NewRecord::new("kept"); 5]).unwrap();
        p.append(&vec![NewRecord::new("lost"); 5]).unwrap();
        let c = store.groups().unwrap();
        c.commit("g", None, &[(tp.clone(), 10, None)]).unwrap();
        p.segment_infos().unwrap()[0].path.clone()
    };
    // Simulate the loss of the unsynced second batch: tear it, and make the next open recover
    // from the state a crash leaves: the last durable point after the first batch (both batches
    // have the same size), not the clean close's.
    let len = std::fs::metadata(&log_path).unwrap().len();
    std::fs::OpenOptions::new().write(true).open(&log_path).unwrap().set_len(len - 3).unwrap();
    common::set_recovery_point(log_path.parent().unwrap(), 5, 0, len / 2);
    let _ = std::fs::remove_file(dir.path().join("clean-shutdown"));

    let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
    assert_eq!(store.topic("t").unwrap().partition(0).unwrap().high_watermark(), 5);
    let c = store.groups().unwrap();
    assert_eq!(c.committed("g", &tp).unwrap().offset, 10, "the commit itself was durable");
    assert_eq!(c.starting_offset("g", &tp, AutoOffsetReset::Earliest).unwrap(), 0);
    assert_eq!(c.starting_offset("g", &tp, AutoOffsetReset::Latest).unwrap(), 5);
    let err = c.starting_offset("g", &tp, AutoOffsetReset::None).unwrap_err();
    assert_eq!(
        err.to_string(),
        "group \"g\" has committed offset 10, out of range, for t-0 (valid offsets are 0..=5) and auto_offset_reset is none"
    );
    let config = kappalog::ConsumerConfig::default().auto_offset_reset(AutoOffsetReset::Earliest);
    let mut consumer = kappalog::Consumer::assign(&c, "g", vec![tp.clone()], config).unwrap();
    let got = consumer.poll(100).unwrap();
    assert_eq!(got.len(), 5);
    assert!(got.iter().all(|(_, r)| r.value.as_deref() == Some(&b"kept"[..])));
    // A position past the end, met while polling, resets the same way.
    consumer.seek(&tp, 50).unwrap();
    assert_eq!(consumer.poll(100).unwrap().len(), 5);
    assert_eq!(consumer.position(&tp), Some(5));
}
