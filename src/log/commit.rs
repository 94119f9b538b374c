//! Group commit of `sync` appends: one thread writes and fsyncs for many.
//!
//! An appender validates and encodes its batch on its own thread (or task), then queues it. If no
//! one leads, it becomes the leader: the leader takes the whole queue, writes the batches with one
//! `write()`, fsyncs once, and hands every appender its result. Appenders wait in one of two ways:
//!
//! - A **thread** ([`Partition::append`](super::Partition::append)) sleeps until its result arrives
//!   or the lead is passed to it. A thread that led passes the lead on after its one group (its own
//!   append is done), to the first appender that queued meanwhile, so no caller leads for long
//!   (RocksDB's write groups work the same way).
//! - A **task** ([`Partition::append_async`](super::Partition::append_async)) awaits a oneshot
//!   channel and never leads itself (that would block a runtime worker): when a task would lead, a
//!   leader is started on tokio's blocking pool instead, and it keeps leading while the queue is not
//!   empty.
//!
//! Compared with each appender writing under the writer lock and then waiting for a shared fsync,
//! the writer lock is taken once per group instead of once per append, and each appender is woken
//! exactly once. With many concurrent appenders and a fast fsync, that per-append cost is what
//! bounds the rate; tasks pay least (no thread switch per append).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::Thread;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::partition::{Appended, PreparedBatch};
use crate::error::Result;

/// How long a waiting thread yields its CPU before it sleeps. A sleeping thread costs a futex
/// wake-up (and, across CPUs, an inter-processor interrupt: expensive in a VM) to wake; one that
/// yields is simply run again. A group commit usually completes within an fsync, so a short yield
/// often catches it (RocksDB's `AwaitState` does the same).
const YIELD_BEFORE_SLEEP: Duration = Duration::from_micros(200);

/// The queue of batches waiting for a leader.
#[derive(Debug, Default)]
pub(crate) struct CommitQueue {
    state: Mutex<QueueState>,
}

#[derive(Debug, Default)]
struct QueueState {
    queued: Vec<Queued>,
    /// Someone leads (or has been handed the lead and is waking up to take it).
    leading: bool,
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

/// A thread waiting for its result.
#[derive(Debug)]
pub(crate) struct ThreadWaiter {
    thread: Thread,
    result: Mutex<Option<Result<Appended>>>,
    done: AtomicBool,
    lead: AtomicBool,
}

/// What a waiting thread must do next.
pub(crate) enum Next {
    Done(Result<Appended>),
    Lead,
}

/// Who leads, which decides what happens after each group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Leader {
    /// An appending thread: one group, then the lead passes on.
    Caller,
    /// A blocking-pool thread started for tasks: leads until the queue is empty.
    Pool,
}

/// What the leader does after a group.
pub(crate) enum After {
    /// Lead another group.
    Continue,
    /// Done: the lead was given up or passed to a waiting thread.
    Stop,
    /// Done, and a pool leader must be started on this runtime (the next appender is a task).
    StartPoolLeader(tokio::runtime::Handle),
}

impl ThreadWaiter {
    pub fn new() -> Arc<ThreadWaiter> {
        Arc::new(ThreadWaiter {
            thread: std::thread::current(),
            result: Mutex::new(None),
            done: AtomicBool::new(false),
            lead: AtomicBool::new(false),
        })
    }

    fn ready(&self) -> bool {
        self.done.load(Ordering::Acquire) || self.lead.load(Ordering::Acquire)
    }

    /// Waits until this thread has its result or the lead. Only its own thread calls it.
    pub fn wait(&self) -> Next {
        let yield_until = Instant::now() + YIELD_BEFORE_SLEEP;
        while !self.ready() && Instant::now() < yield_until {
            std::thread::yield_now();
        }
        loop {
            if self.done.load(Ordering::Acquire) {
                return Next::Done(self.result.lock().take().expect("a finished append has a result"));
            }
            if self.lead.swap(false, Ordering::AcqRel) {
                return Next::Lead;
            }
            // Returns at once if `unpark` came first; may also return spuriously: hence the loop.
            std::thread::park();
        }
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
        !std::mem::replace(&mut st.leading, true)
    }

    /// Batches queued and not yet taken by a leader.
    pub fn len(&self) -> usize {
        self.state.lock().queued.len()
    }

    /// The leader takes every queued batch.
    pub fn take(&self) -> Vec<Queued> {
        let mut st = self.state.lock();
        debug_assert!(st.leading);
        std::mem::take(&mut st.queued)
    }

    /// The leader, its group done, gives up the lead if nothing is queued; otherwise a pool leader
    /// goes on, and a caller passes the lead to the first appender that queued.
    pub fn after_group(&self, leader: Leader) -> After {
        let mut st = self.state.lock();
        match st.queued.first() {
            None => {
                st.leading = false;
                After::Stop
            }
            Some(_) if leader == Leader::Pool => After::Continue,
            Some(Queued { waiter: Waiter::Thread(next), .. }) => {
                next.lead.store(true, Ordering::Release);
                next.thread.unpark();
                After::Stop
            }
            Some(Queued { waiter: Waiter::Task { runtime, .. }, .. }) => After::StartPoolLeader(runtime.clone()),
        }
    }
}
