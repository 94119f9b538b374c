//! The recovery point: after a crash whose writeback of the unsynced tail was out of order (a
//! later batch reached the disk, an earlier one did not), recovery ends the log at the first bad
//! batch at or above the recovery point: no hole, no unacknowledged batch served past it, no
//! corruption reported, and no batch hidden inside a record value adopted. The crash is simulated
//! on a copy of the files taken while the store is open (what the page cache held), with the
//! bytes writeback did not reach replaced.

mod common;

use std::path::Path;

use kappalog::{clock::ManualClock, Durability, NewRecord, Record, Store, StoreConfig, TopicConfig};

fn store_config() -> StoreConfig {
    StoreConfig::default().clock(ManualClock::new(100_000))
}

/// A log of 10 flushed batches, then 5 written and not flushed; the copy of the data directory
/// taken before the store closes, the records, and the batch starts of the active segment.
fn crashed(dir: &Path, values: impl Fn(u64) -> Vec<u8>) -> (tempfile::TempDir, Vec<Record>, Vec<usize>, u64) {
    let store = Store::open(dir, store_config()).unwrap();
    let config = TopicConfig::default().durability(Durability::None);
    let p = store.create_topic("t", 1, config).unwrap().partition(0).unwrap();
    for i in 0..15u64 {
        p.append(&[NewRecord::keyed(format!("k{i}"), values(i)).with_timestamp(50_000 + i as i64)]).unwrap();
        if i == 9 {
            p.flush().unwrap();
        }
    }
    let records = p.read(0, usize::MAX, usize::MAX).unwrap();
    let copy = tempfile::tempdir().unwrap();
    common::copy_dir(dir, copy.path());
    drop(store);
    let log = common::segment_files(&common::partition_dir(copy.path(), "t", 0), "log").pop().unwrap();
    let data = std::fs::read(&log).unwrap();
    let starts = common::batch::starts(&data);
    assert_eq!(starts.len(), 15);
    (copy, records, starts, data.len() as u64)
}

fn reopen_and_check(copy: &Path, records: &[Record], starts: &[usize], what: &str) {
    let store = Store::open(copy, store_config()).unwrap();
    let p = store.topic("t").unwrap().partition(0).unwrap();
    assert!(p.corruption().is_none(), "{what}: not corruption: {:?}", p.corruption());
    assert_eq!(p.high_watermark(), 10, "{what}: the log ends at the first bad batch above the recovery point");
    assert_eq!(p.read(0, usize::MAX, usize::MAX).unwrap(), records[..10], "{what}");
    let log = common::segment_files(&common::partition_dir(copy, "t", 0), "log").pop().unwrap();
    assert_eq!(std::fs::metadata(&log).unwrap().len(), starts[10] as u64, "{what}: the rest is cut");
    assert_eq!(p.append(&[NewRecord::keyed("next", "v")]).unwrap().base_offset, 10, "{what}");
}

#[test]
fn a_later_batch_that_reached_the_disk_is_not_served_past_a_lost_one() {
    let original = tempfile::tempdir().unwrap();
    let (copy, records, starts, len) =
        crashed(original.path(), |i| format!("value {i} {}", "x".repeat(300)).into_bytes());
    let log = common::segment_files(&common::partition_dir(copy.path(), "t", 0), "log").pop().unwrap();
    let good = std::fs::read(&log).unwrap();
    for (lost, fill) in [(10usize, 0u8), (11, 0), (10, 0xa5), (12, 0x00)] {
        let case = tempfile::tempdir().unwrap();
        common::copy_dir(copy.path(), case.path());
        let log = common::segment_files(&common::partition_dir(case.path(), "t", 0), "log").pop().unwrap();
        let mut data = good.clone();
        let end = starts.get(lost + 1).copied().unwrap_or(len as usize);
        // Batch `lost` never reached the disk (zeros, or stale bytes); the ones after it did.
        data[starts[lost]..end].iter_mut().for_each(|b| *b = fill);
        // Batches from 10 up to `lost` reached the disk too.
        std::fs::write(&log, &data).unwrap();
        let what = format!("batch {lost} lost as {fill:#x}");
        if lost == 10 {
            reopen_and_check(case.path(), &records, &starts, &what);
        } else {
            let store = Store::open(case.path(), store_config()).unwrap();
            let p = store.topic("t").unwrap().partition(0).unwrap();
            assert!(p.corruption().is_none(), "{what}");
            assert_eq!(p.high_watermark(), lost as u64, "{what}: ends at the lost batch");
            assert_eq!(p.read(0, usize::MAX, usize::MAX).unwrap(), records[..lost], "{what}");
        }
    }
}

/// Each unsynced batch's value holds a whole valid batch claiming the next offsets (what a crafted
/// producer could send). When the outer batch's first bytes are lost, the inner one is never
/// adopted: the log ends at the outer batch.
#[test]
fn a_batch_inside_a_lost_record_value_never_becomes_a_batch() {
    // The inner batch: a valid kappalog batch for offset 11, taken from a scratch store.
    let scratch = tempfile::tempdir().unwrap();
    let inner = {
        let store = Store::open(scratch.path(), store_config()).unwrap();
        let p = store.create_topic("s", 1, TopicConfig::default().durability(Durability::None)).unwrap();
        let p = p.partition(0).unwrap();
        for i in 0..12 {
            p.append(&[NewRecord::new(format!("inner {i}"))]).unwrap();
        }
        p.read_raw(11, 1).unwrap().bytes.to_vec()
    };
    let original = tempfile::tempdir().unwrap();
    let (copy, records, starts, _) = crashed(original.path(), |_| inner.clone());
    let log = common::segment_files(&common::partition_dir(copy.path(), "t", 0), "log").pop().unwrap();
    let mut data = std::fs::read(&log).unwrap();
    let inner_at = starts[10] + data[starts[10]..].windows(inner.len()).position(|w| w == &inner[..]).unwrap();
    // The outer batch's header never reached the disk; its value (the inner batch) did.
    data[starts[10]..starts[10] + 20].iter_mut().for_each(|b| *b = 0);
    std::fs::write(&log, &data).unwrap();
    assert!(inner_at > starts[10] + 20);
    reopen_and_check(copy.path(), &records, &starts, "outer header lost");
}
