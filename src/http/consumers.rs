//! Consumer instances (REST Proxy v2): per-instance sessions over consumer groups. An instance
//! has a format, a subscription (topics or a pattern) or a manual assignment, positions, and what
//! it fetched. Instances of one group split the subscribed partitions; the split is recomputed
//! whenever membership or subscriptions change, and an instance idle past its timeout is removed
//! so its partitions move. Committed offsets live in the group store ([`Offsets`]).

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::content::{
    accept_format, parse_body, parse_body_or_default, render_record, Format, Include, Params, PathParams,
};
use super::errors::{code, ApiError};
use super::fetch::read_waiting;
use super::topics::ok;
use super::{AppState, FETCH_RECORDS_MAX};
use crate::{Record, Store};

/// Default idle time after which an instance is removed (Confluent's `consumer.instance.timeout.ms`).
pub const CONSUMER_TIMEOUT_MS_DEFAULT: u64 = 300_000;
/// Default long-poll of a records fetch (Confluent's `consumer.request.timeout.ms`).
pub const CONSUMER_REQUEST_TIMEOUT_MS_DEFAULT: u64 = 1000;
/// Most instances in the whole broker.
pub const CONSUMER_INSTANCES_MAX: usize = 10_000;
/// Longest consumer group or instance name.
pub const CONSUMER_NAME_LEN_MAX: usize = 249;

/// A topic and partition.
pub type Tp = (String, u32);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Reset {
    Earliest,
    Latest,
    None,
}

#[derive(Debug, Clone)]
enum Subscription {
    None,
    Topics(Vec<String>),
    Pattern(String, regex::Regex),
    Manual(Vec<Tp>),
}

#[derive(Debug)]
struct Instance {
    format: Format,
    reset: Reset,
    auto_commit: bool,
    request_timeout_ms: u64,
    instance_timeout_ms: u64,
    last_seen: Instant,
    subscription: Subscription,
    /// The next offset to read of each owned partition.
    positions: HashMap<Tp, u64>,
    /// The last offset returned by a fetch, per partition (what an empty commit commits).
    fetched: HashMap<Tp, u64>,
    /// Round-robin start for fetches across partitions.
    rotate: usize,
}

#[derive(Debug, Default)]
struct Group {
    instances: BTreeMap<String, Instance>,
    generation: u64,
    /// The current split: partition → instance.
    owners: BTreeMap<Tp, String>,
}

/// Committed offsets of consumer groups (the next offset to read, Kafka's convention).
/// In memory here; the group coordinator makes them durable when it is wired in.
#[derive(Debug, Default)]
pub struct Offsets {
    committed: Mutex<BTreeMap<String, BTreeMap<Tp, u64>>>,
}

impl Offsets {
    pub fn commit(&self, group: &str, offsets: &[(Tp, u64)]) {
        let mut c = self.committed.lock();
        let g = c.entry(group.to_string()).or_default();
        for (tp, o) in offsets {
            g.insert(tp.clone(), *o);
        }
    }
    pub fn committed(&self, group: &str, tp: &Tp) -> Option<u64> {
        self.committed.lock().get(group).and_then(|g| g.get(tp).copied())
    }
    pub fn group(&self, group: &str) -> BTreeMap<Tp, u64> {
        self.committed.lock().get(group).cloned().unwrap_or_default()
    }
    pub fn groups(&self) -> Vec<String> {
        self.committed.lock().keys().cloned().collect()
    }
    pub fn delete(&self, group: &str) -> bool {
        self.committed.lock().remove(group).is_some()
    }
    pub fn set(&self, group: &str, tp: Tp, offset: u64) {
        self.committed.lock().entry(group.to_string()).or_default().insert(tp, offset);
    }
}

/// All consumer instances of the broker.
#[derive(Debug)]
pub struct Registry {
    store: Store,
    groups: Mutex<BTreeMap<String, Group>>,
    pub offsets: Offsets,
    next_id: AtomicU64,
}

