//! Compaction: keep the latest record of each key in the cleanable part of the log.
//!
//! One pass, as Kafka's cleaner does it:
//! 1. The **cleanable** part is the sealed segments, from the oldest up to (not including) the first
//!    whose newest record is younger than `min_compaction_lag_ms`. Its **dirty** section starts at the
//!    first dirty offset (where the last pass stopped; persisted in `cleaner-checkpoint`).
//! 2. Map every key of the dirty section to its latest offset, until the map's byte budget is full:
//!    the map covers `[first_dirty, map_end)`. Each time a key's offset is replaced, the older
//!    offset goes into a bit set of superseded dirty offsets.
//! 3. Rewrite every segment from the log start through the one holding `map_end - 1` into `.cleaned`
//!    files, neighbours merged while their sizes add up to at most `segment_bytes`. A record is
//!    dropped when a later record of its key is in `[first_dirty, map_end)`: for a dirty record, when
//!    its offset is in the superseded set (no hashing, no lookup); for one below `first_dirty`, when
//!    the map holds a later offset for its key. A tombstone below `map_end` is also dropped once its
//!    timestamp is more than `delete_retention_ms` old. Offsets never change. Every batch is
//!    CRC-checked once per pass: by step 2 if it read it, else here.
//! 4. Swap the new segments in (see `swap.rs`); the first dirty offset becomes `map_end`.
//!
//! Passes repeat until the dirty section is done: a dirty section larger than the map is cleaned
//! in several passes. Appends and reads go on meanwhile; readers of old segments keep their maps.

use std::sync::Arc;
use std::time::Instant;

use serde::Serialize;

use super::offset_map::{Digest, Inserted, OffsetMap, SLOT_BYTES};
use super::offset_set::OffsetSet;
use super::rewrite::{encode_empty, encode_filtered, for_each_record, Output, RawRecord};
use super::swap::{self, Manifest};
use super::CleanerState;
use crate::config::TopicConfig;
use crate::error::{Error, Result};
use crate::log::batch::BatchHeader;
use crate::log::segment::{Segment, TIMESTAMP_NONE};
use crate::log::Partition;

/// What compaction did to one partition (all its passes of one run).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CompactionReport {
    pub topic: String,
    pub partition: u32,
    /// The time the run judged lags and tombstone ages against (ms since the epoch).
    pub now_ms: i64,
    /// Passes made (0: nothing was cleanable, or the dirty ratio was below the threshold).
    pub passes: u32,
    /// The dirty ratio when the run started.
    pub dirty_ratio_before: f64,
    pub first_dirty_offset_before: u64,
    pub first_dirty_offset_after: u64,
    /// Bytes of the segments rewritten, summed over passes, and of what replaced them.
    pub bytes_before: u64,
    pub bytes_after: u64,
    pub segments_before: usize,
    pub segments_after: usize,
    /// Distinct keys mapped, summed over passes.
    pub keys_mapped: u64,
    pub records_read: u64,
    pub records_removed: u64,
    pub tombstones_removed: u64,
    pub duration_ms: u64,
}

/// The cleanable prefix of `segments` (a count) and where the dirty section starts and ends.
pub(crate) struct Cleanable {
    pub count: usize,
    pub end_offset: u64,
    pub clean_bytes: u64,
    pub dirty_bytes: u64,
}

impl Cleanable {
    pub fn dirty_ratio(&self) -> f64 {
        let total = self.clean_bytes + self.dirty_bytes;
        if total == 0 {
            0.0
        } else {
            self.dirty_bytes as f64 / total as f64
        }
    }
}

pub(crate) fn cleanable(
    segments: &[Arc<Segment>],
    cfg: &TopicConfig,
    now_ms: i64,
    first_dirty: u64,
) -> Result<Cleanable> {
    let sealed = &segments[..segments.len() - 1];
    let horizon = now_ms.saturating_sub(cfg.min_compaction_lag_ms.min(i64::MAX as u64) as i64);
    let mut c = Cleanable { count: 0, end_offset: segments[0].base_offset, clean_bytes: 0, dirty_bytes: 0 };
    for (i, s) in sealed.iter().enumerate() {
        let ts = s.max_timestamp()?;
        if ts != TIMESTAMP_NONE && ts > horizon {
            break;
        }
        c.count = i + 1;
        c.end_offset = segments[i + 1].base_offset;
        if c.end_offset <= first_dirty {
            c.clean_bytes += s.size();
        } else {
            c.dirty_bytes += s.size();
        }
    }
    Ok(c)
}

