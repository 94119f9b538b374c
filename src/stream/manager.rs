//! `Views`: the registry of views in a store. Definitions are durable (`views/<name>/view.json`,
//! replaced atomically); each version's state lives in `views/<name>/v<N>.checkpoint`.
//! Create, update (rebuild with the new definition), rebuild, delete, and resume after a restart.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};

use super::checkpoint;
use super::definition::{
    read_view_file, write_view_file, Definition, VersionDef, ViewFile, VIEW_FILE, VIEW_FILE_VERSION,
};
use super::delta;
use super::loop_check::{self, Edge};
use super::operator::{Declarative, Operator, ViewLogic};
use super::runner;
use super::spec::ViewSpec;
use super::state::State;
use super::state_store::StateStore;
use super::view::{PartitionTarget, Slot, Version, View};
use super::Result;
use super::ViewError;
use crate::error::{Corruption, Error};
use crate::log::io::sync_dir;
use crate::store::{Store, StoreExtension};

const VIEWS_DIR: &str = "views";

/// Tuning of view runners.
#[non_exhaustive]
#[derive(Debug, Clone)]
pub struct ViewsConfig {
    /// Checkpoint at least this often while records arrive (and always when caught up, and at shutdown).
    pub checkpoint_interval_ms: u64,
    /// … or after this many records.
    pub checkpoint_interval_records: u64,
    /// Records per read of one partition (also the most applied under one state write lock).
    pub read_records_max: usize,
    /// Bytes per read of one partition (about).
    pub read_bytes_max: usize,
    /// How long an idle runner waits for data before it looks again (bounds shutdown latency).
    pub idle_wait_ms: u64,
    /// Threads that work on a view's records (the runner thread among them): they parse record
    /// values (`stream/workers.rs`) and, for a keyed aggregation without a window, apply them,
    /// each thread owning a shard of the state by a hash of the key (`stream/shards.rs`). Other
    /// views are applied by the runner thread. The results are the same whatever this is.
    /// Default: the cores available (`std::thread::available_parallelism`).
    pub workers: usize,
}

crate::config::setters!(ViewsConfig {
    checkpoint_interval_ms: u64,
    checkpoint_interval_records: u64,
    read_records_max: usize,
    read_bytes_max: usize,
    idle_wait_ms: u64,
    workers: usize,
});

impl Default for ViewsConfig {
    fn default() -> Self {
        ViewsConfig {
            checkpoint_interval_ms: 1000,
            checkpoint_interval_records: 100_000,
            read_records_max: 4096,
            read_bytes_max: 4 << 20,
            idle_wait_ms: 100,
            workers: std::thread::available_parallelism().map_or(1, |n| n.get()),
        }
    }
}

/// Where a rebuild starts reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RebuildFrom {
    /// Each partition's log start.
    Beginning,
    /// Each partition's first record with a timestamp at or after this (epoch ms).
    Timestamp(i64),
}

/// The views of a store, which owns them ([`Store::views`]). Cheap to clone; `Send + Sync`. They
/// run until [`close`](Self::close), or until the store's last handle and this registry's last
/// handle are gone: each runner stops after a final checkpoint.
#[derive(Debug, Clone)]
pub struct Views {
    inner: Arc<ViewsInner>,
}

#[derive(Debug)]
struct ViewsInner {
    store: Store,
    dir: PathBuf,
    config: ViewsConfig,
    views: RwLock<BTreeMap<String, Arc<Slot>>>,
    /// Custom views found on disk, waiting for their logic ([`Views::create_custom`]).
    detached: Mutex<BTreeMap<String, Definition>>,
    admin: Mutex<()>,
}

impl Views {
    /// Opens the views of `store` (under `<data-dir>/views`) and resumes each declarative view
    /// from its checkpoint. Custom views resume when [`create_custom`](Self::create_custom) gives
    /// their logic again. A store has one `Views`: once open, `open` (and [`Store::views`])
    /// returns it (and `config` is ignored), so two runners never share a checkpoint file.
    pub fn open(store: &Store, config: ViewsConfig) -> Result<Views> {
        store.extension(|store| Self::open_new(&store, config))
    }

