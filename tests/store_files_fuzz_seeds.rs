//! The `store_files` fuzz target's property over its seed corpus, a few truncations of each seed,
//! and single byte changes spread over it (a cheap stand-in for `cargo fuzz run store_files` in
//! `cargo test`): whatever `log-start-offset`, `cleaner-checkpoint`, `cleaner.swap`, a view's
//! `view.json` or checkpoint, or the broker's config file hold (raw, or framed with a valid
//! checksum so that the content behind it is parsed), the store and its views open, serve, take
//! appends and clean, or fail with an error: never a panic. The seeds themselves (real files) open
//! and are served, which shows that inputs reach the views.

#[path = "../fuzz/fuzz_targets/store_files_harness.rs"]
mod store_files_harness;

use store_files_harness::Reached;

/// Replacement bytes tried at each chosen position.
const MUTATIONS: &[u8] = &[b'0', b'"', b'}', 0xff];
/// Positions changed per seed (spread evenly), and truncations per seed.
const POSITIONS: usize = 12;
const TRUNCATIONS: usize = 6;

#[test]
fn store_files_seeds_and_their_mutations() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/store_files");
    let mut seeds: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .map(|p| (p.file_name().unwrap().to_string_lossy().into_owned(), std::fs::read(&p).unwrap()))
        .collect();
    seeds.sort();
    let files: std::collections::BTreeSet<u8> = seeds.iter().map(|(_, s)| s[0] & 7).collect();
    assert_eq!(files.len(), 8, "a seed for every file the harness picks, in {}", dir.display());
    let mut runs = 0;
    for (name, seed) in &seeds {
        let reached = store_files_harness::run(seed);
        eprintln!("{name}: {reached:?}");
        let expected = if seed[0] & 7 == 6 { Reached::Config } else { Reached::Served };
        assert_eq!(reached, expected, "{name}: an intact file opens and is served");
        for k in 1..=TRUNCATIONS {
            store_files_harness::run(&seed[..seed.len() * k / (TRUNCATIONS + 1)]);
        }
        for k in 0..POSITIONS {
            let at = 1 + (seed.len() - 1) * k / POSITIONS;
            for &m in MUTATIONS {
                let mut changed = seed.clone();
                changed[at] = m;
                store_files_harness::run(&changed);
                runs += 1;
            }
        }
        runs += 1 + TRUNCATIONS;
    }
    eprintln!("{runs} inputs");
}
