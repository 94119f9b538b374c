//! Consumer instances (REST Proxy v2): per-instance sessions over consumer groups. An instance
//! has a format, a subscription (topics or a pattern) or a manual assignment, positions, and what
//! it fetched. A subscribed instance is a member of its group in the [`GroupCoordinator`]: the
//! coordinator splits the partitions (generations, no partition readable by two members at once),
//! keeps committed offsets durably, and evicts members whose session lapsed. An instance idle past
//! its `consumer.instance.timeout.ms` is removed here too, and leaves its group.
//!
//! Coordinator calls may fsync (commits), so they run on the blocking pool; each instance has its
//! own lock, held only there, never across a long-poll.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use parking_lot::Mutex;
use serde::Deserialize;
use serde_json::{json, Value};

use super::content::{
    accept_format, parse_body, parse_body_or_default, render_record, Format, Include, Params, PathParams,
};
use super::errors::{code, ApiError};
use super::fetch::read_waiting;
use super::topics::{blocking, ok};
use super::{AppState, FETCH_RECORDS_MAX};
use crate::groups::{
    AutoOffsetReset, GroupCoordinator, GroupError, JoinRequest, TopicPartition, SESSION_TIMEOUT_MS_MAX,
    SESSION_TIMEOUT_MS_MIN,
};
use crate::{Error, Partition, Record, Store};

/// Default idle time after which an instance is removed (Confluent's `consumer.instance.timeout.ms`).
pub const CONSUMER_TIMEOUT_MS_DEFAULT: u64 = 300_000;
/// Default long-poll of a records fetch (Confluent's `consumer.request.timeout.ms`).
pub const CONSUMER_REQUEST_TIMEOUT_MS_DEFAULT: u64 = 1000;
/// Most instances in the whole broker.
pub const CONSUMER_INSTANCES_MAX: usize = 10_000;
/// Longest consumer instance name.
pub const CONSUMER_NAME_LEN_MAX: usize = 249;

#[derive(Debug, Clone)]
enum Subscription {
    None,
    Topics(Vec<String>),
    Pattern(String, regex::Regex),
    Manual(Vec<TopicPartition>),
}

/// The instance's membership in its group.
#[derive(Debug, Clone)]
struct Member {
    id: String,
    generation: u64,
    topics: Vec<String>,
}

#[derive(Debug)]
struct Instance {
    format: Format,
    reset: AutoOffsetReset,
    auto_commit: bool,
    request_timeout_ms: u64,
    instance_timeout_ms: u64,
    last_seen: Instant,
    subscription: Subscription,
    member: Option<Member>,
    /// What the instance may read now (its assignment less partitions not yet released).
    readable: Vec<TopicPartition>,
    /// Everything assigned in the current generation (pending included).
    assigned: Vec<TopicPartition>,
    /// The next offset to read of each readable partition.
    positions: HashMap<TopicPartition, u64>,
    /// The last offset returned by a fetch, per partition (what an empty commit commits).
    fetched: HashMap<TopicPartition, u64>,
    /// Round-robin start for fetches across partitions.
    rotate: usize,
}

type Shared = Arc<Mutex<Instance>>;

/// All consumer instances of the broker, over the group coordinator.
#[derive(Debug)]
pub struct Registry {
    store: Store,
    coordinator: GroupCoordinator,
    instances: Mutex<BTreeMap<(String, String), Shared>>,
    next_id: AtomicU64,
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

fn invalid(msg: impl Into<String>) -> ApiError {
    ApiError::invalid(code::INVALID_REQUEST, msg)
}

impl Registry {
    pub fn new(store: Store, coordinator: GroupCoordinator) -> Registry {
        Registry { store, coordinator, instances: Mutex::new(BTreeMap::new()), next_id: AtomicU64::new(1) }
    }

    pub fn coordinator(&self) -> &GroupCoordinator {
        &self.coordinator
    }

