//! The StatefulSet controller's reconcile loop ([`StatefulSetController`]): claims the set's pods and
//! ControllerRevisions, brings its history up to date (the update revision is the current template's),
//! then — once its pod cache shows its own earlier creations and deletions — applies the steps of
//! [`plan::plan`] in order (claims before pods, with Kubernetes' events), prunes old revisions, and
//! writes the status.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use navarch_api::Resource;
use navarch_api::v1::{ControllerRevision, PersistentVolumeClaim, Pod, PodTemplateSpec, StatefulSet};
use navarch_client::{Action, Client, DeleteParams, EventRecorder, ObjectRef, Store, object_ref};
use tracing::Instrument;

use super::claims::{claims_for, is_stale, retention_refs};
use super::events::{Event, Verb, claim_event, pod_event};
use super::plan::{self, Step, View};
use super::pods::{Revision, new_pod, revision_for};
use super::{StatefulSetError, ordinal_of, pod_name, replicas, spec_of, start_ordinal, status};
use crate::controller_history::{self as history, Budget};
use crate::pod_control::{Expectations, PruneClock, adopt_and_release, claim_objects, next_sync};
use crate::run::Reconciler;

/// The reconcile side of the StatefulSet controller.
pub struct StatefulSetController {
    client: Client,
    sets: Store<StatefulSet>,
    pods: Store<Pod>,
    claims: Store<PersistentVolumeClaim>,
    revisions: Store<ControllerRevision>,
    events: EventRecorder,
    /// Pods it created and deleted that its pod cache does not show yet.
    expectations: Expectations,
    pruned: PruneClock,
}

/// The templates of the set's two revisions, with their names.
struct Revisions {
    current: (String, PodTemplateSpec),
    update: (String, PodTemplateSpec),
}

/// Whether a step's effect lets the sync go on (`Continue`) or it must stop here and wait (`Wait`).
enum Flow {
    Continue,
    Wait,
}

/// The message of an api error as Kubernetes' events carry it (without the client's kind prefix).
fn api_message(e: &navarch_client::Error) -> String {
    use navarch_client::Error as E;
    match e {
        E::NotFound(m) | E::AlreadyExists(m) | E::Conflict(m) | E::Invalid(m) | E::FailedPrecondition(m) => {
            m.clone()
        }
        E::Api { message, .. } => message.clone(),
        other => other.to_string(),
    }
}

impl StatefulSetController {
    pub fn new(
        client: Client,
        sets: Store<StatefulSet>,
        pods: Store<Pod>,
        claims: Store<PersistentVolumeClaim>,
        revisions: Store<ControllerRevision>,
        events: EventRecorder,
    ) -> StatefulSetController {
        StatefulSetController {
            client,
            sets,
            pods,
            claims,
            revisions,
            events,
            expectations: Expectations::default(),
            pruned: PruneClock::default(),
        }
    }

    fn claim(&self, namespace: &str, name: &str) -> Option<Arc<PersistentVolumeClaim>> {
        self.claims.get(&ObjectRef::new(namespace, name))
    }

    /// Records `e` about `set`; returns its message.
    fn record(&self, set: &StatefulSet, e: Event) -> String {
        self.events.record(object_ref(set), e.kind, e.reason, e.message.clone());
        e.message
    }

