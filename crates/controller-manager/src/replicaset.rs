//! The ReplicaSet controller: keeps exactly `spec.replicas` active pods matching the selector. As in
//! Kubernetes, the same controller runs ReplicationControllers (`v1`, an equality selector): each kind
//! is seen as a ReplicaSet through [`ReplicaOwner`], and its pods are owned by the kind itself.
//!
//! The decisions are pure ([`plan`], [`status`], [`deletion_order`]) and unit-tested; the reconcile
//! loop ([`ReplicaSetController`]) applies them: adopt matching orphans and release pods that stopped
//! matching (by their controller ownerReference), create missing pods from the template in
//! slow-start batches (1, 2, 4, ...), delete the least useful surplus pods first, and write the
//! status. Expectations keep it from acting twice while its pod cache catches up with its own
//! writes. [`spawn`] wires it to the shared ReplicaSet and pod reflectors.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use navarch_api::Resource;
use navarch_api::selector::Selector;
use navarch_api::v1::{
    LabelSelector, ObjectMeta, Pod, ReplicaSet, ReplicaSetCondition, ReplicaSetSpec, ReplicaSetStatus,
    ReplicationController, ReplicationControllerCondition, ReplicationControllerStatus,
};
use navarch_client::{
    Action, Client, Controller, DeleteParams, EventRecorder, ObjectRef, SharedReflector, Store, object_ref,
};

use crate::pod_control::{Expectations, controller_of, controller_ref, create_in_batches, owners_of};
use crate::run::{Informers, Reconciler, Wiring};

/// Pods created or deleted per reconcile at most (Kubernetes' burstReplicas).
const BURST: usize = 500;

