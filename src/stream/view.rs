//! A view and its versions: queries, status, lag and rebuild progress. Each version has a runner
//! thread (`runner.rs`); a rebuilding version runs beside the current one and takes over when it
//! has caught up (lag 0).

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::{Mutex, RwLock};
use serde::Serialize;
use serde_json::Value;

use super::definition::Definition;
use super::emit;
use super::manager::ViewsConfig;
use super::operator::{Operator, ViewLogic, WindowResult};
use super::spec::ViewSpec;
use super::state::{State, ViewCounters};
use super::state_store::{CheckpointStats, StateStore};
use super::Result;
use crate::log::Partition;
use crate::store::Store;
use crate::topic::Topic;

/// The most keys one [`View::scan`] returns.
pub const SCAN_LIMIT_MAX: usize = 10_000;

/// One version of a view: its definition, operator, state and runner flags.
pub(crate) struct Version {
    pub number: u64,
    pub definition: Definition,
    pub operator: Operator,
    pub state: RwLock<State>,
    /// Set when the version must stop (shutdown, delete, superseded).
    pub(crate) stop: AtomicBool,
    /// Set (under this lock) when the version was superseded: it must not write its checkpoint any more.
    retired: Mutex<bool>,
    /// Its checkpoint files (a base and its delta log), written under `retired`'s lock.
    files: Mutex<StateStore>,
    /// What its last checkpoint wrote, kept apart from `files` so that a status never waits for a
    /// checkpoint being written.
    last_checkpoint: Mutex<Option<CheckpointStats>>,
    pub(crate) wake: Arc<tokio::sync::Notify>,
    /// Why the runner stopped on its own, if it did.
    pub failure: Mutex<Option<String>>,
    /// The last pass over the sources read nothing.
    pub caught_up: AtomicBool,
    /// For a rebuild: where each partition started and the high watermark it must reach.
    pub targets: Vec<PartitionTarget>,
    pub started: Instant,
    /// `records_read` when this process started running the version (for the rate).
    pub records_at_start: u64,
}

impl std::fmt::Debug for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Version").field("number", &self.number).field("operator", &self.operator).finish()
    }
}

impl Version {
    pub(crate) fn new(
        number: u64,
        definition: Definition,
        operator: Operator,
        state: State,
        files: StateStore,
        targets: Vec<PartitionTarget>,
    ) -> Version {
        let records_at_start = state.snap.counters.records_read;
        Version {
            number,
            definition,
            operator,
            state: RwLock::new(state),
            stop: AtomicBool::new(false),
            retired: Mutex::new(false),
            files: Mutex::new(files),
            last_checkpoint: Mutex::new(None),
            wake: Arc::new(tokio::sync::Notify::new()),
            failure: Mutex::new(None),
            caught_up: AtomicBool::new(false),
            targets,
            started: Instant::now(),
            records_at_start,
        }
    }

    /// Asks the runner to stop; it writes a final checkpoint unless retired.
    pub(crate) fn stop(&self) {
        self.stop.store(true, Ordering::Release);
        self.wake.notify_one();
    }

    /// Stops the runner for good: no checkpoint is written after this returns.
    pub(crate) fn retire(&self) {
        *self.retired.lock() = true;
        self.stop();
    }

    /// After a panic in the runner: the state may hold half of a record, so no checkpoint is
    /// written any more.
    pub(crate) fn retire_after_panic(&self) {
        *self.retired.lock() = true;
    }

    /// Writes the checkpoint (state, offsets and staged emits together) unless retired.
    pub(crate) fn checkpoint(&self) -> Result<()> {
        self.checkpoint_and_emit("", None)
    }

    /// Writes the checkpoint unless retired, then appends to `emit` the records it staged: an
    /// emitted record is never appended before the checkpoint that covers its inputs is durable.
    pub(crate) fn checkpoint_and_emit(&self, view: &str, emit: Option<&Topic>) -> Result<()> {
        let retired = self.retired.lock();
        if *retired {
            return Ok(());
        }
        // The runner is the only writer of the state: what it changed since the last checkpoint.
        let mut files = self.files.lock();
        let written = files.write(&self.state);
        *self.last_checkpoint.lock() = files.last;
        drop(files);
        written?;
        if let Some(topic) = emit {
            let staged = self.state.write().snap.emit.take();
            if !staged.is_empty() {
                emit::publish(topic, view, self.number, staged)?;
            }
        }
        Ok(())
    }

    /// What the last checkpoint of this process wrote.
    pub(crate) fn last_checkpoint(&self) -> Option<CheckpointStats> {
        *self.last_checkpoint.lock()
    }

