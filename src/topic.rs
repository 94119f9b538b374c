//! A topic: N partitions under one config, and the partitioner that spreads appends over them.

use std::borrow::Cow;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use parking_lot::RwLock;
use serde::{Deserialize, Serialize};

use crate::config::TopicConfig;
use crate::error::{Error, Result};
use crate::log::{Appended, NewRecord, Partition};
use crate::partitioner::partition_for_key;

/// `topic.json`: what a topic is, replaced atomically on every change.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TopicMeta {
    pub format_version: u32,
    pub name: String,
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
    pub dir: PathBuf,
    pub config: Arc<RwLock<TopicConfig>>,
    pub partitions: RwLock<Arc<Vec<Partition>>>,
    /// Keyless records of one append stick to one partition; the next append takes the next one.
    pub sticky: AtomicU32,
}

impl Topic {
    pub fn name(&self) -> &str {
        &self.inner.name
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
    /// under the topic's durability. Blocking: async callers use [`append_async`](Self::append_async).
    pub fn append(&self, records: &[NewRecord]) -> Result<Vec<Appended>> {
        if records.is_empty() {
            return Ok(Vec::new());
        }
        let parts = self.partitions();
        let count = parts.len() as u32;
        let sticky = self.inner.sticky.fetch_add(1, Ordering::Relaxed) % count;
        let mut chosen = Vec::with_capacity(records.len());
        for r in records {
            chosen.push(self.choose(r, count, sticky)?);
        }
        let mut groups: Vec<(u32, Vec<usize>)> = Vec::new();
        for (i, &p) in chosen.iter().enumerate() {
            match groups.iter_mut().find(|(q, _)| *q == p) {
                Some((_, idx)) => idx.push(i),
                None => groups.push((p, vec![i])),
            }
        }
        let none = Appended { partition: 0, base_offset: 0, last_offset: 0, timestamp: 0, log_append_time_ms: 0 };
        let mut out = vec![none; chosen.len()];
        let log_append_time = self.config().timestamp_type == crate::config::TimestampType::LogAppendTime;
        let mut pending = Vec::with_capacity(groups.len());
        // Validate and encode every partition's batch before writing any: a rejected record
        // writes nothing anywhere.
        let mut prepared = Vec::with_capacity(groups.len());
        for (p, idx) in &groups {
            // All to one partition (the usual case): the batch is `records` as given, no copy.
            let batch: Cow<[NewRecord]> = match groups.len() {
                1 => Cow::Borrowed(records),
                _ => Cow::Owned(idx.iter().map(|&i| records[i].clone()).collect()),
            };
            prepared.push((parts[*p as usize].prepare(&batch)?, batch));
        }
        // Write every partition's batch, then wait for all fsyncs: they overlap.
        let mut failed = None;
        for ((p, idx), (ready, batch)) in groups.iter().zip(prepared) {
            let part = &parts[*p as usize];
            let (appended, end, durability) = match part.write_prepared(ready) {
                Ok(written) => written,
                Err(e) => {
                    failed = Some(e);
                    break;
                }
            };
            for (j, &i) in idx.iter().enumerate() {
                // As stored: the producer's timestamp, else (or always, under LogAppendTime) the append time.
                let ts = match batch[j].timestamp {
                    Some(ts) if !log_append_time => ts,
                    _ => appended.log_append_time_ms,
                };
                let offset = appended.base_offset + j as u64;
                out[i] =
                    Appended { partition: *p, base_offset: offset, last_offset: offset, timestamp: ts, ..appended };
            }
            pending.push((part, end, durability));
        }
        // Batches already written to other partitions are synced even when a later one failed, so
        // that they do not wait, unacknowledged and invisible, for that partition's next append.
        for (part, end, durability) in pending {
            if durability == crate::config::Durability::Sync {
                let synced = part.sync_through(end);
                if failed.is_none() {
                    synced?;
                }
            }
        }
        match failed {
            Some(e) => Err(e),
            None => Ok(out),
        }
    }

    /// Runs [`append`](Self::append) on tokio's blocking pool, for async callers (who give the
    /// records away: they outlive the call).
    pub async fn append_async(&self, records: Vec<NewRecord>) -> Result<Vec<Appended>> {
        let t = self.clone();
        tokio::task::spawn_blocking(move || t.append(&records)).await.expect("append does not panic")
    }
}
