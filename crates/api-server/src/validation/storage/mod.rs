//! Persistent storage kinds: core/v1 PersistentVolume and PersistentVolumeClaim, storage.k8s.io/v1
//! StorageClass. Kubernetes' defaults (`SetDefaults_PersistentVolume`, `SetDefaults_PersistentVolumeClaim`,
//! `SetDefaults_StorageClass`), what their strategies do on create and status writes (a new volume or claim
//! starts `Pending`; a volume's `lastPhaseTransitionTime` follows its phase; `volumeAttributesClassName` is
//! dropped, the VolumeAttributesClass feature being off in 1.32), and validation with Kubernetes' messages
//! (`ValidatePersistentVolume(Update)`, `ValidatePersistentVolumeClaim(Update)`,
//! `ValidatePersistentVolumeClaimStatusUpdate`, `ValidateStorageClass(Update)`).
//!
//! A claim's spec is checked by `pod::validate_pvc_spec` (shared with ephemeral volumes); the volume
//! sources PersistentVolumes share with pods (`hostPath`, `nfs`) by the pod module's checks.

use std::collections::BTreeMap;

use navarch_api::Object;
use navarch_api::names;
use navarch_api::quantity;
use navarch_api::storage::ANN_BETA_STORAGE_CLASS;
use navarch_api::v1::*;

use super::field::{Errors, Path, changed_paths, q, set_if_empty};
use super::pod;

#[cfg(test)]
mod tests;

/// `persistentVolumeReclaimPolicy` values, sorted as Kubernetes lists them.
const RECLAIM_POLICIES: &[&str] = &["Delete", "Recycle", "Retain"];
/// The reclaim policies a StorageClass may name.
const CLASS_RECLAIM_POLICIES: &[&str] = &["Delete", "Retain"];
const VOLUME_MODES: &[&str] = &["Block", "Filesystem"];
const BINDING_MODES: &[&str] = &["Immediate", "WaitForFirstConsumer"];
/// Most parameters a StorageClass may have, and their largest total size (keys and values).
const MAX_PARAMETERS: usize = 512;
const MAX_PARAMETERS_SIZE: usize = 256 << 10;

// ---------------------------------------------------------------------------------------------------------
// Defaults, and what the strategies set
// ---------------------------------------------------------------------------------------------------------

pub(super) fn default_persistent_volume(pv: &mut PersistentVolume) {
    let spec = pv.spec.get_or_insert_with(Default::default);
    set_if_empty(&mut spec.persistent_volume_reclaim_policy, "Retain");
    spec.volume_mode.get_or_insert_with(|| "Filesystem".into());
    if let Some(h) = spec.host_path.as_mut() {
        h.r#type.get_or_insert_with(String::new);
    }
    if let Some(i) = spec.iscsi.as_mut() {
        set_if_empty(&mut i.iscsi_interface, "default");
    }
    if let Some(r) = spec.rbd.as_mut() {
        set_if_empty(&mut r.pool, "rbd");
        set_if_empty(&mut r.user, "admin");
        set_if_empty(&mut r.keyring, "/etc/ceph/keyring");
    }
    set_if_empty(&mut pv.status.get_or_insert_with(Default::default).phase, "Pending");
}

pub(super) fn default_persistent_volume_claim(pvc: &mut PersistentVolumeClaim) {
    pod::default_pvc_spec(pvc.spec.get_or_insert_with(Default::default));
    set_if_empty(&mut pvc.status.get_or_insert_with(Default::default).phase, "Pending");
}

pub(super) fn default_storage_class(sc: &mut StorageClass) {
    sc.reclaim_policy.get_or_insert_with(|| "Delete".into());
    sc.volume_binding_mode.get_or_insert_with(|| "Immediate".into());
}

