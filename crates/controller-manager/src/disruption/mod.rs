//! The disruption controller (Kubernetes' `disruption` controller): keeps every PodDisruptionBudget's
//! status current from the pod store, so the api-server's eviction subresource can decide from it
//! alone.
//!
//! For each budget it takes the pods of its namespace that its selector picks and computes
//! ([`budget`]) the pods it expects (the selected pods for an integer `minAvailable`; else the sum of the
//! `replicas` of the pods' controllers: ReplicaSet — or the Deployment owning it —, ReplicationController,
//! StatefulSet), the healthy pods it needs, the healthy pods it has (Ready, not being deleted, not just
//! evicted), and from them `disruptionsAllowed` and the `DisruptionAllowed` condition. Entries of
//! `status.disruptedPods` (evictions the api-server allowed) are dropped once their pod is being deleted
//! or gone, or after [`DELETION_TIMEOUT`] (then with a `NotDeleted` event on the pod); the budget is
//! looked at again when the soonest entry expires. When the pods' scale cannot be found, disruptions
//! stop (`SyncFailed`). Level-triggered: a budget is reconciled on its own changes and on any change of
//! a pod of its namespace; the status is written (with the budget's resourceVersion, so it never
//! overwrites a disruption the api-server spent meanwhile) only when it changes.
//!
//! [`DELETION_TIMEOUT`]: navarch_api::disruption::DELETION_TIMEOUT

pub mod budget;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use navarch_api::Resource;
use navarch_api::v1::{
    Deployment, OwnerReference, Pod, PodDisruptionBudget, PodDisruptionBudgetStatus, ReplicaSet,
    ReplicationController, StatefulSet,
};
use navarch_client::{Action, Client, Controller, EventRecorder, ObjectRef, Store, object_ref};
use tracing::Instrument;

use crate::pod_control::controller_of;
use crate::run::{Reconciler, Wiring};

/// The stores the controller reads.
pub struct DisruptionController {
    pub client: Client,
    pub pods: Store<Pod>,
    pub replicasets: Store<ReplicaSet>,
    pub deployments: Store<Deployment>,
    pub replication_controllers: Store<ReplicationController>,
    pub statefulsets: Store<StatefulSet>,
    pub events: EventRecorder,
}

/// A controller's UID and replicas, if `r` names one the stores hold (with that UID).
fn found<K: Resource>(
    store: &Store<K>,
    namespace: &str,
    r: &OwnerReference,
    replicas: impl Fn(&K) -> Option<i32>,
) -> Option<(String, i32, Arc<K>)> {
    let o = store.get(&ObjectRef::new(namespace, &r.name))?;
    (o.meta().uid == r.uid).then(|| (r.uid.clone(), replicas(&o).unwrap_or(1), o.clone()))
}

impl DisruptionController {
    /// Kubernetes' finders: the UID and scale of the controller that `r` (a pod's controller reference)
    /// stands for; a ReplicaSet a Deployment controls stands for the Deployment.
    fn scale_of(&self, namespace: &str, r: &OwnerReference) -> Option<(String, i32)> {
        let group = r.api_version.rsplit_once('/').map_or("", |(g, _)| g);
        match (r.kind.as_str(), group) {
            ("ReplicationController", "") => {
                found(&self.replication_controllers, namespace, r, |o| o.spec.as_ref()?.replicas)
                    .map(|(u, n, _)| (u, n))
            }
            ("ReplicaSet", "apps" | "extensions") => {
                let (uid, replicas, rs) =
                    found(&self.replicasets, namespace, r, |o| o.spec.as_ref()?.replicas)?;
                match controller_of(rs.meta()).filter(|c| c.kind == "Deployment") {
                    Some(d) => found(&self.deployments, namespace, d, |o| o.spec.as_ref()?.replicas)
                        .map(|(u, n, _)| (u, n)),
                    None => Some((uid, replicas)),
                }
            }
            ("StatefulSet", "apps") => {
                found(&self.statefulsets, namespace, r, |o| o.spec.as_ref()?.replicas).map(|(u, n, _)| (u, n))
            }
            _ => None,
        }
    }

    /// `getExpectedScale`: the summed scale of the pods' controllers (each counted once), and the pods
    /// no controller manages.
    fn expected_scale(&self, pods: &[Arc<Pod>], unmanaged: &mut Vec<String>) -> Result<i32, String> {
        let mut seen = HashSet::new();
        let mut total = 0i32;
        for p in pods {
            let m = p.meta();
            let Some(r) = controller_of(m) else {
                unmanaged.push(m.name.clone());
                continue;
            };
            if seen.contains(&r.uid) {
                continue;
            }
            let (uid, scale) = self
                .scale_of(&m.namespace, r)
                .ok_or_else(|| format!("found no controllers for pod {:?}", m.name))?;
            if seen.insert(uid) {
                total = total.saturating_add(scale);
            }
            seen.insert(r.uid.clone());
        }
        Ok(total)
    }

