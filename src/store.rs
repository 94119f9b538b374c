//! The store: a data directory under an exclusive lock, and its registry of topics.

use std::any::{Any, TypeId};
use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc, Weak};
use std::thread::JoinHandle;

use parking_lot::{Mutex, RwLock};
use serde::{Deserialize, Serialize};

use crate::cleaner::{self, TopicCompactionReport, TopicRetentionReport};
use crate::config::{validate_topic_name, StoreConfig, TopicConfig, PARTITIONS_MAX};
use crate::error::{Corruption, Error, Result};
use crate::log::commit::{CommitHandle, Committer};
use crate::log::io::{sync_dir, write_atomic};
use crate::log::partition::StoreContext;
use crate::log::Partition;
use crate::topic::{Topic, TopicInner, TopicMeta};

/// The on-disk format version this build writes and the newest it reads (history: section 13 of
/// `segment-format.md`). An older store is upgraded when opened (see `check_format`).
pub const FORMAT_VERSION: u32 = 2;

/// The file in the data directory whose exclusive lock a `Store` holds.
pub(crate) const LOCK_FILE: &str = "LOCK";
const META_FILE: &str = "kappalog.json";
const CLEAN_SHUTDOWN_FILE: &str = "clean-shutdown";
const TOPICS_DIR: &str = "topics";
const TRASH_DIR: &str = "trash";
const TOPIC_META_FILE: &str = "topic.json";
/// Topics whose names start with this belong to kappalog itself (e.g. `__consumer_offsets`).
pub const INTERNAL_TOPIC_PREFIX: &str = "__";
/// Why a user may not create or reconfigure a topic of that name.
const INTERNAL_NAME: &str = "names starting with \"__\" are kappalog's internal topics";

#[derive(Debug, Serialize, Deserialize)]
struct StoreMeta {
    format_version: u32,
}

type Registry = Arc<RwLock<BTreeMap<String, Topic>>>;

/// An open data directory. Cheap to clone; `Send + Sync`. Dropping the last handle stops its views
/// (after a final checkpoint), flushes every partition and marks a clean shutdown, so the next open
/// does not scan the logs.
///
/// The store owns one group coordinator ([`Store::groups`]) and one views registry
/// ([`Store::views`]): every user of a store sees the same members, offsets and view runners.
#[derive(Clone, Debug)]
pub struct Store {
    inner: Arc<StoreInner>,
    /// `None` in the handles the extensions themselves hold (so that they do not keep themselves
    /// alive); `Some` in every handle `open` gave and its clones.
    extensions: Option<Arc<Extensions>>,
}

/// What the layers above keep per store, one value per type (its group coordinator, its views),
/// alive while a handle from [`Store::open`] is. Kept by type so that the store names none of them.
#[derive(Default)]
struct Extensions {
    slots: Mutex<Vec<(TypeId, Slot)>>,
}

type Extension = Box<dyn Any + Send + Sync>;
/// One type's extension, locked on its own while it opens.
type Slot = Arc<Mutex<Option<Extension>>>;

impl std::fmt::Debug for Extensions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Extensions").field("slots", &self.slots.lock().len()).finish()
    }
}

#[derive(Debug)]
struct StoreInner {
    dir: PathBuf,
    config: StoreConfig,
    topics: Registry,
    /// Serializes create / delete / alter of topics.
    admin: Mutex<()>,
    flusher: Mutex<Option<(mpsc::Sender<()>, JoinHandle<()>)>>,
    /// The background cleaner (retention and compaction); `None` when `cleaner_interval_ms` is 0.
    cleaner: Mutex<Option<crate::cleaner::Cleaner>>,
    /// The group commit every `sync` append of the store goes through.
    committer: Committer,
    /// The extensions of the handles `open` gave, for the handles without them.
    extensions: Weak<Extensions>,
    /// Held for the life of the store: the exclusive lock.
    _lock: File,
}

/// Builds a [`Store`]'s configuration and opens it: `Store::builder(dir).cleaner_interval_ms(0).open()`.
#[derive(Debug)]
#[must_use]
pub struct StoreBuilder {
    dir: PathBuf,
    config: StoreConfig,
}

impl StoreBuilder {
    /// Replaces the whole configuration.
    pub fn config(mut self, config: StoreConfig) -> StoreBuilder {
        self.config = config;
        self
    }

