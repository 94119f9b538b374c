//! Maintenance routes (our extensions): run retention or compaction of a topic now and report
//! what they did. The work runs on the blocking pool.

use axum::extract::State;
use axum::response::Response;

use super::content::PathParams;
use super::errors::{unless_deleted, ApiError};
use super::topics::{blocking, ok};
use super::AppState;

/// `POST /topics/{t}/retention` → the retention report (segments and bytes removed per partition).
pub async fn retention(
    State(state): State<AppState>,
    PathParams(topic): PathParams<String>,
) -> Result<Response, ApiError> {
    let store = state.store().clone();
    let report = blocking(move || {
        let before = store.topic(&topic)?;
        store.enforce_retention(&topic).map_err(|e| unless_deleted(e, &topic, deleted(&before)).into())
    })
    .await?;
    Ok(ok(&report))
}

/// `POST /topics/{t}/compaction` → the compaction report (bytes before/after, records removed).
pub async fn compaction(
    State(state): State<AppState>,
    PathParams(topic): PathParams<String>,
) -> Result<Response, ApiError> {
    let store = state.store().clone();
    let report = blocking(move || {
        let before = store.topic(&topic)?;
        store.compact(&topic).map_err(|e| unless_deleted(e, &topic, deleted(&before)).into())
    })
    .await?;
    Ok(ok(&report))
}

/// The topic of this handle was deleted (maybe created again since).
fn deleted(topic: &crate::Topic) -> bool {
    topic.partitions().iter().any(|p| p.is_deleted())
}
