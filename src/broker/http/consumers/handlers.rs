//! The routes that create and delete consumer instances and set what they read: a subscription
//! (topics or a pattern) or a manual assignment.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{json, Value};

use super::super::content::{parse_body, parse_body_or_default, PathParams};
use super::super::errors::ApiError;
use super::super::topics::{blocking, ok};
use super::super::AppState;
use super::instance::{illegal, invalid, Settings, Subscription};
use super::registry::on_instance;
use crate::groups::TopicPartition;

pub(super) type InstancePath = PathParams<(String, String)>;

pub(super) fn no_content() -> Response {
    StatusCode::NO_CONTENT.into_response()
}

/// `POST /consumers/{group}`.
pub async fn create(
    State(state): State<AppState>,
    PathParams(group): PathParams<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    crate::groups::validate_group_name(&group).map_err(ApiError::from)?;
    let req: serde_json::Map<String, Value> = parse_body_or_default(&body)?;
    let settings = Settings::parse(&req, state.config().consumer_timeout_ms_default)?;
    let id = state.consumers().create(&group, &settings)?;
    let base_uri = format!("{}/consumers/{group}/instances/{id}", state.config().advertised_uri);
    Ok(ok(&json!({"instance_id": id, "base_uri": base_uri})))
}

/// `DELETE /consumers/{group}/instances/{instance}`: auto-commits (when enabled) and leaves.
pub async fn delete(
    State(state): State<AppState>,
    PathParams((group, id)): InstancePath,
) -> Result<Response, ApiError> {
    blocking(move || state.consumers().remove(&group, &id)).await?;
    Ok(no_content())
}

#[derive(Debug, Default, Deserialize)]
struct SubscribeRequest {
    topics: Option<Vec<String>>,
    topic_pattern: Option<String>,
}

pub async fn subscribe(
    State(state): State<AppState>,
    PathParams((group, id)): InstancePath,
    body: Bytes,
) -> Result<Response, ApiError> {
    let req: SubscribeRequest = parse_body(&body)?;
    let sub = match (req.topics, req.topic_pattern) {
        (Some(t), None) if !t.is_empty() => {
            for name in &t {
                crate::limits::validate_topic_name(name)?;
            }
            Subscription::Topics(t)
        }
        (None, Some(p)) => {
            let re = regex::Regex::new(&format!("^(?:{p})$"))
                .map_err(|e| invalid(format!("field topic_pattern: invalid regular expression: {e}")))?;
            Subscription::Pattern(p, re)
        }
        _ => return Err(invalid("give exactly one of topics (a non-empty list) or topic_pattern")),
    };
    on_instance(&state, &group, &id, move |reg, inst| {
        if matches!(inst.subscription, Subscription::Manual(_)) {
            return Err(illegal("subscription to topics, partitions and pattern are mutually exclusive"));
        }
        inst.set_subscription(sub, reg.store())
    })
    .await?;
    Ok(no_content())
}

pub async fn subscription(
    State(state): State<AppState>,
    PathParams((group, id)): InstancePath,
) -> Result<Response, ApiError> {
    let body = on_instance(&state, &group, &id, |reg, inst| {
        Ok(match &inst.subscription {
            Subscription::Topics(t) => json!({"topics": t}),
            Subscription::Pattern(p, _) => json!({"topics": inst.topics(reg.store()), "topic_pattern": p}),
            _ => json!({"topics": []}),
        })
    })
    .await?;
    Ok(ok(&body))
}

/// `DELETE …/subscription`: auto-commits (when enabled) and leaves the group.
pub async fn unsubscribe(
    State(state): State<AppState>,
    PathParams((group, id)): InstancePath,
) -> Result<Response, ApiError> {
    on_instance(&state, &group, &id, |reg, inst| inst.set_subscription(Subscription::None, reg.store())).await?;
    Ok(no_content())
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct PartitionsRequest {
    #[serde(default)]
    pub partitions: Vec<TopicPartition>,
}

pub async fn assign(
    State(state): State<AppState>,
    PathParams((group, id)): InstancePath,
    body: Bytes,
) -> Result<Response, ApiError> {
    let req: PartitionsRequest = parse_body(&body)?;
    for tp in &req.partitions {
        state.store().topic(&tp.topic)?.partition(tp.partition)?;
    }
    on_instance(&state, &group, &id, move |reg, inst| {
        if matches!(inst.subscription, Subscription::Topics(_) | Subscription::Pattern(..)) {
            return Err(illegal("subscription to topics, partitions and pattern are mutually exclusive"));
        }
        let sub = if req.partitions.is_empty() { Subscription::None } else { Subscription::Manual(req.partitions) };
        inst.set_subscription(sub, reg.store())
    })
    .await?;
    Ok(no_content())
}

pub async fn assignments(
    State(state): State<AppState>,
    PathParams((group, id)): InstancePath,
) -> Result<Response, ApiError> {
    let list = on_instance(&state, &group, &id, |reg, inst| {
        inst.sync(reg.store())?;
        Ok(inst.consumer.assigned())
    })
    .await?;
    Ok(ok(&json!({"partitions": list})))
}
