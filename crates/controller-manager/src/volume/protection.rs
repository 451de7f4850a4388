//! Kubernetes' `pvc-protection` and `pv-protection` controllers: the finalizer
//! `kubernetes.io/pvc-protection` leaves a deleted claim once no pod uses it (a pod scheduled to a node,
//! not Succeeded or Failed, naming the claim in a `persistentVolumeClaim` volume or owning it as the
//! claim of a generic ephemeral volume), checked in the pod store and then by a live list of the
//! namespace's pods; `kubernetes.io/pv-protection` leaves a deleted volume once it is not Bound. Objects
//! not being deleted that lack their finalizer get it (the admission plugin normally adds it).

use std::sync::Arc;
use std::time::Duration;

use navarch_api::Resource;
use navarch_api::storage::{FINALIZER_PV_PROTECTION, FINALIZER_PVC_PROTECTION};
use navarch_api::v1::{PersistentVolume, PersistentVolumeClaim, Pod};
use navarch_client::{Action, Client, Controller, ListParams, Store};
use tracing::Instrument;

use super::{VolumeError, claim_keys_of_pod};
use crate::job::pods::is_terminal;
use crate::pod_control::controller_of;
use crate::run::{Reconciler, Wiring};

/// What a protection controller does with an object's finalizer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finalizer {
    Keep,
    Add,
    Remove,
}

/// Kubernetes' `IsDeletionCandidate` / `NeedToAddFinalizer`: remove the finalizer from a deleted
/// object once `in_use` says no, add it to a live object lacking it.
pub fn finalizer_step<K: Resource>(obj: &K, finalizer: &str, in_use: impl FnOnce() -> bool) -> Finalizer {
    let m = obj.meta();
    let has = m.finalizers.iter().any(|f| f == finalizer);
    match (m.deletion_timestamp.is_empty(), has) {
        (false, true) if !in_use() => Finalizer::Remove,
        (true, false) => Finalizer::Add,
        _ => Finalizer::Keep,
    }
}

/// A pod that has been processed by the kubelet for deletion or was force-deleted (deleted with a zero
/// grace period): it no longer holds the claims of its ephemeral volumes.
fn is_shut_down(pod: &Pod) -> bool {
    let m = pod.meta();
    !m.deletion_timestamp.is_empty() && m.deletion_grace_period_seconds == Some(0)
}

/// Whether the pod keeps the claim in use (Kubernetes' `podUsesPVC`, not counting ended pods).
pub fn pod_uses_claim(pod: &Pod, pvc: &PersistentVolumeClaim) -> bool {
    let Some(spec) = pod.spec.as_ref() else { return false };
    let (pm, cm) = (pod.meta(), pvc.meta());
    if spec.node_name.is_empty() || is_terminal(pod) || pm.namespace != cm.namespace {
        return false;
    }
    spec.volumes.iter().any(|v| match (&v.persistent_volume_claim, &v.ephemeral) {
        (Some(c), _) => c.claim_name == cm.name,
        (None, Some(_)) => {
            format!("{}-{}", pm.name, v.name) == cm.name
                && controller_of(cm).is_some_and(|r| r.uid == pm.uid)
                && !is_shut_down(pod)
        }
        _ => false,
    })
}

/// The two protection controllers' reconcile side.
pub struct Protection {
    client: Client,
    pods: Store<Pod>,
}

impl Protection {
    async fn write<K: Resource>(&self, obj: &K, finalizer: &str, step: Finalizer) -> Result<(), VolumeError> {
        let mut updated = obj.clone();
        let finalizers = &mut updated.meta_mut().finalizers;
        match step {
            Finalizer::Keep => return Ok(()),
            Finalizer::Add => finalizers.push(finalizer.to_string()),
            Finalizer::Remove => finalizers.retain(|f| f != finalizer),
        }
        updated.set_type_meta();
        match self.client.api::<K>(&obj.meta().namespace).update(&updated).await {
            Ok(_) => {
                tracing::info!(?step, finalizer, "protection finalizer updated");
                Ok(())
            }
            // Gone meanwhile: nothing left to protect.
            Err(navarch_client::Error::NotFound(_)) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Whether a pod uses the claim: the store first, then (the store may not show a new pod yet) a
    /// live list of the namespace's pods.
    async fn claim_in_use(&self, pvc: &PersistentVolumeClaim) -> Result<bool, VolumeError> {
        if self.pods.state().iter().any(|p| pod_uses_claim(p, pvc)) {
            return Ok(true);
        }
        let live = self.client.api::<Pod>(&pvc.meta().namespace).list(&ListParams::default()).await?;
        Ok(live.items.iter().any(|p| pod_uses_claim(p, pvc)))
    }
}

impl Reconciler<PersistentVolumeClaim> for Protection {
    type Error = VolumeError;

    async fn reconcile(&self, pvc: Arc<PersistentVolumeClaim>) -> Result<Action, VolumeError> {
        if !self.pods.is_ready() {
            return Ok(Action::requeue(Duration::from_millis(500)));
        }
        let span = tracing::debug_span!("pvc-protection", key = %pvc.key());
        async {
            let deleting = !pvc.meta().deletion_timestamp.is_empty();
            let in_use = if deleting { self.claim_in_use(&pvc).await? } else { false };
            let step = finalizer_step(pvc.as_ref(), FINALIZER_PVC_PROTECTION, || in_use);
            if deleting && step == Finalizer::Keep && in_use {
                tracing::debug!("keeping the claim: a pod uses it");
            }
            self.write(pvc.as_ref(), FINALIZER_PVC_PROTECTION, step).await?;
            Ok(Action::await_change())
        }
        .instrument(span)
        .await
    }
}

impl Reconciler<PersistentVolume> for Protection {
    type Error = VolumeError;

    async fn reconcile(&self, pv: Arc<PersistentVolume>) -> Result<Action, VolumeError> {
        let span = tracing::debug_span!("pv-protection", name = %pv.meta().name);
        let bound = pv.status.as_ref().is_some_and(|s| s.phase == "Bound");
        let step = finalizer_step(pv.as_ref(), FINALIZER_PV_PROTECTION, || bound);
        self.write(pv.as_ref(), FINALIZER_PV_PROTECTION, step).instrument(span).await?;
        Ok(Action::await_change())
    }
}

/// Runs both protection controllers: claims (re-synced when a pod using them changes) and volumes.
pub fn spawn(w: &mut Wiring) {
    let inf = &w.informers;
    let ctx = Arc::new(Protection { client: w.client.clone(), pods: inf.pods.store() });
    let claims = Controller::for_shared(&inf.persistent_volume_claims)
        .concurrency(w.workers)
        .watches_shared(&inf.pods, claim_keys_of_pod);
    let volumes = Controller::for_shared(&inf.persistent_volumes).concurrency(w.workers);
    w.controller::<PersistentVolumeClaim, _>(claims, ctx.clone(), Duration::from_secs(1));
    w.controller::<PersistentVolume, _>(volumes, ctx, Duration::from_secs(1));
}
