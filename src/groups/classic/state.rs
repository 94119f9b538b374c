//! One Kafka-managed group's state machine, as Kafka's classic coordinator runs it. Pure: the
//! caller passes the time, holds the group's lock, and awaits the parked answers.

use std::collections::BTreeMap;

use bytes::Bytes;
use tokio::sync::oneshot;

use super::{
    ClassicError, ClassicJoin, ClassicJoinMember, ClassicJoinResponse, ClassicMemberDescription, ClassicState,
    ClassicSync, ClassicSyncResponse, CLASSIC_MEMBER_BYTES_MAX, CLASSIC_SESSION_TIMEOUT_MS_MAX,
    CLASSIC_SESSION_TIMEOUT_MS_MIN,
};
use crate::groups::{GROUP_MEMBERS_MAX, MEMBER_ID_LEN_MAX};

/// An answer now, or one that comes when the rebalance completes or times out.
#[derive(Debug)]
pub(crate) enum Reply<T> {
    Now(T),
    Parked(oneshot::Receiver<T>),
}

#[derive(Debug)]
pub(crate) struct Member {
    pub client_id: String,
    pub client_host: String,
    pub group_instance_id: Option<String>,
    pub session_timeout_ms: i64,
    pub rebalance_timeout_ms: i64,
    pub protocol_type: String,
    /// (name, metadata), by preference.
    pub protocols: Vec<(String, Bytes)>,
    /// What the leader assigned it in the current generation.
    pub assignment: Bytes,
    pub last_heartbeat_ms: i64,
    /// It sent SyncGroup for the current generation.
    synced: bool,
    awaiting_join: Option<oneshot::Sender<ClassicJoinResponse>>,
    awaiting_sync: Option<oneshot::Sender<ClassicSyncResponse>>,
}

impl Member {
    /// A member with a parked request is kept alive by it (the rebalance timeout bounds it), unless
    /// its client went away.
    fn parked(&self) -> bool {
        self.awaiting_join.as_ref().is_some_and(|s| !s.is_closed())
            || self.awaiting_sync.as_ref().is_some_and(|s| !s.is_closed())
    }

    fn session_deadline(&self) -> i64 {
        self.last_heartbeat_ms.saturating_add(self.session_timeout_ms)
    }

    fn metadata(&self, protocol: Option<&str>) -> Bytes {
        self.protocols.iter().find(|(n, _)| Some(n.as_str()) == protocol).map(|(_, m)| m.clone()).unwrap_or_default()
    }
}

#[derive(Debug, Default)]
pub(crate) struct ClassicGroup {
    pub name: String,
    pub state: ClassicState,
    pub generation: i32,
    /// Kept while the group is empty (ListGroups shows it), checked only while it has members.
    pub protocol_type: Option<String>,
    pub protocol: Option<String>,
    pub leader: Option<String>,
    pub members: BTreeMap<String, Member>,
    /// Ids handed out with MEMBER_ID_REQUIRED, not joined yet: id → when it expires.
    pending: BTreeMap<String, i64>,
    /// PreparingRebalance: when the join completes with whoever has joined.
    join_deadline: Option<i64>,
    /// After a join completed: when members that have not sent SyncGroup are removed.
    sync_deadline: Option<i64>,
}

impl ClassicGroup {
    pub fn new(name: &str) -> ClassicGroup {
        ClassicGroup { name: name.to_string(), ..ClassicGroup::default() }
    }

    /// Whether Kafka clients manage the group now (members, or ids handed out to join with).
    pub fn is_active(&self) -> bool {
        !self.members.is_empty() || !self.pending.is_empty()
    }

