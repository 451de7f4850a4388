//! The per-node half of volume binding (Kubernetes' `FindPodVolumes`): bound claims' volumes must be
//! reachable from the node; each unbound WaitForFirstConsumer claim gets the smallest fitting available
//! volume reachable from the node (no two claims of the pod the same one), or else must be
//! provisionable there (its class has a provisioner and its allowedTopologies admit the node); a claim
//! already carrying a selected node fits that node only. And Kubernetes' VolumeZone: a bound volume
//! labelled with zones or regions fits only nodes in one of them.

use std::collections::HashSet;
use std::sync::Arc;

use navarch_api::Resource;
use navarch_api::storage::{self, ANN_SELECTED_NODE, NO_PROVISIONER};
use navarch_api::v1::{Node, PersistentVolume, PersistentVolumeClaim, StorageClass};

use super::{PodVolumes, REASON_BIND_CONFLICT, REASON_NODE_CONFLICT, REASON_PV_NOT_EXIST};

/// What the node means for the pod's claims.
#[derive(Debug, Clone, Default)]
pub struct NodeVolumes {
    /// Why the node does not fit (empty: it does).
    pub reasons: Vec<&'static str>,
    /// Unbound claims and the static volume each is to be bound to.
    pub bindings: Vec<(Arc<PersistentVolumeClaim>, Arc<PersistentVolume>)>,
    /// Unbound claims to be provisioned on the node.
    pub provisions: Vec<Arc<PersistentVolumeClaim>>,
}

impl PodVolumes {
    /// The pod's claims on `node` (ReadWriteOncePod aside: see [`PodVolumes::reasons`]).
    pub fn check_node(&self, node: &Node) -> NodeVolumes {
        let mut out = NodeVolumes::default();
        for (_, pv) in &self.bound {
            match pv {
                None => {
                    out.reasons.push(REASON_PV_NOT_EXIST);
                    return out;
                }
                Some(pv) if !storage::volume_fits_node(pv, node) => {
                    out.reasons.push(REASON_NODE_CONFLICT);
                    return out;
                }
                Some(_) => {}
            }
        }
        if self.delayed.is_empty() {
            return out;
        }
        let node_name = node.meta().name.as_str();
        let mut to_provision = Vec::new();
        let mut to_match = Vec::new();
        for d in &self.delayed {
            match d.claim.meta().annotations.get(ANN_SELECTED_NODE) {
                Some(selected) if selected != node_name => {
                    out.reasons.push(REASON_BIND_CONFLICT);
                    return out;
                }
                Some(_) => to_provision.push(d),
                None => to_match.push(d),
            }
        }
        let mut chosen: HashSet<&str> = HashSet::new();
        for d in to_match {
            let free =
                self.volumes.iter().map(Arc::as_ref).filter(|pv| !chosen.contains(pv.meta().name.as_str()));
            match storage::best_volume_for_claim(free, &d.claim, Some(node)) {
                Some(pv) => {
                    chosen.insert(pv.meta().name.as_str());
                    let pv = self.volumes.iter().find(|v| v.meta().name == pv.meta().name).cloned();
                    out.bindings.extend(pv.map(|pv| (d.claim.clone(), pv)));
                }
                None => to_provision.push(d),
            }
        }
        for d in to_provision {
            if !can_provision(&d.class, node) {
                out.reasons.push(REASON_BIND_CONFLICT);
                out.bindings.clear();
                out.provisions.clear();
                return out;
            }
            out.provisions.push(d.claim.clone());
        }
        out
    }
}

/// Whether the class provisions volumes and its allowedTopologies admit the node.
pub fn can_provision(class: &StorageClass, node: &Node) -> bool {
    if class.provisioner.is_empty() || class.provisioner == NO_PROVISIONER {
        return false;
    }
    topology_admits(class, node)
}

/// Kubernetes' `MatchTopologySelectorTerms`: no terms admit every node; else some term whose every
/// requirement the node's labels meet.
fn topology_admits(class: &StorageClass, node: &Node) -> bool {
    if class.allowed_topologies.is_empty() {
        return true;
    }
    let labels = &node.meta().labels;
    class.allowed_topologies.iter().any(|term| {
        term.match_label_expressions
            .iter()
            .all(|r| labels.get(&r.key).is_some_and(|v| r.values.iter().any(|want| want == v)))
    })
}

/// The zone and region labels VolumeZone compares, each with its GA spelling (tried on the node when
/// the volume carries the beta one).
const TOPOLOGY_LABELS: &[(&str, &str)] = &[
    ("failure-domain.beta.kubernetes.io/zone", "topology.kubernetes.io/zone"),
    ("failure-domain.beta.kubernetes.io/region", "topology.kubernetes.io/region"),
    ("topology.kubernetes.io/zone", "topology.kubernetes.io/zone"),
    ("topology.kubernetes.io/region", "topology.kubernetes.io/region"),
];

/// Kubernetes' VolumeZone: a node without zone or region labels admits every volume; otherwise each
/// zone/region label of the volume (values joined by `__`) must list the node's value.
pub fn volume_zone_fits(pv: &PersistentVolume, node: &Node) -> bool {
    let labels = &node.meta().labels;
    if !TOPOLOGY_LABELS.iter().any(|(k, _)| labels.contains_key(*k)) {
        return true;
    }
    TOPOLOGY_LABELS.iter().all(|(key, ga)| {
        let Some(wanted) = pv.meta().labels.get(*key) else { return true };
        let value = labels.get(*key).or_else(|| labels.get(*ga));
        value.is_some_and(|v| wanted.split("__").any(|w| w.trim() == v))
    })
}

impl PodVolumes {
    /// VolumeZone over the bound claims' volumes.
    pub fn zone_conflict(&self, node: &Node) -> bool {
        self.bound.iter().any(|(_, pv)| pv.as_ref().is_some_and(|pv| !volume_zone_fits(pv, node)))
    }
}
