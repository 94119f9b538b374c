//! Every consumer instance of the broker: creation, lookup, idle expiry and removal. An instance
//! is idle when no request uses it and its last request ended longer ago than its
//! `consumer.instance.timeout.ms`, by the store's clock. Whichever path removes it (a delete, the
//! reaper, a request that finds it expired), it goes the same way: [`Instance::retire`]
//! auto-commits and leaves the group.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use axum::http::StatusCode;
use parking_lot::Mutex;

use super::super::errors::{code, ApiError};
use super::super::topics::blocking;
use super::super::AppState;
use super::instance::{Instance, Settings};
use super::CONSUMER_INSTANCES_MAX;
use crate::groups::GroupCoordinator;
use crate::Store;

type Key = (String, String);

/// One registered instance, with what its idle expiry needs outside its lock.
#[derive(Debug)]
pub(super) struct Slot {
    pub instance: Mutex<Instance>,
    timeout_ms: u64,
    /// Requests using the instance now: while any is, it is not idle.
    in_flight: AtomicUsize,
    /// When its last request began or ended (store clock, ms).
    last_seen_ms: AtomicI64,
}

impl Slot {
    /// Idle past its timeout at `now_ms`. Called under the registry's map lock.
    fn expired(&self, now_ms: i64) -> bool {
        self.in_flight.load(Ordering::SeqCst) == 0
            && now_ms.saturating_sub(self.last_seen_ms.load(Ordering::SeqCst)) > self.timeout_ms as i64
    }
}

/// A request's use of an instance: the instance is not idle until it is dropped.
#[derive(Debug)]
pub(super) struct InUse {
    slot: Arc<Slot>,
    key: Key,
    store: Store,
}

impl InUse {
    /// Runs `f` on the instance, under its lock, on the blocking pool (coordinator calls may
    /// fsync). An instance retired meanwhile is not found.
    pub async fn run<T: Send + 'static>(
        &self,
        state: &AppState,
        f: impl FnOnce(&Registry, &mut Instance) -> Result<T, ApiError> + Send + 'static,
    ) -> Result<T, ApiError> {
        let (slot, state, (group, id)) = (Arc::clone(&self.slot), state.clone(), self.key.clone());
        blocking(move || {
            let mut instance = slot.instance.lock();
            if instance.retired {
                return Err(not_found(&group, &id));
            }
            f(state.consumers(), &mut instance)
        })
        .await
    }
}

/// Runs `f` on the instance `(group, id)` on the blocking pool: [`Registry::enter`], then
/// [`InUse::run`].
pub(super) async fn on_instance<T: Send + 'static>(
    state: &AppState,
    group: &str,
    id: &str,
    f: impl FnOnce(&Registry, &mut Instance) -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    state.consumers().enter(group, id).await?.run(state, f).await
}

