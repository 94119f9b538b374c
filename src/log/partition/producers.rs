//! Idempotent appends: the partition's producer state (see `producer_state`), checked by the
//! writer for every batch that carries a producer id (`write.rs`), snapshotted at each roll and at
//! clean shutdown, and rebuilt at open from the newest snapshot and the batch headers after it.

use std::path::Path;
use std::sync::Arc;

use super::{Appended, Partition, Writer};
use crate::error::{Error, Result};
use crate::log::batch;
use crate::log::producer_state::{snapshot, BatchMetadata, ProducerError, ProducerFields, ProducerState};
use crate::log::record::NewRecord;
use crate::log::segment::Segment;

impl Partition {
    /// [`append_with_producer`](Self::append_with_producer) for async callers (as
    /// [`append_async`](Self::append_async)).
    pub async fn append_with_producer_async(
        &self,
        records: Vec<NewRecord>,
        producer: ProducerFields,
    ) -> Result<Appended> {
        let prepared = self.prepare_with_producer(&records, producer)?;
        drop(records);
        if !prepared.is_sync() {
            return self.write_prepared_async(prepared).await.map(|(appended, _, _)| appended);
        }
        self.inner.committer.enqueue(self, prepared).await?.wait().await
    }

    /// Idempotent producers this partition remembers now.
    pub fn producer_count(&self) -> usize {
        self.inner.writer.lock().producers.len()
    }

    /// The epoch and the last sequence this partition remembers for producer `id`, unless it does
    /// not remember it (it never appended here, or expired): where that producer goes on from
    /// after a restart (the next batch starts at the sequence after it).
    pub fn producer_last_sequence(&self, id: i64) -> Option<(i16, i32)> {
        let now = self.inner.clock.now_ms();
        let w = self.inner.writer.lock();
        w.producers.entry(id, now).and_then(|e| Some((e.epoch, e.batches.back()?.last_sequence)))
    }

    /// Producer id to the last offset of its last batch, for every producer this partition
    /// remembers now (the cleaner keeps those batches, emptied if need be, as Kafka's does).
    pub(crate) fn producer_last_offsets(&self) -> std::collections::HashMap<i64, u64> {
        let now = self.inner.clock.now_ms();
        let w = self.inner.writer.lock();
        let live = w.producers.entries().into_iter().filter(|(id, _)| w.producers.entry(*id, now).is_some());
        live.filter_map(|(id, e)| Some((id, e.batches.back()?.last_offset))).collect()
    }

    pub(crate) fn producer_error(&self, error: ProducerError) -> Error {
        Error::Producer { topic: self.inner.topic.to_string(), partition: self.inner.id, error }
    }

    /// What the append of a duplicate returns: the original batch's offsets and timestamps.
    pub(super) fn duplicate_appended(&self, m: &BatchMetadata) -> Appended {
        Appended {
            partition: self.inner.id,
            base_offset: m.first_offset,
            last_offset: m.last_offset,
            timestamp: m.timestamp,
            log_append_time_ms: m.append_time_ms,
        }
    }

    /// Writes the producer-state snapshot as of the writer's next offset. A failure is logged, not
    /// fatal: the next open replays the batches after an older snapshot instead.
    pub(super) fn snapshot_producers(&self, w: &Writer) {
        // A deleted topic's directory may be another topic's by now.
        if self.is_deleted() {
            return;
        }
        if let Err(e) = snapshot::write(&self.inner.dir, &w.producers, w.next_offset) {
            tracing::warn!(topic = %self.inner.topic, partition = self.inner.id, error = %e,
                "writing a producer-state snapshot failed");
        }
    }

    /// At a clean shutdown, after [`flush`](Self::flush): the producer-state snapshot as of the
    /// log end, so that the next open replays nothing.
    pub(crate) fn snapshot_producers_for_close(&self) -> Result<()> {
        let w = self.inner.writer.lock();
        snapshot::write(&self.inner.dir, &w.producers, w.next_offset)
    }
}

/// The batch's last offset delta, from its encoded header.
pub(super) fn last_offset_delta(buf: &[u8]) -> u32 {
    let at = batch::LAST_OFFSET_DELTA_OFFSET;
    u32::from_be_bytes(buf[at..at + 4].try_into().expect("an encoded batch has a header"))
}

/// The producer state of a partition being opened: the newest valid snapshot at or below
/// `log_end`, then every batch from its offset to `log_end` replayed from its header (CRC-checked;
/// a bad batch ends the replay with a warning: reads report it). Replayed batches count as
/// appended at `now` for expiry.
pub(super) fn load_state(
    dir: &Path,
    segments: &[Arc<Segment>],
    log_end: u64,
    expiration_ms: u64,
    now: i64,
) -> Result<ProducerState> {
    let mut state = ProducerState::new(expiration_ms);
    let from = snapshot::load(dir, log_end, &mut state)?.unwrap_or(0);
    let mut replayed = 0usize;
    'segments: for segment in segments.iter().filter(|s| s.next_offset() > from) {
        let data = segment.data();
        let mut pos = 0;
        while pos < data.len() {
            let (h, _) = match segment.batch_at(&data, pos) {
                Ok(b) => b,
                Err(e) => {
                    tracing::warn!(error = %e, "replaying producer state stopped at a bad batch");
                    break 'segments;
                }
            };
            pos += h.len();
            if h.last_offset() < from || h.base_offset >= log_end {
                continue;
            }
            if h.producer.is_some() {
                let pb = h.producer;
                let meta = BatchMetadata {
                    first_sequence: pb.base_sequence,
                    last_sequence: pb.last_sequence(h.last_offset_delta),
                    first_offset: h.base_offset,
                    last_offset: h.last_offset(),
                    // An empty batch (compaction's) has no base timestamp: its max stands in.
                    timestamp: if h.record_count == 0 { h.max_timestamp } else { h.first_timestamp },
                    append_time_ms: now,
                };
                state.record(&pb, meta);
                replayed += 1;
            }
        }
    }
    state.expire(now, true);
    if replayed > 0 {
        tracing::info!(dir = %dir.display(), from, replayed, producers = state.len(), "producer state rebuilt from the log");
    }
    Ok(state)
}
