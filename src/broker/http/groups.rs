//! Group routes (our extensions) over the [`GroupCoordinator`](crate::groups::GroupCoordinator):
//! list, describe with lag, reset offsets (a plan, applied unless `dry_run`), delete.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::content::{parse_body, PathParams};
use super::errors::{code, ApiError};
use super::topics::{blocking, ok};
use super::AppState;
use crate::groups::{ResetRequest, ResetStrategy};

pub async fn list(State(state): State<AppState>) -> Response {
    ok(&state.consumers().coordinator().list())
}

pub async fn describe(
    State(state): State<AppState>,
    PathParams(group): PathParams<String>,
) -> Result<Response, ApiError> {
    let c = state.consumers().coordinator().clone();
    let d = blocking(move || Ok(c.describe(&group)?)).await?;
    Ok(ok(&d))
}

pub async fn delete(
    State(state): State<AppState>,
    PathParams(group): PathParams<String>,
) -> Result<Response, ApiError> {
    let c = state.consumers().coordinator().clone();
    blocking(move || Ok(c.delete(&group)?)).await?;
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
struct ResetBody {
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

/// `POST /groups/{g}/reset-offsets` → the plan (`entries`, `executed`).
pub async fn reset_offsets(
    State(state): State<AppState>,
    PathParams(group): PathParams<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let req: ResetBody = parse_body(&body)?;
    if req.partitions.as_ref().is_some_and(|p| p.is_empty()) {
        return Err(ApiError::invalid(
            code::INVALID_REQUEST,
            "field partitions: an empty list resets nothing; leave it out to reset every partition",
        ));
    }
    let value =
        || req.value.ok_or_else(|| ApiError::invalid(code::INVALID_REQUEST, "field value: required by this strategy"));
    let non_negative = |v: i64| {
        u64::try_from(v)
            .map_err(|_| ApiError::invalid(code::INVALID_REQUEST, format!("field value: {v} must not be negative")))
    };
    let strategy = match req.strategy {
        Strategy::ToEarliest => ResetStrategy::ToEarliest,
        Strategy::ToLatest => ResetStrategy::ToLatest,
        Strategy::ToOffset => ResetStrategy::ToOffset(non_negative(value()?)?),
        Strategy::ToTimestamp => ResetStrategy::ToTimestamp(value()?),
        Strategy::ByDuration => ResetStrategy::ByDuration(non_negative(value()?)?),
        Strategy::ShiftBy => ResetStrategy::ShiftBy(value()?),
    };
    let request = ResetRequest {
        topic: Some(req.topic),
        partitions: req.partitions,
        strategy,
        execute: !req.dry_run,
        force: req.force,
    };
    let c = state.consumers().coordinator().clone();
    let plan = blocking(move || Ok(c.reset_offsets(&group, request)?)).await?;
    Ok(ok(&plan))
}
