//! One consumer instance: its settings (the body of `POST /consumers/{group}`), its subscription
//! as the client gave it, and the [`Consumer`] that keeps its membership, positions and commits.

use serde_json::Value;

use super::super::content::Format;
use super::super::errors::{code, ApiError};
use super::super::FETCH_BYTES_MAX;
use super::{CONSUMER_REQUEST_TIMEOUT_MS_DEFAULT, CONSUMER_SESSION_MARGIN_MS};
use crate::groups::{
    AutoOffsetReset, Consumer, ConsumerConfig, GroupCoordinator, GroupError, TopicPartition, OFFSETS_TOPIC,
    SESSION_TIMEOUT_MS_MAX, SESSION_TIMEOUT_MS_MIN,
};
use crate::Store;

pub(super) fn invalid(msg: impl Into<String>) -> ApiError {
    ApiError::invalid(code::INVALID_REQUEST, msg)
}

pub(super) fn illegal(msg: impl Into<String>) -> ApiError {
    ApiError::conflict(code::ILLEGAL_STATE, msg)
}

/// What the client asked to read.
#[derive(Debug, Clone)]
pub(super) enum Subscription {
    None,
    Topics(Vec<String>),
    /// The pattern as given, and compiled (anchored).
    Pattern(String, regex::Regex),
    Manual(Vec<TopicPartition>),
}

/// An instance's configuration, from the body of `POST /consumers/{group}`.
#[derive(Debug, Clone)]
pub(super) struct Settings {
    pub name: Option<String>,
    pub format: Format,
    pub reset: AutoOffsetReset,
    pub auto_commit: bool,
    pub request_timeout_ms: u64,
    pub instance_timeout_ms: u64,
}

impl Settings {
    /// Parses the creation body (Confluent's names, and `_` spellings of some); unknown settings
    /// are refused.
    pub fn parse(body: &serde_json::Map<String, Value>, instance_timeout_ms: u64) -> Result<Settings, ApiError> {
        let mut s = Settings {
            name: None,
            format: Format::Binary,
            reset: AutoOffsetReset::Latest,
            auto_commit: true,
            request_timeout_ms: CONSUMER_REQUEST_TIMEOUT_MS_DEFAULT,
            instance_timeout_ms,
        };
        for (k, v) in body {
            match k.as_str() {
                "name" => {
                    let name = v.as_str().ok_or_else(|| ApiError::payload("field name: must be a string"))?;
                    s.name = Some(name.to_string());
                }
                "format" => {
                    s.format = match v.as_str() {
                        Some("json") => Format::Json,
                        Some("binary") => Format::Binary,
                        _ => return Err(invalid(format!("field format: {v} is not json or binary"))),
                    }
                }
                "auto.offset.reset" | "auto_offset_reset" => {
                    s.reset = v
                        .as_str()
                        .ok_or_else(|| invalid(format!("field {k}: {v} is not a string")))?
                        .parse()
                        .map_err(|e: GroupError| invalid(format!("field {k}: {e}")))?
                }
                "auto.commit.enable" | "auto_commit_enable" => s.auto_commit = get_bool(v, k)?,
                "consumer.request.timeout.ms" => {
                    s.request_timeout_ms = get_u64(v, k)?.min(super::super::FETCH_TIMEOUT_MS_MAX)
                }
                "consumer.instance.timeout.ms" => {
                    let ms = get_u64(v, k)?;
                    let min = super::super::CONSUMER_INSTANCE_TIMEOUT_MS_MIN;
                    if ms < min {
                        return Err(invalid(format!("field {k}: {ms} is below the minimum, {min} ms")));
                    }
                    s.instance_timeout_ms = ms;
                }
                "fetch.min.bytes" => {}
                other => return Err(invalid(format!("unknown consumer config {other:?}"))),
            }
        }
        Ok(s)
    }

    fn consumer_config(&self) -> ConsumerConfig {
        ConsumerConfig {
            session_timeout_ms: self
                .instance_timeout_ms
                .saturating_add(CONSUMER_SESSION_MARGIN_MS)
                .clamp(SESSION_TIMEOUT_MS_MIN, SESSION_TIMEOUT_MS_MAX),
            auto_offset_reset: self.reset,
            fetch_bytes_max: FETCH_BYTES_MAX as usize,
            auto_commit: self.auto_commit,
            ..ConsumerConfig::default()
        }
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

#[derive(Debug)]
pub(super) struct Instance {
    pub format: Format,
    pub request_timeout_ms: u64,
    pub subscription: Subscription,
    pub consumer: Consumer,
    /// Set once the instance is deleted or expired: a request still holding it answers 404.
    pub retired: bool,
}

impl Instance {
    pub fn new(coordinator: &GroupCoordinator, group: &str, settings: &Settings) -> Result<Instance, ApiError> {
        Ok(Instance {
            format: settings.format,
            request_timeout_ms: settings.request_timeout_ms,
            subscription: Subscription::None,
            consumer: Consumer::new(coordinator, group, settings.consumer_config())?,
            retired: false,
        })
    }

    /// The topics the subscription stands for now: a pattern matches the topics that exist.
    pub fn topics(&self, store: &Store) -> Vec<String> {
        match &self.subscription {
            Subscription::Topics(t) => {
                let mut t = t.clone();
                t.sort();
                t.dedup();
                t
            }
            Subscription::Pattern(_, re) => {
                store.topic_names().into_iter().filter(|n| re.is_match(n) && n != OFFSETS_TOPIC).collect()
            }
            Subscription::None | Subscription::Manual(_) => Vec::new(),
        }
    }

    /// Brings the membership up to date with the subscription (a pattern that matches new topics
    /// rejoins) and heartbeats. Blocking.
    pub fn sync(&mut self, store: &Store) -> Result<(), ApiError> {
        if let Subscription::Topics(_) | Subscription::Pattern(..) = self.subscription {
            let topics = self.topics(store);
            self.consumer.subscribe_to(topics)?;
        }
        Ok(self.consumer.refresh()?)
    }

    /// Replaces the subscription (the caller checks that topics and a manual assignment are not
    /// mixed). Blocking.
    pub fn set_subscription(&mut self, subscription: Subscription, store: &Store) -> Result<(), ApiError> {
        match &subscription {
            Subscription::None => {
                if let Err(e) = self.consumer.unsubscribe() {
                    tracing::debug!(group = self.consumer.group(), error = %e, "leave failed (already evicted?)");
                }
            }
            Subscription::Manual(list) => self.consumer.assign_partitions(list.clone())?,
            Subscription::Topics(_) | Subscription::Pattern(..) => {}
        }
        self.subscription = subscription;
        self.sync(store)
    }

    /// Auto-commits (when enabled) and leaves the group; the instance answers 404 from now on.
    /// Blocking.
    pub fn retire(&mut self) {
        self.retired = true;
        if let Err(e) = self.consumer.unsubscribe() {
            tracing::debug!(group = self.consumer.group(), error = %e, "leave failed (already evicted?)");
        }
    }
}
