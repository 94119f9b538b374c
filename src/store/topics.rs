//! Creating, deleting and altering topics, and running the cleaner on one now.

use std::path::Path;
use std::sync::Arc;

use super::open::{build_topic, open_partition};
use super::{Store, FORMAT_VERSION, INTERNAL_NAME, INTERNAL_TOPIC_PREFIX, TOPICS_DIR, TOPIC_META_FILE, TRASH_DIR};
use crate::cleaner::{self, TopicCompactionReport, TopicRetentionReport};
use crate::config::{validate_topic_name, TopicConfig, PARTITIONS_MAX};
use crate::error::{Error, Result};
use crate::log::io::{sync_dir, write_atomic};
use crate::log::Partition;
use crate::topic::{Topic, TopicMeta};

impl Store {
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
        // The layers above hear of it: as in Kafka, the group coordinator deletes the topic's
        // committed offsets (a coordinator opened later deletes them when it opens).
        for extension in self.open_extensions() {
            extension.topic_deleted(name)?;
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

pub(super) fn write_meta(dir: &Path, meta: &TopicMeta) -> Result<()> {
    let bytes = serde_json::to_vec_pretty(meta).expect("serializable");
    write_atomic(&dir.join(TOPIC_META_FILE), &bytes)
}