    /// The time source (see [`StoreConfig::clock`](StoreConfig#structfield.clock)).
    pub fn clock(mut self, clock: Arc<dyn crate::clock::Clock>) -> StoreBuilder {
        self.config.clock = clock;
        self
    }

    /// See [`StoreConfig::flush_tick_ms`](StoreConfig#structfield.flush_tick_ms).
    pub fn flush_tick_ms(mut self, ms: u64) -> StoreBuilder {
        self.config.flush_tick_ms = ms;
        self
    }

    /// See [`StoreConfig::cleaner_interval_ms`](StoreConfig#structfield.cleaner_interval_ms); 0 disables
    /// the background cleaner.
    pub fn cleaner_interval_ms(mut self, ms: u64) -> StoreBuilder {
        self.config.cleaner_interval_ms = ms;
        self
    }

    /// See [`StoreConfig::offset_map_bytes`](StoreConfig#structfield.offset_map_bytes).
    pub fn offset_map_bytes(mut self, bytes: usize) -> StoreBuilder {
        self.config.offset_map_bytes = bytes;
        self
    }

    #[doc(hidden)]
    pub fn faults(mut self, faults: Option<Arc<crate::fault::FaultInjector>>) -> StoreBuilder {
        self.config.faults = faults;
        self
    }

    /// Opens the store ([`Store::open`]).
    pub fn open(self) -> Result<Store> {
        Store::open(self.dir, self.config)
    }
}

impl Store {
    /// A builder for the store in `dir`, starting from [`StoreConfig::default`].
    pub fn builder(dir: impl AsRef<Path>) -> StoreBuilder {
        StoreBuilder { dir: dir.as_ref().to_path_buf(), config: StoreConfig::default() }
    }

