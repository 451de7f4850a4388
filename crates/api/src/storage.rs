//! Persistent storage facts shared by the api-server (admission), the PV controller, the scheduler's volume
//! binding and the kubelet's local-path provisioner: the well-known annotations and finalizers, a claim's and
//! a volume's storage class, access modes, and which volume fits a claim (Kubernetes'
//! `persistentvolume/util.FindMatchingVolume`: the smallest Available volume of the claim's class, volume
//! mode and access modes, matching its selector, at least as large as the request, and — when a node is
//! given — reachable from that node).

use std::collections::BTreeMap;

use crate::node_affinity;
use crate::quantity::Amount;
use crate::resource::Resource;
use crate::selector::Selector;
use crate::v1::{Node, ObjectReference, PersistentVolume, PersistentVolumeClaim, StorageClass};

/// Set by the PV controller on a claim once its binding is complete.
pub const ANN_BIND_COMPLETED: &str = "pv.kubernetes.io/bind-completed";
/// Set on a claim or volume the PV controller bound (rather than the user pre-binding it).
pub const ANN_BOUND_BY_CONTROLLER: &str = "pv.kubernetes.io/bound-by-controller";
/// The provisioner that made a volume (on the PersistentVolume).
pub const ANN_PROVISIONED_BY: &str = "pv.kubernetes.io/provisioned-by";
/// The provisioner a claim waits for (on the PersistentVolumeClaim), and its legacy spelling.
pub const ANN_STORAGE_PROVISIONER: &str = "volume.kubernetes.io/storage-provisioner";
pub const ANN_BETA_STORAGE_PROVISIONER: &str = "volume.beta.kubernetes.io/storage-provisioner";
/// The node the scheduler picked for a pod using a WaitForFirstConsumer claim (on the claim).
pub const ANN_SELECTED_NODE: &str = "volume.kubernetes.io/selected-node";
/// The legacy way of naming a claim's or volume's class.
pub const ANN_BETA_STORAGE_CLASS: &str = "volume.beta.kubernetes.io/storage-class";
/// Marks the StorageClass given to claims that name none.
pub const ANN_DEFAULT_CLASS: &str = "storageclass.kubernetes.io/is-default-class";
/// Its beta spelling, still honoured.
pub const ANN_BETA_DEFAULT_CLASS: &str = "storageclass.beta.kubernetes.io/is-default-class";
/// Keeps a claim while a pod uses it.
pub const FINALIZER_PVC_PROTECTION: &str = "kubernetes.io/pvc-protection";
/// Keeps a volume while it is bound.
pub const FINALIZER_PV_PROTECTION: &str = "kubernetes.io/pv-protection";

/// navarch's node-local provisioner (the kubelet makes a directory on the selected node).
pub const LOCAL_PATH_PROVISIONER: &str = "navarch.io/local-path";
/// The default StorageClass's name.
pub const LOCAL_PATH_CLASS: &str = "local-path";
/// What classes of statically made volumes name as provisioner.
pub const NO_PROVISIONER: &str = "kubernetes.io/no-provisioner";

/// Binding modes of a StorageClass.
pub const BINDING_IMMEDIATE: &str = "Immediate";
pub const BINDING_WAIT_FOR_FIRST_CONSUMER: &str = "WaitForFirstConsumer";

/// The access modes Kubernetes knows, sorted.
pub const ACCESS_MODES: &[&str] = &["ReadOnlyMany", "ReadWriteMany", "ReadWriteOnce", "ReadWriteOncePod"];

/// The class a claim asks for: `spec.storageClassName`, else the beta annotation, else "" (no class).
pub fn claim_class(pvc: &PersistentVolumeClaim) -> &str {
    if let Some(c) = pvc.spec.as_ref().and_then(|s| s.storage_class_name.as_deref()) {
        return c;
    }
    pvc.metadata
        .as_ref()
        .and_then(|m| m.annotations.get(ANN_BETA_STORAGE_CLASS))
        .map(String::as_str)
        .unwrap_or("")
}

