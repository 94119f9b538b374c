//! Estimates of what a view's state takes in memory, for `state_bytes` in the status and
//! `/metrics` and for `state.memory_bytes_max`. An estimate, not an allocator's count: the text of
//! keys and values plus fixed costs per key, entry, window and index entry, sized after the
//! structures that hold them (a key is held by the hash map and by the ordered set of keys, a
//! window by its key's map and by the index of windows by end).

use std::mem::size_of;

use serde_json::Value;

use super::aggregate::{Accumulator, Aggregates};
use super::state::{Entry, Window};

/// A key besides its text (held twice): two string headers, a hash slot, a B-tree share.
const KEY_OVERHEAD_BYTES: usize = 2 * size_of::<String>() + 48;
/// A window besides its aggregates: its map slot and its index entry (with its key's text).
const WINDOW_OVERHEAD_BYTES: usize = size_of::<Window>() + 16 + size_of::<(i64, String, i64)>() + 32;

pub(crate) fn key_bytes(key: &str) -> usize {
    KEY_OVERHEAD_BYTES + 2 * key.len()
}

/// An entry as held in the map; a key's windows are counted one by one ([`window_bytes`]).
pub(crate) fn entry_bytes(e: &Entry) -> usize {
    size_of::<Entry>()
        + match e {
            Entry::Value(v) | Entry::Latest { value: v, .. } => value_bytes(v),
            Entry::Aggregates(a) => aggregates_bytes(a),
            Entry::Windows(_) => 0,
        }
}

pub(crate) fn window_bytes(key: &str, w: &Window) -> usize {
    WINDOW_OVERHEAD_BYTES + key.len() + aggregates_bytes(&w.aggregates)
}

fn aggregates_bytes(a: &Aggregates) -> usize {
    a.0.iter()
        .map(|acc| {
            size_of::<Accumulator>()
                + match acc {
                    Accumulator::Latest(Some((v, _))) => value_bytes(v),
                    _ => 0,
                }
        })
        .sum()
}

/// The heap a JSON value holds beyond its own `Value`.
pub(crate) fn value_bytes(v: &Value) -> usize {
    match v {
        Value::String(s) => s.len(),
        Value::Array(items) => items.iter().map(|i| size_of::<Value>() + value_bytes(i)).sum(),
        Value::Object(map) => {
            map.iter().map(|(k, i)| size_of::<String>() + k.len() + size_of::<Value>() + 16 + value_bytes(i)).sum()
        }
        _ => 0,
    }
}
