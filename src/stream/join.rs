//! Joins: a temporal stream-table join (each source record joins the table version current at its
//! event time) and a windowed stream-stream join (records of two streams whose keys match and
//! whose event times are at most `within_ms` apart). The table's versions and the streams'
//! buffers live in the view's state and are checkpointed with it. The runner reads the joined
//! topic as one more input of its event-time merge (ties go to the joined topic), so a record
//! sees the same table versions and partners live and in a replay. Semantics in the module docs
//! of `stream` (`## Joins`).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::cdc::{self, value_key, Op};
use super::expr::lookup;
use super::join_spec::{
    JoinSpec, JoinType, SourceFormat, JOIN_BUFFER_RECORDS_MAX, JOIN_RETENTION_MS_DEFAULT, JOIN_VERSIONS_PER_KEY_MAX,
};
use super::operator::{Declarative, Meta, Origin};
use super::state::State;
use super::time::Stamp;
use super::window;
use crate::log::NewRecord;

/// How often (in the table's event time, at least) every key's superseded versions are swept.
const SWEEP_INTERVAL_MS_MIN: i64 = 60_000;

/// The versions of one table key, oldest first; `None` is a deletion (a tombstone).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Versions {
    versions: Vec<(Stamp, Option<Value>)>,
    /// Versions before this time were dropped for `JOIN_VERSIONS_PER_KEY_MAX`: a lookup before
    /// it cannot be answered (late).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    floor: Option<i64>,
}

impl Versions {
    /// Drops versions superseded at or before `horizon` (the one current at `horizon` stays).
    fn prune(&mut self, horizon: i64) {
        let drop = self.versions.iter().skip(1).take_while(|(s, _)| s.time <= horizon).count();
        self.versions.drain(..drop);
    }
    /// Nothing to answer from: one deletion older than `horizon`.
    fn is_gone(&self, horizon: i64) -> bool {
        matches!(self.versions.as_slice(), [(s, None)] if s.time <= horizon) || self.versions.is_empty()
    }
}

/// What a temporal lookup found.
#[derive(Debug, PartialEq)]
pub(crate) enum Lookup<'a> {
    Found(&'a Value),
    Absent,
    /// Older than what the table keeps (`join.retention_ms`): the answer is not known.
    Late,
}

/// A record buffered by a stream-stream join.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Held {
    stamp: Stamp,
    doc: Value,
    /// The source record's key, timestamp and slot (what keys, stamps and times its joins).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    key: Option<Vec<u8>>,
    timestamp: i64,
    slot: usize,
    #[serde(default)]
    matched: bool,
}

impl Held {
    fn meta(&self) -> Meta<'_> {
        Meta {
            key: self.key.as_deref(),
            timestamp: self.timestamp,
            offset: self.stamp.offset,
            origin: Origin { slot: self.slot, topic: self.stamp.topic, partition: self.stamp.partition },
        }
    }
}

/// One side's buffered records by key, each key's in stamp order, with an index by stamp.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Buffer {
    by_key: BTreeMap<String, Vec<Held>>,
    #[serde(skip)]
    by_time: BTreeSet<(Stamp, String)>,
}

impl Buffer {
    fn is_empty(&self) -> bool {
        self.by_key.is_empty()
    }
    fn len(&self) -> usize {
        self.by_time.len()
    }
    fn rebuild_index(&mut self) {
        self.by_time = self.by_key.iter().flat_map(|(k, hs)| hs.iter().map(move |h| (h.stamp, k.clone()))).collect();
    }
    fn insert(&mut self, key: String, held: Held) {
        self.by_time.insert((held.stamp, key.clone()));
        let list = self.by_key.entry(key).or_default();
        let at = list.partition_point(|h| h.stamp < held.stamp);
        list.insert(at, held);
    }
    /// The records of `key` with times in `lo..=hi`, marked matched.
    fn matches(&mut self, key: &str, lo: i64, hi: i64) -> Vec<Held> {
        let Some(list) = self.by_key.get_mut(key) else { return Vec::new() };
        let from = list.partition_point(|h| h.stamp.time < lo);
        let mut out = Vec::new();
        for h in list[from..].iter_mut().take_while(|h| h.stamp.time <= hi) {
            h.matched = true;
            out.push(h.clone());
        }
        out
    }
    /// Removes the records with times before `limit`, in stamp order.
    fn evict_before(&mut self, limit: i64) -> Vec<Held> {
        let mut out = Vec::new();
        while self.by_time.first().is_some_and(|(s, _)| s.time < limit) {
            let (stamp, key) = self.by_time.pop_first().expect("checked above");
            if let Some(list) = self.by_key.get_mut(&key) {
                if let Ok(at) = list.binary_search_by(|h| h.stamp.cmp(&stamp)) {
                    out.push(list.remove(at));
                }
                if list.is_empty() {
                    self.by_key.remove(&key);
                }
            }
        }
        out
    }
}

