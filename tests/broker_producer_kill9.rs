//! Idempotent HTTP produce across `kill -9`: clients produce with a producer id and sequences and
//! retry every request whose answer they did not get, while the broker is killed with SIGKILL and
//! restarted several times. Afterwards every acknowledged record is in the log exactly once, at its
//! acknowledged offset; and a request resent after an acknowledgement (a lost answer, simulated),
//! also right after a restart, gets the offsets of the first attempt and is not written again.

mod broker_common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use broker_common::{Broker, BINARY_V2};
use serde_json::{json, Value};

const CLIENTS: usize = 4;
const PARTITIONS: u32 = 2;
const KILLS: usize = 3;
/// Acknowledged requests between two kills.
const ACKS_PER_ROUND: usize = 40;
/// The whole test gives up after this.
const DEADLINE: Duration = Duration::from_secs(240);

/// One client: its acknowledged (partition, offset, value) records and how many resends of an
/// acknowledged request were answered with the same offsets.
struct Client {
    id: usize,
    url: Arc<RwLock<String>>,
    http: reqwest::blocking::Client,
    acked: Arc<Mutex<Vec<(u32, u64, String)>>>,
    acks: Arc<AtomicUsize>,
    resends: Arc<AtomicUsize>,
    /// Restarts of the broker so far.
    restarts: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    deadline: Instant,
}

impl Client {
    /// Sends `body` to `path` until an answer comes (the broker may be down or restarting).
    fn send(&self, path: &str, body: &Value) -> (u16, Value) {
        loop {
            assert!(Instant::now() < self.deadline, "client {} got no answer to {path}", self.id);
            let url = format!("{}{path}", self.url.read().unwrap());
            let sent = self.http.post(url).header("Content-Type", BINARY_V2).body(body.to_string()).send();
            if let Ok(resp) = sent {
                let status = resp.status().as_u16();
                if let Ok(v) = resp.json::<Value>() {
                    // 503: the store is closing (the broker is being killed): retry too.
                    if status != 503 {
                        return (status, v);
                    }
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn run(self) {
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::STANDARD;
        let (s, p) = self.send("/producers", &json!({}));
        assert_eq!(s, 200, "{p}");
        let producer_id = p["producer_id"].as_i64().unwrap();
        let epoch = p["producer_epoch"].as_i64().unwrap();
        let partition = self.id as u32 % PARTITIONS;
        let path = format!("/topics/events/partitions/{partition}");
        let mut sequence = 0i64;
        let mut last: Option<(Value, Value)> = None;
        let mut restarts_seen = 0;
        for request in 0.. {
            if self.stop.load(Ordering::Acquire) {
                return;
            }
            // After a restart, the last acknowledged request is sent again: the producer state
            // rebuilt after the kill must know it.
            let restarts = self.restarts.load(Ordering::Acquire);
            if let (true, Some((body, answer))) = (restarts != restarts_seen, &last) {
                let (s, again) = self.send(&path, body);
                assert_eq!((s, &again["offsets"]), (200, &answer["offsets"]), "client {}: after a restart", self.id);
                self.resends.fetch_add(1, Ordering::AcqRel);
                restarts_seen = restarts;
            }
            let n = 1 + request % 3;
            let values: Vec<String> = (0..n).map(|i| format!("c{}-{request}-{i}", self.id)).collect();
            let records: Vec<Value> = values.iter().map(|v| json!({"value": b64.encode(v)})).collect();
            let body = json!({
                "records": records,
                "producer": {"id": producer_id, "epoch": epoch, "sequence": sequence},
            });
            let (s, answer) = self.send(&path, &body);
            assert_eq!(s, 200, "client {} request {request}: {answer}", self.id);
            let mut acked = self.acked.lock().unwrap();
            for (i, v) in values.into_iter().enumerate() {
                let o = &answer["offsets"][i];
                assert_eq!(o["partition"], partition);
                acked.push((partition, o["offset"].as_u64().unwrap(), v));
            }
            drop(acked);
            self.acks.fetch_add(1, Ordering::AcqRel);
            sequence += n as i64;
            // Every fifth answer is "lost": the request is sent again, and must get the same offsets.
            if request % 5 == 4 {
                let (s, again) = self.send(&path, &body);
                assert_eq!((s, &again["offsets"]), (200, &answer["offsets"]), "client {}: a resend", self.id);
                self.resends.fetch_add(1, Ordering::AcqRel);
            }
            last = Some((body, answer));
        }
    }
}

#[test]
fn idempotent_produce_survives_kill_9_without_duplicates() {
    let dir = tempfile::tempdir().unwrap();
    let mut broker = Broker::start(dir.path(), &[]);
    broker.client().create_topic("events", PARTITIONS, json!({"segment.bytes": 8192}));
    let deadline = Instant::now() + DEADLINE;
    let url = Arc::new(RwLock::new(broker.url.clone()));
    let acked: Arc<Mutex<Vec<(u32, u64, String)>>> = Arc::default();
    let (acks, resends) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let restarts = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|id| {
            let c = Client {
                id,
                url: url.clone(),
                http: reqwest::blocking::Client::builder().timeout(Duration::from_secs(10)).build().unwrap(),
                acked: acked.clone(),
                acks: acks.clone(),
                resends: resends.clone(),
                restarts: restarts.clone(),
                stop: stop.clone(),
                deadline,
            };
            std::thread::spawn(move || c.run())
        })
        .collect();
    for round in 1..=KILLS {
        while acks.load(Ordering::Acquire) < round * ACKS_PER_ROUND {
            assert!(Instant::now() < deadline, "round {round}: the clients made no progress");
            std::thread::sleep(Duration::from_millis(5));
        }
        broker.kill9();
        assert!(!dir.path().join("clean-shutdown").exists());
        broker = Broker::start(dir.path(), &[]);
        *url.write().unwrap() = broker.url.clone();
        restarts.fetch_add(1, Ordering::AcqRel);
    }
    // A last round on the restarted broker, then the clients stop after their current request.
    let target = (KILLS + 1) * ACKS_PER_ROUND;
    while acks.load(Ordering::Acquire) < target {
        assert!(Instant::now() < deadline, "the clients made no progress after the last restart");
        std::thread::sleep(Duration::from_millis(5));
    }
    stop.store(true, Ordering::Release);
    for c in clients {
        c.join().expect("a client failed");
    }
    assert!(resends.load(Ordering::Acquire) > 0);

    let http = broker.client();
    let mut place: HashMap<String, (u32, u64)> = HashMap::new();
    for p in 0..PARTITIONS {
        for (offset, v) in http.read_all("events", p) {
            let v = String::from_utf8(v).unwrap();
            if let Some(prev) = place.insert(v.clone(), (p, offset)) {
                panic!("{v} is in the log twice: {prev:?} and {:?}", (p, offset));
            }
        }
    }
    let acked = acked.lock().unwrap();
    for (p, offset, v) in acked.iter() {
        assert_eq!(place.get(v), Some(&(*p, *offset)), "acknowledged {v} at {p}/{offset}");
    }
    // Nothing but acknowledged records and the requests in flight at a kill (retried until
    // acknowledged, so they are acknowledged too): the log holds exactly the acknowledged records.
    assert_eq!(place.len(), acked.len(), "records in the log that no client was acknowledged for");
}
