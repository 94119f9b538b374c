//! The coordinator's classic-protocol calls: each runs the group's state machine under its lock
//! (after its timers), parks joins and syncs until they are answered, and translates to the
//! offsets store shared with HTTP groups.

use std::collections::BTreeMap;
use std::time::Duration;

use tokio::sync::oneshot;

use super::state::{ClassicGroup, Reply};
use super::{
    decode_assignment, decode_subscription, ClassicError, ClassicGroupDescription, ClassicGroupListing, ClassicJoin,
    ClassicJoinResponse, ClassicState, ClassicSync, ClassicSyncResponse, CLASSIC_PARK_RECHECK_MS,
};
use crate::error::Error;
use crate::groups::{
    CommittedOffset, GroupCoordinator, GroupError, GroupState, KafkaGroupInfo, MemberDescription, TopicPartition,
    OFFSET_METADATA_BYTES_MAX,
};

/// The protocol type of Kafka's consumers, whose metadata `describe` can read.
const CONSUMER_PROTOCOL_TYPE: &str = "consumer";

/// A Kafka-managed group as `describe` shows it.
pub(crate) struct KafkaView {
    pub owners: BTreeMap<TopicPartition, String>,
    pub members: Vec<MemberDescription>,
    pub state: GroupState,
    pub generation: u64,
    pub info: KafkaGroupInfo,
}

impl KafkaView {
    pub fn of(c: &ClassicGroup) -> KafkaView {
        let consumer = c.protocol_type.as_deref() == Some(CONSUMER_PROTOCOL_TYPE);
        let mut owners = BTreeMap::new();
        let members = c
            .members
            .iter()
            .map(|(id, m)| {
                let metadata = c
                    .protocol
                    .as_deref()
                    .and_then(|p| m.protocols.iter().find(|(n, _)| n == p))
                    .or_else(|| m.protocols.first())
                    .map(|(_, md)| md.clone())
                    .unwrap_or_default();
                let topics = consumer.then(|| decode_subscription(&metadata)).flatten().unwrap_or_default();
                let assignment = consumer.then(|| decode_assignment(&m.assignment)).flatten().unwrap_or_default();
                for tp in &assignment {
                    owners.insert(tp.clone(), id.clone());
                }
                MemberDescription {
                    member_id: id.clone(),
                    topics,
                    assignment,
                    generation: u64::try_from(c.generation).unwrap_or(0),
                    session_timeout_ms: u64::try_from(m.session_timeout_ms).unwrap_or(0),
                    last_heartbeat_ms: m.last_heartbeat_ms,
                }
            })
            .collect();
        let state = match c.state {
            ClassicState::Empty | ClassicState::Dead => GroupState::Empty,
            ClassicState::PreparingRebalance | ClassicState::CompletingRebalance => GroupState::Rebalancing,
            ClassicState::Stable => GroupState::Stable,
        };
        KafkaView {
            owners,
            members,
            state,
            generation: u64::try_from(c.generation).unwrap_or(0),
            info: KafkaGroupInfo {
                state: c.state,
                protocol_type: c.protocol_type.clone().unwrap_or_default(),
                protocol: c.protocol.clone(),
                leader: c.leader.clone(),
            },
        }
    }
}

/// The Kafka error for a refusal of the coordinator or the store.
fn classic_error(e: &GroupError) -> ClassicError {
    match e {
        GroupError::InvalidGroupName { .. } => ClassicError::InvalidGroupId,
        GroupError::GroupNotFound(_) => ClassicError::GroupIdNotFound,
        GroupError::ActiveMembers { .. } => ClassicError::NonEmptyGroup,
        GroupError::Log(Error::TopicNotFound(_) | Error::PartitionNotFound { .. }) => {
            ClassicError::UnknownTopicOrPartition
        }
        GroupError::UnknownMember { .. } => ClassicError::UnknownMemberId,
        other => {
            tracing::error!(error = %other, "a Kafka group request failed");
            ClassicError::UnknownServerError
        }
    }
}

impl GroupCoordinator {
    /// JoinGroup. Parked (without holding the group) until the rebalance completes or times out.
    pub async fn classic_join(&self, group: &str, request: ClassicJoin) -> ClassicJoinResponse {
        let member_id = request.member_id.clone();
        let reply = self.with_group(
            group,
            true,
            || GroupError::GroupNotFound(group.to_string()),
            |g, now| {
                if !g.members.is_empty() {
                    tracing::info!(group, "Kafka join refused: HTTP consumers manage the group");
                    return Ok(Reply::Now(ClassicJoinResponse::error(
                        &member_id,
                        ClassicError::InconsistentGroupProtocol,
                    )));
                }
                Ok(g.classic.join(request, now, |client| self.new_classic_member_id(client)))
            },
        );
        match reply {
            Err(e) => ClassicJoinResponse::error(&member_id, classic_error(&e)),
            Ok(Reply::Now(r)) => r,
            Ok(Reply::Parked(rx)) => {
                self.park(group, rx, || ClassicJoinResponse::error(&member_id, ClassicError::UnknownMemberId)).await
            }
        }
    }

