//! A view's keyed state: a `BTreeMap` (ordered, for prefix scans) of keys to a value, to
//! aggregates, or to windows of aggregates; the watermark; counters; and the source offsets it
//! reflects. The state and the offsets are checkpointed together (see `checkpoint.rs`).

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::aggregate::Aggregates;
pub(crate) use super::entries::Entries;
use super::state_size as size;
use super::time::{self, Stamp};
use super::window::Windowing;

/// What one key holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Entry {
    /// A custom view's state (and a table's value in checkpoints of earlier builds).
    Value(Value),
    /// A table's value and the stamp of the record it came from (a record wins over it only
    /// with a greater stamp).
    Latest {
        value: Value,
        stamp: Stamp,
    },
    Aggregates(Aggregates),
    /// Windows by start.
    Windows(BTreeMap<i64, Window>),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Window {
    pub end: i64,
    pub aggregates: Aggregates,
}

/// Counters shown in the status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ViewCounters {
    /// Records read from the sources (all of them, whatever became of them).
    pub records_read: u64,
    /// Records that changed the state.
    pub records_applied: u64,
    /// Records the filter rejected.
    pub records_filtered: u64,
    /// Records for windows that had closed: dropped.
    pub late_records: u64,
    /// Records skipped because the value was not JSON or lacked a field the view needs.
    pub error_records: u64,
    /// Records written to the emit topic.
    pub records_emitted: u64,
    /// Source records an inner join dropped: no match.
    #[serde(default)]
    pub records_unmatched: u64,
    /// Keys dropped by `state.ttl_ms`.
    #[serde(default)]
    pub keys_expired: u64,
}

/// One source partition: the next offset to apply, and its watermark.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct SourceOffset {
    pub topic: String,
    pub partition: u32,
    pub next_offset: u64,
    /// The highest event time applied from this partition (its watermark).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_time_max: Option<i64>,
    /// Not holding the view's watermark back (nothing to read for a while, or no longer a
    /// source). Decided by the runner, never stored: a resumed view starts with none idle.
    #[serde(skip)]
    pub idle: bool,
}

/// The durable part of a view: what a checkpoint holds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct Snapshot {
    pub offsets: Vec<SourceOffset>,
    pub watermark: Option<i64>,
    pub counters: ViewCounters,
    pub entries: Entries,
    /// Emitted records staged for the emit topic (exactly-once emits).
    #[serde(default)]
    pub emit: super::emit::EmitLog,
    /// How record keys became view keys; a checkpoint without it is from an earlier build.
    #[serde(default = "RecordKeys::earlier")]
    pub record_keys: RecordKeys,
    /// The id of each source topic the offsets are of: a source whose id differs when the view
    /// resumes was deleted and created again meanwhile. A checkpoint of an earlier build has none
    /// (the ids of the topics it resumes on are recorded then).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub topic_ids: BTreeMap<String, crate::TopicId>,
    /// A join's table versions or stream buffers.
    #[serde(default, skip_serializing_if = "super::join::JoinState::is_empty")]
    pub join: super::join::JoinState,
    /// A Debezium source's rows as they contribute to aggregates (to retract them).
    #[serde(default, skip_serializing_if = "super::cdc::CdcRows::is_empty")]
    pub cdc: super::cdc::CdcRows,
    /// The event time of each key's last record (views with `state.ttl_ms`).
    #[serde(default, skip_serializing_if = "super::ttl::TtlIndex::is_empty")]
    pub ttl: super::ttl::TtlIndex,
}

/// How a view keyed by the record key spells its keys.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum RecordKeys {
    /// The key's bytes as UTF-8 (a JSON key `"u1"` kept its quotes): checkpoints of earlier builds.
    Bytes,
    /// A JSON-string key by its value (`u1`), any other by its bytes (`project::record_key`).
    #[default]
    JsonStringValue,
}

impl RecordKeys {
    fn earlier() -> RecordKeys {
        RecordKeys::Bytes
    }
}

impl Snapshot {
    /// Renames every key by `rename` (`None`: kept), merging entries that meet under one name.
    pub(crate) fn rename_keys(&mut self, rename: impl Fn(&str) -> Option<String>) {
        let old = std::mem::take(&mut self.entries);
        for (key, entry) in old.iter() {
            let key = rename(key).unwrap_or_else(|| key.clone());
            match self.entries.get_mut(&key) {
                Some(e) => e.merge(entry.clone()),
                None => self.entries.insert(key, entry.clone()),
            }
        }
    }
}

