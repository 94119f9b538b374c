//! Produce (key 0), v3-8.
//!
//! Advertised from v0 (librdkafka before 2.11.1 only compresses when the range includes v0, as
//! Kafka 4 advertises it) but served from v3: v0-2 carry the old message formats, and a request in
//! one closes the connection with a log line naming the version.
//!
//! Each partition's batches are checked (CRC-32C, counts, lengths, offset deltas) and appended as
//! one batch; the partitions of one request are appended concurrently, so they share group
//! commits. `acks = 1` and `acks = -1` are answered once the append is durable under the topic's
//! durability (after the fsync under `sync`); `acks = 0` is never answered. Internal topics
//! (`__…`) are refused.

use super::records::{self, ProducedBatch};
use super::wire::{Error, Reader, Result, Writer};
use super::{code, error_code, Answer, Context};
use crate::{Appended, TimestampType};

/// The first Produce version served.
pub const VERSION_SERVED_MIN: i16 = 3;

struct PartitionResult {
    index: i32,
    error: i16,
    message: Option<String>,
    base_offset: i64,
    log_append_time_ms: i64,
    log_start_offset: i64,
}

impl PartitionResult {
    fn failed(index: i32, error: i16, message: Option<String>) -> PartitionResult {
        PartitionResult { index, error, message, base_offset: -1, log_append_time_ms: -1, log_start_offset: -1 }
    }
}

pub async fn handle(ctx: &Context, version: i16, r: &mut Reader) -> Result<Answer> {
    if version < VERSION_SERVED_MIN {
        return Err(Error::Invalid {
            field: "request_api_version",
            reason: "Produce v0-2 (message formats v0 and v1) are not served; clients use v3 or later".into(),
        });
    }
    let transactional_id = r.nullable_string("transactional_id")?;
    let acks = r.i16("acks")?;
    r.i32("timeout_ms")?;
    let n = r.array_len("topic_data", 6)?;
    let mut topics = Vec::with_capacity(n);
    for _ in 0..n {
        let name = r.string("topic_data.name")?;
        let m = r.array_len("topic_data.partition_data", 8)?;
        let mut parts = Vec::with_capacity(m);
        for _ in 0..m {
            let index = r.i32("partition_data.index")?;
            let records = r.nullable_bytes("partition_data.records")?;
            parts.push((index, records));
        }
        topics.push((name, parts));
    }

    let mut pending = Vec::with_capacity(topics.len());
    for (name, parts) in topics {
        let mut results = Vec::with_capacity(parts.len());
        for (index, data) in parts {
            let refuse = |error, message: String| Slot::Done(PartitionResult::failed(index, error, Some(message)));
            let slot = if !matches!(acks, -1..=1) {
                refuse(code::INVALID_REQUIRED_ACKS, format!("acks {acks} is not one of -1, 0, 1"))
            } else if transactional_id.is_some() {
                refuse(code::INVALID_REQUEST, "transactional produce is not supported".into())
            } else if name.starts_with(crate::limits::INTERNAL_TOPIC_PREFIX) {
                refuse(code::INVALID_TOPIC_EXCEPTION, format!("{name} is an internal topic"))
            } else {
                match append(ctx, &name, index, data) {
                    Ok(handle) => Slot::Appending(index, handle),
                    Err(refused) => refuse(refused.code, refused.message),
                }
            };
            results.push(slot);
        }
        pending.push((name, results));
    }

    let mut responses = Vec::with_capacity(pending.len());
    for (name, slots) in pending {
        let mut done = Vec::with_capacity(slots.len());
        for slot in slots {
            done.push(match slot {
                Slot::Done(r) => r,
                Slot::Appending(index, handle) => match handle.await {
                    Ok((Ok(a), log_append, log_start, count)) => {
                        ctx.metrics.produced(count);
                        PartitionResult {
                            index,
                            error: code::NONE,
                            message: None,
                            base_offset: a.base_offset as i64,
                            log_append_time_ms: if log_append { a.log_append_time_ms } else { -1 },
                            log_start_offset: log_start as i64,
                        }
                    }
                    Ok((Err(e), ..)) => PartitionResult::failed(index, error_code(&e), Some(e.to_string())),
                    Err(e) => PartitionResult::failed(index, code::UNKNOWN_SERVER_ERROR, Some(e.to_string())),
                },
            });
        }
        responses.push((name, done));
    }
    if acks == 0 {
        return Ok(Answer::Nothing);
    }

    let mut w = Writer::new();
    w.array_len(responses.len());
    for (name, parts) in &responses {
        w.string(name).array_len(parts.len());
        for p in parts {
            w.i32(p.index).i16(p.error).i64(p.base_offset).i64(p.log_append_time_ms);
            if version >= 5 {
                w.i64(p.log_start_offset);
            }
            if version >= 8 {
                w.array_len(0); // record_errors
                w.nullable_string(p.message.as_deref());
            }
        }
    }
    w.i32(0); // throttle_time_ms
    Ok(Answer::Now(w))
}

type Appending = tokio::task::JoinHandle<(crate::Result<Appended>, bool, u64, u64)>;

enum Slot {
    Done(PartitionResult),
    Appending(i32, Appending),
}

/// Checks one partition's batches and starts appending them.
fn append(
    ctx: &Context,
    topic: &str,
    index: i32,
    data: Option<bytes::Bytes>,
) -> std::result::Result<Appending, records::Refused> {
    let unknown = |message: String| records::Refused { code: code::UNKNOWN_TOPIC_OR_PARTITION, message };
    let t = ctx.store.topic(topic).map_err(|e| unknown(e.to_string()))?;
    let p = u32::try_from(index)
        .map_err(|_| unknown(format!("partition {index}")))
        .and_then(|i| t.partition(i).map_err(|e| unknown(e.to_string())))?;
    let batches = records::decode_batches(data.unwrap_or_default())?;
    let mut all = Vec::new();
    for ProducedBatch { records, .. } in batches {
        if all.is_empty() {
            all = records;
        } else {
            all.extend(records);
        }
    }
    let log_append = p.config().timestamp_type == TimestampType::LogAppendTime;
    let count = all.len() as u64;
    Ok(tokio::spawn(async move {
        let appended = p.append_async(all).await;
        (appended, log_append, p.log_start_offset(), count)
    }))
}
