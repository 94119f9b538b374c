//! Where a group starts: the committed offset when valid, else auto_offset_reset (none is a clear
//! error). Commits above the high watermark, with oversized metadata, or to unknown partitions are
//! refused and store nothing.

use kappalog::{
    groups::OFFSET_METADATA_BYTES_MAX, AutoOffsetReset, Error, GroupCoordinator, GroupError, ManualClock, NewRecord,
    Store, StoreConfig, TopicConfig, TopicPartition,
};

#[test]
fn starting_offsets_and_commit_validation() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(77_000);
    let store = Store::open(dir.path(), StoreConfig { clock, ..StoreConfig::default() }).unwrap();
    let t = store.create_topic("t", 1, TopicConfig::default()).unwrap();
    t.partition(0).unwrap().append(&vec![NewRecord::new("v"); 10]).unwrap();
    let c = GroupCoordinator::open(&store).unwrap();
    let tp = TopicPartition::new("t", 0);

    assert_eq!(c.starting_offset("g", &tp, AutoOffsetReset::Earliest).unwrap(), 0);
    assert_eq!(c.starting_offset("g", &tp, AutoOffsetReset::Latest).unwrap(), 10);
    let err = c.starting_offset("g", &tp, AutoOffsetReset::None).unwrap_err();
    assert!(matches!(err, Error::Group(GroupError::NoValidOffset { committed: None, .. })), "{err}");
    assert_eq!(
        err.to_string(),
        "group \"g\" has no committed offset for t-0 (valid offsets are 0..=10) and auto_offset_reset is none"
    );

    let err = c.commit("g", None, &[(tp.clone(), 11, None)]).unwrap_err();
    assert!(
        matches!(err, Error::Group(GroupError::OffsetAboveHighWatermark { offset: 11, high_watermark: 10, .. })),
        "{err}"
    );
    let err = c.commit("g", None, &[(tp.clone(), 1, Some("x".repeat(OFFSET_METADATA_BYTES_MAX + 1)))]).unwrap_err();
    assert!(matches!(err, Error::Group(GroupError::MetadataTooLarge { .. })), "{err}");
    let err = c.commit("g", None, &[(tp.clone(), 1, None), (TopicPartition::new("t", 1), 0, None)]).unwrap_err();
    assert!(matches!(err, Error::PartitionNotFound { .. }), "{err}");
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
        assert!(matches!(err, Error::Group(GroupError::InvalidGroupName { .. })), "{err}");
    }
}
