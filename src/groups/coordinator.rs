//! The group coordinator: every group's membership in memory, committed offsets durable in the
//! offsets topic. One per store (clone it to share); sessions expire lazily, on every call.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;

use super::Result;
use crate::store::{Store, StoreExtension};

use super::membership::Group;

impl Store {
    /// The store's group coordinator (one per store, opened on first use: it creates the offsets
    /// topic if needed and replays it).
    pub fn groups(&self) -> Result<GroupCoordinator> {
        GroupCoordinator::open(self)
    }
}
use super::offsets::OffsetStore;
use super::reset::{plan, scope, ResetPlan, ResetRequest};
use super::{
    validate_group_name, AutoOffsetReset, CommittedOffset, GroupDescription, GroupError, JoinRequest, Membership,
    PartitionLag, TopicPartition, OFFSET_METADATA_BYTES_MAX,
};

impl StoreExtension for GroupCoordinator {
    /// As in Kafka, a deleted topic's committed offsets go with it.
    fn topic_deleted(&self, name: &str) -> crate::Result<()> {
        self.forget_topic(name)
    }
}

/// Coordinates consumer groups over one [`Store`]. Cheap to clone; `Send + Sync`.
///
/// The store owns it: [`Store::groups`] returns the same coordinator for the same store. Membership is in memory
/// (members rejoin after a restart, as Kafka's do after a coordinator moves); committed offsets are
/// durable.
///
/// Blocking: `commit`, executed `reset_offsets` and `delete` fsync before returning, and `open`
/// replays the offsets topic; async callers use the `*_async` variants or `spawn_blocking`. The
/// other calls only take locks.
#[derive(Clone, Debug)]
pub struct GroupCoordinator {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    store: Store,
    offsets: OffsetStore,
    /// Lock order: this map, then a group. A group's lock is held while its commits are fsynced, so
    /// that the in-memory offsets follow the log's order.
    groups: Mutex<BTreeMap<String, Arc<Mutex<Group>>>>,
    next_member: AtomicU64,
    /// Distinguishes member ids of this coordinator from those of an earlier process.
    incarnation: u64,
}

impl GroupCoordinator {
    /// The store's coordinator ([`Store::groups`]): the first call creates the offsets topic if
    /// needed and replays it; later ones return the same coordinator, so that every user of a
    /// store (the broker, views) sees the same members and offsets.
    pub(crate) fn open(store: &Store) -> Result<GroupCoordinator> {
        store.extension(|store| Self::open_new(&store))
    }

