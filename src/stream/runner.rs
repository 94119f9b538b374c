//! The runner of one view version: a std thread that reads the source partitions, applies their
//! records in event-time order across partitions, appends emitted records, decides which
//! partitions are idle, and checkpoints state + offsets together.
//!
//! Alignment (as Kafka Streams' timestamp synchronization): every partition with unread records
//! has some of them buffered before any is applied, and the buffered record with the least event
//! time goes first (ties: the source's place, topic then partition). A partition with nothing
//! left to read does not hold the others up (its next records, when they come, are applied as
//! they come); it holds the watermark back until it is idle (see `time.rs`). When only one
//! partition has anything to read, or when the view's state does not depend on the order
//! (`Operator::order_free`), batches are applied as they are read, without buffering.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::emit::{self, EMIT_PENDING_RECORDS_MAX};
use super::operator::{Origin, PreParsed};
use super::state::State;
use super::view::{Slot, Version};
use super::{Result, ViewError};
use crate::error::Error;
use crate::log::record::RecordRef;
use crate::log::{NewRecord, Partition, ReadBatch, Record};

/// Starts the runner thread of `v`.
pub(crate) fn spawn(slot: &Arc<Slot>, v: Arc<Version>) {
    let s = Arc::clone(slot);
    let handle = std::thread::Builder::new()
        .name(format!("view-{}-v{}", slot.name, v.number))
        .spawn(move || {
            // Whatever stops the runner shows in the status (`failed`, with the error), in
            // `/metrics` and in `/health`; a panic (a bug) is caught here, at the runner's
            // boundary. A reopen of the views retries.
            let failure = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(&s, &v))) {
                Ok(Ok(())) => return,
                Ok(Err(ViewError::Log(Error::TopicNotFound(t)))) if v.definition.topics().contains(&t) => {
                    format!("source topic {t:?} was deleted")
                }
                Ok(Err(e)) => e.to_string(),
                Err(panic) => {
                    // The state may hold half of a record: it is never checkpointed.
                    v.retire_after_panic();
                    let what = panic
                        .downcast_ref::<&str>()
                        .map(|s| s.to_string())
                        .or_else(|| panic.downcast_ref::<String>().cloned())
                        .unwrap_or_else(|| "a panic".to_string());
                    format!("the view's runner panicked: {what}")
                }
            };
            tracing::error!(view = %s.name, version = v.number, error = %failure, "view stopped");
            *v.failure.lock() = Some(failure);
        })
        .expect("spawn a view thread");
    let mut threads = slot.threads.lock();
    threads.retain(|t| !t.is_finished());
    threads.push(handle);
}

/// A record read and not applied yet.
struct Buffered {
    record: Record,
    /// The event time that orders it.
    time: i64,
    /// The offset to apply next after it.
    next: u64,
    /// Its value, parsed once for both its time and its apply (windowed JSON views).
    pre: Option<PreParsed>,
}

/// One source partition as the runner reads it.
struct Source {
    partition: Partition,
    origin: Origin,
    /// The next offset to read (past what is buffered).
    read_next: u64,
    buffer: VecDeque<Buffered>,
    /// A malformed record found after the buffered ones: the runner stops with it once they
    /// are applied (the offsets then stand right after the last record applied).
    failed: Option<Error>,
    /// The store clock when the partition last had something to read.
    active_ms: i64,
}

impl Source {
    /// Records buffered or below the high watermark.
    fn pending(&self) -> bool {
        !self.buffer.is_empty() || self.read_next < self.partition.high_watermark()
    }
}

