//! A partition: an ordered list of segments, one writer, many readers, group-committed fsyncs.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use parking_lot::{Condvar, Mutex, RwLock};

use super::batch::{self, ATTRIBUTE_LOG_APPEND_TIME};
use super::commit::{finish_all, After, CommitQueue, Done, ThreadWaiter, Waiter};
use super::io;
use super::record::{self, NewRecord, Record, RecordFields};
use super::segment::{self, Flow, IndexCursor, ReadBatch, Segment, SegmentFiles, TIMESTAMP_NONE};
use crate::clock::Clock;
use crate::config::{Durability, TimestampType, TopicConfig, BATCH_BYTES_MAX, BATCH_RECORDS_MAX};
use crate::error::{Corruption, Error, Result};
use crate::fault::FaultInjector;

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

/// A validated, encoded batch waiting for its base offset (see [`Partition::prepare`]).
#[derive(Debug)]
pub(crate) struct PreparedBatch {
    buf: Vec<u8>,
    body_crc: crc32fast::Hasher,
    cfg: TopicConfig,
    now: i64,
}

#[cfg(test)]
impl PreparedBatch {
    /// A batch that is only queued, never written (the commit queue's tests).
    pub(crate) fn empty_for_tests() -> PreparedBatch {
        PreparedBatch { buf: Vec::new(), body_crc: crc32fast::Hasher::new(), cfg: TopicConfig::default(), now: 0 }
    }
}

/// What writing one batch gave: its offsets, the end offset to wait for, and its durability.
type Written = Result<(Appended, u64, Durability)>;

/// Batches of a group laid out for one `write()`, and the writer's state as it will be once they are
/// written (the writer itself changes only after the write succeeds).
struct Staged {
    bytes: Vec<u8>,
    cursor: IndexCursor,
    next_offset: u64,
    created_ms: i64,
    batches: Vec<StagedBatch>,
}

struct StagedBatch {
    /// Its place in the group.
    index: usize,
    header: batch::BatchHeader,
    position_end: u64,
    entries: (Option<super::index::OffsetEntry>, Option<super::index::TimeEntry>),
    appended: Appended,
    durability: Durability,
}

impl Staged {
    fn new(w: &Writer) -> Staged {
        Staged {
            bytes: Vec::new(),
            cursor: w.cursor.clone(),
            next_offset: w.next_offset,
            created_ms: w.created_ms,
            batches: Vec::new(),
        }
    }
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
    /// `sync` appends waiting for a group commit (see `commit.rs`).
    commits: CommitQueue,
    poisoned: AtomicBool,
    deleted: AtomicBool,
    closed: AtomicBool,
    last_flush_ms: AtomicI64,
    corruption: Mutex<Option<(PathBuf, u64, Corruption)>>,
    /// The cleaner's state for this partition; its lock serializes retention and compaction.
    maintenance: Mutex<crate::cleaner::CleanerState>,
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
    /// `sync` appends keep ahead of it (see [`ZERO_TAIL_BYTES`]).
    file_len: u64,
    /// The end of the active segment's blocks reserved ahead of its log's end for appends that are
    /// not `sync` (see [`RESERVE_AHEAD_MAX`]); at most the log's end when none are.
    reserved_to: u64,
}

/// Before writing a group with no `sync` batch, the writer reserves the active segment's disk blocks
/// ahead of the log's end (`fallocate` with `FALLOC_FL_KEEP_SIZE`: the file's size, and so what
/// readers and recovery see, does not change) when the group would pass the reserved end: up to
/// [`RESERVE_AHEAD_GROUPS`] groups like it ahead, at least [`RESERVE_AHEAD_MIN`], at most this,
/// never past `segment_bytes`. Writes into reserved blocks skip the file system's block reservation
/// per page: a `write()` of 1 MiB measured 12 - 20% faster on ext4 (README, Benchmarks). The blocks
/// left past the log's end are freed when the segment is sealed, at a clean shutdown, and by the
/// next open after a crash; until then an active segment holds at most this much unused.
const RESERVE_AHEAD_MAX: u64 = 8 * 1024 * 1024;
const RESERVE_AHEAD_MIN: u64 = 1024 * 1024;
const RESERVE_AHEAD_GROUPS: u64 = 8;

/// Under `sync`, the active segment's file is kept this far ahead of the log's end, zero-filled
/// (topped up when less than half of it is left). A group commit then writes over blocks that are
/// already allocated and a file size that does not change, so its `fdatasync` writes the data alone,
/// not the block allocation and the inode as well: about half the time of an fsync that extends the
/// file, on ext4 (PostgreSQL zero-fills its WAL segments for the same reason). The tail is cut when
/// the segment is sealed and at a clean shutdown; after a crash, recovery cuts it as a torn tail.
const ZERO_TAIL_BYTES: u64 = 256 * 1024;

/// Only a group smaller than this tops the zero tail up. A big group's fsync is mostly its data, so
/// the allocation it saves is small, while zeroing ahead of every such group writes about a quarter
/// more (measured: `sync` appends of 100 KiB and 1 MiB batches were 10–15% slower with it).
const ZERO_TAIL_GROUP_BYTES_MAX: u64 = ZERO_TAIL_BYTES / 4;

