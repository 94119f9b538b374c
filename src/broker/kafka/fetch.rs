//! Fetch (key 1), v4-11.
//!
//! Each partition returns the whole batches from the one holding `fetch_offset` (a fetch that
//! starts inside a batch gets that batch; clients skip the records before their offset), up to
//! `partition_max_bytes` per partition and `max_bytes` for the response, and always at least one
//! batch when there is one (KIP-74), so a batch larger than the limits still makes progress.
//! Offsets outside `[log start, high watermark]` answer OFFSET_OUT_OF_RANGE.
//!
//! When the response holds fewer than `min_bytes`, the fetch waits up to `max_wait_ms` for data
//! on any partition it asks for, through the log's notification (no polling), and answers at
//! once when the broker shuts down. Fetch sessions (KIP-227) are not kept: `session_id` is 0, so
//! clients send full fetches. There are no transactions: the last stable offset is the high
//! watermark and no transaction is aborted.

use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};

use super::records;
use super::wire::{Reader, Result, Writer};
use super::{blocking, code, error_code, Context};
use crate::{Partition, Store, TimestampType};

/// The longest `max_wait_ms` honoured.
pub const FETCH_WAIT_MS_MAX: u64 = 60_000;

struct Wanted {
    index: i32,
    offset: i64,
    max_bytes: i32,
}

struct Got {
    index: i32,
    error: i16,
    high_watermark: i64,
    log_start_offset: i64,
    records: Option<Bytes>,
}

pub async fn handle(ctx: &Context, version: i16, r: &mut Reader) -> Result<Writer> {
    r.i32("replica_id")?;
    let max_wait_ms = r.i32("max_wait_ms")?;
    let min_bytes = r.i32("min_bytes")?;
    let max_bytes = r.i32("max_bytes")?;
    r.i8("isolation_level")?;
    if version >= 7 {
        r.i32("session_id")?;
        r.i32("session_epoch")?;
    }
    let n = r.array_len("topics", 6)?;
    let mut topics = Vec::with_capacity(n);
    for _ in 0..n {
        let name = r.string("topics.topic")?;
        let per = 16 + if version >= 5 { 8 } else { 0 } + if version >= 9 { 4 } else { 0 };
        let m = r.array_len("topics.partitions", per)?;
        let mut parts = Vec::with_capacity(m);
        for _ in 0..m {
            let index = r.i32("partitions.partition")?;
            if version >= 9 {
                r.i32("partitions.current_leader_epoch")?;
            }
            let offset = r.i64("partitions.fetch_offset")?;
            if version >= 5 {
                r.i64("partitions.log_start_offset")?;
            }
            let max_bytes = r.i32("partitions.partition_max_bytes")?;
            parts.push(Wanted { index, offset, max_bytes });
        }
        topics.push((name, parts));
    }
    if version >= 7 {
        let f = r.array_len("forgotten_topics_data", 6)?;
        for _ in 0..f {
            r.string("forgotten_topics_data.topic")?;
            let k = r.array_len("forgotten_topics_data.partitions", 4)?;
            for _ in 0..k {
                r.i32("forgotten_topics_data.partitions")?;
            }
        }
    }
    if version >= 11 {
        r.string("rack_id")?;
    }

    let deadline = Instant::now() + Duration::from_millis((max_wait_ms.max(0) as u64).min(FETCH_WAIT_MS_MAX));
    let min_bytes = min_bytes.max(0) as usize;
    let max_bytes = if max_bytes <= 0 { usize::MAX } else { max_bytes as usize };
    let topics = std::sync::Arc::new(topics);
    let result = loop {
        let (store, wanted) = (ctx.store.clone(), std::sync::Arc::clone(&topics));
        let pass = blocking(move || read_all(&store, &wanted, max_bytes)).await;
        if pass.bytes >= min_bytes || pass.failed || pass.waits.is_empty() || *ctx.stop.borrow() {
            break pass.result;
        }
        if Instant::now() >= deadline {
            break pass.result;
        }
        // Park until any partition asked for gets more data, the deadline passes, or shutdown.
        let mut set = tokio::task::JoinSet::new();
        for (p, offset) in pass.waits {
            set.spawn(async move { p.wait_for_data(offset).await });
        }
        let mut stop = ctx.stop.clone();
        tokio::select! {
            _ = set.join_next() => {}
            _ = tokio::time::sleep_until(deadline.into()) => {}
            _ = stop.wait_for(|s| *s) => {}
        }
    };

    let mut w = Writer::new();
    w.i32(0); // throttle_time_ms
    if version >= 7 {
        w.i16(code::NONE).i32(0); // error_code, session_id
    }
    w.array_len(result.len());
    for (name, parts) in result {
        w.string(&name).array_len(parts.len());
        for p in parts {
            w.i32(p.index).i16(p.error).i64(p.high_watermark);
            w.i64(p.high_watermark); // last_stable_offset
            if version >= 5 {
                w.i64(p.log_start_offset);
            }
            w.array_len(0); // aborted_transactions
            if version >= 11 {
                w.i32(-1); // preferred_read_replica
            }
            match p.records {
                None => w.i32(0),
                Some(b) => {
                    ctx.metrics.fetched(b.len() as u64);
                    w.i32(b.len() as i32).shared(b)
                }
            };
        }
    }
    Ok(w)
}