/// A join's state: the table's versions (table joins) or both sides' buffers (stream joins).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct JoinState {
    #[serde(default, skip_serializing_if = "HashMap::is_empty")]
    table: HashMap<String, Versions>,
    /// The greatest time of a table record applied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    table_time_max: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    swept_at: Option<i64>,
    #[serde(default, skip_serializing_if = "Buffer::is_empty")]
    main: Buffer,
    #[serde(default, skip_serializing_if = "Buffer::is_empty")]
    other: Buffer,
}

impl JoinState {
    pub(crate) fn is_empty(&self) -> bool {
        self.table.is_empty() && self.table_time_max.is_none() && self.main.is_empty() && self.other.is_empty()
    }

    pub(crate) fn rebuild_indexes(&mut self) {
        self.main.rebuild_index();
        self.other.rebuild_index();
    }

    /// How many table versions and buffered records are held.
    #[cfg(test)]
    pub(crate) fn held(&self) -> usize {
        self.table.values().map(|v| v.versions.len()).sum::<usize>() + self.main.len() + self.other.len()
    }

    fn horizon(&self, retention_ms: i64) -> Option<i64> {
        self.table_time_max.map(|t| t.saturating_sub(retention_ms))
    }

    /// Adds a table version (`None`: the key was deleted), dropping what retention allows.
    fn insert_version(&mut self, key: String, stamp: Stamp, value: Option<Value>, retention_ms: i64) {
        self.table_time_max = self.table_time_max.max(Some(stamp.time));
        let horizon = self.horizon(retention_ms).expect("set above");
        let entry = self.table.entry(key).or_default();
        let at = entry.versions.partition_point(|(s, _)| *s < stamp);
        entry.versions.insert(at, (stamp, value));
        entry.prune(horizon);
        while entry.versions.len() > JOIN_VERSIONS_PER_KEY_MAX {
            entry.versions.remove(0);
            entry.floor = Some(entry.versions[0].0.time);
        }
        let period = retention_ms.max(SWEEP_INTERVAL_MS_MIN);
        if self.swept_at.is_none_or(|s| horizon.saturating_sub(s) >= period) {
            self.swept_at = Some(horizon);
            self.table.retain(|_, v| {
                v.prune(horizon);
                !v.is_gone(horizon)
            });
        }
    }

    /// The version of `key` current at `t`: the one with the greatest time at or before `t`.
    pub(crate) fn lookup(&self, key: &str, t: i64, retention_ms: i64) -> Lookup<'_> {
        if self.horizon(retention_ms).is_some_and(|h| t < h) {
            return Lookup::Late;
        }
        let Some(v) = self.table.get(key) else { return Lookup::Absent };
        if v.floor.is_some_and(|f| t < f) {
            return Lookup::Late;
        }
        match v.versions.partition_point(|(s, _)| s.time <= t) {
            0 => Lookup::Absent,
            i => v.versions[i - 1].1.as_ref().map_or(Lookup::Absent, Lookup::Found),
        }
    }
}

/// Which input of a stream join a record is from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Main,
    Other,
}

impl Declarative {
    fn join(&self) -> &JoinSpec {
        self.spec.join.as_ref().expect("a join view")
    }

    fn retention_ms(&self) -> i64 {
        self.join().retention_ms.unwrap_or(JOIN_RETENTION_MS_DEFAULT) as i64
    }

