//! A topic: N partitions under one config, and the partitioner that spreads appends over them.

use std::path::PathBuf;
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};
use serde::{Deserialize, Serialize};

use crate::config::{Durability, TopicConfig};
use crate::error::{Error, Result};
use crate::log::commit::{CommitHandle, Pending, PendingAsync};
use crate::log::partition::PreparedBatch;
use crate::log::{Appended, NewRecord, Partition};
use crate::partitioner::partition_for_key;
use crate::topic_id::TopicId;

/// `topic.json`: what a topic is, replaced atomically on every change.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TopicMeta {
    pub format_version: u32,
    pub name: String,
    /// Given at creation; a `topic.json` without one (written by an earlier build) gets one when
    /// the store opens it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<TopicId>,
    pub partitions: u32,
    pub config: TopicConfig,
}

/// A handle to a topic. Cheap to clone; `Send + Sync`.
#[derive(Clone, Debug)]
pub struct Topic {
    pub(crate) inner: Arc<TopicInner>,
}

#[derive(Debug)]
pub(crate) struct TopicInner {
    pub name: Arc<str>,
    pub id: TopicId,
    pub dir: PathBuf,
    pub config: Arc<RwLock<TopicConfig>>,
    pub partitions: RwLock<Arc<Vec<Partition>>>,
    /// Where keyless records go (see [`Topic::sticky_partition`]).
    pub sticky: Mutex<Sticky>,
    /// The store's group commit.
    pub committer: CommitHandle,
}

impl Topic {
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The topic's id, given at its creation and kept across restarts: a topic deleted and
    /// created again under the same name has a new one.
    pub fn id(&self) -> TopicId {
        self.inner.id
    }

    pub fn config(&self) -> TopicConfig {
        self.inner.config.read().clone()
    }

    pub fn partition_count(&self) -> u32 {
        self.inner.partitions.read().len() as u32
    }

    pub fn partitions(&self) -> Arc<Vec<Partition>> {
        Arc::clone(&self.inner.partitions.read())
    }

    pub fn partition(&self, id: u32) -> Result<Partition> {
        let parts = self.inner.partitions.read();
        parts.get(id as usize).cloned().ok_or_else(|| Error::PartitionNotFound {
            topic: self.name().to_string(),
            partition: id,
            count: parts.len() as u32,
        })
    }

    /// The partition a record goes to: its explicit one, else murmur2 of its key (Kafka's default),
    /// else `sticky` (one partition for all keyless records of an append).
    fn choose(&self, r: &NewRecord, count: u32, sticky: u32) -> Result<u32> {
        match (r.partition, &r.key) {
            (Some(p), _) if p < count => Ok(p),
            (Some(p), _) => Err(Error::PartitionNotFound { topic: self.name().to_string(), partition: p, count }),
            (None, Some(k)) => Ok(partition_for_key(k, count)),
            (None, None) => Ok(sticky),
        }
    }

    /// Appends `records`, one batch per partition they go to (atomic per partition), and returns
    /// where each went (one [`Appended`] per record, in the order given), once all are durable
    /// under the topic's durability.
    /// Every partition's batch is validated before any is written: a rejected record writes nothing
    /// anywhere. When one partition fails, its error is returned; the batches of the others still
    /// complete (durable and readable), as their group commit does not depend on it.
    /// Blocking: async callers use [`append_async`](Self::append_async).
    pub fn append(&self, records: &[NewRecord]) -> Result<Vec<Appended>> {
        let Some(mut plan) = self.plan(records.to_vec())? else { return Ok(Vec::new()) };
        let mut waits = Vec::with_capacity(plan.batches.len());
        for (part, prepared) in plan.batches.iter().zip(std::mem::take(&mut plan.prepared)) {
            waits.push(match prepared {
                ready if ready.is_sync() => match part.committer().enqueue_blocking(part, ready) {
                    Ok(pending) => Wait::Blocking(pending),
                    Err(e) => Wait::Done(Err(e)),
                },
                ready => Wait::Done(part.write_prepared(ready).map(|(appended, _, _)| appended)),
            });
        }
        let appended = waits
            .into_iter()
            .map(|w| match w {
                Wait::Done(done) => done,
                Wait::Blocking(pending) => pending.wait(),
            })
            .collect();
        plan.place(appended)
    }

