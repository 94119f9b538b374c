//! A view version's checkpoint files: a base checkpoint (`v<N>.checkpoint`, the whole state,
//! `checkpoint.rs`) and its delta log (`v<N>.delta`, one record per incremental checkpoint,
//! `delta.rs`). A checkpoint writes what changed since the previous one: a delta record holds the
//! keys changed or removed and, whole, the rest of the durable state (offsets, watermark,
//! counters, staged emits, topic ids, join and change-data-capture state). When the deltas would
//! exceed half of the base, the checkpoint is a new base instead (a new generation) and the log
//! is removed; so is it after a failed write, for a new version, and over a checkpoint of an
//! earlier format. Every checkpoint, base or delta, is durable (fsync) before `write` returns.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use parking_lot::{RwLock, RwLockWriteGuard};
use serde::Serialize;

use super::checkpoint::{self, CHECKPOINT_VERSION};
use super::delta;
use super::state::{Snapshot, State};
use crate::error::{Error, Result};
use crate::log::io::sync_dir;

/// What a view's last checkpoint wrote (in its status).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct CheckpointStats {
    /// `true`: a new base checkpoint (the whole state); `false`: a record of its delta log.
    pub full: bool,
    /// Bytes written.
    pub bytes: u64,
    /// Keys written as changed or removed (a base: every key).
    pub keys: u64,
    /// Time to encode and write it, fsync included, in microseconds.
    pub micros: u64,
    /// The size of the base checkpoint and of its delta log after it.
    pub base_bytes: u64,
    pub delta_bytes: u64,
}

/// The files of one version and where its delta log stands.
#[derive(Debug)]
pub(crate) struct StateStore {
    dir: PathBuf,
    base_path: PathBuf,
    delta_path: PathBuf,
    /// The base's generation (0: none written by this format yet).
    generation: u64,
    /// Records in the delta log.
    deltas: u64,
    base_len: u64,
    /// The keys of the base (about, for a base this process did not write: the keys loaded).
    base_keys: u64,
    delta_len: u64,
    /// The next checkpoint must be a base.
    full_next: bool,
    pub last: Option<CheckpointStats>,
}

impl StateStore {
    fn new(dir: &Path, version: u64) -> StateStore {
        StateStore {
            dir: dir.to_path_buf(),
            base_path: checkpoint::path_for(dir, version),
            delta_path: delta::path_for(dir, version),
            generation: 0,
            deltas: 0,
            base_len: 0,
            base_keys: 0,
            delta_len: 0,
            full_next: true,
            last: None,
        }
    }

    /// Reads version `version`'s checkpoint: its base, then every record of its delta log in
    /// sequence. A torn last record is cut off the log (the checkpoint before it holds); a log of
    /// an earlier base, or one without a base, is removed. `None`: no checkpoint yet.
    pub(crate) fn open(dir: &Path, version: u64) -> Result<(StateStore, Option<Snapshot>)> {
        let mut store = StateStore::new(dir, version);
        let Some(base) = checkpoint::read(&store.base_path)? else {
            store.remove_log()?;
            return Ok((store, None));
        };
        store.base_len = std::fs::metadata(&store.base_path).map_err(|e| Error::io(&store.base_path, e))?.len();
        store.generation = base.generation;
        store.full_next = base.version < CHECKPOINT_VERSION;
        let mut snap = base.snap;
        let buf = match std::fs::read(&store.delta_path) {
            Ok(buf) => buf,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(Error::io(&store.delta_path, e)),
        };
        if base.generation == 0 {
            // A base of an earlier format: a log beside it is not its own.
            store.remove_log()?;
        } else if !buf.is_empty() {
            let found = delta::replay(&store.delta_path, &buf, base.generation, &mut snap)?;
            if found.stale {
                store.remove_log()?;
            } else {
                if found.valid_len < buf.len() as u64 {
                    tracing::warn!(path = %store.delta_path.display(), valid = found.valid_len, len = buf.len(),
                        "a checkpoint's delta log ends in a torn record: cut off (the records are read again)");
                    let f = OpenOptions::new().write(true).open(&store.delta_path);
                    f.and_then(|f| f.set_len(found.valid_len).and_then(|_| f.sync_all()))
                        .map_err(|e| Error::io(&store.delta_path, e))?;
                }
                store.deltas = found.records;
                store.delta_len = found.valid_len;
            }
        }
        // What the files hold is unchanged from here on.
        snap.entries.take_dirty();
        snap.ttl.take_dirty();
        store.base_keys = snap.entries.len() as u64;
        Ok((store, Some(snap)))
    }

