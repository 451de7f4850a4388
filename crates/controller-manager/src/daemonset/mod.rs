//! The DaemonSet controller (Kubernetes' `daemon` controller): one pod of the template on every node
//! that should run it, rolled from one template to the next by the update strategy.
//!
//! * **Placement** ([`placement`]): a node should run the daemon pod when the pod template (with the
//!   tolerations every daemon pod gets) fits it: `nodeName`, `nodeSelector`, required node affinity, and
//!   NoSchedule/NoExecute taints. A pod already on a node keeps running there while it tolerates the
//!   node's NoExecute taints (a new NoSchedule taint, a cordon, evicts nothing). Each pod is created with
//!   a required node affinity on `metadata.name` for its node and placed by the scheduler.
//! * **Pods** ([`plan::manage`]): a missing pod is created, pods on nodes that no longer qualify are
//!   deleted, extra pods on a node go (the oldest stays), Failed pods are deleted and recreated after a
//!   per-node back-off (1 s doubling, at most 15 minutes) with a `FailedDaemonPod` event. Pods of
//!   deleted nodes are left to the pod garbage collector.
//! * **Updates** ([`plan::rolling_update`]): `RollingUpdate` replaces old pods within `maxUnavailable`
//!   (default 1) of the nodes that should run one, or with `maxSurge` starts the new pod first and
//!   deletes the old one once the new one is available; `OnDelete` only gives new pods to nodes whose
//!   pod was deleted.
//! * **History** ([`crate::controller_history`], shared with StatefulSets): one ControllerRevision per
//!   template, `<ds>-<hash>`, whose data is the strategic merge patch that puts the template back
//!   (`{"spec":{"template":{...,"$patch":"replace"}}}`, what `kubectl rollout undo` sends); the current
//!   one has the highest revision (an old one is reused and renumbered when the template goes back to
//!   it); those beyond `revisionHistoryLimit` that no pod uses are deleted.
//! * **Status** ([`plan::status`]): desired, current, ready, available, unavailable, updated and
//!   misscheduled counts, observedGeneration (only when the pod cache showed every write it made).
//!
//! [`controller`] holds the reconcile loop that applies these pure decisions; [`spawn`] wires it to the
//! shared DaemonSet, pod, Node and ControllerRevision reflectors.

pub mod controller;
pub mod placement;
pub mod plan;
#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::Duration;

use navarch_api::Resource;
use navarch_api::v1::{ControllerRevision, DaemonSet, DaemonSetSpec, Pod};
use navarch_client::{Controller, ObjectRef, Store};

use crate::pod_control::{controller_of, owners_of};
use crate::run::Wiring;

pub use controller::DaemonSetController;

pub use crate::controller_history::REVISION_HASH_LABEL;
/// The label holding the DaemonSet's template generation a pod was made from (deprecated upstream,
/// still written and read).
pub const TEMPLATE_GENERATION_LABEL: &str = "pod-template-generation";
/// The DaemonSet annotation holding its template generation (set by the api-server).
pub const TEMPLATE_GENERATION_ANNOTATION: &str = "deprecated.daemonset.template.generation";

#[derive(Debug, thiserror::Error)]
pub enum DaemonSetError {
    #[error("{0}")]
    Api(#[from] navarch_client::Error),
    #[error("spec.selector: {0}")]
    Selector(String),
    #[error(transparent)]
    History(#[from] crate::controller_history::HistoryError),
}

/// The DaemonSet's spec (an empty one if unset).
pub fn spec_of(ds: &DaemonSet) -> &DaemonSetSpec {
    static EMPTY: std::sync::OnceLock<DaemonSetSpec> = std::sync::OnceLock::new();
    ds.spec.as_ref().unwrap_or_else(|| EMPTY.get_or_init(DaemonSetSpec::default))
}

/// The template generation of the DaemonSet (its annotation), if any.
pub fn template_generation(ds: &DaemonSet) -> Option<i64> {
    ds.meta().annotations.get(TEMPLATE_GENERATION_ANNOTATION).and_then(|g| g.parse().ok())
}

/// The DaemonSets to sync when `pod` changes: its controller if that is a DaemonSet, else (an orphan)
/// every DaemonSet of its namespace that selects it.
pub fn daemonsets_for_pod(sets: &Store<DaemonSet>, pod: &Pod) -> Vec<ObjectRef> {
    owners_of(sets, pod, |d| spec_of(d).selector.clone())
}

/// The DaemonSet controlling a ControllerRevision.
pub fn daemonset_for_revision(cr: &ControllerRevision) -> Vec<ObjectRef> {
    let m = cr.meta();
    controller_of(m)
        .filter(|r| r.kind == DaemonSet::KIND)
        .map(|r| vec![ObjectRef::new(&m.namespace, &r.name)])
        .unwrap_or_default()
}

/// Runs the DaemonSet controller on the shared reflectors: DaemonSets, re-synced when a pod they own
/// (or an orphan they select) or a ControllerRevision they control changes, and every DaemonSet when a
/// Node changes (a node added, relabelled, tainted or gone changes where daemon pods belong).
pub fn spawn(w: &mut Wiring) {
    let events = w.recorder("daemonset-controller");
    let sets = w.informers.daemonsets.store();
    let by_pod = sets.clone();
    let sets_for_nodes = sets.clone();
    let controller = Controller::for_shared(&w.informers.daemonsets)
        .concurrency(w.workers)
        .watches_shared(&w.informers.pods, move |p: &Pod| daemonsets_for_pod(&by_pod, p))
        .watches_shared(&w.informers.controller_revisions, daemonset_for_revision)
        .watches_shared(&w.informers.nodes, move |_| {
            sets_for_nodes.state().iter().map(|d| ObjectRef::from_obj(d.as_ref())).collect()
        });
    let ctx = Arc::new(DaemonSetController::new(
        w.client.clone(),
        sets,
        w.informers.pods.store(),
        w.informers.nodes.store(),
        w.informers.controller_revisions.store(),
        events,
    ));
    w.controller(controller, ctx, Duration::from_secs(1));
}
