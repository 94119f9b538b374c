//! Appends: batches validated and encoded off the writer lock, written in groups, segments rolled.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::encode::encode;
use super::preallocate::ZERO_TAIL_GROUP_BYTES_MAX;
use super::{capacity_for, Appended, Partition, Writer};
use crate::config::{Durability, TopicConfig};
use crate::error::{Error, Result};
use crate::log::batch::{self, ProducerFields};
use crate::log::io;
use crate::log::producer_state::{BatchMetadata, Checked, ProducerState};
use crate::log::record::NewRecord;
use crate::log::recovery_point::{self, RecoveryPoint};
use crate::log::segment::{self, IndexCursor, Segment};

/// A validated, encoded batch waiting for its base offset (see [`Partition::prepare`]).
#[derive(Debug)]
pub(crate) struct PreparedBatch {
    buf: Vec<u8>,
    cfg: TopicConfig,
    now: i64,
    /// Its producer fields (also in `buf`'s header): when a producer id is set, checked against the
    /// partition's producer state when it is written (see `producer_state`).
    producer: ProducerFields,
}

impl PreparedBatch {
    /// A batch encoded (by [`BatchBuilder`](crate::log::builder::BatchBuilder), or a client's
    /// checked batch) under `cfg` at `now`, with `producer` its header's producer fields.
    pub(crate) fn encoded(buf: Vec<u8>, cfg: TopicConfig, now: i64, producer: ProducerFields) -> PreparedBatch {
        PreparedBatch { buf, cfg, now, producer }
    }

    /// Its encoded size in bytes.
    pub(crate) fn len(&self) -> usize {
        self.buf.len()
    }

