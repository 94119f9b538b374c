//! Limits (named constants) and configuration (store-wide and per topic), with their defaults.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::clock::{Clock, SystemClock};
use crate::error::{Error, Result};
use crate::fault::FaultInjector;

/// Longest topic name (Kafka's limit).
pub const TOPIC_NAME_LEN_MAX: usize = 249;
/// Most partitions a topic may have.
pub const PARTITIONS_MAX: u32 = 4096;
/// Largest encoded batch (one append to one partition), header included.
pub const BATCH_BYTES_MAX: u32 = 64 * 1024 * 1024;
/// Most records in one batch.
pub const BATCH_RECORDS_MAX: u32 = 1 << 20;
/// Smallest `segment_bytes` a topic may set.
pub const SEGMENT_BYTES_MIN: u64 = 4 * 1024;
/// Largest `segment_bytes`: positions in the offset index are `u32`, and a segment can exceed
/// `segment_bytes` by one batch (an oversized batch written to an empty segment).
pub const SEGMENT_BYTES_MAX: u64 = 2 * 1024 * 1024 * 1024;
/// Default `segment_bytes` (Kafka's: 1 GiB).
pub const SEGMENT_BYTES_DEFAULT: u64 = 1024 * 1024 * 1024;
/// Default `segment_ms` (Kafka's: 7 days).
pub const SEGMENT_MS_DEFAULT: u64 = 7 * 24 * 60 * 60 * 1000;
/// Default `max_message_bytes`: the largest encoded record (Kafka's: 1 MiB).
pub const MAX_MESSAGE_BYTES_DEFAULT: u32 = 1024 * 1024;
/// Default bytes of log between two entries of the sparse indexes (Kafka's `index.interval.bytes`).
pub const INDEX_INTERVAL_BYTES_DEFAULT: u32 = 4096;
/// Default `retention_ms` (Kafka's: 7 days).
pub const RETENTION_MS_DEFAULT: i64 = 7 * 24 * 60 * 60 * 1000;
/// Default `delete_retention_ms` (Kafka's: 1 day).
pub const DELETE_RETENTION_MS_DEFAULT: u64 = 24 * 60 * 60 * 1000;
/// Default `min_cleanable_dirty_ratio` (Kafka's).
pub const MIN_CLEANABLE_DIRTY_RATIO_DEFAULT: f64 = 0.5;
/// Default `cleaner_interval_ms`: how often the background cleaner looks for work (Kafka checks
/// retention every 5 minutes and backs the cleaner off 15 s; one interval serves both here).
pub const CLEANER_INTERVAL_MS_DEFAULT: u64 = 30_000;
/// Default `offset_map_bytes`, the cleaner's key map budget (Kafka's `log.cleaner.dedupe.buffer.size`).
pub const OFFSET_MAP_BYTES_DEFAULT: usize = 128 * 1024 * 1024;
/// Smallest `offset_map_bytes`: room for a few hundred keys, so that every pass makes progress.
pub const OFFSET_MAP_BYTES_MIN: usize = 64 * 1024;

const _: () = assert!(SEGMENT_BYTES_MAX + BATCH_BYTES_MAX as u64 <= u32::MAX as u64);
const _: () = assert!(SEGMENT_BYTES_MIN <= SEGMENT_BYTES_DEFAULT && SEGMENT_BYTES_DEFAULT <= SEGMENT_BYTES_MAX);
const _: () = assert!((INDEX_INTERVAL_BYTES_DEFAULT as u64) < SEGMENT_BYTES_MIN * 2);
const _: () = assert!(MAX_MESSAGE_BYTES_DEFAULT < BATCH_BYTES_MAX);
const _: () = assert!(OFFSET_MAP_BYTES_MIN <= OFFSET_MAP_BYTES_DEFAULT);

/// `with`-style setters named after the fields, so that `#[non_exhaustive]` configs are built as
/// `TopicConfig::default().segment_bytes(4096).durability(Durability::None)`.
macro_rules! setters {
    ($ty:ident { $($(#[$meta:meta])* $field:ident: $t:ty),* $(,)? }) => {
        impl $ty {
            $(
                #[doc = concat!("Sets `", stringify!($field), "` (see the field).")]
                $(#[$meta])*
                #[must_use]
                pub fn $field(mut self, $field: $t) -> Self {
                    self.$field = $field;
                    self
                }
            )*
        }
    };
}
pub(crate) use setters;

/// When an append counts as durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Durability {
    /// An append returns after its bytes are fdatasync'd. Concurrent appends share one fsync (group commit).
    #[default]
    Sync,
    /// Appends return after the write; a background flusher fsyncs every `ms` milliseconds.
    Interval { ms: u64 },
    /// Appends return after the write; fsync only when a segment rolls and on close.
    None,
}

impl std::str::FromStr for Durability {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        let bad = || Error::InvalidConfig {
            field: "durability",
            reason: format!("{s:?} is not one of sync, none, interval:<ms>"),
        };
        match s {
            "sync" => Ok(Durability::Sync),
            "none" => Ok(Durability::None),
            _ => {
                let ms = s.strip_prefix("interval:").ok_or_else(bad)?;
                let ms: u64 = ms.parse().map_err(|_| bad())?;
                if ms == 0 {
                    return Err(bad());
                }
                Ok(Durability::Interval { ms })
            }
        }
    }
}

impl std::fmt::Display for Durability {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Durability::Sync => f.write_str("sync"),
            Durability::None => f.write_str("none"),
            Durability::Interval { ms } => write!(f, "interval:{ms}"),
        }
    }
}

