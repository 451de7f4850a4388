//! A StatefulSet pod's identity and storage (Kubernetes' `newStatefulSetPod`, `updateIdentity`,
//! `updateStorage`, `newVersionedStatefulSetPod`): its name, labels, hostname and subdomain, the
//! volumes that mount its claims, and which revision a new pod of an ordinal is made from.

use navarch_api::Resource;
use navarch_api::v1::{
    ObjectMeta, PersistentVolumeClaimVolumeSource, Pod, PodTemplateSpec, StatefulSet, Volume,
};

use super::claims::claim_name;
use super::{POD_INDEX_LABEL, POD_NAME_LABEL, pod_name, spec_of, start_ordinal};
use crate::controller_history::REVISION_HASH_LABEL;
use crate::pod_control::controller_ref;

/// Which of the set's two revisions a pod is made from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Revision {
    Current,
    Update,
}

/// `spec.updateStrategy.rollingUpdate.partition` (0 when unset).
pub fn partition(set: &StatefulSet) -> i32 {
    spec_of(set)
        .update_strategy
        .as_ref()
        .and_then(|s| s.rolling_update.as_ref())
        .and_then(|r| r.partition)
        .unwrap_or(0)
}

/// Whether the update strategy is RollingUpdate (the default).
pub fn is_rolling(set: &StatefulSet) -> bool {
    spec_of(set).update_strategy.as_ref().is_none_or(|s| s.r#type.is_empty() || s.r#type == "RollingUpdate")
}

/// The revision a new pod of `ordinal` gets: the current one below the partition of a rolling update
/// (or, without rollingUpdate bounds, below the count of current replicas), else the update revision.
pub fn revision_for(set: &StatefulSet, ordinal: i32) -> Revision {
    let rolling = spec_of(set).update_strategy.as_ref().and_then(|s| s.rolling_update.as_ref());
    let start = start_ordinal(set);
    let below = match rolling {
        None => {
            let current = set.status.as_ref().map(|s| s.current_replicas).unwrap_or(0);
            is_rolling(set) && ordinal < start + current
        }
        Some(_) => ordinal < start + partition(set),
    };
    if below { Revision::Current } else { Revision::Update }
}

/// The pod of `ordinal` from `template` (the template of revision `revision_name`).
pub fn new_pod(set: &StatefulSet, template: &PodTemplateSpec, revision_name: &str, ordinal: i32) -> Pod {
    let m = set.meta();
    let tm = template.metadata.clone().unwrap_or_default();
    let name = pod_name(set, ordinal);
    let mut labels = tm.labels;
    labels.insert(REVISION_HASH_LABEL.into(), revision_name.into());
    labels.insert(POD_NAME_LABEL.into(), name.clone());
    labels.insert(POD_INDEX_LABEL.into(), ordinal.to_string());
    let mut pod = Pod {
        metadata: Some(ObjectMeta {
            name,
            namespace: m.namespace.clone(),
            labels,
            annotations: tm.annotations,
            finalizers: tm.finalizers,
            owner_references: vec![controller_ref::<StatefulSet>(m)],
            ..Default::default()
        }),
        spec: template.spec.clone(),
        ..Default::default()
    };
    set_identity(set, &mut pod);
    set_storage(set, &mut pod, ordinal);
    pod.set_type_meta();
    pod
}

/// Sets the pod's hostname (its name) and subdomain (the governing Service).
pub fn set_identity(set: &StatefulSet, pod: &mut Pod) {
    let name = pod.meta().name.clone();
    let spec = pod.spec.get_or_insert_with(Default::default);
    spec.hostname = name;
    spec.subdomain = spec_of(set).service_name.clone();
}

/// Whether the pod has its identity: name, namespace, hostname and subdomain (`identityMatches`).
pub fn identity_matches(set: &StatefulSet, pod: &Pod) -> bool {
    let m = pod.meta();
    let spec = pod.spec.clone().unwrap_or_default();
    super::ordinal_of(set, pod).is_some()
        && m.namespace == set.meta().namespace
        && spec.hostname == m.name
        && spec.subdomain == spec_of(set).service_name
}

/// Gives the pod a volume per claim template (named as the template) mounting its claim, replacing a
/// volume of the same name from the pod template.
pub fn set_storage(set: &StatefulSet, pod: &mut Pod, ordinal: i32) {
    let templates = &spec_of(set).volume_claim_templates;
    if templates.is_empty() {
        return;
    }
    let spec = pod.spec.get_or_insert_with(Default::default);
    let mut volumes: Vec<Volume> = templates
        .iter()
        .map(|t| Volume {
            name: t.meta().name.clone(),
            persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                claim_name: claim_name(set, &t.meta().name, ordinal),
                read_only: false,
            }),
            ..Default::default()
        })
        .collect();
    let names: Vec<&str> = templates.iter().map(|t| t.meta().name.as_str()).collect();
    volumes.extend(spec.volumes.drain(..).filter(|v| !names.contains(&v.name.as_str())));
    spec.volumes = volumes;
}

/// The revision name a pod carries (its `controller-revision-hash` label).
pub fn revision_of(pod: &Pod) -> &str {
    pod.meta().labels.get(REVISION_HASH_LABEL).map(String::as_str).unwrap_or_default()
}