/// On create (`old` None): a volume or claim starts with Kubernetes' initial status (a volume `Pending`
/// since `now`); `volumeAttributesClassName` is dropped unless the stored object already had one.
pub(super) fn prepare_write(obj: &mut Object, old: Option<&Object>, now: &str) {
    let keep_class = old.is_some_and(|o| volume_attributes_class(o).is_some());
    let create = old.is_none();
    match obj {
        Object::PersistentVolume(pv) => {
            if let Some(spec) = pv.spec.as_mut().filter(|_| !keep_class) {
                spec.volume_attributes_class_name = None;
            }
            if create {
                pv.status = Some(PersistentVolumeStatus {
                    phase: "Pending".into(),
                    last_phase_transition_time: now.into(),
                    ..Default::default()
                });
            }
        }
        Object::PersistentVolumeClaim(pvc) => {
            if let Some(spec) = pvc.spec.as_mut() {
                if !keep_class {
                    spec.volume_attributes_class_name = None;
                }
                if create {
                    normalize_data_sources(spec);
                }
            }
            if create {
                pvc.status =
                    Some(PersistentVolumeClaimStatus { phase: "Pending".into(), ..Default::default() });
            }
        }
        _ => {}
    }
}

/// The `volumeAttributesClassName` of a volume or claim.
fn volume_attributes_class(o: &Object) -> Option<&String> {
    match o {
        Object::PersistentVolume(pv) => pv.spec.as_ref()?.volume_attributes_class_name.as_ref(),
        Object::PersistentVolumeClaim(pvc) => pvc.spec.as_ref()?.volume_attributes_class_name.as_ref(),
        _ => None,
    }
}

/// A status write of a volume: `lastPhaseTransitionTime` is `now` when the phase changes (unless the writer
/// set a new time itself), and kept when it does not.
pub(super) fn prepare_status_write(new: &mut Object, old: &Object, now: &str) {
    let (Object::PersistentVolume(new), Object::PersistentVolume(old)) = (new, old) else { return };
    let old = old.status.clone().unwrap_or_default();
    let status = new.status.get_or_insert_with(Default::default);
    if status.phase == old.phase {
        if status.last_phase_transition_time.is_empty() {
            status.last_phase_transition_time = old.last_phase_transition_time;
        }
    } else if status.last_phase_transition_time.is_empty()
        || status.last_phase_transition_time == old.last_phase_transition_time
    {
        status.last_phase_transition_time = now.into();
    }
}

/// `dataSource` and `dataSourceRef` hold the same reference when only one is given (Kubernetes'
/// `NormalizeDataSources`): a claim filled from another claim or a snapshot shows it in both.
fn normalize_data_sources(spec: &mut PersistentVolumeClaimSpec) {
    match (&spec.data_source, &spec.data_source_ref) {
        (Some(d), None) => {
            spec.data_source_ref = Some(TypedObjectReference {
                api_group: d.api_group.clone(),
                kind: d.kind.clone(),
                name: d.name.clone(),
                namespace: None,
            })
        }
        (None, Some(r)) if r.namespace.as_deref().unwrap_or("").is_empty() => {
            spec.data_source = Some(TypedLocalObjectReference {
                api_group: r.api_group.clone(),
                kind: r.kind.clone(),
                name: r.name.clone(),
            })
        }
        _ => {}
    }
}

// ---------------------------------------------------------------------------------------------------------
// PersistentVolume
// ---------------------------------------------------------------------------------------------------------

