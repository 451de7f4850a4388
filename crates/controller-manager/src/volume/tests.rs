//! The volume controllers' decisions on hand-built claims, volumes, classes and pods.

use std::sync::Arc;

use navarch_api::Resource;
use navarch_api::v1::{PersistentVolume, PersistentVolumeClaim, Pod, StorageClass};

use navarch_api::storage::bind_volume_to_claim;

use super::binder::{claim_bound_to, claim_status};
use super::claims_of_pod;
use super::decide::{ClaimStep, ClaimView, Note, Reclaim, VolumeStep, claim_step, volume_step};
use super::default_class::local_path_class;
use super::protection::{Finalizer, finalizer_step, pod_uses_claim};

fn from_yaml<T: serde::de::DeserializeOwned>(y: &str) -> T {
    serde_yaml::from_str(y).unwrap()
}

/// A volume: `extra` is more spec (indented two spaces), `status` its phase.
fn pv(name: &str, size: &str, class: &str, extra: &str, phase: &str) -> Arc<PersistentVolume> {
    Arc::new(from_yaml(&format!(
        "metadata: {{name: {name}}}\nspec:\n  capacity: {{storage: {size}}}\n  accessModes: [ReadWriteOnce]\n  \
         storageClassName: '{class}'\n  persistentVolumeReclaimPolicy: Retain\n  hostPath: {{path: /data/{name}}}\n{extra}\
         status: {{phase: '{phase}'}}\n"
    )))
}

/// A claim `c` (uid u1) in namespace d; `spec` and `meta` are more of each (flow-style entries).
fn pvc(spec: &str, meta: &str) -> PersistentVolumeClaim {
    from_yaml(&format!(
        "metadata: {{name: c, namespace: d, uid: u1{meta}}}\nspec: {{accessModes: [ReadWriteOnce], resources: \
         {{requests: {{storage: 1Gi}}}}{spec}}}\n"
    ))
}

fn class(name: &str, provisioner: &str, mode: &str, meta: &str) -> Arc<StorageClass> {
    Arc::new(from_yaml(&format!(
        "metadata: {{name: {name}{meta}}}\nprovisioner: {provisioner}\nvolumeBindingMode: {mode}\n"
    )))
}

fn step(
    claim: &PersistentVolumeClaim,
    volumes: &[Arc<PersistentVolume>],
    classes: &[Arc<StorageClass>],
) -> ClaimStep {
    claim_step(claim, &ClaimView { volumes, classes, pods: &[] })
}

fn failed_binding() -> ClaimStep {
    ClaimStep::Pending(Some(Note::normal(
        "FailedBinding",
        "no persistent volumes available for this claim and no storage class is set",
    )))
}

#[test]
fn unbound_claims_take_the_smallest_available_fit() {
    let vols = [
        pv("big", "10Gi", "", "", "Available"),
        pv("small", "500Mi", "", "", "Available"),
        pv("fit", "2Gi", "", "", "Available"),
        pv("pending", "1Gi", "", "", "Pending"),
        pv("taken", "1Gi", "", "  claimRef: {name: other, namespace: d, uid: u9}\n", "Bound"),
    ];
    let claim = pvc(", storageClassName: ''", "");
    assert_eq!(step(&claim, &vols, &[]), ClaimStep::Bind("fit".into()));
    // Larger than any volume, no class: Pending with Kubernetes' event.
    let huge: PersistentVolumeClaim = from_yaml(
        "metadata: {name: c, namespace: d}\nspec: {accessModes: [ReadWriteOnce], storageClassName: '', resources: {requests: {storage: 20Gi}}}\n",
    );
    assert_eq!(step(&huge, &vols, &[]), failed_binding());
    // A volume pre-bound to the claim wins even while Pending (a crash after the volume's claimRef).
    let mine = pv("mine", "5Gi", "", "  claimRef: {name: c, namespace: d, uid: u1}\n", "Pending");
    assert_eq!(step(&claim, &[vols[2].clone(), mine], &[]), ClaimStep::Bind("mine".into()));
}

