//! The consumer-group APIs (FindCoordinator, JoinGroup, SyncGroup, Heartbeat, LeaveGroup,
//! OffsetCommit, OffsetFetch, ListGroups, DescribeGroups, DeleteGroups).
//!
//! The dispatcher ([`super::dispatch`]) routes every api key listed in [`SUPPORTED`] that is not
//! one of its own here, after checking the version is inside the advertised range and decoding
//! the request header. [`handle`] reads the request body from `body` (bounded: see
//! [`super::wire::Reader`]) and returns the response body; the dispatcher frames it (size,
//! correlation id, the header's tag section for flexible versions). An `Err` closes the
//! connection, as Kafka does with a request it cannot parse.

use super::header::RequestHeader;
use super::wire::{self, Reader, Writer};
use super::Context;

/// The group APIs served, as `(api key, min version, max version)`; ApiVersions advertises them.
pub(crate) const SUPPORTED: &[(i16, i16, i16)] = &[];

/// Answers one group request whose version is inside [`SUPPORTED`]'s range.
pub(crate) async fn handle(_ctx: &Context, header: &RequestHeader, _body: &mut Reader) -> wire::Result<Writer> {
    Err(wire::Error::Invalid { field: "request_api_key", reason: format!("api key {} is not served", header.api_key) })
}
