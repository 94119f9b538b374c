//! Appends, reads across segment rolls, time lookup, out-of-range, and reopen (clean and unclean).

use kappalog::{Durability, Error, NewRecord, Store, StoreConfig, TopicConfig};

fn small_segments(durability: Durability) -> TopicConfig {
    TopicConfig::default().segment_bytes(4096).index_interval_bytes(256).durability(durability)
}

fn fill(store: &Store, n: u64) {
    let t = store.topic("t").unwrap();
    let p = t.partition(0).unwrap();
    for i in 0..n {
        let recs: Vec<NewRecord> = (0..3)
            .map(|j| {
                NewRecord::keyed(format!("k{i}"), format!("value-{i}-{j}-{}", "x".repeat(40)))
                    .with_timestamp(1_000 + i as i64)
            })
            .collect();
        let a = p.append(&recs).unwrap();
        assert_eq!(a.base_offset, i * 3);
        assert_eq!(a.last_offset, i * 3 + 2);
    }
}

fn check(store: &Store, n: u64) {
    let p = store.topic("t").unwrap().partition(0).unwrap();
    assert_eq!(p.high_watermark(), n * 3);
    assert_eq!(p.log_start_offset(), 0);
    // Read everything in small steps.
    let mut next = 0;
    while next < n * 3 {
        let recs = p.read(next, 300, 7).unwrap();
        assert!(!recs.is_empty());
        for r in &recs {
            assert_eq!(r.offset, next);
            let i = next / 3;
            let j = next % 3;
            assert_eq!(r.value.as_deref().unwrap(), format!("value-{i}-{j}-{}", "x".repeat(40)).as_bytes());
            assert_eq!(r.timestamp, 1_000 + i as i64);
            next += 1;
        }
    }
    assert!(p.read(n * 3, 1000, 10).unwrap().is_empty(), "reading at the high watermark returns nothing");
    assert!(
        matches!(p.read(n * 3 + 1, 1000, 10), Err(Error::OffsetOutOfRange { high_watermark, .. }) if high_watermark == n * 3)
    );
    // Time index.
    assert_eq!(p.offset_for_timestamp(0).unwrap(), Some(0));
    assert_eq!(p.offset_for_timestamp(1_000 + 17).unwrap(), Some(17 * 3));
    assert_eq!(p.offset_for_timestamp(1_000 + n as i64).unwrap(), None);
    // Random access lands on the right record.
    for o in [0, 1, 2, 50, 151, n * 3 - 1] {
        assert_eq!(p.read(o, 1, 1).unwrap()[0].offset, o);
    }
}

#[test]
fn rolls_and_reopens_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let n = 200;
    {
        let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
        store.create_topic("t", 1, small_segments(Durability::Sync)).unwrap();
        fill(&store, n);
        let p = store.topic("t").unwrap().partition(0).unwrap();
        assert!(p.stats().segments > 5, "small segments roll: {:?}", p.stats());
        check(&store, n);
    }
    assert!(dir.path().join("clean-shutdown").exists());
    let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
    check(&store, n);
    // Appends go on at the right offset.
    let p = store.topic("t").unwrap().partition(0).unwrap();
    assert_eq!(p.append(&[NewRecord::new("more")]).unwrap().base_offset, n * 3);
}

#[test]
fn reopens_after_unclean_shutdown_without_index_files() {
    let dir = tempfile::tempdir().unwrap();
    let n = 120;
    {
        let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
        store.create_topic("t", 1, small_segments(Durability::None)).unwrap();
        fill(&store, n);
    }
    // Simulate a crash: no clean-shutdown mark, and every index file lost.
    std::fs::remove_file(dir.path().join("clean-shutdown")).unwrap();
    for e in std::fs::read_dir(dir.path().join("topics/t/0")).unwrap() {
        let path = e.unwrap().path();
        if path.extension().is_some_and(|x| x == "index" || x == "timeindex") {
            std::fs::remove_file(path).unwrap();
        }
    }
    let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
    check(&store, n);
}

#[test]
fn topic_admin() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
    assert!(matches!(store.create_topic("../x", 1, TopicConfig::default()), Err(Error::InvalidTopicName { .. })));
    assert!(matches!(
        store.create_topic("x", 0, TopicConfig::default()),
        Err(Error::InvalidConfig { field: "partitions", .. })
    ));
    assert!(matches!(store.create_topic("x", 5000, TopicConfig::default()), Err(Error::LimitExceeded { .. })));
    store.create_topic("b", 2, TopicConfig::default()).unwrap();
    store.create_topic("a", 1, TopicConfig::default()).unwrap();
    assert!(matches!(store.create_topic("a", 1, TopicConfig::default()), Err(Error::TopicExists(_))));
    assert_eq!(store.topic_names(), ["a", "b"]);
    store.add_partitions("b", 4).unwrap();
    assert_eq!(store.topic("b").unwrap().partition_count(), 4);
    let cfg = TopicConfig::default().retention_ms(1000);
    store.set_topic_config("b", cfg.clone()).unwrap();
    store.delete_topic("a").unwrap();
    // Internal topics are kappalog's: not created, reconfigured or deleted through the API.
    assert!(matches!(store.create_topic("__internal", 1, TopicConfig::default()), Err(Error::InvalidTopicName { .. })));
    assert!(matches!(store.set_topic_config("__internal", cfg.clone()), Err(Error::InvalidTopicName { .. })));
    assert!(matches!(store.delete_topic("__internal"), Err(Error::InternalTopic(_))));
    assert!(matches!(store.topic("a"), Err(Error::TopicNotFound(_))));
    drop(store);
    let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
    assert_eq!(store.topic_names(), ["b"]);
    let b = store.topic("b").unwrap();
    assert_eq!(b.partition_count(), 4);
    assert_eq!(b.config(), cfg);
    assert!(matches!(b.partition(4), Err(Error::PartitionNotFound { count: 4, .. })));
}

#[test]
fn leftover_index_files_do_not_break_a_roll() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
    let p = store.create_topic("t", 1, TopicConfig::default()).unwrap().partition(0).unwrap();
    p.append(&[NewRecord::new("a")]).unwrap();
    // Leftovers at the base offset of the next segment.
    std::fs::write(p.dir().join("00000000000000000001.index"), b"junk").unwrap();
    std::fs::write(p.dir().join("00000000000000000001.timeindex"), b"junk").unwrap();
    p.roll().unwrap();
    assert_eq!(p.append(&[NewRecord::new("b")]).unwrap().base_offset, 1);
    assert_eq!(p.read(0, 1 << 20, 10).unwrap().len(), 2);
}
