//! Stream processing: views. A view consumes one or more topics and applies each record to a
//! keyed state (a table, aggregates, or event-time windows of aggregates), checkpointed together
//! with the source offsets it reflects, so that after a crash it resumes exactly where its state
//! is: no record counted twice, none missed.
//!
//! - `spec.rs` — the declarative spec (serde) and its validation; `expr.rs` — filter/having predicates.
//! - `aggregate.rs` — count, sum, min, max, avg, latest; `window.rs` — tumbling, hopping, session
//!   windows, watermark, grace, retention, RFC 3339.
//! - `state.rs` — the keyed state (`entries.rs`: keys and entries split into shards by a hash of
//!   the key, and which changed since the last checkpoint); `state_store.rs` — a version's checkpoints: a base (`checkpoint.rs`, state + offsets
//!   in one atomically replaced file) and its delta log of incremental checkpoints (`delta.rs`).
//! - `time.rs` — event time across partitions: partition watermarks, the view's watermark,
//!   idleness, and the stamp that orders records (`latest`).
//! - `join_spec.rs` — the `join` and `source.format` spec; `join.rs` — temporal table joins and
//!   windowed stream joins; `cdc.rs` — Debezium change events, retraction.
//! - `operator.rs` — applying a record (declarative operators, or a custom [`ViewLogic`]).
//! - `runner.rs` — the thread per version: reads the sources, aligns them by event time, emits,
//!   checkpoints; `workers.rs` — its decode workers (record values parsed on several threads);
//!   `shards.rs` — a keyed aggregation applied by several threads, each owning a shard of the state.
//!   `view.rs` — [`View`]: queries, status, lag, rebuild progress.
//! - `manager.rs` — [`Views`]: the registry; create / update / rebuild / delete, the atomic switch
//!   after a rebuild. `definition.rs` — `view.json`; `loop_check.rs` — refusing emit loops.
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
//!   string; absent means the record timestamp. Event time is described below. A window is closed
//!   once the view's watermark reaches its end plus `grace_ms`; a record only for closed windows is
//!   late: dropped and counted (`late_records`). Closed windows are evicted once the watermark
//!   reaches their end plus `retention_ms`. `idle_timeout_ms` and `max_future_ms`: see below.
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
//! - `state`: `ttl_ms` (views without a window: a key whose last record is that much older, in
//!   event time, than the view's watermark is dropped, counted in `keys_expired` and emitted as a
//!   tombstone) and `memory_bytes_max` (the view fails when its state's estimated size, the
//!   status's `state_bytes`, passes it). See [`StateSpec`].
//! - A record whose value is not JSON or lacks a field the view needs (key, time, an aggregate's
//!   field), or whose field has no value (a lone surrogate `"\ud800"`, `1e999`, a 400-digit
//!   integer), changes nothing and is counted (`error_records`).
//! - Whatever stops a runner (an I/O error, a source topic deleted under the view, a panic in its
//!   logic, caught at the runner's boundary) leaves the view `failed` with the `error` in its
//!   status; queries still answer from its last state. Opening the views again retries.
//!
//! ## Event time
//! A view's results do not depend on how its partitions are read: live, after a restart, in a
//! rebuild, or in a view created over existing data, they are the same, provided that within each
//! partition no record's event time is more than `grace_ms` behind the highest event time before
//! it in that partition (the skew between partitions does not matter).
//! - **Partition watermarks.** Each source partition's watermark is the highest event time applied
//!   from it. The view's watermark is the least of them over the partitions that are not idle (a
//!   partition that is not idle and has had no record yet holds it where it is); when every
//!   partition is idle, the greatest. It never goes back. It is checkpointed with the partition
//!   watermarks.
//! - **Order.** Before applying anything, the runner has records buffered from every partition
//!   that has records to read, and applies the buffered record with the least event time first
//!   (ties: the source topic's place in `source.topics`, then the partition). So windows close,
//!   sessions merge and `window_close` results are emitted in the same order on a replay as live. A
//!   partition with nothing left to read does not hold the others' records back (it holds the
//!   watermark back until it is idle).
//! - **Idleness.** A partition becomes idle once it has had nothing to read (no record below its
//!   high watermark) for `window.idle_timeout_ms` on the store's clock
//!   ([`StoreConfig::clock`](crate::StoreConfig::clock)), default [`IDLE_TIMEOUT_MS_DEFAULT`]
//!   (30 s), at a moment when the view has read everything; it stays idle until it has a record
//!   to read. An idle partition does not hold the watermark back; records it gets later that are
//!   behind the watermark by more than `grace_ms` are late. A partition with records to read is
//!   never idle, and while any partition of the view has records to read (a catch-up, a rebuild,
//!   a replay) none becomes idle: when all the data is there, the result does not depend on how
//!   long reading takes. Once the view has read everything and every partition has been idle,
//!   the watermark is the greatest partition watermark, whenever that happened. `0` makes a
//!   partition idle as soon as the view has read everything.
//! - **Late records.** A record whose windows are all closed is dropped and counted
//!   (`late_records`); within the bound above none is.
//! - **Far-future times.** A record whose event time (`window.time`) is more than
//!   `window.max_future_ms` (default [`MAX_FUTURE_MS_DEFAULT`], one day) after its record
//!   timestamp (the log-append time unless the producer set one) is an error record: changed
//!   nothing, counted in `error_records`, and moved no watermark. Views that use the record
//!   timestamp as event time have nothing to check.
//! - **Latest.** `latest`, and the table of latest values (no aggregates), keep the record with
//!   the greatest event time (the window time, else the record timestamp); ties go to the source
//!   topic's place, then the higher partition, then the higher offset. Checkpoints keep each
//!   value's stamp. A tombstone deletes a table's key unless the value held is from a later
//!   record; a record older than a tombstone that deleted its key comes back (a key of one topic
//!   lives in one partition, so this needs the same key in several partitions).
//!
//! ## Joins
//! ```json
//! "join": { "table": "products", "on": "/product_id", "as": "product", "type": "inner" }
//! "join": { "stream": "clicks", "on": "/ad_id", "other_key": "/ad_id", "within_ms": 600000, "as": "click" }
//! ```
//! A join comes first: each source record (a JSON object) is joined, and the joined document,
//! the record with the other side's value in the field `as`, goes through `filter`, `key`,
//! `window`, `aggregates`, `having` and `emit` (`/product/category` is a field of it). `type` is
//! `inner` (a record with no match is dropped and counted in `records_unmatched`) or `left` (it
//! goes on with `as` set to `null`). `on` (and `other_key`) are JSON pointers whose values match
//! as keys do (a string as it is, another value as its compact JSON text). `as` may not be the
//! first field of `on` or `window.time` (read before the join); a record's own field `as`, if it
//! has one, is replaced. A record the join drops moves no watermark. The joined topic may not be a source or the emit topic. The runner
//! reads the joined topic as one more input of its event-time merge (see Event time), its records
//! first on equal times, so a record meets the same table versions and partners live, after a
//! restart, in a rebuild and in a view created over existing data.
//! - **Temporal (stream-table) joins.** `table` is a topic read as a table: per record key (a
//!   JSON string key `"p3"` is `p3`), its versions by time (its record timestamp, or the `time`
//!   pointer into its value); a tombstone deletes the key from its time on. A source record joins
//!   the version current at its event time (`window.time`, else its timestamp): the one with the
//!   greatest time at or before it, so a replay joins each order with the price it had then.
//!   `format: "debezium"` reads the table from change events (`ts_ms` its time, a delete deletes;
//!   the key as described below). Superseded versions are kept for `join.retention_ms` (default
//!   [`JOIN_RETENTION_MS_DEFAULT`], one day) behind the table's latest time, and at most
//!   [`JOIN_VERSIONS_PER_KEY_MAX`] per key; a source record older than what is kept is late
//!   (dropped, counted in `late_records`). The table neither moves nor holds the watermark.
//!   Versions live in the view's state and are checkpointed with it.
//! - **Windowed stream-stream joins.** Each source record joins each record of `stream` whose
//!   `other_key` matches and whose event time (its timestamp, or `time`) is at most `within_ms`
//!   from its own; each pair is one joined document (the source record's key, timestamp and time
//!   go with it). Both streams' partitions take part in the watermark. A record is buffered until
//!   the watermark passes its time plus `within_ms` plus `join.grace_ms` (default 0); a `left`
//!   join's source record that met no partner by then goes on with `as` null (in a windowed view,
//!   give `window.grace_ms` at least `within_ms + join.grace_ms`, or such records are late for
//!   their window). A record more than `join.grace_ms` behind the watermark is late (dropped,
//!   counted). Buffers hold at most [`JOIN_BUFFER_RECORDS_MAX`] records a side (a record past it
//!   is joined but not buffered: an error record) and are checkpointed with the view. Within the
//!   event-time bound above (each partition out of order by at most `join.grace_ms`), every pair
//!   is found, live as in a replay.
//!
//! ## Change data capture
//! `"source": {"topics": ["pg.public.users"], "format": "debezium"}` reads Debezium's JSON change
//! events, with or without the `{"schema", "payload"}` wrapper: `op` `c` (create), `r` (snapshot
//! read) and `u` (update) carry the row in `after`, `d` (delete) in `before`; a null value (the
//! tombstone after a delete) is ignored; any other envelope is an error record. `key`, `filter`
//! and `aggregates` address the row. A change's primary key is `source.primary_key` (a pointer
//! into the row), else the record key as Debezium writes it: its JSON (unwrapped from `{"schema",
//! "payload"}`), an object of one field being that field's value (`{"id": 3}` → `3`). The changes
//! of one row must be in one partition (Debezium keys them by primary key), where they apply in
//! offset order.
//! - A table view (no aggregates) holds the current row per primary key (`key`, if given, is the
//!   primary key): an upsert replaces it (a row the filter rejects leaves the table), a delete
//!   removes it; emitted on update as a row or a tombstone.
//! - An aggregating view retracts: it keeps each contributing row (its fields the view reads) per
//!   primary key in its checkpointed state; a change first removes the old row's contribution from
//!   its old group, then adds the new row's to its group (a user moving from `de` to `fr` moves
//!   one count); a delete only removes. A group with no rows left is removed (emitted as a
//!   tombstone). Exact for `count`, integer `sum` and `avg` (a float sum rounds as floats do);
//!   `min`, `max` and `latest` cannot retract and are refused, naming the aggregate's `op`; so are
//!   windows and joins over a Debezium source.
//!
//! Queries ([`View`]): `get(key)` → `{key, value}` or `{key, windows: [{start, end, value}]}`,
//! `get_range(key, from_ms, to_ms)`, `scan(prefix, limit)`, `status()` (spec, version, running /
//! rebuilding / failed, per partition its lag, watermark and whether it is idle, the view's
//! watermark, late and error counts, rebuild progress).
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
mod cdc;
mod checkpoint;
mod definition;
mod delta;
mod emit;
mod entries;
mod error;
mod expr;
mod join;
mod join_spec;
mod limits;
mod loop_check;
mod manager;
mod operator;
mod project;
mod runner;
mod shards;
mod spec;
mod state;
mod state_size;
mod state_spec;
mod state_store;
mod time;
mod ttl;
mod view;
mod window;
mod workers;

