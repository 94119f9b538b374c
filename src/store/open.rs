//! Opening a store: the lock, the format check, the topics and their partitions, the flusher.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::Path;
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;

use parking_lot::{Mutex, RwLock};

use super::{
    Extensions, Registry, Store, StoreInner, StoreMeta, CLEAN_SHUTDOWN_FILE, FORMAT_VERSION, LOCK_FILE, META_FILE,
    TOPICS_DIR, TOPIC_META_FILE, TRASH_DIR,
};
use crate::config::{validate_topic_name, StoreConfig, PARTITIONS_MAX};
use crate::error::{Corruption, Error, Result};
use crate::log::commit::{CommitHandle, Committer};
use crate::log::io::{sync_dir, write_atomic};
use crate::log::partition::StoreContext;
use crate::log::Partition;
use crate::topic::{Topic, TopicInner, TopicMeta};

impl Store {
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
        let producer_ids = crate::producer_ids::ProducerIds::open(&dir)?;
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
                producer_ids,
                _lock: lock,
            }),
            extensions: Some(extensions),
        })
    }
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
                // Versions 1 and 2 have kappalog's own batch layout, which this build does not read.
                return Err(Error::FormatTooOld { path, found: meta.format_version, supported: FORMAT_VERSION });
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

fn open_topic(dir: &Path, name: &str, config: &StoreConfig, committer: &CommitHandle, clean: bool) -> Result<Topic> {
    let path = dir.join(TOPIC_META_FILE);
    let bytes = std::fs::read(&path).map_err(|e| Error::io(&path, e))?;
    let bad = |why: String| Error::Corrupted { path: path.clone(), position: 0, detail: Corruption::Malformed(why) };
    let mut meta: TopicMeta = serde_json::from_slice(&bytes).map_err(|e| bad(e.to_string()))?;
    if meta.format_version > FORMAT_VERSION {
        return Err(Error::UnsupportedFormat { path, found: meta.format_version, supported: FORMAT_VERSION });
    }
    if meta.format_version < FORMAT_VERSION {
        return Err(Error::FormatTooOld { path, found: meta.format_version, supported: FORMAT_VERSION });
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
        super::topics::write_meta(dir, &meta)?;
    }
    build_topic(dir, &meta, config, committer, clean)
}

pub(super) fn build_topic(
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

pub(super) fn open_partition(
    dir: &Path,
    topic: &Topic,
    id: u32,
    config: &StoreConfig,
    clean: bool,
) -> Result<Partition> {
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
            producer_id_expiration_ms: config.producer_id_expiration_ms,
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