#[test]
fn claims_of_classes_are_provisioned_or_refused() {
    let missing = pvc(", storageClassName: fast", "");
    assert_eq!(
        step(&missing, &[], &[]),
        ClaimStep::Event(Note::warning(
            "ProvisioningFailed",
            "storageclass.storage.k8s.io \"fast\" not found"
        ))
    );
    let immediate = class("fast", "example.com/nfs", "Immediate", "");
    assert_eq!(step(&missing, &[], &[immediate]), ClaimStep::Provision("example.com/nfs".into()));
    let intree = class("fast", "kubernetes.io/no-provisioner", "Immediate", "");
    assert_eq!(
        step(&missing, &[], &[intree]),
        ClaimStep::Event(Note::warning(
            "ProvisioningFailed",
            "no volume plugin matched name: kubernetes.io/no-provisioner"
        ))
    );
    // A static volume of the class still comes first.
    let vol = pv("static", "1Gi", "fast", "", "Available");
    assert_eq!(
        step(&missing, &[vol], &[class("fast", "example.com/nfs", "Immediate", "")]),
        ClaimStep::Bind("static".into())
    );
}

#[test]
fn wait_for_first_consumer_claims_wait_for_the_scheduler() {
    let local = class("local-path", "navarch.io/local-path", "WaitForFirstConsumer", "");
    let claim = pvc(", storageClassName: local-path", "");
    let static_pv = pv("static", "1Gi", "local-path", "", "Available");
    let waiting = ClaimStep::Pending(Some(Note::normal(
        "WaitForFirstConsumer",
        "waiting for first consumer to be created before binding",
    )));
    // Static volumes are the scheduler's to bind: the controller does not take them.
    assert_eq!(step(&claim, std::slice::from_ref(&static_pv), std::slice::from_ref(&local)), waiting);
    // An unscheduled pod using the claim is named.
    let pod: Arc<Pod> = Arc::new(from_yaml(
        "metadata: {name: p, namespace: d}\nspec: {containers: [{name: c}], volumes: [{name: v, persistentVolumeClaim: {claimName: c}}]}\n",
    ));
    let view = ClaimView { volumes: &[], classes: std::slice::from_ref(&local), pods: &[pod] };
    assert_eq!(
        claim_step(&claim, &view),
        ClaimStep::Pending(Some(Note::normal("WaitForPodScheduled", "waiting for pod p to be scheduled")))
    );
    // Once the scheduler picked a node: a volume it pre-bound, else the provisioner.
    let selected =
        pvc(", storageClassName: local-path", ", annotations: {volume.kubernetes.io/selected-node: n1}");
    assert_eq!(
        step(&selected, &[static_pv], std::slice::from_ref(&local)),
        ClaimStep::Provision("navarch.io/local-path".into())
    );
    let prebound =
        pv("pvc-u1", "1Gi", "local-path", "  claimRef: {name: c, namespace: d, uid: u1}\n", "Pending");
    assert_eq!(step(&selected, &[prebound], &[local]), ClaimStep::Bind("pvc-u1".into()));
}

#[test]
fn claims_without_a_class_get_the_newest_default() {
    let old = class(
        "old",
        "navarch.io/local-path",
        "Immediate",
        ", creationTimestamp: '2026-01-01T00:00:00Z', annotations: {storageclass.kubernetes.io/is-default-class: 'true'}",
    );
    let new = class(
        "new",
        "navarch.io/local-path",
        "Immediate",
        ", creationTimestamp: '2026-02-01T00:00:00Z', annotations: {storageclass.kubernetes.io/is-default-class: 'true'}",
    );
    let plain = class("plain", "x.io/p", "Immediate", "");
    let classes = [old, new, plain];
    let unnamed = pvc("", "");
    assert_eq!(step(&unnamed, &[], &classes), ClaimStep::AssignClass("new".into()));
    // storageClassName "" asks for no class: not defaulted.
    assert_eq!(step(&pvc(", storageClassName: ''", ""), &[], &classes), failed_binding());
}

