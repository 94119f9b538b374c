//! Idempotent appends through the library: a retried batch is acknowledged with its original
//! offsets and not written again, within one group commit, after a roll, across a clean reopen and
//! across a crash (the state rebuilt from the snapshot and the batch headers after it); sequence
//! and epoch errors are clear; producer ids are never given twice.

mod common;

use kappalog::log::{next_sequence, ProducerFields};
use kappalog::{Appended, Durability, Error, NewRecord, ProducerError, Store, StoreConfig, TopicConfig};

fn records(tag: &str, n: usize) -> Vec<NewRecord> {
    (0..n).map(|i| NewRecord::new(format!("{tag}-{i}"))).collect()
}

fn values(store: &Store) -> Vec<String> {
    let p = store.topic("t").unwrap().partition(0).unwrap();
    let recs = p.read(0, usize::MAX, 100_000).unwrap();
    recs.iter().map(|r| String::from_utf8(r.value.as_ref().unwrap().to_vec()).unwrap()).collect()
}

fn producer(producer_id: i64, producer_epoch: i16, base_sequence: i32) -> ProducerFields {
    ProducerFields { producer_id, producer_epoch, base_sequence }
}

#[test]
fn retries_are_acknowledged_with_the_original_offsets() {
    for durability in [Durability::Sync, Durability::None] {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
        let config = TopicConfig::default().durability(durability).segment_bytes(4096);
        let p = store.create_topic("t", 1, config).unwrap().partition(0).unwrap();
        let (id, epoch) = store.init_producer_id().unwrap();
        p.append(&records("plain", 2)).unwrap();
        let a = p.append_with_producer(&records("a", 3), producer(id, epoch, 0)).unwrap();
        let b = p.append_with_producer(&records("b", 2), producer(id, epoch, 3)).unwrap();
        assert_eq!((a.base_offset, a.last_offset, b.base_offset), (2, 4, 5));
        let again = p.append_with_producer(&records("a", 3), producer(id, epoch, 0)).unwrap();
        assert_eq!(again, a, "{durability:?}: the retry gets the first append's answer");
        assert_eq!(p.log_end_offset(), 7, "nothing was written for the retry");
        let e = p.append_with_producer(&records("c", 1), producer(id, epoch, 9)).unwrap_err();
        assert!(
            matches!(e, Error::Producer { error: ProducerError::OutOfOrderSequence { expected: 5, found: 9, .. }, .. }),
            "{e}"
        );
        let e = p.append_with_producer(&records("c", 1), producer(id, epoch, -1)).unwrap_err();
        assert!(matches!(e, Error::Producer { error: ProducerError::InvalidProducerFields(_), .. }), "{e}");
        // A newer epoch fences the older one.
        p.append_with_producer(&records("d", 1), producer(id, epoch + 1, 0)).unwrap();
        let e = p.append_with_producer(&records("c", 1), producer(id, epoch, 5)).unwrap_err();
        assert!(matches!(e, Error::Producer { error: ProducerError::InvalidProducerEpoch { .. }, .. }), "{e}");
        assert_eq!(values(&store), ["plain-0", "plain-1", "a-0", "a-1", "a-2", "b-0", "b-1", "d-0"]);
    }
}

/// Concurrent retries of the same batches from many threads, all in flight at once (so that a
/// batch and its retry often share a group commit): each batch is written once and every attempt
/// gets its offsets.
#[test]
fn concurrent_retries_in_one_group_commit_are_written_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
    let config = TopicConfig::default().durability(Durability::Sync);
    let p = store.create_topic("t", 1, config).unwrap().partition(0).unwrap();
    let (id, _) = store.init_producer_id().unwrap();
    let mut sequence = 0;
    for round in 0..20 {
        let batch = producer(id, 0, sequence);
        let answers: Vec<_> = std::thread::scope(|s| {
            let attempts: Vec<_> = (0..4)
                .map(|_| {
                    let p = p.clone();
                    s.spawn(move || p.append_with_producer(&records(&format!("r{round}"), 2), batch))
                })
                .collect();
            attempts.into_iter().map(|a| a.join().unwrap().unwrap()).collect()
        });
        assert!(answers.iter().all(|a| *a == answers[0]), "round {round}: {answers:?}");
        assert_eq!(answers[0].base_offset, round * 2);
        sequence = next_sequence(sequence, 2);
    }
    assert_eq!(p.log_end_offset(), 40);
}

