//! A view's keys and their entries, and which of them changed since the last checkpoint (the
//! keys an incremental checkpoint writes, `delta.rs`).
//!
//! The keys are split into shards by a hash of the key (as Kafka Streams' tasks and Flink's key
//! groups): a view whose records are applied by several threads gives each thread one shard to
//! own (`stream/shards.rs`). A view applied by one thread has one shard.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, HashMap};
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

/// Keys to entries, split into [`Shard`]s by a hash of the key. Iteration is in key order
/// across the shards (a merge of their ordered keys).
#[derive(Debug, Clone)]
pub(crate) struct Entries {
    shards: Vec<Shard>,
    router: Router,
}

/// Which shard a key belongs to: a hash of the key (aHash under random keys) over the shards.
#[derive(Debug, Clone)]
pub(crate) struct Router {
    hasher: ahash::RandomState,
    shards: usize,
}

impl Router {
    pub(crate) fn shard_of(&self, key: &str) -> usize {
        if self.shards == 1 {
            return 0;
        }
        ((self.hasher.hash_one(key) as u128 * self.shards as u128) >> 64) as usize
    }
}

/// The keys of one shard: a hash map for the lookup every record does, and the ordered set of
/// keys for prefix scans and deterministic checkpoints. (With a `BTreeMap` alone, every lookup is
/// a chain of key comparisons.) Each key is held twice. The map hashes with aHash under random
/// keys (cheaper than SipHash on short keys; random keys keep collisions unplannable).
///
/// Changes are tracked for incremental checkpoints: every key inserted, handed out mutably or
/// removed during the current epoch is listed once in `dirty` (a key whose slot already carries
/// the current epoch is not listed again, so a key updated by many records costs one entry, and
/// nothing is allocated per record). [`Entries::take_dirty`] ends the epoch of every shard.
#[derive(Debug, Clone)]
pub(crate) struct Shard {
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

impl Default for Shard {
    fn default() -> Self {
        Shard {
            map: HashMap::with_hasher(crate::hash::random_state()),
            order: BTreeSet::new(),
            bytes: 0,
            epoch: 1,
            dirty: Vec::new(),
        }
    }
}

impl Default for Entries {
    fn default() -> Self {
        Entries { shards: vec![Shard::default()], router: Router { hasher: crate::hash::random_state(), shards: 1 } }
    }
}

impl PartialEq for Entries {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len()
            && self.shards.iter().flat_map(|s| s.map.iter()).all(|(k, s)| other.get(k) == Some(&s.entry))
    }
}