    /// Opens (creating if needed) the data directory `dir`. Fails with [`Error::Locked`] when another
    /// `Store`, in this process or another, has it open.
    pub fn open(dir: impl AsRef<Path>, config: StoreConfig) -> Result<Store> {
        let dir = dir.as_ref().to_path_buf();
        if config.offset_map_bytes < crate::config::OFFSET_MAP_BYTES_MIN {
            return Err(Error::InvalidConfig {
                field: "offset_map_bytes",
                reason: format!("{} is below {}", config.offset_map_bytes, crate::config::OFFSET_MAP_BYTES_MIN),
            });
        }
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        let lock_path = dir.join(LOCK_FILE);
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| Error::io(&lock_path, e))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => return Err(Error::Locked { path: dir }),
            Err(std::fs::TryLockError::Error(e)) => return Err(Error::io(&lock_path, e)),
        }
        check_format(&dir)?;
        let clean_path = dir.join(CLEAN_SHUTDOWN_FILE);
        let clean = clean_path.exists();
        if clean {
            std::fs::remove_file(&clean_path).map_err(|e| Error::io(&clean_path, e))?;
            sync_dir(&dir)?;
        }
        let trash = dir.join(TRASH_DIR);
        if trash.exists() {
            std::fs::remove_dir_all(&trash).map_err(|e| Error::io(&trash, e))?;
        }
        let topics_dir = dir.join(TOPICS_DIR);
        if !topics_dir.exists() {
            std::fs::create_dir_all(&topics_dir).map_err(|e| Error::io(&topics_dir, e))?;
            sync_dir(&dir)?;
        }
        let committer = Committer::start(config.faults.clone(), config.commit_threads)?;
        let mut topics = BTreeMap::new();
        for entry in std::fs::read_dir(&topics_dir).map_err(|e| Error::io(&topics_dir, e))? {
            let entry = entry.map_err(|e| Error::io(&topics_dir, e))?;
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if !path.is_dir() {
                tracing::warn!(path = %path.display(), "ignoring a file that is not a topic directory");
                continue;
            }
            if !path.join(TOPIC_META_FILE).exists() {
                // A topic whose creation did not finish: topic.json is written last.
                tracing::warn!(path = %path.display(), "removing an incompletely created topic");
                std::fs::remove_dir_all(&path).map_err(|e| Error::io(&path, e))?;
                continue;
            }
            let topic = open_topic(&path, &name, &config, &committer.handle(), clean)?;
            topics.insert(name, topic);
        }
        let topics: Registry = Arc::new(RwLock::new(topics));
        let flusher = start_flusher(Arc::clone(&topics), config.flush_tick_ms);
        let cleaner = (config.cleaner_interval_ms > 0).then(|| {
            let topics = Arc::clone(&topics);
            crate::cleaner::Cleaner::start(
                config.cleaner_interval_ms,
                Arc::clone(&config.clock),
                config.offset_map_bytes,
                move || topics.read().values().cloned().collect(),
            )
        });
        tracing::info!(dir = %dir.display(), clean, "store opened");
        let extensions = Arc::new(Extensions::default());
        Ok(Store {
            inner: Arc::new(StoreInner {
                dir,
                config,
                topics,
                admin: Mutex::new(()),
                flusher: Mutex::new(Some(flusher)),
                cleaner: Mutex::new(cleaner),
                committer,
                extensions: Arc::downgrade(&extensions),
                _lock: lock,
            }),
            extensions: Some(extensions),
        })
    }

    /// The store's one `T` (its group coordinator, its views), made by `open` the first time, with
    /// a handle that does not keep the extensions alive. [`Error::Closed`] once every handle from
    /// [`Store::open`] is gone.
    pub(crate) fn extension<T: Any + Clone + Send + Sync>(&self, open: impl FnOnce(Store) -> Result<T>) -> Result<T> {
        let extensions = match &self.extensions {
            Some(e) => Arc::clone(e),
            None => self.inner.extensions.upgrade().ok_or(Error::Closed)?,
        };
        let slot = {
            let mut slots = extensions.slots.lock();
            match slots.iter().find(|(id, _)| *id == TypeId::of::<T>()) {
                Some((_, slot)) => Arc::clone(slot),
                None => {
                    let slot = Arc::new(Mutex::new(None));
                    slots.push((TypeId::of::<T>(), Arc::clone(&slot)));
                    slot
                }
            }
        };
        // Only this type's slot is locked while it opens: another type's open may run meanwhile.
        let mut slot = slot.lock();
        if let Some(t) = slot.as_ref().and_then(|b| b.downcast_ref::<T>()) {
            return Ok(t.clone());
        }
        let t = open(Store { inner: Arc::clone(&self.inner), extensions: None })?;
        *slot = Some(Box::new(t.clone()));
        Ok(t)
    }

    /// Forgets the store's `T` when `is_it` says it is the one given (its `close`): the next
    /// [`extension`](Self::extension) opens a new one.
    pub(crate) fn remove_extension<T: Any>(
        &self,
        is_it: impl FnOnce(&T) -> bool,
    ) -> Option<Box<dyn Any + Send + Sync>> {
        let extensions = self.extensions.clone().or_else(|| self.inner.extensions.upgrade())?;
        let slot =
            extensions.slots.lock().iter().find(|(id, _)| *id == TypeId::of::<T>()).map(|(_, s)| Arc::clone(s))?;
        let mut slot = slot.lock();
        match slot.as_ref().and_then(|b| b.downcast_ref::<T>()) {
            Some(t) if is_it(t) => slot.take(),
            _ => None,
        }
    }

    pub fn data_dir(&self) -> &Path {
        &self.inner.dir
    }

    pub fn config(&self) -> &StoreConfig {
        &self.inner.config
    }

    /// Creates a topic of `partitions` partitions.
    pub fn create_topic(&self, name: &str, partitions: u32, config: TopicConfig) -> Result<Topic> {
        if name.starts_with(INTERNAL_TOPIC_PREFIX) {
            return Err(Error::InvalidTopicName { name: name.to_string(), reason: INTERNAL_NAME });
        }
        self.create_internal_topic(name, partitions, config)
    }

    /// [`create_topic`](Self::create_topic) for names of internal topics too (the offsets topic).
    pub(crate) fn create_internal_topic(&self, name: &str, partitions: u32, config: TopicConfig) -> Result<Topic> {
        validate_topic_name(name)?;
        check_partitions(partitions)?;
        config.validate()?;
        let _admin = self.inner.admin.lock();
        if self.inner.topics.read().contains_key(name) {
            return Err(Error::TopicExists(name.to_string()));
        }
        let topics_dir = self.inner.dir.join(TOPICS_DIR);
        let dir = topics_dir.join(name);
        if dir.exists() {
            std::fs::remove_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        }
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        sync_dir(&topics_dir)?;
        let id = Some(crate::TopicId::random()?);
        let meta = TopicMeta { format_version: FORMAT_VERSION, name: name.to_string(), id, partitions, config };
        let topic = build_topic(&dir, &meta, &self.inner.config, &self.inner.committer.handle(), true)?;
        write_meta(&dir, &meta)?;
        self.inner.topics.write().insert(name.to_string(), topic.clone());
        tracing::info!(topic = name, partitions, "topic created");
        Ok(topic)
    }

    pub fn topic(&self, name: &str) -> Result<Topic> {
        self.inner.topics.read().get(name).cloned().ok_or_else(|| Error::TopicNotFound(name.to_string()))
    }

    /// Topic names, sorted.
    pub fn topic_names(&self) -> Vec<String> {
        self.inner.topics.read().keys().cloned().collect()
    }

    /// Deletes a topic and its data. Readers holding its records keep them.
    pub fn delete_topic(&self, name: &str) -> Result<()> {
        if name.starts_with(INTERNAL_TOPIC_PREFIX) {
            return Err(Error::InternalTopic(name.to_string()));
        }
        let _admin = self.inner.admin.lock();
        let topic = self.inner.topics.write().remove(name).ok_or_else(|| Error::TopicNotFound(name.to_string()))?;
        for p in topic.partitions().iter() {
            p.mark_deleted();
            // A retention or compaction run in progress finishes first; later ones refuse.
            drop(p.maintenance().lock());
        }
        let trash = self.inner.dir.join(TRASH_DIR);
        std::fs::create_dir_all(&trash).map_err(|e| Error::io(&trash, e))?;
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        let target = trash.join(format!("{name}-{nanos}"));
        sync_dir(&self.inner.dir)?;
        std::fs::rename(&topic.inner.dir, &target).map_err(|e| Error::io(&topic.inner.dir, e))?;
        sync_dir(&self.inner.dir.join(TOPICS_DIR))?;
        sync_dir(&trash)?;
        std::fs::remove_dir_all(&target).map_err(|e| Error::io(&target, e))?;
        tracing::info!(topic = name, "topic deleted");
        drop(_admin);
        // As in Kafka, its committed offsets go with it (opening the coordinator takes no admin lock
        // when the offsets topic exists).
        if self.topic(crate::groups::OFFSETS_TOPIC).is_ok() {
            crate::groups::GroupCoordinator::open(self)?.forget_topic(name)?;
        }
        Ok(())
    }

    /// Replaces a topic's config (persisted atomically). New segment sizes apply from the next roll.
    pub fn set_topic_config(&self, name: &str, config: TopicConfig) -> Result<()> {
        if name.starts_with(INTERNAL_TOPIC_PREFIX) {
            return Err(Error::InvalidTopicName { name: name.to_string(), reason: INTERNAL_NAME });
        }
        config.validate()?;
        let _admin = self.inner.admin.lock();
        let topic = self.topic(name)?;
        let meta = TopicMeta {
            format_version: FORMAT_VERSION,
            name: name.to_string(),
            id: Some(topic.id()),
            partitions: topic.partition_count(),
            config: config.clone(),
        };
        write_meta(&topic.inner.dir, &meta)?;
        *topic.inner.config.write() = config;
        Ok(())
    }

    /// Grows a topic to `partitions` partitions (Kafka allows adding, never removing).
    pub fn add_partitions(&self, name: &str, partitions: u32) -> Result<()> {
        check_partitions(partitions)?;
        let _admin = self.inner.admin.lock();
        let topic = self.topic(name)?;
        let current = topic.partition_count();
        if partitions <= current {
            return Err(Error::InvalidConfig {
                field: "partitions",
                reason: format!("{partitions} must be more than the current {current}"),
            });
        }
        let mut list: Vec<Partition> = topic.partitions().to_vec();
        for id in current..partitions {
            list.push(open_partition(&topic.inner.dir, &topic, id, &self.inner.config, true)?);
        }
        let (id, config) = (Some(topic.id()), topic.config());
        let meta = TopicMeta { format_version: FORMAT_VERSION, name: name.to_string(), id, partitions, config };
        write_meta(&topic.inner.dir, &meta)?;
        *topic.inner.partitions.write() = Arc::new(list);
        Ok(())
    }

    /// Enforces retention on `topic` now (the store's clock) and reports what was removed.
    /// Blocking: async callers use `spawn_blocking`.
    pub fn enforce_retention(&self, topic: &str) -> Result<TopicRetentionReport> {
        cleaner::run_retention(&self.topic(topic)?, self.config().clock.now_ms())
    }

    /// Compacts `topic` now (the store's clock and key map budget), whatever its dirty ratio.
    /// Blocking and possibly long: async callers use `spawn_blocking`.
    pub fn compact(&self, topic: &str) -> Result<TopicCompactionReport> {
        cleaner::compact_topic(&self.topic(topic)?, self.config().clock.now_ms(), self.config().offset_map_bytes)
    }

    /// Fsyncs every partition of every topic.
    pub fn flush(&self) -> Result<()> {
        let topics: Vec<Topic> = self.inner.topics.read().values().cloned().collect();
        for t in topics {
            for p in t.partitions().iter() {
                if !p.is_poisoned() {
                    p.flush()?;
                }
            }
        }
        Ok(())
    }

    /// Flushes everything and closes this handle. The clean-shutdown mark is written when the last
    /// handle goes.
    pub fn close(self) -> Result<()> {
        self.flush()
    }
}

