//! The cleaner: retention (delete whole old segments) and compaction (keep the latest record per
//! key), in the background and on demand. Semantics follow Kafka's `cleanup.policy`,
//! `retention.ms`, `retention.bytes`, `delete.retention.ms`, `min.compaction.lag.ms` and
//! `min.cleanable.dirty.ratio`.
//!
//! # Guarantees
//! - **Retention** deletes only whole sealed segments, oldest first, never the active one. The log
//!   start offset moves durably before any file goes; reads below it get
//!   [`crate::Error::OffsetOutOfRange`]. A reader holding records of a deleted
//!   segment keeps reading them (the memory map outlives the file).
//! - **Compaction** (Kafka's four guarantees, tested in `tests/compaction_guarantees.rs`):
//!   1. a consumer that keeps up with the head (reads records before they leave the dirty section,
//!      or before they are `min_compaction_lag_ms` old) sees every record;
//!   2. the order of records is kept;
//!   3. offsets never change: compaction leaves gaps, and a read at a removed offset returns the
//!      next surviving record;
//!   4. a consumer reading from the start sees the final value of every key, and every tombstone
//!      whose timestamp is younger than `delete_retention_ms` when the cleaner reaches it.
//!      kappalog measures a tombstone's age from its timestamp (its append time unless the producer
//!      set one); Kafka measures it from when the tombstone was first cleaned.
//! - **Crash safety**: new segments are swapped in with a rename protocol whose commit point is an
//!   atomically written manifest (`swap.rs`, `segment-format.md`); after a crash the log is the old
//!   one or the new one, never a mix.
//! - **Bounded work**: the key map has a byte budget ([`StoreConfig::offset_map_bytes`](crate::StoreConfig));
//!   a larger dirty section is cleaned in several passes. Appends and reads never wait for the
//!   cleaner except for the instant the segment list is swapped.
//! - Only `compact` topics are compacted; only `delete` topics have retention (`compact_delete`: both).
//!
//! Keyless records (possible only in a topic switched to `compact` after holding some) are kept.

mod compaction;
mod offset_map;
mod offset_set;
mod retention;
pub(crate) mod rewrite;
pub(crate) mod swap;

use std::sync::mpsc;
use std::thread::JoinHandle;

use serde::Serialize;

pub use compaction::CompactionReport;
pub use retention::{RemovedSegment, RetentionReport};

use crate::error::{Error, Result};
use crate::log::offset_file;
use crate::log::Partition;
use crate::topic::Topic;

/// The file persisting a partition's first dirty offset (Kafka's cleaner-offset-checkpoint).
pub(crate) const CHECKPOINT_FILE: &str = "cleaner-checkpoint";

/// Finishes or discards an interrupted compaction swap in a partition directory (run on open).
pub(crate) fn recover_swap(dir: &std::path::Path) -> Result<()> {
    swap::recover(dir)
}

/// The cleaner's per-partition state, kept by the partition under its maintenance lock.
#[derive(Debug, Default)]
pub(crate) struct CleanerState {
    /// `None` until read from `cleaner-checkpoint`.
    first_dirty_offset: Option<u64>,
    /// A swap failed after its commit point: the cleaner leaves the partition alone until reopened.
    swap_pending: bool,
    compactions: u64,
    last_compaction: Option<CompactionReport>,
    last_retention: Option<RetentionReport>,
}

impl CleanerState {
    fn check_no_pending_swap(&self, p: &Partition) -> Result<()> {
        // A deleted topic's handle never touches the files at its path again: a topic created
        // again under the name lives there now (`Store::delete_topic` waits for a run in progress).
        if p.is_deleted() {
            return Err(Error::TopicNotFound(p.topic().to_string()));
        }
        if self.swap_pending {
            return Err(Error::CleanerSwapPending { topic: p.topic().to_string(), partition: p.id() });
        }
        Ok(())
    }

    /// Where the dirty section starts: never below the log start offset.
    fn first_dirty_offset(&mut self, p: &Partition) -> Result<u64> {
        let saved = match self.first_dirty_offset {
            Some(o) => o,
            None => {
                let o = offset_file::read(&p.dir().join(CHECKPOINT_FILE))?.unwrap_or(0);
                self.first_dirty_offset = Some(o);
                o
            }
        };
        Ok(saved.max(p.log_start_offset()))
    }

    fn set_first_dirty_offset(&mut self, p: &Partition, offset: u64) -> Result<()> {
        offset_file::write(&p.dir().join(CHECKPOINT_FILE), offset)?;
        self.first_dirty_offset = Some(offset);
        Ok(())
    }
}

/// The cleaner's statistics for one partition.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CleanerStats {
    /// Dirty bytes / all bytes of the cleanable part (sealed segments past `min_compaction_lag_ms`).
    pub dirty_ratio: f64,
    pub cleanable_bytes: u64,
    pub dirty_bytes: u64,
    /// Where the part not yet compacted starts.
    pub first_dirty_offset: u64,
    /// Compaction runs that did at least one pass since the store was opened.
    pub compactions: u64,
    /// The last compaction run that did something: bytes before and after, records removed, duration.
    pub last_compaction: Option<CompactionReport>,
    /// The last retention run that deleted something.
    pub last_retention: Option<RetentionReport>,
}

impl Partition {
    /// The cleaner's statistics for this partition (the dirty ratio as of now).
    pub fn cleaner_stats(&self) -> Result<CleanerStats> {
        let mut state = self.maintenance().lock();
        let first_dirty = state.first_dirty_offset(self)?;
        let c = compaction::cleanable(&self.segments(), &self.config(), self.clock().now_ms(), first_dirty)?;
        Ok(CleanerStats {
            dirty_ratio: c.dirty_ratio(),
            cleanable_bytes: c.clean_bytes + c.dirty_bytes,
            dirty_bytes: c.dirty_bytes,
            first_dirty_offset: first_dirty,
            compactions: state.compactions,
            last_compaction: state.last_compaction.clone(),
            last_retention: state.last_retention.clone(),
        })
    }
}

