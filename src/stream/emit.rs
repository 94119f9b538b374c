//! Exactly-once emits. A view's emitted records are staged in its state, written with the
//! checkpoint that covers their inputs, and appended to the emit topic only after that checkpoint
//! is durable. A crash between the two leaves them in the checkpoint: on resume, the runner looks
//! in the emit topic for those it had already appended (each carries the view's name, version and
//! a sequence number in its headers) and appends only the others.
//!
//! So an emitted record is appended exactly once per view version, and it becomes visible at the
//! checkpoint that covers its inputs (as Kafka Streams' exactly-once outputs become visible at a
//! commit), never before.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::log::{Header, NewRecord};
use crate::partitioner::partition_for_key;
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
    pub sequence: u64,
    pub partition: u32,
    pub key: Option<String>,
    /// `None`: a tombstone.
    pub value: Option<String>,
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
            self.pending.push(PendingEmit {
                sequence: self.next_sequence,
                partition,
                key: text(r.key),
                value: text(r.value),
            });
            self.next_sequence += 1;
        }
        Ok(())
    }

    /// Takes the staged records out, to append after the checkpoint that holds them is durable.
    pub(crate) fn take(&mut self) -> Vec<PendingEmit> {
        self.scan_from.clear();
        std::mem::take(&mut self.pending)
    }
}

/// Appends `pending` to `topic` for view `view` version `version`; returns how many were appended.
pub(crate) fn publish(topic: &Topic, view: &str, version: u64, pending: Vec<PendingEmit>) -> Result<u64> {
    let n = pending.len() as u64;
    let records: Vec<NewRecord> = pending.into_iter().map(|p| to_record(view, version, p)).collect();
    for chunk in records.chunks(EMIT_BATCH_RECORDS_MAX) {
        topic.append(chunk)?;
    }
    Ok(n)
}

/// After a restart: drops from `log.pending` the records that already reached `topic` (found by
/// their headers after `log.scan_from`), so that publishing the rest appends each record once.
pub(crate) fn forget_published(topic: &Topic, view: &str, version: u64, log: &mut EmitLog) -> Result<()> {
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
    if !found.is_empty() {
        tracing::info!(
            view,
            version,
            already = found.len(),
            of = log.pending.len(),
            "emitted records found in the emit topic after a restart: not appended again"
        );
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
mod tests {
    use super::*;
    use crate::{Store, StoreConfig, TopicConfig};

    /// A crash part way through publishing: what reached the topic is found by its headers and
    /// not appended again; the rest is.
    #[test]
    fn a_restart_appends_only_what_had_not_reached_the_topic() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
        let topic = store.create_topic("out", 3, TopicConfig::default()).unwrap();
        topic.append(&[NewRecord::keyed("other", "a record of another writer")]).unwrap();
        let mut log = EmitLog::default();
        let staged: Vec<NewRecord> = (0..10).map(|i| NewRecord::keyed(format!("k{i}"), format!("{i}"))).collect();
        log.stage(&topic, staged).unwrap();
        assert_eq!(log.next_sequence, 10);
        // The checkpoint holds `log`; the crash came after the first four were appended.
        let first_four = log.pending[..4].to_vec();
        publish(&topic, "v", 3, first_four).unwrap();
        let mut resumed = log.clone();
        forget_published(&topic, "v", 3, &mut resumed).unwrap();
        assert_eq!(resumed.pending.iter().map(|p| p.sequence).collect::<Vec<_>>(), (4..10).collect::<Vec<_>>());
        publish(&topic, "v", 3, resumed.take()).unwrap();
        assert_eq!(sequences_without_other(&topic), (0..10).collect::<Vec<_>>());
        // Another version's records with the same sequence numbers do not count as published.
        let mut other_version = log.clone();
        forget_published(&topic, "v", 4, &mut other_version).unwrap();
        assert_eq!(other_version.pending.len(), 10);
        // A second restart before the next checkpoint finds all ten.
        let mut again = log;
        forget_published(&topic, "v", 3, &mut again).unwrap();
        assert!(again.pending.is_empty());
    }

    fn sequences_without_other(topic: &Topic) -> Vec<u64> {
        let mut out = Vec::new();
        for p in topic.partitions().iter() {
            for r in p.read(0, 1 << 20, 10_000).unwrap() {
                if r.key.as_deref() != Some(&b"other"[..]) {
                    assert_eq!(p.id(), partition_for_key(r.key.as_deref().unwrap(), 3), "where append would put it");
                    out.push(sequence_of(&r.headers, "v", 3).expect("a record of view v version 3"));
                }
            }
        }
        out.sort_unstable();
        out
    }
}
