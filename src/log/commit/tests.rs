//! The commit queue's bound and the wait for answered appenders.

use super::*;
use crate::{Durability, NewRecord, Store, StoreConfig, TopicConfig};
use std::time::{Duration, Instant};

fn wait_until(what: &str, cond: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !cond() {
        assert!(Instant::now() < deadline, "gave up waiting for {what}");
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// A full queue makes appenders wait; it never holds more than its bound; every append
/// completes once the committer takes the queue.
#[test]
fn a_full_queue_makes_appenders_wait() {
    let dir = tempfile::tempdir().unwrap();
    let faults = FaultInjector::new();
    let store =
        Store::open(dir.path(), StoreConfig { faults: Some(faults.clone()), ..StoreConfig::default() }).unwrap();
    let config = TopicConfig { durability: Durability::Sync, ..TopicConfig::default() };
    let p = store.create_topic("t", 1, config).unwrap().partition(0).unwrap();
    // A committer of its own, one thread, with room for 3 batches.
    let limits =
        Limits { batches_max: 3, bytes_max: usize::MAX, gather_max: Duration::ZERO, gather_follows_sync: false };
    let committer = Committer::start_with_limits(Some(faults.clone()), 1, limits).unwrap();
    let handle = committer.handle();
    faults.pause_syncs();
    let syncs0 = faults.syncs();
    std::thread::scope(|s| {
        let appenders: Vec<_> = (0..8)
            .map(|i| {
                let (p, handle) = (p.clone(), handle.clone());
                s.spawn(move || {
                    let batch = p.prepare(&[NewRecord::new(format!("{i}"))]).unwrap();
                    handle.enqueue_blocking(&p, batch).unwrap().wait().unwrap()
                })
            })
            .collect();
        wait_until("a round in its fsync", || faults.syncs() == syncs0 + 1);
        wait_until("the queue full", || p.queued_appends() == 3);
        // One round in its fsync, 3 queued, the other appenders waiting for room (bounded, so
        // this does not depend on how long they are given).
        for _ in 0..50 {
            assert_eq!(p.queued_appends(), 3, "the bound holds");
            std::thread::yield_now();
        }
        assert!(p.log_end_offset() < 8, "not everything was written: some waited for room");
        faults.resume_syncs();
        let mut offsets: Vec<u64> = appenders.into_iter().map(|a| a.join().unwrap().base_offset).collect();
        offsets.sort_unstable();
        assert_eq!(offsets, (0..8).collect::<Vec<_>>());
    });
    committer.stop();
    assert!(matches!(handle.enqueue_blocking(&p, p.prepare(&[NewRecord::new("late")]).unwrap()), Err(Error::Closed)));
}

/// An appender answered by a round and appending again at once shares the next round with the
/// appends queued meanwhile, instead of making a round of its own after them.
#[test]
fn a_round_waits_for_the_appenders_the_last_one_answered() {
    let dir = tempfile::tempdir().unwrap();
    let faults = FaultInjector::new();
    let store =
        Store::open(dir.path(), StoreConfig { faults: Some(faults.clone()), ..StoreConfig::default() }).unwrap();
    let config = TopicConfig { durability: Durability::Sync, index_interval_bytes: u32::MAX, ..TopicConfig::default() };
    let p = store.create_topic("t", 1, config).unwrap().partition(0).unwrap();
    // A committer of its own that waits as long as it takes (the production wait is bounded by
    // time, which a test cannot rely on).
    let limits = Limits {
        batches_max: COMMIT_QUEUE_BATCHES_MAX,
        bytes_max: usize::MAX,
        gather_max: Duration::from_secs(60),
        gather_follows_sync: false,
    };
    let committer = Committer::start_with_limits(Some(faults.clone()), 1, limits).unwrap();
    let handle = committer.handle();
    let append = |p: &Partition, value: &str| {
        handle.enqueue_blocking(p, p.prepare(&[NewRecord::new(value.to_string())]).unwrap()).unwrap().wait().unwrap()
    };
    faults.pause_syncs();
    let syncs0 = faults.syncs();
    let go = AtomicBool::new(false);
    std::thread::scope(|s| {
        let a = s.spawn(|| {
            let a1 = append(&p, "a1");
            // A's next append comes once the committer is seen waiting for it.
            wait_until("the go", || go.load(Ordering::Acquire));
            (a1, append(&p, "a2"))
        });
        wait_until("a1's round in its fsync", || faults.syncs() == syncs0 + 1);
        let b = s.spawn(|| append(&p, "b1"));
        wait_until("b1 queued", || p.queued_appends() == 1);
        faults.resume_syncs();
        wait_until("the next round waiting for a's append", || handle.shared.state.lock().gathering);
        go.store(true, Ordering::Release);
        let ((a1, a2), b1) = (a.join().unwrap(), b.join().unwrap());
        assert_eq!(a1.base_offset, 0);
        let mut second: Vec<u64> = vec![a2.base_offset, b1.base_offset];
        second.sort_unstable();
        assert_eq!(second, [1, 2]);
    });
    assert_eq!(faults.syncs(), syncs0 + 2, "a2 and b1 shared the second round's fsync");
    committer.stop();
}

/// A wait in which no answered appender came back turns the waits off for the next 1, 2, 4, ...
/// 64 rounds; one in which some came back turns them on again.
#[test]
fn waits_nobody_comes_back_to_back_off() {
    let committer = Committer::start(None, 1).unwrap();
    let shared = &committer.handle.shared;
    let mut gather = Gather { last_sync: Duration::from_micros(200), backoff: 0, skip: 0 };
    assert_eq!(gather.wait(shared), Duration::from_micros(200), "bounded by the last fsync");
    gather.last_sync = Duration::from_secs(1);
    assert_eq!(gather.wait(shared), COMMIT_GATHER_WAIT_MAX, "and by the maximum");
    let mut skipped = Vec::new();
    for _ in 0..9 {
        gather.waited(false);
        let mut n = 0;
        while gather.wait(shared).is_zero() {
            n += 1;
        }
        skipped.push(n);
    }
    assert_eq!(skipped, [1, 2, 4, 8, 16, 32, 64, 64, 64]);
    gather.waited(true);
    assert!(!gather.wait(shared).is_zero(), "appenders came back: the next round waits");
}
