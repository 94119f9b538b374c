//! [`DataWait`]: what a consumer waits on for records (its readable partitions at their
//! positions, and changes of its group and of itself), apart from the consumer so that it is
//! awaited without holding it.

use std::time::Duration;

use tokio::sync::watch;

use crate::log::Partition;

/// What woke a [`DataWait`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wake {
    /// A readable partition has a record at or after its position.
    Data,
    /// The group or the consumer changed (a rebalance, released partitions, a new subscription, a
    /// seek): refresh and look again.
    Changed,
    Timeout,
}

/// What a consumer waits on for records: its readable partitions at their positions, and changes of
/// its group and of itself. Borrows nothing, so it is awaited without holding the consumer.
#[derive(Debug)]
pub struct DataWait {
    ready: bool,
    partitions: Vec<(Partition, u64)>,
    changes: Vec<watch::Receiver<u64>>,
}

impl DataWait {
    pub(super) fn new(partitions: Vec<(Partition, u64)>, changes: Vec<watch::Receiver<u64>>) -> DataWait {
        // Data past a position, or a position out of range (that a fetch resets).
        let ready = partitions.iter().any(|(p, from)| p.high_watermark() != *from);
        DataWait { ready, partitions, changes }
    }

    /// Whether a readable partition already has a record to fetch (or a position out of range,
    /// which a fetch resets).
    pub fn is_ready(&self) -> bool {
        self.ready
    }

    /// Waits, at most `timeout`, for data or a change. A notification, not a poll.
    pub async fn wait(self, timeout: Duration) -> Wake {
        if self.ready {
            return Wake::Data;
        }
        let mut waits = tokio::task::JoinSet::new();
        for (p, from) in self.partitions {
            waits.spawn(async move {
                p.wait_for_data(from).await;
                Wake::Data
            });
        }
        for mut rx in self.changes {
            // A closed sender (the group deleted) is a change too: the next refresh joins anew.
            waits.spawn(async move {
                let _ = rx.changed().await;
                Wake::Changed
            });
        }
        match tokio::time::timeout(timeout, waits.join_next()).await {
            Ok(Some(Ok(wake))) => wake,
            Ok(Some(Err(_))) => Wake::Changed,
            Ok(None) => {
                tokio::time::sleep(timeout).await;
                Wake::Timeout
            }
            Err(_) => Wake::Timeout,
        }
    }
}
