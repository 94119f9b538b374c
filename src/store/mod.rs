//! The store: a data directory under an exclusive lock, and its registry of topics.

mod builder;
mod open;
mod topics;

pub use builder::StoreBuilder;

use std::any::{Any, TypeId};
use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc, Weak};
use std::thread::JoinHandle;

use parking_lot::{Mutex, RwLock};
use serde::{Deserialize, Serialize};

use crate::config::StoreConfig;
use crate::error::{Error, Result};
use crate::log::commit::Committer;
use crate::log::io::sync_dir;
use crate::log::Partition;
use crate::topic::Topic;

/// The on-disk format version this build writes, and the only one it reads (history: section 13 of
/// `segment-format.md`). A store of an older version is refused at open (`Error::FormatTooOld`).
pub const FORMAT_VERSION: u32 = 3;

/// The file in the data directory whose exclusive lock a `Store` holds.
pub(crate) const LOCK_FILE: &str = "LOCK";
pub(crate) const META_FILE: &str = "kappalog.json";
pub(crate) const CLEAN_SHUTDOWN_FILE: &str = "clean-shutdown";
pub(crate) const TOPICS_DIR: &str = "topics";
const TRASH_DIR: &str = "trash";
pub(crate) const TOPIC_META_FILE: &str = "topic.json";
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

/// A layer above the store kept by it ([`Store::extension`]), told of what the store does to its
/// topics.
pub(crate) trait StoreExtension: Any + Send + Sync {
    /// The topic `name` was deleted (its files are gone). An error fails the deletion's caller
    /// (the topic stays deleted).
    fn topic_deleted(&self, name: &str) -> Result<()> {
        let _ = name;
        Ok(())
    }
}

pub(crate) type Extension = Arc<dyn StoreExtension>;
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
    producer_ids: crate::producer_ids::ProducerIds,
    /// Held for the life of the store: the exclusive lock.
    _lock: File,
}

impl Store {
    /// The store's one `T` (its group coordinator, its views), made by `open` the first time, with
    /// a handle that does not keep the extensions alive. [`Error::Closed`] once every handle from
    /// [`Store::open`] is gone.
    pub(crate) fn extension<T, E>(&self, open: impl FnOnce(Store) -> Result<T, E>) -> Result<T, E>
    where
        T: StoreExtension + Clone,
        E: From<Error>,
    {
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
        if let Some(t) = slot.as_deref().and_then(|e| (e as &dyn Any).downcast_ref::<T>()) {
            return Ok(t.clone());
        }
        let t = open(Store { inner: Arc::clone(&self.inner), extensions: None })?;
        *slot = Some(Arc::new(t.clone()));
        Ok(t)
    }

    /// Forgets the store's `T` when `is_it` says it is the one given (its `close`): the next
    /// [`extension`](Self::extension) opens a new one.
    pub(crate) fn remove_extension<T: Any>(&self, is_it: impl FnOnce(&T) -> bool) -> Option<Extension> {
        let extensions = self.extensions.clone().or_else(|| self.inner.extensions.upgrade())?;
        let slot =
            extensions.slots.lock().iter().find(|(id, _)| *id == TypeId::of::<T>()).map(|(_, s)| Arc::clone(s))?;
        let mut slot = slot.lock();
        match slot.as_deref().and_then(|e| (e as &dyn Any).downcast_ref::<T>()) {
            Some(t) if is_it(t) => slot.take(),
            _ => None,
        }
    }

    /// The extensions open now, in the order they were first opened.
    fn open_extensions(&self) -> Vec<Extension> {
        let Some(extensions) = self.extensions.clone().or_else(|| self.inner.extensions.upgrade()) else {
            return Vec::new();
        };
        let slots: Vec<Slot> = extensions.slots.lock().iter().map(|(_, s)| Arc::clone(s)).collect();
        slots.iter().filter_map(|s| s.lock().clone()).collect()
    }

    pub fn data_dir(&self) -> &Path {
        &self.inner.dir
    }

    pub fn config(&self) -> &StoreConfig {
        &self.inner.config
    }

    /// A new producer id and its epoch (Kafka's `InitProducerId` without a transactional id): an id
    /// this data directory never gave before, also across crashes, with epoch 0. Appends that carry
    /// it (see [`Partition::append_with_producer`]) are deduplicated by their sequences.
    pub fn init_producer_id(&self) -> Result<(i64, i16)> {
        Ok((self.inner.producer_ids.allocate()?, 0))
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
                } else if let Err(e) = p.snapshot_producers_for_close() {
                    // Not fatal: the next open replays the batches after an older snapshot.
                    tracing::warn!(topic = p.topic(), partition = p.id(), error = %e, "producer-state snapshot failed");
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

impl Partition {
    /// The cleaner's state of this partition; its lock serializes retention and compaction.
    pub(crate) fn maintenance(&self) -> &Mutex<crate::cleaner::CleanerState> {
        self.maintenance_state()
    }
}
