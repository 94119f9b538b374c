//! A view's keys and their entries, and which of them changed since the last checkpoint (the
//! keys an incremental checkpoint writes, `delta.rs`).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::Bound;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::state::Entry;
use super::state_size as size;

/// An entry and the checkpoint epoch in which it last changed.
#[derive(Debug, Clone)]
struct Slot {
    entry: Entry,
    epoch: u64,
}

/// Keys to entries: a hash map for the lookup every record does, and the ordered set of keys for
/// prefix scans and deterministic checkpoints. (With a `BTreeMap` alone, every lookup is a chain
/// of key comparisons.) Each key is held twice. The map hashes with aHash under random keys
/// (cheaper than SipHash on short keys; random keys keep collisions unplannable).
///
/// Changes are tracked for incremental checkpoints: every key inserted, handed out mutably or
/// removed during the current epoch is listed once in `dirty` (a key whose slot already carries
/// the current epoch is not listed again, so a key updated by many records costs one entry, and
/// nothing is allocated per record). [`take_dirty`](Self::take_dirty) ends the epoch.
#[derive(Debug, Clone)]
pub(crate) struct Entries {
    map: HashMap<String, Slot, ahash::RandomState>,
    order: BTreeSet<String>,
    /// The estimated memory of the keys and of the entries as inserted (`state_size.rs`).
    bytes: usize,
    /// The current epoch (starts at 1; slots loaded from a checkpoint carry 0: unchanged).
    epoch: u64,
    /// Keys changed or removed during the current epoch (a key removed and inserted again may
    /// appear twice).
    dirty: Vec<String>,
}

impl Default for Entries {
    fn default() -> Self {
        Entries {
            map: HashMap::with_hasher(crate::hash::random_state()),
            order: BTreeSet::new(),
            bytes: 0,
            epoch: 1,
            dirty: Vec::new(),
        }
    }
}

impl PartialEq for Entries {
    fn eq(&self, other: &Self) -> bool {
        self.map.len() == other.map.len()
            && self.map.iter().all(|(k, s)| other.map.get(k).is_some_and(|o| o.entry == s.entry))
    }
}

