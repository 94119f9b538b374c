//! An offset committed on a topic is never applied to a topic created again under its name, even
//! when the deletion of the committed offsets (the second step of `delete_topic`) did not happen:
//! here its write fails (the fault-injection seam), and the store is used on, reopened, and its
//! crash image (copied right after the failed deletion) is opened. Each time a group reads the
//! new topic from its beginning and shows no committed offset for it.

mod common;

use std::path::Path;

use kappalog::fault::{FaultInjector, FaultKind};
use kappalog::groups::{AutoOffsetReset, GroupCoordinator, TopicPartition};
use kappalog::{Consumer, ConsumerConfig, NewRecord, Store, TopicConfig};

fn tp() -> TopicPartition {
    TopicPartition::new("t", 0)
}

fn produce(store: &Store, n: usize) {
    let records: Vec<NewRecord> = (0..n).map(|i| NewRecord::new(format!("{i}"))).collect();
    store.topic("t").unwrap().append(&records).unwrap();
}

/// The group has no offset of the new topic, and a member reads it from offset 0.
fn reads_from_the_beginning(groups: &GroupCoordinator, what: &str) {
    assert_eq!(groups.committed("g", &tp()), None, "{what}: the old topic's offset applies to the new one");
    if let Ok(d) = groups.describe("g") {
        assert!(d.partitions.iter().all(|p| p.committed.is_none()), "{what}: {d:?}");
    }
    assert_eq!(groups.starting_offset("g", &tp(), AutoOffsetReset::Latest).unwrap(), 150, "{what}: latest");
    let config = ConsumerConfig::default().auto_offset_reset(AutoOffsetReset::Earliest);
    let mut c = Consumer::subscribe(groups, "g", vec!["t".into()], config).unwrap();
    let first = c.poll(10).unwrap();
    assert_eq!(first.first().map(|(_, r)| r.offset), Some(0), "{what}: the group skipped the new topic's start");
    c.close().unwrap();
}

fn open(dir: &Path, faults: Option<std::sync::Arc<FaultInjector>>) -> Store {
    Store::builder(dir).cleaner_interval_ms(0).faults(faults).open().unwrap()
}

#[test]
fn an_offset_of_a_deleted_topic_never_applies_to_its_successor() {
    let dir = tempfile::tempdir().unwrap();
    let image = tempfile::tempdir().unwrap();
    let faults = FaultInjector::new();
    {
        let store = open(dir.path(), Some(faults.clone()));
        store.create_topic("t", 1, TopicConfig::default()).unwrap();
        produce(&store, 100);
        let groups = store.groups().unwrap();
        groups.commit("g", None, &[(tp(), 100, None)]).unwrap();
        assert_eq!(groups.committed("g", &tp()).map(|c| c.offset), Some(100));

        // The topic goes; the write that deletes its committed offsets fails.
        faults.fail_write_after(1, FaultKind::Io);
        assert!(store.delete_topic("t").is_err(), "the offsets' deletion was to fail");
        faults.heal();
        common::copy_dir(dir.path(), image.path());
        assert!(!image.path().join("topics/t").exists(), "the image is of a store without the topic");

        store.create_topic("t", 1, TopicConfig::default()).unwrap();
        produce(&store, 150);
        reads_from_the_beginning(&groups, "the same store");
    }
    // Reopened: the stale offset is deleted when the coordinator opens; and again.
    for round in ["reopened", "reopened twice"] {
        let store = open(dir.path(), None);
        reads_from_the_beginning(&store.groups().unwrap(), round);
    }
    // The crash image: the topic created again after the restart.
    let store = open(image.path(), None);
    store.create_topic("t", 1, TopicConfig::default()).unwrap();
    produce(&store, 150);
    reads_from_the_beginning(&store.groups().unwrap(), "the crash image");
}
