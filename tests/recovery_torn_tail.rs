//! A batch torn at any byte: recovery truncates it, keeps every whole batch, rebuilds consistent
//! indexes, and the next append gets the offset after the last whole batch.

mod common;

use std::path::Path;

use kappalog::{clock::ManualClock, Durability, NewRecord, Record, Store, StoreConfig, TopicConfig};

/// A clock near the records' timestamps: appends after recovery go on in the recovered segment
/// (an old first timestamp would roll it by `segment_ms`).
fn store_config() -> StoreConfig {
    StoreConfig::default().clock(ManualClock::new(100_000))
}

fn config() -> TopicConfig {
    TopicConfig::default().segment_bytes(4096).index_interval_bytes(128).durability(Durability::None)
}

/// The last batch: small (every byte of it is a cut to test), with a tombstone and headers.
fn last_batch() -> Vec<NewRecord> {
    vec![
        NewRecord::keyed("last", "v").with_header("h", "x").with_timestamp(50_000),
        NewRecord::tombstone("gone").with_timestamp(49_000),
    ]
}

fn batch(i: u64) -> Vec<NewRecord> {
    (0..1 + i % 4)
        .map(|j| {
            let r = if (i + j) % 5 == 4 {
                NewRecord::tombstone(format!("key-{i}"))
            } else {
                NewRecord::keyed(format!("key-{i}"), format!("value-{i}-{j}-{}", "v".repeat((i * 7 % 90) as usize)))
            };
            r.with_header("trace", format!("t{i}")).with_timestamp(10_000 + 10 * i as i64 + j as i64)
        })
        .collect()
}

fn read_all(store: &Store) -> Vec<Record> {
    let p = store.topic("t").unwrap().partition(0).unwrap();
    let out: Vec<Record> = p.cursor(0).fetch_limits(1000, 7).collect::<kappalog::Result<_>>().unwrap();
    assert_eq!(out.len() as u64, p.high_watermark(), "no gaps");
    out
}

/// Every `.index` entry points at the start of the batch it names; `.timeindex` entries increase.
fn check_index_files(pdir: &Path) {
    for log in common::segment_files(pdir, "log") {
        let base: u64 = log.file_stem().unwrap().to_str().unwrap().parse().unwrap();
        let data = std::fs::read(&log).unwrap();
        let index = std::fs::read(log.with_extension("index")).unwrap();
        assert_eq!(index.len() % 8, 0, "{}", log.display());
        for e in index.chunks_exact(8) {
            let rel = u32::from_le_bytes(e[..4].try_into().unwrap()) as u64;
            let pos = u32::from_le_bytes(e[4..].try_into().unwrap()) as usize;
            assert!(pos + common::batch::HEADER_LEN <= data.len(), "index entry past the log end in {}", log.display());
            let batch_base = common::batch::base_offset_at(&data, pos);
            assert_eq!(batch_base, base + rel, "index entry of {} points at the wrong batch", log.display());
        }
        let times = std::fs::read(log.with_extension("timeindex")).unwrap();
        assert_eq!(times.len() % 16, 0);
        let ts: Vec<i64> = times.chunks_exact(16).map(|e| i64::from_le_bytes(e[..8].try_into().unwrap())).collect();
        assert!(ts.windows(2).all(|w| w[0] < w[1]), "time index not increasing: {ts:?}");
    }
}

fn check(store: &Store, expected: &[Record]) {
    let p = store.topic("t").unwrap().partition(0).unwrap();
    assert_eq!(p.high_watermark(), expected.len() as u64);
    assert_eq!(read_all(store), expected);
    // Random access through the rebuilt offset index.
    for r in expected {
        assert_eq!(&p.read(r.offset, 1, 1).unwrap()[0], r);
    }
    // Time lookups through the rebuilt time index.
    for r in expected.iter().step_by(3) {
        let first = expected.iter().find(|x| x.timestamp >= r.timestamp).unwrap().offset;
        assert_eq!(p.offset_for_timestamp(r.timestamp).unwrap(), Some(first));
    }
    assert_eq!(p.offset_for_timestamp(i64::MAX).unwrap(), None);
}

