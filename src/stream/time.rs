//! Event time across a view's source partitions: each partition's watermark (the highest event
//! time applied from it), the view's watermark (the least of them over the partitions that are not
//! idle), idleness, and the stamp that orders records by event time (greatest time, then topic,
//! partition and offset), which decides `latest` and the table of latest values.

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::ser::{SerializeTuple, Serializer};
use serde::{Deserialize, Serialize};

use super::state::SourceOffset;

/// How long a source partition with nothing to read may hold the watermark back, unless the
/// spec says (`window.idle_timeout_ms`).
pub const IDLE_TIMEOUT_MS_DEFAULT: u64 = 30_000;
/// How far an event time may lie after its record's timestamp before the record counts as an
/// error, unless the spec says (`window.max_future_ms`).
pub const MAX_FUTURE_MS_DEFAULT: u64 = 24 * 60 * 60 * 1000;

/// Where a record sits in event time, with a deterministic tie-break: the time, then the source
/// topic's place in the spec, then the partition, then the offset. The greatest stamp is the
/// latest record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct Stamp {
    pub time: i64,
    pub topic: u32,
    pub partition: u32,
    pub offset: u64,
}

impl Stamp {
    /// Before any record.
    pub(crate) const MIN: Stamp = Stamp { time: i64::MIN, topic: 0, partition: 0, offset: 0 };
}

/// Stored as `[time, topic, partition, offset]`.
impl Serialize for Stamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut t = s.serialize_tuple(4)?;
        t.serialize_element(&self.time)?;
        t.serialize_element(&self.topic)?;
        t.serialize_element(&self.partition)?;
        t.serialize_element(&self.offset)?;
        t.end()
    }
}

/// Reads `[time, topic, partition, offset]`, or the bare sequence number that checkpoints of
/// earlier builds hold (read order: it sorts before every stamp with a time).
impl<'de> Deserialize<'de> for Stamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Stamp, D::Error> {
        struct StampVisitor;
        impl<'de> Visitor<'de> for StampVisitor {
            type Value = Stamp;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("[time, topic, partition, offset] or a sequence number")
            }
            fn visit_u64<E: de::Error>(self, seq: u64) -> Result<Stamp, E> {
                Ok(Stamp { offset: seq, ..Stamp::MIN })
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<Stamp, A::Error> {
                let missing = || de::Error::invalid_length(4, &"four elements");
                Ok(Stamp {
                    time: a.next_element()?.ok_or_else(missing)?,
                    topic: a.next_element()?.ok_or_else(missing)?,
                    partition: a.next_element()?.ok_or_else(missing)?,
                    offset: a.next_element()?.ok_or_else(missing)?,
                })
            }
        }
        d.deserialize_any(StampVisitor)
    }
}

/// The view's watermark that the source partitions allow: the least partition watermark over the
/// partitions that are not idle (a partition that is not idle and has applied nothing yet holds it
/// at `None`); when every partition is idle, the greatest partition watermark. The caller keeps
/// the view's watermark monotonic.
pub(crate) fn allowed_watermark(sources: &[SourceOffset]) -> Option<i64> {
    let mut least: Option<i64> = None;
    let mut greatest: Option<i64> = None;
    let mut active = false;
    for s in sources {
        greatest = greatest.max(s.event_time_max);
        if s.idle {
            continue;
        }
        let t = s.event_time_max?;
        active = true;
        least = Some(least.map_or(t, |l| l.min(t)));
    }
    if active {
        least
    } else {
        greatest
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(max: Option<i64>, idle: bool) -> SourceOffset {
        SourceOffset { topic: "t".into(), partition: 0, next_offset: 0, event_time_max: max, idle }
    }

    #[test]
    fn the_watermark_is_the_least_over_partitions_that_are_not_idle() {
        assert_eq!(allowed_watermark(&[]), None);
        assert_eq!(allowed_watermark(&[source(Some(5), false), source(Some(9), false)]), Some(5));
        assert_eq!(allowed_watermark(&[source(Some(5), false), source(None, false)]), None, "no data yet holds it");
        assert_eq!(allowed_watermark(&[source(Some(5), false), source(None, true)]), Some(5));
        assert_eq!(allowed_watermark(&[source(Some(5), true), source(Some(9), false)]), Some(9));
        assert_eq!(allowed_watermark(&[source(Some(5), true), source(Some(9), true)]), Some(9), "all idle");
        assert_eq!(allowed_watermark(&[source(None, true)]), None);
    }

    #[test]
    fn stamps_order_by_time_then_topic_partition_offset_and_read_old_sequence_numbers() {
        let s = |time, topic, partition, offset| Stamp { time, topic, partition, offset };
        assert!(s(2, 0, 0, 0) > s(1, 9, 9, 9));
        assert!(s(1, 1, 0, 0) > s(1, 0, 9, 9));
        assert!(s(1, 0, 1, 0) > s(1, 0, 0, 9));
        assert!(s(1, 0, 0, 2) > s(1, 0, 0, 1));
        let json = serde_json::to_string(&s(-3, 1, 2, 7)).unwrap();
        assert_eq!(json, "[-3,1,2,7]");
        assert_eq!(serde_json::from_str::<Stamp>(&json).unwrap(), s(-3, 1, 2, 7));
        assert_eq!(serde_json::from_str::<Stamp>("42").unwrap(), Stamp { offset: 42, ..Stamp::MIN });
        assert!(serde_json::from_str::<Stamp>("[1, 2]").is_err());
    }
}
