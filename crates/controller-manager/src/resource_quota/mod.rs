//! The resource quota controller (Kubernetes' `resourcequota` controller): keeps each ResourceQuota's
//! `status.hard` equal to `spec.hard` and `status.used` equal to what the namespace's stored objects use
//! ([`navarch_api::quota::usage`]: pods not yet terminal, claims, services, object counts of any kind).
//!
//! Level-triggered per quota: a quota is recomputed on its own changes, on any change of an object of a
//! counted kind in its namespace (the shared stores of pods, services, claims and the other kinds the
//! controller-manager watches), and every [`RESYNC`] (Kubernetes' `--resource-quota-sync-period`, which
//! also catches kinds counted through a list: the ones without a store here).
//!
//! The api-server's admission charges a quota *before* the object is written, so for a moment the quota
//! counts an object no store has seen yet. A recomputation that would lower `status.used` therefore waits
//! [`SETTLE`] and is written only if the quota has not changed meanwhile (the write is a compare-and-swap
//! on the resourceVersion it was computed from) and still computes lower: usage found missing that long
//! is a create that failed after its charge (or an object deleted), never one still on its way, so the
//! quota never drops below what admitted objects use and concurrent creates never overshoot it. Raising
//! `status.used` (and copying `spec.hard`) is written at once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use navarch_api::Resource;
use navarch_api::quota::evaluator::{Evaluator, Item};
use navarch_api::quota::{ResourceList, add, from_quantities, to_quantities, usage};
use navarch_api::v1::{ResourceQuota, ResourceQuotaStatus};
use navarch_client::{Action, Client, Controller, ListParams, ObjectRef, Store};
use tracing::Instrument;

use crate::run::{Informers, Reconciler, Wiring};

/// Every quota is recomputed this often (Kubernetes' default `--resource-quota-sync-period`).
pub const RESYNC: Duration = Duration::from_secs(300);
/// How long a lower usage must persist before it is written.
pub const SETTLE: Duration = Duration::from_secs(2);

/// The count of a kind's objects in a namespace, from a shared store.
type Counter = Box<dyn Fn(&str) -> usize + Send + Sync>;

pub struct QuotaController {
    client: Client,
    pods: Store<navarch_api::v1::Pod>,
    services: Store<navarch_api::v1::Service>,
    claims: Store<navarch_api::v1::PersistentVolumeClaim>,
    /// Kind → objects per namespace, for the other kinds the controller-manager watches.
    counters: HashMap<&'static str, Counter>,
    /// Quota → (the resourceVersion a lower usage was first computed from, when).
    lowering: Mutex<HashMap<String, (String, Instant)>>,
}

fn counter<K: Resource>(store: Store<K>) -> Counter {
    Box::new(move |ns| store.state().iter().filter(|o| o.meta().namespace == ns).count())
}

/// The stores that count kinds other than pods, services and claims.
fn counters(i: &Informers) -> HashMap<&'static str, Counter> {
    HashMap::from([
        ("ReplicaSet", counter(i.replicasets.store())),
        ("ReplicationController", counter(i.replication_controllers.store())),
        ("Deployment", counter(i.deployments.store())),
        ("DaemonSet", counter(i.daemonsets.store())),
        ("ControllerRevision", counter(i.controller_revisions.store())),
        ("StatefulSet", counter(i.statefulsets.store())),
        ("Job", counter(i.jobs.store())),
        ("CronJob", counter(i.cronjobs.store())),
        ("PodDisruptionBudget", counter(i.pod_disruption_budgets.store())),
        ("Endpoints", counter(i.endpoints.store())),
        ("ConfigMap", counter(i.configmaps.store())),
        ("Secret", counter(i.secrets.store())),
        ("ServiceAccount", counter(i.service_accounts.store())),
        ("ResourceQuota", counter(i.resource_quotas.store())),
    ])
}

/// The per-key maximum of two usages (what may be written before a lower value has settled).
fn at_least(old: &ResourceList, new: &ResourceList) -> ResourceList {
    new.iter()
        .map(|(k, v)| (k.clone(), old.get(k).filter(|o| o.amount > v.amount).copied().unwrap_or(*v)))
        .collect()
}

impl QuotaController {
    /// What one evaluator's objects of the namespace use of `q`.
    async fn usage_of(
        &self,
        ev: &Evaluator,
        q: &ResourceQuota,
        now: SystemTime,
    ) -> Result<ResourceList, navarch_client::Error> {
        let ns = q.meta().namespace.as_str();
        let in_ns = |m: &navarch_api::v1::ObjectMeta| m.namespace == ns;
        Ok(match ev {
            Evaluator::Pods => {
                let pods = self.pods.state();
                usage::usage_of(ev, q, pods.iter().filter(|p| in_ns(p.meta())).map(|p| Item::Pod(p)), now)
            }
            Evaluator::Services => {
                let svcs = self.services.state();
                usage::usage_of(ev, q, svcs.iter().filter(|s| in_ns(s.meta())).map(|s| Item::Service(s)), now)
            }
            Evaluator::Claims => {
                let claims = self.claims.state();
                usage::usage_of(ev, q, claims.iter().filter(|c| in_ns(c.meta())).map(|c| Item::Claim(c)), now)
            }
            Evaluator::Count { kind, .. } => {
                let n = match self.counters.get(kind) {
                    Some(count) => count(ns),
                    None => {
                        let p = ListParams { namespace: ns.to_string(), ..Default::default() };
                        self.client.list(kind, &p).await?.items.len()
                    }
                };
                usage::usage_of(ev, q, std::iter::repeat_n(Item::Other, n), now)
            }
        })
    }

