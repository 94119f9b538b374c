//! Appends that span partitions: a record that breaks a limit writes nothing anywhere; an I/O
//! failure in one partition returns the error, and the batches already written to the other
//! partitions are synced and readable at once (rather than waiting, invisible, for those
//! partitions' next append).

use kappalog::{
    fault::{FaultInjector, FaultKind},
    Error, NewRecord, Store, StoreConfig, TopicConfig,
};

#[test]
fn a_rejected_record_writes_nothing_in_any_partition() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
    let topic = store.create_topic("t", 2, TopicConfig::default()).unwrap();
    let big = vec![0u8; TopicConfig::default().max_message_bytes as usize + 1];
    let err =
        topic.append(&[NewRecord::new("ok").with_partition(0), NewRecord::new(big).with_partition(1)]).unwrap_err();
    assert!(matches!(err, Error::LimitExceeded { limit: "max_message_bytes", .. }), "{err}");
    for p in topic.partitions().iter() {
        assert_eq!(p.high_watermark(), 0);
        assert_eq!(p.stats().size_bytes, 0, "partition {} has no bytes", p.id());
    }
}

#[test]
fn batches_written_before_a_failed_partition_are_synced() {
    let dir = tempfile::tempdir().unwrap();
    let faults = FaultInjector::new();
    let config = StoreConfig::default().faults(Some(faults.clone()));
    let store = Store::open(dir.path(), config).unwrap();
    let topic = store.create_topic("t", 2, TopicConfig::default()).unwrap();
    // Partition 0's first batch is three writes (log, offset index entry, time index entry);
    // the fourth write is partition 1's log write.
    faults.fail_write_after(4, FaultKind::Io);
    let err =
        topic.append(&[NewRecord::new("ok").with_partition(0), NewRecord::new("fails").with_partition(1)]).unwrap_err();
    assert!(matches!(err, Error::Io { .. }), "{err}");
    faults.heal();
    let p0 = topic.partition(0).unwrap();
    assert_eq!(p0.high_watermark(), 1, "the batch written to partition 0 was synced and is visible");
    assert_eq!(p0.read(0, 4096, 10).unwrap()[0].value.as_deref(), Some(&b"ok"[..]));
    let p1 = topic.partition(1).unwrap();
    assert_eq!(p1.high_watermark(), 0);
    assert!(p1.is_poisoned());
}
