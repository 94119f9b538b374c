//! Produce: `POST /topics/{t}` and `POST /topics/{t}/partitions/{p}`. One request is one append:
//! one batch per partition, all checked before any is written, acknowledged once durable.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;

use axum::http::{header, HeaderValue};
use axum::response::IntoResponse;

use super::content::{convert, partition_id, request_format, PathParams};
use super::errors::{code, unless_deleted, ApiError, CONTENT_TYPE_V2};
use super::produce_body::{for_each_record, walk_body, OffsetsBody, OFFSETS_PER_CHUNK};
use super::topics::blocking;
use super::AppState;
use crate::log::ProducerFields;
use crate::topic_append::TopicAppend;
use crate::{Error, Topic, TopicConfig};

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

/// Produce bodies up to this size are parsed on the request's task instead of the blocking pool.
pub const PRODUCE_INLINE_BYTES_MAX: usize = 16 * 1024;

async fn produce(
    state: AppState,
    topic: String,
    partition: Option<u32>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    super::topics::refuse_internal(&topic)?;
    let format = request_format(&headers)?;
    let t = match state.store().topic(&topic) {
        Ok(t) => t,
        Err(_) => {
            // Check the body before a missing topic is reported or created: a bad body is a 422.
            let body = body.clone();
            blocking(move || {
                for_each_record(&body, |i, r| convert(&body, i, r, format).map(drop))?;
                Ok(())
            })
            .await?;
            topic_for_produce(&state, &topic).await?
        }
    };
    if let Some(p) = partition {
        t.partition(p)?;
    }
    let started = std::time::Instant::now();
    let small = body.len() <= PRODUCE_INLINE_BYTES_MAX;
    let build = move || {
        let mut append = TopicAppend::new(&t);
        let mut bytes = 0u64;
        let (_, producer) = walk_body(&body, |i, r| {
            let r = convert(&body, i, r, format)?;
            bytes += r.value.as_ref().map_or(0, |v| v.len()) as u64;
            append.push(r.key.as_deref(), r.value.as_deref(), &r.headers, r.timestamp, partition.or(r.partition))?;
            Ok(())
        })?;
        debug_assert!(append.count() > 0);
        if let Some(p) = producer {
            // A retry must reach the same partition's producer state as the first attempt.
            if partition.is_none() && t.partition_count() > 1 {
                return Err(ApiError::invalid(
                    code::PRODUCER_NEEDS_PARTITION,
                    format!(
                        "a produce with a producer goes to one partition: POST /topics/{}/partitions/{{partition}}",
                        t.name()
                    ),
                ));
            }
            append.set_producer(ProducerFields {
                producer_id: p.id,
                producer_epoch: p.epoch,
                base_sequence: p.sequence,
            });
        }
        Ok((append.finish()?, bytes, t))
    };
    // A small body is parsed and encoded on the request's task: a hop to the blocking pool would
    // cost more than the work, and every single-record produce would pay it.
    let (ready, bytes, t) = if small { build()? } else { blocking(build).await? };
    let placed = ready.commit().await.map_err(|e| {
        let deleted = t.partitions().iter().any(|p| p.is_deleted());
        unless_deleted(e, t.name(), deleted)
    })?;
    state.metrics().appended(started.elapsed().as_secs_f64());
    state.metrics().produced(placed.count() as u64, bytes);
    // Small answers (a request of a few records: most of them) go whole; large ones in chunks.
    let body = if placed.count() <= OFFSETS_PER_CHUNK {
        axum::body::Body::from(OffsetsBody::new(placed.into_iter()).into_bytes())
    } else {
        axum::body::Body::from_stream(OffsetsBody::new(placed.into_iter()))
    };
    let mut response = body.into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE_V2));
    Ok(response)
}

/// `POST /producers`: a new producer id and epoch (Kafka's `InitProducerId`) for idempotent
/// produce requests: `{"producer_id": 1000, "producer_epoch": 0}`.
pub async fn init_producer(State(state): State<AppState>) -> Result<Response, ApiError> {
    let store = state.store().clone();
    let (id, epoch) = blocking(move || Ok(store.init_producer_id()?)).await?;
    Ok(super::topics::ok(&serde_json::json!({ "producer_id": id, "producer_epoch": epoch })))
}
