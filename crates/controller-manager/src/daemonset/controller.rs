//! The DaemonSet controller's reconcile loop ([`DaemonSetController`]): claims the DaemonSet's pods and
//! ControllerRevisions, brings its history up to date (the current revision's hash labels new pods),
//! then — once its pod cache shows its own earlier creations and deletions — applies
//! [`plan::manage`], or when that has nothing to do the rolling update's next step, prunes old
//! revisions, and writes the status.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use navarch_api::Resource;
use navarch_api::v1::{ControllerRevision, DaemonSet, Node, Pod};
use navarch_client::{Action, Client, DeleteParams, EventRecorder, Store, object_ref};
use tracing::Instrument;

use super::placement::{fits, pod_for_node};
use super::plan::{self, FailedBackoff, View};
use super::{DaemonSetError, spec_of};
use crate::controller_history::{self as history, Budget};
use crate::pod_control::{
    Expectations, PruneClock, adopt_and_release, claim_objects, create_in_batches, next_sync,
};
use crate::run::Reconciler;

/// The reconcile side of the DaemonSet controller.
pub struct DaemonSetController {
    client: Client,
    sets: Store<DaemonSet>,
    pods: Store<Pod>,
    nodes: Store<Node>,
    revisions: Store<ControllerRevision>,
    events: EventRecorder,
    /// Pods it created and deleted that its pod cache does not show yet.
    expectations: Expectations,
    /// Per DaemonSet, the back-off of replacing failed pods on each node.
    backoff: Mutex<HashMap<String, FailedBackoff>>,
    pruned: PruneClock,
}

impl DaemonSetController {
    pub fn new(
        client: Client,
        sets: Store<DaemonSet>,
        pods: Store<Pod>,
        nodes: Store<Node>,
        revisions: Store<ControllerRevision>,
        events: EventRecorder,
    ) -> DaemonSetController {
        DaemonSetController {
            client,
            sets,
            pods,
            nodes,
            revisions,
            events,
            expectations: Expectations::default(),
            backoff: Mutex::new(HashMap::new()),
            pruned: PruneClock::default(),
        }
    }

    /// Drops what is remembered of DaemonSets that are gone (at most once a minute).
    fn prune_memory(&self) {
        if !self.pruned.due() {
            return;
        }
        let live: HashSet<String> = self.sets.keys().iter().map(ToString::to_string).collect();
        let now = Instant::now();
        let mut backoff = self.backoff.lock().expect("backoff lock");
        backoff.retain(|k, _| live.contains(k));
        backoff.values_mut().for_each(|b| b.prune(now));
        self.expectations.retain(&live);
    }

    /// Creates daemon pods for `nodes` and deletes the pods `delete`, with their events and
    /// expectations.
    async fn apply(
        &self,
        ds: &DaemonSet,
        key: &str,
        hash: &str,
        nodes: &[String],
        delete: &[String],
        pods: &[&Pod],
    ) {
        let api = self.client.api::<Pod>(&ds.meta().namespace);
        let owner = object_ref(ds);
        if !nodes.is_empty() {
            let new: Vec<Pod> = nodes.iter().map(|n| pod_for_node(ds, hash, n)).collect();
            create_in_batches(&api, &self.events, &owner, key, &self.expectations, new).await;
        }
        let mut deleted = Vec::new();
        for name in delete {
            let uid = pods.iter().find(|p| &p.meta().name == name).map(|p| p.meta().uid.clone());
            let params = DeleteParams { precondition_uid: uid.unwrap_or_default(), ..Default::default() };
            match api.delete(name, &params).await {
                Ok(_) => {
                    self.events.record(
                        owner.clone(),
                        "Normal",
                        "SuccessfulDelete",
                        format!("Deleted pod: {name}"),
                    );
                    deleted.push(name.clone());
                }
                Err(navarch_client::Error::NotFound(_)) => {}
                Err(e) => {
                    self.events.record(
                        owner.clone(),
                        "Warning",
                        "FailedDelete",
                        format!("Error deleting: {e}"),
                    );
                    tracing::warn!(pod = %name, error = %e, "deleting a daemon pod");
                }
            }
        }
        self.expectations.expect(key, vec![], deleted);
    }

