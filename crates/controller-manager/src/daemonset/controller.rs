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

use super::history::{self, HistoryPlan};
use super::placement::{fits, pod_for_node};
use super::plan::{self, FailedBackoff, View};
use super::{DaemonSetError, REVISION_HASH_LABEL, spec_of};
use crate::pod_control::{Expectations, PruneClock, claim_objects, controller_ref, create_in_batches};
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

    /// Takes matching orphans (pods or revisions) and lets go of those that stopped matching, by their
    /// controller ownerReference.
    async fn adopt_and_release<K: Resource>(&self, ds: &DaemonSet, adopt: &[&K], release: &[&K]) {
        let api = self.client.api::<K>(&ds.meta().namespace);
        for o in adopt {
            let mut o = (*o).clone();
            o.meta_mut().owner_references.push(controller_ref::<DaemonSet>(ds.meta()));
            if let Err(e) = api.update(&o).await {
                tracing::debug!(kind = K::KIND, name = %o.meta().name, error = %e, "adopting");
            }
        }
        for o in release {
            let mut o = (*o).clone();
            o.meta_mut().owner_references.retain(|r| r.uid != ds.meta().uid);
            if let Err(e) = api.update(&o).await {
                tracing::debug!(kind = K::KIND, name = %o.meta().name, error = %e, "releasing");
            }
        }
    }

    /// Brings the revisions up to date (creating the current one if none matches) and returns the
    /// current revision's hash and the old revisions.
    async fn construct_history(
        &self,
        ds: &DaemonSet,
        revisions: &[&ControllerRevision],
    ) -> Result<(String, Vec<ControllerRevision>), DaemonSetError> {
        let api = self.client.api::<ControllerRevision>(&ds.meta().namespace);
        let HistoryPlan { current, renumber, duplicates, unlabelled, old, next } =
            history::plan(ds, revisions);
        let by_name = |n: &str| revisions.iter().find(|c| c.meta().name == n).map(|c| (*c).clone());
        for name in &unlabelled {
            if let Some(mut cr) = by_name(name) {
                cr.meta_mut().labels.insert(REVISION_HASH_LABEL.into(), name.clone());
                api.update(&cr).await?;
            }
        }
        for name in &duplicates {
            match api.delete(name, &DeleteParams::default()).await {
                Ok(_) | Err(navarch_client::Error::NotFound(_)) => {}
                Err(e) => return Err(e.into()),
            }
        }
        let hash = match current {
            Some(name) => {
                if let (Some(n), Some(mut cr)) = (renumber, by_name(&name)) {
                    cr.revision = n;
                    api.update(&cr).await?;
                    tracing::debug!(revision = %name, number = n, "current revision renumbered");
                }
                history::hash_label(revisions, &name)
            }
            None => self.snapshot(ds, next).await?,
        };
        let old = old.iter().filter_map(|n| by_name(n)).collect();
        Ok((hash, old))
    }

    /// Creates the revision of the current template; on a name taken by another template, raises the
    /// DaemonSet's collisionCount (the next sync hashes anew).
    async fn snapshot(&self, ds: &DaemonSet, number: i64) -> Result<String, DaemonSetError> {
        let api = self.client.api::<ControllerRevision>(&ds.meta().namespace);
        let cr = history::snapshot(ds, number);
        let name = cr.meta().name.clone();
        let hash = cr.meta().labels.get(REVISION_HASH_LABEL).cloned().unwrap_or_default();
        match api.create(&cr).await {
            Ok(_) => {
                tracing::debug!(revision = %name, number, "revision created");
                Ok(hash)
            }
            Err(navarch_client::Error::AlreadyExists(_)) => {
                let existing = api.get(&name).await?;
                if history::matches(ds, &existing) {
                    return Ok(existing.meta().labels.get(REVISION_HASH_LABEL).cloned().unwrap_or(hash));
                }
                let sets = self.client.api::<DaemonSet>(&ds.meta().namespace);
                let mut latest = sets.get(&ds.meta().name).await?;
                let count = latest.status.as_ref().and_then(|s| s.collision_count);
                if count != ds.status.as_ref().and_then(|s| s.collision_count) {
                    return Err(DaemonSetError::History { name, reason: "stale collisionCount".into() });
                }
                let status = latest.status.get_or_insert_with(Default::default);
                status.collision_count = Some(count.unwrap_or(0) + 1);
                sets.update_status(&latest).await?;
                Err(DaemonSetError::History { name, reason: "hash collision; collisionCount raised".into() })
            }
            Err(e) => Err(e.into()),
        }
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
        self.adopt_and_release(ds, &claimed.adopt, &claimed.release).await;
        if !adopting {
            return Ok(Action::await_change());
        }
        let all_revisions: Vec<Arc<ControllerRevision>> =
            self.revisions.state().into_iter().filter(|c| c.meta().namespace == m.namespace).collect();
        let revision_refs: Vec<&ControllerRevision> = all_revisions.iter().map(AsRef::as_ref).collect();
        let revisions = claim_objects(m, selector, adopting, &revision_refs);
        self.adopt_and_release(ds, &revisions.adopt, &revisions.release).await;
        let (hash, old) = self.construct_history(ds, &revisions.mine).await?;

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
            let api = self.client.api::<ControllerRevision>(&m.namespace);
            for name in history::prune(ds, &old_refs, &claimed.mine) {
                match api.delete(&name, &DeleteParams::default()).await {
                    Ok(_) | Err(navarch_client::Error::NotFound(_)) => {}
                    Err(e) => tracing::warn!(revision = %name, error = %e, "pruning a revision"),
                }
            }
        }
        let status = plan::status(&view, satisfied);
        if ds.status.as_ref() != Some(&status) {
            let api = self.client.api::<DaemonSet>(&m.namespace);
            match api.update_status(&DaemonSet { status: Some(status.clone()), ..ds.clone() }).await {
                Ok(_) | Err(navarch_client::Error::NotFound(_)) => {}
                Err(e) => return Err(e.into()),
            }
        }
        // Availability changes with time alone when minReadySeconds is set.
        if spec_of(ds).min_ready_seconds > 0 && status.number_available < status.number_ready {
            requeue = Some(requeue.map_or(Duration::from_secs(1), |r| r.min(Duration::from_secs(1))));
        }
        let idle = if satisfied { Duration::from_secs(300) } else { Duration::from_secs(5) };
        Ok(Action::requeue(requeue.map_or(idle, |r| r.min(idle))))
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
