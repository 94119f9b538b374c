//! # kappalog
//!
//! An embedded, log-structured event store with replay: the backbone of a Kappa architecture.
//! Topics of partitions hold records (key, value, headers, timestamp, offset) in CRC-checked
//! batches, in segment files read through memory maps without copying.
//!
//! ```
//! use kappalog::{NewRecord, Store, StoreConfig, TopicConfig};
//!
//! let dir = tempfile::tempdir()?;
//! let store = Store::open(dir.path(), StoreConfig::default())?;
//! let orders = store.create_topic("orders", 3, TopicConfig::default())?;
//!
//! // One append is one batch per partition; it returns once the records are fsynced.
//! let placed = orders.append(vec![
//!     NewRecord::keyed("alice", r#"{"amount": 10}"#),
//!     NewRecord::keyed("bob", r#"{"amount": 25}"#).with_header("source", "web"),
//! ])?;
//!
//! // Read back from the partition alice's record went to (murmur2 of the key, as Kafka does).
//! let p = orders.partition(placed[0].partition)?;
//! let records = p.read(placed[0].offset, 1 << 20, 100)?;
//! assert_eq!(records[0].key.as_deref(), Some(&b"alice"[..]));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ## Features
//! - Append-only partitioned log; Kafka's record model and default partitioner (murmur2).
//! - Durability per topic: `sync` (fsync before acknowledging, with group commit), `interval`, `none`.
//! - Crash recovery: a torn tail is truncated; a corrupt batch is reported with its evidence
//!   ([`Error::Corrupted`]), never served.
//! - Sparse offset and time indexes: seek by offset or by timestamp.
//! - Zero-copy reads: record keys and values are `Bytes` that share the segment's memory map
//!   ([`Partition::read`]), or are lent from it with no allocation or reference count per record
//!   ([`Partition::read_batches`], what replays use).
//! - Retention by age and size, and key-based compaction with tombstones ([`cleaner`]), with Kafka's
//!   semantics and guarantees, in a background thread and on demand ([`Store::enforce_retention`],
//!   [`Store::compact`]); the compaction swap is crash-safe.
//! - Views ([`Views`]): keyed state over topics from a JSON spec ([`ViewSpec`]: filter, key, tumbling /
//!   hopping / session windows on event time, count / sum / min / max / avg / latest, having, emit)
//!   or Rust code ([`ViewLogic`]); exactly-once state (state and offsets checkpointed atomically);
//!   rebuilds beside the serving version with an atomic switch. See [`stream`].
//!
//! ```
//! use kappalog::{NewRecord, Store, StoreConfig, TopicConfig, Views, ViewsConfig};
//! use std::time::Duration;
//!
//! let dir = tempfile::tempdir()?;
//! let store = Store::open(dir.path(), StoreConfig::default())?;
//! let clicks = store.create_topic("clicks", 2, TopicConfig::default())?;
//! clicks.append(vec![NewRecord::new(r#"{"page": "/home"}"#), NewRecord::new(r#"{"page": "/home"}"#)])?;
//!
//! let views = Views::open(&store, ViewsConfig::default())?;
//! let view = views.create_json(br#"{"name": "per_page", "source": {"topics": ["clicks"]},
//!     "key": "/page", "aggregates": {"views": {"op": "count"}}}"#)?;
//! assert!(view.wait_caught_up(Duration::from_secs(10)));
//! assert_eq!(view.get("/home").unwrap().value.unwrap()["views"], 2);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ## What it is not
//! Not replicated, not distributed: one process owns a data directory (an exclusive lock).
//!
//! ## Layout
//! - [`log`](crate::log) — the record and batch codec (`log/record.rs`, `log/batch.rs`), segments and
//!   their indexes (`log/segment.rs`, `log/index.rs`), partitions with group commit and recovery
//!   (`log/partition.rs`), and the only `unsafe`, the memory maps (`log/mmap.rs`).
//! - `store.rs`, `topic.rs`, `partitioner.rs` — the data directory, topics, where records go.
//! - [`cleaner`] — retention (`cleaner/retention.rs`), compaction (`cleaner/compaction.rs` with its
//!   bounded key map `cleaner/offset_map.rs` and writer `cleaner/rewrite.rs`), the crash-safe swap
//!   (`cleaner/swap.rs`), and the background `Cleaner` thread (`cleaner/mod.rs`).
//! - [`groups`](crate::groups) — consumer groups: membership and assignment, committed offsets in the
//!   internal topic `__consumer_offsets`, offset reset, lag; and [`Consumer`].
//! - `broker` (cargo feature `broker`, on by default) — `broker/http` the HTTP API (Confluent REST
//!   Proxy v2 and extensions) as an embeddable axum router, `broker/server.rs` `kappalog serve`
//!   (config, signals, shutdown), `broker/cli` the command line (the binary only calls `cli::main`).
//! - [`stream`](crate::stream) — views: spec, predicates, aggregates, windows, keyed state,
//!   checkpoints, the runner per view version and the [`Views`] registry (files: segment-format.md §9).
//! - `config.rs` — every limit and default; `error.rs` — the error type; `fault.rs` — fault injection.
//!
//! ## Limits
//! | limit | value |
//! |---|---|
//! | topic name | [`TOPIC_NAME_LEN_MAX`] (249) characters of `[A-Za-z0-9._-]`, not `.` or `..` |
//! | partitions per topic | 1..=[`PARTITIONS_MAX`] (4096) |
//! | encoded record | `max_message_bytes` per topic (default [`MAX_MESSAGE_BYTES_DEFAULT`], 1 MiB) |
//! | batch (one append to one partition) | [`BATCH_BYTES_MAX`] (64 MiB), [`BATCH_RECORDS_MAX`] records |
//! | group name, member id | [`groups::GROUP_NAME_LEN_MAX`], [`groups::MEMBER_ID_LEN_MAX`] (249) bytes |
//! | committed offset metadata | [`groups::OFFSET_METADATA_BYTES_MAX`] (4096) bytes |
//! | session timeout | [`groups::SESSION_TIMEOUT_MS_MIN`]..=[`groups::SESSION_TIMEOUT_MS_MAX`] ms |
//! | members per group | [`groups::GROUP_MEMBERS_MAX`] (1024) |
//! | view sources, aggregates | [`stream::VIEW_SOURCE_TOPICS_MAX`] (64) topics, [`stream::VIEW_AGGREGATES_MAX`] (64) |
//! | view predicate nesting | [`stream::PREDICATE_DEPTH_MAX`] (32) |
//! | windows per record (hopping) | [`stream::WINDOWS_PER_RECORD_MAX`] (1000) |
//! | closed-window retention | `window.retention_ms`, default [`stream::WINDOW_RETENTION_MS_DEFAULT`] (1 day of event time) |
//! | keys per scan | [`stream::SCAN_LIMIT_MAX`] (10 000) |
//! | segment size | `segment_bytes`, [`SEGMENT_BYTES_MIN`]..=[`SEGMENT_BYTES_MAX`] (default 1 GiB) |
//! | HTTP request body | `body_bytes_max` (default `broker::http::BODY_BYTES_MAX_DEFAULT`, 64 MiB) |
//! | HTTP fetch | `broker::http::FETCH_BYTES_MAX` (64 MiB), `broker::http::FETCH_RECORDS_MAX` records, long-poll `broker::http::FETCH_TIMEOUT_MS_MAX` ms |
//! | consumer instances | `broker::http::consumers::CONSUMER_INSTANCES_MAX`; idle timeout default `broker::http::consumers::CONSUMER_TIMEOUT_MS_DEFAULT` ms |
//! | compaction key map | `offset_map_bytes` >= [`OFFSET_MAP_BYTES_MIN`] (default [`OFFSET_MAP_BYTES_DEFAULT`], 128 MiB) |
//! | background cleaner period | `cleaner_interval_ms` (default [`CLEANER_INTERVAL_MS_DEFAULT`]; 0 disables it) |
//!
//! Blocking calls (`append`, `read`, `flush`) do file I/O: async code calls them through
//! `spawn_blocking`, or uses the `*_async` variants.
#![deny(unsafe_code)]
#![warn(missing_debug_implementations)]