/// The version's source partitions, in the order of its topics then partition ids, keeping what
/// `old` knew of each (call it when nothing is buffered). Slots of partitions that are no longer
/// sources (a deleted topic) are idle: they do not hold the watermark back.
fn sources(slot: &Slot, v: &Version, old: Vec<Source>, now_ms: i64) -> Result<Vec<Source>> {
    // A source deleted (and maybe created again) since `old` was made: its offsets are not the
    // new topic's, so the view fails rather than read the new one from them. The old handle was
    // marked deleted before any new topic of that name existed, so checking it here leaves no gap.
    check_sources(slot, v, &old)?;
    let mut st = v.state.write();
    let mut out = Vec::new();
    for (topic_index, name) in v.definition.topics().iter().enumerate() {
        let Ok(topic) = slot.store.topic(name) else { continue };
        for p in topic.partitions().iter() {
            let slot_index = st.slot_of(p.topic(), p.id(), p.log_start_offset());
            let read_next = st.snap.offsets[slot_index].next_offset;
            let active_ms = old.iter().find(|s| s.origin.slot == slot_index).map_or(now_ms, |s| s.active_ms);
            out.push(Source {
                partition: p.clone(),
                origin: Origin { slot: slot_index, topic: topic_index as u32, partition: p.id() },
                read_next,
                buffer: VecDeque::new(),
                failed: None,
                active_ms,
            });
        }
    }
    for i in 0..st.snap.offsets.len() {
        if !out.iter().any(|s| s.origin.slot == i) {
            st.set_idle(i, true);
        }
    }
    // A join's table neither moves nor holds the watermark. The joined topic's partitions come
    // first, so that on equal event times its records are applied first: a source record sees
    // the table versions (and partners) of its own time, in a replay as live.
    for s in &out {
        if v.operator.is_table_side(s.origin.topic) {
            st.set_idle(s.origin.slot, true);
        }
    }
    out.sort_by_key(|s| !v.operator.is_joined_side(s.origin.topic));
    Ok(out)
}

fn run(slot: &Arc<Slot>, v: &Arc<Version>) -> Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .map_err(|e| Error::io("tokio runtime", e))?;
    let cfg = &slot.config;
    let clock = Arc::clone(&slot.store.config().clock);
    let idle_timeout_ms = v.operator.idle_timeout_ms();
    let emit_topic = match v.definition.emit_topic() {
        Some(t) => Some(slot.store.topic(t)?),
        None => None,
    };
    if let Some(topic) = &emit_topic {
        // Emits staged by the last checkpoint may or may not have reached the topic before a crash.
        let mut log = std::mem::take(&mut v.state.write().snap.emit);
        emit::resume(&slot.store, topic, &slot.name, v.number, &mut log)?;
        let staged = log.take();
        v.state.write().snap.emit = log;
        emit::publish(topic, &slot.name, v.number, staged)?;
    }
    let mut sources = sources(slot, v, Vec::new(), clock.now_ms())?;
    let mut last_checkpoint = Instant::now();
    let mut since_checkpoint = 0u64;
    let mut emits: Vec<NewRecord> = Vec::new();
    while !v.stop.load(Ordering::Acquire) {
        check_sources(slot, v, &sources)?;
        if let Some(timeout) = idle_timeout_ms {
            if mark_idle(v, &mut sources, clock.now_ms(), timeout, &mut emits) {
                since_checkpoint += 1;
            }
        }
        let active: Vec<usize> = (0..sources.len()).filter(|&i| sources[i].pending()).collect();
        let read_any = !active.is_empty();
        if read_any {
            // Before the offsets move: `wait_caught_up` must not see lag 0 with a stale flag while
            // this pass's emits are not appended yet.
            v.caught_up.store(false, Ordering::Release);
        }
        let before = v.state.read().snap.counters.records_read;
        match active.as_slice() {
            [] => {}
            // A table join's lookups depend on which table records were applied first, so its
            // source records always go through the time-ordered merge below (which sees table
            // records appended before them); other views take the direct path.
            &[only]
                if sources[only].buffer.is_empty()
                    && sources[only].failed.is_none()
                    && !sources.iter().any(|s| v.operator.is_table_side(s.origin.topic)) =>
            {
                apply_direct(slot, v, &mut sources[only], &mut emits)?
            }
            // Nothing is ever buffered for such a view.
            _ if v.operator.order_free() => {
                for &i in &active {
                    apply_direct(slot, v, &mut sources[i], &mut emits)?;
                }
            }
            _ => {
                for &i in &active {
                    fill(slot, v, &mut sources[i])?;
                }
                apply_in_time_order(v, &mut sources, &mut emits)?;
            }
        }
        since_checkpoint += v.state.read().snap.counters.records_read - before;
        super::limits::check_memory(&slot.name, v)?;
        // Emitted records are staged in the state; the checkpoint that covers their inputs
        // appends them once it is durable (exactly once: see `emit.rs`).
        if !emits.is_empty() {
            let topic = emit_topic.as_ref().expect("only views with an emit topic emit");
            let mut st = v.state.write();
            st.snap.counters.records_emitted += emits.len() as u64;
            st.snap.emit.stage(topic, std::mem::take(&mut emits))?;
        }
        let staged = v.state.read().snap.emit.pending.len();
        let due = last_checkpoint.elapsed() >= Duration::from_millis(cfg.checkpoint_interval_ms)
            || since_checkpoint >= cfg.checkpoint_interval_records
            || staged >= EMIT_PENDING_RECORDS_MAX;
        if (since_checkpoint > 0 || staged > 0) && (due || !read_any) {
            v.checkpoint_and_emit(&slot.name, emit_topic.as_ref())?;
            last_checkpoint = Instant::now();
            since_checkpoint = 0;
        }
        if read_any {
            continue;
        }
        v.caught_up.store(true, Ordering::Release);
        if slot.pending.lock().as_ref().is_some_and(|p| Arc::ptr_eq(p, v)) {
            super::manager::promote(slot, v)?;
        }
        // Pick up partitions added since.
        sources = self::sources(slot, v, sources, clock.now_ms())?;
        wait_for_data(&rt, v, &sources, cfg.idle_wait_ms);
    }
    if since_checkpoint > 0 || !v.state.read().snap.emit.pending.is_empty() {
        v.checkpoint_and_emit(&slot.name, emit_topic.as_ref())?;
    }
    Ok(())
}