/// A member of a group, seen from outside.
#[derive(Debug, Clone, Serialize)]
pub struct MemberView {
    pub instance_id: String,
    pub partitions: Vec<TopicPartition>,
    pub idle_ms: u64,
}

/// A group's instances, seen from outside.
#[derive(Debug, Clone, Serialize)]
pub struct GroupView {
    pub generation: u64,
    pub members: Vec<MemberView>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicPartition {
    pub topic: String,
    pub partition: u32,
}

fn not_found(group: &str, instance: &str) -> ApiError {
    ApiError::not_found(
        code::CONSUMER_INSTANCE_NOT_FOUND,
        format!("consumer instance {instance:?} not found in group {group:?} (it may have expired)"),
    )
}

fn illegal(msg: impl Into<String>) -> ApiError {
    ApiError::conflict(code::ILLEGAL_STATE, msg)
}

impl Registry {
    pub fn new(store: Store) -> Registry {
        Registry { store, groups: Mutex::new(BTreeMap::new()), offsets: Offsets::default(), next_id: AtomicU64::new(1) }
    }

    /// Removes instances idle past their timeout; their partitions move at the next rebalance.
    pub fn reap(&self) {
        let mut groups = self.groups.lock();
        let now = Instant::now();
        for (name, g) in groups.iter_mut() {
            let expired: Vec<String> = g
                .instances
                .iter()
                .filter(|(_, i)| now.duration_since(i.last_seen) > Duration::from_millis(i.instance_timeout_ms))
                .map(|(id, _)| id.clone())
                .collect();
            for id in expired {
                tracing::info!(group = name, instance = id, "consumer instance expired");
                if let Some(inst) = g.instances.remove(&id) {
                    self.auto_commit(name, &inst);
                }
            }
        }
        groups.retain(|_, g| !g.instances.is_empty());
    }

    fn auto_commit(&self, group: &str, inst: &Instance) {
        if inst.auto_commit && !inst.fetched.is_empty() {
            let list: Vec<(Tp, u64)> = inst.fetched.iter().map(|(tp, o)| (tp.clone(), o + 1)).collect();
            self.offsets.commit(group, &list);
        }
    }

    /// The instances of every group (for `GET /groups`).
    pub fn views(&self) -> BTreeMap<String, GroupView> {
        let mut groups = self.groups.lock();
        let names: Vec<String> = groups.keys().cloned().collect();
        let mut out = BTreeMap::new();
        for name in names {
            let g = groups.get_mut(&name).expect("listed");
            self.rebalance(&name, g);
            let now = Instant::now();
            let members = g
                .instances
                .iter()
                .map(|(id, i)| MemberView {
                    instance_id: id.clone(),
                    partitions: g
                        .owners
                        .iter()
                        .filter(|(_, o)| *o == id)
                        .map(|((t, p), _)| TopicPartition { topic: t.clone(), partition: *p })
                        .collect(),
                    idle_ms: now.duration_since(i.last_seen).as_millis() as u64,
                })
                .collect();
            out.insert(name, GroupView { generation: g.generation, members });
        }
        out
    }

    /// True when the group has live instances.
    pub fn is_active(&self, group: &str) -> bool {
        self.groups.lock().get(group).is_some_and(|g| !g.instances.is_empty())
    }

