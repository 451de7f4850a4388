//! The persistent volume binder's reconcile loops ([`Binder`]): a claim's or a volume's sync reads the
//! stores, asks [`super::decide`] what to do, and writes it — bindings in Kubernetes' order (volume
//! `claimRef`, volume phase, claim `volumeName` and annotations, claim status), each a compare-and-swap
//! on the resourceVersion just read or just written, so a crash or a conflict between two writes
//! leaves a state the next sync finishes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use navarch_api::Resource;
use navarch_api::storage::{
    ANN_BETA_STORAGE_PROVISIONER, ANN_BIND_COMPLETED, ANN_BOUND_BY_CONTROLLER, ANN_STORAGE_PROVISIONER,
    bind_volume_to_claim,
};
use navarch_api::v1::{
    PersistentVolume, PersistentVolumeClaim, PersistentVolumeClaimSpec, PersistentVolumeSpec,
    PersistentVolumeStatus, Pod, StorageClass,
};
use navarch_client::{Action, Client, EventRecorder, ObjectRef, Store, object_ref};
use tracing::Instrument;

use super::VolumeError;
use super::decide::{self, ClaimStep, ClaimView, Note, Reclaim, VolumeStep};
use crate::run::Reconciler;

/// How often an unbound claim is looked at again (Kubernetes' `--pvclaimbinder-sync-period`).
pub const RESYNC: Duration = Duration::from_secs(15);
/// An event repeated by every resync (a claim still waiting) is recorded again only after this long:
/// what Kubernetes' event aggregation shows as one event with a count.
const REPEAT_AFTER: Duration = Duration::from_secs(600);

/// Events, each identical one (same object, reason and message) recorded at most once per
/// [`REPEAT_AFTER`].
pub struct Notes {
    events: EventRecorder,
    recent: Mutex<HashMap<(String, &'static str, String), Instant>>,
}

impl Notes {
    pub fn new(events: EventRecorder) -> Notes {
        Notes { events, recent: Mutex::new(HashMap::new()) }
    }

    /// Records `note` about `obj` unless it was recorded within [`REPEAT_AFTER`].
    pub fn record<K: Resource>(&self, obj: &K, note: &Note) {
        let now = Instant::now();
        let key = (obj.meta().uid.clone(), note.reason, note.message.clone());
        {
            let mut recent = self.recent.lock().expect("events lock");
            if recent.get(&key).is_some_and(|at| now.duration_since(*at) < REPEAT_AFTER) {
                return;
            }
            if recent.len() > 4096 {
                recent.retain(|_, at| now.duration_since(*at) < REPEAT_AFTER);
            }
            recent.insert(key, now);
        }
        self.events.record(object_ref(obj), note.kind, note.reason, note.message.clone());
    }
}

/// The persistent volume controller (`persistentvolume-binder`), reconciling claims and volumes.
pub struct Binder {
    client: Client,
    volumes: Store<PersistentVolume>,
    claims: Store<PersistentVolumeClaim>,
    classes: Store<StorageClass>,
    pods: Store<Pod>,
    notes: Notes,
}

fn phase_of(pv: &PersistentVolume) -> &str {
    pv.status.as_ref().map(|s| s.phase.as_str()).unwrap_or("")
}

fn claim_spec(pvc: &mut PersistentVolumeClaim) -> &mut PersistentVolumeClaimSpec {
    pvc.spec.get_or_insert_with(Default::default)
}

fn volume_spec(pv: &mut PersistentVolume) -> &mut PersistentVolumeSpec {
    pv.spec.get_or_insert_with(Default::default)
}

/// The claim bound to the volume (Kubernetes' `bindClaimToVolume`), or `None` if it already is.
pub fn claim_bound_to(pvc: &PersistentVolumeClaim, volume: &str) -> Option<PersistentVolumeClaim> {
    let mut out = pvc.clone();
    let mut dirty = false;
    if pvc.spec.as_ref().map(|s| s.volume_name.as_str()).unwrap_or("") != volume {
        claim_spec(&mut out).volume_name = volume.to_string();
        out.meta_mut().annotations.entry(ANN_BOUND_BY_CONTROLLER.into()).or_insert_with(|| "yes".into());
        dirty = true;
    }
    if !out.meta().annotations.contains_key(ANN_BIND_COMPLETED) {
        out.meta_mut().annotations.insert(ANN_BIND_COMPLETED.into(), "yes".into());
        dirty = true;
    }
    dirty.then(|| {
        out.set_type_meta();
        out
    })
}

/// The claim's status in `phase` (Kubernetes' `updateClaimStatus`): with a volume, its access modes and
/// (when the claim becomes bound) its capacity; without, neither. `None` if nothing changes.
pub fn claim_status(
    pvc: &PersistentVolumeClaim,
    phase: &str,
    volume: Option<&PersistentVolume>,
) -> Result<Option<PersistentVolumeClaim>, VolumeError> {
    let old = pvc.status.clone().unwrap_or_default();
    let mut new = old.clone();
    new.phase = phase.to_string();
    match volume {
        None => {
            new.access_modes.clear();
            new.capacity.clear();
        }
        Some(pv) => {
            let spec = pv.spec.clone().unwrap_or_default();
            new.access_modes = spec.access_modes;
            if old.phase != phase {
                let capacity = spec
                    .capacity
                    .get("storage")
                    .ok_or_else(|| VolumeError::NoCapacity(pv.meta().name.clone()))?;
                if old.capacity.get("storage") != Some(capacity) {
                    new.capacity = spec.capacity.clone();
                }
            }
        }
    }
    if new == old {
        return Ok(None);
    }
    let mut out = pvc.clone();
    out.status = Some(new);
    out.set_type_meta();
    Ok(Some(out))
}

impl Binder {
    pub fn new(
        client: Client,
        volumes: Store<PersistentVolume>,
        claims: Store<PersistentVolumeClaim>,
        classes: Store<StorageClass>,
        pods: Store<Pod>,
        events: EventRecorder,
    ) -> Binder {
        Binder { client, volumes, claims, classes, pods, notes: Notes::new(events) }
    }

