//! The crash-safe swap of compacted segments (protocol and recovery; exact bytes in
//! `segment-format.md`, section "The cleaner").
//!
//! 1. The cleaner writes each new segment as `<base>.log.cleaned`, `<base>.index.cleaned` and
//!    `<base>.timeindex.cleaned`, fsyncs them, then fsyncs the directory.
//! 2. **Commit point**: it writes the manifest `cleaner.swap` atomically (temporary file, fsync,
//!    rename, fsync the directory). It lists the bases of the segments to remove and of the new
//!    segments to install.
//! 3. It renames every `.cleaned` file over its final name (replacing the old segment of the same
//!    base), deletes the files of old segments that no new segment replaces, fsyncs the directory.
//! 4. It deletes the manifest and fsyncs the directory.
//!
//! Recovery ([`recover`], run by `Partition::open` before it lists segments): with a manifest,
//! step 3 is redone (it is idempotent: a `.cleaned` file still present is renamed, a file already
//! gone is skipped) and the manifest removed: the log is the new one. Without a manifest, every
//! `.cleaned` file is deleted: the log is the old one. Either way never a mix.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Corruption, Error, Result};
use crate::fault::FaultInjector;
use crate::log::io::{sync_dir, write_atomic};
use crate::log::segment::Segment;

/// The swap manifest's file name in a partition directory.
pub(crate) const MANIFEST_FILE: &str = "cleaner.swap";
/// The suffix of a new segment's files before the swap installs them.
pub(crate) const CLEANED_SUFFIX: &str = ".cleaned";

/// What one swap replaces: `remove` and `install` are segment base offsets, ascending.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Manifest {
    pub remove: Vec<u64>,
    pub install: Vec<u64>,
}

/// The path a file of a new segment has until the swap: `<final path>.cleaned`.
pub(crate) fn cleaned_path(final_path: &Path) -> PathBuf {
    let mut s = final_path.as_os_str().to_owned();
    s.push(CLEANED_SUFFIX);
    PathBuf::from(s)
}

/// Calls the fault hook before a step; an injected failure is an I/O error on `path`.
pub(crate) fn step(faults: Option<&FaultInjector>, what: &str, path: &Path) -> Result<()> {
    match faults {
        Some(f) => f.before_swap_step(what).map_err(|e| Error::io(path, e)),
        None => Ok(()),
    }
}

fn encode(m: &Manifest) -> Vec<u8> {
    let json = serde_json::to_vec(m).expect("a manifest serializes");
    let mut out = Vec::with_capacity(json.len() + 4);
    out.extend_from_slice(&crc32fast::hash(&json).to_le_bytes());
    out.extend_from_slice(&json);
    out
}

fn decode(path: &Path, b: &[u8]) -> Result<Manifest> {
    let corrupted = |detail| Error::Corrupted { path: path.to_path_buf(), position: 0, detail };
    if b.len() < 4 {
        return Err(corrupted(Corruption::Malformed(format!("{} bytes is shorter than a checksum", b.len()))));
    }
    let expected = u32::from_le_bytes(b[..4].try_into().expect("4 bytes"));
    let found = crc32fast::hash(&b[4..]);
    if expected != found {
        return Err(corrupted(Corruption::ChecksumMismatch { expected, found }));
    }
    let m: Manifest = serde_json::from_slice(&b[4..]).map_err(|e| corrupted(Corruption::Malformed(e.to_string())))?;
    if m.install.is_empty() || !m.install.windows(2).all(|w| w[0] < w[1]) || !m.remove.windows(2).all(|w| w[0] < w[1]) {
        return Err(corrupted(Corruption::Malformed("segment lists are empty or not ascending".into())));
    }
    Ok(m)
}

