//! Committed offsets, durable in the internal compacted topic [`OFFSETS_TOPIC`] (Kafka's way).
//!
//! One record per (group, topic, partition): the key names it, the value holds the offset; a
//! tombstone forgets it. A group's records all go to one partition of the topic (murmur2 of the group
//! name), so one commit or reset is one batch: durable and atomic under the log's own rules (CRC'd
//! batches, fsync before acknowledging, a torn tail is truncated). Byte layout in `segment-format.md`.

use std::collections::BTreeMap;

use super::Result;
use crate::config::{CleanupPolicy, Durability, TopicConfig};
use crate::error::Error;
use crate::log::NewRecord;
use crate::partitioner::partition_for_key;
use crate::store::Store;
use crate::topic::Topic;

use super::{CommittedOffset, GroupError, TopicPartition};

/// The internal topic holding committed offsets.
pub const OFFSETS_TOPIC: &str = "__consumer_offsets";
/// Partitions of [`OFFSETS_TOPIC`] when this build creates it (an existing topic keeps its count).
pub const OFFSETS_TOPIC_PARTITIONS: u32 = 4;
/// Segment size of [`OFFSETS_TOPIC`]: small, so that compaction can clean sealed segments early.
pub const OFFSETS_SEGMENT_BYTES: u64 = 16 * 1024 * 1024;
/// Bytes read per step when replaying the topic at open.
const REPLAY_FETCH_BYTES: usize = 4 * 1024 * 1024;
/// Records read per step when replaying the topic at open.
const REPLAY_FETCH_RECORDS: usize = 16 * 1024;

/// Key format version: an offset commit.
const KEY_VERSION_OFFSET: u16 = 1;
/// Value format version 1: offset, commit timestamp, metadata.
const VALUE_VERSION_1: u16 = 1;
/// Value format version 2: version 1's fields, then the topic id (16 bytes).
const VALUE_VERSION_TOPIC_ID: u16 = 2;
/// `metadata_len` meaning "no metadata".
const METADATA_NONE: i32 = -1;

/// Committed offsets of one group.
pub(crate) type GroupOffsets = BTreeMap<TopicPartition, CommittedOffset>;

#[derive(Debug, Clone)]
pub(crate) struct OffsetStore {
    topic: Topic,
}

impl OffsetStore {
    /// Opens (creating if needed) the offsets topic and replays it: group → committed offsets.
    pub fn open(store: &Store) -> Result<(OffsetStore, BTreeMap<String, GroupOffsets>)> {
        let topic = match store.topic(OFFSETS_TOPIC) {
            Ok(t) => t,
            Err(Error::TopicNotFound(_)) => {
                let config = TopicConfig {
                    segment_bytes: OFFSETS_SEGMENT_BYTES,
                    durability: Durability::Sync,
                    cleanup_policy: CleanupPolicy::Compact,
                    retention_ms: -1,
                    ..TopicConfig::default()
                };
                match store.create_internal_topic(OFFSETS_TOPIC, OFFSETS_TOPIC_PARTITIONS, config) {
                    Ok(t) => t,
                    Err(Error::TopicExists(_)) => store.topic(OFFSETS_TOPIC)?,
                    Err(e) => return Err(e.into()),
                }
            }
            Err(e) => return Err(e.into()),
        };
        let mut groups: BTreeMap<String, GroupOffsets> = BTreeMap::new();
        for p in topic.partitions().iter() {
            let end = p.high_watermark();
            let mut next = p.log_start_offset();
            while next < end {
                let records = p.read(next, REPLAY_FETCH_BYTES, REPLAY_FETCH_RECORDS)?;
                let Some(last) = records.last() else { break };
                next = last.offset + 1;
                for r in records {
                    let bad = |reason: String| GroupError::BadOffsetRecord {
                        topic: OFFSETS_TOPIC.to_string(),
                        partition: p.id(),
                        offset: r.offset,
                        reason,
                    };
                    let key = r.key.as_deref().ok_or_else(|| bad("the record has no key".into()))?;
                    let (group, tp) = decode_key(key).map_err(bad)?;
                    match r.value.as_deref() {
                        Some(v) => {
                            let c = decode_value(v).map_err(bad)?;
                            groups.entry(group).or_default().insert(tp, c);
                        }
                        None => {
                            if let Some(g) = groups.get_mut(&group) {
                                g.remove(&tp);
                            }
                        }
                    }
                }
            }
        }
        let offsets = OffsetStore { topic };
        offsets.reconcile(store, &mut groups)?;
        groups.retain(|_, g| !g.is_empty());
        Ok((offsets, groups))
    }

