//! A partition: an ordered list of segments, one writer, many readers, group-committed fsyncs.
//!
//! - `open.rs`: finding the segment files, finishing an interrupted deletion, recovery.
//! - `write.rs`: appends (validated and encoded by `encode.rs`), group writes, rolls.
//! - `preallocate.rs`: the zero-filled tail of `sync` segments and blocks reserved ahead.
//! - `durability.rs`: fsyncs, the durable offset and the high watermark.
//! - `client_batch.rs`: appending a Kafka client's RecordBatch v2 as it came.
//! - `read.rs`: reads by offset and by timestamp, raw batch reads, and waiting for data.

mod client_batch;
mod durability;
mod encode;
mod open;
mod preallocate;
mod producers;
mod read;
mod write;

use std::any::Any;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use parking_lot::{Condvar, Mutex, RwLock};

use super::commit::CommitHandle;
use super::segment::{IndexCursor, Segment, SegmentFiles, TIMESTAMP_NONE};
use crate::clock::Clock;
use crate::config::{TopicConfig, BATCH_BYTES_MAX};
use crate::error::{Corruption, Error, Result};
use crate::fault::FaultInjector;

pub use read::RawBatches;
pub(crate) use write::PreparedBatch;

/// Where appended records went: offsets `base_offset..=last_offset` of partition `partition`, in
/// the order given. [`Partition::append`] gives one for its batch; [`Topic::append`](crate::Topic::append)
/// one per record (`base_offset == last_offset`), as records of one append may go to several
/// partitions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    pub partition: u32,
    pub base_offset: u64,
    pub last_offset: u64,
    /// The stored timestamp of the first record (the append time under `LogAppendTime`).
    pub timestamp: i64,
    /// The log's clock when the batch was written: the stored timestamp of every record that came
    /// without one (and of all records under `LogAppendTime`).
    pub log_append_time_ms: i64,
}

/// A handle to one partition of a topic. Cheap to clone; `Send + Sync`.
#[derive(Clone, Debug)]
pub struct Partition {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    topic: Arc<str>,
    id: u32,
    dir: PathBuf,
    config: Arc<RwLock<TopicConfig>>,
    clock: Arc<dyn Clock>,
    faults: Option<Arc<FaultInjector>>,
    /// Oldest first; the last one is the active segment. Replaced as a whole (copy on write).
    segments: RwLock<Arc<Vec<Arc<Segment>>>>,
    writer: Mutex<Writer>,
    log_start_offset: AtomicU64,
    /// The offset after the last record readers may see: fsynced under `sync`, written otherwise.
    high_watermark: AtomicU64,
    high_watermark_tx: tokio::sync::watch::Sender<u64>,
    sync: Mutex<SyncState>,
    synced: Condvar,
    /// The store's group commit, which every `sync` append goes through (see `commit.rs`).
    committer: CommitHandle,
    /// `sync` appends of this partition queued there and not yet taken.
    queued: AtomicUsize,
    poisoned: AtomicBool,
    deleted: AtomicBool,
    closed: AtomicBool,
    last_flush_ms: AtomicI64,
    corruption: Mutex<Option<(PathBuf, u64, Corruption)>>,
    /// What the maintenance above the log keeps for this partition (see `maintenance_state`).
    maintenance: OnceLock<Box<dyn Any + Send + Sync>>,
}

/// The file holding the durable log start offset (see `segment-format.md`, the cleaner section).
pub(crate) const LOG_START_OFFSET_FILE: &str = "log-start-offset";

