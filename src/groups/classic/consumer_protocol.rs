//! The bytes Kafka consumers (protocol type `consumer`) put in their JoinGroup metadata and the
//! leader in SyncGroup: `ConsumerProtocolSubscription` and `ConsumerProtocolAssignment`, big-endian,
//! never flexible. Only what `describe` needs is read; every count is checked against the bytes left.

use std::collections::BTreeSet;

use crate::groups::TopicPartition;

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }
    fn i16(&mut self) -> Option<i16> {
        Some(i16::from_be_bytes(self.take(2)?.try_into().ok()?))
    }
    fn i32(&mut self) -> Option<i32> {
        Some(i32::from_be_bytes(self.take(4)?.try_into().ok()?))
    }
    /// An array count: at most what the bytes left can hold at `min_size` bytes per element.
    fn count(&mut self, min_size: usize) -> Option<usize> {
        let n = usize::try_from(self.i32()?).ok()?;
        (n.checked_mul(min_size)? <= self.0.len()).then_some(n)
    }
    fn string(&mut self) -> Option<String> {
        let n = usize::try_from(self.i16()?).ok()?;
        String::from_utf8(self.take(n)?.to_vec()).ok()
    }
}

/// The topics of a consumer's subscription, sorted; `None` when the bytes are not one.
pub fn decode_subscription(metadata: &[u8]) -> Option<Vec<String>> {
    let mut r = Reader(metadata);
    if r.i16()? < 0 {
        return None;
    }
    let n = r.count(2)?;
    let mut topics = BTreeSet::new();
    for _ in 0..n {
        topics.insert(r.string()?);
    }
    Some(topics.into_iter().collect())
}

/// The partitions of a consumer's assignment, sorted; `None` when the bytes are not one (an
/// empty assignment, as a member without partitions gets, is `Some(vec![])`).
pub fn decode_assignment(assignment: &[u8]) -> Option<Vec<TopicPartition>> {
    if assignment.is_empty() {
        return Some(Vec::new());
    }
    let mut r = Reader(assignment);
    if r.i16()? < 0 {
        return None;
    }
    let n = r.count(2 + 4)?;
    let mut out = BTreeSet::new();
    for _ in 0..n {
        let topic = r.string()?;
        let parts = r.count(4)?;
        for _ in 0..parts {
            out.insert(TopicPartition::new(topic.clone(), u32::try_from(r.i32()?).ok()?));
        }
    }
    Some(out.into_iter().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn subscription(topics: &[&str]) -> Vec<u8> {
        let mut b = vec![0, 1];
        b.extend_from_slice(&(topics.len() as i32).to_be_bytes());
        for t in topics {
            b.extend_from_slice(&(t.len() as i16).to_be_bytes());
            b.extend_from_slice(t.as_bytes());
        }
        b.extend_from_slice(&(-1i32).to_be_bytes()); // user data: null
        b.extend_from_slice(&0i32.to_be_bytes()); // owned partitions (v1)
        b
    }

    #[test]
    fn subscription_and_assignment_decode() {
        assert_eq!(decode_subscription(&subscription(&["b", "a"])).unwrap(), vec!["a", "b"]);
        let mut a = vec![0, 0];
        a.extend_from_slice(&1i32.to_be_bytes());
        a.extend_from_slice(&1i16.to_be_bytes());
        a.push(b't');
        a.extend_from_slice(&2i32.to_be_bytes());
        a.extend_from_slice(&5i32.to_be_bytes());
        a.extend_from_slice(&3i32.to_be_bytes());
        a.extend_from_slice(&(-1i32).to_be_bytes());
        let tps = decode_assignment(&a).unwrap();
        assert_eq!(tps, vec![TopicPartition::new("t", 3), TopicPartition::new("t", 5)]);
        assert_eq!(decode_assignment(&[]).unwrap(), Vec::new());
    }

    #[test]
    fn hostile_counts_are_refused_without_allocating() {
        let mut b = vec![0, 0];
        b.extend_from_slice(&i32::MAX.to_be_bytes());
        assert_eq!(decode_subscription(&b), None);
        assert_eq!(decode_assignment(&b), None);
        let s = subscription(&["topic"]);
        for cut in 0..8 {
            assert_eq!(decode_subscription(&s[..cut]), None, "cut at {cut}");
        }
    }
}
