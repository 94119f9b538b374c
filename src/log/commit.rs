//! Group commit of `sync` appends: one thread writes and fsyncs for many.
//!
//! An appender validates and encodes its batch on its own thread (or task), then queues it. If no
//! one leads, it becomes the leader: the leader takes the whole queue, writes the batches with one
//! `write()`, fsyncs once, and hands every appender its result. Appenders wait in one of two ways:
//!
//! - A **thread** ([`Partition::append`](super::Partition::append)) that finds no leader leads one
//!   group itself: a lone appender pays no thread switch. If appenders queued meanwhile, it hands
//!   the lead to a **committer thread** it starts, wakes its own group's appenders (while the
//!   committer writes the next group) and returns. The committer keeps leading while appenders come
//!   back, like the pool leader below, and hands each group's wake-ups to a second thread, the
//!   **waker**, so that its next `write()` and fsync start at once: waking a thread costs a futex
//!   wake-up (and a cross-CPU interrupt, expensive in a VM), and with dozens of threads per group
//!   the wake-ups can take as long as the fsync.
//! - A **task** ([`Partition::append_async`](super::Partition::append_async)) awaits a oneshot
//!   channel and never leads itself (that would block a runtime worker): when a task would lead, a
//!   leader is started on tokio's blocking pool instead. It keeps leading while appenders come: after
//!   each group it wakes the group's tasks and waits (at most half an fsync) for the next batch
//!   before it gives the lead up, since tasks that append in a loop are back within microseconds
//!   and a new leader costs a thread wake-up (see [`CommitQueue::keep_leading`]).
//!
//! Before it takes the queue, a leader may **gather**: when fewer batches are queued than its last
//! group had, it waits (at most half an fsync) for the appenders that group released to queue
//! again, so that concurrent appenders share one fsync instead of splitting into two alternating
//! cohorts (see [`CommitQueue::take`]).
//!
//! Compared with each appender writing under the writer lock and then waiting for a shared fsync,
//! the writer lock is taken once per group instead of once per append, and each appender is woken
//! exactly once. With many concurrent appenders and a fast fsync, that per-append cost is what
//! bounds the rate; tasks pay least (no thread switch per append).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::Thread;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use super::partition::{Appended, PreparedBatch};
use crate::error::Result;

/// How long a waiting thread yields its CPU before it sleeps. A sleeping thread costs a futex
/// wake-up (and, across CPUs, an inter-processor interrupt: expensive in a VM) to wake; one that
/// yields is simply run again. A group commit usually completes within an fsync, so a short yield
/// often catches it (RocksDB's `AwaitState` does the same).
const YIELD_BEFORE_SLEEP: Duration = Duration::from_micros(200);

/// A leader waits for the appenders of the previous group to queue again for at most this fraction
/// of the recent fsync time (see [`CommitQueue::take`]).
const GATHER_WAIT_FRACTION: u32 = 2;

/// And never longer than this, whatever the fsync time.
const GATHER_WAIT_MAX: Duration = Duration::from_millis(2);

/// The queue of batches waiting for a leader.
#[derive(Debug)]
pub(crate) struct CommitQueue {
    state: Mutex<QueueState>,
    /// Signalled when a gathering leader's wait is over (enough batches queued).
    gathered: Condvar,
    /// The longest gathering wait ([`GATHER_WAIT_MAX`]; tests raise it).
    gather_wait_max: Duration,
}

impl Default for CommitQueue {
    fn default() -> CommitQueue {
        CommitQueue { state: Mutex::default(), gathered: Condvar::new(), gather_wait_max: GATHER_WAIT_MAX }
    }
}

#[derive(Debug, Default)]
struct QueueState {
    queued: Vec<Queued>,
    /// Someone leads (or a leader it handed the lead to is starting).
    leading: bool,
    /// Batches in the last group taken.
    last_group: usize,
    /// A leader waits in [`CommitQueue::take`] until this many batches are queued (0: none waits).
    gather_target: usize,
    /// A moving average of recent fsync times.
    sync_time: Duration,
}

#[derive(Debug)]
pub(crate) struct Queued {
    pub batch: PreparedBatch,
    pub waiter: Waiter,
}

/// How a queued appender gets its result.
#[derive(Debug)]
pub(crate) enum Waiter {
    Thread(Arc<ThreadWaiter>),
    Task { tx: tokio::sync::oneshot::Sender<Result<Appended>>, runtime: tokio::runtime::Handle },
}

impl Waiter {
    /// Hands the appender its result (and wakes it).
    pub fn finish(self, result: Result<Appended>) {
        match self {
            Waiter::Thread(t) => t.finish(result),
            // The task may have been dropped (its caller gave up): the append stands regardless.
            Waiter::Task { tx, .. } => drop(tx.send(result)),
        }
    }
}

/// A group's appenders with their results.
pub(crate) type Done = Vec<(Waiter, Result<Appended>)>;

/// Hands every appender of a group its result (and wakes it).
pub(crate) fn finish_all(done: Done) {
    done.into_iter().for_each(|(waiter, result)| waiter.finish(result));
}