    /// Recomputes the split of subscribed partitions over the instances: for each topic, its
    /// partitions go round-robin over the instances subscribed to it (sorted by name). Manual
    /// assignments are not shared. Bumps the generation when the split changed, and drops
    /// positions of partitions an instance no longer owns.
    fn rebalance(&self, group: &str, g: &mut Group) {
        let names = self.store.topic_names();
        let mut wanted: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (id, inst) in &g.instances {
            let topics: Vec<String> = match &inst.subscription {
                Subscription::Topics(t) => t.clone(),
                Subscription::Pattern(_, re) => names.iter().filter(|n| re.is_match(n)).cloned().collect(),
                Subscription::None | Subscription::Manual(_) => continue,
            };
            for t in topics {
                wanted.entry(t).or_default().push(id.clone());
            }
        }
        let mut owners = BTreeMap::new();
        for (topic, members) in wanted {
            let Ok(t) = self.store.topic(&topic) else { continue };
            for p in 0..t.partition_count() {
                owners.insert((topic.clone(), p), members[p as usize % members.len()].clone());
            }
        }
        for (id, inst) in g.instances.iter_mut() {
            if let Subscription::Manual(list) = &inst.subscription {
                for tp in list {
                    owners.entry(tp.clone()).or_insert_with(|| id.clone());
                }
            }
        }
        if owners != g.owners {
            g.generation += 1;
            for (id, inst) in g.instances.iter_mut() {
                let revoked: Vec<Tp> =
                    inst.positions.keys().filter(|tp| owners.get(*tp) != Some(id)).cloned().collect();
                if !revoked.is_empty() && inst.auto_commit {
                    let list: Vec<(Tp, u64)> =
                        revoked.iter().filter_map(|tp| inst.fetched.get(tp).map(|o| (tp.clone(), o + 1))).collect();
                    self.offsets.commit(group, &list);
                }
                for tp in revoked {
                    inst.positions.remove(&tp);
                    inst.fetched.remove(&tp);
                }
            }
            tracing::info!(group, generation = g.generation, partitions = owners.len(), "consumer group rebalanced");
            g.owners = owners;
        }
    }

    fn with_instance<T>(
        &self,
        group: &str,
        id: &str,
        f: impl FnOnce(&mut Group, &str) -> Result<T, ApiError>,
    ) -> Result<T, ApiError> {
        let mut groups = self.groups.lock();
        let g = groups.get_mut(group).ok_or_else(|| not_found(group, id))?;
        let inst = g.instances.get_mut(id).ok_or_else(|| not_found(group, id))?;
        inst.last_seen = Instant::now();
        f(g, id)
    }

    /// Where an owned partition without a position starts: the committed offset, else the reset policy.
    fn start_position(&self, group: &str, tp: &Tp, reset: Reset) -> Result<u64, ApiError> {
        let p = self.store.topic(&tp.0)?.partition(tp.1)?;
        let (start, end) = (p.log_start_offset(), p.high_watermark());
        match self.offsets.committed(group, tp) {
            Some(o) if (start..=end).contains(&o) => Ok(o),
            _ => match reset {
                Reset::Earliest => Ok(start),
                Reset::Latest => Ok(end),
                Reset::None => Err(illegal(format!(
                    "no valid committed offset for {}-{} and auto.offset.reset is none",
                    tp.0, tp.1
                ))),
            },
        }
    }
}

fn get_bool(v: &Value, field: &str) -> Result<bool, ApiError> {
    match v {
        Value::Bool(b) => Ok(*b),
        Value::String(s) if s == "true" || s == "false" => Ok(s == "true"),
        _ => Err(ApiError::invalid(code::INVALID_REQUEST, format!("field {field}: {v} is not true or false"))),
    }
}

fn get_u64(v: &Value, field: &str) -> Result<u64, ApiError> {
    let n = match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    };
    n.ok_or_else(|| {
        ApiError::invalid(code::INVALID_REQUEST, format!("field {field}: {v} is not a non-negative integer"))
    })
}

fn check_name(what: &str, s: &str) -> Result<(), ApiError> {
    if s.is_empty() || s.len() > CONSUMER_NAME_LEN_MAX || s.chars().any(|c| c.is_control() || c == '/') {
        return Err(ApiError::invalid(
            code::INVALID_REQUEST,
            format!("{what} {s:?} must be 1..={CONSUMER_NAME_LEN_MAX} characters without '/' or control characters"),
        ));
    }
    Ok(())
}

