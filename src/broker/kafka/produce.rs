//! Produce (key 0), v3-8.
//!
//! Advertised from v0 (librdkafka before 2.11.1 only compresses when the range includes v0, as
//! Kafka 4 advertises it) but served from v3: v0-2 carry the old message formats, and a request in
//! one closes the connection with a log line naming the version.
//!
//! Each partition's batch (exactly one, as Kafka requires from v3) is checked (CRC-32C, counts,
//! lengths, offset deltas, bounded decompression) and stored as it came, compressed or not (the
//! topic's `compression.type` may recompress it); a batch with a producer id (an idempotent producer, see
//! InitProducerId) is deduplicated by its sequence: a retry of one of the producer's last five
//! batches is acknowledged with its first offsets, a gap is OUT_OF_ORDER_SEQUENCE_NUMBER and an
//! old epoch INVALID_PRODUCER_EPOCH. The partitions of one request are appended concurrently, so they share group
//! commits. `acks = 1` and `acks = -1` are answered once the append is durable under the topic's
//! durability (after the fsync under `sync`); `acks = 0` is never answered. Internal topics
//! (`__…`) are refused.

use super::wire::{Error, Reader, Result, Writer};
use super::{code, error_code, Answer, Context};
use crate::log::commit::PendingAsync;
use crate::log::partition::PreparedBatch;
use crate::{Appended, Partition, TimestampType};

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

    // Every partition's batch is checked concurrently, then queued in the request's order: the
    // connection reads its next request only once this one's batches are in the log's order, so a
    // producer's batches keep their order while their fsyncs are awaited together.
    let mut checking = Vec::with_capacity(topics.len());
    for (name, parts) in topics {
        let mut slots = Vec::with_capacity(parts.len());
        for (index, data) in parts {
            let refuse = |error, message: String| Slot::Done(PartitionResult::failed(index, error, Some(message)));
            let slot = if !matches!(acks, -1..=1) {
                refuse(code::INVALID_REQUIRED_ACKS, format!("acks {acks} is not one of -1, 0, 1"))
            } else if transactional_id.is_some() {
                refuse(code::INVALID_REQUEST, "transactional produce is not supported".into())
            } else if name.starts_with(crate::limits::INTERNAL_TOPIC_PREFIX) {
                refuse(code::INVALID_TOPIC_EXCEPTION, format!("{name} is an internal topic"))
            } else {
                match check(ctx, &name, index, data) {
                    Ok(handle) => Slot::Checking(index, handle),
                    Err(refused) => refuse(refused.code, refused.message),
                }
            };
            slots.push(slot);
        }
        checking.push((name, slots));
    }
    let mut queued = Vec::with_capacity(checking.len());
    for (name, slots) in checking {
        let mut next = Vec::with_capacity(slots.len());
        for slot in slots {
            next.push(match slot {
                Slot::Checking(index, handle) => match handle.await {
                    Ok(Ok(checked)) => Slot::Queued(index, queue(checked).await),
                    Ok(Err(refused)) => Slot::Done(PartitionResult::failed(index, refused.code, Some(refused.message))),
                    Err(e) => {
                        Slot::Done(PartitionResult::failed(index, code::UNKNOWN_SERVER_ERROR, Some(e.to_string())))
                    }
                },
                done => done,
            });
        }
        queued.push((name, next));
    }

    let metrics = std::sync::Arc::clone(&ctx.metrics);
    let answer = async move {
        let mut responses = Vec::with_capacity(queued.len());
        for (name, slots) in queued {
            let mut done = Vec::with_capacity(slots.len());
            for slot in slots {
                done.push(match slot {
                    Slot::Queued(index, q) => {
                        let (partition, log_append, count) = (q.partition.clone(), q.log_append, q.count);
                        match q.durable.wait().await {
                            Ok(a) => {
                                metrics.produced(count);
                                PartitionResult {
                                    index,
                                    error: code::NONE,
                                    message: None,
                                    base_offset: a.base_offset as i64,
                                    log_append_time_ms: if log_append { a.log_append_time_ms } else { -1 },
                                    log_start_offset: partition.log_start_offset() as i64,
                                }
                            }
                            Err(e) => PartitionResult::failed(index, error_code(&e), Some(e.to_string())),
                        }
                    }
                    Slot::Done(r) => r,
                    Slot::Checking(..) => unreachable!("every batch is queued or refused"),
                });
            }
            responses.push((name, done));
        }
        encode(version, &responses)
    };
    if acks == 0 {
        // Nothing is sent back; the appends still complete (and are counted) in the background.
        tokio::spawn(answer);
        return Ok(Answer::Nothing);
    }
    Ok(Answer::Later(Box::pin(answer)))
}

