//! The declarative view spec parser (what `POST /views` receives): any bytes parse into a
//! validated `ViewSpec` or fail with an `InvalidSpec` error naming a field, never a panic; a parsed
//! spec passes its own check, and serializing it gives a spec that parses to the same JSON.
#![no_main]

use kappalog::stream::{ViewError, ViewSpec};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match ViewSpec::from_json(data) {
        Ok(spec) => {
            spec.check().expect("a parsed spec passes its own check");
            let _ = spec.is_windowed();
            let json = serde_json::to_vec(&spec).expect("a spec serializes");
            let again = ViewSpec::from_json(&json).expect("a serialized spec parses again");
            assert_eq!(serde_json::to_vec(&again).unwrap(), json, "serializing is stable");
        }
        Err(ViewError::InvalidSpec { field, reason }) => {
            assert!(!field.is_empty() && !reason.is_empty());
        }
        Err(e) => panic!("from_json returned another error than InvalidSpec: {e}"),
    }
});
