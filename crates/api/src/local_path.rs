//! The volumes of navarch's node-local provisioner (`navarch.io/local-path`, run by each kubelet): the
//! shape of the node affinity it gives them (`kubernetes.io/hostname In [<node>]`), which node a volume
//! is tied to by that affinity, and whether the provisioner made it. Shared by the kubelet (which makes
//! and removes them) and the api-server's NodeRestriction (which lets a node touch only its own).

use crate::storage::{ANN_PROVISIONED_BY, LOCAL_PATH_PROVISIONER};
use crate::v1::{
    NodeSelector, NodeSelectorRequirement, NodeSelectorTerm, PersistentVolume, VolumeNodeAffinity,
};

/// The node label the affinity names (set by every kubelet to its node's name).
pub const HOSTNAME_LABEL: &str = "kubernetes.io/hostname";

/// The required node affinity of a volume on `node`: one term, `kubernetes.io/hostname In [<node>]`.
pub fn node_affinity(node: &str) -> VolumeNodeAffinity {
    VolumeNodeAffinity {
        required: Some(NodeSelector {
            node_selector_terms: vec![NodeSelectorTerm {
                match_expressions: vec![NodeSelectorRequirement {
                    key: HOSTNAME_LABEL.into(),
                    operator: "In".into(),
                    values: vec![node.into()],
                }],
                match_fields: vec![],
            }],
        }),
    }
}

/// The one node a volume's required affinity names, when it is exactly the shape [`node_affinity`]
/// makes (anything broader, or narrower in other ways, is `None`).
pub fn affinity_node(pv: &PersistentVolume) -> Option<&str> {
    let required = pv.spec.as_ref()?.node_affinity.as_ref()?.required.as_ref()?;
    let [term] = required.node_selector_terms.as_slice() else { return None };
    if !term.match_fields.is_empty() {
        return None;
    }
    let [r] = term.match_expressions.as_slice() else { return None };
    match (r.key.as_str(), r.operator.as_str(), r.values.as_slice()) {
        (HOSTNAME_LABEL, "In", [node]) if !node.is_empty() => Some(node),
        _ => None,
    }
}

/// Whether the local-path provisioner made the volume (`pv.kubernetes.io/provisioned-by`).
pub fn provisioned_by_local_path(pv: &PersistentVolume) -> bool {
    pv.metadata
        .as_ref()
        .and_then(|m| m.annotations.get(ANN_PROVISIONED_BY))
        .is_some_and(|p| p == LOCAL_PATH_PROVISIONER)
}

/// Whether the volume is one of the local-path provisioner's on `node`.
pub fn is_local_path_volume_of(pv: &PersistentVolume, node: &str) -> bool {
    provisioned_by_local_path(pv) && affinity_node(pv) == Some(node)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pv(y: &str) -> PersistentVolume {
        serde_yaml::from_str(y).unwrap()
    }

    #[test]
    fn the_affinity_names_one_node() {
        let mut v = pv(
            "metadata: {name: pvc-1, annotations: {pv.kubernetes.io/provisioned-by: navarch.io/local-path}}\n",
        );
        v.spec.get_or_insert_with(Default::default).node_affinity = Some(node_affinity("node-1"));
        assert_eq!(affinity_node(&v), Some("node-1"));
        assert!(is_local_path_volume_of(&v, "node-1"));
        assert!(!is_local_path_volume_of(&v, "node-2"));
        let two = pv("spec: {nodeAffinity: {required: {nodeSelectorTerms: [{matchExpressions: [{key: \
             kubernetes.io/hostname, operator: In, values: [node-1, node-2]}]}]}}}\n");
        assert_eq!(affinity_node(&two), None);
        let not_in = pv("spec: {nodeAffinity: {required: {nodeSelectorTerms: [{matchExpressions: [{key: \
             kubernetes.io/hostname, operator: NotIn, values: [node-1]}]}]}}}\n");
        assert_eq!(affinity_node(&not_in), None);
        let two_terms = pv("spec: {nodeAffinity: {required: {nodeSelectorTerms: [{matchExpressions: [{key: \
             kubernetes.io/hostname, operator: In, values: [node-1]}]}, {matchExpressions: [{key: zone, \
             operator: Exists}]}]}}}\n");
        assert_eq!(affinity_node(&two_terms), None);
        let other = pv("metadata: {name: x, annotations: {pv.kubernetes.io/provisioned-by: someone}}\n");
        assert!(!provisioned_by_local_path(&other));
    }
}
