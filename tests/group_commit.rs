//! Group commit: concurrent appends to a `sync` partition get distinct offsets, are all readable,
//! and share fsyncs. Tailing: `wait_for_data` wakes when another thread appends.

mod common;

use std::collections::BTreeSet;
use std::sync::{Arc, Barrier};
use std::time::Duration;

use common::{store_with_faults, wait_until, Committers, ResumeSyncs, WAIT_MAX};
use kappalog::{Durability, NewRecord, Store, StoreConfig, TopicConfig};

const THREADS: u64 = 64;

#[test]
fn concurrent_appends_share_fsyncs() {
    let dir = tempfile::tempdir().unwrap();
    let (store, faults) = store_with_faults(dir.path());
    // One log write per append: no index entries after the first batch.
    let config = TopicConfig::default().durability(Durability::Sync).index_interval_bytes(u32::MAX);
    let p = store.create_topic("t", 1, config).unwrap().partition(0).unwrap();
    p.append(&[NewRecord::new("warm-up")]).unwrap();

    // Why the counts are deterministic: every committer thread holds a round of another topic in a
    // paused fsync, so every appender queues its batch and sleeps. Once all 64 are queued and the
    // fsyncs resume, a committer takes the whole queue: one write() and one fsync for 64 appends.
    faults.pause_syncs();
    let _resume = ResumeSyncs(Arc::clone(&faults));
    let held = Committers::occupy(&store, &faults);
    let (writes0, syncs0) = (faults.writes(), faults.syncs());
    let barrier = Arc::new(Barrier::new(THREADS as usize));
    let handles: Vec<_> = (0..THREADS)
        .map(|i| {
            let (p, barrier) = (p.clone(), Arc::clone(&barrier));
            std::thread::spawn(move || {
                barrier.wait();
                let a = p.append(&[NewRecord::new(format!("thread {i}"))]).unwrap();
                assert_eq!(a.base_offset, a.last_offset);
                (i, a.base_offset)
            })
        })
        .collect();
    wait_until("every batch queued", || p.queued_appends() as u64 == THREADS);
    assert_eq!((faults.writes(), faults.syncs()), (writes0, syncs0), "nothing written while queued");
    assert_eq!(p.high_watermark(), 1, "nothing is visible before its fsync");
    faults.resume_syncs();
    held.join();
    let results: Vec<(u64, u64)> = handles.into_iter().map(|h| h.join().unwrap()).collect();

    let offsets: BTreeSet<u64> = results.iter().map(|&(_, o)| o).collect();
    assert_eq!(offsets, (1..=THREADS).collect(), "every append got its own offset");
    assert_eq!(p.high_watermark(), THREADS + 1);
    for (i, o) in results {
        let r = p.read(o, 1, 1).unwrap();
        assert_eq!(r[0].value.as_deref(), Some(format!("thread {i}").as_bytes()));
    }
    assert_eq!(faults.writes(), writes0 + 1, "the 64 went out in one write()");
    assert_eq!(faults.syncs(), syncs0 + 1, "and one fsync");
    assert_eq!(p.queued_appends(), 0);
}

