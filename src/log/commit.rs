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
//! **Waiting for the answered appenders.** Appenders that append again as soon as they are
//! answered (a thread or a task in a loop, a keep-alive HTTP connection's producer) would split
//! into cohorts that alternate rounds: while one round fsyncs, the appenders the previous round
//! answered queue for the next, and each round holds about half of them. So before it takes a
//! round, a committer waits for the appenders the last round answered (each known by its thread
//! or task) to queue again, until the first of: all of them have, the queue is full,
//! [`COMMIT_GATHER_BYTES_MAX`] bytes are queued, [`COMMIT_GATHER_WAIT_MAX`] or the last round's
//! fsync time has passed. An appender alone, whose next append is already queued, does not wait.
//! When a wait sees none of them come back (one-off tasks or threads), the next rounds skip the
//! wait, 1, 2, 4, ... up to 64 of them.
//!
//! The queue is bounded ([`COMMIT_QUEUE_BATCHES_MAX`], [`COMMIT_QUEUE_BYTES_MAX`]): when it is full,
//! appenders wait for room (a thread on a condition variable, a task on a notification) until the
//! committer takes the queue.
//!
//! A round is panic-safe: a panic while writing or fsyncing a partition's batches (or a failed
//! write or fsync) poisons that partition and fails its appenders with the error; the round goes
//! on for the other partitions. An appender whose batch is dropped without a result (the committer
//! thread died) gets `Error::Poisoned` too, and its partition is poisoned: nobody waits forever.

use std::collections::HashSet;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::{JoinHandle, Thread, ThreadId};
use std::time::{Duration, Instant};

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

/// The longest a committer waits, before a round, for the appenders the last round answered to
/// queue their next appends (and never longer than the last round's fsync took). See the module
/// docs.
pub const COMMIT_GATHER_WAIT_MAX: Duration = Duration::from_millis(1);
/// A committer does not wait for answered appenders once this many bytes are queued: the fsync
/// of a round that large is mostly its data, so more appends in it save little.
pub const COMMIT_GATHER_BYTES_MAX: usize = 64 * 1024;
/// After a wait that saw none of the answered appenders come back, the next this many rounds at
/// most (1, 2, 4, ... after each such wait) do not wait.
const GATHER_BACKOFF_ROUNDS_MAX: u32 = 64;

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
    /// The longest wait for answered appenders before a round ([`COMMIT_GATHER_WAIT_MAX`]), and
    /// whether it is also bounded by the last round's fsync (only tests say no).
    gather_max: Duration,
    gather_follows_sync: bool,
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
    /// Appenders a round answered that have not queued again since (cleared by each round).
    awaited: HashSet<AppenderId>,
    /// How many of the answered appenders queued again since the last round was taken.
    came_back: usize,
    /// A committer waits for `awaited` to empty.
    gathering: bool,
}

