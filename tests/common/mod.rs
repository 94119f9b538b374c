//! Helpers shared by the integration tests: seeded randomness, directory copies, child processes.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// SplitMix64: small, seedable, good enough to pick test inputs.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next_u64() as u8).collect()
    }
}

/// The seed of a randomized test: `KAPPALOG_SEED` when set (to replay a failure), else fresh.
/// Printed so that a failing run names it (the test harness shows output of failed tests).
pub fn seed() -> u64 {
    let seed = std::env::var("KAPPALOG_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64
    });
    println!("seed: KAPPALOG_SEED={seed}");
    seed
}

/// Copies a directory tree (regular files and directories only).
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), &target).unwrap();
        }
    }
}

/// The directory of one partition inside a data directory.
pub fn partition_dir(data_dir: &Path, topic: &str, partition: u32) -> PathBuf {
    data_dir.join("topics").join(topic).join(partition.to_string())
}

/// The files of a partition with extension `ext` (`log`, `index`, `timeindex`), oldest segment first.
pub fn segment_files(partition_dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(partition_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == ext))
        .collect();
    v.sort();
    v
}

/// Bytes of disk a file holds (its blocks, reserved ones included), and its size.
pub fn allocated_and_len(path: &Path) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path).unwrap();
    (m.blocks() * 512, m.len())
}

/// Makes the next open of `data_dir` recover as after a crash.
pub fn forget_clean_shutdown(data_dir: &Path) {
    let mark = data_dir.join("clean-shutdown");
    if mark.exists() {
        std::fs::remove_file(mark).unwrap();
    }
}

/// Re-runs the current test binary as a child process running only test `name`, with `env` set
/// (the child test sees the variable and plays its part). Stdout is piped to the parent.
pub fn spawn_child(name: &str, env: &[(&str, &str)]) -> Child {
    let exe = std::env::current_exe().unwrap();
    let mut cmd = Command::new(exe);
    cmd.args(["--exact", name, "--nocapture", "--test-threads=1"]);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.stdout(Stdio::piped()).stderr(Stdio::inherit()).spawn().unwrap()
}

/// Writes a line to the real stdout (not the test harness's capture) and flushes it. It starts
/// with a newline: the harness has printed `test NAME ... ` without one.
pub fn say(line: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    write!(out, "\n{line}\n").unwrap();
    out.flush().unwrap();
}

