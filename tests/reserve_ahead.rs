//! Appends that are not `sync` reserve the active segment's disk blocks ahead of the log's end
//! (`fallocate` with `FALLOC_FL_KEEP_SIZE`), so that their writes find the blocks allocated. The
//! file's size stays the log's end; the reserved blocks past it are freed when the segment is
//! sealed and at a clean shutdown (after a crash: `reserve_ahead_crash.rs`). `sync` appends keep
//! a zero tail instead (`zero_tail.rs`) and reserve nothing.

mod common;

use std::path::{Path, PathBuf};

use kappalog::{Durability, NewRecord, Partition, Store, StoreConfig, TopicConfig};

/// The least an append reserves ahead is 1 MiB (`RESERVE_AHEAD_MIN` in `src/log/partition.rs`), so
/// after two appends of about 100 KiB at least this much is left reserved past the log's end.
const RESERVED_AFTER_TWO: u64 = 512 * 1024;
/// A file without reserved blocks holds no more than this past its size (its last block, and
/// perhaps an extent tree block).
const SLACK: u64 = 64 * 1024;

fn active_log(data_dir: &Path) -> PathBuf {
    common::segment_files(&common::partition_dir(data_dir, "t", 0), "log").pop().unwrap()
}

/// One batch of 100 records of 1 KiB (about 100 KiB); record `i` of batch `b` holds `b` and `i`.
fn append_batch(p: &Partition, b: usize) {
    let records: Vec<NewRecord> = (0..100).map(|i| NewRecord::new(format!("{b}-{i}-{}", "x".repeat(1000)))).collect();
    p.append(&records).unwrap();
}

fn check_records(p: &Partition, batches: usize) {
    let read = p.read(0, usize::MAX, usize::MAX).unwrap();
    assert_eq!(read.len(), batches * 100);
    for (n, r) in read.iter().enumerate() {
        assert_eq!(r.offset, n as u64);
        assert!(r.value.as_deref().unwrap().starts_with(format!("{}-{}-", n / 100, n % 100).as_bytes()));
    }
}

fn assert_reserved(path: &Path) {
    let (allocated, len) = common::allocated_and_len(path);
    assert!(
        allocated >= len + RESERVED_AFTER_TWO,
        "{}: {allocated} bytes allocated for a {len}-byte file: no blocks reserved past the log's end \
         (does this file system support fallocate with FALLOC_FL_KEEP_SIZE?)",
        path.display()
    );
}

fn assert_not_reserved(path: &Path) {
    let (allocated, len) = common::allocated_and_len(path);
    assert!(
        allocated < len + SLACK,
        "{}: {allocated} bytes allocated for a {len}-byte file: reserved blocks left past its end",
        path.display()
    );
}

#[test]
fn appends_without_sync_reserve_blocks_that_sealing_and_closing_free() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
    let cfg = TopicConfig::default().durability(Durability::None);
    let p = store.create_topic("t", 1, cfg).unwrap().partition(0).unwrap();
    append_batch(&p, 0);
    append_batch(&p, 1);
    let first = active_log(dir.path());
    assert_eq!(common::allocated_and_len(&first).1, p.stats().size_bytes, "the file's size is the log's end");
    assert_reserved(&first);
    check_records(&p, 2);

    p.roll().unwrap();
    assert_not_reserved(&first);
    append_batch(&p, 2);
    let second = active_log(dir.path());
    assert_ne!(first, second);
    assert_reserved(&second);
    drop((p, store));

    assert_not_reserved(&second);
    let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
    let p = store.topic("t").unwrap().partition(0).unwrap();
    check_records(&p, 3);
    append_batch(&p, 3);
    check_records(&p, 4);
}

#[test]
fn a_reservation_never_passes_the_roll_point() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
    let segment_bytes = 256 * 1024;
    let cfg = TopicConfig::default().durability(Durability::None).segment_bytes(segment_bytes);
    let p = store.create_topic("t", 1, cfg).unwrap().partition(0).unwrap();
    append_batch(&p, 0);
    let (allocated, len) = common::allocated_and_len(&active_log(dir.path()));
    assert!(allocated > len, "{allocated} bytes allocated for a {len}-byte file: nothing reserved");
    assert!(allocated <= segment_bytes, "{allocated} bytes allocated: past the roll point {segment_bytes}");
    for b in 1..6 {
        append_batch(&p, b); // rolls every two batches
    }
    check_records(&p, 6);
}

#[test]
fn sync_appends_reserve_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
    let p = store.create_topic("t", 1, TopicConfig::default()).unwrap().partition(0).unwrap();
    append_batch(&p, 0);
    append_batch(&p, 1);
    // The file may run ahead of the log with written zeros (the zero tail), not with reserved blocks.
    assert_not_reserved(&active_log(dir.path()));
    check_records(&p, 2);
}