    async fn sync(&self, q: &ResourceQuota) -> Result<Action, navarch_client::Error> {
        let now = SystemTime::now();
        let hard = from_quantities(&q.spec.clone().unwrap_or_default().hard);
        let mut computed = ResourceList::new();
        for ev in usage::evaluators_for(&hard) {
            computed = add(&computed, &self.usage_of(&ev, q, now).await?);
        }
        let want = usage::status(q, &computed);
        let have = q.status.clone().unwrap_or_default();
        let key = q.key();
        let rv = q.meta().resource_version.clone();
        let (old_used, new_used) = (from_quantities(&have.used), from_quantities(&want.used));
        let lowers = new_used.iter().any(|(k, v)| old_used.get(k).is_some_and(|o| v.amount < o.amount));
        let Some(since) = self.lowering_since(&key, &rv, lowers) else {
            if want != have {
                self.write(q, want).await?;
            }
            return Ok(Action::requeue(RESYNC));
        };
        let waited = since.elapsed();
        if waited >= SETTLE {
            tracing::debug!(used = ?want.used, "usage went down");
            self.lowering_since(&key, &rv, false);
            self.write(q, want).await?;
            return Ok(Action::requeue(RESYNC));
        }
        // Meanwhile write what only rises (and the hard limits), keeping the higher usages.
        let held = ResourceQuotaStatus {
            hard: want.hard.clone(),
            used: to_quantities(&at_least(&old_used, &new_used)),
        };
        if held != have {
            self.write(q, held).await?;
        }
        Ok(Action::requeue(SETTLE - waited + Duration::from_millis(50)))
    }

    /// Since when the quota at `rv` computes lower (`None`, forgetting it, when it does not).
    fn lowering_since(&self, key: &str, rv: &str, lowers: bool) -> Option<Instant> {
        let mut lowering = self.lowering.lock().unwrap_or_else(|p| p.into_inner());
        if !lowers {
            lowering.remove(key);
            return None;
        }
        let entry = lowering.entry(key.to_string()).or_insert_with(|| (rv.to_string(), Instant::now()));
        if entry.0 != rv {
            *entry = (rv.to_string(), Instant::now());
        }
        Some(entry.1)
    }

    async fn write(
        &self,
        q: &ResourceQuota,
        status: ResourceQuotaStatus,
    ) -> Result<(), navarch_client::Error> {
        let mut updated = q.clone();
        updated.status = Some(status);
        self.client.api::<ResourceQuota>(&q.meta().namespace).update_status(&updated).await?;
        tracing::debug!("status written");
        Ok(())
    }
}

impl Reconciler<ResourceQuota> for QuotaController {
    type Error = navarch_client::Error;

    async fn reconcile(&self, q: Arc<ResourceQuota>) -> Result<Action, navarch_client::Error> {
        if !(self.pods.is_ready() && self.services.is_ready() && self.claims.is_ready()) {
            return Ok(Action::requeue(Duration::from_millis(500)));
        }
        let span = tracing::debug_span!("quota", key = %q.key());
        self.sync(&q).instrument(span).await
    }
}

/// The quotas of `namespace`.
fn quotas_in(quotas: &Store<ResourceQuota>, namespace: &str) -> Vec<ObjectRef> {
    quotas.keys().into_iter().filter(|k| k.namespace == namespace).collect()
}

/// Runs the resource quota controller: quotas, recomputed on any change of a counted object of their
/// namespace.
pub fn spawn(w: &mut Wiring) {
    let i = &w.informers;
    let mut controller = Controller::for_shared(&i.resource_quotas).concurrency(w.workers);
    macro_rules! trigger {
        ($($field:ident),*) => {$(
            let quotas = i.resource_quotas.store();
            controller = controller.watches_shared(&i.$field, move |o| quotas_in(&quotas, &o.meta().namespace));
        )*};
    }
    trigger!(
        pods,
        services,
        persistent_volume_claims,
        replicasets,
        replication_controllers,
        deployments,
        daemonsets,
        controller_revisions,
        statefulsets,
        jobs,
        cronjobs,
        pod_disruption_budgets,
        endpoints,
        configmaps,
        secrets,
        service_accounts
    );
    let ctx = Arc::new(QuotaController {
        client: w.client.clone(),
        pods: i.pods.store(),
        services: i.services.store(),
        claims: i.persistent_volume_claims.store(),
        counters: counters(i),
        lowering: Mutex::default(),
    });
    w.controller(controller, ctx, Duration::from_millis(500));
}

#[cfg(test)]
mod tests {
    use navarch_api::quota::{Qty, pretty_print};

    use super::*;

    #[test]
    fn only_rises_are_written_before_a_drop_settles() {
        let l = |pairs: &[(&str, i64)]| -> ResourceList {
            pairs.iter().map(|(k, v)| (k.to_string(), Qty::int(*v))).collect()
        };
        let held = at_least(
            &l(&[("pods", 5), ("services", 1)]),
            &l(&[("pods", 3), ("services", 2), ("secrets", 0)]),
        );
        assert_eq!(pretty_print(&held), "pods=5,secrets=0,services=2");
    }
}