#[derive(Debug, thiserror::Error)]
pub enum ReplicaSetError {
    #[error("{0}")]
    Api(#[from] navarch_client::Error),
    #[error("spec.selector: {0}")]
    Selector(String),
}

pub fn is_active(p: &Pod) -> bool {
    let phase = p.status.as_ref().map(|s| s.phase.as_str()).unwrap_or_default();
    p.meta().deletion_timestamp.is_empty() && phase != "Succeeded" && phase != "Failed"
}

pub fn is_ready(p: &Pod) -> bool {
    ready_since(p).is_some()
}

/// When the pod's Ready condition last became True.
pub fn ready_since(p: &Pod) -> Option<SystemTime> {
    let c = p.status.as_ref()?.conditions.iter().find(|c| c.r#type == "Ready" && c.status == "True")?;
    Some(humantime::parse_rfc3339(&c.last_transition_time).unwrap_or(SystemTime::UNIX_EPOCH))
}

/// Ready for at least `min_ready` (Kubernetes' "available").
pub fn is_available(p: &Pod, min_ready: Duration, now: SystemTime) -> bool {
    ready_since(p)
        .is_some_and(|t| min_ready.is_zero() || now.duration_since(t).unwrap_or_default() >= min_ready)
}

/// What one reconcile should do.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Plan {
    /// Orphans matching the selector, to take ownership of.
    pub adopt: Vec<String>,
    /// Owned pods whose labels no longer match, to let go.
    pub release: Vec<String>,
    /// Pods to create.
    pub create: usize,
    /// Pods to delete, the least useful first.
    pub delete: Vec<String>,
}

/// The order in which surplus pods go (Kubernetes' ActivePods ranking, most expendable first):
/// unscheduled before scheduled, Pending before Unknown before Running, not ready before ready,
/// recently ready before long ready, more restarts before fewer, newer before older.
pub fn deletion_order(pods: &mut [&Pod]) {
    fn phase_rank(p: &Pod) -> u8 {
        match p.status.as_ref().map(|s| s.phase.as_str()).unwrap_or_default() {
            "Pending" | "" => 0,
            "Unknown" => 1,
            _ => 2,
        }
    }
    fn restarts(p: &Pod) -> i32 {
        p.status
            .as_ref()
            .map(|s| s.container_statuses.iter().map(|c| c.restart_count).max().unwrap_or(0))
            .unwrap_or(0)
    }
    pods.sort_by(|a, b| {
        let scheduled = |p: &Pod| p.spec.as_ref().is_some_and(|s| !s.node_name.is_empty());
        scheduled(a)
            .cmp(&scheduled(b))
            .then(phase_rank(a).cmp(&phase_rank(b)))
            .then(is_ready(a).cmp(&is_ready(b)))
            // Ready more recently goes first.
            .then(ready_since(b).cmp(&ready_since(a)))
            .then(restarts(b).cmp(&restarts(a)))
            // Newer first.
            .then(b.meta().creation_timestamp.cmp(&a.meta().creation_timestamp))
            .then(a.meta().name.cmp(&b.meta().name))
    });
}

/// The plan for `rs` given the pods of its namespace.
pub fn plan(rs: &ReplicaSet, pods: &[Arc<Pod>]) -> Result<Plan, ReplicaSetError> {
    let spec = rs.spec.clone().unwrap_or_default();
    let selector = Selector::from_label_selector(spec.selector.as_ref())
        .map_err(|e| ReplicaSetError::Selector(e.to_string()))?;
    let uid = &rs.meta().uid;
    let mut out = Plan::default();
    let mut mine: Vec<&Pod> = Vec::new();
    for p in pods {
        let m = p.meta();
        let matches = !selector.is_empty() && selector.matches(&m.labels);
        match controller_of(m) {
            Some(r) if &r.uid == uid => {
                if matches {
                    mine.push(p);
                } else if m.deletion_timestamp.is_empty() {
                    out.release.push(m.name.clone());
                }
            }
            Some(_) => {}
            None => {
                if matches && is_active(p) && rs.meta().deletion_timestamp.is_empty() {
                    out.adopt.push(m.name.clone());
                    mine.push(p);
                }
            }
        }
    }
    if !rs.meta().deletion_timestamp.is_empty() {
        return Ok(out);
    }
    let mut active: Vec<&Pod> = mine.into_iter().filter(|p| is_active(p)).collect();
    let want = spec.replicas.unwrap_or(1).max(0) as usize;
    if active.len() < want {
        out.create = (want - active.len()).min(BURST);
    } else if active.len() > want {
        deletion_order(&mut active);
        out.delete =
            active.iter().take((active.len() - want).min(BURST)).map(|p| p.meta().name.clone()).collect();
    }
    Ok(out)
}

/// The status of `rs` from the pods it owns.
pub fn status(rs: &ReplicaSet, owned: &[&Pod], now: SystemTime) -> ReplicaSetStatus {
    let spec = rs.spec.clone().unwrap_or_default();
    let template_labels: BTreeMap<String, String> = spec
        .template
        .as_ref()
        .and_then(|t| t.metadata.as_ref())
        .map(|m| m.labels.clone())
        .unwrap_or_default();
    let min_ready = Duration::from_secs(spec.min_ready_seconds.max(0) as u64);
    let active: Vec<&&Pod> = owned.iter().filter(|p| is_active(p)).collect();
    let terminating = owned.iter().filter(|p| !p.meta().deletion_timestamp.is_empty()).count() as i32;
    let old = rs.status.clone().unwrap_or_default();
    ReplicaSetStatus {
        replicas: active.len() as i32,
        fully_labeled_replicas: active
            .iter()
            .filter(|p| template_labels.iter().all(|(k, v)| p.meta().labels.get(k) == Some(v)))
            .count() as i32,
        ready_replicas: active.iter().filter(|p| is_ready(p)).count() as i32,
        available_replicas: active.iter().filter(|p| is_available(p, min_ready, now)).count() as i32,
        terminating_replicas: (terminating > 0).then_some(terminating),
        observed_generation: rs.meta().generation,
        conditions: old.conditions,
    }
}

/// A kind the replica controller runs: ReplicaSet, and ReplicationController seen as one.
pub trait ReplicaOwner: Resource + Clone + PartialEq + Send + Sync + 'static {
    /// The object as a ReplicaSet: the same metadata, replicas, template and minReadySeconds, its
    /// selector as a LabelSelector, its status.
    fn as_replica_set(&self) -> ReplicaSet;
    /// The object with `status` (computed for its ReplicaSet view) as its status.
    fn with_status(&self, status: &ReplicaSetStatus) -> Self;
}