    /// JoinGroup. `new_id` makes a member id from the client id.
    pub fn join(
        &mut self,
        req: ClassicJoin,
        now: i64,
        new_id: impl FnOnce(&str) -> String,
    ) -> Reply<ClassicJoinResponse> {
        let refuse = |e| Reply::Now(ClassicJoinResponse::error(&req.member_id, e));
        if self.state == ClassicState::Dead {
            return refuse(ClassicError::CoordinatorNotAvailable);
        }
        if !(CLASSIC_SESSION_TIMEOUT_MS_MIN..=CLASSIC_SESSION_TIMEOUT_MS_MAX).contains(&req.session_timeout_ms) {
            return refuse(ClassicError::InvalidSessionTimeout);
        }
        if req.member_id.len() > MEMBER_ID_LEN_MAX
            || req.protocols.iter().map(|(n, m)| n.len() + m.len()).sum::<usize>() > CLASSIC_MEMBER_BYTES_MAX
        {
            return refuse(ClassicError::InvalidRequest);
        }
        if !self.supports(&req.protocol_type, &req.protocols) {
            return refuse(ClassicError::InconsistentGroupProtocol);
        }
        if req.member_id.is_empty() {
            if self.members.len() + self.pending.len() >= GROUP_MEMBERS_MAX {
                return refuse(ClassicError::GroupMaxSizeReached);
            }
            let id = new_id(&req.client_id);
            assert!(!self.members.contains_key(&id) && !self.pending.contains_key(&id), "member ids are unique");
            if req.require_known_member_id {
                self.pending.insert(id.clone(), now.saturating_add(i64::from(req.session_timeout_ms)));
                return Reply::Now(ClassicJoinResponse::error(&id, ClassicError::MemberIdRequired));
            }
            return self.add_member_and_rebalance(id, req, now);
        }
        if self.pending.remove(&req.member_id).is_some() {
            let id = req.member_id.clone();
            return self.add_member_and_rebalance(id, req, now);
        }
        let id = req.member_id.clone();
        let is_leader = self.leader.as_deref() == Some(id.as_str());
        let Some(m) = self.members.get_mut(&id) else {
            return refuse(ClassicError::UnknownMemberId);
        };
        m.last_heartbeat_ms = now;
        let unchanged = m.protocol_type == req.protocol_type && m.protocols == req.protocols;
        match self.state {
            ClassicState::CompletingRebalance if unchanged => Reply::Now(self.join_answer(&id)),
            ClassicState::Stable if unchanged && !is_leader => Reply::Now(self.join_answer(&id)),
            ClassicState::PreparingRebalance | ClassicState::CompletingRebalance | ClassicState::Stable => {
                let (tx, rx) = oneshot::channel();
                let m = self.members.get_mut(&id).expect("checked above");
                m.session_timeout_ms = i64::from(req.session_timeout_ms);
                m.rebalance_timeout_ms = i64::from(req.rebalance_timeout_ms.max(0));
                m.protocol_type = req.protocol_type;
                m.protocols = req.protocols;
                if let Some(old) = m.awaiting_join.replace(tx) {
                    // The client asked again: its earlier request is answered, the new one parked.
                    let _ = old.send(ClassicJoinResponse::error(&id, ClassicError::RebalanceInProgress));
                }
                if self.state == ClassicState::PreparingRebalance {
                    self.try_complete_join(now);
                } else {
                    self.prepare_rebalance(now, "a member rejoined with new metadata, or the leader rejoined");
                }
                Reply::Parked(rx)
            }
            ClassicState::Empty | ClassicState::Dead => refuse(ClassicError::UnknownMemberId),
        }
    }

    /// Kafka's check: an empty group takes any non-empty protocol type and list; otherwise the
    /// type must match and one of the protocols be supported by every member.
    fn supports(&self, protocol_type: &str, protocols: &[(String, Bytes)]) -> bool {
        if protocol_type.is_empty() || protocols.is_empty() {
            return false;
        }
        if self.members.is_empty() {
            return true;
        }
        self.protocol_type.as_deref() == Some(protocol_type)
            && protocols
                .iter()
                .any(|(name, _)| self.members.values().all(|m| m.protocols.iter().any(|(n, _)| n == name)))
    }

