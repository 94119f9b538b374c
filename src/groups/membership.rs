//! One group's state: members, generation, owners, committed offsets. Pure state machine: time and
//! topic metadata are passed in, so it is tested without a store.

use std::collections::BTreeMap;

use super::assignment::{assign, AssignmentStrategy, Subscriptions};
use super::classic::ClassicGroup;
use super::{
    AutoOffsetReset, CommittedOffset, GroupError, GroupState, JoinRequest, MemberDescription, Membership,
    TopicPartition, GROUP_MEMBERS_MAX, MEMBER_ID_LEN_MAX, SESSION_TIMEOUT_MS_MAX, SESSION_TIMEOUT_MS_MIN,
};

/// Topic name → partition count, `None` when the topic does not exist.
pub(crate) type Metadata<'a> = &'a dyn Fn(&str) -> Option<u32>;

#[derive(Debug, Clone)]
pub(crate) struct Member {
    pub topics: Vec<String>,
    pub session_timeout_ms: u64,
    pub auto_offset_reset: AutoOffsetReset,
    pub last_seen_ms: i64,
    /// The partitions it owns in the current generation.
    pub assignment: Vec<TopicPartition>,
    /// The last generation it acknowledged (joined or heartbeated with), and what it owned then:
    /// what it may still be reading.
    pub acked_generation: u64,
    pub acked_assignment: Vec<TopicPartition>,
}

impl Member {
    fn expired(&self, now_ms: i64) -> bool {
        now_ms.saturating_sub(self.last_seen_ms) > self.session_timeout_ms as i64
    }
}

#[derive(Debug, Default)]
pub(crate) struct Group {
    pub name: String,
    pub generation: u64,
    pub strategy: Option<AssignmentStrategy>,
    pub members: BTreeMap<String, Member>,
    /// Owner of each assigned partition in the current generation.
    pub owners: BTreeMap<TopicPartition, String>,
    pub offsets: BTreeMap<TopicPartition, CommittedOffset>,
    /// Partition counts of the subscribed topics when the current assignment was made.
    pub partition_counts: BTreeMap<String, u32>,
    /// Set when the group was deleted: a handle to it must be looked up again.
    pub removed: bool,
    /// Counts changes a waiting member cares about: a new generation, or a member acknowledging
    /// one (which may release partitions pending for another).
    pub changes: tokio::sync::watch::Sender<u64>,
    /// The group's Kafka-client (classic protocol) side: active only while HTTP has no members.
    pub classic: ClassicGroup,
}

impl Group {
    pub fn new(name: &str) -> Group {
        Group { name: name.to_string(), classic: ClassicGroup::new(name), ..Group::default() }
    }

    pub fn state(&self) -> GroupState {
        if self.members.is_empty() {
            GroupState::Empty
        } else if self.members.values().any(|m| m.acked_generation != self.generation) {
            GroupState::Rebalancing
        } else {
            GroupState::Stable
        }
    }

    /// Whether the group is worth listing: live members or committed offsets.
    pub fn exists(&self) -> bool {
        !self.members.is_empty() || !self.offsets.is_empty() || self.classic.is_active()
    }

    /// Evicts members past their session timeout and rebalances when they or the subscribed topics'
    /// partitions changed. Returns the evicted member ids.
    pub fn maintain(&mut self, now_ms: i64, meta: Metadata<'_>) -> Vec<String> {
        self.classic.tick(now_ms);
        let expired: Vec<String> =
            self.members.iter().filter(|(_, m)| m.expired(now_ms)).map(|(id, _)| id.clone()).collect();
        for id in &expired {
            tracing::info!(group = %self.name, member = %id, "member evicted after its session timeout");
            self.members.remove(id);
        }
        if !expired.is_empty() || (!self.members.is_empty() && self.current_counts(meta) != self.partition_counts) {
            self.rebalance(meta);
        }
        expired
    }

    fn current_counts(&self, meta: Metadata<'_>) -> BTreeMap<String, u32> {
        let mut counts = BTreeMap::new();
        for m in self.members.values() {
            for t in &m.topics {
                if let Some(n) = meta(t) {
                    counts.insert(t.clone(), n);
                }
            }
        }
        counts
    }

