//! A produce body walked record by record: `{"records": [...]}` is parsed one record at a time
//! and each is handed on before the next is read, so that no vector of all the records is ever
//! built; more than [`PRODUCE_RECORDS_MAX`] records stop the parse there. The response's offsets
//! are streamed the same way.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::content::ProduceRecord;
use super::errors::ApiError;
use crate::config::BATCH_RECORDS_MAX;
use crate::Error;

/// Most records in one produce request (all its partitions together).
pub const PRODUCE_RECORDS_MAX: usize = BATCH_RECORDS_MAX as usize;

/// The optional `producer` of a produce body: an idempotent producer's id (from `POST /producers`),
/// epoch and the sequence of the request's first record. A retry of a request with the same
/// producer fields and records is answered with the offsets the first one got, and not written
/// again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProducerField {
    pub id: i64,
    pub epoch: i16,
    pub sequence: i32,
}

/// Calls `each(index, record)` for every record of a produce body, in order; returns how many.
/// The error names the bad field (`records[3].partition`), or is the first error of `each`.
pub fn for_each_record<'a>(
    body: &'a [u8],
    each: impl FnMut(usize, ProduceRecord<'a>) -> Result<(), ApiError>,
) -> Result<usize, ApiError> {
    walk_body(body, each).map(|(count, _)| count)
}

/// [`for_each_record`], also giving the body's `producer` field if it has one.
pub fn walk_body<'a>(
    body: &'a [u8],
    mut each: impl FnMut(usize, ProduceRecord<'a>) -> Result<(), ApiError>,
) -> Result<(usize, Option<ProducerField>), ApiError> {
    let mut walk = Walk { each: &mut each, count: 0, failed: None, producer: None };
    let mut de = serde_json::Deserializer::from_slice(body);
    let walked = (&mut walk).deserialize(&mut de);
    if let Some(e) = walk.failed.take() {
        return Err(e);
    }
    if walked.is_err() {
        // Walked again, tracking the path, to name the bad field: the same error at the same place
        // (the records before it were accepted the first time, so they are again).
        let mut again = Walk { each: &mut |_, _| Ok(()), count: 0, failed: None, producer: None };
        let mut de = serde_json::Deserializer::from_slice(body);
        let mut track = serde_path_to_error::Track::new();
        let walked = (&mut again).deserialize(serde_path_to_error::Deserializer::new(&mut de, &mut track));
        let inner = match (again.failed, walked) {
            (Some(e), _) => return Err(e),
            (None, Err(inner)) => inner,
            (None, Ok(())) => return Err(ApiError::internal("a produce body parsed only the second time")),
        };
        let path = track.path().to_string();
        return Err(if inner.is_syntax() || inner.is_eof() {
            ApiError::payload(format!("malformed JSON body (in field {path}): {inner}"))
        } else if path == "." || path.is_empty() {
            ApiError::payload(format!("invalid JSON body: {inner}"))
        } else {
            ApiError::payload(format!("field {path}: {inner}"))
        });
    }
    de.end().map_err(|e| ApiError::payload(format!("malformed JSON body: {e}")))?;
    if walk.count == 0 {
        return Err(ApiError::payload("field records: at least one record is needed"));
    }
    Ok((walk.count, walk.producer))
}

struct Walk<'f, F> {
    each: &'f mut F,
    count: usize,
    /// The error of `each` (or the limit), which stopped the parse.
    failed: Option<ApiError>,
    producer: Option<ProducerField>,
}

impl<'de, F: FnMut(usize, ProduceRecord<'de>) -> Result<(), ApiError>> DeserializeSeed<'de> for &mut Walk<'_, F> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de, F: FnMut(usize, ProduceRecord<'de>) -> Result<(), ApiError>> Visitor<'de> for &mut Walk<'_, F> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an object with a field records")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut seen = false;
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            if key == "records" {
                if seen {
                    return Err(de::Error::duplicate_field("records"));
                }
                seen = true;
                map.next_value_seed(Records(&mut *self))?;
            } else if key == "producer" {
                if self.producer.is_some() {
                    return Err(de::Error::duplicate_field("producer"));
                }
                self.producer = map.next_value::<Option<ProducerField>>()?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        if !seen {
            return Err(de::Error::missing_field("records"));
        }
        Ok(())
    }
}

struct Records<'w, 'f, F>(&'w mut Walk<'f, F>);

impl<'de, F: FnMut(usize, ProduceRecord<'de>) -> Result<(), ApiError>> DeserializeSeed<'de> for Records<'_, '_, F> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de, F: FnMut(usize, ProduceRecord<'de>) -> Result<(), ApiError>> Visitor<'de> for Records<'_, '_, F> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a list of records")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let walk = self.0;
        while let Some(record) = seq.next_element::<ProduceRecord<'de>>()? {
            if walk.count == PRODUCE_RECORDS_MAX {
                let limit = Error::LimitExceeded {
                    limit: "PRODUCE_RECORDS_MAX",
                    value: walk.count as u64 + 1,
                    max: PRODUCE_RECORDS_MAX as u64,
                };
                walk.failed = Some(ApiError::from(limit));
                return Err(de::Error::custom("too many records"));
            }
            if let Err(e) = (walk.each)(walk.count, record) {
                walk.failed = Some(e);
                return Err(de::Error::custom("a record was refused"));
            }
            walk.count += 1;
        }
        Ok(())
    }
}

/// Offsets rendered per chunk of the streamed response.
pub(crate) const OFFSETS_PER_CHUNK: usize = 2048;

/// The produce response, `{"key_schema_id":null,"value_schema_id":null,"offsets":[...]}`, made a
/// chunk at a time as the client reads it, from where the records went.
#[derive(Debug)]
pub struct OffsetsBody<I> {
    offsets: I,
    started: bool,
    done: bool,
}

