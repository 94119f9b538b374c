//! `kappalog migrate DIR`: rewrites a data directory of format version 1 or 2 (kappalog's own
//! batch header with CRC-32) into the current format (Kafka RecordBatch v2), crash-safely.
//!
//! Records keep their bytes (the record layout did not change), so offsets, timestamps, keys,
//! values and headers are kept exactly, and so are the committed offsets of `__consumer_offsets`
//! (a topic like any other) and the view checkpoints (which refer to offsets and topic ids, both
//! kept). Indexes are rebuilt; a `recovery-point` at the log's end is written.
//!
//! Per partition `topics/T/P`, with the work directory `W = migrate.tmp/T/P`:
//!
//! 1. Unless `W/new/complete` exists: build the new partition in `W/new` (every file fsynced),
//!    then create `W/new/complete` and fsync the directories. The old partition is untouched.
//! 2. If `W/new` exists: move the old partition to `W/old` (unless already there), then `W/new`
//!    to `topics/T/P` (fsyncing both parents).
//! 3. Create `W/done`; delete `W/old`.
//!
//! When every partition of a topic is done, its `topic.json` is rewritten with the new version
//! (atomically) and `migrate.tmp/T` deleted; when every topic is, `migrate.tmp` is deleted and
//! `kappalog.json` rewritten last. A crash at any point leaves, per partition, the whole old one or
//! the whole new one (possibly under `W/`), and the next run resumes from what it finds.

mod old_batch;

use std::fs::File;
use std::path::{Path, PathBuf};

use crate::cleaner::rewrite::{for_each_record, Output};
use crate::error::{Corruption, Error, Result};
use crate::log::batch::{self, HeaderFields, ProducerFields};
use crate::log::io::{sync_dir, write_atomic};
use crate::log::recovery_point::{self, RecoveryPoint};
use crate::log::segment::{parse_file_name, Segment};
use crate::store::{CLEAN_SHUTDOWN_FILE, FORMAT_VERSION, LOCK_FILE, META_FILE, TOPICS_DIR, TOPIC_META_FILE};
use crate::topic::TopicMeta;
use old_batch::OldHeader;

/// The work directory of a migration, in the data directory.
pub const WORK_DIR: &str = "migrate.tmp";
const COMPLETE: &str = "complete";
const DONE: &str = "done";
/// Partition files copied as they are (same layout in every format version).
const OFFSET_FILES: [&str; 2] = ["log-start-offset", "cleaner-checkpoint"];

/// What a migration did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct MigrateReport {
    /// The version found in `kappalog.json` (the current one: nothing was done).
    pub from_version: u32,
    /// Partitions rewritten by this run (not those a previous run finished).
    pub partitions: u64,
    pub batches: u64,
    pub records: u64,
    /// Torn tails cut from active segments (a crash of the old build): (file, byte position, bytes).
    pub torn_tails: Vec<(PathBuf, u64, u64)>,
}

/// Migrates the data directory `dir` to the current format version; see the module docs. A
/// directory already at the current version is left alone. Fails with [`Error::Locked`] while a
/// store has it open, and with [`Error::Corrupted`] (naming the file and byte) at a damaged batch,
/// leaving the old data in place.
pub fn migrate_store(dir: &Path) -> Result<MigrateReport> {
    let lock_path = dir.join(LOCK_FILE);
    let meta_path = dir.join(META_FILE);
    if !meta_path.exists() {
        return Err(Error::io(&meta_path, std::io::Error::new(std::io::ErrorKind::NotFound, "not a data directory")));
    }
    let lock = File::options().create(true).truncate(false).write(true).open(&lock_path);
    let lock = lock.map_err(|e| Error::io(&lock_path, e))?;
    match lock.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => return Err(Error::Locked { path: dir.to_path_buf() }),
        Err(std::fs::TryLockError::Error(e)) => return Err(Error::io(&lock_path, e)),
    }
    let version = read_version(&meta_path)?;
    let mut report = MigrateReport { from_version: version, ..Default::default() };
    if version == FORMAT_VERSION {
        return Ok(report);
    }
    if version > FORMAT_VERSION || version == 0 {
        return Err(Error::UnsupportedFormat { path: meta_path, found: version, supported: FORMAT_VERSION });
    }
    let clean = dir.join(CLEAN_SHUTDOWN_FILE).exists();
    let work = dir.join(WORK_DIR);
    let topics_dir = dir.join(TOPICS_DIR);
    let mut names = Vec::new();
    if topics_dir.exists() {
        for entry in std::fs::read_dir(&topics_dir).map_err(|e| Error::io(&topics_dir, e))? {
            let entry = entry.map_err(|e| Error::io(&topics_dir, e))?;
            if entry.path().join(TOPIC_META_FILE).exists() {
                names.push(entry.file_name().to_string_lossy().into_owned());
            }
        }
    }
    names.sort();
    for name in &names {
        migrate_topic(&topics_dir.join(name), &work.join(name), clean, &mut report)?;
    }
    if work.exists() {
        std::fs::remove_dir_all(&work).map_err(|e| Error::io(&work, e))?;
        sync_dir(dir)?;
    }
    // The new build's first open then recovers every active segment (cheap: the recovery point is
    // at each log's end) instead of trusting the old build's clean close.
    let clean_path = dir.join(CLEAN_SHUTDOWN_FILE);
    if clean_path.exists() {
        std::fs::remove_file(&clean_path).map_err(|e| Error::io(&clean_path, e))?;
        sync_dir(dir)?;
    }
    let meta = serde_json::json!({ "format_version": FORMAT_VERSION });
    write_atomic(&meta_path, &serde_json::to_vec_pretty(&meta).expect("serializable"))?;
    Ok(report)
}