#[test]
fn the_state_survives_rolls_and_a_clean_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let config = TopicConfig::default().durability(Durability::Sync).segment_bytes(4096);
    let big = |i: i32| records(&format!("x{i}-{}", "y".repeat(300)), 2);
    let first = {
        let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
        let p = store.create_topic("t", 1, config).unwrap().partition(0).unwrap();
        let mut appended = Vec::new();
        for i in 0..40 {
            appended.push(p.append_with_producer(&big(i), producer(7, 0, i * 2)).unwrap());
        }
        assert!(p.segment_infos().unwrap().len() > 3, "the segment rolled");
        appended
    };
    let snapshots = common::segment_files(&common::partition_dir(dir.path(), "t", 0), "snapshot");
    assert_eq!(snapshots.len(), 2, "the newest two snapshots are kept: {snapshots:?}");
    let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
    let p = store.topic("t").unwrap().partition(0).unwrap();
    for i in 35..40 {
        let again = p.append_with_producer(&big(i), producer(7, 0, i * 2)).unwrap();
        assert_eq!(again, first[i as usize]);
    }
    assert_eq!(p.log_end_offset(), 80);
    p.append_with_producer(&records("next", 1), producer(7, 0, 80)).unwrap();
}

#[test]
fn producer_ids_are_never_given_twice() {
    let dir = tempfile::tempdir().unwrap();
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..3 {
        let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
        for _ in 0..10 {
            let (id, epoch) = store.init_producer_id().unwrap();
            assert_eq!(epoch, 0);
            assert!(seen.insert(id), "id {id} given twice");
        }
    }
}

/// A crash image (the files copied while the store is open): the state is the newest snapshot plus
/// the batches after it replayed from their headers, or, with every snapshot gone, the whole log.
#[test]
fn the_state_is_rebuilt_from_the_log_after_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let config = TopicConfig::default().durability(Durability::Sync).segment_bytes(4096);
    let big = |i: i32| records(&format!("z{i}-{}", "y".repeat(300)), 3);
    let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
    let p = store.create_topic("t", 1, config).unwrap().partition(0).unwrap();
    let mut appended = Vec::new();
    for i in 0..30 {
        appended.push(p.append_with_producer(&big(i), producer(3, 2, i * 3)).unwrap());
        p.append(&records("plain", 1)).unwrap();
    }
    for without_snapshots in [false, true] {
        let image = tempfile::tempdir().unwrap();
        common::copy_dir(dir.path(), image.path());
        common::forget_clean_shutdown(image.path());
        let pdir = common::partition_dir(image.path(), "t", 0);
        assert!(!common::segment_files(&pdir, "snapshot").is_empty(), "the rolls wrote snapshots");
        if without_snapshots {
            for f in common::segment_files(&pdir, "snapshot") {
                std::fs::remove_file(f).unwrap();
            }
        }
        let crashed = Store::open(image.path(), StoreConfig::default()).unwrap();
        let q = crashed.topic("t").unwrap().partition(0).unwrap();
        let end = q.log_end_offset();
        for i in 25..30 {
            let again = q.append_with_producer(&big(i), producer(3, 2, i * 3)).unwrap();
            assert_eq!(again, Appended { log_append_time_ms: again.log_append_time_ms, ..appended[i as usize] });
        }
        assert_eq!(q.log_end_offset(), end, "the retries wrote nothing");
        let e = q.append_with_producer(&big(24), producer(3, 2, 24 * 3)).unwrap_err();
        assert!(matches!(e, Error::Producer { error: ProducerError::OutOfOrderSequence { expected: 90, .. }, .. }));
        let e = q.append_with_producer(&big(30), producer(3, 1, 90)).unwrap_err();
        assert!(matches!(e, Error::Producer { error: ProducerError::InvalidProducerEpoch { current: 2, .. }, .. }));
        q.append_with_producer(&big(30), producer(3, 2, 90)).unwrap();
    }
}

/// A producer idle for `producer_id_expiration_ms` of the store's clock is forgotten: a retry after
/// that is written again (as in Kafka), and the producer may start at any sequence.
#[test]
fn idle_producers_expire_on_the_store_clock() {
    let dir = tempfile::tempdir().unwrap();
    let clock = kappalog::clock::ManualClock::new(1_000_000);
    let config = StoreConfig::default().clock(clock.clone()).producer_id_expiration_ms(60_000);
    let store = Store::open(dir.path(), config).unwrap();
    let p = store.create_topic("t", 1, TopicConfig::default()).unwrap().partition(0).unwrap();
    let first = p.append_with_producer(&records("a", 1), producer(1, 0, 0)).unwrap();
    clock.advance(59_999);
    assert_eq!(p.append_with_producer(&records("a", 1), producer(1, 0, 0)).unwrap(), first);
    assert_eq!(p.producer_count(), 1);
    clock.advance(60_000);
    let later = p.append_with_producer(&records("a", 1), producer(1, 0, 0)).unwrap();
    assert_eq!(later.base_offset, 1, "forgotten: written again");
    p.append_with_producer(&records("b", 1), producer(2, 0, 77)).unwrap();
    assert_eq!(p.log_end_offset(), 3);
}
