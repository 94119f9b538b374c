//! Group commit of `sync` appends: the store's committer threads write and fsync for everyone.
//!
//! Every `sync` append (a thread's [`Partition::append`](super::Partition::append), a task's
//! [`Partition::append_async`](super::Partition::append_async), a topic's appends and the broker's
//! produce requests) validates and encodes its batch on the caller's thread or task, then queues it
//! on the store's [`Committer`] and waits: a thread parks, a task awaits a oneshot channel. A
//! committer thread repeats one **round**: it takes everything queued, writes each partition's
//! batches with one `write()`, fsyncs every partition it wrote once, and hands each appender its
//! result. Appends that queue while a round runs go together into a later one, so concurrent
//! appenders share fsyncs, also across partitions and topics, and no caller ever leads: a tokio
//! worker never blocks on a write or an fsync.
//!
//! The [`COMMIT_THREADS`] threads take turns at taking and writing a round (one at a time, so that
//! batches are written in the order they queued) and fsync it after their turn: while one round's
//! fsync runs, the next round is written and fsynced. Rounds on different partitions' files
//! overlap their fsyncs; on one file, `Partition::sync_through` has them take turns (the later
//! one's fsync covers what both wrote when it can).
//!
//! The queue is bounded ([`COMMIT_QUEUE_BATCHES_MAX`], [`COMMIT_QUEUE_BYTES_MAX`]): when it is full,
//! appenders wait for room (a thread on a condition variable, a task on a notification) until the
//! committer takes the queue.
//!
//! A round is panic-safe: a panic while writing or fsyncing a partition's batches (or a failed
//! write or fsync) poisons that partition and fails its appenders with the error; the round goes
//! on for the other partitions. An appender whose batch is dropped without a result (the committer
//! thread died) gets `Error::Poisoned` too, and its partition is poisoned: nobody waits forever.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::{JoinHandle, Thread};

use parking_lot::{Condvar, Mutex};

use super::partition::{Appended, Partition, PreparedBatch};
use crate::error::{Error, Result};
use crate::fault::FaultInjector;

/// At most this many batches wait in a store's commit queue; more appenders wait for room.
pub const COMMIT_QUEUE_BATCHES_MAX: usize = 4096;

/// At most this many bytes of encoded batches wait in a store's commit queue (a batch is always
/// let into an empty queue, whatever its size, up to `BATCH_BYTES_MAX`).
pub const COMMIT_QUEUE_BYTES_MAX: usize = 64 * 1024 * 1024;

/// Committer threads per store. With more than one, while one fsyncs its round the next writes and
/// fsyncs the next (rounds on other partitions' files overlap their fsyncs; on one file they take
/// turns). One gives fewer, larger rounds: best for many small appends (single-record produce, the
/// log benchmark's group commit); more help large appends spread over partitions
/// (benches/README.md).
pub const COMMIT_THREADS: usize = 1;
/// The most committer threads a store may ask for (`StoreConfig::commit_threads`).
pub const COMMIT_THREADS_MAX: usize = 16;

const _: () = assert!(COMMIT_QUEUE_BYTES_MAX >= crate::config::BATCH_BYTES_MAX as usize);