#[test]
fn claims_asking_for_a_volume_by_name() {
    let claim = pvc(", storageClassName: '', volumeName: v", "");
    assert_eq!(step(&claim, &[], &[]), ClaimStep::Pending(None));
    let small = pv("v", "500Mi", "", "", "Available");
    assert_eq!(
        step(&claim, &[small], &[]),
        ClaimStep::Pending(Some(Note::warning(
            "VolumeMismatch",
            "Cannot bind to requested volume \"v\": requested PV is too small"
        )))
    );
    let other_class = pv("v", "1Gi", "gold", "", "Available");
    assert!(
        matches!(step(&claim, &[other_class], &[]), ClaimStep::Pending(Some(n)) if n.message.ends_with("storageClassName does not match"))
    );
    assert_eq!(step(&claim, &[pv("v", "1Gi", "", "", "Available")], &[]), ClaimStep::Bind("v".into()));
    let taken = pv("v", "1Gi", "", "  claimRef: {name: other, namespace: d, uid: u9}\n", "Bound");
    let note = Note::warning("FailedBinding", "volume \"v\" already bound to a different claim.");
    assert_eq!(step(&claim, std::slice::from_ref(&taken), &[]), ClaimStep::Pending(Some(note.clone())));
    let by_controller = pvc(
        ", storageClassName: '', volumeName: v",
        ", annotations: {pv.kubernetes.io/bound-by-controller: 'yes'}",
    );
    assert_eq!(step(&by_controller, &[taken], &[]), ClaimStep::Refuse(note));
}

#[test]
fn bound_claims_stay_bound_or_are_lost() {
    let done = ", annotations: {pv.kubernetes.io/bind-completed: 'yes'}";
    let claim = pvc(", storageClassName: '', volumeName: v", done);
    let mine = pv("v", "1Gi", "", "  claimRef: {name: c, namespace: d, uid: u1}\n", "Bound");
    assert_eq!(step(&claim, &[mine], &[]), ClaimStep::Bind("v".into()));
    assert_eq!(step(&claim, &[pv("v", "1Gi", "", "", "Available")], &[]), ClaimStep::Bind("v".into()));
    assert_eq!(
        step(&claim, &[], &[]),
        ClaimStep::Lost(Note::warning(
            "ClaimLost",
            "Bound claim has lost its PersistentVolume. Data on the volume is lost!"
        ))
    );
    assert_eq!(
        step(&pvc(", storageClassName: ''", done), &[], &[]),
        ClaimStep::Lost(Note::warning(
            "ClaimLost",
            "Bound claim has lost reference to PersistentVolume. Data on the volume is lost!"
        ))
    );
    let theirs = pv("v", "1Gi", "", "  claimRef: {name: c, namespace: d, uid: u0}\n", "Bound");
    assert!(matches!(step(&claim, &[theirs], &[]), ClaimStep::Lost(n) if n.reason == "ClaimMisbound"));
}

#[test]
fn volumes_follow_their_claims() {
    assert_eq!(volume_step(&pv("v", "1Gi", "", "", "Pending"), None), VolumeStep::Phase("Available"));
    let prebound = pv("v", "1Gi", "", "  claimRef: {name: c, namespace: d}\n", "Pending");
    assert_eq!(volume_step(&prebound, None), VolumeStep::Phase("Available"));
    let bound = pv("v", "1Gi", "", "  claimRef: {name: c, namespace: d, uid: u1}\n", "Available");
    let unbound_claim = pvc(", storageClassName: ''", "");
    assert_eq!(volume_step(&bound, Some(&unbound_claim)), VolumeStep::WaitForClaim);
    let block = pvc(", storageClassName: '', volumeMode: Block", "");
    assert!(matches!(volume_step(&bound, Some(&block)), VolumeStep::Mismatch { .. }));
    let claim = pvc(", storageClassName: '', volumeName: v", "");
    assert_eq!(volume_step(&bound, Some(&claim)), VolumeStep::Phase("Bound"));
    // The claim got another volume: the controller's binding is undone.
    let elsewhere = pvc(", storageClassName: '', volumeName: w", "");
    assert_eq!(volume_step(&bound, Some(&elsewhere)), VolumeStep::Unbind);
    // The claim is gone: Retain keeps it Released.
    assert_eq!(volume_step(&bound, None), VolumeStep::Release(Reclaim::Nothing));
}

