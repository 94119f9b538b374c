//! Opening a partition: its segment files listed, a deletion a crash interrupted finished, the
//! sealed segments opened and the active one recovered.
//!
//! Maintenance above the log that must run before the files are listed (the cleaner's recovery of
//! an interrupted compaction swap) is its caller's.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicUsize};
use std::sync::{Arc, OnceLock};

use parking_lot::{Condvar, Mutex, RwLock};

use super::{capacity_for, Inner, Partition, StoreContext, SyncState, Writer, LOG_START_OFFSET_FILE};
use crate::config::TopicConfig;
use crate::error::{Corruption, Error, Result};
use crate::log::io;
use crate::log::offset_file;
use crate::log::recovery_point::{self, RecoveryPoint};
use crate::log::segment::{self, IndexCursor, Segment};

/// The segments of a partition as opened, and what recovery found.
struct Opened {
    /// Oldest first; the last one is the active segment.
    segments: Vec<Arc<Segment>>,
    writer: Writer,
    /// Corruption in the active segment: a bad batch with valid ones after it.
    corruption: Option<(PathBuf, u64, Corruption)>,
}

impl Partition {
    /// Opens (or creates) the partition in `dir`, recovering the active segment when `clean` is false.
    pub(crate) fn open(
        topic: Arc<str>,
        id: u32,
        dir: PathBuf,
        config: Arc<RwLock<TopicConfig>>,
        store: StoreContext,
        clean: bool,
    ) -> Result<Partition> {
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        let saved_log_start = offset_file::read(&dir.join(LOG_START_OFFSET_FILE))?;
        let mut bases = list_segments(&dir)?;
        finish_deletion(&dir, &mut bases, saved_log_start)?;
        let cfg = config.read().clone();
        let now = store.clock.now_ms();
        let expiration_ms = store.producer_id_expiration_ms;
        let recovery_point = recovery_point::read(&dir)?;
        let Opened { segments, writer, corruption } =
            open_segments(&dir, &bases, &cfg, now, clean, recovery_point, expiration_ms)?;
        let next_offset = writer.next_offset;
        let log_start_offset = segments[0].base_offset.max(saved_log_start.unwrap_or(0)).min(next_offset);
        let (high_watermark_tx, _) = tokio::sync::watch::channel(next_offset);
        let StoreContext { clock, faults, committer, .. } = store;
        Ok(Partition {
            inner: Arc::new(Inner {
                topic,
                id,
                dir,
                config,
                clock,
                faults,
                segments: RwLock::new(Arc::new(segments)),
                writer: Mutex::new(writer),
                log_start_offset: AtomicU64::new(log_start_offset),
                high_watermark: AtomicU64::new(next_offset),
                high_watermark_tx,
                sync: Mutex::new(SyncState { durable: next_offset, syncing: false }),
                synced: Condvar::new(),
                committer,
                queued: AtomicUsize::new(0),
                poisoned: AtomicBool::new(false),
                deleted: AtomicBool::new(false),
                closed: AtomicBool::new(false),
                last_flush_ms: AtomicI64::new(now),
                corruption: Mutex::new(corruption),
                maintenance: OnceLock::new(),
            }),
        })
    }
}

/// The base offsets of the partition's segments, sorted; leftover `.tmp` files are removed.
fn list_segments(dir: &Path) -> Result<Vec<u64>> {
    let mut bases = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let entry = entry.map_err(|e| Error::io(dir, e))?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if let Some(base) = segment::parse_file_name(&name, "log") {
            bases.push(base);
        } else if name.ends_with(".tmp") {
            let _ = std::fs::remove_file(entry.path());
        }
    }
    bases.sort_unstable();
    Ok(bases)
}

/// Retention persists the new log start before deleting files: finishes a deletion a crash
/// interrupted (a sealed segment wholly below the log start). The last segment always stays.
fn finish_deletion(dir: &Path, bases: &mut Vec<u64>, saved_log_start: Option<u64>) -> Result<()> {
    let Some(start) = saved_log_start else { return Ok(()) };
    while bases.len() > 1 && bases[1] <= start {
        let (log, index, time_index) = Segment::paths(dir, bases[0]);
        for p in [log, index, time_index] {
            if let Err(e) = std::fs::remove_file(&p) {
                if e.kind() != std::io::ErrorKind::NotFound {
                    return Err(Error::io(&p, e));
                }
            }
        }
        bases.remove(0);
        io::sync_dir(dir)?;
    }
    Ok(())
}

/// Opens every segment but the last as sealed, and the last as the active one (recovering it
/// unless `clean`), or creates the first segment of an empty partition.
fn open_segments(
    dir: &Path,
    bases: &[u64],
    cfg: &TopicConfig,
    now: i64,
    clean: bool,
    recovery_point: Option<RecoveryPoint>,
    producer_id_expiration_ms: u64,
) -> Result<Opened> {
    let interval = cfg.index_interval_bytes;
    let mut segments = Vec::with_capacity(bases.len().max(1));
    for pair in bases.windows(2) {
        segments.push(Segment::open_sealed(dir, pair[0], pair[1], interval)?);
    }
    let capacity = capacity_for(cfg);
    let (segment, files, cursor, corruption) = match bases.last() {
        Some(&base) => Segment::open_active(dir, base, capacity, interval, clean, recovery_point)?,
        None => {
            let (s, f) = Segment::create(dir, 0, capacity, interval)?;
            (s, f, IndexCursor::new(), None)
        }
    };
    let corruption = corruption.map(|(pos, c)| (segment.log_path.clone(), pos, c));
    segments.push(Arc::clone(&segment));
    let producers =
        super::producers::load_state(dir, &segments, segment.next_offset(), producer_id_expiration_ms, now)?;
    let writer = Writer {
        producers,
        next_offset: segment.next_offset(),
        created_ms: first_append_ms(&segment, now),
        files,
        // Recovery cut the file to its last valid batch (a clean shutdown left it there).
        file_len: cursor.position,
        reserved_to: cursor.position,
        cursor,
        segment_bytes: cfg.segment_bytes,
        segment,
    };
    Ok(Opened { segments, writer, corruption })
}

/// When the active segment took its first append, for `segment_ms`, which counts across restarts
/// too: the newest timestamp of its first batch stands for that time (Kafka's rule), never later
/// than now.
fn first_append_ms(segment: &Segment, now: i64) -> i64 {
    let data = segment.data();
    match segment.batch_at(&data, 0) {
        Ok((h, _)) => h.max_timestamp.min(now),
        _ => now,
    }
}
