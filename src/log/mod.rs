//! The log: record and batch codec, segments, sparse indexes, partitions and their recovery.
//! It knows nothing of topics' registry, groups, views or HTTP.

pub(crate) mod batch;
pub(crate) mod buffers;
#[cfg(feature = "broker")]
pub(crate) mod builder;
pub(crate) mod commit;
pub(crate) mod compression;
mod cursor;
pub(crate) mod index;
mod inspect;
pub(crate) mod io;
pub mod migrate;
pub(crate) mod mmap;
pub(crate) mod offset_file;
pub(crate) mod partition;
pub mod producer_state;
pub(crate) mod reaper;
pub(crate) mod record;
pub(crate) mod recovery_point;
pub(crate) mod segment;

pub use batch::ProducerFields;
pub use commit::{
    COMMIT_GATHER_BYTES_MAX, COMMIT_GATHER_WAIT_MAX, COMMIT_QUEUE_BATCHES_MAX, COMMIT_QUEUE_BYTES_MAX, COMMIT_THREADS,
    COMMIT_THREADS_MAX,
};
pub use compression::DECOMPRESSED_BYTES_MAX;
pub use cursor::{Cursor, CURSOR_FETCH_BYTES_DEFAULT, CURSOR_FETCH_RECORDS_DEFAULT};
pub use inspect::{decode_batch, inspect_segment, BatchSummary, SegmentReport};
pub use io::{fsync_latency, FsyncLatency, FSYNC_BUCKETS_SECONDS};
pub use partition::{Appended, Partition, PartitionStats, RawBatches, SegmentInfo};
pub use producer_state::{next_sequence, ProducerError, PRODUCER_ID_EXPIRATION_MS_DEFAULT};
pub use record::{Header, NewRecord, Record, RecordRef};
pub use segment::ReadBatch;

/// Entry points for the fuzz targets in `fuzz/`. Not a stable API.
#[doc(hidden)]
pub mod fuzzing {
    /// Decodes an `.index` file's bytes for a log of `log_len` bytes: `Ok(entries)` or why not.
    pub fn decode_offset_index(bytes: &[u8], log_len: u64) -> Result<usize, String> {
        super::index::decode_offsets(bytes, log_len).map(|e| e.len())
    }

    /// Decodes a `.timeindex` file's bytes for a segment of `relative_end` offsets.
    pub fn decode_time_index(bytes: &[u8], relative_end: u64) -> Result<usize, String> {
        super::index::decode_times(bytes, relative_end).map(|e| e.len())
    }
}