/// Where a record's timestamp comes from (Kafka's `message.timestamp.type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum TimestampType {
    /// The producer's timestamp (or the append time when the producer gave none).
    #[default]
    CreateTime,
    /// Always the time of the append.
    LogAppendTime,
}

/// How the batches of a topic are compressed at rest (Kafka's `compression.type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum CompressionType {
    /// Keep what the producer sent: a Kafka client's batch is stored as it came (compressed or
    /// not); batches kappalog encodes itself (HTTP produce, `append`) are uncompressed.
    #[default]
    Producer,
    /// Store every batch uncompressed (Kafka's `uncompressed`; `none` is read as this too).
    #[serde(alias = "none")]
    Uncompressed,
    Gzip,
    Snappy,
    Lz4,
    Zstd,
}

impl CompressionType {
    /// Kafka's name: `producer`, `uncompressed`, `gzip`, `snappy`, `lz4`, `zstd`.
    pub fn as_str(self) -> &'static str {
        match self {
            CompressionType::Producer => "producer",
            CompressionType::Uncompressed => "uncompressed",
            CompressionType::Gzip => "gzip",
            CompressionType::Snappy => "snappy",
            CompressionType::Lz4 => "lz4",
            CompressionType::Zstd => "zstd",
        }
    }

    /// The codec number (attribute bits 0-2) of the batches the broker writes itself; `None`
    /// for `producer` (keep the producer's).
    pub(crate) fn codec(self) -> Option<u16> {
        match self {
            CompressionType::Producer => None,
            CompressionType::Uncompressed => Some(0),
            CompressionType::Gzip => Some(1),
            CompressionType::Snappy => Some(2),
            CompressionType::Lz4 => Some(3),
            CompressionType::Zstd => Some(4),
        }
    }
}

impl std::str::FromStr for CompressionType {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        Ok(match s {
            "producer" => CompressionType::Producer,
            "uncompressed" | "none" => CompressionType::Uncompressed,
            "gzip" => CompressionType::Gzip,
            "snappy" => CompressionType::Snappy,
            "lz4" => CompressionType::Lz4,
            "zstd" => CompressionType::Zstd,
            other => {
                return Err(format!("{other:?} is not one of producer, uncompressed, none, gzip, snappy, lz4, zstd"))
            }
        })
    }
}

/// What the cleaner does with old data (Kafka's `cleanup.policy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum CleanupPolicy {
    /// Delete whole segments past retention.
    #[default]
    Delete,
    /// Keep the latest record per key.
    Compact,
    /// Both.
    CompactDelete,
}

impl CleanupPolicy {
    pub fn compacts(self) -> bool {
        matches!(self, CleanupPolicy::Compact | CleanupPolicy::CompactDelete)
    }
    pub fn deletes(self) -> bool {
        matches!(self, CleanupPolicy::Delete | CleanupPolicy::CompactDelete)
    }
}

/// Per-topic configuration, persisted in `topic.json`. Field names are Kafka's, in snake case.
/// Built from [`Default`] with the setters: `TopicConfig::default().segment_bytes(1 << 20)`.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TopicConfig {
    /// Roll the active segment when it would grow past this many bytes.
    pub segment_bytes: u64,
    /// Roll the active segment when it is older than this (since its first append; after a reopen,
    /// since the newest timestamp of its first batch, as Kafka does: under `CreateTime` that is the
    /// producer's, so a segment of old timestamps rolls at the first append after a reopen).
    pub segment_ms: u64,
    pub durability: Durability,
    pub timestamp_type: TimestampType,
    /// Largest encoded record.
    pub max_message_bytes: u32,
    /// Bytes of log between two sparse index entries.
    pub index_interval_bytes: u32,
    pub cleanup_policy: CleanupPolicy,
    /// Delete a sealed segment whose newest record is older than this; `-1` keeps forever.
    pub retention_ms: i64,
    /// Delete the oldest sealed segments while a partition is larger than this; `-1` means no limit.
    pub retention_bytes: i64,
    /// How long tombstones survive compaction.
    pub delete_retention_ms: u64,
    /// Records younger than this are never compacted.
    pub min_compaction_lag_ms: u64,
    /// Compact when dirty bytes / total bytes of the cleanable part pass this.
    pub min_cleanable_dirty_ratio: f64,
    /// How batches are compressed at rest (Kafka's `compression.type`).
    pub compression_type: CompressionType,
}