/// Runs compaction passes on `p` at time `now_ms` with a key map of `offset_map_bytes`. Without
/// `force`, nothing happens unless the dirty ratio is at least `min_cleanable_dirty_ratio`; with it,
/// one pass runs even when nothing is dirty (it drops expired tombstones).
pub(crate) fn compact(p: &Partition, now_ms: i64, offset_map_bytes: usize, force: bool) -> Result<CompactionReport> {
    let started = Instant::now();
    let mut state = p.maintenance().lock();
    state.check_no_pending_swap(p)?;
    let cfg = p.config();
    if !cfg.cleanup_policy.compacts() {
        return Err(Error::InvalidConfig {
            field: "cleanup_policy",
            reason: format!(
                "topic {:?} has cleanup_policy {:?}: only compact topics are compacted",
                p.topic(),
                cfg.cleanup_policy
            ),
        });
    }
    let first_dirty = state.first_dirty_offset(p)?;
    let c = cleanable(&p.segments(), &cfg, now_ms, first_dirty)?;
    let mut report = CompactionReport {
        topic: p.topic().to_string(),
        partition: p.id(),
        now_ms,
        passes: 0,
        dirty_ratio_before: c.dirty_ratio(),
        first_dirty_offset_before: first_dirty,
        first_dirty_offset_after: first_dirty,
        bytes_before: 0,
        bytes_after: 0,
        segments_before: 0,
        segments_after: 0,
        keys_mapped: 0,
        records_read: 0,
        records_removed: 0,
        tombstones_removed: 0,
        duration_ms: 0,
    };
    let due = c.dirty_bytes > 0 && c.dirty_ratio() >= cfg.min_cleanable_dirty_ratio;
    if c.count > 0 && (due || force) {
        loop {
            let done = pass(p, &cfg, now_ms, offset_map_bytes, &mut state, &mut report)?;
            if done {
                break;
            }
        }
    }
    report.first_dirty_offset_after = state.first_dirty_offset(p)?;
    report.duration_ms = started.elapsed().as_millis() as u64;
    if report.passes > 0 {
        tracing::info!(
            topic = p.topic(),
            partition = p.id(),
            passes = report.passes,
            bytes_before = report.bytes_before,
            bytes_after = report.bytes_after,
            records_removed = report.records_removed,
            "compacted"
        );
        state.compactions += 1;
        state.last_compaction = Some(report.clone());
    }
    Ok(report)
}

/// One pass. `Ok(true)` when the dirty section is done.
fn pass(
    p: &Partition,
    cfg: &TopicConfig,
    now_ms: i64,
    offset_map_bytes: usize,
    state: &mut CleanerState,
    report: &mut CompactionReport,
) -> Result<bool> {
    // 1. The cleanable part and its dirty section.
    let segments = p.segments();
    let first_dirty = state.first_dirty_offset(p)?.max(p.log_start_offset());
    let c = cleanable(&segments, cfg, now_ms, first_dirty)?;
    if c.count == 0 || (first_dirty >= c.end_offset && report.passes > 0) {
        return Ok(true);
    }
    let cleanable = &segments[..c.count];

    // 2. Map the keys of the dirty section, as far as the budget goes.
    let mapped = map_dirty_section(cleanable, first_dirty, c.end_offset, offset_map_bytes)?;
    let map_end = mapped.end;

    // 3. Rewrite through the segment holding `map_end - 1` into as few segments as fit.
    let count = cleanable.partition_point(|s| s.base_offset < map_end).max(1);
    let rewrite = &segments[..count];
    let written = rewrite_segments(p, cfg, now_ms, rewrite, &mapped, report)?;

    // 4. The swap.
    swap_in(p, cfg, state, rewrite, &written)?;
    report.passes += 1;
    report.keys_mapped += mapped.map.len() as u64;
    report.bytes_before += rewrite.iter().map(|s| s.size()).sum::<u64>();
    report.bytes_after += written.iter().map(|w| w.bytes).sum::<u64>();
    report.segments_before += rewrite.len();
    report.segments_after += written.len();
    state.set_first_dirty_offset(p, map_end.max(first_dirty))?;
    crate::log::reaper::release(segments);
    Ok(map_end >= c.end_offset)
}

