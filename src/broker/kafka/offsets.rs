//! ListOffsets (key 2), v1-5, and DeleteRecords (key 21), v0-1.
//!
//! ListOffsets: timestamp -1 is the high watermark (latest), -2 the log start (earliest); any
//! other is the first offset whose record's timestamp is at or after it, through the time index,
//! or offset -1 when every record is older. DeleteRecords moves a partition's log start offset
//! (durably) to the offset given (-1: the high watermark); reads below it answer
//! OFFSET_OUT_OF_RANGE from then on, and the cleaner removes the segments below it.

use super::wire::{Reader, Result, Writer};
use super::{blocking, code, error_code, Context};
use crate::{Partition, Store};

/// ListOffsets' special timestamps.
pub const LATEST: i64 = -1;
pub const EARLIEST: i64 = -2;

fn partition(store: &Store, topic: &str, index: i32) -> std::result::Result<Partition, i16> {
    let t = store.topic(topic).map_err(|e| error_code(&e))?;
    let i = u32::try_from(index).map_err(|_| code::UNKNOWN_TOPIC_OR_PARTITION)?;
    t.partition(i).map_err(|e| error_code(&e))
}

/// `(error, timestamp, offset)` for one partition.
fn list_one(store: &Store, topic: &str, index: i32, timestamp: i64) -> (i16, i64, i64) {
    let p = match partition(store, topic, index) {
        Ok(p) => p,
        Err(e) => return (e, -1, -1),
    };
    match timestamp {
        LATEST => (code::NONE, -1, p.high_watermark() as i64),
        EARLIEST => (code::NONE, -1, p.log_start_offset() as i64),
        ts => match p.offset_for_timestamp(ts) {
            Ok(None) => (code::NONE, -1, -1),
            Ok(Some(o)) => {
                let found = p.read(o, 1, 1).ok().and_then(|r| r.into_iter().next());
                (code::NONE, found.as_ref().map_or(ts, |r| r.timestamp), found.map_or(o, |r| r.offset) as i64)
            }
            Err(e) => (error_code(&e), -1, -1),
        },
    }
}

pub async fn list_offsets(ctx: &Context, version: i16, r: &mut Reader) -> Result<Writer> {
    r.i32("replica_id")?;
    if version >= 2 {
        r.i8("isolation_level")?;
    }
    let n = r.array_len("topics", 6)?;
    let mut topics = Vec::with_capacity(n);
    for _ in 0..n {
        let name = r.string("topics.name")?;
        let m = r.array_len("topics.partitions", if version >= 4 { 16 } else { 12 })?;
        let mut parts = Vec::with_capacity(m);
        for _ in 0..m {
            let index = r.i32("partitions.partition_index")?;
            if version >= 4 {
                r.i32("partitions.current_leader_epoch")?;
            }
            parts.push((index, r.i64("partitions.timestamp")?));
        }
        topics.push((name, parts));
    }
    let store = ctx.store.clone();
    let answers = blocking(move || {
        topics
            .into_iter()
            .map(|(name, parts)| {
                let got: Vec<_> = parts.iter().map(|&(i, ts)| (i, list_one(&store, &name, i, ts))).collect();
                (name, got)
            })
            .collect::<Vec<_>>()
    })
    .await;
    let mut w = Writer::new();
    if version >= 2 {
        w.i32(0); // throttle_time_ms
    }
    w.array_len(answers.len());
    for (name, parts) in &answers {
        w.string(name).array_len(parts.len());
        for &(index, (error, timestamp, offset)) in parts {
            w.i32(index).i16(error).i64(timestamp).i64(offset);
            if version >= 4 {
                w.i32(super::LEADER_EPOCH);
            }
        }
    }
    Ok(w)
}

/// `(low watermark, error)` after deleting the records of one partition below `offset`.
fn delete_one(store: &Store, topic: &str, index: i32, offset: i64) -> (i64, i16) {
    if topic.starts_with(crate::limits::INTERNAL_TOPIC_PREFIX) {
        return (-1, code::TOPIC_AUTHORIZATION_FAILED);
    }
    let p = match partition(store, topic, index) {
        Ok(p) => p,
        Err(e) => return (-1, e),
    };
    let hw = p.high_watermark();
    let to = match offset {
        -1 => hw,
        o if o < 0 || o as u64 > hw => return (p.log_start_offset() as i64, code::OFFSET_OUT_OF_RANGE),
        o => o as u64,
    };
    match p.advance_log_start_offset(to) {
        Ok(()) => (p.log_start_offset() as i64, code::NONE),
        Err(e) => (p.log_start_offset() as i64, error_code(&e)),
    }
}

pub async fn delete_records(ctx: &Context, _version: i16, r: &mut Reader) -> Result<Writer> {
    let n = r.array_len("topics", 6)?;
    let mut topics = Vec::with_capacity(n);
    for _ in 0..n {
        let name = r.string("topics.name")?;
        let m = r.array_len("topics.partitions", 12)?;
        let mut parts = Vec::with_capacity(m);
        for _ in 0..m {
            parts.push((r.i32("partitions.partition_index")?, r.i64("partitions.offset")?));
        }
        topics.push((name, parts));
    }
    r.i32("timeout_ms")?;
    let store = ctx.store.clone();
    let answers = blocking(move || {
        topics
            .into_iter()
            .map(|(name, parts)| {
                let got: Vec<_> = parts.iter().map(|&(i, o)| (i, delete_one(&store, &name, i, o))).collect();
                (name, got)
            })
            .collect::<Vec<_>>()
    })
    .await;
    let mut w = Writer::new();
    w.i32(0).array_len(answers.len());
    for (name, parts) in &answers {
        w.string(name).array_len(parts.len());
        for &(index, (low, error)) in parts {
            w.i32(index).i64(low).i16(error);
        }
    }
    Ok(w)
}
