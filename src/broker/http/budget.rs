//! Request bodies and the memory of requests in flight.
//!
//! A `Content-Length` above `body_bytes_max` is refused from the header (413), before any of
//! the body is read. Every request with a body reserves [`REQUEST_MEMORY_FACTOR`] times its
//! length (or `body_bytes_max` times the factor when it sends no length) from one budget shared
//! by all requests (`requests_memory_bytes_max`) before its body is read, and gives it back when
//! its handler returns; a stateless fetch reserves the factor times the bytes of the records it
//! renders the same way. When the budget is spent, a request waits up to
//! [`REQUEST_MEMORY_WAIT_MS`] for room, then gets a 503 with `Retry-After`. A body that stops
//! arriving for `body_read_timeout_ms` gets a 408.
//!
//! The factor is what the handlers keep to: a produce holds its body, the encoded batches (about
//! the size of the body's records) and two bytes per record, and streams its response.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::body::{BodyDataStream, Bytes};
use axum::extract::Request;
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use bytes::BytesMut;
use tokio::sync::Semaphore;

use super::errors::{code, confluent_fallback, ApiError};
use super::AppState;

/// A request's peak memory is at most this many times its body (plus a small constant): what
/// it reserves from the budget. The worst case is a produce of empty records (`{}`, 3 bytes of
/// body for a record of about 8 bytes in the log) to a topic of several partitions: about 5x.
/// Records with values stay near 2x.
pub const REQUEST_MEMORY_FACTOR: usize = 6;
/// Default memory budget of all requests in flight.
pub const REQUESTS_MEMORY_BYTES_DEFAULT: usize = 1024 * 1024 * 1024;
/// How long a request waits for room in the budget before its 503.
pub const REQUEST_MEMORY_WAIT_MS: u64 = 5_000;
/// The `Retry-After` (seconds) of that 503.
pub const RETRY_AFTER_SECONDS: u32 = 1;
/// Default longest pause while a request body arrives.
pub const BODY_READ_TIMEOUT_MS_DEFAULT: u64 = 10_000;
/// The budget's unit: a permit is this many bytes.
const PERMIT_BYTES: usize = 1024;

/// The shared budget.
#[derive(Debug)]
pub struct MemoryBudget {
    permits: Arc<Semaphore>,
    total: u32,
}

impl MemoryBudget {
    pub fn new(bytes: usize) -> MemoryBudget {
        let total = bytes.div_ceil(PERMIT_BYTES).clamp(1, u32::MAX as usize) as u32;
        MemoryBudget { permits: Arc::new(Semaphore::new(total as usize)), total }
    }

    /// Bytes reserved by requests in flight now (a gauge).
    pub fn reserved_bytes(&self) -> usize {
        (self.total as usize - self.permits.available_permits()) * PERMIT_BYTES
    }

    /// Waits (up to `wait`) for `bytes` of the budget; a reservation bigger than the whole budget
    /// takes all of it. `None`: no room in time.
    async fn reserve(&self, bytes: usize, wait: Duration) -> Option<tokio::sync::OwnedSemaphorePermit> {
        let n = bytes.div_ceil(PERMIT_BYTES).clamp(1, self.total as usize) as u32;
        // Room now (the semaphore is fair: permits set aside for a waiter are not taken): no timer.
        if let Ok(permit) = Arc::clone(&self.permits).try_acquire_many_owned(n) {
            return Some(permit);
        }
        match tokio::time::timeout(wait, Arc::clone(&self.permits).acquire_many_owned(n)).await {
            Ok(Ok(permit)) => Some(permit),
            _ => None,
        }
    }
}

/// The 503 of a spent budget.
fn spent(state: &AppState, bytes: usize) -> ApiError {
    state.metrics().memory_refused();
    tracing::warn!(bytes, "request refused: the memory budget of requests in flight is spent");
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        code::UNAVAILABLE,
        "the broker's memory budget for requests in flight is spent: retry later",
    )
}

/// Reserves what a response of `bytes` of records needs (a fetch: records rendered as JSON
/// or base64), waiting as a request body does; the 503 when there is no room in time. Dropping
/// the permit gives it back.
pub(crate) async fn reserve_response(
    state: &AppState,
    bytes: u64,
) -> Result<tokio::sync::OwnedSemaphorePermit, ApiError> {
    let bytes = (bytes as usize).saturating_mul(REQUEST_MEMORY_FACTOR);
    let wait = Duration::from_millis(REQUEST_MEMORY_WAIT_MS);
    state.memory().reserve(bytes, wait).await.ok_or_else(|| spent(state, bytes))
}

