//! What the runner asks of an operator, whatever kind it is: applying a record, the watermark
//! rules (idle timeout, order), state limits, checkpoint upgrades and queries.

#[allow(unused_imports)]
use super::*;

impl Operator {
    /// A checkpoint of an earlier build, made current: a declarative view keyed by the record key
    /// spelled a JSON-string key with its quotes (`"u1"`); it is `u1` now.
    pub(crate) fn upgrade(&self, mut snap: Snapshot) -> Snapshot {
        if snap.record_keys == RecordKeys::Bytes {
            if let Operator::Declarative(d) = self {
                if d.spec.key.is_none() {
                    snap.rename_keys(|k| project::record_key(k.as_bytes()).map(Cow::into_owned));
                }
            }
            snap.record_keys = RecordKeys::JsonStringValue;
        }
        snap
    }

    /// Whether the state does not depend on the order in which records of different partitions
    /// are applied: a declarative view of aggregates without a window (counts, sums, min/max;
    /// `latest` is decided by stamps). Such a view applies each partition's batches as they are
    /// read, without aligning partitions by event time. Tables (a tombstone deletes what came
    /// before it), windows (the watermark) and custom logic need the order.
    pub(crate) fn order_free(&self) -> bool {
        match self {
            Operator::Declarative(d) => {
                // Joins and change-data-capture sources depend on the order of their records.
                d.windowing.is_none()
                    && !d.aggregates.is_empty()
                    && d.ttl_ms.is_none()
                    && d.spec.join.is_none()
                    && d.spec.source.format == SourceFormat::Json
            }
            Operator::Custom(_) => false,
        }
    }

    /// Whether the runner applies this view's records by shards of its state when it has several
    /// workers (`stream/shards.rs`): the views whose state does not depend on the order of records
    /// of different keys ([`order_free`](Self::order_free)).
    pub(crate) fn applies_sharded(&self) -> bool {
        self.order_free()
    }

    /// Where a record of a sharded apply goes (see `Declarative::route`).
    pub(crate) fn route(
        &self,
        rec: Incoming<'_>,
        pre: Option<&PreParsed>,
        router: &crate::stream::entries::Router,
    ) -> Route {
        match self {
            Operator::Declarative(d) => d.route(rec, pre, router),
            Operator::Custom(_) => Route::Error,
        }
    }

