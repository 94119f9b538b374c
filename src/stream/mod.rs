//! Stream processing: views. A view consumes one or more topics and applies each record to a
//! keyed state (a table, aggregates, or event-time windows of aggregates), checkpointed together
//! with the source offsets it reflects, so that after a crash it resumes exactly where its state
//! is: no record counted twice, none missed.
//!
//! - `spec.rs` — the declarative spec (serde) and its validation; `expr.rs` — filter/having predicates.
//! - `aggregate.rs` — count, sum, min, max, avg, latest; `window.rs` — tumbling, hopping, session
//!   windows, watermark, grace, retention, RFC 3339.
//! - `state.rs` — the keyed state; `checkpoint.rs` — state + offsets in one atomically replaced file.
//! - `operator.rs` — applying a record (declarative operators, or a custom [`ViewLogic`]).
//! - `view.rs` — the runner thread per version, queries and status; `manager.rs` — [`Views`]:
//!   durable definitions, create / update / rebuild / delete, the atomic switch after a rebuild.
//!
//! ## The spec
//! ```json
//! { "name": "revenue_per_product",
//!   "source": { "topics": ["orders"] },
//!   "filter": { "field": "/amount", "op": "gt", "value": 0 },
//!   "key": "/product_id",
//!   "window": { "type": "tumbling", "size_ms": 60000, "grace_ms": 5000, "time": "/ts" },
//!   "aggregates": { "revenue": { "op": "sum", "field": "/price" }, "orders": { "op": "count" } },
//!   "having": { "all": [ { "field": "/orders", "op": "gt", "value": 10 } ] },
//!   "emit": { "topic": "revenue-per-minute", "on": "update" } }
//! ```
//! - `filter` / `having`: `{"field": <JSON pointer>, "op": eq|ne|gt|gte|lt|lte|exists|in, "value"}`,
//!   combined with `{"all": [..]}`, `{"any": [..]}`, `{"not": ..}` ([`Predicate`]). `having` reads the
//!   object of named aggregates (or the latest value of a table).
//! - `key`: a JSON pointer into the value (a string is used as is, another value as its JSON text);
//!   absent means the record key.
//! - `window`: `tumbling` (`size_ms`), `hopping` (`size_ms`, `advance_ms`), `session` (`gap_ms`: a
//!   session is `[first event, last event + gap_ms)`, merged when a record bridges two), with
//!   `grace_ms` and an optional `retention_ms`. `time` is a JSON pointer to epoch ms or an RFC 3339
//!   string; absent means the record timestamp. The watermark is the highest event time the view
//!   has seen (over all its partitions, read round-robin in bounded batches: give `grace_ms` room
//!   for the skew between partitions). A window is closed once the watermark reaches its end plus
//!   `grace_ms`; a record only for closed windows is late: dropped and counted (`late_records`).
//!   Closed windows are evicted once the watermark reaches their end plus `retention_ms`.
//! - `aggregates`: named `count`, `sum`, `min`, `max`, `avg`, `latest` (integer sums stay exact).
//!   With none, the view is a table of the latest value per key, and a tombstone deletes the key.
//! - `emit`: JSON records keyed by the view key, to an existing topic that is not a source: on
//!   `update` the new value (tables) or `{"start", "end", "value"}` (windows) after every change; on
//!   `window_close` each window's final `{"start", "end", "value"}`; both filtered by `having`. Nor
//!   may it feed a source through other views (`a` -> view -> `b` -> this view -> `a`): such a
//!   view is refused, the error naming the path.
//! - A record whose value is not JSON or lacks a field the view needs (key, time, an aggregate's
//!   field) changes nothing and is counted (`error_records`).
//!
//! Queries ([`View`]): `get(key)` → `{key, value}` or `{key, windows: [{start, end, value}]}`,
//! `get_range(key, from_ms, to_ms)`, `scan(prefix, limit)`, `status()` (spec, version, running /
//! rebuilding / failed, lag per partition, watermark, late and error counts, rebuild progress).
//!
//! Emitted records (`emit`) are at least once: they are appended before the checkpoint that
//! covers their inputs, so a crash in between emits them again on restart.

mod aggregate;
mod checkpoint;
mod definition;
mod expr;
mod loop_check;
mod manager;
mod operator;
mod project;
mod runner;
mod spec;
mod state;
mod time;
mod view;
mod window;

pub use expr::{CompareOp, Predicate, PREDICATE_DEPTH_MAX};
pub use manager::{RebuildFrom, Views, ViewsConfig};
pub use operator::{ViewLogic, WindowResult};
pub use spec::{
    AggregateOp, AggregateSpec, EmitOn, EmitSpec, SourceSpec, SpecError, ViewSpec, WindowSpec, WindowType,
    VIEW_AGGREGATES_MAX, VIEW_NAME_LEN_MAX, VIEW_SOURCE_TOPICS_MAX,
};
pub use state::ViewCounters;
pub use view::{
    KeyResult, PartitionLag, PartitionTarget, RebuildProgress, View, ViewRunState, ViewStatus, EMIT_BATCH_RECORDS_MAX,
    SCAN_LIMIT_MAX,
};
pub use window::{parse_rfc3339_ms, WINDOWS_PER_RECORD_MAX, WINDOW_RETENTION_MS_DEFAULT};

/// Errors of views, converging into [`Error::View`](crate::Error::View).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ViewError {
    /// The spec does not parse or does not fit the store; `field` names what was wrong
    /// (`window.size_ms`, `source.topics[1]`, …). The broker maps it to 422.
    #[error("invalid view spec: {field}: {reason}")]
    InvalidSpec { field: String, reason: String },
    #[error("view {0:?} not found")]
    NotFound(String),
    #[error("view {0:?} already exists")]
    Exists(String),
    #[error("custom view {name:?}: {reason}")]
    Custom { name: String, reason: String },
}