pub use emit::{
    EMIT_BATCH_RECORDS_MAX, EMIT_HEADER_SEQUENCE, EMIT_HEADER_VERSION, EMIT_HEADER_VIEW, EMIT_PENDING_RECORDS_MAX,
};
pub use error::{Result, ViewError};
pub use expr::{CompareOp, Predicate, PREDICATE_DEPTH_MAX};
pub use join_spec::{
    JoinSpec, JoinType, SourceFormat, JOIN_BUFFER_RECORDS_MAX, JOIN_RETENTION_MS_DEFAULT, JOIN_VERSIONS_PER_KEY_MAX,
};
pub use manager::{RebuildFrom, Views, ViewsConfig};
pub use operator::{ViewLogic, WindowResult};
pub use spec::{
    AggregateOp, AggregateSpec, EmitOn, EmitSpec, SourceSpec, SpecError, StateSpec, ViewSpec, WindowSpec, WindowType,
    VIEW_AGGREGATES_MAX, VIEW_NAME_LEN_MAX, VIEW_SOURCE_TOPICS_MAX,
};
pub use state::ViewCounters;
pub use state_store::CheckpointStats;
pub use time::{IDLE_TIMEOUT_MS_DEFAULT, MAX_FUTURE_MS_DEFAULT};
pub use view::{
    KeyResult, PartitionLag, PartitionTarget, RebuildProgress, View, ViewRunState, ViewStatus, SCAN_LIMIT_MAX,
};
pub use window::{parse_rfc3339_ms, WINDOWS_PER_RECORD_MAX, WINDOW_RETENTION_MS_DEFAULT};