#[derive(Debug)]
struct Writer {
    segment: Arc<Segment>,
    files: SegmentFiles,
    cursor: IndexCursor,
    next_offset: u64,
    /// When the active segment took its first append (for `segment_ms`).
    created_ms: i64,
    /// `segment_bytes` when the active segment was opened: its map has room for this plus one
    /// batch, so a later config change applies from the next roll, as documented.
    segment_bytes: u64,
    /// The length of the active segment's file: `cursor.position`, plus the zero-filled tail that
    /// `sync` appends keep ahead of it (see `preallocate::ZERO_TAIL_BYTES`).
    file_len: u64,
    /// The end of the active segment's blocks reserved ahead of its log's end for appends that are
    /// not `sync` (see `preallocate::RESERVE_AHEAD_MAX`); at most the log's end when none are.
    reserved_to: u64,
    /// What each idempotent producer appended last (see `producers.rs`).
    producers: crate::log::producer_state::ProducerState,
}

#[derive(Debug)]
struct SyncState {
    /// Every offset below this is on stable storage.
    durable: u64,
    /// A thread is in fsync now; the others wait for it (group commit).
    syncing: bool,
}

/// What a partition shares with the rest of its store.
pub(crate) struct StoreContext {
    pub clock: Arc<dyn Clock>,
    pub faults: Option<Arc<FaultInjector>>,
    pub committer: CommitHandle,
    /// See [`StoreConfig::producer_id_expiration_ms`](crate::StoreConfig).
    pub producer_id_expiration_ms: u64,
}

/// What a partition is, seen from outside (for describe, metrics and maintenance).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionStats {
    pub log_start_offset: u64,
    pub high_watermark: u64,
    pub size_bytes: u64,
    pub segments: usize,
}

/// One segment, seen from outside (for retention and tools).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentInfo {
    pub base_offset: u64,
    pub next_offset: u64,
    pub size_bytes: u64,
    pub max_timestamp: Option<i64>,
    pub path: PathBuf,
    pub active: bool,
}

impl Partition {
    pub fn topic(&self) -> &str {
        &self.inner.topic
    }

    pub fn id(&self) -> u32 {
        self.inner.id
    }

    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// The first offset that can be read.
    pub fn log_start_offset(&self) -> u64 {
        self.inner.log_start_offset.load(Ordering::Acquire)
    }

    /// The offset the next record will get, as far as readers can see: reading here returns nothing.
    pub fn high_watermark(&self) -> u64 {
        self.inner.high_watermark.load(Ordering::Acquire)
    }

    /// Whether an earlier write or fsync failed: appends fail until the store is reopened.
    pub fn is_poisoned(&self) -> bool {
        self.inner.poisoned.load(Ordering::Acquire)
    }

    /// Corruption that recovery found in the active segment (a bad batch with valid ones after it).
    /// Those bytes are never served: a read that reaches them gets `Error::Corrupted`.
    pub fn corruption(&self) -> Option<Error> {
        self.inner.corruption.lock().as_ref().map(|(path, position, detail)| Error::Corrupted {
            path: path.clone(),
            position: *position,
            detail: detail.clone(),
        })
    }

    pub fn config(&self) -> TopicConfig {
        self.inner.config.read().clone()
    }

    pub fn stats(&self) -> PartitionStats {
        let segments = self.segments();
        PartitionStats {
            log_start_offset: self.log_start_offset(),
            high_watermark: self.high_watermark(),
            size_bytes: segments.iter().map(|s| s.size()).sum(),
            segments: segments.len(),
        }
    }

