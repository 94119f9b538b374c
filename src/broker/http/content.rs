//! The embedded formats of the REST Proxy v2: keys and values as JSON (`json`) or base64
//! (`binary`), request parsing that names the bad field, and record rendering.

use axum::extract::{FromRequestParts, Path, Query};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap};
use base64::Engine as _;
use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize, Serializer};
use serde_json::value::RawValue;

use super::errors::{code, ApiError};
use crate::{Header, NewRecord, Record};

pub const CONTENT_TYPE_JSON: &str = "application/vnd.kafka.json.v2+json";
pub const CONTENT_TYPE_BINARY: &str = "application/vnd.kafka.binary.v2+json";

const BASE64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// How keys and values are embedded in JSON bodies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// Any JSON value, stored as its JSON text.
    Json,
    /// Base64 of the raw bytes.
    Binary,
}

impl Format {
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Json => CONTENT_TYPE_JSON,
            Format::Binary => CONTENT_TYPE_BINARY,
        }
    }
}

/// The format a produce body declares in `Content-Type`. No content type, `application/json` and
/// `application/vnd.kafka.v2+json` mean JSON; anything else (Avro, Protobuf, text) is a 415.
pub fn request_format(headers: &HeaderMap) -> Result<Format, ApiError> {
    let Some(value) = headers.get(header::CONTENT_TYPE) else { return Ok(Format::Json) };
    let value = value.to_str().unwrap_or("").split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    match value.as_str() {
        CONTENT_TYPE_JSON | "application/json" | "application/vnd.kafka.v2+json" | "" => Ok(Format::Json),
        CONTENT_TYPE_BINARY => Ok(Format::Binary),
        other => Err(ApiError::new(
            axum::http::StatusCode::UNSUPPORTED_MEDIA_TYPE,
            code::UNSUPPORTED_MEDIA_TYPE,
            format!("unsupported content type {other:?}: use {CONTENT_TYPE_JSON}, {CONTENT_TYPE_BINARY} or application/json"),
        )),
    }
}

/// The embedded format an `Accept` header asks for, if it names one: of the media types it lists
/// that name a format, the one of highest quality (`q`, default 1; `q=0` refuses it), the first
/// listed on a tie.
pub fn accept_format(headers: &HeaderMap) -> Option<Format> {
    let accept = headers.get(header::ACCEPT)?.to_str().ok()?.to_ascii_lowercase();
    let mut best: Option<(f32, Format)> = None;
    for item in accept.split(',') {
        let mut parts = item.split(';');
        let media = parts.next().unwrap_or("").trim();
        let format = if media.contains("vnd.kafka.binary.") {
            Format::Binary
        } else if media.contains("vnd.kafka.json.") || media == "application/json" {
            Format::Json
        } else {
            continue;
        };
        let q = parts
            .filter_map(|p| p.trim().strip_prefix("q="))
            .next()
            .map_or(Some(1.0), |q| q.trim().parse::<f32>().ok().filter(|q| (0.0..=1.0).contains(q)))
            .unwrap_or(0.0);
        if q > 0.0 && best.is_none_or(|(b, _)| q > b) {
            best = Some((q, format));
        }
    }
    best.map(|(_, f)| f)
}

/// Parses a JSON body into `T`; the error names the field that was wrong (`records[3].partition`).
pub fn parse_body<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    parse_body_borrowed(body)
}

/// Like [`parse_body`], for types that borrow from the body (no copy of keys and values).
pub fn parse_body_borrowed<'a, T: Deserialize<'a>>(body: &'a [u8]) -> Result<T, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let value: T = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if inner.is_syntax() || inner.is_eof() {
            ApiError::payload(format!("malformed JSON body (in field {path}): {inner}"))
        } else if path == "." || path.is_empty() {
            ApiError::payload(format!("invalid JSON body: {inner}"))
        } else {
            ApiError::payload(format!("field {path}: {inner}"))
        }
    })?;
    de.end().map_err(|e| ApiError::payload(format!("malformed JSON body: {e}")))?;
    Ok(value)
}

/// Like [`parse_body`], but an empty body is `T::default()`.
pub fn parse_body_or_default<T: DeserializeOwned + Default>(body: &[u8]) -> Result<T, ApiError> {
    if body.iter().all(|b| b.is_ascii_whitespace()) {
        return Ok(T::default());
    }
    parse_body(body)
}

