//! A flipped byte inside a batch is corruption: reads that reach it fail with `Error::Corrupted`
//! (path, position, and for a payload flip the expected and found CRC); nothing corrupt is served;
//! what comes before it and after it stays readable. In the active segment, a bad batch followed
//! by valid ones is reported and kept, not truncated away as a torn tail.

mod common;

use std::path::{Path, PathBuf};

use kappalog::{Corruption, Durability, Error, NewRecord, Record, Store, StoreConfig, TopicConfig};

const HEADER_LEN: usize = common::batch::HEADER_LEN;

fn config(segment_bytes: u64) -> TopicConfig {
    TopicConfig::default().segment_bytes(segment_bytes).index_interval_bytes(128).durability(Durability::None)
}

/// CRC-32C (Castagnoli), bit by bit: an independent check of the checksum the log reports.
fn crc32c(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = if crc & 1 == 1 { (crc >> 1) ^ 0x82f6_3b78 } else { crc >> 1 };
        }
    }
    !crc
}

/// (position, length, base offset, record count) of every batch of a log file.
fn batches(log: &Path) -> Vec<(usize, usize, u64, u64)> {
    let data = std::fs::read(log).unwrap();
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < data.len() {
        let len = common::batch::len_at(&data, pos);
        let base = common::batch::base_offset_at(&data, pos);
        let rc = common::batch::RECORDS_COUNT;
        let count = u32::from_be_bytes(data[pos + rc..pos + rc + 4].try_into().unwrap()) as u64;
        out.push((pos, len, base, count));
        pos += len;
    }
    out
}

fn fill(dir: &Path, segment_bytes: u64, batches: u64) -> Vec<Record> {
    let store = Store::open(dir, StoreConfig::default()).unwrap();
    let p = store.create_topic("t", 1, config(segment_bytes)).unwrap().partition(0).unwrap();
    for i in 0..batches {
        let recs: Vec<NewRecord> =
            (0..2).map(|j| NewRecord::keyed(format!("k{i}"), format!("value {i}.{j} {}", "x".repeat(80)))).collect();
        p.append(&recs).unwrap();
    }
    p.read(0, usize::MAX, usize::MAX).unwrap()
}

fn flip(path: &Path, at: usize) {
    let mut data = std::fs::read(path).unwrap();
    data[at] ^= 0x41;
    std::fs::write(path, data).unwrap();
}

/// Checks a read result: either exactly the expected records, or the expected corruption.
fn assert_good_or_corrupted(got: kappalog::Result<Vec<Record>>, all: &[Record], from: u64, log: &Path, pos: usize) {
    match got {
        Ok(recs) => {
            assert!(!recs.is_empty());
            assert_eq!(
                &recs[..],
                &all[from as usize..from as usize + recs.len()],
                "read at {from} served wrong records"
            );
        }
        Err(Error::Corrupted { path, position, .. }) => {
            assert_eq!((path.as_path(), position), (log, pos as u64), "read at {from}");
        }
        Err(e) => panic!("read at {from}: unexpected {e}"),
    }
}