/// Whether the claim names a class itself — `storageClassName` set (even to "", no class) or the beta
/// annotation — so that it is not given the default class (Kubernetes' `PersistentVolumeClaimHasClass`).
pub fn claim_names_class(pvc: &PersistentVolumeClaim) -> bool {
    pvc.spec.as_ref().is_some_and(|s| s.storage_class_name.is_some())
        || pvc.metadata.as_ref().is_some_and(|m| m.annotations.contains_key(ANN_BETA_STORAGE_CLASS))
}

/// The class a volume belongs to: the beta annotation if present (it wins, as in Kubernetes), else
/// `spec.storageClassName`.
pub fn volume_class(pv: &PersistentVolume) -> &str {
    if let Some(c) = pv.metadata.as_ref().and_then(|m| m.annotations.get(ANN_BETA_STORAGE_CLASS)) {
        return c;
    }
    pv.spec.as_ref().map(|s| s.storage_class_name.as_str()).unwrap_or("")
}

/// Whether the class carries `is-default-class: "true"` (or the beta annotation, as Kubernetes'
/// `IsDefaultAnnotation`).
pub fn is_default_class(sc: &StorageClass) -> bool {
    let Some(m) = sc.metadata.as_ref() else { return false };
    [ANN_DEFAULT_CLASS, ANN_BETA_DEFAULT_CLASS]
        .iter()
        .any(|k| m.annotations.get(*k).is_some_and(|v| v == "true"))
}

/// The class given to claims that name none (Kubernetes' `GetDefaultClass`): of the default classes, the
/// newest (by creationTimestamp; the first name on a tie); `None` when no class is the default.
pub fn default_class<'a>(classes: impl IntoIterator<Item = &'a StorageClass>) -> Option<&'a StorageClass> {
    let key = |sc: &'a StorageClass| {
        let m = sc.metadata.as_ref();
        let created = m.and_then(|m| crate::rfc3339::parse(&m.creation_timestamp).ok());
        (created, std::cmp::Reverse(m.map(|m| m.name.as_str()).unwrap_or("")))
    };
    classes.into_iter().filter(|sc| is_default_class(sc)).max_by_key(|sc| key(sc))
}

/// The class's binding mode, `Immediate` when unset.
pub fn binding_mode(sc: &StorageClass) -> &str {
    sc.volume_binding_mode.as_deref().filter(|m| !m.is_empty()).unwrap_or(BINDING_IMMEDIATE)
}

/// The class's reclaim policy, `Delete` when unset.
pub fn class_reclaim_policy(sc: &StorageClass) -> &str {
    sc.reclaim_policy.as_deref().filter(|m| !m.is_empty()).unwrap_or("Delete")
}

/// The storage a claim requests (`spec.resources.requests.storage`); `None` if absent or malformed.
pub fn claim_request(pvc: &PersistentVolumeClaim) -> Option<Amount> {
    let q = pvc.spec.as_ref()?.resources.as_ref()?.requests.get("storage")?;
    q.amount().ok()
}

/// A volume's capacity (`spec.capacity.storage`); `None` if absent or malformed.
pub fn volume_capacity(pv: &PersistentVolume) -> Option<Amount> {
    pv.spec.as_ref()?.capacity.get("storage")?.amount().ok()
}

fn claim_volume_mode(pvc: &PersistentVolumeClaim) -> &str {
    pvc.spec.as_ref().and_then(|s| s.volume_mode.as_deref()).filter(|m| !m.is_empty()).unwrap_or("Filesystem")
}

fn volume_mode(pv: &PersistentVolume) -> &str {
    pv.spec.as_ref().and_then(|s| s.volume_mode.as_deref()).filter(|m| !m.is_empty()).unwrap_or("Filesystem")
}

/// Whether the volume offers every access mode the claim asks for.
pub fn access_modes_fit(pv: &PersistentVolume, pvc: &PersistentVolumeClaim) -> bool {
    let offered = pv.spec.as_ref().map(|s| s.access_modes.as_slice()).unwrap_or(&[]);
    let wanted = pvc.spec.as_ref().map(|s| s.access_modes.as_slice()).unwrap_or(&[]);
    wanted.iter().all(|m| offered.contains(m))
}