impl Entries {
    pub(crate) fn get(&self, key: &str) -> Option<&Entry> {
        self.map.get(key).map(|s| &s.entry)
    }
    /// The entry of `key`, to change: the key counts as changed.
    pub(crate) fn get_mut(&mut self, key: &str) -> Option<&mut Entry> {
        let slot = self.map.get_mut(key)?;
        if slot.epoch != self.epoch {
            slot.epoch = self.epoch;
            self.dirty.push(key.to_owned());
        }
        Some(&mut slot.entry)
    }
    #[cfg(test)]
    pub(crate) fn contains_key(&self, key: &str) -> bool {
        self.map.contains_key(key)
    }
    pub(crate) fn insert(&mut self, key: String, entry: Entry) {
        self.bytes += size::entry_bytes(&entry);
        let epoch = self.epoch;
        match self.map.get_mut(&key) {
            Some(slot) => {
                let old = std::mem::replace(&mut slot.entry, entry);
                self.bytes = self.bytes.saturating_sub(size::entry_bytes(&old));
                if slot.epoch != epoch {
                    slot.epoch = epoch;
                    self.dirty.push(key);
                }
            }
            None => {
                self.bytes += size::key_bytes(&key);
                self.order.insert(key.clone());
                self.dirty.push(key.clone());
                self.map.insert(key, Slot { entry, epoch });
            }
        }
    }
    pub(crate) fn remove(&mut self, key: &str) -> Option<Entry> {
        let (key, slot) = self.map.remove_entry(key)?;
        self.order.remove(&key);
        self.bytes = self.bytes.saturating_sub(size::key_bytes(&key) + size::entry_bytes(&slot.entry));
        if slot.epoch != self.epoch {
            self.dirty.push(key);
        }
        Some(slot.entry)
    }
    /// The estimated memory of the keys and entries (entries as they were inserted).
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }
    /// The entry of `key`, inserting `make()` first when absent (the key string is allocated only then).
    pub(crate) fn get_or_insert_with(&mut self, key: &str, make: impl FnOnce() -> Entry) -> &mut Entry {
        if !self.map.contains_key(key) {
            self.insert(key.to_string(), make());
        }
        self.get_mut(key).expect("present or inserted above")
    }
    /// Inserts an absent key and returns its entry.
    pub(crate) fn insert_new(&mut self, key: String, entry: Entry) -> &mut Entry {
        self.bytes += size::key_bytes(&key) + size::entry_bytes(&entry);
        self.order.insert(key.clone());
        self.dirty.push(key.clone());
        &mut self.map.entry(key).or_insert(Slot { entry, epoch: self.epoch }).entry
    }
    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }
    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
    /// Entries in key order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&String, &Entry)> {
        self.order.iter().map(|k| (k, &self.map[k].entry))
    }
    /// Entries in key order from `from` on.
    pub(crate) fn iter_from<'a>(&'a self, from: &str) -> impl Iterator<Item = (&'a String, &'a Entry)> {
        self.order.range::<str, _>((Bound::Included(from), Bound::Unbounded)).map(|k| (k, &self.map[k].entry))
    }
    /// Ends the epoch: the keys changed or removed since the last call (or since the entries were
    /// loaded), sorted, each once. Look each up to tell a change from a removal.
    pub(crate) fn take_dirty(&mut self) -> Vec<String> {
        self.epoch += 1;
        let mut keys = std::mem::take(&mut self.dirty);
        keys.sort_unstable();
        keys.dedup();
        keys
    }
    /// How many keys changed since the last [`take_dirty`](Self::take_dirty) (an upper bound:
    /// a key removed and inserted again counts twice).
    #[cfg(test)]
    pub(crate) fn dirty_len(&self) -> usize {
        self.dirty.len()
    }
}

impl Serialize for Entries {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.iter())
    }
}

impl<'de> Deserialize<'de> for Entries {
    /// Loaded entries are unchanged (epoch 0): the checkpoint they come from holds them.
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Entries, D::Error> {
        let sorted = BTreeMap::<String, Entry>::deserialize(d)?;
        let order = sorted.keys().cloned().collect();
        let mut entries = Entries { order, ..Entries::default() };
        entries.bytes = sorted.iter().map(|(k, e)| size::key_bytes(k) + size::entry_bytes(e)).sum();
        entries.map.extend(sorted.into_iter().map(|(k, entry)| (k, Slot { entry, epoch: 0 })));
        Ok(entries)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_kind_of_change_is_listed_once_per_epoch() {
        let mut e = Entries::default();
        let v = |n: i64| Entry::Value(json!(n));
        e.insert("a".into(), v(1));
        e.insert("b".into(), v(2));
        e.insert("a".into(), v(3));
        assert_eq!(e.take_dirty(), ["a", "b"]);
        assert_eq!(e.take_dirty(), Vec::<String>::new());
        *e.get_mut("a").unwrap() = v(4);
        *e.get_mut("a").unwrap() = v(5);
        e.get_or_insert_with("c", || v(6));
        e.remove("b");
        e.insert_new("d".into(), v(7));
        e.remove("d");
        e.insert("d".into(), v(8));
        assert_eq!(e.dirty_len(), 5, "d listed when new and again when inserted after its removal");
        assert_eq!(e.take_dirty(), ["a", "b", "c", "d"]);
        assert_eq!(e.get("a"), Some(&v(5)));
        assert_eq!(e.get("b"), None);
        let back: Entries = serde_json::from_value(serde_json::to_value(&e).unwrap()).unwrap();
        assert_eq!(back, e);
        let mut back = back;
        assert!(back.take_dirty().is_empty(), "loaded entries are unchanged");
        back.remove("a");
        assert_eq!(back.take_dirty(), ["a"]);
    }
}
