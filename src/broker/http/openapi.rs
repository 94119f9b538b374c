//! `GET /openapi.json`: the API described in OpenAPI 3. A test keeps it in sync with [`ROUTES`]
//! (and an end-to-end test checks the router serves every documented route).

use axum::response::Response;
use serde_json::{json, Map, Value};

use super::topics::ok;
use super::ROUTES;

/// (method, path, summary) of every route.
pub const DOCUMENTED: &[(&str, &str, &str)] = &[
    ("GET", "/health", "Liveness: {\"status\":\"ok\"}, or \"degraded\" with failed_views [{view, error}] when a view stopped."),
    ("GET", "/metrics", "Prometheus text: produce/fetch counters, request latency, partition sizes and offsets, group lag."),
    ("GET", "/openapi.json", "This document."),
    ("GET", "/topics", "Topic names."),
    ("POST", "/topics", "Extension: create a topic {\"name\",\"partitions\",\"configs\":{kafka.name: value}}."),
    ("GET", "/topics/{topic}", "Name, configs (Kafka names) and partitions."),
    ("POST", "/topics/{topic}", "Produce {\"records\":[{\"key\"?,\"value\",\"partition\"?,\"headers\"?,\"timestamp\"?}], \"producer\"?:{\"id\",\"epoch\",\"sequence\"}}; one atomic append per partition. Extension `producer` (idempotent produce, one partition): a retry with the same producer fields and records gets the first attempt's offsets and is not written again; 409 (40920) out-of-order sequence, 409 (40921) fenced epoch, 422 (42220) invalid producer fields, 422 (42221) a topic of several partitions without a partition in the path."),
    ("DELETE", "/topics/{topic}", "Extension: delete a topic and its data."),
    ("PUT", "/topics/{topic}/configs", "Extension: change configs {\"configs\":{kafka.name: value}}."),
    ("POST", "/topics/{topic}/retention", "Extension: run retention now; the report (segments and bytes removed per partition)."),
    ("POST", "/topics/{topic}/compaction", "Extension: run compaction now; the report (bytes before/after, records removed)."),
    ("GET", "/topics/{topic}/partitions", "Partitions of a topic."),
    ("GET", "/topics/{topic}/partitions/{partition}", "One partition."),
    ("POST", "/topics/{topic}/partitions/{partition}", "Produce to one partition (with the optional `producer` of POST /topics/{topic})."),
    ("GET", "/topics/{topic}/partitions/{partition}/offsets", "{\"beginning_offset\",\"end_offset\"}."),
    ("GET", "/topics/{topic}/partitions/{partition}/records", "Extension (pandaproxy's shape): stateless fetch ?offset=&max_bytes=&timeout=&include=headers,timestamp."),
    ("POST", "/consumers/{group}", "Create a consumer instance {\"name\",\"format\",\"auto.offset.reset\",\"auto.commit.enable\",\"consumer.request.timeout.ms\",\"consumer.instance.timeout.ms\"}."),
    ("DELETE", "/consumers/{group}/instances/{instance}", "Remove a consumer instance (its partitions move)."),
    ("POST", "/consumers/{group}/instances/{instance}/subscription", "Subscribe {\"topics\":[…]} or {\"topic_pattern\":\"…\"}."),
    ("GET", "/consumers/{group}/instances/{instance}/subscription", "Subscribed topics."),
    ("DELETE", "/consumers/{group}/instances/{instance}/subscription", "Unsubscribe."),
    ("POST", "/consumers/{group}/instances/{instance}/assignments", "Manual assignment {\"partitions\":[{\"topic\",\"partition\"}]}."),
    ("GET", "/consumers/{group}/instances/{instance}/assignments", "Partitions this instance owns now."),
    ("GET", "/consumers/{group}/instances/{instance}/records", "Fetch (long-poll) ?timeout=&max_bytes=&include=: [{\"topic\",\"key\",\"value\",\"partition\",\"offset\"}]."),
    ("POST", "/consumers/{group}/instances/{instance}/offsets", "Commit {\"offsets\":[{\"topic\",\"partition\",\"offset\"}]} (last processed offset); empty body commits all fetched."),
    ("GET", "/consumers/{group}/instances/{instance}/offsets", "Committed offsets (next offset to read)."),
    ("POST", "/consumers/{group}/instances/{instance}/positions", "Seek {\"offsets\":[{\"topic\",\"partition\",\"offset\"}]}."),
    ("POST", "/consumers/{group}/instances/{instance}/positions/beginning", "Seek to the beginning {\"partitions\":[…]}."),
    ("POST", "/consumers/{group}/instances/{instance}/positions/end", "Seek to the end {\"partitions\":[…]}."),
    ("POST", "/producers", "Extension: a new idempotent producer {\"producer_id\",\"producer_epoch\"} (Kafka's InitProducerId): ids are never given twice, also across restarts. Its first produce has sequence 0, each next one the previous sequence plus its record count."),
    ("GET", "/groups", "Extension: consumer group names."),
    ("GET", "/groups/{group}", "Extension: state, generation, members, per-partition committed/end/lag."),
    ("DELETE", "/groups/{group}", "Extension: delete an inactive group's offsets."),
    ("POST", "/groups/{group}/reset-offsets", "Extension: {\"topic\",\"partitions\"?,\"strategy\",\"value\"?,\"dry_run\",\"force\"?} → the plan."),
    ("GET", "/views", "Extension: view names."),
    ("POST", "/views", "Extension: create a view; the body is its spec (see README). 201 with its status; 422 (42210) naming the field of a bad spec; 409 (40910) if it exists."),
    ("GET", "/views/{name}", "Extension: spec, version, state (running|rebuilding|failed), lag per partition, watermark, late/error records, rebuild progress. 404 (40410) if unknown."),
    ("PUT", "/views/{name}", "Extension: a new definition (spec with the same name); rebuilt while the old one serves, then switched atomically. 202."),
    ("DELETE", "/views/{name}", "Extension: delete a view and its state. 204."),
    ("GET", "/views/{name}/keys", "Extension: scan ?prefix=&limit= → [{\"key\",\"value\"|\"windows\"}] in key order."),
    ("GET", "/views/{name}/keys/{key}", "Extension: {\"key\",\"value\"} (tables) or {\"key\",\"windows\":[{\"start\",\"end\",\"value\"}]} (?from=&to= in ms bound window starts). 404 (40411) if absent."),
    ("POST", "/views/{name}/rebuild", "Extension: rebuild {\"from_timestamp\"?} (ms); the old version serves until the new one catches up. 202."),
];

