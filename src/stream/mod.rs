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
//! - `key`: a JSON pointer into the value (a string is used as is, another value as its compact
//!   JSON text: `42`, `{"a":1}`); absent means the record key: a record key that is a JSON string
//!   (`"u1"`, as the JSON embedded format writes keys) is its string's value (`u1`), any other key
//!   its bytes as UTF-8 (`42`, or a binary `u1`). Queries and scans take keys spelled so.
//! - `window`: `tumbling` (`size_ms`), `hopping` (`size_ms`, `advance_ms`), `session` (`gap_ms`: a
//!   session is `[first event, last event + gap_ms)`, merged when a record bridges two), with
//!   `grace_ms` and an optional `retention_ms`. `time` is a JSON pointer to epoch ms or an RFC 3339
//!   string; absent means the record timestamp. The watermark is the highest event time the view
//!   has seen (over all its partitions, read round-robin in bounded batches: give `grace_ms` room
//!   for the skew between partitions). A window is closed once the watermark reaches its end plus
//!   `grace_ms`; a record only for closed windows is late: dropped and counted (`late_records`).
//!   Closed windows are evicted once the watermark reaches their end plus `retention_ms`.
//! - `aggregates`: named `count`, `sum`, `min`, `max`, `avg`, `latest`. Integers stay exact: `min`
//!   and `max` of integers are integers (any `i64` or `u64`), and an integer `sum` adds in 128 bits
//!   (a total that fits `i64`/`u64` is exact even when a partial sum does not; a larger one shows
//!   as the nearest float); a sum turns float with the first non-integer. A float sum past
//!   `f64::MAX` shows as `null`.
//!   With none, the view is a table of the latest value per key, and a tombstone deletes the key.
//! - `emit`: JSON records keyed by the view key as JSON (a key that is the compact JSON text of a
//!   number, boolean, array or object, `42`, as that text; any other as a JSON string, `"u1"`: the
//!   emit topic reads back in the JSON embedded format), to an existing topic that is not a source: on
//!   `update` the new value (tables) or `{"start", "end", "value"}` (windows) after every change; on
//!   `window_close` each window's final `{"start", "end", "value"}`; both filtered by `having`. Nor
//!   may it feed a source through other views (`a` -> view -> `b` -> this view -> `a`): such a
//!   view is refused, the error naming the path.
//! - A record whose value is not JSON or lacks a field the view needs (key, time, an aggregate's
//!   field), or whose field has no value (a lone surrogate `"\ud800"`, `1e999`, a 400-digit
//!   integer), changes nothing and is counted (`error_records`).
//! - Whatever stops a runner (an I/O error, a source topic deleted under the view, a panic in its
//!   logic, caught at the runner's boundary) leaves the view `failed` with the `error` in its
//!   status; queries still answer from its last state. Opening the views again retries.
//!
//! Queries ([`View`]): `get(key)` → `{key, value}` or `{key, windows: [{start, end, value}]}`,
//! `get_range(key, from_ms, to_ms)`, `scan(prefix, limit)`, `status()` (spec, version, running /
//! rebuilding / failed, lag per partition, watermark, late and error counts, rebuild progress).
//!
//! ## Emit guarantees
//! Emitted records (`emit`) are exactly once per view version, across crashes (`kill -9`
//! included): they are staged in the view's state, written with the checkpoint that covers the
//! records they came from, and appended to the emit topic only once that checkpoint is durable. A
//! crash in between leaves them in the checkpoint; on resume the view finds those it had already
//! appended and appends only the rest. So an emitted record becomes visible at the checkpoint that
//! covers its inputs (every `checkpoint_interval_ms` or `checkpoint_interval_records` while the
//! view is busy, and as soon as it has caught up), never before, and never twice.
//!
//! Every emitted record carries three headers: [`EMIT_HEADER_VIEW`] (the view's name),
//! [`EMIT_HEADER_VERSION`] (its version: a rebuild emits its results again under the new version,
//! so a downstream consumer can tell versions apart, and drop the old one's records after the
//! switch) and [`EMIT_HEADER_SEQUENCE`] (0, 1, 2, ... within the version). The guarantee is the
//! view's: a record appended to the emit topic by anyone else is not deduplicated.

mod aggregate;
mod checkpoint;
mod emit;
mod expr;
mod manager;
mod operator;
mod project;
mod spec;
mod state;
mod view;
mod window;

pub use crate::error::ViewError;
pub use emit::{
    EMIT_BATCH_RECORDS_MAX, EMIT_HEADER_SEQUENCE, EMIT_HEADER_VERSION, EMIT_HEADER_VIEW, EMIT_PENDING_RECORDS_MAX,
};
pub use expr::{CompareOp, Predicate, PREDICATE_DEPTH_MAX};
pub use manager::{RebuildFrom, Views, ViewsConfig};
pub use operator::{ViewLogic, WindowResult};
pub use spec::{
    AggregateOp, AggregateSpec, EmitOn, EmitSpec, SourceSpec, SpecError, ViewSpec, WindowSpec, WindowType,
    VIEW_AGGREGATES_MAX, VIEW_NAME_LEN_MAX, VIEW_SOURCE_TOPICS_MAX,
};
pub use state::ViewCounters;
pub use view::{
    KeyResult, PartitionLag, PartitionTarget, RebuildProgress, View, ViewRunState, ViewStatus, SCAN_LIMIT_MAX,
};
pub use window::{parse_rfc3339_ms, WINDOWS_PER_RECORD_MAX, WINDOW_RETENTION_MS_DEFAULT};