impl Shard {
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
    fn insert(&mut self, key: String, entry: Entry) {
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
    fn remove(&mut self, key: &str) -> Option<Entry> {
        let (key, slot) = self.map.remove_entry(key)?;
        self.order.remove(&key);
        self.bytes = self.bytes.saturating_sub(size::key_bytes(&key) + size::entry_bytes(&slot.entry));
        if slot.epoch != self.epoch {
            self.dirty.push(key);
        }
        Some(slot.entry)
    }
    /// Inserts an absent key and returns its entry.
    pub(crate) fn insert_new(&mut self, key: String, entry: Entry) -> &mut Entry {
        self.bytes += size::key_bytes(&key) + size::entry_bytes(&entry);
        self.order.insert(key.clone());
        self.dirty.push(key.clone());
        &mut self.map.entry(key).or_insert(Slot { entry, epoch: self.epoch }).entry
    }
}

/// The items of sorted, disjoint `lists` in order, each with the index of its list.
fn merged<'a, I: Iterator<Item = &'a String>>(mut lists: Vec<I>) -> impl Iterator<Item = (usize, &'a String)> {
    let mut heads = BinaryHeap::with_capacity(lists.len());
    for (i, list) in lists.iter_mut().enumerate() {
        if let Some(k) = list.next() {
            heads.push(Reverse((k, i)));
        }
    }
    std::iter::from_fn(move || {
        let Reverse((k, i)) = heads.pop()?;
        if let Some(next) = lists[i].next() {
            heads.push(Reverse((next, i)));
        }
        Some((i, k))
    })
}

impl Entries {
    fn shard(&self, key: &str) -> &Shard {
        &self.shards[self.router.shard_of(key)]
    }
    fn shard_mut(&mut self, key: &str) -> &mut Shard {
        let i = self.router.shard_of(key);
        &mut self.shards[i]
    }
    /// Which shard each key belongs to.
    pub(crate) fn router(&self) -> &Router {
        &self.router
    }
    /// The shards, in [`Router::shard_of`]'s numbering: each may be changed by a thread of its own.
    pub(crate) fn shards_mut(&mut self) -> &mut [Shard] {
        &mut self.shards
    }
    /// The number of shards.
    #[cfg(test)]
    pub(crate) fn shard_count(&self) -> usize {
        self.shards.len()
    }
    /// Splits the keys over `count` shards (at least one), keeping what changed in this epoch.
    pub(crate) fn reshard(&mut self, count: usize) {
        let count = count.max(1);
        if count == self.shards.len() {
            return;
        }
        let epoch = self.shards[0].epoch;
        let old = std::mem::take(&mut self.shards);
        self.router.shards = count;
        self.shards = (0..count).map(|_| Shard { epoch, ..Shard::default() }).collect();
        for s in old {
            for key in s.dirty {
                let i = self.router.shard_of(&key);
                self.shards[i].dirty.push(key);
            }
            for (key, slot) in s.map {
                let shard = &mut self.shards[self.router.shard_of(&key)];
                shard.bytes += size::key_bytes(&key) + size::entry_bytes(&slot.entry);
                shard.order.insert(key.clone());
                shard.map.insert(key, slot);
            }
        }
    }
    pub(crate) fn get(&self, key: &str) -> Option<&Entry> {
        self.shard(key).get(key)
    }
    /// The entry of `key`, to change: the key counts as changed.
    pub(crate) fn get_mut(&mut self, key: &str) -> Option<&mut Entry> {
        self.shard_mut(key).get_mut(key)
    }
    #[cfg(test)]
    pub(crate) fn contains_key(&self, key: &str) -> bool {
        self.shard(key).map.contains_key(key)
    }
    pub(crate) fn insert(&mut self, key: String, entry: Entry) {
        self.shard_mut(&key).insert(key, entry)
    }
    pub(crate) fn remove(&mut self, key: &str) -> Option<Entry> {
        self.shard_mut(key).remove(key)
    }
    /// The estimated memory of the keys and entries (entries as they were inserted).
    pub(crate) fn bytes(&self) -> usize {
        self.shards.iter().map(|s| s.bytes).sum()
    }
    /// The entry of `key`, inserting `make()` first when absent (the key string is allocated only then).
    pub(crate) fn get_or_insert_with(&mut self, key: &str, make: impl FnOnce() -> Entry) -> &mut Entry {
        let shard = self.shard_mut(key);
        if !shard.map.contains_key(key) {
            shard.insert(key.to_string(), make());
        }
        shard.get_mut(key).expect("present or inserted above")
    }
    /// Inserts an absent key and returns its entry.
    pub(crate) fn insert_new(&mut self, key: String, entry: Entry) -> &mut Entry {
        self.shard_mut(&key).insert_new(key, entry)
    }
    pub(crate) fn len(&self) -> usize {
        self.shards.iter().map(|s| s.map.len()).sum()
    }
    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Entries in key order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&String, &Entry)> {
        merged(self.shards.iter().map(|s| s.order.iter()).collect()).map(|(i, k)| (k, &self.shards[i].map[k].entry))
    }
    /// Entries in key order from `from` on.
    pub(crate) fn iter_from<'a>(&'a self, from: &str) -> impl Iterator<Item = (&'a String, &'a Entry)> {
        let ranges = self.shards.iter().map(|s| s.order.range::<str, _>((Bound::Included(from), Bound::Unbounded)));
        merged(ranges.collect()).map(|(i, k)| (k, &self.shards[i].map[k].entry))
    }
    /// Ends the epoch: the keys changed or removed since the last call (or since the entries were
    /// loaded), sorted, each once. Look each up to tell a change from a removal.
    pub(crate) fn take_dirty(&mut self) -> Vec<String> {
        let mut keys = Vec::with_capacity(self.shards.iter().map(|s| s.dirty.len()).sum());
        for s in &mut self.shards {
            s.epoch += 1;
            keys.append(&mut s.dirty);
        }
        keys.sort_unstable();
        keys.dedup();
        keys
    }
    /// How many keys changed since the last [`take_dirty`](Self::take_dirty) (an upper bound:
    /// a key removed and inserted again counts twice).
    #[cfg(test)]
    pub(crate) fn dirty_len(&self) -> usize {
        self.shards.iter().map(|s| s.dirty.len()).sum()
    }
}

impl Serialize for Entries {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.iter())
    }
}

impl<'de> Deserialize<'de> for Entries {
    /// Loaded entries are unchanged (epoch 0): the checkpoint they come from holds them. They
    /// are in one shard (see [`Entries::reshard`]).
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Entries, D::Error> {
        let sorted = BTreeMap::<String, Entry>::deserialize(d)?;
        let mut entries = Entries::default();
        let shard = &mut entries.shards[0];
        shard.order = sorted.keys().cloned().collect();
        shard.bytes = sorted.iter().map(|(k, e)| size::key_bytes(k) + size::entry_bytes(e)).sum();
        shard.map.extend(sorted.into_iter().map(|(k, entry)| (k, Slot { entry, epoch: 0 })));
        Ok(entries)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_kind_of_change_is_listed_once_per_epoch() {
        for shards in [1, 3] {
            let mut e = Entries::default();
            e.reshard(shards);
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

    #[test]
    fn resharding_keeps_keys_order_bytes_and_changes() {
        let mut e = Entries::default();
        for i in 0..500 {
            e.insert(format!("k{i:03}"), Entry::Value(json!(i)));
        }
        e.take_dirty();
        for i in (0..500).step_by(7) {
            *e.get_mut(&format!("k{i:03}")).unwrap() = Entry::Value(json!(-1));
        }
        let (keys, bytes) = (e.iter().map(|(k, v)| (k.clone(), v.clone())).collect::<Vec<_>>(), e.bytes());
        let mut before = e.clone();
        for shards in [4, 1, 7] {
            e.reshard(shards);
            assert_eq!(e.shard_count(), shards);
            assert_eq!(e.iter().map(|(k, v)| (k.clone(), v.clone())).collect::<Vec<_>>(), keys, "{shards} shards");
            assert_eq!(e.bytes(), bytes);
            assert_eq!(e, before);
            let from: Vec<&String> = e.iter_from("k250").map(|(k, _)| k).collect();
            assert_eq!(from.len(), 250);
            assert_eq!(from[0], "k250");
            for (i, s) in e.shards.iter().enumerate() {
                assert!(s.map.keys().all(|k| e.router.shard_of(k) == i), "a key in a shard not its own");
            }
        }
        let dirty: Vec<String> = (0..500).step_by(7).map(|i| format!("k{i:03}")).collect();
        assert_eq!(e.take_dirty(), dirty);
        assert_eq!(before.take_dirty(), dirty);
    }
}