/// The OpenAPI 3 document.
pub fn spec() -> Value {
    let mut paths = Map::new();
    for (method, path, summary) in DOCUMENTED {
        let params: Vec<Value> = path
            .split('/')
            .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .map(|name| json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}))
            .collect();
        let entry = paths.entry(path.to_string()).or_insert_with(|| json!({}));
        entry[method.to_ascii_lowercase()] = json!({
            "summary": summary,
            "parameters": params,
            "responses": {
                "200": {"description": "OK"},
                "default": {"description": "Error: {\"error_code\": int, \"message\": string}"}
            }
        });
    }
    json!({
        "openapi": "3.0.3",
        "info": {"title": "kappalog broker (Confluent REST Proxy v2 + extensions)", "version": env!("CARGO_PKG_VERSION")},
        "paths": paths,
    })
}

pub async fn document() -> Response {
    ok(&spec())
}

/// Every (method, path) of the router, for tests.
pub fn routes() -> impl Iterator<Item = (&'static str, &'static str)> {
    ROUTES.iter().copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documented_routes_match_the_router() {
        let mut documented: Vec<(&str, &str)> = DOCUMENTED.iter().map(|(m, p, _)| (*m, *p)).collect();
        let mut routed: Vec<(&str, &str)> = routes().collect();
        documented.sort();
        routed.sort();
        assert_eq!(documented, routed);
        let spec = spec();
        for (m, p) in routed {
            assert!(spec["paths"][p][m.to_ascii_lowercase()].is_object(), "{m} {p}");
        }
    }
}
