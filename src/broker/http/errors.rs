//! Errors as the Confluent REST Proxy returns them: an HTTP status and a body
//! `{"error_code": <int>, "message": "…"}`. The codes are stable and never reused.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::groups::GroupError;
use crate::stream::ViewError;
use crate::Error;
use crate::ProducerError;

/// Confluent's error codes (status × 100 + a detail), plus the plain statuses for generic errors.
pub mod code {
    pub const BAD_REQUEST: i32 = 40000;
    pub const NOT_FOUND: i32 = 40400;
    /// An internal topic cannot be written, deleted or reconfigured over HTTP.
    pub const INTERNAL_TOPIC: i32 = 40301;
    pub const TOPIC_NOT_FOUND: i32 = 40401;
    pub const PARTITION_NOT_FOUND: i32 = 40402;
    pub const CONSUMER_INSTANCE_NOT_FOUND: i32 = 40403;
    pub const GROUP_NOT_FOUND: i32 = 40404;
    /// kappalog's: no view of that name (40410–40419 are views'; Confluent does not use them).
    pub const VIEW_NOT_FOUND: i32 = 40410;
    /// kappalog's: the view has no such key (a key with no window in the asked range is a 200
    /// with an empty `windows` list).
    pub const VIEW_KEY_NOT_FOUND: i32 = 40411;
    pub const CONSUMER_FORMAT_MISMATCH: i32 = 40601;
    /// kappalog's: a record fetched as JSON is not JSON (written in the binary format); the
    /// message names its offset. The records before it are returned by the fetch before.
    pub const RECORD_FORMAT_MISMATCH: i32 = 40610;
    pub const TOPIC_EXISTS: i32 = 40901;
    pub const CONSUMER_EXISTS: i32 = 40902;
    pub const ILLEGAL_STATE: i32 = 40903;
    /// kappalog's: a view of that name exists.
    pub const VIEW_EXISTS: i32 = 40910;
    /// kappalog's: a produce's `producer.sequence` does not follow the last one the partition has
    /// from that producer and epoch (Kafka's `OUT_OF_ORDER_SEQUENCE_NUMBER`); nothing was written.
    pub const OUT_OF_ORDER_SEQUENCE: i32 = 40920;
    /// kappalog's: a produce's `producer.epoch` is older than one the partition has seen: another
    /// producer took over that id (Kafka's `INVALID_PRODUCER_EPOCH`); nothing was written.
    pub const INVALID_PRODUCER_EPOCH: i32 = 40921;
    /// A request body stopped arriving (see `body_read_timeout_ms`).
    pub const REQUEST_TIMEOUT: i32 = 40800;
    pub const PAYLOAD_TOO_LARGE: i32 = 41300;
    pub const UNSUPPORTED_MEDIA_TYPE: i32 = 41500;
    /// A record breaks a limit (its size, its key on a compacted topic).
    pub const INVALID_RECORD: i32 = 42202;
    /// The body is not JSON, or a field has the wrong type, or base64 does not decode.
    pub const INVALID_PAYLOAD: i32 = 42203;
    /// An invalid topic name or topic config.
    pub const INVALID_TOPIC: i32 = 42206;
    /// An invalid consumer config, subscription, seek or reset request.
    pub const INVALID_REQUEST: i32 = 42208;
    /// kappalog's: a produce's `producer` fields are negative.
    pub const INVALID_PRODUCER: i32 = 42220;
    /// kappalog's: a produce with a `producer` to a topic of several partitions must name its
    /// partition (`POST /topics/{t}/partitions/{p}`), so that a retry reaches the same one.
    pub const PRODUCER_NEEDS_PARTITION: i32 = 42221;
    /// kappalog's: a view spec does not parse, breaks a rule or names a missing topic; the
    /// message names the field (`invalid view spec: window.size_ms: …`).
    pub const INVALID_VIEW_SPEC: i32 = 42210;
    pub const INTERNAL: i32 = 50001;
    pub const STORAGE: i32 = 50002;
    /// Retriable: the store is closing.
    pub const UNAVAILABLE: i32 = 50003;
    pub const INSUFFICIENT_STORAGE: i32 = 50701;
}

/// The media type of every response body.
pub const CONTENT_TYPE_V2: &str = "application/vnd.kafka.v2+json";

/// An error response. Its body is always Confluent's shape.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub error_code: i32,
    pub message: String,
}