    /// Creates the claims of `pod` (of `ordinal`) that do not exist (`createPersistentVolumeClaims`),
    /// with their events; an error names the first claim that could not be made (or is being deleted).
    async fn create_claims(&self, set: &StatefulSet, pod: &Pod, ordinal: i32) -> Result<(), String> {
        let ns = &set.meta().namespace;
        let api = self.client.api::<PersistentVolumeClaim>(ns);
        let (set_name, pod_name) = (&set.meta().name, &pod.meta().name);
        let mut first_error = None;
        for mut claim in claims_for(set, ordinal) {
            let name = claim.meta().name.clone();
            if let Some(existing) = self.claim(ns, &name) {
                if !existing.meta().deletion_timestamp.is_empty() {
                    first_error.get_or_insert(format!("pvc {name} is being deleted"));
                }
                continue;
            }
            let in_range = true;
            if let Some(refs) = retention_refs(set, &[], pod, in_range) {
                claim.meta_mut().owner_references = refs;
            }
            match api.create(&claim).await {
                Ok(_) => {
                    self.record(set, claim_event(Verb::Create, set_name, pod_name, &name, None));
                }
                Err(navarch_client::Error::AlreadyExists(_)) => {}
                Err(e) => {
                    let message = api_message(&e);
                    self.record(set, claim_event(Verb::Create, set_name, pod_name, &name, Some(&message)));
                    first_error.get_or_insert(format!("failed to create PVC {name}: {message}"));
                }
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Creates the pod of `ordinal` from its revision, its claims first (`CreateStatefulPod`).
    async fn create_pod(
        &self,
        set: &StatefulSet,
        key: &str,
        revisions: &Revisions,
        ordinal: i32,
    ) -> Result<Flow, StatefulSetError> {
        let (name, template) = match revision_for(set, ordinal) {
            Revision::Current => &revisions.current,
            Revision::Update => &revisions.update,
        };
        let pod = new_pod(set, template, name, ordinal);
        let (set_name, pod_name) = (&set.meta().name, &pod.meta().name);
        let ns = &set.meta().namespace;
        // A claim still owned by an earlier pod of this name goes with it: wait.
        let stale = claims_for(set, ordinal)
            .iter()
            .filter_map(|c| self.claim(ns, &c.meta().name))
            .any(|c| is_stale(set, &c, &pod));
        if stale {
            tracing::debug!(pod = %pod_name, "a claim of the pod is stale; waiting");
            return Ok(Flow::Wait);
        }
        if let Err(e) = self.create_claims(set, &pod, ordinal).await {
            let message = self.record(set, pod_event(Verb::Create, set_name, pod_name, Some(&e)));
            return Err(StatefulSetError::Writes(message));
        }
        match self.client.api::<Pod>(ns).create(&pod).await {
            Ok(_) => {
                self.expectations.expect(key, vec![pod_name.clone()], vec![]);
                self.record(set, pod_event(Verb::Create, set_name, pod_name, None));
                Ok(Flow::Continue)
            }
            // The cache is behind: the pod is there.
            Err(navarch_client::Error::AlreadyExists(_)) => Ok(Flow::Wait),
            Err(e) => {
                let error = api_message(&e);
                let message = self.record(set, pod_event(Verb::Create, set_name, pod_name, Some(&error)));
                Err(StatefulSetError::Writes(message))
            }
        }
    }

    /// Deletes a pod of the set (its uid as a precondition), with the event.
    async fn delete_pod(
        &self,
        set: &StatefulSet,
        key: &str,
        name: &str,
        uid: &str,
    ) -> Result<(), StatefulSetError> {
        let params = DeleteParams { precondition_uid: uid.to_string(), ..Default::default() };
        let set_name = &set.meta().name;
        match self.client.api::<Pod>(&set.meta().namespace).delete(name, &params).await {
            Ok(_) => {
                self.expectations.expect(key, vec![], vec![name.to_string()]);
                self.record(set, pod_event(Verb::Delete, set_name, name, None));
                Ok(())
            }
            Err(navarch_client::Error::NotFound(_) | navarch_client::Error::FailedPrecondition(_)) => Ok(()),
            Err(e) => {
                let error = api_message(&e);
                let message = self.record(set, pod_event(Verb::Delete, set_name, name, Some(&error)));
                Err(StatefulSetError::Writes(message))
            }
        }
    }

    /// Sets the owner references of the pod's existing claims as the retention policy wants
    /// (`UpdatePodClaimForRetentionPolicy`).
    async fn retain(&self, set: &StatefulSet, pod: &Pod) -> Result<(), StatefulSetError> {
        let Some(ordinal) = ordinal_of(set, pod) else { return Ok(()) };
        let start = start_ordinal(set);
        let in_range = ordinal >= start && ordinal < start + replicas(set);
        let ns = &set.meta().namespace;
        let api = self.client.api::<PersistentVolumeClaim>(ns);
        for want in claims_for(set, ordinal) {
            let Some(claim) = self.claim(ns, &want.meta().name) else { continue };
            if !claim.meta().deletion_timestamp.is_empty() {
                continue;
            }
            if let Some(refs) = retention_refs(set, &claim.meta().owner_references, pod, in_range) {
                let mut claim = (*claim).clone();
                claim.meta_mut().owner_references = refs;
                match api.update(&claim).await {
                    Ok(_) | Err(navarch_client::Error::NotFound(_)) => {}
                    Err(e) => {
                        let error = api_message(&e);
                        let (set_name, pod_name) = (&set.meta().name, &pod.meta().name);
                        let message =
                            self.record(set, pod_event(Verb::Update, set_name, pod_name, Some(&error)));
                        return Err(StatefulSetError::Writes(message));
                    }
                }
            }
        }
        Ok(())
    }

    /// Applies the plan's steps in order until one must wait or fails.
    async fn apply(
        &self,
        set: &StatefulSet,
        key: &str,
        revisions: &Revisions,
        pods: &[&Pod],
        steps: &[Step],
    ) -> Result<(), StatefulSetError> {
        let by_name = |n: &str| pods.iter().copied().find(|p| p.meta().name == n);
        for step in steps {
            tracing::debug!(?step, "step");
            match step {
                Step::Create { ordinal } => {
                    if let Flow::Wait = self.create_pod(set, key, revisions, *ordinal).await? {
                        return Ok(());
                    }
                }
                Step::EnsureClaims { ordinal } => {
                    let name = pod_name(set, *ordinal);
                    if let Some(pod) = by_name(&name)
                        && let Err(e) = self.create_claims(set, pod, *ordinal).await
                    {
                        return Err(StatefulSetError::Writes(e));
                    }
                }
                Step::Retain { pod } => {
                    if let Some(pod) = by_name(pod) {
                        self.retain(set, pod).await?;
                    }
                }
                Step::Delete { pod, uid, why } => {
                    tracing::debug!(pod = %pod, ?why, "deleting");
                    self.delete_pod(set, key, pod, uid).await?;
                }
            }
        }
        Ok(())
    }

    async fn sync(&self, set: &StatefulSet, key: &str) -> Result<Action, StatefulSetError> {
        let m = set.meta();
        let selector = spec_of(set).selector.as_ref();
        let adopting = m.deletion_timestamp.is_empty();
        let all_pods: Vec<Arc<Pod>> = self
            .pods
            .state()
            .into_iter()
            .filter(|p| p.meta().namespace == m.namespace && ordinal_of(set, p).is_some())
            .collect();
        let pod_refs: Vec<&Pod> = all_pods.iter().map(AsRef::as_ref).collect();
        let claimed = claim_objects(m, selector, adopting, &pod_refs);
        adopt_and_release(&self.client, set, &claimed).await;
        if !adopting {
            return Ok(Action::await_change());
        }
        let (update, old) =
            history::claim_and_construct(&self.client, &self.revisions, set, selector).await?;
        let template = spec_of(set).template.clone().unwrap_or_default();
        let status_current = set.status.as_ref().map(|s| s.current_revision.as_str()).unwrap_or_default();
        let current = old
            .iter()
            .find(|c| c.meta().name == status_current)
            .and_then(|c| history::template_of(c).map(|t| (c.meta().name.clone(), t)))
            .unwrap_or_else(|| (update.meta().name.clone(), template.clone()));
        let revisions = Revisions { current, update: (update.meta().name.clone(), template) };

        let satisfied = self.expectations.satisfied(key, claimed.mine.iter().copied());
        let view =
            View { set, pods: &claimed.mine, update_revision: &revisions.update.0, now: SystemTime::now() };
        let mut requeue = None;
        let mut result = Ok(());
        if satisfied {
            let plan = plan::plan(&view);
            requeue = plan.requeue_after;
            result = self.apply(set, key, &revisions, &claimed.mine, &plan.steps).await;
            let live: HashSet<&str> = claimed
                .mine
                .iter()
                .map(|p| super::pods::revision_of(p))
                .chain([revisions.current.0.as_str(), revisions.update.0.as_str()])
                .collect();
            let old_refs: Vec<&ControllerRevision> = old.iter().collect();
            let prune =
                history::prune(set, &old_refs, |c| live.contains(c.meta().name.as_str()), Budget::NonLive);
            history::delete(&self.client, &m.namespace, &prune).await;
        }
        let status = status::compute(
            set,
            &claimed.mine,
            &revisions.current.0,
            &revisions.update.0,
            set.status.as_ref().and_then(|s| s.collision_count),
            view.now,
        );
        if set.status.as_ref() != Some(&status) {
            let api = self.client.api::<StatefulSet>(&m.namespace);
            match api.update_status(&StatefulSet { status: Some(status.clone()), ..set.clone() }).await {
                Ok(_) | Err(navarch_client::Error::NotFound(_)) => {}
                Err(e) => return Err(e.into()),
            }
        }
        result?;
        let awaiting =
            spec_of(set).min_ready_seconds > 0 && status.available_replicas < status.ready_replicas;
        Ok(next_sync(satisfied, requeue, awaiting))
    }
}

impl Reconciler<StatefulSet> for StatefulSetController {
    type Error = StatefulSetError;

    async fn reconcile(&self, set: Arc<StatefulSet>) -> Result<Action, StatefulSetError> {
        let key = set.key();
        if !self.pods.is_ready() || !self.claims.is_ready() || !self.revisions.is_ready() {
            // Decisions need the full lists first.
            return Ok(Action::requeue(Duration::from_millis(500)));
        }
        if self.pruned.due() {
            // Forget the expectations of sets that are gone.
            let live: HashSet<String> = self.sets.keys().iter().map(ToString::to_string).collect();
            self.expectations.retain(&live);
        }
        let span = tracing::debug_span!("statefulset", statefulset = %key);
        self.sync(&set, &key).instrument(span).await
    }
}