#[test]
fn reclaim_policies() {
    let with = |policy: &str, meta: &str| -> Arc<PersistentVolume> {
        Arc::new(from_yaml(&format!(
            "metadata: {{name: v{meta}}}\nspec: {{capacity: {{storage: 1Gi}}, persistentVolumeReclaimPolicy: {policy}, \
             hostPath: {{path: /srv/v}}, claimRef: {{name: c, namespace: d, uid: u1}}}}\nstatus: {{phase: Bound}}\n"
        )))
    };
    let released = |p: &PersistentVolume| match volume_step(p, None) {
        VolumeStep::Release(r) => r,
        other => panic!("{other:?}"),
    };
    assert_eq!(
        released(&with("Delete", "")),
        Reclaim::Fail(Note::warning(
            "VolumeFailedDelete",
            "error getting deleter volume plugin for volume \"v\": no deletable volume plugin matched"
        ))
    );
    let provisioned =
        with("Delete", ", annotations: {pv.kubernetes.io/provisioned-by: navarch.io/local-path}");
    assert_eq!(released(&provisioned), Reclaim::Nothing);
    assert_eq!(
        released(&with("Recycle", "")),
        Reclaim::Fail(Note::warning("VolumeFailedRecycle", "No recycler plugin found for the volume!"))
    );
    assert!(
        matches!(released(&with("Shred", "")), Reclaim::Fail(n) if n.reason == "VolumeUnknownReclaimPolicy")
    );
    // A volume provisioned for a claim that got another volume is released for its deleter.
    let elsewhere = pvc(", volumeName: w", "");
    assert_eq!(volume_step(&provisioned, Some(&elsewhere)), VolumeStep::Release(Reclaim::Nothing));
}

#[test]
fn binding_writes_as_kubernetes() {
    let claim = pvc(", storageClassName: ''", ", resourceVersion: '7'");
    let free = pv("v", "2Gi", "", "", "Available");
    let bound = bind_volume_to_claim(&free, &claim).expect("claimRef written");
    let spec = bound.spec.as_ref().unwrap();
    let r = spec.claim_ref.as_ref().unwrap();
    assert_eq!(
        (r.kind.as_str(), r.api_version.as_str(), r.namespace.as_str(), r.name.as_str(), r.uid.as_str()),
        ("PersistentVolumeClaim", "v1", "d", "c", "u1")
    );
    assert_eq!(r.resource_version, "7");
    assert_eq!(
        bound.meta().annotations.get("pv.kubernetes.io/bound-by-controller").map(String::as_str),
        Some("yes")
    );
    assert!(bind_volume_to_claim(&bound, &claim).is_none(), "already bound: nothing to write");
    // A user's pre-binding gets the UID, not the annotation.
    let prebound = pv("v", "2Gi", "", "  claimRef: {name: c, namespace: d}\n", "Available");
    let done = bind_volume_to_claim(&prebound, &claim).unwrap();
    assert_eq!(done.spec.as_ref().unwrap().claim_ref.as_ref().unwrap().uid, "u1");
    assert!(!done.meta().annotations.contains_key("pv.kubernetes.io/bound-by-controller"));

    let c = claim_bound_to(&claim, "v").unwrap();
    assert_eq!(c.spec.as_ref().unwrap().volume_name, "v");
    let a = &c.meta().annotations;
    assert_eq!((a.get("pv.kubernetes.io/bind-completed").map(String::as_str)), Some("yes"));
    assert_eq!((a.get("pv.kubernetes.io/bound-by-controller").map(String::as_str)), Some("yes"));
    assert!(claim_bound_to(&c, "v").is_none());
    // A claim that named its volume is only marked complete.
    let named = claim_bound_to(&pvc(", volumeName: v", ""), "v").unwrap();
    assert!(!named.meta().annotations.contains_key("pv.kubernetes.io/bound-by-controller"));

    let s = claim_status(&c, "Bound", Some(&bound)).unwrap().unwrap();
    let st = s.status.as_ref().unwrap();
    assert_eq!(st.phase, "Bound");
    assert_eq!(st.access_modes, ["ReadWriteOnce"]);
    assert_eq!(st.capacity.get("storage").map(|q| q.string.as_str()), Some("2Gi"));
    assert!(claim_status(&s, "Bound", Some(&bound)).unwrap().is_none());
    let lost = claim_status(&s, "Lost", None).unwrap().unwrap();
    let st = lost.status.as_ref().unwrap();
    assert!(st.capacity.is_empty() && st.access_modes.is_empty() && st.phase == "Lost");
    let no_capacity: PersistentVolume =
        from_yaml("metadata: {name: v}\nspec: {accessModes: [ReadWriteOnce]}\n");
    assert_eq!(
        claim_status(&c, "Bound", Some(&no_capacity)).unwrap_err().to_string(),
        "PersistentVolume \"v\" is without a storage capacity"
    );
}