impl ReplicaOwner for ReplicaSet {
    fn as_replica_set(&self) -> ReplicaSet {
        self.clone()
    }

    fn with_status(&self, status: &ReplicaSetStatus) -> ReplicaSet {
        ReplicaSet { status: Some(status.clone()), ..self.clone() }
    }
}

impl ReplicaOwner for ReplicationController {
    fn as_replica_set(&self) -> ReplicaSet {
        let spec = self.spec.clone().unwrap_or_default();
        let status = self.status.clone().map(|s| ReplicaSetStatus {
            replicas: s.replicas,
            fully_labeled_replicas: s.fully_labeled_replicas,
            ready_replicas: s.ready_replicas,
            available_replicas: s.available_replicas,
            terminating_replicas: None,
            observed_generation: s.observed_generation,
            conditions: s
                .conditions
                .into_iter()
                .map(|c| ReplicaSetCondition {
                    r#type: c.r#type,
                    status: c.status,
                    last_transition_time: c.last_transition_time,
                    reason: c.reason,
                    message: c.message,
                })
                .collect(),
        });
        ReplicaSet {
            metadata: self.metadata.clone(),
            spec: Some(ReplicaSetSpec {
                replicas: spec.replicas,
                min_ready_seconds: spec.min_ready_seconds,
                selector: Some(LabelSelector { match_labels: spec.selector, ..Default::default() }),
                template: spec.template,
            }),
            status,
            ..Default::default()
        }
    }

    fn with_status(&self, s: &ReplicaSetStatus) -> ReplicationController {
        let status = ReplicationControllerStatus {
            replicas: s.replicas,
            fully_labeled_replicas: s.fully_labeled_replicas,
            ready_replicas: s.ready_replicas,
            available_replicas: s.available_replicas,
            observed_generation: s.observed_generation,
            conditions: s
                .conditions
                .iter()
                .map(|c| ReplicationControllerCondition {
                    r#type: c.r#type.clone(),
                    status: c.status.clone(),
                    last_transition_time: c.last_transition_time.clone(),
                    reason: c.reason.clone(),
                    message: c.message.clone(),
                })
                .collect(),
        };
        ReplicationController { status: Some(status), ..self.clone() }
    }
}

/// A pod for `rs` (the ReplicaSet view of a `K`) from its template, owned by it, with a name of the
/// owner's plus a suffix.
pub fn pod_from_template<K: ReplicaOwner>(rs: &ReplicaSet) -> Pod {
    let spec = rs.spec.clone().unwrap_or_default();
    let template = spec.template.unwrap_or_default();
    let tm = template.metadata.unwrap_or_default();
    let m = rs.meta();
    let mut pod = Pod {
        metadata: Some(ObjectMeta {
            generate_name: format!("{}-", m.name),
            namespace: m.namespace.clone(),
            labels: tm.labels,
            annotations: tm.annotations,
            finalizers: tm.finalizers,
            owner_references: vec![controller_ref::<K>(rs.meta())],
            ..Default::default()
        }),
        spec: template.spec,
        ..Default::default()
    };
    pod.set_type_meta();
    pod
}

/// The reconcile side of the replica controller, for ReplicaSets or ReplicationControllers (`K`).
pub struct ReplicaSetController<K> {
    pub client: Client,
    pub pods: Store<Pod>,
    pub events: EventRecorder,
    expectations: Expectations,
    kind: std::marker::PhantomData<fn() -> K>,
}