/// The store's group committer: owns the committer threads; stopping it (or dropping it) lets the
/// threads finish what is queued and exit.
#[derive(Debug)]
pub(crate) struct Committer {
    handle: CommitHandle,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

/// What partitions and topics hold of the committer: a way to queue batches. Cheap to clone.
#[derive(Clone, Debug)]
pub(crate) struct CommitHandle {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    state: Mutex<State>,
    /// The committer waits here for batches.
    work: Condvar,
    /// Held by the committer thread whose turn it is to take and write a round.
    writing: Mutex<()>,
    /// Threads wait here for room in the queue.
    room: Condvar,
    /// Tasks wait here for room in the queue.
    room_async: tokio::sync::Notify,
    /// Rounds taken so far.
    rounds: AtomicU64,
    batches_max: usize,
    bytes_max: usize,
    faults: Option<Arc<FaultInjector>>,
}

#[derive(Debug, Default)]
struct State {
    queued: Vec<Queued>,
    bytes: usize,
    /// Committer threads running.
    threads: usize,
    /// The store is closing: the committer finishes the queue and exits; nothing more is queued.
    stopping: bool,
}

#[derive(Debug)]
struct Queued {
    batch: PreparedBatch,
    waiter: Waiter,
}

/// How a queued appender gets its result. Dropped without one, it fails the appender with
/// `Error::Poisoned` and poisons its partition.
#[derive(Debug)]
struct Waiter {
    partition: Partition,
    to: Option<Notify>,
}

#[derive(Debug)]
enum Notify {
    Thread(Arc<ThreadWaiter>),
    Task(tokio::sync::oneshot::Sender<Result<Appended>>),
}

impl Waiter {
    fn finish(mut self, result: Result<Appended>) {
        match self.to.take() {
            Some(Notify::Thread(t)) => t.finish(result),
            // The task may have been dropped (its caller gave up): the append stands regardless.
            Some(Notify::Task(tx)) => drop(tx.send(result)),
            None => {}
        }
    }
}

impl Drop for Waiter {
    fn drop(&mut self) {
        if self.to.is_some() {
            self.partition.poison(&"a queued append was dropped by the group commit");
            let poisoned = self.partition.poisoned_error();
            Waiter { partition: self.partition.clone(), to: self.to.take() }.finish(Err(poisoned));
        }
    }
}

/// A thread waiting for its result.
#[derive(Debug)]
struct ThreadWaiter {
    thread: Thread,
    result: Mutex<Option<Result<Appended>>>,
    done: AtomicBool,
}

impl ThreadWaiter {
    fn wait(&self) -> Result<Appended> {
        // `park` returns at once if `unpark` came first; it may also return spuriously: hence the loop.
        while !self.done.load(Ordering::Acquire) {
            std::thread::park();
        }
        self.result.lock().take().expect("a finished append has a result")
    }

    fn finish(&self, result: Result<Appended>) {
        *self.result.lock() = Some(result);
        self.done.store(true, Ordering::Release);
        self.thread.unpark();
    }
}

/// A queued append a thread waits for.
pub(crate) struct Pending(Arc<ThreadWaiter>);

impl Pending {
    /// Blocks until the append is durable (or failed).
    pub fn wait(self) -> Result<Appended> {
        self.0.wait()
    }
}

/// A queued append a task awaits.
pub(crate) struct PendingAsync(tokio::sync::oneshot::Receiver<Result<Appended>>);

impl PendingAsync {
    pub async fn wait(self) -> Result<Appended> {
        // The sender goes only with a result, even when the committer dies (see `Waiter`'s drop).
        self.0.await.unwrap_or(Err(Error::Closed))
    }
}

impl Committer {
    /// Starts the `threads` committer threads of a store (clamped to 1..=[`COMMIT_THREADS_MAX`]).
    pub fn start(faults: Option<Arc<FaultInjector>>, threads: usize) -> Result<Committer> {
        let threads = threads.clamp(1, COMMIT_THREADS_MAX);
        Self::start_with_limits(faults, threads, COMMIT_QUEUE_BATCHES_MAX, COMMIT_QUEUE_BYTES_MAX)
    }

    fn start_with_limits(
        faults: Option<Arc<FaultInjector>>,
        threads: usize,
        batches_max: usize,
        bytes_max: usize,
    ) -> Result<Committer> {
        let shared = Arc::new(Shared {
            state: Mutex::default(),
            work: Condvar::new(),
            writing: Mutex::new(()),
            room: Condvar::new(),
            room_async: tokio::sync::Notify::new(),
            rounds: AtomicU64::new(0),
            batches_max,
            bytes_max,
            faults,
        });
        let committer = Committer { handle: CommitHandle { shared }, threads: Mutex::new(Vec::new()) };
        committer.handle.shared.state.lock().threads = threads;
        for _ in 0..threads {
            let run = Arc::clone(&committer.handle.shared);
            let thread = std::thread::Builder::new()
                .name("kappalog-commit".into())
                .spawn(move || run.run())
                .map_err(|e| Error::io("kappalog-commit", e))?;
            committer.threads.lock().push(thread);
        }
        Ok(committer)
    }

    pub fn handle(&self) -> CommitHandle {
        self.handle.clone()
    }