/// A thread waiting for its result.
#[derive(Debug)]
pub(crate) struct ThreadWaiter {
    thread: Thread,
    result: Mutex<Option<Result<Appended>>>,
    done: AtomicBool,
}

/// What a thread that led one group does next.
pub(crate) enum After {
    /// Nothing more: no one is queued; the lead was given up.
    Stop,
    /// Start a committer thread and hand it the lead (the next appender is a thread).
    StartCommitter,
    /// Start a pool leader on this runtime and hand it the lead (the next appender is a task).
    StartPoolLeader(tokio::runtime::Handle),
}

impl ThreadWaiter {
    pub fn new() -> Arc<ThreadWaiter> {
        Arc::new(ThreadWaiter {
            thread: std::thread::current(),
            result: Mutex::new(None),
            done: AtomicBool::new(false),
        })
    }

    /// Waits until this thread has its result. Only its own thread calls it.
    pub fn wait(&self) -> Result<Appended> {
        let yield_until = Instant::now() + YIELD_BEFORE_SLEEP;
        while !self.done.load(Ordering::Acquire) && Instant::now() < yield_until {
            std::thread::yield_now();
        }
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

impl CommitQueue {
    /// Queues a batch. `true`: the caller must now lead (a thread), or start a pool leader (a task).
    pub fn enqueue(&self, batch: PreparedBatch, waiter: Waiter) -> bool {
        let mut st = self.state.lock();
        st.queued.push(Queued { batch, waiter });
        if st.gather_target != 0 && st.queued.len() >= st.gather_target {
            self.gathered.notify_one();
        }
        !std::mem::replace(&mut st.leading, true)
    }

    /// Batches queued and not yet taken by a leader.
    pub fn len(&self) -> usize {
        self.state.lock().queued.len()
    }

    /// The leader takes every queued batch, after gathering: when fewer batches are queued than
    /// the last group had, it first waits for them, for at most half the recent fsync time.
    ///
    /// Without the wait, concurrent appenders split into cohorts that alternate: while one group's
    /// fsync runs, the appenders of the group before it are still being woken, and the leader takes
    /// only those that queued in time. The rest form a second, small group that costs a whole
    /// fsync. Waiting a fraction of an fsync for them puts everyone in one group; an appender
    /// already queued is delayed by that wait at most, and each returning one saves most of an
    /// fsync. A single appender never waits: its last group had one batch, its own, now queued.
    ///
    /// A committer thread does not gather (`gather` false): its waker wakes a group's appenders
    /// while the next group is written and fsynced, so they come back spread over that fsync, and
    /// the cohorts that form overlap their returns with each other's fsyncs. Waiting for them to
    /// form one group would put the whole return time between two fsyncs, lowering the rate of
    /// many appending threads.
    pub fn take(&self, gather: bool) -> Vec<Queued> {
        let mut st = self.state.lock();
        debug_assert!(st.leading);
        if gather && st.queued.len() < st.last_group {
            let deadline = Instant::now() + self.gather_wait(&st);
            st.gather_target = st.last_group;
            while st.queued.len() < st.gather_target && !self.gathered.wait_until(&mut st, deadline).timed_out() {}
            st.gather_target = 0;
        }
        st.last_group = st.queued.len();
        std::mem::take(&mut st.queued)
    }

    /// Records how long a group's fsync took (it bounds the next gathering wait).
    pub fn record_sync_time(&self, took: Duration) {
        let mut st = self.state.lock();
        // An exponential moving average over about 8 fsyncs: one slow fsync does not set the wait.
        st.sync_time = match st.sync_time.is_zero() {
            true => took,
            false => (st.sync_time * 7 + took) / 8,
        };
    }

    /// A thread that led one group gives up the lead if nothing is queued; otherwise the lead stays
    /// taken, for the leader it must start: a committer thread, or a pool leader if the first
    /// appender queued is a task.
    pub fn after_group(&self) -> After {
        let mut st = self.state.lock();
        match st.queued.first() {
            None => {
                st.leading = false;
                After::Stop
            }
            Some(Queued { waiter: Waiter::Thread(_), .. }) => After::StartCommitter,
            Some(Queued { waiter: Waiter::Task { runtime, .. }, .. }) => After::StartPoolLeader(runtime.clone()),
        }
    }

    /// A pool leader or committer thread, its group done and its appenders woken (or handed to the
    /// waker), keeps the lead if an appender queues within half the recent fsync time (the wait
    /// [`take`](Self::take) would allow); otherwise it gives the lead up and returns `false`. Tasks that append in a loop come back within
    /// microseconds, while a new leader costs a wake-up of a blocking-pool thread per group.
    pub fn keep_leading(&self) -> bool {
        let mut st = self.state.lock();
        debug_assert!(st.leading);
        if st.queued.is_empty() {
            let deadline = Instant::now() + self.gather_wait(&st);
            st.gather_target = 1;
            while st.queued.is_empty() && !self.gathered.wait_until(&mut st, deadline).timed_out() {}
            st.gather_target = 0;
        }
        if st.queued.is_empty() {
            st.leading = false;
            return false;
        }
        true
    }

    /// How long a leader waits for appenders: half the recent fsync time, capped.
    fn gather_wait(&self, st: &QueueState) -> Duration {
        (st.sync_time / GATHER_WAIT_FRACTION).min(self.gather_wait_max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::partition::PreparedBatch;

    fn queue(gather_wait_max: Duration) -> CommitQueue {
        CommitQueue { gather_wait_max, ..CommitQueue::default() }
    }

    /// Queues an empty batch; its waiter is never finished (the tests only take the queue).
    fn enqueue(q: &CommitQueue) -> bool {
        q.enqueue(PreparedBatch::empty_for_tests(), Waiter::Thread(ThreadWaiter::new()))
    }

    fn gathering(q: &CommitQueue) -> bool {
        q.state.lock().gather_target != 0
    }

    #[test]
    fn a_leader_waits_for_as_many_batches_as_its_last_group_had() {
        let q = queue(Duration::from_secs(600));
        assert!(enqueue(&q), "the first appender leads");
        assert!(!enqueue(&q) && !enqueue(&q), "the others wait");
        assert_eq!(q.take(true).len(), 3, "no fsync time known yet: no wait");
        q.record_sync_time(Duration::from_secs(600));
        enqueue(&q);
        std::thread::scope(|s| {
            let leader = s.spawn(|| q.take(true).len());
            // Bounded: the leader must start gathering (it has 1 batch of the 3 it expects).
            let started = Instant::now();
            while !gathering(&q) {
                assert!(started.elapsed() < Duration::from_secs(60), "the leader never waited");
                std::thread::yield_now();
            }
            enqueue(&q);
            assert!(gathering(&q), "2 of 3: still waiting");
            enqueue(&q);
            assert_eq!(leader.join().expect("the leader"), 3, "one group of all three");
        });
    }

    #[test]
    fn a_leader_with_its_last_group_queued_takes_at_once() {
        let q = queue(Duration::from_secs(600));
        enqueue(&q);
        assert_eq!(q.take(true).len(), 1);
        q.record_sync_time(Duration::from_secs(600));
        enqueue(&q);
        enqueue(&q);
        let started = Instant::now();
        assert_eq!(q.take(true).len(), 2);
        assert!(started.elapsed() < Duration::from_secs(60), "it waited for nothing");
    }

    #[test]
    fn a_committer_takes_what_is_queued_without_gathering() {
        let q = queue(Duration::from_secs(600));
        enqueue(&q);
        enqueue(&q);
        assert_eq!(q.take(false).len(), 2);
        q.record_sync_time(Duration::from_secs(600));
        enqueue(&q);
        let started = Instant::now();
        assert_eq!(q.take(false).len(), 1, "1 of the last group's 2, taken at once");
        assert!(started.elapsed() < Duration::from_secs(60), "it waited for the other");
        assert!(!gathering(&q));
    }

    #[test]
    fn gathering_ends_at_half_the_fsync_time() {
        let q = queue(GATHER_WAIT_MAX);
        enqueue(&q);
        enqueue(&q);
        assert_eq!(q.take(true).len(), 2);
        q.record_sync_time(Duration::from_millis(1));
        enqueue(&q);
        let started = Instant::now();
        assert_eq!(q.take(true).len(), 1, "the second appender never came back");
        assert!(started.elapsed() >= Duration::from_micros(500), "it waited half an fsync");
        assert!(!gathering(&q));
    }

    #[test]
    fn a_pool_leader_keeps_the_lead_for_an_appender_that_comes_back() {
        let q = queue(Duration::from_secs(600));
        assert!(enqueue(&q));
        assert_eq!(q.take(true).len(), 1);
        q.record_sync_time(Duration::from_secs(600));
        std::thread::scope(|s| {
            let leader = s.spawn(|| q.keep_leading());
            let started = Instant::now();
            while !gathering(&q) {
                assert!(started.elapsed() < Duration::from_secs(60), "the leader never waited");
                std::thread::yield_now();
            }
            assert!(!enqueue(&q), "the lead is still held: the appender does not lead");
            assert!(leader.join().expect("the leader"), "it keeps the lead");
        });
        assert_eq!(q.take(true).len(), 1);
    }

    #[test]
    fn a_pool_leader_gives_up_the_lead_when_no_appender_comes() {
        let q = queue(GATHER_WAIT_MAX);
        assert!(enqueue(&q));
        assert_eq!(q.take(true).len(), 1);
        q.record_sync_time(Duration::from_millis(1));
        let started = Instant::now();
        assert!(!q.keep_leading());
        assert!(started.elapsed() >= Duration::from_micros(500), "it waited half an fsync");
        assert!(enqueue(&q), "the next appender leads");
    }

    #[test]
    fn the_fsync_time_is_a_moving_average() {
        let q = CommitQueue::default();
        q.record_sync_time(Duration::from_millis(8));
        q.record_sync_time(Duration::from_millis(16));
        assert_eq!(q.state.lock().sync_time, Duration::from_millis(9));
    }
}
