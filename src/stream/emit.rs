//! Exactly-once emits: a view version is an idempotent producer of the log, as a Kafka producer
//! with `enable.idempotence` is, and the log's producer state (`log/producer_state`) is what keeps
//! its output free of duplicates across crashes.
//!
//! **The producer.** Each view version has its own producer id, from the store's durable
//! allocator ([`Store::init_producer_id`]), taken when the version's runner first starts and kept
//! in the version's checkpoint (`EmitLog::producer`), with epoch 0. Per emit partition the
//! checkpoint also keeps the producer sequence of the next record staged there
//! (`EmitLog::partition_sequences`). Every batch the version appends carries its producer id,
//! epoch and base sequence, through the same append the Kafka listener and the HTTP `producer`
//! extension use ([`Partition`]'s `append_with_producer`): the log checks and records the
//! sequences per partition. A rebuild is a new version, so it has a new producer id: both versions
//! emit while the new one catches up, each in its own sequence space (the
//! [`EMIT_HEADER_VERSION`] header tells them apart). An old version is fenced by its retirement,
//! which waits for a publish in progress and stops every later one, and across restarts by its
//! checkpoint being gone, so its id is never used again.
//!
//! **Staging.** Emitted records are staged in the state (`EmitLog::pending`), each with its
//! partition (fixed now, where [`Topic::append`] would put it) and its producer sequence there,
//! written with the checkpoint that covers their inputs, and appended only after that checkpoint
//! is durable. The next checkpoint is written only after that append returned, so at every
//! checkpoint each partition's records below the first pending sequence are acknowledged, and
//! the pending ones are the only ones that may or may not be in the log.
//!
//! **The argument.** On one partition the version appends its batches one after another, in
//! sequence order, and a batch is written whole or not at all: after a crash the records the log
//! holds of the pending ones are a prefix of them by sequence. On resume the emitter finds the end
//! of that prefix and appends the rest, once:
//! - When the partition remembers the producer (its state survives a crash: it is rebuilt from the
//!   snapshot and the batch headers after it), its last sequence is the end of the prefix, exactly,
//!   however many batches that was (the log's duplicate detection keeps only the last five
//!   batches, but the last sequence is always known while the producer is).
//! - When it does not (the producer was idle for longer than `producer_id_expiration_ms` and was
//!   forgotten, or had not appended there yet), the emitter reads the batch headers of the
//!   partition from where its pending records can start (the high watermark when the first was
//!   staged, `EmitLog::scan_from`) to the end and takes the highest last sequence of its own
//!   producer id and epoch that falls among the pending ones: the same fields the producer state
//!   is rebuilt from, and only the tail written since the last checkpoint. A forgotten producer
//!   may start at any sequence (Kafka's rule since KIP-360), so the rest is accepted.
//! - When the partition remembers the producer at a sequence that is not among the pending ones
//!   (acknowledged records were lost: a log of durability `none` after a machine crash, or
//!   someone else wrote with the id), the header scan decides and the version takes a new
//!   producer id to go on with, which the log accepts at any sequence.
//!
//! A batch the emitter sends again anyway (it does not, but a retry would) has the sequences of
//! the original and is acknowledged by the log with the original offsets, not written again.
//! So an emitted record is appended exactly once per view version, and it becomes visible at the
//! checkpoint that covers its inputs (as Kafka Streams' exactly-once outputs become visible at a
//! commit), never before. What the guarantee rests on: the emit topic keeps the records written
//! since the last checkpoint until the view resumes (retention deleting them first loses the
//! evidence, and they are appended again), and nobody else appends with the version's producer id.
//!
//! A checkpoint of an earlier build has staged records but no producer: those are found by their
//! headers ([`EMIT_HEADER_SEQUENCE`]) as that build did, and the version takes a producer id then.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::Result;
use crate::log::batch::BatchHeader;
use crate::log::partition::PreparedBatch;
use crate::log::{Appended, Header, NewRecord, Partition, ProducerFields};
use crate::partitioner::partition_for_key;
use crate::store::Store;
use crate::topic::Topic;

/// Header naming the view that emitted a record.
pub const EMIT_HEADER_VIEW: &str = "kappalog.view";
/// Header holding the view version that emitted a record (a rebuild emits under a new version).
pub const EMIT_HEADER_VERSION: &str = "kappalog.view.version";
/// Header holding the record's emit sequence number within its view version (0, 1, 2, ...).
pub const EMIT_HEADER_SEQUENCE: &str = "kappalog.emit.sequence";
/// The most emitted records appended in one batch.
pub const EMIT_BATCH_RECORDS_MAX: usize = 10_000;
/// Staged emits beyond which the runner checkpoints (and so publishes) at once.
pub const EMIT_PENDING_RECORDS_MAX: usize = 10_000;

