//! A fault-injection seam for tests, not part of the documented API: fail the Nth write or fsync
//! with EIO or ENOSPC, make the group commit panic, or copy the data directory as a power loss with
//! out-of-order writeback could leave it (any subset of the writes no fsync covers yet).
//!
//! Every write and fsync of a log or index file asks the [`FaultInjector`] first when one is set in
//! `StoreConfig::faults` (or `StoreBuilder::faults`).
//! A failing write first writes half of its bytes, as a real ENOSPC in the middle of a write would.

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};

mod writeback;
pub use writeback::UnsyncedWrite;

/// Which error an injected fault returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultKind {
    /// `EIO`: the device failed.
    Io,
    /// `ENOSPC`: the disk is full.
    NoSpace,
}

impl FaultKind {
    fn error(self) -> io::Error {
        match self {
            FaultKind::Io => io::Error::from_raw_os_error(5),
            FaultKind::NoSpace => io::Error::from_raw_os_error(28),
        }
    }
}

const NEVER: u64 = u64::MAX;

/// A hook the cleaner calls before each step of its swap protocol, with the step's number (1 = the
/// first step since the injector was made) and what the step is about to do. `Err` makes the step
/// fail as a failed I/O would; a crash test's hook may kill the process instead.
pub type SwapHook = Box<dyn Fn(u64, &str) -> io::Result<()> + Send + Sync>;

/// Counts writes and fsyncs and fails the ones it was told to.
pub struct FaultInjector {
    writes: AtomicU64,
    syncs: AtomicU64,
    fail_write_at: AtomicU64,
    fail_sync_at: AtomicU64,
    write_kind: parking_lot::Mutex<FaultKind>,
    sync_kind: parking_lot::Mutex<FaultKind>,
    swap_steps: AtomicU64,
    swap_hook: parking_lot::RwLock<Option<SwapHook>>,
    /// Every fsync whose number (1 = the first since the injector was made) is at least this waits,
    /// after being counted, until the mark moves past it ([`FaultInjector::resume_syncs`]): lets a
    /// test hold an fsync in flight without timing assumptions. [`NEVER`]: none waits.
    syncs_paused_from: parking_lot::Mutex<u64>,
    syncs_resumed: parking_lot::Condvar,
    /// Group commits (of one partition's batches) that must still pass before one panics.
    commit_panics_in: AtomicU64,
    /// Log and index writes no fsync covers yet, when recording (`writeback.rs`).
    writeback: parking_lot::Mutex<writeback::Writeback>,
}

impl std::fmt::Debug for FaultInjector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FaultInjector")
            .field("writes", &self.writes)
            .field("syncs", &self.syncs)
            .field("swap_steps", &self.swap_steps)
            .finish_non_exhaustive()
    }
}

impl Default for FaultInjector {
    fn default() -> Self {
        FaultInjector {
            writes: AtomicU64::new(0),
            syncs: AtomicU64::new(0),
            fail_write_at: AtomicU64::new(NEVER),
            fail_sync_at: AtomicU64::new(NEVER),
            write_kind: parking_lot::Mutex::new(FaultKind::Io),
            sync_kind: parking_lot::Mutex::new(FaultKind::Io),
            swap_steps: AtomicU64::new(0),
            swap_hook: parking_lot::RwLock::new(None),
            syncs_paused_from: parking_lot::Mutex::new(NEVER),
            syncs_resumed: parking_lot::Condvar::new(),
            commit_panics_in: AtomicU64::new(NEVER),
            writeback: parking_lot::Mutex::new(writeback::Writeback::default()),
        }
    }
}

impl FaultInjector {
    pub fn new() -> std::sync::Arc<FaultInjector> {
        std::sync::Arc::new(FaultInjector::default())
    }

    /// The `n`th write from now (1 = the next one), and every one after it, fails with `kind`.
    pub fn fail_write_after(&self, n: u64, kind: FaultKind) {
        *self.write_kind.lock() = kind;
        self.fail_write_at.store(self.writes.load(Ordering::SeqCst) + n, Ordering::SeqCst);
    }