/// One pass over every partition asked for.
struct Pass {
    result: Vec<(String, Vec<Got>)>,
    /// Record bytes in `result`.
    bytes: usize,
    /// A partition answered an error: the fetch answers at once.
    failed: bool,
    /// Each partition read with its high watermark: a long-poll waits for any to pass it.
    waits: Vec<(Partition, u64)>,
}

fn read_all(store: &Store, topics: &[(String, Vec<Wanted>)], max_bytes: usize) -> Pass {
    let mut total = 0usize;
    let mut waits = Vec::new();
    let mut failed = false;
    let mut out = Vec::with_capacity(topics.len());
    for (name, parts) in topics {
        let topic = store.topic(name);
        let mut got = Vec::with_capacity(parts.len());
        for w in parts {
            let gone = |error| Got { index: w.index, error, high_watermark: -1, log_start_offset: -1, records: None };
            let p = match &topic {
                Err(e) => {
                    got.push(gone(error_code(e)));
                    continue;
                }
                Ok(t) => match u32::try_from(w.index).map(|i| t.partition(i)) {
                    Ok(Ok(p)) => p,
                    _ => {
                        got.push(gone(code::UNKNOWN_TOPIC_OR_PARTITION));
                        continue;
                    }
                },
            };
            let (hw, start) = (p.high_watermark(), p.log_start_offset());
            let mut g = Got {
                index: w.index,
                error: code::NONE,
                high_watermark: hw as i64,
                log_start_offset: start as i64,
                records: None,
            };
            let room = (w.max_bytes.max(0) as usize).min(max_bytes.saturating_sub(total));
            if w.offset < start as i64 || w.offset > hw as i64 {
                g.error = code::OFFSET_OUT_OF_RANGE;
            } else if (w.offset as u64) < hw && (room > 0 || total == 0) {
                // At least one batch (KIP-74): a batch larger than the limits still makes progress.
                match encode(&p, w.offset as u64, room) {
                    Ok(b) => {
                        total += b.len();
                        g.records = Some(b);
                    }
                    Err(e) => g.error = error_code(&e),
                }
            }
            failed |= g.error != code::NONE;
            if g.error == code::NONE {
                waits.push((p.clone(), hw));
            }
            got.push(g);
        }
        failed |= got.iter().any(|g| g.error != code::NONE);
        out.push((name.clone(), got));
    }
    Pass { result: out, bytes: total, failed, waits }
}

/// The batches from the one holding `offset`, about `max_bytes` of them (at least one), as Kafka
/// RecordBatch v2.
fn encode(p: &Partition, offset: u64, max_bytes: usize) -> crate::Result<Bytes> {
    let log_append = p.config().timestamp_type == TimestampType::LogAppendTime;
    let batches = p.read_batches(offset, max_bytes, usize::MAX)?;
    let mut out = BytesMut::new();
    for b in &batches {
        let mut refs = Vec::new();
        b.for_each(|r| refs.push(r))?;
        if refs.is_empty() {
            continue;
        }
        let base = b.base_offset().min(refs[0].offset);
        records::encode_batch(&mut out, base, b.last_offset(), log_append, &refs);
        if out.len() >= max_bytes {
            break;
        }
    }
    Ok(out.freeze())
}
