//! The persistent volume controller's decisions, pure (Kubernetes' `syncUnboundClaim`, `syncBoundClaim`,
//! `syncVolume` and `reclaimVolume` branches): what one sync of a claim or a volume should do, given
//! the objects the reflector stores hold. [`super::binder`] carries the steps out.

use std::sync::Arc;

use navarch_api::Resource;
use navarch_api::storage::{
    ANN_BIND_COMPLETED, ANN_BOUND_BY_CONTROLLER, ANN_PROVISIONED_BY, ANN_SELECTED_NODE,
    BINDING_WAIT_FOR_FIRST_CONSUMER, best_volume_for_claim, binding_mode, claim_class, claim_names_class,
    default_class, volume_bound_to_claim, volume_mismatch,
};
use navarch_api::v1::{PersistentVolume, PersistentVolumeClaim, Pod, StorageClass};

use super::claims_of_pod;
use crate::job::pods::is_terminal;

/// An event to record: type (`Normal`/`Warning`), reason and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    pub kind: &'static str,
    pub reason: &'static str,
    pub message: String,
}

impl Note {
    pub fn normal(reason: &'static str, message: impl Into<String>) -> Note {
        Note { kind: "Normal", reason, message: message.into() }
    }
    pub fn warning(reason: &'static str, message: impl Into<String>) -> Note {
        Note { kind: "Warning", reason, message: message.into() }
    }
}

/// What a sync of a claim does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimStep {
    /// Bind the claim and the named volume (or finish or repair their binding).
    Bind(String),
    /// The claim waits: phase Pending (its bound capacity and access modes cleared), after the event.
    Pending(Option<Note>),
    /// The claim names no class: give it the default class (the next sync goes on from there).
    AssignClass(String),
    /// Hand the claim to this external provisioner (its annotations), with an `ExternalProvisioning`
    /// event.
    Provision(String),
    /// Only an event: provisioning cannot start (no such class, no such provisioner).
    Event(Note),
    /// The claim lost its volume: phase Lost, the event recorded when the phase changes.
    Lost(Note),
    /// A binding that should never exist: the event, and the sync fails.
    Refuse(Note),
}

/// What a sync of a volume does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VolumeStep {
    /// Set the phase (no event) if it differs.
    Phase(&'static str),
    /// The claim's own sync finishes (or repairs) the binding.
    WaitForClaim,
    /// Volume and claim disagree on volume mode: an event on each, nothing written.
    Mismatch { volume: Note, claim: Note },
    /// The claim is gone (or bound elsewhere): Released (unless Released or Failed already), then the
    /// reclaim policy.
    Release(Reclaim),
    /// The controller's (or the user's) binding to a claim bound elsewhere is undone.
    Unbind,
}

/// The outcome of a volume's reclaim policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reclaim {
    /// Retain, or Delete by an external deleter (navarch's local-path provisioner): nothing here.
    Nothing,
    /// The policy cannot be carried out: phase Failed with this event (and message).
    Fail(Note),
}

fn phase(pv: &PersistentVolume) -> &str {
    pv.status.as_ref().map(|s| s.phase.as_str()).unwrap_or("")
}

fn has_annotation<K: Resource>(o: &K, key: &str) -> bool {
    o.meta().annotations.contains_key(key)
}

fn volume_name(pvc: &PersistentVolumeClaim) -> &str {
    pvc.spec.as_ref().map(|s| s.volume_name.as_str()).unwrap_or("")
}

/// What the controller's stores hold, for one claim's sync.
pub struct ClaimView<'a> {
    pub volumes: &'a [Arc<PersistentVolume>],
    pub classes: &'a [Arc<StorageClass>],
    /// The pods of the claim's namespace.
    pub pods: &'a [Arc<Pod>],
}

impl ClaimView<'_> {
    fn volume(&self, name: &str) -> Option<&PersistentVolume> {
        self.volumes.iter().map(Arc::as_ref).find(|v| v.meta().name == name)
    }

    fn class(&self, name: &str) -> Option<&StorageClass> {
        self.classes.iter().map(Arc::as_ref).find(|c| c.meta().name == name)
    }
}

/// Kubernetes' `syncClaim`.
pub fn claim_step(pvc: &PersistentVolumeClaim, view: &ClaimView) -> ClaimStep {
    if has_annotation(pvc, ANN_BIND_COMPLETED) {
        bound_claim_step(pvc, view)
    } else {
        unbound_claim_step(pvc, view)
    }
}

