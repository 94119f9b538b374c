//! Not kappalog: a model of the least a group commit for 64 *threads* costs on this machine, to
//! learn what the log's "64 threads" group commit case can reach at all (README, Benchmarks).
//!
//! 64 threads each put a slot in a queue and wait on its condition variable until served. One
//! committer thread takes the whole queue, writes 100 B per waiter into blocks written ahead
//! (as kappalog's zero tail), `fdatasync`s, and wakes every waiter; or, with `waker`, hands the
//! wake-ups to a second thread and goes straight on to the next group; or, with `no-io`, does no
//! I/O at all. Beside it the baseline of the log bench's group commit case: `write()` + `fdatasync`
//! of one 100 B record, in a loop, to a new file.
//!
//! ```sh
//! cargo bench --bench thread_commit_model        # KAPPALOG_BENCH_DIR=path: where to write
//! ```

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

const THREADS: usize = 64;
const RECORD_BYTES: usize = 100;
const MEASURE: Duration = Duration::from_secs(2);
/// Bytes written ahead (zeros) and fsynced before the run, so that groups overwrite allocated blocks.
const FILE_BYTES: usize = 256 << 20;

#[derive(Clone, Copy, PartialEq)]
enum Committer {
    /// Writes and fsyncs each group, then wakes its waiters.
    Alone,
    /// Writes and fsyncs each group; a second thread wakes its waiters.
    WithWaker,
    /// Wakes each group's waiters with no I/O.
    NoIo,
}

#[derive(Default)]
struct Slot {
    served: Mutex<bool>,
    cv: Condvar,
}

impl Slot {
    fn serve(&self) {
        *self.served.lock().unwrap() = true;
        self.cv.notify_one();
    }
}

#[derive(Default)]
struct Queue {
    waiting: Mutex<Vec<Arc<Slot>>>,
    cv: Condvar,
}

/// Appends per second and waiters per group of one run.
fn run(committer: Committer, path: &Path) -> (f64, f64) {
    let queue = Arc::new(Queue::default());
    let stop = Arc::new(AtomicBool::new(false));
    let served = Arc::new(AtomicU64::new(0));
    let appenders: Vec<_> = (0..THREADS)
        .map(|_| {
            let (queue, stop, served) = (queue.clone(), stop.clone(), served.clone());
            std::thread::spawn(move || {
                let slot = Arc::new(Slot::default());
                while !stop.load(Ordering::Relaxed) {
                    *slot.served.lock().unwrap() = false;
                    queue.waiting.lock().unwrap().push(slot.clone());
                    queue.cv.notify_one();
                    let mut done = slot.served.lock().unwrap();
                    while !*done {
                        done = slot.cv.wait(done).unwrap();
                    }
                    served.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    let file = OpenOptions::new().create(true).truncate(true).write(true).open(path).unwrap();
    file.write_all_at(&vec![0; FILE_BYTES], 0).unwrap();
    file.sync_all().unwrap();
    let (waker_tx, waker) = match committer {
        Committer::WithWaker => {
            let (tx, rx) = mpsc::channel::<Vec<Arc<Slot>>>();
            let waker = std::thread::spawn(move || rx.into_iter().flatten().for_each(|s| s.serve()));
            (Some(tx), Some(waker))
        }
        _ => (None, None),
    };
    let (q, stop_c) = (queue.clone(), stop.clone());
    let committer = std::thread::spawn(move || {
        let (mut groups, mut records, mut position) = (0u64, 0u64, 0usize);
        while !stop_c.load(Ordering::Relaxed) {
            let group = {
                let mut w = q.waiting.lock().unwrap();
                while w.is_empty() && !stop_c.load(Ordering::Relaxed) {
                    w = q.cv.wait_timeout(w, Duration::from_millis(10)).unwrap().0;
                }
                std::mem::take(&mut *w)
            };
            if committer != Committer::NoIo && !group.is_empty() {
                let bytes = vec![7u8; RECORD_BYTES * group.len()];
                if position + bytes.len() > FILE_BYTES {
                    position = 0;
                }
                file.write_all_at(&bytes, position as u64).unwrap();
                position += bytes.len();
                file.sync_data().unwrap();
            }
            groups += 1;
            records += group.len() as u64;
            match &waker_tx {
                Some(tx) => tx.send(group).unwrap(),
                None => group.iter().for_each(|s| s.serve()),
            }
        }
        (groups, records)
    });
    std::thread::sleep(Duration::from_millis(300)); // warm up
    let (before, started) = (served.load(Ordering::Relaxed), Instant::now());
    std::thread::sleep(MEASURE);
    let rate = (served.load(Ordering::Relaxed) - before) as f64 / started.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    let (groups, records) = committer.join().unwrap();
    // Serve whoever queued after the committer stopped, until every appender has seen `stop`.
    while !appenders.iter().all(|a| a.is_finished()) {
        std::mem::take(&mut *queue.waiting.lock().unwrap()).iter().for_each(|s| s.serve());
        std::thread::yield_now();
    }
    appenders.into_iter().for_each(|a| a.join().unwrap());
    if let Some(w) = waker {
        w.join().unwrap();
    }
    let _ = std::fs::remove_file(path);
    (rate, records as f64 / groups.max(1) as f64)
}

/// The log bench's group commit baseline: `write()` + `fdatasync` of one record to a new file.
fn baseline(path: &Path) -> f64 {
    let f: File = OpenOptions::new().create(true).truncate(true).write(true).open(path).unwrap();
    let record = [7u8; RECORD_BYTES];
    let (count, started) = (2000, Instant::now());
    for _ in 0..count {
        (&f).write_all(&record).unwrap();
        f.sync_data().unwrap();
    }
    let rate = count as f64 / started.elapsed().as_secs_f64();
    let _ = std::fs::remove_file(path);
    rate
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo test --benches` asks for the list of tests: there are none
    }
    let dir = std::env::var_os("KAPPALOG_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("kappalog-bench"));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("thread-commit-model.bin");
    println!("| committer | appends/s | waiters per group | write()+fdatasync per record | ratio |");
    println!("|---|---|---|---|---|");
    for (committer, name) in [
        (Committer::Alone, "one thread: write, fsync, wake"),
        (Committer::WithWaker, "write and fsync; a second thread wakes"),
        (Committer::NoIo, "no I/O: wake only"),
    ] {
        for _ in 0..2 {
            let base = baseline(&path);
            let (rate, per_group) = run(committer, &path);
            println!("| {name} | {:.0} k | {per_group:.1} | {:.1} k/s | {:.1}x |", rate / 1e3, base / 1e3, rate / base);
        }
    }
}
