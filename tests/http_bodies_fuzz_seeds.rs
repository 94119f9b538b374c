//! The `http_bodies` fuzz target's property over its seed corpus and every truncation and single
//! byte change of each seed (a cheap stand-in for `cargo fuzz run http_bodies` in `cargo test`):
//! the router never panics or answers 5xx, error bodies are Confluent-shaped, the seeds (valid
//! bodies) succeed except `seed-rejected-*`, and the data directory opens again afterwards.

#[path = "../fuzz/fuzz_targets/http_harness.rs"]
mod http_harness;

use http_harness::Harness;

/// Replacement bytes tried at every position of every seed.
const MUTATIONS: &[u8] = &[b'0', b'"', b'{', b'-', 0xff];

#[test]
fn http_bodies_seeds_and_their_mutations() {
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
