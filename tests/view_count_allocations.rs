//! A count or a sum per key allocates nothing per record once its keys exist: the value is parsed
//! without building the key's field (borrowed from the record) or an object of the fields read
//! (their values are kept by their place), and the aggregate inputs are inline. The
//! whole process's allocations are counted while a view counts 200 000 records of 100 keys over
//! two partitions; reads, checkpoints and the other threads allocate far fewer than one per record.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use kappalog::{Durability, NewRecord, Store, StoreConfig, TopicConfig, Views, ViewsConfig};

struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

// SAFETY: forwards every call to the system allocator unchanged; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller's contract is the system allocator's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `alloc` above, i.e. from the system allocator.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const RECORDS: u64 = 200_000;

/// The allocations of the whole process while a view of `spec` (over topic `clicks`) catches up
/// on the records written by [`write`], and the view's `(records_applied, keys)`.
fn allocations_of(views: &Views, spec: &str) -> (u64, (u64, usize)) {
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    let view = views.create_json(spec.as_bytes()).unwrap();
    assert!(view.wait_caught_up(Duration::from_secs(120)), "{:?}", view.status());
    let allocations = ALLOCATIONS.load(Ordering::Relaxed) - before;
    let status = view.status();
    (allocations, (status.counters.records_applied, status.keys))
}

// One test: the counter is the whole process's.
#[test]
fn a_count_or_a_sum_per_key_allocates_nothing_per_record() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
    let topic = store.create_topic("clicks", 2, TopicConfig::default().durability(Durability::None)).unwrap();
    for p in 0..2u32 {
        let batch: Vec<NewRecord> = (0..RECORDS / 2)
            .map(|i| NewRecord::new(format!(r#"{{"page":"/p{}","user":{},"ts":{}}}"#, i % 100, i % 7, i)))
            .collect();
        topic.partition(p).unwrap().append(&batch).unwrap();
    }
    let views = Views::open(&store, ViewsConfig::default()).unwrap();
    let cases = [
        r#"{"name": "per_page", "source": {"topics": ["clicks"]}, "key": "/page", "aggregates": {"n": {"op": "count"}}}"#,
        r#"{"name": "sums", "source": {"topics": ["clicks"]}, "key": "/page",
            "aggregates": {"users": {"op": "sum", "field": "/user"}, "last": {"op": "max", "field": "/ts"}}}"#,
    ];
    for spec in cases {
        let (allocations, applied_and_keys) = allocations_of(&views, spec);
        assert_eq!(applied_and_keys, (RECORDS, 100), "{spec}");
        assert!(allocations < RECORDS / 20, "{allocations} allocations for {RECORDS} records: {spec}");
    }
}
