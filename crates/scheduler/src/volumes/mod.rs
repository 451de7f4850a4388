//! Volume scheduling for pods using PersistentVolumeClaims (`persistentVolumeClaim` volumes and generic
//! `ephemeral` volumes, whose claim is `<pod>-<volume>`): Kubernetes' VolumeBinding, VolumeZone and
//! VolumeRestrictions (ReadWriteOncePod) plugins.
//!
//! This module owns the scheduler's view of claims, volumes and classes: the reflector stores fed by the
//! watches, overlaid with what the scheduler *assumed* (a volume it gave a claimRef, a claim it gave a
//! selected node) until the watch shows a newer version — Kubernetes' assume cache, so the next pod of
//! the same cycle never takes a volume already promised. [`VolumeCache::prefilter`] is the pod-wide
//! check (claims exist, are not being deleted, no unbound Immediate claim) and snapshots what the
//! per-node check needs ([`PodVolumes`], checked per node in [`node`]); [`bind`] turns the chosen node's
//! decision into the API writes done before the pod is bound.

pub mod bind;
mod node;

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::sync::Arc;

use navarch_api::Resource;
use navarch_api::storage::{self, ANN_BIND_COMPLETED, ANN_SELECTED_NODE, BINDING_WAIT_FOR_FIRST_CONSUMER};
use navarch_api::v1::{PersistentVolume, PersistentVolumeClaim, Pod, StorageClass};
use navarch_client::{ObjectRef, Store};

pub use node::NodeVolumes;

/// The claims a pod uses are not all bound, and one of them is of an Immediate class (or of none):
/// the PV controller binds those, not the scheduler.
pub const REASON_UNBOUND_IMMEDIATE: &str = "pod has unbound immediate PersistentVolumeClaims";
/// An unbound WaitForFirstConsumer claim has no volume reachable from the node and cannot be provisioned
/// there (Kubernetes' ErrReasonBindConflict).
pub const REASON_BIND_CONFLICT: &str = "node(s) didn't find available persistent volumes to bind";
/// A bound claim's volume is not reachable from the node (ErrReasonNodeConflict).
pub const REASON_NODE_CONFLICT: &str = "node(s) had volume node affinity conflict";
/// A bound claim's volume does not exist (ErrReasonPVNotExist).
pub const REASON_PV_NOT_EXIST: &str =
    "node(s) unavailable due to one or more pvc(s) bound to non-existent pv(s)";
/// A bound claim's volume is labelled with zones or regions the node is not in (VolumeZone).
pub const REASON_ZONE_CONFLICT: &str = "node(s) had no available volume zone";
/// A ReadWriteOncePod claim is already used by a scheduled pod (VolumeRestrictions).
pub const REASON_RWOP_CONFLICT: &str =
    "node has pod using PersistentVolumeClaim with the same name and ReadWriteOncePod access mode";

/// The access mode allowing one pod only.
const READ_WRITE_ONCE_POD: &str = "ReadWriteOncePod";

/// A claim one of a pod's volumes uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimUse {
    pub name: String,
    /// A generic ephemeral volume's claim (made by the ephemeral volume controller, owned by the pod).
    pub ephemeral: bool,
}

/// Whether any of the pod's volumes uses a claim (no lookups: what pods without claims pay).
pub fn has_claims(pod: &Pod) -> bool {
    pod.spec.as_ref().is_some_and(|s| {
        s.volumes.iter().any(|v| v.persistent_volume_claim.is_some() || v.ephemeral.is_some())
    })
}

/// The claims of the pod's volumes, in volume order.
pub fn pod_claims(pod: &Pod) -> Vec<ClaimUse> {
    let Some(spec) = pod.spec.as_ref() else { return Vec::new() };
    let pod_name = pod.metadata.as_ref().map(|m| m.name.as_str()).unwrap_or("");
    spec.volumes
        .iter()
        .filter_map(|v| {
            if let Some(c) = &v.persistent_volume_claim {
                Some(ClaimUse { name: c.claim_name.clone(), ephemeral: false })
            } else {
                v.ephemeral
                    .as_ref()
                    .map(|_| ClaimUse { name: format!("{pod_name}-{}", v.name), ephemeral: true })
            }
        })
        .collect()
}

/// Whether the pod uses the claim `namespace/name` through a `persistentVolumeClaim` volume (what
/// ReadWriteOncePod counts, as Kubernetes does).
pub fn pod_uses_claim(pod: &Pod, namespace: &str, name: &str) -> bool {
    pod.metadata.as_ref().is_some_and(|m| m.namespace == namespace)
        && pod.spec.as_ref().is_some_and(|s| {
            s.volumes.iter().any(|v| v.persistent_volume_claim.as_ref().is_some_and(|c| c.claim_name == name))
        })
}

/// A claim is fully bound once it names its volume and the PV controller marked the binding complete.
pub fn claim_fully_bound(pvc: &PersistentVolumeClaim) -> bool {
    pvc.spec.as_ref().is_some_and(|s| !s.volume_name.is_empty())
        && pvc.metadata.as_ref().is_some_and(|m| m.annotations.contains_key(ANN_BIND_COMPLETED))
}

