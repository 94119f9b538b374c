//! Reading a partition from an offset, with a long-poll; the stateless fetch route
//! `GET /topics/{t}/partitions/{p}/records?offset=&max_bytes=&timeout=` (pandaproxy's shape).

use std::time::Duration;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;

use super::content::{accept_format, partition_id, render_record, Format, Include, Params, PathParams};
use super::errors::ApiError;
use super::topics::{blocking, ok, topic};
use super::{
    AppState, FETCH_BYTES_DEFAULT, FETCH_BYTES_MAX, FETCH_RECORDS_MAX, FETCH_TIMEOUT_MS_DEFAULT, FETCH_TIMEOUT_MS_MAX,
};
use crate::{Partition, Record};

/// Reads from `offset`; when nothing is there yet, waits up to `timeout` for data to arrive
/// (a notification from the partition, not a poll).
pub(crate) async fn read_waiting(
    state: &AppState,
    p: &Partition,
    offset: u64,
    max_bytes: u64,
    max_records: usize,
    timeout: Duration,
) -> Result<Vec<Record>, ApiError> {
    if offset == p.high_watermark() && !timeout.is_zero() {
        tokio::select! {
            _ = tokio::time::timeout(timeout, p.wait_for_data(offset)) => {}
            _ = state.drained() => {}
        }
    }
    let part = p.clone();
    let max_bytes = max_bytes.min(FETCH_BYTES_MAX);
    let mut records = blocking(move || Ok(part.read(offset, max_bytes as usize, max_records)?)).await?;
    trim_to(&mut records, max_bytes);
    Ok(records)
}

/// The bytes of a record that count against a fetch's `max_bytes`: its key, value and headers.
pub(crate) fn record_bytes(r: &Record) -> u64 {
    let headers: usize = r.headers.iter().map(|h| h.key.len() + h.value.as_ref().map_or(0, |v| v.len())).sum();
    (r.key.as_ref().map_or(0, |k| k.len()) + r.value.as_ref().map_or(0, |v| v.len()) + headers) as u64
}

/// Keeps the records whose bytes fit in `max_bytes`, and always the first (so that a reader
/// always progresses, as the REST Proxy does); the log reads whole batches.
fn trim_to(records: &mut Vec<Record>, max_bytes: u64) {
    let mut total = 0u64;
    let keep = records
        .iter()
        .position(|r| {
            total += record_bytes(r);
            total > max_bytes
        })
        .unwrap_or(records.len())
        .max(1);
    records.truncate(keep);
}

/// Keeps the records before the first one that cannot be rendered in `format` (a value written in
/// binary that is not JSON, fetched as JSON): they are returned, and the next fetch from that
/// record answers the error (a 4xx naming its offset; fetching it as binary, or seeking past it,
/// goes on). The error when the first record cannot be rendered.
pub(crate) fn renderable_prefix(records: &mut Vec<Record>, format: Format) -> Result<(), ApiError> {
    if format != Format::Json {
        return Ok(());
    }
    let bad = records.iter().position(|r| {
        let not_json = |b: &Option<bytes::Bytes>| {
            b.as_ref().is_some_and(|b| serde_json::from_slice::<&serde_json::value::RawValue>(b).is_err())
        };
        not_json(&r.key) || not_json(&r.value)
    });
    match bad {
        Some(0) => render_record("", 0, &records[0], format, Include::default()).map(drop),
        Some(n) => {
            records.truncate(n);
            Ok(())
        }
        None => Ok(()),
    }
}

/// `max_bytes` and `timeout` (ms) from the query, defaulted and capped.
pub(crate) fn limits(q: &Params) -> Result<(u64, Duration), ApiError> {
    let max_bytes = q.u64_or("max_bytes", FETCH_BYTES_DEFAULT)?.min(FETCH_BYTES_MAX);
    let timeout_ms = q.u64_or("timeout", FETCH_TIMEOUT_MS_DEFAULT)?.min(FETCH_TIMEOUT_MS_MAX);
    Ok((max_bytes, Duration::from_millis(timeout_ms)))
}

pub async fn stateless(
    State(state): State<AppState>,
    PathParams((name, p)): PathParams<(String, String)>,
    q: Params,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let p = partition_id(&p)?;
    let offset = q.u64_required("offset")?;
    let (max_bytes, timeout) = limits(&q)?;
    let include = Include::parse(q.get("include"))?;
    let format = accept_format(&headers).unwrap_or(Format::Binary);
    let t = topic(&state, &name)?;
    let part = t.partition(p)?;
    let mut records = read_waiting(&state, &part, offset, max_bytes, FETCH_RECORDS_MAX, timeout).await?;
    renderable_prefix(&mut records, format)?;
    // The records share the log's memory; rendering them is what takes memory.
    let _reserved = super::budget::reserve_response(&state, records.iter().map(record_bytes).sum()).await?;
    let bytes: u64 = records.iter().map(|r| r.value.as_ref().map_or(0, |v| v.len()) as u64).sum();
    state.metrics().fetched(records.len() as u64, bytes);
    let out = records.iter().map(|r| render_record(t.name(), p, r, format, include)).collect::<Result<Vec<_>, _>>()?;
    Ok(ok(&out))
}