    fn add_member_and_rebalance(&mut self, id: String, req: ClassicJoin, now: i64) -> Reply<ClassicJoinResponse> {
        let (tx, rx) = oneshot::channel();
        let rebalance_timeout_ms =
            if req.rebalance_timeout_ms < 0 { req.session_timeout_ms } else { req.rebalance_timeout_ms };
        self.protocol_type = Some(req.protocol_type.clone());
        self.members.insert(
            id.clone(),
            Member {
                client_id: req.client_id,
                client_host: req.client_host,
                group_instance_id: req.group_instance_id,
                session_timeout_ms: i64::from(req.session_timeout_ms),
                rebalance_timeout_ms: i64::from(rebalance_timeout_ms),
                protocol_type: req.protocol_type,
                protocols: req.protocols,
                assignment: Bytes::new(),
                last_heartbeat_ms: now,
                synced: false,
                awaiting_join: Some(tx),
                awaiting_sync: None,
            },
        );
        if self.leader.is_none() {
            self.leader = Some(id.clone());
        }
        tracing::info!(group = %self.name, member = %id, "Kafka member joined");
        if self.state == ClassicState::PreparingRebalance {
            self.try_complete_join(now);
        } else {
            self.prepare_rebalance(now, "a member joined");
        }
        Reply::Parked(rx)
    }

    fn rebalance_timeout(&self) -> i64 {
        self.members.values().map(|m| m.rebalance_timeout_ms).max().unwrap_or(0)
    }

    fn prepare_rebalance(&mut self, now: i64, reason: &str) {
        if self.state == ClassicState::CompletingRebalance {
            for m in self.members.values_mut() {
                m.assignment = Bytes::new();
                if let Some(s) = m.awaiting_sync.take() {
                    let _ = s.send(ClassicSyncResponse::error(ClassicError::RebalanceInProgress));
                }
            }
        }
        tracing::info!(group = %self.name, generation = self.generation, reason, "preparing a rebalance");
        self.state = ClassicState::PreparingRebalance;
        self.join_deadline = Some(now.saturating_add(self.rebalance_timeout()));
        self.sync_deadline = None;
        self.try_complete_join(now);
    }

    /// Completes the join once every member has joined again and no handed-out id is still to join.
    fn try_complete_join(&mut self, now: i64) {
        if self.state == ClassicState::PreparingRebalance
            && self.pending.is_empty()
            && self.members.values().all(|m| m.awaiting_join.is_some())
        {
            self.complete_join(now);
        }
    }

    /// The rebalance completes with the members that joined: the others are removed.
    fn complete_join(&mut self, now: i64) {
        let late: Vec<String> =
            self.members.iter().filter(|(_, m)| m.awaiting_join.is_none()).map(|(id, _)| id.clone()).collect();
        for id in late {
            tracing::info!(group = %self.name, member = %id, "Kafka member removed: it did not rejoin within the rebalance timeout");
            self.remove(&id);
        }
        self.join_deadline = None;
        self.generation = self.generation.wrapping_add(1).max(1);
        if self.members.is_empty() {
            self.state = ClassicState::Empty;
            self.protocol = None;
            self.leader = None;
            self.sync_deadline = None;
            tracing::info!(group = %self.name, generation = self.generation, "group is empty");
            return;
        }
        self.protocol = self.select_protocol();
        self.state = ClassicState::CompletingRebalance;
        if !self.leader.as_ref().is_some_and(|l| self.members.contains_key(l)) {
            self.leader = self.members.keys().next().cloned();
        }
        self.sync_deadline = Some(now.saturating_add(self.rebalance_timeout()));
        let ids: Vec<String> = self.members.keys().cloned().collect();
        for id in ids {
            let answer = self.join_answer(&id);
            let m = self.members.get_mut(&id).expect("a member");
            m.synced = false;
            m.assignment = Bytes::new();
            m.last_heartbeat_ms = now;
            if let Some(tx) = m.awaiting_join.take() {
                let _ = tx.send(answer);
            }
        }
        tracing::info!(group = %self.name, generation = self.generation, members = self.members.len(),
            protocol = ?self.protocol, "join completed");
    }

