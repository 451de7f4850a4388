//! Volume binding's PreBind: the writes that hand the chosen node's volume decision to the PV
//! controller and the provisioner before the pod is bound — a static volume gets the claim as its
//! `claimRef` (with `pv.kubernetes.io/bound-by-controller: "yes"`, as Kubernetes'
//! `GetBindVolumeToClaim`), a claim to provision gets `volume.kubernetes.io/selected-node`. Every write
//! is an update at the resourceVersion the decision was made on, so a volume taken meanwhile by
//! someone else fails the write (a conflict) and the pod goes back to the queue instead of being bound.

use navarch_api::Resource;
use navarch_api::storage::{ANN_SELECTED_NODE, bind_volume_to_claim};
use navarch_api::v1::{PersistentVolume, PersistentVolumeClaim};
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

/// The claim with `volume.kubernetes.io/selected-node: <node>`, or `None` if it already has it.
pub fn select_node(pvc: &PersistentVolumeClaim, node: &str) -> Option<PersistentVolumeClaim> {
    if pvc.meta().annotations.get(ANN_SELECTED_NODE).is_some_and(|n| n == node) {
        return None;
    }
    let mut out = pvc.clone();
    out.meta_mut().annotations.insert(ANN_SELECTED_NODE.into(), node.into());
    Some(out)
}