    fn ready(&self) -> bool {
        self.volumes.is_ready() && self.claims.is_ready() && self.classes.is_ready() && self.pods.is_ready()
    }

    fn claim_api(&self, pvc: &PersistentVolumeClaim) -> navarch_client::Api<PersistentVolumeClaim> {
        self.client.api(&pvc.meta().namespace)
    }

    fn volume_api(&self) -> navarch_client::Api<PersistentVolume> {
        self.client.api("")
    }

    /// Writes the claim's status unless it already says so; returns the claim as stored.
    async fn set_claim_status(
        &self,
        pvc: PersistentVolumeClaim,
        phase: &str,
        volume: Option<&PersistentVolume>,
    ) -> Result<PersistentVolumeClaim, VolumeError> {
        match claim_status(&pvc, phase, volume)? {
            None => Ok(pvc),
            Some(updated) => {
                let written = self.claim_api(&pvc).update_status(&updated).await?;
                tracing::info!(phase, "claim entered phase");
                Ok(written)
            }
        }
    }

    /// Writes the volume's phase (and message) unless it already has that phase; returns the volume as
    /// stored and whether it changed.
    async fn set_volume_phase(
        &self,
        pv: PersistentVolume,
        phase: &str,
        message: &str,
    ) -> Result<(PersistentVolume, bool), VolumeError> {
        if phase_of(&pv) == phase {
            return Ok((pv, false));
        }
        let mut updated = pv.clone();
        let status = updated.status.get_or_insert_with(PersistentVolumeStatus::default);
        status.phase = phase.to_string();
        status.message = message.to_string();
        updated.set_type_meta();
        let written = self.volume_api().update_status(&updated).await?;
        tracing::info!(volume = %pv.meta().name, phase, "volume entered phase");
        Ok((written, true))
    }

