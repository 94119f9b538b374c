//! The steps of applying a document that a sharded apply (`stream/shards.rs`) shares with the
//! runner's own apply: the filter, the key, and a keyed aggregation without a window.

use super::*;
use crate::stream::aggregate::Input;
use crate::stream::entries::{Router, Shard};
use crate::stream::shards::Routed;
use crate::stream::state::ViewCounters;

/// Where a record of a sharded apply goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Route {
    /// To the shard of its key.
    Shard(usize),
    /// Nowhere: the filter rejected it.
    Filtered,
    /// Nowhere: an error record (no value, not JSON, no key).
    Error,
}

impl PreParsed {
    /// The key field's raw JSON, found in `value` (the value this was parsed from).
    pub(crate) fn raw_key<'v>(&self, value: Option<&'v [u8]>) -> Option<&'v RawValue> {
        match (&self.key, value) {
            (Some(range), Some(bytes)) => {
                bytes.get(range.clone()).and_then(|raw| serde_json::from_slice::<&RawValue>(raw).ok())
            }
            _ => None,
        }
    }
}

impl Declarative {
    /// Whether `doc` passes the view's filter (if any).
    pub(crate) fn passes_filter(&self, doc: &project::Doc) -> bool {
        match (&self.spec.filter, doc) {
            (None, _) => true,
            (Some(f), project::Doc::Value(v)) => f.eval(v),
            (Some(f), project::Doc::Fields(_)) => f.eval(&doc.to_value(self.plan.as_ref())),
        }
    }

    /// The view key of `doc` (with `raw_key`, the key field as the plan captured it) from a
    /// record keyed `record_key`; `None` for an error record (no key, or a `null` one).
    pub(crate) fn key_of<'d>(
        &self,
        doc: &'d project::Doc,
        raw_key: Option<&'d RawValue>,
        record_key: Option<&'d [u8]>,
    ) -> Option<Cow<'d, str>> {
        match (&self.spec.key, record_key) {
            (Some(_), _) if self.plan.as_ref().is_some_and(project::Plan::captures_key) => {
                raw_key.and_then(project::key_text)
            }
            (Some(p), _) => match doc.lookup(self.plan.as_ref(), p)? {
                Value::String(s) => Some(Cow::Borrowed(s.as_str())),
                Value::Null => None,
                v => Some(Cow::Owned(v.to_string())),
            },
            (None, Some(k)) => project::record_key(k),
            (None, None) => None,
        }
    }

    /// Adds a record's `inputs` to the aggregates of `key`'s `entry` (emitting the update when
    /// the view emits updates).
    pub(crate) fn add_to(
        &self,
        entry: &mut Entry,
        key: &str,
        inputs: &[Input<'_>],
        stamp: Stamp,
        out: &mut Vec<NewRecord>,
    ) {
        if let Entry::Aggregates(a) = entry {
            a.add(inputs, stamp);
            if self.emit_on.is_some() {
                let v = a.to_json(&self.aggregates);
                self.emit_update(key, v, out);
            }
        }
    }

    /// The shard of a record whose value `pre` is, as `router` splits keys; what becomes of a
    /// record in a sharded apply is decided here and in [`apply_in_shard`](Self::apply_in_shard)
    /// exactly as [`apply`](Self::apply) decides it.
    pub(crate) fn route(&self, rec: Incoming<'_>, pre: Option<&PreParsed>, router: &Router) -> Route {
        // A value that does not parse, or a tombstone: an error record for an aggregation.
        let Some(pre) = pre else { return Route::Error };
        if !self.passes_filter(&pre.doc) {
            return Route::Filtered;
        }
        match self.key_of(&pre.doc, pre.raw_key(rec.value), rec.key) {
            Some(key) => Route::Shard(router.shard_of(&key)),
            None => Route::Error,
        }
    }

    /// Applies to `shard` (number `index`) the records routed to it, in order: the counts of the
    /// records applied and in error, and the records emitted with their place in `records`.
    pub(crate) fn apply_in_shard(
        &self,
        records: &[Routed<'_>],
        index: usize,
        origin: Origin,
        shard: &mut Shard,
    ) -> (ViewCounters, Vec<(usize, NewRecord)>) {
        let mut counters = ViewCounters::default();
        let mut emitted = Vec::new();
        let mut out = Vec::new();
        for (i, r) in records.iter().enumerate() {
            let (Route::Shard(s), Some(pre)) = (r.route, &r.pre) else { continue };
            if s != index {
                continue;
            }
            let key = self.key_of(&pre.doc, pre.raw_key(r.rec.value), r.rec.key).expect("routed by its key");
            let Ok(inputs) = self.inputs(&pre.doc) else {
                counters.error_records += 1;
                continue;
            };
            counters.records_applied += 1;
            let stamp =
                Stamp { time: r.rec.timestamp, topic: origin.topic, partition: origin.partition, offset: r.rec.offset };
            let entry = match shard.get_mut(&key) {
                Some(e) => e,
                None => shard.insert_new(key.to_string(), Entry::Aggregates(Aggregates::new(&self.aggregates))),
            };
            self.add_to(entry, &key, &inputs, stamp, &mut out);
            emitted.extend(out.drain(..).map(|e| (i, e)));
        }
        (counters, emitted)
    }
}