/// Marks a response whose body is already Confluent-shaped (the fallback layer leaves it alone).
#[derive(Debug, Clone, Copy)]
pub(crate) struct ConfluentBody;

impl ApiError {
    pub fn new(status: StatusCode, error_code: i32, message: impl Into<String>) -> ApiError {
        ApiError { status, error_code, message: message.into() }
    }
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, code::BAD_REQUEST, message)
    }
    pub fn payload(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code::INVALID_PAYLOAD, message)
    }
    pub fn invalid(error_code: i32, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, error_code, message)
    }
    pub fn not_found(error_code: i32, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, error_code, message)
    }
    pub fn conflict(error_code: i32, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::CONFLICT, error_code, message)
    }
    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, code::INTERNAL, message)
    }
}

/// What an HTTP client is told of an error: never a file system path of the broker (the log line
/// of a 5xx has the whole error).
fn public_message(e: &Error) -> String {
    match e {
        Error::Io { source, .. } => format!("I/O error: {source}"),
        Error::Corrupted { position, detail, .. } => format!("corrupted data at byte {position}: {detail}"),
        Error::UnsupportedFormat { found, supported, .. } => {
            format!("data written by format version {found}; this build reads up to version {supported}")
        }
        Error::FormatTooOld { found, supported, .. } => {
            format!("data written by format version {found}; this build reads version {supported} only")
        }
        Error::Locked { .. } => "the data directory is locked by another store".to_string(),
        other => other.to_string(),
    }
}

/// An error of work on a topic that was deleted meanwhile (its files went from under it) is
/// that the topic is not found, not a server fault.
pub(crate) fn unless_deleted(e: Error, topic: &str, deleted: bool) -> Error {
    let server_side = matches!(
        e,
        Error::Io { .. } | Error::Poisoned { .. } | Error::Corrupted { .. } | Error::CleanerSwapPending { .. }
    );
    if server_side && deleted {
        Error::TopicNotFound(topic.to_string())
    } else {
        e
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> ApiError {
        let message = public_message(&e);
        if matches!(
            e,
            Error::Io { .. } | Error::Corrupted { .. } | Error::UnsupportedFormat { .. } | Error::Locked { .. }
        ) {
            tracing::error!(error = %e, "storage error");
        }
        if e.is_disk_full() {
            return ApiError::new(StatusCode::INSUFFICIENT_STORAGE, code::INSUFFICIENT_STORAGE, message);
        }
        match e {
            Error::TopicNotFound(_) => ApiError::not_found(code::TOPIC_NOT_FOUND, message),
            Error::PartitionNotFound { .. } => ApiError::not_found(code::PARTITION_NOT_FOUND, message),
            Error::TopicExists(_) => ApiError::conflict(code::TOPIC_EXISTS, message),
            Error::InvalidTopicName { .. } | Error::InvalidConfig { .. } => {
                ApiError::invalid(code::INVALID_TOPIC, message)
            }
            Error::LimitExceeded { .. } | Error::InvalidRecord(_) => ApiError::invalid(code::INVALID_RECORD, message),
            Error::OffsetOutOfRange { .. } => ApiError::new(StatusCode::BAD_REQUEST, code::BAD_REQUEST, message),
            Error::Closed => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, code::UNAVAILABLE, message),
            Error::Locked { .. } => ApiError::internal(message),
            Error::Producer { error, .. } => match error {
                ProducerError::OutOfOrderSequence { .. } => ApiError::conflict(code::OUT_OF_ORDER_SEQUENCE, message),
                ProducerError::InvalidProducerEpoch { .. } => ApiError::conflict(code::INVALID_PRODUCER_EPOCH, message),
                _ => ApiError::invalid(code::INVALID_PRODUCER, message),
            },
            _ => ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, code::STORAGE, message),
        }
    }
}

impl From<GroupError> for ApiError {
    fn from(e: GroupError) -> ApiError {
        let message = e.to_string();
        match e {
            GroupError::Log(e) => e.into(),
            GroupError::GroupNotFound(_) => ApiError::not_found(code::GROUP_NOT_FOUND, message),
            GroupError::UnknownMember { .. } => ApiError::not_found(code::CONSUMER_INSTANCE_NOT_FOUND, message),
            GroupError::IllegalGeneration { .. }
            | GroupError::NotAssigned { .. }
            | GroupError::NotReleased { .. }
            | GroupError::ActiveMembers { .. }
            | GroupError::ManagedByKafka { .. }
            | GroupError::NoValidOffset { .. } => ApiError::conflict(code::ILLEGAL_STATE, message),
            GroupError::BadOffsetRecord { .. } => {
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, code::STORAGE, message)
            }
            _ => ApiError::invalid(code::INVALID_REQUEST, message),
        }
    }
}

