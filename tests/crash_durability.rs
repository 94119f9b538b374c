//! `kill -9` durability of the log: a child process appends (under `sync` durability, and under
//! `none`) from several threads and prints every acknowledged (offset, value); the parent kills it with SIGKILL mid-stream,
//! reopens, and finds every acknowledged record, with its value, in order. Twice, so that the
//! second child appends to a log recovered from the first crash.

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};

use kappalog::{Durability, NewRecord, Store, StoreConfig, TopicConfig};

/// Set in the child: the data directory to append to.
const CRASH_ENV: &str = "KAPPALOG_TEST_CRASH_DIR";
/// Set in the child: a tag that makes its values unique across rounds.
const ROUND_ENV: &str = "KAPPALOG_TEST_CRASH_ROUND";
const CHILD_THREADS: u64 = 4;
/// Acknowledgements the parent waits for before it kills the child.
const ACKS_BEFORE_KILL: usize = 400;
/// Bounds the child should the parent die without killing it.
const CHILD_APPENDS_MAX: u64 = 1_000_000;

fn config(durability: Durability) -> TopicConfig {
    TopicConfig::default().segment_bytes(4096).index_interval_bytes(256).durability(durability)
}

/// The child's part: append forever (until killed), printing `ack <offset> <value>` per record.
#[test]
fn child_appends_until_killed() {
    let Ok(dir) = std::env::var(CRASH_ENV) else { return };
    let round = std::env::var(ROUND_ENV).unwrap();
    let store = open_retrying_locked(&dir);
    let p = store.topic("t").unwrap().partition(0).unwrap();
    std::thread::scope(|s| {
        for t in 0..CHILD_THREADS {
            let (p, round) = (p.clone(), &round);
            s.spawn(move || {
                for i in 0..CHILD_APPENDS_MAX {
                    let n = 1 + (i + t) % 3;
                    let values: Vec<String> = (0..n)
                        .map(|j| format!("r{round}-t{t}-{i}-{j}-{}", "p".repeat(((i * 13) % 50) as usize)))
                        .collect();
                    let a = p.append(&values.iter().map(|v| NewRecord::new(v.clone())).collect::<Vec<_>>()).unwrap();
                    let lines: Vec<String> = values
                        .iter()
                        .enumerate()
                        .map(|(j, v)| format!("ack {} {v}", a.base_offset + j as u64))
                        .collect();
                    common::say(&lines.join("\n"));
                }
            });
        }
    });
}

/// Opens the store, retrying while it is `Locked`: the two tests of this file run at once, and a
/// child the other test forks while this test's parent holds the store open shares the lock's file
/// description until it execs (file descriptors close on exec, not on fork), so the lock can
/// outlive the parent's `Store` by that long. Bounded: a real second holder still fails the test.
fn open_retrying_locked(dir: &str) -> Store {
    let started = std::time::Instant::now();
    loop {
        match Store::open(dir, StoreConfig::default()) {
            Err(kappalog::Error::Locked { .. }) if started.elapsed() < std::time::Duration::from_secs(10) => {
                std::thread::sleep(std::time::Duration::from_millis(5))
            }
            opened => return opened.unwrap(),
        }
    }
}

/// Runs one child until it has acknowledged `ACKS_BEFORE_KILL` records, SIGKILLs it, and returns
/// every acknowledgement it printed (complete lines only).
fn crash_round(dir: &std::path::Path, round: u32) -> BTreeMap<u64, String> {
    let round_tag = round.to_string();
    let mut child = common::ChildGuard(common::spawn_child(
        "child_appends_until_killed",
        &[(CRASH_ENV, dir.to_str().unwrap()), (ROUND_ENV, &round_tag)],
    ));
    let mut out = BufReader::new(child.0.stdout.take().unwrap());
    let mut acks = BTreeMap::new();
    let mut killed = false;
    let mut line = String::new();
    loop {
        line.clear();
        if out.read_line(&mut line).unwrap() == 0 {
            break;
        }
        if !line.ends_with('\n') {
            break; // A line cut by the kill: not an acknowledgement the parent saw whole.
        }
        let Some(ack) = line.trim_end().strip_prefix("ack ") else { continue };
        let (offset, value) = ack.split_once(' ').unwrap();
        assert!(
            acks.insert(offset.parse::<u64>().unwrap(), value.to_string()).is_none(),
            "offset {offset} acked twice"
        );
        if !killed && acks.len() >= ACKS_BEFORE_KILL {
            child.0.kill().unwrap(); // SIGKILL, mid-stream: the child is still appending.
            killed = true;
        }
    }
    let status = child.0.wait().unwrap();
    assert!(killed, "the child stopped by itself: {status:?}");
    acks
}

#[test]
fn acknowledged_records_survive_kill_9() {
    check_durability(Durability::Sync);
}

/// A process crash (not a power loss) loses nothing written, even without fsync: the page cache
/// survives the process. This also puts recovery through real crashes mid-append.
#[test]
fn written_records_survive_kill_9_without_fsync() {
    check_durability(Durability::None);
}

fn check_durability(durability: Durability) {
    let dir = tempfile::tempdir().unwrap();
    drop(Store::open(dir.path(), StoreConfig::default()).unwrap().create_topic("t", 1, config(durability)).unwrap());
    let mut all_acks: BTreeMap<u64, String> = BTreeMap::new();
    for round in 0..2 {
        let acks = crash_round(dir.path(), round);
        assert!(acks.len() >= ACKS_BEFORE_KILL);
        assert!(!dir.path().join("clean-shutdown").exists(), "a killed child did not close cleanly");
        for (o, v) in acks {
            assert!(all_acks.insert(o, v).is_none(), "offset {o} was acknowledged in two rounds");
        }

        let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
        let p = store.topic("t").unwrap().partition(0).unwrap();
        assert!(p.corruption().is_none());
        let (&last, _) = all_acks.last_key_value().unwrap();
        assert!(p.high_watermark() > last, "high watermark {} but offset {last} was acknowledged", p.high_watermark());
        let log = p.read(0, usize::MAX, usize::MAX).unwrap();
        assert_eq!(log.len() as u64, p.high_watermark(), "the recovered log reads whole, without gaps");
        for (&o, v) in &all_acks {
            assert_eq!(log[o as usize].value.as_deref(), Some(v.as_bytes()), "round {round}: acknowledged offset {o}");
        }
        // In order: each child thread's records appear in the order it appended them.
        let mut last_seen: BTreeMap<String, (u64, u64)> = BTreeMap::new();
        for r in &log {
            let v = std::str::from_utf8(r.value.as_deref().unwrap()).unwrap();
            let parts: Vec<&str> = v.split('-').collect();
            let (thread, seq) =
                (format!("{}-{}", parts[0], parts[1]), (parts[2].parse().unwrap(), parts[3].parse().unwrap()));
            if let Some(prev) = last_seen.insert(thread.clone(), seq) {
                assert!(prev < seq, "{thread}: {prev:?} then {seq:?} at offset {}", r.offset);
            }
        }
    }
}