#[derive(Debug)]
struct SyncState {
    /// Every offset below this is on stable storage.
    durable: u64,
    /// A thread is in fsync now; the others wait for it (group commit).
    syncing: bool,
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
    /// Opens (or creates) the partition in `dir`, recovering the active segment when `clean` is false.
    pub(crate) fn open(
        topic: Arc<str>,
        id: u32,
        dir: PathBuf,
        config: Arc<RwLock<TopicConfig>>,
        clock: Arc<dyn Clock>,
        faults: Option<Arc<FaultInjector>>,
        clean: bool,
    ) -> Result<Partition> {
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        // Finish or discard a compaction swap that a crash interrupted, before listing segments.
        crate::cleaner::recover_swap(&dir)?;
        let saved_log_start = super::offset_file::read(&dir.join(LOG_START_OFFSET_FILE))?;
        let cfg = config.read().clone();
        let mut bases = Vec::new();
        for entry in std::fs::read_dir(&dir).map_err(|e| Error::io(&dir, e))? {
            let entry = entry.map_err(|e| Error::io(&dir, e))?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if let Some(base) = segment::parse_file_name(&name, "log") {
                bases.push(base);
            } else if name.ends_with(".tmp") {
                let _ = std::fs::remove_file(entry.path());
            }
        }
        bases.sort_unstable();
        // Retention persists the new log start before deleting files: finish a deletion a crash
        // interrupted (a sealed segment wholly below the log start). The last segment always stays.
        if let Some(start) = saved_log_start {
            while bases.len() > 1 && bases[1] <= start {
                let (log, index, time_index) = Segment::paths(&dir, bases[0]);
                for p in [log, index, time_index] {
                    if let Err(e) = std::fs::remove_file(&p) {
                        if e.kind() != std::io::ErrorKind::NotFound {
                            return Err(Error::io(&p, e));
                        }
                    }
                }
                bases.remove(0);
                io::sync_dir(&dir)?;
            }
        }
        let capacity = capacity_for(&cfg);
        let interval = cfg.index_interval_bytes;
        let mut segments = Vec::with_capacity(bases.len().max(1));
        for (i, &base) in bases.iter().enumerate().take(bases.len().saturating_sub(1)) {
            segments.push(Segment::open_sealed(&dir, base, bases[i + 1], interval)?);
        }
        let now = clock.now_ms();
        let (segment, files, cursor, corruption) = match bases.last() {
            Some(&base) => Segment::open_active(&dir, base, capacity, interval, clean)?,
            None => {
                let (s, f) = Segment::create(&dir, 0, capacity, interval)?;
                (s, f, IndexCursor::new(), None)
            }
        };
        let next_offset = segment.next_offset();
        // `segment_ms` counts from the active segment's first append, across restarts too: the
        // newest timestamp of its first batch stands for that time (Kafka's rule), never later than now.
        let data = segment.data();
        let created_ms = match segment.batch_at(&data, 0) {
            Ok((h, _)) => h.max_timestamp.min(now),
            _ => now,
        };
        segments.push(Arc::clone(&segment));
        let log_start_offset = segments[0].base_offset.max(saved_log_start.unwrap_or(0)).min(next_offset);
        let corruption = corruption.map(|(pos, c)| (segment.log_path.clone(), pos, c));
        let (high_watermark_tx, _) = tokio::sync::watch::channel(next_offset);
        Ok(Partition {
            inner: Arc::new(Inner {
                topic,
                id,
                dir,
                config,
                clock,
                faults,
                segments: RwLock::new(Arc::new(segments)),
                writer: Mutex::new(Writer {
                    segment,
                    files,
                    // Recovery cut the file to its last valid batch (a clean shutdown left it there).
                    file_len: cursor.position,
                    reserved_to: cursor.position,
                    cursor,
                    next_offset,
                    created_ms,
                    segment_bytes: cfg.segment_bytes,
                }),
                log_start_offset: AtomicU64::new(log_start_offset),
                high_watermark: AtomicU64::new(next_offset),
                high_watermark_tx,
                sync: Mutex::new(SyncState { durable: next_offset, syncing: false }),
                synced: Condvar::new(),
                commits: CommitQueue::default(),
                poisoned: AtomicBool::new(false),
                deleted: AtomicBool::new(false),
                closed: AtomicBool::new(false),
                last_flush_ms: AtomicI64::new(now),
                corruption: Mutex::new(corruption),
                maintenance: Mutex::new(crate::cleaner::CleanerState::default()),
            }),
        })
    }

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

    // ---- for the cleaner (src/cleaner): retention and compaction ----

