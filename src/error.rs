//! The crate's error type. Corruption carries its evidence; a torn tail is not an error (recovery truncates it).
//!
//! The store, its topics, the log and the cleaner return [`Error`]. The layers above have errors
//! of their own that wrap it ([`crate::groups::GroupError`], [`crate::stream::ViewError`]): this
//! base module names none of them.

use std::fmt;
use std::path::PathBuf;

mod producer;

pub use producer::ProducerError;

/// `Result` with the crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What exactly was wrong with bytes read from disk.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Corruption {
    /// A checksum does not match its bytes (a batch's CRC-32C, or the CRC-32 of an index entry or file).
    ChecksumMismatch { expected: u32, found: u32 },
    /// A length, count, version or varint that cannot be right.
    Malformed(String),
}

impl fmt::Display for Corruption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Corruption::ChecksumMismatch { expected, found } => {
                write!(f, "checksum mismatch: expected {expected:#010x}, found {found:#010x}")
            }
            Corruption::Malformed(what) => write!(f, "malformed: {what}"),
        }
    }
}

/// Every error kappalog returns. Stable variants; new ones may be added.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error("data directory {} is locked: another Store (in this or another process) has it open", path.display())]
    Locked { path: PathBuf },

    #[error("I/O error on {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("corrupted data in {} at byte {position}: {detail}", path.display())]
    Corrupted { path: PathBuf, position: u64, detail: Corruption },

    #[error("{} was written by format version {found}; this build reads up to version {supported}", path.display())]
    UnsupportedFormat { path: PathBuf, found: u32, supported: u32 },

    #[error(
        "{} is format version {found}, older than this build's version {supported} (whose segments are Kafka \
         RecordBatch v2): this build does not read it and changed nothing; rewrite the data directory into \
         version {supported} with `kappalog migrate DIR` (crash-safe; run it again if interrupted), or keep \
         using a build of format version {found}",
        path.display()
    )]
    FormatTooOld { path: PathBuf, found: u32, supported: u32 },

    #[error("invalid topic name {name:?}: {reason}")]
    InvalidTopicName { name: String, reason: &'static str },

    #[error("topic {0:?} already exists")]
    TopicExists(String),

    #[error("topic {0:?} not found")]
    TopicNotFound(String),

    #[error("topic {0:?} is internal to kappalog (its name starts with \"__\") and cannot be deleted")]
    InternalTopic(String),

    #[error("partition {partition} not found in topic {topic:?} (it has {count} partitions)")]
    PartitionNotFound { topic: String, partition: u32, count: u32 },

    #[error("invalid config {field}: {reason}")]
    InvalidConfig { field: &'static str, reason: String },

    #[error("limit {limit} exceeded: {value} > {max}")]
    LimitExceeded { limit: &'static str, value: u64, max: u64 },

    #[error("invalid record: {0}")]
    InvalidRecord(String),

    #[error("offset {offset} is out of range for {topic}-{partition}: valid offsets are {log_start_offset}..={high_watermark}")]
    OffsetOutOfRange { topic: String, partition: u32, offset: u64, log_start_offset: u64, high_watermark: u64 },

    #[error("the store is closed")]
    Closed,

    #[error("a compaction swap of {topic}-{partition} failed after its commit point; recovery completes it when the store is reopened, and the cleaner leaves the partition alone until then")]
    CleanerSwapPending { topic: String, partition: u32 },

    #[error("partition {topic}-{partition} is poisoned by an earlier failed write or fsync; reopen the store")]
    Poisoned { topic: String, partition: u32 },

    #[error("{topic}-{partition}: {error}")]
    Producer {
        topic: String,
        partition: u32,
        #[source]
        error: ProducerError,
    },
}

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Error {
        Error::Io { path: path.into(), source }
    }

    /// True when the error is the operating system saying the disk is full.
    pub fn is_disk_full(&self) -> bool {
        matches!(self, Error::Io { source, .. } if source.raw_os_error() == Some(28))
    }
}