/// A produce request: `{"records": [...]}`, borrowing keys and values from the body.
#[derive(Debug, Deserialize)]
pub struct ProduceRequest<'a> {
    #[serde(borrow)]
    pub records: Vec<ProduceRecord<'a>>,
}

#[derive(Debug, Deserialize)]
pub struct ProduceRecord<'a> {
    #[serde(default, borrow)]
    pub key: Option<&'a RawValue>,
    #[serde(default, borrow)]
    pub value: Option<&'a RawValue>,
    #[serde(default)]
    pub partition: Option<u32>,
    #[serde(default)]
    pub headers: Vec<HeaderIn>,
    /// Milliseconds since the epoch.
    #[serde(default)]
    pub timestamp: Option<i64>,
}

#[derive(Debug, Deserialize)]
pub struct HeaderIn {
    pub name: String,
    /// Base64; `null` (or absent) is a null value, `""` an empty one (Kafka's distinction).
    #[serde(default)]
    pub value: Option<String>,
}

/// The bytes of `raw`: a slice of `body` when `raw` lies in it (no copy), else a copy.
fn share(body: &Bytes, raw: &str) -> Bytes {
    let (start, end) = (body.as_ptr() as usize, body.as_ptr() as usize + body.len());
    let p = raw.as_ptr() as usize;
    if p >= start && p + raw.len() <= end {
        body.slice_ref(raw.as_bytes())
    } else {
        Bytes::copy_from_slice(raw.as_bytes())
    }
}

fn embedded(body: &Bytes, raw: &RawValue, format: Format, field: impl Fn() -> String) -> Result<Bytes, ApiError> {
    let bad = |e: serde_json::Error| {
        ApiError::payload(format!("field {}: binary data must be a base64 string: {e}", field()))
    };
    match format {
        Format::Json => Ok(share(body, raw.get())),
        Format::Binary => match serde_json::from_str::<&str>(raw.get()) {
            Ok(s) => decode_base64(s, field),
            // A string with escapes cannot be borrowed.
            Err(_) => decode_base64(&serde_json::from_str::<String>(raw.get()).map_err(bad)?, field),
        },
    }
}

fn decode_base64(s: &str, field: impl Fn() -> String) -> Result<Bytes, ApiError> {
    BASE64
        .decode(s.as_bytes())
        .map(Bytes::from)
        .map_err(|e| ApiError::payload(format!("field {}: invalid base64: {e}", field())))
}

impl ProduceRequest<'_> {
    /// Converts to records (`body` is the bytes the request was parsed from: JSON keys and values
    /// share it); `partition` overrides every record's own (produce to a partition).
    pub fn into_records(
        self,
        body: &Bytes,
        format: Format,
        partition: Option<u32>,
    ) -> Result<Vec<NewRecord>, ApiError> {
        let mut out = Vec::with_capacity(self.records.len());
        for (i, r) in self.records.into_iter().enumerate() {
            let mut r = convert(body, i, r, format)?;
            r.partition = partition.or(r.partition);
            out.push(r);
        }
        Ok(out)
    }
}

/// Record `i` of a produce body as a record to append (`body` is the bytes it was parsed from:
/// JSON keys and values share it).
pub fn convert(body: &Bytes, i: usize, r: ProduceRecord<'_>, format: Format) -> Result<NewRecord, ApiError> {
    let key = r.key.map(|k| embedded(body, k, format, || format!("records[{i}].key"))).transpose()?;
    let value = r.value.map(|v| embedded(body, v, format, || format!("records[{i}].value"))).transpose()?;
    let mut headers = Vec::with_capacity(r.headers.len());
    for (j, h) in r.headers.into_iter().enumerate() {
        let value = match h.value {
            Some(v) => Some(decode_base64(&v, || format!("records[{i}].headers[{j}].value"))?),
            None => None,
        };
        headers.push(Header { key: h.name, value });
    }
    if let Some(ts) = r.timestamp {
        if ts < 0 {
            return Err(ApiError::payload(format!("field records[{i}].timestamp: {ts} is negative")));
        }
    }
    Ok(NewRecord { key, value, headers, timestamp: r.timestamp, partition: r.partition })
}

