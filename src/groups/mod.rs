//! Consumer groups, modelled on Kafka's classic group protocol and on `kafka-consumer-groups`.
//!
//! ```
//! use kappalog::groups::{AutoOffsetReset, ResetRequest, ResetStrategy};
//! use kappalog::{Consumer, ConsumerConfig, NewRecord, Store, TopicConfig};
//!
//! let dir = tempfile::tempdir()?;
//! let store = Store::builder(dir.path()).open()?;
//! let orders = store.create_topic("orders", 2, TopicConfig::default())?;
//! orders.append(&[NewRecord::keyed("alice", "10"), NewRecord::keyed("bob", "25")])?;
//!
//! let groups = store.groups()?; // the store's one coordinator
//! let config = ConsumerConfig::default().auto_offset_reset(AutoOffsetReset::Earliest);
//! let mut consumer = Consumer::subscribe(&groups, "billing", vec!["orders".into()], config)?;
//! assert_eq!(consumer.poll(100)?.len(), 2);
//! consumer.commit()?; // durable when it returns
//! consumer.close()?;
//!
//! // kafka-consumer-groups --reset-offsets --to-earliest --execute
//! let plan = groups.reset_offsets("billing", ResetRequest {
//!     topic: Some("orders".into()), partitions: None,
//!     strategy: ResetStrategy::ToEarliest, execute: true, force: false,
//! })?;
//! assert!(plan.entries.iter().all(|e| e.new == 0));
//! let lag: u64 = groups.describe("billing")?.partitions.iter().filter_map(|p| p.lag).sum();
//! assert_eq!(lag, 2);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! - [`GroupCoordinator`] (`coordinator.rs`, [`Store::groups`](crate::Store::groups)): membership, generations, session timeouts, commits,
//!   describe / list / delete. Time comes from the store's clock; sessions expire lazily on every call
//!   (and on [`GroupCoordinator::expire_sessions`]), so tests with a `ManualClock` are deterministic.
//! - `membership.rs`: one group's state machine (members, generation, who owns what).
//! - [`classic`]: Kafka's classic protocol for Kafka clients (the leader member assigns), in the
//!   same groups: one group is managed over HTTP or by Kafka clients at a time; offsets, describe,
//!   list, reset and delete are shared.
//! - `assignment.rs`: the assignors (sticky, range, round-robin).
//! - `offsets.rs`: the durable store of committed offsets, the internal compacted topic
//!   [`OFFSETS_TOPIC`] (layout in `segment-format.md`).
//! - `reset.rs`: `--reset-offsets`: plan (dry run) and atomic execution.
//! - `consumer.rs`: [`Consumer`], a client over the coordinator (the broker's HTTP consumer
//!   instances are built on it); `wait.rs`: [`DataWait`], what it waits on for records.
//!
//! ## Semantics (Kafka's, simplified to one process)
//! A membership change (join, leave, session expiry, subscribed topics gaining partitions) bumps the
//! generation and computes the new assignment at once. Members other than the one that caused it learn
//! about it on their next heartbeat or commit, which fails with [`GroupError::IllegalGeneration`]
//! ("rejoin"); rejoining with their member id returns the current assignment without another
//! rebalance. Until every member has acknowledged the current generation the group is
//! [`GroupState::Rebalancing`]; a partition that moved is listed in [`Membership::pending`] of its new
//! owner until its previous owner acknowledges (or leaves, or is evicted), so no partition is readable
//! by two members at once ([`GroupCoordinator::check_fetch`]).

mod assignment;
pub mod classic;
mod consumer;
mod coordinator;
mod error;
mod membership;
mod offsets;
mod reset;
mod wait;

use serde::{Deserialize, Serialize};

pub use assignment::AssignmentStrategy;
pub use classic::ClassicState;
pub use consumer::{Consumer, ConsumerConfig, CONSUMER_FETCH_BYTES_MAX};
pub use coordinator::GroupCoordinator;
pub use error::{GroupError, Result};
pub use offsets::{OFFSETS_TOPIC, OFFSETS_TOPIC_PARTITIONS};
pub use reset::{ResetEntry, ResetPlan, ResetRequest, ResetStrategy};
pub use wait::{DataWait, Wake};

/// Longest group name, in bytes.
pub const GROUP_NAME_LEN_MAX: usize = 249;
/// Longest member id, in bytes.
pub const MEMBER_ID_LEN_MAX: usize = 249;
/// Largest metadata string of a committed offset (Kafka's `offset.metadata.max.bytes`).
pub const OFFSET_METADATA_BYTES_MAX: usize = 4096;
/// Shortest session timeout a member may ask for.
pub const SESSION_TIMEOUT_MS_MIN: u64 = 10;
/// Longest session timeout (Kafka's `group.max.session.timeout.ms` default: 30 minutes).
pub const SESSION_TIMEOUT_MS_MAX: u64 = 30 * 60 * 1000;
/// Default session timeout (Kafka's consumer default: 45 s).
pub const SESSION_TIMEOUT_MS_DEFAULT: u64 = 45_000;
/// Most members in one group (Kafka's `group.max.size` is unbounded by default; we bound it).
pub const GROUP_MEMBERS_MAX: usize = 1024;

const _: () = assert!(SESSION_TIMEOUT_MS_MIN <= SESSION_TIMEOUT_MS_DEFAULT);
const _: () = assert!(SESSION_TIMEOUT_MS_DEFAULT <= SESSION_TIMEOUT_MS_MAX);
// Group and topic names are stored with u16 length prefixes in the offsets topic's keys.
const _: () = assert!(GROUP_NAME_LEN_MAX <= u16::MAX as usize);
const _: () = assert!(crate::config::TOPIC_NAME_LEN_MAX <= u16::MAX as usize);