fn unbound_claim_step(pvc: &PersistentVolumeClaim, view: &ClaimView) -> ClaimStep {
    let wanted = volume_name(pvc);
    if wanted.is_empty() {
        return unbound_claim_without_volume(pvc, view);
    }
    // The user asked for a specific volume.
    let Some(pv) = view.volume(wanted) else { return ClaimStep::Pending(None) };
    let claim_ref = pv.spec.as_ref().and_then(|s| s.claim_ref.as_ref());
    if claim_ref.is_none() {
        return match unsatisfied(pv, pvc) {
            Some(why) => ClaimStep::Pending(Some(Note::warning(
                "VolumeMismatch",
                format!("Cannot bind to requested volume {wanted:?}: {why}"),
            ))),
            None => ClaimStep::Bind(wanted.to_string()),
        };
    }
    if volume_bound_to_claim(pv, pvc) {
        return ClaimStep::Bind(wanted.to_string());
    }
    let note =
        Note::warning("FailedBinding", format!("volume {wanted:?} already bound to a different claim."));
    if has_annotation(pvc, ANN_BOUND_BY_CONTROLLER) {
        // Someone removed bind-completed from a claim this controller bound: never expected.
        ClaimStep::Refuse(note)
    } else {
        ClaimStep::Pending(Some(note))
    }
}

/// Kubernetes' `checkVolumeSatisfyClaim`: why the requested volume cannot serve the claim.
fn unsatisfied(pv: &PersistentVolume, pvc: &PersistentVolumeClaim) -> Option<String> {
    if !pv.meta().deletion_timestamp.is_empty() {
        return Some(format!("the volume is marked for deletion {:?}", pv.meta().name));
    }
    let why = match volume_mismatch(pv, pvc, None)? {
        "capacity" => "requested PV is too small",
        "storage class" => "storageClassName does not match",
        "volume mode" => "incompatible volumeMode",
        "access modes" => "incompatible accessMode",
        other => other,
    };
    Some(why.to_string())
}

fn unbound_claim_without_volume(pvc: &PersistentVolumeClaim, view: &ClaimView) -> ClaimStep {
    let class_name = claim_class(pvc);
    let class = (!class_name.is_empty()).then(|| view.class(class_name)).flatten();
    let delay_binding = class.is_some_and(|c| binding_mode(c) == BINDING_WAIT_FOR_FIRST_CONSUMER);
    // Kubernetes' FindMatchingVolume without a node: a volume pre-bound to the claim, else (unless the
    // class waits for the scheduler, which binds static volumes itself) the smallest Available fit.
    let candidates = view
        .volumes
        .iter()
        .map(Arc::as_ref)
        .filter(|v| volume_bound_to_claim(v, pvc) || (!delay_binding && phase(v) == "Available"));
    if let Some(pv) = best_volume_for_claim(candidates, pvc, None) {
        return ClaimStep::Bind(pv.meta().name.clone());
    }
    if !claim_names_class(pvc)
        && let Some(default) = default_class(view.classes.iter().map(Arc::as_ref))
    {
        return ClaimStep::AssignClass(default.meta().name.clone());
    }
    if delay_binding && !has_annotation(pvc, ANN_SELECTED_NODE) {
        return ClaimStep::Pending(Some(waiting_for_consumer(pvc, view.pods)));
    }
    if class_name.is_empty() {
        return ClaimStep::Pending(Some(Note::normal(
            "FailedBinding",
            "no persistent volumes available for this claim and no storage class is set",
        )));
    }
    match class {
        None => ClaimStep::Event(Note::warning(
            "ProvisioningFailed",
            format!("storageclass.storage.k8s.io {class_name:?} not found"),
        )),
        // Kubernetes' in-tree plugins; navarch has none (kubernetes.io/no-provisioner included).
        Some(c) if c.provisioner.starts_with("kubernetes.io/") => ClaimStep::Event(Note::warning(
            "ProvisioningFailed",
            format!("no volume plugin matched name: {}", c.provisioner),
        )),
        Some(c) => ClaimStep::Provision(c.provisioner.clone()),
    }
}

/// Kubernetes' `emitEventForUnboundDelayBindingClaim`: the claim waits for a pod using it to be
/// scheduled (naming the unscheduled pods that use it, if any).
fn waiting_for_consumer(pvc: &PersistentVolumeClaim, pods: &[Arc<Pod>]) -> Note {
    let claim = &pvc.meta().name;
    let waiting: Vec<&str> = pods
        .iter()
        .filter(|p| !is_terminal(p) && p.spec.as_ref().is_some_and(|s| s.node_name.is_empty()))
        .filter(|p| claims_of_pod(p).iter().any(|c| c == claim))
        .map(|p| p.meta().name.as_str())
        .collect();
    match waiting.as_slice() {
        [] => Note::normal("WaitForFirstConsumer", "waiting for first consumer to be created before binding"),
        [one] => Note::normal("WaitForPodScheduled", format!("waiting for pod {one} to be scheduled")),
        many => Note::normal(
            "WaitForPodScheduled",
            format!("waiting for pods {} to be scheduled", many.join(",")),
        ),
    }
}