/// A key or value rendered in a response.
#[derive(Debug)]
pub enum Embedded<'a> {
    Json(&'a RawValue),
    Text(String),
}

impl Serialize for Embedded<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Embedded::Json(raw) => raw.serialize(s),
            Embedded::Text(t) => s.serialize_str(t),
        }
    }
}

fn render<'a>(bytes: &'a Bytes, format: Format, what: &str, offset: u64) -> Result<Embedded<'a>, ApiError> {
    match format {
        Format::Binary => Ok(Embedded::Text(BASE64.encode(bytes))),
        Format::Json => {
            let raw: &RawValue = serde_json::from_slice(bytes).map_err(|e| {
                ApiError::new(
                    axum::http::StatusCode::NOT_ACCEPTABLE,
                    code::RECORD_FORMAT_MISMATCH,
                    format!(
                        "the {what} at offset {offset} is not JSON ({e}): fetch it with the binary format, or seek past it"
                    ),
                )
            })?;
            Ok(Embedded::Json(raw))
        }
    }
}

#[derive(Debug, Serialize)]
pub struct HeaderOut {
    pub name: String,
    /// Base64; `None` (JSON `null`) for a null value.
    pub value: Option<String>,
}

/// One record in a fetch response.
#[derive(Debug, Serialize)]
pub struct RecordOut<'a> {
    pub topic: &'a str,
    pub key: Option<Embedded<'a>>,
    pub value: Option<Embedded<'a>>,
    pub partition: u32,
    pub offset: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub headers: Option<Vec<HeaderOut>>,
}

/// Which optional fields a fetch returns (`?include=headers,timestamp`).
#[derive(Debug, Clone, Copy, Default)]
pub struct Include {
    pub headers: bool,
    pub timestamp: bool,
}

impl Include {
    pub fn parse(value: Option<&str>) -> Result<Include, ApiError> {
        let mut inc = Include::default();
        for part in value.unwrap_or("").split(',').map(str::trim).filter(|s| !s.is_empty()) {
            match part {
                "headers" => inc.headers = true,
                "timestamp" => inc.timestamp = true,
                other => {
                    return Err(ApiError::bad_request(format!("include: unknown field {other:?} (headers, timestamp)")))
                }
            }
        }
        Ok(inc)
    }
}

pub fn render_record<'a>(
    topic: &'a str,
    partition: u32,
    r: &'a Record,
    format: Format,
    inc: Include,
) -> Result<RecordOut<'a>, ApiError> {
    Ok(RecordOut {
        topic,
        key: r.key.as_ref().map(|k| render(k, format, "key", r.offset)).transpose()?,
        value: r.value.as_ref().map(|v| render(v, format, "value", r.offset)).transpose()?,
        partition,
        offset: r.offset,
        timestamp: inc.timestamp.then_some(r.timestamp),
        headers: inc.headers.then(|| {
            r.headers
                .iter()
                .map(|h| HeaderOut { name: h.key.clone(), value: h.value.as_ref().map(|v| BASE64.encode(v)) })
                .collect()
        }),
    })
}

/// Path parameters; a bad one is a Confluent-shaped 400 instead of axum's text.
#[derive(Debug)]
pub struct PathParams<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for PathParams<T> {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match Path::<T>::from_request_parts(parts, state).await {
            Ok(Path(t)) => Ok(PathParams(t)),
            Err(e) => Err(ApiError::bad_request(e.body_text())),
        }
    }
}

/// Query parameters as strings; handlers parse the ones they use and name the bad one.
#[derive(Debug, Default)]
pub struct Params(pub std::collections::HashMap<String, String>);

impl<S: Send + Sync> FromRequestParts<S> for Params {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        match Query::<std::collections::HashMap<String, String>>::try_from_uri(&parts.uri) {
            Ok(Query(q)) => Ok(Params(q)),
            Err(e) => Err(ApiError::bad_request(e.body_text())),
        }
    }
}

impl Params {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    /// A non-negative integer parameter, or `default` when absent.
    pub fn u64_or(&self, name: &str, default: u64) -> Result<u64, ApiError> {
        match self.get(name) {
            None => Ok(default),
            Some(s) => s.trim().parse::<u64>().map_err(|e| {
                ApiError::bad_request(format!("query parameter {name}={s:?} must be a non-negative integer: {e}"))
            }),
        }
    }

