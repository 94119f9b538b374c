//! Maintenance routes (our extensions): run retention or compaction of a topic now and report
//! what they did. The work runs on the blocking pool.

use axum::extract::State;
use axum::response::Response;

use super::content::PathParams;
use super::errors::ApiError;
use super::topics::{blocking, ok};
use super::AppState;

/// `POST /topics/{t}/retention` → the retention report (segments and bytes removed per partition).
pub async fn retention(
    State(state): State<AppState>,
    PathParams(topic): PathParams<String>,
) -> Result<Response, ApiError> {
    let store = state.store().clone();
    let report = blocking(move || Ok(store.enforce_retention(&topic)?)).await?;
    Ok(ok(&report))
}

/// `POST /topics/{t}/compaction` → the compaction report (bytes before/after, records removed).
pub async fn compaction(
    State(state): State<AppState>,
    PathParams(topic): PathParams<String>,
) -> Result<Response, ApiError> {
    let store = state.store().clone();
    let report = blocking(move || Ok(store.compact(&topic)?)).await?;
    Ok(ok(&report))
}