    /// The segments, oldest first (the last one is active).
    pub fn segment_infos(&self) -> Result<Vec<SegmentInfo>> {
        let segments = self.segments();
        let last = segments.len() - 1;
        segments
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let ts = s.max_timestamp()?;
                Ok(SegmentInfo {
                    base_offset: s.base_offset,
                    next_offset: s.next_offset(),
                    size_bytes: s.size(),
                    max_timestamp: (ts != TIMESTAMP_NONE).then_some(ts),
                    path: s.log_path.clone(),
                    active: i == last,
                })
            })
            .collect()
    }

    pub(crate) fn segments(&self) -> Arc<Vec<Arc<Segment>>> {
        Arc::clone(&self.inner.segments.read())
    }

    // ---- for the maintenance above the log (retention and compaction) ----

    /// State that the maintenance above the log (retention, compaction) keeps for this partition,
    /// created on first use; one type per partition. The log never looks inside.
    pub(crate) fn maintenance_state<T: Default + Send + Sync + 'static>(&self) -> &T {
        let state = self.inner.maintenance.get_or_init(|| Box::new(T::default()));
        state.downcast_ref().expect("one maintenance state type per partition")
    }

    pub(crate) fn clock(&self) -> &Arc<dyn Clock> {
        &self.inner.clock
    }

    pub(crate) fn faults(&self) -> Option<&FaultInjector> {
        self.inner.faults.as_deref()
    }

    /// Replaces the segment list by `f(current)`, atomically for readers (copy on write). The
    /// writer's roll takes the same lock, so a segment it adds meanwhile is never lost: `f` sees it.
    pub(crate) fn update_segments(&self, f: impl FnOnce(&[Arc<Segment>]) -> Vec<Arc<Segment>>) {
        let mut list = self.inner.segments.write();
        let next = f(&list);
        assert!(!next.is_empty(), "a partition always has its active segment");
        *list = Arc::new(next);
    }

    /// Moves the log start offset forward to `offset`, durably (the file first, then readers see it).
    /// Reads below it get `OffsetOutOfRange` from then on.
    pub(crate) fn advance_log_start_offset(&self, offset: u64) -> Result<()> {
        if offset <= self.log_start_offset() {
            return Ok(());
        }
        super::offset_file::write(&self.inner.dir.join(LOG_START_OFFSET_FILE), offset)?;
        self.inner.log_start_offset.fetch_max(offset, Ordering::AcqRel);
        Ok(())
    }

    pub(crate) fn poisoned_error(&self) -> Error {
        Error::Poisoned { topic: self.inner.topic.to_string(), partition: self.inner.id }
    }

    /// Poisons the partition (logging `why` once) and wakes every thread waiting for an fsync.
    pub(crate) fn poison(&self, why: &dyn std::fmt::Display) {
        if !self.inner.poisoned.swap(true, Ordering::AcqRel) {
            tracing::error!(topic = %self.inner.topic, partition = self.inner.id, error = %why, "partition poisoned");
        }
        let _g = self.inner.sync.lock();
        self.inner.synced.notify_all();
    }

    /// Marks the partition's topic deleted, and waits for a write (or roll) in progress: once
    /// this returns, no write of this handle creates files at its path again, where a topic
    /// created again under the name may live.
    pub(crate) fn mark_deleted(&self) {
        self.inner.deleted.store(true, Ordering::Release);
        drop(self.inner.writer.lock());
    }

    /// Whether its topic was deleted (a reader holding this handle reads what was there).
    pub(crate) fn is_deleted(&self) -> bool {
        self.inner.deleted.load(Ordering::Acquire)
    }

    /// The store is closing: later appends fail.
    pub(crate) fn mark_closed(&self) {
        self.inner.closed.store(true, Ordering::Release);
    }

    /// `sync` appends queued for the next group commit: prepared, not yet written (a gauge).
    pub fn queued_appends(&self) -> usize {
        self.inner.queued.load(Ordering::Acquire)
    }

    /// The group commit queued (`1`) or took (`-1`) one of this partition's batches.
    pub(crate) fn queued_changed(&self, delta: isize) {
        match delta >= 0 {
            true => self.inner.queued.fetch_add(delta as usize, Ordering::AcqRel),
            false => self.inner.queued.fetch_sub(delta.unsigned_abs(), Ordering::AcqRel),
        };
    }

    /// Whether `other` is a handle to the same partition.
    pub(crate) fn same(&self, other: &Partition) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }

    /// The store's group commit.
    pub(crate) fn committer(&self) -> &CommitHandle {
        &self.inner.committer
    }
}

/// The map capacity of an active segment: room for `segment_bytes` plus one oversized batch.
fn capacity_for(cfg: &TopicConfig) -> usize {
    (cfg.segment_bytes + BATCH_BYTES_MAX as u64) as usize
}