    /// Whether records of topic `topic` (its place in the version's topics) are the joined side.
    pub(crate) fn is_joined_side(&self, topic: u32) -> bool {
        self.spec.join.is_some() && topic as usize >= self.spec.source.topics.len()
    }

    /// A table join: its records only feed the table (they do not move the watermark).
    pub(crate) fn is_table_side(&self, topic: u32) -> bool {
        self.is_joined_side(topic) && self.join().table.is_some()
    }

    pub(crate) fn is_stream_join(&self) -> bool {
        self.spec.join.as_ref().is_some_and(|j| j.stream.is_some())
    }

    /// The event time of a joined-side record, as it orders it and versions or buffers it.
    fn joined_time(&self, value: Option<&[u8]>, timestamp: i64) -> Option<(i64, Option<(Op, Value)>)> {
        let j = self.join();
        let Some(bytes) = value else { return Some((timestamp, None)) };
        let (op, doc, default_time) = match j.format {
            SourceFormat::Debezium => match cdc::parse(bytes).ok()? {
                Some(c) => (c.op, c.row, c.time.unwrap_or(timestamp)),
                None => return Some((timestamp, None)),
            },
            SourceFormat::Json => (Op::Upsert, serde_json::from_slice::<Value>(bytes).ok()?, timestamp),
        };
        let t = match &j.time {
            Some(p) => window::event_time(&doc, p)?,
            None => default_time,
        };
        Some((t, Some((op, doc))))
    }

    /// The time that orders a joined-side record in the runner's merge (`i64::MIN` when
    /// unreadable: applied at once, an error record).
    pub(crate) fn joined_order_time(&self, value: Option<&[u8]>, timestamp: i64) -> i64 {
        self.joined_time(value, timestamp).map_or(i64::MIN, |(t, _)| t)
    }

    /// A record of the joined topic: a table version, or a stream record to buffer and join.
    pub(crate) fn apply_joined_side(
        &self,
        value: Option<&[u8]>,
        m: Meta<'_>,
        st: &mut State,
        out: &mut Vec<NewRecord>,
    ) {
        let j = self.join();
        let Some((t, parsed)) = self.joined_time(value, m.timestamp) else {
            st.snap.counters.error_records += 1;
            return;
        };
        let stamp = Stamp { time: t, topic: m.origin.topic, partition: m.origin.partition, offset: m.offset };
        if j.table.is_some() {
            let key = match j.format {
                SourceFormat::Debezium => m.key.and_then(cdc::record_primary_key),
                SourceFormat::Json => m.key.and_then(super::project::record_key).map(|k| k.into_owned()),
            };
            let version = match parsed {
                // Debezium's tombstone after a delete: the delete already deleted.
                None if j.format == SourceFormat::Debezium => return,
                None => None,
                Some((Op::Delete, _)) => None,
                Some((Op::Upsert, doc)) => Some(doc),
            };
            let Some(key) = key else {
                st.snap.counters.error_records += 1;
                return;
            };
            st.snap.join.insert_version(key, stamp, version, self.retention_ms());
            return;
        }
        let Some((_, doc)) = parsed else {
            st.snap.counters.error_records += 1;
            return;
        };
        let key = j.other_key.as_deref().and_then(|p| lookup(&doc, p)).and_then(value_key).map(|k| k.into_owned());
        let Some(key) = key else {
            st.snap.counters.error_records += 1;
            return;
        };
        self.apply_stream(Side::Other, doc, key, t, m, st, out);
    }