    /// Writes `status` unless it is what the budget already says.
    async fn write_status(
        &self,
        pdb: &PodDisruptionBudget,
        status: PodDisruptionBudgetStatus,
    ) -> Result<(), navarch_client::Error> {
        if pdb.status.as_ref() == Some(&status) {
            return Ok(());
        }
        let mut updated = pdb.clone();
        updated.status = Some(status);
        self.client.api::<PodDisruptionBudget>(&pdb.meta().namespace).update_status(&updated).await?;
        tracing::debug!("status written");
        Ok(())
    }

    async fn sync(&self, pdb: &PodDisruptionBudget) -> Result<Action, navarch_client::Error> {
        let m = pdb.meta();
        let pods: Vec<Arc<Pod>> =
            self.pods.state().into_iter().filter(|p| navarch_api::disruption::selects(pdb, p)).collect();
        let old = pdb.status.clone().unwrap_or_default();
        if pods.is_empty() && old.expected_pods != 0 {
            self.events.record(object_ref(pdb), "Normal", "NoPods", "No matching pods found".into());
        }
        let spec = pdb.spec.clone().unwrap_or_default();
        let now = SystemTime::now();
        let stamp = humantime::format_rfc3339_seconds(now).to_string();
        let mut unmanaged = Vec::new();
        let selected = i32::try_from(pods.len()).unwrap_or(i32::MAX);
        let computed = budget::budget(&spec, selected, || self.expected_scale(&pods, &mut unmanaged));
        let budget = match computed {
            Ok(b) => b,
            Err(e) => {
                self.events.record(
                    object_ref(pdb),
                    "Warning",
                    "CalculateExpectedPodCountFailed",
                    format!("Failed to calculate the number of expected pods: {e}"),
                );
                tracing::warn!(error = %e, "budget not computed; no disruptions allowed");
                self.write_status(pdb, budget::failed_status(&old, &e, &stamp)).await?;
                return Ok(Action::requeue(Duration::from_secs(10)));
            }
        };
        if !unmanaged.is_empty() {
            let selector = spec.selector.as_ref().map(|s| serde_json::to_string(s).unwrap_or_default());
            self.events.record(
                object_ref(pdb),
                "Warning",
                "UnmanagedPods",
                format!(
                    "Pods selected by this PodDisruptionBudget (selector: {}) were found to be unmanaged. As a result, the status of the PDB cannot be calculated correctly, which may result in undefined behavior. To account for these pods please set \".spec.minAvailable\" field of the PDB to an integer value.",
                    selector.unwrap_or_else(|| "nil".into())
                ),
            );
        }
        let mut expired = Vec::new();
        let (disrupted, recheck) = budget::disrupted_pods(&pods, &old.disrupted_pods, now, &mut expired);
        for name in expired {
            if let Some(p) = pods.iter().find(|p| p.meta().name == name) {
                let message =
                    format!("Pod was expected by PDB {}/{} to be deleted but it wasn't", m.namespace, m.name);
                self.events.record(object_ref(p.as_ref()), "Warning", "NotDeleted", message);
            }
        }
        let healthy = budget::current_healthy(&pods, &disrupted, now);
        let status = budget::status(&old, m.generation, budget, healthy, disrupted, &stamp);
        self.write_status(pdb, status).await?;
        Ok(match recheck.and_then(|t| t.duration_since(now).ok()) {
            Some(wait) => Action::requeue(wait + Duration::from_secs(1)),
            None => Action::await_change(),
        })
    }
}

impl Reconciler<PodDisruptionBudget> for DisruptionController {
    type Error = navarch_client::Error;

    async fn reconcile(&self, pdb: Arc<PodDisruptionBudget>) -> Result<Action, navarch_client::Error> {
        let stores_ready = self.pods.is_ready()
            && self.replicasets.is_ready()
            && self.deployments.is_ready()
            && self.replication_controllers.is_ready()
            && self.statefulsets.is_ready();
        if !stores_ready {
            return Ok(Action::requeue(Duration::from_millis(500)));
        }
        let span = tracing::debug_span!("pdb", key = %pdb.key());
        self.sync(&pdb).instrument(span).await
    }
}

/// The budgets of `namespace` (a pod change may concern any of them: its labels may have moved away).
fn budgets_in(budgets: &Store<PodDisruptionBudget>, namespace: &str) -> Vec<ObjectRef> {
    budgets.keys().into_iter().filter(|k| k.namespace == namespace).collect()
}

/// Runs the disruption controller: budgets, re-synced on any change of a pod of their namespace (and all
/// of them after a pod relist).
pub fn spawn(w: &mut Wiring) {
    let events = w.recorder("controllermanager");
    let informers = &w.informers;
    let budgets = informers.pod_disruption_budgets.store();
    let controller = Controller::for_shared(&informers.pod_disruption_budgets)
        .concurrency(w.workers)
        .watches_shared(&informers.pods, move |p: &Pod| budgets_in(&budgets, &p.meta().namespace));
    let ctx = Arc::new(DisruptionController {
        client: w.client.clone(),
        pods: informers.pods.store(),
        replicasets: informers.replicasets.store(),
        deployments: informers.deployments.store(),
        replication_controllers: informers.replication_controllers.store(),
        statefulsets: informers.statefulsets.store(),
        events,
    });
    w.controller(controller, ctx, Duration::from_secs(1));
}
