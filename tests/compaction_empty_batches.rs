//! Compaction keeps an emptied batch where Kafka's cleaner does (segment-format.md, section 16):
//! a producer's last batch whose records were all superseded stays as an empty batch (a bare
//! header: `recordsCount` 0, its own `lastOffsetDelta`, producer id, epoch and base sequence), so
//! the producer's next sequence is still in order and a retry of that batch is still a duplicate,
//! after a clean reopen and after a crash whose producer state is rebuilt from the log. Any other
//! batch left with no record is dropped. Reads of every kind across the empty batch give the
//! records that are there.

mod common;

use kappalog::log::{inspect_segment, ProducerFields};
use kappalog::{
    CleanupPolicy, Durability, Error, NewRecord, Partition, ProducerError, Store, StoreConfig, TopicConfig,
};

fn config() -> TopicConfig {
    TopicConfig::default()
        .segment_bytes(1 << 20)
        .index_interval_bytes(64)
        .durability(Durability::None)
        .cleanup_policy(CleanupPolicy::Compact)
}

fn keyed(keys: &[&str], tag: &str) -> Vec<NewRecord> {
    keys.iter().map(|k| NewRecord::keyed(k.to_string(), format!("{k}-{tag}"))).collect()
}

fn producer(producer_id: i64, producer_epoch: i16, base_sequence: i32) -> ProducerFields {
    ProducerFields { producer_id, producer_epoch, base_sequence }
}

/// Every batch of the partition's segments: (base offset, last offset, records, producer).
fn batches(p: &Partition) -> Vec<(u64, u64, u32, ProducerFields)> {
    let mut out = Vec::new();
    for s in p.segment_infos().unwrap() {
        let report = inspect_segment(&s.path, None).unwrap();
        assert!(report.corruption.is_none(), "{:?}", report.corruption);
        out.extend(report.batches.iter().map(|b| {
            (b.base_offset, b.last_offset, b.record_count, producer(b.producer_id, b.producer_epoch, b.base_sequence))
        }));
    }
    out
}

/// The records that are there, as (offset, value), read every way a reader can, from every offset:
/// each read gives the records at or after its start, none of an empty batch's.
fn check_reads(p: &Partition, want: &[(u64, String)], what: &str) {
    let value = |r: &kappalog::Record| String::from_utf8(r.value.as_ref().unwrap().to_vec()).unwrap();
    let all: Vec<(u64, String)> =
        p.cursor_from_start().fetch_limits(1, 1).map(|r| r.unwrap()).map(|r| (r.offset, value(&r))).collect();
    assert_eq!(all, want, "{what}: a cursor with the smallest limits");
    for start in p.log_start_offset()..p.high_watermark() {
        let from: Vec<&(u64, String)> = want.iter().filter(|(o, _)| *o >= start).collect();
        for (max_bytes, max_records) in [(1, 1), (1, 100), (100, 2), (usize::MAX, usize::MAX)] {
            let got = p.read(start, max_bytes, max_records).unwrap();
            assert!(!got.is_empty() || from.is_empty(), "{what}: a read from {start} gave nothing");
            for (r, w) in got.iter().zip(&from) {
                assert_eq!((r.offset, value(r)), **w, "{what}: read from {start}, {max_bytes}/{max_records}");
            }
            let mut lent = Vec::new();
            let mut next = start;
            for b in p.read_batches(start, max_bytes, max_records).unwrap() {
                next = b.for_each(|r| lent.push(b.to_record(r))).unwrap();
            }
            for (r, w) in lent.iter().zip(&from) {
                assert_eq!((r.offset, value(r)), **w, "{what}: read_batches from {start}");
            }
            assert!(from.get(lent.len()).is_none_or(|(o, _)| next <= *o), "{what}: read_batches from {start} skips");
        }
    }
}