    /// SyncGroup. A follower's is parked until the leader's assignment arrives (or the rebalance
    /// timeout passes).
    pub async fn classic_sync(&self, group: &str, request: ClassicSync) -> ClassicSyncResponse {
        let reply = self.with_group(
            group,
            false,
            || GroupError::UnknownMember { group: group.to_string(), member_id: request.member_id.clone() },
            |g, now| Ok(g.classic.sync(request.clone(), now)),
        );
        match reply {
            Err(e) => ClassicSyncResponse::error(classic_error(&e)),
            Ok(Reply::Now(r)) => r,
            Ok(Reply::Parked(rx)) => {
                self.park(group, rx, || ClassicSyncResponse::error(ClassicError::RebalanceInProgress)).await
            }
        }
    }

    /// Waits for a parked answer, firing the group's timers when they are due (on the store's
    /// clock, looked at again at least every [`CLASSIC_PARK_RECHECK_MS`]).
    async fn park<T>(&self, group: &str, mut rx: oneshot::Receiver<T>, gone: impl Fn() -> T) -> T {
        loop {
            let next = self.classic_tick(group);
            let wait_ms = next.map_or(CLASSIC_PARK_RECHECK_MS, |due| {
                u64::try_from(due.saturating_sub(self.now_ms())).unwrap_or(0).clamp(1, CLASSIC_PARK_RECHECK_MS)
            });
            if let Ok(answer) = tokio::time::timeout(Duration::from_millis(wait_ms), &mut rx).await {
                return answer.unwrap_or_else(|_| gone());
            }
        }
    }

    /// Fires the group's timers that are due; returns when the next one is (ms on the store's clock).
    pub fn classic_tick(&self, group: &str) -> Option<i64> {
        self.with_group(group, false, || GroupError::GroupNotFound(group.to_string()), |g, now| Ok(g.classic.tick(now)))
            .ok()
            .flatten()
    }

    /// Heartbeat.
    pub fn classic_heartbeat(&self, group: &str, member_id: &str, generation: i32) -> Result<(), ClassicError> {
        let missing = || GroupError::UnknownMember { group: group.to_string(), member_id: member_id.to_string() };
        self.with_group(group, false, missing, |g, now| Ok(g.classic.heartbeat(member_id, generation, now)))
            .unwrap_or_else(|e| Err(classic_error(&e)))
    }

    /// LeaveGroup of some members, each (member id, group instance id): an answer for each, in order.
    pub fn classic_leave(
        &self,
        group: &str,
        member_ids: &[(String, Option<String>)],
    ) -> Result<Vec<Option<ClassicError>>, ClassicError> {
        let unknown = || vec![Some(ClassicError::UnknownMemberId); member_ids.len()];
        let left = self.with_group(
            group,
            false,
            || GroupError::GroupNotFound(group.to_string()),
            |g, now| {
                Ok(member_ids
                    .iter()
                    .map(|(id, instance)| g.classic.leave(id, instance.as_deref(), now).err())
                    .collect())
            },
        );
        match left {
            Ok(answers) => Ok(answers),
            Err(GroupError::GroupNotFound(_)) => Ok(unknown()),
            Err(e) => Err(classic_error(&e)),
        }
    }

    /// OffsetCommit: checks member and generation as Kafka does, then commits every valid
    /// partition (an existing partition, any offset from 0, even past the log end) in one durable
    /// batch. Blocking (an fsync). An answer per partition, in order.
    pub fn classic_commit(
        &self,
        group: &str,
        member_id: &str,
        generation: i32,
        offsets: &[(TopicPartition, i64, Option<String>)],
    ) -> Vec<Option<ClassicError>> {
        let all = |e: ClassicError| vec![Some(e); offsets.len()];
        let result = self.with_group(
            group,
            true,
            || GroupError::GroupNotFound(group.to_string()),
            |g, now| {
                if !g.members.is_empty() {
                    // HTTP consumers manage the group: a Kafka member is not one of them.
                    return Ok(all(ClassicError::UnknownMemberId));
                }
                if let Err(e) = g.classic.validate_commit(member_id, generation, now) {
                    return Ok(all(e));
                }
                let mut answers = Vec::with_capacity(offsets.len());
                let mut changes = Vec::with_capacity(offsets.len());
                for (tp, offset, metadata) in offsets {
                    let answer = self.check_commit(tp, *offset, metadata.as_deref());
                    if answer.is_none() {
                        let c = CommittedOffset {
                            offset: u64::try_from(*offset).expect("checked"),
                            metadata: metadata.clone(),
                            commit_timestamp: now,
                            // The topic this offset was committed on: never applied to a topic
                            // deleted and created again under the same name.
                            topic_id: self.store().topic(&tp.topic).ok().map(|t| t.id()),
                        };
                        changes.push((tp.clone(), c));
                    }
                    answers.push(answer);
                }
                if let Err(e) = self.write_offsets(g, changes, now) {
                    let e = classic_error(&e);
                    for a in answers.iter_mut().filter(|a| a.is_none()) {
                        *a = Some(e);
                    }
                }
                Ok(answers)
            },
        );
        result.unwrap_or_else(|e| all(classic_error(&e)))
    }

