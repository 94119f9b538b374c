//! FindCoordinator (key 10) v0-2, JoinGroup (11) v0-5, SyncGroup (14) v0-3, Heartbeat (12) v0-3,
//! LeaveGroup (13) v0-3: wire formats and their translation to the coordinator.

use bytes::Bytes;

use super::{code_of, coordinator};
use crate::broker::kafka::header::RequestHeader;
use crate::broker::kafka::wire::{Reader, Result, Writer};
use crate::broker::kafka::{code, Context, NODE_ID};
use crate::groups::classic::{ClassicJoin, ClassicJoinResponse, ClassicSync, ClassicSyncResponse};

/// Smallest encoding of a STRING (its length).
const STRING_MIN: usize = 2;
/// Smallest encoding of a BYTES (its length).
const BYTES_MIN: usize = 4;

#[derive(Debug, PartialEq, Eq)]
pub(super) struct FindCoordinatorRequest {
    pub key: String,
    pub key_type: i8,
}

impl FindCoordinatorRequest {
    pub fn decode(v: i16, r: &mut Reader) -> Result<Self> {
        let key = r.string("key")?;
        let key_type = if v >= 1 { r.i8("key_type")? } else { 0 };
        Ok(FindCoordinatorRequest { key, key_type })
    }
}

pub(super) fn find_coordinator(ctx: &Context, v: i16, r: &mut Reader) -> Result<Writer> {
    let req = FindCoordinatorRequest::decode(v, r)?;
    // Only groups have a coordinator here: transactions are not supported.
    let (error, message) = match req.key_type {
        0 => (code::NONE, None),
        t => (code::INVALID_REQUEST, Some(format!("coordinator key type {t}: only groups (0) are supported"))),
    };
    let mut w = Writer::new();
    if v >= 1 {
        w.i32(0);
    }
    w.i16(error);
    if v >= 1 {
        w.nullable_string(message.as_deref());
    }
    let (node, host, port) =
        if error == code::NONE { (NODE_ID, &*ctx.advertised_host, ctx.advertised_port) } else { (-1, "", -1) };
    w.i32(node).string(host).i32(port);
    Ok(w)
}

#[derive(Debug, PartialEq, Eq)]
pub(super) struct JoinGroupRequest {
    pub group_id: String,
    pub session_timeout_ms: i32,
    /// -1 in v0 (which has none).
    pub rebalance_timeout_ms: i32,
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub protocol_type: String,
    pub protocols: Vec<(String, Bytes)>,
}

impl JoinGroupRequest {
    pub fn decode(v: i16, r: &mut Reader) -> Result<Self> {
        let group_id = r.string("group_id")?;
        let session_timeout_ms = r.i32("session_timeout_ms")?;
        let rebalance_timeout_ms = if v >= 1 { r.i32("rebalance_timeout_ms")? } else { -1 };
        let member_id = r.string("member_id")?;
        let group_instance_id = if v >= 5 { r.nullable_string("group_instance_id")? } else { None };
        let protocol_type = r.string("protocol_type")?;
        let n = r.array_len("protocols", STRING_MIN + BYTES_MIN)?;
        let mut protocols = Vec::with_capacity(n);
        for _ in 0..n {
            protocols.push((r.string("protocols.name")?, r.bytes("protocols.metadata")?));
        }
        Ok(JoinGroupRequest {
            group_id,
            session_timeout_ms,
            rebalance_timeout_ms,
            member_id,
            group_instance_id,
            protocol_type,
            protocols,
        })
    }
}

pub(super) fn encode_join(v: i16, resp: &ClassicJoinResponse) -> Writer {
    let mut w = Writer::new();
    if v >= 2 {
        w.i32(0);
    }
    w.i16(code_of(resp.error))
        .i32(resp.generation)
        .string(resp.protocol_name.as_deref().unwrap_or(""))
        .string(&resp.leader)
        .string(&resp.member_id)
        .array_len(resp.members.len());
    for m in &resp.members {
        w.string(&m.member_id);
        if v >= 5 {
            w.nullable_string(m.group_instance_id.as_deref());
        }
        w.bytes(&m.metadata);
    }
    w
}

pub(super) async fn join_group(ctx: &Context, h: &RequestHeader, r: &mut Reader) -> Result<Writer> {
    let v = h.api_version;
    let req = JoinGroupRequest::decode(v, r)?;
    let c = match coordinator(ctx) {
        Ok(c) => c,
        Err(_) => return Ok(encode_join(v, &ClassicJoinResponse::error(&req.member_id, unavailable()))),
    };
    let member_id = req.member_id.clone();
    let join = ClassicJoin {
        member_id: req.member_id,
        group_instance_id: req.group_instance_id,
        client_id: h.client_id.clone().unwrap_or_default(),
        // As Kafka reports it: the client's address after a slash.
        client_host: ctx.peer.map_or_else(String::new, |ip| format!("/{ip}")),
        session_timeout_ms: req.session_timeout_ms,
        rebalance_timeout_ms: if v == 0 { req.session_timeout_ms } else { req.rebalance_timeout_ms },
        protocol_type: req.protocol_type,
        protocols: req.protocols,
        require_known_member_id: v >= 4,
    };
    let mut stop = ctx.stop.clone();
    // The request first: at shutdown an answer that is ready is still given; a parked one ends.
    let resp = tokio::select! {
        biased;
        resp = c.classic_join(&req.group_id, join) => resp,
        _ = stop.wait_for(|s| *s) => ClassicJoinResponse::error(&member_id, unavailable()),
    };
    Ok(encode_join(v, &resp))
}

