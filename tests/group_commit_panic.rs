//! A panic in the group commit poisons the partition whose batches it was writing and fails their
//! appenders (threads and tasks) with `Error::Poisoned`, within a bounded wait: nobody parks
//! forever. Later appends there fail with `Poisoned` until the store is reopened; other
//! partitions go on committing; acknowledged records survive the reopen.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{store_with_faults, wait_until, ResumeSyncs, WAIT_MAX};
use kappalog::{Durability, Error, NewRecord, Store, StoreConfig, TopicConfig};

const THREADS: usize = 8;
const TASKS: usize = 8;

#[test]
fn a_panic_in_the_group_commit_fails_its_appenders_and_poisons_the_partition() {
    let dir = tempfile::tempdir().unwrap();
    // Two committers: the round after the held fsync is written while it is held.
    let faults = kappalog::fault::FaultInjector::new();
    let config = StoreConfig::default().faults(Some(Arc::clone(&faults))).commit_threads(2);
    let store = Store::open(dir.path(), config).unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let config = TopicConfig::default().durability(Durability::Sync);
    let p = store.create_topic("t", 1, config.clone()).unwrap().partition(0).unwrap();
    let other = store.create_topic("u", 1, config).unwrap().partition(0).unwrap();
    p.append(&[NewRecord::new("before")]).unwrap();

    // A round holds its fsync; the next one to write this partition panics.
    faults.pause_syncs();
    let resume = ResumeSyncs(Arc::clone(&faults));
    let syncs0 = faults.syncs();
    let first = {
        let p = p.clone();
        std::thread::spawn(move || p.append(&[NewRecord::new("first")]))
    };
    wait_until("the first round's fsync in flight", || faults.syncs() == syncs0 + 1);
    faults.panic_in_commit_after(1);
    let threads: Vec<_> = (0..THREADS)
        .map(|i| {
            let p = p.clone();
            std::thread::spawn(move || p.append(&[NewRecord::new(format!("thread {i}"))]))
        })
        .collect();
    let tasks: Vec<_> = (0..TASKS)
        .map(|i| {
            let p = p.clone();
            runtime.spawn(async move { p.append_async(vec![NewRecord::new(format!("task {i}"))]).await })
        })
        .collect();
    // Answered while the first round's fsync is still held: a failure waits for no fsync.
    wait_until("every queued thread answered", || threads.iter().all(|t| t.is_finished()));
    for t in threads {
        let got = t.join().unwrap();
        assert!(matches!(got, Err(Error::Poisoned { ref topic, partition: 0 }) if topic == "t"), "{got:?}");
    }
    for t in tasks {
        let got = runtime.block_on(async { tokio::time::timeout(WAIT_MAX, t).await }).expect("answered").unwrap();
        assert!(matches!(got, Err(Error::Poisoned { .. })), "{got:?}");
    }
    drop(resume);
    assert_eq!(first.join().unwrap().unwrap().base_offset, 1, "the round before the panic is durable: acknowledged");
    assert!(p.is_poisoned());
    assert_eq!(p.high_watermark(), 2, "nothing of the panicked round is visible");
    assert!(matches!(p.append(&[NewRecord::new("later")]), Err(Error::Poisoned { .. })));
    let later = runtime.block_on(async {
        tokio::time::timeout(Duration::from_secs(60), p.append_async(vec![NewRecord::new("later")])).await
    });
    assert!(matches!(later, Ok(Err(Error::Poisoned { .. }))), "{later:?}");
    // The committer survived: another partition still commits, alone and concurrently.
    assert_eq!(other.append(&[NewRecord::new("fine")]).unwrap().base_offset, 0);
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| other.append(&[NewRecord::new("fine")]).unwrap());
        }
    });
    assert_eq!(other.high_watermark(), 5);

    drop((p, other, store));
    let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
    let p = store.topic("t").unwrap().partition(0).unwrap();
    let values: Vec<_> = p.read(0, usize::MAX, usize::MAX).unwrap().into_iter().map(|r| r.value).collect();
    assert_eq!(values.len(), 2, "the acknowledged records, and only those: {values:?}");
    assert_eq!(values[1].as_deref(), Some(&b"first"[..]));
    assert_eq!(p.append(&[NewRecord::new("after reopen")]).unwrap().base_offset, 2, "a reopen clears the poison");
}

/// Topic appends, blocking and async (the broker's produce), go through the same group commit: a
/// panic there fails them too.
#[test]
fn topic_appends_go_through_the_group_commit() {
    let dir = tempfile::tempdir().unwrap();
    let (store, faults) = store_with_faults(dir.path());
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let config = TopicConfig::default().durability(Durability::Sync);
    let topic = store.create_topic("t", 2, config).unwrap();
    faults.panic_in_commit_after(1);
    let got = topic.append(&[NewRecord::new("a").with_partition(0)]);
    assert!(matches!(got, Err(Error::Poisoned { partition: 0, .. })), "{got:?}");
    faults.panic_in_commit_after(1);
    let got = runtime.block_on(topic.append_async(vec![NewRecord::new("b").with_partition(1)]));
    assert!(matches!(got, Err(Error::Poisoned { partition: 1, .. })), "{got:?}");
    assert!(topic.partitions().iter().all(|p| p.is_poisoned() && p.high_watermark() == 0));
}
