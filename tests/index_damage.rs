//! Damaged index files never make intact log data unreadable or answers wrong: an `.index` or
//! `.timeindex` entry that no longer matches the log is detected and the indexes are rebuilt.

mod common;

use std::path::Path;

use kappalog::{Durability, NewRecord, Partition, Record, Store, StoreConfig, TopicConfig};

fn fill(dir: &std::path::Path) -> Vec<Record> {
    let store = Store::open(dir, StoreConfig::default()).unwrap();
    let config = TopicConfig::default().segment_bytes(4096).index_interval_bytes(200).durability(Durability::None);
    let p = store.create_topic("t", 1, config).unwrap().partition(0).unwrap();
    for i in 0..200u64 {
        let recs: Vec<NewRecord> = (0..2)
            .map(|j| NewRecord::keyed(format!("k{i}"), format!("v{i}.{j}")).with_timestamp(1000 + i as i64))
            .collect();
        p.append(&recs).unwrap();
    }
    p.read(0, usize::MAX, usize::MAX).unwrap()
}

/// For each damage `(what, byte, delta)` and after a clean and an unclean shutdown alike: copies
/// the store at `original`, adds `delta` to `byte` of its second segment's `ext` file, opens the copy
/// and runs `check(what, partition, damaged file)`.
fn for_each_damaged_copy(
    original: &Path,
    ext: &str,
    damages: &[(&str, usize, u8)],
    check: impl Fn(&str, &Partition, &Path),
) {
    for &(what, byte, delta) in damages {
        for unclean in [false, true] {
            let copy = tempfile::tempdir().unwrap();
            common::copy_dir(original, copy.path());
            if unclean {
                common::forget_clean_shutdown(copy.path());
            }
            let path = common::segment_files(&common::partition_dir(copy.path(), "t", 0), ext)[1].clone();
            let mut b = std::fs::read(&path).unwrap();
            b[byte] = b[byte].wrapping_add(delta);
            std::fs::write(&path, b).unwrap();
            let store = Store::open(copy.path(), StoreConfig::default()).unwrap();
            check(what, &store.topic("t").unwrap().partition(0).unwrap(), &path);
        }
    }
}

#[test]
fn a_plausible_but_wrong_index_entry_is_not_trusted() {
    let original = tempfile::tempdir().unwrap();
    let all = fill(original.path());
    let pdir = common::partition_dir(original.path(), "t", 0);
    let indexes = common::segment_files(&pdir, "index");
    assert!(indexes.len() >= 3);
    let entries = std::fs::read(&indexes[1]).unwrap().len() / 8;
    assert!(entries >= 3, "{entries}");
    // Damage that the file-level checks (sorted, inside the log) cannot see.
    // (what, byte of the .index file, amount added to it)
    let damages = [
        ("position of entry 1 + 1", 8 + 4, 1u8),
        ("relative offset of entry 1 + 1", 8, 1),
        ("relative offset of entry 2 - 1", 16, 255),
    ];
    for_each_damaged_copy(original.path(), "index", &damages, |what, p, _| {
        for r in &all {
            let got = p.read(r.offset, 1, 1).unwrap_or_else(|e| panic!("{what}: read at {}: {e}", r.offset));
            assert_eq!(&got[0], r, "{what}");
        }
        assert_eq!(p.read(0, usize::MAX, usize::MAX).unwrap(), all, "{what}");
    });
}

/// The first offset with a timestamp at or after `t`, by brute force.
fn first_at_or_after(all: &[Record], t: i64) -> Option<u64> {
    all.iter().find(|r| r.timestamp >= t).map(|r| r.offset)
}

#[test]
fn a_time_index_entry_damaged_in_order_is_not_trusted() {
    let original = tempfile::tempdir().unwrap();
    let all = fill(original.path());
    let pdir = common::partition_dir(original.path(), "t", 0);
    let times = common::segment_files(&pdir, "timeindex");
    let intact = std::fs::read(&times[1]).unwrap();
    assert!(intact.len() / 16 >= 4, "{} bytes", intact.len());
    let (first_ts, last_ts) = (all[0].timestamp, all.last().unwrap().timestamp);
    // Damage that keeps the entries in order, so that only the entries' checksums can see it; each
    // one, trusted, made offset_for_timestamp skip records (checked before the checksums existed).
    // (what, byte of the .timeindex file, amount added to it)
    let damages = [
        ("relative offset of entry 1 moved one batch forward", 16 + 8, 6u8),
        ("timestamp of entry 1 lowered by 2", 16, 254),
        ("timestamp of entry 2 raised by 2", 32, 2),
    ];
    for_each_damaged_copy(original.path(), "timeindex", &damages, |what, p, path| {
        for t in first_ts - 2..=last_ts + 2 {
            assert_eq!(p.offset_for_timestamp(t).unwrap(), first_at_or_after(&all, t), "{what}: t = {t}");
        }
        assert_eq!(std::fs::read(path).unwrap(), intact, "{what}: the rebuilt file is the original");
    });
}
