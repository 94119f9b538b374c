//! [`Consumer`]: a client over the coordinator. It joins a group (or reads explicit partitions),
//! keeps a position per partition, polls only what it may read, and commits: its positions, what
//! it fetched, explicit offsets, or automatically. The broker's HTTP consumer instances are built
//! on it.

use std::collections::BTreeMap;
use std::time::Duration;

use tokio::sync::watch;

use super::Result;
use crate::error::Error;
use crate::log::{Partition, Record};

use super::wait::DataWait;
use super::{
    AssignmentStrategy, AutoOffsetReset, GroupCoordinator, GroupError, JoinRequest, Membership, TopicPartition,
    SESSION_TIMEOUT_MS_DEFAULT,
};

/// Bytes read from one partition in one poll, about (Kafka's `max.partition.fetch.bytes` default).
pub const CONSUMER_FETCH_BYTES_MAX: usize = 1024 * 1024;

/// How a [`Consumer`] behaves.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerConfig {
    pub session_timeout_ms: u64,
    pub auto_offset_reset: AutoOffsetReset,
    pub strategy: AssignmentStrategy,
    /// Bytes read from one partition in one poll, about.
    pub fetch_bytes_max: usize,
    /// Commit what was fetched at the start of every poll, on unsubscribe and on close (Kafka's
    /// `enable.auto.commit`, on every poll instead of by interval). Off by default.
    pub auto_commit: bool,
}

crate::config::setters!(ConsumerConfig {
    session_timeout_ms: u64,
    auto_offset_reset: AutoOffsetReset,
    strategy: AssignmentStrategy,
    fetch_bytes_max: usize,
    auto_commit: bool,
});

impl Default for ConsumerConfig {
    fn default() -> Self {
        ConsumerConfig {
            session_timeout_ms: SESSION_TIMEOUT_MS_DEFAULT,
            auto_offset_reset: AutoOffsetReset::default(),
            strategy: AssignmentStrategy::default(),
            fetch_bytes_max: CONSUMER_FETCH_BYTES_MAX,
            auto_commit: false,
        }
    }
}

#[derive(Debug)]
enum Mode {
    /// Neither subscribed nor assigned: nothing to read.
    Idle,
    /// A group member (Kafka's `subscribe`); `topics` sorted and deduplicated.
    Subscribed { topics: Vec<String>, membership: Membership },
    /// Explicit partitions, no membership (Kafka's `assign`); commits need an empty group.
    Assigned { partitions: Vec<TopicPartition> },
}

/// A consumer: `poll` returns records of the partitions it may read, from the committed offsets
/// (or `auto_offset_reset`) on; `commit` stores its positions. Every `poll` heartbeats, and rejoins
/// when the group has moved to a new generation. Call [`close`](Self::close) to leave the group.
/// Blocking: reads do file I/O (async code uses `spawn_blocking`).
#[derive(Debug)]
pub struct Consumer {
    coordinator: GroupCoordinator,
    group: String,
    config: ConsumerConfig,
    mode: Mode,
    positions: BTreeMap<TopicPartition, u64>,
    /// Per partition, the offset after the last record fetched and not committed since: what
    /// [`commit_fetched`](Self::commit_fetched) (and auto-commit) commits.
    fetched: BTreeMap<TopicPartition, u64>,
    /// Rotates the partition polled first, for fairness.
    turn: usize,
    /// Sees the group's changes (while subscribed); marked seen at every refresh.
    group_changes: Option<watch::Receiver<u64>>,
    /// Changes of this consumer's own subscription, assignment or positions.
    own_changes: watch::Sender<u64>,
}

impl Consumer {
    /// A consumer of `group` that neither subscribes nor reads yet: see
    /// [`subscribe_to`](Self::subscribe_to) and [`assign_partitions`](Self::assign_partitions).
    pub fn new(coordinator: &GroupCoordinator, group: &str, config: ConsumerConfig) -> Result<Consumer> {
        super::validate_group_name(group)?;
        Ok(Consumer {
            coordinator: coordinator.clone(),
            group: group.to_string(),
            config,
            mode: Mode::Idle,
            positions: BTreeMap::new(),
            fetched: BTreeMap::new(),
            turn: 0,
            group_changes: None,
            own_changes: watch::Sender::new(0),
        })
    }