impl Default for TopicConfig {
    fn default() -> Self {
        TopicConfig {
            segment_bytes: SEGMENT_BYTES_DEFAULT,
            segment_ms: SEGMENT_MS_DEFAULT,
            durability: Durability::Sync,
            timestamp_type: TimestampType::CreateTime,
            max_message_bytes: MAX_MESSAGE_BYTES_DEFAULT,
            index_interval_bytes: INDEX_INTERVAL_BYTES_DEFAULT,
            cleanup_policy: CleanupPolicy::Delete,
            retention_ms: RETENTION_MS_DEFAULT,
            retention_bytes: -1,
            delete_retention_ms: DELETE_RETENTION_MS_DEFAULT,
            min_compaction_lag_ms: 0,
            min_cleanable_dirty_ratio: MIN_CLEANABLE_DIRTY_RATIO_DEFAULT,
            compression_type: CompressionType::Producer,
        }
    }
}

setters!(TopicConfig {
    segment_bytes: u64,
    segment_ms: u64,
    durability: Durability,
    timestamp_type: TimestampType,
    max_message_bytes: u32,
    index_interval_bytes: u32,
    cleanup_policy: CleanupPolicy,
    retention_ms: i64,
    retention_bytes: i64,
    delete_retention_ms: u64,
    min_compaction_lag_ms: u64,
    min_cleanable_dirty_ratio: f64,
    compression_type: CompressionType,
});

impl TopicConfig {
    /// Checks every field against its limits; the error names the field.
    pub fn validate(&self) -> Result<()> {
        fn bad(field: &'static str, reason: String) -> Result<()> {
            Err(Error::InvalidConfig { field, reason })
        }
        if !(SEGMENT_BYTES_MIN..=SEGMENT_BYTES_MAX).contains(&self.segment_bytes) {
            return bad(
                "segment_bytes",
                format!("{} is outside {SEGMENT_BYTES_MIN}..={SEGMENT_BYTES_MAX}", self.segment_bytes),
            );
        }
        if self.segment_ms == 0 {
            return bad("segment_ms", "must be positive".into());
        }
        if let Durability::Interval { ms: 0 } = self.durability {
            return bad("durability", "interval must be positive".into());
        }
        // Durations are compared with i64 millisecond clocks: larger values would wrap negative.
        let interval_ms = match self.durability {
            Durability::Interval { ms } => ms,
            _ => 0,
        };
        for (field, ms) in [
            ("segment_ms", self.segment_ms),
            ("durability", interval_ms),
            ("delete_retention_ms", self.delete_retention_ms),
            ("min_compaction_lag_ms", self.min_compaction_lag_ms),
        ] {
            if ms > i64::MAX as u64 {
                return bad(field, format!("{ms} is over {} (2^63 - 1)", i64::MAX));
            }
        }
        if self.max_message_bytes == 0 || self.max_message_bytes > BATCH_BYTES_MAX - 64 {
            return bad(
                "max_message_bytes",
                format!("{} is outside 1..={}", self.max_message_bytes, BATCH_BYTES_MAX - 64),
            );
        }
        if self.index_interval_bytes == 0 {
            return bad("index_interval_bytes", "must be positive".into());
        }
        if self.retention_ms < -1 {
            return bad("retention_ms", format!("{} must be -1 or >= 0", self.retention_ms));
        }
        if self.retention_bytes < -1 {
            return bad("retention_bytes", format!("{} must be -1 or >= 0", self.retention_bytes));
        }
        if !(0.0..=1.0).contains(&self.min_cleanable_dirty_ratio) {
            return bad("min_cleanable_dirty_ratio", format!("{} is outside 0..=1", self.min_cleanable_dirty_ratio));
        }
        Ok(())
    }
}