fn resource_version<K: Resource>(o: &K) -> &str {
    &o.meta().resource_version
}

/// An unbound claim of a WaitForFirstConsumer class.
#[derive(Debug, Clone)]
pub struct Delayed {
    pub claim: Arc<PersistentVolumeClaim>,
    pub class: Arc<StorageClass>,
}

/// What the per-node check of one pod needs, taken once per scheduling attempt.
#[derive(Debug, Clone, Default)]
pub struct PodVolumes {
    /// Fully bound claims and their volumes (`None`: the volume does not exist).
    pub bound: Vec<(Arc<PersistentVolumeClaim>, Option<Arc<PersistentVolume>>)>,
    /// Unbound WaitForFirstConsumer claims, smallest request first.
    pub delayed: Vec<Delayed>,
    /// Every volume (with assumptions), when some delayed claim still needs one.
    pub volumes: Vec<Arc<PersistentVolume>>,
    /// A ReadWriteOncePod claim of the pod is used by a scheduled pod.
    pub rwop_conflict: bool,
}

impl PodVolumes {
    /// Every reason the node cannot take the pod's volumes (empty: they fit).
    pub fn reasons(&self, node: &navarch_api::v1::Node) -> Vec<&'static str> {
        let mut r = self.check_node(node).reasons;
        if self.zone_conflict(node) {
            r.push(REASON_ZONE_CONFLICT);
        }
        if self.rwop_conflict {
            r.push(REASON_RWOP_CONFLICT);
        }
        r
    }
}

/// The scheduler's view of claims, volumes and classes: the watched stores plus its assumptions.
#[derive(Debug, Clone)]
pub struct VolumeCache {
    claims: Store<PersistentVolumeClaim>,
    volumes: Store<PersistentVolume>,
    classes: Store<StorageClass>,
    /// Volumes given a claimRef, by name, over the stored version they were made from (same
    /// resourceVersion); dropped once the store holds another version.
    assumed_volumes: HashMap<String, Arc<PersistentVolume>>,
    /// Claims given a selected node, likewise.
    assumed_claims: HashMap<ObjectRef, Arc<PersistentVolumeClaim>>,
}

impl VolumeCache {
    pub fn new(
        claims: Store<PersistentVolumeClaim>,
        volumes: Store<PersistentVolume>,
        classes: Store<StorageClass>,
    ) -> VolumeCache {
        VolumeCache {
            claims,
            volumes,
            classes,
            assumed_volumes: HashMap::new(),
            assumed_claims: HashMap::new(),
        }
    }

    /// True once all three stores hold their first list.
    pub fn is_ready(&self) -> bool {
        self.claims.is_ready() && self.volumes.is_ready() && self.classes.is_ready()
    }

    /// The claim `namespace/name`, as assumed if the store still holds the version the assumption was
    /// made from.
    pub fn claim(&self, namespace: &str, name: &str) -> Option<Arc<PersistentVolumeClaim>> {
        let key = ObjectRef::new(namespace, name);
        let stored = self.claims.get(&key)?;
        Some(overlay(stored, self.assumed_claims.get(&key)))
    }

    pub fn volume(&self, name: &str) -> Option<Arc<PersistentVolume>> {
        let stored = self.volumes.get(&ObjectRef::new("", name))?;
        Some(overlay(stored, self.assumed_volumes.get(name)))
    }

    /// Every volume, with assumptions.
    pub fn all_volumes(&self) -> Vec<Arc<PersistentVolume>> {
        let mut all: Vec<Arc<PersistentVolume>> = self
            .volumes
            .state()
            .into_iter()
            .map(|pv| {
                let assumed = self.assumed_volumes.get(&pv.meta().name);
                overlay(pv, assumed)
            })
            .collect();
        // A stable order: equal-sized matches are then chosen the same way on every node.
        all.sort_by(|a, b| a.meta().name.cmp(&b.meta().name));
        all
    }

    pub fn class(&self, name: &str) -> Option<Arc<StorageClass>> {
        self.classes.get(&ObjectRef::new("", name))
    }

    /// Counts the volume as bound to what its (updated) claimRef says until the watch shows a newer
    /// version.
    pub fn assume_volume(&mut self, pv: PersistentVolume) {
        self.assumed_volumes.insert(pv.meta().name.clone(), Arc::new(pv));
    }

    pub fn assume_claim(&mut self, pvc: PersistentVolumeClaim) {
        self.assumed_claims.insert(ObjectRef::from_obj(&pvc), Arc::new(pvc));
    }

    /// Drops an assumption (its write failed).
    pub fn forget_volume(&mut self, name: &str) {
        self.assumed_volumes.remove(name);
    }

    pub fn forget_claim(&mut self, key: &ObjectRef) {
        self.assumed_claims.remove(key);
    }