/// Step 2 of a pass: the map of the dirty section, and the set of its offsets that a later record
/// of the same key supersedes (learnt when the later one replaces it in the map), so that the
/// rewrite looks up only records below the dirty section. A sixteenth of the budget is for that set.
struct MappedSection {
    map: OffsetMap,
    superseded: OffsetSet,
    /// The map covers `[first_dirty, end)`.
    end: u64,
    /// The batches the mapping CRC-checked start at or after `verified_from` and before `end`: from
    /// the first segment it read through the batch where it stopped. The rewrite does not check them
    /// again (same maps of the same sealed files).
    verified_from: u64,
}

/// Maps the keys of the dirty section of `cleanable` (from `first_dirty` to at most `end_offset`)
/// until the map or the superseded set is full.
fn map_dirty_section(
    cleanable: &[Arc<Segment>],
    first_dirty: u64,
    end_offset: u64,
    offset_map_bytes: usize,
) -> Result<MappedSection> {
    let mut map = OffsetMap::new(offset_map_bytes - offset_map_bytes / SUPERSEDED_BUDGET_DIVISOR);
    let mut superseded = OffsetSet::new(first_dirty, offset_map_bytes / SUPERSEDED_BUDGET_DIVISOR);
    let mut map_end = end_offset;
    let mut pending: Vec<(Digest, u64)> = Vec::new();
    let verified_from = cleanable.iter().find(|s| s.next_offset() > first_dirty).map_or(u64::MAX, |s| s.base_offset);
    'segments: for s in cleanable.iter().filter(|s| s.next_offset() > first_dirty) {
        let data = s.data();
        let (mut pos, mut expected, upper) = (0, s.base_offset, s.next_offset());
        while pos < data.len() {
            let (h, b) = s.batch_in_place(&data, pos, &mut expected, upper)?;
            let at = pos;
            pos += h.len();
            if h.last_offset() < first_dirty {
                continue;
            }
            pending.clear();
            let b = crate::log::batch::records_of(&h, &b).map_err(|detail| Error::Corrupted {
                path: s.log_path.clone(),
                position: at as u64,
                detail,
            })?;
            for_each_record(&h, &b, |r| {
                let offset = r.offset(&h);
                if let Some(k) = r.key(&b).filter(|_| offset >= first_dirty) {
                    pending.push((map.digest(k), offset));
                }
                true
            })
            .map_err(|detail| Error::Corrupted {
                path: s.log_path.clone(),
                position: at as u64,
                detail,
            })?;
            map.touch(pending.iter().map(|p| p.0));
            for &(d, offset) in &pending {
                if !superseded.covers(offset) {
                    map_end = offset;
                    break 'segments;
                }
                match map.insert(d, offset) {
                    Inserted::New => {}
                    Inserted::Replaced(older) => superseded.insert(older),
                    Inserted::Full => {
                        map_end = offset;
                        break 'segments;
                    }
                }
            }
        }
    }
    if map_end <= first_dirty && map_end < end_offset {
        return Err(Error::LimitExceeded {
            limit: "offset_map_bytes",
            value: SLOT_BYTES as u64,
            max: offset_map_bytes as u64,
        });
    }
    Ok(MappedSection { map, superseded, end: map_end, verified_from })
}

/// A new segment written by a pass.
struct Written {
    base_offset: u64,
    next_offset: u64,
    bytes: u64,
}

