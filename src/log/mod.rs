//! The log: record and batch codec, segments, sparse indexes, partitions and their recovery.
//! It knows nothing of topics' registry, groups, views or HTTP.

pub(crate) mod batch;
pub(crate) mod index;
mod inspect;
pub(crate) mod io;
pub(crate) mod mmap;
pub(crate) mod offset_file;
pub(crate) mod partition;
pub(crate) mod record;
pub(crate) mod segment;

pub use inspect::{decode_batch, inspect_segment, BatchSummary, SegmentReport};
pub use partition::{Appended, Partition, PartitionStats, SegmentInfo};
pub use record::{Header, NewRecord, Record};