/// Who queued a batch: a thread, or a task (a connection's task in the broker).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum AppenderId {
    Thread(ThreadId),
    Task(tokio::task::Id),
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
    from: Option<AppenderId>,
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
            Waiter { partition: self.partition.clone(), to: self.to.take(), from: None }.finish(Err(poisoned));
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
        let limits = Limits {
            batches_max: COMMIT_QUEUE_BATCHES_MAX,
            bytes_max: COMMIT_QUEUE_BYTES_MAX,
            gather_max: COMMIT_GATHER_WAIT_MAX,
            gather_follows_sync: true,
        };
        Self::start_with_limits(faults, threads, limits)
    }

    fn start_with_limits(faults: Option<Arc<FaultInjector>>, threads: usize, limits: Limits) -> Result<Committer> {
        let Limits { batches_max, bytes_max, gather_max, gather_follows_sync } = limits;
        let shared = Arc::new(Shared {
            state: Mutex::default(),
            work: Condvar::new(),
            writing: Mutex::new(()),
            room: Condvar::new(),
            room_async: tokio::sync::Notify::new(),
            rounds: AtomicU64::new(0),
            batches_max,
            bytes_max,
            gather_max,
            gather_follows_sync,
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
        let from = Some(AppenderId::Thread(waiter.thread.id()));
        self.shared.push(&mut st, partition, batch, to, from);
        Ok(Pending(waiter))
    }

    /// Queues `batch` for `partition`, awaiting room while the queue is full.
    pub async fn enqueue(&self, partition: &Partition, mut batch: PreparedBatch) -> Result<PendingAsync> {
        // Room now: queued without registering for a notification.
        batch = match self.try_enqueue(partition, batch)? {
            Ok(pending) => return Ok(pending),
            Err(batch) => batch,
        };
        loop {
            let room = self.shared.room_async.notified();
            tokio::pin!(room);
            // Registered before the check: a notification between the check and the await is kept.
            room.as_mut().enable();
            batch = match self.try_enqueue(partition, batch)? {
                Ok(pending) => return Ok(pending),
                Err(batch) => batch,
            };
            room.await;
        }
    }

    /// Queues `batch` if the queue has room; gives it back if not.
    fn try_enqueue(&self, partition: &Partition, batch: PreparedBatch) -> Result<Result<PendingAsync, PreparedBatch>> {
        let mut st = self.shared.state.lock();
        if st.stopping {
            return Err(Error::Closed);
        }
        if !self.shared.has_room(&st, batch.len()) {
            return Ok(Err(batch));
        }
        let (tx, rx) = tokio::sync::oneshot::channel();
        let from = tokio::task::try_id().map(AppenderId::Task);
        self.shared.push(&mut st, partition, batch, Some(Notify::Task(tx)), from);
        Ok(Ok(PendingAsync(rx)))
    }
}

impl Shared {
    fn has_room(&self, st: &State, bytes: usize) -> bool {
        st.queued.is_empty() || (st.queued.len() < self.batches_max && st.bytes + bytes <= self.bytes_max)
    }

    fn push(
        &self,
        st: &mut State,
        partition: &Partition,
        batch: PreparedBatch,
        to: Option<Notify>,
        from: Option<AppenderId>,
    ) {
        st.bytes += batch.len();
        partition.queued_changed(1);
        st.queued.push(Queued { batch, waiter: Waiter { partition: partition.clone(), to, from } });
        let back = from.is_some_and(|id| st.awaited.remove(&id));
        st.came_back += back as usize;
        if st.queued.len() == 1 || (back && st.gathering && st.awaited.is_empty()) {
            self.work.notify_one();
        }
    }

    /// A committer thread: rounds until the store stops and the queue is empty. The threads take
    /// turns at writing (one at a time, so that batches are written in the order they queued);
    /// each fsyncs its round after giving up the turn, so that the next round is written, and
    /// fsynced, while this one's fsync runs.
    fn run(&self) {
        let _exit = ExitGuard(self);
        let mut gather = Gather { last_sync: Duration::ZERO, backoff: 0, skip: 0 };
        loop {
            let written = {
                let _turn = self.writing.lock();
                let Some(round) = self.take(&mut gather) else { return };
                self.write(round)
            };
            let started = Instant::now();
            self.sync(written);
            gather.last_sync = started.elapsed();
        }
    }

    /// Waits for batches and takes every one queued; `None` once the store stops with none left.
    /// Before it takes them, it may wait for the appenders the last round answered (see the module
    /// docs).
    fn take(&self, gather: &mut Gather) -> Option<Vec<Queued>> {
        let round = {
            let mut st = self.state.lock();
            while st.queued.is_empty() && !st.stopping {
                self.work.wait(&mut st);
            }
            if st.queued.is_empty() {
                return None;
            }
            let wait = match st.awaited.is_empty() || st.bytes >= COMMIT_GATHER_BYTES_MAX {
                true => Duration::ZERO,
                false => gather.wait(self),
            };
            if !wait.is_zero() {
                let deadline = Instant::now() + wait;
                st.gathering = true;
                while !st.awaited.is_empty()
                    && !st.stopping
                    && st.queued.len() < self.batches_max
                    && st.bytes < COMMIT_GATHER_BYTES_MAX.min(self.bytes_max)
                {
                    if self.work.wait_until(&mut st, deadline).timed_out() {
                        break;
                    }
                }
                st.gathering = false;
                gather.waited(st.came_back > 0);
            }
            st.awaited.clear();
            st.came_back = 0;
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

    /// Notes the appenders about to get their results: the next round waits a little for them.
    fn answering(&self, waiters: &[Waiter]) {
        let mut st = self.state.lock();
        st.awaited.extend(waiters.iter().filter_map(|w| w.from));
    }

    /// Fsyncs each partition a round wrote, then gives every appender its result.
    fn sync(&self, written: Vec<Written>) {
        for Written { partition: p, results, waiters } in written {
            self.answering(&waiters);
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

/// The queue bounds and the gathering wait of a committer.
struct Limits {
    batches_max: usize,
    bytes_max: usize,
    gather_max: Duration,
    gather_follows_sync: bool,
}

/// A committer thread's waits for answered appenders before its rounds.
struct Gather {
    /// How long the thread's last round took to fsync.
    last_sync: Duration,
    /// Rounds not to wait after the last wait in which nobody came back, and the rounds left.
    backoff: u32,
    skip: u32,
}

impl Gather {
    /// How long this round may wait for the answered appenders.
    fn wait(&mut self, shared: &Shared) -> Duration {
        if self.skip > 0 {
            self.skip -= 1;
            return Duration::ZERO;
        }
        match shared.gather_follows_sync {
            true => self.last_sync.min(shared.gather_max),
            false => shared.gather_max,
        }
    }

    /// After a wait: appenders that come back keep the waits; a wait in which none came back (they
    /// were one-off tasks or threads, or stopped appending) stops the next 1, 2, 4, ... rounds'.
    fn waited(&mut self, came_back: bool) {
        self.backoff = match came_back {
            true => 0,
            false => (self.backoff * 2).clamp(1, GATHER_BACKOFF_ROUNDS_MAX),
        };
        self.skip = self.backoff;
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
mod tests;