fn too_large(declared: u64, max: usize) -> Response {
    let mut r = ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        code::PAYLOAD_TOO_LARGE,
        format!("request body of {declared} bytes is over body_bytes_max ({max} bytes)"),
    )
    .into_response();
    // The body is not read: the connection cannot carry another request.
    r.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
    r
}

/// The next chunk of a request body, or `Err` when none comes for `pause`. A chunk already
/// received needs no timer.
async fn next_chunk(stream: &mut BodyDataStream, pause: Duration) -> Result<Option<Result<Bytes, axum::Error>>, ()> {
    let mut poll =
        |cx: &mut std::task::Context<'_>| futures_core::Stream::poll_next(std::pin::Pin::new(&mut *stream), cx);
    let mut now = None;
    std::future::poll_fn(|cx| {
        now = Some(poll(cx));
        std::task::Poll::Ready(())
    })
    .await;
    if let Some(std::task::Poll::Ready(chunk)) = now {
        return Ok(chunk);
    }
    tokio::time::timeout(pause, std::future::poll_fn(poll)).await.map_err(drop)
}

/// Refuses oversized bodies from their header, reserves the request's memory, reads the body
/// (into one buffer of its declared size when it comes in several chunks), and runs the handler,
/// whose error responses get Confluent's body (see `errors::confluent_fallback`).
pub(crate) async fn bounded_body(state: &AppState, req: Request, next: Next) -> Response {
    let max = state.config().body_bytes_max;
    let declared = match req.headers().get(header::CONTENT_LENGTH) {
        None => None,
        Some(v) => match v.to_str().ok().and_then(|s| s.trim().parse::<u64>().ok()) {
            Some(n) => Some(n),
            None => return ApiError::bad_request("Content-Length is not a number").into_response(),
        },
    };
    if let Some(n) = declared.filter(|&n| n > max as u64) {
        return too_large(n, max);
    }
    let chunked = req.headers().contains_key(header::TRANSFER_ENCODING);
    if declared.unwrap_or(0) == 0 && !chunked {
        return confluent_fallback(next.run(req).await).await;
    }
    let expected = declared.map_or(max, |n| n as usize);
    let wait = Duration::from_millis(REQUEST_MEMORY_WAIT_MS);
    let reserve = expected.saturating_mul(REQUEST_MEMORY_FACTOR);
    let Some(permit) = state.memory().reserve(reserve, wait).await else {
        let mut r = spent(state, reserve).into_response();
        r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECONDS));
        return r;
    };
    let (parts, body) = req.into_parts();
    let pause = Duration::from_millis(state.config().body_read_timeout_ms);
    // The first chunk, kept as it is while it is the only one.
    let mut first: Option<Bytes> = None;
    let mut buf = BytesMut::new();
    let mut stream = body.into_data_stream();
    loop {
        let chunk = match next_chunk(&mut stream, pause).await {
            Err(_) => {
                let msg = format!("the request body stopped arriving for {} ms", pause.as_millis());
                let mut r = ApiError::new(StatusCode::REQUEST_TIMEOUT, code::REQUEST_TIMEOUT, msg).into_response();
                r.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
                return r;
            }
            Ok(None) => break,
            Ok(Some(Ok(chunk))) => chunk,
            Ok(Some(Err(e))) => return ApiError::bad_request(format!("reading the request body: {e}")).into_response(),
        };
        let had = first.as_ref().map_or(0, |f| f.len()) + buf.len();
        if had + chunk.len() > max {
            return too_large((had + chunk.len()) as u64, max);
        }
        match first.take() {
            None if buf.is_empty() => first = Some(chunk),
            None => buf.extend_from_slice(&chunk),
            Some(f) => {
                buf.reserve(declared.map_or(0, |n| n as usize).max(f.len() + chunk.len()));
                buf.extend_from_slice(&f);
                buf.extend_from_slice(&chunk);
            }
        }
    }
    let body = match first {
        Some(f) => f,
        None => buf.freeze(),
    };
    let response = confluent_fallback(next.run(Request::from_parts(parts, Body::from(body))).await).await;
    drop(permit);
    response
}