/// `POST /consumers/{group}`.
pub async fn create(
    State(state): State<AppState>,
    PathParams(group): PathParams<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    check_name("group", &group)?;
    let req: serde_json::Map<String, Value> = parse_body_or_default(&body)?;
    let reg = state.consumers();
    let mut name = None;
    let mut format = Format::Binary;
    let mut reset = Reset::Latest;
    let mut auto_commit = true;
    let mut request_timeout_ms = CONSUMER_REQUEST_TIMEOUT_MS_DEFAULT;
    let mut instance_timeout_ms = state.config().consumer_timeout_ms_default;
    for (k, v) in &req {
        match k.as_str() {
            "name" => {
                name = Some(v.as_str().ok_or_else(|| ApiError::payload("field name: must be a string"))?.to_string())
            }
            "format" => {
                format = match v.as_str() {
                    Some("json") => Format::Json,
                    Some("binary") => Format::Binary,
                    _ => {
                        return Err(ApiError::invalid(
                            code::INVALID_REQUEST,
                            format!("field format: {v} is not json or binary"),
                        ))
                    }
                }
            }
            "auto.offset.reset" | "auto_offset_reset" => {
                reset = match v.as_str() {
                    Some("earliest" | "smallest") => Reset::Earliest,
                    Some("latest" | "largest") => Reset::Latest,
                    Some("none") => Reset::None,
                    _ => {
                        return Err(ApiError::invalid(
                            code::INVALID_REQUEST,
                            format!("field auto.offset.reset: {v} is not earliest, latest or none"),
                        ))
                    }
                }
            }
            "auto.commit.enable" | "auto_commit_enable" => auto_commit = get_bool(v, k)?,
            "consumer.request.timeout.ms" => request_timeout_ms = get_u64(v, k)?.min(super::FETCH_TIMEOUT_MS_MAX),
            "consumer.instance.timeout.ms" => instance_timeout_ms = get_u64(v, k)?.max(1),
            "fetch.min.bytes" => {}
            other => {
                return Err(ApiError::invalid(code::INVALID_REQUEST, format!("unknown consumer config {other:?}")))
            }
        }
    }
    let id = match name {
        Some(n) => n,
        None => format!("rest-consumer-{}", reg.next_id.fetch_add(1, Ordering::Relaxed)),
    };
    check_name("name", &id)?;
    {
        let mut groups = reg.groups.lock();
        if groups.values().map(|g| g.instances.len()).sum::<usize>() >= CONSUMER_INSTANCES_MAX {
            return Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                code::UNAVAILABLE,
                format!("too many consumer instances (CONSUMER_INSTANCES_MAX = {CONSUMER_INSTANCES_MAX})"),
            ));
        }
        let g = groups.entry(group.clone()).or_default();
        if g.instances.contains_key(&id) {
            return Err(ApiError::conflict(
                code::CONSUMER_EXISTS,
                format!("consumer instance {id:?} already exists in group {group:?}"),
            ));
        }
        g.instances.insert(
            id.clone(),
            Instance {
                format,
                reset,
                auto_commit,
                request_timeout_ms,
                instance_timeout_ms,
                last_seen: Instant::now(),
                subscription: Subscription::None,
                positions: HashMap::new(),
                fetched: HashMap::new(),
                rotate: 0,
            },
        );
    }
    let base_uri = format!("{}/consumers/{group}/instances/{id}", state.config().advertised_uri);
    Ok(ok(&json!({"instance_id": id, "base_uri": base_uri})))
}

type InstancePath = PathParams<(String, String)>;

fn no_content() -> Response {
    StatusCode::NO_CONTENT.into_response()
}

pub async fn delete(
    State(state): State<AppState>,
    PathParams((group, id)): InstancePath,
) -> Result<Response, ApiError> {
    let reg = state.consumers();
    let mut groups = reg.groups.lock();
    let g = groups.get_mut(&group).ok_or_else(|| not_found(&group, &id))?;
    let inst = g.instances.remove(&id).ok_or_else(|| not_found(&group, &id))?;
    reg.auto_commit(&group, &inst);
    if g.instances.is_empty() {
        groups.remove(&group);
    } else {
        reg.rebalance(&group, g);
    }
    Ok(no_content())
}