impl<K: ReplicaOwner> ReplicaSetController<K> {
    pub fn new(client: Client, pods: Store<Pod>, events: EventRecorder) -> ReplicaSetController<K> {
        ReplicaSetController {
            client,
            pods,
            events,
            expectations: Expectations::default(),
            kind: std::marker::PhantomData,
        }
    }
}

impl<K: ReplicaOwner> Reconciler<K> for ReplicaSetController<K> {
    type Error = ReplicaSetError;

    async fn reconcile(&self, owner: Arc<K>) -> Result<Action, ReplicaSetError> {
        let rs = Arc::new(owner.as_replica_set());
        let m = rs.meta();
        let key = format!("{}/{}", m.namespace, m.name);
        if !self.pods.is_ready() {
            // Decisions need the full pod list first.
            return Ok(Action::requeue(Duration::from_millis(500)));
        }
        let pods: Vec<Arc<Pod>> =
            self.pods.state().into_iter().filter(|p| p.meta().namespace == m.namespace).collect();
        let api = self.client.api::<Pod>(&m.namespace);
        let rs_api = self.client.api::<K>(&m.namespace);
        let satisfied = self.expectations.satisfied(&key, pods.iter().map(|p| p.as_ref()));
        let plan = plan(&rs, &pods)?;
        tracing::debug!(replicaset = %key, satisfied, ?plan, "plan");
        for name in &plan.adopt {
            if let Some(p) = pods.iter().find(|p| &p.meta().name == name) {
                let mut p = (**p).clone();
                p.meta_mut().owner_references.push(controller_ref::<K>(rs.meta()));
                if let Err(e) = api.update(&p).await {
                    tracing::debug!(pod = %name, error = %e, "adopting a pod");
                }
            }
        }
        for name in &plan.release {
            if let Some(p) = pods.iter().find(|p| &p.meta().name == name) {
                let mut p = (**p).clone();
                p.meta_mut().owner_references.retain(|r| r.uid != m.uid);
                if let Err(e) = api.update(&p).await {
                    tracing::debug!(pod = %name, error = %e, "releasing a pod");
                }
            }
        }
        if satisfied {
            if plan.create > 0 {
                let pods = vec![pod_from_template::<K>(&rs); plan.create];
                create_in_batches(
                    &api,
                    &self.events,
                    &object_ref(owner.as_ref()),
                    &key,
                    &self.expectations,
                    pods,
                )
                .await;
            }
            if !plan.delete.is_empty() {
                let mut deleted = Vec::new();
                for name in &plan.delete {
                    let pod_uid = pods.iter().find(|p| &p.meta().name == name).map(|p| p.meta().uid.clone());
                    let params =
                        DeleteParams { precondition_uid: pod_uid.unwrap_or_default(), ..Default::default() };
                    match api.delete(name, &params).await {
                        Ok(_) => {
                            deleted.push(name.clone());
                            self.events.record(
                                object_ref(owner.as_ref()),
                                "Normal",
                                "SuccessfulDelete",
                                format!("Deleted pod: {name}"),
                            );
                        }
                        Err(navarch_client::Error::NotFound(_)) => {}
                        Err(e) => tracing::warn!(pod = %name, error = %e, "deleting a surplus pod"),
                    }
                }
                self.expectations.expect(&key, vec![], deleted);
            }
        }
        // Status from the pods this ReplicaSet owns now.
        let owned: Vec<&Pod> = pods
            .iter()
            .filter(|p| {
                controller_of(p.meta()).is_some_and(|r| r.uid == m.uid) || plan.adopt.contains(&p.meta().name)
            })
            .filter(|p| !plan.release.contains(&p.meta().name))
            .map(|p| p.as_ref())
            .collect();
        let new_status = status(&rs, &owned, SystemTime::now());
        let updated = owner.with_status(&new_status);
        if updated != *owner {
            match rs_api.update_status(&updated).await {
                Ok(_) | Err(navarch_client::Error::NotFound(_)) => {}
                Err(e) => return Err(e.into()),
            }
        }
        // Availability changes with time alone when minReadySeconds is set.
        let min_ready = rs.spec.as_ref().map(|s| s.min_ready_seconds).unwrap_or(0);
        if min_ready > 0 && new_status.available_replicas < new_status.ready_replicas {
            return Ok(Action::requeue(Duration::from_secs(1)));
        }
        Ok(if satisfied {
            Action::requeue(Duration::from_secs(300))
        } else {
            Action::requeue(Duration::from_secs(5))
        })
    }
}