pub(super) fn validate_persistent_volume(
    pv: &PersistentVolume,
    old: Option<&PersistentVolume>,
    errs: &mut Errors,
) {
    let default = PersistentVolumeSpec::default();
    let spec = pv.spec.as_ref().unwrap_or(&default);
    let path = Path::new("spec");
    let ap = path.child("accessModes");
    if spec.access_modes.is_empty() {
        errs.required(&ap, "");
    }
    pod::validate_access_modes(&spec.access_modes, &ap, errs);
    validate_capacity(&spec.capacity, &path.child("capacity"), errs);
    let policy = spec.persistent_volume_reclaim_policy.as_str();
    if !policy.is_empty() {
        errs.one_of(&path.child("persistentVolumeReclaimPolicy"), policy, RECLAIM_POLICIES);
    }
    let has_affinity = spec.node_affinity.is_some();
    if let Some(a) = &spec.node_affinity {
        let np = path.child("nodeAffinity").child("required");
        match &a.required {
            Some(required) => pod::validate_node_selector(required, &np, errs),
            None => errs.required(&np, "must specify required node constraints"),
        }
    }
    validate_volume_sources(spec, has_affinity, &path, errs);
    if let Some(h) = &spec.host_path
        && policy == "Recycle"
        && h.path.trim_end_matches('/').is_empty()
        && h.path.starts_with('/')
    {
        errs.forbidden(
            &path.child("persistentVolumeReclaimPolicy"),
            "may not be 'recycle' for a hostPath mount of '/'",
        );
    }
    if !spec.storage_class_name.is_empty() {
        let class = &spec.storage_class_name;
        errs.syntax(&path.child("storageClassName"), class, names::dns1123_subdomain(class));
    }
    if let Some(m) = spec.volume_mode.as_deref() {
        errs.one_of(&path.child("volumeMode"), m, VOLUME_MODES);
    }
    if let Some(old) = old {
        validate_persistent_volume_update(spec, old.spec.as_ref().unwrap_or(&default), errs);
    }
}

/// `spec.capacity`: required, `storage` only, each quantity positive.
fn validate_capacity(capacity: &BTreeMap<String, Quantity>, cp: &Path, errs: &mut Errors) {
    if capacity.is_empty() {
        errs.required(cp, "");
    }
    if !capacity.contains_key("storage") || capacity.len() > 1 {
        errs.add(
            cp,
            format!("Unsupported value: {}: supported values: \"storage\"", go_resource_list(capacity)),
        );
    }
    for (name, qty) in capacity {
        let p = cp.key(name);
        match quantity::parse(&qty.string) {
            Err(e) => errs.syntax(&p, &qty.string, vec![e.to_string()]),
            Ok(a) => {
                if a.is_negative() {
                    errs.invalid(&p, a.value(), "must be a valid resource quantity");
                }
                if a.0 <= 0 {
                    errs.invalid(&p, q(&qty.string), "must be greater than zero");
                }
            }
        }
    }
}

/// A resource list as Go's `%#v` prints it in Kubernetes' message (quantities by their text).
fn go_resource_list(list: &BTreeMap<String, Quantity>) -> String {
    if list.is_empty() {
        return "core.ResourceList(nil)".into();
    }
    let items: Vec<String> = list.iter().map(|(k, v)| format!("{}:{}", q(k), q(&v.string))).collect();
    format!("core.ResourceList{{{}}}", items.join(", "))
}

/// The volume sources: exactly one, each checked (Kubernetes' order; the second and later ones are
/// `Forbidden`, except `flexVolume`, which upstream counts without the check).
fn validate_volume_sources(spec: &PersistentVolumeSpec, has_affinity: bool, path: &Path, errs: &mut Errors) {
    // (set, field, the name of the path Kubernetes reports a second source at)
    let sources = [
        (spec.host_path.is_some(), "hostPath", "hostPath"),
        (spec.gce_persistent_disk.is_some(), "gcePersistentDisk", "gcePersistentDisk"),
        (spec.aws_elastic_block_store.is_some(), "awsElasticBlockStore", "awsElasticBlockStore"),
        (spec.glusterfs.is_some(), "glusterfs", "glusterfs"),
        (spec.flocker.is_some(), "flocker", "flocker"),
        (spec.nfs.is_some(), "nfs", "nfs"),
        (spec.rbd.is_some(), "rbd", "rbd"),
        (spec.quobyte.is_some(), "quobyte", "quobyte"),
        (spec.cephfs.is_some(), "cephfs", "cephFS"),
        (spec.iscsi.is_some(), "iscsi", "iscsi"),
        (spec.cinder.is_some(), "cinder", "cinder"),
        (spec.fc.is_some(), "fc", "fc"),
        (spec.flex_volume.is_some(), "flexVolume", ""),
        (spec.azure_file.is_some(), "azureFile", "azureFile"),
        (spec.vsphere_volume.is_some(), "vsphereVolume", "vsphereVolume"),
        (spec.photon_persistent_disk.is_some(), "photonPersistentDisk", "photonPersistentDisk"),
        (spec.portworx_volume.is_some(), "portworxVolume", "portworxVolume"),
        (spec.azure_disk.is_some(), "azureDisk", "azureDisk"),
        (spec.scale_io.is_some(), "scaleIO", "scaleIO"),
        (spec.local.is_some(), "local", "local"),
        (spec.storageos.is_some(), "storageos", "storageos"),
        (spec.csi.is_some(), "csi", "csi"),
    ];
    let mut count = 0;
    for (set, field, forbidden_at) in sources {
        if !set {
            continue;
        }
        if count > 0 && !forbidden_at.is_empty() {
            errs.forbidden(&path.child(forbidden_at), "may not specify more than 1 volume type");
            continue;
        }
        count += 1;
        validate_source(spec, field, has_affinity, &path.child(field), errs);
    }
    if count == 0 {
        errs.required(path, "must specify a volume type");
    }
}