    /// A new generation: the assignment is recomputed from the live members.
    fn rebalance(&mut self, meta: Metadata<'_>) {
        self.generation += 1;
        self.changes.send_modify(|n| *n += 1);
        self.partition_counts = self.current_counts(meta);
        let subs: Subscriptions = self.members.iter().map(|(id, m)| (id.clone(), m.topics.clone())).collect();
        let strategy = self.strategy.unwrap_or_default();
        let assignment = assign(strategy, &subs, &self.partition_counts, &self.owners);
        self.owners.clear();
        for (id, tps) in assignment {
            for tp in &tps {
                self.owners.insert(tp.clone(), id.clone());
            }
            self.members.get_mut(&id).expect("assigned to members").assignment = tps;
        }
        if self.members.is_empty() {
            self.strategy = None;
        }
        tracing::info!(group = %self.name, generation = self.generation, members = self.members.len(), "rebalanced");
    }

    fn ack(&mut self, member_id: &str) {
        let g = self.generation;
        let m = self.members.get_mut(member_id).expect("a member");
        let released = m.acked_generation != g;
        m.acked_generation = g;
        m.acked_assignment = m.assignment.clone();
        if released {
            self.changes.send_modify(|n| *n += 1);
        }
    }

    /// The member's view: its assignment and which of it is still held by an earlier owner.
    pub fn membership(&self, member_id: &str) -> Membership {
        let m = &self.members[member_id];
        let pending = m.assignment.iter().filter(|tp| self.previous_owner(member_id, tp).is_some()).cloned().collect();
        Membership {
            member_id: member_id.to_string(),
            generation: self.generation,
            assignment: m.assignment.clone(),
            pending,
        }
    }

    /// Another member that may still be reading `tp`: it owned it in a generation it acknowledged,
    /// and has not acknowledged the current one.
    fn previous_owner(&self, member_id: &str, tp: &TopicPartition) -> Option<&str> {
        self.members
            .iter()
            .find(|(id, m)| {
                id.as_str() != member_id && m.acked_generation != self.generation && m.acked_assignment.contains(tp)
            })
            .map(|(id, _)| id.as_str())
    }

    pub fn join(
        &mut self,
        req: &JoinRequest,
        now_ms: i64,
        meta: Metadata<'_>,
        new_member_id: impl FnOnce() -> String,
    ) -> Result<Membership, GroupError> {
        if !(SESSION_TIMEOUT_MS_MIN..=SESSION_TIMEOUT_MS_MAX).contains(&req.session_timeout_ms) {
            return Err(GroupError::InvalidSessionTimeout {
                value: req.session_timeout_ms,
                min: SESSION_TIMEOUT_MS_MIN,
                max: SESSION_TIMEOUT_MS_MAX,
            });
        }
        for t in &req.topics {
            crate::config::validate_topic_name(t)
                .map_err(|e| GroupError::InvalidRequest(format!("subscription of group {:?}: {e}", self.name)))?;
        }
        if let Some(id) = &req.member_id {
            if id.is_empty() || id.len() > MEMBER_ID_LEN_MAX {
                return Err(GroupError::InvalidRequest(format!(
                    "member id of {} bytes is outside 1..=MEMBER_ID_LEN_MAX ({MEMBER_ID_LEN_MAX})",
                    id.len()
                )));
            }
        }
        self.maintain(now_ms, meta);
        if self.classic.is_active() {
            return Err(GroupError::ManagedByKafka { group: self.name.clone(), members: self.classic.members.len() });
        }
        if let Some(current) = self.strategy {
            if current != req.strategy && !self.members.is_empty() {
                return Err(GroupError::InconsistentStrategy {
                    group: self.name.clone(),
                    current: current.to_string(),
                    requested: req.strategy.to_string(),
                });
            }
        }
        let mut topics = req.topics.clone();
        topics.sort();
        topics.dedup();
        let id = match &req.member_id {
            Some(id) => {
                let Some(m) = self.members.get_mut(id) else {
                    return Err(GroupError::UnknownMember { group: self.name.clone(), member_id: id.clone() });
                };
                m.last_seen_ms = now_ms;
                m.session_timeout_ms = req.session_timeout_ms;
                m.auto_offset_reset = req.auto_offset_reset;
                if m.topics != topics {
                    m.topics = topics;
                    self.rebalance(meta);
                }
                id.clone()
            }
            None => {
                if self.members.len() >= GROUP_MEMBERS_MAX {
                    return Err(GroupError::TooManyMembers { group: self.name.clone(), max: GROUP_MEMBERS_MAX });
                }
                let id = new_member_id();
                assert!(!self.members.contains_key(&id), "member ids are unique");
                self.members.insert(
                    id.clone(),
                    Member {
                        topics,
                        session_timeout_ms: req.session_timeout_ms,
                        auto_offset_reset: req.auto_offset_reset,
                        last_seen_ms: now_ms,
                        assignment: Vec::new(),
                        acked_generation: 0,
                        acked_assignment: Vec::new(),
                    },
                );
                self.strategy = Some(req.strategy);
                self.rebalance(meta);
                id
            }
        };
        self.ack(&id);
        Ok(self.membership(&id))
    }

