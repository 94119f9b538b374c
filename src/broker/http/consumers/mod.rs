//! Consumer instances (REST Proxy v2): per-instance sessions over consumer groups. An instance
//! has a format, a subscription (topics or a pattern) or a manual assignment, and a
//! [`Consumer`](crate::groups::Consumer) that keeps its membership, positions and commits. A
//! subscribed instance is a member of its group in the
//! [`GroupCoordinator`](crate::groups::GroupCoordinator): the coordinator splits the partitions
//! (generations, no partition readable by two members at once) and keeps committed offsets
//! durably. An instance idle past its `consumer.instance.timeout.ms` (by the store's clock; a
//! request in flight keeps it alive) is removed: it auto-commits, when enabled, and leaves its
//! group.
//!
//! - `instance.rs`: one instance: its settings, its subscription, its consumer.
//! - `registry.rs`: every instance of the broker: creation, lookup, idle expiry, removal.
//! - `handlers.rs`: the routes that create, delete and (un)subscribe instances.
//! - `offsets.rs`: commits, committed offsets and seeks.
//! - `records.rs`: the records fetch, a long-poll.
//!
//! Coordinator calls may fsync (commits), so they run on the blocking pool; each instance has its
//! own lock, held only there, never across a long-poll.

mod handlers;
mod instance;
mod offsets;
mod records;
mod registry;

pub use handlers::{assign, assignments, create, delete, subscribe, subscription, unsubscribe};
pub use offsets::{commit, committed, seek, seek_beginning, seek_end};
pub use records::records;
pub use registry::Registry;

/// Default idle time after which an instance is removed (Confluent's `consumer.instance.timeout.ms`).
pub const CONSUMER_TIMEOUT_MS_DEFAULT: u64 = 300_000;
/// Default long-poll of a records fetch (Confluent's `consumer.request.timeout.ms`).
pub const CONSUMER_REQUEST_TIMEOUT_MS_DEFAULT: u64 = 1000;
/// Most instances in the whole broker.
pub const CONSUMER_INSTANCES_MAX: usize = 10_000;
/// Longest consumer instance name.
pub const CONSUMER_NAME_LEN_MAX: usize = 249;
/// A subscribed instance's group session lasts this much longer than its idle timeout, so that
/// the reaper (every [`CONSUMER_REAP_INTERVAL_MS`](crate::broker::server::CONSUMER_REAP_INTERVAL_MS))
/// removes an idle instance, committing and leaving, before the coordinator would evict it.
pub const CONSUMER_SESSION_MARGIN_MS: u64 = 10_000;
/// A subscribed instance's records fetch that waits looks again at least this often, so that it
/// sees topics created meanwhile (a pattern subscription) and partitions added to its topics.
pub const CONSUMER_METADATA_REFRESH_MS: u64 = 1_000;

const _: () = assert!(CONSUMER_SESSION_MARGIN_MS > 2 * crate::broker::server::CONSUMER_REAP_INTERVAL_MS);
