//! File operations that may fail for real or by injection, and directory fsync.

use std::fs::File;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::fault::FaultInjector;

/// Writes `buf` with `write`, unless the fault injector fails this write: then only half of `buf`
/// is written (a torn write) and the injected error returned.
fn write_or_fail(
    path: &Path,
    buf: &[u8],
    faults: Option<&FaultInjector>,
    write: impl Fn(&[u8]) -> std::io::Result<()>,
) -> Result<()> {
    if let Some(Err(e)) = faults.map(|f| f.before_write()) {
        let _ = write(&buf[..buf.len() / 2]);
        return Err(Error::io(path, e));
    }
    write(buf).map_err(|e| Error::io(path, e))
}

/// Appends `buf` to `file` (opened in append mode). An injected failure writes half of `buf` first.
pub(crate) fn append(file: &File, path: &Path, buf: &[u8], faults: Option<&FaultInjector>) -> Result<()> {
    let recording = faults.filter(|f| f.recording_writeback());
    let position = match recording {
        Some(_) => file.metadata().map_err(|e| Error::io(path, e))?.len(),
        None => 0,
    };
    write_or_fail(path, buf, faults, |b| (&*file).write_all(b))?;
    if let Some(f) = recording {
        f.wrote_at(path, position, buf.len() as u64);
    }
    Ok(())
}

/// Writes `buf` at byte `position` of `file`. An injected failure writes half of `buf` first.
pub(crate) fn write_at(
    file: &File,
    path: &Path,
    buf: &[u8],
    position: u64,
    faults: Option<&FaultInjector>,
) -> Result<()> {
    write_or_fail(path, buf, faults, |b| file.write_all_at(b, position))?;
    if let Some(f) = faults {
        f.wrote_at(path, position, buf.len() as u64);
    }
    Ok(())
}

/// Writes zeros over `[from, to)` of `file`.
pub(crate) fn write_zeros(file: &File, from: u64, to: u64) -> std::io::Result<()> {
    static ZEROS: [u8; 64 * 1024] = [0; 64 * 1024];
    let mut at = from;
    while at < to {
        let n = (to - at).min(ZEROS.len() as u64) as usize;
        file.write_all_at(&ZEROS[..n], at)?;
        at += n as u64;
    }
    Ok(())
}

/// Reserves the disk blocks of `[from, to)` of `file` without changing its size (Linux `fallocate`
/// with `FALLOC_FL_KEEP_SIZE`): later writes there find their blocks allocated. Unsupported (an
/// error) where the platform or the file system has no such call.
pub(crate) fn reserve(file: &File, from: u64, to: u64) -> std::io::Result<()> {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        loop {
            match rustix::fs::fallocate(file, rustix::fs::FallocateFlags::KEEP_SIZE, from, to.saturating_sub(from)) {
                // A signal handler installed without SA_RESTART interrupts it: try again.
                Err(rustix::io::Errno::INTR) => continue,
                result => return Ok(result?),
            }
        }
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    {
        let _ = (file, from, to);
        Err(std::io::ErrorKind::Unsupported.into())
    }
}

/// `fdatasync`. Never retried: after a failure the caller poisons what it was syncing.
/// Every call is timed into the process-wide [`fsync_latency`] histogram.
pub(crate) fn sync_data(file: &File, path: &Path, faults: Option<&FaultInjector>) -> Result<()> {
    let started = Instant::now();
    let covered = faults.map(|f| f.sync_starts());
    let result = match faults.map(|f| f.before_sync()) {
        Some(Err(e)) => Err(Error::io(path, e)),
        _ => file.sync_data().map_err(|e| Error::io(path, e)),
    };
    if let (Ok(()), Some(f), Some(seq_end)) = (&result, faults, covered) {
        f.sync_done(path, seq_end);
    }
    FSYNC.observe(started.elapsed());
    result
}

/// Upper bounds, in seconds, of the buckets of the fsync latency histogram.
pub const FSYNC_BUCKETS_SECONDS: [f64; 14] =
    [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0];

struct FsyncHistogram {
    /// Cumulative, as Prometheus wants: bucket `i` counts the fsyncs that took `<= FSYNC_BUCKETS_SECONDS[i]`.
    buckets: [AtomicU64; FSYNC_BUCKETS_SECONDS.len()],
    count: AtomicU64,
    sum_nanos: AtomicU64,
}

static FSYNC: FsyncHistogram = FsyncHistogram {
    buckets: [const { AtomicU64::new(0) }; FSYNC_BUCKETS_SECONDS.len()],
    count: AtomicU64::new(0),
    sum_nanos: AtomicU64::new(0),
};

impl FsyncHistogram {
    fn observe(&self, took: Duration) {
        let seconds = took.as_secs_f64();
        for (b, le) in self.buckets.iter().zip(FSYNC_BUCKETS_SECONDS) {
            if seconds <= le {
                b.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.sum_nanos.fetch_add(took.as_nanos() as u64, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
    }
}

/// A snapshot of the fsync latency histogram.
#[derive(Debug, Clone, PartialEq)]
pub struct FsyncLatency {
    /// `(upper bound in seconds, fsyncs that took at most that long)`, cumulative.
    pub buckets: Vec<(f64, u64)>,
    pub count: u64,
    pub sum_seconds: f64,
}

/// Every `fdatasync` of a log or index file this process made (group commits, rolls, flushes),
/// timed; for metrics. Process-wide: all stores of the process share it.
pub fn fsync_latency() -> FsyncLatency {
    FsyncLatency {
        buckets: FSYNC
            .buckets
            .iter()
            .zip(FSYNC_BUCKETS_SECONDS)
            .map(|(b, le)| (le, b.load(Ordering::Relaxed)))
            .collect(),
        count: FSYNC.count.load(Ordering::Relaxed),
        sum_seconds: FSYNC.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9,
    }
}

/// fsync a directory, so that a file created, renamed or deleted in it stays so after a crash.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(|e| Error::io(dir, e))
}

/// Replaces `path` with `bytes` atomically: write a temporary file, fsync it, rename, fsync the directory.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    // `<file name>.tmp`: distinct for files that differ only by extension (`B.index`, `B.timeindex`).
    let mut tmp_name = path.file_name().expect("a file name").to_os_string();
    tmp_name.push(".tmp");
    let tmp = path.with_file_name(tmp_name);
    let mut f = File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
    f.write_all(bytes).and_then(|_| f.sync_all()).map_err(|e| Error::io(&tmp, e))?;
    drop(f);
    std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))?;
    sync_dir(path.parent().expect("a file has a parent directory"))
}