    /// The protocol every member supports that most members prefer (ties: the leader's order).
    fn select_protocol(&self) -> Option<String> {
        let leader = self.leader.as_ref().and_then(|l| self.members.get(l)).or_else(|| self.members.values().next())?;
        let candidates: Vec<&str> = leader
            .protocols
            .iter()
            .map(|(n, _)| n.as_str())
            .filter(|n| self.members.values().all(|m| m.protocols.iter().any(|(p, _)| p == n)))
            .collect();
        let votes = |c: &str| {
            self.members
                .values()
                .filter(|m| m.protocols.iter().map(|(p, _)| p.as_str()).find(|p| candidates.contains(p)) == Some(c))
                .count()
        };
        let mut best: Option<(&str, usize)> = None;
        for c in &candidates {
            let v = votes(c);
            if best.is_none_or(|(_, b)| v > b) {
                best = Some((c, v));
            }
        }
        best.map(|(c, _)| c.to_string())
    }

    /// The current generation's join answer for `id`; the leader's lists every member.
    fn join_answer(&self, id: &str) -> ClassicJoinResponse {
        let leader = self.leader.clone().unwrap_or_default();
        let members = if leader == id {
            self.members
                .iter()
                .map(|(mid, m)| ClassicJoinMember {
                    member_id: mid.clone(),
                    group_instance_id: m.group_instance_id.clone(),
                    metadata: m.metadata(self.protocol.as_deref()),
                })
                .collect()
        } else {
            Vec::new()
        };
        ClassicJoinResponse {
            error: None,
            generation: self.generation,
            protocol_type: self.protocol_type.clone(),
            protocol_name: self.protocol.clone(),
            leader,
            member_id: id.to_string(),
            members,
        }
    }

    /// Checks that `member_id` is a member of `generation`, refreshing its session.
    fn check_member(&mut self, member_id: &str, generation: i32, now: i64) -> Result<&mut Member, ClassicError> {
        if self.state == ClassicState::Dead {
            return Err(ClassicError::CoordinatorNotAvailable);
        }
        let current = self.generation;
        let m = self.members.get_mut(member_id).ok_or(ClassicError::UnknownMemberId)?;
        if generation != current {
            return Err(ClassicError::IllegalGeneration);
        }
        m.last_heartbeat_ms = now;
        Ok(m)
    }

    /// SyncGroup: the leader's carries the assignment; a follower's waits for it.
    pub fn sync(&mut self, req: ClassicSync, now: i64) -> Reply<ClassicSyncResponse> {
        let refuse = |e| Reply::Now(ClassicSyncResponse::error(e));
        if let Err(e) = self.check_member(&req.member_id, req.generation, now) {
            return refuse(e);
        }
        if req.protocol_type.as_ref().is_some_and(|t| Some(t) != self.protocol_type.as_ref())
            || req.protocol_name.as_ref().is_some_and(|n| Some(n) != self.protocol.as_ref())
        {
            return refuse(ClassicError::InconsistentGroupProtocol);
        }
        if req.assignments.iter().any(|(_, a)| a.len() > CLASSIC_MEMBER_BYTES_MAX) {
            return refuse(ClassicError::InvalidRequest);
        }
        match self.state {
            ClassicState::PreparingRebalance => refuse(ClassicError::RebalanceInProgress),
            ClassicState::Empty | ClassicState::Dead => refuse(ClassicError::UnknownMemberId),
            ClassicState::Stable => {
                let m = self.members.get_mut(&req.member_id).expect("checked");
                m.synced = true;
                let answer = self.sync_answer(&req.member_id);
                self.note_synced();
                Reply::Now(answer)
            }
            ClassicState::CompletingRebalance => {
                let (tx, rx) = oneshot::channel();
                let m = self.members.get_mut(&req.member_id).expect("checked");
                m.synced = true;
                if let Some(old) = m.awaiting_sync.replace(tx) {
                    let _ = old.send(ClassicSyncResponse::error(ClassicError::RebalanceInProgress));
                }
                if self.leader.as_deref() == Some(req.member_id.as_str()) {
                    let mut given: BTreeMap<String, Bytes> = req.assignments.into_iter().collect();
                    for (id, m) in self.members.iter_mut() {
                        m.assignment = given.remove(id).unwrap_or_default();
                    }
                    self.state = ClassicState::Stable;
                    let ids: Vec<String> = self.members.keys().cloned().collect();
                    for id in ids {
                        let answer = self.sync_answer(&id);
                        if let Some(tx) = self.members.get_mut(&id).expect("a member").awaiting_sync.take() {
                            let _ = tx.send(answer);
                        }
                    }
                    tracing::info!(group = %self.name, generation = self.generation, "group is stable");
                }
                self.note_synced();
                Reply::Parked(rx)
            }
        }
    }

