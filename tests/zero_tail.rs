//! Under `sync`, the active segment's file runs ahead of its log with a zero-filled tail (so that a
//! group commit's fsync does not extend the file). The tail is never read, sealing a segment and a
//! clean shutdown cut it, and after a crash recovery cuts it as a torn tail, keeping every record.

mod common;

use std::path::Path;

use kappalog::{Durability, NewRecord, Partition, Store, StoreConfig, TopicConfig};

fn config(durability: Durability) -> TopicConfig {
    TopicConfig::default().durability(durability)
}

fn append(p: &Partition, from: usize, batches: usize) {
    for b in from..from + batches {
        let records: Vec<NewRecord> = (0..10).map(|i| NewRecord::new(format!("value {b}-{i}"))).collect();
        p.append(&records).unwrap();
    }
}

fn check_records(p: &Partition, batches: usize) {
    let read = p.read(0, usize::MAX, usize::MAX).unwrap();
    assert_eq!(read.len(), batches * 10);
    for (n, r) in read.iter().enumerate() {
        assert_eq!(r.offset, n as u64);
        assert_eq!(r.value.as_deref(), Some(format!("value {}-{}", n / 10, n % 10).as_bytes()));
    }
}

/// A store in `dir` with a `sync` topic `t` of 20 batches; the log's size.
fn store_with_records(dir: &Path) -> (Store, Partition, usize) {
    let store = Store::open(dir, StoreConfig::default()).unwrap();
    let p = store.create_topic("t", 1, config(Durability::Sync)).unwrap().partition(0).unwrap();
    append(&p, 0, 20);
    let size = p.stats().size_bytes as usize;
    (store, p, size)
}

fn active_log(data_dir: &Path) -> Vec<u8> {
    let logs = common::segment_files(&common::partition_dir(data_dir, "t", 0), "log");
    std::fs::read(logs.last().unwrap()).unwrap()
}

#[test]
fn sync_appends_keep_a_zero_tail_that_close_cuts() {
    let dir = tempfile::tempdir().unwrap();
    let (store, p, size) = store_with_records(dir.path());
    let file = active_log(dir.path());
    assert!(file.len() > size, "a {}-byte file for a {size}-byte log: no zero tail", file.len());
    assert!(file[size..].iter().all(|&b| b == 0), "the tail is zeros");
    check_records(&p, 20);
    drop((p, store));

    assert_eq!(active_log(dir.path()).len(), size, "a clean shutdown cut the tail");
    let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
    let p = store.topic("t").unwrap().partition(0).unwrap();
    check_records(&p, 20);
    append(&p, 20, 5);
    check_records(&p, 25);
}

#[test]
fn a_crash_leaves_the_tail_and_recovery_cuts_it() {
    let dir = tempfile::tempdir().unwrap();
    let crashed = tempfile::tempdir().unwrap();
    let (store, p, size) = store_with_records(dir.path());
    // The files as a crash would leave them: copied while the store is open.
    common::copy_dir(dir.path(), crashed.path());
    drop((p, store));
    assert!(active_log(crashed.path()).len() > size, "the copy has the zero tail");
    // `kappalog dump` tells the zero tail from corruption.
    let logs = common::segment_files(&common::partition_dir(crashed.path(), "t", 0), "log");
    let report = kappalog::log::inspect_segment(logs.last().unwrap(), None).unwrap();
    assert!(report.corruption.is_none(), "{:?}", report.corruption);
    assert_eq!((report.batches.len(), report.zero_tail_bytes as usize), (20, active_log(crashed.path()).len() - size));

    let store = Store::open(crashed.path(), StoreConfig::default()).unwrap();
    let p = store.topic("t").unwrap().partition(0).unwrap();
    assert!(p.corruption().is_none(), "a zero tail is a torn tail, not corruption");
    assert_eq!(p.high_watermark(), 200);
    assert_eq!(active_log(crashed.path()).len(), size, "recovery cut the tail");
    check_records(&p, 20);
    append(&p, 20, 5);
    check_records(&p, 25);
}

#[test]
fn a_sealed_segment_ends_where_its_log_does() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
    let cfg = config(Durability::Sync).segment_bytes(64 * 1024);
    let p = store.create_topic("t", 1, cfg).unwrap().partition(0).unwrap();
    let value = vec![7u8; 3000];
    for _ in 0..60 {
        p.append(&[NewRecord::new(value.clone())]).unwrap(); // rolls about every 21 appends
    }
    p.roll().unwrap();
    let segments = p.segment_infos().unwrap();
    assert!(segments.len() >= 3, "{} segments", segments.len());
    for s in segments.iter().filter(|s| !s.active) {
        let len = std::fs::metadata(&s.path).unwrap().len();
        assert_eq!(len, s.size_bytes, "{}: sealed with its zero tail", s.path.display());
    }
    assert_eq!(p.read(0, usize::MAX, usize::MAX).unwrap().len(), 60);
}

#[test]
fn without_sync_the_file_ends_where_the_log_does() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
    let p = store.create_topic("t", 1, config(Durability::None)).unwrap().partition(0).unwrap();
    append(&p, 0, 20);
    assert_eq!(active_log(dir.path()).len() as u64, p.stats().size_bytes);
}
