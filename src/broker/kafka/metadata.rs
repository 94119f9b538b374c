//! Metadata (key 3), v0-8: this broker, the controller (itself) and the topics asked for, each
//! partition led by this broker with itself as the only replica.
//!
//! v0 lists every topic for an empty list; v1+ for a null one. An unknown topic is created when
//! the broker allows auto-creation (`auto_create_topics`) and, from v4, the client asks for it;
//! otherwise it answers UNKNOWN_TOPIC_OR_PARTITION. Leader epochs are -1 (unknown): clients then
//! skip the leader-epoch validation kappalog has no API for.

use super::wire::{Reader, Result, Writer};
use super::{blocking, code, error_code, Context, CLUSTER_ID, NODE_ID};
use crate::{Store, TopicConfig};

/// "Not requested" for authorized-operation fields.
pub(crate) const OPERATIONS_UNKNOWN: i32 = i32::MIN;

pub async fn handle(ctx: &Context, version: i16, r: &mut Reader) -> Result<Writer> {
    let names = if version == 0 {
        let n = r.array_len("topics", 2)?;
        let mut v = Vec::with_capacity(n);
        for _ in 0..n {
            v.push(r.string("topics.name")?);
        }
        (n > 0).then_some(v)
    } else {
        match r.nullable_array_len("topics", 2)? {
            None => None,
            Some(n) => {
                let mut v = Vec::with_capacity(n);
                for _ in 0..n {
                    v.push(r.string("topics.name")?);
                }
                Some(v)
            }
        }
    };
    let allow_auto = if version >= 4 { r.bool("allow_auto_topic_creation")? } else { true };
    if version >= 8 {
        r.bool("include_cluster_authorized_operations")?;
        r.bool("include_topic_authorized_operations")?;
    }
    let auto = allow_auto && ctx.config.auto_create_topics;
    let partitions = ctx.config.auto_create_partitions;
    let store = ctx.store.clone();
    let topics = blocking(move || describe(&store, names, auto, partitions)).await;

    let mut w = Writer::new();
    if version >= 3 {
        w.i32(0); // throttle_time_ms
    }
    w.array_len(1).i32(NODE_ID).string(&ctx.advertised_host).i32(ctx.advertised_port);
    if version >= 1 {
        w.nullable_string(None); // rack
    }
    if version >= 2 {
        w.nullable_string(Some(CLUSTER_ID));
    }
    if version >= 1 {
        w.i32(NODE_ID); // controller_id
    }
    w.array_len(topics.len());
    for t in &topics {
        w.i16(t.error).string(&t.name);
        if version >= 1 {
            w.bool(t.name.starts_with(crate::limits::INTERNAL_TOPIC_PREFIX));
        }
        w.array_len(t.partitions as usize);
        for p in 0..t.partitions {
            w.i16(code::NONE).i32(p as i32).i32(NODE_ID);
            if version >= 7 {
                w.i32(super::LEADER_EPOCH);
            }
            w.array_len(1).i32(NODE_ID); // replica_nodes
            w.array_len(1).i32(NODE_ID); // isr_nodes
            if version >= 5 {
                w.array_len(0); // offline_replicas
            }
        }
        if version >= 8 {
            w.i32(OPERATIONS_UNKNOWN);
        }
    }
    if version >= 8 {
        w.i32(OPERATIONS_UNKNOWN);
    }
    Ok(w)
}

struct TopicMeta {
    name: String,
    error: i16,
    partitions: u32,
}

fn describe(store: &Store, names: Option<Vec<String>>, auto: bool, partitions: u32) -> Vec<TopicMeta> {
    let names = names.unwrap_or_else(|| {
        let mut all = store.topic_names();
        all.sort();
        all
    });
    names
        .into_iter()
        .map(|name| {
            let found = match store.topic(&name) {
                Err(crate::Error::TopicNotFound(_)) if auto => {
                    match store.create_topic(&name, partitions, TopicConfig::default()) {
                        Err(crate::Error::TopicExists(_)) => store.topic(&name),
                        other => other,
                    }
                }
                other => other,
            };
            match found {
                Ok(t) => TopicMeta { name, error: code::NONE, partitions: t.partition_count() },
                Err(e) => TopicMeta { name, error: error_code(&e), partitions: 0 },
            }
        })
        .collect()
}