    /// [`append`](Self::append) for async callers: batches are encoded on the calling task; `sync`
    /// ones join the group commit and the task awaits their results; others are written on tokio's
    /// blocking pool.
    pub async fn append_async(&self, records: Vec<NewRecord>) -> Result<Vec<Appended>> {
        let Some(mut plan) = self.plan(records)? else { return Ok(Vec::new()) };
        let mut waits = Vec::with_capacity(plan.batches.len());
        for (part, prepared) in plan.batches.iter().zip(std::mem::take(&mut plan.prepared)) {
            waits.push(match prepared {
                ready if ready.is_sync() => match part.committer().enqueue(part, ready).await {
                    Ok(pending) => WaitAsync::Pending(pending),
                    Err(e) => WaitAsync::Done(Err(e)),
                },
                ready => WaitAsync::Done(part.write_prepared_async(ready).await.map(|(appended, _, _)| appended)),
            });
        }
        let mut appended = Vec::with_capacity(waits.len());
        for w in waits {
            appended.push(match w {
                WaitAsync::Done(done) => done,
                WaitAsync::Pending(pending) => pending.wait().await,
            });
        }
        plan.place(appended)
    }

    /// Where each record goes and every partition's batch, validated and encoded (nothing written).
    /// `None` for no records.
    fn plan(&self, records: Vec<NewRecord>) -> Result<Option<Plan>> {
        if records.is_empty() {
            return Ok(None);
        }
        let parts = self.partitions();
        let count = parts.len() as u32;
        let sticky = self.sticky_partition(count);
        let mut groups: Vec<(u32, Vec<usize>)> = Vec::new();
        for (i, r) in records.iter().enumerate() {
            let p = self.choose(r, count, sticky)?;
            match groups.iter_mut().find(|(q, _)| *q == p) {
                Some((_, idx)) => idx.push(i),
                None => groups.push((p, vec![i])),
            }
        }
        let mut records: Vec<Option<NewRecord>> = records.into_iter().map(Some).collect();
        let log_append_time = self.config().timestamp_type == crate::TimestampType::LogAppendTime;
        let mut plan = Plan { placed: Vec::with_capacity(records.len()), batches: Vec::new(), prepared: Vec::new() };
        plan.placed.resize(records.len(), (0, 0, None));
        for (p, idx) in groups {
            let part = parts[p as usize].clone();
            let batch: Vec<NewRecord> = idx.iter().map(|&i| records[i].take().expect("each record once")).collect();
            plan.prepared.push(part.prepare(&batch)?);
            for (j, (&i, r)) in idx.iter().zip(&batch).enumerate() {
                let producer_timestamp = r.timestamp.filter(|_| !log_append_time);
                plan.placed[i] = (plan.batches.len(), j as u64, producer_timestamp);
            }
            plan.batches.push(part);
        }
        Ok(Some(plan))
    }

    /// The partition for the keyless records of an append. Under `sync` durability every append
    /// that queues for the same group-commit round takes the same partition, and the next round
    /// the next one (as Kafka's sticky partitioner keeps keyless records on one partition until
    /// its batch is sent): concurrent appenders then share one partition's fsync per round instead
    /// of each partition fsyncing. One appender alone, whose every append is a round of its own,
    /// goes round-robin, as every appender does under the other durabilities.
    pub(crate) fn sticky_partition(&self, count: u32) -> u32 {
        let round = match self.inner.config.read().durability {
            Durability::Sync => Some(self.inner.committer.rounds()),
            _ => None,
        };
        let mut sticky = self.inner.sticky.lock();
        if round.is_none() || sticky.round != round {
            sticky.round = round;
            sticky.partition = sticky.next;
            sticky.next = sticky.next.wrapping_add(1);
        }
        sticky.partition % count
    }
}

/// Where keyless records go: `partition` for appends of group-commit round `round`.
#[derive(Debug, Default)]
pub(crate) struct Sticky {
    round: Option<u64>,
    partition: u32,
    next: u32,
}

/// An append's batches, one per partition, and where each record is in them.
struct Plan {
    /// For each record in the order given: its batch, its place in the batch, and its producer's
    /// timestamp when that is what is stored.
    placed: Vec<(usize, u64, Option<i64>)>,
    batches: Vec<Partition>,
    prepared: Vec<PreparedBatch>,
}

impl Plan {
    /// Where each record went, given each batch's outcome; the first batch's error if one failed.
    fn place(self, appended: Vec<Result<Appended>>) -> Result<Vec<Appended>> {
        let mut done = Vec::with_capacity(appended.len());
        for a in appended {
            done.push(a?);
        }
        Ok(self
            .placed
            .iter()
            .map(|&(b, j, producer_timestamp)| {
                let offset = done[b].base_offset + j;
                Appended {
                    partition: self.batches[b].id(),
                    base_offset: offset,
                    last_offset: offset,
                    // As stored: the producer's timestamp, else (or always, under LogAppendTime) the append time.
                    timestamp: producer_timestamp.unwrap_or(done[b].log_append_time_ms),
                    ..done[b]
                }
            })
            .collect())
    }
}

enum Wait {
    Done(Result<Appended>),
    Blocking(Pending),
}

enum WaitAsync {
    Done(Result<Appended>),
    Pending(PendingAsync),
}