    /// Makes every replayed offset belong to the topic of its name as it is now: an offset
    /// committed on a topic since deleted (a crash between a topic's deletion and the deletion of
    /// its offsets, or a topic created again since) is deleted, durably, never applied; an offset
    /// from a build without topic ids is taken as the current topic's and rewritten with its id.
    fn reconcile(&self, store: &Store, groups: &mut BTreeMap<String, GroupOffsets>) -> Result<()> {
        let now = store.config().clock.now_ms();
        for (group, offsets) in groups.iter_mut() {
            let mut changes = Vec::new();
            for (tp, c) in offsets.iter() {
                let current = store.topic(&tp.topic).ok().map(|t| t.id());
                match (c.topic_id, current) {
                    (Some(id), Some(now_id)) if id == now_id => {}
                    (None, Some(now_id)) => {
                        changes.push((tp.clone(), Some(CommittedOffset { topic_id: Some(now_id), ..c.clone() })))
                    }
                    _ => changes.push((tp.clone(), None)),
                }
            }
            if changes.is_empty() {
                continue;
            }
            self.write(group, &changes, now)?;
            for (tp, c) in changes {
                match c {
                    Some(c) => offsets.insert(tp, c),
                    None => {
                        tracing::info!(group, topic = %tp.topic, partition = tp.partition, "a committed offset of a deleted topic deleted");
                        offsets.remove(&tp)
                    }
                };
            }
        }
        Ok(())
    }

    /// Writes one group's changes (`None` forgets the offset) as one batch: all or nothing, and
    /// durable when this returns.
    pub fn write(
        &self,
        group: &str,
        changes: &[(TopicPartition, Option<CommittedOffset>)],
        now_ms: i64,
    ) -> crate::Result<()> {
        if changes.is_empty() {
            return Ok(());
        }
        let records: Vec<NewRecord> = changes
            .iter()
            .map(|(tp, c)| {
                let key = encode_key(group, tp);
                match c {
                    Some(c) => NewRecord::keyed(key, encode_value(c)),
                    None => NewRecord::tombstone(key),
                }
                .with_timestamp(now_ms)
            })
            .collect();
        let p = self.topic.partition(partition_for_key(group.as_bytes(), self.topic.partition_count()))?;
        p.append(&records)?;
        Ok(())
    }
}

fn put_str(buf: &mut Vec<u8>, s: &str) {
    buf.extend_from_slice(&(u16::try_from(s.len()).expect("names are validated shorter")).to_le_bytes());
    buf.extend_from_slice(s.as_bytes());
}

pub(crate) fn encode_key(group: &str, tp: &TopicPartition) -> Vec<u8> {
    let mut buf = Vec::with_capacity(2 + 2 + group.len() + 2 + tp.topic.len() + 4);
    buf.extend_from_slice(&KEY_VERSION_OFFSET.to_le_bytes());
    put_str(&mut buf, group);
    put_str(&mut buf, &tp.topic);
    buf.extend_from_slice(&tp.partition.to_le_bytes());
    buf
}

pub(crate) fn encode_value(c: &CommittedOffset) -> Vec<u8> {
    let meta = c.metadata.as_deref().map(str::as_bytes);
    let mut buf = Vec::with_capacity(2 + 8 + 8 + 4 + meta.map_or(0, <[u8]>::len) + 16);
    let version = if c.topic_id.is_some() { VALUE_VERSION_TOPIC_ID } else { VALUE_VERSION_1 };
    buf.extend_from_slice(&version.to_le_bytes());
    buf.extend_from_slice(&c.offset.to_le_bytes());
    buf.extend_from_slice(&c.commit_timestamp.to_le_bytes());
    match meta {
        Some(m) => {
            buf.extend_from_slice(&(i32::try_from(m.len()).expect("metadata is validated shorter")).to_le_bytes());
            buf.extend_from_slice(m);
        }
        None => buf.extend_from_slice(&METADATA_NONE.to_le_bytes()),
    }
    if let Some(id) = &c.topic_id {
        buf.extend_from_slice(id.as_bytes());
    }
    buf
}

/// Reads fixed-size fields and strings off the front of a slice; every error names what was short.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &str) -> std::result::Result<&'a [u8], String> {
        if self.0.len() < n {
            return Err(format!("{what}: needs {n} bytes, {} left", self.0.len()));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }
    fn u16(&mut self, what: &str) -> std::result::Result<u16, String> {
        Ok(u16::from_le_bytes(self.take(2, what)?.try_into().expect("2 bytes")))
    }
    fn u32(&mut self, what: &str) -> std::result::Result<u32, String> {
        Ok(u32::from_le_bytes(self.take(4, what)?.try_into().expect("4 bytes")))
    }
    fn u64(&mut self, what: &str) -> std::result::Result<u64, String> {
        Ok(u64::from_le_bytes(self.take(8, what)?.try_into().expect("8 bytes")))
    }
    fn string(&mut self, len: usize, what: &str) -> std::result::Result<String, String> {
        let bytes = self.take(len, what)?;
        String::from_utf8(bytes.to_vec()).map_err(|e| format!("{what} is not UTF-8: {e}"))
    }
    fn end(&self, what: &str) -> std::result::Result<(), String> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(format!("{} bytes after the {what}", self.0.len()))
        }
    }
}

pub(crate) fn decode_key(key: &[u8]) -> std::result::Result<(String, TopicPartition), String> {
    let mut r = Reader(key);
    let version = r.u16("key version")?;
    if version != KEY_VERSION_OFFSET {
        return Err(format!("unknown key version {version}"));
    }
    let len = r.u16("group length")? as usize;
    let group = r.string(len, "group")?;
    let len = r.u16("topic length")? as usize;
    let topic = r.string(len, "topic")?;
    let partition = r.u32("partition")?;
    r.end("key")?;
    Ok((group, TopicPartition { topic, partition }))
}

