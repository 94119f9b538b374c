//! Crash safety of the compaction swap: a failure (an injected I/O error) and a crash (`kill -9` of a
//! child process, from the swap hook) at every step of the swap protocol. After a reopen the log is
//! the old one or the new one, never a mix, and nothing that was not superseded is lost.

use std::path::Path;
use std::sync::Arc;

use kappalog::{
    clock::ManualClock, fault::FaultInjector, CleanupPolicy, Durability, NewRecord, Partition, Record, Store,
    StoreConfig, TopicConfig,
};

const T0: i64 = 1_700_000_000_000;
const CHILD_DIR_ENV: &str = "KAPPALOG_CRASH_TEST_DIR";
const CHILD_STEP_ENV: &str = "KAPPALOG_CRASH_TEST_STEP";
/// The two parent tests run one at a time: a child forked by one holds, until its `exec`, copies
/// of the other's open descriptors, the data directory's lock among them (a spurious `Locked`).
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// The most the parent waits for the child to report (a safety bound against a hung test).
const CHILD_REPORT_TIMEOUT_S: u64 = 120;
/// What the child prints when it is stopped at its step.
const AT_STEP: &str = "kappalog-crash-test: at the step";

fn open(dir: &Path, faults: Option<Arc<FaultInjector>>) -> Store {
    let cfg = StoreConfig::default().clock(ManualClock::new(T0 + 1_000_000)).faults(faults).cleaner_interval_ms(0);
    Store::open(dir, cfg).unwrap()
}

/// The same log every time: several small segments, 20 keys, some tombstones, one dirty section.
fn prepare(dir: &Path) {
    let store = open(dir, None);
    let tc = TopicConfig::default()
        .segment_bytes(4096)
        .index_interval_bytes(256)
        .durability(Durability::None)
        .cleanup_policy(CleanupPolicy::Compact)
        .delete_retention_ms(1_000_000_000);
    let p = store.create_topic("t", 1, tc).unwrap().partition(0).unwrap();
    for i in 0..400u32 {
        let key = format!("key-{}", i % 20);
        let r = if i % 37 == 0 {
            NewRecord::tombstone(key)
        } else {
            NewRecord::keyed(key, format!("value-{i}-{}", "x".repeat(i as usize % 50)))
        };
        p.append(&[r.with_timestamp(T0 + i as i64)]).unwrap();
    }
    p.roll().unwrap();
    p.append(&[NewRecord::keyed("key-0", "in the active segment").with_timestamp(T0 + 500)]).unwrap();
    store.close().unwrap();
}

fn partition(store: &Store) -> Partition {
    store.topic("t").unwrap().partition(0).unwrap()
}

fn read_all(p: &Partition) -> Vec<Record> {
    p.cursor_from_start().fetch_limits(1024, 10).collect::<kappalog::Result<_>>().unwrap()
}

/// The old log, the new log, and how many swap steps a compaction takes.
fn reference() -> (Vec<Record>, Vec<Record>, u64) {
    let dir = tempfile::tempdir().unwrap();
    prepare(dir.path());
    let faults = FaultInjector::new();
    let store = open(dir.path(), Some(faults.clone()));
    let p = partition(&store);
    let old = read_all(&p);
    let before = faults.swap_steps();
    store.compact("t").unwrap();
    let steps = faults.swap_steps() - before;
    let new = read_all(&p);
    assert!(new.len() < old.len() / 5, "the compaction removes most records");
    assert!(steps >= 10, "{steps} steps");
    (old, new, steps)
}

/// Reopens `dir` (recovery runs) and checks the log is exactly the old or the new one; returns which.
fn check_old_or_new(dir: &Path, old: &[Record], new: &[Record], step: u64) -> &'static str {
    let store = open(dir, None);
    let p = partition(&store);
    let log = read_all(&p);
    let which = if log == old {
        "old"
    } else if log == new {
        "new"
    } else {
        panic!("after a crash at swap step {step} the log is neither the old nor the new one: {} records", log.len())
    };
    let leftovers: Vec<String> = std::fs::read_dir(p.dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".cleaned") || n == "cleaner.swap")
        .collect();
    assert!(leftovers.is_empty(), "recovery left {leftovers:?}");
    // And the cleaner works again: compacting now gives the new log.
    store.compact("t").unwrap();
    assert_eq!(read_all(&p), new, "compaction after recovery from step {step}");
    which
}