    /// The instance, its idle clock restarted. An instance already idle past its timeout is gone
    /// (even before the reaper gets to it): it is removed now and leaves its group.
    fn get(&self, group: &str, id: &str) -> Result<Shared, ApiError> {
        let key = (group.to_string(), id.to_string());
        let inst = self.instances.lock().get(&key).cloned();
        let inst = inst.ok_or_else(|| not_found(group, id))?;
        let expired = {
            let mut i = inst.lock();
            let expired = i.last_seen.elapsed() > Duration::from_millis(i.instance_timeout_ms);
            if !expired {
                i.last_seen = Instant::now();
            }
            expired
        };
        if expired {
            self.instances.lock().remove(&key);
            let coordinator = self.coordinator.clone();
            let group = group.to_string();
            // Leaving may write: on the blocking pool (callers are async handlers).
            tokio::task::spawn_blocking(move || {
                if let Some(m) = inst.lock().member.take() {
                    let _ = coordinator.leave(&group, &m.id);
                }
            });
            return Err(not_found(&key.0, &key.1));
        }
        Ok(inst)
    }

    /// Removes instances idle past their timeout (they leave their groups), and lets the
    /// coordinator expire lapsed sessions. Blocking.
    pub fn reap(&self) {
        let now = Instant::now();
        let expired: Vec<((String, String), Shared)> = self
            .instances
            .lock()
            .iter()
            // An instance busy now (its lock held) is not idle; never wait for it under the map lock.
            .filter(|(_, i)| {
                i.try_lock()
                    .is_some_and(|i| now.duration_since(i.last_seen) > Duration::from_millis(i.instance_timeout_ms))
            })
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        for ((group, id), inst) in expired {
            tracing::info!(group, instance = id, "consumer instance expired");
            self.instances.lock().remove(&(group.clone(), id));
            self.close(&group, &mut inst.lock());
        }
        self.coordinator.expire_sessions();
    }

    /// Auto-commits (when enabled) and leaves the group. Blocking.
    fn close(&self, group: &str, inst: &mut Instance) {
        if inst.auto_commit {
            let _ = self.commit_fetched(group, inst);
        }
        if let Some(m) = inst.member.take() {
            if let Err(e) = self.coordinator.leave(group, &m.id) {
                tracing::debug!(group, member = m.id, error = %e, "leave failed (already evicted?)");
            }
        }
    }

    /// Commits `offset + 1` of everything fetched since the last such commit. Blocking.
    fn commit_fetched(&self, group: &str, inst: &mut Instance) -> Result<(), ApiError> {
        let list: Vec<(TopicPartition, u64, Option<String>)> =
            inst.fetched.iter().map(|(tp, o)| (tp.clone(), o + 1, None)).collect();
        if list.is_empty() {
            return Ok(());
        }
        self.commit(group, inst, &list)?;
        // Committed: the next auto-commit does not write (and fsync) the same offsets again.
        inst.fetched.clear();
        Ok(())
    }

    fn commit(
        &self,
        group: &str,
        inst: &Instance,
        list: &[(TopicPartition, u64, Option<String>)],
    ) -> Result<(), ApiError> {
        let member = inst.member.as_ref().map(|m| (m.id.as_str(), m.generation));
        Ok(self.coordinator.commit(group, member, list)?)
    }

    fn topics_of(&self, sub: &Subscription) -> Vec<String> {
        match sub {
            Subscription::Topics(t) => {
                let mut t = t.clone();
                t.sort();
                t.dedup();
                t
            }
            Subscription::Pattern(_, re) => self
                .store
                .topic_names()
                .into_iter()
                .filter(|n| re.is_match(n) && n != crate::groups::OFFSETS_TOPIC)
                .collect(),
            _ => Vec::new(),
        }
    }

