//! Group commit for threads when its threads cannot start (the system is out of threads or memory):
//! without a committer thread the appending thread that led a group keeps leading; without a waker
//! thread the committer wakes each group's appenders itself. Either way every append completes
//! with its own offset and the queued appends share one fsync. (Linux: threads are found by name
//! in /proc.)
#![cfg(target_os = "linux")]

mod common;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;

use common::{store_with_faults, threads_named, wait_until, ResumeSyncs};
use kappalog::{fault::FaultInjector, Appended, Durability, NewRecord, Partition, Store, TopicConfig};
use tempfile::TempDir;

const QUEUED: usize = 8;

/// The tests count this process's threads by name: they must not run side by side.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// A `sync` partition of a store whose group commit cannot start the thread named `thread`. Its
/// fields drop in order: held fsyncs resume first, the test lock goes last.
struct Fixture {
    _resume: ResumeSyncs,
    p: Partition,
    faults: Arc<FaultInjector>,
    _store: Store,
    _dir: TempDir,
    _one: MutexGuard<'static, ()>,
}

impl Fixture {
    fn without_thread(thread: &str) -> Fixture {
        let one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
        let dir = tempfile::tempdir().unwrap();
        let (store, faults) = store_with_faults(dir.path());
        faults.fail_thread_spawns(thread);
        let config = TopicConfig::default().durability(Durability::Sync);
        let p = store.create_topic("t", 1, config).unwrap().partition(0).unwrap();
        Fixture { _resume: ResumeSyncs(Arc::clone(&faults)), p, faults, _store: store, _dir: dir, _one: one }
    }
}

/// One append on a thread of its own.
fn append_on_thread(p: &Partition, value: String) -> JoinHandle<(String, Appended)> {
    let p = p.clone();
    std::thread::spawn(move || {
        let a = p.append(&[NewRecord::new(value.clone())]).unwrap();
        (value, a)
    })
}

/// The appenders of [`contend`], and the fsync count before the first.
struct Contended {
    first: JoinHandle<(String, Appended)>,
    queued: Vec<JoinHandle<(String, Appended)>>,
    syncs0: u64,
}

/// A contended start: one append leads with its fsync held while `QUEUED` more queue behind it.
/// Then the first fsync is released and the second one (the queued appends' group) held.
fn contend(p: &Partition, faults: &FaultInjector) -> Contended {
    faults.pause_syncs();
    let syncs0 = faults.syncs();
    let first = append_on_thread(p, "first".into());
    wait_until("the first group's fsync in flight", || faults.syncs() == syncs0 + 1);
    let queued = (0..QUEUED).map(|i| append_on_thread(p, format!("queued {i}"))).collect();
    wait_until("every other append queued", || p.queued_appends() == QUEUED);
    faults.pause_syncs_after(1);
    wait_until("the second group's fsync in flight", || faults.syncs() == syncs0 + 2);
    assert_eq!(p.queued_appends(), 0, "the second group took every queued append");
    Contended { first, queued, syncs0 }
}

/// Every queued append completed with its own offset after the first, and reads back.
fn check_queued(p: &Partition, queued: Vec<JoinHandle<(String, Appended)>>, first_offset: u64) {
    wait_until("every queued append acknowledged", || queued.iter().all(|h| h.is_finished()));
    let offsets: BTreeSet<u64> = queued
        .into_iter()
        .map(|h| {
            let (value, a) = h.join().unwrap();
            assert_eq!(p.read(a.base_offset, 1, 1).unwrap()[0].value.as_deref(), Some(value.as_bytes()));
            a.base_offset
        })
        .collect();
    assert_eq!(offsets, (first_offset + 1..=first_offset + QUEUED as u64).collect(), "one offset each");
}

#[test]
fn without_a_committer_thread_the_appending_thread_keeps_leading() {
    let f = Fixture::without_thread("kappalog-commit");
    let (p, faults) = (&f.p, &f.faults);
    let Contended { first, queued, syncs0 } = contend(p, faults);
    // No committer: the first appender leads the second group and is in its fsync.
    assert!(!first.is_finished(), "the first appender leads the queued appends' group");
    assert!(queued.iter().all(|h| !h.is_finished()), "no queued append is acknowledged before its fsync");
    assert_eq!(threads_named("kappalog-commit"), 0);
    assert_eq!(p.high_watermark(), 1, "the first append is durable");

    faults.resume_syncs();
    wait_until("the first appender back", || first.is_finished());
    let (_, a) = first.join().unwrap();
    assert_eq!(a.base_offset, 0);
    check_queued(p, queued, 0);
    assert_eq!(faults.syncs(), syncs0 + 2, "the queued appends shared one fsync");
    assert_eq!(p.high_watermark(), 1 + QUEUED as u64);
    assert_eq!(threads_named("kappalog-commit") + threads_named("kappalog-wake"), 0);
}

#[test]
fn without_a_waker_thread_the_committer_wakes_its_groups() {
    let f = Fixture::without_thread("kappalog-wake");
    let (p, faults) = (&f.p, &f.faults);
    let Contended { first, queued, syncs0 } = contend(p, faults);
    // A committer leads the second group: the first appender is back, with no waker started.
    let (_, a) = first.join().unwrap();
    assert_eq!(a.base_offset, 0);
    assert!(queued.iter().all(|h| !h.is_finished()), "no queued append is acknowledged before its fsync");
    // A new thread carries its creator's name until it has set its own: wait for the name.
    wait_until("a committer thread", || threads_named("kappalog-commit") == 1);
    assert_eq!(threads_named("kappalog-wake"), 0);

    faults.resume_syncs();
    check_queued(p, queued, 0);
    assert_eq!(faults.syncs(), syncs0 + 2, "the queued appends shared one fsync");
    wait_until("the committer exits", || threads_named("kappalog-commit") == 0);
    assert_eq!(p.append(&[NewRecord::new("after")]).unwrap().base_offset, 1 + QUEUED as u64);
}