    /// The `n`th fsync from now (1 = the next one), and every one after it, fails with `kind`.
    pub fn fail_sync_after(&self, n: u64, kind: FaultKind) {
        *self.sync_kind.lock() = kind;
        self.fail_sync_at.store(self.syncs.load(Ordering::SeqCst) + n, Ordering::SeqCst);
    }

    /// Stop failing.
    pub fn heal(&self) {
        self.fail_write_at.store(NEVER, Ordering::SeqCst);
        self.fail_sync_at.store(NEVER, Ordering::SeqCst);
    }

    /// From now on every fsync blocks (after [`syncs`](Self::syncs) counts it) until
    /// [`resume_syncs`](Self::resume_syncs). For tests that need an fsync in flight.
    pub fn pause_syncs(&self) {
        *self.syncs_paused_from.lock() = 0;
    }

    /// Lets the fsyncs paused so far proceed, and pauses the `n`th fsync from now (1 = the next
    /// one) and every one after it, until [`resume_syncs`](Self::resume_syncs). For tests that
    /// release one fsync and hold the next.
    pub fn pause_syncs_after(&self, n: u64) {
        *self.syncs_paused_from.lock() = self.syncs.load(Ordering::SeqCst) + n.max(1);
        self.syncs_resumed.notify_all();
    }

    /// Lets paused fsyncs proceed.
    pub fn resume_syncs(&self) {
        *self.syncs_paused_from.lock() = NEVER;
        self.syncs_resumed.notify_all();
    }

    /// The group commit panics when it is about to write the `n`th partition group from now
    /// (1 = the next one; a round writes one group per partition it has batches for), once: for
    /// tests that a panic there fails the group's appenders instead of leaving them waiting.
    pub fn panic_in_commit_after(&self, n: u64) {
        self.commit_panics_in.store(n.max(1), Ordering::SeqCst);
    }

    /// Writes seen so far (failed ones included).
    pub fn writes(&self) -> u64 {
        self.writes.load(Ordering::SeqCst)
    }

    /// Fsyncs seen so far (failed ones included).
    pub fn syncs(&self) -> u64 {
        self.syncs.load(Ordering::SeqCst)
    }

    /// Calls `hook` before every step of the cleaner's swap protocol (replacing an earlier hook).
    pub fn set_swap_hook(&self, hook: impl Fn(u64, &str) -> io::Result<()> + Send + Sync + 'static) {
        *self.swap_hook.write() = Some(Box::new(hook));
    }

    /// Swap-protocol steps seen so far.
    pub fn swap_steps(&self) -> u64 {
        self.swap_steps.load(Ordering::SeqCst)
    }

    pub(crate) fn before_swap_step(&self, what: &str) -> io::Result<()> {
        let n = self.swap_steps.fetch_add(1, Ordering::SeqCst) + 1;
        match &*self.swap_hook.read() {
            Some(hook) => hook(n, what),
            None => Ok(()),
        }
    }

    /// `Err` when this write must fail: the caller writes `half` of its bytes, then returns the error.
    pub(crate) fn before_write(&self) -> io::Result<()> {
        let n = self.writes.fetch_add(1, Ordering::SeqCst) + 1;
        if n >= self.fail_write_at.load(Ordering::SeqCst) {
            return Err(self.write_kind.lock().error());
        }
        Ok(())
    }

    /// Panics when told to ([`panic_in_commit_after`](Self::panic_in_commit_after)).
    pub(crate) fn before_commit(&self) {
        let left = self.commit_panics_in.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| match n {
            NEVER => None,
            1 => Some(NEVER),
            n => Some(n - 1),
        });
        if left == Ok(1) {
            panic!("injected panic in the group commit");
        }
    }

    pub(crate) fn before_sync(&self) -> io::Result<()> {
        let n = self.syncs.fetch_add(1, Ordering::SeqCst) + 1;
        let mut paused_from = self.syncs_paused_from.lock();
        while n >= *paused_from {
            self.syncs_resumed.wait(&mut paused_from);
        }
        drop(paused_from);
        if n >= self.fail_sync_at.load(Ordering::SeqCst) {
            return Err(self.sync_kind.lock().error());
        }
        Ok(())
    }
}