    /// Kubernetes' `bind`: the volume's claimRef, its phase, the claim's binding, the claim's status.
    async fn bind(&self, pv: &PersistentVolume, pvc: &PersistentVolumeClaim) -> Result<(), VolumeError> {
        let mut pv = pv.clone();
        if let Some(updated) = bind_volume_to_claim(&pv, pvc) {
            pv = self.volume_api().update(&updated).await?;
            tracing::info!(volume = %pv.meta().name, "volume bound to claim");
        }
        let (pv, _) = self.set_volume_phase(pv, "Bound", "").await?;
        let mut pvc = pvc.clone();
        if let Some(updated) = claim_bound_to(&pvc, &pv.meta().name) {
            pvc = self.claim_api(&pvc).update(&updated).await?;
            tracing::info!(volume = %pv.meta().name, "claim bound to volume");
        }
        self.set_claim_status(pvc, "Bound", Some(&pv)).await?;
        Ok(())
    }

    /// Kubernetes' `unbindVolume`: a binding the controller made is removed, a user's pre-binding
    /// keeps its name but loses the UID; the volume is Available again.
    async fn unbind(&self, pv: &PersistentVolume) -> Result<(), VolumeError> {
        let mut updated = pv.clone();
        if updated.meta_mut().annotations.remove(ANN_BOUND_BY_CONTROLLER).is_some() {
            volume_spec(&mut updated).claim_ref = None;
        } else if let Some(r) = volume_spec(&mut updated).claim_ref.as_mut() {
            r.uid.clear();
        }
        updated.set_type_meta();
        let written = self.volume_api().update(&updated).await?;
        tracing::info!(volume = %pv.meta().name, "volume unbound from a claim bound elsewhere");
        self.set_volume_phase(written, "Available", "").await?;
        Ok(())
    }

    async fn sync_claim(&self, pvc: &PersistentVolumeClaim) -> Result<Action, VolumeError> {
        let volumes = self.volumes.state();
        let classes = self.classes.state();
        let namespace = &pvc.meta().namespace;
        let pods: Vec<Arc<Pod>> =
            self.pods.state().into_iter().filter(|p| &p.meta().namespace == namespace).collect();
        let step = decide::claim_step(pvc, &ClaimView { volumes: &volumes, classes: &classes, pods: &pods });
        tracing::debug!(?step, "claim sync");
        match step {
            ClaimStep::Bind(name) => {
                let Some(pv) = self.volumes.get(&ObjectRef::new("", &name)) else {
                    return Ok(Action::requeue(RESYNC));
                };
                self.bind(&pv, pvc).await?;
                return Ok(Action::await_change());
            }
            ClaimStep::Pending(note) => {
                if let Some(note) = note {
                    self.notes.record(pvc, &note);
                }
                self.set_claim_status(pvc.clone(), "Pending", None).await?;
            }
            ClaimStep::AssignClass(class) => {
                let mut updated = pvc.clone();
                claim_spec(&mut updated).storage_class_name = Some(class.clone());
                updated.set_type_meta();
                self.claim_api(pvc).update(&updated).await?;
                tracing::info!(%class, "assigned the default StorageClass to the claim");
            }
            ClaimStep::Provision(provisioner) => {
                let annotations = &pvc.meta().annotations;
                let mut claim = pvc.clone();
                if annotations.get(ANN_STORAGE_PROVISIONER) != Some(&provisioner) {
                    let mut updated = pvc.clone();
                    let a = &mut updated.meta_mut().annotations;
                    a.insert(ANN_BETA_STORAGE_PROVISIONER.into(), provisioner.clone());
                    a.insert(ANN_STORAGE_PROVISIONER.into(), provisioner.clone());
                    updated.set_type_meta();
                    claim = self.claim_api(pvc).update(&updated).await?;
                    tracing::info!(%provisioner, "claim handed to its provisioner");
                }
                let message = format!(
                    "Waiting for a volume to be created either by the external provisioner '{provisioner}' or manually by the system administrator. If volume creation is delayed, please verify that the provisioner is running and correctly registered."
                );
                self.notes.record(&claim, &Note::normal("ExternalProvisioning", message));
            }
            ClaimStep::Event(note) => self.notes.record(pvc, &note),
            ClaimStep::Lost(note) => {
                let phase = pvc.status.as_ref().map(|s| s.phase.as_str()).unwrap_or("");
                if phase != "Lost" && !self.volume_still_there(pvc).await? {
                    let written = self.set_claim_status(pvc.clone(), "Lost", None).await?;
                    self.notes.record(&written, &note);
                }
                return Ok(Action::await_change());
            }
            ClaimStep::Refuse(note) => {
                self.notes.record(pvc, &note);
                return Err(VolumeError::Misbound {
                    claim: pvc.key(),
                    volume: pvc.spec.as_ref().map(|s| s.volume_name.clone()).unwrap_or_default(),
                });
            }
        }
        Ok(Action::requeue(RESYNC))
    }

