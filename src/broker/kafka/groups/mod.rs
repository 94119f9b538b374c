//! The consumer-group APIs (FindCoordinator, JoinGroup, SyncGroup, Heartbeat, LeaveGroup,
//! OffsetCommit, OffsetFetch, ListGroups, DescribeGroups, DeleteGroups): decoders of their
//! requests and encoders of their responses (non-flexible versions only), and handlers that
//! translate to the store's [`GroupCoordinator`] (its classic-protocol calls; the group logic is
//! there, in `groups::classic`).
//!
//! The dispatcher ([`super::dispatch`]) routes every api key listed in [`SUPPORTED`] that is not
//! one of its own here, after checking the version is inside the advertised range and decoding
//! the request header. [`handle`] reads the request body from `body` (bounded: see
//! [`super::wire::Reader`]) and returns the response body. An `Err` closes the connection, as
//! Kafka does with a request it cannot parse. A connection's requests are answered in order, so
//! a parked JoinGroup or SyncGroup holds its connection until the rebalance completes, as in Kafka.
//!
//! - `membership`: FindCoordinator, JoinGroup, SyncGroup, Heartbeat, LeaveGroup.
//! - `offsets`: OffsetCommit, OffsetFetch.
//! - `admin`: ListGroups, DescribeGroups, DeleteGroups.

mod admin;
mod membership;
mod offsets;

#[cfg(test)]
mod tests;

use super::header::{key, RequestHeader};
use super::wire::{self, Reader, Writer};
use super::Context;
use crate::groups::GroupCoordinator;

/// The group APIs served, as `(api key, min version, max version)`; ApiVersions advertises them.
/// Only non-flexible versions: enough for every client kappalog is tested with (each takes the
/// lower of its maximum and ours).
pub(crate) const SUPPORTED: &[(i16, i16, i16)] = &[
    (key::OFFSET_COMMIT, 2, 7),
    (key::OFFSET_FETCH, 1, 5),
    (key::FIND_COORDINATOR, 0, 2),
    (key::JOIN_GROUP, 0, 5),
    (key::HEARTBEAT, 0, 3),
    (key::LEAVE_GROUP, 0, 3),
    (key::SYNC_GROUP, 0, 3),
    (key::DESCRIBE_GROUPS, 0, 4),
    (key::LIST_GROUPS, 0, 2),
    (key::DELETE_GROUPS, 0, 1),
];

/// Kafka's COORDINATOR_NOT_AVAILABLE: the offsets topic cannot be opened, or the broker is stopping.
pub(crate) const COORDINATOR_NOT_AVAILABLE: i16 = 15;

/// Answers one group request whose version is inside [`SUPPORTED`]'s range.
pub(crate) async fn handle(ctx: &Context, header: &RequestHeader, body: &mut Reader) -> wire::Result<Writer> {
    let v = header.api_version;
    match header.api_key {
        key::FIND_COORDINATOR => membership::find_coordinator(ctx, v, body),
        key::JOIN_GROUP => membership::join_group(ctx, header, body).await,
        key::SYNC_GROUP => membership::sync_group(ctx, v, body).await,
        key::HEARTBEAT => membership::heartbeat(ctx, v, body),
        key::LEAVE_GROUP => membership::leave_group(ctx, v, body),
        key::OFFSET_COMMIT => offsets::offset_commit(ctx, v, body).await,
        key::OFFSET_FETCH => offsets::offset_fetch(ctx, v, body),
        key::LIST_GROUPS => admin::list_groups(ctx, v, body),
        key::DESCRIBE_GROUPS => admin::describe_groups(ctx, v, body),
        key::DELETE_GROUPS => admin::delete_groups(ctx, v, body).await,
        other => {
            Err(wire::Error::Invalid { field: "request_api_key", reason: format!("api key {other} is not served") })
        }
    }
}

/// The store's coordinator, or the Kafka error to answer with when it cannot be opened.
fn coordinator(ctx: &Context) -> Result<GroupCoordinator, i16> {
    ctx.store.groups().map_err(|e| {
        tracing::error!(error = %e, "the group coordinator cannot be opened");
        COORDINATOR_NOT_AVAILABLE
    })
}

/// The code of an optional classic error (0 for none).
fn code_of(e: Option<crate::groups::classic::ClassicError>) -> i16 {
    e.map_or(0, |e| e.code())
}
