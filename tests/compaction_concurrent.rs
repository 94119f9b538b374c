//! Appends and reads go on while the cleaner compacts: no append fails or waits on the cleaner, a
//! tailing reader sees records in order with their original offsets and contents, and at the end
//! the log holds the latest value of every key.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use kappalog::{
    clock::{Clock, ManualClock},
    limits::OFFSET_MAP_BYTES_MIN,
    CleanupPolicy, Durability, NewRecord, Store, StoreConfig, TopicConfig,
};

const RECORDS: u64 = 3_000;
const KEYS: u64 = 40;

fn value(i: u64) -> String {
    format!("value-{i}-{}", "x".repeat((i % 30) as usize))
}

#[test]
fn appends_and_reads_during_compaction() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(1_700_000_000_000);
    let cfg = StoreConfig::default().clock(clock.clone()).cleaner_interval_ms(0);
    let store = Store::open(dir.path(), cfg).unwrap();
    let tc =
        TopicConfig::default().segment_bytes(8192).durability(Durability::None).cleanup_policy(CleanupPolicy::Compact);
    let p = store.create_topic("t", 1, tc).unwrap().partition(0).unwrap();
    let done = Arc::new(AtomicBool::new(false));

    let writer = {
        let p = p.clone();
        std::thread::spawn(move || {
            for i in 0..RECORDS {
                let a = p.append(&[NewRecord::keyed(format!("k{}", i % KEYS), value(i))]).unwrap();
                assert_eq!(a.base_offset, i);
            }
        })
    };
    let reader = {
        let (p, done) = (p.clone(), done.clone());
        std::thread::spawn(move || {
            let mut next = 0;
            let mut seen = 0u64;
            while next < RECORDS {
                assert!(!done.load(Ordering::Acquire) || next < p.high_watermark(), "the reader fell behind forever");
                if next >= p.high_watermark() {
                    std::thread::yield_now();
                    continue;
                }
                for r in p.read(next, 4096, 100).unwrap() {
                    assert!(r.offset >= next, "order kept");
                    assert_eq!(r.value.as_deref(), Some(value(r.offset).as_bytes()), "offset {} changed", r.offset);
                    assert_eq!(r.key.as_deref(), Some(format!("k{}", r.offset % KEYS).as_bytes()));
                    next = r.offset + 1;
                    seen += 1;
                }
            }
            seen
        })
    };
    let mut passes = 0;
    while !writer.is_finished() {
        p.roll().unwrap();
        passes += kappalog::cleaner::compact(&p, clock.now_ms(), OFFSET_MAP_BYTES_MIN).unwrap().passes;
    }
    writer.join().unwrap();
    done.store(true, Ordering::Release);
    let seen = reader.join().unwrap();
    assert!(seen > KEYS, "the reader read records ({seen})");
    assert!(passes > 0, "compaction ran while appending");

    p.roll().unwrap();
    kappalog::cleaner::compact(&p, clock.now_ms(), OFFSET_MAP_BYTES_MIN).unwrap();
    let all = p.read(0, 1 << 20, 10_000).unwrap();
    let got: BTreeMap<Vec<u8>, u64> = all.iter().map(|r| (r.key.clone().unwrap().to_vec(), r.offset)).collect();
    let want: BTreeMap<Vec<u8>, u64> =
        (RECORDS - KEYS..RECORDS).map(|i| (format!("k{}", i % KEYS).into_bytes(), i)).collect();
    assert_eq!(got, want);
    assert_eq!(all.len() as u64, KEYS);
}