/// Steps 2 to 4 for new segments whose `.cleaned` files are written and fsynced. `installed` runs
/// after step 3 (the caller swaps its in-memory segment list there). An error after the commit
/// point leaves the swap for recovery: the caller must not start another one before a reopen.
pub(crate) fn commit(
    dir: &Path,
    manifest: &Manifest,
    faults: Option<&FaultInjector>,
    installed: impl FnOnce() -> Result<()>,
) -> Result<()> {
    let manifest_path = dir.join(MANIFEST_FILE);
    step(faults, "fsync the directory after writing the cleaned files", dir)?;
    sync_dir(dir)?;
    step(faults, "write the swap manifest (commit point)", &manifest_path)?;
    write_atomic(&manifest_path, &encode(manifest))?;
    apply(dir, manifest, faults)?;
    installed()?;
    step(faults, "delete the swap manifest", &manifest_path)?;
    std::fs::remove_file(&manifest_path).map_err(|e| Error::io(&manifest_path, e))?;
    step(faults, "fsync the directory after deleting the manifest", dir)?;
    sync_dir(dir)
}

/// Step 3, idempotent.
fn apply(dir: &Path, m: &Manifest, faults: Option<&FaultInjector>) -> Result<()> {
    for &base in &m.install {
        let (log, index, time_index) = Segment::paths(dir, base);
        // The log last: a `.log` present with its `.cleaned` gone means its indexes are in place too
        // (they are also rebuilt from the log if they ever do not add up).
        for final_path in [index, time_index, log] {
            let from = cleaned_path(&final_path);
            if from.exists() {
                step(faults, "rename a cleaned file over its final name", &final_path)?;
                std::fs::rename(&from, &final_path).map_err(|e| Error::io(&from, e))?;
            }
        }
    }
    for &base in m.remove.iter().filter(|b| !m.install.contains(b)) {
        let (log, index, time_index) = Segment::paths(dir, base);
        for p in [log, index, time_index] {
            step(faults, "delete a replaced segment's file", &p)?;
            match std::fs::remove_file(&p) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::io(&p, e)),
            }
        }
    }
    step(faults, "fsync the directory after the renames", dir)?;
    sync_dir(dir)
}

/// Completes (manifest present) or discards (no manifest) an interrupted swap in `dir`.
pub(crate) fn recover(dir: &Path) -> Result<()> {
    let manifest_path = dir.join(MANIFEST_FILE);
    match std::fs::read(&manifest_path) {
        Ok(bytes) => {
            let m = decode(&manifest_path, &bytes)?;
            tracing::warn!(dir = %dir.display(), remove = ?m.remove, install = ?m.install, "completing an interrupted compaction swap");
            apply(dir, &m, None)?;
            std::fs::remove_file(&manifest_path).map_err(|e| Error::io(&manifest_path, e))?;
            sync_dir(dir)?;
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(Error::io(&manifest_path, e)),
    }
    let mut removed = false;
    for entry in std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let entry = entry.map_err(|e| Error::io(dir, e))?;
        if entry.file_name().to_string_lossy().ends_with(CLEANED_SUFFIX) {
            let p = entry.path();
            tracing::warn!(path = %p.display(), "discarding a cleaned file of an uncommitted compaction");
            std::fs::remove_file(&p).map_err(|e| Error::io(&p, e))?;
            removed = true;
        }
    }
    if removed {
        sync_dir(dir)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_roundtrip_and_checks() {
        let m = Manifest { remove: vec![0, 10, 20], install: vec![0, 20] };
        let path = Path::new("cleaner.swap");
        assert_eq!(decode(path, &encode(&m)).unwrap(), m);
        let mut bad = encode(&m);
        let last = bad.len() - 2;
        bad[last] ^= 1;
        assert!(matches!(decode(path, &bad), Err(Error::Corrupted { .. })));
        let unsorted = Manifest { remove: vec![10, 0], install: vec![0] };
        assert!(matches!(decode(path, &encode(&unsorted)), Err(Error::Corrupted { .. })));
        assert_eq!(cleaned_path(Path::new("/d/0.log")), Path::new("/d/0.log.cleaned"));
    }
}
