//! Durability: fsyncs shared by concurrent callers, the durable offset, the high watermark.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::Partition;
use crate::config::Durability;
use crate::error::Result;
use crate::log::io;
use crate::log::recovery_point::{self, RecoveryPoint};

impl Partition {
    pub(super) fn advance_high_watermark(&self, end: u64) {
        let old = self.inner.high_watermark.fetch_max(end, Ordering::AcqRel);
        if end > old {
            self.inner.high_watermark_tx.send_if_modified(|hw| {
                let moved = end > *hw;
                *hw = (*hw).max(end);
                moved
            });
        }
    }

    pub(super) fn mark_durable(&self, end: u64) {
        let mut st = self.inner.sync.lock();
        st.durable = st.durable.max(end);
        self.advance_high_watermark(end);
        self.inner.synced.notify_all();
    }

    /// Returns once every offset below `end` is on stable storage. Concurrent callers share one
    /// fsync: the first becomes the leader and syncs everything written so far; the others wait.
    pub(crate) fn sync_through(&self, end: u64) -> Result<()> {
        let mut st = self.inner.sync.lock();
        loop {
            if st.durable >= end {
                return Ok(());
            }
            if self.is_poisoned() {
                return Err(self.poisoned_error());
            }
            if st.syncing {
                self.inner.synced.wait(&mut st);
                continue;
            }
            st.syncing = true;
            drop(st);
            // A panic in the fsync must not leave `syncing` set: every later flush would wait forever.
            let guard = SyncingGuard(self);
            let (file, path, target) = {
                let w = self.inner.writer.lock();
                (Arc::clone(&w.files.log), w.segment.log_path.clone(), w.next_offset)
            };
            let result = io::sync_data(&file, &path, self.inner.faults.as_deref());
            std::mem::forget(guard);
            if let Err(e) = &result {
                self.poison(e);
            }
            st = self.inner.sync.lock();
            st.syncing = false;
            if result.is_ok() {
                st.durable = st.durable.max(target);
                self.advance_high_watermark(target);
                self.inner.last_flush_ms.store(self.inner.clock.now_ms(), Ordering::Release);
            }
            self.inner.synced.notify_all();
            result?;
        }
    }

    /// Fsyncs everything written so far (the log; the indexes too when `indexes` is set).
    pub fn flush(&self) -> Result<()> {
        let end = self.inner.writer.lock().next_offset;
        self.sync_through(end)?;
        let w = self.inner.writer.lock();
        let faults = self.inner.faults.as_deref();
        // A failed fsync poisons, whatever the file: it is never retried.
        io::sync_data(&w.files.index, &w.segment.index_path, faults)
            .and_then(|_| io::sync_data(&w.files.time_index, &w.segment.time_index_path, faults))
            .inspect_err(|e| self.poison(e))?;
        // The log is durable through `end`: the recovery point moves there (unless appends came
        // in meanwhile, when the position of `end` is not at hand; the next flush moves it).
        if w.next_offset == end {
            let rp = RecoveryPoint { offset: end, segment_base: w.segment.base_offset, position: w.cursor.position };
            recovery_point::write(&self.inner.dir, rp)?;
        }
        Ok(())
    }

    /// For `interval` durability: flush when the last flush is older than the interval.
    pub(crate) fn flush_if_due(&self) -> Result<()> {
        let Durability::Interval { ms } = self.inner.config.read().durability else { return Ok(()) };
        let now = self.inner.clock.now_ms();
        if now - self.inner.last_flush_ms.load(Ordering::Acquire) < ms as i64 || self.is_poisoned() {
            return Ok(());
        }
        self.inner.last_flush_ms.store(now, Ordering::Release);
        let end = self.inner.writer.lock().next_offset;
        self.sync_through(end)
    }
}

/// Set while a thread fsyncs in [`Partition::sync_through`]; dropped there only by a panic, when it
/// poisons the partition and lets the threads waiting for that fsync go (with `Error::Poisoned`).
struct SyncingGuard<'a>(&'a Partition);

impl Drop for SyncingGuard<'_> {
    fn drop(&mut self) {
        let p = self.0;
        if !p.inner.poisoned.swap(true, Ordering::AcqRel) {
            tracing::error!(topic = %p.inner.topic, partition = p.inner.id, "an fsync panicked: partition poisoned");
        }
        p.inner.sync.lock().syncing = false;
        p.inner.synced.notify_all();
    }
}
