//! Kubernetes' LimitRanger admission plugin: on a pod create the namespace's LimitRanges first fill in
//! default limits and requests ([`LimitRanger::default_pod`], the mutating half, before validation),
//! then, after validation, every LimitRange's min, max and maxLimitRequestRatio must hold for each
//! container and for the pod ([`LimitRanger::check`], the validating half), as they must for a claim's
//! storage on PersistentVolumeClaim creates and updates. Pod updates are not checked (containers'
//! resources cannot change), nor subresources, nor objects being deleted. A refusal is 403 Forbidden
//! `<plural> "<name>" is forbidden: <what>`.
//!
//! The LimitRanges come from the api-server's own store; when it holds none for the namespace, a live
//! list from etcd (remembered 30 s per namespace, as Kubernetes' live-lookup cache) covers a LimitRange
//! created an instant ago that the store has not seen yet. What one LimitRange does to one object is
//! [`constraints`].

pub mod constraints;

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use navarch_api::Object;
use navarch_api::v1::LimitRange;

use crate::error::ApiError;
use crate::local_store::LocalStore;
use crate::registry::WriteOperation;

/// The plugin's name in `--disable-admission-plugins`.
pub const PLUGIN: &str = "LimitRanger";

/// How long a live lookup of a namespace's LimitRanges stands in for the store (Kubernetes' 30 s).
const LIVE_TTL: Duration = Duration::from_secs(30);

/// Where LimitRanges are read when the store has none (the registry; a map in tests).
pub trait LimitRanges: Sync {
    /// The LimitRanges of `namespace`, read from storage.
    fn limit_ranges(&self, namespace: &str)
    -> impl Future<Output = Result<Vec<LimitRange>, ApiError>> + Send;
}

/// A namespace's LimitRanges read from storage, and until when they stand.
type LiveLookup = (Instant, Arc<Vec<LimitRange>>);

/// The plugin: the store of LimitRanges (set once at start) and the live lookups.
#[derive(Default)]
pub struct LimitRanger {
    store: OnceLock<Arc<LocalStore>>,
    live: Mutex<HashMap<String, LiveLookup>>,
    off: AtomicBool,
}

impl LimitRanger {
    /// Sets the store of LimitRanges (all namespaces) the plugin reads (once).
    pub fn set_store(&self, store: Arc<LocalStore>) {
        let _ = self.store.set(store);
    }

    /// Turns the plugin off (`--disable-admission-plugins=LimitRanger`).
    pub fn turn_off(&self) {
        self.off.store(true, Ordering::Relaxed);
    }

    /// The mutating half on a pod create: defaults from every LimitRange of the namespace, in name order.
    pub async fn default_pod<S: LimitRanges>(&self, obj: &mut Object, source: &S) -> Result<(), ApiError> {
        let Object::Pod(pod) = obj else { return Ok(()) };
        if self.off.load(Ordering::Relaxed) {
            return Ok(());
        }
        let namespace = pod.metadata.as_ref().map(|m| m.namespace.clone()).unwrap_or_default();
        for lr in self.ranges(&namespace, source).await?.iter() {
            constraints::default_pod(lr, pod);
        }
        Ok(())
    }

    /// The validating half: `obj` as it will be stored (`old` the stored one on updates) must keep every
    /// LimitRange of its namespace.
    pub async fn check<S: LimitRanges>(
        &self,
        operation: WriteOperation,
        obj: &Object,
        old: Option<&Object>,
        source: &S,
    ) -> Result<(), ApiError> {
        let applies = match (obj, operation) {
            (_, WriteOperation::Update { subresource }) if !subresource.is_empty() => false,
            (Object::Pod(_), WriteOperation::Create) => true,
            (Object::PersistentVolumeClaim(_), WriteOperation::Create | WriteOperation::Update { .. }) => {
                true
            }
            _ => false,
        };
        if !applies
            || self.off.load(Ordering::Relaxed)
            || old.is_some_and(|o| !o.meta().deletion_timestamp.is_empty())
        {
            return Ok(());
        }
        let meta = obj.meta();
        for lr in self.ranges(&meta.namespace, source).await?.iter() {
            let verdict = match obj {
                Object::Pod(pod) => constraints::check_pod(lr, pod),
                Object::PersistentVolumeClaim(pvc) => constraints::check_claim(lr, pvc),
                _ => Ok(()),
            };
            if let Err(why) = verdict {
                let name = if meta.name.is_empty() { &meta.generate_name } else { &meta.name };
                tracing::debug!(key = %obj.key(), limit_range = %lr_name(lr), %why, "LimitRanger refuses");
                return Err(ApiError::Forbidden(format!(
                    "{} {name:?} is forbidden: {why}",
                    obj.info().plural
                )));
            }
        }
        Ok(())
    }

    /// The namespace's LimitRanges, in name order: the store's, else a live lookup.
    async fn ranges<S: LimitRanges>(
        &self,
        namespace: &str,
        source: &S,
    ) -> Result<Arc<Vec<LimitRange>>, ApiError> {
        let store = self.store.get().filter(|s| s.is_synced());
        if let Some(store) = store {
            let mut found: Vec<LimitRange> = store
                .list()
                .iter()
                .filter_map(|o| match o.as_ref() {
                    Object::LimitRange(lr) if o.meta().namespace == namespace => Some(lr.clone()),
                    _ => None,
                })
                .collect();
            if !found.is_empty() {
                found.sort_by(|a, b| lr_name(a).cmp(lr_name(b)));
                return Ok(Arc::new(found));
            }
            let live = self.live.lock().unwrap_or_else(|p| p.into_inner());
            if let Some((expiry, ranges)) = live.get(namespace)
                && *expiry > Instant::now()
            {
                return Ok(ranges.clone());
            }
        }
        let mut found = source.limit_ranges(namespace).await?;
        found.sort_by(|a, b| lr_name(a).cmp(lr_name(b)));
        let found = Arc::new(found);
        // Only a synced store consults the remembered lookups; before that every create reads storage.
        if store.is_some() {
            let mut live = self.live.lock().unwrap_or_else(|p| p.into_inner());
            live.retain(|_, (expiry, _)| *expiry > Instant::now());
            live.insert(namespace.to_string(), (Instant::now() + LIVE_TTL, found.clone()));
        }
        Ok(found)
    }
}

fn lr_name(lr: &LimitRange) -> &str {
    lr.metadata.as_ref().map(|m| m.name.as_str()).unwrap_or_default()
}

impl LimitRanges for crate::registry::Registry {
    async fn limit_ranges(&self, namespace: &str) -> Result<Vec<LimitRange>, ApiError> {
        let opts = crate::registry::ListOptions { namespace: namespace.to_string(), ..Default::default() };
        let list = self.list("LimitRange", &opts).await?;
        Ok(list
            .items
            .into_iter()
            .filter_map(|o| match o {
                Object::LimitRange(lr) => Some(lr),
                _ => None,
            })
            .collect())
    }
}

#[cfg(test)]
mod tests;
