//! `kappalog migrate`: a data directory of format version 2, built byte for byte from that
//! version's layout, is rewritten into the current format and every record reads back equal; a
//! damaged old batch is reported with its file and byte, and nothing is migrated.

mod common;
mod migrate_common;

use kappalog::log::migrate::migrate_store;
use kappalog::{limits::FORMAT_VERSION, Error};
use migrate_common::{assert_store_equals, write_old_store};

/// One test at a time: a child process forked by one test (the real command) inherits, until it
/// execs, the descriptor of a lock another test's store holds at that moment, which would make
/// that test's migration see the directory locked.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

#[test]
fn a_format_2_store_migrates_and_reads_back_equal() {
    let _serial = serial();
    let seed = common::seed();
    let mut rng = common::Rng::new(seed);
    let dir = tempfile::tempdir().unwrap();
    let expected = write_old_store(dir.path(), &mut rng, 3, 3);
    assert!(matches!(
        kappalog::Store::open(dir.path(), kappalog::StoreConfig::default()),
        Err(Error::FormatTooOld { found: 2, .. })
    ));
    let report = migrate_store(dir.path()).unwrap();
    assert_eq!(report.from_version, 2);
    assert_eq!(report.partitions, 9);
    let records: usize = expected.iter().map(|e| e.2.len()).sum();
    assert_eq!(report.records, records as u64);
    assert!(report.torn_tails.is_empty());
    assert!(!dir.path().join("migrate.tmp").exists());
    let meta = std::fs::read_to_string(dir.path().join("kappalog.json")).unwrap();
    assert!(meta.contains(&format!("\"format_version\": {FORMAT_VERSION}")), "{meta}");
    assert_store_equals(dir.path(), &expected);
    // A second run finds the current version and changes nothing.
    assert_eq!(migrate_store(dir.path()).unwrap().partitions, 0);
    assert_store_equals(dir.path(), &expected);
}

#[test]
fn a_damaged_old_batch_is_reported_with_its_file_and_byte() {
    let _serial = serial();
    let seed = common::seed();
    let mut rng = common::Rng::new(seed);
    let dir = tempfile::tempdir().unwrap();
    write_old_store(dir.path(), &mut rng, 1, 1);
    let pdir = common::partition_dir(dir.path(), "t0", 0);
    let log = common::segment_files(&pdir, "log").into_iter().find(|p| std::fs::metadata(p).unwrap().len() > 0);
    let log = log.unwrap();
    let mut bytes = std::fs::read(&log).unwrap();
    // Damage a byte inside the first batch's records (the CRC no longer matches).
    let first_len = u32::from_le_bytes(bytes[0..4].try_into().unwrap()) as usize;
    let at = 43 + rng.below((first_len - 43) as u64) as usize;
    bytes[at] ^= 0x40;
    std::fs::write(&log, &bytes).unwrap();
    let err = migrate_store(dir.path()).unwrap_err();
    match &err {
        Error::Corrupted { path, position, .. } => {
            assert_eq!(path, &log, "{err}");
            assert_eq!(*position, 0, "{err}");
        }
        other => panic!("expected corruption, got {other}"),
    }
    let msg = err.to_string();
    assert!(msg.contains(&log.display().to_string()) && msg.contains("byte 0"), "{msg}");
    assert_eq!(std::fs::read(&log).unwrap(), bytes, "the old segment is kept as it was");
    let meta = std::fs::read_to_string(dir.path().join("kappalog.json")).unwrap();
    assert!(meta.contains("\"format_version\": 2"), "nothing was migrated: {meta}");
    // The real command exits 3 and names the file.
    let out =
        std::process::Command::new(env!("CARGO_BIN_EXE_kappalog")).arg("migrate").arg(dir.path()).output().unwrap();
    assert_eq!(out.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&log.display().to_string()), "{stderr}");
}

#[test]
fn a_torn_tail_of_the_active_segment_is_cut_and_reported() {
    let _serial = serial();
    let seed = common::seed();
    let mut rng = common::Rng::new(seed);
    let dir = tempfile::tempdir().unwrap();
    let mut expected = write_old_store(dir.path(), &mut rng, 1, 1);
    let pdir = common::partition_dir(dir.path(), "t0", 0);
    let log = common::segment_files(&pdir, "log").pop().unwrap();
    let mut bytes = std::fs::read(&log).unwrap();
    let base = std::fs::metadata(&log).unwrap().len();
    // Half of a batch past the end: a write the old build's crash interrupted.
    let batch = migrate_common::old_batch(
        1 << 40,
        0,
        false,
        &[migrate_common::Rec { offset: 1 << 40, timestamp: 1, key: None, value: Some(vec![7; 50]), headers: vec![] }],
    );
    bytes.extend_from_slice(&batch[..batch.len() / 2]);
    std::fs::write(&log, &bytes).unwrap();
    let report = migrate_store(dir.path()).unwrap();
    assert_eq!(report.torn_tails, vec![(log.clone(), base, (batch.len() / 2) as u64)]);
    expected[0].2.retain(|r| r.offset < 1 << 40);
    assert_store_equals(dir.path(), &expected);
}

#[test]
fn a_store_in_use_is_not_migrated() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let store = kappalog::Store::open(dir.path(), kappalog::StoreConfig::default()).unwrap();
    assert!(matches!(migrate_store(dir.path()), Err(Error::Locked { .. })));
    drop(store);
    assert_eq!(migrate_store(dir.path()).unwrap().from_version, FORMAT_VERSION);
}
