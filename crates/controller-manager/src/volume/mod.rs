//! Persistent storage in the controller-manager: Kubernetes' `persistentvolume-binder`,
//! `pvc-protection` and `pv-protection` controllers, and navarch's default StorageClass.
//!
//! * **Binding** ([`decide`] decides, [`binder`] writes): a claim is bound to the volume pre-bound to
//!   it or to the smallest Available volume that fits it ([`navarch_api::storage::best_volume_for_claim`]),
//!   in Kubernetes' order — the volume's `claimRef` (with `pv.kubernetes.io/bound-by-controller` when the
//!   controller chose it), the volume's phase Bound, the claim's `volumeName` and annotations
//!   (`bind-completed`, `bound-by-controller`), the claim's status (Bound, capacity, access modes) — so
//!   that a crash between two writes is finished by the next sync. Claims without a fitting volume stay
//!   Pending (`FailedBinding` without a class); claims of a `WaitForFirstConsumer` class wait for the
//!   scheduler's `volume.kubernetes.io/selected-node`, then (no volume pre-bound by the scheduler) are
//!   handed to their class's provisioner through `volume.kubernetes.io/storage-provisioner` (and the
//!   beta annotation), `ExternalProvisioning`. A claim whose volume vanished or went elsewhere is Lost.
//! * **Volumes**: Available (no claim or pre-bound), Bound, Released once their claim (by UID) is gone,
//!   then the reclaim policy: Retain stays Released; Delete of a volume provisioned by an external
//!   provisioner (`pv.kubernetes.io/provisioned-by`: the kubelet's `navarch.io/local-path`) is left to
//!   it; Delete of any other volume and Recycle fail (phase Failed, `VolumeFailedDelete` /
//!   `VolumeFailedRecycle`) as in Kubernetes when no plugin can do it.
//! * **Protection** ([`protection`]): `kubernetes.io/pvc-protection` leaves a deleted claim once no
//!   scheduled pod that has not ended uses it; `kubernetes.io/pv-protection` leaves a deleted volume once
//!   it is not Bound. Both are added to objects that lack them (as Kubernetes' controllers do, behind
//!   the admission plugin).
//! * **Ephemeral volumes** ([`ephemeral`]): the claim `<pod>-<volume>` of each generic ephemeral volume,
//!   controlled by its pod.
//! * **Default class** ([`default_class`]): StorageClass `local-path` is created at start if absent.
//!
//! Level-triggered: every sync reads the reflector stores (and, before deciding a claim is gone or a
//! volume lost, the api-server); every write is a compare-and-swap on the resourceVersion read.

pub mod binder;
pub mod decide;
pub mod default_class;
pub mod ephemeral;
pub mod protection;
#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::Duration;

use navarch_api::Resource;
use navarch_api::storage::ANN_BIND_COMPLETED;
use navarch_api::v1::{PersistentVolume, PersistentVolumeClaim, Pod};
use navarch_client::{Controller, ObjectRef, Store};

use crate::run::Wiring;

/// What the volume controllers report when a sync fails.
#[derive(Debug, thiserror::Error)]
pub enum VolumeError {
    #[error("{0}")]
    Api(#[from] navarch_client::Error),
    #[error("PersistentVolume {0:?} is without a storage capacity")]
    NoCapacity(String),
    #[error(
        "invalid binding of claim {claim:?} to volume {volume:?}: volume already claimed by another claim"
    )]
    Misbound { claim: String, volume: String },
}

/// The claims a pod uses: its `persistentVolumeClaim` volumes and the claims of its generic ephemeral
/// volumes (`<pod>-<volume>`, Kubernetes' `ephemeral.VolumeClaimName`).
pub fn claims_of_pod(pod: &Pod) -> Vec<String> {
    let pod_name = &pod.meta().name;
    let volumes = pod.spec.as_ref().map(|s| s.volumes.as_slice()).unwrap_or(&[]);
    volumes
        .iter()
        .filter_map(|v| match (&v.persistent_volume_claim, &v.ephemeral) {
            (Some(c), _) => Some(c.claim_name.clone()),
            (None, Some(_)) => Some(format!("{pod_name}-{}", v.name)),
            _ => None,
        })
        .collect()
}