    fn sources(&self, store: &Store) -> Vec<Partition> {
        let mut out = Vec::new();
        for name in self.definition.topics() {
            if let Ok(t) = store.topic(&name) {
                out.extend(t.partitions().iter().cloned());
            }
        }
        out
    }

    /// Lag of each source partition: high watermark minus the next offset to read.
    pub(crate) fn lag(&self, store: &Store) -> Vec<PartitionLag> {
        let st = self.state.read();
        self.sources(store)
            .iter()
            .map(|p| {
                let source = st.snap.offsets.iter().find(|o| o.topic == p.topic() && o.partition == p.id());
                let next_offset = source.map_or_else(|| p.log_start_offset(), |o| o.next_offset);
                let high_watermark = p.high_watermark();
                PartitionLag {
                    topic: p.topic().to_string(),
                    partition: p.id(),
                    next_offset,
                    high_watermark,
                    lag: high_watermark.saturating_sub(next_offset),
                    watermark: source.and_then(|o| o.event_time_max),
                    idle: source.is_some_and(|o| o.idle),
                }
            })
            .collect()
    }

    fn progress(&self) -> RebuildProgress {
        let st = self.state.read();
        let (mut total, mut done) = (0u64, 0u64);
        let targets: Vec<PartitionTarget> = self
            .targets
            .iter()
            .map(|t| {
                let next = st.offset_of(&t.topic, t.partition).unwrap_or(t.start_offset);
                total += t.target_offset.saturating_sub(t.start_offset);
                done += next.min(t.target_offset).saturating_sub(t.start_offset);
                PartitionTarget { next_offset: next, ..t.clone() }
            })
            .collect();
        let records_replayed = st.snap.counters.records_read;
        let elapsed_s = self.started.elapsed().as_secs_f64();
        let rate = (records_replayed - self.records_at_start) as f64 / elapsed_s.max(1e-3);
        let percent = if total == 0 { 100.0 } else { 100.0 * done as f64 / total as f64 };
        let remaining = total - done;
        let eta_ms = (rate > 0.0).then(|| (remaining as f64 / rate * 1000.0) as u64);
        RebuildProgress {
            version: self.number,
            records_replayed,
            targets,
            percent,
            records_per_s: rate,
            eta_ms: if remaining == 0 { Some(0) } else { eta_ms },
        }
    }
}

/// Lag and event time of one source partition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PartitionLag {
    pub topic: String,
    pub partition: u32,
    pub next_offset: u64,
    pub high_watermark: u64,
    pub lag: u64,
    /// The highest event time applied from the partition (windowed views).
    pub watermark: Option<i64>,
    /// The partition is idle: it does not hold the view's watermark back.
    pub idle: bool,
}

/// Where a rebuild started in one partition and the offset it must reach.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PartitionTarget {
    pub topic: String,
    pub partition: u32,
    pub start_offset: u64,
    /// The high watermark when the rebuild started.
    pub target_offset: u64,
    pub next_offset: u64,
}

/// How far a rebuild has come.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RebuildProgress {
    /// The version being built.
    pub version: u64,
    pub records_replayed: u64,
    pub targets: Vec<PartitionTarget>,
    /// Of the offsets between the start and the targets.
    pub percent: f64,
    pub records_per_s: f64,
    /// Estimated time to reach the targets; `None` before any record was replayed.
    pub eta_ms: Option<u64>,
}

/// What a view is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ViewRunState {
    Running,
    Rebuilding,
    /// The runner stopped on an error (see `error`); reopen the views to retry.
    Failed,
}

/// A view's status (serializable, for the broker).
#[derive(Debug, Clone, Serialize)]
pub struct ViewStatus {
    pub name: String,
    /// The declarative spec; `None` for a custom (Rust) view.
    pub spec: Option<ViewSpec>,
    pub version: u64,
    pub state: ViewRunState,
    pub lag: Vec<PartitionLag>,
    pub watermark: Option<i64>,
    pub late_records: u64,
    pub error_records: u64,
    pub counters: ViewCounters,
    pub keys: usize,
    pub windows: usize,
    /// The estimated memory of the state (keys, entries, windows, indexes), in bytes.
    pub state_bytes: u64,
    /// What the serving version's last checkpoint (since the view was opened) wrote.
    pub checkpoint: Option<CheckpointStats>,
    pub rebuild: Option<RebuildProgress>,
    pub error: Option<String>,
}

/// One key in query results: `value` (tables, aggregates, custom views) or `windows`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KeyResult {
    pub key: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub windows: Option<Vec<WindowResult>>,
}