/// Fails when a source topic is gone (deleted, maybe created again: the offsets are not its),
/// also when that happened while the view was not running (its id is not the checkpoint's).
fn check_sources(slot: &Slot, v: &Version, sources: &[Source]) -> Result<()> {
    if let Some(s) = sources.iter().find(|s| s.partition.is_deleted()) {
        return Err(Error::TopicNotFound(s.partition.topic().to_string()).into());
    }
    for name in v.definition.topics() {
        let found = slot.store.topic(&name)?.id();
        let mut st = v.state.write();
        match st.snap.topic_ids.get(&name) {
            Some(&expected) if expected != found => {
                return Err(ViewError::SourceRecreated { topic: name.clone(), expected, found });
            }
            Some(_) => {}
            None => drop(st.snap.topic_ids.insert(name, found)),
        }
    }
    Ok(())
}

/// Decides which sources are idle. A source with anything to read is not idle. A source becomes
/// idle when it has had nothing to read for `timeout_ms` on the store clock, and only while no
/// source of the view has anything to read: during a catch-up, a rebuild or a replay no source
/// becomes idle, so that the result does not depend on how long reading takes. When that changed,
/// the watermark moves as the sources now allow (closing windows). Returns whether it changed.
fn mark_idle(v: &Version, sources: &mut [Source], now_ms: i64, timeout_ms: i64, emits: &mut Vec<NewRecord>) -> bool {
    let pending: Vec<bool> = sources.iter().map(Source::pending).collect();
    let caught_up = !pending.contains(&true);
    let mut st = v.state.write();
    let mut changed = false;
    for (s, pending) in sources.iter_mut().zip(pending) {
        if v.operator.is_table_side(s.origin.topic) {
            continue;
        }
        let was = st.snap.offsets[s.origin.slot].idle;
        let idle = if pending {
            s.active_ms = now_ms;
            false
        } else {
            was || (caught_up && now_ms.saturating_sub(s.active_ms) >= timeout_ms)
        };
        changed |= st.set_idle(s.origin.slot, idle);
    }
    if changed {
        // Before the watermark moves: `wait_caught_up` must not return before the emits of the
        // windows it closes are appended.
        v.caught_up.store(false, Ordering::Release);
        v.operator.refresh_watermark(&mut st, emits);
    }
    changed
}

