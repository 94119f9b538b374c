//! Produce: `POST /topics/{t}` and `POST /topics/{t}/partitions/{p}`. One request is one append:
//! one batch per partition, all checked before any is written, acknowledged once durable.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use serde::Serialize;

use super::content::{parse_body_borrowed, partition_id, request_format, PathParams, ProduceRequest};
use super::errors::ApiError;
use super::topics::ok;
use super::AppState;
use crate::{Error, Topic, TopicConfig};

#[derive(Debug, Serialize)]
struct OffsetOut {
    partition: u32,
    offset: u64,
    error_code: Option<i32>,
    error: Option<String>,
}

#[derive(Debug, Serialize)]
struct ProduceResponse {
    key_schema_id: Option<u32>,
    value_schema_id: Option<u32>,
    offsets: Vec<OffsetOut>,
}

pub async fn to_topic(
    State(state): State<AppState>,
    PathParams(topic): PathParams<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    produce(state, topic, None, headers, body).await
}

pub async fn to_partition(
    State(state): State<AppState>,
    PathParams((topic, p)): PathParams<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let p = partition_id(&p)?;
    produce(state, topic, Some(p), headers, body).await
}

async fn topic_for_produce(state: &AppState, name: &str) -> Result<Topic, ApiError> {
    match state.store().topic(name) {
        Ok(t) => Ok(t),
        Err(Error::TopicNotFound(_)) if state.config().auto_create_topics => {
            let store = state.store().clone();
            let name = name.to_string();
            let n = state.config().auto_create_partitions;
            super::topics::blocking(move || match store.create_topic(&name, n, TopicConfig::default()) {
                Ok(t) => Ok(t),
                // Another request created it first.
                Err(Error::TopicExists(_)) => Ok(store.topic(&name)?),
                Err(e) => Err(e.into()),
            })
            .await
        }
        Err(e) => Err(e.into()),
    }
}

async fn produce(
    state: AppState,
    topic: String,
    partition: Option<u32>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    super::topics::refuse_internal(&topic)?;
    let format = request_format(&headers)?;
    let req: ProduceRequest = parse_body_borrowed(&body)?;
    if req.records.is_empty() {
        return Err(ApiError::payload("field records: at least one record is needed"));
    }
    let records = req.into_records(&body, format, partition)?;
    let t = topic_for_produce(&state, &topic).await?;
    if let Some(p) = partition {
        t.partition(p)?;
    }
    let bytes: u64 = records.iter().map(|r| r.value.as_ref().map_or(0, |v| v.len()) as u64).sum();
    let count = records.len() as u64;
    let started = std::time::Instant::now();
    let placed = t.append_async(records).await?;
    state.metrics().appended(started.elapsed().as_secs_f64());
    state.metrics().produced(count, bytes);
    let offsets = placed
        .iter()
        .map(|m| OffsetOut { partition: m.partition, offset: m.base_offset, error_code: None, error: None })
        .collect();
    Ok(ok(&ProduceResponse { key_schema_id: None, value_schema_id: None, offsets }))
}
