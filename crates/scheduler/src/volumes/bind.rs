//! Volume binding's PreBind: the writes that hand the chosen node's volume decision to the PV
//! controller and the provisioner before the pod is bound — a static volume gets the claim as its
//! `claimRef` (with `pv.kubernetes.io/bound-by-controller: "yes"`, as Kubernetes'
//! `GetBindVolumeToClaim`), a claim to provision gets `volume.kubernetes.io/selected-node`. Every write
//! is an update at the resourceVersion the decision was made on, so a volume taken meanwhile by
//! someone else fails the write (a conflict) and the pod goes back to the queue instead of being bound.

use navarch_api::Resource;
use navarch_api::storage::{ANN_BOUND_BY_CONTROLLER, ANN_SELECTED_NODE, volume_bound_to_claim};
use navarch_api::v1::{ObjectReference, PersistentVolume, PersistentVolumeClaim};
use navarch_client::{Client, ObjectRef};

use super::NodeVolumes;

/// The updated objects to write before binding the pod.
#[derive(Debug, Clone, Default)]
pub struct VolumeWrites {
    pub volumes: Vec<PersistentVolume>,
    pub claims: Vec<PersistentVolumeClaim>,
}

impl VolumeWrites {
    /// What the decision on `node` requires (no write for what already is so).
    pub fn plan(decision: &NodeVolumes, node: &str) -> VolumeWrites {
        VolumeWrites {
            volumes: decision.bindings.iter().filter_map(|(pvc, pv)| bind_volume_to_claim(pv, pvc)).collect(),
            claims: decision.provisions.iter().filter_map(|pvc| select_node(pvc, node)).collect(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.volumes.is_empty() && self.claims.is_empty()
    }

    /// Writes the volumes, then the claims; stops at the first failure.
    pub async fn write(&self, client: &Client) -> Result<(), navarch_client::Error> {
        let volumes = client.api::<PersistentVolume>("");
        for pv in &self.volumes {
            volumes.update(pv).await?;
            if let Some(r) = pv.spec.as_ref().and_then(|s| s.claim_ref.as_ref()) {
                tracing::info!(pv = %pv.meta().name, claim = %format!("{}/{}", r.namespace, r.name), "volume bound to claim");
            }
        }
        for pvc in &self.claims {
            client.api::<PersistentVolumeClaim>(&pvc.meta().namespace).update(pvc).await?;
            let node = pvc.meta().annotations.get(ANN_SELECTED_NODE).map(String::as_str).unwrap_or("");
            tracing::info!(claim = %ObjectRef::from_obj(pvc), node, "claim to be provisioned on node");
        }
        Ok(())
    }
}

/// A reference to the claim as a volume's `claimRef` holds it.
pub fn claim_reference(pvc: &PersistentVolumeClaim) -> ObjectReference {
    let m = pvc.meta();
    ObjectReference {
        kind: "PersistentVolumeClaim".into(),
        api_version: "v1".into(),
        namespace: m.namespace.clone(),
        name: m.name.clone(),
        uid: m.uid.clone(),
        resource_version: m.resource_version.clone(),
        ..Default::default()
    }
}

/// The volume bound to the claim (claimRef, and bound-by-controller unless the volume was pre-bound to
/// it), or `None` if it already is.
pub fn bind_volume_to_claim(pv: &PersistentVolume, pvc: &PersistentVolumeClaim) -> Option<PersistentVolume> {
    let pre_bound = volume_bound_to_claim(pv, pvc);
    let mut out = pv.clone();
    let mut dirty = false;
    let m = pvc.meta();
    let same = pv
        .spec
        .as_ref()
        .and_then(|s| s.claim_ref.as_ref())
        .is_some_and(|r| r.name == m.name && r.namespace == m.namespace && r.uid == m.uid);
    if !same {
        out.spec.get_or_insert_with(Default::default).claim_ref = Some(claim_reference(pvc));
        dirty = true;
    }
    if !pre_bound && !out.meta().annotations.contains_key(ANN_BOUND_BY_CONTROLLER) {
        out.meta_mut().annotations.insert(ANN_BOUND_BY_CONTROLLER.into(), "yes".into());
        dirty = true;
    }
    dirty.then_some(out)
}

/// The claim with `volume.kubernetes.io/selected-node: <node>`, or `None` if it already has it.
pub fn select_node(pvc: &PersistentVolumeClaim, node: &str) -> Option<PersistentVolumeClaim> {
    if pvc.meta().annotations.get(ANN_SELECTED_NODE).is_some_and(|n| n == node) {
        return None;
    }
    let mut out = pvc.clone();
    out.meta_mut().annotations.insert(ANN_SELECTED_NODE.into(), node.into());
    Some(out)
}
