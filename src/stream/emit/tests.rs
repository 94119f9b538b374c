use std::sync::Arc;

use super::*;
use crate::clock::ManualClock;
use crate::{StoreConfig, TopicConfig};

/// How long the test stores remember a producer.
const EXPIRY_MS: u64 = 60_000;

fn open(dir: &std::path::Path, clock: &Arc<ManualClock>) -> Store {
    let clock: Arc<dyn crate::clock::Clock> = clock.clone();
    Store::open(dir, StoreConfig::default().clock(clock).producer_id_expiration_ms(EXPIRY_MS)).unwrap()
}

struct Rng(u64);

impl Rng {
    fn from_env(test: &str) -> Rng {
        let seed = std::env::var("SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64 | 1
        });
        eprintln!("{test}: SEED={seed}");
        Rng(seed)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// What the topic holds of view `v` version 3: each record's emit sequence (sorted), after checking
/// that every record is on the partition `Topic::append` would put it and that the batches of each
/// partition carry the producer's sequences back to back from 0.
fn emitted(topic: &Topic) -> Vec<u64> {
    let mut out = Vec::new();
    for p in topic.partitions().iter() {
        let mut next_sequence = BTreeMap::<i64, i32>::new();
        let mut offset = p.log_start_offset();
        while offset < p.high_watermark() {
            for b in p.read_batches(offset, 1 << 20, 10_000).unwrap() {
                let f = b.producer();
                let mut records = Vec::new();
                offset = b.for_each(|r| records.push(b.to_record(r))).unwrap();
                if records[0].key.as_deref() == Some(&b"other"[..]) {
                    continue;
                }
                if f.is_some() {
                    let expected = next_sequence.entry(f.producer_id).or_insert(f.base_sequence);
                    assert_eq!(f.base_sequence, *expected, "partition {}: a gap or a repeat in the sequences", p.id());
                    *expected = f.last_sequence((b.last_offset() - b.base_offset()) as u32) + 1;
                }
                for r in records {
                    assert_eq!(p.id(), partition_for_key(r.key.as_deref().unwrap(), 3), "where append would put it");
                    out.push(sequence_of(&r.headers, "v", 3).expect("a record of view v version 3"));
                }
            }
        }
    }
    out.sort_unstable();
    out
}

fn records(from: u64, n: u64) -> Vec<NewRecord> {
    (from..from + n).map(|i| NewRecord::keyed(format!("k{}", i % 37), format!("{i}"))).collect()
}

/// A crash part way through publishing: what reached the topic is known from the log's producer
/// state and not appended again; the rest is. Also after the store was reopened.
#[test]
fn a_restart_appends_only_what_had_not_reached_the_topic() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(1_000_000);
    let store = open(dir.path(), &clock);
    let topic = store.create_topic("out", 3, TopicConfig::default()).unwrap();
    topic.append(&[NewRecord::keyed("other", "a record of another writer")]).unwrap();
    let mut log = EmitLog::default();
    resume(&store, &topic, "v", 3, &mut log).unwrap();
    let producer = log.producer.expect("a producer id once the runner started");
    log.stage(&topic, records(0, 30)).unwrap();
    assert_eq!(log.next_sequence, 30);
    // The checkpoint holds `log`; the crash came after the first round of batches of two records.
    let checkpoint = log.clone();
    publish_in_batches(&topic, "v", 3, log.take(), 2, 1).unwrap();
    let mut resumed = checkpoint.clone();
    resume(&store, &topic, "v", 3, &mut resumed).unwrap();
    assert_eq!(resumed.producer, Some(producer), "the same producer goes on");
    assert_eq!(resumed.pending.len(), 30 - 6, "three partitions had a batch of two appended");
    publish(&topic, "v", 3, resumed.take()).unwrap();
    assert_eq!(emitted(&topic), (0..30).collect::<Vec<_>>());
    // A second crash before the next checkpoint, and the store reopened: all thirty are found.
    drop((topic, store));
    let store = open(dir.path(), &clock);
    let topic = store.topic("out").unwrap();
    let mut again = checkpoint;
    resume(&store, &topic, "v", 3, &mut again).unwrap();
    assert!(again.pending.is_empty());
    assert_eq!(again.producer, Some(producer));
}

/// A checkpoint older than what its emit topic holds (it was lost and an earlier one restored),
/// with nothing pending: the topic remembers the producer past the checkpoint's sequences, so the
/// version goes on with a new producer id, and its next records are accepted, not refused as out
/// of order.
#[test]
fn a_checkpoint_behind_the_topic_goes_on_with_a_new_producer() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(1_000_000);
    let store = open(dir.path(), &clock);
    let topic = store.create_topic("out", 1, TopicConfig::default()).unwrap();
    let mut log = EmitLog::default();
    resume(&store, &topic, "v", 3, &mut log).unwrap();
    let producer = log.producer.expect("a producer id once the runner started");
    // The first restored checkpoint: nothing staged yet.
    let mut before_any = log.clone();
    log.stage(&topic, records(0, 4)).unwrap();
    publish(&topic, "v", 3, log.take()).unwrap();
    resume(&store, &topic, "v", 3, &mut before_any).unwrap();
    assert_ne!(before_any.producer, Some(producer), "a checkpoint from before any emit: a new producer id");
    // The second one: published through sequence 3, nothing pending.
    let mut restored = log.clone();
    log.stage(&topic, records(4, 5)).unwrap();
    publish(&topic, "v", 3, log.take()).unwrap();
    resume(&store, &topic, "v", 3, &mut restored).unwrap();
    assert_ne!(restored.producer, Some(producer), "a new producer id");
    restored.stage(&topic, records(4, 3)).unwrap();
    assert_eq!(publish(&topic, "v", 3, restored.take()).unwrap(), 3, "accepted, not out of order");
    // Up to date with the topic, the same producer goes on.
    let mut current = log.clone();
    resume(&store, &topic, "v", 3, &mut current).unwrap();
    assert_eq!(current.producer, Some(producer));
}