    /// Joins `group` with a subscription to `topics`.
    pub fn subscribe(
        coordinator: &GroupCoordinator,
        group: &str,
        topics: Vec<String>,
        config: ConsumerConfig,
    ) -> Result<Consumer> {
        let mut c = Consumer::new(coordinator, group, config)?;
        c.subscribe_to(topics)?;
        Ok(c)
    }

    /// Reads `partitions` without joining; commits go to `group` (which must have no live members).
    pub fn assign(
        coordinator: &GroupCoordinator,
        group: &str,
        partitions: Vec<TopicPartition>,
        config: ConsumerConfig,
    ) -> Result<Consumer> {
        let mut c = Consumer::new(coordinator, group, config)?;
        c.assign_partitions(partitions)?;
        Ok(c)
    }

    pub fn group(&self) -> &str {
        &self.group
    }

    pub fn coordinator(&self) -> &GroupCoordinator {
        &self.coordinator
    }

    /// The current membership (`None` unless subscribed).
    pub fn membership(&self) -> Option<&Membership> {
        match &self.mode {
            Mode::Subscribed { membership, .. } => Some(membership),
            _ => None,
        }
    }

    /// The partitions this consumer may read now, sorted.
    pub fn assignment(&self) -> Vec<TopicPartition> {
        match &self.mode {
            Mode::Subscribed { membership, .. } => {
                membership.assignment.iter().filter(|tp| !membership.pending.contains(tp)).cloned().collect()
            }
            Mode::Assigned { partitions } => partitions.clone(),
            Mode::Idle => Vec::new(),
        }
    }

    /// Every partition assigned to this consumer, sorted: [`assignment`](Self::assignment) plus
    /// those whose previous owner has not released them yet.
    pub fn assigned(&self) -> Vec<TopicPartition> {
        match &self.mode {
            Mode::Subscribed { membership, .. } => membership.assignment.clone(),
            _ => self.assignment(),
        }
    }

    /// The next offset `poll` reads from `tp`, once known.
    pub fn position(&self, tp: &TopicPartition) -> Option<u64> {
        self.positions.get(tp).copied()
    }

    /// How often a subscribed consumer that waits must heartbeat to keep its session (a third of
    /// it, as Kafka's `heartbeat.interval.ms` default); `None` when it has no session.
    pub fn heartbeat_interval(&self) -> Option<Duration> {
        match self.mode {
            Mode::Subscribed { .. } => Some(Duration::from_millis((self.config.session_timeout_ms / 3).max(1))),
            _ => None,
        }
    }

    fn changed(&self) {
        self.own_changes.send_modify(|n| *n += 1);
    }

    /// Subscribes to `topics` (joining the group), or changes the subscription (rejoining with
    /// the same member id). The same topics again change nothing. Refused under a manual
    /// assignment: [`unsubscribe`](Self::unsubscribe) first.
    pub fn subscribe_to(&mut self, mut topics: Vec<String>) -> Result<()> {
        topics.sort();
        topics.dedup();
        let membership = match &self.mode {
            Mode::Assigned { .. } => {
                return Err(GroupError::InvalidRequest(format!(
                    "a consumer of group {:?} with a manual assignment cannot subscribe: unsubscribe first",
                    self.group
                )))
            }
            Mode::Subscribed { topics: current, .. } if *current == topics => return Ok(()),
            Mode::Subscribed { membership, .. } => {
                let req = join_request(Some(membership.member_id.clone()), &topics, &self.config);
                match self.coordinator.join(&self.group, req) {
                    // Evicted meanwhile: as in `refresh`, it starts again from what the group committed.
                    Err(GroupError::UnknownMember { .. }) => {
                        self.forget_positions();
                        self.coordinator.join(&self.group, join_request(None, &topics, &self.config))?
                    }
                    r => r?,
                }
            }
            Mode::Idle => self.coordinator.join(&self.group, join_request(None, &topics, &self.config))?,
        };
        self.group_changes = self.coordinator.changes(&self.group).ok();
        self.mode = Mode::Subscribed { topics, membership };
        self.retain_assigned();
        self.changed();
        Ok(())
    }

