//! The StatefulSet controller (Kubernetes' `statefulset` controller): pods with a stable identity,
//! `<set>-<ordinal>` for the ordinals `ordinals.start ..= start + replicas - 1`, each with its own
//! PersistentVolumeClaims, created, deleted and updated in order.
//!
//! * **Identity** ([`pods`]): a pod is named `<set>-<ordinal>`, labelled `controller-revision-hash:
//!   <revision name>`, `statefulset.kubernetes.io/pod-name` and `apps.kubernetes.io/pod-index`, has
//!   `hostname` = its name and `subdomain` = the set's `serviceName` (its DNS name through the headless
//!   Service), and is controlled by the set. At most one pod of an ordinal exists at any time: the name
//!   is the ordinal's, and a new one is created only once the old one is gone from the store.
//! * **Claims** ([`claims`]): before a pod is created, each volumeClaimTemplate's claim
//!   `<template>-<set>-<ordinal>` is created when missing (the template's labels plus the selector's
//!   matchLabels), and the pod's volume of the template's name mounts it. Its owner references follow
//!   `persistentVolumeClaimRetentionPolicy`: `whenDeleted: Delete` makes the set an owner (the garbage
//!   collector deletes the claim with the set), `whenScaled: Delete` makes the pod of an ordinal that
//!   was scaled away the owner (deleted with the pod). Claims are never deleted by the controller.
//! * **Pods** ([`plan`]): `OrderedReady` creates the lowest missing ordinal only when every lower one
//!   is Running and Ready (and available for `minReadySeconds`), deletes ordinals beyond the range from
//!   the highest down, one at a time, each after the previous one is gone; `Parallel` creates and
//!   deletes all at once. Failed (or Succeeded) pods are deleted and created again.
//! * **Updates** ([`plan`]): `RollingUpdate` deletes pods not at the update revision from the highest
//!   ordinal down to `partition`, at most `maxUnavailable` (default 1) unavailable at once (Kubernetes'
//!   MaxUnavailableStatefulSet behaviour); pods below the partition are created from the current
//!   revision. `OnDelete` only gives the update revision to pods deleted by hand.
//! * **History** ([`crate::controller_history`], shared with DaemonSets): ControllerRevisions
//!   `<set>-<hash>`; `status.updateRevision` is the current template's, `status.currentRevision` the one
//!   the pods ran before the update (it becomes the update revision once every pod is updated and
//!   ready); old revisions beyond `revisionHistoryLimit` that no pod uses are deleted.
//! * **Status** ([`status`]): replicas, ready, available, current and updated counts, revisions,
//!   observedGeneration, collisionCount.
//!
//! [`controller`] holds the reconcile loop that applies these decisions, with the events of
//! [`events`] (Kubernetes' wording); [`spawn`] wires it to the
//! shared StatefulSet, pod, PersistentVolumeClaim and ControllerRevision reflectors.

pub mod claims;
pub mod controller;
pub mod events;
pub mod plan;
pub mod pods;
pub mod status;
#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::Duration;

use navarch_api::Resource;
use navarch_api::v1::{ControllerRevision, PersistentVolumeClaim, Pod, StatefulSet, StatefulSetSpec};
use navarch_client::{Controller, ObjectRef, Store};

use crate::pod_control::{controller_of, owners_of};
use crate::run::Wiring;

pub use controller::StatefulSetController;

/// The label holding a pod's name (Kubernetes' `StatefulSetPodNameLabel`).
pub const POD_NAME_LABEL: &str = "statefulset.kubernetes.io/pod-name";
/// The label holding a pod's ordinal (Kubernetes' `PodIndexLabel`).
pub const POD_INDEX_LABEL: &str = "apps.kubernetes.io/pod-index";