fn validate_source(
    spec: &PersistentVolumeSpec,
    field: &str,
    has_affinity: bool,
    p: &Path,
    errs: &mut Errors,
) {
    match field {
        "hostPath" => pod::validate_host_path(spec.host_path.as_ref().unwrap(), p, errs),
        "nfs" => pod::validate_nfs(spec.nfs.as_ref().unwrap(), p, errs),
        "local" => {
            let local = spec.local.as_ref().unwrap();
            if local.path.is_empty() {
                errs.required(&p.child("path"), "");
            } else {
                pod::no_backsteps(&local.path, &p.child("path"), errs);
            }
            if !has_affinity {
                errs.required(
                    &Path::new("spec").child("nodeAffinity"),
                    "Local volume requires node affinity",
                );
            }
        }
        "iscsi" => {
            let i = spec.iscsi.as_ref().unwrap();
            if i.target_portal.is_empty() {
                errs.required(&p.child("targetPortal"), "");
            }
            if i.iqn.is_empty() {
                errs.required(&p.child("iqn"), "");
            }
            errs.in_range(&p.child("lun"), i.lun.into(), 0, 255);
        }
        "csi" => {
            let c = spec.csi.as_ref().unwrap();
            validate_csi_driver(&c.driver, &p.child("driver"), errs);
            if c.volume_handle.is_empty() {
                errs.required(&p.child("volumeHandle"), "");
            }
            for (name, r) in [
                ("controllerPublishSecretRef", &c.controller_publish_secret_ref),
                ("controllerExpandSecretRef", &c.controller_expand_secret_ref),
                ("nodePublishSecretRef", &c.node_publish_secret_ref),
                ("nodeExpandSecretRef", &c.node_expand_secret_ref),
            ] {
                if let Some(r) = r {
                    validate_secret_reference(r, &p.child(name), errs);
                }
            }
        }
        _ => {}
    }
}

/// `ValidateCSIDriverName`.
fn validate_csi_driver(driver: &str, p: &Path, errs: &mut Errors) {
    if driver.is_empty() {
        errs.required(p, "");
    }
    if driver.len() > 63 {
        errs.too_long(p, 63);
    }
    for reason in names::dns1123_subdomain(&driver.to_lowercase()) {
        let got = format!(", got {}", q(&driver.to_lowercase()));
        errs.invalid(p, q(driver), reason.strip_suffix(&got).unwrap_or(&reason));
    }
}

/// `validatePVSecretReference`: a name (DNS subdomain) and a namespace (DNS label).
fn validate_secret_reference(r: &SecretReference, p: &Path, errs: &mut Errors) {
    for (field, value, check) in [
        ("name", &r.name, names::dns1123_subdomain as fn(&str) -> Vec<String>),
        ("namespace", &r.namespace, names::dns1123_label),
    ] {
        if value.is_empty() {
            errs.required(&p.child(field), "");
        } else {
            errs.syntax(&p.child(field), value, check(value));
        }
    }
}