#[cfg(feature = "broker")]
pub mod broker;
pub mod cleaner;
mod clock;
mod config;
mod error;
mod fault;
pub mod groups;
pub mod log;
mod partitioner;
mod store;
pub mod stream;
mod topic;

pub use cleaner::{CleanerStats, CompactionReport, RetentionReport, TopicCompactionReport, TopicRetentionReport};
pub use clock::{Clock, ManualClock, SystemClock};
pub use config::*;
pub use error::{Corruption, Error, Result};
pub use fault::{FaultInjector, FaultKind, SwapHook};
pub use groups::{
    AssignmentStrategy, AutoOffsetReset, CommittedOffset, Consumer, ConsumerConfig, GroupCoordinator, GroupDescription,
    GroupError, GroupState, JoinRequest, MemberDescription, Membership, PartitionLag, ResetEntry, ResetPlan,
    ResetRequest, ResetStrategy, TopicPartition,
};
pub use log::{
    Appended, Cursor, Header, NewRecord, Partition, PartitionStats, ReadBatch, Record, RecordRef, SegmentInfo,
};
pub use partitioner::{murmur2, partition_for_key};
pub use store::{Store, StoreBuilder, FORMAT_VERSION, INTERNAL_TOPIC_PREFIX};
pub use stream::{
    KeyResult, RebuildFrom, View, ViewError, ViewLogic, ViewRunState, ViewSpec, ViewStatus, Views, ViewsConfig,
    WindowResult,
};
pub use topic::{RecordMetadata, Topic};
