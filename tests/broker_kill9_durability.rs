//! The durability promise: a 200 to a produce means the records survive `kill -9`. Several
//! clients produce concurrently; the broker is killed mid-stream; after a restart every
//! acknowledged record is at its acknowledged offset, exactly once, in order within its partition.

mod broker_common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use broker_common::{Broker, Http, BINARY_V2};
use serde_json::json;

const PRODUCERS: usize = 4;
const PARTITIONS: u32 = 3;
/// Acknowledged requests to wait for before the kill.
const ACKS_BEFORE_KILL: usize = 60;

#[test]
fn acknowledged_records_survive_kill_9() {
    use base64::Engine as _;
    const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;
    let dir = tempfile::tempdir().unwrap();
    let mut broker = Broker::start(dir.path(), &[]);
    broker.client().create_topic("events", PARTITIONS, json!({}));

    // (partition, offset, value) of every acknowledged record.
    let acked: Arc<Mutex<Vec<(u32, u64, String)>>> = Arc::default();
    let acks = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let mut threads = Vec::new();
    for id in 0..PRODUCERS {
        let (url, acked, acks, stop) = (broker.url.clone(), acked.clone(), acks.clone(), stop.clone());
        threads.push(std::thread::spawn(move || {
            let http = Http::new(&url);
            let mut seq = 0u64;
            while !stop.load(Ordering::Relaxed) {
                // Each request: 1..=5 records, keyed by producer (so one partition per producer), plus one
                // keyless record (which the partitioner may put anywhere).
                let n = 1 + (seq % 5) as usize;
                let mut values: Vec<String> = (0..n).map(|i| format!("p{id}-{}", seq + i as u64)).collect();
                values.push(format!("p{id}-free-{seq}"));
                let records: Vec<_> = values
                    .iter()
                    .enumerate()
                    .map(|(i, v)| {
                        if i < n {
                            json!({"key": B64.encode(format!("producer-{id}")), "value": B64.encode(v)})
                        } else {
                            json!({"value": B64.encode(v)})
                        }
                    })
                    .collect();
                let resp = http
                    .client
                    .post(format!("{url}/topics/events"))
                    .header("Content-Type", BINARY_V2)
                    .body(json!({ "records": records }).to_string())
                    .send();
                let Ok(resp) = resp else { return }; // the broker died: this request is not acknowledged
                if resp.status() != 200 {
                    return;
                }
                let Ok(body) = resp.json::<serde_json::Value>() else { return };
                let mut list = acked.lock().unwrap();
                for (i, v) in values.into_iter().enumerate() {
                    let o = &body["offsets"][i];
                    list.push((o["partition"].as_u64().unwrap() as u32, o["offset"].as_u64().unwrap(), v));
                }
                drop(list);
                acks.fetch_add(1, Ordering::Relaxed);
                seq += n as u64;
            }
        }));
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while acks.load(Ordering::Relaxed) < ACKS_BEFORE_KILL {
        assert!(Instant::now() < deadline, "producers made no progress");
        std::thread::sleep(Duration::from_millis(5));
    }
    broker.kill9();
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    assert!(acked.len() >= ACKS_BEFORE_KILL);
    assert!(!dir.path().join("clean-shutdown").exists(), "kill -9 must not leave a clean-shutdown marker");

    let broker = Broker::start(dir.path(), &[]);
    let http = broker.client();
    let mut logs: HashMap<u32, Vec<(u64, String)>> = HashMap::new();
    for p in 0..PARTITIONS {
        let recs = http.read_all("events", p);
        logs.insert(p, recs.into_iter().map(|(o, v)| (o, String::from_utf8(v).unwrap())).collect());
    }
    // Every acknowledged record is at its acknowledged place.
    for (p, off, v) in &acked {
        let log = &logs[p];
        let found = log.iter().find(|(o, _)| o == off).map(|(_, v)| v.as_str());
        assert_eq!(found, Some(v.as_str()), "acknowledged {v} at {p}/{off} is missing or different");
    }
    // Exactly once: no value appears twice anywhere.
    let mut seen = HashMap::new();
    for (p, log) in &logs {
        for (o, v) in log {
            if let Some(prev) = seen.insert(v.clone(), (*p, *o)) {
                panic!("{v} appears twice: {prev:?} and {:?}", (p, o));
            }
        }
    }
    // In order within a partition: each producer's keyed sequence numbers increase.
    for log in logs.values() {
        let mut last: HashMap<&str, u64> = HashMap::new();
        for (_, v) in log {
            if v.contains("-free-") {
                continue;
            }
            let (who, seq) = v.split_once('-').unwrap();
            let seq: u64 = seq.parse().unwrap();
            if let Some(prev) = last.insert(who, seq) {
                assert!(seq > prev, "{who}: {seq} after {prev}");
            }
        }
    }
}
