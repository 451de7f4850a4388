//! `persistentVolumeClaim` and generic `ephemeral` volumes: from the pod's volume to its claim
//! (`<pod>-<volume>` for an ephemeral one, which must be the pod's own), to the PersistentVolume the claim
//! is bound to, to what to set up on the host ([`MountPlan`]: a `hostPath`, `local` or `nfs` source,
//! read-only when the pod's claim source or the volume says so). The checks and their messages are those
//! of Kubernetes' desired-state-of-world populator (`error processing PVC default/data: PVC is not
//! bound`); until they pass the pod waits in ContainerCreating.

use navarch_api::v1::{HostPathVolumeSource, PersistentVolume, PersistentVolumeClaim, Pod, Volume};

use super::Sources;

/// The claim a pod volume uses.
#[derive(Debug, Clone, PartialEq)]
pub struct ClaimUse {
    /// The claim's name, in the pod's namespace.
    pub name: String,
    /// `persistentVolumeClaim.readOnly`.
    pub read_only: bool,
    /// A generic ephemeral volume's claim: it must be controlled by the pod.
    pub ephemeral: bool,
}

/// The claim of a `persistentVolumeClaim` or generic `ephemeral` volume (Kubernetes'
/// `ephemeral.VolumeClaimName`: `<pod name>-<volume name>`); `None` for other volumes.
pub fn claim_of(pod: &Pod, v: &Volume) -> Option<ClaimUse> {
    if let Some(c) = &v.persistent_volume_claim {
        return Some(ClaimUse { name: c.claim_name.clone(), read_only: c.read_only, ephemeral: false });
    }
    v.ephemeral.as_ref()?;
    let pod_name = pod.metadata.as_ref().map(|m| m.name.as_str()).unwrap_or_default();
    Some(ClaimUse { name: format!("{pod_name}-{}", v.name), read_only: false, ephemeral: true })
}

/// What backs a claim's volume on this node.
#[derive(Debug, Clone, PartialEq)]
pub enum Backing {
    /// A directory (or file) of the node, as an inline hostPath volume.
    HostPath(HostPathVolumeSource),
    /// A local disk or directory that must exist.
    Local { path: String },
    /// An NFS export, mounted with the host's `mount -t nfs` into the pod's volume directory.
    Nfs { server: String, path: String },
}

/// How to set up one claim's volume for the pod.
#[derive(Debug, Clone, PartialEq)]
pub struct MountPlan {
    /// The PersistentVolume's name (Kubernetes' events name the volume by it).
    pub volume: String,
    pub backing: Backing,
    /// Containers mount it read-only (the claim source's or the volume source's `readOnly`).
    pub read_only: bool,
    /// The volume's `mountOptions` (used by mounts made here: NFS).
    pub mount_options: Vec<String>,
}

/// Kubernetes' `getPVCExtractPV`: the claim may be used (it exists, is the pod's own if ephemeral, is
/// not being deleted, is bound); returns the bound volume's name.
pub fn check_claim(
    pod: &Pod,
    claim: &ClaimUse,
    pvc: Option<&PersistentVolumeClaim>,
) -> Result<String, String> {
    let Some(pvc) = pvc else {
        return Err(format!(
            "failed to fetch PVC from API server: persistentvolumeclaims {:?} not found",
            claim.name
        ));
    };
    let meta = pvc.metadata.clone().unwrap_or_default();
    if claim.ephemeral {
        let pod_meta = pod.metadata.clone().unwrap_or_default();
        let owned = meta
            .owner_references
            .iter()
            .any(|r| r.controller == Some(true) && r.kind == "Pod" && r.uid == pod_meta.uid);
        if meta.namespace != pod_meta.namespace || !owned {
            return Err(format!(
                "PVC {}/{} was not created for pod {}/{} (pod is not owner)",
                meta.namespace, meta.name, pod_meta.namespace, pod_meta.name
            ));
        }
    }
    if !meta.deletion_timestamp.is_empty() {
        return Err("PVC is being deleted".into());
    }
    if pvc.status.as_ref().map(|s| s.phase.as_str()) != Some("Bound") {
        return Err("PVC is not bound".into());
    }
    let volume_name = pvc.spec.as_ref().map(|s| s.volume_name.clone()).unwrap_or_default();
    if volume_name.is_empty() {
        return Err("PVC has empty pvc.Spec.VolumeName".into());
    }
    Ok(volume_name)
}