#[test]
fn a_producers_last_batch_stays_empty_and_other_emptied_batches_go() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), StoreConfig::default().cleaner_interval_ms(0)).unwrap();
    let p = store.create_topic("t", 1, config()).unwrap().partition(0).unwrap();
    let (a, ea) = store.init_producer_id().unwrap();
    let (b, eb) = store.init_producer_id().unwrap();
    let a0 = p.append_with_producer(&keyed(&["k1", "k2"], "a0"), producer(a, ea, 0)).unwrap(); // 0..=1
    let b0 = p.append_with_producer(&keyed(&["k1"], "b0"), producer(b, eb, 0)).unwrap(); // 2
    let a1 = p.append_with_producer(&keyed(&["k3", "k4", "k5"], "a1"), producer(a, ea, 2)).unwrap(); // 3..=5
    let b1 = p.append_with_producer(&keyed(&["k6"], "b1"), producer(b, eb, 1)).unwrap(); // 6
    let plain = p.append(&keyed(&["k7"], "plain")).unwrap(); // 7
                                                             // Supersedes every record of a0, b0, a1 and plain: only b1 keeps a record.
    let later = p.append(&keyed(&["k1", "k2", "k3", "k4", "k5", "k7"], "later")).unwrap(); // 8..=13
    p.roll().unwrap();
    let tail = p.append(&keyed(&["k8"], "tail")).unwrap(); // 14
    assert_eq!((a0.base_offset, a1.base_offset, later.base_offset, tail.base_offset), (0, 3, 8, 14));
    let report = store.compact("t").unwrap();
    assert_eq!(report.records_removed, 7, "a0, b0, a1 and plain lose every record: {report:?}");

    let after = batches(&p);
    let empty: Vec<_> = after.iter().filter(|b| b.2 == 0).collect();
    assert_eq!(empty, [&(3, 5, 0, producer(a, ea, 2))], "a1 stays, empty, with its offsets and sequence: {after:?}");
    for gone in [a0.base_offset, b0.base_offset, plain.base_offset] {
        assert!(after.iter().all(|b| b.0 != gone), "the emptied batch at {gone} is dropped: {after:?}");
    }
    assert!(after.iter().any(|b| b.0 == b1.base_offset && b.2 == 1), "b1 keeps its record");
    // Served as stored: a raw read from the empty batch starts with its 61 bytes.
    let raw = p.read_raw(a1.base_offset, 1 << 20).unwrap();
    assert_eq!(raw.base_offset, a1.base_offset);
    assert_eq!(i32::from_be_bytes(raw.bytes[8..12].try_into().unwrap()), 61 - 12, "a bare header");
    assert_eq!(i32::from_be_bytes(raw.bytes[57..61].try_into().unwrap()), 0, "recordsCount 0");
    assert_eq!(p.offset_for_timestamp(0).unwrap(), Some(b1.base_offset), "the first record there");

    let mut want: Vec<(u64, String)> = vec![(6, "k6-b1".into())];
    want.extend(["k1", "k2", "k3", "k4", "k5", "k7"].iter().zip(8..).map(|(k, o)| (o, format!("{k}-later"))));
    want.push((14, "k8-tail".into()));
    check_reads(&p, &want, "after compaction");

    // The producer goes on: a retry of its last batch is a duplicate (its original offsets), the
    // next sequence is in order, a gap is refused. After a clean reopen, and after a crash whose
    // producer state is rebuilt from the batch headers alone (the snapshots lost).
    drop(p);
    drop(store);
    let store = Store::open(dir.path(), StoreConfig::default().cleaner_interval_ms(0)).unwrap();
    let p = store.topic("t").unwrap().partition(0).unwrap();
    assert_eq!(p.producer_last_sequence(a), Some((ea, 4)), "clean reopen");
    check_reads(&p, &want, "after a clean reopen");
    let crashed = tempfile::tempdir().unwrap();
    common::copy_dir(dir.path(), crashed.path());
    std::fs::remove_file(crashed.path().join("LOCK")).ok();
    let pdir = common::partition_dir(crashed.path(), "t", 0);
    for f in std::fs::read_dir(&pdir).unwrap() {
        let f = f.unwrap().path();
        if f.extension().is_some_and(|e| e == "snapshot") {
            std::fs::remove_file(f).unwrap();
        }
    }
    common::forget_clean_shutdown(crashed.path());
    let crashed_store = Store::open(crashed.path(), StoreConfig::default().cleaner_interval_ms(0)).unwrap();
    let cp = crashed_store.topic("t").unwrap().partition(0).unwrap();
    for (what, p) in [("clean reopen", &p), ("crash, state rebuilt from the log", &cp)] {
        assert_eq!(p.producer_last_sequence(a), Some((ea, 4)), "{what}: a's last sequence, from the empty batch");
        let again = p.append_with_producer(&keyed(&["k3", "k4", "k5"], "a1"), producer(a, ea, 2)).unwrap();
        assert_eq!((again.base_offset, again.last_offset), (a1.base_offset, a1.last_offset), "{what}: a duplicate");
        let e = p.append_with_producer(&keyed(&["k9"], "gap"), producer(a, ea, 6)).unwrap_err();
        assert!(
            matches!(e, Error::Producer { error: ProducerError::OutOfOrderSequence { expected: 5, found: 6, .. }, .. }),
            "{what}: {e}"
        );
        let next = p.append_with_producer(&keyed(&["k9"], "a2"), producer(a, ea, 5)).unwrap();
        assert_eq!(next.base_offset, 15, "{what}: the next sequence is accepted, in order");
    }
}
