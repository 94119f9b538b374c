//! Garbage after the last batch (random bytes, zeros, a batch-like header with a bad CRC, a
//! replayed batch) is a torn tail: recovery truncates it and the log goes on.

mod common;

use std::io::Write;
use std::path::Path;

use kappalog::{clock::ManualClock, Durability, NewRecord, Record, Store, StoreConfig, TopicConfig};

const BATCHES: u64 = 20;

/// A clock near the records' timestamps: appends after recovery go on in the recovered segment
/// (an old first timestamp would roll it by `segment_ms`).
fn store_config() -> StoreConfig {
    StoreConfig::default().clock(ManualClock::new(100_000))
}

fn config() -> TopicConfig {
    TopicConfig::default().segment_bytes(4096).index_interval_bytes(200).durability(Durability::None)
}

/// Writes the original log and returns its records and the bytes of its last batch.
fn original(dir: &Path) -> (Vec<Record>, Vec<u8>) {
    let store = Store::open(dir, store_config()).unwrap();
    let p = store.create_topic("t", 1, config()).unwrap().partition(0).unwrap();
    for i in 0..BATCHES {
        let recs: Vec<NewRecord> =
            (0..3).map(|j| NewRecord::keyed(format!("k{i}"), format!("v{i}-{j}")).with_timestamp(i as i64)).collect();
        p.append(&recs).unwrap();
    }
    let records = p.read(0, usize::MAX, usize::MAX).unwrap();
    let active = p.segment_infos().unwrap().pop().unwrap();
    let data = std::fs::read(&active.path).unwrap();
    let last_len = {
        // The last batch: the one whose length field takes it exactly to the end of the file.
        let mut pos = 0;
        loop {
            let len = common::batch::len_at(&data, pos);
            if pos + len == data.len() {
                break len;
            }
            pos += len;
        }
    };
    (records, data[data.len() - last_len..].to_vec())
}

/// Appends `garbage` to the active segment of a copy of `from`, reopens, and checks it was truncated.
fn check_garbage(from: &Path, records: &[Record], garbage: &[u8], clean_mark: bool, what: &str) {
    let copy = tempfile::tempdir().unwrap();
    common::copy_dir(from, copy.path());
    if !clean_mark {
        common::forget_clean_shutdown(copy.path());
    }
    let log = common::segment_files(&common::partition_dir(copy.path(), "t", 0), "log").pop().unwrap();
    let len = std::fs::metadata(&log).unwrap().len();
    std::fs::OpenOptions::new().append(true).open(&log).unwrap().write_all(garbage).unwrap();

    let store = Store::open(copy.path(), store_config()).unwrap();
    assert_eq!(std::fs::metadata(&log).unwrap().len(), len, "{what}: the garbage is truncated");
    let p = store.topic("t").unwrap().partition(0).unwrap();
    assert!(p.corruption().is_none(), "{what}: garbage at the tail is not corruption");
    assert_eq!(p.high_watermark(), records.len() as u64, "{what}");
    assert_eq!(p.read(0, usize::MAX, usize::MAX).unwrap(), records, "{what}");
    let a = p.append(&[NewRecord::new("next")]).unwrap();
    assert_eq!(a.base_offset, records.len() as u64, "{what}");
    drop(store);
    common::forget_clean_shutdown(copy.path());
    let store = Store::open(copy.path(), store_config()).unwrap();
    let p = store.topic("t").unwrap().partition(0).unwrap();
    assert_eq!(p.high_watermark(), records.len() as u64 + 1, "{what}: after a second recovery");
    assert_eq!(&p.read(0, usize::MAX, usize::MAX).unwrap()[..records.len()], records, "{what}");
}

#[test]
fn garbage_after_the_last_batch_is_truncated() {
    let seed = common::seed();
    let mut rng = common::Rng::new(seed);
    let dir = tempfile::tempdir().unwrap();
    let (records, last) = original(dir.path());
    let next_offset = records.len() as u64;

    let mut cases: Vec<(String, Vec<u8>)> = Vec::new();
    for n in [1, 7, 42, 43, 44, 100, 1000, 5000] {
        cases.push((format!("{n} random bytes (seed {seed})"), rng.bytes(n)));
        cases.push((format!("{n} zero bytes"), vec![0; n]));
    }
    // A copy of the last batch claiming the next offsets (the CRC does not cover the base
    // offset), with a record byte changed: a stale CRC.
    let mut bad_crc = last.clone();
    common::batch::set_base_offset(&mut bad_crc, next_offset);
    let n = bad_crc.len();
    bad_crc[n - 3] ^= 0x20;
    cases.push(("a batch with a stale CRC".into(), bad_crc.clone()));
    let mut flipped = last.clone();
    common::batch::set_base_offset(&mut flipped, next_offset);
    flipped[common::batch::CRC] ^= 0xff;
    cases.push(("a batch with a flipped CRC".into(), flipped));
    // The header of a batch whose records never made it.
    cases.push(("a lone batch header".into(), bad_crc[..common::batch::HEADER_LEN].to_vec()));
    cases.push(("a batch missing its last byte".into(), bad_crc[..bad_crc.len() - 1].to_vec()));
    // The last batch written again (valid CRC, but its offsets go backwards).
    cases.push(("a replay of the last batch".into(), last.clone()));
    // A header claiming far more bytes than follow.
    let mut long = last.clone();
    common::batch::set_len(&mut long, 1 << 20);
    cases.push(("a batch claiming 1 MiB".into(), long));

    for (what, garbage) in &cases {
        for clean_mark in [false, true] {
            check_garbage(dir.path(), &records, garbage, clean_mark, &format!("{what}, clean mark {clean_mark}"));
        }
    }
}