/// One staged record: where it goes and what it holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct PendingEmit {
    /// Its emit sequence number in the view version ([`EMIT_HEADER_SEQUENCE`]).
    pub sequence: u64,
    pub partition: u32,
    /// Its producer sequence in `partition` (absent from checkpoints of earlier builds).
    #[serde(default)]
    pub partition_sequence: i32,
    pub key: Option<String>,
    /// `None`: a tombstone.
    pub value: Option<String>,
}

/// A view version's producer id and epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct EmitProducer {
    pub id: i64,
    pub epoch: i16,
}

/// The emit side of a view version's durable state (part of its checkpoint).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct EmitLog {
    /// The sequence number of the next staged record.
    pub next_sequence: u64,
    /// Staged records not known to be appended yet, in sequence order.
    pub pending: Vec<PendingEmit>,
    /// Per emit partition, an offset at or below the first pending record's place: the emit
    /// topic's high watermark when the first of them was staged.
    pub scan_from: BTreeMap<u32, u64>,
    /// The version's producer id, once its runner started (a checkpoint of an earlier build has none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub producer: Option<EmitProducer>,
    /// Per emit partition, the producer sequence of the next record staged there.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub partition_sequences: BTreeMap<u32, i32>,
}

/// Staged records taken out to append, with the producer that appends them.
#[derive(Debug, Default)]
pub(crate) struct Staged {
    producer: Option<EmitProducer>,
    records: Vec<PendingEmit>,
}

impl Staged {
    pub(crate) fn is_empty(&self) -> bool {
        self.records.is_empty()
    }
}

impl EmitLog {
    /// Stages `records` (keyed by the view key) for `topic`, numbering them.
    pub(crate) fn stage(&mut self, topic: &Topic, records: Vec<NewRecord>) -> Result<()> {
        let count = topic.partitions().len() as u32;
        for r in records {
            // Where `Topic::append` would put it, fixed now so that a restart looks in the right place.
            let partition = match (r.partition, &r.key) {
                (Some(p), _) => p,
                (None, Some(k)) => partition_for_key(k, count),
                (None, None) => 0,
            };
            if let std::collections::btree_map::Entry::Vacant(e) = self.scan_from.entry(partition) {
                e.insert(topic.partition(partition)?.high_watermark());
            }
            let text = |b: Option<Bytes>| b.map(|b| String::from_utf8_lossy(&b).into_owned());
            let next = self.partition_sequences.entry(partition).or_insert(0);
            let partition_sequence = *next;
            *next = crate::log::next_sequence(partition_sequence, 1);
            self.pending.push(PendingEmit {
                sequence: self.next_sequence,
                partition,
                partition_sequence,
                key: text(r.key),
                value: text(r.value),
            });
            self.next_sequence += 1;
        }
        Ok(())
    }

    /// Takes the staged records out, to append after the checkpoint that holds them is durable.
    pub(crate) fn take(&mut self) -> Staged {
        self.scan_from.clear();
        Staged { producer: self.producer, records: std::mem::take(&mut self.pending) }
    }

    /// Numbers the pending records of a checkpoint of an earlier build in their partitions.
    fn number_pending(&mut self) {
        for p in &mut self.pending {
            let next = self.partition_sequences.entry(p.partition).or_insert(0);
            p.partition_sequence = *next;
            *next = crate::log::next_sequence(*next, 1);
        }
    }
}

