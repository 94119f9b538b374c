//! [`Consumer`]: a simple client over the coordinator. It joins a group (or reads explicit
//! partitions), keeps a position per partition, polls only what it may read, and commits positions.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::log::{Partition, Record};

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
}

crate::config::setters!(ConsumerConfig {
    session_timeout_ms: u64,
    auto_offset_reset: AutoOffsetReset,
    strategy: AssignmentStrategy,
    fetch_bytes_max: usize,
});

impl Default for ConsumerConfig {
    fn default() -> Self {
        ConsumerConfig {
            session_timeout_ms: SESSION_TIMEOUT_MS_DEFAULT,
            auto_offset_reset: AutoOffsetReset::default(),
            strategy: AssignmentStrategy::default(),
            fetch_bytes_max: CONSUMER_FETCH_BYTES_MAX,
        }
    }
}

#[derive(Debug)]
enum Mode {
    /// A group member (Kafka's `subscribe`).
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
    /// Rotates the partition polled first, for fairness.
    turn: usize,
}

impl Consumer {
    /// Joins `group` with a subscription to `topics`.
    pub fn subscribe(
        coordinator: &GroupCoordinator,
        group: &str,
        topics: Vec<String>,
        config: ConsumerConfig,
    ) -> Result<Consumer> {
        let membership = coordinator.join(group, join_request(None, &topics, &config))?;
        Ok(Consumer {
            coordinator: coordinator.clone(),
            group: group.to_string(),
            config,
            mode: Mode::Subscribed { topics, membership },
            positions: BTreeMap::new(),
            turn: 0,
        })
    }

    /// Reads `partitions` without joining; commits go to `group` (which must have no live members).
    pub fn assign(
        coordinator: &GroupCoordinator,
        group: &str,
        mut partitions: Vec<TopicPartition>,
        config: ConsumerConfig,
    ) -> Result<Consumer> {
        super::validate_group_name(group)?;
        partitions.sort();
        partitions.dedup();
        for tp in &partitions {
            coordinator.store().topic(&tp.topic)?.partition(tp.partition)?;
        }
        Ok(Consumer {
            coordinator: coordinator.clone(),
            group: group.to_string(),
            config,
            mode: Mode::Assigned { partitions },
            positions: BTreeMap::new(),
            turn: 0,
        })
    }

    pub fn group(&self) -> &str {
        &self.group
    }

    /// The current membership (`None` under manual assignment).
    pub fn membership(&self) -> Option<&Membership> {
        match &self.mode {
            Mode::Subscribed { membership, .. } => Some(membership),
            Mode::Assigned { .. } => None,
        }
    }

    /// The partitions this consumer may read now, sorted.
    pub fn assignment(&self) -> Vec<TopicPartition> {
        match &self.mode {
            Mode::Subscribed { membership, .. } => {
                membership.assignment.iter().filter(|tp| !membership.pending.contains(tp)).cloned().collect()
            }
            Mode::Assigned { partitions } => partitions.clone(),
        }
    }

    /// The next offset `poll` reads from `tp`, once known.
    pub fn position(&self, tp: &TopicPartition) -> Option<u64> {
        self.positions.get(tp).copied()
    }

    /// Heartbeats; rejoins after a rebalance or an eviction. Forgets positions of partitions it no
    /// longer reads, and after an eviction all of them (they start again from committed offsets).
    pub fn refresh(&mut self) -> Result<()> {
        let Mode::Subscribed { topics, membership } = &mut self.mode else { return Ok(()) };
        let beat = self.coordinator.heartbeat(&self.group, &membership.member_id, membership.generation);
        *membership = match beat {
            Ok(m) => m,
            Err(Error::Group(GroupError::IllegalGeneration { .. })) => {
                let req = join_request(Some(membership.member_id.clone()), topics, &self.config);
                self.coordinator.join(&self.group, req)?
            }
            Err(Error::Group(GroupError::UnknownMember { .. })) => {
                // Evicted: its partitions were lost (Kafka's `onPartitionsLost`). Others may have
                // read and committed them since, or a forced reset moved their offsets: positions
                // start again from what the group committed.
                tracing::warn!(group = %self.group, member = %membership.member_id, "evicted: joining again");
                self.positions.clear();
                self.coordinator.join(&self.group, join_request(None, topics, &self.config))?
            }
            Err(e) => return Err(e),
        };
        let readable = self.assignment();
        self.positions.retain(|tp, _| readable.contains(tp));
        Ok(())
    }