/// Reads the next batches of `s`; `None` when retention deleted what it was to read next (it then
/// reads on from the log start).
fn read(slot: &Slot, v: &Version, s: &mut Source) -> Result<Option<Vec<ReadBatch>>> {
    let cfg = &slot.config;
    // With decode workers, each has a share of the read (see `workers.rs`).
    let scale = if v.operator.pre_parses() { super::workers::count(cfg.workers) } else { 1 };
    let (bytes, records) = (cfg.read_bytes_max.saturating_mul(scale), cfg.read_records_max.saturating_mul(scale));
    match s.partition.read_batches(s.read_next, bytes, records) {
        Ok(b) => Ok(Some(b)),
        Err(Error::OffsetOutOfRange { log_start_offset, .. }) if s.read_next < log_start_offset => {
            // Retention deleted what the view had not read yet: those records are lost to it.
            tracing::warn!(view = %slot.name, topic = s.partition.topic(), partition = s.partition.id(),
                next = s.read_next, log_start_offset, "source records were deleted before the view read them");
            s.read_next = log_start_offset;
            if s.buffer.is_empty() {
                v.state.write().set_offset_at(s.origin.slot, log_start_offset);
            }
            Ok(None)
        }
        Err(e) => Err(e.into()),
    }
}

/// The only source with records: applies its batches as they are read, borrowing each record.
fn apply_direct(slot: &Slot, v: &Version, s: &mut Source, emits: &mut Vec<NewRecord>) -> Result<()> {
    let workers = super::workers::count(slot.config.workers);
    if workers > 1 && v.operator.applies_sharded() {
        return apply_sharded(slot, v, s, workers, emits);
    }
    if workers > 1 && v.operator.pre_parses() {
        return apply_direct_parallel(slot, v, s, workers, emits);
    }
    let Some(batches) = read(slot, v, s)? else { return Ok(()) };
    let mut st = v.state.write();
    let mut after = s.read_next;
    for b in &batches {
        let applied = b.for_each(|r| {
            v.operator.apply(r.into(), s.origin, || b.to_record(r), &mut st, emits);
            after = r.offset + 1;
        });
        match applied {
            Ok(next_after_batch) => after = next_after_batch,
            Err(e) => {
                // A malformed record inside a checked batch: the state keeps what was applied
                // before it, and the offsets say so (never counted twice).
                st.set_offset_at(s.origin.slot, after);
                return Err(e.into());
            }
        }
    }
    st.set_offset_at(s.origin.slot, after);
    s.read_next = after;
    Ok(())
}