/// A checkpoint of an earlier build (staged records, no producer): those that reached the topic
/// are found by their headers, and the version takes a producer id for the rest.
#[test]
fn a_checkpoint_without_a_producer_is_resumed_by_the_headers() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(1_000_000);
    let store = open(dir.path(), &clock);
    let topic = store.create_topic("out", 3, TopicConfig::default()).unwrap();
    let mut log = EmitLog::default();
    log.stage(&topic, records(0, 10)).unwrap();
    let mut checkpoint = log.clone();
    checkpoint.partition_sequences.clear();
    let staged = log.take();
    let first_four = Staged { producer: None, records: staged.records[..4].to_vec() };
    publish(&topic, "v", 3, first_four).unwrap();
    resume(&store, &topic, "v", 3, &mut checkpoint).unwrap();
    assert!(checkpoint.producer.is_some());
    assert_eq!(checkpoint.pending.iter().map(|p| p.sequence).collect::<Vec<_>>(), (4..10).collect::<Vec<_>>());
    publish(&topic, "v", 3, checkpoint.take()).unwrap();
    assert_eq!(emitted(&topic), (0..10).collect::<Vec<_>>());
}

/// Random crash points over several checkpoints: batches small enough that a publish is often more
/// than the five batches a partition's producer state keeps, the store sometimes reopened (the
/// producer state rebuilt from the log) and the clock sometimes moved past the producer expiry
/// before the resume (the partitions then do not remember the producer, and the emitter reads the
/// batch headers instead). Each record is in the topic exactly once at the end.
#[test]
fn resends_after_crashes_and_producer_expiry_are_not_duplicated() {
    let mut rng = Rng::from_env("resends_after_crashes_and_producer_expiry_are_not_duplicated");
    for trial in 0..12 {
        let dir = tempfile::tempdir().unwrap();
        let clock = ManualClock::new(1_000_000);
        let mut store = open(dir.path(), &clock);
        let mut topic = store.create_topic("out", 3, TopicConfig::default()).unwrap();
        topic.append(&[NewRecord::keyed("other", "a record of another writer")]).unwrap();
        let mut log = EmitLog::default();
        resume(&store, &topic, "v", 3, &mut log).unwrap();
        let mut expired_resumes = 0;
        for round in 0..4 {
            let n = 1 + rng.below(200);
            log.stage(&topic, records(log.next_sequence, n)).unwrap();
            let checkpoint = log.clone();
            let batch_records = 1 + rng.below(20) as usize;
            let rounds = rng.below(12) as usize;
            publish_in_batches(&topic, "v", 3, log.take(), batch_records, rounds).unwrap();
            // The crash: the checkpoint is what survives.
            log = checkpoint;
            if rng.below(2) == 0 {
                drop((topic, store));
                store = open(dir.path(), &clock);
                topic = store.topic("out").unwrap();
            }
            let expire = rng.below(2) == 0;
            if expire {
                clock.advance(EXPIRY_MS as i64 + 1);
                let id = log.producer.unwrap().id;
                for p in topic.partitions().iter() {
                    assert_eq!(p.producer_last_sequence(id), None, "trial {trial} round {round}: expired");
                }
                expired_resumes += 1;
            }
            let producer = log.producer;
            resume(&store, &topic, "v", 3, &mut log).unwrap();
            assert_eq!(log.producer, producer, "trial {trial} round {round}: the same producer goes on");
            publish(&topic, "v", 3, log.take()).unwrap();
            assert_eq!(
                emitted(&topic),
                (0..log.next_sequence).collect::<Vec<_>>(),
                "trial {trial} round {round}: {n} staged, batches of {batch_records}, {rounds} rounds \
                 before the crash, expired: {expire}"
            );
            clock.advance(1 + rng.below(1000) as i64);
        }
        eprintln!("trial {trial}: {expired_resumes} of 4 resumes after the producer expired");
    }
}

#[test]
fn written_count_wraps_with_the_sequences() {
    assert_eq!(written_count(5, 10, 4), Some(0));
    assert_eq!(written_count(5, 10, 14), Some(10));
    assert_eq!(written_count(5, 10, 15), None);
    assert_eq!(written_count(5, 10, 3), None);
    assert_eq!(written_count(i32::MAX - 1, 4, 1), Some(4));
    assert_eq!(written_count(0, 4, i32::MAX), Some(0));
}
