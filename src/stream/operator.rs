//! Applying one record to a view's state: the declarative operators (filter, key-by, window,
//! aggregate, emit) and custom Rust logic ([`ViewLogic`]).

use std::borrow::Cow;

use bytes::Bytes;
use serde_json::value::RawValue;
use serde_json::{json, Value};

use super::aggregate::{self, Aggregates};
use super::expr::Predicate;
use super::join_spec::SourceFormat;
use super::project;
use super::spec::{AggregateOp, AggregateSpec, EmitOn, ViewSpec, WindowType};
use super::state::{Entry, RecordKeys, Snapshot, State, Window};
use super::time::Stamp;
use super::window::{self, Windowing};
use crate::log::record::RecordRef;
use crate::log::{NewRecord, Record};

/// A view written in Rust. The state of each key is a JSON value (so it can be checkpointed and
/// queried like any other view).
///
/// ```
/// use kappalog::{Record, stream::ViewLogic};
/// use serde_json::{json, Value};
///
/// /// Bytes received per user.
/// struct BytesPerUser;
/// impl ViewLogic for BytesPerUser {
///     fn init(&self, _key: &str) -> Value { json!(0) }
///     fn apply(&self, _key: &str, state: &mut Value, record: &Record) -> bool {
///         let len = record.value.as_ref().map_or(0, |v| v.len());
///         *state = json!(state.as_u64().unwrap_or(0) + len as u64);
///         true
///     }
/// }
/// ```
pub trait ViewLogic: Send + Sync + 'static {
    /// The key a record updates; `None` skips the record (counted in `error_records`).
    /// By default the record key as UTF-8.
    fn key(&self, record: &Record) -> Option<String> {
        record.key.as_ref().map(|k| String::from_utf8_lossy(k).into_owned())
    }
    /// The state of a key seen for the first time.
    fn init(&self, key: &str) -> Value;
    /// Applies one record to its key's state. Returning `false` skips the record (counted in
    /// `error_records`); the state must then be left as it was.
    fn apply(&self, key: &str, state: &mut Value, record: &Record) -> bool;
    /// After a successful apply: a value to write to the emit topic (keyed by `key`), if any.
    fn emit(&self, _key: &str, _state: &Value) -> Option<Value> {
        None
    }
}

/// Where a record comes from: its source's slot in the state, the source topic's place in the
/// view's topics, and the partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Origin {
    pub slot: usize,
    pub topic: u32,
    pub partition: u32,
}

/// The source record a document came from: what keys it (by record key), stamps it and times it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Meta<'a> {
    pub key: Option<&'a [u8]>,
    pub timestamp: i64,
    pub offset: u64,
    pub origin: Origin,
}

/// A record value parsed while the record waits to be applied (see `Declarative::pre_parse`).
#[derive(Debug)]
pub(crate) struct PreParsed {
    doc: project::Doc,
    /// Where the key field's raw JSON lies in the value, when the plan captures it.
    key: Option<std::ops::Range<usize>>,
}

/// A record to apply, borrowed from a batch or from an owned [`Record`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct Incoming<'a> {
    pub offset: u64,
    pub timestamp: i64,
    pub key: Option<&'a [u8]>,
    pub value: Option<&'a [u8]>,
}

impl<'a> From<RecordRef<'a>> for Incoming<'a> {
    fn from(r: RecordRef<'a>) -> Incoming<'a> {
        Incoming { offset: r.offset, timestamp: r.timestamp, key: r.key, value: r.value }
    }
}

impl<'a> From<&'a Record> for Incoming<'a> {
    fn from(r: &'a Record) -> Incoming<'a> {
        Incoming { offset: r.offset, timestamp: r.timestamp, key: r.key.as_deref(), value: r.value.as_deref() }
    }
}

/// What turns records into state.
pub(crate) enum Operator {
    Declarative(Box<Declarative>),
    Custom(std::sync::Arc<dyn ViewLogic>),
}

impl std::fmt::Debug for Operator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Operator::Declarative(d) => write!(f, "Declarative({})", d.spec.name),
            Operator::Custom(_) => f.write_str("Custom"),
        }
    }
}

/// A compiled [`ViewSpec`].
#[derive(Debug)]
pub(crate) struct Declarative {
    pub spec: ViewSpec,
    pub aggregates: Vec<(String, AggregateSpec)>,
    pub windowing: Option<Windowing>,
    /// `window.time`: the source records' event time (else their timestamp).
    pub time: Option<String>,
    emit_on: Option<EmitOn>,
    /// What to parse of each value, when the view never needs a whole value.
    plan: Option<project::Plan>,
    /// What to parse of a value for its event time alone (ordering records across partitions).
    time_plan: Option<project::Plan>,
    /// `state.ttl_ms`.
    ttl_ms: Option<i64>,
}