/// [`apply_direct`] with decode workers: the values of the batches read are parsed on `workers`
/// threads, then applied in order by this one, exactly as `apply_direct` applies them.
fn apply_direct_parallel(
    slot: &Slot,
    v: &Version,
    s: &mut Source,
    workers: usize,
    emits: &mut Vec<NewRecord>,
) -> Result<()> {
    let Some(batches) = read(slot, v, s)? else { return Ok(()) };
    let (records, ends, failed) = records_of(&batches);
    let topic = s.origin.topic;
    let mut parsed = super::workers::parse_all(&records, workers, slot.config.read_records_max, |(_, r)| {
        v.operator.pre_parse((*r).into(), topic)
    });
    let mut st = v.state.write();
    let mut after = s.read_next;
    let mut done = 0;
    let mut apply =
        |range: std::ops::Range<usize>, parsed: &mut [Option<PreParsed>], st: &mut State, after: &mut u64| {
            for i in range {
                let (b, r) = records[i];
                v.operator.apply_buffered(r.into(), parsed[i].take(), s.origin, || batches[b].to_record(r), st, emits);
                *after = r.offset + 1;
            }
        };
    for &(end, next_after_batch) in &ends {
        apply(done..end, &mut parsed, &mut st, &mut after);
        done = end;
        after = next_after_batch;
    }
    if let Some(e) = failed {
        // As in `apply_direct`: what came before the malformed record is applied, and the
        // offsets say so.
        apply(done..records.len(), &mut parsed, &mut st, &mut after);
        st.set_offset_at(s.origin.slot, after);
        return Err(e.into());
    }
    st.set_offset_at(s.origin.slot, after);
    s.read_next = after;
    Ok(())
}

/// [`apply_direct`] of a view applied by shards (`shards.rs`): the values of the batches read are
/// parsed and routed to their key's shard on `workers` threads, then each shard's records are
/// applied by its own thread; the offsets move once every shard has applied them.
fn apply_sharded(slot: &Slot, v: &Version, s: &mut Source, workers: usize, emits: &mut Vec<NewRecord>) -> Result<()> {
    let Some(batches) = read(slot, v, s)? else { return Ok(()) };
    let (records, ends, failed) = records_of(&batches);
    let router = {
        let mut st = v.state.write();
        st.snap.entries.reshard(workers);
        st.snap.entries.router().clone()
    };
    let topic = s.origin.topic;
    let routed = super::workers::parse_all(&records, workers, slot.config.read_records_max, |(_, r)| {
        let rec = (*r).into();
        let pre = v.operator.pre_parse(rec, topic);
        let route = v.operator.route(rec, pre.as_ref(), &router);
        super::shards::Routed { rec, pre, route }
    });
    // After the last batch given whole; or, as in `apply_direct`, right after the last record
    // applied before a malformed one.
    let whole = ends.last().map_or(0, |&(end, _)| end);
    let after = match (&failed, records.last()) {
        (Some(_), Some((_, r))) if records.len() > whole => r.offset + 1,
        _ => ends.last().map_or(s.read_next, |&(_, next)| next),
    };
    let mut st = v.state.write();
    super::shards::apply(v, routed, s.origin, &mut st, emits);
    st.set_offset_at(s.origin.slot, after);
    if let Some(e) = failed {
        return Err(e.into());
    }
    s.read_next = after;
    Ok(())
}

