//! Key expiry (`state.ttl_ms`, see `state_spec.rs`): the event time of each key's last record,
//! indexed by time, checkpointed with the state (as a map of key to time; the index is rebuilt on
//! load).

use std::collections::{BTreeSet, HashMap};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::state::State;
use super::time;

/// Keys by the event time of their last record. Like [`Entries`](super::state::Entries), it lists
/// the keys whose time changed or that were removed since the last checkpoint (`take_dirty`).
#[derive(Debug, Clone)]
pub(crate) struct TtlIndex {
    /// Each key's time and the checkpoint epoch in which it last changed.
    last: HashMap<String, (i64, u64), ahash::RandomState>,
    by_time: BTreeSet<(i64, String)>,
    key_bytes: usize,
    epoch: u64,
    dirty: Vec<String>,
}

impl Default for TtlIndex {
    fn default() -> Self {
        TtlIndex {
            last: HashMap::with_hasher(crate::hash::random_state()),
            by_time: BTreeSet::new(),
            key_bytes: 0,
            epoch: 1,
            dirty: Vec::new(),
        }
    }
}

impl PartialEq for TtlIndex {
    fn eq(&self, other: &Self) -> bool {
        self.last.len() == other.last.len()
            && self.last.iter().all(|(k, (t, _))| other.last.get(k).is_some_and(|(o, _)| o == t))
    }
}

/// Bytes of one key in the index besides its text (held twice): two string headers, the time,
/// a hash slot and a B-tree share.
const TTL_KEY_BYTES: usize = 112;

impl TtlIndex {
    pub(crate) fn is_empty(&self) -> bool {
        self.last.is_empty()
    }

    /// `key` had a record at event time `t`.
    pub(crate) fn touch(&mut self, key: &str, t: i64) {
        match self.last.get(key) {
            Some(&(old, _)) if old >= t => {}
            _ => self.set(key, t),
        }
    }

    /// Sets the time of `key` to `t` (as a checkpoint holds it).
    pub(crate) fn set(&mut self, key: &str, t: i64) {
        let epoch = self.epoch;
        match self.last.get_mut(key) {
            Some((old, _)) if *old == t => {}
            Some((old, e)) => {
                self.by_time.remove(&(*old, key.to_string()));
                *old = t;
                self.by_time.insert((t, key.to_string()));
                if *e != epoch {
                    *e = epoch;
                    self.dirty.push(key.to_string());
                }
            }
            None => {
                self.last.insert(key.to_string(), (t, epoch));
                self.by_time.insert((t, key.to_string()));
                self.key_bytes += TTL_KEY_BYTES + 2 * key.len();
                self.dirty.push(key.to_string());
            }
        }
    }

    /// Forgets `key` (deleted by a tombstone).
    pub(crate) fn remove(&mut self, key: &str) {
        if let Some((key, (t, e))) = self.last.remove_entry(key) {
            self.by_time.remove(&(t, key.clone()));
            self.key_bytes -= TTL_KEY_BYTES + 2 * key.len();
            if e != self.epoch {
                self.dirty.push(key);
            }
        }
    }

    /// The time of `key`'s last record.
    pub(crate) fn get(&self, key: &str) -> Option<i64> {
        self.last.get(key).map(|&(t, _)| t)
    }

    /// Removes and returns the keys whose last record is at or before `t`, oldest first.
    fn expire(&mut self, t: i64) -> Vec<String> {
        let mut out = Vec::new();
        while self.by_time.first().is_some_and(|(last, _)| *last <= t) {
            let (_, key) = self.by_time.pop_first().expect("checked above");
            let (_, e) = self.last.remove(&key).expect("indexed keys are in the map");
            self.key_bytes -= TTL_KEY_BYTES + 2 * key.len();
            if e != self.epoch {
                self.dirty.push(key.clone());
            }
            out.push(key);
        }
        out
    }

    /// Ends the epoch: the keys whose time changed or that were removed since the last call,
    /// sorted, each once.
    pub(crate) fn take_dirty(&mut self) -> Vec<String> {
        self.epoch += 1;
        let mut keys = std::mem::take(&mut self.dirty);
        keys.sort_unstable();
        keys.dedup();
        keys
    }

    /// The estimated memory of the index.
    pub(crate) fn bytes(&self) -> usize {
        self.key_bytes
    }
}

impl Serialize for TtlIndex {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.by_time.iter().map(|(t, k)| (k, t)))
    }
}

impl<'de> Deserialize<'de> for TtlIndex {
    /// A loaded index is unchanged: the checkpoint it comes from holds it.
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<TtlIndex, D::Error> {
        let map = HashMap::<String, i64>::deserialize(d)?;
        let mut index = TtlIndex::default();
        for (k, t) in map {
            index.touch(&k, t);
        }
        index.take_dirty();
        Ok(index)
    }
}

/// After a record at event time `t` from source `slot` of a view with `ttl_ms`: raises the
/// partition's watermark and the view's as the partitions allow, and drops the keys not updated
/// for `ttl_ms` before it. Returns the keys dropped.
pub(crate) fn observe(st: &mut State, slot: usize, t: i64, ttl_ms: i64) -> Vec<String> {
    if let Some(source) = st.snap.offsets.get_mut(slot) {
        if source.event_time_max.is_none_or(|m| m < t) {
            source.event_time_max = Some(t);
        }
    }
    refresh(st, ttl_ms)
}

/// Moves the view's watermark as the partitions allow (after they became idle or active) and
/// drops the keys it expires. Returns the keys dropped.
pub(crate) fn refresh(st: &mut State, ttl_ms: i64) -> Vec<String> {
    let Some(allowed) = time::allowed_watermark(&st.snap.offsets) else { return Vec::new() };
    if st.snap.watermark.is_none_or(|wm| wm < allowed) {
        st.snap.watermark = Some(allowed);
    }
    let Some(wm) = st.snap.watermark else { return Vec::new() };
    let expired = st.snap.ttl.expire(wm.saturating_sub(ttl_ms));
    for key in &expired {
        st.snap.entries.remove(key);
        st.snap.counters.keys_expired += 1;
    }
    expired
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_expire_oldest_first_and_the_index_round_trips() {
        let mut ix = TtlIndex::default();
        ix.touch("a", 10);
        ix.touch("b", 5);
        ix.touch("a", 3);
        ix.touch("c", 20);
        ix.remove("c");
        assert!(ix.bytes() > 0);
        let json = serde_json::to_string(&ix).unwrap();
        let back: TtlIndex = serde_json::from_str(&json).unwrap();
        assert_eq!(back, ix);
        assert_eq!(back.bytes(), ix.bytes());
        let mut back = back;
        assert!(back.take_dirty().is_empty(), "a loaded index is unchanged");
        back.touch("a", 11);
        back.touch("b", 1);
        back.set("z", 1);
        back.remove("z");
        assert_eq!(back.take_dirty(), ["a", "z"], "b's time did not change");
        assert_eq!(ix.expire(4), Vec::<String>::new());
        assert_eq!(ix.expire(10), vec!["b".to_string(), "a".to_string()]);
        assert!(ix.is_empty());
        assert_eq!(ix.bytes(), 0);
    }
}