    /// A source record of a join view (a JSON object): joined, then applied.
    pub(crate) fn apply_joining(&self, mut doc: Value, m: Meta<'_>, st: &mut State, out: &mut Vec<NewRecord>) {
        let j = self.join();
        let t = match &self.time {
            Some(p) => window::event_time(&doc, p),
            None => Some(m.timestamp),
        };
        if t.is_none() || !doc.is_object() {
            st.snap.counters.error_records += 1;
            return;
        }
        let t = t.expect("checked above");
        // An event time far after the record's timestamp would move the watermark past
        // everything (see `window.max_future_ms`).
        if self
            .windowing
            .as_ref()
            .is_some_and(|w| self.time.is_some() && t > m.timestamp.saturating_add(w.max_future_ms))
        {
            st.snap.counters.error_records += 1;
            return;
        }
        if j.stream.is_some() {
            match lookup(&doc, &j.on).and_then(value_key).map(|k| k.into_owned()) {
                Some(key) => self.apply_stream(Side::Main, doc, key, t, m, st, out),
                None => self.unmatched(doc, m, st, out),
            }
            return;
        }
        // The key is borrowed from the record; the version found is copied into it after.
        let found = match lookup(&doc, &j.on).and_then(value_key) {
            Some(k) => match st.snap.join.lookup(&k, t, self.retention_ms()) {
                Lookup::Found(v) => Ok(v.clone()),
                other => Err(other == Lookup::Late),
            },
            None => Err(false),
        };
        match found {
            Err(true) => st.snap.counters.late_records += 1,
            Err(false) => self.unmatched(doc, m, st, out),
            Ok(v) => {
                if let Value::Object(fields) = &mut doc {
                    fields.insert(j.alias.clone(), v);
                }
                self.apply_doc(doc, None, m, st, out);
            }
        }
    }

    /// A source record with no match: dropped (inner) or applied with `as` null (left).
    fn unmatched(&self, mut doc: Value, m: Meta<'_>, st: &mut State, out: &mut Vec<NewRecord>) {
        let j = self.join();
        match j.kind {
            JoinType::Inner => st.snap.counters.records_unmatched += 1,
            JoinType::Left => {
                doc[&j.alias] = Value::Null;
                self.apply_doc(doc, None, m, st, out);
            }
        }
    }

    /// A stream-join record: moves the watermark, joins the other side's buffered records within
    /// the window (each pair applied as one document), and is buffered itself.
    #[allow(clippy::too_many_arguments)]
    fn apply_stream(
        &self,
        side: Side,
        doc: Value,
        key: String,
        t: i64,
        m: Meta<'_>,
        st: &mut State,
        out: &mut Vec<NewRecord>,
    ) {
        let j = self.join();
        let (within, grace) = (j.within_ms.unwrap_or(0) as i64, j.grace_ms.unwrap_or(0) as i64);
        self.advance_time(m.origin.slot, t, st, out);
        if st.snap.watermark.is_some_and(|w| w > t.saturating_add(grace)) {
            st.snap.counters.late_records += 1;
            return;
        }
        let (lo, hi) = (t.saturating_sub(within), t.saturating_add(within));
        let stamp = Stamp { time: t, topic: m.origin.topic, partition: m.origin.partition, offset: m.offset };
        let partners = match side {
            Side::Main => st.snap.join.other.matches(&key, lo, hi),
            Side::Other => st.snap.join.main.matches(&key, lo, hi),
        };
        let matched = !partners.is_empty();
        for p in partners {
            let (mut joined, meta) = match side {
                Side::Main => (doc.clone(), m),
                Side::Other => (p.doc.clone(), p.meta()),
            };
            joined[&j.alias] = if side == Side::Main { p.doc.clone() } else { doc.clone() };
            self.apply_doc(joined, None, meta, st, out);
        }
        let buffer = match side {
            Side::Main => &mut st.snap.join.main,
            Side::Other => &mut st.snap.join.other,
        };
        if buffer.len() >= JOIN_BUFFER_RECORDS_MAX {
            st.snap.counters.error_records += 1;
            return;
        }
        let held =
            Held { stamp, doc, key: m.key.map(<[u8]>::to_vec), timestamp: m.timestamp, slot: m.origin.slot, matched };
        buffer.insert(key, held);
    }

    /// Raises source `slot`'s watermark to `t` (and the view's as the others allow), emitting the
    /// windows that closed and what the stream join's buffers give up.
    pub(crate) fn advance_time(&self, slot: usize, t: i64, st: &mut State, out: &mut Vec<NewRecord>) {
        let mut closed = Vec::new();
        st.observe(slot, t, self.windowing.as_ref(), &mut closed);
        self.after_watermark(&closed, st, out);
    }

