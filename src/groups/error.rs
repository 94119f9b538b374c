//! Errors of consumer groups. Each says what to do next when there is something to do (rejoin, force).

/// Why a group operation failed: refused by the group ([`GroupError::Log`] aside, every variant),
/// or an error of the store below it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GroupError {
    /// An error of the store, its topics or the log (the offsets topic is a topic of the store).
    #[error(transparent)]
    Log(#[from] crate::Error),

    #[error("invalid group name {name:?}: {reason}")]
    InvalidGroupName { name: String, reason: &'static str },

    #[error("group {0:?} not found: it has no members and no committed offsets")]
    GroupNotFound(String),

    #[error("member {member_id} is not in group {group:?} (it left, or was evicted after its session timeout): join again without a member id")]
    UnknownMember { group: String, member_id: String },

    #[error("member {member_id} of group {group:?} is from generation {generation} but the group is at generation {current}: rejoin")]
    IllegalGeneration { group: String, member_id: String, generation: u64, current: u64 },

    #[error("member {member_id} of group {group:?} does not own {topic}-{partition} in generation {generation}")]
    NotAssigned { group: String, member_id: String, generation: u64, topic: String, partition: u32 },

    #[error("{topic}-{partition} is assigned to member {member_id} of group {group:?} in generation {generation}, but its previous owner {previous_owner} has not released it yet: heartbeat and retry")]
    NotReleased {
        group: String,
        member_id: String,
        generation: u64,
        topic: String,
        partition: u32,
        previous_owner: String,
    },

    #[error("group {group:?} has {members} live member(s); {operation} needs an empty group: stop its consumers, wait for their session timeout, or force")]
    ActiveMembers { group: String, members: usize, operation: &'static str },

    #[error("group {group:?} is managed by Kafka clients ({members} member(s)); HTTP consumers can join it once they have left")]
    ManagedByKafka { group: String, members: usize },

    #[error("group {group:?} uses the {current} assignor; a member asked for {requested}")]
    InconsistentStrategy { group: String, current: String, requested: String },

    #[error("group {group:?} already has GROUP_MEMBERS_MAX ({max}) members")]
    TooManyMembers { group: String, max: usize },

    #[error("session_timeout_ms {value} is outside {min}..={max}")]
    InvalidSessionTimeout { value: u64, min: u64, max: u64 },

    #[error("offset {offset} for {topic}-{partition} in group {group:?} is above the high watermark {high_watermark}")]
    OffsetAboveHighWatermark { group: String, topic: String, partition: u32, offset: u64, high_watermark: u64 },

    #[error("metadata of {len} bytes exceeds OFFSET_METADATA_BYTES_MAX ({max})")]
    MetadataTooLarge { len: usize, max: usize },

    #[error("group {group:?} has {} for {topic}-{partition} (valid offsets are {log_start}..={log_end}) and auto_offset_reset is none", committed.map_or("no committed offset".to_string(), |c| format!("committed offset {c}, out of range,")))]
    NoValidOffset { group: String, topic: String, partition: u32, committed: Option<u64>, log_start: u64, log_end: u64 },

    #[error("cannot shift the offset of {topic}-{partition} in group {group:?}: it has no committed offset")]
    NothingToShift { group: String, topic: String, partition: u32 },

    #[error("invalid request: {0}")]
    InvalidRequest(String),

    #[error("bad record in the offsets topic {topic}-{partition} at offset {offset}: {reason}")]
    BadOffsetRecord { topic: String, partition: u32, offset: u64, reason: String },
}

/// `Result` with [`GroupError`].
pub type Result<T, E = GroupError> = std::result::Result<T, E>;
