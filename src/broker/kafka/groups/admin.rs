//! ListGroups (key 16) v0-2, DescribeGroups (15) v0-4, DeleteGroups (42) v0-1.

use super::coordinator;
use crate::broker::kafka::wire::{Reader, Result, Writer};
use crate::broker::kafka::{blocking, code, Context};
use crate::groups::classic::{ClassicGroupDescription, ClassicState};

/// DescribeGroups v3+ `authorized_operations` when they were not asked for (Kafka's value).
const AUTHORIZED_OPERATIONS_OMITTED: i32 = i32::MIN;

pub(super) fn list_groups(ctx: &Context, v: i16, _r: &mut Reader) -> Result<Writer> {
    let (error, groups) = match coordinator(ctx) {
        Ok(c) => (code::NONE, c.classic_list()),
        Err(e) => (e, Vec::new()),
    };
    let mut w = Writer::new();
    if v >= 1 {
        w.i32(0);
    }
    w.i16(error).array_len(groups.len());
    for g in &groups {
        w.string(&g.group).string(&g.protocol_type);
    }
    Ok(w)
}

#[derive(Debug, PartialEq, Eq)]
pub(super) struct DescribeGroupsRequest {
    pub groups: Vec<String>,
    pub include_authorized_operations: bool,
}

impl DescribeGroupsRequest {
    pub fn decode(v: i16, r: &mut Reader) -> Result<Self> {
        let n = r.array_len("groups", 2)?;
        let mut groups = Vec::with_capacity(n);
        for _ in 0..n {
            groups.push(r.string("groups")?);
        }
        let include_authorized_operations = if v >= 3 { r.bool("include_authorized_operations")? } else { false };
        Ok(DescribeGroupsRequest { groups, include_authorized_operations })
    }
}

pub(super) fn encode_describe(v: i16, groups: &[(i16, ClassicGroupDescription)]) -> Writer {
    let mut w = Writer::new();
    if v >= 1 {
        w.i32(0);
    }
    w.array_len(groups.len());
    for (error, d) in groups {
        w.i16(*error).string(&d.group).string(d.state.as_str()).string(&d.protocol_type).string(&d.protocol);
        w.array_len(d.members.len());
        for m in &d.members {
            w.string(&m.member_id);
            if v >= 4 {
                w.nullable_string(m.group_instance_id.as_deref());
            }
            w.string(&m.client_id).string(&m.client_host).bytes(&m.metadata).bytes(&m.assignment);
        }
        if v >= 3 {
            w.i32(AUTHORIZED_OPERATIONS_OMITTED);
        }
    }
    w
}

pub(super) fn describe_groups(ctx: &Context, v: i16, r: &mut Reader) -> Result<Writer> {
    let req = DescribeGroupsRequest::decode(v, r)?;
    let c = coordinator(ctx);
    let groups: Vec<(i16, ClassicGroupDescription)> = req
        .groups
        .iter()
        .map(|g| {
            let failed = |e| {
                (
                    e,
                    ClassicGroupDescription {
                        group: g.clone(),
                        state: ClassicState::Dead,
                        protocol_type: String::new(),
                        protocol: String::new(),
                        members: Vec::new(),
                    },
                )
            };
            match &c {
                Ok(c) => match c.classic_describe(g) {
                    Ok(d) => (code::NONE, d),
                    Err(e) => failed(e.code()),
                },
                Err(e) => failed(*e),
            }
        })
        .collect();
    Ok(encode_describe(v, &groups))
}

pub(super) fn decode_delete(r: &mut Reader) -> Result<Vec<String>> {
    let n = r.array_len("groups_names", 2)?;
    let mut groups = Vec::with_capacity(n);
    for _ in 0..n {
        groups.push(r.string("groups_names")?);
    }
    Ok(groups)
}

pub(super) async fn delete_groups(ctx: &Context, _v: i16, r: &mut Reader) -> Result<Writer> {
    let groups = decode_delete(r)?;
    let results: Vec<(String, i16)> = match coordinator(ctx) {
        Ok(c) => {
            let names = groups.clone();
            let codes = blocking(move || {
                names.iter().map(|g| c.classic_delete(g).err().map_or(code::NONE, |e| e.code())).collect::<Vec<_>>()
            })
            .await;
            groups.into_iter().zip(codes).collect()
        }
        Err(e) => groups.into_iter().map(|g| (g, e)).collect(),
    };
    let mut w = Writer::new();
    w.i32(0).array_len(results.len());
    for (g, e) in &results {
        w.string(g).i16(*e);
    }
    Ok(w)
}
