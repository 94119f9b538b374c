//! Topic configs under Kafka's names (`retention.ms`, `cleanup.policy`, …), values as strings or
//! numbers, translated to and from [`TopicConfig`].

use std::collections::BTreeMap;

use serde_json::Value;

use super::errors::{code, ApiError};
use crate::{CleanupPolicy, Durability, TimestampType, TopicConfig};

/// The config keys accepted, Kafka's names plus ours (`durability`).
pub const CONFIG_KEYS: &[&str] = &[
    "cleanup.policy",
    "retention.ms",
    "retention.bytes",
    "segment.bytes",
    "segment.ms",
    "delete.retention.ms",
    "min.compaction.lag.ms",
    "min.cleanable.dirty.ratio",
    "message.timestamp.type",
    "max.message.bytes",
    "index.interval.bytes",
    "compression.type",
    "durability",
];

/// The config as Kafka names and string values.
pub fn to_kafka(c: &TopicConfig) -> BTreeMap<String, String> {
    let policy = match c.cleanup_policy {
        CleanupPolicy::Delete => "delete",
        CleanupPolicy::Compact => "compact",
        CleanupPolicy::CompactDelete => "compact,delete",
    };
    let ts = match c.timestamp_type {
        TimestampType::CreateTime => "CreateTime",
        TimestampType::LogAppendTime => "LogAppendTime",
    };
    let pairs: [(&str, String); 13] = [
        ("cleanup.policy", policy.into()),
        ("retention.ms", c.retention_ms.to_string()),
        ("retention.bytes", c.retention_bytes.to_string()),
        ("segment.bytes", c.segment_bytes.to_string()),
        ("segment.ms", c.segment_ms.to_string()),
        ("delete.retention.ms", c.delete_retention_ms.to_string()),
        ("min.compaction.lag.ms", c.min_compaction_lag_ms.to_string()),
        ("min.cleanable.dirty.ratio", c.min_cleanable_dirty_ratio.to_string()),
        ("message.timestamp.type", ts.into()),
        ("max.message.bytes", c.max_message_bytes.to_string()),
        ("index.interval.bytes", c.index_interval_bytes.to_string()),
        ("compression.type", c.compression_type.as_str().into()),
        ("durability", c.durability.to_string()),
    ];
    pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

fn text(key: &str, v: &Value) -> Result<String, ApiError> {
    match v {
        Value::String(s) => Ok(s.trim().to_string()),
        Value::Number(n) => Ok(n.to_string()),
        other => Err(bad(key, format!("{other} must be a string or a number"))),
    }
}

fn bad(key: &str, reason: String) -> ApiError {
    ApiError::invalid(code::INVALID_TOPIC, format!("config {key}: {reason}"))
}

fn num<T: std::str::FromStr>(key: &str, s: &str) -> Result<T, ApiError>
where
    T::Err: std::fmt::Display,
{
    s.parse::<T>().map_err(|e| bad(key, format!("{s:?} is not a valid number: {e}")))
}

/// Applies Kafka-named `configs` over `base`, then validates the result.
pub fn apply(base: &TopicConfig, configs: &serde_json::Map<String, Value>) -> Result<TopicConfig, ApiError> {
    let mut c = base.clone();
    for (key, v) in configs {
        let s = text(key, v)?;
        match key.as_str() {
            "cleanup.policy" => {
                let mut parts: Vec<&str> = s.split(',').map(str::trim).collect();
                parts.sort_unstable();
                c.cleanup_policy = match parts.as_slice() {
                    ["delete"] => CleanupPolicy::Delete,
                    ["compact"] => CleanupPolicy::Compact,
                    ["compact", "delete"] => CleanupPolicy::CompactDelete,
                    _ => return Err(bad(key, format!("{s:?} is not one of delete, compact, compact,delete"))),
                }
            }
            "retention.ms" => c.retention_ms = num(key, &s)?,
            "retention.bytes" => c.retention_bytes = num(key, &s)?,
            "segment.bytes" => c.segment_bytes = num(key, &s)?,
            "segment.ms" => c.segment_ms = num(key, &s)?,
            "delete.retention.ms" => c.delete_retention_ms = num(key, &s)?,
            "min.compaction.lag.ms" => c.min_compaction_lag_ms = num(key, &s)?,
            "min.cleanable.dirty.ratio" => c.min_cleanable_dirty_ratio = num(key, &s)?,
            "max.message.bytes" => c.max_message_bytes = num(key, &s)?,
            "index.interval.bytes" => c.index_interval_bytes = num(key, &s)?,
            "compression.type" => c.compression_type = s.parse().map_err(|e: String| bad(key, e))?,
            "message.timestamp.type" => {
                c.timestamp_type = match s.as_str() {
                    "CreateTime" => TimestampType::CreateTime,
                    "LogAppendTime" => TimestampType::LogAppendTime,
                    _ => return Err(bad(key, format!("{s:?} is not CreateTime or LogAppendTime"))),
                }
            }
            "durability" => c.durability = s.parse::<Durability>().map_err(|e| bad(key, e.to_string()))?,
            other => return Err(bad(other, format!("unknown config; known: {}", CONFIG_KEYS.join(", ")))),
        }
    }
    c.validate().map_err(ApiError::from)?;
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_errors_name_the_key() {
        let map =
            serde_json::json!({"retention.ms": 1000, "cleanup.policy": "delete,compact", "durability": "interval:5"});
        let c = apply(&TopicConfig::default(), map.as_object().unwrap()).unwrap();
        assert_eq!(c.retention_ms, 1000);
        assert_eq!(c.cleanup_policy, CleanupPolicy::CompactDelete);
        assert_eq!(c.durability, Durability::Interval { ms: 5 });
        let back = to_kafka(&c);
        let again =
            apply(&TopicConfig::default(), &back.iter().map(|(k, v)| (k.clone(), Value::from(v.as_str()))).collect())
                .unwrap();
        assert_eq!(again, c);
        for (k, v) in [("retention.ms", "x"), ("nope", "1"), ("segment.bytes", "1"), ("durability", "sometimes")] {
            let m = serde_json::json!({ k: v });
            let e = apply(&TopicConfig::default(), m.as_object().unwrap()).unwrap_err();
            assert!(e.message.contains(k) || e.message.contains("segment_bytes"), "{k}: {}", e.message);
        }
    }
}