/// When a view version's runner starts: makes sure it has a producer id, and drops from
/// `log.pending` the records that already reached `topic` before a crash (see the module docs), so
/// that publishing the rest appends each record once.
pub(crate) fn resume(store: &Store, topic: &Topic, view: &str, version: u64, log: &mut EmitLog) -> Result<()> {
    let Some(producer) = log.producer else {
        forget_published_by_headers(topic, view, version, log)?;
        let (id, epoch) = store.init_producer_id()?;
        log.producer = Some(EmitProducer { id, epoch });
        log.number_pending();
        return Ok(());
    };
    let mut stale = false;
    // A partition with nothing pending must not remember the producer past the checkpoint's next
    // sequence there (0 if it has none): if it does, the topic holds emits this checkpoint does not
    // know of (an earlier checkpoint was restored), and the version goes on with a new producer id.
    for part in topic.partitions().iter() {
        if log.pending.iter().any(|p| p.partition == part.id()) {
            continue;
        }
        let next = log.partition_sequences.get(&part.id()).copied().unwrap_or(0);
        if let Some((epoch, last)) = part.producer_last_sequence(producer.id) {
            stale |= epoch != producer.epoch || written_count(next, 0, last).is_none();
        }
    }
    let mut partitions: BTreeMap<u32, (i32, u32)> = BTreeMap::new();
    for p in &log.pending {
        partitions.entry(p.partition).or_insert((p.partition_sequence, 0)).1 += 1;
    }
    let mut written: BTreeMap<u32, u32> = BTreeMap::new();
    for (&partition, &(first, count)) in &partitions {
        let part = topic.partition(partition)?;
        let from = log.scan_from.get(&partition).copied().unwrap_or(0);
        let n = match part.producer_last_sequence(producer.id) {
            Some((epoch, last)) => match written_count(first, count, last) {
                Some(n) if epoch == producer.epoch => n,
                _ => {
                    stale = true;
                    scan_written(&part, from, producer, first, count)?
                }
            },
            None => scan_written(&part, from, producer, first, count)?,
        };
        written.insert(partition, n);
    }
    let already: u32 = written.values().sum();
    if already > 0 {
        tracing::info!(
            view,
            version,
            already,
            of = log.pending.len(),
            "emitted records found in the emit topic after a restart: not appended again"
        );
    }
    log.pending.retain(|p| {
        let n = written.get_mut(&p.partition).expect("counted above");
        match *n {
            0 => true,
            _ => {
                *n -= 1;
                false
            }
        }
    });
    if stale {
        let (id, epoch) = store.init_producer_id()?;
        tracing::warn!(
            view,
            version,
            old = producer.id,
            new = id,
            "the emit topic remembers the view's producer at a sequence it did not send last: \
             going on with a new producer id"
        );
        log.producer = Some(EmitProducer { id, epoch });
    }
    Ok(())
}

/// How many of `count` records from sequence `first` on a last sequence `last` covers, if it is
/// one of them or the one before the first (sequences wrap from `i32::MAX` to 0).
fn written_count(first: i32, count: u32, last: i32) -> Option<u32> {
    let span = i32::MAX as i64 + 1;
    let n = (last as i64 - first as i64 + 1).rem_euclid(span);
    (n <= count as i64).then_some(n as u32)
}

/// The records among `count` from sequence `first` that batches of `producer` hold in `part` at
/// or after offset `from`, read from the batch headers.
fn scan_written(part: &Partition, from: u64, producer: EmitProducer, first: i32, count: u32) -> Result<u32> {
    let mut next = from.max(part.log_start_offset());
    let mut best = 0;
    while next < part.high_watermark() {
        let raw = part.read_raw(next, 1 << 20)?;
        if raw.next_offset <= next {
            break;
        }
        let mut bytes = &raw.bytes[..];
        while let Ok(Some(h)) = BatchHeader::parse(bytes) {
            let p = h.producer;
            if p.producer_id == producer.id && p.producer_epoch == producer.epoch {
                if let Some(n) = written_count(first, count, p.last_sequence(h.last_offset_delta)) {
                    best = best.max(n);
                }
            }
            bytes = &bytes[h.len().min(bytes.len())..];
        }
        next = raw.next_offset;
    }
    Ok(best)
}

/// Appends `staged` to `topic` for view `view` version `version`, each partition's records in
/// batches of its producer; returns how many were appended.
pub(crate) fn publish(topic: &Topic, view: &str, version: u64, staged: Staged) -> Result<u64> {
    publish_in_batches(topic, view, version, staged, EMIT_BATCH_RECORDS_MAX, usize::MAX)
}