#[derive(Debug, Default, Deserialize)]
struct SubscribeRequest {
    topics: Option<Vec<String>>,
    topic_pattern: Option<String>,
}

pub async fn subscribe(
    State(state): State<AppState>,
    PathParams((group, id)): InstancePath,
    body: Bytes,
) -> Result<Response, ApiError> {
    let req: SubscribeRequest = parse_body(&body)?;
    let sub = match (req.topics, req.topic_pattern) {
        (Some(t), None) if !t.is_empty() => {
            for name in &t {
                crate::validate_topic_name(name)?;
            }
            Subscription::Topics(t)
        }
        (None, Some(p)) => {
            let re = regex::Regex::new(&format!("^(?:{p})$")).map_err(|e| {
                ApiError::invalid(
                    code::INVALID_REQUEST,
                    format!("field topic_pattern: invalid regular expression: {e}"),
                )
            })?;
            Subscription::Pattern(p, re)
        }
        _ => {
            return Err(ApiError::invalid(
                code::INVALID_REQUEST,
                "give exactly one of topics (a non-empty list) or topic_pattern",
            ))
        }
    };
    let reg = state.consumers();
    reg.with_instance(&group, &id, |g, id| {
        let inst = g.instances.get_mut(id).expect("checked");
        if matches!(inst.subscription, Subscription::Manual(_)) {
            return Err(illegal("subscription to topics, partitions and pattern are mutually exclusive"));
        }
        inst.subscription = sub;
        reg.rebalance(&group, g);
        Ok(())
    })?;
    Ok(no_content())
}

pub async fn subscription(
    State(state): State<AppState>,
    PathParams((group, id)): InstancePath,
) -> Result<Response, ApiError> {
    let names = state.store().topic_names();
    let body = state.consumers().with_instance(&group, &id, |g, id| {
        Ok(match &g.instances[id].subscription {
            Subscription::Topics(t) => json!({"topics": t}),
            Subscription::Pattern(p, re) => {
                let topics: Vec<String> = names.into_iter().filter(|n| re.is_match(n)).collect();
                json!({"topics": topics, "topic_pattern": p})
            }
            _ => json!({"topics": []}),
        })
    })?;
    Ok(ok(&body))
}

pub async fn unsubscribe(
    State(state): State<AppState>,
    PathParams((group, id)): InstancePath,
) -> Result<Response, ApiError> {
    let reg = state.consumers();
    reg.with_instance(&group, &id, |g, id| {
        g.instances.get_mut(id).expect("checked").subscription = Subscription::None;
        reg.rebalance(&group, g);
        Ok(())
    })?;
    Ok(no_content())
}

#[derive(Debug, Default, Deserialize)]
struct PartitionsRequest {
    #[serde(default)]
    partitions: Vec<TopicPartition>,
}

pub async fn assign(
    State(state): State<AppState>,
    PathParams((group, id)): InstancePath,
    body: Bytes,
) -> Result<Response, ApiError> {
    let req: PartitionsRequest = parse_body(&body)?;
    let mut list = Vec::with_capacity(req.partitions.len());
    for tp in req.partitions {
        state.store().topic(&tp.topic)?.partition(tp.partition)?;
        list.push((tp.topic, tp.partition));
    }
    let reg = state.consumers();
    reg.with_instance(&group, &id, |g, id| {
        let inst = g.instances.get_mut(id).expect("checked");
        if matches!(inst.subscription, Subscription::Topics(_) | Subscription::Pattern(..)) {
            return Err(illegal("subscription to topics, partitions and pattern are mutually exclusive"));
        }
        inst.subscription = if list.is_empty() { Subscription::None } else { Subscription::Manual(list) };
        reg.rebalance(&group, g);
        Ok(())
    })?;
    Ok(no_content())
}