fn malformed(path: &Path, position: u64, why: String) -> Error {
    Error::Corrupted { path: path.to_path_buf(), position, detail: Corruption::Malformed(why) }
}

fn read_version(path: &Path) -> Result<u32> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let v: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| malformed(path, 0, e.to_string()))?;
    v.get("format_version")
        .and_then(|v| v.as_u64())
        .and_then(|v| u32::try_from(v).ok())
        .ok_or_else(|| malformed(path, 0, "no format_version".into()))
}

fn migrate_topic(topic_dir: &Path, work: &Path, clean: bool, report: &mut MigrateReport) -> Result<()> {
    let meta_path = topic_dir.join(TOPIC_META_FILE);
    let version = read_version(&meta_path)?;
    if version == FORMAT_VERSION {
        if work.exists() {
            std::fs::remove_dir_all(work).map_err(|e| Error::io(work, e))?;
        }
        return Ok(());
    }
    if version > FORMAT_VERSION {
        return Err(Error::UnsupportedFormat { path: meta_path, found: version, supported: FORMAT_VERSION });
    }
    let bytes = std::fs::read(&meta_path).map_err(|e| Error::io(&meta_path, e))?;
    let mut json: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|e| malformed(&meta_path, 0, e.to_string()))?;
    json["format_version"] = FORMAT_VERSION.into();
    let meta: TopicMeta = serde_json::from_value(json).map_err(|e| malformed(&meta_path, 0, e.to_string()))?;
    meta.config.validate().map_err(|e| malformed(&meta_path, 0, e.to_string()))?;
    for p in 0..meta.partitions {
        migrate_partition(&topic_dir.join(p.to_string()), &work.join(p.to_string()), &meta, clean, report)?;
    }
    write_atomic(&meta_path, &serde_json::to_vec_pretty(&meta).expect("serializable"))?;
    if work.exists() {
        std::fs::remove_dir_all(work).map_err(|e| Error::io(work, e))?;
        sync_dir(work.parent().expect("inside the work directory"))?;
    }
    Ok(())
}

fn mkdirs(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let mut d = dir;
    // Make every new level durable (the data directory itself exists already).
    for _ in 0..4 {
        match d.parent() {
            Some(p) => {
                sync_dir(p)?;
                d = p;
            }
            None => break,
        }
    }
    Ok(())
}

fn rename(from: &Path, to: &Path) -> Result<()> {
    std::fs::rename(from, to).map_err(|e| Error::io(from, e))?;
    sync_dir(from.parent().expect("a parent"))?;
    sync_dir(to.parent().expect("a parent"))
}

fn create_marker(path: &Path) -> Result<()> {
    File::create(path).and_then(|f| f.sync_all()).map_err(|e| Error::io(path, e))?;
    sync_dir(path.parent().expect("a parent"))
}

fn migrate_partition(
    part: &Path,
    work: &Path,
    meta: &TopicMeta,
    clean: bool,
    report: &mut MigrateReport,
) -> Result<()> {
    let (new, old) = (work.join("new"), work.join("old"));
    let done = work.join(DONE);
    if !done.exists() {
        // Installed already: `topics/T/P` is the new partition, the old one is in `W/old`.
        let installed = !new.exists() && part.exists() && old.exists();
        if !new.join(COMPLETE).exists() && !installed {
            if !part.exists() {
                return Err(Error::io(part, std::io::Error::new(std::io::ErrorKind::NotFound, "partition directory")));
            }
            if new.exists() {
                std::fs::remove_dir_all(&new).map_err(|e| Error::io(&new, e))?;
            }
            mkdirs(&new)?;
            // A compaction swap the old build left half done is finished (or discarded) first, as
            // its next open would have (the swap's files are the same in every version).
            crate::cleaner::swap::recover(part)?;
            build(part, &new, meta, clean, report)?;
            create_marker(&new.join(COMPLETE))?;
            report.partitions += 1;
        }
        if new.exists() {
            if part.exists() && !old.exists() {
                rename(part, &old)?;
            }
            rename(&new, part)?;
        }
        // The new partition is in place: from here on `done` says so (`W/old` may go any time).
        create_marker(&done)?;
    }
    let marker = part.join(COMPLETE);
    if marker.exists() {
        std::fs::remove_file(&marker).map_err(|e| Error::io(&marker, e))?;
        sync_dir(part)?;
    }
    if old.exists() {
        std::fs::remove_dir_all(&old).map_err(|e| Error::io(&old, e))?;
    }
    Ok(())
}