impl Drop for StoreInner {
    fn drop(&mut self) {
        drop(self.cleaner.lock().take());
        if let Some((stop, handle)) = self.flusher.lock().take() {
            drop(stop);
            let _ = handle.join();
        }
        // What is queued is committed; later appends fail with `Closed`.
        self.committer.stop();
        let mut clean = true;
        for t in self.topics.read().values() {
            for p in t.partitions().iter() {
                p.mark_closed();
                // Corruption recovery found is only found again by a full scan: a clean mark
                // would make the next open trust the indexes and stop reporting it.
                if p.is_poisoned() || p.flush().is_err() || p.corruption().is_some() || p.cut_tail_for_close().is_err()
                {
                    clean = false;
                }
            }
        }
        if clean {
            let path = self.dir.join(CLEAN_SHUTDOWN_FILE);
            let ok = File::create(&path).and_then(|f| f.sync_all()).is_ok() && sync_dir(&self.dir).is_ok();
            tracing::info!(dir = %self.dir.display(), clean = ok, "store closed");
        }
    }
}

fn check_partitions(partitions: u32) -> Result<()> {
    if partitions == 0 {
        return Err(Error::InvalidConfig {
            field: "partitions",
            reason: "a topic needs at least one partition".into(),
        });
    }
    if partitions > PARTITIONS_MAX {
        return Err(Error::LimitExceeded {
            limit: "PARTITIONS_MAX",
            value: partitions as u64,
            max: PARTITIONS_MAX as u64,
        });
    }
    Ok(())
}

