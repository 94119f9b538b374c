//! CreateTopics (key 19) v2-4, DeleteTopics (20) v1-3, DescribeConfigs (32) v1-3 and
//! IncrementalAlterConfigs (44) v0: topics and their configs under Kafka's names (`retention.ms`,
//! `cleanup.policy`, …; the same as the HTTP API's, plus kappalog's `durability`).
//!
//! One node: a replication factor other than 1 (or -1, the default) is INVALID_REPLICATION_FACTOR,
//! and manual replica assignments are refused. Internal topics (`__…`) cannot be created, deleted
//! or altered.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::wire::{Reader, Result, Writer};
use super::{blocking, code, error_code, Context, NODE_ID};
use crate::broker::http::topic_config;
use crate::{Store, TopicConfig};

/// Kafka's config resource types.
pub const RESOURCE_TOPIC: i8 = 2;
pub const RESOURCE_BROKER: i8 = 4;
/// Kafka's config sources (DescribeConfigs v1+).
const SOURCE_DYNAMIC_TOPIC: i8 = 1;
const SOURCE_DEFAULT: i8 = 5;

fn strings(r: &mut Reader, field: &'static str) -> Result<Option<Vec<String>>> {
    match r.nullable_array_len(field, 2)? {
        None => Ok(None),
        Some(n) => {
            let mut v = Vec::with_capacity(n);
            for _ in 0..n {
                v.push(r.string(field)?);
            }
            Ok(Some(v))
        }
    }
}

struct NewTopic {
    name: String,
    partitions: i32,
    replication: i16,
    assigned: bool,
    configs: Vec<(String, Option<String>)>,
}

fn create_one(store: &Store, t: &NewTopic, validate_only: bool, default_partitions: u32) -> (i16, Option<String>) {
    let fail = |c, m: String| (c, Some(m));
    if t.name.starts_with(crate::limits::INTERNAL_TOPIC_PREFIX) {
        return fail(code::INVALID_TOPIC_EXCEPTION, format!("{} is an internal topic name", t.name));
    }
    if !matches!(t.replication, -1 | 1) {
        return fail(
            code::INVALID_REPLICATION_FACTOR,
            format!("replication factor {} on a single-node broker (use 1)", t.replication),
        );
    }
    if t.assigned {
        return fail(code::INVALID_REPLICA_ASSIGNMENT, "manual replica assignments are not supported".into());
    }
    let partitions = match t.partitions {
        -1 => default_partitions,
        n if n >= 1 => n as u32,
        n => return fail(code::INVALID_PARTITIONS, format!("{n} partitions")),
    };
    let mut map = Map::new();
    for (k, v) in &t.configs {
        match v {
            Some(v) => map.insert(k.clone(), Value::from(v.as_str())),
            None => return fail(code::INVALID_CONFIG, format!("config {k}: null value")),
        };
    }
    let config = match topic_config::apply(&TopicConfig::default(), &map) {
        Ok(c) => c,
        Err(e) => return fail(code::INVALID_CONFIG, e.message),
    };
    if validate_only {
        return match store.topic(&t.name) {
            Ok(_) => fail(code::TOPIC_ALREADY_EXISTS, format!("topic {} already exists", t.name)),
            Err(_) => match crate::config::validate_topic_name(&t.name) {
                Ok(()) => (code::NONE, None),
                Err(e) => fail(error_code(&e), e.to_string()),
            },
        };
    }
    match store.create_topic(&t.name, partitions, config) {
        Ok(_) => (code::NONE, None),
        Err(e) => fail(error_code(&e), e.to_string()),
    }
}