    fn note_synced(&mut self) {
        if self.members.values().all(|m| m.synced) {
            self.sync_deadline = None;
        }
    }

    fn sync_answer(&self, id: &str) -> ClassicSyncResponse {
        ClassicSyncResponse {
            error: None,
            protocol_type: self.protocol_type.clone(),
            protocol_name: self.protocol.clone(),
            assignment: self.members[id].assignment.clone(),
        }
    }

    /// Heartbeat: refreshes the session; REBALANCE_IN_PROGRESS tells the member to rejoin.
    pub fn heartbeat(&mut self, member_id: &str, generation: i32, now: i64) -> Result<(), ClassicError> {
        self.check_member(member_id, generation, now)?;
        match self.state {
            ClassicState::PreparingRebalance => Err(ClassicError::RebalanceInProgress),
            _ => Ok(()),
        }
    }

    /// LeaveGroup of one member, by member id, or (a static member, LeaveGroup v3+) by its
    /// `group.instance.id` when the member id is empty.
    pub fn leave(&mut self, member_id: &str, instance_id: Option<&str>, now: i64) -> Result<(), ClassicError> {
        if self.state == ClassicState::Dead {
            return Err(ClassicError::CoordinatorNotAvailable);
        }
        let by_instance = match instance_id {
            Some(instance) if member_id.is_empty() => self
                .members
                .iter()
                .find(|(_, m)| m.group_instance_id.as_deref() == Some(instance))
                .map(|(id, _)| id.clone()),
            _ => None,
        };
        let member_id = by_instance.as_deref().unwrap_or(member_id);
        if self.pending.remove(member_id).is_some() {
            self.try_complete_join(now);
            return Ok(());
        }
        if !self.members.contains_key(member_id) {
            return Err(ClassicError::UnknownMemberId);
        }
        tracing::info!(group = %self.name, member = %member_id, "Kafka member left");
        self.remove(member_id);
        self.after_removal(now, "a member left");
        Ok(())
    }

    /// Removes a member, answering its parked requests with UNKNOWN_MEMBER_ID.
    fn remove(&mut self, id: &str) {
        let Some(m) = self.members.remove(id) else { return };
        if let Some(tx) = m.awaiting_join {
            let _ = tx.send(ClassicJoinResponse::error(id, ClassicError::UnknownMemberId));
        }
        if let Some(tx) = m.awaiting_sync {
            let _ = tx.send(ClassicSyncResponse::error(ClassicError::UnknownMemberId));
        }
        if self.leader.as_deref() == Some(id) {
            self.leader = self
                .members
                .iter()
                .find(|(_, m)| m.awaiting_join.is_some())
                .or_else(|| self.members.iter().next())
                .map(|(id, _)| id.clone());
        }
    }

    fn after_removal(&mut self, now: i64, reason: &str) {
        match self.state {
            ClassicState::Stable | ClassicState::CompletingRebalance => self.prepare_rebalance(now, reason),
            ClassicState::PreparingRebalance => self.try_complete_join(now),
            ClassicState::Empty | ClassicState::Dead => {}
        }
    }