/// `ValidatePersistentVolumeUpdate`: the source and volume mode never change, node affinity once set
/// does not either.
fn validate_persistent_volume_update(
    spec: &PersistentVolumeSpec,
    old: &PersistentVolumeSpec,
    errs: &mut Errors,
) {
    let (mut new_source, old_source) = (source_of(spec), source_of(old));
    // A CSI volume may be given a controllerExpandSecretRef later.
    if let (Some(n), Some(o)) = (new_source.csi.as_mut(), old_source.csi.as_ref())
        && o.controller_expand_secret_ref.is_none()
    {
        n.controller_expand_secret_ref = None;
    }
    let path = Path::new("spec").child("persistentvolumesource");
    let changed = changed_paths(&Path::new("spec"), &old_source, &new_source);
    if !changed.is_empty() {
        errs.forbidden(
            &path,
            format!("spec.persistentvolumesource is immutable after creation\n{}", diff_lines(&changed)),
        );
    }
    if spec.volume_mode != old.volume_mode {
        errs.invalid(
            &Path::new("volumeMode"),
            q(spec.volume_mode.as_deref().unwrap_or("")),
            "field is immutable",
        );
    }
    if old.node_affinity.is_some() && spec.node_affinity != old.node_affinity {
        errs.immutable(&Path::new("nodeAffinity"));
    }
    if spec.volume_attributes_class_name != old.volume_attributes_class_name {
        errs.forbidden(
            &Path::new("spec").child("volumeAttributesClassName"),
            "update is forbidden when the VolumeAttributesClass feature gate is disabled",
        );
    }
}

/// The volume source fields of a spec (Kubernetes' embedded `PersistentVolumeSource`), the rest empty.
fn source_of(spec: &PersistentVolumeSpec) -> PersistentVolumeSpec {
    PersistentVolumeSpec {
        gce_persistent_disk: spec.gce_persistent_disk.clone(),
        aws_elastic_block_store: spec.aws_elastic_block_store.clone(),
        host_path: spec.host_path.clone(),
        glusterfs: spec.glusterfs.clone(),
        nfs: spec.nfs.clone(),
        rbd: spec.rbd.clone(),
        iscsi: spec.iscsi.clone(),
        cinder: spec.cinder.clone(),
        cephfs: spec.cephfs.clone(),
        fc: spec.fc.clone(),
        flocker: spec.flocker.clone(),
        flex_volume: spec.flex_volume.clone(),
        azure_file: spec.azure_file.clone(),
        vsphere_volume: spec.vsphere_volume.clone(),
        quobyte: spec.quobyte.clone(),
        azure_disk: spec.azure_disk.clone(),
        photon_persistent_disk: spec.photon_persistent_disk.clone(),
        portworx_volume: spec.portworx_volume.clone(),
        scale_io: spec.scale_io.clone(),
        local: spec.local.clone(),
        storageos: spec.storageos.clone(),
        csi: spec.csi.clone(),
        ..Default::default()
    }
}

/// What changed, one field a line, where Kubernetes prints a Go diff after its message.
fn diff_lines(changed: &[Path]) -> String {
    changed.iter().map(|p| format!("  changed: {p}")).collect::<Vec<_>>().join("\n")
}

// ---------------------------------------------------------------------------------------------------------
// PersistentVolumeClaim
// ---------------------------------------------------------------------------------------------------------

const CLAIM_SPEC_IMMUTABLE: &str = "spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims";

pub(super) fn validate_persistent_volume_claim(
    pvc: &PersistentVolumeClaim,
    old: Option<&PersistentVolumeClaim>,
    errs: &mut Errors,
) {
    pod::validate_pvc_spec(pvc.spec.as_ref(), &Path::new("spec"), errs);
    if let Some(status) = &pvc.status {
        let cp = Path::new("status").child("capacity");
        for (name, qty) in &status.capacity {
            if let Ok(a) = quantity::parse(&qty.string)
                && a.is_negative()
            {
                errs.invalid(&cp.key(name), a.value(), "must be a valid resource quantity");
            }
        }
    }
    if let Some(old) = old {
        validate_persistent_volume_claim_update(pvc, old, errs);
    }
}