    /// After the watermark moved: emits the windows that closed, evicts the stream join's
    /// records the window has passed (a left join's unmatched source records go on with `as`
    /// null), evicts expired windows.
    pub(crate) fn after_watermark(&self, closed: &[(String, i64, i64)], st: &mut State, out: &mut Vec<NewRecord>) {
        self.emit_closed(closed, st, out);
        if let (true, Some(wm)) = (self.is_stream_join(), st.snap.watermark) {
            let j = self.join();
            let limit =
                wm.saturating_sub(j.within_ms.unwrap_or(0) as i64).saturating_sub(j.grace_ms.unwrap_or(0) as i64);
            let gone = st.snap.join.main.evict_before(limit);
            st.snap.join.other.evict_before(limit);
            if j.kind == JoinType::Left {
                for h in gone.into_iter().filter(|h| !h.matched) {
                    let mut doc = h.doc.clone();
                    doc[&j.alias] = Value::Null;
                    self.apply_doc(doc, None, h.meta(), st, out);
                }
            }
        }
        if let Some(w) = &self.windowing {
            st.evict_expired(w);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn stamp(time: i64, offset: u64) -> Stamp {
        Stamp { time, topic: 1, partition: 0, offset }
    }

    #[test]
    fn lookups_are_as_of_the_time_and_retention_is_bounded() {
        let mut j = JoinState::default();
        j.insert_version("p".into(), stamp(10, 0), Some(json!(1)), 100);
        j.insert_version("p".into(), stamp(20, 1), Some(json!(2)), 100);
        j.insert_version("p".into(), stamp(30, 2), None, 100);
        assert_eq!(j.lookup("p", 9, 100), Lookup::Absent);
        assert_eq!(j.lookup("p", 10, 100), Lookup::Found(&json!(1)));
        assert_eq!(j.lookup("p", 25, 100), Lookup::Found(&json!(2)));
        assert_eq!(j.lookup("p", 30, 100), Lookup::Absent, "deleted");
        assert_eq!(j.lookup("q", 30, 100), Lookup::Absent);
        j.insert_version("q".into(), stamp(1000, 3), Some(json!(3)), 100);
        assert_eq!(j.lookup("p", 899, 100), Lookup::Late, "before the horizon");
        // The sweep dropped p (deleted before the horizon) and kept q's versions.
        j.insert_version("q".into(), stamp(100_000, 4), Some(json!(4)), 100);
        assert_eq!(j.held(), 2);
        assert!(!j.table.contains_key("p"));
        assert_eq!(j.lookup("q", 99_950, 100), Lookup::Found(&json!(3)));
        let back: JoinState = serde_json::from_str(&serde_json::to_string(&j).unwrap()).unwrap();
        assert_eq!(back, j);
    }

    #[test]
    fn versions_per_key_are_capped_and_older_lookups_are_late() {
        let mut j = JoinState::default();
        for i in 0..(JOIN_VERSIONS_PER_KEY_MAX as i64 + 10) {
            j.insert_version("k".into(), stamp(i, i as u64), Some(json!(i)), i64::MAX / 4);
        }
        assert_eq!(j.held(), JOIN_VERSIONS_PER_KEY_MAX);
        assert_eq!(j.lookup("k", 9, i64::MAX / 4), Lookup::Late);
        assert_eq!(j.lookup("k", 10, i64::MAX / 4), Lookup::Found(&json!(10)));
    }

    #[test]
    fn buffers_match_within_a_range_and_evict_in_time_order() {
        let mut b = Buffer::default();
        for (t, k) in [(5, "a"), (1, "a"), (3, "b"), (9, "a")] {
            b.insert(
                k.into(),
                Held { stamp: stamp(t, t as u64), doc: json!(t), key: None, timestamp: t, slot: 0, matched: false },
            );
        }
        let times = |hs: Vec<Held>| hs.iter().map(|h| h.stamp.time).collect::<Vec<_>>();
        assert_eq!(times(b.matches("a", 1, 5)), vec![1, 5]);
        let mut copy = b.clone();
        copy.by_time.clear();
        let copy: Buffer = serde_json::from_str(&serde_json::to_string(&copy).unwrap()).unwrap();
        let mut copy = copy;
        copy.rebuild_index();
        assert_eq!(copy, b);
        let gone = b.evict_before(6);
        assert_eq!(times(gone.clone()), vec![1, 3, 5]);
        assert!(gone[0].matched && !gone[1].matched);
        assert_eq!(b.len(), 1);
    }
}