    /// Brings the instance's membership up to date (joins, heartbeats, rejoins after a rebalance)
    /// and computes what it may read. Blocking.
    fn sync(&self, group: &str, inst: &mut Instance) -> Result<(), ApiError> {
        let (assigned, readable) = match &inst.subscription {
            Subscription::Manual(list) => (list.clone(), list.clone()),
            Subscription::None => {
                if let Some(m) = inst.member.take() {
                    let _ = self.coordinator.leave(group, &m.id);
                }
                (Vec::new(), Vec::new())
            }
            sub => {
                let topics = self.topics_of(sub);
                let join = |member_id: Option<String>| {
                    self.coordinator.join(
                        group,
                        JoinRequest {
                            member_id,
                            topics: topics.clone(),
                            session_timeout_ms: inst
                                .instance_timeout_ms
                                .clamp(SESSION_TIMEOUT_MS_MIN, SESSION_TIMEOUT_MS_MAX),
                            auto_offset_reset: inst.reset,
                            ..JoinRequest::default()
                        },
                    )
                };
                let membership = match &inst.member {
                    Some(m) if m.topics == topics => match self.coordinator.heartbeat(group, &m.id, m.generation) {
                        Ok(ms) => ms,
                        Err(Error::Group(GroupError::IllegalGeneration { .. })) => join(Some(m.id.clone()))?,
                        Err(Error::Group(GroupError::UnknownMember { .. })) => join(None)?,
                        Err(e) => return Err(e.into()),
                    },
                    Some(m) => match join(Some(m.id.clone())) {
                        Err(Error::Group(GroupError::UnknownMember { .. })) => join(None)?,
                        r => r?,
                    },
                    None => join(None)?,
                };
                if inst.member.as_ref().is_some_and(|m| m.id != membership.member_id) {
                    // Evicted (a forced reset, a session that timed out), it joined as a new member:
                    // as Kafka's consumer after losing its partitions, it starts again from what the
                    // group committed (others may have read them since, or a reset moved them), and
                    // what it fetched before is not its to commit.
                    inst.positions.clear();
                    inst.fetched.clear();
                }
                inst.member =
                    Some(Member { id: membership.member_id.clone(), generation: membership.generation, topics });
                let readable =
                    membership.assignment.iter().filter(|tp| !membership.pending.contains(tp)).cloned().collect();
                (membership.assignment, readable)
            }
        };
        inst.positions.retain(|tp, _| readable.contains(tp));
        inst.fetched.retain(|tp, _| readable.contains(tp));
        inst.assigned = assigned;
        inst.readable = readable;
        Ok(())
    }
}

fn get_bool(v: &Value, field: &str) -> Result<bool, ApiError> {
    match v {
        Value::Bool(b) => Ok(*b),
        Value::String(s) if s == "true" || s == "false" => Ok(s == "true"),
        _ => Err(invalid(format!("field {field}: {v} is not true or false"))),
    }
}

fn get_u64(v: &Value, field: &str) -> Result<u64, ApiError> {
    let n = match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    };
    n.ok_or_else(|| invalid(format!("field {field}: {v} is not a non-negative integer")))
}

fn check_name(s: &str) -> Result<(), ApiError> {
    if s.is_empty() || s.len() > CONSUMER_NAME_LEN_MAX || s.chars().any(|c| c.is_control() || c == '/') {
        return Err(invalid(format!(
            "name {s:?} must be 1..={CONSUMER_NAME_LEN_MAX} characters without '/' or control characters"
        )));
    }
    Ok(())
}

/// `POST /consumers/{group}`.
pub async fn create(
    State(state): State<AppState>,
    PathParams(group): PathParams<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    crate::groups::validate_group_name(&group).map_err(|e| ApiError::from(Error::from(e)))?;
    let req: serde_json::Map<String, Value> = parse_body_or_default(&body)?;
    let reg = state.consumers();
    let mut name = None;
    let mut format = Format::Binary;
    let mut reset = AutoOffsetReset::Latest;
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
                    _ => return Err(invalid(format!("field format: {v} is not json or binary"))),
                }
            }
            "auto.offset.reset" | "auto_offset_reset" => {
                reset = v
                    .as_str()
                    .ok_or_else(|| invalid(format!("field {k}: {v} is not a string")))?
                    .parse()
                    .map_err(|e: GroupError| invalid(format!("field {k}: {e}")))?
            }
            "auto.commit.enable" | "auto_commit_enable" => auto_commit = get_bool(v, k)?,
            "consumer.request.timeout.ms" => request_timeout_ms = get_u64(v, k)?.min(super::FETCH_TIMEOUT_MS_MAX),
            "consumer.instance.timeout.ms" => instance_timeout_ms = get_u64(v, k)?.max(1),
            "fetch.min.bytes" => {}
            other => return Err(invalid(format!("unknown consumer config {other:?}"))),
        }
    }
    let id = match name {
        Some(n) => n,
        None => format!("rest-consumer-{}", reg.next_id.fetch_add(1, Ordering::Relaxed)),
    };
    check_name(&id)?;
    {
        let mut all = reg.instances.lock();
        if all.len() >= CONSUMER_INSTANCES_MAX {
            return Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                code::UNAVAILABLE,
                format!("too many consumer instances (CONSUMER_INSTANCES_MAX = {CONSUMER_INSTANCES_MAX})"),
            ));
        }
        let key = (group.clone(), id.clone());
        if all.contains_key(&key) {
            return Err(ApiError::conflict(
                code::CONSUMER_EXISTS,
                format!("consumer instance {id:?} already exists in group {group:?}"),
            ));
        }
        all.insert(
            key,
            Arc::new(Mutex::new(Instance {
                format,
                reset,
                auto_commit,
                request_timeout_ms,
                instance_timeout_ms,
                last_seen: Instant::now(),
                subscription: Subscription::None,
                member: None,
                readable: Vec::new(),
                assigned: Vec::new(),
                positions: HashMap::new(),
                fetched: HashMap::new(),
                rotate: 0,
            })),
        );
    }
    let base_uri = format!("{}/consumers/{group}/instances/{id}", state.config().advertised_uri);
    Ok(ok(&json!({"instance_id": id, "base_uri": base_uri})))
}