    fn open_new(store: &Store, config: ViewsConfig) -> Result<Views> {
        let dir = store.data_dir().join(VIEWS_DIR);
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        let inner = Arc::new(ViewsInner {
            store: store.clone(),
            dir: dir.clone(),
            config,
            views: RwLock::new(BTreeMap::new()),
            detached: Mutex::new(BTreeMap::new()),
            admin: Mutex::new(()),
        });
        let views = Views { inner };
        for entry in std::fs::read_dir(&dir).map_err(|e| Error::io(&dir, e))? {
            let entry = entry.map_err(|e| Error::io(&dir, e))?;
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if !path.is_dir() {
                continue;
            }
            let Some(file) = read_view_file(&path)? else {
                // A create that did not finish, or a delete that did: view.json is written last
                // and removed first.
                std::fs::remove_dir_all(&path).map_err(|e| Error::io(&path, e))?;
                sync_dir(&dir)?;
                continue;
            };
            match &file.current.definition {
                Definition::Custom { .. } => {
                    views.inner.detached.lock().insert(name, file.current.definition.clone());
                }
                Definition::Spec(spec) => {
                    if spec.name != name {
                        return Err(Error::Corrupted {
                            path: path.join(VIEW_FILE),
                            position: 0,
                            detail: Corruption::Malformed(format!("view {:?} in directory {name:?}", spec.name)),
                        }
                        .into());
                    }
                    views.start(&name, &file, None)?;
                }
            }
        }
        Ok(views)
    }

    /// Starts the versions in `file` (resuming from their checkpoints).
    fn start(&self, name: &str, file: &ViewFile, logic: Option<Arc<dyn ViewLogic>>) -> Result<View> {
        let dir = self.inner.dir.join(name);
        remove_stale_checkpoints(&dir, file)?;
        let current = self.load_version(&dir, &file.current, logic.clone())?;
        let pending = file.pending.as_ref().map(|p| self.load_version(&dir, p, logic.clone())).transpose()?;
        let slot = Arc::new(Slot {
            name: name.to_string(),
            dir,
            store: self.inner.store.clone(),
            config: self.inner.config.clone(),
            logic,
            current: RwLock::new(Arc::clone(&current)),
            pending: Mutex::new(pending.clone()),
            admin: Mutex::new(()),
            threads: Mutex::new(Vec::new()),
            deleted: AtomicBool::new(false),
        });
        runner::spawn(&slot, current);
        if let Some(p) = pending {
            runner::spawn(&slot, p);
        }
        self.inner.views.write().insert(name.to_string(), Arc::clone(&slot));
        Ok(View { slot })
    }

    /// A version from its checkpoint, or fresh from its start offsets.
    fn load_version(&self, dir: &Path, def: &VersionDef, logic: Option<Arc<dyn ViewLogic>>) -> Result<Arc<Version>> {
        let operator = operator_for(&def.definition, logic)?;
        let (files, snap) = StateStore::open(dir, def.version)?;
        let (state, targets) = match snap {
            Some(snap) => {
                let state = State::from_snapshot(operator.upgrade(snap), operator.windowing());
                let targets = self.targets(&def.definition, &state)?;
                (state, targets)
            }
            None => {
                let mut state = State::default();
                for t in def.definition.topics() {
                    // The offsets below are of the topics of these ids.
                    if let Ok(topic) = self.inner.store.topic(&t) {
                        state.snap.topic_ids.insert(t, topic.id());
                    }
                }
                for p in self.partitions(&def.definition)? {
                    let start = match def.from_timestamp_ms {
                        None => p.log_start_offset(),
                        Some(ts) => p.offset_for_timestamp(ts)?.unwrap_or_else(|| p.high_watermark()),
                    };
                    state.set_offset(p.topic(), p.id(), start);
                }
                let targets = self.targets(&def.definition, &state)?;
                (state, targets)
            }
        };
        Ok(Arc::new(Version::new(def.version, def.definition.clone(), operator, state, files, targets)))
    }

    fn partitions(&self, def: &Definition) -> Result<Vec<crate::log::Partition>> {
        let mut out = Vec::new();
        for t in def.topics() {
            // A source deleted since the view was defined: the view opens (and shows its state)
            // without it, rather than keeping every other view from opening.
            match self.inner.store.topic(&t) {
                Ok(topic) => out.extend(topic.partitions().iter().cloned()),
                Err(e) => tracing::warn!(topic = %t, error = %e, "a view's source topic is missing"),
            }
        }
        Ok(out)
    }

    fn targets(&self, def: &Definition, state: &State) -> Result<Vec<PartitionTarget>> {
        Ok(self
            .partitions(def)?
            .iter()
            .map(|p| {
                let start = state.offset_of(p.topic(), p.id()).unwrap_or_else(|| p.log_start_offset());
                PartitionTarget {
                    topic: p.topic().to_string(),
                    partition: p.id(),
                    start_offset: start,
                    target_offset: p.high_watermark(),
                    next_offset: start,
                }
            })
            .collect())
    }