/// Whether the volume's required node affinity admits the node (a volume without one admits every node).
pub fn volume_fits_node(pv: &PersistentVolume, node: &Node) -> bool {
    let Some(required) =
        pv.spec.as_ref().and_then(|s| s.node_affinity.as_ref()).and_then(|a| a.required.as_ref())
    else {
        return true;
    };
    let meta = node.metadata.as_ref();
    let empty = BTreeMap::new();
    let labels = meta.map(|m| &m.labels).unwrap_or(&empty);
    let name = meta.map(|m| m.name.as_str()).unwrap_or("");
    required.node_selector_terms.iter().any(|t| node_affinity::term_matches(t, labels, name))
}

/// Whether the volume's `claimRef` names this claim (by namespace and name, and uid when the reference has
/// one): the volume is pre-bound or bound to it.
pub fn volume_bound_to_claim(pv: &PersistentVolume, pvc: &PersistentVolumeClaim) -> bool {
    let Some(r) = pv.spec.as_ref().and_then(|s| s.claim_ref.as_ref()) else { return false };
    let Some(m) = pvc.metadata.as_ref() else { return false };
    r.name == m.name && r.namespace == m.namespace && (r.uid.is_empty() || r.uid == m.uid)
}

/// Why a volume does not fit a claim (for events and unschedulable reasons), or `None` when it fits.
/// Does not look at the volume's phase or claimRef: see [`best_volume_for_claim`].
pub fn volume_mismatch(
    pv: &PersistentVolume,
    pvc: &PersistentVolumeClaim,
    node: Option<&Node>,
) -> Option<&'static str> {
    if volume_mode(pv) != claim_volume_mode(pvc) {
        return Some("volume mode");
    }
    if volume_class(pv) != claim_class(pvc) {
        return Some("storage class");
    }
    if !access_modes_fit(pv, pvc) {
        return Some("access modes");
    }
    if let Some(node) = node
        && !volume_fits_node(pv, node)
    {
        return Some("node affinity");
    }
    match (volume_capacity(pv), claim_request(pvc)) {
        (Some(have), Some(want)) if have >= want => None,
        (_, None) => None,
        _ => Some("capacity"),
    }
}

/// The volume Kubernetes would bind the claim to: a volume already pre-bound to the claim if it fits,
/// else the smallest fitting Available (no claimRef, not being deleted) volume whose labels match the
/// claim's selector. `node`: the scheduler's candidate node (volumes must be reachable from it); the PV
/// controller passes `None`.
pub fn best_volume_for_claim<'a>(
    volumes: impl IntoIterator<Item = &'a PersistentVolume>,
    pvc: &PersistentVolumeClaim,
    node: Option<&Node>,
) -> Option<&'a PersistentVolume> {
    let selector = pvc.spec.as_ref().and_then(|s| s.selector.as_ref());
    let selector = Selector::from_label_selector(selector).ok();
    let mut best: Option<(&PersistentVolume, Amount)> = None;
    for pv in volumes {
        let meta = pv.metadata.as_ref();
        if meta.is_some_and(|m| !m.deletion_timestamp.is_empty()) {
            continue;
        }
        if volume_mismatch(pv, pvc, node).is_some() {
            continue;
        }
        if volume_bound_to_claim(pv, pvc) {
            return Some(pv);
        }
        if pv.spec.as_ref().is_some_and(|s| s.claim_ref.is_some()) {
            continue;
        }
        let phase = pv.status.as_ref().map(|s| s.phase.as_str()).unwrap_or("");
        if node.is_some() && phase != "Available" {
            continue;
        }
        let labels = meta.map(|m| &m.labels);
        let empty = BTreeMap::new();
        match &selector {
            Some(sel) if sel.matches(labels.unwrap_or(&empty)) => {}
            _ => continue,
        }
        let size = volume_capacity(pv).unwrap_or_default();
        if best.is_none_or(|(_, b)| size < b) {
            best = Some((pv, size));
        }
    }
    best.map(|(pv, _)| pv)
}

/// The `claimRef` Kubernetes writes into a volume (`reference.GetReference` of the claim).
pub fn claim_reference(pvc: &PersistentVolumeClaim) -> ObjectReference {
    let m = pvc.meta();
    ObjectReference {
        kind: PersistentVolumeClaim::KIND.into(),
        api_version: PersistentVolumeClaim::API_VERSION.into(),
        namespace: m.namespace.clone(),
        name: m.name.clone(),
        uid: m.uid.clone(),
        resource_version: m.resource_version.clone(),
        ..Default::default()
    }
}

