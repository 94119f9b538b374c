//! An append to a topic built record by record (the HTTP produce path): each record is placed and
//! encoded into its partition's batch as it is parsed, so that the request's memory stays about
//! its body plus the encoded batches, whatever the number of records. Same semantics as
//! [`Topic::append`]: one batch per partition, every batch checked before any is written,
//! acknowledged once durable.

use std::sync::Arc;

use crate::config::PARTITIONS_MAX;
use crate::error::{Error, Result};
use crate::log::builder::BatchBuilder;
use crate::log::commit::PendingAsync;
use crate::log::partition::PreparedBatch;
use crate::log::{Appended, Header, Partition};
use crate::partitioner::partition_for_key;
use crate::Topic;

// A record's partition is kept in two bytes.
const _: () = assert!(PARTITIONS_MAX <= u16::MAX as u32 + 1);

/// An append being built; [`commit`](Self::commit) writes it.
#[derive(Debug)]
pub(crate) struct TopicAppend {
    parts: Arc<Vec<Partition>>,
    sticky: u32,
    /// One per partition, made when a record first goes there.
    builders: Vec<Option<BatchBuilder>>,
    /// The partition of every record, in order (only for topics of more than one partition).
    placement: Vec<u16>,
    count: usize,
    /// Set for an idempotent producer's append, which goes to one partition.
    producer: Option<crate::log::ProducerFields>,
}

/// Where the records of a committed append went.
#[derive(Debug)]
pub(crate) struct Placed {
    /// The base offset of each partition's batch (`u64::MAX`: no batch).
    bases: Vec<u64>,
    placement: Vec<u16>,
    count: usize,
}

impl TopicAppend {
    pub(crate) fn new(topic: &Topic) -> TopicAppend {
        let parts = topic.partitions();
        let count = parts.len() as u32;
        let sticky = topic.sticky_partition(count.max(1));
        let builders = (0..parts.len()).map(|_| None).collect();
        TopicAppend { parts, sticky, builders, placement: Vec::new(), count: 0, producer: None }
    }

    /// Makes it the append of an idempotent producer: all its records must go to one partition,
    /// whose producer state checks the batch (see [`Partition::append_with_producer`]).
    pub(crate) fn set_producer(&mut self, producer: crate::log::ProducerFields) {
        self.producer = Some(producer);
    }

    /// Records pushed so far.
    pub(crate) fn count(&self) -> usize {
        self.count
    }

    /// Places and encodes one record: an explicit `partition`, else by key (murmur2, as Kafka),
    /// else the sticky partition of this append.
    pub(crate) fn push(
        &mut self,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[Header],
        timestamp: Option<i64>,
        partition: Option<u32>,
    ) -> Result<()> {
        let count = self.parts.len() as u32;
        let p = match (partition, key) {
            (Some(p), _) if p < count => p,
            (Some(p), _) => {
                let topic = self.parts.first().map_or_else(String::new, |p| p.topic().to_string());
                return Err(Error::PartitionNotFound { topic, partition: p, count });
            }
            (None, Some(k)) => partition_for_key(k, count),
            (None, None) => self.sticky,
        };
        let builder = self.builders[p as usize].get_or_insert_with(|| BatchBuilder::new(&self.parts[p as usize]));
        builder.push(self.count, key, value, headers, timestamp)?;
        if count > 1 {
            self.placement.push(p as u16);
        }
        self.count += 1;
        Ok(())
    }

    /// Finishes every partition's batch (checked and checksummed, nothing written yet).
    pub(crate) fn finish(self) -> Result<Ready> {
        if self.count == 0 {
            return Err(Error::InvalidRecord("an append needs at least one record".into()));
        }
        let mut prepared = Vec::new();
        for (p, b) in self.builders.into_iter().enumerate() {
            if let Some(mut b) = b {
                if let Some(producer) = self.producer {
                    if !prepared.is_empty() {
                        return Err(Error::InvalidRecord(
                            "the records of an idempotent producer's append must all go to one partition".into(),
                        ));
                    }
                    producer.validate().map_err(|e| self.parts[p].producer_error(e))?;
                    b.set_producer(producer);
                }
                prepared.push((p, b.finish()?));
            }
        }
        Ok(Ready { parts: self.parts, prepared, placement: self.placement, count: self.count })
    }
}

/// An append whose batches are finished: [`commit`](Self::commit) writes them.
#[derive(Debug)]
pub(crate) struct Ready {
    parts: Arc<Vec<Partition>>,
    prepared: Vec<(usize, PreparedBatch)>,
    placement: Vec<u16>,
    count: usize,
}

impl Ready {
    /// Writes every partition's batch through the store's group commit (as
    /// [`Topic::append_async`] does) and waits until all are durable under the topic's durability.
    /// If one partition fails, the others' batches are still written and completed; the first
    /// error is returned.
    pub(crate) async fn commit(self) -> Result<Placed> {
        enum Wait {
            Done(Result<Appended>),
            Pending(PendingAsync),
        }
        let mut waits = Vec::with_capacity(self.prepared.len());
        for (p, batch) in self.prepared {
            let part = &self.parts[p];
            let wait = if batch.is_sync() {
                match part.committer().enqueue(part, batch).await {
                    Ok(pending) => Wait::Pending(pending),
                    Err(e) => Wait::Done(Err(e)),
                }
            } else {
                Wait::Done(part.write_prepared_async(batch).await.map(|(appended, _, _)| appended))
            };
            waits.push((p, wait));
        }
        let mut bases = vec![u64::MAX; self.parts.len()];
        let mut failed = None;
        for (p, wait) in waits {
            let done = match wait {
                Wait::Done(done) => done,
                Wait::Pending(pending) => pending.wait().await,
            };
            match done {
                Ok(appended) => bases[p] = appended.base_offset,
                Err(e) => {
                    failed.get_or_insert(e);
                }
            }
        }
        match failed {
            Some(e) => Err(e),
            None => Ok(Placed { bases, placement: self.placement, count: self.count }),
        }
    }
}

impl Placed {
    /// Records appended.
    pub(crate) fn count(&self) -> usize {
        self.count
    }
}

/// (partition, offset) of every record of a [`Placed`], in the order pushed.
#[derive(Debug)]
pub(crate) struct PlacedOffsets {
    next: Vec<u64>,
    placement: Vec<u16>,
    at: usize,
    count: usize,
}

impl IntoIterator for Placed {
    type Item = (u32, u64);
    type IntoIter = PlacedOffsets;
    fn into_iter(self) -> PlacedOffsets {
        PlacedOffsets { next: self.bases, placement: self.placement, at: 0, count: self.count }
    }
}

impl Iterator for PlacedOffsets {
    type Item = (u32, u64);
    fn next(&mut self) -> Option<(u32, u64)> {
        if self.at == self.count {
            return None;
        }
        // One partition: no placement kept.
        let p = self.placement.get(self.at).copied().unwrap_or(0) as u32;
        self.at += 1;
        let offset = self.next[p as usize];
        self.next[p as usize] += 1;
        Some((p, offset))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.count - self.at, Some(self.count - self.at))
    }
}