fn owned(g: &Group, id: &str) -> Vec<Tp> {
    g.owners.iter().filter(|(_, o)| *o == id).map(|(tp, _)| tp.clone()).collect()
}

pub async fn assignments(
    State(state): State<AppState>,
    PathParams((group, id)): InstancePath,
) -> Result<Response, ApiError> {
    let reg = state.consumers();
    let list = reg.with_instance(&group, &id, |g, id| {
        reg.rebalance(&group, g);
        Ok(owned(g, id))
    })?;
    let partitions: Vec<TopicPartition> =
        list.into_iter().map(|(topic, partition)| TopicPartition { topic, partition }).collect();
    Ok(ok(&json!({"partitions": partitions})))
}

/// `GET …/records`: reads from the instance's owned partitions at their positions.
pub async fn records(
    State(state): State<AppState>,
    PathParams((group, id)): InstancePath,
    q: Params,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let reg = state.consumers();
    let include = Include::parse(q.get("include"))?;
    let (format, request_timeout_ms) = reg.with_instance(&group, &id, |g, id| {
        let i = &g.instances[id];
        Ok((i.format, i.request_timeout_ms))
    })?;
    if let Some(asked) = accept_format(&headers) {
        if asked != format {
            return Err(ApiError::new(
                StatusCode::NOT_ACCEPTABLE,
                code::CONSUMER_FORMAT_MISMATCH,
                format!(
                    "the requested embedded format ({:?}) does not match the consumer's ({:?}); use Accept: {}",
                    asked,
                    format,
                    format.content_type()
                ),
            ));
        }
    }
    let max_bytes = q.u64_or("max_bytes", super::FETCH_BYTES_DEFAULT)?.min(super::FETCH_BYTES_MAX);
    let timeout = Duration::from_millis(q.u64_or("timeout", request_timeout_ms)?.min(super::FETCH_TIMEOUT_MS_MAX));

    // Positions of the owned partitions, starting new ones from the committed offsets.
    let plan: Vec<(Tp, u64)> = reg.with_instance(&group, &id, |g, id| {
        reg.rebalance(&group, g);
        let mine = owned(g, id);
        let inst = g.instances.get_mut(id).expect("checked");
        if inst.auto_commit && !inst.fetched.is_empty() {
            let list: Vec<(Tp, u64)> = inst.fetched.iter().map(|(tp, o)| (tp.clone(), o + 1)).collect();
            reg.offsets.commit(&group, &list);
        }
        let mut plan = Vec::with_capacity(mine.len());
        for tp in mine {
            let pos = match inst.positions.get(&tp) {
                Some(&p) => p,
                None => {
                    let p = reg.start_position(&group, &tp, inst.reset)?;
                    inst.positions.insert(tp.clone(), p);
                    p
                }
            };
            plan.push((tp, pos));
        }
        if !plan.is_empty() {
            inst.rotate = (inst.rotate + 1) % plan.len();
            plan.rotate_left(inst.rotate);
        }
        Ok(plan)
    })?;

    let mut parts = Vec::with_capacity(plan.len());
    for (tp, pos) in &plan {
        let mut p = state.store().topic(&tp.0)?.partition(tp.1)?;
        let mut pos = *pos;
        if pos < p.log_start_offset() || pos > p.high_watermark() {
            // Retention removed it, or the log is shorter than the position: apply the reset policy.
            let reset = reg.with_instance(&group, &id, |g, id| Ok(g.instances[id].reset))?;
            pos = match reset {
                Reset::Earliest => p.log_start_offset(),
                Reset::Latest => p.high_watermark(),
                Reset::None => return Err(illegal(format!("position {pos} of {}-{} is out of range", tp.0, tp.1))),
            };
        }
        p = p.clone();
        parts.push((tp.clone(), p, pos));
    }
    // Long-poll: wait until any owned partition has data past its position, or the timeout.
    let has_data = |parts: &[(Tp, crate::Partition, u64)]| parts.iter().any(|(_, p, pos)| p.high_watermark() > *pos);
    if !parts.is_empty() && !has_data(&parts) && !timeout.is_zero() {
        let mut set = tokio::task::JoinSet::new();
        for (_, p, pos) in &parts {
            let (p, pos) = (p.clone(), *pos);
            set.spawn(async move { p.wait_for_data(pos).await });
        }
        let _ = tokio::time::timeout(timeout, set.join_next()).await;
        set.abort_all();
    } else if parts.is_empty() && !timeout.is_zero() {
        // Nothing assigned (yet): wait a little so clients polling in a loop do not spin.
        tokio::time::sleep(timeout.min(Duration::from_millis(100))).await;
    }
    let mut out: Vec<(Tp, Vec<Record>)> = Vec::new();
    let mut budget = max_bytes;
    let mut records_budget = FETCH_RECORDS_MAX;
    for (tp, p, pos) in &parts {
        if budget == 0 || records_budget == 0 {
            break;
        }
        if p.high_watermark() <= *pos {
            continue;
        }
        let recs = read_waiting(p, *pos, budget, records_budget, Duration::ZERO).await?;
        let bytes: u64 = recs
            .iter()
            .map(|r| (r.value.as_ref().map_or(0, |v| v.len()) + r.key.as_ref().map_or(0, |k| k.len())) as u64)
            .sum();
        budget = budget.saturating_sub(bytes);
        records_budget -= recs.len();
        out.push((tp.clone(), recs));
    }
    // Advance positions (only for partitions still owned by this instance).
    reg.with_instance(&group, &id, |g, id| {
        let mine = owned(g, id);
        let inst = g.instances.get_mut(id).expect("checked");
        for (tp, recs) in &out {
            if let (Some(last), true) = (recs.last(), mine.contains(tp)) {
                inst.positions.insert(tp.clone(), last.offset + 1);
                inst.fetched.insert(tp.clone(), last.offset);
            }
        }
        Ok(())
    })?;
    let mut body = Vec::new();
    let (mut count, mut bytes) = (0u64, 0u64);
    for (tp, recs) in &out {
        for r in recs {
            count += 1;
            bytes += r.value.as_ref().map_or(0, |v| v.len()) as u64;
            body.push(render_record(&tp.0, tp.1, r, format, include)?);
        }
    }
    state.metrics().fetched(count, bytes);
    let text = serde_json::to_vec(&body).expect("records serialize");
    Ok((StatusCode::OK, [(axum::http::header::CONTENT_TYPE, format.content_type())], text).into_response())
}

