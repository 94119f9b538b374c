//! Readers racing a writer (appends, rolls, index entries): every read returns exactly the records
//! at its offsets, never a partial batch or a record beyond the high watermark.

use std::time::{Duration, Instant};

use kappalog::{Durability, NewRecord, Store, StoreConfig, TopicConfig};

const BATCHES: u64 = 1500;
const READERS: usize = 4;
/// Bound on the whole race (a safety net against hangs, not a timing assumption).
const RACE_MAX: Duration = Duration::from_secs(120);

fn value(offset: u64) -> String {
    format!("record {offset} {}", "y".repeat((offset % 37) as usize))
}

#[test]
fn readers_racing_a_writer_see_only_whole_correct_records() {
    for durability in [Durability::None, Durability::Sync] {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
        let config = TopicConfig::default().segment_bytes(4096).index_interval_bytes(64).durability(durability);
        let p = store.create_topic("t", 1, config).unwrap().partition(0).unwrap();
        let batches = if durability == Durability::Sync { BATCHES / 5 } else { BATCHES };
        let total: u64 = (0..batches).map(|i| 1 + i % 3).sum();
        let deadline = Instant::now() + RACE_MAX;
        std::thread::scope(|s| {
            s.spawn(|| {
                let mut next = 0;
                for i in 0..batches {
                    let recs: Vec<NewRecord> = (0..1 + i % 3).map(|j| NewRecord::new(value(next + j))).collect();
                    assert_eq!(p.append(&recs).unwrap().base_offset, next);
                    next += recs.len() as u64;
                }
            });
            for r in 0..READERS {
                let p = &p;
                s.spawn(move || {
                    let mut next = 0;
                    while next < total {
                        assert!(Instant::now() < deadline, "reader {r} stuck at {next}");
                        let hw = p.high_watermark();
                        let got = p.read(next, 200 + 50 * r, 1 + r).unwrap();
                        for rec in &got {
                            assert_eq!(rec.offset, next, "reader {r}");
                            assert!(rec.offset < p.high_watermark());
                            assert_eq!(rec.value.as_deref(), Some(value(next).as_bytes()), "reader {r}");
                            next += 1;
                        }
                        if got.is_empty() {
                            assert!(next >= hw, "reader {r}: nothing at {next} below the high watermark {hw}");
                            std::thread::yield_now();
                        }
                    }
                });
            }
        });
        assert_eq!(p.high_watermark(), total);
        assert!(p.stats().segments > 3, "the readers raced rolls: {:?}", p.stats());
    }
}
