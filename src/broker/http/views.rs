//! View routes (issue 6) over [`Views`](crate::stream::Views): create, list, status, point and
//! range queries, scans, rebuild, a new definition, delete. Every call into `Views` may touch
//! files or join threads, so it runs on the blocking pool.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::content::{parse_body_or_default, Params, PathParams};
use super::errors::{code, ApiError};
use super::topics::{blocking, ok, reply};
use super::AppState;
use crate::stream::{RebuildFrom, ViewError, ViewSpec, SCAN_LIMIT_MAX};

/// Keys a scan returns when `limit` is not given.
pub const SCAN_LIMIT_DEFAULT: usize = 100;

fn parse_spec(body: &[u8]) -> Result<ViewSpec, ApiError> {
    ViewSpec::from_json(body).map_err(ApiError::from)
}

/// The views whose runner stopped, with why (for `/health`); in-memory only.
pub(crate) fn failed(state: &AppState) -> Vec<(String, String)> {
    let views = state.views();
    views.list().into_iter().filter_map(|n| Some((n.clone(), views.get(&n).ok()?.failure()?))).collect()
}

/// `POST /views`: the body is the spec; 201 with the view's status.
pub async fn create(State(state): State<AppState>, body: Bytes) -> Result<Response, ApiError> {
    let spec = parse_spec(&body)?;
    let views = state.views().clone();
    let status = blocking(move || Ok(views.create(spec)?.status())).await?;
    Ok(reply(StatusCode::CREATED, &status))
}

/// `GET /views`: names.
pub async fn list(State(state): State<AppState>) -> Response {
    ok(&state.views().list())
}

/// `GET /views/{name}`: spec, version, state, lag, watermark, counters, rebuild progress.
pub async fn status(State(state): State<AppState>, PathParams(name): PathParams<String>) -> Result<Response, ApiError> {
    let views = state.views().clone();
    let status = blocking(move || Ok(views.get(&name)?.status())).await?;
    Ok(ok(&status))
}

fn i64_param(params: &Params, name: &str) -> Result<Option<i64>, ApiError> {
    params
        .get(name)
        .map(|s| {
            s.trim().parse::<i64>().map_err(|e| {
                ApiError::bad_request(format!("query parameter {name}={s:?} must be milliseconds since the epoch: {e}"))
            })
        })
        .transpose()
}

/// `GET /views/{name}/keys/{key}?from=&to=`: `{"key","value"}` or `{"key","windows":[…]}` with
/// the windows whose start is in `from..to` (from inclusive, to exclusive; each optional).
pub async fn get_key(
    State(state): State<AppState>,
    PathParams((name, key)): PathParams<(String, String)>,
    params: Params,
) -> Result<Response, ApiError> {
    let (from_ms, to_ms) = (i64_param(&params, "from")?, i64_param(&params, "to")?);
    if let (Some(from), Some(to)) = (from_ms, to_ms) {
        if from > to {
            return Err(ApiError::bad_request(format!(
                "query parameter from={from} must not be greater than to={to} (windows starting in from..to)"
            )));
        }
    }
    let views = state.views().clone();
    let found = blocking(move || {
        let view = views.get(&name)?;
        Ok(view
            .get_range(&key, from_ms, to_ms)
            .ok_or_else(|| ApiError::not_found(code::VIEW_KEY_NOT_FOUND, format!("view {name:?} has no key {key:?}"))))
    })
    .await??;
    Ok(ok(&found))
}

/// `GET /views/{name}/keys?prefix=&limit=`: keys in order, at most `limit`.
pub async fn scan(
    State(state): State<AppState>,
    PathParams(name): PathParams<String>,
    params: Params,
) -> Result<Response, ApiError> {
    let prefix = params.get("prefix").unwrap_or("").to_string();
    let limit = params.u64_or("limit", SCAN_LIMIT_DEFAULT as u64)?;
    if limit == 0 || limit > SCAN_LIMIT_MAX as u64 {
        return Err(ApiError::bad_request(format!("query parameter limit={limit} must be in 1..={SCAN_LIMIT_MAX}")));
    }
    let views = state.views().clone();
    let keys = blocking(move || Ok(views.get(&name)?.scan(&prefix, limit as usize))).await?;
    Ok(ok(&keys))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RebuildBody {
    /// Replay from each partition's first record at or after this (epoch ms); default the beginning.
    #[serde(default)]
    from_timestamp: Option<i64>,
}

/// `POST /views/{name}/rebuild` `{"from_timestamp"?}`: 202; the old version serves until done.
pub async fn rebuild(
    State(state): State<AppState>,
    PathParams(name): PathParams<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let b: RebuildBody = parse_body_or_default(&body)?;
    let from = b.from_timestamp.map_or(RebuildFrom::Beginning, RebuildFrom::Timestamp);
    let views = state.views().clone();
    let status = blocking(move || Ok(views.rebuild(&name, from)?.status())).await?;
    Ok(reply(StatusCode::ACCEPTED, &status))
}

/// `PUT /views/{name}`: a new definition, rebuilt while the old one keeps serving; 202.
pub async fn update(
    State(state): State<AppState>,
    PathParams(name): PathParams<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let spec = parse_spec(&body)?;
    if spec.name != name {
        return Err(ApiError::from(ViewError::InvalidSpec {
            field: "name".into(),
            reason: format!("the spec names {:?} but the path names {name:?}", spec.name),
        }));
    }
    let views = state.views().clone();
    let status = blocking(move || Ok(views.update(spec)?.status())).await?;
    Ok(reply(StatusCode::ACCEPTED, &status))
}

/// `DELETE /views/{name}`: 204.
pub async fn delete(State(state): State<AppState>, PathParams(name): PathParams<String>) -> Result<Response, ApiError> {
    let views = state.views().clone();
    blocking(move || Ok(views.delete(&name)?)).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
