//! Durability: a child process commits offsets and prints each acknowledgement; the parent kills it
//! with SIGKILL right after an acknowledgement, reopens the store, and finds every acknowledged commit.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use kappalog::{groups::TopicPartition, NewRecord, Store, StoreConfig, TopicConfig};

const CHILD_DIR_ENV: &str = "KAPPALOG_GROUPS_KILL9_CHILD_DIR";
const GROUPS: [&str; 3] = ["orders-service", "billing", "audit"];
const PARTITIONS: u32 = 4;
const RECORDS: u64 = 2_000;
/// Acknowledgements the parent waits for before the kill.
const ACKS_BEFORE_KILL: usize = 300;

fn metadata(offset: u64) -> String {
    format!("checkpoint-{offset}")
}

/// The child: commits (group, partition) → offset, each key's offset one more than its last, and
/// prints `ACK group partition offset` once the commit returned.
#[test]
fn child_commits_until_killed() {
    let Ok(dir) = std::env::var(CHILD_DIR_ENV) else { return };
    let store = Store::open(&dir, StoreConfig::default()).unwrap();
    let c = store.groups().unwrap();
    let mut next: BTreeMap<(usize, u32), u64> = BTreeMap::new();
    for i in 0.. {
        let g = i % GROUPS.len();
        let p = (i / GROUPS.len()) as u32 % PARTITIONS;
        let o = next.entry((g, p)).or_insert(0);
        *o += 1;
        if *o > RECORDS {
            break;
        }
        c.commit(GROUPS[g], None, &[(TopicPartition::new("t", p), *o, Some(metadata(*o)))]).unwrap();
        println!("ACK {g} {p} {o}");
    }
    // Ran out of offsets before the kill: wait for it.
    loop {
        std::thread::park();
    }
}

#[test]
fn acknowledged_commits_survive_kill_9() {
    if std::env::var(CHILD_DIR_ENV).is_ok() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    {
        let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
        let t = store.create_topic("t", PARTITIONS, TopicConfig::default()).unwrap();
        for p in 0..PARTITIONS {
            t.partition(p).unwrap().append(&vec![NewRecord::new("v"); RECORDS as usize]).unwrap();
        }
        store.groups().unwrap(); // creates the offsets topic before the child runs
    }
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["child_commits_until_killed", "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_DIR_ENV, dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut acked: BTreeMap<(usize, u32), u64> = BTreeMap::new();
    let mut count = 0;
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    while count < ACKS_BEFORE_KILL {
        let line = lines.next().expect("the child exited early (see its stderr)").unwrap();
        let Some(rest) = line.strip_prefix("ACK ") else { continue };
        let f: Vec<u64> = rest.split(' ').map(|x| x.parse().unwrap()).collect();
        acked.insert((f[0] as usize, f[1] as u32), f[2]);
        count += 1;
    }
    child.kill().unwrap(); // SIGKILL
    let status = child.wait().unwrap();
    assert!(!status.success(), "killed, not exited: {status:?}");

    let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
    let c = store.groups().unwrap();
    assert_eq!(acked.len(), GROUPS.len() * PARTITIONS as usize, "every key was committed");
    for (&(g, p), &offset) in &acked {
        let got = c.committed(GROUPS[g], &TopicPartition::new("t", p)).expect("an acknowledged commit");
        // The acknowledged commit, or the one after it that was in flight at the kill.
        assert!(got.offset == offset || got.offset == offset + 1, "{} t-{p}: acked {offset}, found {got:?}", GROUPS[g]);
        assert_eq!(got.metadata, Some(metadata(got.offset)));
    }
    let mut listed = c.list();
    listed.sort();
    let mut expected: Vec<String> = GROUPS.iter().map(|g| g.to_string()).collect();
    expected.sort();
    assert_eq!(listed, expected);
}