    /// Commits what is queued, refuses later appends (`Error::Closed`) and waits for the thread.
    pub fn stop(&self) {
        let shared = &self.handle.shared;
        shared.state.lock().stopping = true;
        shared.work.notify_all();
        shared.room.notify_all();
        shared.room_async.notify_waiters();
        for thread in std::mem::take(&mut *self.threads.lock()) {
            // A panic there already failed its appenders (see `Waiter`'s drop).
            let _ = thread.join();
        }
    }
}

impl Drop for Committer {
    fn drop(&mut self) {
        self.stop();
    }
}

impl CommitHandle {
    /// Rounds the committer has taken so far: appends queued while this number stays the same go
    /// into the same round (see `Topic`'s sticky partition).
    pub fn rounds(&self) -> u64 {
        self.shared.rounds.load(Ordering::Acquire)
    }

    /// Queues `batch` for `partition`, waiting for room while the queue is full.
    pub fn enqueue_blocking(&self, partition: &Partition, batch: PreparedBatch) -> Result<Pending> {
        let waiter = Arc::new(ThreadWaiter {
            thread: std::thread::current(),
            result: Mutex::new(None),
            done: AtomicBool::new(false),
        });
        let mut st = self.shared.state.lock();
        loop {
            if st.stopping {
                return Err(Error::Closed);
            }
            if self.shared.has_room(&st, batch.len()) {
                break;
            }
            self.shared.room.wait(&mut st);
        }
        let to = Some(Notify::Thread(Arc::clone(&waiter)));
        self.shared.push(&mut st, partition, batch, to);
        Ok(Pending(waiter))
    }

    /// Queues `batch` for `partition`, awaiting room while the queue is full.
    pub async fn enqueue(&self, partition: &Partition, batch: PreparedBatch) -> Result<PendingAsync> {
        loop {
            let room = self.shared.room_async.notified();
            tokio::pin!(room);
            // Registered before the check: a notification between the check and the await is kept.
            room.as_mut().enable();
            {
                let mut st = self.shared.state.lock();
                if st.stopping {
                    return Err(Error::Closed);
                }
                if self.shared.has_room(&st, batch.len()) {
                    let (tx, rx) = tokio::sync::oneshot::channel();
                    self.shared.push(&mut st, partition, batch, Some(Notify::Task(tx)));
                    return Ok(PendingAsync(rx));
                }
            }
            room.await;
        }
    }
}

impl Shared {
    fn has_room(&self, st: &State, bytes: usize) -> bool {
        st.queued.is_empty() || (st.queued.len() < self.batches_max && st.bytes + bytes <= self.bytes_max)
    }

    fn push(&self, st: &mut State, partition: &Partition, batch: PreparedBatch, to: Option<Notify>) {
        st.bytes += batch.len();
        partition.queued_changed(1);
        st.queued.push(Queued { batch, waiter: Waiter { partition: partition.clone(), to } });
        if st.queued.len() == 1 {
            self.work.notify_one();
        }
    }

    /// A committer thread: rounds until the store stops and the queue is empty. The threads take
    /// turns at writing (one at a time, so that batches are written in the order they queued);
    /// each fsyncs its round after giving up the turn, so that the next round is written, and
    /// fsynced, while this one's fsync runs.
    fn run(&self) {
        let _exit = ExitGuard(self);
        loop {
            let written = {
                let _turn = self.writing.lock();
                let Some(round) = self.take() else { return };
                self.write(round)
            };
            self.sync(written);
        }
    }

    /// Waits for batches and takes every one queued; `None` once the store stops with none left.
    fn take(&self) -> Option<Vec<Queued>> {
        let round = {
            let mut st = self.state.lock();
            while st.queued.is_empty() && !st.stopping {
                self.work.wait(&mut st);
            }
            if st.queued.is_empty() {
                return None;
            }
            self.rounds.fetch_add(1, Ordering::AcqRel);
            st.bytes = 0;
            std::mem::take(&mut st.queued)
        };
        self.room.notify_all();
        self.room_async.notify_waiters();
        Some(round)
    }