pub async fn create_topics(ctx: &Context, version: i16, r: &mut Reader) -> Result<Writer> {
    let n = r.array_len("topics", 16)?;
    let mut topics = Vec::with_capacity(n);
    for _ in 0..n {
        let name = r.string("topics.name")?;
        let partitions = r.i32("topics.num_partitions")?;
        let replication = r.i16("topics.replication_factor")?;
        let a = r.array_len("topics.assignments", 8)?;
        for _ in 0..a {
            r.i32("assignments.partition_index")?;
            let b = r.array_len("assignments.broker_ids", 4)?;
            for _ in 0..b {
                r.i32("assignments.broker_ids")?;
            }
        }
        let c = r.array_len("topics.configs", 4)?;
        let mut configs = Vec::with_capacity(c);
        for _ in 0..c {
            configs.push((r.string("configs.name")?, r.nullable_string("configs.value")?));
        }
        topics.push(NewTopic { name, partitions, replication, assigned: a > 0, configs });
    }
    r.i32("timeout_ms")?;
    let validate_only = r.bool("validate_only")?;
    let (store, default_partitions) = (ctx.store.clone(), ctx.config.auto_create_partitions.max(1));
    let answers = blocking(move || {
        topics
            .into_iter()
            .map(|t| {
                let (e, m) = create_one(&store, &t, validate_only, default_partitions);
                (t.name, e, m)
            })
            .collect::<Vec<_>>()
    })
    .await;
    let mut w = Writer::new();
    w.i32(0).array_len(answers.len());
    for (name, error, message) in &answers {
        w.string(name).i16(*error);
        if version >= 1 {
            w.nullable_string(message.as_deref());
        }
    }
    Ok(w)
}

pub async fn delete_topics(ctx: &Context, _version: i16, r: &mut Reader) -> Result<Writer> {
    let names = strings(r, "topic_names")?.unwrap_or_default();
    r.i32("timeout_ms")?;
    let store = ctx.store.clone();
    let answers = blocking(move || {
        names
            .into_iter()
            .map(|n| {
                let e = match store.delete_topic(&n) {
                    Ok(()) => code::NONE,
                    Err(e) => error_code(&e),
                };
                (n, e)
            })
            .collect::<Vec<_>>()
    })
    .await;
    let mut w = Writer::new();
    w.i32(0).array_len(answers.len());
    for (name, error) in &answers {
        w.string(name).i16(*error);
    }
    Ok(w)
}

/// Kafka's config type of a topic config (DescribeConfigs v3+).
fn config_type(key: &str) -> i8 {
    match key {
        "cleanup.policy" => 7,                             // LIST
        "message.timestamp.type" | "durability" => 2,      // STRING
        "min.cleanable.dirty.ratio" => 6,                  // DOUBLE
        "max.message.bytes" | "index.interval.bytes" => 3, // INT
        _ => 5,                                            // LONG
    }
}

pub fn describe_configs(ctx: &Context, version: i16, r: &mut Reader) -> Result<Writer> {
    let n = r.array_len("resources", 5)?;
    let mut resources = Vec::with_capacity(n);
    for _ in 0..n {
        let kind = r.i8("resources.resource_type")?;
        let name = r.string("resources.resource_name")?;
        let keys = strings(r, "resources.configuration_keys")?;
        resources.push((kind, name, keys));
    }
    r.bool("include_synonyms")?;
    if version >= 3 {
        r.bool("include_documentation")?;
    }
    let defaults = topic_config::to_kafka(&TopicConfig::default());
    let mut w = Writer::new();
    w.i32(0).array_len(resources.len());
    for (kind, name, keys) in &resources {
        let configs: std::result::Result<BTreeMap<String, String>, (i16, String)> = match *kind {
            RESOURCE_TOPIC => match ctx.store.topic(name) {
                Ok(t) => Ok(topic_config::to_kafka(&t.config())),
                Err(e) => Err((error_code(&e), e.to_string())),
            },
            RESOURCE_BROKER if name.is_empty() || name == &NODE_ID.to_string() => Ok(BTreeMap::new()),
            RESOURCE_BROKER => Err((code::INVALID_REQUEST, format!("broker {name}: this broker is {NODE_ID}"))),
            k => Err((code::INVALID_REQUEST, format!("resource type {k} is not supported"))),
        };
        match configs {
            Err((error, message)) => {
                w.i16(error).nullable_string(Some(&message)).i8(*kind).string(name).array_len(0);
            }
            Ok(all) => {
                let chosen: Vec<(&String, &String)> =
                    all.iter().filter(|(k, _)| keys.as_ref().is_none_or(|ks| ks.contains(k))).collect();
                w.i16(code::NONE).nullable_string(None).i8(*kind).string(name).array_len(chosen.len());
                for (k, v) in chosen {
                    let source = if defaults.get(k) == Some(v) { SOURCE_DEFAULT } else { SOURCE_DYNAMIC_TOPIC };
                    w.string(k).nullable_string(Some(v)).bool(false).i8(source).bool(false);
                    w.array_len(0); // synonyms
                    if version >= 3 {
                        w.i8(config_type(k)).nullable_string(None);
                    }
                }
            }
        }
    }
    Ok(w)
}