    /// The member must exist; its session is refreshed (even when its generation is stale).
    fn touch(&mut self, member_id: &str, now_ms: i64) -> Result<&mut Member, GroupError> {
        let group = &self.name;
        let m = self
            .members
            .get_mut(member_id)
            .ok_or_else(|| GroupError::UnknownMember { group: group.clone(), member_id: member_id.to_string() })?;
        m.last_seen_ms = now_ms;
        Ok(m)
    }

    fn check_generation(&self, member_id: &str, generation: u64) -> Result<(), GroupError> {
        if generation != self.generation {
            return Err(GroupError::IllegalGeneration {
                group: self.name.clone(),
                member_id: member_id.to_string(),
                generation,
                current: self.generation,
            });
        }
        Ok(())
    }

    /// Kafka's heartbeat: refreshes the session; a stale generation is told to rejoin.
    pub fn heartbeat(&mut self, member_id: &str, generation: u64, now_ms: i64) -> Result<Membership, GroupError> {
        self.touch(member_id, now_ms)?;
        self.check_generation(member_id, generation)?;
        self.ack(member_id);
        Ok(self.membership(member_id))
    }

    pub fn leave(&mut self, member_id: &str, meta: Metadata<'_>) -> Result<(), GroupError> {
        if self.members.remove(member_id).is_none() {
            return Err(GroupError::UnknownMember { group: self.name.clone(), member_id: member_id.to_string() });
        }
        tracing::info!(group = %self.name, member = %member_id, "member left");
        self.rebalance(meta);
        Ok(())
    }

    /// May `member_id` in `generation` read (or commit) `tp`? It must own it in the current
    /// generation, and the previous owner must have released it.
    pub fn check_owner(
        &mut self,
        member_id: &str,
        generation: u64,
        tp: &TopicPartition,
        now_ms: i64,
    ) -> Result<(), GroupError> {
        self.touch(member_id, now_ms)?;
        self.check_generation(member_id, generation)?;
        let not = |what| GroupError::NotAssigned {
            group: self.name.clone(),
            member_id: what,
            generation,
            topic: tp.topic.clone(),
            partition: tp.partition,
        };
        if self.owners.get(tp).map(String::as_str) != Some(member_id) {
            return Err(not(member_id.to_string()));
        }
        if let Some(prev) = self.previous_owner(member_id, tp) {
            return Err(GroupError::NotReleased {
                group: self.name.clone(),
                member_id: member_id.to_string(),
                generation,
                topic: tp.topic.clone(),
                partition: tp.partition,
                previous_owner: prev.to_string(),
            });
        }
        Ok(())
    }

    /// A commit or reset without a member (manual assignment, admin) needs an empty group.
    pub fn check_empty(&self, operation: &'static str) -> Result<(), GroupError> {
        let members = self.members.len() + self.classic.members.len();
        if members > 0 {
            return Err(GroupError::ActiveMembers { group: self.name.clone(), members, operation });
        }
        Ok(())
    }

