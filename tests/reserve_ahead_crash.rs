//! After a crash (`kill -9`), the blocks an append reserved past the log's end (see
//! `reserve_ahead.rs`) are freed by the next open, and the records are all there.

mod common;

use std::io::{BufRead, BufReader};

use kappalog::{Durability, NewRecord, Store, StoreConfig, TopicConfig};

/// Set in the child: the data directory to append to.
const CHILD_ENV: &str = "KAPPALOG_TEST_RESERVE_CRASH_DIR";
/// The least an append reserves ahead is 1 MiB (`RESERVE_AHEAD_MIN` in `src/log/partition.rs`), so
/// after two appends of about 100 KiB at least this much is left reserved past the log's end.
const RESERVED_AFTER_TWO: u64 = 512 * 1024;
/// A file without reserved blocks holds no more than this past its size (its last block, and
/// perhaps an extent tree block).
const SLACK: u64 = 64 * 1024;
/// How long the child waits to be killed should the parent not kill it.
const CHILD_WAITS_MAX: std::time::Duration = std::time::Duration::from_secs(60);

fn records(b: usize) -> Vec<NewRecord> {
    (0..100).map(|i| NewRecord::new(format!("{b}-{i}-{}", "x".repeat(1000)))).collect()
}

/// The child's part: two appends without fsync, then wait to be killed.
#[test]
fn child_appends_and_waits() {
    let Ok(dir) = std::env::var(CHILD_ENV) else { return };
    let store = Store::open(&dir, StoreConfig::default()).unwrap();
    let cfg = TopicConfig::default().durability(Durability::None);
    let p = store.create_topic("t", 1, cfg).unwrap().partition(0).unwrap();
    p.append(&records(0)).unwrap();
    p.append(&records(1)).unwrap();
    common::say("appended");
    std::thread::sleep(CHILD_WAITS_MAX);
}

#[test]
fn recovery_frees_blocks_reserved_before_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = common::ChildGuard(common::spawn_child(
        "child_appends_and_waits",
        &[(CHILD_ENV, dir.path().to_str().unwrap())],
    ));
    let mut out = BufReader::new(child.0.stdout.take().unwrap());
    let mut line = String::new();
    while line.trim() != "appended" {
        line.clear();
        assert!(out.read_line(&mut line).unwrap() > 0, "the child ended before it appended");
    }
    child.0.kill().unwrap();
    child.0.wait().unwrap();

    let log = common::segment_files(&common::partition_dir(dir.path(), "t", 0), "log").pop().unwrap();
    let (allocated, len) = common::allocated_and_len(&log);
    assert!(
        allocated >= len + RESERVED_AFTER_TWO,
        "{allocated} bytes allocated for a {len}-byte log: the crash left no reserved blocks to free"
    );
    let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
    let p = store.topic("t").unwrap().partition(0).unwrap();
    let (allocated, len) = common::allocated_and_len(&log);
    assert_eq!(len, p.stats().size_bytes);
    assert!(allocated < len + SLACK, "{allocated} bytes allocated for a {len}-byte log after recovery");
    let read = p.read(0, usize::MAX, usize::MAX).unwrap();
    assert_eq!(read.len(), 200);
    for (n, r) in read.iter().enumerate() {
        assert!(r.value.as_deref().unwrap().starts_with(format!("{}-{}-", n / 100, n % 100).as_bytes()));
    }
    p.append(&records(2)).unwrap();
    assert_eq!(p.high_watermark(), 300);
}