impl Declarative {
    pub(crate) fn new(spec: ViewSpec) -> Declarative {
        let whole_value_needed = spec.aggregates.is_empty()
            || spec.aggregates.values().any(|a| a.op == AggregateOp::Latest && a.field.is_none());
        let pointers = spec
            .window
            .as_ref()
            .and_then(|w| w.time.as_ref())
            .into_iter()
            .chain(spec.aggregates.values().filter_map(|a| a.field.as_ref()))
            .map(String::as_str)
            .chain(spec.filter.iter().flat_map(Predicate::fields));
        let plan = match &spec.join {
            _ if whole_value_needed => None,
            // Without a filter, the projection is only read by pointer lookups.
            None if spec.filter.is_none() => {
                project::Plan::new(spec.key.as_deref(), pointers).map(project::Plan::inline)
            }
            None => project::Plan::new(spec.key.as_deref(), pointers),
            // A join reads `on` from the source record, and the rest from the joined document:
            // what lies under `as` comes from the other side. The key is looked up after the join.
            Some(j) => {
                let alias = format!("/{}", j.alias);
                let under_alias = |p: &&str| *p == alias || p.starts_with(&format!("{alias}/"));
                let read: Vec<&str> =
                    pointers.chain(spec.key.as_deref()).chain([j.on.as_str()]).filter(|p| !under_alias(p)).collect();
                project::Plan::new(None, read)
            }
        };
        let time_plan =
            spec.window.as_ref().and_then(|w| w.time.as_deref()).and_then(|t| project::Plan::new(None, [t]));
        Declarative {
            plan,
            time_plan,
            aggregates: spec.aggregates.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            windowing: spec.window.as_ref().map(Windowing::new),
            time: spec.window.as_ref().and_then(|w| w.time.clone()),
            emit_on: spec.emit.as_ref().map(|e| e.on),
            ttl_ms: spec.state.as_ref().and_then(|s| s.ttl_ms).map(|t| t as i64),
            spec,
        }
    }