/// Store-wide configuration, from [`Default`] with the setters, or through [`Store::builder`](crate::Store::builder).
#[non_exhaustive]
#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// The time source (tests use [`ManualClock`](crate::clock::ManualClock)).
    pub clock: Arc<dyn Clock>,
    /// Fault injection for tests; `None` in production.
    #[doc(hidden)]
    pub faults: Option<Arc<FaultInjector>>,
    /// How often the background flusher looks for `interval` topics to fsync.
    pub flush_tick_ms: u64,
    /// How often the background cleaner enforces retention and compacts partitions whose dirty
    /// ratio passed `min_cleanable_dirty_ratio`; `0` disables the background cleaner (explicit
    /// calls such as [`Store::compact`](crate::Store::compact) still work).
    pub cleaner_interval_ms: u64,
    /// The compaction key map's budget in bytes (at least [`OFFSET_MAP_BYTES_MIN`]); a dirty
    /// section with more keys is cleaned in several passes.
    pub offset_map_bytes: usize,
    /// Group-commit threads (1..=[`COMMIT_THREADS_MAX`](crate::log::COMMIT_THREADS_MAX), default
    /// [`COMMIT_THREADS`](crate::log::COMMIT_THREADS)): with more than one, rounds on different
    /// partitions overlap their fsyncs; one gives fewer, larger rounds.
    pub commit_threads: usize,
    /// How long a partition remembers an idempotent producer that stopped appending, on this
    /// store's clock (Kafka's `producer.id.expiration.ms`, default one day,
    /// [`PRODUCER_ID_EXPIRATION_MS_DEFAULT`](crate::log::PRODUCER_ID_EXPIRATION_MS_DEFAULT)). A
    /// retry after that is not recognised as a duplicate.
    pub producer_id_expiration_ms: u64,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            clock: Arc::new(SystemClock),
            faults: None,
            flush_tick_ms: 10,
            cleaner_interval_ms: CLEANER_INTERVAL_MS_DEFAULT,
            offset_map_bytes: OFFSET_MAP_BYTES_DEFAULT,
            commit_threads: crate::log::COMMIT_THREADS,
            producer_id_expiration_ms: crate::log::PRODUCER_ID_EXPIRATION_MS_DEFAULT,
        }
    }
}

setters!(StoreConfig {
    clock: Arc<dyn Clock>,
    #[doc(hidden)]
    faults: Option<Arc<FaultInjector>>,
    flush_tick_ms: u64,
    cleaner_interval_ms: u64,
    offset_map_bytes: usize,
    commit_threads: usize,
    producer_id_expiration_ms: u64,
});

/// Checks a topic name: `[A-Za-z0-9._-]{1,249}`, not `.` or `..`.
pub fn validate_topic_name(name: &str) -> Result<()> {
    let bad = |reason| Err(Error::InvalidTopicName { name: name.to_string(), reason });
    if name.is_empty() {
        return bad("it is empty");
    }
    if name.len() > TOPIC_NAME_LEN_MAX {
        return bad("it is longer than 249 characters");
    }
    if name == "." || name == ".." {
        return bad("'.' and '..' are not allowed");
    }
    if !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-') {
        return bad("only ASCII letters, digits, '.', '_' and '-' are allowed");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_that_would_wrap_an_i64_clock_are_refused_by_name() {
        let over = 1u64 << 63;
        let cases = [
            ("segment_ms", TopicConfig { segment_ms: over, ..TopicConfig::default() }),
            ("durability", TopicConfig { durability: Durability::Interval { ms: over }, ..TopicConfig::default() }),
            ("delete_retention_ms", TopicConfig { delete_retention_ms: over, ..TopicConfig::default() }),
            ("min_compaction_lag_ms", TopicConfig { min_compaction_lag_ms: over, ..TopicConfig::default() }),
        ];
        for (name, cfg) in cases {
            let e = cfg.validate().unwrap_err();
            assert!(matches!(e, Error::InvalidConfig { field, .. } if field == name), "{name}: {e}");
        }
        TopicConfig { segment_ms: i64::MAX as u64, ..TopicConfig::default() }.validate().unwrap();
    }

    #[test]
    fn topic_names() {
        for ok in ["a", "orders", "a.b_c-D9", &"x".repeat(249)] {
            validate_topic_name(ok).unwrap();
        }
        for bad in ["", ".", "..", "a/b", "../etc", "a b", "é", &"x".repeat(250)] {
            assert!(matches!(validate_topic_name(bad), Err(Error::InvalidTopicName { .. })), "{bad}");
        }
    }

    #[test]
    fn durability_parses() {
        assert_eq!("sync".parse::<Durability>().unwrap(), Durability::Sync);
        assert_eq!("interval:50".parse::<Durability>().unwrap(), Durability::Interval { ms: 50 });
        for bad in ["", "interval:", "interval:0", "interval:x", "always"] {
            assert!(bad.parse::<Durability>().is_err(), "{bad}");
        }
    }

    #[test]
    fn config_limits_named() {
        let cfg = TopicConfig { segment_bytes: 10, ..TopicConfig::default() };
        let err = cfg.validate().unwrap_err();
        assert!(err.to_string().contains("segment_bytes"), "{err}");
        TopicConfig::default().validate().unwrap();
    }
}