    fn open_new(store: &Store) -> Result<GroupCoordinator> {
        let (offsets, committed) = OffsetStore::open(store)?;
        let groups = committed
            .into_iter()
            .map(|(name, offsets)| {
                let mut g = Group::new(&name);
                g.offsets = offsets;
                (name, Arc::new(Mutex::new(g)))
            })
            .collect();
        let incarnation = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64 & 0xff_ffff);
        let inner = Arc::new(Inner {
            store: store.clone(),
            offsets,
            groups: Mutex::new(groups),
            next_member: AtomicU64::new(1),
            incarnation,
        });
        Ok(GroupCoordinator { inner })
    }

    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    pub(super) fn now_ms(&self) -> i64 {
        self.inner.store.config().clock.now_ms()
    }

    pub(super) fn partition_count(&self, topic: &str) -> Option<u32> {
        self.inner.store.topic(topic).ok().map(|t| t.partition_count())
    }

    /// Runs `f` on the group, after expiring its sessions. `create` makes a missing group;
    /// otherwise a missing group is `missing()`.
    pub(super) fn with_group<R>(
        &self,
        name: &str,
        create: bool,
        missing: impl Fn() -> GroupError,
        f: impl FnOnce(&mut Group, i64) -> Result<R>,
    ) -> Result<R> {
        validate_group_name(name)?;
        loop {
            let group = {
                let mut map = self.inner.groups.lock();
                match map.get(name) {
                    Some(g) => Arc::clone(g),
                    None if create => {
                        let g = Arc::new(Mutex::new(Group::new(name)));
                        map.insert(name.to_string(), Arc::clone(&g));
                        g
                    }
                    None => return Err(missing()),
                }
            };
            let mut g = group.lock();
            if g.removed {
                continue; // deleted meanwhile: look it up again
            }
            let now = self.now_ms();
            g.maintain(now, &|t| self.partition_count(t));
            return f(&mut g, now);
        }
    }

    /// A new member id for a Kafka client: its client id (shortened), a sequence number and this
    /// coordinator's incarnation.
    pub(super) fn new_classic_member_id(&self, client_id: &str) -> String {
        let mut end = client_id.len().min(super::classic::CLASSIC_CLIENT_ID_PREFIX_MAX);
        while !client_id.is_char_boundary(end) {
            end -= 1;
        }
        let prefix: String = client_id[..end].chars().filter(|c| !c.is_control()).collect();
        let n = self.inner.next_member.fetch_add(1, Ordering::Relaxed);
        format!("{prefix}-{n}-{:06x}", self.inner.incarnation)
    }

    /// Writes committed offsets durably (one batch) and then to the group's memory.
    pub(super) fn write_offsets(
        &self,
        g: &mut Group,
        changes: Vec<(TopicPartition, CommittedOffset)>,
        now: i64,
    ) -> Result<()> {
        let changes: Vec<_> = changes.into_iter().map(|(tp, c)| (tp, Some(c))).collect();
        self.inner.offsets.write(&g.name, &changes, now)?;
        for (tp, c) in changes {
            g.offsets.insert(tp, c.expect("a commit"));
        }
        Ok(())
    }

    /// Joins `group` (or rejoins, with `member_id`): returns the member's id, the generation and its
    /// assignment. A new member, or a changed subscription, starts a new generation.
    pub fn join(&self, group: &str, request: JoinRequest) -> Result<Membership> {
        self.with_group(
            group,
            true,
            || GroupError::GroupNotFound(group.to_string()),
            |g, now| {
                let meta = |t: &str| self.partition_count(t);
                let new_id = || {
                    let n = self.inner.next_member.fetch_add(1, Ordering::Relaxed);
                    format!("m-{n}-{:06x}", self.inner.incarnation)
                };
                g.join(&request, now, &meta, new_id)
            },
        )
    }

    /// Refreshes the member's session and returns its current assignment. A member from an older
    /// generation gets [`GroupError::IllegalGeneration`] (its session is still refreshed) and must
    /// [`join`](Self::join) again with its member id, which returns the current assignment without a
    /// rebalance; an evicted member gets [`GroupError::UnknownMember`] and joins without an id.
    pub fn heartbeat(&self, group: &str, member_id: &str, generation: u64) -> Result<Membership> {
        self.with_group(group, false, || unknown(group, member_id), |g, now| g.heartbeat(member_id, generation, now))
    }

    /// A receiver that sees a change whenever the group starts a new generation or a member
    /// acknowledges one (releasing partitions pending for others): what a member waiting for
    /// partitions, or for its pending ones, wakes on. It closes when the group is deleted.
    pub fn changes(&self, group: &str) -> Result<tokio::sync::watch::Receiver<u64>> {
        self.with_group(group, false, || GroupError::GroupNotFound(group.to_string()), |g, _| Ok(g.changes.subscribe()))
    }

    /// Leaves the group: its partitions go to the others at once (a new generation).
    pub fn leave(&self, group: &str, member_id: &str) -> Result<()> {
        self.with_group(
            group,
            false,
            || unknown(group, member_id),
            |g, _| g.leave(member_id, &|t| self.partition_count(t)),
        )
    }

    /// Checks that the member may read `tp` now: it owns it in the current generation, and the
    /// previous owner has released it. Refreshes the session.
    pub fn check_fetch(&self, group: &str, member_id: &str, generation: u64, tp: &TopicPartition) -> Result<()> {
        self.with_group(
            group,
            false,
            || unknown(group, member_id),
            |g, now| g.check_owner(member_id, generation, tp, now),
        )
    }

    /// Commits offsets (each the next offset to read), all at once, durably before returning.
    ///
    /// With `member` (id, generation) each partition must be the member's in the current generation.
    /// Without (a consumer with manual assignment, Kafka's "simple" commit), the group must have no
    /// live members, as Kafka requires. An offset above the high watermark is refused; below the log
    /// start is allowed (the consumer then restarts by its `auto_offset_reset`).
    pub fn commit(
        &self,
        group: &str,
        member: Option<(&str, u64)>,
        offsets: &[(TopicPartition, u64, Option<String>)],
    ) -> Result<()> {
        self.with_group(
            group,
            true,
            || GroupError::GroupNotFound(group.to_string()),
            |g, now| {
                match member {
                    Some((id, generation)) => {
                        for (tp, _, _) in offsets {
                            g.check_owner(id, generation, tp, now)?;
                        }
                        if offsets.is_empty() {
                            g.heartbeat(id, generation, now)?;
                        }
                    }
                    None => g.check_empty("a commit without a member id (manual assignment)")?,
                }
                let mut changes = Vec::with_capacity(offsets.len());
                for (tp, offset, metadata) in offsets {
                    if let Some(m) = metadata {
                        if m.len() > OFFSET_METADATA_BYTES_MAX {
                            return Err(GroupError::MetadataTooLarge { len: m.len(), max: OFFSET_METADATA_BYTES_MAX });
                        }
                    }
                    let topic = self.inner.store.topic(&tp.topic)?;
                    let p = topic.partition(tp.partition)?;
                    let high_watermark = p.high_watermark();
                    if *offset > high_watermark {
                        return Err(GroupError::OffsetAboveHighWatermark {
                            group: group.to_string(),
                            topic: tp.topic.clone(),
                            partition: tp.partition,
                            offset: *offset,
                            high_watermark,
                        });
                    }
                    let topic_id = Some(topic.id());
                    let c = CommittedOffset {
                        offset: *offset,
                        metadata: metadata.clone(),
                        commit_timestamp: now,
                        topic_id,
                    };
                    changes.push((tp.clone(), Some(c)));
                }
                self.inner.offsets.write(group, &changes, now)?;
                for (tp, c) in changes {
                    g.offsets.insert(tp, c.expect("a commit"));
                }
                Ok(())
            },
        )
    }

    /// Runs [`commit`](Self::commit) on tokio's blocking pool, for async callers.
    pub async fn commit_async(
        &self,
        group: String,
        member: Option<(String, u64)>,
        offsets: Vec<(TopicPartition, u64, Option<String>)>,
    ) -> Result<()> {
        let c = self.clone();
        tokio::task::spawn_blocking(move || c.commit(&group, member.as_ref().map(|(m, g)| (m.as_str(), *g)), &offsets))
            .await
            .expect("commit does not panic")
    }

    /// The group's committed offset for `tp` (never one committed on a topic of that name since
    /// deleted).
    pub fn committed(&self, group: &str, tp: &TopicPartition) -> Option<CommittedOffset> {
        let g = Arc::clone(self.inner.groups.lock().get(group)?);
        let g = g.lock();
        g.offsets.get(tp).filter(|c| self.is_current(tp, c)).cloned()
    }

    /// Whether `c` was committed on the topic named `tp.topic` now (not on one since deleted).
    fn is_current(&self, tp: &TopicPartition, c: &CommittedOffset) -> bool {
        match c.topic_id {
            Some(id) => self.inner.store.topic(&tp.topic).is_ok_and(|t| t.id() == id),
            None => true,
        }
    }

    /// The group's offsets that are of the topics as they are now.
    fn current_offsets(&self, g: &Group) -> super::offsets::GroupOffsets {
        g.offsets.iter().filter(|(tp, c)| self.is_current(tp, c)).map(|(tp, c)| (tp.clone(), c.clone())).collect()
    }

    /// Where the group starts reading `tp`: the committed offset when it is within
    /// `log_start..=high_watermark`, else by `reset`.
    pub fn starting_offset(&self, group: &str, tp: &TopicPartition, reset: AutoOffsetReset) -> Result<u64> {
        validate_group_name(group)?;
        let p = self.inner.store.topic(&tp.topic)?.partition(tp.partition)?;
        let (start, end) = (p.log_start_offset(), p.high_watermark());
        let committed = self.committed(group, tp).map(|c| c.offset);
        match (committed, reset) {
            (Some(c), _) if (start..=end).contains(&c) => Ok(c),
            (_, AutoOffsetReset::Earliest) => Ok(start),
            (_, AutoOffsetReset::Latest) => Ok(end),
            (_, AutoOffsetReset::None) => Err(GroupError::NoValidOffset {
                group: group.to_string(),
                topic: tp.topic.clone(),
                partition: tp.partition,
                committed,
                log_start: start,
                log_end: end,
            }),
        }
    }

    /// Resets committed offsets (`kafka-consumer-groups --reset-offsets`). A dry run (the default)
    /// returns the plan and changes nothing; `execute` writes every entry in one batch, durably: all
    /// or none. Refused while the group has live members, unless `force` (which, when executing,
    /// evicts them: a new, empty generation).
    pub fn reset_offsets(&self, group: &str, request: ResetRequest) -> Result<ResetPlan> {
        self.with_group(
            group,
            true,
            || GroupError::GroupNotFound(group.to_string()),
            |g, now| {
                if !request.force {
                    g.check_empty("a reset of offsets")?;
                }
                let subscribed: BTreeSet<String> = g.members.values().flat_map(|m| m.topics.iter().cloned()).collect();
                let offsets = self.current_offsets(g);
                let partitions = scope(&self.inner.store, &offsets, &subscribed, &request)?;
                let entries = plan(group, &partitions, &offsets, request.strategy, now)?;
                if request.execute {
                    let mut changes = Vec::with_capacity(entries.len());
                    for e in &entries {
                        let topic_id = Some(self.inner.store.topic(&e.topic)?.id());
                        let c = CommittedOffset { offset: e.new, metadata: None, commit_timestamp: now, topic_id };
                        changes.push((TopicPartition::new(e.topic.clone(), e.partition), Some(c)));
                    }
                    // The ids are of the topics planned against: a partition is marked deleted
                    // before a topic of its name can be created again.
                    if let Some(p) = partitions.iter().find(|p| p.is_deleted()) {
                        return Err(crate::Error::TopicNotFound(p.topic().to_string()).into());
                    }
                    self.inner.offsets.write(group, &changes, now)?;
                    g.evict_all(&|t| self.partition_count(t));
                    for (tp, c) in changes {
                        g.offsets.insert(tp, c.expect("a reset"));
                    }
                    tracing::info!(group, partitions = entries.len(), "offsets reset");
                }
                Ok(ResetPlan { entries, executed: request.execute })
            },
        )
    }

    /// Runs [`reset_offsets`](Self::reset_offsets) on tokio's blocking pool, for async callers.
    pub async fn reset_offsets_async(&self, group: String, request: ResetRequest) -> Result<ResetPlan> {
        let c = self.clone();
        tokio::task::spawn_blocking(move || c.reset_offsets(&group, request)).await.expect("reset does not panic")
    }

    /// Runs [`delete`](Self::delete) on tokio's blocking pool, for async callers.
    pub async fn delete_async(&self, group: String) -> Result<()> {
        let c = self.clone();
        tokio::task::spawn_blocking(move || c.delete(&group)).await.expect("delete does not panic")
    }

    /// The group's state, members and per-partition offsets and lag.
    pub fn describe(&self, group: &str) -> Result<GroupDescription> {
        let not_found = || GroupError::GroupNotFound(group.to_string());
        self.with_group(group, false, not_found, |g, _| {
            if !g.exists() {
                return Err(not_found());
            }
            // A Kafka-managed group: members, owners and topics come from the consumers' protocol bytes.
            // (Also once its last Kafka member left, until HTTP consumers join it.)
            let kafka_managed = g.classic.is_active() || (g.members.is_empty() && g.classic.protocol_type.is_some());
            let kafka = kafka_managed.then(|| super::classic::KafkaView::of(&g.classic));
            let owners = kafka.as_ref().map_or(&g.owners, |k| &k.owners);
            let mut tps: BTreeSet<TopicPartition> = g.offsets.keys().cloned().collect();
            tps.extend(owners.keys().cloned());
            let topics: BTreeSet<&String> = match &kafka {
                Some(k) => k.members.iter().flat_map(|m| &m.topics).collect(),
                None => g.members.values().flat_map(|m| &m.topics).collect(),
            };
            for t in topics {
                if let Some(n) = self.partition_count(t) {
                    tps.extend((0..n).map(|p| TopicPartition::new(t.clone(), p)));
                }
            }
            let mut partitions = Vec::with_capacity(tps.len());
            for tp in tps {
                // Offsets of a deleted topic (or partition) have no log to measure lag against.
                let Ok(p) = self.inner.store.topic(&tp.topic).and_then(|t| t.partition(tp.partition)) else {
                    continue;
                };
                let committed = g.offsets.get(&tp).filter(|c| self.is_current(&tp, c)).map(|c| c.offset);
                let log_end = p.high_watermark();
                partitions.push(PartitionLag {
                    lag: committed.map(|c| log_end.saturating_sub(c)),
                    owner: owners.get(&tp).cloned(),
                    topic: tp.topic,
                    partition: tp.partition,
                    committed,
                    log_start: p.log_start_offset(),
                    log_end,
                });
            }
            Ok(match kafka {
                Some(k) => GroupDescription {
                    group: group.to_string(),
                    state: k.state,
                    generation: k.generation,
                    strategy: None,
                    members: k.members,
                    partitions,
                    kafka: Some(k.info),
                },
                None => GroupDescription {
                    group: group.to_string(),
                    state: g.state(),
                    generation: g.generation,
                    strategy: g.strategy,
                    members: g.describe_members(),
                    partitions,
                    kafka: None,
                },
            })
        })
    }

    /// Groups with live members or committed offsets, sorted.
    pub fn list(&self) -> Vec<String> {
        let groups: Vec<(String, Arc<Mutex<Group>>)> =
            self.inner.groups.lock().iter().map(|(n, g)| (n.clone(), Arc::clone(g))).collect();
        let now = self.now_ms();
        groups
            .into_iter()
            .filter(|(_, g)| {
                let mut g = g.lock();
                g.maintain(now, &|t| self.partition_count(t));
                !g.removed && g.exists()
            })
            .map(|(n, _)| n)
            .collect()
    }

    /// Deletes the group and its committed offsets (durably). Refused with live members.
    pub fn delete(&self, group: &str) -> Result<()> {
        validate_group_name(group)?;
        let mut map = self.inner.groups.lock();
        let not_found = || GroupError::GroupNotFound(group.to_string());
        let arc = Arc::clone(map.get(group).ok_or_else(not_found)?);
        let mut g = arc.lock();
        let now = self.now_ms();
        g.maintain(now, &|t| self.partition_count(t));
        g.check_empty("deleting the group")?;
        if !g.exists() {
            return Err(not_found());
        }
        g.classic.kill();
        let changes: Vec<_> = g.offsets.keys().map(|tp| (tp.clone(), None)).collect();
        self.inner.offsets.write(group, &changes, now)?;
        g.offsets.clear();
        g.removed = true;
        map.remove(group);
        tracing::info!(group, "group deleted");
        Ok(())
    }

    /// Deletes every group's committed offsets of `topic` (durably) that are not of the topic of
    /// that name now, as Kafka does when a topic is deleted: a topic created again under the name
    /// starts with none. A commit racing the deletion either fails (the topic is gone) or holds the
    /// group's lock first and is deleted too; one on a topic created again since is kept. Until
    /// this is done (or if a crash stops it), such offsets are not applied: they name the old
    /// topic's id, and the coordinator deletes them when it opens.
    pub fn forget_topic(&self, topic: &str) -> crate::Result<()> {
        let groups: Vec<(String, Arc<Mutex<Group>>)> =
            self.inner.groups.lock().iter().map(|(n, g)| (n.clone(), Arc::clone(g))).collect();
        let now = self.now_ms();
        let current = self.inner.store.topic(topic).ok().map(|t| t.id());
        for (name, g) in groups {
            let mut g = g.lock();
            let changes: Vec<_> = g
                .offsets
                .iter()
                .filter(|(tp, c)| tp.topic == topic && (current.is_none() || c.topic_id != current))
                .map(|(tp, _)| (tp.clone(), None))
                .collect();
            if g.removed || changes.is_empty() {
                continue;
            }
            self.inner.offsets.write(&name, &changes, now)?;
            for (tp, _) in &changes {
                g.offsets.remove(tp);
            }
            tracing::info!(group = %name, topic, "committed offsets of a deleted topic deleted");
        }
        Ok(())
    }

    /// Evicts every member past its session timeout, in every group (each call also does it for
    /// the group it touches). Returns (group, member id) of the evicted.
    pub fn expire_sessions(&self) -> Vec<(String, String)> {
        let groups: Vec<(String, Arc<Mutex<Group>>)> =
            self.inner.groups.lock().iter().map(|(n, g)| (n.clone(), Arc::clone(g))).collect();
        let now = self.now_ms();
        let mut out = Vec::new();
        for (name, g) in groups {
            let mut g = g.lock();
            if g.removed {
                continue;
            }
            for m in g.maintain(now, &|t| self.partition_count(t)) {
                out.push((name.clone(), m));
            }
        }
        out
    }
}

fn unknown(group: &str, member_id: &str) -> GroupError {
    GroupError::UnknownMember { group: group.to_string(), member_id: member_id.to_string() }
}

const _: () = {
    const fn shareable<T: Send + Sync + Clone>() {}
    shareable::<GroupCoordinator>();
};
