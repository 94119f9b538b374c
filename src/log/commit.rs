//! Group commit of `sync` appends: one thread writes and fsyncs for many.
//!
//! An appender validates and encodes its batch on its own thread, then queues it. If no thread
//! leads, it becomes the leader: it takes the whole queue, writes the batches in order, fsyncs once,
//! hands each appender its result and wakes it, then passes the lead to the first appender that
//! queued meanwhile (its own append finished with the group it led, so no thread leads for long;
//! RocksDB's write groups work the same way). Everyone else sleeps once, until its result arrives or
//! the lead is passed to it.
//!
//! Compared with each appender writing under the writer lock and then waiting for a shared fsync,
//! this takes the writer lock once per group instead of once per append, and wakes each appender
//! exactly once (no convoy on a lock, no wake-up of threads whose fsync is still to come). With many
//! concurrent appenders, that per-append CPU cost is what limits the rate when an fsync is fast.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::Thread;

use parking_lot::Mutex;

use super::partition::{Appended, PreparedBatch};
use crate::error::Result;

/// The queue of batches waiting for a leader.
#[derive(Debug, Default)]
pub(crate) struct CommitQueue {
    state: Mutex<QueueState>,
}

#[derive(Debug, Default)]
struct QueueState {
    queued: Vec<Queued>,
    /// A thread leads (or has been handed the lead and is waking up to take it).
    leading: bool,
}

#[derive(Debug)]
pub(crate) struct Queued {
    pub batch: PreparedBatch,
    pub waiter: Arc<Waiter>,
}

/// An appender waiting for its result.
#[derive(Debug)]
pub(crate) struct Waiter {
    thread: Thread,
    result: Mutex<Option<Result<Appended>>>,
    done: AtomicBool,
    lead: AtomicBool,
}

/// What a waiting appender must do next.
pub(crate) enum Next {
    Done(Result<Appended>),
    Lead,
}

impl Waiter {
    pub fn new() -> Arc<Waiter> {
        Arc::new(Waiter {
            thread: std::thread::current(),
            result: Mutex::new(None),
            done: AtomicBool::new(false),
            lead: AtomicBool::new(false),
        })
    }

    /// Sleeps until this appender has its result or the lead. Only its own thread calls it.
    pub fn wait(&self) -> Next {
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

    /// Hands the appender its result and wakes it.
    pub fn finish(&self, result: Result<Appended>) {
        *self.result.lock() = Some(result);
        self.done.store(true, Ordering::Release);
        self.thread.unpark();
    }
}

impl CommitQueue {
    /// Queues a batch. `true`: the caller leads now and must call [`take`](Self::take).
    pub fn enqueue(&self, batch: PreparedBatch, waiter: Arc<Waiter>) -> bool {
        let mut st = self.state.lock();
        st.queued.push(Queued { batch, waiter });
        !std::mem::replace(&mut st.leading, true)
    }

    /// Batches queued and not yet taken by a leader.
    pub fn len(&self) -> usize {
        self.state.lock().queued.len()
    }

    /// The leader takes every queued batch (never none: its own is among them).
    pub fn take(&self) -> Vec<Queued> {
        let mut st = self.state.lock();
        debug_assert!(st.leading && !st.queued.is_empty());
        std::mem::take(&mut st.queued)
    }

    /// The leader, its group done, passes the lead to the first appender that queued meanwhile,
    /// or gives it up when none did.
    pub fn pass_lead(&self) {
        let mut st = self.state.lock();
        match st.queued.first() {
            Some(next) => {
                next.waiter.lead.store(true, Ordering::Release);
                next.waiter.thread.unpark();
            }
            None => st.leading = false,
        }
    }
}
