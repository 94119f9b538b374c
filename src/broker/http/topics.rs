//! Topic routes: list, describe, partitions, offsets; our extensions create, delete, configs.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{json, Value};

use super::content::{parse_body, partition_id, PathParams};
use super::errors::{ApiError, CONTENT_TYPE_V2};
use super::{topic_config, AppState};
use crate::{Topic, TopicConfig};

/// A JSON response with the v2 content type.
pub(crate) fn reply(status: StatusCode, body: &impl serde::Serialize) -> Response {
    let text = serde_json::to_vec(body).expect("response bodies serialize");
    (status, [(axum::http::header::CONTENT_TYPE, CONTENT_TYPE_V2)], text).into_response()
}

pub(crate) fn ok(body: &impl serde::Serialize) -> Response {
    reply(StatusCode::OK, body)
}

/// Runs blocking store work off the async workers.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f).await.map_err(|e| ApiError::internal(format!("a blocking task failed: {e}")))?
}

/// Internal topics (the group coordinator's `__consumer_offsets`) are read-only over HTTP and not
/// listed by `GET /topics`.
pub(crate) fn is_internal(name: &str) -> bool {
    name.starts_with("__")
}

pub(crate) fn refuse_internal(name: &str) -> Result<(), ApiError> {
    if is_internal(name) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            super::errors::code::INTERNAL_TOPIC,
            format!("topic {name:?} is internal: it cannot be written, deleted or reconfigured over HTTP"),
        ));
    }
    Ok(())
}

pub(crate) fn topic(state: &AppState, name: &str) -> Result<Topic, ApiError> {
    Ok(state.store().topic(name)?)
}

fn partition_json(id: u32) -> Value {
    json!({"partition": id, "leader": 0, "replicas": [{"broker": 0, "leader": true, "in_sync": true}]})
}

/// `GET /health`: 200 `{"status": "ok", "topics"}` while the broker serves; `"degraded"`, with
/// `failed_views: [{"view", "error"}]`, when a view's runner stopped (it serves the rest).
pub async fn health(State(state): State<AppState>) -> Response {
    let topics = state.store().topic_names().iter().filter(|n| !is_internal(n)).count();
    let failed = super::views::failed(&state);
    if failed.is_empty() {
        return ok(&json!({"status": "ok", "topics": topics}));
    }
    let failed: Vec<Value> = failed.into_iter().map(|(view, error)| json!({"view": view, "error": error})).collect();
    ok(&json!({"status": "degraded", "topics": topics, "failed_views": failed}))
}

pub async fn list(State(state): State<AppState>) -> Response {
    ok(&state.store().topic_names().into_iter().filter(|n| !is_internal(n)).collect::<Vec<_>>())
}

pub async fn describe(
    State(state): State<AppState>,
    PathParams(name): PathParams<String>,
) -> Result<Response, ApiError> {
    let t = topic(&state, &name)?;
    let partitions: Vec<Value> = (0..t.partition_count()).map(partition_json).collect();
    let configs = topic_config::to_kafka(&t.config());
    Ok(ok(&json!({"name": t.name(), "topic_id": t.id(), "configs": configs, "partitions": partitions})))
}

pub async fn partitions(
    State(state): State<AppState>,
    PathParams(name): PathParams<String>,
) -> Result<Response, ApiError> {
    let t = topic(&state, &name)?;
    Ok(ok(&(0..t.partition_count()).map(partition_json).collect::<Vec<_>>()))
}

pub async fn partition(
    State(state): State<AppState>,
    PathParams((name, p)): PathParams<(String, String)>,
) -> Result<Response, ApiError> {
    let p = partition_id(&p)?;
    let t = topic(&state, &name)?;
    t.partition(p)?;
    Ok(ok(&partition_json(p)))
}

pub async fn offsets(
    State(state): State<AppState>,
    PathParams((name, p)): PathParams<(String, String)>,
) -> Result<Response, ApiError> {
    let p = partition_id(&p)?;
    let part = topic(&state, &name)?.partition(p)?;
    Ok(ok(&json!({"beginning_offset": part.log_start_offset(), "end_offset": part.high_watermark()})))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateTopic {
    name: String,
    #[serde(default = "one")]
    partitions: u32,
    #[serde(default)]
    configs: serde_json::Map<String, Value>,
}

fn one() -> u32 {
    1
}

pub async fn create(State(state): State<AppState>, body: Bytes) -> Result<Response, ApiError> {
    let req: CreateTopic = parse_body(&body)?;
    refuse_internal(&req.name)?;
    let config = topic_config::apply(&TopicConfig::default(), &req.configs)?;
    let store = state.store().clone();
    let t = blocking(move || Ok(store.create_topic(&req.name, req.partitions, config)?)).await?;
    Ok(reply(
        StatusCode::CREATED,
        &json!({"name": t.name(), "topic_id": t.id(), "partitions": t.partition_count(),
                "configs": topic_config::to_kafka(&t.config())}),
    ))
}

pub async fn delete(State(state): State<AppState>, PathParams(name): PathParams<String>) -> Result<Response, ApiError> {
    refuse_internal(&name)?;
    let store = state.store().clone();
    blocking(move || Ok(store.delete_topic(&name)?)).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `PUT /topics/{t}/configs` with `{"configs": {...}}` (or the map itself): changes those keys.
pub async fn set_configs(
    State(state): State<AppState>,
    PathParams(name): PathParams<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    refuse_internal(&name)?;
    let t = topic(&state, &name)?;
    let mut map: serde_json::Map<String, Value> = parse_body(&body)?;
    if let Some(Value::Object(inner)) = map.get("configs") {
        map = inner.clone();
    }
    let config = topic_config::apply(&t.config(), &map)?;
    let store = state.store().clone();
    let n = name.clone();
    blocking(move || Ok(store.set_topic_config(&n, config)?)).await?;
    Ok(ok(&json!({"name": name, "configs": topic_config::to_kafka(&t.config())})))
}