impl<I: Iterator<Item = (u32, u64)>> OffsetsBody<I> {
    pub fn new(offsets: I) -> OffsetsBody<I> {
        OffsetsBody { offsets, started: false, done: false }
    }

    /// The whole body at once: for answers of at most `OFFSETS_PER_CHUNK` offsets, sent with a
    /// `Content-Length` instead of in chunks.
    pub fn into_bytes(mut self) -> Bytes {
        let mut out = Vec::new();
        while let Some(chunk) = self.next_chunk() {
            out.extend_from_slice(&chunk);
        }
        Bytes::from(out)
    }

    fn next_chunk(&mut self) -> Option<Bytes> {
        use std::fmt::Write as _;
        if self.done {
            return None;
        }
        // About 60 bytes per offset: a chunk of a small answer stays small.
        let (low, _) = self.offsets.size_hint();
        let mut out = String::with_capacity(64 + low.min(OFFSETS_PER_CHUNK) * 64);
        if !self.started {
            out.push_str(r#"{"key_schema_id":null,"value_schema_id":null,"offsets":["#);
        }
        for _ in 0..OFFSETS_PER_CHUNK {
            match self.offsets.next() {
                Some((partition, offset)) => {
                    if self.started {
                        out.push(',');
                    }
                    self.started = true;
                    let _ =
                        write!(out, r#"{{"partition":{partition},"offset":{offset},"error_code":null,"error":null}}"#);
                }
                None => {
                    out.push_str("]}");
                    self.done = true;
                    break;
                }
            }
        }
        self.started = true;
        Some(Bytes::from(out))
    }
}

impl<I: Iterator<Item = (u32, u64)> + Unpin> futures_core::Stream for OffsetsBody<I> {
    type Item = Result<Bytes, std::convert::Infallible>;
    fn poll_next(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        Poll::Ready(self.next_chunk().map(Ok))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn walk(body: &str) -> Result<Vec<usize>, ApiError> {
        let mut seen = Vec::new();
        for_each_record(body.as_bytes(), |i, _| {
            seen.push(i);
            Ok(())
        })
        .map(|_| seen)
    }

    #[test]
    fn records_are_walked_and_bad_fields_named() {
        assert_eq!(walk(r#"{"x": [1], "records": [{"value": 1}, {}]}"#).unwrap(), vec![0, 1]);
        let e = walk(r#"{"records": [{"value": 1}, {"partition": "x"}]}"#).unwrap_err();
        assert!(e.message.contains("records[1].partition"), "{}", e.message);
        assert!(walk(r#"{"records": []}"#).unwrap_err().message.contains("at least one"));
        assert!(walk(r#"{"nope": []}"#).unwrap_err().message.contains("records"));
        assert!(walk(r#"{"records": [{}]} x"#).unwrap_err().message.contains("malformed"));
    }

    #[test]
    fn the_producer_field_is_read_wherever_it_is() {
        let body = br#"{"records": [{}], "producer": {"id": 3, "epoch": 1, "sequence": 9}}"#;
        let (n, p) = walk_body(body, |_, _| Ok(())).unwrap();
        assert_eq!((n, p), (1, Some(ProducerField { id: 3, epoch: 1, sequence: 9 })));
        let body = br#"{"producer": null, "records": [{}]}"#;
        assert_eq!(walk_body(body, |_, _| Ok(())).unwrap().1, None);
        let e = walk_body(br#"{"producer": {"id": 3, "epoch": 1}, "records": [{}]}"#, |_, _| Ok(())).unwrap_err();
        assert!(e.message.contains("producer") && e.message.contains("sequence"), "{}", e.message);
        let e = walk_body(br#"{"producer": {"id": 3, "epoch": 99999, "sequence": 0}, "records": [{}]}"#, |_, _| Ok(()))
            .unwrap_err();
        assert!(e.message.contains("producer.epoch"), "{}", e.message);
    }

    #[test]
    fn the_record_limit_stops_the_parse() {
        let body = format!(r#"{{"records":[{}{{}}]}}"#, "{},".repeat(PRODUCE_RECORDS_MAX));
        let mut n = 0;
        let e = for_each_record(body.as_bytes(), |_, _| {
            n += 1;
            Ok(())
        })
        .unwrap_err();
        assert!(e.message.contains("PRODUCE_RECORDS_MAX"), "{}", e.message);
        assert_eq!(n, PRODUCE_RECORDS_MAX);
    }

    #[test]
    fn offsets_stream_as_one_json_document() {
        let mut body = OffsetsBody::new((0..5000u64).map(|o| ((o % 3) as u32, o)));
        let mut text = Vec::new();
        let waker = std::task::Waker::noop();
        let mut cx = Context::from_waker(waker);
        while let Poll::Ready(Some(Ok(chunk))) = futures_core::Stream::poll_next(Pin::new(&mut body), &mut cx) {
            text.extend_from_slice(&chunk);
        }
        let v: serde_json::Value = serde_json::from_slice(&text).unwrap();
        assert_eq!(v["offsets"].as_array().unwrap().len(), 5000);
        assert_eq!(v["offsets"][4999]["offset"], 4999);
        assert_eq!(v["offsets"][4]["partition"], 1);
        // The same text at once, as small answers are sent.
        let whole = OffsetsBody::new((0..5000u64).map(|o| ((o % 3) as u32, o))).into_bytes();
        assert_eq!(&whole[..], &text[..]);
        let one: serde_json::Value =
            serde_json::from_slice(&OffsetsBody::new([(2, 7)].into_iter()).into_bytes()).unwrap();
        assert_eq!(one["offsets"][0]["offset"], 7);
    }
}