impl Drop for InUse {
    fn drop(&mut self) {
        // Seen before no longer in flight: the reaper never finds it idle in between.
        self.slot.last_seen_ms.store(self.store.config().clock.now_ms(), Ordering::SeqCst);
        self.slot.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

/// All consumer instances of the broker, over the group coordinator.
#[derive(Debug)]
pub struct Registry {
    store: Store,
    coordinator: GroupCoordinator,
    instances: Mutex<BTreeMap<Key, Arc<Slot>>>,
    next_id: AtomicU64,
}

pub(super) fn not_found(group: &str, instance: &str) -> ApiError {
    ApiError::not_found(
        code::CONSUMER_INSTANCE_NOT_FOUND,
        format!("consumer instance {instance:?} not found in group {group:?} (it may have expired)"),
    )
}

impl Registry {
    pub fn new(store: Store, coordinator: GroupCoordinator) -> Registry {
        Registry { store, coordinator, instances: Mutex::new(BTreeMap::new()), next_id: AtomicU64::new(1) }
    }

    pub fn coordinator(&self) -> &GroupCoordinator {
        &self.coordinator
    }

    pub(super) fn store(&self) -> &Store {
        &self.store
    }

    fn now_ms(&self) -> i64 {
        self.store.config().clock.now_ms()
    }

    /// Registers a new instance of `group` (named by `settings`, or `rest-consumer-N`); returns
    /// its id.
    pub(super) fn create(&self, group: &str, settings: &Settings) -> Result<String, ApiError> {
        let id = match &settings.name {
            Some(n) => n.clone(),
            None => format!("rest-consumer-{}", self.next_id.fetch_add(1, Ordering::Relaxed)),
        };
        check_name(&id)?;
        let instance = Instance::new(&self.coordinator, group, settings)?;
        let mut all = self.instances.lock();
        if all.len() >= CONSUMER_INSTANCES_MAX {
            return Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                code::UNAVAILABLE,
                format!("too many consumer instances (CONSUMER_INSTANCES_MAX = {CONSUMER_INSTANCES_MAX})"),
            ));
        }
        let key = (group.to_string(), id.clone());
        if all.contains_key(&key) {
            return Err(ApiError::conflict(
                code::CONSUMER_EXISTS,
                format!("consumer instance {id:?} already exists in group {group:?}"),
            ));
        }
        let slot = Slot {
            instance: Mutex::new(instance),
            timeout_ms: settings.instance_timeout_ms,
            in_flight: AtomicUsize::new(0),
            last_seen_ms: AtomicI64::new(self.now_ms()),
        };
        all.insert(key, Arc::new(slot));
        Ok(id)
    }

    /// The instance, in use by the caller until the returned guard drops. An instance already
    /// idle past its timeout (the reaper not there yet) is retired now and is not found.
    pub(super) async fn enter(&self, group: &str, id: &str) -> Result<InUse, ApiError> {
        let key = (group.to_string(), id.to_string());
        let slot = {
            let mut all = self.instances.lock();
            let slot = all.get(&key).cloned().ok_or_else(|| not_found(group, id))?;
            if slot.expired(self.now_ms()) {
                all.remove(&key);
                Err(slot)
            } else {
                slot.in_flight.fetch_add(1, Ordering::SeqCst);
                slot.last_seen_ms.store(self.now_ms(), Ordering::SeqCst);
                Ok(slot)
            }
        };
        match slot {
            Ok(slot) => Ok(InUse { slot, key, store: self.store.clone() }),
            Err(slot) => {
                tracing::info!(group, instance = id, "consumer instance expired");
                // Committing and leaving may write: on the blocking pool.
                blocking(move || {
                    slot.instance.lock().retire();
                    Ok(())
                })
                .await?;
                Err(not_found(group, id))
            }
        }
    }

    /// Removes the instance (a delete); it commits and leaves as an expired one does. Blocking.
    pub(super) fn remove(&self, group: &str, id: &str) -> Result<(), ApiError> {
        let slot = self.instances.lock().remove(&(group.to_string(), id.to_string()));
        slot.ok_or_else(|| not_found(group, id))?.instance.lock().retire();
        Ok(())
    }

    /// Removes instances idle past their timeout (they commit and leave their groups), and lets
    /// the coordinator expire lapsed sessions. Blocking.
    pub fn reap(&self) {
        let now = self.now_ms();
        let expired: Vec<(Key, Arc<Slot>)> = {
            let mut all = self.instances.lock();
            let keys: Vec<Key> = all.iter().filter(|(_, s)| s.expired(now)).map(|(k, _)| k.clone()).collect();
            keys.into_iter().filter_map(|k| all.remove(&k).map(|s| (k, s))).collect()
        };
        for ((group, id), slot) in expired {
            tracing::info!(group, instance = id, "consumer instance expired");
            slot.instance.lock().retire();
        }
        self.coordinator.expire_sessions();
    }
}

fn check_name(s: &str) -> Result<(), ApiError> {
    let max = super::CONSUMER_NAME_LEN_MAX;
    if s.is_empty() || s.len() > max || s.chars().any(|c| c.is_control() || c == '/') {
        return Err(super::instance::invalid(format!(
            "name {s:?} must be 1..={max} characters without '/' or control characters"
        )));
    }
    Ok(())
}