/// One view: the current version serving queries, and a rebuilding one, if any.
pub(crate) struct Slot {
    pub name: String,
    pub dir: PathBuf,
    pub store: Store,
    pub config: ViewsConfig,
    /// The logic of a custom view (also used by its rebuilds).
    pub logic: Option<Arc<dyn ViewLogic>>,
    pub current: RwLock<Arc<Version>>,
    pub pending: Mutex<Option<Arc<Version>>>,
    /// Serializes definition changes and the switch to a rebuilt version.
    pub admin: Mutex<()>,
    pub threads: Mutex<Vec<JoinHandle<()>>>,
    pub deleted: AtomicBool,
}

impl std::fmt::Debug for Slot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Slot").field("name", &self.name).finish()
    }
}

/// A handle to a view, for queries and status. Cheap to clone; `Send + Sync`. Queries read the
/// current version: a rebuild never shows until complete, and the switch is atomic. A handle keeps
/// the store open (drop it before reopening the data directory).
#[derive(Debug, Clone)]
pub struct View {
    pub(crate) slot: Arc<Slot>,
}

impl View {
    pub fn name(&self) -> &str {
        &self.slot.name
    }

    fn current(&self) -> Arc<Version> {
        Arc::clone(&self.slot.current.read())
    }

    /// The value of `key` (tables), or all its windows (windowed views).
    pub fn get(&self, key: &str) -> Option<KeyResult> {
        self.get_range(key, None, None)
    }

    /// Like [`get`](Self::get), keeping the windows whose start is in `from_ms..to_ms`.
    pub fn get_range(&self, key: &str, from_ms: Option<i64>, to_ms: Option<i64>) -> Option<KeyResult> {
        let v = self.current();
        let st = v.state.read();
        let entry = st.snap.entries.get(key)?;
        let (value, windows) = v.operator.show(entry, from_ms, to_ms);
        Some(KeyResult { key: key.to_string(), value, windows })
    }

    /// Keys starting with `prefix`, in order, at most `limit` (capped at [`SCAN_LIMIT_MAX`]).
    pub fn scan(&self, prefix: &str, limit: usize) -> Vec<KeyResult> {
        let v = self.current();
        let st = v.state.read();
        st.snap
            .entries
            .iter_from(prefix)
            .take_while(|(k, _)| k.starts_with(prefix))
            .take(limit.min(SCAN_LIMIT_MAX))
            .map(|(k, e)| {
                let (value, windows) = v.operator.show(e, None, None);
                KeyResult { key: k.clone(), value, windows }
            })
            .collect()
    }

    /// Why the view's runner (of the serving version, else of a rebuild) stopped, if it did: the
    /// `error` of a `failed` [`status`](Self::status), without computing the rest.
    pub fn failure(&self) -> Option<String> {
        let pending = self.slot.pending.lock().clone();
        self.current().failure.lock().clone().or_else(|| pending.and_then(|p| p.failure.lock().clone()))
    }

    pub fn status(&self) -> ViewStatus {
        let v = self.current();
        let pending = self.slot.pending.lock().clone();
        let lag = v.lag(&self.slot.store);
        let st = v.state.read();
        let failure = v.failure.lock().clone().or_else(|| pending.as_ref().and_then(|p| p.failure.lock().clone()));
        ViewStatus {
            name: self.slot.name.clone(),
            spec: v.definition.spec().cloned(),
            version: v.number,
            state: match (&failure, &pending) {
                (Some(_), _) => ViewRunState::Failed,
                (None, Some(_)) => ViewRunState::Rebuilding,
                (None, None) => ViewRunState::Running,
            },
            lag,
            watermark: st.snap.watermark,
            late_records: st.snap.counters.late_records,
            error_records: st.snap.counters.error_records,
            counters: st.snap.counters,
            keys: st.snap.entries.len(),
            windows: st.window_count(),
            state_bytes: st.memory_bytes(),
            checkpoint: v.last_checkpoint(),
            rebuild: pending.map(|p| p.progress()),
            error: failure,
        }
    }

    /// Waits (bounded) until no rebuild is pending and the current version has read everything
    /// (lag 0 on every partition). Returns whether it got there in time.
    pub fn wait_caught_up(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            let v = self.current();
            let done = self.slot.pending.lock().is_none()
                && v.caught_up.load(Ordering::Acquire)
                && v.lag(&self.slot.store).iter().all(|l| l.lag == 0);
            if done {
                return true;
            }
            if Instant::now() >= deadline || v.failure.lock().is_some() {
                return false;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}
