//! One data directory, one `Store`: a second open fails with `Error::Locked` naming the directory,
//! in the same process and from another process; the lock dies with its holder (even `kill -9`).

mod common;

use std::io::{BufRead, BufReader};

use kappalog::{Error, Store, StoreConfig};

/// Set in the child: the directory to open and hold.
const HOLD_ENV: &str = "KAPPALOG_TEST_HOLD_DIR";
/// Bounds the child's life should the parent die without killing it.
const CHILD_LIFETIME_MAX_S: u64 = 120;

#[test]
fn a_second_open_in_the_same_process_is_locked() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
    match Store::open(dir.path(), StoreConfig::default()) {
        Err(e @ Error::Locked { .. }) => {
            let Error::Locked { path } = &e else { unreachable!() };
            assert_eq!(path, dir.path());
            assert!(e.to_string().contains(&dir.path().display().to_string()), "{e}");
        }
        other => panic!("expected Locked, got {other:?}"),
    }
    // Clones share the one lock; the lock goes with the last handle.
    let clone = store.clone();
    drop(store);
    assert!(matches!(Store::open(dir.path(), StoreConfig::default()), Err(Error::Locked { .. })));
    drop(clone);
    Store::open(dir.path(), StoreConfig::default()).unwrap();
}

/// The child's part: open the store, say "ready", hold it until killed.
#[test]
fn child_holds_the_store() {
    let Ok(dir) = std::env::var(HOLD_ENV) else { return };
    let _store = Store::open(&dir, StoreConfig::default()).unwrap();
    common::say("ready");
    std::thread::sleep(std::time::Duration::from_secs(CHILD_LIFETIME_MAX_S));
}

#[test]
fn another_process_holding_the_store_locks_it_until_killed() {
    let dir = tempfile::tempdir().unwrap();
    let mut child =
        common::ChildGuard(common::spawn_child("child_holds_the_store", &[(HOLD_ENV, dir.path().to_str().unwrap())]));
    let mut lines = BufReader::new(child.0.stdout.take().unwrap()).lines();
    // Blocks until the child has the lock (or dies: then the line is missing and we fail).
    let ready = lines.find(|l| l.as_deref().map_or(true, |l| l == "ready"));
    assert!(matches!(ready, Some(Ok(ref l)) if l == "ready"), "the child never got ready: {ready:?}");

    assert!(
        matches!(Store::open(dir.path(), StoreConfig::default()), Err(Error::Locked { ref path }) if path == dir.path()),
        "the child holds the lock"
    );
    child.0.kill().unwrap(); // SIGKILL: no destructor runs in the child.
    child.0.wait().unwrap();
    assert!(!dir.path().join("clean-shutdown").exists(), "a killed store did not close cleanly");
    // The kernel released the lock with the child's file descriptors.
    Store::open(dir.path(), StoreConfig::default()).unwrap();
}