/// Step 3 of a pass: copies the surviving records of `rewrite` into new `.cleaned` segments. On
/// failure (before the commit point) the old log stands and the `.cleaned` files are removed.
fn rewrite_segments(
    p: &Partition,
    cfg: &TopicConfig,
    now_ms: i64,
    rewrite: &[Arc<Segment>],
    mapped: &MappedSection,
    report: &mut CompactionReport,
) -> Result<Vec<Written>> {
    let tombstones = Tombstones {
        horizon_ms: now_ms.saturating_sub(cfg.delete_retention_ms.min(i64::MAX as u64) as i64),
        below: mapped.end,
        // The log's last record is never removed, so that a read anywhere below the high watermark
        // finds a record (only an expired tombstone could be removed there: nothing supersedes it).
        log_last: p.high_watermark().saturating_sub(1),
    };
    // Each remembered producer's last batch, kept (emptied if need be) whatever compaction removes.
    let producers_last = p.producer_last_offsets();
    let mut out = Output::new(p.dir(), p.faults(), cfg.segment_bytes, cfg.index_interval_bytes);
    let result = (|| -> Result<()> {
        out.start(rewrite[0].base_offset)?;
        for s in rewrite {
            let latest = Latest { map: &mapped.map, superseded: &mapped.superseded, map_end: mapped.end };
            let verified = mapped.verified_from..mapped.end;
            filter_segment(s, &latest, &tombstones, &producers_last, verified, &mut out, report)?;
        }
        out.finish()
    })();
    if let Err(e) = result {
        // Before the commit point: the old log stands; the `.cleaned` files are garbage.
        let _ = swap::recover(p.dir());
        return Err(e);
    }
    let end = rewrite[rewrite.len() - 1].next_offset();
    Ok(out
        .written
        .iter()
        .enumerate()
        .map(|(i, &(base_offset, bytes))| Written {
            base_offset,
            next_offset: out.written.get(i + 1).map_or(end, |w| w.0),
            bytes,
        })
        .collect())
}

/// Step 4 of a pass: replaces the segments `rewrite` (the first of the partition's list) by the
/// `written` ones, crash-safely (`swap.rs`). A failure after the commit point leaves the swap
/// pending: the cleaner leaves the partition alone until it is reopened.
fn swap_in(
    p: &Partition,
    cfg: &TopicConfig,
    state: &mut CleanerState,
    rewrite: &[Arc<Segment>],
    written: &[Written],
) -> Result<()> {
    for s in rewrite {
        s.load_indexes_now()?;
    }
    let manifest = Manifest {
        remove: rewrite.iter().map(|s| s.base_offset).collect(),
        install: written.iter().map(|w| w.base_offset).collect(),
    };
    let interval = cfg.index_interval_bytes;
    let committed = swap::commit(p.dir(), &manifest, p.faults(), || {
        let mut fresh = Vec::with_capacity(written.len());
        for w in written {
            fresh.push(Segment::open_sealed(p.dir(), w.base_offset, w.next_offset, interval)?);
        }
        p.update_segments(|list| {
            assert!(
                list.iter().zip(rewrite).all(|(a, b)| Arc::ptr_eq(a, b)),
                "only the cleaner replaces segments, under the maintenance lock"
            );
            fresh.into_iter().chain(list[rewrite.len()..].iter().cloned()).collect()
        });
        Ok(())
    });
    if let Err(e) = committed {
        state.swap_pending = true;
        return Err(e);
    }
    Ok(())
}

/// Which tombstones a pass removes: those below `below` (the map's end), with a timestamp at or
/// before `horizon_ms`, other than the log's last record.
struct Tombstones {
    horizon_ms: i64,
    below: u64,
    log_last: u64,
}

/// `offset_map_bytes / SUPERSEDED_BUDGET_DIVISOR` is the budget of a pass's [`OffsetSet`]: a bit per
/// dirty offset, 2^20 offsets per 128 KiB, next to 24 bytes per key for the map.
const SUPERSEDED_BUDGET_DIVISOR: usize = 16;

/// Whether a record is the latest of its key, as far as a pass knows: the map covers the dirty
/// offsets `[superseded.start(), map_end)`.
struct Latest<'a> {
    map: &'a OffsetMap,
    superseded: &'a OffsetSet,
    map_end: u64,
}