    /// Checks that the spec's topics exist; the error names the field.
    fn check_topics(&self, spec: &ViewSpec) -> Result<()> {
        spec.check().map_err(ViewError::from)?;
        for (i, t) in spec.source.topics.iter().enumerate() {
            if self.inner.store.topic(t).is_err() {
                return Err(invalid(format!("source.topics[{i}]"), format!("topic {t:?} does not exist")));
            }
        }
        if let Some(j) = &spec.join {
            let field = if j.table.is_some() { "join.table" } else { "join.stream" };
            if self.inner.store.topic(j.topic()).is_err() {
                return Err(invalid(field, format!("topic {:?} does not exist", j.topic())));
            }
        }
        if let Some(e) = &spec.emit {
            check_emit_not_internal(&e.topic)?;
            if self.inner.store.topic(&e.topic).is_err() {
                return Err(invalid("emit.topic", format!("topic {:?} does not exist", e.topic)));
            }
        }
        Ok(())
    }

    /// Creates a declarative view; it starts reading its sources from the beginning.
    pub fn create(&self, spec: ViewSpec) -> Result<View> {
        self.check_topics(&spec)?;
        self.create_definition(&spec.name.clone(), Definition::Spec(Box::new(spec)), None)
    }

    /// Creates a view from its JSON spec (what the broker receives).
    pub fn create_json(&self, json: &[u8]) -> Result<View> {
        self.create(ViewSpec::from_json(json)?)
    }

    /// Creates a custom (Rust) view over `topics`, or resumes it from its checkpoint when it exists
    /// on disk from an earlier run (with the same topics).
    pub fn create_custom(
        &self,
        name: &str,
        topics: &[&str],
        emit_topic: Option<&str>,
        logic: Arc<dyn ViewLogic>,
    ) -> Result<View> {
        crate::config::validate_topic_name(name)
            .map_err(|e| invalid("name", format!("{name:?} is not a valid view name: {e}")))?;
        let definition = Definition::Custom {
            topics: topics.iter().map(|t| t.to_string()).collect(),
            emit_topic: emit_topic.map(String::from),
        };
        for (i, t) in topics.iter().enumerate() {
            if self.inner.store.topic(t).is_err() {
                return Err(invalid(format!("source.topics[{i}]"), format!("topic {t:?} does not exist")));
            }
        }
        if let Some(t) = emit_topic {
            check_emit_not_internal(t)?;
            if self.inner.store.topic(t).is_err() || topics.contains(&t) {
                return Err(invalid("emit.topic", format!("topic {t:?} does not exist or is a source")));
            }
        }
        let _admin = self.inner.admin.lock();
        let detached = self.inner.detached.lock().get(name).cloned();
        if let Some(stored) = detached {
            if stored != definition {
                return Err(ViewError::Custom {
                    name: name.to_string(),
                    reason: "it exists with other topics; delete it first".into(),
                });
            }
            let file = read_view_file(&self.inner.dir.join(name))?.ok_or_else(|| ViewError::NotFound(name.into()))?;
            let view = self.start(name, &file, Some(logic))?;
            self.inner.detached.lock().remove(name);
            return Ok(view);
        }
        drop(_admin);
        self.create_definition(name, definition, Some(logic))
    }

    fn create_definition(&self, name: &str, definition: Definition, logic: Option<Arc<dyn ViewLogic>>) -> Result<View> {
        let _admin = self.inner.admin.lock();
        if self.inner.views.read().contains_key(name) || self.inner.detached.lock().contains_key(name) {
            return Err(ViewError::Exists(name.to_string()));
        }
        self.check_no_loop(name, &definition)?;
        let dir = self.inner.dir.join(name);
        if dir.exists() {
            std::fs::remove_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        }
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        sync_dir(&self.inner.dir)?;
        let file = ViewFile {
            format_version: VIEW_FILE_VERSION,
            current: VersionDef { version: 1, definition, from_timestamp_ms: None },
            pending: None,
        };
        write_view_file(&dir, &file)?;
        tracing::info!(view = name, "view created");
        self.start(name, &file, logic)
    }

    /// View names, sorted (custom views waiting for their logic included).
    pub fn list(&self) -> Vec<String> {
        let mut names: Vec<String> = self.inner.views.read().keys().cloned().collect();
        names.extend(self.inner.detached.lock().keys().cloned());
        names.sort();
        names
    }

