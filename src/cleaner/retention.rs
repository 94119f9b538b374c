//! Retention: deleting whole sealed segments, oldest first, past `retention_ms` or `retention_bytes`.

use std::sync::Arc;

use serde::Serialize;

use crate::error::Result;
use crate::log::io::sync_dir;
use crate::log::segment::{Segment, TIMESTAMP_NONE};
use crate::log::Partition;

/// One segment retention deleted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RemovedSegment {
    pub base_offset: u64,
    /// The offset after the segment (the next segment's base offset).
    pub next_offset: u64,
    pub size_bytes: u64,
    /// Its newest record's timestamp (`None` when it held no records).
    pub max_timestamp: Option<i64>,
}

/// What retention did to one partition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RetentionReport {
    pub topic: String,
    pub partition: u32,
    /// The time retention was judged against (ms since the epoch).
    pub now_ms: i64,
    pub removed: Vec<RemovedSegment>,
    pub bytes_removed: u64,
    pub log_start_offset_before: u64,
    pub log_start_offset_after: u64,
}

/// Deletes the sealed segments of `p` past retention, oldest first, at time `now_ms`.
///
/// A segment goes when its newest record is older than `retention_ms` (`now - max_timestamp >
/// retention_ms`; a segment without records counts as expired), or while the partition is larger
/// than `retention_bytes` by at least that segment's size. Either one triggers; only a prefix of
/// sealed segments goes, never the active one. As in Kafka, size retention keeps at least
/// `retention_bytes`: the partition stays larger by less than its oldest remaining segment. The log start offset moves to the first kept segment
/// *durably before* any file is deleted (recovery finishes a deletion a crash interrupted).
/// Topics whose `cleanup_policy` does not delete are left alone (an empty report).
pub fn enforce_retention(p: &Partition, now_ms: i64) -> Result<RetentionReport> {
    let mut state = p.maintenance().lock();
    state.check_no_pending_swap(p)?;
    let cfg = p.config();
    let before = p.log_start_offset();
    let mut report = RetentionReport {
        topic: p.topic().to_string(),
        partition: p.id(),
        now_ms,
        removed: Vec::new(),
        bytes_removed: 0,
        log_start_offset_before: before,
        log_start_offset_after: before,
    };
    if !cfg.cleanup_policy.deletes() {
        return Ok(report);
    }
    let segments = p.segments();
    let by_time = expired_by_time(&segments, cfg.retention_ms, now_ms)?;
    let count = by_time.max(over_retention_bytes(&segments, cfg.retention_bytes));
    if count == 0 {
        return Ok(report);
    }
    let doomed: Vec<_> = segments[..count].to_vec();
    for s in &doomed {
        // Readers still holding these segments must never need their files again.
        s.load_indexes_now()?;
    }
    let new_start = segments[count].base_offset;
    // The commit point: once the new log start is durable, the segments below it are gone.
    p.advance_log_start_offset(new_start)?;
    p.update_segments(|list| {
        assert!(
            list.iter().zip(&doomed).all(|(a, b)| Arc::ptr_eq(a, b)),
            "only the cleaner removes segments, under the maintenance lock"
        );
        list[count..].to_vec()
    });
    for s in &doomed {
        s.remove_files()?;
        let ts = s.max_timestamp()?;
        report.removed.push(RemovedSegment {
            base_offset: s.base_offset,
            next_offset: s.next_offset(),
            size_bytes: s.size(),
            max_timestamp: (ts != TIMESTAMP_NONE).then_some(ts),
        });
        report.bytes_removed += s.size();
    }
    sync_dir(p.dir())?;
    drop(segments);
    crate::log::reaper::release(doomed);
    report.log_start_offset_after = p.log_start_offset();
    tracing::info!(
        topic = p.topic(),
        partition = p.id(),
        segments = count,
        bytes = report.bytes_removed,
        log_start_offset = report.log_start_offset_after,
        "retention deleted segments"
    );
    state.last_retention = Some(report.clone());
    Ok(report)
}

/// How many of the oldest sealed segments of `segments` are past `retention_ms` at `now_ms` (none
/// when it is negative: no time limit).
fn expired_by_time(segments: &[Arc<Segment>], retention_ms: i64, now_ms: i64) -> Result<usize> {
    let sealed = &segments[..segments.len() - 1];
    let mut count = 0;
    if retention_ms >= 0 {
        for s in sealed {
            let ts = s.max_timestamp()?;
            if ts != TIMESTAMP_NONE && now_ms.saturating_sub(ts) <= retention_ms {
                break;
            }
            count += 1;
        }
    }
    Ok(count)
}

/// How many of the oldest sealed segments of `segments` can go while what stays is at least
/// `retention_bytes` (none when it is negative: no size limit).
fn over_retention_bytes(segments: &[Arc<Segment>], retention_bytes: i64) -> usize {
    let sealed = &segments[..segments.len() - 1];
    let mut count = 0;
    if retention_bytes >= 0 {
        let total: u64 = segments.iter().map(|s| s.size()).sum();
        let mut excess = total.saturating_sub(retention_bytes as u64);
        for s in sealed {
            if excess < s.size() || excess == 0 {
                break;
            }
            excess -= s.size();
            count += 1;
        }
    }
    count
}