    /// Applies to one shard the records of a pass routed to it (see `Declarative::apply_in_shard`).
    pub(crate) fn apply_in_shard(
        &self,
        records: &[crate::stream::shards::Routed<'_>],
        index: usize,
        origin: Origin,
        shard: &mut crate::stream::entries::Shard,
    ) -> (crate::stream::state::ViewCounters, Vec<(usize, NewRecord)>) {
        match self {
            Operator::Declarative(d) => d.apply_in_shard(records, index, origin, shard),
            Operator::Custom(_) => Default::default(),
        }
    }

    /// `state.memory_bytes_max` of the view, if any.
    pub(crate) fn memory_bytes_max(&self) -> Option<u64> {
        match self {
            Operator::Declarative(d) => d.spec.state.as_ref().and_then(|s| s.memory_bytes_max),
            Operator::Custom(_) => None,
        }
    }

    pub(crate) fn windowing(&self) -> Option<&Windowing> {
        match self {
            Operator::Declarative(d) => d.windowing.as_ref(),
            Operator::Custom(_) => None,
        }
    }

    /// Applies one record from the source at `origin`, borrowed; custom logic gets it as a
    /// [`Record`] from `owned`. Emitted records (for the emit topic) go to `out`.
    pub(crate) fn apply(
        &self,
        rec: Incoming<'_>,
        origin: Origin,
        owned: impl FnOnce() -> Record,
        st: &mut State,
        out: &mut Vec<NewRecord>,
    ) {
        match self {
            Operator::Declarative(d) => d.apply(rec, origin, st, out),
            Operator::Custom(logic) => apply_custom(logic.as_ref(), &owned(), st, out),
        }
        st.snap.counters.records_read += 1;
    }

    /// The event time that orders `rec` among the buffered records of other partitions, and its
    /// value parsed for [`apply_buffered`](Self::apply_buffered) when the view can apply it so.
    /// A pure function of the record: any thread may compute it.
    pub(crate) fn order_time_parsed(&self, rec: Incoming<'_>, topic: u32) -> (i64, Option<PreParsed>) {
        match self {
            Operator::Declarative(d) => match d.pre_parse(rec, topic) {
                Some((t, pre)) => (t, Some(pre)),
                None => (d.order_time(rec, topic), None),
            },
            Operator::Custom(_) => (rec.timestamp, None),
        }
    }

    /// Whether the runner's decode workers can parse this view's records ahead of their apply
    /// (a declarative view of JSON values without a join; see [`pre_parse`](Self::pre_parse)).
    pub(crate) fn pre_parses(&self) -> bool {
        matches!(self, Operator::Declarative(d) if d.pre_parses())
    }

    /// The value of `rec` parsed for [`apply_buffered`](Self::apply_buffered), when the view can
    /// apply it so; a pure function of the record, so any thread may compute it.
    pub(crate) fn pre_parse(&self, rec: Incoming<'_>, topic: u32) -> Option<PreParsed> {
        match self {
            Operator::Declarative(d) => d.pre_parse(rec, topic).map(|(_, pre)| pre),
            Operator::Custom(_) => None,
        }
    }

    /// Applies a record, with its value as [`order_time_parsed`](Self::order_time_parsed) or
    /// [`pre_parse`](Self::pre_parse) parsed it, if it did: as [`apply`](Self::apply) would.
    pub(crate) fn apply_buffered(
        &self,
        rec: Incoming<'_>,
        pre: Option<PreParsed>,
        origin: Origin,
        owned: impl FnOnce() -> Record,
        st: &mut State,
        out: &mut Vec<NewRecord>,
    ) {
        match (self, pre) {
            (Operator::Declarative(d), Some(pre)) => {
                d.apply_pre_parsed(rec, pre, origin, st, out);
                st.snap.counters.records_read += 1;
            }
            _ => self.apply(rec, origin, owned, st, out),
        }
    }

    /// After sources became idle or active: moves the watermark as they now allow, and emits the
    /// windows that closed.
    pub(crate) fn refresh_watermark(&self, st: &mut State, out: &mut Vec<NewRecord>) {
        if let Operator::Declarative(d) = self {
            if let Some(ttl_ms) = d.ttl_ms {
                let expired = crate::stream::ttl::refresh(st, ttl_ms);
                d.emit_expired(expired, out);
            }
            if d.windowing.is_some() || d.is_stream_join() {
                let mut closed = Vec::new();
                st.refresh_watermark(d.windowing.as_ref(), &mut closed);
                d.after_watermark(&closed, st, out);
            }
        }
    }

    /// How long a source partition with nothing to read holds the watermark back; `None` when
    /// the view has no watermark.
    pub(crate) fn idle_timeout_ms(&self) -> Option<i64> {
        match self {
            Operator::Declarative(d) => match &d.windowing {
                Some(w) => Some(w.idle_timeout_ms),
                None => (d.is_stream_join() || d.ttl_ms.is_some())
                    .then_some(crate::stream::time::IDLE_TIMEOUT_MS_DEFAULT as i64),
            },
            Operator::Custom(_) => None,
        }
    }

    /// Whether the records of topic place `topic` only feed a join's table (they neither move
    /// nor hold the watermark), and whether they are the joined side (first on equal times).
    pub(crate) fn is_table_side(&self, topic: u32) -> bool {
        matches!(self, Operator::Declarative(d) if d.is_table_side(topic))
    }

    pub(crate) fn is_joined_side(&self, topic: u32) -> bool {
        matches!(self, Operator::Declarative(d) if d.is_joined_side(topic))
    }

    /// How a key's entry looks in query results: a value, or windows starting in `from_ms..to_ms`.
    pub(crate) fn show(
        &self,
        entry: &Entry,
        from_ms: Option<i64>,
        to_ms: Option<i64>,
    ) -> (Option<Value>, Option<Vec<WindowResult>>) {
        match (self, entry) {
            (_, Entry::Value(v)) | (_, Entry::Latest { value: v, .. }) => (Some(v.clone()), None),
            (Operator::Declarative(d), Entry::Aggregates(a)) => (Some(a.to_json(&d.aggregates)), None),
            (Operator::Declarative(d), Entry::Windows(ws)) => {
                let lo = from_ms.unwrap_or(i64::MIN);
                let hi = to_ms.unwrap_or(i64::MAX);
                // `BTreeMap::range` panics on a reversed range: from past to is simply empty.
                let list = ws
                    .range(lo..hi.max(lo))
                    .map(|(&start, w)| WindowResult { start, end: w.end, value: w.aggregates.to_json(&d.aggregates) })
                    .collect();
                (None, Some(list))
            }
            (Operator::Custom(_), _) => (None, None),
        }
    }
}