    fn check_commit(&self, tp: &TopicPartition, offset: i64, metadata: Option<&str>) -> Option<ClassicError> {
        if metadata.is_some_and(|m| m.len() > OFFSET_METADATA_BYTES_MAX) {
            return Some(ClassicError::OffsetMetadataTooLarge);
        }
        if let Err(e) = self.store().topic(&tp.topic).and_then(|t| t.partition(tp.partition)) {
            return Some(classic_error(&e.into()));
        }
        // As Kafka: any offset is committed, even past the log end (the consumer's
        // `auto.offset.reset` applies when its fetch there is out of range); only a negative one,
        // which no stored offset can be, is refused.
        match u64::try_from(offset) {
            Ok(_) => None,
            Err(_) => Some(ClassicError::OffsetOutOfRange),
        }
    }

    /// Runs [`classic_commit`](Self::classic_commit) on tokio's blocking pool.
    pub async fn classic_commit_async(
        &self,
        group: String,
        member_id: String,
        generation: i32,
        offsets: Vec<(TopicPartition, i64, Option<String>)>,
    ) -> Vec<Option<ClassicError>> {
        let c = self.clone();
        let n = offsets.len();
        tokio::task::spawn_blocking(move || c.classic_commit(&group, &member_id, generation, &offsets))
            .await
            .unwrap_or_else(|_| vec![Some(ClassicError::UnknownServerError); n])
    }

    /// OffsetFetch: every committed offset of the group (none for a group that does not exist).
    pub fn classic_committed(&self, group: &str) -> Result<BTreeMap<TopicPartition, CommittedOffset>, ClassicError> {
        let r = self.with_group(
            group,
            false,
            || GroupError::GroupNotFound(group.to_string()),
            |g, _| Ok(g.offsets.clone()),
        );
        match r {
            Ok(offsets) => Ok(offsets),
            Err(GroupError::GroupNotFound(_)) => Ok(BTreeMap::new()),
            Err(e) => Err(classic_error(&e)),
        }
    }

    /// ListGroups: every group with members or committed offsets; the protocol type is empty for
    /// groups no Kafka client manages.
    pub fn classic_list(&self) -> Vec<ClassicGroupListing> {
        self.list()
            .into_iter()
            .filter_map(|name| {
                let d = self.classic_describe(&name).ok()?;
                Some(ClassicGroupListing { group: name, protocol_type: d.protocol_type, state: d.state })
            })
            .collect()
    }

    /// DescribeGroups of one group: Dead for a group that does not exist (as Kafka). A group
    /// managed over HTTP shows its state with no protocol type and no members.
    pub fn classic_describe(&self, group: &str) -> Result<ClassicGroupDescription, ClassicError> {
        let dead = || ClassicGroupDescription {
            group: group.to_string(),
            state: ClassicState::Dead,
            protocol_type: String::new(),
            protocol: String::new(),
            members: Vec::new(),
        };
        let r = self.with_group(
            group,
            false,
            || GroupError::GroupNotFound(group.to_string()),
            |g, _| {
                if !g.exists() {
                    return Ok(dead());
                }
                Ok(if g.members.is_empty() {
                    let c = &g.classic;
                    let protocol = match c.state {
                        ClassicState::Stable | ClassicState::CompletingRebalance => {
                            c.protocol.clone().unwrap_or_default()
                        }
                        _ => String::new(),
                    };
                    ClassicGroupDescription {
                        group: group.to_string(),
                        state: c.state,
                        protocol_type: c.protocol_type.clone().unwrap_or_default(),
                        protocol,
                        members: c.describe_members(),
                    }
                } else {
                    let state = match g.state() {
                        GroupState::Empty => ClassicState::Empty,
                        GroupState::Rebalancing => ClassicState::PreparingRebalance,
                        GroupState::Stable => ClassicState::Stable,
                    };
                    ClassicGroupDescription { state, ..dead() }
                })
            },
        );
        match r {
            Ok(d) => Ok(d),
            Err(GroupError::GroupNotFound(_)) => Ok(dead()),
            Err(e) => Err(classic_error(&e)),
        }
    }

    /// DeleteGroups of one group: refused with members (NON_EMPTY_GROUP). Blocking (an fsync).
    pub fn classic_delete(&self, group: &str) -> Result<(), ClassicError> {
        self.delete(group).map_err(|e| classic_error(&e))
    }
}