/// One partition of one topic.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct TopicPartition {
    pub topic: String,
    pub partition: u32,
}

impl TopicPartition {
    pub fn new(topic: impl Into<String>, partition: u32) -> TopicPartition {
        TopicPartition { topic: topic.into(), partition }
    }
}

impl std::fmt::Display for TopicPartition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.topic, self.partition)
    }
}

/// Where to start when there is no committed offset, or it is out of range (Kafka's `auto.offset.reset`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum AutoOffsetReset {
    /// The log start offset.
    Earliest,
    /// The high watermark (only records appended from now on).
    #[default]
    Latest,
    /// Fail with [`GroupError::NoValidOffset`].
    None,
}

impl std::str::FromStr for AutoOffsetReset {
    type Err = GroupError;
    fn from_str(s: &str) -> Result<Self, GroupError> {
        match s {
            "earliest" | "smallest" => Ok(AutoOffsetReset::Earliest),
            "latest" | "largest" => Ok(AutoOffsetReset::Latest),
            "none" => Ok(AutoOffsetReset::None),
            _ => {
                Err(GroupError::InvalidRequest(format!("auto_offset_reset {s:?} is not one of earliest, latest, none")))
            }
        }
    }
}

/// A request to join a group (Kafka's JoinGroup, with the SyncGroup answer folded in).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinRequest {
    /// `None` for a new member (the coordinator assigns an id); `Some` to rejoin after a rebalance.
    pub member_id: Option<String>,
    /// The subscription. Topics that do not exist yet get partitions when they are created.
    pub topics: Vec<String>,
    /// The member is evicted when it neither heartbeats, commits nor polls for longer than this.
    pub session_timeout_ms: u64,
    pub auto_offset_reset: AutoOffsetReset,
    /// The assignor. The first member of an empty group chooses it; a different one later is refused.
    pub strategy: AssignmentStrategy,
}

impl Default for JoinRequest {
    fn default() -> Self {
        JoinRequest {
            member_id: None,
            topics: Vec::new(),
            session_timeout_ms: SESSION_TIMEOUT_MS_DEFAULT,
            auto_offset_reset: AutoOffsetReset::default(),
            strategy: AssignmentStrategy::default(),
        }
    }
}

/// A member's view of the group after a join or heartbeat.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Membership {
    pub member_id: String,
    pub generation: u64,
    /// The partitions this member owns in `generation`, sorted.
    pub assignment: Vec<TopicPartition>,
    /// Part of `assignment` that the previous owner has not released yet (it has not acknowledged
    /// `generation`): do not read these until a later heartbeat no longer lists them.
    pub pending: Vec<TopicPartition>,
}

/// A committed offset: the next offset the group will read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CommittedOffset {
    pub offset: u64,
    pub metadata: Option<String>,
    /// Milliseconds since the Unix epoch, from the store's clock.
    pub commit_timestamp: i64,
    /// The id of the topic it was committed on ([`Topic::id`](crate::Topic::id)): a topic deleted
    /// and created again under the name is a new topic, to which the offset never applies.
    /// `None` only for offsets committed by a build without topic ids (upgraded when the
    /// coordinator opens).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub topic_id: Option<crate::TopicId>,
}

/// Group states (Kafka's `Empty`, `PreparingRebalance`/`CompletingRebalance` as one, `Stable`);
/// a Kafka-managed group has Kafka's own in [`GroupDescription::kafka`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum GroupState {
    /// No live members (committed offsets may exist).
    Empty,
    /// Some member has not yet acknowledged the current generation.
    Rebalancing,
    /// Every member has the current generation's assignment.
    Stable,
}

/// One live member.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MemberDescription {
    pub member_id: String,
    pub topics: Vec<String>,
    pub assignment: Vec<TopicPartition>,
    /// The generation the member last acknowledged.
    pub generation: u64,
    pub session_timeout_ms: u64,
    pub last_heartbeat_ms: i64,
}

/// Offsets and lag of one partition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PartitionLag {
    pub topic: String,
    pub partition: u32,
    pub committed: Option<u64>,
    pub log_start: u64,
    pub log_end: u64,
    /// `log_end - committed`; `None` without a committed offset (Kafka prints `-`).
    pub lag: Option<u64>,
    /// The member that owns the partition in the current generation.
    pub owner: Option<String>,
}

/// `kafka-consumer-groups --describe`, members and offsets in one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GroupDescription {
    pub group: String,
    pub state: GroupState,
    pub generation: u64,
    pub strategy: Option<AssignmentStrategy>,
    pub members: Vec<MemberDescription>,
    /// Every partition with a committed offset or of a subscribed topic, sorted.
    pub partitions: Vec<PartitionLag>,
    /// Set while Kafka clients manage the group (`state` and `generation` are then Kafka's, and the
    /// members' topics and assignments are read from their consumer-protocol bytes).
    pub kafka: Option<KafkaGroupInfo>,
}

/// What only a Kafka-managed group has.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KafkaGroupInfo {
    /// Kafka's state name.
    pub state: ClassicState,
    pub protocol_type: String,
    /// The chosen protocol (the client-side assignor), once a join completed.
    pub protocol: Option<String>,
    pub leader: Option<String>,
}

/// Checks a group name: 1..=[`GROUP_NAME_LEN_MAX`] bytes, no control characters.
pub fn validate_group_name(name: &str) -> Result<(), GroupError> {
    let bad = |reason: &'static str| Err(GroupError::InvalidGroupName { name: name.to_string(), reason });
    if name.is_empty() {
        return bad("it is empty");
    }
    if name.len() > GROUP_NAME_LEN_MAX {
        return bad("it is longer than GROUP_NAME_LEN_MAX (249) bytes");
    }
    if name.chars().any(char::is_control) {
        return bad("it contains a control character");
    }
    Ok(())
}