pub(crate) fn decode_value(value: &[u8]) -> std::result::Result<CommittedOffset, String> {
    let mut r = Reader(value);
    let version = r.u16("value version")?;
    if version != VALUE_VERSION_1 && version != VALUE_VERSION_TOPIC_ID {
        return Err(format!("unknown value version {version}"));
    }
    let offset = r.u64("offset")?;
    let commit_timestamp = r.u64("commit timestamp")? as i64;
    let len = r.u32("metadata length")? as i32;
    let metadata = match len {
        METADATA_NONE => None,
        n if n < 0 => return Err(format!("metadata length {n}")),
        n => Some(r.string(n as usize, "metadata")?),
    };
    let topic_id = match version {
        VALUE_VERSION_TOPIC_ID => {
            Some(crate::TopicId::from_bytes(r.take(16, "topic id")?.try_into().expect("16 bytes")))
        }
        _ => None,
    };
    r.end("value")?;
    Ok(CommittedOffset { offset, metadata, commit_timestamp, topic_id })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Bytes from disk never panic the decoders; what they accept re-encodes to the same bytes.
        #[test]
        fn arbitrary_bytes_decode_or_fail_cleanly(bytes in prop::collection::vec(any::<u8>(), 0..80)) {
            if let Ok((group, tp)) = decode_key(&bytes) {
                prop_assert_eq!(encode_key(&group, &tp), bytes.clone());
            }
            if let Ok(c) = decode_value(&bytes) {
                prop_assert_eq!(encode_value(&c), bytes);
            }
        }
    }

    #[test]
    fn key_and_value_round_trip() {
        let tp = TopicPartition::new("orders", 7);
        let key = encode_key("g-1", &tp);
        assert_eq!(key.len(), 2 + 2 + 3 + 2 + 6 + 4);
        assert_eq!(decode_key(&key).unwrap(), ("g-1".to_string(), tp));
        let id = crate::TopicId::from_bytes([7; 16]);
        for metadata in [None, Some(String::new()), Some("state=42".to_string())] {
            for topic_id in [None, Some(id)] {
                let c = CommittedOffset { offset: 1 << 40, metadata: metadata.clone(), commit_timestamp: -5, topic_id };
                let bytes = encode_value(&c);
                assert_eq!(bytes[..2], [if topic_id.is_some() { 2 } else { 1 }, 0], "the version");
                assert_eq!(decode_value(&bytes).unwrap(), c);
            }
        }
    }

    /// At open, an offset without a topic id (from an earlier build) is taken as the current
    /// topic's and rewritten with its id; one of a topic that is gone, or of an older topic of the
    /// name, is deleted.
    #[test]
    fn open_upgrades_offsets_without_ids_and_deletes_stale_ones() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::builder(dir.path()).cleaner_interval_ms(0).open().unwrap();
        let t = store.create_topic("t", 1, TopicConfig::default()).unwrap();
        let (offsets, _) = OffsetStore::open(&store).unwrap();
        let c = |offset, topic_id| Some(CommittedOffset { offset, metadata: None, commit_timestamp: 0, topic_id });
        let old = Some(crate::TopicId::from_bytes([9; 16]));
        let changes = [
            (TopicPartition::new("t", 0), c(0, None)),
            (TopicPartition::new("gone", 0), c(0, Some(t.id()))),
            (TopicPartition::new("t", 1), c(0, old)),
        ];
        offsets.write("g", &changes, 0).unwrap();
        for _ in 0..2 {
            let (_, groups) = OffsetStore::open(&store).unwrap();
            let g = &groups["g"];
            assert_eq!(g.keys().collect::<Vec<_>>(), [&TopicPartition::new("t", 0)], "{g:?}");
            assert_eq!(g[&TopicPartition::new("t", 0)].topic_id, Some(t.id()));
        }
    }

    #[test]
    fn bad_bytes_are_errors() {
        let key = encode_key("g", &TopicPartition::new("t", 0));
        for cut in 0..key.len() {
            assert!(decode_key(&key[..cut]).is_err(), "cut at {cut}");
        }
        let mut long = key.clone();
        long.push(0);
        assert!(decode_key(&long).unwrap_err().contains("after the key"));
        let mut v2 = key;
        v2[0] = 9;
        assert!(decode_key(&v2).unwrap_err().contains("version 9"));
        let value = encode_value(&CommittedOffset {
            offset: 1,
            metadata: Some("abc".into()),
            commit_timestamp: 0,
            topic_id: Some(crate::TopicId::from_bytes([1; 16])),
        });
        for cut in 0..value.len() {
            assert!(decode_value(&value[..cut]).is_err(), "cut at {cut}");
        }
        let mut neg = value.clone();
        neg[18..22].copy_from_slice(&(-7i32).to_le_bytes());
        assert!(decode_value(&neg).unwrap_err().contains("-7"));
    }
}