    /// Writes each partition's batches of a round (one `write()` per partition).
    fn write(&self, round: Vec<Queued>) -> Vec<Written> {
        let mut groups: Vec<(Partition, Vec<PreparedBatch>, Vec<Waiter>)> = Vec::new();
        for Queued { batch, waiter } in round {
            waiter.partition.queued_changed(-1);
            match groups.iter_mut().find(|(p, _, _)| p.same(&waiter.partition)) {
                Some((_, batches, waiters)) => {
                    batches.push(batch);
                    waiters.push(waiter);
                }
                None => groups.push((waiter.partition.clone(), vec![batch], vec![waiter])),
            }
        }
        let faults = self.faults.as_deref();
        groups
            .into_iter()
            .map(|(p, batches, waiters)| {
                let results = guarded(&p, || {
                    if let Some(f) = faults {
                        f.before_commit();
                    }
                    Ok(p.write_group(batches))
                });
                Written { partition: p, results, waiters }
            })
            .collect()
    }

    /// Fsyncs each partition a round wrote, then gives every appender its result.
    fn sync(&self, written: Vec<Written>) {
        for Written { partition: p, results, waiters } in written {
            let results = match results {
                Ok(results) => results,
                Err(e) => {
                    fail_all(waiters, e, &p);
                    continue;
                }
            };
            let end = results.iter().filter_map(|r| r.as_ref().ok().map(|(_, end, _)| *end)).max();
            // Durable once `sync_through` returns: acknowledged, even if the partition is poisoned
            // meanwhile. A failed fsync's error goes to the first appender, `Poisoned` to the others.
            let (synced, mut error) = match end.map(|end| guarded(&p, || p.sync_through(end))) {
                Some(Err(e)) => (false, Some(e)),
                _ => (true, None),
            };
            for (waiter, result) in waiters.into_iter().zip(results) {
                let result = result.and_then(|(appended, _, _)| match synced {
                    true => Ok(appended),
                    false => Err(error.take().unwrap_or_else(|| p.poisoned_error())),
                });
                waiter.finish(result);
            }
        }
    }
}

/// Counts a committer thread out when it exits. The last one to die of a panic (outside the
/// guarded writes and fsyncs, where panics are caught) stops the committer and fails whatever is
/// queued, so that no appender waits for a round that will never come.
struct ExitGuard<'a>(&'a Shared);

impl Drop for ExitGuard<'_> {
    fn drop(&mut self) {
        let mut st = self.0.state.lock();
        st.threads -= 1;
        if !std::thread::panicking() {
            return;
        }
        tracing::error!(threads_left = st.threads, "a group commit thread panicked");
        if st.threads == 0 {
            st.stopping = true;
            // Each dropped waiter fails its appender (see `Waiter`'s drop).
            let queued = std::mem::take(&mut st.queued);
            drop(st);
            queued.iter().for_each(|q| q.waiter.partition.queued_changed(-1));
            drop(queued);
            self.0.room.notify_all();
            self.0.room_async.notify_waiters();
        }
    }
}

/// One partition's part of a round, written (or not), its appenders waiting for the fsync.
struct Written {
    partition: Partition,
    results: Result<Vec<Result<(Appended, u64, crate::config::Durability)>>>,
    waiters: Vec<Waiter>,
}

/// Runs `f`; a panic in it poisons `p` and becomes its `Error::Poisoned`.
fn guarded<T>(p: &Partition, f: impl FnOnce() -> Result<T>) -> Result<T> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(result) => result,
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic".into());
            p.poison(&format_args!("the group commit panicked: {what}"));
            Err(p.poisoned_error())
        }
    }
}

/// Fails every waiter: the first with `first`, the others with `Error::Poisoned`.
fn fail_all(waiters: Vec<Waiter>, first: Error, p: &Partition) {
    let mut first = Some(first);
    for w in waiters {
        w.finish(Err(first.take().unwrap_or_else(|| p.poisoned_error())));
    }
}

#[cfg(test)]
mod tests {
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
        let committer = Committer::start_with_limits(Some(faults.clone()), 1, 3, usize::MAX).unwrap();
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
        assert!(matches!(
            handle.enqueue_blocking(&p, p.prepare(&[NewRecord::new("late")]).unwrap()),
            Err(Error::Closed)
        ));
    }
}