#[derive(Debug, Deserialize)]
struct OffsetIn {
    topic: String,
    partition: u32,
    offset: u64,
}

#[derive(Debug, Default, Deserialize)]
struct OffsetsRequest {
    #[serde(default, alias = "partitions")]
    offsets: Vec<OffsetIn>,
}

/// `POST …/offsets`: commits `offset + 1` for each entry (Confluent v2: the offset given is the
/// last record processed); an empty body commits everything fetched so far.
pub async fn commit(
    State(state): State<AppState>,
    PathParams((group, id)): InstancePath,
    body: Bytes,
) -> Result<Response, ApiError> {
    let req: OffsetsRequest = parse_body_or_default(&body)?;
    let reg = state.consumers();
    let list: Vec<(Tp, u64)> = if req.offsets.is_empty() {
        reg.with_instance(&group, &id, |g, id| {
            Ok(g.instances[id].fetched.iter().map(|(tp, o)| (tp.clone(), o + 1)).collect())
        })?
    } else {
        reg.with_instance(&group, &id, |_, _| Ok(()))?;
        let mut list = Vec::with_capacity(req.offsets.len());
        for o in req.offsets {
            let p = state.store().topic(&o.topic)?.partition(o.partition)?;
            let next = o.offset.checked_add(1).filter(|n| *n <= p.high_watermark()).ok_or_else(|| {
                ApiError::invalid(
                    code::INVALID_REQUEST,
                    format!(
                        "offset {} of {}-{} is past the end {}",
                        o.offset,
                        o.topic,
                        o.partition,
                        p.high_watermark()
                    ),
                )
            })?;
            list.push(((o.topic, o.partition), next));
        }
        list
    };
    reg.offsets.commit(&group, &list);
    Ok(no_content())
}