    pub fn u64_required(&self, name: &str) -> Result<u64, ApiError> {
        match self.get(name) {
            None => Err(ApiError::bad_request(format!("query parameter {name} is required"))),
            Some(_) => self.u64_or(name, 0),
        }
    }
}

/// Parses a partition id from the path.
pub fn partition_id(s: &str) -> Result<u32, ApiError> {
    s.parse::<u32>()
        .map_err(|e| ApiError::bad_request(format!("partition {s:?} must be a non-negative integer below 2^32: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_follows_quality() {
        let format = |accept: &str| {
            let mut h = HeaderMap::new();
            h.insert(header::ACCEPT, accept.parse().unwrap());
            accept_format(&h)
        };
        let (json, binary) = (Some(Format::Json), Some(Format::Binary));
        assert_eq!(format(CONTENT_TYPE_BINARY), binary);
        assert_eq!(format("application/vnd.kafka.binary.v2+json;q=0.2, application/vnd.kafka.json.v2+json"), json);
        assert_eq!(
            format("application/vnd.kafka.json.v2+json; q=0.5, application/vnd.kafka.binary.v2+json; q=0.9"),
            binary
        );
        assert_eq!(format("application/vnd.kafka.binary.v2+json;q=0, application/json"), json);
        assert_eq!(format("application/vnd.kafka.binary.v2+json;q=0"), None);
        assert_eq!(format("application/json, application/vnd.kafka.binary.v2+json"), json);
        assert_eq!(format("text/html, */*"), None);
    }

    #[test]
    fn bad_field_is_named() {
        let e = parse_body_borrowed::<ProduceRequest>(br#"{"records":[{"value":1},{"value":2,"partition":"x"}]}"#)
            .unwrap_err();
        assert!(e.message.contains("records[1].partition"), "{}", e.message);
        let e = parse_body_borrowed::<ProduceRequest>(b"{nope").unwrap_err();
        assert!(e.message.contains("malformed"), "{}", e.message);
    }

    #[test]
    fn escaped_base64_decodes() {
        let body = Bytes::from_static(br#"{"records":[{"value":"a\/8="}]}"#);
        let req: ProduceRequest = parse_body_borrowed(&body).unwrap();
        let recs = req.into_records(&body, Format::Binary, None).unwrap();
        assert_eq!(recs[0].value.as_deref(), Some(&[0x6b, 0xff][..]));
    }

    #[test]
    fn binary_values_decode_and_bad_base64_is_named() {
        let body = Bytes::from_static(br#"{"records":[{"key":"a2V5","value":"dmFs"}]}"#);
        let req: ProduceRequest = parse_body_borrowed(&body).unwrap();
        let recs = req.into_records(&body, Format::Binary, None).unwrap();
        assert_eq!(recs[0].key.as_deref(), Some(&b"key"[..]));
        assert_eq!(recs[0].value.as_deref(), Some(&b"val"[..]));
        let body = Bytes::from_static(br#"{"records":[{"value":"!!!"}]}"#);
        let req: ProduceRequest = parse_body_borrowed(&body).unwrap();
        let e = req.into_records(&body, Format::Binary, None).unwrap_err();
        assert!(e.message.contains("records[0].value") && e.message.contains("base64"), "{}", e.message);
    }

    #[test]
    fn json_values_keep_their_text() {
        let body = Bytes::from_static(br#"{"records":[{"value":{"a":[1,2]},"key":null}]}"#);
        let req: ProduceRequest = parse_body_borrowed(&body).unwrap();
        let recs = req.into_records(&body, Format::Json, Some(2)).unwrap();
        // The value shares the body's memory.
        let v = recs[0].value.as_ref().unwrap();
        assert!(v.as_ptr() >= body.as_ptr() && v.as_ptr() < body.as_ptr().wrapping_add(body.len()));
        assert_eq!(recs[0].value.as_deref(), Some(&br#"{"a":[1,2]}"#[..]));
        assert_eq!(recs[0].key, None);
        assert_eq!(recs[0].partition, Some(2));
    }
}