    pub(crate) fn maintenance(&self) -> &Mutex<crate::cleaner::CleanerState> {
        &self.inner.maintenance
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

    fn poisoned_error(&self) -> Error {
        Error::Poisoned { topic: self.inner.topic.to_string(), partition: self.inner.id }
    }

    fn poison(&self, why: &Error) {
        if !self.inner.poisoned.swap(true, Ordering::AcqRel) {
            tracing::error!(topic = %self.inner.topic, partition = self.inner.id, error = %why, "partition poisoned");
        }
        let _g = self.inner.sync.lock();
        self.inner.synced.notify_all();
    }

    pub(crate) fn mark_deleted(&self) {
        self.inner.deleted.store(true, Ordering::Release);
    }

    /// The store is closing: later appends fail.
    pub(crate) fn mark_closed(&self) {
        self.inner.closed.store(true, Ordering::Release);
    }

    /// Appends `records` as one batch and returns once they are durable under the topic's durability.
    /// Nothing is written when a record breaks a limit. Blocking: call it from a blocking thread.
    pub fn append(&self, records: &[NewRecord]) -> Result<Appended> {
        let prepared = self.prepare(records)?;
        if prepared.cfg.durability != Durability::Sync {
            return self.write_prepared(prepared).map(|(appended, _, _)| appended);
        }
        let waiter = ThreadWaiter::new();
        if self.inner.commits.enqueue(prepared, Waiter::Thread(Arc::clone(&waiter))) {
            self.lead();
        }
        waiter.wait()
    }

    /// [`append`](Self::append) for async callers: the batch is encoded on the calling task; under
    /// `sync` it joins the group commit queue and the task awaits its result (a leader runs on
    /// tokio's blocking pool); otherwise it is written on the blocking pool.
    pub async fn append_async(&self, records: Vec<NewRecord>) -> Result<Appended> {
        let prepared = self.prepare(&records)?;
        drop(records);
        let p = self.clone();
        if prepared.cfg.durability != Durability::Sync {
            let written = tokio::task::spawn_blocking(move || p.write_prepared(prepared));
            return written.await.expect("append does not panic").map(|(appended, _, _)| appended);
        }
        let (tx, rx) = tokio::sync::oneshot::channel();
        let runtime = tokio::runtime::Handle::current();
        if self.inner.commits.enqueue(prepared, Waiter::Task { tx, runtime: runtime.clone() }) {
            runtime.spawn_blocking(move || p.lead_pool());
        }
        rx.await.expect("the group commit leader does not panic")
    }

    /// The offset after the last record written (Kafka's log end offset): ahead of the high
    /// watermark by the batches written and not yet fsynced under `sync`.
    pub fn log_end_offset(&self) -> u64 {
        self.inner.writer.lock().next_offset
    }

    /// `sync` appends queued for the next group commit: prepared, not yet written (a gauge).
    pub fn queued_appends(&self) -> usize {
        self.inner.commits.len()
    }

    /// An appending thread leads one group, then hands the lead to a committer thread or a pool
    /// leader if appenders queued meanwhile, and wakes its group (see `commit.rs`).
    fn lead(&self) {
        let done = self.commit_group(true);
        let lead_here = match self.inner.commits.after_group() {
            After::Stop => false,
            After::StartCommitter => {
                let p = self.clone();
                let spawned = self.spawn("kappalog-commit", move || p.lead_threads());
                // Still correct, only slower: this thread keeps the lead while appenders come.
                spawned
                    .inspect_err(|e| tracing::warn!(error = %e, "cannot start a group commit thread; the appending thread leads"))
                    .is_err()
            }
            After::StartPoolLeader(runtime) => {
                let p = self.clone();
                runtime.spawn_blocking(move || p.lead_pool());
                false
            }
        };
        finish_all(done);
        if lead_here {
            self.lead_pool();
        }
    }

    /// A blocking-pool thread leads groups for tasks until no appender comes back in time.
    fn lead_pool(&self) {
        loop {
            finish_all(self.commit_group(true));
            if !self.inner.commits.keep_leading() {
                return;
            }
        }
    }

    /// A committer thread leads groups until no appender comes back in time, like
    /// [`lead_pool`](Self::lead_pool), but hands each group's wake-ups to a waker thread and goes
    /// straight on to the next group (see `commit.rs`). Without a waker thread it wakes them itself.
    fn lead_threads(&self) {
        let (tx, rx) = std::sync::mpsc::channel::<Done>();
        let waker = self.spawn("kappalog-wake", move || rx.into_iter().for_each(finish_all));
        if let Err(e) = &waker {
            tracing::debug!(error = %e, "cannot start a waker thread; the committer wakes appenders itself");
        }
        loop {
            let done = self.commit_group(false);
            // The waker drains the channel before it exits (when `tx` drops), so a send fails only
            // if it never started: then the group is woken here.
            if let Err(back) = tx.send(done) {
                finish_all(back.0);
            }
            if !self.inner.commits.keep_leading() {
                return;
            }
        }
    }

    /// Starts a thread of the group commit (the fault injector may make it fail, for tests).
    fn spawn(&self, name: &str, f: impl FnOnce() + Send + 'static) -> std::io::Result<std::thread::JoinHandle<()>> {
        self.faults().map_or(Ok(()), |faults| faults.before_spawn(name))?;
        std::thread::Builder::new().name(name.into()).spawn(f)
    }

    /// Writes every queued `sync` batch (after gathering, if `gather`: see `CommitQueue::take`) and
    /// fsyncs once; the result of each.
    fn commit_group(&self, gather: bool) -> Done {
        let (batches, waiters): (Vec<_>, Vec<_>) =
            self.inner.commits.take(gather).into_iter().map(|q| (q.batch, q.waiter)).unzip();
        let mut end = None;
        let written: Vec<Result<Appended>> = self
            .write_group(batches)
            .into_iter()
            .map(|r| {
                r.map(|(appended, e, _)| {
                    end = Some(e);
                    appended
                })
            })
            .collect();
        // A failed fsync poisons the partition: no append of the group is durable.
        let mut sync_error = end
            .map_or(Ok(()), |e| {
                let started = Instant::now();
                let synced = self.sync_through(e);
                self.inner.commits.record_sync_time(started.elapsed());
                synced
            })
            .err();
        let synced = sync_error.is_none();
        waiters
            .into_iter()
            .zip(written)
            .map(|(waiter, written)| {
                let result = written.and_then(|a| match synced {
                    true => Ok(a),
                    false => Err(sync_error.take().unwrap_or_else(|| self.poisoned_error())),
                });
                (waiter, result)
            })
            .collect()
    }

    /// Validates `records` against the topic's limits and encodes them as one batch, writing
    /// nothing: a multi-partition append prepares every batch before it writes any.
    pub(crate) fn prepare(&self, records: &[NewRecord]) -> Result<PreparedBatch> {
        let cfg = self.inner.config.read().clone();
        let now = self.inner.clock.now_ms();
        let (buf, body_crc) = encode(records, &cfg, now)?;
        Ok(PreparedBatch { buf, body_crc, cfg, now })
    }

    /// Writes a prepared batch under the partition's lock.
    pub(crate) fn write_prepared(&self, prepared: PreparedBatch) -> Result<(Appended, u64, Durability)> {
        self.write_group(vec![prepared]).pop().expect("one result per batch")
    }

    /// Why nothing can be written now, if so. Called under the writer lock.
    fn unwritable(&self) -> Option<Error> {
        if self.inner.deleted.load(Ordering::Acquire) {
            Some(Error::TopicNotFound(self.inner.topic.to_string()))
        } else if self.inner.closed.load(Ordering::Acquire) {
            Some(Error::Closed)
        } else if self.is_poisoned() {
            Some(self.poisoned_error())
        } else {
            None
        }
    }

    /// Writes prepared batches in order, under one hold of the writer lock, with one `write()` for
    /// each run of batches that go to the same segment. One result per batch, in order, each with
    /// the end offset to wait for. A failed write or roll poisons the partition; the batches it
    /// carried and every later one fail.
    pub(crate) fn write_group(&self, batches: Vec<PreparedBatch>) -> Vec<Result<(Appended, u64, Durability)>> {
        let mut results: Vec<Option<Written>> = Vec::with_capacity(batches.len());
        let mut w = self.inner.writer.lock();
        let mut staged = Staged::new(&w);
        for (i, prepared) in batches.into_iter().enumerate() {
            results.push(None);
            if let Some(e) = self.unwritable() {
                results[i] = Some(Err(e));
                continue;
            }
            let PreparedBatch { mut buf, body_crc, cfg, now } = prepared;
            let batch_len = buf.len() as u64;
            let c = &staged.cursor;
            if c.position > 0
                && (c.position + batch_len > w.segment_bytes || now - staged.created_ms >= cfg.segment_ms as i64)
            {
                let rolled = match self.write_staged(&mut w, &mut staged, &mut results) {
                    true => self.roll_locked(&mut w, &cfg),
                    false => Err(self.poisoned_error()),
                };
                if let Err(e) = rolled {
                    self.poison(&e);
                    results[i] = Some(Err(e));
                    continue;
                }
                staged = Staged::new(&w);
            }
            let base_offset = staged.next_offset;
            let header = batch::set_base_offset(&mut buf, base_offset, &body_crc);
            let entries = staged.cursor.entries_for(w.segment.base_offset, &header, cfg.index_interval_bytes);
            if staged.cursor.position == batch_len {
                staged.created_ms = now;
            }
            staged.next_offset = header.next_offset();
            if staged.bytes.is_empty() {
                // Most groups are one batch: write its buffer as it is, no copy.
                super::buffers::give(std::mem::replace(&mut staged.bytes, buf));
            } else {
                staged.bytes.extend_from_slice(&buf);
                super::buffers::give(buf);
            }
            let appended = Appended {
                partition: self.inner.id,
                base_offset,
                last_offset: header.last_offset(),
                timestamp: header.first_timestamp,
                log_append_time_ms: now,
            };
            staged.batches.push(StagedBatch {
                index: i,
                header,
                position_end: staged.cursor.position,
                entries,
                appended,
                durability: cfg.durability,
            });
        }
        self.write_staged(&mut w, &mut staged, &mut results);
        drop(w);
        results.into_iter().map(|r| r.expect("every batch has a result")).collect()
    }

    /// Writes the staged batches (log bytes, then their index entries), publishes them and records
    /// their results. On a failure it poisons the partition, gives the error to the first batch and
    /// `Poisoned` to the others, and returns `false`.
    fn write_staged(&self, w: &mut Writer, staged: &mut Staged, results: &mut [Option<Written>]) -> bool {
        if staged.batches.is_empty() {
            return true;
        }
        let faults = self.inner.faults.as_deref();
        if staged.batches.iter().all(|b| b.durability != Durability::Sync) {
            Self::reserve_ahead(w, staged.bytes.len() as u64);
        }
        // The group's index entries, one `write()` per index file.
        let index_entries = || -> Result<()> {
            let (mut offsets, mut times) = (Vec::new(), Vec::new());
            for b in &staged.batches {
                if let Some(e) = b.entries.0 {
                    offsets.extend_from_slice(&e.encode());
                }
                if let Some(e) = b.entries.1 {
                    times.extend_from_slice(&e.encode());
                }
            }
            if !offsets.is_empty() {
                segment::append_entry(&w.files.index, &w.segment.index_path, &offsets, faults)?;
            }
            if !times.is_empty() {
                segment::append_entry(&w.files.time_index, &w.segment.time_index_path, &times, faults)?;
            }
            Ok(())
        };
        let position = w.cursor.position;
        let written = io::write_at(&w.files.log, &w.segment.log_path, &staged.bytes, position, faults)
            .and_then(|()| index_entries());
        let batches = std::mem::take(&mut staged.batches);
        let group_bytes = staged.bytes.len() as u64;
        super::buffers::give(std::mem::take(&mut staged.bytes));
        if let Err(e) = written {
            self.poison(&e);
            let mut first = Some(e);
            for b in &batches {
                results[b.index] = Some(Err(first.take().unwrap_or_else(|| self.poisoned_error())));
            }
            return false;
        }
        w.cursor = staged.cursor.clone();
        w.next_offset = staged.next_offset;
        w.created_ms = staged.created_ms;
        w.file_len = w.file_len.max(w.cursor.position);
        if group_bytes < ZERO_TAIL_GROUP_BYTES_MAX && batches.iter().any(|b| b.durability == Durability::Sync) {
            Self::top_up_zero_tail(w);
        }
        for b in batches {
            w.segment.publish(&b.header, b.position_end, b.entries);
            let end = b.header.next_offset();
            if b.durability != Durability::Sync {
                self.advance_high_watermark(end);
            }
            results[b.index] = Some(Ok((b.appended, end, b.durability)));
        }
        true
    }

    /// Keeps a zero-filled tail of about [`ZERO_TAIL_BYTES`] after the log's end (not past the roll
    /// point). Only bytes after the end are written. Best effort: the tail only makes fsyncs
    /// cheaper, so a failure to write it (a full disk) is logged, not an append's error.
    fn top_up_zero_tail(w: &mut Writer) {
        let end = w.cursor.position;
        if w.file_len >= end + ZERO_TAIL_BYTES / 2 {
            return;
        }
        let target = (end + ZERO_TAIL_BYTES).next_multiple_of(4096).min(w.segment_bytes.max(end));
        if target <= w.file_len {
            return;
        }
        match io::write_zeros(&w.files.log, w.file_len, target) {
            Ok(()) => w.file_len = target,
            Err(e) => {
                tracing::warn!(path = %w.segment.log_path.display(), error = %e, "cannot zero-fill ahead of the log")
            }
        }
    }

    /// Reserves the active segment's blocks ahead of a group of `group_bytes` about to be written
    /// at the log's end, if it would pass the reserved end (see [`RESERVE_AHEAD_MAX`]). Best effort:
    /// where the file system cannot (or the disk is full), appends go on without, and this segment
    /// does not try again.
    fn reserve_ahead(w: &mut Writer, group_bytes: u64) {
        let end = w.cursor.position + group_bytes;
        if end <= w.reserved_to || end > w.segment_bytes {
            return;
        }
        let ahead = group_bytes.saturating_mul(RESERVE_AHEAD_GROUPS).clamp(RESERVE_AHEAD_MIN, RESERVE_AHEAD_MAX);
        let from = w.reserved_to.max(w.cursor.position);
        let to = (end + ahead).min(w.segment_bytes);
        match io::reserve(&w.files.log, from, to) {
            Ok(()) => w.reserved_to = to,
            Err(e) => {
                tracing::debug!(path = %w.segment.log_path.display(), error = %e, "cannot reserve blocks ahead of the log");
                w.reserved_to = w.segment_bytes;
            }
        }
    }

    /// Cuts the active segment's file where its log ends: its zero-filled tail and the blocks
    /// reserved past it (a `set_len` to the size it has frees those). Returns `true` if the file's
    /// size changed. Does not fsync: the caller does (a size change is part of what `fdatasync`
    /// writes; freed reserved blocks need no fsync).
    fn cut_tail(w: &mut Writer) -> Result<bool> {
        let end = w.cursor.position;
        if w.file_len <= end && w.reserved_to <= end {
            return Ok(false);
        }
        w.files.log.set_len(end).map_err(|e| Error::io(&w.segment.log_path, e))?;
        let resized = w.file_len > end;
        (w.file_len, w.reserved_to) = (end, end);
        Ok(resized)
    }

    /// At a clean shutdown, after [`flush`](Self::flush): cuts the active segment's file at its
    /// log's end ([`cut_tail`](Self::cut_tail)) and fsyncs a new size, so that the next open finds
    /// the log's end at the file's.
    pub(crate) fn cut_tail_for_close(&self) -> Result<()> {
        let mut w = self.inner.writer.lock();
        match Self::cut_tail(&mut w)? {
            true => io::sync_data(&w.files.log, &w.segment.log_path, None),
            false => Ok(()),
        }
    }

    /// Seals the active segment (fsyncs it and its indexes) and starts a new one at the next offset.
    fn roll_locked(&self, w: &mut Writer, cfg: &TopicConfig) -> Result<()> {
        let faults = self.inner.faults.as_deref();
        // A sealed segment's file ends where its log does (its map is the file's length).
        Self::cut_tail(w)?;
        let last_rel = (w.next_offset - 1 - w.segment.base_offset) as u32;
        if let Some(e) = w.cursor.final_time_entry(last_rel) {
            segment::append_entry(&w.files.time_index, &w.segment.time_index_path, &e.encode(), faults)?;
            w.segment.push_time_entry(e);
        }
        io::sync_data(&w.files.log, &w.segment.log_path, faults)?;
        io::sync_data(&w.files.index, &w.segment.index_path, faults)?;
        io::sync_data(&w.files.time_index, &w.segment.time_index_path, faults)?;
        self.mark_durable(w.next_offset);
        let (segment, files) =
            Segment::create(&self.inner.dir, w.next_offset, capacity_for(cfg), cfg.index_interval_bytes)?;
        {
            let mut list = self.inner.segments.write();
            let mut next = Vec::with_capacity(list.len() + 1);
            next.extend(list.iter().cloned());
            next.push(Arc::clone(&segment));
            *list = Arc::new(next);
        }
        *w = Writer {
            segment,
            files,
            cursor: IndexCursor::new(),
            next_offset: w.next_offset,
            created_ms: self.inner.clock.now_ms(),
            segment_bytes: cfg.segment_bytes,
            file_len: 0,
            reserved_to: 0,
        };
        Ok(())
    }

    /// Seals the active segment now if it holds anything (a new one starts). For tests and tools.
    pub fn roll(&self) -> Result<()> {
        let cfg = self.inner.config.read().clone();
        let mut w = self.inner.writer.lock();
        if self.is_poisoned() {
            return Err(self.poisoned_error());
        }
        if w.cursor.position == 0 {
            return Ok(());
        }
        self.roll_locked(&mut w, &cfg).inspect_err(|e| self.poison(e))
    }

    fn advance_high_watermark(&self, end: u64) {
        let old = self.inner.high_watermark.fetch_max(end, Ordering::AcqRel);
        if end > old {
            self.inner.high_watermark_tx.send_if_modified(|hw| {
                let moved = end > *hw;
                *hw = (*hw).max(end);
                moved
            });
        }
    }

    fn mark_durable(&self, end: u64) {
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
            let (file, path, target) = {
                let w = self.inner.writer.lock();
                (Arc::clone(&w.files.log), w.segment.log_path.clone(), w.next_offset)
            };
            let result = io::sync_data(&file, &path, self.inner.faults.as_deref());
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
            .inspect_err(|e| self.poison(e))
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

    fn out_of_range(&self, offset: u64) -> Error {
        Error::OffsetOutOfRange {
            topic: self.inner.topic.to_string(),
            partition: self.inner.id,
            offset,
            log_start_offset: self.log_start_offset(),
            high_watermark: self.high_watermark(),
        }
    }

    /// Reads records from `offset` on: at most `max_records`, and batches up to about `max_bytes`
    /// (the first batch is returned whatever its size). Reading at the high watermark returns
    /// nothing; below the log start or above the high watermark is `OffsetOutOfRange`.
    /// Records share the segment's memory map (no copy).
    pub fn read(&self, offset: u64, max_bytes: usize, max_records: usize) -> Result<Vec<Record>> {
        let (mut out, mut bytes_read) = (Vec::new(), 0);
        self.read_segments(offset, max_records, |s, from, high_watermark| {
            s.read(from, high_watermark, max_bytes, max_records, &mut out, &mut bytes_read)
        })?;
        Ok(out)
    }

    /// Like [`read`](Self::read), with the same budgets and errors, but gives the CRC-checked
    /// batches, whose records [`ReadBatch::for_each`] lends instead of decoding them into owned
    /// `Record`s: no allocation or reference count per record. What views use to replay. Records
    /// are counted against `max_records` by offset span (so a compacted batch may give fewer), and
    /// `for_each` returns the offset to read next.
    ///
    /// ```
    /// use kappalog::{NewRecord, Store, StoreConfig, TopicConfig};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let store = Store::open(dir.path(), StoreConfig::default())?;
    /// let p = store.create_topic("clicks", 1, TopicConfig::default())?.partition(0)?;
    /// p.append(&[NewRecord::new("a"), NewRecord::new("bb"), NewRecord::new("ccc")])?;
    ///
    /// // Replay from offset 1: sum the value lengths without copying or allocating per record.
    /// let (mut next, mut value_bytes) = (1, 0);
    /// while next < p.high_watermark() {
    ///     for batch in p.read_batches(next, 1 << 20, 10_000)? {
    ///         next = batch.for_each(|r| value_bytes += r.value.map_or(0, |v| v.len()))?;
    ///     }
    /// }
    /// assert_eq!((next, value_bytes), (3, 5));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn read_batches(&self, offset: u64, max_bytes: usize, max_records: usize) -> Result<Vec<ReadBatch>> {
        let (mut out, mut bytes_read, mut records) = (Vec::new(), 0, 0);
        self.read_segments(offset, max_records, |s, from, high_watermark| {
            s.read_batches(from, high_watermark, max_bytes, max_records, &mut out, &mut bytes_read, &mut records)
        })?;
        Ok(out)
    }

    /// The walk both reads share: checks `offset` against the log's range, then calls `read` with
    /// each segment below the high watermark from the one holding `offset` on (and the offset to
    /// read it from) until it says stop. Nothing is read at the high watermark or without budget.
    fn read_segments(
        &self,
        offset: u64,
        max_records: usize,
        mut read: impl FnMut(&Arc<Segment>, u64, u64) -> Result<Flow>,
    ) -> Result<()> {
        let high_watermark = self.high_watermark();
        if offset < self.log_start_offset() || offset > high_watermark {
            return Err(self.out_of_range(offset));
        }
        if offset == high_watermark || max_records == 0 {
            return Ok(());
        }
        let segments = self.segments();
        let first = segments.partition_point(|s| s.base_offset <= offset).saturating_sub(1);
        let mut from = offset;
        for s in &segments[first..] {
            if s.base_offset >= high_watermark || read(s, from, high_watermark)? == Flow::Stop {
                break;
            }
            from = from.max(s.next_offset());
        }
        Ok(())
    }

    /// The first offset at or after the log start whose record has a timestamp `>= timestamp`
    /// (Kafka's `offsetsForTimes`); `None` when every record is older.
    pub fn offset_for_timestamp(&self, timestamp: i64) -> Result<Option<u64>> {
        let high_watermark = self.high_watermark();
        let start = self.log_start_offset();
        let segments = self.segments();
        let first = segments.partition_point(|s| s.base_offset <= start).saturating_sub(1);
        for s in &segments[first..] {
            if s.max_timestamp()? < timestamp {
                continue;
            }
            if let Some(o) = s.find_timestamp(timestamp, start, high_watermark)? {
                return Ok(Some(o));
            }
        }
        Ok(None)
    }

    /// Waits until a record at `offset` or later can be read (the high watermark passes `offset`).
    /// A notification, not a poll.
    pub async fn wait_for_data(&self, offset: u64) {
        let mut rx = self.inner.high_watermark_tx.subscribe();
        let _ = rx.wait_for(|hw| *hw > offset).await;
    }
}

/// The map capacity of an active segment: room for `segment_bytes` plus one oversized batch.
fn capacity_for(cfg: &TopicConfig) -> usize {
    (cfg.segment_bytes + BATCH_BYTES_MAX as u64) as usize
}

/// What the encoder needs of record `i` of a batch.
fn fields(i: usize, r: &NewRecord, timestamp_delta: i64) -> RecordFields<'_> {
    let (key, value, headers) = (r.key.as_deref(), r.value.as_deref(), &r.headers);
    RecordFields { offset_delta: i as u32, timestamp_delta, key, value, headers }
}