/// `GET …/offsets` (body `{"partitions": [...]}` optional): the committed offsets.
pub async fn committed(
    State(state): State<AppState>,
    PathParams((group, id)): InstancePath,
    body: Bytes,
) -> Result<Response, ApiError> {
    let req: PartitionsRequest = parse_body_or_default(&body)?;
    let reg = state.consumers();
    let list: Vec<Tp> = if req.partitions.is_empty() {
        reg.with_instance(&group, &id, |g, id| {
            reg.rebalance(&group, g);
            Ok(owned(g, id))
        })?
    } else {
        reg.with_instance(&group, &id, |_, _| Ok(()))?;
        req.partitions.into_iter().map(|tp| (tp.topic, tp.partition)).collect()
    };
    let offsets: Vec<Value> = list
        .into_iter()
        .filter_map(|tp| {
            reg.offsets
                .committed(&group, &tp)
                .map(|o| json!({"topic": tp.0, "partition": tp.1, "offset": o, "metadata": ""}))
        })
        .collect();
    Ok(ok(&json!({"offsets": offsets})))
}

/// `POST …/positions`: the next fetch of each partition starts at the given offset.
pub async fn seek(
    State(state): State<AppState>,
    PathParams((group, id)): InstancePath,
    body: Bytes,
) -> Result<Response, ApiError> {
    let req: OffsetsRequest = parse_body(&body)?;
    let mut list = Vec::new();
    for o in req.offsets {
        let p = state.store().topic(&o.topic)?.partition(o.partition)?;
        if o.offset < p.log_start_offset() || o.offset > p.high_watermark() {
            return Err(ApiError::invalid(
                code::INVALID_REQUEST,
                format!(
                    "offset {} of {}-{} is outside {}..={}",
                    o.offset,
                    o.topic,
                    o.partition,
                    p.log_start_offset(),
                    p.high_watermark()
                ),
            ));
        }
        list.push(((o.topic, o.partition), o.offset));
    }
    set_positions(&state, &group, &id, list)
}

fn set_positions(state: &AppState, group: &str, id: &str, list: Vec<(Tp, u64)>) -> Result<Response, ApiError> {
    let reg = state.consumers();
    reg.with_instance(group, id, |g, id| {
        reg.rebalance(group, g);
        let mine = owned(g, id);
        let inst = g.instances.get_mut(id).expect("checked");
        for (tp, o) in list {
            if !mine.contains(&tp) {
                return Err(illegal(format!("partition {}-{} is not assigned to this consumer instance", tp.0, tp.1)));
            }
            inst.positions.insert(tp, o);
        }
        Ok(())
    })?;
    Ok(no_content())
}

async fn seek_edge(state: AppState, group: String, id: String, body: Bytes, end: bool) -> Result<Response, ApiError> {
    let req: PartitionsRequest = parse_body(&body)?;
    let mut list = Vec::new();
    for tp in req.partitions {
        let p = state.store().topic(&tp.topic)?.partition(tp.partition)?;
        let o = if end { p.high_watermark() } else { p.log_start_offset() };
        list.push(((tp.topic, tp.partition), o));
    }
    set_positions(&state, &group, &id, list)
}

pub async fn seek_beginning(
    State(state): State<AppState>,
    PathParams((group, id)): InstancePath,
    body: Bytes,
) -> Result<Response, ApiError> {
    seek_edge(state, group, id, body, false).await
}

pub async fn seek_end(
    State(state): State<AppState>,
    PathParams((group, id)): InstancePath,
    body: Bytes,
) -> Result<Response, ApiError> {
    seek_edge(state, group, id, body, true).await
}