fn annotation<'a>(m: Option<&'a ObjectMeta>, key: &str) -> Option<&'a String> {
    m.and_then(|m| m.annotations.get(key))
}

/// `ValidatePersistentVolumeClaimUpdate`.
fn validate_persistent_volume_claim_update(
    new: &PersistentVolumeClaim,
    old: &PersistentVolumeClaim,
    errs: &mut Errors,
) {
    let default = PersistentVolumeClaimSpec::default();
    let new_spec = new.spec.as_ref().unwrap_or(&default);
    let old_spec = old.spec.as_ref().unwrap_or(&default);
    let (new_meta, old_meta) = (new.metadata.as_ref(), old.metadata.as_ref());
    // What may change, taken from the new spec into a copy of the old one.
    let mut allowed = old_spec.clone();
    if old_spec.volume_name.is_empty() {
        // The PV controller sets volumeName once.
        allowed.volume_name = new_spec.volume_name.clone();
    }
    let old_annotation = annotation(old_meta, ANN_BETA_STORAGE_CLASS);
    let new_annotation = annotation(new_meta, ANN_BETA_STORAGE_CLASS);
    let upgrade_from_annotation = old_annotation.is_some()
        && old_spec.storage_class_name.is_none()
        && new_spec.storage_class_name.as_ref() == old_annotation
        && (new_annotation.is_none() || new_annotation == old_annotation);
    if upgrade_from_annotation {
        allowed.storage_class_name = new_spec.storage_class_name.clone();
    } else {
        if new_annotation != old_annotation {
            errs.invalid(
                &Path::new("metadata").child("annotations").key(ANN_BETA_STORAGE_CLASS),
                q(new_annotation.map(String::as_str).unwrap_or("")),
                "field is immutable",
            );
        }
        // A class may be given to a claim that had none (retroactive default class).
        let from_nil = new_spec.storage_class_name.is_some()
            && old_spec.storage_class_name.is_none()
            && old_annotation.is_none_or(|a| Some(a) == new_spec.storage_class_name.as_ref());
        if from_nil {
            allowed.storage_class_name = new_spec.storage_class_name.clone();
        }
    }
    let bound = new.status.as_ref().is_some_and(|s| s.phase == "Bound");
    let new_storage = new_spec.resources.as_ref().and_then(|r| r.requests.get("storage"));
    if bound && let Some(size) = new_storage {
        allowed
            .resources
            .get_or_insert_with(Default::default)
            .requests
            .insert("storage".into(), size.clone());
    }
    allowed.volume_attributes_class_name = new_spec.volume_attributes_class_name.clone();
    let changed = changed_paths(&Path::new("spec"), &allowed, new_spec);
    if !changed.is_empty() {
        errs.forbidden(&Path::new("spec"), format!("{CLAIM_SPEC_IMMUTABLE}\n{}", diff_lines(&changed)));
    }
    // Shrinking (recovering from a failed expansion) stops above the capacity the volume has.
    let amount = |q: Option<&Quantity>| q.and_then(|q| q.amount().ok()).unwrap_or_default();
    let old_size = amount(old_spec.resources.as_ref().and_then(|r| r.requests.get("storage")));
    let new_size = amount(new_storage);
    let capacity = amount(old.status.as_ref().and_then(|s| s.capacity.get("storage")));
    if new_size < old_size && new_size <= capacity {
        errs.forbidden(
            &Path::new("spec").child("resources").child("requests").child("storage"),
            "field can not be less than status.capacity",
        );
    }
    if new_spec.volume_mode != old_spec.volume_mode {
        errs.invalid(
            &Path::new("volumeMode"),
            q(new_spec.volume_mode.as_deref().unwrap_or("")),
            "field is immutable",
        );
    }
    if new_spec.volume_attributes_class_name != old_spec.volume_attributes_class_name {
        errs.forbidden(
            &Path::new("spec").child("volumeAttributesClassName"),
            "update is forbidden when the VolumeAttributesClass feature gate is disabled",
        );
    }
}

