//! `kafka-consumer-groups --reset-offsets`: which partitions, where to, and the plan. The coordinator
//! executes a plan as one batch in the offsets topic (all partitions or none).

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::Result;
use crate::error::Error;
use crate::log::Partition;
use crate::store::Store;

use super::offsets::GroupOffsets;
use super::{GroupError, TopicPartition};

/// Where to move a group's committed offsets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResetStrategy {
    /// The log start offset.
    ToEarliest,
    /// The high watermark.
    ToLatest,
    /// This offset, clamped to the valid range (with a note).
    ToOffset(u64),
    /// The first record with a timestamp at or after this (ms since the epoch); the high
    /// watermark when every record is older.
    ToTimestamp(i64),
    /// `ToTimestamp(now - ms)`.
    ByDuration(u64),
    /// The committed offset plus this (negative moves back), clamped (with a note). A partition
    /// without a committed offset is an error, as in Kafka.
    ShiftBy(i64),
}

/// Which offsets to reset, how, and whether to apply the plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResetRequest {
    /// One topic; `None` for every topic the group has committed offsets for or subscribes to.
    pub topic: Option<String>,
    /// Some partitions of `topic` (which must then be given); `None` for all.
    pub partitions: Option<Vec<u32>>,
    pub strategy: ResetStrategy,
    /// `false` (the default, Kafka's `--dry-run`) only returns the plan.
    #[serde(default)]
    pub execute: bool,
    /// Evict the group's live members first (only when executing). Without it, a group with live
    /// members is refused, dry run or not, as Kafka does.
    #[serde(default)]
    pub force: bool,
}

/// One partition's move.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ResetEntry {
    pub topic: String,
    pub partition: u32,
    /// The committed offset before the reset.
    pub current: Option<u64>,
    pub new: u64,
    /// Why `new` differs from what was asked (clamping, no record at the timestamp).
    pub note: Option<String>,
}

/// The result of a reset: what moves (or would move) where.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ResetPlan {
    pub entries: Vec<ResetEntry>,
    /// Whether the plan was applied (durably, all entries at once).
    pub executed: bool,
}

/// The partitions a reset covers, sorted.
pub(crate) fn scope(
    store: &Store,
    offsets: &GroupOffsets,
    subscribed: &BTreeSet<String>,
    req: &ResetRequest,
) -> Result<Vec<Partition>> {
    let mut out = Vec::new();
    match (&req.topic, &req.partitions) {
        (None, Some(_)) => {
            return Err(GroupError::InvalidRequest("a reset of chosen partitions needs a topic".into()));
        }
        (Some(t), parts) => {
            let topic = store.topic(t)?;
            match parts {
                None => out.extend(topic.partitions().iter().cloned()),
                Some(ps) => {
                    let ps: BTreeSet<u32> = ps.iter().copied().collect();
                    for p in ps {
                        out.push(topic.partition(p)?);
                    }
                }
            }
        }
        (None, None) => {
            let mut topics: BTreeSet<&String> = offsets.keys().map(|tp| &tp.topic).collect();
            topics.extend(subscribed.iter());
            for t in topics {
                match store.topic(t) {
                    Ok(topic) => out.extend(topic.partitions().iter().cloned()),
                    // Offsets of a deleted topic: nothing to reset to.
                    Err(Error::TopicNotFound(_)) => {}
                    Err(e) => return Err(e.into()),
                }
            }
        }
    }
    Ok(out)
}

/// Where each partition goes under `strategy`.
pub(crate) fn plan(
    group: &str,
    partitions: &[Partition],
    offsets: &GroupOffsets,
    strategy: ResetStrategy,
    now_ms: i64,
) -> Result<Vec<ResetEntry>> {
    let mut entries = Vec::with_capacity(partitions.len());
    let mut by_tp = BTreeMap::new();
    for p in partitions {
        by_tp.insert(TopicPartition::new(p.topic(), p.id()), p);
    }
    for (tp, p) in by_tp {
        let (start, end) = (p.log_start_offset(), p.high_watermark());
        let current = offsets.get(&tp).map(|c| c.offset);
        let clamp = |wanted: i128, what: &str| -> (u64, Option<String>) {
            if wanted < start as i128 {
                (start, Some(format!("{what} {wanted} is below the log start offset {start}: clamped")))
            } else if wanted > end as i128 {
                (end, Some(format!("{what} {wanted} is above the high watermark {end}: clamped")))
            } else {
                (wanted as u64, None)
            }
        };
        let by_time = |ts: i64| -> Result<(u64, Option<String>)> {
            Ok(match p.offset_for_timestamp(ts)? {
                Some(o) => (o, None),
                None => (end, Some(format!("no record at or after timestamp {ts}: the high watermark"))),
            })
        };
        let (new, note) = match strategy {
            ResetStrategy::ToEarliest => (start, None),
            ResetStrategy::ToLatest => (end, None),
            ResetStrategy::ToOffset(n) => clamp(n as i128, "offset"),
            ResetStrategy::ToTimestamp(ts) => by_time(ts)?,
            ResetStrategy::ByDuration(ms) => by_time(now_ms.saturating_sub(i64::try_from(ms).unwrap_or(i64::MAX)))?,
            ResetStrategy::ShiftBy(n) => {
                let Some(c) = current else {
                    return Err(GroupError::NothingToShift {
                        group: group.to_string(),
                        topic: tp.topic.clone(),
                        partition: tp.partition,
                    });
                };
                clamp(c as i128 + n as i128, "shifted offset")
            }
        };
        entries.push(ResetEntry { topic: tp.topic, partition: tp.partition, current, new, note });
    }
    Ok(entries)
}