/// The volume bound to the claim (Kubernetes' `GetBindVolumeToClaim`: its `claimRef`, and
/// `pv.kubernetes.io/bound-by-controller` unless the user pre-bound it), or `None` if it already is.
/// Written by the PV controller and by the scheduler's volume binding.
pub fn bind_volume_to_claim(pv: &PersistentVolume, pvc: &PersistentVolumeClaim) -> Option<PersistentVolume> {
    let by_controller = !volume_bound_to_claim(pv, pvc);
    let m = pvc.meta();
    let mut out = pv.clone();
    let mut dirty = false;
    let same = pv
        .spec
        .as_ref()
        .and_then(|s| s.claim_ref.as_ref())
        .is_some_and(|r| r.name == m.name && r.namespace == m.namespace && r.uid == m.uid);
    if !same {
        out.spec.get_or_insert_with(Default::default).claim_ref = Some(claim_reference(pvc));
        dirty = true;
    }
    if by_controller && !out.meta().annotations.contains_key(ANN_BOUND_BY_CONTROLLER) {
        out.meta_mut().annotations.insert(ANN_BOUND_BY_CONTROLLER.into(), "yes".into());
        dirty = true;
    }
    dirty.then(|| {
        out.set_type_meta();
        out
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from_yaml<T: serde::de::DeserializeOwned>(y: &str) -> Result<T, serde_yaml::Error> {
        serde_yaml::from_str(y)
    }

    fn pv(yaml: &str) -> PersistentVolume {
        from_yaml(yaml).unwrap()
    }
    fn pvc(yaml: &str) -> PersistentVolumeClaim {
        from_yaml(yaml).unwrap()
    }
    fn volume(name: &str, size: &str, class: &str, extra: &str) -> PersistentVolume {
        pv(&format!(
            "metadata: {{name: {name}, labels: {{tier: fast}}}}\nspec:\n  capacity: {{storage: {size}}}\n  \
             accessModes: [ReadWriteOnce]\n  storageClassName: '{class}'\n  hostPath: {{path: /x}}\n{extra}\
             status: {{phase: Available}}\n"
        ))
    }
    fn names(v: Option<&PersistentVolume>) -> &str {
        v.map(|p| p.metadata.as_ref().unwrap().name.as_str()).unwrap_or("-")
    }

    #[test]
    fn smallest_fitting_volume_of_the_class_wins() {
        let vols = [
            volume("big", "10Gi", "manual", ""),
            volume("small", "1Gi", "manual", ""),
            volume("mid", "2Gi", "manual", ""),
            volume("other-class", "2Gi", "", ""),
        ];
        let claim =
            pvc("metadata: {name: c, namespace: d, uid: u1}\nspec: {storageClassName: manual, accessModes: \
             [ReadWriteOnce], resources: {requests: {storage: 1500Mi}}}\n");
        assert_eq!(names(best_volume_for_claim(&vols, &claim, None)), "mid");
        let rwx = pvc(
            "metadata: {name: c, namespace: d}\nspec: {storageClassName: manual, accessModes: [ReadWriteMany], \
             resources: {requests: {storage: 1Gi}}}\n",
        );
        assert_eq!(names(best_volume_for_claim(&vols, &rwx, None)), "-");
        let too_big = pvc(
            "metadata: {name: c, namespace: d}\nspec: {storageClassName: manual, accessModes: [ReadWriteOnce], \
             resources: {requests: {storage: 11Gi}}}\n",
        );
        assert_eq!(names(best_volume_for_claim(&vols, &too_big, None)), "-");
        let no_class = pvc(
            "metadata: {name: c, namespace: d}\nspec: {storageClassName: '', accessModes: [ReadWriteOnce], \
             resources: {requests: {storage: 1Gi}}}\n",
        );
        assert_eq!(names(best_volume_for_claim(&vols, &no_class, None)), "other-class");
    }

    #[test]
    fn pre_bound_volumes_selectors_and_claimed_volumes() {
        let claim =
            pvc("metadata: {name: c, namespace: d, uid: u1}\nspec: {storageClassName: manual, accessModes: \
             [ReadWriteOnce], resources: {requests: {storage: 1Gi}}}\n");
        let taken = volume("taken", "1Gi", "manual", "  claimRef: {name: other, namespace: d}\n");
        let mine = volume("mine", "5Gi", "manual", "  claimRef: {name: c, namespace: d}\n");
        let free = volume("free", "1Gi", "manual", "");
        assert_eq!(names(best_volume_for_claim([&taken, &free, &mine], &claim, None)), "mine");
        assert_eq!(names(best_volume_for_claim([&taken], &claim, None)), "-");
        let selective = pvc(
            "metadata: {name: c, namespace: d}\nspec: {storageClassName: manual, accessModes: [ReadWriteOnce], \
             selector: {matchLabels: {tier: slow}}, resources: {requests: {storage: 1Gi}}}\n",
        );
        assert_eq!(names(best_volume_for_claim([&free], &selective, None)), "-");
    }

    #[test]
    fn node_affinity_limits_volumes_to_their_nodes() {
        let local = volume(
            "local",
            "1Gi",
            "local",
            "  nodeAffinity:\n    required:\n      nodeSelectorTerms:\n      - matchExpressions:\n        \
             - {key: kubernetes.io/hostname, operator: In, values: [node-2]}\n",
        );
        let node = |n: &str| -> Node {
            from_yaml(&format!("metadata: {{name: {n}, labels: {{kubernetes.io/hostname: {n}}}}}\n")).unwrap()
        };
        let claim = pvc(
            "metadata: {name: c, namespace: d}\nspec: {storageClassName: local, accessModes: [ReadWriteOnce], \
             resources: {requests: {storage: 1Gi}}}\n",
        );
        assert_eq!(names(best_volume_for_claim([&local], &claim, Some(&node("node-1")))), "-");
        assert_eq!(names(best_volume_for_claim([&local], &claim, Some(&node("node-2")))), "local");
        assert_eq!(volume_mismatch(&local, &claim, Some(&node("node-1"))), Some("node affinity"));
        assert!(volume_fits_node(&volume("any", "1Gi", "", ""), &node("node-1")));
    }

    #[test]
    fn the_newest_default_class_wins() {
        let class = |name: &str, created: &str, default: &str| -> StorageClass {
            from_yaml(&format!(
                "metadata: {{name: {name}, creationTimestamp: '{created}', annotations: \
                 {{storageclass.kubernetes.io/is-default-class: '{default}'}}}}\nprovisioner: p\n"
            ))
            .unwrap()
        };
        let name = |sc: Option<&StorageClass>| sc.map(|s| s.metadata.as_ref().unwrap().name.clone());
        let old = class("old", "2024-01-01T00:00:00Z", "true");
        let new = class("new", "2024-02-01T00:00:00Z", "true");
        let newer_not_default = class("x", "2024-03-01T00:00:00Z", "false");
        let twin = class("a-twin", "2024-02-01T00:00:00Z", "true");
        assert_eq!(name(default_class([&old, &new, &newer_not_default])), Some("new".into()));
        assert_eq!(name(default_class([&new, &twin])), Some("a-twin".into()));
        assert_eq!(name(default_class([&newer_not_default])), None);
    }

    #[test]
    fn classes_from_spec_or_beta_annotation() {
        let c = pvc("metadata: {name: c, annotations: {volume.beta.kubernetes.io/storage-class: old}}\n");
        assert_eq!(claim_class(&c), "old");
        let c = pvc("metadata: {name: c}\nspec: {storageClassName: new}\n");
        assert_eq!(claim_class(&c), "new");
        let sc: StorageClass = from_yaml(
            "metadata: {name: s, annotations: {storageclass.kubernetes.io/is-default-class: 'true'}}\nprovisioner: p\n",
        )
        .unwrap();
        assert!(is_default_class(&sc));
        let beta: StorageClass = from_yaml(
            "metadata: {name: b, annotations: {storageclass.beta.kubernetes.io/is-default-class: 'true'}}\n",
        )
        .unwrap();
        assert!(is_default_class(&beta));
        assert_eq!(binding_mode(&sc), "Immediate");
        assert_eq!(class_reclaim_policy(&sc), "Delete");
    }
}