    /// Drops the assumptions the stores have moved past (or whose objects are gone).
    pub fn prune(&mut self) {
        let volumes = &self.volumes;
        self.assumed_volumes.retain(|name, a| {
            volumes
                .get(&ObjectRef::new("", name))
                .is_some_and(|s| resource_version(s.as_ref()) == resource_version(a.as_ref()))
        });
        let claims = &self.claims;
        self.assumed_claims.retain(|key, a| {
            claims.get(key).is_some_and(|s| resource_version(s.as_ref()) == resource_version(a.as_ref()))
        });
    }

    /// Kubernetes' PreFilter of VolumeRestrictions and VolumeBinding: `Err` is the reason no node can
    /// take the pod (UnschedulableAndUnresolvable). `claim_in_use(name)`: whether a scheduled pod uses
    /// the claim `name` of the pod's namespace (ReadWriteOncePod).
    pub fn prefilter(&self, pod: &Pod, claim_in_use: impl Fn(&str) -> bool) -> Result<PodVolumes, String> {
        let meta = pod.metadata.as_ref();
        let namespace = meta.map(|m| m.namespace.as_str()).unwrap_or("");
        let uses = pod_claims(pod);
        // VolumeRestrictions: every persistentVolumeClaim volume's claim must exist.
        let mut rwop_conflict = false;
        for u in uses.iter().filter(|u| !u.ephemeral) {
            let Some(pvc) = self.claim(namespace, &u.name) else {
                return Err(format!("persistentvolumeclaim {:?} not found", u.name));
            };
            let modes = pvc.spec.as_ref().map(|s| s.access_modes.as_slice()).unwrap_or_default();
            if modes.iter().any(|m| m == READ_WRITE_ONCE_POD) && claim_in_use(&u.name) {
                rwop_conflict = true;
            }
        }
        // VolumeBinding.
        let mut claims = Vec::with_capacity(uses.len());
        for u in &uses {
            let Some(pvc) = self.claim(namespace, &u.name) else {
                return Err(format!(
                    "waiting for ephemeral volume controller to create the persistentvolumeclaim {:?}",
                    u.name
                ));
            };
            if pvc.status.as_ref().is_some_and(|s| s.phase == "Lost") {
                let volume = pvc.spec.as_ref().map(|s| s.volume_name.as_str()).unwrap_or("");
                return Err(format!(
                    "persistentvolumeclaim {:?} bound to non-existent persistentvolume {volume:?}",
                    u.name
                ));
            }
            if !pvc.meta().deletion_timestamp.is_empty() {
                return Err(format!("persistentvolumeclaim {:?} is being deleted", u.name));
            }
            if u.ephemeral && !owned_by(&pvc, pod) {
                let pod_name = meta.map(|m| m.name.as_str()).unwrap_or("");
                return Err(format!(
                    "PVC {namespace}/{} was not created for pod {namespace}/{pod_name} (pod is not owner)",
                    u.name
                ));
            }
            claims.push(pvc);
        }
        let mut out = PodVolumes { rwop_conflict, ..Default::default() };
        let mut immediate = false;
        for pvc in claims {
            if claim_fully_bound(&pvc) {
                let name = pvc.spec.as_ref().map(|s| s.volume_name.as_str()).unwrap_or("");
                let pv = self.volume(name);
                out.bound.push((pvc, pv));
                continue;
            }
            // A claim naming a volume it is not bound to yet (pre-bound), or of no class, or of a class
            // that does not exist or binds immediately: the PV controller's to bind.
            let prebound = pvc.spec.as_ref().is_some_and(|s| !s.volume_name.is_empty());
            let class = match storage::claim_class(&pvc) {
                "" => None,
                name => self.class(name),
            };
            match class {
                Some(class)
                    if !prebound && storage::binding_mode(&class) == BINDING_WAIT_FOR_FIRST_CONSUMER =>
                {
                    out.delayed.push(Delayed { claim: pvc, class });
                }
                _ => immediate = true,
            }
        }
        if immediate {
            return Err(REASON_UNBOUND_IMMEDIATE.to_string());
        }
        out.delayed.sort_by_key(|d| storage::claim_request(&d.claim).unwrap_or_default());
        if out.delayed.iter().any(|d| !d.claim.meta().annotations.contains_key(ANN_SELECTED_NODE)) {
            out.volumes = self.all_volumes();
        }
        Ok(out)
    }
}

fn overlay<K: Resource>(stored: Arc<K>, assumed: Option<&Arc<K>>) -> Arc<K> {
    match assumed {
        Some(a) if resource_version(a.as_ref()) == resource_version(stored.as_ref()) => a.clone(),
        _ => stored,
    }
}

/// Whether the claim's controlling owner is the pod (a generic ephemeral volume's claim).
fn owned_by(pvc: &PersistentVolumeClaim, pod: &Pod) -> bool {
    let uid = pod.metadata.as_ref().map(|m| m.uid.as_str()).unwrap_or("");
    pvc.meta().owner_references.iter().any(|r| r.controller == Some(true) && r.uid == uid)
}