fn bound_claim_step(pvc: &PersistentVolumeClaim, view: &ClaimView) -> ClaimStep {
    let wanted = volume_name(pvc);
    if wanted.is_empty() {
        return ClaimStep::Lost(Note::warning(
            "ClaimLost",
            "Bound claim has lost reference to PersistentVolume. Data on the volume is lost!",
        ));
    }
    let Some(pv) = view.volume(wanted) else {
        return ClaimStep::Lost(Note::warning(
            "ClaimLost",
            "Bound claim has lost its PersistentVolume. Data on the volume is lost!",
        ));
    };
    match pv.spec.as_ref().and_then(|s| s.claim_ref.as_ref()) {
        // Unbound volume (or a store behind): bind it again. Or all is well: bind() changes nothing.
        None => ClaimStep::Bind(wanted.to_string()),
        Some(r) if r.uid == pvc.meta().uid => ClaimStep::Bind(wanted.to_string()),
        Some(_) => ClaimStep::Lost(Note::warning(
            "ClaimMisbound",
            "Two claims are bound to the same volume, this one is bound incorrectly",
        )),
    }
}

/// Kubernetes' `syncVolume`, once the claim the volume's `claimRef` names is known: `claim` is that
/// claim if it exists with the referenced UID (`None`: deleted).
pub fn volume_step(pv: &PersistentVolume, claim: Option<&PersistentVolumeClaim>) -> VolumeStep {
    let Some(r) = pv.spec.as_ref().and_then(|s| s.claim_ref.as_ref()) else {
        return VolumeStep::Phase("Available");
    };
    if r.uid.is_empty() {
        // Pre-bound by the user; the claim's sync binds it.
        return VolumeStep::Phase("Available");
    }
    let Some(claim) = claim else { return VolumeStep::Release(reclaim(pv)) };
    let name = &pv.meta().name;
    let bound_to = volume_name(claim);
    if bound_to.is_empty() {
        if volume_mismatch(pv, claim, None) == Some("volume mode") {
            return VolumeStep::Mismatch {
                volume: Note::warning(
                    "VolumeMismatch",
                    format!(
                        "Cannot bind PersistentVolume to requested PersistentVolumeClaim {:?} due to incompatible volumeMode.",
                        claim.meta().name
                    ),
                ),
                claim: Note::warning(
                    "VolumeMismatch",
                    format!(
                        "Cannot bind PersistentVolume {name:?} to requested PersistentVolumeClaim due to incompatible volumeMode."
                    ),
                ),
            };
        }
        return VolumeStep::WaitForClaim;
    }
    if bound_to == name {
        return VolumeStep::Phase("Bound");
    }
    // The claim is bound to another volume.
    let policy = pv.spec.as_ref().map(|s| s.persistent_volume_reclaim_policy.as_str()).unwrap_or("");
    if has_annotation(pv, ANN_PROVISIONED_BY) && policy == "Delete" {
        // Provisioned for this claim, which got another volume: not needed any more.
        return VolumeStep::Release(reclaim(pv));
    }
    VolumeStep::Unbind
}

/// Kubernetes' `reclaimVolume` for a released volume.
pub fn reclaim(pv: &PersistentVolume) -> Reclaim {
    let spec = pv.spec.as_ref();
    match spec.map(|s| s.persistent_volume_reclaim_policy.as_str()).unwrap_or("") {
        "Retain" => Reclaim::Nothing,
        "Recycle" => {
            Reclaim::Fail(Note::warning("VolumeFailedRecycle", "No recycler plugin found for the volume!"))
        }
        "Delete" => match deleter_error(pv) {
            None => Reclaim::Nothing,
            Some(e) => Reclaim::Fail(Note::warning("VolumeFailedDelete", e)),
        },
        _ => Reclaim::Fail(Note::warning(
            "VolumeUnknownReclaimPolicy",
            "Volume has unrecognized PersistentVolumeReclaimPolicy",
        )),
    }
}

/// Kubernetes' `findDeletablePlugin`: `None` when an external deleter removes the volume (the provisioner
/// named by `pv.kubernetes.io/provisioned-by` — navarch's local-path provisioner in the kubelet — or a
/// CSI driver); else why it cannot be deleted: the controller-manager has no deleter plugins.
pub fn deleter_error(pv: &PersistentVolume) -> Option<String> {
    let provisioner = pv.meta().annotations.get(ANN_PROVISIONED_BY).filter(|p| !p.is_empty());
    if let Some(p) = provisioner {
        return p.starts_with("kubernetes.io/").then(|| format!("no volume plugin matched name: {p}"));
    }
    if pv.spec.as_ref().is_some_and(|s| s.csi.is_some()) {
        return None;
    }
    Some(format!(
        "error getting deleter volume plugin for volume {:?}: no deletable volume plugin matched",
        pv.meta().name
    ))
}