fn check_format(dir: &Path) -> Result<()> {
    let path = dir.join(META_FILE);
    match std::fs::read(&path) {
        Ok(bytes) => {
            let meta: StoreMeta = serde_json::from_slice(&bytes).map_err(|e| Error::Corrupted {
                path: path.clone(),
                position: 0,
                detail: Corruption::Malformed(e.to_string()),
            })?;
            if meta.format_version > FORMAT_VERSION {
                return Err(Error::UnsupportedFormat { path, found: meta.format_version, supported: FORMAT_VERSION });
            }
            if meta.format_version < FORMAT_VERSION {
                // Version 1 differs only in its 12-byte `.timeindex` entries, which fail this build's
                // checks and are rebuilt from the log when first loaded. The store says it is newer
                // from now on, so that an older build refuses it instead of misreading those files.
                write_current_format(&path)?;
            }
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => write_current_format(&path),
        Err(e) => Err(Error::io(&path, e)),
    }
}

/// Writes `kappalog.json` saying this build's format version.
fn write_current_format(path: &Path) -> Result<()> {
    let bytes = serde_json::to_vec_pretty(&StoreMeta { format_version: FORMAT_VERSION }).expect("serializable");
    write_atomic(path, &bytes)
}

fn write_meta(dir: &Path, meta: &TopicMeta) -> Result<()> {
    let bytes = serde_json::to_vec_pretty(meta).expect("serializable");
    write_atomic(&dir.join(TOPIC_META_FILE), &bytes)
}

fn open_topic(dir: &Path, name: &str, config: &StoreConfig, committer: &CommitHandle, clean: bool) -> Result<Topic> {
    let path = dir.join(TOPIC_META_FILE);
    let bytes = std::fs::read(&path).map_err(|e| Error::io(&path, e))?;
    let bad = |why: String| Error::Corrupted { path: path.clone(), position: 0, detail: Corruption::Malformed(why) };
    let mut meta: TopicMeta = serde_json::from_slice(&bytes).map_err(|e| bad(e.to_string()))?;
    if meta.format_version > FORMAT_VERSION {
        return Err(Error::UnsupportedFormat { path, found: meta.format_version, supported: FORMAT_VERSION });
    }
    if meta.name != name || validate_topic_name(name).is_err() {
        return Err(bad(format!("topic name {:?} does not match its directory {name:?}", meta.name)));
    }
    if meta.partitions == 0 || meta.partitions > PARTITIONS_MAX {
        return Err(bad(format!("partition count {}", meta.partitions)));
    }
    meta.config.validate().map_err(|e| bad(e.to_string()))?;
    if meta.id.is_none() {
        // Written by a build without topic ids: the topic gets one now, kept from then on.
        meta.id = Some(crate::TopicId::random()?);
        write_meta(dir, &meta)?;
    }
    build_topic(dir, &meta, config, committer, clean)
}

fn build_topic(
    dir: &Path,
    meta: &TopicMeta,
    config: &StoreConfig,
    committer: &CommitHandle,
    clean: bool,
) -> Result<Topic> {
    let topic = Topic {
        inner: Arc::new(TopicInner {
            name: meta.name.as_str().into(),
            id: meta.id.expect("given at creation or at open"),
            dir: dir.to_path_buf(),
            config: Arc::new(RwLock::new(meta.config.clone())),
            partitions: RwLock::new(Arc::new(Vec::new())),
            sticky: Default::default(),
            committer: committer.clone(),
        }),
    };
    let mut list = Vec::with_capacity(meta.partitions as usize);
    for id in 0..meta.partitions {
        list.push(open_partition(dir, &topic, id, config, clean)?);
    }
    *topic.inner.partitions.write() = Arc::new(list);
    Ok(topic)
}

fn open_partition(dir: &Path, topic: &Topic, id: u32, config: &StoreConfig, clean: bool) -> Result<Partition> {
    let pdir = dir.join(id.to_string());
    let fresh = !pdir.exists();
    if !fresh {
        // Finish or discard a compaction swap that a crash interrupted, before the log lists segments.
        crate::cleaner::recover_swap(&pdir)?;
    }
    let p = Partition::open(
        Arc::clone(&topic.inner.name),
        id,
        pdir,
        Arc::clone(&topic.inner.config),
        StoreContext {
            clock: Arc::clone(&config.clock),
            faults: config.faults.clone(),
            committer: topic.inner.committer.clone(),
        },
        clean && !fresh,
    )?;
    if fresh {
        sync_dir(dir)?;
    }
    Ok(p)
}

/// The background flusher of `interval` topics. Stops when its sender is dropped.
fn start_flusher(topics: Registry, tick_ms: u64) -> (mpsc::Sender<()>, JoinHandle<()>) {
    let (tx, rx) = mpsc::channel::<()>();
    let handle = std::thread::Builder::new()
        .name("kappalog-flusher".into())
        .spawn(move || {
            let tick = std::time::Duration::from_millis(tick_ms.max(1));
            while let Err(mpsc::RecvTimeoutError::Timeout) = rx.recv_timeout(tick) {
                let list: Vec<Topic> = topics.read().values().cloned().collect();
                for t in list {
                    for p in t.partitions().iter() {
                        if let Err(e) = p.flush_if_due() {
                            tracing::error!(topic = t.name(), partition = p.id(), error = %e, "background flush failed");
                        }
                    }
                }
            }
        })
        .expect("spawn the flusher thread");
    (tx, handle)
}

impl Partition {
    /// The cleaner's state of this partition; its lock serializes retention and compaction.
    pub(crate) fn maintenance(&self) -> &Mutex<crate::cleaner::CleanerState> {
        self.maintenance_state()
    }
}