type InstancePath = PathParams<(String, String)>;

fn no_content() -> Response {
    StatusCode::NO_CONTENT.into_response()
}

/// Runs `f` on the instance on the blocking pool (coordinator calls may fsync).
async fn on_instance<T: Send + 'static>(
    state: &AppState,
    group: &str,
    id: &str,
    f: impl FnOnce(&Registry, &str, &mut Instance) -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    let inst = state.consumers().get(group, id)?;
    let state = state.clone();
    let group = group.to_string();
    blocking(move || f(state.consumers(), &group, &mut inst.lock())).await
}

pub async fn delete(
    State(state): State<AppState>,
    PathParams((group, id)): InstancePath,
) -> Result<Response, ApiError> {
    let inst = state.consumers().instances.lock().remove(&(group.clone(), id.clone()));
    let inst = inst.ok_or_else(|| not_found(&group, &id))?;
    let s = state.clone();
    blocking(move || {
        s.consumers().close(&group, &mut inst.lock());
        Ok(())
    })
    .await?;
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
                crate::limits::validate_topic_name(name)?;
            }
            Subscription::Topics(t)
        }
        (None, Some(p)) => {
            let re = regex::Regex::new(&format!("^(?:{p})$"))
                .map_err(|e| invalid(format!("field topic_pattern: invalid regular expression: {e}")))?;
            Subscription::Pattern(p, re)
        }
        _ => return Err(invalid("give exactly one of topics (a non-empty list) or topic_pattern")),
    };
    on_instance(&state, &group, &id, move |reg, group, inst| {
        if matches!(inst.subscription, Subscription::Manual(_)) {
            return Err(illegal("subscription to topics, partitions and pattern are mutually exclusive"));
        }
        inst.subscription = sub;
        reg.sync(group, inst)
    })
    .await?;
    Ok(no_content())
}

pub async fn subscription(
    State(state): State<AppState>,
    PathParams((group, id)): InstancePath,
) -> Result<Response, ApiError> {
    let body = on_instance(&state, &group, &id, |reg, _, inst| {
        Ok(match &inst.subscription {
            Subscription::Topics(t) => json!({"topics": t}),
            Subscription::Pattern(p, _) => json!({"topics": reg.topics_of(&inst.subscription), "topic_pattern": p}),
            _ => json!({"topics": []}),
        })
    })
    .await?;
    Ok(ok(&body))
}

pub async fn unsubscribe(
    State(state): State<AppState>,
    PathParams((group, id)): InstancePath,
) -> Result<Response, ApiError> {
    on_instance(&state, &group, &id, |reg, group, inst| {
        if inst.auto_commit {
            let _ = reg.commit_fetched(group, inst);
        }
        inst.subscription = Subscription::None;
        reg.sync(group, inst)
    })
    .await?;
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
    for tp in &req.partitions {
        state.store().topic(&tp.topic)?.partition(tp.partition)?;
    }
    on_instance(&state, &group, &id, move |reg, group, inst| {
        if matches!(inst.subscription, Subscription::Topics(_) | Subscription::Pattern(..)) {
            return Err(illegal("subscription to topics, partitions and pattern are mutually exclusive"));
        }
        inst.subscription =
            if req.partitions.is_empty() { Subscription::None } else { Subscription::Manual(req.partitions) };
        reg.sync(group, inst)
    })
    .await?;
    Ok(no_content())
}