#[test]
fn concurrent_appends_without_pausing_stay_correct() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _faults) = store_with_faults(dir.path());
    let config = TopicConfig::default().durability(Durability::Sync).segment_bytes(4096);
    let p = store.create_topic("t", 1, config).unwrap().partition(0).unwrap();
    let per_thread = 20;
    let handles: Vec<_> = (0..THREADS)
        .map(|i| {
            let p = p.clone();
            std::thread::spawn(move || {
                (0..per_thread)
                    .map(|j| (format!("{i}/{j}"), p.append(&[NewRecord::new(format!("{i}/{j}"))]).unwrap().base_offset))
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let results: Vec<(String, u64)> = handles.into_iter().flat_map(|h| h.join().unwrap()).collect();
    let total = THREADS * per_thread;
    let offsets: BTreeSet<u64> = results.iter().map(|(_, o)| *o).collect();
    assert_eq!(offsets, (0..total).collect());
    assert_eq!(p.high_watermark(), total);
    let all = p.read(0, usize::MAX, usize::MAX).unwrap();
    for (v, o) in results {
        assert_eq!(all[o as usize].value.as_deref(), Some(v.as_bytes()));
    }
    assert!(p.stats().segments > 1, "appends raced with rolls");
}

/// Tasks (`append_async`) and threads (`append`) share one queue: while every committer thread
/// holds a paused fsync, every appender of both kinds queues; when they resume, one round commits
/// them all.
/// Every append gets its own offset and reads back; rolls happen in between.
#[test]
fn tasks_and_threads_share_group_commits() {
    let dir = tempfile::tempdir().unwrap();
    let (store, faults) = store_with_faults(dir.path());
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();

    // Round 1, deterministic: the committers are held in paused fsyncs. One `write()` per round and
    // no index entries or rolls, so the injector's count of writes is the count of rounds written.
    let config = TopicConfig::default().durability(Durability::Sync).index_interval_bytes(u32::MAX);
    let p = store.create_topic("t1", 1, config).unwrap().partition(0).unwrap();
    p.append(&[NewRecord::new("warm-up")]).unwrap();
    faults.pause_syncs();
    let resume = ResumeSyncs(Arc::clone(&faults));
    let held = Committers::occupy(&store, &faults);
    let (writes0, syncs0) = (faults.writes(), faults.syncs());
    let tasks: Vec<_> = (0..THREADS)
        .map(|i| {
            runtime.spawn({
                let p = p.clone();
                async move {
                    (format!("task {i}"), p.append_async(vec![NewRecord::new(format!("task {i}"))]).await.unwrap())
                }
            })
        })
        .collect();
    let threads: Vec<_> = (0..THREADS)
        .map(|i| {
            let p = p.clone();
            std::thread::spawn(move || {
                (format!("thread {i}"), p.append(&[NewRecord::new(format!("thread {i}"))]).unwrap())
            })
        })
        .collect();
    wait_until("every append queued", || p.queued_appends() as u64 == 2 * THREADS);
    assert_eq!(p.high_watermark(), 1, "nothing is visible before its fsync");
    assert_eq!(faults.writes(), writes0, "nothing written while queued");
    drop(resume);
    held.join();
    let mut results: Vec<(String, kappalog::Appended)> = threads.into_iter().map(|h| h.join().unwrap()).collect();
    for t in tasks {
        results.push(runtime.block_on(t).unwrap());
    }
    assert_eq!(faults.syncs() - syncs0, 1, "one fsync for {} appends", 2 * THREADS);
    assert_eq!(faults.writes() - writes0, 1, "in one write()");
    let round1 = results.len() as u64;
    assert_eq!(p.high_watermark(), 1 + round1);
    let all = p.read(0, usize::MAX, usize::MAX).unwrap();
    for (v, a) in &results {
        assert_eq!(all[a.base_offset as usize].value.as_deref(), Some(v.as_bytes()));
    }

    // Round 2, free-running, on a topic that rolls every few appends.
    let config = TopicConfig::default().durability(Durability::Sync).segment_bytes(4096);
    let p = store.create_topic("t2", 1, config).unwrap().partition(0).unwrap();
    let mut results = Vec::new();

    // Several appends per task and per thread, racing with rolls.
    let tasks: Vec<_> = (0..THREADS)
        .map(|i| {
            let p = p.clone();
            runtime.spawn(async move {
                let mut out = Vec::new();
                for j in 0..10 {
                    let v = format!("task {i}/{j}");
                    out.push((v.clone(), p.append_async(vec![NewRecord::new(v)]).await.unwrap()));
                }
                out
            })
        })
        .collect();
    let threads: Vec<_> = (0..THREADS / 4)
        .map(|i| {
            let p = p.clone();
            std::thread::spawn(move || {
                (0..10)
                    .map(|j| {
                        let v = format!("thread {i}/{j}");
                        (v.clone(), p.append(&[NewRecord::new(v)]).unwrap())
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    for h in threads {
        results.extend(h.join().unwrap());
    }
    for t in tasks {
        results.extend(runtime.block_on(t).unwrap());
    }

    let total = results.len() as u64;
    let offsets: BTreeSet<u64> = results.iter().map(|(_, a)| a.base_offset).collect();
    assert_eq!(offsets, (0..total).collect(), "every append got its own offset");
    assert_eq!(p.high_watermark(), total);
    assert_eq!(p.queued_appends(), 0);
    let all = p.read(0, usize::MAX, usize::MAX).unwrap();
    for (v, a) in results {
        assert_eq!(all[a.base_offset as usize].value.as_deref(), Some(v.as_bytes()));
    }
    assert!(p.stats().segments > 1, "appends raced with rolls");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tailing_reader_wakes_on_append() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
    for durability in [Durability::Sync, Durability::None] {
        let name = format!("t-{durability}").replace(':', "-");
        let p = store.create_topic(&name, 1, TopicConfig::default().durability(durability)).unwrap();
        let p = p.partition(0).unwrap();
        p.append_async(vec![NewRecord::new("first")]).await.unwrap();
        let hw = p.high_watermark();
        // Nothing to wait for yet: the wait is pending.
        assert!(tokio::time::timeout(Duration::ZERO, p.wait_for_data(hw)).await.is_err());
        let waiter = {
            let p = p.clone();
            tokio::spawn(async move {
                p.wait_for_data(hw).await;
                p.read(hw, usize::MAX, usize::MAX).unwrap()
            })
        };
        let writer = {
            let p = p.clone();
            std::thread::spawn(move || p.append(&[NewRecord::new("second")]).unwrap())
        };
        // The timeout is a safety net against a lost wake-up, not the mechanism.
        let got = tokio::time::timeout(WAIT_MAX, waiter).await.expect("the reader woke").unwrap();
        assert_eq!(writer.join().unwrap().base_offset, hw);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].value.as_deref(), Some(&b"second"[..]));
    }
}

/// Every fsync is timed into the process-wide histogram that `/metrics` exports.
#[test]
fn fsyncs_are_timed() {
    let before = kappalog::log::fsync_latency();
    let dir = tempfile::tempdir().unwrap();
    let store = kappalog::Store::open(dir.path(), kappalog::StoreConfig::default()).unwrap();
    let p = store.create_topic("t", 1, kappalog::TopicConfig::default()).unwrap().partition(0).unwrap();
    p.append(&[kappalog::NewRecord::new("a")]).unwrap();
    let after = kappalog::log::fsync_latency();
    assert!(after.count > before.count, "a sync append fsyncs");
    assert!(after.sum_seconds > before.sum_seconds);
    let inf_like = after.buckets.last().unwrap().1;
    assert!(inf_like <= after.count && after.buckets.windows(2).all(|w| w[0].1 <= w[1].1), "cumulative buckets");
}
