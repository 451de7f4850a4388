//! A StatefulSet pod's PersistentVolumeClaims (Kubernetes' `getPersistentVolumeClaims`,
//! `updateClaimOwnerRefForSetAndPod`, `PodClaimIsStale`): one per volumeClaimTemplate, named
//! `<template>-<set>-<ordinal>`, labelled with the template's labels plus the set's selector's
//! matchLabels, and owned as `persistentVolumeClaimRetentionPolicy` says.

use navarch_api::Resource;
use navarch_api::v1::{ObjectMeta, OwnerReference, PersistentVolumeClaim, Pod, StatefulSet};

use super::spec_of;

const DELETE: &str = "Delete";

/// The name of the claim of template `template` for the pod of `ordinal`.
pub fn claim_name(set: &StatefulSet, template: &str, ordinal: i32) -> String {
    format!("{template}-{}-{ordinal}", set.meta().name)
}

/// The claims of the pod of `ordinal`, as they are created (without owner references).
pub fn claims_for(set: &StatefulSet, ordinal: i32) -> Vec<PersistentVolumeClaim> {
    let spec = spec_of(set);
    let selector_labels = spec.selector.as_ref().map(|s| s.match_labels.clone()).unwrap_or_default();
    spec.volume_claim_templates
        .iter()
        .map(|t| {
            let tm = t.meta();
            let mut labels = tm.labels.clone();
            labels.extend(selector_labels.clone());
            let mut claim = PersistentVolumeClaim {
                metadata: Some(ObjectMeta {
                    name: claim_name(set, &tm.name, ordinal),
                    namespace: set.meta().namespace.clone(),
                    labels,
                    annotations: tm.annotations.clone(),
                    finalizers: tm.finalizers.clone(),
                    ..Default::default()
                }),
                spec: t.spec.clone(),
                ..Default::default()
            };
            claim.set_type_meta();
            claim
        })
        .collect()
}

/// The retention policy as (whenDeleted is Delete, whenScaled is Delete).
fn policy(set: &StatefulSet) -> (bool, bool) {
    let p = spec_of(set).persistent_volume_claim_retention_policy.as_ref();
    (p.is_some_and(|p| p.when_deleted == DELETE), p.is_some_and(|p| p.when_scaled == DELETE))
}

/// A plain (non-controller) owner reference to `m` of kind `K`.
fn owner_ref<K: Resource>(m: &ObjectMeta) -> OwnerReference {
    OwnerReference {
        api_version: K::API_VERSION.into(),
        kind: K::KIND.into(),
        name: m.name.clone(),
        uid: m.uid.clone(),
        ..Default::default()
    }
}

/// The owner references a claim of `pod` should have (`updateClaimOwnerRefForSetAndPod`), given its
/// current ones; None when they are right. `in_range`: the pod's ordinal is within the set's range.
/// whenScaled Delete and scaled away → owned by the pod (not the set); else whenDeleted Delete → owned by
/// the set; else neither. Other owners are kept.
pub fn retention_refs(
    set: &StatefulSet,
    current: &[OwnerReference],
    pod: &Pod,
    in_range: bool,
) -> Option<Vec<OwnerReference>> {
    let (when_deleted, when_scaled) = policy(set);
    let scaled_away = when_scaled && !in_range;
    let by_pod = scaled_away && !pod.meta().uid.is_empty();
    let by_set = when_deleted && !scaled_away;
    let set_uid = &set.meta().uid;
    let pod_uid = &pod.meta().uid;
    let mut out: Vec<OwnerReference> = current
        .iter()
        .filter(|r| &r.uid != set_uid && (pod_uid.is_empty() || &r.uid != pod_uid))
        .cloned()
        .collect();
    if by_set {
        out.push(owner_ref::<StatefulSet>(set.meta()));
    }
    if by_pod {
        out.push(owner_ref::<Pod>(pod.meta()));
    }
    let same = out.len() == current.len() && out.iter().all(|r| current.iter().any(|c| c.uid == r.uid));
    (!same).then_some(out)
}

/// Whether the claim still belongs to an earlier pod of the same name (whenScaled Delete: it is about
/// to be deleted with that pod, so a new pod must wait rather than mount it).
pub fn is_stale(set: &StatefulSet, claim: &PersistentVolumeClaim, pod: &Pod) -> bool {
    let (_, when_scaled) = policy(set);
    when_scaled
        && claim
            .meta()
            .owner_references
            .iter()
            .any(|r| r.kind == Pod::KIND && r.name == pod.meta().name && r.uid != pod.meta().uid)
}
