//! `GET /consumers/{group}/instances/{instance}/records`: a long-poll over the partitions the
//! instance may read.
//!
//! The fetch looks at the instance in rounds, each under its lock on the blocking pool: the
//! first one auto-commits what the previous fetch returned; every one brings the membership up to
//! date (a heartbeat) and, when a readable partition has records or the time is up, reads,
//! renders and answers. Between rounds it waits, holding no lock, for records, a change of the
//! group or of the instance, its next heartbeat or metadata refresh, the deadline, or shutdown.
//! So what it returns is from partitions the instance owns when it answers, a long-poll keeps its
//! member alive, and an instance without partitions waits for them instead of returning at once.

use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use tokio::time::Instant;

use super::super::content::{accept_format, render_record, Format, Include, Params, PathParams};
use super::super::errors::{code, ApiError};
use super::super::{AppState, FETCH_BYTES_DEFAULT, FETCH_BYTES_MAX, FETCH_RECORDS_MAX, FETCH_TIMEOUT_MS_MAX};
use super::handlers::InstancePath;
use super::instance::Instance;
use super::registry::{InUse, Registry};
use super::CONSUMER_METADATA_REFRESH_MS;
use crate::groups::{DataWait, TopicPartition};
use crate::Record;

/// What the query asks for.
#[derive(Debug, Clone, Copy)]
struct FetchRequest {
    include: Include,
    max_bytes: u64,
    /// `timeout` (ms), when given; else the instance's `consumer.request.timeout.ms`.
    timeout_ms: Option<u64>,
}

impl FetchRequest {
    fn parse(q: &Params) -> Result<FetchRequest, ApiError> {
        Ok(FetchRequest {
            include: Include::parse(q.get("include"))?,
            max_bytes: q.u64_or("max_bytes", FETCH_BYTES_DEFAULT)?.min(FETCH_BYTES_MAX),
            timeout_ms: q.get("timeout").map(|_| q.u64_or("timeout", 0)).transpose()?,
        })
    }
}

/// A rendered answer.
#[derive(Debug)]
struct Answer {
    body: Vec<u8>,
    records: u64,
    value_bytes: u64,
}

/// What one round found.
#[derive(Debug)]
enum Round {
    Answer(Answer),
    /// Nothing to read yet: wait on this; a member also for at most its heartbeat interval.
    Wait(DataWait, Option<Duration>),
}

pub async fn records(
    State(state): State<AppState>,
    PathParams((group, id)): InstancePath,
    q: Params,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let request = FetchRequest::parse(&q)?;
    let instance = state.consumers().enter(&group, &id).await?;
    let (format, request_timeout_ms) = instance.run(&state, |_, i| Ok((i.format, i.request_timeout_ms))).await?;
    check_accept(&headers, format)?;
    let timeout = Duration::from_millis(request.timeout_ms.unwrap_or(request_timeout_ms).min(FETCH_TIMEOUT_MS_MAX));
    let answer = long_poll(&state, &instance, request, format, timeout).await?;
    state.metrics().fetched(answer.records, answer.value_bytes);
    Ok((StatusCode::OK, [(axum::http::header::CONTENT_TYPE, format.content_type())], answer.body).into_response())
}

/// An `Accept` naming an embedded format must name the instance's.
fn check_accept(headers: &HeaderMap, format: Format) -> Result<(), ApiError> {
    match accept_format(headers) {
        Some(asked) if asked != format => Err(ApiError::new(
            StatusCode::NOT_ACCEPTABLE,
            code::CONSUMER_FORMAT_MISMATCH,
            format!(
                "the requested embedded format ({asked:?}) does not match the consumer's ({format:?}); use Accept: {}",
                format.content_type()
            ),
        )),
        _ => Ok(()),
    }
}

/// Rounds until one answers: at the first with records, or at the deadline, or on shutdown.
async fn long_poll(
    state: &AppState,
    instance: &InUse,
    request: FetchRequest,
    format: Format,
    timeout: Duration,
) -> Result<Answer, ApiError> {
    let deadline = Instant::now() + timeout;
    let (mut first, mut last) = (true, timeout.is_zero());
    loop {
        let (is_first, is_last) = (first, last);
        let round = instance.run(state, move |reg, inst| look(reg, inst, is_first, is_last, request, format)).await?;
        let (wait, heartbeat) = match round {
            Round::Answer(answer) => return Ok(answer),
            Round::Wait(wait, heartbeat) => (wait, heartbeat),
        };
        first = false;
        // A member looks again at least every heartbeat and metadata refresh; others need not.
        let now = Instant::now();
        let until = heartbeat.map_or(deadline, |h| deadline.min(now + h.min(METADATA_REFRESH)));
        tokio::select! {
            biased;
            _ = state.drained() => last = true,
            _ = wait.wait(until.saturating_duration_since(now)) => {}
        }
        last |= Instant::now() >= deadline;
    }
}

const METADATA_REFRESH: Duration = Duration::from_millis(CONSUMER_METADATA_REFRESH_MS);

/// One round, under the instance's lock. Blocking.
fn look(
    reg: &Registry,
    inst: &mut Instance,
    first: bool,
    last: bool,
    request: FetchRequest,
    format: Format,
) -> Result<Round, ApiError> {
    if first {
        inst.consumer.auto_commit();
    }
    inst.sync(reg.store())?;
    let wait = inst.consumer.data_wait()?;
    if !wait.is_ready() && !last {
        return Ok(Round::Wait(wait, inst.consumer.heartbeat_interval()));
    }
    answer(inst, request, format).map(Round::Answer)
}

/// Reads, renders, and only then moves the positions: a record that cannot be rendered is not
/// skipped. The records are cut at `max_bytes` (key, value and header bytes; at least one record,
/// so that a consumer always progresses); fetched as JSON, a record that is not JSON ends the
/// answer before it, and is an error (naming its offset) when it comes first.
fn answer(inst: &mut Instance, request: FetchRequest, format: Format) -> Result<Answer, ApiError> {
    let mut records = inst.consumer.fetch(FETCH_RECORDS_MAX, request.max_bytes as usize)?;
    let mut total = 0u64;
    let fits = records
        .iter()
        .position(|(_, r)| {
            total += super::super::fetch::record_bytes(r);
            total > request.max_bytes
        })
        .map_or(records.len(), |n| n.max(1));
    records.truncate(fits);
    let answer = match render(&records, format, request.include) {
        Ok(answer) => answer,
        Err((0, e)) => return Err(e),
        Err((bad, _)) => {
            records.truncate(bad);
            render(&records, format, request.include).map_err(|(_, e)| e)?
        }
    };
    inst.consumer.advance(&records);
    Ok(answer)
}

/// The answer's body, or the place of the first record that cannot be rendered and why.
fn render(records: &[(TopicPartition, Record)], format: Format, include: Include) -> Result<Answer, (usize, ApiError)> {
    let mut out = Vec::with_capacity(records.len());
    let mut value_bytes = 0u64;
    for (i, (tp, r)) in records.iter().enumerate() {
        value_bytes += r.value.as_ref().map_or(0, |v| v.len()) as u64;
        out.push(render_record(&tp.topic, tp.partition, r, format, include).map_err(|e| (i, e))?);
    }
    let body = serde_json::to_vec(&out).expect("records serialize");
    Ok(Answer { body, records: records.len() as u64, value_bytes })
}
