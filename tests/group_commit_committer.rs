//! Group commit for threads: the appending thread that led a group returns once its group is
//! durable; when others queued meanwhile, a committer thread (`kappalog-commit`) leads the next
//! groups, and it and its waker thread (`kappalog-wake`) exit once appends stop. A lone appender
//! leads its own group and starts no thread. (Linux: threads are found by name in /proc.)
#![cfg(target_os = "linux")]

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;

use common::{store_with_faults, threads_named, wait_until, ResumeSyncs};
use kappalog::{Durability, NewRecord, TopicConfig};

const QUEUED: usize = 8;

#[test]
fn a_committer_thread_leads_after_a_contended_group_and_exits_when_appends_stop() {
    let dir = tempfile::tempdir().unwrap();
    let (store, faults) = store_with_faults(dir.path());
    let config = TopicConfig::default().durability(Durability::Sync);
    let p = store.create_topic("t", 1, config).unwrap().partition(0).unwrap();
    for i in 0..3 {
        p.append(&[NewRecord::new(format!("alone {i}"))]).unwrap();
    }
    assert_eq!(threads_named("kappalog-commit"), 0, "a lone appender leads its own groups");

    // The first appender leads; its fsync is held while the others queue behind it.
    faults.pause_syncs();
    let _resume = ResumeSyncs(Arc::clone(&faults));
    let syncs0 = faults.syncs();
    let first = {
        let p = p.clone();
        std::thread::spawn(move || p.append(&[NewRecord::new("first")]).unwrap())
    };
    wait_until("the first group's fsync in flight", || faults.syncs() == syncs0 + 1);
    let others: Vec<_> = (0..QUEUED)
        .map(|i| {
            let p = p.clone();
            std::thread::spawn(move || (i, p.append(&[NewRecord::new(format!("queued {i}"))]).unwrap()))
        })
        .collect();
    wait_until("every other append queued", || p.queued_appends() == QUEUED);

    // Release the first fsync and hold the next: the first appender returns while the second
    // group's fsync is in flight, and a committer thread is there to make it.
    faults.pause_syncs_after(1);
    let a = first.join().unwrap();
    assert_eq!(a.base_offset, 3);
    wait_until("the second group's fsync in flight", || faults.syncs() == syncs0 + 2);
    assert_eq!(p.queued_appends(), 0, "the second group took every queued append");
    assert!(others.iter().all(|h| !h.is_finished()), "no queued append is acknowledged before its fsync");
    // A new thread carries its creator's name until it has set its own: wait for the names.
    wait_until("a committer thread and its waker", || {
        threads_named("kappalog-commit") == 1 && threads_named("kappalog-wake") == 1
    });
    assert_eq!(p.high_watermark(), 4);

    faults.resume_syncs();
    let offsets: BTreeSet<u64> = others
        .into_iter()
        .map(|h| {
            let (i, a) = h.join().unwrap();
            assert_eq!(
                p.read(a.base_offset, 1, 1).unwrap()[0].value.as_deref(),
                Some(format!("queued {i}").as_bytes())
            );
            a.base_offset
        })
        .collect();
    assert_eq!(offsets, (4..4 + QUEUED as u64).collect(), "one offset each, after the first");
    assert_eq!(faults.syncs(), syncs0 + 2, "the queued appends shared one fsync");
    wait_until("the committer and waker threads exit", || {
        threads_named("kappalog-commit") == 0 && threads_named("kappalog-wake") == 0
    });
    assert_eq!(p.append(&[NewRecord::new("after")]).unwrap().base_offset, 4 + QUEUED as u64);
    assert_eq!(threads_named("kappalog-commit"), 0, "a lone appender leads again");
}