    /// Removes every member (a forced reset): a new, empty generation.
    pub fn evict_all(&mut self, meta: Metadata<'_>) {
        self.classic.evict_all();
        if !self.members.is_empty() {
            tracing::warn!(group = %self.name, members = self.members.len(), "evicting every member");
            self.members.clear();
            self.rebalance(meta);
        }
    }

    pub fn describe_members(&self) -> Vec<MemberDescription> {
        self.members
            .iter()
            .map(|(id, m)| MemberDescription {
                member_id: id.clone(),
                topics: m.topics.clone(),
                assignment: m.assignment.clone(),
                generation: m.acked_generation,
                session_timeout_ms: m.session_timeout_ms,
                last_heartbeat_ms: m.last_seen_ms,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(t: &str) -> Option<u32> {
        (t == "t").then_some(6)
    }

    fn join(g: &mut Group, id: Option<&str>, now: i64, n: &mut u32) -> Result<Membership, GroupError> {
        let req = JoinRequest {
            member_id: id.map(str::to_string),
            topics: vec!["t".into()],
            session_timeout_ms: 100,
            ..JoinRequest::default()
        };
        g.join(&req, now, &meta, || {
            *n += 1;
            format!("m-{n}")
        })
    }

    #[test]
    fn moved_partitions_wait_for_their_previous_owner() {
        let mut g = Group::new("g");
        let mut n = 0;
        let a = join(&mut g, None, 0, &mut n).unwrap();
        assert_eq!((a.generation, a.assignment.len(), a.pending.len()), (1, 6, 0));
        assert_eq!(g.state(), GroupState::Stable);
        let b = join(&mut g, None, 1, &mut n).unwrap();
        assert_eq!((b.generation, b.assignment.len(), b.pending.len()), (2, 3, 3), "a still holds them");
        assert_eq!(g.state(), GroupState::Rebalancing);
        let tp = &b.assignment[0];
        assert!(matches!(g.check_owner(&b.member_id, 2, tp, 1), Err(GroupError::NotReleased { .. })));
        // a learns of generation 2 and rejoins: it keeps three, releases three.
        assert!(matches!(g.heartbeat(&a.member_id, 1, 2), Err(GroupError::IllegalGeneration { current: 2, .. })));
        let a2 = join(&mut g, Some(&a.member_id), 2, &mut n).unwrap();
        assert_eq!((a2.generation, a2.assignment.len()), (2, 3));
        assert_eq!(g.state(), GroupState::Stable);
        assert!(g.heartbeat(&b.member_id, 2, 3).unwrap().pending.is_empty());
        g.check_owner(&b.member_id, 2, tp, 3).unwrap();
        assert!(matches!(g.check_owner(&a.member_id, 2, tp, 3), Err(GroupError::NotAssigned { .. })));
    }

    #[test]
    fn expiry_rebalances() {
        let mut g = Group::new("g");
        let mut n = 0;
        let a = join(&mut g, None, 0, &mut n).unwrap();
        let b = join(&mut g, None, 0, &mut n).unwrap();
        join(&mut g, Some(&a.member_id), 0, &mut n).unwrap();
        g.heartbeat(&a.member_id, 2, 100).unwrap();
        assert_eq!(g.maintain(100, &meta), Vec::<String>::new(), "exactly at the timeout is still alive");
        assert_eq!(g.maintain(101, &meta), vec![b.member_id.clone()]);
        assert_eq!(g.generation, 3);
        assert!(matches!(g.heartbeat(&b.member_id, 2, 101), Err(GroupError::UnknownMember { .. })));
        assert!(matches!(g.heartbeat(&a.member_id, 2, 101), Err(GroupError::IllegalGeneration { current: 3, .. })));
        let a3 = join(&mut g, Some(&a.member_id), 101, &mut n).unwrap();
        assert_eq!((a3.generation, a3.assignment.len(), a3.pending.len()), (3, 6, 0), "b's partitions move to a");
    }
}