fn claim_key_of(pv: &PersistentVolume) -> Option<ObjectRef> {
    let r = pv.spec.as_ref()?.claim_ref.as_ref()?;
    Some(ObjectRef::new(&r.namespace, &r.name))
}

fn is_unbound(pvc: &PersistentVolumeClaim) -> bool {
    !pvc.meta().annotations.contains_key(ANN_BIND_COMPLETED)
}

/// The claims to sync when a volume changes: the claim its `claimRef` names, claims naming it in
/// `volumeName`, and — for a volume free to bind — every unbound claim.
pub fn claims_for_volume(claims: &Store<PersistentVolumeClaim>, pv: &PersistentVolume) -> Vec<ObjectRef> {
    let name = &pv.meta().name;
    let free = claim_key_of(pv).is_none();
    let mut keys: Vec<ObjectRef> = claims
        .state()
        .iter()
        .filter(|c| c.spec.as_ref().is_some_and(|s| &s.volume_name == name) || (free && is_unbound(c)))
        .map(|c| ObjectRef::from_obj(c.as_ref()))
        .collect();
    keys.extend(claim_key_of(pv));
    keys
}

/// The volumes to sync when a claim changes: the one it names and those whose `claimRef` names it.
pub fn volumes_for_claim(volumes: &Store<PersistentVolume>, pvc: &PersistentVolumeClaim) -> Vec<ObjectRef> {
    let m = pvc.meta();
    let named = pvc.spec.as_ref().map(|s| s.volume_name.as_str()).unwrap_or("");
    volumes
        .state()
        .iter()
        .filter(|v| {
            v.meta().name == named
                || claim_key_of(v).is_some_and(|k| k.namespace == m.namespace && k.name == m.name)
        })
        .map(|v| ObjectRef::from_obj(v.as_ref()))
        .collect()
}

/// The keys of the claims a pod uses.
pub fn claim_keys_of_pod(pod: &Pod) -> Vec<ObjectRef> {
    let ns = &pod.meta().namespace;
    claims_of_pod(pod).iter().map(|c| ObjectRef::new(ns, c)).collect()
}

/// Runs the persistent volume binder (claims and volumes), the two protection controllers, and makes
/// sure the default StorageClass exists.
pub fn spawn(w: &mut Wiring) {
    let events = w.recorder("persistentvolume-controller");
    let inf = &w.informers;
    let binder = Arc::new(binder::Binder::new(
        w.client.clone(),
        inf.persistent_volumes.store(),
        inf.persistent_volume_claims.store(),
        inf.storage_classes.store(),
        inf.pods.store(),
        events,
    ));
    let (claims, volumes) = (inf.persistent_volume_claims.store(), inf.persistent_volumes.store());
    let claims_by_class = claims.clone();
    let claims_by_volume = claims.clone();
    // One worker per queue, as Kubernetes runs it: two syncs must not bind one volume twice (the
    // resourceVersion check would catch it, at the price of a retry).
    let claim_controller = Controller::for_shared(&inf.persistent_volume_claims)
        .concurrency(1)
        .watches_shared(&inf.persistent_volumes, move |pv: &PersistentVolume| {
            claims_for_volume(&claims_by_volume, pv)
        })
        .watches_shared(&inf.storage_classes, move |_| {
            claims_by_class
                .state()
                .iter()
                .filter(|c| is_unbound(c))
                .map(|c| ObjectRef::from_obj(c.as_ref()))
                .collect()
        })
        .watches_shared(&inf.pods, claim_keys_of_pod);
    let volume_controller = Controller::for_shared(&inf.persistent_volumes)
        .concurrency(1)
        .watches_shared(&inf.persistent_volume_claims, move |pvc: &PersistentVolumeClaim| {
            volumes_for_claim(&volumes, pvc)
        });
    w.controller::<PersistentVolumeClaim, _>(claim_controller, binder.clone(), Duration::from_secs(1));
    w.controller::<PersistentVolume, _>(volume_controller, binder, Duration::from_secs(1));
    protection::spawn(w);
    ephemeral::spawn(w);
    default_class::spawn(w);
}
