//! Kubernetes' ResourceQuota admission plugin: the last step of a create (and of updates that can change
//! usage: claims, services, a pod's Terminating scope) before the object's etcd write.
//!
//! The namespace's quotas come from the api-server's own store of ResourceQuotas; the decision is
//! [`navarch_api::quota::check`]'s. Each quota the write charges gets its new `status.used` written with a
//! compare-and-swap on the quota's resourceVersion **before** the object is written (Kubernetes' way: a
//! write that fails afterwards over-charges until the resource quota controller recomputes, never
//! under-charges). A conflicting swap re-reads that quota from etcd and checks again against it alone
//! (quotas already charged stay charged), so concurrent creates never take a quota over its hard limit.
//! Writes to one namespace's quotas are serialized within this api-server (as Kubernetes' per-namespace
//! work queue does), and the quotas it wrote last are remembered until its store catches up, so a burst
//! of creates costs one swap each instead of a conflict each. A quota the store still shows uncomputed is
//! read from etcd first, so a create right after the controller computed it is checked against it.
//! Dry runs are checked but charge nothing.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime};

use navarch_api::quota::check::{Request, check};
use navarch_api::quota::evaluator::{Evaluator, Item, Operation};
use navarch_api::quota::to_quantities;
use navarch_api::v1::ResourceQuota;
use navarch_api::{Object, Resource};
use tracing::Instrument;

use crate::codec::{decode_value, encode_value, object_key};
use crate::error::ApiError;
use crate::local_store::LocalStore;
use crate::registry::Registry;
use crate::storage::StorageError;

/// The plugin's name (`--disable-admission-plugins`).
pub const PLUGIN: &str = "ResourceQuota";

/// Rounds of re-reading quotas whose swap conflicted (Kubernetes tries 3 times; conflicts here come only
/// from the controller and other api-servers).
const RETRIES: usize = 10;
/// How long a write waits for the quota store's first list after start.
const SYNC_WAIT: Duration = Duration::from_secs(5);

/// The plugin: the quota store and per-namespace serialization (off until it has a store).
#[derive(Default)]
pub struct QuotaAdmission {
    quotas: OnceLock<Arc<LocalStore>>,
    /// Namespace → the lock its quota writes take.
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// (namespace, name) → the quota as this api-server last wrote it, while the store is older.
    written: Mutex<HashMap<(String, String), ResourceQuota>>,
}

fn rv(q: &ResourceQuota) -> i64 {
    q.meta().resource_version.parse().unwrap_or(0)
}

fn forbidden(obj: &Object, reason: impl std::fmt::Display) -> ApiError {
    ApiError::Forbidden(format!("{} {:?} is forbidden: {reason}", obj.info().plural, obj.meta().name))
}

impl QuotaAdmission {
    /// Sets the store of ResourceQuotas (all namespaces) the plugin reads (once); until then it admits
    /// everything.
    pub fn set_store(&self, store: Arc<LocalStore>) {
        let _ = self.quotas.set(store);
    }

    /// Admits a create (`old` None) or an update of `obj`, charging the quotas it uses.
    pub async fn admit(
        &self,
        obj: &Object,
        old: Option<&Object>,
        dry_run: bool,
        registry: &Registry,
    ) -> Result<(), ApiError> {
        let (Some(quotas), Some(evaluator)) = (self.quotas.get(), Evaluator::for_kind(obj.info())) else {
            return Ok(());
        };
        let op = if old.is_some() { Operation::Update } else { Operation::Create };
        if !evaluator.handles(op, Item::of(obj), old.map(Item::of)) {
            return Ok(());
        }
        let namespace = obj.meta().namespace.clone();
        if !synced(quotas).await {
            return Err(forbidden(obj, "not yet ready to handle request"));
        }
        if !quotas.list().iter().any(|q| q.meta().namespace == namespace) {
            return Ok(());
        }
        let span = tracing::debug_span!("quota admission", key = %obj.key());
        let etcd = Etcd { registry, quotas };
        self.charge(&etcd, &evaluator, obj, old, dry_run, &namespace).instrument(span).await
    }

    fn lock_of(&self, namespace: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.locks.lock().unwrap_or_else(|p| p.into_inner());
        locks.entry(namespace.to_string()).or_default().clone()
    }

    /// The namespace's quotas: the store's, or what this api-server wrote when that is newer.
    fn current(&self, quotas: &LocalStore, namespace: &str) -> Vec<ResourceQuota> {
        let mut written = self.written.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = Vec::new();
        for o in quotas.list() {
            let Object::ResourceQuota(q) = o.as_ref() else { continue };
            if q.meta().namespace != namespace {
                continue;
            }
            let k = (namespace.to_string(), q.meta().name.clone());
            match written.get(&k) {
                Some(w) if rv(w) > rv(q) && w.meta().uid == q.meta().uid => out.push(w.clone()),
                Some(_) => {
                    written.remove(&k);
                    out.push(q.clone());
                }
                None => out.push(q.clone()),
            }
        }
        // Forget what was written to quotas deleted since.
        written.retain(|(ns, name), _| ns != namespace || out.iter().any(|q| q.meta().name == *name));
        out.sort_by(|a, b| a.meta().name.cmp(&b.meta().name));
        out
    }

