//! Kafka's classic consumer-group protocol (JoinGroup, SyncGroup, Heartbeat, LeaveGroup), for
//! Kafka clients: the coordinator runs the state machine and the elected leader member runs the
//! assignor in the client.
//!
//! - `state.rs`: one group's state machine ([`ClassicState`]: Empty, PreparingRebalance,
//!   CompletingRebalance, Stable, Dead), pure: time is passed in.
//! - `ops.rs`: the [`GroupCoordinator`](super::GroupCoordinator) methods (`classic_*`) that run it
//!   under the group's lock, park joins and syncs until the rebalance completes or times out, and
//!   commit offsets to the same [`OFFSETS_TOPIC`](super::OFFSETS_TOPIC) as HTTP groups.
//! - `consumer_protocol.rs`: reads the subscriptions and assignments of protocol type `consumer`
//!   (bounded), so that `describe` shows the topics and owners of Kafka members.
//!
//! ## Semantics (Kafka's)
//! A new member joining with JoinGroup v4+ and no member id is answered [`ClassicError::MemberIdRequired`]
//! with its new id, and joins again with it (older versions join at once). A join starts a rebalance
//! (PreparingRebalance): the joins are parked until every known member has joined again or the
//! rebalance timeout (the largest of the members') passes; members that did not join are removed.
//! Then the generation is bumped, the protocol every member supports is chosen (by the members'
//! preferences), and every join is answered; the leader's answer lists the members with their
//! metadata (CompletingRebalance). The leader's SyncGroup carries the assignment; the followers'
//! SyncGroups are parked until it arrives (Stable). Members that do not sync within the rebalance
//! timeout are removed (a new rebalance). Heartbeats answer [`ClassicError::RebalanceInProgress`]
//! while a rebalance is being prepared (rejoin), [`ClassicError::IllegalGeneration`] for an older
//! generation and [`ClassicError::UnknownMemberId`] for a member that left or was evicted after its
//! session timeout. Time is the store's clock; timers fire on any call touching the group, on
//! [`GroupCoordinator::expire_sessions`](super::GroupCoordinator::expire_sessions), and from the
//! parked requests themselves.
//!
//! One group is managed either over HTTP or by Kafka clients at a time: a Kafka join to a group
//! with HTTP members is answered [`ClassicError::InconsistentGroupProtocol`], an HTTP join to a
//! group with Kafka members [`GroupError::ManagedByKafka`](super::GroupError::ManagedByKafka).
//! Static membership (`group.instance.id`) is accepted and treated as dynamic membership.

mod consumer_protocol;
mod ops;
mod state;

#[cfg(test)]
mod tests;

use bytes::Bytes;
use serde::Serialize;

pub use consumer_protocol::{decode_assignment, decode_subscription};
pub(crate) use ops::KafkaView;
pub(crate) use state::ClassicGroup;

/// Shortest session timeout a Kafka member may ask for (Kafka's `group.min.session.timeout.ms`).
pub const CLASSIC_SESSION_TIMEOUT_MS_MIN: i32 = 6_000;
/// Longest session timeout a Kafka member may ask for (Kafka's `group.max.session.timeout.ms`).
pub const CLASSIC_SESSION_TIMEOUT_MS_MAX: i32 = 1_800_000;
/// Largest sum of one member's protocol metadata, and largest assignment of one member, in bytes.
pub const CLASSIC_MEMBER_BYTES_MAX: usize = 1024 * 1024;
/// Longest a parked join or sync waits before it looks at the group's timers again (they are on
/// the store's clock, which may be a test's manual clock).
pub const CLASSIC_PARK_RECHECK_MS: u64 = 1_000;
/// Longest client id kept as the prefix of a member id, in bytes.
pub const CLASSIC_CLIENT_ID_PREFIX_MAX: usize = 64;

// A client's default session timeout (45 s) must be accepted.
const _: () = assert!(CLASSIC_SESSION_TIMEOUT_MS_MIN <= 45_000 && 45_000 <= CLASSIC_SESSION_TIMEOUT_MS_MAX);

/// Kafka's group states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub enum ClassicState {
    /// No members (committed offsets may exist).
    #[default]
    Empty,
    /// Waiting for the members to join again.
    PreparingRebalance,
    /// Joined; waiting for the leader's assignment.
    CompletingRebalance,
    /// Every member has its assignment.
    Stable,
    /// Deleted.
    Dead,
}

impl ClassicState {
    /// The name Kafka uses (DescribeGroups, ListGroups).
    pub fn as_str(self) -> &'static str {
        match self {
            ClassicState::Empty => "Empty",
            ClassicState::PreparingRebalance => "PreparingRebalance",
            ClassicState::CompletingRebalance => "CompletingRebalance",
            ClassicState::Stable => "Stable",
            ClassicState::Dead => "Dead",
        }
    }
}