    /// Checkpoints `state`: a delta record of what changed since the last checkpoint, or a new
    /// base. The runner must be the only writer of the state (it or a stopped runner's caller).
    pub(crate) fn write(&mut self, state: &RwLock<State>) -> Result<()> {
        let started = Instant::now();
        let mut st = state.write();
        let changed = st.snap.entries.take_dirty();
        let ttl_changed = st.snap.ttl.take_dirty();
        let st = RwLockWriteGuard::downgrade(st);
        // A delta of far more keys than half the base's would be discarded once encoded: the key
        // counts decide it first (the bytes decide the rest).
        let keys_estimate = changed.len() as u64 + ttl_changed.len() as u64;
        let estimate = keys_estimate.saturating_mul(self.base_len) / self.base_keys.max(1);
        let record = (!self.full_next && self.generation > 0 && self.delta_len + estimate <= self.base_len)
            .then(|| delta::encode(self.generation, self.deltas + 1, &st.snap, &changed, &ttl_changed))
            .filter(|r| self.delta_len + r.len() as u64 <= self.base_len / 2);
        let result = match record {
            Some(record) => {
                drop(st);
                let keys = changed.len() as u64;
                self.append(&record).map(|()| (false, record.len() as u64, keys))
            }
            None => {
                let bytes = checkpoint::encode(&st.snap, self.generation + 1);
                let keys = st.snap.entries.len() as u64;
                drop(st);
                let written = self.write_base(&bytes);
                if written.is_ok() {
                    self.base_keys = keys;
                }
                written.map(|()| (true, bytes.len() as u64, keys))
            }
        };
        match result {
            Ok((full, bytes, keys)) => {
                self.last = Some(CheckpointStats {
                    full,
                    bytes,
                    keys,
                    micros: started.elapsed().as_micros() as u64,
                    base_bytes: self.base_len,
                    delta_bytes: self.delta_len,
                });
                Ok(())
            }
            Err(e) => {
                // The changes taken above are in no file: only a base holds them all.
                self.full_next = true;
                Err(e)
            }
        }
    }

    fn append(&mut self, record: &[u8]) -> Result<()> {
        let path = &self.delta_path;
        let mut f = OpenOptions::new().create(true).append(true).open(path).map_err(|e| Error::io(path, e))?;
        f.write_all(record).and_then(|_| f.sync_data()).map_err(|e| Error::io(path, e))?;
        if self.delta_len == 0 {
            sync_dir(&self.dir)?;
        }
        self.delta_len += record.len() as u64;
        self.deltas += 1;
        Ok(())
    }

    fn write_base(&mut self, bytes: &[u8]) -> Result<()> {
        // The new base replaces the old one atomically; the old log (records of the old
        // generation) is ignored from then on, and removed.
        self.full_next = true;
        checkpoint::write_bytes(&self.base_path, bytes)?;
        self.generation += 1;
        self.base_len = bytes.len() as u64;
        self.remove_log()?;
        self.full_next = false;
        Ok(())
    }

    fn remove_log(&mut self) -> Result<()> {
        match std::fs::remove_file(&self.delta_path) {
            Ok(()) => sync_dir(&self.dir)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io(&self.delta_path, e)),
        }
        self.deltas = 0;
        self.delta_len = 0;
        Ok(())
    }

    /// Deletes version `version`'s checkpoint files.
    pub(crate) fn remove(dir: &Path, version: u64) -> Result<()> {
        for path in [checkpoint::path_for(dir, version), delta::path_for(dir, version)] {
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::io(&path, e)),
            }
        }
        sync_dir(dir)
    }
}

#[cfg(test)]
#[path = "state_store_tests.rs"]
mod tests;