    fn partition(&self, tp: &TopicPartition) -> Result<Partition> {
        self.coordinator.store().topic(&tp.topic)?.partition(tp.partition)
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
        self.refresh()?;
        let readable = self.assignment();
        let mut out = Vec::new();
        self.turn = self.turn.wrapping_add(1);
        for i in 0..readable.len() {
            if out.len() >= max_records {
                break;
            }
            let tp = &readable[(self.turn + i) % readable.len()];
            let p = self.partition(tp)?;
            let mut from = self.position_or_start(tp)?;
            let records = match p.read(from, self.config.fetch_bytes_max, max_records - out.len()) {
                Ok(r) => r,
                Err(Error::OffsetOutOfRange { log_start_offset, high_watermark, .. }) => {
                    from = match self.config.auto_offset_reset {
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
                            }
                            .into())
                        }
                    };
                    tracing::info!(group = %self.group, %tp, from, "position out of range: reset");
                    self.positions.insert(tp.clone(), from);
                    p.read(from, self.config.fetch_bytes_max, max_records - out.len())?
                }
                Err(e) => return Err(e),
            };
            if let Some(last) = records.last() {
                self.positions.insert(tp.clone(), last.offset + 1);
            }
            out.extend(records.into_iter().map(|r| (tp.clone(), r)));
        }
        Ok(out)
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
        match &self.mode {
            Mode::Subscribed { membership, .. } => {
                self.coordinator.commit(&self.group, Some((&membership.member_id, membership.generation)), &offsets)
            }
            Mode::Assigned { .. } => self.coordinator.commit(&self.group, None, &offsets),
        }
    }

    /// Moves the position of a readable partition; the next poll reads from `offset`.
    pub fn seek(&mut self, tp: &TopicPartition, offset: u64) -> Result<()> {
        if !self.assignment().contains(tp) {
            return Err(GroupError::InvalidRequest(format!(
                "cannot seek {tp}: this consumer of group {:?} does not read it now",
                self.group
            ))
            .into());
        }
        self.positions.insert(tp.clone(), offset);
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
    /// membership, or without one under manual assignment.
    pub fn commit_offsets(&mut self, offsets: &[(TopicPartition, u64, Option<String>)]) -> Result<()> {
        match &self.mode {
            Mode::Subscribed { membership, .. } => {
                self.coordinator.commit(&self.group, Some((&membership.member_id, membership.generation)), offsets)
            }
            Mode::Assigned { .. } => self.coordinator.commit(&self.group, None, offsets),
        }
    }

    /// Waits (at most `timeout`) until a readable partition has a record at or after its position.
    /// Returns whether one has. A notification, not a poll.
    pub async fn wait_for_data(&mut self, timeout: Duration) -> Result<bool> {
        let mut waits = tokio::task::JoinSet::new();
        for tp in self.assignment() {
            let from = self.position_or_start(&tp)?;
            let p = self.partition(&tp)?;
            if p.high_watermark() > from {
                return Ok(true);
            }
            waits.spawn(async move { p.wait_for_data(from).await });
        }
        if waits.is_empty() {
            tokio::time::sleep(timeout).await;
            return Ok(false);
        }
        Ok(tokio::time::timeout(timeout, waits.join_next()).await.is_ok())
    }

    /// Leaves the group (its partitions go to the others at once).
    pub fn close(self) -> Result<()> {
        match &self.mode {
            Mode::Subscribed { membership, .. } => self.coordinator.leave(&self.group, &membership.member_id),
            Mode::Assigned { .. } => Ok(()),
        }
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
