//! Producer state: per partition, what each idempotent producer appended last, so that a retried
//! batch is acknowledged with its original offsets instead of being written again (Kafka's
//! producer state). The partition's writer owns one [`ProducerState`] and checks every batch that
//! carries a producer id against it, in offset order, under its lock.
//!
//! For each producer id it keeps the epoch, the last [`PRODUCER_BATCHES_KEPT`] batches (first and
//! last sequence, first and last offset, timestamp) and when the producer last appended. A batch
//! is, in this order (Kafka's rules):
//! - a **duplicate** when its epoch is the producer's and its first and last sequences are those of
//!   one of the batches kept: acknowledged with that batch's offsets, not written;
//! - refused with [`ProducerError::InvalidProducerEpoch`] when its epoch is older than the producer's;
//! - refused with [`ProducerError::OutOfOrderSequence`] when its base sequence does not follow the
//!   producer's last sequence (same epoch), or is not 0 in a newer epoch;
//! - **new** otherwise. A producer the partition does not know (never seen, or expired) may start
//!   at any sequence, as in Kafka since KIP-360: its state may have gone with retention.
//!
//! Sequences wrap from `i32::MAX` to 0, as Kafka's. A producer that has not appended for
//! `producer_id_expiration_ms` of the store's clock is forgotten (Kafka's
//! `producer.id.expiration.ms`, [`PRODUCER_ID_EXPIRATION_MS_DEFAULT`]).
//!
//! The state is snapshotted (`snapshot.rs`) at each segment roll and at clean shutdown, and rebuilt
//! when the partition opens from the newest valid snapshot plus the batch headers after it.

use std::collections::{HashMap, VecDeque};

pub use crate::error::ProducerError;

pub(crate) mod snapshot;

/// Batches kept per producer for duplicate detection (Kafka's, and the most in flight a Kafka
/// producer allows with idempotence).
pub const PRODUCER_BATCHES_KEPT: usize = 5;
/// How long a producer that does not append is remembered, by default: one day (Kafka's
/// `producer.id.expiration.ms`). See [`StoreConfig::producer_id_expiration_ms`](crate::StoreConfig).
pub const PRODUCER_ID_EXPIRATION_MS_DEFAULT: u64 = 24 * 60 * 60 * 1000;
/// How often the writer looks for expired producers (Kafka's `producer.id.expiration.check.interval.ms`);
/// an expired producer is also forgotten when it appends again.
pub const PRODUCER_EXPIRY_CHECK_INTERVAL_MS: i64 = 10 * 60 * 1000;

/// The producer fields of a batch: who wrote it and the sequence of its first record (Kafka's
/// `producerId`, `producerEpoch`, `baseSequence`). A batch of `n` records takes the sequences
/// `base_sequence ..= base_sequence + n - 1` (wrapping after `i32::MAX`, see [`next_sequence`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ProducerBatch {
    pub id: i64,
    pub epoch: i16,
    pub base_sequence: i32,
}

impl ProducerBatch {
    /// Checks that a producer could have sent these fields (all of them at least 0).
    pub fn validate(&self) -> Result<(), ProducerError> {
        if self.id < 0 || self.epoch < 0 || self.base_sequence < 0 {
            return Err(ProducerError::InvalidProducerBatch(format!(
                "producer id {}, epoch {}, base sequence {}: each must be at least 0",
                self.id, self.epoch, self.base_sequence
            )));
        }
        Ok(())
    }

    /// The sequence of the batch's last record, for a batch whose last offset is
    /// `last_offset_delta` after its first (Kafka counts by offset delta, so that compaction, which
    /// removes records but keeps the delta, does not change it).
    pub fn last_sequence(&self, last_offset_delta: u32) -> i32 {
        add_sequence(self.base_sequence, last_offset_delta)
    }
}

/// The sequence after `sequence` once `records` more records are sent: what a producer's next
/// batch starts at (wrapping from `i32::MAX` to 0, as Kafka's).
pub fn next_sequence(sequence: i32, records: u32) -> i32 {
    add_sequence(sequence, records)
}

fn add_sequence(sequence: i32, n: u32) -> i32 {
    debug_assert!(sequence >= 0);
    ((sequence as i64 + n as i64) % (i32::MAX as i64 + 1)) as i32
}

/// One batch a producer appended, as kept for duplicate detection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BatchMetadata {
    pub first_sequence: i32,
    pub last_sequence: i32,
    pub first_offset: u64,
    pub last_offset: u64,
    /// The stored timestamp of its first record (what its append returned).
    pub timestamp: i64,
    /// The store's clock when it was appended (its append's `log_append_time_ms`).
    pub append_time_ms: i64,
}

/// One producer's state in a partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ProducerEntry {
    pub epoch: i16,
    /// Oldest first; at most [`PRODUCER_BATCHES_KEPT`], at least one.
    pub batches: VecDeque<BatchMetadata>,
    /// The store's clock at its last append, for expiry.
    pub last_append_ms: i64,
}