#[derive(Debug, thiserror::Error)]
pub enum StatefulSetError {
    #[error("{0}")]
    Api(#[from] navarch_client::Error),
    #[error(transparent)]
    History(#[from] crate::controller_history::HistoryError),
    /// Pod or claim writes that failed this sync (their events say which).
    #[error("{0}")]
    Writes(String),
}

/// The StatefulSet's spec (an empty one if unset).
pub fn spec_of(set: &StatefulSet) -> &StatefulSetSpec {
    static EMPTY: std::sync::OnceLock<StatefulSetSpec> = std::sync::OnceLock::new();
    set.spec.as_ref().unwrap_or_else(|| EMPTY.get_or_init(StatefulSetSpec::default))
}

/// The first ordinal (`spec.ordinals.start`).
pub fn start_ordinal(set: &StatefulSet) -> i32 {
    spec_of(set).ordinals.as_ref().map(|o| o.start).unwrap_or(0)
}

/// `spec.replicas` (1 when unset, as defaulted).
pub fn replicas(set: &StatefulSet) -> i32 {
    spec_of(set).replicas.unwrap_or(1).max(0)
}

/// The name of the set's pod of `ordinal`.
pub fn pod_name(set: &StatefulSet, ordinal: i32) -> String {
    format!("{}-{ordinal}", set.meta().name)
}

/// The parent set's name and the ordinal of a pod name `<parent>-<ordinal>` (Kubernetes'
/// `getParentNameAndOrdinal`); None when the name has no ordinal.
pub fn parent_and_ordinal(name: &str) -> Option<(&str, i32)> {
    let (parent, ordinal) = name.rsplit_once('-')?;
    if ordinal.is_empty() || !ordinal.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((parent, ordinal.parse().ok()?))
}

/// The ordinal of a pod of `set` (None when the pod is not named as one of its members).
pub fn ordinal_of(set: &StatefulSet, pod: &Pod) -> Option<i32> {
    parent_and_ordinal(&pod.meta().name).filter(|(p, _)| *p == set.meta().name).map(|(_, o)| o)
}

/// The StatefulSets to sync when `pod` changes: its controller if that is a StatefulSet, else (an
/// orphan) every StatefulSet of its namespace that selects it.
pub fn sets_for_pod(sets: &Store<StatefulSet>, pod: &Pod) -> Vec<ObjectRef> {
    owners_of(sets, pod, |s| spec_of(s).selector.clone())
}

/// The StatefulSet controlling a ControllerRevision.
pub fn set_for_revision(cr: &ControllerRevision) -> Vec<ObjectRef> {
    let m = cr.meta();
    controller_of(m)
        .filter(|r| r.kind == StatefulSet::KIND)
        .map(|r| vec![ObjectRef::new(&m.namespace, &r.name)])
        .unwrap_or_default()
}

/// The StatefulSets a claim belongs to: the set named in it (`<template>-<set>-<ordinal>`) among those
/// of its namespace whose templates could have made it.
pub fn sets_for_claim(sets: &Store<StatefulSet>, claim: &PersistentVolumeClaim) -> Vec<ObjectRef> {
    let m = claim.meta();
    sets.state()
        .iter()
        .filter(|s| s.meta().namespace == m.namespace)
        .filter(|s| {
            spec_of(s).volume_claim_templates.iter().any(|t| {
                let prefix = format!("{}-{}-", t.meta().name, s.meta().name);
                m.name.strip_prefix(&prefix).is_some_and(|o| o.parse::<i32>().is_ok())
            })
        })
        .map(|s| ObjectRef::from_obj(s.as_ref()))
        .collect()
}

/// Runs the StatefulSet controller on the shared reflectors: StatefulSets, re-synced when a pod they
/// own (or an orphan they select), a ControllerRevision they control or one of their claims changes.
pub fn spawn(w: &mut Wiring) {
    let events = w.recorder("statefulset-controller");
    let sets = w.informers.statefulsets.store();
    let by_pod = sets.clone();
    let by_claim = sets.clone();
    let controller = Controller::for_shared(&w.informers.statefulsets)
        .concurrency(w.workers)
        .watches_shared(&w.informers.pods, move |p: &Pod| sets_for_pod(&by_pod, p))
        .watches_shared(&w.informers.controller_revisions, set_for_revision)
        .watches_shared(&w.informers.persistent_volume_claims, move |c: &PersistentVolumeClaim| {
            sets_for_claim(&by_claim, c)
        });
    let ctx = Arc::new(StatefulSetController::new(
        w.client.clone(),
        sets,
        w.informers.pods.store(),
        w.informers.persistent_volume_claims.store(),
        w.informers.controller_revisions.store(),
        events,
    ));
    w.controller(controller, ctx, Duration::from_secs(1));
}
