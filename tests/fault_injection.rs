//! A failed write or fsync (EIO, ENOSPC) fails the append, poisons the partition (later appends:
//! `Error::Poisoned`; reads of acknowledged data still work), loses nothing acknowledged, and a
//! reopen recovers (a half-written batch is truncated) and takes appends again.

mod common;

use std::sync::Arc;

use kappalog::{
    fault::{FaultInjector, FaultKind},
    Durability, Error, NewRecord, Record, Store, StoreConfig, TopicConfig,
};

/// Appends tried after the fault is armed, at most: enough to reach the Nth write or fsync.
const APPENDS_AFTER_ARMING_MAX: u64 = 50;

fn config() -> TopicConfig {
    TopicConfig::default().segment_bytes(4096).index_interval_bytes(256).durability(Durability::Sync)
}

fn batch(i: u64) -> Vec<NewRecord> {
    (0..3).map(|j| NewRecord::keyed(format!("k{i}"), format!("value {i}.{j} {}", "z".repeat(60)))).collect()
}

#[derive(Debug, Clone, Copy)]
enum Fault {
    Write(u64),
    Sync(u64),
}

fn run(fault: Fault, kind: FaultKind) {
    let ctx = format!("{fault:?} {kind:?}");
    let dir = tempfile::tempdir().unwrap();
    let faults = FaultInjector::new();
    let acked: Vec<Record>;
    let mut attempted: Vec<Vec<NewRecord>> = Vec::new();
    {
        let store = Store::open(dir.path(), StoreConfig::default().faults(Some(Arc::clone(&faults)))).unwrap();
        let p = store.create_topic("t", 1, config()).unwrap().partition(0).unwrap();
        for i in 0..10 {
            p.append(&batch(i)).unwrap();
        }
        match fault {
            Fault::Write(n) => faults.fail_write_after(n, kind),
            Fault::Sync(n) => faults.fail_sync_after(n, kind),
        }
        let mut error = None;
        for i in 10..10 + APPENDS_AFTER_ARMING_MAX {
            let recs = batch(i);
            attempted.push(recs.clone());
            match p.append(&recs) {
                Ok(a) => assert_eq!(a.base_offset, i * 3, "{ctx}"),
                Err(e) => {
                    error = Some(e);
                    break;
                }
            }
        }
        let error = error.unwrap_or_else(|| panic!("{ctx}: no append failed"));
        assert!(matches!(error, Error::Io { .. }), "{ctx}: {error}");
        assert_eq!(error.is_disk_full(), kind == FaultKind::NoSpace, "{ctx}: {error}");
        if let Error::Io { path, .. } = &error {
            assert!(path.starts_with(dir.path()), "{ctx}: the error names the file: {}", path.display());
        }
        assert!(p.is_poisoned(), "{ctx}");
        // Later appends are refused, even once the disk is healthy again: never retry after a failure.
        faults.heal();
        assert!(matches!(p.append(&batch(999)), Err(Error::Poisoned { partition: 0, .. })), "{ctx}");
        assert!(matches!(p.roll(), Err(Error::Poisoned { .. })), "{ctx}");
        // Everything acknowledged is still readable; nothing unacknowledged is.
        let hw = p.high_watermark();
        assert_eq!(hw, (10 + attempted.len() as u64 - 1) * 3, "{ctx}: the high watermark is what was acknowledged");
        acked = p.read(0, usize::MAX, usize::MAX).unwrap();
        assert_eq!(acked.len() as u64, hw, "{ctx}");
        for (i, r) in acked.iter().enumerate() {
            let want = if (i as u64) < 30 { batch(i as u64 / 3) } else { attempted[i / 3 - 10].clone() };
            assert_eq!(r.value, want[i % 3].value, "{ctx}: offset {i}");
        }
        assert!(matches!(p.read(hw + 1, 1, 1), Err(Error::OffsetOutOfRange { .. })), "{ctx}");
    }
    assert!(!dir.path().join("clean-shutdown").exists(), "{ctx}: a poisoned store does not close cleanly");

    // Reopen without faults: recovery keeps what was acknowledged and truncates a half-written batch.
    let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
    let p = store.topic("t").unwrap().partition(0).unwrap();
    assert!(p.corruption().is_none(), "{ctx}: a half-written batch at the tail is not corruption");
    let hw = p.high_watermark();
    let all = p.read(0, usize::MAX, usize::MAX).unwrap();
    assert_eq!(all.len() as u64, hw);
    assert_eq!(all[..acked.len()], acked[..], "{ctx}: acknowledged records survive");
    // The failed append is either wholly there (its log write made it; a later write or the fsync
    // failed) or wholly gone: never a part of it.
    let failed = attempted.last().unwrap();
    match hw - acked.len() as u64 {
        0 => {}
        3 => {
            for (r, want) in all[acked.len()..].iter().zip(failed) {
                assert_eq!(r.value, want.value, "{ctx}");
            }
        }
        n => panic!("{ctx}: {n} records beyond the acknowledged ones"),
    }
    let a = p.append(&batch(1000)).unwrap();
    assert_eq!(a.base_offset, hw, "{ctx}: appends work again");
    assert_eq!(p.read(hw, usize::MAX, usize::MAX).unwrap().len(), 3);
}