/// Validates `records` against the topic's limits and encodes them as one batch (base offset 0).
///
/// One pass: each record is checked, sized and encoded in turn, into a pooled buffer sized by a
/// guess (every record as big as the first) that grows when the guess falls short. The separate
/// sizing pass this replaced made appends of 1000 x 100 B records about 5% slower. A batch over
/// [`BATCH_BYTES_MAX`] is only sized from there on, so that its error gives its whole size.
fn encode(records: &[NewRecord], cfg: &TopicConfig, now: i64) -> Result<(Vec<u8>, crc32fast::Hasher)> {
    if records.is_empty() {
        return Err(Error::InvalidRecord("an append needs at least one record".into()));
    }
    if records.len() > BATCH_RECORDS_MAX as usize {
        return Err(Error::LimitExceeded {
            limit: "BATCH_RECORDS_MAX",
            value: records.len() as u64,
            max: BATCH_RECORDS_MAX as u64,
        });
    }
    let log_append = cfg.timestamp_type == TimestampType::LogAppendTime;
    let timestamp = |r: &NewRecord| if log_append { now } else { r.timestamp.unwrap_or(now) };
    let first_ts = timestamp(&records[0]);
    let fields_of = |i: usize, r| fields(i, r, timestamp(r).wrapping_sub(first_ts));
    // Later records' offset and timestamp deltas may take a few more varint bytes than the first's.
    let guess_per_record = record::encoded_len(record::body_len(&fields_of(0, &records[0]))) + 4;
    let bytes_max = BATCH_BYTES_MAX as usize;
    let mut buf = super::buffers::take((batch::HEADER_LEN + records.len() * guess_per_record).min(bytes_max));
    let mut p = batch::HEADER_LEN;
    let mut max_ts = i64::MIN;
    // On an error the buffer is dropped, not given back to the pool: a rare path.
    for (i, r) in records.iter().enumerate() {
        if cfg.cleanup_policy.compacts() && r.key.is_none() {
            return Err(Error::InvalidRecord(format!("record {i} has no key, and the topic is compacted")));
        }
        let f = fields_of(i, r);
        let body = record::body_len(&f);
        let len = record::encoded_len(body);
        if len > cfg.max_message_bytes as usize {
            let max = cfg.max_message_bytes as u64;
            return Err(Error::LimitExceeded { limit: "max_message_bytes", value: len as u64, max });
        }
        if p + len > bytes_max {
            // Too big: size the rest (and check it) without encoding.
            p += len;
            continue;
        }
        if p + len > buf.len() {
            let rest = (records.len() - i - 1) * guess_per_record;
            buf.resize((p + len + rest).min(bytes_max), 0);
        }
        max_ts = max_ts.max(timestamp(r));
        p += record::encode(&mut buf[p..], &f, body);
    }
    if p > bytes_max {
        return Err(Error::LimitExceeded { limit: "BATCH_BYTES_MAX", value: p as u64, max: bytes_max as u64 });
    }
    buf.truncate(p);
    let attributes = if log_append { ATTRIBUTE_LOG_APPEND_TIME } else { 0 };
    let (count, last_delta) = (records.len() as u32, (records.len() - 1) as u32);
    let (_, body_crc) = batch::finish(&mut buf, 0, attributes, (first_ts, max_ts), count, last_delta);
    Ok((buf, body_crc))
}

