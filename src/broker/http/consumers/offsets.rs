//! An instance's offsets: commits (Confluent v2: the offset given is the last record processed),
//! the committed offsets, and seeks of its positions.

use axum::body::Bytes;
use axum::extract::State;
use axum::response::Response;
use serde::Deserialize;
use serde_json::{json, Value};

use super::super::content::{parse_body, parse_body_or_default, PathParams};
use super::super::errors::ApiError;
use super::super::topics::ok;
use super::super::AppState;
use super::handlers::{no_content, InstancePath, PartitionsRequest};
use super::instance::{illegal, invalid};
use super::registry::on_instance;
use crate::groups::TopicPartition;

#[derive(Debug, Deserialize)]
struct OffsetIn {
    topic: String,
    partition: u32,
    offset: u64,
    #[serde(default)]
    metadata: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct OffsetsRequest {
    #[serde(default, alias = "partitions")]
    offsets: Vec<OffsetIn>,
}

/// `POST …/offsets`: commits `offset + 1` for each entry (Confluent v2: the offset given is the
/// last record processed); an empty body commits everything fetched so far.
pub async fn commit(
    State(state): State<AppState>,
    PathParams((group, id)): InstancePath,
    body: Bytes,
) -> Result<Response, ApiError> {
    let req: OffsetsRequest = parse_body_or_default(&body)?;
    let mut list = Vec::with_capacity(req.offsets.len());
    for o in req.offsets {
        let next = o.offset.checked_add(1).ok_or_else(|| invalid(format!("offset {} is too large", o.offset)))?;
        list.push((TopicPartition::new(o.topic, o.partition), next, o.metadata));
    }
    on_instance(&state, &group, &id, move |_, inst| {
        if list.is_empty() {
            Ok(inst.consumer.commit_fetched()?)
        } else {
            Ok(inst.consumer.commit_offsets(&list)?)
        }
    })
    .await?;
    Ok(no_content())
}

/// `GET …/offsets` (body `{"partitions": [...]}` optional): the committed offsets.
pub async fn committed(
    State(state): State<AppState>,
    PathParams((group, id)): InstancePath,
    body: Bytes,
) -> Result<Response, ApiError> {
    let req: PartitionsRequest = parse_body_or_default(&body)?;
    let offsets = on_instance(&state, &group, &id, move |reg, inst| {
        let list = if req.partitions.is_empty() { inst.consumer.assigned() } else { req.partitions };
        let group = inst.consumer.group();
        Ok(list
            .into_iter()
            .filter_map(|tp| {
                reg.coordinator().committed(group, &tp).map(|c| {
                    json!({"topic": tp.topic, "partition": tp.partition, "offset": c.offset,
                           "metadata": c.metadata.unwrap_or_default()})
                })
            })
            .collect::<Vec<Value>>())
    })
    .await?;
    Ok(ok(&json!({"offsets": offsets})))
}

/// `POST …/positions`: the next fetch of each partition starts at the given offset.
pub async fn seek(
    State(state): State<AppState>,
    PathParams((group, id)): InstancePath,
    body: Bytes,
) -> Result<Response, ApiError> {
    let req: OffsetsRequest = parse_body(&body)?;
    let mut list = Vec::new();
    for o in req.offsets {
        let p = state.store().topic(&o.topic)?.partition(o.partition)?;
        let (start, end) = (p.log_start_offset(), p.high_watermark());
        if !(start..=end).contains(&o.offset) {
            return Err(invalid(format!(
                "offset {} of {}-{} is outside {start}..={end}",
                o.offset, o.topic, o.partition
            )));
        }
        list.push((TopicPartition::new(o.topic, o.partition), o.offset));
    }
    set_positions(&state, &group, &id, list).await
}

async fn set_positions(
    state: &AppState,
    group: &str,
    id: &str,
    list: Vec<(TopicPartition, u64)>,
) -> Result<Response, ApiError> {
    on_instance(state, group, id, move |reg, inst| {
        inst.sync(reg.store())?;
        let assigned = inst.consumer.assigned();
        for (tp, offset) in list {
            if !assigned.contains(&tp) {
                return Err(illegal(format!("partition {tp} is not assigned to this consumer instance")));
            }
            inst.consumer.seek(&tp, offset)?;
        }
        Ok(())
    })
    .await?;
    Ok(no_content())
}

async fn seek_edge(state: AppState, group: String, id: String, body: Bytes, end: bool) -> Result<Response, ApiError> {
    let req: PartitionsRequest = parse_body(&body)?;
    let mut list = Vec::new();
    for tp in req.partitions {
        let p = state.store().topic(&tp.topic)?.partition(tp.partition)?;
        let o = if end { p.high_watermark() } else { p.log_start_offset() };
        list.push((tp, o));
    }
    set_positions(&state, &group, &id, list).await
}

pub async fn seek_beginning(
    State(state): State<AppState>,
    PathParams((group, id)): InstancePath,
    body: Bytes,
) -> Result<Response, ApiError> {
    seek_edge(state, group, id, body, false).await
}

pub async fn seek_end(
    State(state): State<AppState>,
    PathParams((group, id)): InstancePath,
    body: Bytes,
) -> Result<Response, ApiError> {
    seek_edge(state, group, id, body, true).await
}