impl Entry {
    /// Folds `other` into `self`: aggregates merge (per window start for windows); of two values,
    /// `other` is kept.
    fn merge(&mut self, other: Entry) {
        match (self, other) {
            (Entry::Aggregates(a), Entry::Aggregates(b)) => a.merge(&b),
            (Entry::Windows(a), Entry::Windows(b)) => {
                for (start, w) in b {
                    match a.get_mut(&start) {
                        Some(mine) => {
                            mine.end = mine.end.max(w.end);
                            mine.aggregates.merge(&w.aggregates);
                        }
                        None => {
                            a.insert(start, w);
                        }
                    }
                }
            }
            (me, other) => *me = other,
        }
    }
}

/// The live state: a snapshot plus indexes of windows by end (rebuilt on load, never stored).
#[derive(Debug, Default)]
pub(crate) struct State {
    pub snap: Snapshot,
    /// Windows not closed yet, by `(end, key, start)`.
    open: BTreeSet<(i64, String, i64)>,
    /// Closed windows awaiting eviction, by `(end, key, start)`.
    closed: BTreeSet<(i64, String, i64)>,
    /// The estimated memory of the windows and their index entries.
    window_bytes: usize,
}

impl State {
    pub(crate) fn from_snapshot(snap: Snapshot, windowing: Option<&Windowing>) -> State {
        let mut st = State { snap, open: BTreeSet::new(), closed: BTreeSet::new(), window_bytes: 0 };
        st.snap.join.rebuild_indexes();
        if let Some(w) = windowing {
            for (key, entry) in st.snap.entries.iter() {
                if let Entry::Windows(ws) = entry {
                    for (&start, win) in ws {
                        st.window_bytes += size::window_bytes(key, win);
                        let item = (win.end, key.clone(), start);
                        if w.is_closed(win.end, st.snap.watermark) {
                            st.closed.insert(item);
                        } else {
                            st.open.insert(item);
                        }
                    }
                }
            }
        }
        st
    }

    /// The windows of `key`, created empty when absent.
    pub(crate) fn windows_mut(&mut self, key: &str) -> &mut BTreeMap<i64, Window> {
        if !matches!(self.snap.entries.get(key), Some(Entry::Windows(_))) {
            self.snap.entries.insert(key.to_string(), Entry::Windows(BTreeMap::new()));
        }
        match self.snap.entries.get_mut(key) {
            Some(Entry::Windows(ws)) => ws,
            _ => unreachable!("inserted above"),
        }
    }

    /// Records a new open window in the index (the caller put it in the map).
    pub(crate) fn track_open(&mut self, key: &str, start: i64, end: i64) {
        if let Some(Entry::Windows(ws)) = self.snap.entries.get(key) {
            if let Some(w) = ws.get(&start) {
                self.window_bytes += size::window_bytes(key, w);
            }
        }
        self.open.insert((end, key.to_string(), start));
    }

    /// The estimated memory of the state: keys, entries, windows, indexes.
    pub(crate) fn memory_bytes(&self) -> u64 {
        (self.snap.entries.bytes() + self.window_bytes + self.snap.ttl.bytes()) as u64
    }

    /// Removes an open window from the map and the index (a session merged into another).
    pub(crate) fn remove_open(&mut self, key: &str, start: i64) -> Option<Window> {
        let ws = match self.snap.entries.get_mut(key) {
            Some(Entry::Windows(ws)) => ws,
            _ => return None,
        };
        let w = ws.remove(&start)?;
        self.window_bytes = self.window_bytes.saturating_sub(size::window_bytes(key, &w));
        self.open.remove(&(w.end, key.to_string(), start));
        Some(w)
    }

    /// Raises the watermark of source `slot` to `t` if later, and the view's watermark with it as
    /// the other partitions allow. Windows that closed go to `closed_out` (see [`advance`](Self::advance)).
    pub(crate) fn observe(
        &mut self,
        slot: usize,
        t: i64,
        w: Option<&Windowing>,
        closed_out: &mut Vec<(String, i64, i64)>,
    ) {
        let Some(source) = self.snap.offsets.get_mut(slot) else { return };
        if source.event_time_max.is_some_and(|m| m >= t) {
            return;
        }
        source.event_time_max = Some(t);
        self.refresh_watermark(w, closed_out);
    }

    /// Sets the view's watermark to what the partitions allow (never lower than it was).
    pub(crate) fn refresh_watermark(&mut self, w: Option<&Windowing>, closed_out: &mut Vec<(String, i64, i64)>) {
        if let Some(t) = time::allowed_watermark(&self.snap.offsets) {
            self.advance(t, w, closed_out);
        }
    }

    /// Marks source `slot` idle or not; true when that changed.
    pub(crate) fn set_idle(&mut self, slot: usize, idle: bool) -> bool {
        match self.snap.offsets.get_mut(slot) {
            Some(s) if s.idle != idle => {
                s.idle = idle;
                true
            }
            _ => false,
        }
    }