#[cfg(test)]
mod tests {
    use crate::{CleanupPolicy, Header, NewRecord, Store, StoreConfig, TopicConfig};

    /// The encoder sizes and encodes in one pass into a buffer sized by a guess from the first
    /// record: batches whose later records are much bigger (the buffer grows) or much smaller (it
    /// is cut) read back exactly, also from reused buffers.
    #[test]
    fn one_pass_encoder_outgrows_and_undershoots_its_guess() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
        let p = store.create_topic("t", 1, TopicConfig::default()).unwrap().partition(0).unwrap();
        let record = |len: usize, i: usize| {
            let mut r = NewRecord::keyed(format!("k{i}"), vec![(i % 251) as u8; len]);
            r.headers =
                (0..i % 3).map(|h| Header { key: format!("h{h}"), value: vec![h as u8; i % 50].into() }).collect();
            r
        };
        let grows: Vec<NewRecord> = (0..300).map(|i| record(if i == 0 { 1 } else { 3000 + i }, i)).collect();
        let shrinks: Vec<NewRecord> = (0..300).map(|i| record(if i == 0 { 200_000 } else { i % 7 }, i)).collect();
        let mut expected = Vec::new();
        for batch in [&grows, &shrinks, &grows, &shrinks] {
            p.append(batch).unwrap();
            expected.extend(batch.iter().cloned());
        }
        let mut offset = 0;
        while offset < expected.len() as u64 {
            let got = p.read(offset, 1 << 20, usize::MAX).unwrap();
            assert!(!got.is_empty(), "nothing at {offset}");
            for r in got {
                let want = &expected[r.offset as usize];
                assert_eq!(
                    (&r.key, &r.value, &r.headers),
                    (&want.key, &want.value, &want.headers),
                    "offset {}",
                    r.offset
                );
                offset = r.offset + 1;
            }
        }
    }

    /// A batch over `BATCH_BYTES_MAX` is refused with its whole size (the records after the point
    /// where it went over are sized too), a per-record limit broken after that point is still the
    /// error given (as when every record was checked before the batch's size), and nothing is
    /// written.
    #[test]
    fn one_pass_encoder_reports_whole_batch_size_and_record_limits_first() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
        let cfg = TopicConfig { cleanup_policy: CleanupPolicy::Compact, ..TopicConfig::default() };
        let p = store.create_topic("t", 1, cfg.clone()).unwrap().partition(0).unwrap();
        let value = bytes::Bytes::from(vec![7u8; 1_000_000]);
        let records: Vec<NewRecord> = (0..70).map(|i| NewRecord::keyed(format!("{i}"), value.clone())).collect();
        let whole = super::batch::HEADER_LEN
            + records
                .iter()
                .enumerate()
                .map(|(i, r)| {
                    let f = super::fields(i, r, 0);
                    super::record::encoded_len(super::record::body_len(&f))
                })
                .sum::<usize>();
        match p.append(&records) {
            Err(crate::Error::LimitExceeded { limit: "BATCH_BYTES_MAX", value, .. }) => {
                assert_eq!(value, whole as u64, "the whole batch's size")
            }
            other => panic!("expected BATCH_BYTES_MAX, got {other:?}"),
        }
        let mut too_big = records.clone();
        too_big[69] = NewRecord::keyed("big", vec![0u8; cfg.max_message_bytes as usize]);
        assert!(matches!(p.append(&too_big), Err(crate::Error::LimitExceeded { limit: "max_message_bytes", .. })));
        let mut keyless = records.clone();
        keyless[69] = NewRecord::new(value.clone());
        assert!(matches!(p.append(&keyless), Err(crate::Error::InvalidRecord(_))));
        assert_eq!(p.log_end_offset(), 0, "nothing written");
        p.append(&records[..3]).unwrap();
        assert_eq!(p.log_end_offset(), 3);
    }

    /// `read_batches` lends the records `read` returns (a prefix of them, never fewer than one
    /// when `read` has some), and the offset it says to read next skips no record, also across
    /// the gaps compaction leaves and at segment boundaries.
    #[test]
    fn read_batches_lend_what_read_returns() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
        let cfg = TopicConfig { segment_bytes: 4096, cleanup_policy: CleanupPolicy::Compact, ..TopicConfig::default() };
        let p = store.create_topic("t", 1, cfg).unwrap().partition(0).unwrap();
        let mut n = 0u64;
        for batch in 0..60u64 {
            let records: Vec<NewRecord> = (0..1 + batch % 7)
                .map(|_| {
                    n += 1;
                    let mut r = NewRecord::keyed(format!("k{}", n % 11), format!("value {n}"));
                    if n.is_multiple_of(5) {
                        r.headers.push(Header { key: "h".into(), value: format!("{n}").into() });
                    }
                    r
                })
                .collect();
            p.append(&records).unwrap();
        }
        p.roll().unwrap();
        store.compact("t").unwrap();
        let all = p.read(p.log_start_offset(), usize::MAX, usize::MAX).unwrap();
        assert!(all.len() < n as usize, "compaction left gaps");
        for offset in p.log_start_offset()..=p.high_watermark() {
            for (max_bytes, max_records) in
                [(1, 1), (1, 5), (200, 3), (1000, 1000), (usize::MAX, 2), (usize::MAX, usize::MAX)]
            {
                let read = p.read(offset, max_bytes, max_records).unwrap();
                let batches = p.read_batches(offset, max_bytes, max_records).unwrap();
                let mut lent = Vec::new();
                let mut next = offset;
                for b in &batches {
                    next = b.for_each(|r| lent.push(b.to_record(r))).unwrap();
                }
                assert!(!lent.is_empty() || read.is_empty(), "offset {offset} {max_bytes} {max_records}");
                assert_eq!(lent[..], read[..lent.len()], "offset {offset} {max_bytes} {max_records}");
                if let Some(last) = lent.last() {
                    assert!(next > last.offset, "offset {offset}: next {next} after {}", last.offset);
                }
                let following =
                    all.iter().find(|r| r.offset >= offset && lent.last().is_none_or(|l| r.offset > l.offset));
                if let Some(f) = following {
                    assert!(next <= f.offset, "offset {offset}: next {next} skips record {}", f.offset);
                } else {
                    assert!(next <= p.high_watermark());
                }
            }
        }
    }
}
