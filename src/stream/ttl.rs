//! Key expiry (`state.ttl_ms`, see `state_spec.rs`): the event time of each key's last record,
//! indexed by time, checkpointed with the state (as a map of key to time; the index is rebuilt on
//! load).

use std::collections::{BTreeSet, HashMap};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::state::State;
use super::time;

/// Keys by the event time of their last record.
#[derive(Debug, Clone)]
pub(crate) struct TtlIndex {
    last: HashMap<String, i64, ahash::RandomState>,
    by_time: BTreeSet<(i64, String)>,
    key_bytes: usize,
}

impl Default for TtlIndex {
    fn default() -> Self {
        TtlIndex { last: HashMap::with_hasher(crate::hash::random_state()), by_time: BTreeSet::new(), key_bytes: 0 }
    }
}

impl PartialEq for TtlIndex {
    fn eq(&self, other: &Self) -> bool {
        self.last == other.last
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
        match self.last.get_mut(key) {
            Some(old) if *old >= t => {}
            Some(old) => {
                self.by_time.remove(&(*old, key.to_string()));
                *old = t;
                self.by_time.insert((t, key.to_string()));
            }
            None => {
                self.last.insert(key.to_string(), t);
                self.by_time.insert((t, key.to_string()));
                self.key_bytes += TTL_KEY_BYTES + 2 * key.len();
            }
        }
    }

    /// Forgets `key` (deleted by a tombstone).
    pub(crate) fn remove(&mut self, key: &str) {
        if let Some(t) = self.last.remove(key) {
            self.by_time.remove(&(t, key.to_string()));
            self.key_bytes -= TTL_KEY_BYTES + 2 * key.len();
        }
    }

    /// Removes and returns the keys whose last record is at or before `t`, oldest first.
    fn expire(&mut self, t: i64) -> Vec<String> {
        let mut out = Vec::new();
        while self.by_time.first().is_some_and(|(last, _)| *last <= t) {
            let (_, key) = self.by_time.pop_first().expect("checked above");
            self.last.remove(&key);
            self.key_bytes -= TTL_KEY_BYTES + 2 * key.len();
            out.push(key);
        }
        out
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
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<TtlIndex, D::Error> {
        let map = HashMap::<String, i64>::deserialize(d)?;
        let mut index = TtlIndex::default();
        for (k, t) in map {
            index.touch(&k, t);
        }
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
        assert_eq!(ix.expire(4), Vec::<String>::new());
        assert_eq!(ix.expire(10), vec!["b".to_string(), "a".to_string()]);
        assert!(ix.is_empty());
        assert_eq!(ix.bytes(), 0);
    }
}