/// Writes the new partition `new` from the old one `old`: one or more new segments per old
/// segment (a segment splits where the larger headers take it past `segment_bytes`).
fn build(old: &Path, new: &Path, meta: &TopicMeta, clean: bool, report: &mut MigrateReport) -> Result<()> {
    let mut bases = Vec::new();
    for entry in std::fs::read_dir(old).map_err(|e| Error::io(old, e))? {
        let entry = entry.map_err(|e| Error::io(old, e))?;
        if let Some(b) = parse_file_name(&entry.file_name().to_string_lossy(), "log") {
            bases.push(b);
        }
    }
    bases.sort_unstable();
    if bases.is_empty() {
        bases.push(0);
        File::create(Segment::paths(old, 0).0).map_err(|e| Error::io(old, e))?;
    }
    let config = &meta.config;
    let mut out = Output::new(new, None, config.segment_bytes, config.index_interval_bytes);
    let mut next = bases[0];
    let mut buf = Vec::new();
    for (i, &base) in bases.iter().enumerate() {
        let active = i + 1 == bases.len();
        let limit = bases.get(i + 1).copied().unwrap_or(u64::MAX);
        let path = Segment::paths(old, base).0;
        let data = std::fs::read(&path).map_err(|e| Error::io(&path, e))?;
        out.start(base)?;
        next = next.max(base);
        let mut pos = 0usize;
        while pos < data.len() {
            let rest = &data[pos..];
            let torn = || active && !clean && rest.iter().all(|&b| b == 0);
            let h = match OldHeader::parse(rest) {
                Ok(Some(h)) if h.len() <= rest.len() => h,
                Ok(_) if active && !clean => {
                    // Incomplete: the write a crash interrupted (the old build cut it at open).
                    report.torn_tails.push((path.clone(), pos as u64, rest.len() as u64));
                    break;
                }
                Ok(_) => return Err(malformed(&path, pos as u64, "incomplete format-2 batch".into())),
                Err(_) if torn() => {
                    report.torn_tails.push((path.clone(), pos as u64, rest.len() as u64));
                    break;
                }
                Err(detail) => return Err(Error::Corrupted { path, position: pos as u64, detail }),
            };
            let bytes = &rest[..h.len()];
            h.verify(bytes).map_err(|detail| Error::Corrupted { path: path.clone(), position: pos as u64, detail })?;
            if h.base_offset < next || h.last_offset() >= limit {
                return Err(malformed(
                    &path,
                    pos as u64,
                    format!("batch at offset {} outside [{next}, {limit}) of its segment", h.base_offset),
                ));
            }
            let at = |why: String| malformed(&path, pos as u64, format!("batch at offset {}: {why}", h.base_offset));
            let records = &bytes[old_batch::HEADER_LEN..];
            buf.clear();
            buf.resize(batch::HEADER_LEN + records.len(), 0);
            if buf.len() > crate::config::BATCH_BYTES_MAX as usize {
                return Err(at("too large for the new header".into()));
            }
            buf[batch::HEADER_LEN..].copy_from_slice(records);
            let attributes = match h.attributes & old_batch::LOG_APPEND_TIME != 0 {
                true => batch::ATTRIBUTE_LOG_APPEND_TIME,
                false => 0,
            };
            let fields = HeaderFields {
                base_offset: h.base_offset,
                attributes,
                timestamps: (h.first_timestamp, h.max_timestamp),
                record_count: h.record_count,
                last_offset_delta: h.last_offset_delta,
                producer: ProducerFields::NONE,
            };
            let nh = batch::finish(&mut buf, &fields);
            let plain = bytes::Bytes::copy_from_slice(records);
            let mut count = 0;
            for_each_record(&nh, &plain, |_| {
                count += 1;
                true
            })
            .map_err(|e| at(e.to_string()))?;
            out.push(&nh, &buf)?;
            report.batches += 1;
            report.records += count;
            next = h.last_offset() + 1;
            pos += h.len();
        }
    }
    out.finish()?;
    let (last_base, last_bytes) = *out.written.last().expect("one segment at least");
    let written: Vec<u64> = out.written.iter().map(|w| w.0).collect();
    for base in written {
        let (log, index, time) = Segment::paths(new, base);
        for p in [index, time, log] {
            let from = crate::cleaner::swap::cleaned_path(&p);
            std::fs::rename(&from, &p).map_err(|e| Error::io(&from, e))?;
        }
    }
    for name in OFFSET_FILES {
        if let Some(offset) = crate::log::offset_file::read(&old.join(name))? {
            crate::log::offset_file::write(&new.join(name), offset)?;
        }
    }
    let rp = RecoveryPoint { offset: next, segment_base: last_base, position: last_bytes };
    recovery_point::write(new, rp)?;
    sync_dir(new)
}