    /// Reads `partitions` (each must exist) without a membership; an empty list reads nothing.
    /// Refused while subscribed: [`unsubscribe`](Self::unsubscribe) first.
    pub fn assign_partitions(&mut self, mut partitions: Vec<TopicPartition>) -> Result<()> {
        if let Mode::Subscribed { .. } = self.mode {
            return Err(GroupError::InvalidRequest(format!(
                "a subscribed consumer of group {:?} cannot assign partitions: unsubscribe first",
                self.group
            )));
        }
        partitions.sort();
        partitions.dedup();
        for tp in &partitions {
            self.partition(tp)?;
        }
        self.mode = if partitions.is_empty() { Mode::Idle } else { Mode::Assigned { partitions } };
        self.retain_assigned();
        self.changed();
        Ok(())
    }

    /// Auto-commits (when enabled), leaves the group when subscribed, and forgets the positions:
    /// the consumer reads nothing until it subscribes or is assigned partitions again. Returns the
    /// leave's error, if any, after the consumer has stopped.
    pub fn unsubscribe(&mut self) -> Result<()> {
        self.auto_commit();
        let left = match std::mem::replace(&mut self.mode, Mode::Idle) {
            Mode::Subscribed { membership, .. } => self.coordinator.leave(&self.group, &membership.member_id),
            _ => Ok(()),
        };
        self.forget_positions();
        self.group_changes = None;
        self.changed();
        left
    }

    fn forget_positions(&mut self) {
        self.positions.clear();
        self.fetched.clear();
    }

    /// Keeps positions of assigned partitions and uncommitted fetches of readable ones only.
    fn retain_assigned(&mut self) {
        let (assigned, readable) = (self.assigned(), self.assignment());
        self.positions.retain(|tp, _| assigned.contains(tp));
        self.fetched.retain(|tp, _| readable.contains(tp));
    }

    /// Heartbeats; rejoins after a rebalance or an eviction. Forgets positions of partitions it no
    /// longer owns, and after an eviction all of them (they start again from committed offsets).
    pub fn refresh(&mut self) -> Result<()> {
        let Mode::Subscribed { topics, membership } = &mut self.mode else { return Ok(()) };
        // Marked seen before the heartbeat: a change after it wakes the next wait.
        match &mut self.group_changes {
            Some(rx) if rx.has_changed().is_ok() => {
                rx.borrow_and_update();
            }
            _ => self.group_changes = self.coordinator.changes(&self.group).ok(),
        }
        let beat = self.coordinator.heartbeat(&self.group, &membership.member_id, membership.generation);
        *membership = match beat {
            Ok(m) => m,
            Err(GroupError::IllegalGeneration { .. }) => {
                let req = join_request(Some(membership.member_id.clone()), topics, &self.config);
                self.coordinator.join(&self.group, req)?
            }
            Err(GroupError::UnknownMember { .. }) => {
                // Evicted: its partitions were lost (Kafka's `onPartitionsLost`). Others may have
                // read and committed them since, or a forced reset moved their offsets: positions
                // start again from what the group committed, and what it fetched is not its to
                // commit.
                tracing::warn!(group = %self.group, member = %membership.member_id, "evicted: joining again");
                self.positions.clear();
                self.fetched.clear();
                self.coordinator.join(&self.group, join_request(None, topics, &self.config))?
            }
            Err(e) => return Err(e),
        };
        self.retain_assigned();
        Ok(())
    }

    fn partition(&self, tp: &TopicPartition) -> Result<Partition> {
        Ok(self.coordinator.store().topic(&tp.topic)?.partition(tp.partition)?)
    }

    fn position_or_start(&mut self, tp: &TopicPartition) -> Result<u64> {
        if let Some(p) = self.positions.get(tp) {
            return Ok(*p);
        }
        let p = self.coordinator.starting_offset(&self.group, tp, self.config.auto_offset_reset)?;
        self.positions.insert(tp.clone(), p);
        Ok(p)
    }