/// One resource of IncrementalAlterConfigs: `(name, operation, value)` per config.
type Alteration = (i8, String, Vec<(String, i8, Option<String>)>);

fn alter_one(store: &Store, (kind, name, configs): &Alteration, validate_only: bool) -> (i16, Option<String>) {
    if *kind != RESOURCE_TOPIC {
        return (code::INVALID_REQUEST, Some(format!("resource type {kind}: only topics (2) can be altered")));
    }
    if name.starts_with(crate::limits::INTERNAL_TOPIC_PREFIX) {
        return (code::TOPIC_AUTHORIZATION_FAILED, Some(format!("{name} is an internal topic")));
    }
    let t = match store.topic(name) {
        Ok(t) => t,
        Err(e) => return (error_code(&e), Some(e.to_string())),
    };
    let defaults = topic_config::to_kafka(&TopicConfig::default());
    let mut map = Map::new();
    for (key, op, value) in configs {
        let v = match (op, value) {
            (0, Some(v)) => v.clone(),
            (1, _) => match defaults.get(key) {
                Some(d) => d.clone(),
                None => return (code::INVALID_CONFIG, Some(format!("config {key} is unknown"))),
            },
            (0, None) => return (code::INVALID_CONFIG, Some(format!("config {key}: SET without a value"))),
            (op, _) => {
                return (
                    code::INVALID_CONFIG,
                    Some(format!("config {key}: operation {op} (APPEND/SUBTRACT) is not supported")),
                )
            }
        };
        map.insert(key.clone(), Value::from(v));
    }
    let config = match topic_config::apply(&t.config(), &map) {
        Ok(c) => c,
        Err(e) => return (code::INVALID_CONFIG, Some(e.message)),
    };
    if validate_only {
        return (code::NONE, None);
    }
    match store.set_topic_config(name, config) {
        Ok(()) => (code::NONE, None),
        Err(e) => (error_code(&e), Some(e.to_string())),
    }
}

pub async fn incremental_alter_configs(ctx: &Context, _version: i16, r: &mut Reader) -> Result<Writer> {
    let n = r.array_len("resources", 7)?;
    let mut resources: Vec<Alteration> = Vec::with_capacity(n);
    for _ in 0..n {
        let kind = r.i8("resources.resource_type")?;
        let name = r.string("resources.resource_name")?;
        let c = r.array_len("resources.configs", 5)?;
        let mut configs = Vec::with_capacity(c);
        for _ in 0..c {
            let key = r.string("configs.name")?;
            let op = r.i8("configs.config_operation")?;
            configs.push((key, op, r.nullable_string("configs.value")?));
        }
        resources.push((kind, name, configs));
    }
    let validate_only = r.bool("validate_only")?;
    let store = ctx.store.clone();
    let answers = blocking(move || {
        resources.into_iter().map(|res| (alter_one(&store, &res, validate_only), res.0, res.1)).collect::<Vec<_>>()
    })
    .await;
    let mut w = Writer::new();
    w.i32(0).array_len(answers.len());
    for ((error, message), kind, name) in &answers {
        w.i16(*error).nullable_string(message.as_deref()).i8(*kind).string(name);
    }
    Ok(w)
}