/// Why a classic-group request was refused: Kafka's error, [`code`](ClassicError::code) on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ClassicError {
    #[error("the server failed (see its log)")]
    UnknownServerError,
    #[error("the offset is negative")]
    OffsetOutOfRange,
    #[error("the topic or partition does not exist")]
    UnknownTopicOrPartition,
    #[error("the offset metadata is larger than OFFSET_METADATA_BYTES_MAX")]
    OffsetMetadataTooLarge,
    #[error("the group is being deleted")]
    CoordinatorNotAvailable,
    #[error("the generation is not the group's current one: rejoin")]
    IllegalGeneration,
    #[error("the protocol type or protocols do not match the group's (or the group is managed over HTTP)")]
    InconsistentGroupProtocol,
    #[error("the group id is empty, too long or has control characters")]
    InvalidGroupId,
    #[error("the member is not in the group: join again without a member id")]
    UnknownMemberId,
    #[error("the session timeout is outside the coordinator's range")]
    InvalidSessionTimeout,
    #[error("the group is rebalancing: rejoin")]
    RebalanceInProgress,
    #[error("the request is invalid")]
    InvalidRequest,
    #[error("the group has members")]
    NonEmptyGroup,
    #[error("the group does not exist")]
    GroupIdNotFound,
    #[error("join again with the member id in this answer")]
    MemberIdRequired,
    #[error("the group has GROUP_MEMBERS_MAX members")]
    GroupMaxSizeReached,
}

impl ClassicError {
    /// Kafka's error code.
    pub fn code(self) -> i16 {
        match self {
            ClassicError::UnknownServerError => -1,
            ClassicError::OffsetOutOfRange => 1,
            ClassicError::UnknownTopicOrPartition => 3,
            ClassicError::OffsetMetadataTooLarge => 12,
            ClassicError::CoordinatorNotAvailable => 15,
            ClassicError::IllegalGeneration => 22,
            ClassicError::InconsistentGroupProtocol => 23,
            ClassicError::InvalidGroupId => 24,
            ClassicError::UnknownMemberId => 25,
            ClassicError::InvalidSessionTimeout => 26,
            ClassicError::RebalanceInProgress => 27,
            ClassicError::InvalidRequest => 42,
            ClassicError::NonEmptyGroup => 68,
            ClassicError::GroupIdNotFound => 69,
            ClassicError::MemberIdRequired => 79,
            ClassicError::GroupMaxSizeReached => 81,
        }
    }
}

/// A JoinGroup request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ClassicJoin {
    /// Empty for a new member.
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout_ms: i32,
    /// How long the coordinator waits for members to rejoin (JoinGroup v0 has none: pass the
    /// session timeout, as Kafka does).
    pub rebalance_timeout_ms: i32,
    pub protocol_type: String,
    /// (name, metadata), by preference.
    pub protocols: Vec<(String, Bytes)>,
    /// JoinGroup v4+: a new member first gets [`ClassicError::MemberIdRequired`] and its id.
    pub require_known_member_id: bool,
}

/// A member as the leader sees it in its JoinGroup answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClassicJoinMember {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    /// Its metadata for the chosen protocol.
    pub metadata: Bytes,
}

/// A JoinGroup answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClassicJoinResponse {
    pub error: Option<ClassicError>,
    /// -1 with an error.
    pub generation: i32,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub leader: String,
    /// The member's id (a new one with [`ClassicError::MemberIdRequired`]).
    pub member_id: String,
    /// Every member with its metadata, for the leader only.
    pub members: Vec<ClassicJoinMember>,
}

impl ClassicJoinResponse {
    pub(crate) fn error(member_id: &str, error: ClassicError) -> ClassicJoinResponse {
        ClassicJoinResponse {
            error: Some(error),
            generation: -1,
            protocol_type: None,
            protocol_name: None,
            leader: String::new(),
            member_id: member_id.to_string(),
            members: Vec::new(),
        }
    }
}

/// A SyncGroup request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ClassicSync {
    pub member_id: String,
    pub generation: i32,
    pub group_instance_id: Option<String>,
    /// SyncGroup v5+: checked against the group's when given.
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    /// The leader's assignment: (member id, assignment); empty from followers.
    pub assignments: Vec<(String, Bytes)>,
}

/// A SyncGroup answer.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ClassicSyncResponse {
    pub error: Option<ClassicError>,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub assignment: Bytes,
}

impl ClassicSyncResponse {
    pub(crate) fn error(error: ClassicError) -> ClassicSyncResponse {
        ClassicSyncResponse { error: Some(error), ..ClassicSyncResponse::default() }
    }
}

/// One member in DescribeGroups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClassicMemberDescription {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    /// Metadata for the chosen protocol and the assignment: only when the group is Stable (as in Kafka).
    pub metadata: Bytes,
    pub assignment: Bytes,
}

/// DescribeGroups of one group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClassicGroupDescription {
    pub group: String,
    pub state: ClassicState,
    /// Empty for a group that no Kafka client manages.
    pub protocol_type: String,
    /// The chosen protocol (the assignor's name), empty unless the group is Stable or completing.
    pub protocol: String,
    pub members: Vec<ClassicMemberDescription>,
}

/// One group in ListGroups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClassicGroupListing {
    pub group: String,
    /// Empty for a group that no Kafka client manages.
    pub protocol_type: String,
    pub state: ClassicState,
}
