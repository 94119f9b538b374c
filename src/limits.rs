//! Every limit and default of kappalog, in one place: what a topic, a batch, a group or a view may
//! hold, and the default of every configuration field that has one. Each is also checked where the
//! input arrives, with an error naming it ([`Error::LimitExceeded`](crate::Error::LimitExceeded),
//! [`Error::InvalidConfig`](crate::Error::InvalidConfig)). The table in the crate docs lists them.

pub use crate::config::{
    validate_topic_name, BATCH_BYTES_MAX, BATCH_RECORDS_MAX, CLEANER_INTERVAL_MS_DEFAULT, DELETE_RETENTION_MS_DEFAULT,
    INDEX_INTERVAL_BYTES_DEFAULT, MAX_MESSAGE_BYTES_DEFAULT, MIN_CLEANABLE_DIRTY_RATIO_DEFAULT,
    OFFSET_MAP_BYTES_DEFAULT, OFFSET_MAP_BYTES_MIN, PARTITIONS_MAX, RETENTION_MS_DEFAULT, SEGMENT_BYTES_DEFAULT,
    SEGMENT_BYTES_MAX, SEGMENT_BYTES_MIN, SEGMENT_MS_DEFAULT, TOPIC_NAME_LEN_MAX,
};
pub use crate::groups::{
    CONSUMER_FETCH_BYTES_MAX, GROUP_MEMBERS_MAX, GROUP_NAME_LEN_MAX, MEMBER_ID_LEN_MAX, OFFSETS_TOPIC,
    OFFSETS_TOPIC_PARTITIONS, OFFSET_METADATA_BYTES_MAX, SESSION_TIMEOUT_MS_DEFAULT, SESSION_TIMEOUT_MS_MAX,
    SESSION_TIMEOUT_MS_MIN,
};
pub use crate::log::producer_state::{
    PRODUCER_BATCHES_KEPT, PRODUCER_EXPIRY_CHECK_INTERVAL_MS, PRODUCER_ID_EXPIRATION_MS_DEFAULT,
};
pub use crate::log::{CURSOR_FETCH_BYTES_DEFAULT, CURSOR_FETCH_RECORDS_DEFAULT, DECOMPRESSED_BYTES_MAX};
pub use crate::producer_ids::PRODUCER_ID_BLOCK;
pub use crate::store::{FORMAT_VERSION, INTERNAL_TOPIC_PREFIX};
pub use crate::stream::{
    EMIT_BATCH_RECORDS_MAX, PREDICATE_DEPTH_MAX, SCAN_LIMIT_MAX, VIEW_AGGREGATES_MAX, VIEW_NAME_LEN_MAX,
    VIEW_SOURCE_TOPICS_MAX, WINDOWS_PER_RECORD_MAX, WINDOW_RETENTION_MS_DEFAULT,
};