/// Buffers the next batches of `s` when it has none buffered, each record with its event time
/// (and its value parsed, by the decode workers when the view has them).
fn fill(slot: &Slot, v: &Version, s: &mut Source) -> Result<()> {
    if !s.buffer.is_empty() || s.failed.is_some() || s.read_next >= s.partition.high_watermark() {
        return Ok(());
    }
    let Some(batches) = read(slot, v, s)? else { return Ok(()) };
    let (records, ends, failed) = records_of(&batches);
    let workers = super::workers::count(slot.config.workers);
    let topic = s.origin.topic;
    let time_of = |(_, r): &(usize, RecordRef<'_>)| v.operator.order_time_parsed((*r).into(), topic);
    let mut timed = if workers > 1 && v.operator.pre_parses() {
        super::workers::parse_all(&records, workers, slot.config.read_records_max, time_of)
    } else {
        records.iter().map(time_of).collect()
    }
    .into_iter();
    let mut push = |range: std::ops::Range<usize>, buffer: &mut VecDeque<Buffered>| {
        for &(b, r) in &records[range] {
            let (time, pre) = timed.next().expect("one per record");
            buffer.push_back(Buffered { record: batches[b].to_record(r), time, next: r.offset + 1, pre });
        }
    };
    let mut done = 0;
    for (end, next_after_batch) in ends {
        push(done..end, &mut s.buffer);
        done = end;
        s.read_next = next_after_batch;
        // Offsets that compaction removed at the batch's end are passed with the last record
        // buffered (or at once when none is).
        match s.buffer.back_mut() {
            Some(last) => last.next = next_after_batch,
            None => v.state.write().set_offset_at(s.origin.slot, next_after_batch),
        }
    }
    if let Some(e) = failed {
        push(done..records.len(), &mut s.buffer);
        s.failed = Some(e);
    }
    Ok(())
}

/// Every record of `batches` in order (with the index of its batch); for each batch given whole,
/// where its records end and the offset after it; and the error of a malformed record, which
/// ends the list (the records before it in its batch are in it).
#[allow(clippy::type_complexity)]
fn records_of(batches: &[ReadBatch]) -> (Vec<(usize, RecordRef<'_>)>, Vec<(usize, u64)>, Option<Error>) {
    let mut records = Vec::new();
    let mut ends = Vec::with_capacity(batches.len());
    for (i, b) in batches.iter().enumerate() {
        match b.for_each(|r| records.push((i, r))) {
            Ok(next_after_batch) => ends.push((records.len(), next_after_batch)),
            Err(e) => return (records, ends, Some(e)),
        }
    }
    (records, ends, None)
}

/// Applies buffered records, least event time first, until a source runs out of buffered records
/// while it still has records to read (it is read again first) or every buffer is empty.
fn apply_in_time_order(v: &Version, sources: &mut [Source], emits: &mut Vec<NewRecord>) -> Result<()> {
    // A source that had nothing to read when the others were read may have records now, appended
    // before some of the buffered ones: it is read first (records appended to the table before a
    // source record are applied before it, live as in a replay).
    if sources.iter().any(|s| s.buffer.is_empty() && s.failed.is_none() && s.read_next < s.partition.high_watermark()) {
        return Ok(());
    }
    let mut st = v.state.write();
    let mut heads: BinaryHeap<Reverse<(i64, usize)>> = BinaryHeap::with_capacity(sources.len());
    for (i, s) in sources.iter_mut().enumerate() {
        match s.buffer.front() {
            Some(b) => heads.push(Reverse((b.time, i))),
            None => fail_if_stopped(s)?,
        }
    }
    while let Some(Reverse((_, i))) = heads.pop() {
        let s = &mut sources[i];
        let Buffered { record, next, pre, .. } = s.buffer.pop_front().expect("a head is buffered");
        v.operator.apply_buffered((&record).into(), pre, s.origin, || record.clone(), &mut st, emits);
        st.set_offset_at(s.origin.slot, next);
        match s.buffer.front() {
            Some(next) => heads.push(Reverse((next.time, i))),
            None => {
                fail_if_stopped(s)?;
                if s.read_next < s.partition.high_watermark() {
                    break;
                }
            }
        }
    }
    Ok(())
}

/// The error of a source whose buffered records were all applied before a malformed one.
fn fail_if_stopped(s: &mut Source) -> Result<()> {
    match s.failed.take() {
        Some(e) if s.buffer.is_empty() => Err(e.into()),
        other => {
            s.failed = other;
            Ok(())
        }
    }
}

/// Blocks until a source has data past what the view read, the version is woken, or `idle_wait_ms`.
fn wait_for_data(rt: &tokio::runtime::Runtime, v: &Version, sources: &[Source], idle_wait_ms: u64) {
    let waits: Vec<(Partition, u64)> = sources.iter().map(|s| (s.partition.clone(), s.read_next)).collect();
    let wake = Arc::clone(&v.wake);
    rt.block_on(async move {
        let mut set = tokio::task::JoinSet::new();
        for (p, next) in waits {
            set.spawn(async move { p.wait_for_data(next).await });
        }
        set.spawn(async move { wake.notified().await });
        let _ = tokio::time::timeout(Duration::from_millis(idle_wait_ms), set.join_next()).await;
    });
}