impl Latest<'_> {
    /// Whether the keyed record at `offset` needs a map lookup: only those below the dirty section.
    /// A dirty one is superseded exactly when it is in `superseded`; one at or past `map_end` never
    /// is (the map holds only earlier offsets).
    fn needs_lookup(&self, offset: u64) -> bool {
        offset < self.superseded.start()
    }

    /// Whether a later record of the same key supersedes the keyed record at `offset`, whose key
    /// has digest `d` (needed only when [`needs_lookup`](Self::needs_lookup)).
    fn superseded(&self, offset: u64, d: Option<Digest>) -> bool {
        if offset >= self.map_end {
            false
        } else if let Some(d) = d {
            self.map.get(d).is_some_and(|latest| offset < latest)
        } else {
            self.superseded.contains(offset)
        }
    }
}

/// Copies the records of `s` that survive into `out`. Batches whose base offset is in `verified`
/// were CRC-checked by this pass already. A batch left with no record is dropped, unless it is the
/// last batch of a producer (`producers_last`: producer id to its last batch's last offset): that
/// one stays, empty (Kafka's rule, see `rewrite.rs`).
fn filter_segment(
    s: &Segment,
    latest: &Latest<'_>,
    t: &Tombstones,
    producers_last: &std::collections::HashMap<i64, u64>,
    verified: std::ops::Range<u64>,
    out: &mut Output<'_>,
    report: &mut CompactionReport,
) -> Result<()> {
    let data = s.data();
    let mut pos = 0;
    // Each record, and its key's digest if it needs a map lookup; `None` key: keyless.
    let mut all: Vec<(RawRecord, Option<Digest>)> = Vec::new();
    let mut kept: Vec<RawRecord> = Vec::new();
    let mut buf = Vec::new();
    while pos < data.len() {
        let (h, b) = s.batch_bounds_at(&data, pos)?;
        if !verified.contains(&h.base_offset) {
            // Not checked by the map pass. A batch copied whole keeps its CRC, but one that loses
            // records gets a new CRC: an unchecked batch would launder a corrupt byte.
            crate::log::batch::verify(&h, &b).map_err(|detail| Error::Corrupted {
                path: s.log_path.clone(),
                position: pos as u64,
                detail,
            })?;
        }
        let at = pos;
        pos += h.len();
        all.clear();
        kept.clear();
        let records = crate::log::batch::records_of(&h, &b).map_err(|detail| Error::Corrupted {
            path: s.log_path.clone(),
            position: at as u64,
            detail,
        })?;
        for_each_record(&h, &records, |r| {
            let d = r.key(&records).filter(|_| latest.needs_lookup(r.offset(&h))).map(|k| latest.map.digest(k));
            all.push((r, d));
            true
        })
        .map_err(|detail| Error::Corrupted { path: s.log_path.clone(), position: at as u64, detail })?;
        latest.map.touch(all.iter().filter_map(|a| a.1));
        let mut tombstones = 0;
        for (r, d) in all.drain(..) {
            let offset = r.offset(&h);
            // Keyless records (a topic compacted after it was not) are never superseded.
            let keep = r.key.is_none()
                || !latest.superseded(offset, d) && {
                    let expired =
                        r.tombstone && offset < t.below && offset != t.log_last && r.timestamp(&h) <= t.horizon_ms;
                    tombstones += expired as u64;
                    !expired
                };
            if keep {
                kept.push(r);
            }
        }
        report.records_read += h.record_count as u64;
        report.records_removed += h.record_count as u64 - kept.len() as u64;
        report.tombstones_removed += tombstones;
        if kept.is_empty() {
            // Kept only as its producer's last batch (an empty one already stays as it is).
            let last = h.producer.is_some() && producers_last.get(&h.producer.producer_id) == Some(&h.last_offset());
            if last && h.record_count == 0 {
                out.push(&h, &b)?;
            } else if last {
                buf.clear();
                let nh = encode_empty(&mut buf, &h);
                out.push(&nh, &buf)?;
            }
        } else if kept.len() == h.record_count as usize {
            out.push(&h, &b)?;
        } else {
            buf.clear();
            encode_filtered(&mut buf, &h, &records, &kept)?;
            let nh = BatchHeader::parse(&buf).expect("our own batch parses").expect("whole");
            out.push(&nh, &buf)?;
        }
    }
    Ok(())
}