pub async fn assignments(
    State(state): State<AppState>,
    PathParams((group, id)): InstancePath,
) -> Result<Response, ApiError> {
    let list = on_instance(&state, &group, &id, |reg, group, inst| {
        reg.sync(group, inst)?;
        Ok(inst.assigned.clone())
    })
    .await?;
    Ok(ok(&json!({"partitions": list})))
}

/// `GET …/records`: reads from the instance's readable partitions at their positions.
pub async fn records(
    State(state): State<AppState>,
    PathParams((group, id)): InstancePath,
    q: Params,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let include = Include::parse(q.get("include"))?;
    let max_bytes = q.u64_or("max_bytes", super::FETCH_BYTES_DEFAULT)?.min(super::FETCH_BYTES_MAX);
    let timeout_asked = q.get("timeout").map(|_| q.u64_or("timeout", 0)).transpose()?;
    let (format, request_timeout_ms) = {
        let inst = state.consumers().get(&group, &id)?;
        let i = inst.lock();
        (i.format, i.request_timeout_ms)
    };
    if let Some(asked) = accept_format(&headers) {
        if asked != format {
            return Err(ApiError::new(
                StatusCode::NOT_ACCEPTABLE,
                code::CONSUMER_FORMAT_MISMATCH,
                format!(
                    "the requested embedded format ({asked:?}) does not match the consumer's ({format:?}); use Accept: {}",
                    format.content_type()
                ),
            ));
        }
    }
    let timeout = Duration::from_millis(timeout_asked.unwrap_or(request_timeout_ms).min(super::FETCH_TIMEOUT_MS_MAX));

    // Membership, auto-commit of the previous fetch, and start positions: on the blocking pool.
    let plan: Vec<(TopicPartition, u64)> = on_instance(&state, &group, &id, |reg, group, inst| {
        if inst.auto_commit {
            if let Err(e) = reg.commit_fetched(group, inst) {
                tracing::debug!(group, error = %e.message, "auto-commit failed (rebalanced?)");
            }
        }
        reg.sync(group, inst)?;
        let mut plan = Vec::with_capacity(inst.readable.len());
        for tp in inst.readable.clone() {
            let p = reg.store.topic(&tp.topic)?.partition(tp.partition)?;
            let pos = match inst.positions.get(&tp) {
                Some(&pos) if (p.log_start_offset()..=p.high_watermark()).contains(&pos) => pos,
                _ => {
                    // New to this instance, or out of range (retention): committed, else the reset policy.
                    let pos = reg.coordinator.starting_offset(group, &tp, inst.reset)?;
                    inst.positions.insert(tp.clone(), pos);
                    pos
                }
            };
            plan.push((tp, pos));
        }
        if !plan.is_empty() {
            inst.rotate = (inst.rotate + 1) % plan.len();
            plan.rotate_left(inst.rotate);
        }
        Ok(plan)
    })
    .await?;

    let mut parts: Vec<(TopicPartition, Partition, u64)> = Vec::with_capacity(plan.len());
    for (tp, pos) in plan {
        let p = state.store().topic(&tp.topic)?.partition(tp.partition)?;
        parts.push((tp, p, pos));
    }
    // Long-poll: wait until any readable partition has data past its position, or the timeout.
    let has_data = parts.iter().any(|(_, p, pos)| p.high_watermark() > *pos);
    if !has_data && !timeout.is_zero() {
        if parts.is_empty() {
            // Nothing readable (yet: a rebalance in progress): wait a little so polling loops do not spin.
            tokio::select! {
                _ = tokio::time::sleep(timeout.min(Duration::from_millis(100))) => {}
                _ = state.drained() => {}
            }
        } else {
            let mut set = tokio::task::JoinSet::new();
            for (_, p, pos) in &parts {
                let (p, pos) = (p.clone(), *pos);
                set.spawn(async move { p.wait_for_data(pos).await });
            }
            tokio::select! {
                _ = tokio::time::timeout(timeout, set.join_next()) => {}
                _ = state.drained() => {}
            }
            set.abort_all();
        }
    }
    let mut out: Vec<(TopicPartition, Vec<Record>)> = Vec::new();
    let mut budget = max_bytes;
    let mut records_budget = FETCH_RECORDS_MAX;
    for (tp, p, pos) in &parts {
        if budget == 0 || records_budget == 0 {
            break;
        }
        if p.high_watermark() <= *pos {
            continue;
        }
        let recs = read_waiting(&state, p, *pos, budget, records_budget, Duration::ZERO).await?;
        let bytes: u64 = recs
            .iter()
            .map(|r| (r.value.as_ref().map_or(0, |v| v.len()) + r.key.as_ref().map_or(0, |k| k.len())) as u64)
            .sum();
        budget = budget.saturating_sub(bytes);
        records_budget -= recs.len();
        out.push((tp.clone(), recs));
    }
    // Render before advancing positions: a record that cannot be rendered is not skipped.
    let mut body = Vec::new();
    let (mut count, mut bytes) = (0u64, 0u64);
    for (tp, recs) in &out {
        for r in recs {
            count += 1;
            bytes += r.value.as_ref().map_or(0, |v| v.len()) as u64;
            body.push(render_record(&tp.topic, tp.partition, r, format, include)?);
        }
    }
    {
        let inst = state.consumers().get(&group, &id)?;
        let mut inst = inst.lock();
        for (tp, recs) in &out {
            if let (Some(last), true) = (recs.last(), inst.readable.contains(tp)) {
                inst.positions.insert(tp.clone(), last.offset + 1);
                inst.fetched.insert(tp.clone(), last.offset);
            }
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
    #[serde(default)]
    metadata: Option<String>,
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
    let mut list = Vec::with_capacity(req.offsets.len());
    for o in req.offsets {
        let next = o.offset.checked_add(1).ok_or_else(|| invalid(format!("offset {} is too large", o.offset)))?;
        list.push((TopicPartition::new(o.topic, o.partition), next, o.metadata));
    }
    on_instance(&state, &group, &id, move |reg, group, inst| {
        if list.is_empty() {
            reg.commit_fetched(group, inst)
        } else {
            reg.commit(group, inst, &list)
        }
    })
    .await?;
    Ok(no_content())
}

/// `GET …/offsets` (body `{"partitions": [...]}` optional): the committed offsets.
pub async fn committed(
    State(state): State<AppState>,
    PathParams((group, id)): InstancePath,
    body: Bytes,
) -> Result<Response, ApiError> {
    let req: PartitionsRequest = parse_body_or_default(&body)?;
    let offsets = on_instance(&state, &group, &id, move |reg, group, inst| {
        let list = if req.partitions.is_empty() { inst.assigned.clone() } else { req.partitions };
        Ok(list
            .into_iter()
            .filter_map(|tp| {
                reg.coordinator.committed(group, &tp).map(|c| {
                    json!({"topic": tp.topic, "partition": tp.partition, "offset": c.offset,
                           "metadata": c.metadata.unwrap_or_default()})
                })
            })
            .collect::<Vec<Value>>())
    })
    .await?;
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
        let (start, end) = (p.log_start_offset(), p.high_watermark());
        if !(start..=end).contains(&o.offset) {
            return Err(invalid(format!(
                "offset {} of {}-{} is outside {start}..={end}",
                o.offset, o.topic, o.partition
            )));
        }
        list.push((TopicPartition::new(o.topic, o.partition), o.offset));
    }
    set_positions(&state, &group, &id, list).await
}

async fn set_positions(
    state: &AppState,
    group: &str,
    id: &str,
    list: Vec<(TopicPartition, u64)>,
) -> Result<Response, ApiError> {
    on_instance(state, group, id, move |reg, group, inst| {
        reg.sync(group, inst)?;
        for (tp, o) in list {
            if !inst.assigned.contains(&tp) {
                return Err(illegal(format!("partition {tp} is not assigned to this consumer instance")));
            }
            inst.positions.insert(tp, o);
        }
        Ok(())
    })
    .await?;
    Ok(no_content())
}

async fn seek_edge(state: AppState, group: String, id: String, body: Bytes, end: bool) -> Result<Response, ApiError> {
    let req: PartitionsRequest = parse_body(&body)?;
    let mut list = Vec::new();
    for tp in req.partitions {
        let p = state.store().topic(&tp.topic)?.partition(tp.partition)?;
        let o = if end { p.high_watermark() } else { p.log_start_offset() };
        list.push((tp, o));
    }
    set_positions(&state, &group, &id, list).await
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
