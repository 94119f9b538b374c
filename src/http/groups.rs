//! Group routes (our extensions): list, describe with lag, reset offsets (a plan, applied unless
//! `dry_run`), delete.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::consumers::Tp;
use super::content::{parse_body, PathParams};
use super::errors::{code, ApiError};
use super::topics::{blocking, ok};
use super::AppState;

fn group_names(state: &AppState) -> Vec<String> {
    let mut names: Vec<String> = state.consumers().views().into_keys().collect();
    names.extend(state.consumers().offsets.groups());
    names.sort();
    names.dedup();
    names
}

pub async fn list(State(state): State<AppState>) -> Response {
    ok(&group_names(&state))
}

/// Per-partition committed offset, log end and lag of a group.
#[derive(Debug, Clone, Serialize)]
pub struct PartitionLag {
    pub topic: String,
    pub partition: u32,
    pub committed: Option<u64>,
    pub end: u64,
    pub lag: Option<u64>,
}

pub(crate) fn lags(state: &AppState, group: &str) -> Vec<PartitionLag> {
    let mut tps: Vec<Tp> = state.consumers().offsets.group(group).into_keys().collect();
    if let Some(v) = state.consumers().views().get(group) {
        tps.extend(v.members.iter().flat_map(|m| m.partitions.iter().map(|tp| (tp.topic.clone(), tp.partition))));
    }
    tps.sort();
    tps.dedup();
    tps.into_iter()
        .filter_map(|(topic, partition)| {
            let p = state.store().topic(&topic).ok()?.partition(partition).ok()?;
            let committed = state.consumers().offsets.committed(group, &(topic.clone(), partition));
            let end = p.high_watermark();
            Some(PartitionLag { topic, partition, committed, end, lag: committed.map(|c| end.saturating_sub(c)) })
        })
        .collect()
}

fn group_not_found(group: &str) -> ApiError {
    ApiError::not_found(code::GROUP_NOT_FOUND, format!("consumer group {group:?} not found"))
}

pub async fn describe(
    State(state): State<AppState>,
    PathParams(group): PathParams<String>,
) -> Result<Response, ApiError> {
    if !group_names(&state).contains(&group) {
        return Err(group_not_found(&group));
    }
    let view = state.consumers().views().remove(&group);
    let (generation, members) = view.map_or((0, Vec::new()), |v| (v.generation, v.members));
    let status = if members.is_empty() { "Empty" } else { "Stable" };
    Ok(ok(&json!({
        "group": group,
        "state": status,
        "generation": generation,
        "members": members,
        "partitions": lags(&state, &group),
    })))
}

pub async fn delete(
    State(state): State<AppState>,
    PathParams(group): PathParams<String>,
) -> Result<Response, ApiError> {
    if state.consumers().is_active(&group) {
        return Err(ApiError::conflict(code::ILLEGAL_STATE, format!("group {group:?} has live consumer instances")));
    }
    if !state.consumers().offsets.delete(&group) {
        return Err(group_not_found(&group));
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Strategy {
    ToEarliest,
    ToLatest,
    ToOffset,
    ToTimestamp,
    ByDuration,
    ShiftBy,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ResetRequest {
    topic: String,
    #[serde(default)]
    partitions: Option<Vec<u32>>,
    strategy: Strategy,
    #[serde(default)]
    value: Option<i64>,
    #[serde(default = "yes")]
    dry_run: bool,
    #[serde(default)]
    force: bool,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Serialize)]
struct PlanEntry {
    topic: String,
    partition: u32,
    current: Option<u64>,
    target: u64,
}

pub async fn reset_offsets(
    State(state): State<AppState>,
    PathParams(group): PathParams<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let req: ResetRequest = parse_body(&body)?;
    let need_value =
        || req.value.ok_or_else(|| ApiError::invalid(code::INVALID_REQUEST, "field value: required by this strategy"));
    let t = state.store().topic(&req.topic)?;
    let ids: Vec<u32> = req.partitions.clone().unwrap_or_else(|| (0..t.partition_count()).collect());
    let mut plan = Vec::with_capacity(ids.len());
    for id in ids {
        let p = t.partition(id)?;
        let (start, end) = (p.log_start_offset(), p.high_watermark());
        let current = state.consumers().offsets.committed(&group, &(req.topic.clone(), id));
        let clamp = |o: i128| o.clamp(start as i128, end as i128) as u64;
        let target = match req.strategy {
            Strategy::ToEarliest => start,
            Strategy::ToLatest => end,
            Strategy::ToOffset => clamp(need_value()? as i128),
            Strategy::ShiftBy => clamp(current.unwrap_or(start) as i128 + need_value()? as i128),
            Strategy::ToTimestamp | Strategy::ByDuration => {
                let ts = match req.strategy {
                    Strategy::ToTimestamp => need_value()?,
                    _ => crate::Clock::now_ms(&crate::SystemClock).saturating_sub(need_value()?),
                };
                let p2 = p.clone();
                blocking(move || Ok(p2.offset_for_timestamp(ts)?)).await?.unwrap_or(end)
            }
        };
        plan.push(PlanEntry { topic: req.topic.clone(), partition: id, current, target });
    }
    let applied = !req.dry_run;
    if applied {
        if state.consumers().is_active(&group) && !req.force {
            return Err(ApiError::conflict(
                code::ILLEGAL_STATE,
                format!("group {group:?} has live consumer instances: stop them, or pass \"force\": true"),
            ));
        }
        for e in &plan {
            state.consumers().offsets.set(&group, (e.topic.clone(), e.partition), e.target);
        }
    }
    Ok(ok(&json!({"group": group, "dry_run": req.dry_run, "applied": applied, "plan": plan})))
}