/// Deletes the segments of `p` past retention at time `now_ms` (see [`retention`](self) rules above).
pub fn enforce_retention(p: &Partition, now_ms: i64) -> Result<RetentionReport> {
    retention::enforce_retention(p, now_ms)
}

/// Compacts `p` now, whatever its dirty ratio, at time `now_ms`, with a key map of
/// `offset_map_bytes`. Blocking and possibly long: never call it on an async worker thread.
pub fn compact(p: &Partition, now_ms: i64, offset_map_bytes: usize) -> Result<CompactionReport> {
    check_map_bytes(offset_map_bytes)?;
    compaction::compact(p, now_ms, offset_map_bytes, true)
}

/// Compacts `p` only if its dirty ratio reached `min_cleanable_dirty_ratio` (what the background
/// cleaner does). A report with `passes == 0` when it did not.
pub fn compact_if_dirty(p: &Partition, now_ms: i64, offset_map_bytes: usize) -> Result<CompactionReport> {
    check_map_bytes(offset_map_bytes)?;
    compaction::compact(p, now_ms, offset_map_bytes, false)
}

fn check_map_bytes(offset_map_bytes: usize) -> Result<()> {
    if offset_map_bytes < crate::config::OFFSET_MAP_BYTES_MIN {
        return Err(Error::InvalidConfig {
            field: "offset_map_bytes",
            reason: format!("{offset_map_bytes} is below {}", crate::config::OFFSET_MAP_BYTES_MIN),
        });
    }
    Ok(())
}

/// What retention did to a topic, partition by partition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TopicRetentionReport {
    pub topic: String,
    pub segments_removed: usize,
    pub bytes_removed: u64,
    pub partitions: Vec<RetentionReport>,
}

/// What compaction did to a topic, partition by partition.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TopicCompactionReport {
    pub topic: String,
    pub bytes_before: u64,
    pub bytes_after: u64,
    pub records_removed: u64,
    pub partitions: Vec<CompactionReport>,
}

/// Enforces retention on every partition of `topic` at time `now_ms`.
pub fn run_retention(topic: &Topic, now_ms: i64) -> Result<TopicRetentionReport> {
    let mut partitions = Vec::new();
    for p in topic.partitions().iter() {
        partitions.push(enforce_retention(p, now_ms)?);
    }
    Ok(TopicRetentionReport {
        topic: topic.name().to_string(),
        segments_removed: partitions.iter().map(|r| r.removed.len()).sum(),
        bytes_removed: partitions.iter().map(|r| r.bytes_removed).sum(),
        partitions,
    })
}

/// Compacts every partition of `topic` now (see [`compact`]).
pub fn compact_topic(topic: &Topic, now_ms: i64, offset_map_bytes: usize) -> Result<TopicCompactionReport> {
    let mut partitions = Vec::new();
    for p in topic.partitions().iter() {
        partitions.push(compact(p, now_ms, offset_map_bytes)?);
    }
    Ok(TopicCompactionReport {
        topic: topic.name().to_string(),
        bytes_before: partitions.iter().map(|r| r.bytes_before).sum(),
        bytes_after: partitions.iter().map(|r| r.bytes_after).sum(),
        records_removed: partitions.iter().map(|r| r.records_removed).sum(),
        partitions,
    })
}

/// One background sweep: retention, then compaction where the dirty ratio calls for it.
/// Errors are logged; one partition's failure does not stop the others.
pub(crate) fn sweep(topics: &[Topic], now_ms: i64, offset_map_bytes: usize, stop: &mpsc::Receiver<()>) {
    for t in topics {
        let policy = t.config().cleanup_policy;
        for p in t.partitions().iter() {
            if !matches!(stop.try_recv(), Err(mpsc::TryRecvError::Empty)) {
                return;
            }
            if p.is_deleted() {
                continue;
            }
            if policy.deletes() {
                if let Err(e) = enforce_retention(p, now_ms) {
                    tracing::error!(topic = t.name(), partition = p.id(), error = %e, "retention failed");
                }
            }
            if policy.compacts() {
                if let Err(e) = compact_if_dirty(p, now_ms, offset_map_bytes) {
                    tracing::error!(topic = t.name(), partition = p.id(), error = %e, "compaction failed");
                }
            }
        }
    }
}

/// The background cleaner: a std thread (never a tokio worker) that sweeps every
/// `cleaner_interval_ms`. Stops (between partitions) when dropped.
#[derive(Debug)]
pub(crate) struct Cleaner {
    stop: Option<mpsc::Sender<()>>,
    handle: Option<JoinHandle<()>>,
}

impl Cleaner {
    /// Starts the thread; `topics` lists the topics to sweep each time.
    pub fn start(
        interval_ms: u64,
        clock: std::sync::Arc<dyn crate::clock::Clock>,
        offset_map_bytes: usize,
        topics: impl Fn() -> Vec<Topic> + Send + 'static,
    ) -> Cleaner {
        let (tx, rx) = mpsc::channel::<()>();
        let handle = std::thread::Builder::new()
            .name("kappalog-cleaner".into())
            .spawn(move || {
                let tick = std::time::Duration::from_millis(interval_ms.max(1));
                while let Err(mpsc::RecvTimeoutError::Timeout) = rx.recv_timeout(tick) {
                    sweep(&topics(), clock.now_ms(), offset_map_bytes, &rx);
                }
            })
            .expect("spawn the cleaner thread");
        Cleaner { stop: Some(tx), handle: Some(handle) }
    }
}

impl Drop for Cleaner {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}