    /// Moves the view's watermark to `t` if later. Returns the windows that closed, `(key, start, end)`,
    /// oldest end first (they stay until [`evict_expired`](Self::evict_expired)).
    fn advance(&mut self, t: i64, w: Option<&Windowing>, closed_out: &mut Vec<(String, i64, i64)>) {
        if self.snap.watermark.is_some_and(|wm| wm >= t) {
            return;
        }
        self.snap.watermark = Some(t);
        let Some(w) = w else { return };
        while let Some(first) = self.open.first() {
            if !w.is_closed(first.0, self.snap.watermark) {
                break;
            }
            let item = self.open.pop_first().expect("checked above");
            closed_out.push((item.1.clone(), item.2, item.0));
            self.closed.insert(item);
        }
    }

    /// Evicts closed windows past their retention. Called after the windows that closed were
    /// emitted: a window may close and expire at the same watermark.
    pub(crate) fn evict_expired(&mut self, w: &Windowing) {
        while let Some(first) = self.closed.first() {
            if !w.is_expired(first.0, self.snap.watermark) {
                break;
            }
            let (_, key, start) = self.closed.pop_first().expect("checked above");
            if let Some(Entry::Windows(ws)) = self.snap.entries.get_mut(&key) {
                if let Some(w) = ws.remove(&start) {
                    self.window_bytes = self.window_bytes.saturating_sub(size::window_bytes(&key, &w));
                }
                if ws.is_empty() {
                    self.snap.entries.remove(&key);
                }
            }
        }
    }

    /// How many windows are held (open and closed).
    pub(crate) fn window_count(&self) -> usize {
        self.open.len() + self.closed.len()
    }

    pub(crate) fn offset_of(&self, topic: &str, partition: u32) -> Option<u64> {
        self.snap.offsets.iter().find(|o| o.topic == topic && o.partition == partition).map(|o| o.next_offset)
    }

    /// Sets the next offset of a source partition; returns its slot (its index in the offsets,
    /// which never changes).
    pub(crate) fn set_offset(&mut self, topic: &str, partition: u32, next_offset: u64) -> usize {
        match self.snap.offsets.iter().position(|o| o.topic == topic && o.partition == partition) {
            Some(i) => {
                self.snap.offsets[i].next_offset = next_offset;
                i
            }
            None => {
                self.snap.offsets.push(SourceOffset {
                    topic: topic.to_string(),
                    partition,
                    next_offset,
                    event_time_max: None,
                    idle: false,
                });
                self.snap.offsets.len() - 1
            }
        }
    }

    /// The slot of a source partition, added when new at `start`.
    pub(crate) fn slot_of(&mut self, topic: &str, partition: u32, start: u64) -> usize {
        match self.snap.offsets.iter().position(|o| o.topic == topic && o.partition == partition) {
            Some(i) => i,
            None => self.set_offset(topic, partition, start),
        }
    }

    /// Sets the next offset of the source at `slot`.
    pub(crate) fn set_offset_at(&mut self, slot: usize, next_offset: u64) {
        self.snap.offsets[slot].next_offset = next_offset;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stream::spec::{WindowSpec, WindowType};

    #[test]
    fn windows_close_then_expire_and_indexes_rebuild_on_load() {
        let w = Windowing::new(&WindowSpec {
            kind: WindowType::Tumbling,
            size_ms: Some(10),
            advance_ms: None,
            gap_ms: None,
            grace_ms: 2,
            time: None,
            retention_ms: Some(20),
            idle_timeout_ms: None,
            max_future_ms: None,
        });
        let mut st = State::default();
        for (key, start) in [("a", 0), ("b", 0), ("a", 10)] {
            st.windows_mut(key).insert(start, Window { end: start + 10, aggregates: Aggregates(vec![]) });
            st.track_open(key, start, start + 10);
        }
        let mut closed = Vec::new();
        st.advance(11, Some(&w), &mut closed);
        assert!(closed.is_empty());
        st.advance(12, Some(&w), &mut closed);
        assert_eq!(closed, vec![("a".to_string(), 0, 10), ("b".to_string(), 0, 10)]);
        let reloaded = State::from_snapshot(st.snap.clone(), Some(&w));
        assert_eq!((reloaded.open.len(), reloaded.closed.len()), (1, 2));
        closed.clear();
        st.advance(30, Some(&w), &mut closed);
        assert_eq!(closed, vec![("a".to_string(), 10, 20)]);
        assert!(st.snap.entries.contains_key("b"), "kept until evicted");
        st.evict_expired(&w);
        assert!(!st.snap.entries.contains_key("b"), "b's only window expired");
        assert_eq!(st.window_count(), 1);
        st.advance(40, Some(&w), &mut closed);
        st.evict_expired(&w);
        assert!(st.snap.entries.is_empty());
        assert_eq!(st.window_count(), 0);
    }
}