/// What [`ProducerState::check`] found a batch to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Checked {
    /// Write it, then [`record`](ProducerState::record) it.
    New,
    /// Already appended: acknowledge it with these offsets, write nothing.
    Duplicate(BatchMetadata),
}

/// The producer state of one partition (see the module docs).
#[derive(Debug, Clone)]
pub(crate) struct ProducerState {
    producers: HashMap<i64, ProducerEntry, ahash::RandomState>,
    expiration_ms: u64,
    /// When the writer next looks for expired producers.
    next_expiry_check_ms: i64,
}

impl ProducerState {
    pub fn new(expiration_ms: u64) -> ProducerState {
        ProducerState {
            producers: HashMap::with_hasher(ahash::RandomState::new()),
            expiration_ms,
            next_expiry_check_ms: i64::MIN,
        }
    }

    /// Producers remembered.
    pub fn len(&self) -> usize {
        self.producers.len()
    }

    /// Whether it remembers no producer.
    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.producers.is_empty()
    }

    fn expired(&self, e: &ProducerEntry, now: i64) -> bool {
        now.saturating_sub(e.last_append_ms) >= self.expiration_ms.min(i64::MAX as u64) as i64
    }

    /// The state of producer `id`, unless it expired.
    pub fn entry(&self, id: i64, now: i64) -> Option<&ProducerEntry> {
        self.producers.get(&id).filter(|e| !self.expired(e, now))
    }

    /// What the batch `b`, whose last offset is `last_offset_delta` after its first, is to this
    /// partition at `now` (see the module docs). Changes nothing.
    pub fn check(&self, b: &ProducerBatch, last_offset_delta: u32, now: i64) -> Result<Checked, ProducerError> {
        b.validate()?;
        let Some(e) = self.entry(b.id, now) else { return Ok(Checked::New) };
        let last_sequence = b.last_sequence(last_offset_delta);
        if b.epoch == e.epoch {
            let same = |m: &&BatchMetadata| m.first_sequence == b.base_sequence && m.last_sequence == last_sequence;
            if let Some(m) = e.batches.iter().find(same) {
                return Ok(Checked::Duplicate(*m));
            }
        }
        if b.epoch < e.epoch {
            return Err(ProducerError::InvalidProducerEpoch { producer_id: b.id, current: e.epoch, found: b.epoch });
        }
        let expected = match (b.epoch > e.epoch, e.batches.back()) {
            (true, _) | (false, None) => 0,
            (false, Some(last)) => next_sequence(last.last_sequence, 1),
        };
        if b.base_sequence != expected && (b.epoch > e.epoch || !e.batches.is_empty()) {
            return Err(ProducerError::OutOfOrderSequence {
                producer_id: b.id,
                epoch: b.epoch,
                expected,
                found: b.base_sequence,
            });
        }
        Ok(Checked::New)
    }

    /// Records a batch of `b` written at `meta`'s offsets (checked `New`, or replayed from the log).
    /// A newer epoch starts the producer's batches afresh; the oldest batch goes past
    /// [`PRODUCER_BATCHES_KEPT`].
    pub fn record(&mut self, b: &ProducerBatch, meta: BatchMetadata) {
        let expired = self.producers.get(&b.id).is_some_and(|e| self.expired(e, meta.append_time_ms));
        let e = self.producers.entry(b.id).or_insert_with(|| ProducerEntry {
            epoch: b.epoch,
            batches: VecDeque::with_capacity(PRODUCER_BATCHES_KEPT),
            last_append_ms: meta.append_time_ms,
        });
        if expired || b.epoch != e.epoch {
            e.epoch = b.epoch;
            e.batches.clear();
        }
        if e.batches.len() == PRODUCER_BATCHES_KEPT {
            e.batches.pop_front();
        }
        e.batches.push_back(meta);
        e.last_append_ms = e.last_append_ms.max(meta.append_time_ms);
    }

    /// Forgets the producers that expired at `now`, at most once per
    /// [`PRODUCER_EXPIRY_CHECK_INTERVAL_MS`] unless `force`.
    pub fn expire(&mut self, now: i64, force: bool) {
        if !force && now < self.next_expiry_check_ms {
            return;
        }
        self.next_expiry_check_ms = now.saturating_add(PRODUCER_EXPIRY_CHECK_INTERVAL_MS);
        let expiration_ms = self.expiration_ms.min(i64::MAX as u64) as i64;
        self.producers.retain(|_, e| now.saturating_sub(e.last_append_ms) < expiration_ms);
    }

    /// Every producer's state, by producer id (for snapshots and tests).
    pub fn entries(&self) -> Vec<(i64, &ProducerEntry)> {
        let mut v: Vec<_> = self.producers.iter().map(|(id, e)| (*id, e)).collect();
        v.sort_unstable_by_key(|(id, _)| *id);
        v
    }

    /// Adds a producer's whole state (from a snapshot).
    pub fn insert(&mut self, id: i64, entry: ProducerEntry) {
        self.producers.insert(id, entry);
    }
}

#[cfg(test)]
mod tests;
