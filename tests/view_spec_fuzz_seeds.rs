//! The `view_spec` fuzz target's property over its seed corpus and every truncation and single
//! byte change of each seed (a cheap stand-in for `cargo fuzz run view_spec` in `cargo test`): the
//! seeds parse; nothing panics; a parsed spec re-serializes stably; failures name a field.

use kappalog::stream::{ViewError, ViewSpec};

fn property(data: &[u8]) -> bool {
    match ViewSpec::from_json(data) {
        Ok(spec) => {
            spec.check().expect("a parsed spec passes its own check");
            let json = serde_json::to_vec(&spec).expect("a spec serializes");
            let again = ViewSpec::from_json(&json).expect("a serialized spec parses again");
            assert_eq!(serde_json::to_vec(&again).unwrap(), json, "serializing is stable");
            true
        }
        Err(ViewError::InvalidSpec { field, reason }) => {
            assert!(
                !field.is_empty() && !reason.is_empty(),
                "field {field:?} reason {reason:?} for {:?}",
                String::from_utf8_lossy(data)
            );
            false
        }
        Err(e) => panic!("from_json returned another error than InvalidSpec: {e}"),
    }
}

#[test]
fn view_spec_seeds_and_their_mutations() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/view_spec");
    let mut seeds = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let seed = std::fs::read(&path).unwrap();
        assert!(property(&seed), "seed {} does not parse", path.display());
        seeds += 1;
        for cut in 0..seed.len() {
            property(&seed[..cut]);
        }
        for i in 0..seed.len() {
            for b in [b'0', b'"', b'{', b']', b'-', 0xff] {
                let mut m = seed.clone();
                m[i] = b;
                property(&m);
            }
        }
    }
    assert!(seeds >= 3, "expected at least 3 seeds in {}", dir.display());
}
