use serde_json::json;

use super::*;
use crate::stream::state::Entry;

struct Rng(u64);

impl Rng {
    fn from_env(test: &str) -> Rng {
        let seed = std::env::var("SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64 | 1
        });
        eprintln!("{test}: SEED={seed}");
        Rng(seed)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// Some random changes to the state: values set, changed, removed; TTL times; offsets, counters.
fn change(st: &RwLock<State>, rng: &mut Rng, keys: u64, n: u64) {
    let mut st = st.write();
    if st.snap.offsets.is_empty() {
        st.set_offset("t", 0, 0);
    }
    for _ in 0..n {
        let key = format!("k{}", rng.below(keys));
        match rng.below(10) {
            0 => {
                st.snap.entries.remove(&key);
                st.snap.ttl.remove(&key);
            }
            1 => st.snap.ttl.touch(&key, rng.below(1000) as i64),
            2 => {
                if let Some(Entry::Value(v)) = st.snap.entries.get_mut(&key) {
                    *v = json!(v.as_u64().unwrap_or(0) + 1);
                }
            }
            _ => st.snap.entries.insert(key, Entry::Value(json!(rng.below(1_000_000)))),
        }
        let next = st.snap.offsets[0].next_offset + 1;
        st.set_offset_at(0, next);
        st.snap.counters.records_read += 1;
    }
    st.snap.watermark = Some(rng.below(1 << 40) as i64);
}

fn reopened(dir: &Path) -> Snapshot {
    StateStore::open(dir, 1).unwrap().1.expect("a checkpoint")
}

#[test]
fn every_checkpoint_reopens_as_the_state_it_wrote_and_deltas_stay_below_half_the_base() {
    let mut rng = Rng::from_env("state_store_model");
    let dir = tempfile::tempdir().unwrap();
    let st = RwLock::new(State::default());
    let (mut files, none) = StateStore::open(dir.path(), 1).unwrap();
    assert!(none.is_none());
    let (mut fulls, mut deltas, mut generation) = (0, 0, 0);
    for round in 0..120 {
        // Mostly small changes to a large state; now and then a large one.
        let n = if rng.below(10) == 0 { 2_000 } else { 1 + rng.below(40) };
        change(&st, &mut rng, 3_000, n);
        files.write(&st).unwrap();
        let last = files.last.unwrap();
        if last.full {
            fulls += 1;
            assert_eq!(files.generation, generation + 1, "round {round}: a base is a new generation");
            assert!(!files.delta_path.exists(), "round {round}: the old log is removed");
        } else {
            deltas += 1;
            assert_eq!(files.generation, generation);
        }
        generation = files.generation;
        assert!(files.delta_len <= files.base_len / 2, "round {round}: {last:?}");
        assert_eq!(reopened(dir.path()), st.read().snap, "round {round} ({last:?})");
        if rng.below(8) == 0 {
            // As after a restart: the reopened files carry on.
            let (again, snap) = StateStore::open(dir.path(), 1).unwrap();
            files = again;
            *st.write() = State::from_snapshot(snap.unwrap(), None);
        }
    }
    eprintln!("{fulls} bases, {deltas} deltas");
    assert!(fulls >= 2 && deltas >= 20, "{fulls} bases, {deltas} deltas");
}

#[test]
fn a_delta_holds_only_what_changed() {
    let mut rng = Rng::from_env("delta_small");
    let dir = tempfile::tempdir().unwrap();
    let st = RwLock::new(State::default());
    let (mut files, _) = StateStore::open(dir.path(), 1).unwrap();
    {
        let mut s = st.write();
        for k in 0..10_000 {
            s.snap.entries.insert(format!("key-{k:06}"), Entry::Value(json!({"n": k, "pad": "x".repeat(20)})));
        }
    }
    files.write(&st).unwrap();
    let base = files.last.unwrap();
    assert!(base.full);
    for k in 0..100 {
        let key = format!("key-{:06}", rng.below(10_000));
        st.write().snap.entries.insert(key, Entry::Value(json!(k)));
        let _ = k;
    }
    files.write(&st).unwrap();
    let delta = files.last.unwrap();
    assert!(!delta.full && delta.keys <= 100);
    assert!(delta.bytes * 50 < base.bytes, "delta {delta:?} vs base {base:?}");
    assert_eq!(reopened(dir.path()), st.read().snap);
}

#[test]
fn after_a_failed_write_the_next_checkpoint_is_a_base() {
    let mut rng = Rng::from_env("failed_write");
    let dir = tempfile::tempdir().unwrap();
    let st = RwLock::new(State::default());
    let (mut files, _) = StateStore::open(dir.path(), 1).unwrap();
    change(&st, &mut rng, 2_000, 3_000);
    files.write(&st).unwrap();
    change(&st, &mut rng, 2_000, 10);
    // The log's path taken by a directory: the append fails.
    std::fs::create_dir(&files.delta_path).unwrap();
    assert!(files.write(&st).is_err());
    std::fs::remove_dir(&files.delta_path).unwrap();
    change(&st, &mut rng, 2_000, 10);
    files.write(&st).unwrap();
    assert!(files.last.unwrap().full, "the changes of the failed write are in no file");
    assert_eq!(reopened(dir.path()), st.read().snap);
}

#[test]
fn a_stale_log_and_a_torn_record_are_cleaned_up_on_open() {
    let mut rng = Rng::from_env("stale_log");
    let dir = tempfile::tempdir().unwrap();
    let st = RwLock::new(State::default());
    let (mut files, _) = StateStore::open(dir.path(), 1).unwrap();
    change(&st, &mut rng, 2_000, 3_000);
    files.write(&st).unwrap();
    change(&st, &mut rng, 2_000, 5);
    files.write(&st).unwrap();
    let one = st.read().snap.clone();
    let log_one = std::fs::read(&files.delta_path).unwrap();
    change(&st, &mut rng, 2_000, 5);
    files.write(&st).unwrap();
    assert_eq!(files.deltas, 2);
    // A torn second record: the first holds, and the log is cut back to it.
    let len = std::fs::metadata(&files.delta_path).unwrap().len();
    let f = OpenOptions::new().write(true).open(&files.delta_path).unwrap();
    f.set_len(len - 3).unwrap();
    assert_eq!(reopened(dir.path()), one);
    assert_eq!(std::fs::metadata(&files.delta_path).unwrap().len(), log_one.len() as u64);
    // A new base, then the old log put back (as by a crash before its removal): ignored, removed.
    let (mut files, snap) = StateStore::open(dir.path(), 1).unwrap();
    *st.write() = State::from_snapshot(snap.unwrap(), None);
    change(&st, &mut rng, 2_000, 3_000);
    files.write(&st).unwrap();
    assert!(files.last.unwrap().full);
    std::fs::write(&files.delta_path, &log_one).unwrap();
    assert_eq!(reopened(dir.path()), st.read().snap);
    assert!(!files.delta_path.exists());
    // No base: a log alone is removed.
    StateStore::remove(dir.path(), 1).unwrap();
    std::fs::write(&files.delta_path, &log_one).unwrap();
    assert!(StateStore::open(dir.path(), 1).unwrap().1.is_none());
    assert!(!files.delta_path.exists());
}
