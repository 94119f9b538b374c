//! # kappalog
//!
//! An embedded, log-structured event store with replay: the backbone of a Kappa architecture.
//! Topics of partitions hold records (key, value, headers, timestamp, offset) in CRC-checked
//! batches, in segment files read through memory maps without copying.
//!
//! ```
//! use kappalog::{NewRecord, Store, TopicConfig};
//!
//! let dir = tempfile::tempdir()?;
//! let store = Store::builder(dir.path()).open()?;
//! let orders = store.create_topic("orders", 3, TopicConfig::default())?;
//!
//! // One append is one batch per partition; it returns once the records are fsynced.
//! let placed = orders.append(&[
//!     NewRecord::keyed("alice", r#"{"amount": 10}"#),
//!     NewRecord::keyed("bob", r#"{"amount": 25}"#).with_header("source", "web"),
//! ])?;
//!
//! // Read back from the partition alice's record went to (murmur2 of the key, as Kafka does).
//! let p = orders.partition(placed[0].partition)?;
//! let first = p.cursor(placed[0].base_offset).next().expect("a record")?;
//! assert_eq!(first.key.as_deref(), Some(&b"alice"[..]));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ## Features
//! - Append-only partitioned log; Kafka's record model and default partitioner (murmur2,
//!   [`partitioner`]).
//! - Durability per topic ([`Durability`]): `sync` (fsync before acknowledging, with group commit),
//!   `interval`, `none`.
//! - Crash recovery: a torn tail is truncated; a corrupt batch is reported with its evidence
//!   ([`Error::Corrupted`]), never served.
//! - Sparse offset and time indexes: seek by offset or by timestamp ([`Partition::offset_for_timestamp`]).
//! - Reads: a [`Cursor`] yields a partition's records in order and knows its position
//!   ([`Partition::cursor`]); [`Cursor::next_async`] waits for new appends. Record keys and
//!   values are `Bytes` that share the segment's memory map ([`Partition::read`]), or are lent
//!   from it with no allocation per record ([`Partition::read_batches`], what replays use).
//! - Async: [`Topic::append_async`], [`Partition::append_async`], [`Partition::read_async`]; the
//!   blocking calls do file I/O and belong on a blocking thread.
//! - Retention by age and size, and key-based compaction with tombstones ([`cleaner`]), with
//!   Kafka's semantics and guarantees, in a background thread and on demand
//!   ([`Store::enforce_retention`], [`Store::compact`]); the compaction swap is crash-safe.
//! - Consumer groups ([`Store::groups`], [`Consumer`]): membership, assignment, committed offsets,
//!   offset reset and lag, as Kafka's ([`groups`]).
//! - Views ([`Store::views`]): keyed state over topics from a JSON spec ([`ViewSpec`]: filter, key,
//!   tumbling / hopping / session windows on event time, count / sum / min / max / avg / latest,
//!   having, emit) or Rust code ([`stream::ViewLogic`]); event time aligned across partitions, so
//!   a replay computes what live processing computed; exactly-once state (state and offsets
//!   checkpointed atomically) and emits; rebuilds beside the serving version with an atomic switch
//!   ([`stream`]).
//! - The broker (cargo feature `broker`, on by default): `kappalog serve`, an HTTP API (Confluent
//!   REST Proxy v2 and extensions) as an embeddable axum router, and the CLI. Without the feature
//!   the crate has none of their dependencies (axum, hyper, clap, reqwest, toml, ...).
//!
//! ```
//! use std::time::Duration;
//! use kappalog::{ConsumerConfig, NewRecord, Store, TopicConfig};
//! use kappalog::groups::AutoOffsetReset;
//!
//! let dir = tempfile::tempdir()?;
//! let store = Store::builder(dir.path()).cleaner_interval_ms(0).open()?;
//! let clicks = store.create_topic("clicks", 2, TopicConfig::default())?;
//! clicks.append(&[NewRecord::new(r#"{"page": "/home"}"#), NewRecord::new(r#"{"page": "/home"}"#)])?;
//!
//! // A view: the store owns the registry, and runs it until its last handle goes.
//! let view = store.views()?.create_json(br#"{"name": "per_page", "source": {"topics": ["clicks"]},
//!     "key": "/page", "aggregates": {"views": {"op": "count"}}}"#)?;
//! assert!(view.wait_caught_up(Duration::from_secs(10)));
//! assert_eq!(view.get("/home").unwrap().value.unwrap()["views"], 2);
//!
//! // A consumer group member, reading from the start, committing what it read.
//! let config = ConsumerConfig::default().auto_offset_reset(AutoOffsetReset::Earliest);
//! let mut consumer = kappalog::Consumer::subscribe(&store.groups()?, "billing", vec!["clicks".into()], config)?;
//! assert_eq!(consumer.poll(100)?.len(), 2);
//! consumer.commit()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ## What it is not
//! Not replicated, not distributed: one process owns a data directory (an exclusive lock, a second
//! open is [`Error::Locked`]). Not a database: no secondary indexes or transactions across
//! partitions (an append is atomic per partition); views are the way to query by key. Not the
//! Kafka wire protocol (yet): the broker speaks HTTP.
//!
//! ## The API
//! The root holds what most embedders need: [`Store`] (and its [`StoreBuilder`]), [`Topic`] (and
//! its [`TopicId`]), [`Partition`], [`Cursor`], the records ([`NewRecord`], [`Record`], [`Header`], [`Appended`]),
//! [`Consumer`], [`Views`] / [`View`] / [`ViewSpec`], the errors ([`Error`], [`Result`],
//! [`Corruption`]: those of the store, its topics and the log; groups and views return their own,
//! [`groups::GroupError`] and [`stream::ViewError`], which wrap an [`Error`] from below) and the configs ([`StoreConfig`], [`TopicConfig`], [`ConsumerConfig`],
//! [`ViewsConfig`], [`Durability`], [`TimestampType`], [`CleanupPolicy`], [`CompressionType`]). Configs are
//! `#[non_exhaustive]`: build them from `Default` with the setters named after their fields
//! (`TopicConfig::default().segment_bytes(1 << 20)`). The rest is in named modules:
//! [`log`] (zero-copy batches, segment inspection), [`groups`], [`stream`], [`cleaner`],
//! [`clock`], [`partitioner`], [`limits`].
//!
//! ## Layout
//! - [`log`] — the record and batch codec (`log/record.rs`, `log/batch.rs`), segments and
//!   their indexes (`log/segment/`, `log/index.rs`), partitions with group commit and recovery
//!   (`log/partition/`, `log/commit.rs`), the cursor (`log/cursor.rs`), and the only `unsafe`,
//!   the memory maps (`log/mmap.rs`).
//! - `store.rs`, `topic.rs`, `topic_id.rs`, `partitioner.rs` — the data directory (its lock, its
//!   topics, the group coordinator and views it owns), topics and their ids, where records go.
//! - [`cleaner`] — retention (`cleaner/retention.rs`), compaction (`cleaner/compaction.rs` with its
//!   bounded key map `cleaner/offset_map.rs` and writer `cleaner/rewrite.rs`), the crash-safe swap
//!   (`cleaner/swap.rs`), and the background `Cleaner` thread (`cleaner/mod.rs`).
//! - [`groups`] — consumer groups: membership and assignment, committed offsets in the
//!   internal topic `__consumer_offsets`, offset reset, lag; and [`Consumer`].
//! - [`stream`] — views: spec, predicates, aggregates, windows, keyed state,
//!   checkpoints, the runner per view version and the [`Views`] registry (files: segment-format.md §9).
//! - `broker` (cargo feature `broker`) — `broker/http` the HTTP API as an embeddable axum router,
//!   `broker/server.rs` `kappalog serve` (config, signals, shutdown), `broker/cli` the command line
//!   (the binary only calls `cli::main`).
//! - `config.rs` — configuration and the limits ([`limits`] lists them all); `error.rs` — the error
//!   type, with those of groups and views in `error/`; `hash.rs` — keyed hashing; `clock.rs` — injectable time; `fault.rs` — a fault-injection seam for tests.
//!
//! ## Limits
//! | limit | value |
//! |---|---|
//! | topic name | [`TOPIC_NAME_LEN_MAX`](limits::TOPIC_NAME_LEN_MAX) (249) characters of `[A-Za-z0-9._-]`, not `.` or `..` |
//! | partitions per topic | 1..=[`PARTITIONS_MAX`](limits::PARTITIONS_MAX) (4096) |
//! | encoded record | `max_message_bytes` per topic (default [`MAX_MESSAGE_BYTES_DEFAULT`](limits::MAX_MESSAGE_BYTES_DEFAULT), 1 MiB) |
//! | batch (one append to one partition) | [`BATCH_BYTES_MAX`](limits::BATCH_BYTES_MAX) (64 MiB), [`BATCH_RECORDS_MAX`](limits::BATCH_RECORDS_MAX) records |
//! | segment size | `segment_bytes`, [`SEGMENT_BYTES_MIN`](limits::SEGMENT_BYTES_MIN)..=[`SEGMENT_BYTES_MAX`](limits::SEGMENT_BYTES_MAX) (default 1 GiB) |
//! | one cursor read | [`CURSOR_FETCH_BYTES_DEFAULT`](limits::CURSOR_FETCH_BYTES_DEFAULT), [`CURSOR_FETCH_RECORDS_DEFAULT`](limits::CURSOR_FETCH_RECORDS_DEFAULT) records, or [`Cursor::fetch_limits`] |
//! | group name, member id | [`GROUP_NAME_LEN_MAX`](limits::GROUP_NAME_LEN_MAX), [`MEMBER_ID_LEN_MAX`](limits::MEMBER_ID_LEN_MAX) (249) bytes |
//! | committed offset metadata | [`OFFSET_METADATA_BYTES_MAX`](limits::OFFSET_METADATA_BYTES_MAX) (4096) bytes |
//! | session timeout | [`SESSION_TIMEOUT_MS_MIN`](limits::SESSION_TIMEOUT_MS_MIN)..=[`SESSION_TIMEOUT_MS_MAX`](limits::SESSION_TIMEOUT_MS_MAX) ms |
//! | members per group | [`GROUP_MEMBERS_MAX`](limits::GROUP_MEMBERS_MAX) (1024) |
//! | view sources, aggregates | [`VIEW_SOURCE_TOPICS_MAX`](limits::VIEW_SOURCE_TOPICS_MAX) (64) topics, [`VIEW_AGGREGATES_MAX`](limits::VIEW_AGGREGATES_MAX) (64) |
//! | view predicate nesting | [`PREDICATE_DEPTH_MAX`](limits::PREDICATE_DEPTH_MAX) (32) |
//! | windows per record (hopping) | [`WINDOWS_PER_RECORD_MAX`](limits::WINDOWS_PER_RECORD_MAX) (1000) |
//! | closed-window retention | `window.retention_ms`, default [`WINDOW_RETENTION_MS_DEFAULT`](limits::WINDOW_RETENTION_MS_DEFAULT) (1 day of event time) |
//! | idle source partition | `window.idle_timeout_ms`, default [`IDLE_TIMEOUT_MS_DEFAULT`](stream::IDLE_TIMEOUT_MS_DEFAULT) (30 s on the store clock) |
//! | event time ahead of the record timestamp | `window.max_future_ms`, default [`MAX_FUTURE_MS_DEFAULT`](stream::MAX_FUTURE_MS_DEFAULT) (1 day) |
//! | view state | `state.memory_bytes_max` (estimated bytes; none by default: the view fails past it), `state.ttl_ms` |
//! | keys per scan | [`SCAN_LIMIT_MAX`](limits::SCAN_LIMIT_MAX) (10 000) |
//! | compaction key map | `offset_map_bytes` >= [`OFFSET_MAP_BYTES_MIN`](limits::OFFSET_MAP_BYTES_MIN) (default [`OFFSET_MAP_BYTES_DEFAULT`](limits::OFFSET_MAP_BYTES_DEFAULT), 128 MiB) |
//! | idempotent producers | the last [`PRODUCER_BATCHES_KEPT`](limits::PRODUCER_BATCHES_KEPT) (5) batches per producer and partition, remembered for `producer_id_expiration_ms` (default [`PRODUCER_ID_EXPIRATION_MS_DEFAULT`](limits::PRODUCER_ID_EXPIRATION_MS_DEFAULT), 1 day on the store clock); ids reserved [`PRODUCER_ID_BLOCK`](limits::PRODUCER_ID_BLOCK) (1000) at a time |
//! | background cleaner period | `cleaner_interval_ms` (default [`CLEANER_INTERVAL_MS_DEFAULT`](limits::CLEANER_INTERVAL_MS_DEFAULT); 0 disables it) |
//! | HTTP request body | `body_bytes_max` (default `broker::http::BODY_BYTES_MAX_DEFAULT`, 64 MiB) |
//! | HTTP fetch | `broker::http::FETCH_BYTES_MAX` (64 MiB), `broker::http::FETCH_RECORDS_MAX` records, long-poll `broker::http::FETCH_TIMEOUT_MS_MAX` ms |
//! | HTTP consumer instances | `broker::http::consumers::CONSUMER_INSTANCES_MAX`; idle timeout default `broker::http::consumers::CONSUMER_TIMEOUT_MS_DEFAULT` ms (their group session: that plus `CONSUMER_SESSION_MARGIN_MS`); a waiting fetch looks again every `CONSUMER_METADATA_REFRESH_MS` |
//!
//! Blocking calls (`append`, `read`, `flush`, a [`Cursor`]'s `next`) do file I/O: async code calls
//! them through `spawn_blocking`, or uses the `*_async` variants.
#![deny(unsafe_code)]
#![warn(missing_debug_implementations)]

#[cfg(feature = "broker")]
pub mod broker;
pub mod cleaner;
pub mod clock;
mod config;
mod error;
#[doc(hidden)]
pub mod fault;
pub mod groups;
mod hash;
pub mod limits;
pub mod log;
pub mod partitioner;
mod producer_ids;
mod store;
pub mod stream;
mod topic;
#[cfg(feature = "broker")]
mod topic_append;
mod topic_id;

pub use config::{CleanupPolicy, CompressionType, Durability, StoreConfig, TimestampType, TopicConfig};
pub use error::{Corruption, Error, ProducerError, Result};
pub use groups::{Consumer, ConsumerConfig};
pub use log::{Appended, Cursor, Header, NewRecord, Partition, Record};
pub use store::{Store, StoreBuilder};
pub use stream::{View, ViewSpec, Views, ViewsConfig};
pub use topic::Topic;
pub use topic_id::TopicId;