#[test]
fn flipped_bytes_in_a_sealed_segment_are_reported_not_served() {
    let original = tempfile::tempdir().unwrap();
    let all = fill(original.path(), 4096, 120);
    let logs = common::segment_files(&common::partition_dir(original.path(), "t", 0), "log");
    assert!(logs.len() >= 4, "want sealed segments before and after the damaged one: {logs:?}");
    let victim_name = logs[1].file_name().unwrap().to_owned();
    let list = batches(&logs[1]);
    let next_segment_base = batches(&logs[2])[0].2;
    let (pos, len, base, count) = list[list.len() / 2];
    let stored_crc = {
        let data = std::fs::read(&logs[1]).unwrap();
        common::batch::crc_at(&data, pos)
    };

    // (what, byte to flip, whether the evidence must be a CRC mismatch)
    let flips: Vec<(&str, usize, bool)> = vec![
        // The CRC does not cover the base offset, the length, the leader epoch or the magic byte
        // (Kafka's layout): their damage is found by the other checks.
        ("base offset", pos + 7, false),
        ("base offset, high byte", pos, false),
        ("length", pos + 11, false),
        ("partition leader epoch", pos + 15, false),
        ("magic", pos + 16, false),
        ("crc", pos + 17, true),
        ("attributes", pos + 22, false),
        ("last offset delta", pos + 26, false),
        ("base timestamp", pos + 27, true),
        ("max timestamp", pos + 35, true),
        ("producer id", pos + 50, true),
        ("producer epoch", pos + 52, true),
        ("base sequence", pos + 56, true),
        ("record count", pos + 60, false),
        ("first record length", pos + HEADER_LEN, true),
        ("a value byte", pos + len / 2, true),
        ("the last byte", pos + len - 1, true),
    ];
    for (what, at, crc_evidence) in flips {
        for unclean in [false, true] {
            let copy = tempfile::tempdir().unwrap();
            common::copy_dir(original.path(), copy.path());
            if unclean {
                common::forget_clean_shutdown(copy.path());
            }
            let log: PathBuf = common::partition_dir(copy.path(), "t", 0).join(&victim_name);
            flip(&log, at);
            let store = Store::open(copy.path(), StoreConfig::default()).unwrap();
            let p = store.topic("t").unwrap().partition(0).unwrap();
            assert_eq!(p.high_watermark(), all.len() as u64);

            // The damaged batch: every read that reaches it fails, with the evidence.
            for o in base..base + count {
                match p.read(o, usize::MAX, usize::MAX) {
                    Err(Error::Corrupted { path, position, detail }) => {
                        assert_eq!(path, log, "{what}");
                        assert_eq!(position, pos as u64, "{what}");
                        if crc_evidence {
                            let data = std::fs::read(&log).unwrap();
                            let flipped_crc = common::batch::crc_at(&data, pos);
                            let found = crc32c(&data[pos + common::batch::ATTRIBUTES..pos + len]);
                            assert_eq!(detail, Corruption::ChecksumMismatch { expected: flipped_crc, found }, "{what}");
                            if what != "crc" {
                                assert_eq!(flipped_crc, stored_crc);
                            }
                        }
                    }
                    other => panic!("{what}: read at {o} of a damaged batch gave {other:?}"),
                }
            }
            // A read from the start reaches it too.
            assert!(matches!(p.read(0, usize::MAX, usize::MAX), Err(Error::Corrupted { .. })), "{what}");
            // Everything before it, one batch at a time, is served intact.
            for o in 0..base {
                let got = p.read(o, 1, 1).unwrap();
                assert_eq!(got, [all[o as usize].clone()], "{what}: offset {o} before the damage");
            }
            // Later batches of the same segment: intact, or the same corruption (when the sparse
            // index sends the read through the damaged batch).
            for o in base + count..next_segment_base {
                assert_good_or_corrupted(p.read(o, 1, 1), &all, o, &log, pos);
            }
            // Later segments are untouched.
            let rest = p.read(next_segment_base, usize::MAX, usize::MAX).unwrap();
            assert_eq!(rest, all[next_segment_base as usize..], "{what}");
            // The log still takes appends.
            assert_eq!(p.append(&[NewRecord::new("after")]).unwrap().base_offset, all.len() as u64);
        }
    }
}

#[test]
fn a_bad_batch_inside_the_active_segment_is_reported_and_kept() {
    let original = tempfile::tempdir().unwrap();
    let all = fill(original.path(), 1 << 20, 30);
    let pdir = common::partition_dir(original.path(), "t", 0);
    let logs = common::segment_files(&pdir, "log");
    assert_eq!(logs.len(), 1);
    let list = batches(&logs[0]);
    let log_len = std::fs::metadata(&logs[0]).unwrap().len();

    for victim in [0, 7, list.len() - 2] {
        let (pos, len, base, count) = list[victim];
        for (what, at) in [("payload", pos + len - 3), ("length", pos + 10), ("crc", pos + 18)] {
            let copy = tempfile::tempdir().unwrap();
            common::copy_dir(original.path(), copy.path());
            common::forget_clean_shutdown(copy.path());
            let log = common::partition_dir(copy.path(), "t", 0).join(logs[0].file_name().unwrap());
            flip(&log, at);
            let ctx = format!("batch {victim}, {what}");
            let mut expected_len = log_len;
            // Twice: after the crash, and again after the clean shutdown that follows it.
            for round in 0..2u64 {
                let next = all.len() as u64 + round;
                let store = Store::open(copy.path(), StoreConfig::default()).unwrap();
                assert_eq!(std::fs::metadata(&log).unwrap().len(), expected_len, "{ctx}: nothing truncated");
                let p = store.topic("t").unwrap().partition(0).unwrap();
                match p.corruption() {
                    Some(Error::Corrupted { path, position, .. }) => {
                        assert_eq!((path, position), (log.clone(), pos as u64), "{ctx}, round {round}")
                    }
                    other => panic!("{ctx}, round {round}: corruption() = {other:?}"),
                }
                assert_eq!(p.high_watermark(), next, "{ctx}");
                for o in base..base + count {
                    assert!(
                        matches!(p.read(o, usize::MAX, usize::MAX), Err(Error::Corrupted { position, .. }) if position == pos as u64),
                        "{ctx}: offset {o}"
                    );
                }
                for o in 0..base {
                    assert_eq!(p.read(o, 1, 1).unwrap(), [all[o as usize].clone()], "{ctx}: offset {o}");
                }
                // The valid batches after the bad one are served.
                let after = p.read(base + count, usize::MAX, usize::MAX).unwrap();
                assert_eq!(after[..all.len() - (base + count) as usize], all[(base + count) as usize..], "{ctx}");
                let a = p.append(&[NewRecord::new("x".repeat(60))]).unwrap();
                assert_eq!(a.base_offset, next, "{ctx}");
                expected_len = std::fs::metadata(&log).unwrap().len();
            }
        }
    }
}
