//! Request headers and response framing.
//!
//! A request is `size: int32` then the header: `api_key: int16, api_version: int16,
//! correlation_id: int32, client_id: nullable STRING` (header v1), followed by a tagged-field
//! section when the API's version is flexible (header v2, KIP-482). A response is `size: int32,
//! correlation_id: int32`, plus an empty tagged-field section for flexible versions, except
//! ApiVersions, whose response header is always v0.

use bytes::Bytes;

use super::wire::{Reader, Result, Writer};

/// Api keys by name.
pub mod key {
    pub const PRODUCE: i16 = 0;
    pub const FETCH: i16 = 1;
    pub const LIST_OFFSETS: i16 = 2;
    pub const METADATA: i16 = 3;
    pub const OFFSET_COMMIT: i16 = 8;
    pub const OFFSET_FETCH: i16 = 9;
    pub const FIND_COORDINATOR: i16 = 10;
    pub const JOIN_GROUP: i16 = 11;
    pub const HEARTBEAT: i16 = 12;
    pub const LEAVE_GROUP: i16 = 13;
    pub const SYNC_GROUP: i16 = 14;
    pub const DESCRIBE_GROUPS: i16 = 15;
    pub const LIST_GROUPS: i16 = 16;
    pub const API_VERSIONS: i16 = 18;
    pub const CREATE_TOPICS: i16 = 19;
    pub const DELETE_TOPICS: i16 = 20;
    pub const DELETE_RECORDS: i16 = 21;
    pub const INIT_PRODUCER_ID: i16 = 22;
    pub const DESCRIBE_CONFIGS: i16 = 32;
    pub const DELETE_GROUPS: i16 = 42;
    pub const INCREMENTAL_ALTER_CONFIGS: i16 = 44;
}

/// The first flexible version of each API kappalog knows (Kafka's `flexibleVersions`).
pub fn flexible_from(api_key: i16) -> Option<i16> {
    use key::*;
    Some(match api_key {
        PRODUCE => 9,
        FETCH => 12,
        LIST_OFFSETS => 6,
        METADATA => 9,
        OFFSET_COMMIT => 8,
        OFFSET_FETCH => 6,
        FIND_COORDINATOR => 3,
        JOIN_GROUP => 6,
        HEARTBEAT => 4,
        LEAVE_GROUP => 4,
        SYNC_GROUP => 4,
        DESCRIBE_GROUPS => 5,
        LIST_GROUPS => 3,
        API_VERSIONS => 3,
        CREATE_TOPICS => 5,
        DELETE_TOPICS => 4,
        DELETE_RECORDS => 2,
        INIT_PRODUCER_ID => 2,
        DESCRIBE_CONFIGS => 4,
        DELETE_GROUPS => 2,
        INCREMENTAL_ALTER_CONFIGS => 1,
        _ => return None,
    })
}

/// The API name for logs and metrics.
pub fn api_name(api_key: i16) -> &'static str {
    use key::*;
    match api_key {
        PRODUCE => "Produce",
        FETCH => "Fetch",
        LIST_OFFSETS => "ListOffsets",
        METADATA => "Metadata",
        OFFSET_COMMIT => "OffsetCommit",
        OFFSET_FETCH => "OffsetFetch",
        FIND_COORDINATOR => "FindCoordinator",
        JOIN_GROUP => "JoinGroup",
        HEARTBEAT => "Heartbeat",
        LEAVE_GROUP => "LeaveGroup",
        SYNC_GROUP => "SyncGroup",
        DESCRIBE_GROUPS => "DescribeGroups",
        LIST_GROUPS => "ListGroups",
        API_VERSIONS => "ApiVersions",
        CREATE_TOPICS => "CreateTopics",
        DELETE_TOPICS => "DeleteTopics",
        DELETE_RECORDS => "DeleteRecords",
        INIT_PRODUCER_ID => "InitProducerId",
        DESCRIBE_CONFIGS => "DescribeConfigs",
        DELETE_GROUPS => "DeleteGroups",
        INCREMENTAL_ALTER_CONFIGS => "IncrementalAlterConfigs",
        _ => "unknown",
    }
}

/// A decoded request header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHeader {
    pub api_key: i16,
    pub api_version: i16,
    pub correlation_id: i32,
    pub client_id: Option<String>,
}

impl RequestHeader {
    /// Whether this request's body (and its header) use the flexible encoding.
    pub fn flexible(&self) -> bool {
        flexible_from(self.api_key).is_some_and(|v| self.api_version >= v)
    }

    /// Reads the fixed part (key, version, correlation id); the client id and tags follow.
    pub fn read_fixed(r: &mut Reader) -> Result<(i16, i16, i32)> {
        Ok((r.i16("request_api_key")?, r.i16("request_api_version")?, r.i32("correlation_id")?))
    }

    /// Reads the rest of the header after [`read_fixed`](Self::read_fixed).
    pub fn read_rest(r: &mut Reader, (api_key, api_version, correlation_id): (i16, i16, i32)) -> Result<RequestHeader> {
        let client_id = r.nullable_string("client_id")?;
        let h = RequestHeader { api_key, api_version, correlation_id, client_id };
        if h.flexible() {
            r.skip_tagged_fields("request header tagged fields")?;
        }
        Ok(h)
    }

    /// Reads a whole header.
    pub fn read(r: &mut Reader) -> Result<RequestHeader> {
        let fixed = Self::read_fixed(r)?;
        Self::read_rest(r, fixed)
    }
}

/// Frames a response body: `size`, the correlation id, and the header's tag section when the
/// response header is v1.
pub fn frame(header: &RequestHeader, body: Writer) -> Vec<Bytes> {
    let tagged = header.flexible() && header.api_key != key::API_VERSIONS;
    let mut head = Writer::new();
    let size = body.len() + 4 + usize::from(tagged);
    head.i32(size as i32).i32(header.correlation_id);
    if tagged {
        head.no_tagged_fields();
    }
    let mut out = head.finish();
    out.extend(body.finish());
    out
}