    async fn sync(&self, ds: &DaemonSet, key: &str) -> Result<Action, DaemonSetError> {
        let m = ds.meta();
        let selector = spec_of(ds).selector.as_ref();
        let adopting = m.deletion_timestamp.is_empty();
        let all_pods: Vec<Arc<Pod>> =
            self.pods.state().into_iter().filter(|p| p.meta().namespace == m.namespace).collect();
        let pod_refs: Vec<&Pod> = all_pods.iter().map(AsRef::as_ref).collect();
        let claimed = claim_objects(m, selector, adopting, &pod_refs);
        adopt_and_release(&self.client, ds, &claimed).await;
        if !adopting {
            return Ok(Action::await_change());
        }
        let (current, old) =
            history::claim_and_construct(&self.client, &self.revisions, ds, selector).await?;
        let hash = history::hash_label(&current);

        let satisfied = self.expectations.satisfied(key, pod_refs.iter().copied());
        let nodes: Vec<Arc<Node>> = self.nodes.state();
        let node_refs: Vec<&Node> = nodes.iter().map(AsRef::as_ref).collect();
        let view = View {
            ds,
            hash: &hash,
            fits: fits(ds, &node_refs),
            by_node: plan::pods_by_node(&claimed.mine),
            now: SystemTime::now(),
        };
        let mut requeue = None;
        if satisfied {
            let manage = {
                let mut all = self.backoff.lock().expect("backoff lock");
                plan::manage(&view, all.entry(key.to_string()).or_default(), Instant::now())
            };
            for (pod, node) in &manage.failed {
                let message = format!(
                    "Found failed daemon pod {}/{pod} on node {node}, will try to kill it",
                    m.namespace
                );
                self.events.record(object_ref(ds), "Warning", "FailedDaemonPod", message);
            }
            requeue = manage.requeue_after;
            tracing::debug!(?manage, "manage");
            if !manage.is_empty() {
                self.apply(ds, key, &hash, &manage.create_on, &manage.delete, &claimed.mine).await;
            } else if plan::is_rolling(ds) {
                let step = plan::rolling_update(&view);
                tracing::debug!(?step, "rolling update");
                self.apply(ds, key, &hash, &step.create_on, &step.delete, &claimed.mine).await;
            }
            let old_refs: Vec<&ControllerRevision> = old.iter().collect();
            let live: HashSet<&str> = claimed
                .mine
                .iter()
                .filter_map(|p| p.meta().labels.get(history::REVISION_HASH_LABEL))
                .map(String::as_str)
                .collect();
            let is_live = |c: &ControllerRevision| live.contains(history::hash_label(c).as_str());
            let prune = history::prune(ds, &old_refs, is_live, Budget::AllOld);
            history::delete(&self.client, &m.namespace, &prune).await;
        }
        let status = plan::status(&view, satisfied);
        if ds.status.as_ref() != Some(&status) {
            let api = self.client.api::<DaemonSet>(&m.namespace);
            match api.update_status(&DaemonSet { status: Some(status.clone()), ..ds.clone() }).await {
                Ok(_) | Err(navarch_client::Error::NotFound(_)) => {}
                Err(e) => return Err(e.into()),
            }
        }
        let awaiting = spec_of(ds).min_ready_seconds > 0 && status.number_available < status.number_ready;
        Ok(next_sync(satisfied, requeue, awaiting))
    }
}

impl Reconciler<DaemonSet> for DaemonSetController {
    type Error = DaemonSetError;

    async fn reconcile(&self, ds: Arc<DaemonSet>) -> Result<Action, DaemonSetError> {
        let key = ds.key();
        if !self.pods.is_ready() || !self.nodes.is_ready() || !self.revisions.is_ready() {
            // Decisions need the full lists first.
            return Ok(Action::requeue(Duration::from_millis(500)));
        }
        self.prune_memory();
        let span = tracing::debug_span!("daemonset", daemonset = %key);
        self.sync(&ds, &key).instrument(span).await
    }
}