    /// OffsetCommit's check of member and generation (Kafka's): generation -1 without a member id
    /// commits only to a group without members.
    pub fn validate_commit(&mut self, member_id: &str, generation: i32, now: i64) -> Result<(), ClassicError> {
        if self.state == ClassicState::Dead {
            return Err(ClassicError::CoordinatorNotAvailable);
        }
        if generation < 0 && self.members.is_empty() {
            return Ok(());
        }
        if generation >= 0 || !member_id.is_empty() {
            self.check_member(member_id, generation, now)?;
        } else if !self.members.is_empty() {
            return Err(ClassicError::UnknownMemberId);
        }
        if self.state == ClassicState::CompletingRebalance {
            return Err(ClassicError::RebalanceInProgress);
        }
        Ok(())
    }

    /// Fires the timers due at `now`: session expiry, the join's and the sync's deadlines. Returns
    /// when the next is due.
    pub fn tick(&mut self, now: i64) -> Option<i64> {
        self.pending.retain(|_, expiry| *expiry >= now);
        let expired: Vec<String> = self
            .members
            .iter()
            .filter(|(_, m)| !m.parked() && m.session_deadline() < now)
            .map(|(id, _)| id.clone())
            .collect();
        for id in &expired {
            tracing::info!(group = %self.name, member = %id, "Kafka member evicted after its session timeout");
            self.remove(id);
        }
        if !expired.is_empty() {
            self.after_removal(now, "a member's session timed out");
        }
        if self.state == ClassicState::PreparingRebalance {
            if self.join_deadline.is_some_and(|d| d <= now) {
                self.complete_join(now);
            } else {
                self.try_complete_join(now);
            }
        }
        if self.sync_deadline.is_some_and(|d| d <= now) {
            self.sync_deadline = None;
            let late: Vec<String> = self.members.iter().filter(|(_, m)| !m.synced).map(|(id, _)| id.clone()).collect();
            for id in &late {
                tracing::info!(group = %self.name, member = %id, "Kafka member removed: no SyncGroup within the rebalance timeout");
                self.remove(id);
            }
            if !late.is_empty() {
                self.after_removal(now, "members did not sync in time");
            }
        }
        let sessions = self.members.values().filter(|m| !m.parked()).map(|m| m.session_deadline().saturating_add(1));
        let pending = self.pending.values().map(|e| e.saturating_add(1));
        sessions.chain(pending).chain(self.join_deadline).chain(self.sync_deadline).min()
    }

    /// Removes every member (a forced reset of offsets, an eviction): an empty generation.
    pub fn evict_all(&mut self) {
        self.pending.clear();
        if self.members.is_empty() {
            return;
        }
        tracing::warn!(group = %self.name, members = self.members.len(), "evicting every Kafka member");
        let ids: Vec<String> = self.members.keys().cloned().collect();
        for id in ids {
            self.remove(&id);
        }
        self.generation = self.generation.wrapping_add(1).max(1);
        self.state = ClassicState::Empty;
        self.protocol = None;
        self.leader = None;
        self.join_deadline = None;
        self.sync_deadline = None;
    }

    /// The group is deleted: Dead, so that a request holding it is refused.
    pub fn kill(&mut self) {
        self.evict_all();
        self.state = ClassicState::Dead;
    }

    /// DescribeGroups' members: metadata and assignment only when Stable, as Kafka does.
    pub fn describe_members(&self) -> Vec<ClassicMemberDescription> {
        let stable = self.state == ClassicState::Stable;
        self.members
            .iter()
            .map(|(id, m)| ClassicMemberDescription {
                member_id: id.clone(),
                group_instance_id: m.group_instance_id.clone(),
                client_id: m.client_id.clone(),
                client_host: m.client_host.clone(),
                metadata: if stable { m.metadata(self.protocol.as_deref()) } else { Bytes::new() },
                assignment: if stable { m.assignment.clone() } else { Bytes::new() },
            })
            .collect()
    }
}