fn encode(version: i16, responses: &[(String, Vec<PartitionResult>)]) -> Writer {
    let mut w = Writer::new();
    w.array_len(responses.len());
    for (name, parts) in responses {
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
    w
}

/// A partition's batch, checked and ready to queue.
struct Checked {
    partition: Partition,
    batch: PreparedBatch,
    log_append: bool,
    count: u64,
}

/// A batch in the log's order, waiting to be durable.
struct Queued {
    partition: Partition,
    durable: Durable,
    log_append: bool,
    count: u64,
}

/// Where a queued batch stands: written (or failed) already, or in the group commit until its fsync.
enum Durable {
    Done(crate::Result<Appended>),
    Pending(PendingAsync),
}

impl Durable {
    async fn wait(self) -> crate::Result<Appended> {
        match self {
            Durable::Done(done) => done,
            Durable::Pending(pending) => pending.wait().await,
        }
    }
}

/// Queues a checked batch: under `sync` into the store's group commit (awaiting room when its
/// queue is full: the back-pressure on a producer faster than the disk); otherwise it is written
/// before this returns.
async fn queue(c: Checked) -> Queued {
    let Checked { partition, batch, log_append, count } = c;
    let durable = if batch.is_sync() {
        match partition.committer().enqueue(&partition, batch).await {
            Ok(pending) => Durable::Pending(pending),
            Err(e) => Durable::Done(Err(e)),
        }
    } else {
        Durable::Done(partition.write_prepared_async(batch).await.map(|(appended, _, _)| appended))
    };
    Queued { partition, durable, log_append, count }
}

type Checking = tokio::task::JoinHandle<std::result::Result<Checked, Refused>>;

enum Slot {
    Done(PartitionResult),
    Checking(i32, Checking),
    Queued(i32, Queued),
}
/// The Kafka code for a refused batch: CORRUPT_MESSAGE when its CRC-32C does not match (or it is
/// too short to have one), else the store error's code.
fn refusal_code(batch: &[u8], e: &crate::Error) -> i16 {
    if matches!(e, crate::Error::InvalidRecord(_)) {
        let crc_ok = batch.len() > CRC_START
            && crc32c::crc32c(&batch[CRC_START..]).to_be_bytes() == batch[CRC_START - 4..CRC_START];
        if !crc_ok {
            return code::CORRUPT_MESSAGE;
        }
    }
    error_code(e)
}

/// Where the CRC-32C's coverage starts in a RecordBatch v2 (the attributes).
const CRC_START: usize = 21;
/// Where `recordsCount` is.
const RECORD_COUNT_AT: usize = 57;

/// Starts checking one partition's batch, stored as the client sent it (see
/// [`Partition::append_batch`](crate::Partition::append_batch) for what is checked).
fn check(ctx: &Context, topic: &str, index: i32, data: Option<bytes::Bytes>) -> std::result::Result<Checking, Refused> {
    let unknown = |message: String| Refused { code: code::UNKNOWN_TOPIC_OR_PARTITION, message };
    let t = ctx.store.topic(topic).map_err(|e| unknown(e.to_string()))?;
    let p = u32::try_from(index)
        .map_err(|_| unknown(format!("partition {index}")))
        .and_then(|i| t.partition(i).map_err(|e| unknown(e.to_string())))?;
    let batch = data.unwrap_or_default();
    let count =
        batch.get(RECORD_COUNT_AT..RECORD_COUNT_AT + 4).map_or(0, |b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]));
    let log_append = p.config().timestamp_type == TimestampType::LogAppendTime;
    Ok(tokio::spawn(async move {
        match p.prepare_client_batch(batch.clone()) {
            Ok(prepared) => Ok(Checked { partition: p, batch: prepared, log_append, count: u64::from(count) }),
            Err(e) => Err(Refused { code: refusal_code(&batch, &e), message: e.to_string() }),
        }
    }))
}

/// A partition refused before its append started.
struct Refused {
    code: i16,
    message: String,
}
