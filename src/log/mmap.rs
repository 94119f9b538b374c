//! The only module with `unsafe`: read-only memory maps of segment files, handed out as `Bytes`.
//!
//! Soundness rests on four facts, each kept by code outside this module and stated in
//! `segment-format.md`:
//! 1. **The lock**: `Store::open` holds an exclusive lock on the data directory, so no other kappalog
//!    process writes, truncates or replaces our files while we map them. (A foreign process editing the
//!    files is outside what any mmap-based store can defend against.)
//! 2. **Append-only below `published`**: a map is created over a file whose first `published` bytes
//!    are written, and [`Map::publish`] only moves that mark forward after the writer's `write()` of the
//!    bytes below it has returned. Bytes below the mark are never written again: segments are
//!    append-only, and compaction writes *new* files.
//! 3. **No truncation below a live reader**: recovery truncates a torn tail *before* the segment is
//!    mapped; the only other truncation of a mapped file cuts the active segment's zero tail (at
//!    roll and at close), which lies at or above `published`. Deleting (unlinking) a file keeps its
//!    pages alive for existing maps.
//! 4. **Arc-kept maps**: every `Bytes` handed out owns an `Arc<Map>`, so the mapping outlives its last
//!    reader, even after the segment was deleted by retention or replaced by compaction.
//!
//! A map may be larger than its file (the active segment is mapped once with room to grow); no
//! reference ever covers bytes at or above `published`, which are the only ones that may lie past the
//! end of the file.
#![allow(unsafe_code)]

use std::fs::File;
use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use memmap2::{Advice, MmapOptions, MmapRaw};

/// [`Map::prefault`] maps at least this much ahead at a time.
const PREFAULT_CHUNK_BYTES: usize = 1 << 20;

/// A read-only shared mapping of a segment file, readable up to its published length.
#[derive(Debug)]
pub(crate) struct Map {
    raw: MmapRaw,
    published: AtomicUsize,
    /// Bytes below this have had their page table entries filled by [`Map::prefault`].
    prefaulted: AtomicUsize,
}

impl Map {
    /// Maps `capacity` bytes of `file`, of which the first `published` are readable now.
    /// `published` must not exceed the file's length: checked here.
    pub fn new(file: &File, capacity: usize, published: usize) -> io::Result<Arc<Map>> {
        let file_len = file.metadata()?.len();
        if published as u64 > file_len || published > capacity {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("cannot publish {published} bytes of a {file_len}-byte file mapped for {capacity}"),
            ));
        }
        let raw = MmapOptions::new().len(capacity.max(1)).map_raw_read_only(file)?;
        Ok(Arc::new(Map { raw, published: AtomicUsize::new(published), prefaulted: AtomicUsize::new(0) }))
    }

    /// Makes the bytes below `len` readable. The caller has just written them with `write()`.
    pub fn publish(&self, len: usize) {
        assert!(len <= self.raw.len(), "publish beyond the map: {len} > {}", self.raw.len());
        let old = self.published.swap(len, Ordering::Release);
        assert!(old <= len, "the published length of a map never shrinks ({old} -> {len})");
    }

    /// Fills the page table entries for published bytes `[from, to)` (and up to a chunk more) in
    /// one `madvise(MADV_POPULATE_READ)`, for a reader about to scan them: a first scan of a mapped
    /// segment otherwise takes a page fault every 16 pages (the kernel's fault-around), which costs
    /// about a tenth of a sequential read's time. Only forward scans benefit: a range below the
    /// highest one prefaulted is skipped. Advisory: errors (an old kernel) are ignored.
    pub fn prefault(&self, from: usize, to: usize) {
        let done = self.prefaulted.load(Ordering::Relaxed);
        let published = self.published();
        if to <= done || from >= published {
            return;
        }
        let start = from.max(done);
        let end = to.max(start + PREFAULT_CHUNK_BYTES).min(published);
        if self.raw.advise_range(Advice::PopulateRead, start, end - start).is_ok() {
            self.prefaulted.fetch_max(end, Ordering::Relaxed);
        }
    }

    /// Bytes readable now.
    pub fn published(&self) -> usize {
        self.published.load(Ordering::Acquire)
    }

    /// The readable bytes, as a `Bytes` that keeps the map alive (no copy).
    pub fn bytes(self: &Arc<Self>) -> Bytes {
        let len = self.published();
        Bytes::from_owner(View { map: Arc::clone(self), len })
    }
}

/// A readable prefix of a map, owned by a `Bytes`.
struct View {
    map: Arc<Map>,
    len: usize,
}

impl AsRef<[u8]> for View {
    fn as_ref(&self) -> &[u8] {
        // SAFETY: `len` was the map's published length when this view was made, so (fact 2) the
        // bytes [0, len) lie inside the file and inside the mapping, were fully written before they
        // were published (the Release store in `publish` pairs with the Acquire load in `published`),
        // and are never written again. No one truncates the file below them (facts 1 and 3), and the
        // mapping stays alive while `self.map` holds it (fact 4). The memory is therefore valid,
        // initialized and immutable for the lifetime of the returned slice.
        unsafe { std::slice::from_raw_parts(self.map.raw.as_ptr(), self.len) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn grows_with_the_file_and_outlives_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let mut f = std::fs::OpenOptions::new().create(true).read(true).append(true).open(&path).unwrap();
        let map = Map::new(&f, 1 << 20, 0).unwrap();
        assert!(map.bytes().is_empty());
        f.write_all(b"hello").unwrap();
        map.publish(5);
        let first = map.bytes();
        f.write_all(b" world").unwrap();
        map.publish(11);
        assert_eq!(&first[..], b"hello");
        assert_eq!(&map.bytes()[..], b"hello world");
        drop(f);
        std::fs::remove_file(&path).unwrap();
        drop(map);
        assert_eq!(&first[..], b"hello", "a Bytes keeps the map of a deleted file alive");
        assert!(Map::new(&File::open(dir.path()).unwrap(), 10, 11).is_err());
    }
}