impl From<ViewError> for ApiError {
    fn from(e: ViewError) -> ApiError {
        let message = e.to_string();
        match e {
            ViewError::Log(e) => e.into(),
            ViewError::InvalidSpec { .. } => ApiError::invalid(code::INVALID_VIEW_SPEC, message),
            ViewError::NotFound(_) => ApiError::not_found(code::VIEW_NOT_FOUND, message),
            ViewError::Exists(_) => ApiError::conflict(code::VIEW_EXISTS, message),
            _ => ApiError::conflict(code::ILLEGAL_STATE, message),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::error!(status = %self.status, error_code = self.error_code, message = %self.message, "request failed");
        }
        let body = serde_json::json!({ "error_code": self.error_code, "message": self.message });
        let mut resp = (self.status, body.to_string()).into_response();
        resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE_V2));
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            // Retriable: the memory budget was spent, or the store is closing.
            resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(super::budget::RETRY_AFTER_SECONDS));
        }
        resp.extensions_mut().insert(ConfluentBody);
        resp
    }
}

/// Rewrites any other error response (axum's own: unknown route, wrong method, body over the
/// limit) into Confluent's shape, with the HTTP status as `error_code` (`status × 100`).
pub(crate) async fn confluent_fallback(resp: Response) -> Response {
    let status = resp.status();
    if !(status.is_client_error() || status.is_server_error()) || resp.extensions().get::<ConfluentBody>().is_some() {
        return resp;
    }
    let (_, body) = resp.into_parts();
    let text = match axum::body::to_bytes(body, 64 * 1024).await {
        Ok(b) if !b.is_empty() => String::from_utf8_lossy(&b).into_owned(),
        _ => status.canonical_reason().unwrap_or("error").to_string(),
    };
    let error_code = match status {
        StatusCode::PAYLOAD_TOO_LARGE => code::PAYLOAD_TOO_LARGE,
        StatusCode::UNSUPPORTED_MEDIA_TYPE => code::UNSUPPORTED_MEDIA_TYPE,
        s => s.as_u16() as i32 * 100,
    };
    ApiError::new(status, error_code, text).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_errors_map_to_confluent_codes() {
        let e: ApiError = Error::TopicNotFound("t".into()).into();
        assert_eq!((e.status, e.error_code), (StatusCode::NOT_FOUND, 40401));
        let e: ApiError = Error::PartitionNotFound { topic: "t".into(), partition: 3, count: 1 }.into();
        assert_eq!((e.status, e.error_code), (StatusCode::NOT_FOUND, 40402));
        let disk_full = Error::Io { path: "/x".into(), source: std::io::Error::from_raw_os_error(28) };
        let e: ApiError = disk_full.into();
        assert_eq!(e.status, StatusCode::INSUFFICIENT_STORAGE);
        let e: ApiError = Error::LimitExceeded { limit: "max_message_bytes", value: 9, max: 1 }.into();
        assert_eq!(e.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(e.message.contains("max_message_bytes"), "{}", e.message);
        let e: ApiError = ViewError::NotFound("v".into()).into();
        assert_eq!((e.status, e.error_code), (StatusCode::NOT_FOUND, 40410));
        let e: ApiError = ViewError::Log(Error::TopicNotFound("t".into())).into();
        assert_eq!((e.status, e.error_code), (StatusCode::NOT_FOUND, 40401));
        let e: ApiError = GroupError::GroupNotFound("g".into()).into();
        assert_eq!((e.status, e.error_code), (StatusCode::NOT_FOUND, 40404));
        let e: ApiError = GroupError::Log(Error::Closed).into();
        assert_eq!(e.status, StatusCode::SERVICE_UNAVAILABLE);
        let e: ApiError = ViewError::InvalidSpec { field: "window.size_ms".into(), reason: "0".into() }.into();
        assert_eq!((e.status, e.error_code), (StatusCode::UNPROCESSABLE_ENTITY, 42210));
        assert!(e.message.contains("window.size_ms"), "{}", e.message);
    }
}