#[test]
fn every_cut_inside_the_last_batch_is_recovered() {
    let original = tempfile::tempdir().unwrap();
    let n = 60;
    let (all, last_start, last_end, kept) = {
        let store = Store::open(original.path(), store_config()).unwrap();
        let p = store.create_topic("t", 1, config()).unwrap().partition(0).unwrap();
        for i in 0..n - 1 {
            p.append(&batch(i)).unwrap();
        }
        let kept = p.high_watermark();
        let before = p.segment_infos().unwrap().last().unwrap().clone();
        p.append(&last_batch()).unwrap();
        let after = p.segment_infos().unwrap().last().unwrap().clone();
        let start = if after.base_offset == before.base_offset { before.size_bytes } else { 0 };
        assert!(p.stats().segments > 3, "the test wants sealed segments too: {:?}", p.stats());
        (read_all(&store), start, after.size_bytes, kept as usize)
    };
    common::forget_clean_shutdown(original.path());
    let active = common::segment_files(&common::partition_dir(original.path(), "t", 0), "log").pop().unwrap();
    let active_name = active.file_name().unwrap().to_owned();
    // The crash came after a flush that covered everything but the last batch.
    let active_base: u64 = active.file_stem().unwrap().to_str().unwrap().parse().unwrap();
    let pdir = common::partition_dir(original.path(), "t", 0);
    common::set_recovery_point(&pdir, kept as u64, active_base, last_start);
    assert_eq!(std::fs::metadata(&active).unwrap().len(), last_end);

    // Cuts are independent: spread them over a few threads (recovery is fsync-bound, not CPU-bound).
    let cuts: Vec<u64> = (last_start..last_end).collect();
    std::thread::scope(|s| {
        for chunk in cuts.chunks(cuts.len().div_ceil(4)) {
            let (all, active_name, original) = (&all, &active_name, original.path());
            s.spawn(move || chunk.iter().for_each(|&cut| check_cut(original, active_name, all, kept, last_start, cut)));
        }
    });
}

fn check_cut(original: &Path, active_name: &std::ffi::OsStr, all: &[Record], kept: usize, last_start: u64, cut: u64) {
    {
        let copy = tempfile::tempdir().unwrap();
        common::copy_dir(original, copy.path());
        let pdir = common::partition_dir(copy.path(), "t", 0);
        let log = pdir.join(active_name);
        std::fs::OpenOptions::new().write(true).open(&log).unwrap().set_len(cut).unwrap();

        let mut expected = all[..kept].to_vec();
        {
            let store = Store::open(copy.path(), store_config()).unwrap();
            assert_eq!(std::fs::metadata(&log).unwrap().len(), last_start, "cut at {cut}: torn batch truncated");
            check(&store, &expected);
            let p = store.topic("t").unwrap().partition(0).unwrap();
            assert!(p.corruption().is_none(), "cut at {cut}: a torn tail is not corruption");
            let segments = p.stats().segments;
            let a = p.append(&[NewRecord::keyed("after", "recovery").with_timestamp(99_999)]).unwrap();
            assert_eq!(p.stats().segments, segments, "cut at {cut}: the append goes on in the recovered segment");
            assert_eq!(a.base_offset, kept as u64, "cut at {cut}: next offset");
            expected.extend(p.read(a.base_offset, 1, 1).unwrap());
            check(&store, &expected);
        }
        check_index_files(&pdir);
        // Reopen after the clean shutdown (indexes trusted) and again as after a crash (rescanned).
        for unclean in [false, true] {
            if unclean {
                common::forget_clean_shutdown(copy.path());
            }
            let store = Store::open(copy.path(), store_config()).unwrap();
            check(&store, &expected);
            drop(store);
            check_index_files(&pdir);
        }
    }
}