/// Kubernetes' `getPVSpec` and the volume plugins' choice: the volume is bound to this claim and has a
/// source this kubelet mounts.
pub fn plan(
    volume_name: &str,
    claim_uid: &str,
    claim: &ClaimUse,
    pod_volume: &str,
    pv: Option<&PersistentVolume>,
) -> Result<MountPlan, String> {
    let Some(pv) = pv else {
        return Err(format!(
            "failed to fetch PV {volume_name} from API server: persistentvolumes {volume_name:?} not found"
        ));
    };
    let spec = pv.spec.clone().unwrap_or_default();
    let Some(claim_ref) = &spec.claim_ref else {
        return Err(format!(
            "found PV object {volume_name} but it has a nil pv.Spec.ClaimRef indicating it is not yet bound to the claim"
        ));
    };
    if claim_ref.uid != claim_uid {
        return Err(format!(
            "found PV object {volume_name} but its pv.Spec.ClaimRef.UID {} does not point to claim.UID {claim_uid}",
            claim_ref.uid
        ));
    }
    let mode = spec.volume_mode.as_deref().filter(|m| !m.is_empty()).unwrap_or("Filesystem");
    if mode != "Filesystem" {
        return Err(format!("volume {pod_volume} has volumeMode {mode}, but is specified in volumeMounts"));
    }
    let (backing, source_read_only) = if let Some(h) = spec.host_path {
        (Backing::HostPath(h), false)
    } else if let Some(l) = spec.local {
        (Backing::Local { path: l.path }, false)
    } else if let Some(n) = spec.nfs {
        (Backing::Nfs { server: n.server, path: n.path }, n.read_only)
    } else {
        return Err(format!(
            "PV {volume_name}: this volume type is not supported by this kubelet (hostPath, local and nfs are)"
        ));
    };
    Ok(MountPlan {
        volume: volume_name.to_string(),
        backing,
        read_only: claim.read_only || source_read_only,
        mount_options: spec.mount_options,
    })
}

