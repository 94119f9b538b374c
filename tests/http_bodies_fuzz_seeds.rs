//! The `http_bodies` fuzz target's property over its seed corpus and every truncation and single
//! byte change of each seed (a cheap stand-in for `cargo fuzz run http_bodies` in `cargo test`):
//! the router never panics or answers 5xx, error bodies are Confluent-shaped, the seeds (valid
//! bodies) succeed except `seed-rejected-*`, and the data directory opens again afterwards.

#[path = "../fuzz/fuzz_targets/http_harness.rs"]
mod http_harness;

use http_harness::Harness;

/// The harness measures the process's peak memory per request: its tests run one at a time.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Replacement bytes tried at every position of every seed.
const MUTATIONS: &[u8] = &[b'0', b'"', b'{', b'-', 0xff];

#[test]
fn http_bodies_seeds_and_their_mutations() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/http_bodies");
    let mut seeds: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .map(|p| (p.file_name().unwrap().to_string_lossy().into_owned(), std::fs::read(&p).unwrap()))
        .collect();
    seeds.sort();
    assert!(seeds.len() >= 10, "expected the seeds of every route in {}", dir.display());
    let mut routes = std::collections::BTreeSet::new();
    let mut h = Harness::new();
    for (name, seed) in &seeds {
        routes.insert(seed[0] as usize % http_harness::ROUTES.len());
        let status = h.run(seed);
        if name.starts_with("seed-rejected-") {
            assert!((400..500).contains(&status), "{name}: {status} {}", h.last_body);
        } else {
            assert!((200..300).contains(&status), "{name}: a valid body got {status} {}", h.last_body);
        }
    }
    assert_eq!(routes.len(), http_harness::ROUTES.len(), "a seed for every route");
    for (_, seed) in &seeds {
        for cut in 1..seed.len() {
            h.run(&seed[..cut]);
        }
        for i in 1..seed.len() {
            for &b in MUTATIONS {
                let mut m = seed.clone();
                m[i] = b;
                h.run(&m);
            }
        }
    }
    eprintln!("{} requests", h.requests);
    h.reopen_check();
}

/// The memory bound on bodies the seeds do not reach: the largest body the harness takes, of the
/// smallest records (empty ones, 3 bytes each) and of tiny values, to a topic and to a partition.
#[test]
fn bodies_of_tiny_records_stay_within_the_memory_bound() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let mut h = Harness::new();
    let max = http_harness::BODY_BYTES_MAX - 64;
    for (route, record) in [(1u8, "{}"), (1, r#"{"value":1}"#), (3, r#"{"value":1}"#), (0, r#"{"value":"AA=="}"#)] {
        let mut input = vec![route];
        input.extend_from_slice(br#"{"records":["#);
        while input.len() + record.len() + 3 < max {
            input.extend_from_slice(record.as_bytes());
            input.push(b',');
        }
        input.extend_from_slice(record.as_bytes());
        input.extend_from_slice(b"]}");
        let status = h.run(&input);
        assert_eq!(status, 200, "{}", &h.last_body[..h.last_body.len().min(300)]);
    }
    h.reopen_check();
}
