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
    let max_bytes = max_bytes.min(FETCH_BYTES_MAX) as usize;
    blocking(move || Ok(part.read(offset, max_bytes, max_records)?)).await
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
    let records = read_waiting(&state, &part, offset, max_bytes, FETCH_RECORDS_MAX, timeout).await?;
    let bytes: u64 = records.iter().map(|r| r.value.as_ref().map_or(0, |v| v.len()) as u64).sum();
    state.metrics().fetched(records.len() as u64, bytes);
    let out = records.iter().map(|r| render_record(t.name(), p, r, format, include)).collect::<Result<Vec<_>, _>>()?;
    Ok(ok(&out))
}