#[test]
fn failed_writes_poison_and_recover() {
    // Writes after arming: log batches, index entries, final time entries at a roll: the Nth write
    // falls on each kind for some N.
    for n in 1..=12 {
        for kind in [FaultKind::Io, FaultKind::NoSpace] {
            run(Fault::Write(n), kind);
        }
    }
}

#[test]
fn failed_fsyncs_poison_and_recover() {
    // Fsyncs after arming: one per append, three at a roll.
    for n in 1..=12 {
        for kind in [FaultKind::Io, FaultKind::NoSpace] {
            run(Fault::Sync(n), kind);
        }
    }
}

#[test]
fn a_half_written_batch_is_truncated_on_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let faults = FaultInjector::new();
    let log = {
        let store = Store::open(dir.path(), StoreConfig::default().faults(Some(Arc::clone(&faults)))).unwrap();
        let p = store.create_topic("t", 1, config().index_interval_bytes(u32::MAX)).unwrap();
        let p = p.partition(0).unwrap();
        p.append(&batch(0)).unwrap();
        let info = p.segment_infos().unwrap().pop().unwrap();
        faults.fail_write_after(1, FaultKind::NoSpace);
        assert!(p.append(&batch(1)).unwrap_err().is_disk_full());
        let len = std::fs::metadata(&info.path).unwrap().len();
        assert!(len > info.size_bytes, "the failed write left half a batch behind: {len} vs {}", info.size_bytes);
        (info.path, info.size_bytes)
    };
    let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
    assert_eq!(std::fs::metadata(&log.0).unwrap().len(), log.1, "the half batch is truncated");
    let p = store.topic("t").unwrap().partition(0).unwrap();
    assert_eq!(p.high_watermark(), 3);
    assert_eq!(p.append(&batch(2)).unwrap().base_offset, 3);
}

/// A failed fsync of an index file during `flush` poisons the partition like any other fsync.
#[test]
fn a_failed_index_fsync_in_flush_poisons() {
    let dir = tempfile::tempdir().unwrap();
    let faults = kappalog::fault::FaultInjector::new();
    let config = kappalog::StoreConfig::default().faults(Some(faults.clone()));
    let store = kappalog::Store::open(dir.path(), config).unwrap();
    let t =
        store.create_topic("t", 1, kappalog::TopicConfig::default().durability(kappalog::Durability::None)).unwrap();
    let p = t.partition(0).unwrap();
    p.append(&[kappalog::NewRecord::new("a")]).unwrap();
    // flush = the log's fsync, then the two index files': fail the second one.
    faults.fail_sync_after(2, kappalog::fault::FaultKind::Io);
    assert!(p.flush().is_err());
    assert!(p.is_poisoned());
    faults.heal();
    assert!(matches!(p.append(&[kappalog::NewRecord::new("b")]), Err(kappalog::Error::Poisoned { .. })));
}