    /// Up to `max_records` records from the partitions this consumer may read, each partition in
    /// offset order, advancing the positions. Returns at once (empty when nothing is new).
    pub fn poll(&mut self, max_records: usize) -> Result<Vec<(TopicPartition, Record)>> {
        self.auto_commit();
        self.refresh()?;
        let records = self.fetch(max_records, usize::MAX)?;
        self.advance(&records);
        Ok(records)
    }

    /// Reads as [`poll`](Self::poll) does, without refreshing and without moving positions past
    /// what it returns: [`advance`](Self::advance) does, once they are taken. At most
    /// `max_records` records and about `max_bytes` bytes of keys and values in all, and about
    /// `fetch_bytes_max` from one partition. A position out of range (retention) is reset by
    /// `auto_offset_reset`.
    pub fn fetch(&mut self, max_records: usize, max_bytes: usize) -> Result<Vec<(TopicPartition, Record)>> {
        let readable = self.assignment();
        let mut out = Vec::new();
        let mut bytes_left = max_bytes;
        self.turn = self.turn.wrapping_add(1);
        for i in 0..readable.len() {
            if out.len() >= max_records || bytes_left == 0 {
                break;
            }
            let tp = &readable[(self.turn + i) % readable.len()];
            let budget = (self.config.fetch_bytes_max.min(bytes_left), max_records - out.len());
            let records = self.read_partition(tp, budget)?;
            let bytes: usize = records
                .iter()
                .map(|r| r.key.as_ref().map_or(0, |k| k.len()) + r.value.as_ref().map_or(0, |v| v.len()))
                .sum();
            bytes_left = bytes_left.saturating_sub(bytes);
            out.extend(records.into_iter().map(|r| (tp.clone(), r)));
        }
        Ok(out)
    }

    /// Reads `tp` from its position, within `(bytes, records)`.
    fn read_partition(&mut self, tp: &TopicPartition, (bytes, records): (usize, usize)) -> Result<Vec<Record>> {
        let p = self.partition(tp)?;
        let from = self.position_or_start(tp)?;
        match p.read(from, bytes, records) {
            Err(Error::OffsetOutOfRange { log_start_offset, high_watermark, .. }) => {
                let from = match self.config.auto_offset_reset {
                    AutoOffsetReset::Earliest => log_start_offset,
                    AutoOffsetReset::Latest => high_watermark,
                    AutoOffsetReset::None => {
                        return Err(GroupError::NoValidOffset {
                            group: self.group.clone(),
                            topic: tp.topic.clone(),
                            partition: tp.partition,
                            committed: Some(from),
                            log_start: log_start_offset,
                            log_end: high_watermark,
                        })
                    }
                };
                tracing::info!(group = %self.group, %tp, from, "position out of range: reset");
                self.positions.insert(tp.clone(), from);
                Ok(p.read(from, bytes, records)?)
            }
            r => Ok(r?),
        }
    }

    /// Moves the positions past `records` (from [`fetch`](Self::fetch)) and notes them as fetched,
    /// for partitions this consumer may still read.
    pub fn advance(&mut self, records: &[(TopicPartition, Record)]) {
        let readable = self.assignment();
        for (tp, r) in records {
            if readable.contains(tp) {
                self.positions.insert(tp.clone(), r.offset + 1);
                self.fetched.insert(tp.clone(), r.offset + 1);
            }
        }
    }

    /// Commits the positions of every readable partition (only those that moved or were started).
    pub fn commit(&mut self) -> Result<()> {
        let readable = self.assignment();
        let offsets: Vec<(TopicPartition, u64, Option<String>)> = self
            .positions
            .iter()
            .filter(|(tp, _)| readable.contains(tp))
            .map(|(tp, &o)| (tp.clone(), o, None))
            .collect();
        self.commit_offsets(&offsets)
    }

    /// Commits the offset after the last record fetched from each partition since the last such
    /// commit; nothing to commit is not a write.
    pub fn commit_fetched(&mut self) -> Result<()> {
        if self.fetched.is_empty() {
            return Ok(());
        }
        let offsets: Vec<_> = self.fetched.iter().map(|(tp, &o)| (tp.clone(), o, None)).collect();
        self.commit_offsets(&offsets)?;
        // Committed: the next auto-commit does not write (and fsync) the same offsets again.
        self.fetched.clear();
        Ok(())
    }