/// The broker is stopping or its coordinator cannot open: clients look for the coordinator again.
fn unavailable() -> crate::groups::classic::ClassicError {
    crate::groups::classic::ClassicError::CoordinatorNotAvailable
}

#[derive(Debug, PartialEq, Eq)]
pub(super) struct SyncGroupRequest {
    pub group_id: String,
    pub generation_id: i32,
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub assignments: Vec<(String, Bytes)>,
}

impl SyncGroupRequest {
    pub fn decode(v: i16, r: &mut Reader) -> Result<Self> {
        let group_id = r.string("group_id")?;
        let generation_id = r.i32("generation_id")?;
        let member_id = r.string("member_id")?;
        let group_instance_id = if v >= 3 { r.nullable_string("group_instance_id")? } else { None };
        let n = r.array_len("assignments", STRING_MIN + BYTES_MIN)?;
        let mut assignments = Vec::with_capacity(n);
        for _ in 0..n {
            assignments.push((r.string("assignments.member_id")?, r.bytes("assignments.assignment")?));
        }
        Ok(SyncGroupRequest { group_id, generation_id, member_id, group_instance_id, assignments })
    }
}

pub(super) fn encode_sync(v: i16, resp: &ClassicSyncResponse) -> Writer {
    let mut w = Writer::new();
    if v >= 1 {
        w.i32(0);
    }
    w.i16(code_of(resp.error)).bytes(&resp.assignment);
    w
}

pub(super) async fn sync_group(ctx: &Context, v: i16, r: &mut Reader) -> Result<Writer> {
    let req = SyncGroupRequest::decode(v, r)?;
    let Ok(c) = coordinator(ctx) else {
        return Ok(encode_sync(v, &ClassicSyncResponse::error(unavailable())));
    };
    let sync = ClassicSync {
        member_id: req.member_id,
        generation: req.generation_id,
        group_instance_id: req.group_instance_id,
        protocol_type: None,
        protocol_name: None,
        assignments: req.assignments,
    };
    let mut stop = ctx.stop.clone();
    // The request first: at shutdown an answer that is ready is still given; a parked one ends.
    let resp = tokio::select! {
        biased;
        resp = c.classic_sync(&req.group_id, sync) => resp,
        _ = stop.wait_for(|s| *s) => ClassicSyncResponse::error(unavailable()),
    };
    Ok(encode_sync(v, &resp))
}

#[derive(Debug, PartialEq, Eq)]
pub(super) struct HeartbeatRequest {
    pub group_id: String,
    pub generation_id: i32,
    pub member_id: String,
    pub group_instance_id: Option<String>,
}

impl HeartbeatRequest {
    pub fn decode(v: i16, r: &mut Reader) -> Result<Self> {
        Ok(HeartbeatRequest {
            group_id: r.string("group_id")?,
            generation_id: r.i32("generation_id")?,
            member_id: r.string("member_id")?,
            group_instance_id: if v >= 3 { r.nullable_string("group_instance_id")? } else { None },
        })
    }
}

/// A response of a throttle time (v1+) and one error code: Heartbeat and LeaveGroup v0-2.
fn error_only(v: i16, error: i16) -> Writer {
    let mut w = Writer::new();
    if v >= 1 {
        w.i32(0);
    }
    w.i16(error);
    w
}

pub(super) fn heartbeat(ctx: &Context, v: i16, r: &mut Reader) -> Result<Writer> {
    let req = HeartbeatRequest::decode(v, r)?;
    let error = match coordinator(ctx) {
        Ok(c) => code_of(c.classic_heartbeat(&req.group_id, &req.member_id, req.generation_id).err()),
        Err(e) => e,
    };
    Ok(error_only(v, error))
}

#[derive(Debug, PartialEq, Eq)]
pub(super) struct LeaveGroupRequest {
    pub group_id: String,
    /// (member id, group instance id): one without an instance id before v3.
    pub members: Vec<(String, Option<String>)>,
}

impl LeaveGroupRequest {
    pub fn decode(v: i16, r: &mut Reader) -> Result<Self> {
        let group_id = r.string("group_id")?;
        let members = if v >= 3 {
            let n = r.array_len("members", STRING_MIN * 2)?;
            let mut members = Vec::with_capacity(n);
            for _ in 0..n {
                members.push((r.string("members.member_id")?, r.nullable_string("members.group_instance_id")?));
            }
            members
        } else {
            vec![(r.string("member_id")?, None)]
        };
        Ok(LeaveGroupRequest { group_id, members })
    }
}

pub(super) fn leave_group(ctx: &Context, v: i16, r: &mut Reader) -> Result<Writer> {
    let req = LeaveGroupRequest::decode(v, r)?;
    let ids = &req.members;
    let (top, each) = match coordinator(ctx).map(|c| c.classic_leave(&req.group_id, ids)) {
        Ok(Ok(each)) => (code::NONE, each.into_iter().map(code_of).collect::<Vec<_>>()),
        Ok(Err(e)) => (e.code(), vec![e.code(); ids.len()]),
        Err(e) => (e, vec![e; ids.len()]),
    };
    if v < 3 {
        // One member: its answer is the response's.
        return Ok(error_only(v, if top != code::NONE { top } else { each.first().copied().unwrap_or(code::NONE) }));
    }
    let mut w = Writer::new();
    w.i32(0).i16(top).array_len(req.members.len());
    for ((id, instance), error) in req.members.iter().zip(each) {
        w.string(id).nullable_string(instance.as_deref()).i16(error);
    }
    Ok(w)
}