/// [`publish`] with at most `batch_records` records per batch, stopping after `rounds_max` rounds
/// (a round: the next batch of each partition, written together; tests stop early to model a crash).
fn publish_in_batches(
    topic: &Topic,
    view: &str,
    version: u64,
    staged: Staged,
    batch_records: usize,
    rounds_max: usize,
) -> Result<u64> {
    let n = staged.records.len() as u64;
    let mut by_partition: BTreeMap<u32, Vec<PendingEmit>> = BTreeMap::new();
    for p in staged.records {
        by_partition.entry(p.partition).or_default().push(p);
    }
    let mut batches: Vec<(Partition, Vec<Vec<PendingEmit>>)> = Vec::new();
    for (partition, records) in by_partition {
        let mut chunks = Vec::new();
        let mut it = records.into_iter().peekable();
        while it.peek().is_some() {
            chunks.push(it.by_ref().take(batch_records).collect::<Vec<_>>());
        }
        chunks.reverse();
        batches.push((topic.partition(partition)?, chunks));
    }
    for _ in 0..rounds_max {
        let mut waits = Vec::new();
        for (part, chunks) in &mut batches {
            let Some(chunk) = chunks.pop() else { continue };
            let producer = match staged.producer {
                Some(pr) => ProducerFields {
                    producer_id: pr.id,
                    producer_epoch: pr.epoch,
                    base_sequence: chunk[0].partition_sequence,
                },
                None => ProducerFields::NONE,
            };
            let records: Vec<NewRecord> = chunk.into_iter().map(|p| to_record(view, version, p)).collect();
            let prepared = part.prepare_with_producer(&records, producer)?;
            waits.push(enqueue(part, prepared));
        }
        if waits.is_empty() {
            break;
        }
        for w in waits {
            w?.wait()?;
        }
    }
    Ok(n)
}

/// A batch being written: under `sync` it waits in the group commit (so that the partitions of one
/// round share it); otherwise it is written already.
enum Wait {
    Written(Appended),
    Commit(crate::log::commit::Pending),
}

impl Wait {
    fn wait(self) -> Result<Appended> {
        match self {
            Wait::Written(a) => Ok(a),
            Wait::Commit(p) => Ok(p.wait()?),
        }
    }
}

fn enqueue(part: &Partition, prepared: PreparedBatch) -> Result<Wait> {
    if prepared.is_sync() {
        Ok(Wait::Commit(part.committer().enqueue_blocking(part, prepared)?))
    } else {
        Ok(part.write_prepared(prepared).map(|(a, _, _)| Wait::Written(a))?)
    }
}

/// For a checkpoint of an earlier build (no producer): drops from `log.pending` the records that
/// already reached `topic`, found by their headers after `log.scan_from`.
fn forget_published_by_headers(topic: &Topic, view: &str, version: u64, log: &mut EmitLog) -> Result<()> {
    if log.pending.is_empty() {
        return Ok(());
    }
    let (first, last) = (log.pending[0].sequence, log.pending[log.pending.len() - 1].sequence);
    let mut found = BTreeSet::new();
    for (&partition, &from) in &log.scan_from {
        let p = topic.partition(partition)?;
        let mut next = from.max(p.log_start_offset());
        let end = p.high_watermark();
        while next < end {
            let records = p.read(next, 1 << 20, 10_000)?;
            let Some(last_read) = records.last() else { break };
            next = last_read.offset + 1;
            for r in &records {
                if let Some(s) = sequence_of(&r.headers, view, version) {
                    if (first..=last).contains(&s) {
                        found.insert(s);
                    }
                }
            }
        }
    }
    log.pending.retain(|p| !found.contains(&p.sequence));
    Ok(())
}

fn to_record(view: &str, version: u64, p: PendingEmit) -> NewRecord {
    let headers = vec![
        Header::new(EMIT_HEADER_VIEW, Bytes::copy_from_slice(view.as_bytes())),
        Header::new(EMIT_HEADER_VERSION, version.to_string()),
        Header::new(EMIT_HEADER_SEQUENCE, p.sequence.to_string()),
    ];
    NewRecord {
        key: p.key.map(Bytes::from),
        value: p.value.map(Bytes::from),
        headers,
        timestamp: None,
        partition: Some(p.partition),
    }
}

/// The emit sequence number of a record emitted by `view` version `version`, if it is one.
fn sequence_of(headers: &[Header], view: &str, version: u64) -> Option<u64> {
    let get = |name: &str| headers.iter().find(|h| h.key == name).and_then(|h| h.value.as_deref());
    if get(EMIT_HEADER_VIEW)? != view.as_bytes() {
        return None;
    }
    if std::str::from_utf8(get(EMIT_HEADER_VERSION)?).ok()?.parse::<u64>().ok()? != version {
        return None;
    }
    std::str::from_utf8(get(EMIT_HEADER_SEQUENCE)?).ok()?.parse().ok()
}

#[cfg(test)]
mod tests;