#[test]
fn a_failed_step_leaves_the_old_or_the_new_log() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (old, new, steps) = reference();
    let mut seen = std::collections::BTreeSet::new();
    for n in 1..=steps {
        let dir = tempfile::tempdir().unwrap();
        prepare(dir.path());
        let faults = FaultInjector::new();
        let store = open(dir.path(), Some(faults.clone()));
        let first = faults.swap_steps() + n;
        faults.set_swap_hook(move |step, what| {
            if step == first {
                Err(std::io::Error::other(format!("injected failure before: {what}")))
            } else {
                Ok(())
            }
        });
        let p = partition(&store);
        let err = store.compact("t").unwrap_err();
        assert!(err.to_string().contains("injected"), "step {n}: {err}");
        // Readers are unaffected, whatever happened on disk: they see the old or the new log.
        let now = read_all(&p);
        assert!(now == old || now == new, "step {n}: readers see a mix");
        drop(p);
        drop(store);
        seen.insert(check_old_or_new(dir.path(), &old, &new, n));
    }
    assert_eq!(seen.len(), 2, "both outcomes happen: {seen:?}");
}

#[test]
fn a_crash_at_any_step_leaves_the_old_or_the_new_log() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    use std::os::unix::process::ExitStatusExt;
    let (old, new, steps) = reference();
    let exe = std::env::current_exe().unwrap();
    let mut seen = std::collections::BTreeSet::new();
    for n in 1..=steps {
        let dir = tempfile::tempdir().unwrap();
        prepare(dir.path());
        let mut child = std::process::Command::new(&exe)
            .args(["--exact", "child_compacts_and_is_killed", "--nocapture", "--test-threads=1"])
            .env(CHILD_DIR_ENV, dir.path())
            .env(CHILD_STEP_ENV, n.to_string())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        // The child stops inside the swap hook at step `n` and says so; then it is `kill -9`ed.
        let stdout = std::io::BufReader::new(child.stdout.take().unwrap());
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let reached = std::io::BufRead::lines(stdout).map_while(|l| l.ok()).any(|l| l.contains(AT_STEP));
            let _ = tx.send(reached);
        });
        // A bound, not a wait for time to pass: the child normally reports within milliseconds.
        let reached = rx.recv_timeout(std::time::Duration::from_secs(CHILD_REPORT_TIMEOUT_S));
        child.kill().unwrap();
        assert_eq!(reached, Ok(true), "step {n}: the child did not report reaching the step");
        let status = child.wait().unwrap();
        assert_eq!(status.signal(), Some(libc::SIGKILL), "step {n}: the child should be killed, got {status:?}");
        seen.insert(check_old_or_new(dir.path(), &old, &new, n));
    }
    assert_eq!(seen.len(), 2, "both outcomes happen: {seen:?}");
}

/// The child process: compacts, and at the swap step it was given says so and waits to be killed.
#[test]
fn child_compacts_and_is_killed() {
    let (Ok(dir), Ok(step)) = (std::env::var(CHILD_DIR_ENV), std::env::var(CHILD_STEP_ENV)) else {
        return; // run as an ordinary test: nothing to do
    };
    let step: u64 = step.parse().unwrap();
    let faults = FaultInjector::new();
    let store = open(Path::new(&dir), Some(faults.clone()));
    let at = faults.swap_steps() + step;
    faults.set_swap_hook(move |n, _| {
        if n == at {
            use std::io::Write;
            let mut out = std::io::stdout().lock();
            writeln!(out, "{AT_STEP}").unwrap();
            out.flush().unwrap();
            loop {
                std::thread::park(); // until the parent's SIGKILL
            }
        }
        Ok(())
    });
    let _ = store.compact("t");
    // Only reached when the step is past the end: the parent then fails ("without reaching the step").
}