    /// With `auto_commit`, commits what was fetched ([`poll`](Self::poll), unsubscribe and close
    /// do it themselves). A rebalance it has not seen yet is picked up and the commit retried
    /// once; a failure is logged, not returned: those records stay uncommitted, for the next
    /// auto-commit while the partitions are still this consumer's.
    pub fn auto_commit(&mut self) {
        if !self.config.auto_commit {
            return;
        }
        let mut result = self.commit_fetched();
        if let Err(GroupError::IllegalGeneration { .. }) = result {
            result = self.refresh().and_then(|()| self.commit_fetched());
        }
        if let Err(e) = result {
            tracing::debug!(group = %self.group, error = %e, "auto-commit failed (rebalanced or evicted?)");
        }
    }

    /// Moves the position of an assigned partition; the next poll reads from `offset`.
    pub fn seek(&mut self, tp: &TopicPartition, offset: u64) -> Result<()> {
        if !self.assigned().contains(tp) {
            return Err(GroupError::InvalidRequest(format!(
                "cannot seek {tp}: it is not assigned to this consumer of group {:?}",
                self.group
            )));
        }
        self.positions.insert(tp.clone(), offset);
        self.changed();
        Ok(())
    }

    /// Moves the positions of `partitions` (all readable ones when empty) to their log start.
    pub fn seek_to_beginning(&mut self, partitions: &[TopicPartition]) -> Result<()> {
        self.seek_with(partitions, Partition::log_start_offset)
    }

    /// Moves the positions of `partitions` (all readable ones when empty) to their high watermark.
    pub fn seek_to_end(&mut self, partitions: &[TopicPartition]) -> Result<()> {
        self.seek_with(partitions, Partition::high_watermark)
    }

    fn seek_with(&mut self, partitions: &[TopicPartition], to: fn(&Partition) -> u64) -> Result<()> {
        let list = if partitions.is_empty() { self.assignment() } else { partitions.to_vec() };
        for tp in &list {
            let offset = to(&self.partition(tp)?);
            self.seek(tp, offset)?;
        }
        Ok(())
    }

    /// Commits explicit offsets (each the next offset to read), as this consumer: with its
    /// membership, or without one (manual assignment, or none yet).
    pub fn commit_offsets(&mut self, offsets: &[(TopicPartition, u64, Option<String>)]) -> Result<()> {
        match &self.mode {
            Mode::Subscribed { membership, .. } => {
                self.coordinator.commit(&self.group, Some((&membership.member_id, membership.generation)), offsets)
            }
            _ => self.coordinator.commit(&self.group, None, offsets),
        }
    }

    /// What to wait on for records: the readable partitions at their positions (started from the
    /// committed offsets when new), the group's changes and this consumer's own.
    pub fn data_wait(&mut self) -> Result<DataWait> {
        let mut changes = vec![self.own_changes.subscribe()];
        changes.extend(self.group_changes.clone());
        let mut partitions = Vec::new();
        for tp in self.assignment() {
            let from = self.position_or_start(&tp)?;
            partitions.push((self.partition(&tp)?, from));
        }
        Ok(DataWait::new(partitions, changes))
    }

    /// Waits (at most `timeout`) until a readable partition has a record at or after its position.
    /// Returns whether one has (false also when the group or the consumer changed first: poll or
    /// refresh to see the new assignment). A notification, not a poll.
    pub async fn wait_for_data(&mut self, timeout: Duration) -> Result<bool> {
        Ok(self.data_wait()?.wait(timeout).await == super::Wake::Data)
    }

    /// Leaves the group (its partitions go to the others at once), committing first with
    /// `auto_commit`.
    pub fn close(mut self) -> Result<()> {
        self.unsubscribe()
    }
}

fn join_request(member_id: Option<String>, topics: &[String], config: &ConsumerConfig) -> JoinRequest {
    JoinRequest {
        member_id,
        topics: topics.to_vec(),
        session_timeout_ms: config.session_timeout_ms,
        auto_offset_reset: config.auto_offset_reset,
        strategy: config.strategy,
    }
}