/// The `K`s to re-sync when `pod` changes: its controller if that is a `K`, else (an orphan) every
/// `K` of its namespace that selects it.
pub fn replicasets_for<K: ReplicaOwner>(sets: &Store<K>, pod: &Pod) -> Vec<ObjectRef> {
    owners_of(sets, pod, |rs| rs.as_replica_set().spec.and_then(|s| s.selector))
}

/// Runs the ReplicaSet controller: ReplicaSets, re-synced when a pod they own (or an orphan they
/// select) changes, and all of them after a pod relist. The pod store and those triggers come from
/// one watch, the store updated first, so a reconcile never reads a store older than the pod change
/// that triggered it.
pub fn spawn(w: &mut Wiring) {
    spawn_for(w, |i| &i.replicasets, "replicaset-controller");
}

/// Runs the same controller for ReplicationControllers (Kubernetes' replicationmanager).
pub fn spawn_replication_controllers(w: &mut Wiring) {
    spawn_for(w, |i| &i.replication_controllers, "replication-controller");
}

/// Runs the controller for the `K`s of the shared reflector `sets` picks.
fn spawn_for<K: ReplicaOwner>(w: &mut Wiring, sets: fn(&Informers) -> &SharedReflector<K>, component: &str) {
    let events = w.recorder(component);
    let sets = sets(&w.informers);
    let (store, pods) = (sets.store(), &w.informers.pods);
    let controller = Controller::for_shared(sets)
        .concurrency(w.workers)
        .watches_shared(pods, move |p: &Pod| replicasets_for(&store, p));
    let ctx = Arc::new(ReplicaSetController::<K>::new(w.client.clone(), pods.store(), events));
    w.controller(controller, ctx, Duration::from_secs(2));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rs(replicas: i32) -> ReplicaSet {
        serde_yaml::from_str(&format!(
            "{{metadata: {{name: web, namespace: ns, uid: rs-uid, generation: 2}}, spec: {{replicas: {replicas}, selector: {{matchLabels: {{app: web}}}}, template: {{metadata: {{labels: {{app: web}}}}, spec: {{containers: [{{name: c, image: busybox}}]}}}}}}}}"
        ))
        .unwrap()
    }

    fn pod(name: &str, labels: &str, owner: Option<&str>, extra: &str) -> Arc<Pod> {
        let owners = owner
            .map(|u| format!("ownerReferences: [{{apiVersion: apps/v1, kind: ReplicaSet, name: x, uid: {u}, controller: true}}],"))
            .unwrap_or_default();
        Arc::new(
            serde_yaml::from_str(&format!(
                "{{metadata: {{name: {name}, namespace: ns, {owners} labels: {{{labels}}}, creationTimestamp: '2026-01-01T00:00:0{}Z'}} {extra}}}",
                name.len() % 10
            ))
            .unwrap(),
        )
    }

    #[test]
    fn creates_adopts_and_releases() {
        let pods = vec![
            pod("mine", "app: web", Some("rs-uid"), ""),
            pod("orphan", "app: web", None, ""),
            pod("other-owner", "app: web", Some("someone-else"), ""),
            pod("relabelled", "app: db", Some("rs-uid"), ""),
        ];
        let p = plan(&rs(3), &pods).unwrap();
        assert_eq!(p.adopt, ["orphan"]);
        assert_eq!(p.release, ["relabelled"]);
        assert_eq!(p.create, 1);
        assert!(p.delete.is_empty());
    }

    #[test]
    fn finished_pods_do_not_count() {
        let pods = vec![
            pod("a", "app: web", Some("rs-uid"), ", status: {phase: Succeeded}"),
            pod("b", "app: web", Some("rs-uid"), ", status: {phase: Running}"),
        ];
        assert_eq!(plan(&rs(2), &pods).unwrap().create, 1);
    }

    #[test]
    fn surplus_goes_least_useful_first() {
        let ready = ", spec: {nodeName: n1}, status: {phase: Running, conditions: [{type: Ready, status: 'True', lastTransitionTime: '2026-01-01T00:00:00Z'}]}";
        let pods = vec![
            pod("ready-a", "app: web", Some("rs-uid"), ready),
            pod("pending-unscheduled", "app: web", Some("rs-uid"), ", status: {phase: Pending}"),
            pod(
                "running-not-ready",
                "app: web",
                Some("rs-uid"),
                ", spec: {nodeName: n1}, status: {phase: Running}",
            ),
            pod("ready-bb", "app: web", Some("rs-uid"), ready),
        ];
        let p = plan(&rs(1), &pods).unwrap();
        assert_eq!(p.delete, ["pending-unscheduled", "running-not-ready", "ready-bb"]);
    }

    #[test]
    fn status_counts_ready_and_available() {
        let now = humantime::parse_rfc3339("2026-01-01T00:01:00Z").unwrap();
        let mut r = rs(2);
        r.spec.as_mut().unwrap().min_ready_seconds = 30;
        let long = pod(
            "a",
            "app: web",
            Some("rs-uid"),
            ", status: {phase: Running, conditions: [{type: Ready, status: 'True', lastTransitionTime: '2026-01-01T00:00:00Z'}]}",
        );
        let fresh = pod(
            "b",
            "app: web",
            Some("rs-uid"),
            ", status: {phase: Running, conditions: [{type: Ready, status: 'True', lastTransitionTime: '2026-01-01T00:00:50Z'}]}",
        );
        let s = status(&r, &[long.as_ref(), fresh.as_ref()], now);
        assert_eq!((s.replicas, s.ready_replicas, s.available_replicas, s.observed_generation), (2, 2, 1, 2));
        assert_eq!(s.fully_labeled_replicas, 2);
    }

    #[test]
    fn template_pods_are_owned() {
        let p = pod_from_template::<ReplicaSet>(&rs(1));
        let m = p.meta();
        assert_eq!(m.generate_name, "web-");
        assert_eq!(m.labels.get("app").map(String::as_str), Some("web"));
        assert_eq!(controller_of(m).unwrap().uid, "rs-uid");
    }

    #[test]
    fn replication_controllers_are_seen_as_replica_sets() {
        let rc: ReplicationController = serde_yaml::from_str(
            "{metadata: {name: web, namespace: ns, uid: rc-uid, generation: 3}, spec: {replicas: 2, minReadySeconds: 5, selector: {app: web}, template: {metadata: {labels: {app: web}}, spec: {containers: [{name: c, image: busybox}]}}}}",
        )
        .unwrap();
        let view = rc.as_replica_set();
        let pods = vec![pod("orphan", "app: web", None, ""), pod("other", "app: db", None, "")];
        let p = plan(&view, &pods).unwrap();
        assert_eq!((p.adopt, p.create), (vec!["orphan".to_string()], 1));
        let pod = pod_from_template::<ReplicationController>(&view);
        let owner = controller_of(pod.meta()).unwrap();
        assert_eq!(
            (owner.kind.as_str(), owner.api_version.as_str(), owner.uid.as_str()),
            ("ReplicationController", "v1", "rc-uid")
        );
        let s = status(&view, &[], SystemTime::now());
        let written = rc.with_status(&s);
        assert_eq!(written.status.as_ref().unwrap().observed_generation, 3);
        assert_eq!(written.with_status(&s), written, "unchanged status: no write");
        assert_eq!(written.as_replica_set().status, Some(s));
    }
}