    /// Before a claim is declared Lost because its volume is missing from the store: whether the
    /// api-server still has the volume (the store may be behind), bound to this claim.
    async fn volume_still_there(&self, pvc: &PersistentVolumeClaim) -> Result<bool, VolumeError> {
        let name = pvc.spec.as_ref().map(|s| s.volume_name.as_str()).unwrap_or("");
        if name.is_empty() || self.volumes.get(&ObjectRef::new("", name)).is_some() {
            return Ok(false);
        }
        Ok(self.volume_api().get_opt(name).await?.is_some())
    }

    /// The claim the volume's `claimRef` names, if it exists with that UID — asking the api-server
    /// when the store does not show it (Kubernetes' double check: a volume is never released on the
    /// word of a store that is behind).
    async fn referenced_claim(
        &self,
        pv: &PersistentVolume,
    ) -> Result<Option<PersistentVolumeClaim>, VolumeError> {
        let Some(r) = pv.spec.as_ref().and_then(|s| s.claim_ref.as_ref()) else { return Ok(None) };
        if r.uid.is_empty() {
            return Ok(None);
        }
        let cached = self.claims.get(&ObjectRef::new(&r.namespace, &r.name));
        match cached {
            Some(c) if c.meta().uid == r.uid => return Ok(Some(c.as_ref().clone())),
            None if matches!(phase_of(pv), "Released" | "Failed") => return Ok(None),
            _ => {}
        }
        let live = self.client.api::<PersistentVolumeClaim>(&r.namespace).get_opt(&r.name).await?;
        Ok(live.filter(|c| c.meta().uid == r.uid))
    }

    async fn sync_volume(&self, pv: &PersistentVolume) -> Result<Action, VolumeError> {
        let claim = self.referenced_claim(pv).await?;
        let step = decide::volume_step(pv, claim.as_ref());
        tracing::debug!(?step, "volume sync");
        match step {
            VolumeStep::Phase(phase) => {
                self.set_volume_phase(pv.clone(), phase, "").await?;
            }
            VolumeStep::WaitForClaim => {}
            VolumeStep::Mismatch { volume, claim: on_claim } => {
                self.notes.record(pv, &volume);
                if let Some(c) = &claim {
                    self.notes.record(c, &on_claim);
                }
            }
            VolumeStep::Release(reclaim) => {
                let mut pv = pv.clone();
                if !matches!(phase_of(&pv), "Released" | "Failed") {
                    tracing::info!(volume = %pv.meta().name, "volume is released; its reclaim policy follows");
                    pv = self.set_volume_phase(pv, "Released", "").await?.0;
                }
                if let Reclaim::Fail(note) = reclaim {
                    let (written, changed) = self.set_volume_phase(pv, "Failed", &note.message).await?;
                    if changed {
                        self.notes.record(&written, &note);
                    }
                }
            }
            VolumeStep::Unbind => self.unbind(pv).await?,
        }
        Ok(Action::await_change())
    }
}

impl Reconciler<PersistentVolumeClaim> for Binder {
    type Error = VolumeError;

    async fn reconcile(&self, pvc: Arc<PersistentVolumeClaim>) -> Result<Action, VolumeError> {
        if !self.ready() {
            return Ok(Action::requeue(Duration::from_millis(500)));
        }
        let span = tracing::debug_span!("pvc", key = %pvc.key());
        self.sync_claim(&pvc).instrument(span).await
    }
}

impl Reconciler<PersistentVolume> for Binder {
    type Error = VolumeError;

    async fn reconcile(&self, pv: Arc<PersistentVolume>) -> Result<Action, VolumeError> {
        if !self.ready() {
            return Ok(Action::requeue(Duration::from_millis(500)));
        }
        let span = tracing::debug_span!("pv", name = %pv.meta().name);
        self.sync_volume(&pv).instrument(span).await
    }
}