    /// Every aggregate's input from `doc` (as `aggregate::inputs`).
    fn inputs<'a>(&'a self, doc: &'a project::Doc) -> Result<aggregate::Inputs<'a>, &'a str> {
        let whole = match doc {
            project::Doc::Value(v) => Some(v),
            project::Doc::Fields(_) => None,
        };
        aggregate::inputs_by(&self.aggregates, whole, |p| doc.lookup(self.plan.as_ref(), p))
    }

    fn passes_having(&self, value: &Value) -> bool {
        self.spec.having.as_ref().is_none_or(|h: &Predicate| h.eval(value))
    }

    pub(crate) fn emits_updates(&self) -> bool {
        self.emit_on == Some(EmitOn::Update)
    }

    pub(crate) fn emit_update(&self, key: &str, value: Value, out: &mut Vec<NewRecord>) {
        if self.emit_on == Some(EmitOn::Update) && self.passes_having(&value) {
            out.push(NewRecord::keyed(project::emitted_key(key), Bytes::from(value.to_string())));
        }
    }

    /// The JSON of one window, as queries and emitted records show it.
    pub(crate) fn window_json(&self, start: i64, w: &Window) -> Value {
        json!({"start": start, "end": w.end, "value": w.aggregates.to_json(&self.aggregates)})
    }

    /// The event time that orders a record among the records of other partitions: its window
    /// time (`i64::MIN` when unreadable or too far in the future: such a record is an error
    /// record, applied at once), else its timestamp.
    fn order_time(&self, rec: Incoming<'_>, topic: u32) -> i64 {
        if self.is_joined_side(topic) {
            return self.joined_order_time(rec.value, rec.timestamp);
        }
        let (Some(w), Some(pointer)) = (&self.windowing, &self.time) else { return rec.timestamp };
        let Some(bytes) = rec.value else { return i64::MIN };
        let doc = match &self.time_plan {
            Some(plan) => project::parse(bytes, plan).map(|p| p.doc),
            None => serde_json::from_slice::<Value>(bytes).map(project::Doc::Value),
        };
        match doc.ok().and_then(|d| window::time_of(d.lookup(self.time_plan.as_ref(), pointer))) {
            Some(t) if t <= rec.timestamp.saturating_add(w.max_future_ms) => t,
            _ => i64::MIN,
        }
    }

    /// For a view of JSON values without a join: the record's value parsed (projected) ahead of
    /// its apply, with the event time that orders it among other partitions' records (as
    /// [`order_time`](Self::order_time)). It is parsed once, by the runner's decode workers or
    /// while it waits in a buffer, and applied by [`apply_pre_parsed`](Self::apply_pre_parsed) as
    /// [`apply`](Self::apply) would apply it. `None` when the view is not such a view, for a
    /// tombstone and for a value that does not parse (the record is then ordered and applied as
    /// any other).
    pub(crate) fn pre_parse(&self, rec: Incoming<'_>, topic: u32) -> Option<(i64, PreParsed)> {
        if !self.pre_parses() || self.is_joined_side(topic) {
            return None;
        }
        let bytes = rec.value?;
        let parsed = match &self.plan {
            Some(plan) => project::parse(bytes, plan).ok()?,
            None => project::Parsed { doc: serde_json::from_slice::<Value>(bytes).ok()?.into(), key: None },
        };
        let time = match (&self.windowing, &self.time) {
            (Some(w), Some(pointer)) => match window::time_of(parsed.doc.lookup(self.plan.as_ref(), pointer)) {
                Some(t) if t <= rec.timestamp.saturating_add(w.max_future_ms) => t,
                _ => i64::MIN,
            },
            _ => rec.timestamp,
        };
        let key = parsed.key.map(|raw| {
            let start = raw.get().as_ptr() as usize - bytes.as_ptr() as usize;
            start..start + raw.get().len()
        });
        Some((time, PreParsed { doc: parsed.doc, key }))
    }

    /// Whether [`pre_parse`](Self::pre_parse) parses this view's records: JSON values, no join.
    pub(crate) fn pre_parses(&self) -> bool {
        self.spec.join.is_none() && self.spec.source.format == SourceFormat::Json
    }

    /// Applies a record whose value [`pre_parse`](Self::pre_parse) parsed: as [`apply`](Self::apply) would.
    fn apply_pre_parsed(
        &self,
        rec: Incoming<'_>,
        pre: PreParsed,
        origin: Origin,
        st: &mut State,
        out: &mut Vec<NewRecord>,
    ) {
        let m = Meta { key: rec.key, timestamp: rec.timestamp, offset: rec.offset, origin };
        let raw_key = pre.raw_key(rec.value);
        self.apply_doc(pre.doc, raw_key, m, st, out)
    }

    fn apply(&self, rec: Incoming<'_>, origin: Origin, st: &mut State, out: &mut Vec<NewRecord>) {
        let m = Meta { key: rec.key, timestamp: rec.timestamp, offset: rec.offset, origin };
        if self.is_joined_side(origin.topic) {
            return self.apply_joined_side(rec.value, m, st, out);
        }
        if self.spec.source.format == SourceFormat::Debezium {
            return self.apply_change(rec.value, m, st, out);
        }
        let stamp_at = |time| Stamp { time, topic: origin.topic, partition: origin.partition, offset: rec.offset };
        let Some(bytes) = rec.value else {
            // A tombstone deletes the key of a plain table keyed by the record key, unless the
            // value held came from a later record.
            if self.aggregates.is_empty() && self.spec.key.is_none() {
                if let Some(key) = rec.key.and_then(project::record_key) {
                    st.snap.counters.records_applied += 1;
                    if matches!(st.snap.entries.get(key.as_ref()), Some(Entry::Latest { stamp, .. }) if *stamp > stamp_at(rec.timestamp))
                    {
                        return;
                    }
                    st.snap.entries.remove(key.as_ref());
                    st.snap.ttl.remove(key.as_ref());
                    if self.emit_on == Some(EmitOn::Update) {
                        out.push(NewRecord::tombstone(project::emitted_key(&key)));
                    }
                    return;
                }
            }
            st.snap.counters.error_records += 1;
            return;
        };
        let parsed = match &self.plan {
            Some(plan) => project::parse(bytes, plan),
            None => serde_json::from_slice::<Value>(bytes).map(|doc| project::Parsed { doc: doc.into(), key: None }),
        };
        let Ok(project::Parsed { doc, key: raw_key }) = parsed else {
            st.snap.counters.error_records += 1;
            return;
        };
        if self.spec.join.is_some() {
            return self.apply_joining(doc.into_value(self.plan.as_ref()), m, st, out);
        }
        self.apply_doc(doc, raw_key, m, st, out)
    }

    /// Applies one document (a record's value, or a joined one) from the record `m`: filter,
    /// key, window, aggregates, emit.
    pub(crate) fn apply_doc(
        &self,
        doc: impl Into<project::Doc>,
        raw_key: Option<&RawValue>,
        m: Meta<'_>,
        st: &mut State,
        out: &mut Vec<NewRecord>,
    ) {
        let doc: project::Doc = doc.into();
        let plan = self.plan.as_ref();
        let origin = m.origin;
        let rec = m;
        let stamp_at = |time| Stamp { time, topic: origin.topic, partition: origin.partition, offset: rec.offset };
        if !self.passes_filter(&doc) {
            st.snap.counters.records_filtered += 1;
            return;
        }
        let Some(key) = self.key_of(&doc, raw_key, rec.key) else {
            st.snap.counters.error_records += 1;
            return;
        };
        let Some(w) = &self.windowing else {
            if self.aggregates.is_empty() {
                let key = key.into_owned();
                let doc = doc.into_value(plan);
                st.snap.counters.records_applied += 1;
                let stamp = stamp_at(rec.timestamp);
                // The record with the greatest stamp holds the key, whatever the read order.
                if matches!(st.snap.entries.get(&key), Some(Entry::Latest { stamp: held, .. }) if *held > stamp) {
                    self.expire(&key, rec.timestamp, origin, st, out);
                    return;
                }
                if self.emit_on.is_some() {
                    self.emit_update(&key, doc.clone(), out);
                }
                let expiring = self.ttl_ms.is_some().then(|| key.clone());
                st.snap.entries.insert(key, Entry::Latest { value: doc, stamp });
                if let Some(key) = expiring {
                    self.expire(&key, rec.timestamp, origin, st, out);
                }
                return;
            }
            let Ok(inputs) = self.inputs(&doc) else {
                st.snap.counters.error_records += 1;
                return;
            };
            st.snap.counters.records_applied += 1;
            // One hash lookup for a known key; a new key allocates its string once.
            let entry = match st.snap.entries.get_mut(&key) {
                Some(e) => e,
                None => {
                    st.snap.entries.insert_new(key.to_string(), Entry::Aggregates(Aggregates::new(&self.aggregates)))
                }
            };
            self.add_to(entry, &key, &inputs, stamp_at(rec.timestamp), out);
            self.expire(&key, rec.timestamp, origin, st, out);
            return;
        };
        let t = match &self.time {
            Some(p) => window::time_of(doc.lookup(plan, p)),
            None => Some(rec.timestamp),
        };
        let (Some(t), Ok(inputs)) = (t, self.inputs(&doc)) else {
            st.snap.counters.error_records += 1;
            return;
        };
        // An event time far after the record's timestamp (microseconds by mistake) would move the
        // watermark past every window: an error record.
        if self.time.is_some() && t > rec.timestamp.saturating_add(w.max_future_ms) {
            st.snap.counters.error_records += 1;
            return;
        }
        let mut closed = Vec::new();
        // The watermark moves first: a record is never late for the windows its own time opens.
        st.observe(origin.slot, t, Some(w), &mut closed);
        let stamp = stamp_at(t);
        let applied = match w.kind {
            WindowType::Session => self.apply_session(&key, t, &inputs, stamp, w, st, out),
            _ => self.apply_fixed(&key, t, &inputs, stamp, w, st, out),
        };
        if applied {
            st.snap.counters.records_applied += 1;
        } else {
            st.snap.counters.late_records += 1;
        }
        self.after_watermark(&closed, st, out);
    }

    #[allow(clippy::too_many_arguments)]
    fn apply_fixed(
        &self,
        key: &str,
        t: i64,
        inputs: &[aggregate::Input<'_>],
        stamp: Stamp,
        w: &Windowing,
        st: &mut State,
        out: &mut Vec<NewRecord>,
    ) -> bool {
        let watermark = st.snap.watermark;
        let mut applied = false;
        w.for_each_window(t, |start, end| {
            if w.is_closed(end, watermark) {
                return;
            }
            applied = true;
            let (win, fresh) = match st.windows_mut(key).entry(start) {
                std::collections::btree_map::Entry::Occupied(e) => (e.into_mut(), false),
                std::collections::btree_map::Entry::Vacant(e) => {
                    (e.insert(Window { end, aggregates: Aggregates::new(&self.aggregates) }), true)
                }
            };
            win.aggregates.add(inputs, stamp);
            let shown = (self.emit_on == Some(EmitOn::Update)).then(|| self.window_json(start, win));
            if fresh {
                st.track_open(key, start, end);
            }
            if let Some(v) = shown {
                self.emit_window(key, v, out);
            }
        });
        applied
    }

    /// Session windows: `[first event, last event + gap)`. A record joins (and bridges) every open
    /// session of its key it overlaps; closed sessions are never reopened.
    #[allow(clippy::too_many_arguments)]
    fn apply_session(
        &self,
        key: &str,
        t: i64,
        inputs: &[aggregate::Input<'_>],
        stamp: Stamp,
        w: &Windowing,
        st: &mut State,
        out: &mut Vec<NewRecord>,
    ) -> bool {
        let watermark = st.snap.watermark;
        let (mut start, mut end) = (t, t.saturating_add(w.gap_ms));
        let mut merge = Vec::new();
        if let Some(Entry::Windows(ws)) = st.snap.entries.get(key) {
            for (&s, win) in ws.range(..end).rev() {
                if win.end <= t || w.is_closed(win.end, watermark) {
                    break;
                }
                merge.push(s);
                start = start.min(s);
                end = end.max(win.end);
            }
        }
        if w.is_closed(end, watermark) {
            return false;
        }
        let mut aggs = Aggregates::new(&self.aggregates);
        for s in merge {
            if let Some(old) = st.remove_open(key, s) {
                aggs.merge(&old.aggregates);
            }
        }
        aggs.add(inputs, stamp);
        let win = Window { end, aggregates: aggs };
        let shown = (self.emit_on == Some(EmitOn::Update)).then(|| self.window_json(start, &win));
        st.windows_mut(key).insert(start, win);
        st.track_open(key, start, end);
        if let Some(v) = shown {
            self.emit_window(key, v, out);
        }
        true
    }

    /// With `state.ttl_ms`: `key` had a record at `t`; drops the keys the watermark expires
    /// (emitting a tombstone of each when the view emits).
    fn expire(&self, key: &str, t: i64, origin: Origin, st: &mut State, out: &mut Vec<NewRecord>) {
        let Some(ttl_ms) = self.ttl_ms else { return };
        st.snap.ttl.touch(key, t);
        let expired = super::ttl::observe(st, origin.slot, t, ttl_ms);
        self.emit_expired(expired, out);
    }

    fn emit_expired(&self, expired: Vec<String>, out: &mut Vec<NewRecord>) {
        if self.emit_on.is_some() {
            out.extend(expired.iter().map(|k| NewRecord::tombstone(project::emitted_key(k))));
        }
    }

    fn emit_window(&self, key: &str, shown: Value, out: &mut Vec<NewRecord>) {
        if self.passes_having(&shown["value"]) {
            out.push(NewRecord::keyed(project::emitted_key(key), Bytes::from(shown.to_string())));
        }
    }

    pub(crate) fn emit_closed(&self, closed: &[(String, i64, i64)], st: &State, out: &mut Vec<NewRecord>) {
        if self.emit_on != Some(EmitOn::WindowClose) {
            return;
        }
        for (key, start, _) in closed {
            if let Some(Entry::Windows(ws)) = st.snap.entries.get(key) {
                if let Some(win) = ws.get(start) {
                    self.emit_window(key, self.window_json(*start, win), out);
                }
            }
        }
    }
}

/// One window of a key in query results: `[start, end)` in event-time milliseconds, and the object
/// of named aggregates.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct WindowResult {
    pub start: i64,
    pub end: i64,
    pub value: Value,
}

fn apply_custom(logic: &dyn ViewLogic, rec: &Record, st: &mut State, out: &mut Vec<NewRecord>) {
    let Some(key) = logic.key(rec) else {
        st.snap.counters.error_records += 1;
        return;
    };
    let entry = st.snap.entries.get_or_insert_with(&key, || Entry::Value(logic.init(&key)));
    let Entry::Value(state) = entry else {
        st.snap.counters.error_records += 1;
        return;
    };
    if !logic.apply(&key, state, rec) {
        st.snap.counters.error_records += 1;
        return;
    }
    st.snap.counters.records_applied += 1;
    if let Some(v) = logic.emit(&key, state) {
        out.push(NewRecord::keyed(key, Bytes::from(v.to_string())));
    }
}

mod dispatch;
mod keyed;
pub(crate) use keyed::Route;
#[cfg(test)]
mod tests;
