//! The `store_files` fuzz target's harness (shared with `tests/store_files_fuzz_seeds.rs`): the
//! files read at open that `store_metadata` and `segment_open` do not cover. See `store_files.rs`.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use kappalog::stream::{Views, ViewsConfig};
use kappalog::{CleanupPolicy, NewRecord, Store, StoreConfig, TopicConfig};

const TABLE_VIEW: &str = "counts";
const WINDOW_VIEW: &str = "per_second";

fn scratch_base() -> &'static str {
    if Path::new("/dev/shm").is_dir() {
        "/dev/shm"
    } else {
        "/tmp"
    }
}

/// A data directory with a compacted two-partition topic, a cleaner checkpoint, and two views
/// with checkpoints; built once and copied for every input.
fn template() -> &'static Path {
    static TEMPLATE: OnceLock<tempfile::TempDir> = OnceLock::new();
    TEMPLATE
        .get_or_init(|| {
            let dir = tempfile::tempdir_in(scratch_base()).unwrap();
            let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
            let cfg = TopicConfig::default().segment_bytes(4096).cleanup_policy(CleanupPolicy::Compact);
            let topic = store.create_topic("t", 2, cfg).unwrap();
            for i in 0..400u64 {
                let value = format!(r#"{{"k":"k{}","n":{i},"ts":{}}}"#, i % 7, 1_000 + i * 97);
                topic.append(&[NewRecord::keyed(format!("k{}", i % 7), value)]).unwrap();
            }
            store.compact("t").unwrap();
            let views = Views::open(&store, ViewsConfig::default()).unwrap();
            let table = format!(
                r#"{{"name":"{TABLE_VIEW}","source":{{"topics":["t"]}},"key":"/k",
                   "aggregates":{{"c":{{"op":"count"}},"s":{{"op":"sum","field":"/n"}}}}}}"#
            );
            let window = format!(
                r#"{{"name":"{WINDOW_VIEW}","source":{{"topics":["t"]}},"key":"/k",
                   "window":{{"type":"tumbling","size_ms":1000,"grace_ms":100,"time":"/ts"}},
                   "aggregates":{{"c":{{"op":"count"}},"m":{{"op":"max","field":"/n"}}}}}}"#
            );
            for spec in [table, window] {
                let v = views.create_json(spec.as_bytes()).unwrap();
                assert!(v.wait_caught_up(Duration::from_secs(30)), "template view {} caught up", v.name());
            }
            views.close();
            drop(store);
            dir
        })
        .path()
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            // Not `std::fs::copy`: libFuzzer's timeout timer sends SIGALRM without SA_RESTART, and
            // `copy_file_range` then fails with EINTR, which `fs::copy` returns (a CI run failed on
            // it). `read` and `write` retry an interrupted call.
            std::fs::write(&target, std::fs::read(entry.path()).unwrap()).unwrap();
        }
    }
}

/// The checkpoint file of the view's current version.
fn checkpoint_of(data: &Path, view: &str) -> PathBuf {
    let dir = data.join("views").join(view);
    std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "checkpoint"))
        .unwrap_or_else(|| dir.join("v1.checkpoint"))
}

/// `content` with the frame its file expects (segment-format.md): a CRC over what it covers.
fn framed(file: u8, content: &[u8]) -> Vec<u8> {
    match file {
        // Offset files: 8 bytes of offset, the CRC-32 of those 8 bytes.
        0 | 1 => {
            let mut offset = [0u8; 8];
            let n = content.len().min(8);
            offset[..n].copy_from_slice(&content[..n]);
            let mut b = offset.to_vec();
            b.extend_from_slice(&crc32fast::hash(&offset).to_le_bytes());
            b
        }
        // The swap manifest: CRC-32 of the JSON, then the JSON.
        2 => {
            let mut b = crc32fast::hash(content).to_le_bytes().to_vec();
            b.extend_from_slice(content);
            b
        }
        // Checkpoints: magic, version 1, body length, body CRC, body.
        4 | 5 => {
            let mut b = b"KLVC".to_vec();
            b.extend_from_slice(&1u32.to_le_bytes());
            b.extend_from_slice(&(content.len() as u64).to_le_bytes());
            b.extend_from_slice(&crc32fast::hash(content).to_le_bytes());
            b.extend_from_slice(content);
            b
        }
        _ => content.to_vec(),
    }
}

/// How far an input got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reached {
    /// The config file was read (or refused).
    Config,
    StoreRefused,
    ViewsRefused,
    /// The store and its views opened; every view was queried.
    Served,
}

fn exercise_store(data: &Path) -> Reached {
    let Ok(store) = Store::open(data, StoreConfig::default()) else { return Reached::StoreRefused };
    let topic = store.topic("t").expect("the topic survives damage to files below it");
    for id in 0..topic.partition_count() {
        let p = topic.partition(id).unwrap();
        let (start, hw) = (p.log_start_offset(), p.high_watermark());
        assert!(start <= hw, "partition {id}: log start {start} beyond the high watermark {hw}");
        if let Ok(records) = p.read(start, usize::MAX, usize::MAX) {
            assert!(records.windows(2).all(|w| w[0].offset < w[1].offset), "offsets ascend");
            assert!(records.iter().all(|r| r.offset >= start && r.offset < hw), "records lie in [start, hw)");
        }
        if let Ok(a) = p.append(&[NewRecord::keyed("k1", r#"{"k":"k1","n":1,"ts":5000}"#)]) {
            assert!(a.base_offset >= hw, "an append lands at or after the old high watermark");
        }
    }
    let _ = store.compact("t");
    let _ = store.enforce_retention("t");
    let config = ViewsConfig::default().idle_wait_ms(5);
    let Ok(views) = Views::open(&store, config) else { return Reached::ViewsRefused };
    for name in views.list() {
        let Ok(view) = views.get(&name) else { continue };
        let _ = view.status();
        let _ = view.get("k1");
        let _ = view.get_range("k2", Some(0), Some(i64::MAX));
        let _ = view.scan("k", 3);
        let _ = view.wait_caught_up(Duration::from_millis(50));
    }
    views.close();
    Reached::Served
}

/// Runs one input: the first byte picks the file and the framing, the rest is its content.
pub fn run(input: &[u8]) -> Reached {
    let (&selector, content) = input.split_first().unwrap_or((&0, input));
    let file = selector & 7;
    let content = if selector & 8 != 0 { framed(file, content) } else { content.to_vec() };
    let dir = tempfile::tempdir_in(scratch_base()).unwrap();
    if file == 6 {
        let path = dir.path().join("kappalog.toml");
        std::fs::write(&path, &content).unwrap();
        if let Ok(f) = kappalog::broker::server::FileConfig::load(&path) {
            let _ = kappalog::broker::server::ServeConfig::default().with_file(f);
        }
        return Reached::Config;
    }
    let data = dir.path().join("data");
    copy_dir(template(), &data);
    let target = match file {
        0 => data.join("topics/t/0/log-start-offset"),
        1 => data.join("topics/t/0/cleaner-checkpoint"),
        2 => data.join("topics/t/1/cleaner.swap"),
        3 => data.join("views").join(TABLE_VIEW).join("view.json"),
        4 => checkpoint_of(&data, TABLE_VIEW),
        5 => checkpoint_of(&data, WINDOW_VIEW),
        _ => data.join("views").join(WINDOW_VIEW).join("view.json"),
    };
    std::fs::write(target, &content).unwrap();
    exercise_store(&data)
}