/// The plan of a claim volume, from the api-server; an error is Kubernetes' `error processing PVC
/// <namespace>/<claim>: ...`.
pub async fn resolve<S: Sources>(
    pod: &Pod,
    pod_volume: &str,
    claim: &ClaimUse,
    sources: &S,
) -> Result<MountPlan, String> {
    let ns = pod.metadata.as_ref().map(|m| m.namespace.as_str()).unwrap_or_default();
    let processing = |e: String| format!("error processing PVC {ns}/{}: {e}", claim.name);
    let pvc = sources
        .claim(ns, &claim.name)
        .await
        .map_err(|e| processing(format!("failed to fetch PVC from API server: {e}")))?;
    let volume_name = check_claim(pod, claim, pvc.as_ref()).map_err(processing)?;
    let claim_uid = pvc.as_ref().and_then(|c| c.metadata.as_ref()).map(|m| m.uid.clone()).unwrap_or_default();
    let pv = sources
        .persistent_volume(&volume_name)
        .await
        .map_err(|e| processing(format!("failed to fetch PV {volume_name} from API server: {e}")))?;
    plan(&volume_name, &claim_uid, claim, pod_volume, pv.as_ref()).map_err(processing)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn yaml<T: serde::de::DeserializeOwned>(y: &str) -> T {
        serde_yaml::from_str(y).unwrap()
    }

    fn pod() -> Pod {
        yaml(
            "metadata: {name: web, namespace: ns, uid: pod-uid}\nspec: {containers: [], volumes: [\
             {name: data, persistentVolumeClaim: {claimName: data-web, readOnly: true}}, \
             {name: scratch, ephemeral: {volumeClaimTemplate: {spec: {}}}}, {name: e, emptyDir: {}}]}",
        )
    }

    fn claim(extra: &str) -> PersistentVolumeClaim {
        yaml(&format!(
            "metadata: {{name: data-web, namespace: ns, uid: claim-uid{extra}}}\nspec: {{volumeName: pv-1}}\n\
             status: {{phase: Bound}}"
        ))
    }

    #[test]
    fn claims_of_pod_volumes() {
        let p = pod();
        let vols = &p.spec.as_ref().unwrap().volumes;
        assert_eq!(
            claim_of(&p, &vols[0]),
            Some(ClaimUse { name: "data-web".into(), read_only: true, ephemeral: false })
        );
        assert_eq!(
            claim_of(&p, &vols[1]),
            Some(ClaimUse { name: "web-scratch".into(), read_only: false, ephemeral: true })
        );
        assert_eq!(claim_of(&p, &vols[2]), None);
    }

    #[test]
    fn claims_must_be_bound_and_ephemeral_ones_owned() {
        let p = pod();
        let data = ClaimUse { name: "data-web".into(), read_only: false, ephemeral: false };
        assert_eq!(check_claim(&p, &data, Some(&claim(""))), Ok("pv-1".to_string()));
        assert_eq!(
            check_claim(&p, &data, None).unwrap_err(),
            "failed to fetch PVC from API server: persistentvolumeclaims \"data-web\" not found"
        );
        let mut pending = claim("");
        pending.status.as_mut().unwrap().phase = "Pending".into();
        assert_eq!(check_claim(&p, &data, Some(&pending)).unwrap_err(), "PVC is not bound");
        let deleting = claim(", deletionTimestamp: '2024-01-01T00:00:00Z'");
        assert_eq!(check_claim(&p, &data, Some(&deleting)).unwrap_err(), "PVC is being deleted");
        let mut unnamed = claim("");
        unnamed.spec.as_mut().unwrap().volume_name.clear();
        assert_eq!(check_claim(&p, &data, Some(&unnamed)).unwrap_err(), "PVC has empty pvc.Spec.VolumeName");
        let eph = ClaimUse { name: "data-web".into(), read_only: false, ephemeral: true };
        assert_eq!(
            check_claim(&p, &eph, Some(&claim(""))).unwrap_err(),
            "PVC ns/data-web was not created for pod ns/web (pod is not owner)"
        );
        let owned = claim(
            ", ownerReferences: [{apiVersion: v1, kind: Pod, name: web, uid: pod-uid, controller: true}]",
        );
        assert_eq!(check_claim(&p, &eph, Some(&owned)), Ok("pv-1".to_string()));
    }

    fn volume(source: &str) -> PersistentVolume {
        yaml(&format!(
            "metadata: {{name: pv-1}}\nspec: {{{source}, claimRef: {{name: data-web, namespace: ns, uid: claim-uid}}, \
             mountOptions: [nfsvers=4.1]}}"
        ))
    }

    #[test]
    fn volumes_to_mount_plans() {
        let rw = ClaimUse { name: "data-web".into(), read_only: false, ephemeral: false };
        let ro = ClaimUse { read_only: true, ..rw.clone() };
        let host = plan(
            "pv-1",
            "claim-uid",
            &rw,
            "data",
            Some(&volume("hostPath: {path: /srv/a, type: DirectoryOrCreate}")),
        )
        .unwrap();
        assert_eq!(
            host.backing,
            Backing::HostPath(HostPathVolumeSource {
                path: "/srv/a".into(),
                r#type: Some("DirectoryOrCreate".into())
            })
        );
        assert!(!host.read_only);
        let local =
            plan("pv-1", "claim-uid", &ro, "data", Some(&volume("local: {path: /mnt/disk}"))).unwrap();
        assert_eq!((local.backing, local.read_only), (Backing::Local { path: "/mnt/disk".into() }, true));
        let nfs = plan(
            "pv-1",
            "claim-uid",
            &rw,
            "data",
            Some(&volume("nfs: {server: 10.0.0.5, path: /exports/a, readOnly: true}")),
        )
        .unwrap();
        assert_eq!(nfs.backing, Backing::Nfs { server: "10.0.0.5".into(), path: "/exports/a".into() });
        assert!(nfs.read_only, "the volume source's readOnly");
        assert_eq!(nfs.mount_options, vec!["nfsvers=4.1".to_string()]);
        assert_eq!(
            plan("pv-1", "other-uid", &rw, "data", Some(&volume("local: {path: /x}"))).unwrap_err(),
            "found PV object pv-1 but its pv.Spec.ClaimRef.UID claim-uid does not point to claim.UID other-uid"
        );
        let unbound: PersistentVolume = yaml("metadata: {name: pv-1}\nspec: {local: {path: /x}}");
        assert!(
            plan("pv-1", "claim-uid", &rw, "data", Some(&unbound))
                .unwrap_err()
                .contains("nil pv.Spec.ClaimRef")
        );
        assert_eq!(
            plan("pv-1", "claim-uid", &rw, "data", None).unwrap_err(),
            "failed to fetch PV pv-1 from API server: persistentvolumes \"pv-1\" not found"
        );
        let block = volume("local: {path: /dev/sdb}, volumeMode: Block");
        assert_eq!(
            plan("pv-1", "claim-uid", &rw, "data", Some(&block)).unwrap_err(),
            "volume data has volumeMode Block, but is specified in volumeMounts"
        );
        let csi = volume("csi: {driver: d, volumeHandle: h}");
        assert!(plan("pv-1", "claim-uid", &rw, "data", Some(&csi)).unwrap_err().contains("not supported"));
    }
}