// ---------------------------------------------------------------------------------------------------------
// StorageClass
// ---------------------------------------------------------------------------------------------------------

pub(super) fn validate_storage_class(sc: &StorageClass, old: Option<&StorageClass>, errs: &mut Errors) {
    let pp = Path::new("provisioner");
    if sc.provisioner.is_empty() {
        errs.required(&pp, "");
    } else {
        let lower = sc.provisioner.to_lowercase();
        errs.syntax(&pp, &lower, names::qualified_name(&lower));
    }
    let params = Path::new("parameters");
    if sc.parameters.len() > MAX_PARAMETERS {
        errs.too_long(&params, MAX_PARAMETERS);
    } else {
        if sc.parameters.contains_key("") {
            errs.invalid(&params, q(""), "field can not be empty.");
        }
        let size: usize = sc.parameters.iter().map(|(k, v)| k.len() + v.len()).sum();
        if size > MAX_PARAMETERS_SIZE {
            errs.too_long(&params, MAX_PARAMETERS_SIZE);
        }
    }
    if let Some(p) = sc.reclaim_policy.as_deref().filter(|p| !p.is_empty()) {
        errs.one_of(&Path::new("reclaimPolicy"), p, CLASS_RECLAIM_POLICIES);
    }
    match sc.volume_binding_mode.as_deref() {
        None => errs.required(&Path::new("volumeBindingMode"), ""),
        Some(m) => errs.one_of(&Path::new("volumeBindingMode"), m, BINDING_MODES),
    }
    validate_allowed_topologies(&sc.allowed_topologies, &Path::new("allowedTopologies"), errs);
    if let Some(old) = old {
        if sc.parameters != old.parameters {
            errs.forbidden(&params, "updates to parameters are forbidden.");
        }
        if sc.provisioner != old.provisioner {
            errs.forbidden(&pp, "updates to provisioner are forbidden.");
        }
        if sc.reclaim_policy != old.reclaim_policy {
            errs.forbidden(&Path::new("reclaimPolicy"), "updates to reclaimPolicy are forbidden.");
        }
        if sc.volume_binding_mode != old.volume_binding_mode {
            let mode = sc.volume_binding_mode.as_deref().unwrap_or("");
            errs.invalid(&Path::new("volumeBindingMode"), q(mode), "field is immutable");
        }
    }
}

/// `validateAllowedTopologies`: every term valid (`ValidateTopologySelectorTerm`), no two terms alike.
fn validate_allowed_topologies(terms: &[TopologySelectorTerm], path: &Path, errs: &mut Errors) {
    let mut seen: Vec<BTreeMap<&str, Vec<&str>>> = Vec::new();
    for (i, term) in terms.iter().enumerate() {
        let ep = path.index(i).child("matchLabelExpressions");
        let mut expressions: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for (j, r) in term.match_label_expressions.iter().enumerate() {
            let rp = ep.index(j);
            let vp = rp.child("values");
            if r.values.is_empty() {
                errs.required(&vp, "");
            }
            let mut values: Vec<&str> = Vec::new();
            for (k, v) in r.values.iter().enumerate() {
                if values.contains(&v.as_str()) {
                    errs.duplicate(&vp.index(k), q(v));
                } else {
                    values.push(v);
                }
            }
            errs.syntax(&rp.child("key"), &r.key, names::qualified_name(&r.key));
            values.sort_unstable();
            if expressions.insert(&r.key, values).is_some() {
                errs.duplicate(&rp.child("key"), q(&r.key));
            }
        }
        if seen.contains(&expressions) {
            errs.duplicate(&ep, q(""));
        }
        seen.push(expressions);
    }
}