    async fn charge(
        &self,
        etcd: &Etcd<'_>,
        evaluator: &Evaluator,
        obj: &Object,
        old: Option<&Object>,
        dry_run: bool,
        namespace: &str,
    ) -> Result<(), ApiError> {
        let lock = self.lock_of(namespace);
        let _serial = lock.lock().await;
        let mut pending = self.current(etcd.quotas, namespace);
        // A quota the store still shows uncomputed would not apply; the controller may have computed it
        // since (a client can see that before this store does), so ask etcd.
        let uncomputed: Vec<String> =
            pending.iter().filter(|q| uncomputed(q)).map(|q| q.meta().name.clone()).collect();
        if !uncomputed.is_empty() {
            pending.retain(|q| !uncomputed.contains(&q.meta().name));
            pending.extend(etcd.reread(namespace, &uncomputed).await?);
            pending.sort_by(|a, b| a.meta().name.cmp(&b.meta().name));
        }
        for _ in 0..RETRIES {
            let request =
                Request { evaluator, object: Item::of(obj), old: old.map(Item::of), now: SystemTime::now() };
            let charged = check(&pending, &request).map_err(|d| forbidden(obj, d))?;
            if dry_run {
                return Ok(());
            }
            // Every charged quota at once: one etcd round trip however many quotas apply.
            let writes = charged.into_iter().map(|(i, used)| {
                let mut q = pending[i].clone();
                q.status.get_or_insert_with(Default::default).used = to_quantities(&used);
                async move { (self.write(etcd, &q).await, q) }
            });
            let mut conflicted = Vec::new();
            for (written, q) in futures::future::join_all(writes).await {
                match written {
                    Ok(()) => {}
                    Err(StorageError::Conflict { .. }) => conflicted.push(q.meta().name.clone()),
                    Err(e) => return Err(ApiError::from_storage(e, "resourcequotas", &q.meta().name)),
                }
            }
            if conflicted.is_empty() {
                return Ok(());
            }
            tracing::debug!(quotas = ?conflicted, "quota changed meanwhile; checking again");
            pending = etcd.reread(namespace, &conflicted).await?;
        }
        let name = pending.first().map(|q| q.meta().name.clone()).unwrap_or_default();
        Err(ApiError::Conflict { plural: "resourcequotas".into(), name })
    }

    /// Writes the quota's new status if its resourceVersion is still the one it was read at.
    async fn write(&self, etcd: &Etcd<'_>, q: &ResourceQuota) -> Result<(), StorageError> {
        let m = q.meta();
        let value = encode_value(&Object::ResourceQuota(q.clone()));
        let rev = etcd.registry.storage().update(&etcd.key(&m.namespace, &m.name), rv(q), value).await?;
        let mut fresh = q.clone();
        fresh.meta_mut().resource_version = rev.to_string();
        tracing::debug!(quota = %m.name, rev, "quota charged");
        let mut written = self.written.lock().unwrap_or_else(|p| p.into_inner());
        written.insert((m.namespace.clone(), m.name.clone()), fresh);
        Ok(())
    }
}

/// Whether the quota has hard limits the resource quota controller has not copied into its status yet.
fn uncomputed(q: &ResourceQuota) -> bool {
    let spec_hard = q.spec.as_ref().is_some_and(|s| !s.hard.is_empty());
    spec_hard && q.status.as_ref().is_none_or(|s| s.hard.is_empty())
}

/// Waits a little for the store's first list after start.
async fn synced(quotas: &LocalStore) -> bool {
    let deadline = tokio::time::Instant::now() + SYNC_WAIT;
    while !quotas.is_synced() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    quotas.is_synced()
}

/// Where quotas are read and written: the store, and etcd through the registry's storage.
struct Etcd<'a> {
    registry: &'a Registry,
    quotas: &'a LocalStore,
}

impl Etcd<'_> {
    fn key(&self, namespace: &str, name: &str) -> String {
        object_key(self.registry.prefix(), ResourceQuota::info(), namespace, name)
    }

    /// The named quotas as etcd has them now (deleted ones are left out).
    async fn reread(&self, namespace: &str, names: &[String]) -> Result<Vec<ResourceQuota>, ApiError> {
        let mut out = Vec::new();
        for name in names {
            let stored = match self.registry.storage().get(&self.key(namespace, name)).await {
                Ok(s) => s,
                Err(StorageError::NotFound(_)) => continue,
                Err(e) => return Err(ApiError::from_storage(e, "resourcequotas", name)),
            };
            match decode_value("ResourceQuota", &stored.value, stored.mod_revision) {
                Ok(Object::ResourceQuota(q)) => out.push(q),
                Ok(_) => {}
                Err(e) => return Err(ApiError::Internal(format!("stored ResourceQuota undecodable: {e}"))),
            }
        }
        Ok(out)
    }
}