/// Kills (SIGKILL) and reaps the child when dropped, so that a failing test leaves no process behind.
pub struct ChildGuard(pub Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Bound on waiting for a condition (a safety net against hangs, not a timing assumption).
pub const WAIT_MAX: std::time::Duration = std::time::Duration::from_secs(60);

/// Polls `cond` until it holds; fails the test after [`WAIT_MAX`].
pub fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + WAIT_MAX;
    while !cond() {
        assert!(std::time::Instant::now() < deadline, "gave up waiting for {what}");
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
}

/// Resumes paused fsyncs when dropped, so that a failing assertion never leaves appenders (and the
/// store's close) waiting for an fsync forever.
pub struct ResumeSyncs(pub std::sync::Arc<kappalog::fault::FaultInjector>);

impl Drop for ResumeSyncs {
    fn drop(&mut self) {
        self.0.resume_syncs();
    }
}

/// A store whose fault injector never fails; it counts writes and fsyncs, and can pause fsyncs.
pub fn store_with_faults(dir: &Path) -> (kappalog::Store, std::sync::Arc<kappalog::fault::FaultInjector>) {
    let faults = kappalog::fault::FaultInjector::new();
    let config = kappalog::StoreConfig::default().faults(Some(std::sync::Arc::clone(&faults)));
    (kappalog::Store::open(dir, config).unwrap(), faults)
}

/// Threads of this process named `name` (Linux: read from /proc). A new thread carries its
/// creator's name until it has set its own.
pub fn threads_named(name: &str) -> usize {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .filter(|comm| comm.trim_end() == name)
        .count()
}

/// Every committer thread of a store holding a round in a paused fsync (of its own one-partition
/// `sync` topic, `held-N`): while they are held, every other `sync` append of the store queues.
/// Fsyncs must be paused ([`kappalog::fault::FaultInjector::pause_syncs`]); resuming them lets these go.
pub struct Committers(pub Vec<std::thread::JoinHandle<()>>);

impl Committers {
    pub fn occupy(store: &kappalog::Store, faults: &kappalog::fault::FaultInjector) -> Committers {
        let config = kappalog::TopicConfig::default().durability(kappalog::Durability::Sync);
        let syncs0 = faults.syncs();
        let held = (0..kappalog::log::COMMIT_THREADS)
            .map(|i| {
                let p = store.create_topic(&format!("held-{i}"), 1, config.clone()).unwrap().partition(0).unwrap();
                let t = std::thread::spawn(move || {
                    p.append(&[kappalog::NewRecord::new("held")]).unwrap();
                });
                // One at a time: each is a round of its own, on a committer thread of its own.
                wait_until("a committer thread in its fsync", || faults.syncs() == syncs0 + i as u64 + 1);
                t
            })
            .collect();
        Committers(held)
    }

    /// Waits for the held appends (after fsyncs are resumed).
    pub fn join(self) {
        self.0.into_iter().for_each(|t| t.join().unwrap());
    }
}

/// Kafka RecordBatch v2 as kappalog stores it (segment-format.md, section 5): big-endian fields.
pub mod batch {
    pub const HEADER_LEN: usize = 61;
    pub const BASE_OFFSET: usize = 0;
    pub const LENGTH: usize = 8;
    pub const MAGIC: usize = 16;
    pub const CRC: usize = 17;
    pub const ATTRIBUTES: usize = 21;
    pub const LAST_OFFSET_DELTA: usize = 23;
    pub const BASE_TIMESTAMP: usize = 27;
    pub const MAX_TIMESTAMP: usize = 35;
    pub const RECORDS_COUNT: usize = 57;

    /// The whole length of the batch at `pos` (its `batchLength` field + 12).
    pub fn len_at(data: &[u8], pos: usize) -> usize {
        i32::from_be_bytes(data[pos + LENGTH..pos + LENGTH + 4].try_into().unwrap()) as usize + 12
    }

    /// Sets the whole length of the batch at the start of `b` (the field holds it minus 12).
    pub fn set_len(b: &mut [u8], len: u32) {
        b[LENGTH..LENGTH + 4].copy_from_slice(&(len.wrapping_sub(12)).to_be_bytes());
    }

    pub fn base_offset_at(data: &[u8], pos: usize) -> u64 {
        u64::from_be_bytes(data[pos..pos + 8].try_into().unwrap())
    }

    pub fn set_base_offset(b: &mut [u8], offset: u64) {
        b[..8].copy_from_slice(&offset.to_be_bytes());
    }

    pub fn crc_at(data: &[u8], pos: usize) -> u32 {
        u32::from_be_bytes(data[pos + CRC..pos + CRC + 4].try_into().unwrap())
    }

    /// The CRC-32C the batch in `b` (exactly its bytes) should carry.
    pub fn crc_of(b: &[u8]) -> u32 {
        crc32c::crc32c(&b[ATTRIBUTES..])
    }

    /// Stores the right CRC in the batch `b` (exactly its bytes).
    pub fn fix_crc(b: &mut [u8]) {
        let crc = crc_of(b);
        b[CRC..CRC + 4].copy_from_slice(&crc.to_be_bytes());
    }

    /// Where each batch of a log file starts (stops at a zero tail or a length that runs out).
    pub fn starts(data: &[u8]) -> Vec<usize> {
        let mut out = Vec::new();
        let mut pos = 0;
        while pos + HEADER_LEN <= data.len() && data[pos + MAGIC] == 2 {
            let len = len_at(data, pos);
            if len < HEADER_LEN || pos + len > data.len() {
                break;
            }
            out.push(pos);
            pos += len;
        }
        out
    }
}

/// Writes a partition's `recovery-point` file (segment-format.md, section 9): every offset below
/// `offset` durable, at byte `position` of the segment with base `segment_base`. Tests use it to
/// set the state a crash leaves: the last flush before the last writes.
pub fn set_recovery_point(partition_dir: &Path, offset: u64, segment_base: u64, position: u64) {
    let mut b = Vec::with_capacity(28);
    for v in [offset, segment_base, position] {
        b.extend_from_slice(&v.to_le_bytes());
    }
    let crc = crc32fast::hash(&b);
    b.extend_from_slice(&crc.to_le_bytes());
    std::fs::write(partition_dir.join("recovery-point"), b).unwrap();
}