    /// Whether it must be durable before its append returns.
    pub(crate) fn is_sync(&self) -> bool {
        self.cfg.durability == Durability::Sync
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
    entries: (Option<crate::log::index::OffsetEntry>, Option<crate::log::index::TimeEntry>),
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

impl Partition {
    /// Appends `records` as one batch and returns once they are durable under the topic's durability.
    /// Nothing is written when a record breaks a limit. Blocking: call it from a blocking thread.
    pub fn append(&self, records: &[NewRecord]) -> Result<Appended> {
        self.append_with_producer(records, ProducerFields::NONE)
    }

    /// [`append`](Self::append) for an idempotent producer: the batch carries `producer` (Kafka's
    /// producer id, epoch and base sequence, stored in its header; [`ProducerFields::NONE`] for
    /// none). The id comes from [`Store::init_producer_id`](crate::Store::init_producer_id); the
    /// batch's records take the sequences from `base_sequence` on, so the next batch starts at
    /// [`next_sequence`](crate::log::next_sequence)`(base_sequence, records.len())`. A retry of one
    /// of the producer's last five batches is acknowledged with the offsets it got the first time
    /// and not written again; an out-of-order sequence, an older epoch or negative fields are
    /// [`Error::Producer`] (nothing written). Rules in `segment-format.md`, section 17.
    pub fn append_with_producer(&self, records: &[NewRecord], producer: ProducerFields) -> Result<Appended> {
        let prepared = self.prepare_with_producer(records, producer)?;
        self.append_prepared(prepared)
    }

    /// Writes a prepared batch and returns once it is durable under its topic's durability.
    pub(crate) fn append_prepared(&self, prepared: PreparedBatch) -> Result<Appended> {
        if !prepared.is_sync() {
            return self.write_prepared(prepared).map(|(appended, _, _)| appended);
        }
        self.inner.committer.enqueue_blocking(self, prepared)?.wait()
    }

    /// [`append_prepared`](Self::append_prepared) for async callers.
    pub(crate) async fn append_prepared_async(&self, prepared: PreparedBatch) -> Result<Appended> {
        if !prepared.is_sync() {
            return self.write_prepared_async(prepared).await.map(|(appended, _, _)| appended);
        }
        self.inner.committer.enqueue(self, prepared).await?.wait().await
    }

    /// [`append`](Self::append) for async callers: the batch is encoded on the calling task; under
    /// `sync` it joins the group commit and the task awaits its result; otherwise it is written on
    /// tokio's blocking pool.
    pub async fn append_async(&self, records: Vec<NewRecord>) -> Result<Appended> {
        let prepared = self.prepare(&records)?;
        drop(records);
        self.append_prepared_async(prepared).await
    }

    /// Writes a batch that is not `sync` on tokio's blocking pool. A panic there poisons the
    /// partition; a pool that shuts down before running it gives `Error::Closed`.
    pub(crate) async fn write_prepared_async(&self, prepared: PreparedBatch) -> Result<(Appended, u64, Durability)> {
        let p = self.clone();
        match tokio::task::spawn_blocking(move || p.write_prepared(prepared)).await {
            Ok(written) => written,
            Err(e) if e.is_panic() => {
                self.poison(&format_args!("a write panicked: {e}"));
                Err(self.poisoned_error())
            }
            Err(_) => Err(Error::Closed),
        }
    }

    /// The offset after the last record written (Kafka's log end offset): ahead of the high
    /// watermark by the batches written and not yet fsynced under `sync`.
    pub fn log_end_offset(&self) -> u64 {
        self.inner.writer.lock().next_offset
    }

    /// Validates `records` against the topic's limits and encodes them as one batch, writing
    /// nothing: a multi-partition append prepares every batch before it writes any.
    pub(crate) fn prepare(&self, records: &[NewRecord]) -> Result<PreparedBatch> {
        self.prepare_with_producer(records, ProducerFields::NONE)
    }

    /// [`prepare`](Self::prepare) with the batch's producer fields set (covered by its CRC): fields
    /// other than [`ProducerFields::NONE`] must all be at least 0, and are checked against the
    /// partition's producer state when the batch is written.
    pub(crate) fn prepare_with_producer(
        &self,
        records: &[NewRecord],
        producer: ProducerFields,
    ) -> Result<PreparedBatch> {
        if producer != ProducerFields::NONE {
            producer.validate().map_err(|e| self.producer_error(e))?;
        }
        let cfg = self.inner.config.read().clone();
        let now = self.inner.clock.now_ms();
        let buf = encode(records, &cfg, now, producer)?;
        Ok(PreparedBatch { buf, cfg, now, producer })
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
        // Duplicates acknowledged with the offsets of a batch of this group: (index, its last offset).
        let mut duplicates = Vec::new();
        let mut w = self.inner.writer.lock();
        if let Some(first) = batches.first() {
            w.producers.expire(first.now, false);
        }
        let mut staged = Staged::new(&w);
        for (i, prepared) in batches.into_iter().enumerate() {
            results.push(None);
            if let Some(e) = self.unwritable() {
                results[i] = Some(Err(e));
                continue;
            }
            let PreparedBatch { mut buf, cfg, now, producer } = prepared;
            if producer.is_some() {
                match w.producers.check(&producer, super::producers::last_offset_delta(&buf), now) {
                    Ok(Checked::New) => {}
                    Ok(Checked::Duplicate(m)) => {
                        crate::log::buffers::give(buf);
                        if m.last_offset >= w.next_offset {
                            duplicates.push((i, m.last_offset));
                        }
                        results[i] = Some(Ok((self.duplicate_appended(&m), m.last_offset + 1, cfg.durability)));
                        continue;
                    }
                    Err(e) => {
                        crate::log::buffers::give(buf);
                        results[i] = Some(Err(self.producer_error(e)));
                        continue;
                    }
                }
            }
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
            let header = batch::set_base_offset(&mut buf, base_offset);
            let entries = staged.cursor.entries_for(w.segment.base_offset, &header, cfg.index_interval_bytes);
            if staged.cursor.position == batch_len {
                staged.created_ms = now;
            }
            staged.next_offset = header.next_offset();
            if staged.bytes.is_empty() {
                // Most groups are one batch: write its buffer as it is, no copy.
                crate::log::buffers::give(std::mem::replace(&mut staged.bytes, buf));
            } else {
                staged.bytes.extend_from_slice(&buf);
                crate::log::buffers::give(buf);
            }
            let appended = Appended {
                partition: self.inner.id,
                base_offset,
                last_offset: header.last_offset(),
                timestamp: header.first_timestamp,
                log_append_time_ms: now,
            };
            if producer.is_some() {
                let pb = &producer;
                // Recorded now, so that the next batches of the group are checked against it; if the
                // group's write fails, the partition is poisoned and reopening rebuilds the state.
                w.producers.record(
                    pb,
                    BatchMetadata {
                        first_sequence: pb.base_sequence,
                        last_sequence: pb.last_sequence(header.last_offset_delta),
                        first_offset: base_offset,
                        last_offset: header.last_offset(),
                        timestamp: header.first_timestamp,
                        append_time_ms: now,
                    },
                );
            }
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
        // A duplicate of a batch of this group that was not written (the write failed) fails too.
        for (i, last_offset) in duplicates {
            if last_offset >= w.next_offset {
                results[i] = Some(Err(self.poisoned_error()));
            }
        }
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
        crate::log::buffers::give(std::mem::take(&mut staged.bytes));
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
        // Everything below the new segment is durable: the recovery point moves to its start.
        let rp = RecoveryPoint { offset: w.next_offset, segment_base: w.next_offset, position: 0 };
        recovery_point::write(&self.inner.dir, rp)?;
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
            producers: std::mem::replace(&mut w.producers, ProducerState::new(0)),
        };
        // Every batch below the new segment's base is durable: the producer state as of there.
        self.snapshot_producers(w);
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
}