    pub fn get(&self, name: &str) -> Result<View> {
        let slot = self.inner.views.read().get(name).cloned();
        slot.map(|slot| View { slot }).ok_or_else(|| ViewError::NotFound(name.to_string()))
    }

    /// Replaces a view's definition: a new version is rebuilt from the beginning while the current
    /// one keeps serving, and takes over when caught up. An identical spec changes nothing.
    pub fn update(&self, spec: ViewSpec) -> Result<View> {
        self.check_topics(&spec)?;
        let view = self.get(&spec.name)?;
        let definition = Definition::Spec(Box::new(spec));
        if view.slot.current.read().definition == definition {
            return Ok(view);
        }
        let _admin = self.inner.admin.lock();
        self.check_no_loop(&view.slot.name, &definition)?;
        self.begin_rebuild(&view, Some(definition), RebuildFrom::Beginning)?;
        Ok(view)
    }

    /// Rebuilds a view with its current definition, replaying its sources from `from`.
    pub fn rebuild(&self, name: &str, from: RebuildFrom) -> Result<View> {
        let view = self.get(name)?;
        self.begin_rebuild(&view, None, from)?;
        Ok(view)
    }

    fn begin_rebuild(&self, view: &View, definition: Option<Definition>, from: RebuildFrom) -> Result<()> {
        let slot = &view.slot;
        let _admin = slot.admin.lock();
        if slot.deleted.load(Ordering::Acquire) {
            return Err(ViewError::NotFound(slot.name.clone()));
        }
        let current = Arc::clone(&slot.current.read());
        let old_pending = slot.pending.lock().clone();
        let number = old_pending.as_ref().map_or(current.number, |p| p.number) + 1;
        let pending = VersionDef {
            version: number,
            definition: definition.unwrap_or_else(|| current.definition.clone()),
            from_timestamp_ms: match from {
                RebuildFrom::Beginning => None,
                RebuildFrom::Timestamp(ts) => Some(ts),
            },
        };
        let file = ViewFile {
            format_version: VIEW_FILE_VERSION,
            current: VersionDef {
                version: current.number,
                definition: current.definition.clone(),
                from_timestamp_ms: None,
            },
            pending: Some(pending.clone()),
        };
        let version = self.load_version(&slot.dir, &pending, slot.logic.clone())?;
        write_view_file(&slot.dir, &file)?;
        if let Some(old) = old_pending {
            old.retire();
            remove_checkpoint(&slot.dir, old.number)?;
        }
        *slot.pending.lock() = Some(Arc::clone(&version));
        runner::spawn(slot, version);
        tracing::info!(view = %slot.name, version = number, "rebuild started");
        Ok(())
    }

    /// Refuses `definition` for view `name` when it would loop through other views (see
    /// `loop_check.rs`). The caller holds the admin lock, so no other view changes meanwhile.
    fn check_no_loop(&self, name: &str, definition: &Definition) -> Result<()> {
        let mut others = Vec::new();
        for (view, slot) in self.inner.views.read().iter().filter(|(v, _)| v.as_str() != name) {
            others.extend(Edge::of(view, &slot.current.read().definition));
            if let Some(p) = slot.pending.lock().as_ref() {
                others.extend(Edge::of(view, &p.definition));
            }
        }
        for (view, d) in self.inner.detached.lock().iter().filter(|(v, _)| v.as_str() != name) {
            others.extend(Edge::of(view, d));
        }
        loop_check::check_no_loop(definition, &others)
    }

    /// Deletes a view: its runners stop and its files go.
    pub fn delete(&self, name: &str) -> Result<()> {
        let _admin = self.inner.admin.lock();
        let dir = self.inner.dir.join(name);
        if self.inner.detached.lock().remove(name).is_none() {
            let slot = self.inner.views.write().remove(name).ok_or_else(|| ViewError::NotFound(name.to_string()))?;
            {
                let _a = slot.admin.lock();
                slot.deleted.store(true, Ordering::Release);
                slot.current.read().retire();
                if let Some(p) = slot.pending.lock().take() {
                    p.retire();
                }
            }
            let threads = std::mem::take(&mut *slot.threads.lock());
            for t in threads {
                let _ = t.join();
            }
        }
        let file = dir.join(VIEW_FILE);
        std::fs::remove_file(&file).map_err(|e| Error::io(&file, e))?;
        sync_dir(&dir)?;
        std::fs::remove_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        sync_dir(&self.inner.dir)?;
        tracing::info!(view = name, "view deleted");
        Ok(())
    }