#[test]
fn protection_finalizers() {
    let live = pvc("", "");
    assert_eq!(finalizer_step(&live, "kubernetes.io/pvc-protection", || true), Finalizer::Add);
    let kept = pvc("", ", finalizers: [kubernetes.io/pvc-protection]");
    assert_eq!(finalizer_step(&kept, "kubernetes.io/pvc-protection", || false), Finalizer::Keep);
    let deleting =
        pvc("", ", deletionTimestamp: '2026-01-01T00:00:00Z', finalizers: [kubernetes.io/pvc-protection]");
    assert_eq!(finalizer_step(&deleting, "kubernetes.io/pvc-protection", || true), Finalizer::Keep);
    assert_eq!(finalizer_step(&deleting, "kubernetes.io/pvc-protection", || false), Finalizer::Remove);

    let pod = |meta: &str, node: &str, phase: &str, volumes: &str| -> Pod {
        from_yaml(&format!(
            "metadata: {{name: p, namespace: d, uid: pod-uid{meta}}}\nspec: {{nodeName: '{node}', containers: [{{name: c}}], volumes: [{volumes}]}}\nstatus: {{phase: '{phase}'}}\n"
        ))
    };
    let uses = "{name: v, persistentVolumeClaim: {claimName: c}}";
    assert!(pod_uses_claim(&pod("", "n1", "Running", uses), &live));
    assert!(!pod_uses_claim(&pod("", "", "Pending", uses), &live), "unscheduled pods do not count");
    assert!(!pod_uses_claim(&pod("", "n1", "Succeeded", uses), &live));
    assert!(!pod_uses_claim(&pod("", "n1", "Failed", uses), &live));
    // Generic ephemeral volume: the claim <pod>-<volume> the pod owns.
    let eph = "{name: v, ephemeral: {volumeClaimTemplate: {spec: {accessModes: [ReadWriteOnce]}}}}";
    let owned: PersistentVolumeClaim = from_yaml(
        "metadata: {name: p-v, namespace: d, ownerReferences: [{apiVersion: v1, kind: Pod, name: p, uid: pod-uid, controller: true}]}\n",
    );
    assert!(pod_uses_claim(&pod("", "n1", "Running", eph), &owned));
    let stranger: PersistentVolumeClaim = from_yaml("metadata: {name: p-v, namespace: d}\n");
    assert!(!pod_uses_claim(&pod("", "n1", "Running", eph), &stranger));
    let force_deleted = ", deletionTimestamp: '2026-01-01T00:00:00Z', deletionGracePeriodSeconds: 0";
    assert!(!pod_uses_claim(&pod(force_deleted, "n1", "Running", eph), &owned));
    assert_eq!(
        claims_of_pod(&pod("", "n1", "Running", &format!("{uses}, {eph}, {{name: e, emptyDir: {{}}}}"))),
        ["c", "p-v"]
    );
}

#[test]
fn the_default_class() {
    let sc = local_path_class();
    assert_eq!((sc.api_version.as_str(), sc.kind.as_str()), ("storage.k8s.io/v1", "StorageClass"));
    assert_eq!(sc.meta().name, "local-path");
    assert_eq!(sc.provisioner, "navarch.io/local-path");
    assert_eq!(sc.reclaim_policy.as_deref(), Some("Delete"));
    assert_eq!(sc.volume_binding_mode.as_deref(), Some("WaitForFirstConsumer"));
    assert!(navarch_api::storage::is_default_class(&sc));
}