    /// Stops every runner after a final checkpoint, and the store forgets this registry: the next
    /// [`Views::open`] starts them again from their checkpoints.
    pub fn close(self) {
        let forgotten = self.inner.store.remove_extension::<Views>(|v| Arc::ptr_eq(&v.inner, &self.inner));
        drop(forgotten);
        self.inner.stop_runners();
    }
}

/// The store keeps its views registry; the deletion of a topic asks nothing of it.
impl StoreExtension for Views {}

impl Store {
    /// The store's views (one registry per store), opened with [`ViewsConfig::default`] on first
    /// use; [`Views::open`] chooses another config.
    pub fn views(&self) -> Result<Views> {
        Views::open(self, ViewsConfig::default())
    }
}

impl Drop for ViewsInner {
    fn drop(&mut self) {
        self.stop_runners();
    }
}

impl ViewsInner {
    fn stop_runners(&self) {
        let slots: Vec<Arc<Slot>> = self.views.read().values().cloned().collect();
        for slot in &slots {
            slot.current.read().stop();
            if let Some(p) = slot.pending.lock().as_ref() {
                p.stop();
            }
        }
        for slot in &slots {
            let threads = std::mem::take(&mut *slot.threads.lock());
            for t in threads {
                let _ = t.join();
            }
        }
    }
}

/// Called by a rebuilding version's runner when it read everything: if it is still the pending
/// version and its lag is 0 now, it becomes current (definition file first, then the in-memory
/// switch), and the old version stops and its checkpoint is deleted.
pub(crate) fn promote(slot: &Arc<Slot>, v: &Arc<Version>) -> Result<()> {
    let _admin = slot.admin.lock();
    if slot.deleted.load(Ordering::Acquire) || !slot.pending.lock().as_ref().is_some_and(|p| Arc::ptr_eq(p, v)) {
        return Ok(());
    }
    if v.lag(&slot.store).iter().any(|l| l.lag > 0) {
        return Ok(());
    }
    v.checkpoint()?;
    let file = ViewFile {
        format_version: VIEW_FILE_VERSION,
        current: VersionDef { version: v.number, definition: v.definition.clone(), from_timestamp_ms: None },
        pending: None,
    };
    write_view_file(&slot.dir, &file)?;
    let old = std::mem::replace(&mut *slot.current.write(), Arc::clone(v));
    *slot.pending.lock() = None;
    old.retire();
    remove_checkpoint(&slot.dir, old.number)?;
    tracing::info!(view = %slot.name, version = v.number, "rebuilt version took over");
    Ok(())
}

fn operator_for(def: &Definition, logic: Option<Arc<dyn ViewLogic>>) -> Result<Operator> {
    match (def, logic) {
        (Definition::Spec(spec), _) => Ok(Operator::Declarative(Box::new(Declarative::new(spec.as_ref().clone())))),
        (Definition::Custom { .. }, Some(l)) => Ok(Operator::Custom(l)),
        (Definition::Custom { .. }, None) => {
            Err(ViewError::Custom { name: String::new(), reason: "a custom view needs its logic".into() })
        }
    }
}

fn invalid(field: impl Into<String>, reason: impl Into<String>) -> ViewError {
    ViewError::InvalidSpec { field: field.into(), reason: reason.into() }
}

/// Internal topics (`__consumer_offsets`) hold records only their owner can read back: results
/// written there would stop the group coordinator from opening the store again.
fn check_emit_not_internal(topic: &str) -> Result<()> {
    if topic.starts_with(crate::limits::INTERNAL_TOPIC_PREFIX) {
        return Err(invalid("emit.topic", format!("topic {topic:?} is internal: a view cannot write to it")));
    }
    Ok(())
}

fn remove_checkpoint(dir: &Path, version: u64) -> crate::Result<()> {
    StateStore::remove(dir, version)
}

/// Deletes checkpoints (and temp files) of versions `view.json` no longer names: left by a crash
/// between a switch (or a cancelled rebuild) and the deletion.
fn remove_stale_checkpoints(dir: &Path, file: &ViewFile) -> crate::Result<()> {
    let keep = [Some(file.current.version), file.pending.as_ref().map(|p| p.version)];
    for entry in std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let entry = entry.map_err(|e| Error::io(dir, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let version = checkpoint::parse_name(&name).or_else(|| delta::parse_name(&name));
        let stale = name.ends_with(".tmp") || version.is_some_and(|v| !keep.contains(&Some(v)));
        if stale {
            std::fs::remove_file(entry.path()).map_err(|e| Error::io(entry.path(), e))?;
        }
    }
    sync_dir(dir)
}
