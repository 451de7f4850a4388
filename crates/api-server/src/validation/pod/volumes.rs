//! Volumes of a pod: their names and sources (hostPath, secret, configMap, projected, ephemeral, ...),
//! the PersistentVolumeClaim specs of ephemeral volumes and StatefulSet claim templates, the volume
//! mounts and devices of containers, and the file paths and modes they use.

use std::collections::{BTreeMap, BTreeSet};

use navarch_api::names;
use navarch_api::quantity;
use navarch_api::storage::ACCESS_MODES;
use navarch_api::v1::*;

use super::env::{RESOURCE_FIELDS, VOLUME_FIELD_PATHS, validate_field_selector};
use super::{PULL_POLICIES, SpecContext};
use crate::validation::field::{Errors, Path, q};
use crate::validation::meta;

const MAX_FILE_MODE: i32 = 0o777;

pub(super) fn validate_volume_mounts(c: &Container, path: &Path, ctx: &SpecContext, errs: &mut Errors) {
    let mut paths = BTreeSet::new();
    let privileged = c.security_context.as_ref().and_then(|s| s.privileged) == Some(true);
    for (i, m) in c.volume_mounts.iter().enumerate() {
        let p = path.child("volumeMounts").index(i);
        if m.name.is_empty() {
            errs.required(&p.child("name"), "");
        } else if !ctx.has_volume(&m.name) {
            errs.not_found(&p.child("name"), q(&m.name));
        }
        let mp = p.child("mountPath");
        if m.mount_path.is_empty() {
            errs.required(&mp, "");
        } else if !paths.insert(m.mount_path.as_str()) {
            errs.invalid(&mp, q(&m.mount_path), "must be unique");
        }
        if !m.sub_path.is_empty() {
            local_descending_path(&m.sub_path, &p.child("subPath"), errs);
        }
        if !m.sub_path_expr.is_empty() {
            if !m.sub_path.is_empty() {
                errs.invalid(
                    &p.child("subPathExpr"),
                    q(&m.sub_path_expr),
                    "subPathExpr and subPath are mutually exclusive",
                );
            }
            if m.sub_path_expr.starts_with('/') {
                errs.invalid(&p.child("subPathExpr"), q(&m.sub_path_expr), "must be a relative path");
            }
        }
        if let Some(prop) = m.mount_propagation.as_deref() {
            let pp = p.child("mountPropagation");
            errs.one_of(&pp, prop, &["None", "HostToContainer", "Bidirectional"]);
            if prop == "Bidirectional" && !privileged {
                errs.forbidden(
                    &pp,
                    "Bidirectional mount propagation is available only to privileged containers",
                );
            }
        }
        if let Some(rro) = m.recursive_read_only.as_deref() {
            let rp = p.child("recursiveReadOnly");
            errs.one_of(&rp, rro, &["Disabled", "IfPossible", "Enabled"]);
            if rro != "Disabled" {
                if !m.read_only {
                    errs.forbidden(&rp, "may only be specified when readOnly is true");
                }
                if m.mount_propagation.as_deref().is_some_and(|p| p != "None") {
                    errs.forbidden(
                        &rp,
                        "may only be specified when mountPropagation is None or not specified",
                    );
                }
            }
        }
    }
    let mut devices = BTreeSet::new();
    for (i, d) in c.volume_devices.iter().enumerate() {
        let p = path.child("volumeDevices").index(i);
        let np = p.child("name");
        if d.name.is_empty() {
            errs.required(&np, "");
        } else {
            match ctx.volumes.get(d.name.as_str()) {
                None if !ctx.claim_templates.contains(&d.name.as_str()) => errs.not_found(&np, q(&d.name)),
                Some(v) if v.persistent_volume_claim.is_none() && v.ephemeral.is_none() => errs.invalid(
                    &np,
                    q(&d.name),
                    "can only use volume source type of PersistentVolumeClaim or Ephemeral for block mode",
                ),
                _ => {}
            }
            if c.volume_mounts.iter().any(|m| m.name == d.name) {
                errs.invalid(&np, q(&d.name), "must not already exist in volumeMounts");
            }
        }
        let dp = p.child("devicePath");
        if d.device_path.is_empty() {
            errs.required(&dp, "");
        } else if !devices.insert(d.device_path.as_str()) {
            errs.invalid(&dp, q(&d.device_path), "must be unique");
        } else if d.device_path.split('/').any(|s| s == "..") {
            errs.invalid(&dp, q(&d.device_path), "must not contain '..'");
        }
    }
}

/// A relative path that stays inside its directory.
pub(super) fn local_descending_path(v: &str, path: &Path, errs: &mut Errors) {
    if v.starts_with('/') {
        errs.invalid(path, q(v), "must be a relative path");
    }
    if v.split('/').any(|s| s == "..") {
        errs.invalid(path, q(v), "must not contain '..'");
    }
}

fn volume_sources(v: &Volume) -> Vec<&'static str> {
    [
        (v.host_path.is_some(), "hostPath"),
        (v.empty_dir.is_some(), "emptyDir"),
        (v.secret.is_some(), "secret"),
        (v.nfs.is_some(), "nfs"),
        (v.persistent_volume_claim.is_some(), "persistentVolumeClaim"),
        (v.downward_api.is_some(), "downwardAPI"),
        (v.config_map.is_some(), "configMap"),
        (v.projected.is_some(), "projected"),
        (v.csi.is_some(), "csi"),
        (v.ephemeral.is_some(), "ephemeral"),
        (v.iscsi.is_some(), "iscsi"),
        (v.image.is_some(), "image"),
        (v.git_repo.is_some(), "gitRepo"),
        (v.fc.is_some(), "fc"),
        (v.local.is_some(), "local"),
        (v.gce_persistent_disk.is_some(), "gcePersistentDisk"),
        (v.aws_elastic_block_store.is_some(), "awsElasticBlockStore"),
        (v.glusterfs.is_some(), "glusterfs"),
        (v.rbd.is_some(), "rbd"),
        (v.flex_volume.is_some(), "flexVolume"),
        (v.cinder.is_some(), "cinder"),
        (v.cephfs.is_some(), "cephfs"),
        (v.flocker.is_some(), "flocker"),
        (v.azure_file.is_some(), "azureFile"),
        (v.vsphere_volume.is_some(), "vsphereVolume"),
        (v.quobyte.is_some(), "quobyte"),
        (v.azure_disk.is_some(), "azureDisk"),
        (v.photon_persistent_disk.is_some(), "photonPersistentDisk"),
        (v.portworx_volume.is_some(), "portworxVolume"),
        (v.scale_io.is_some(), "scaleIO"),
        (v.storageos.is_some(), "storageos"),
    ]
    .into_iter()
    .filter_map(|(set, name)| set.then_some(name))
    .collect()
}

pub(super) fn validate_volumes<'a>(
    volumes: &'a [Volume],
    path: &Path,
    errs: &mut Errors,
) -> BTreeMap<&'a str, &'a Volume> {
    let mut by_name = BTreeMap::new();
    for (i, v) in volumes.iter().enumerate() {
        let p = path.index(i);
        let np = p.child("name");
        if v.name.is_empty() {
            errs.required(&np, "");
        } else {
            errs.syntax(&np, &v.name, names::dns1123_label(&v.name));
            if by_name.insert(v.name.as_str(), v).is_some() {
                errs.duplicate(&np, q(&v.name));
            }
        }
        let sources = volume_sources(v);
        if sources.is_empty() {
            errs.required(&p, "must specify a volume type");
        }
        for extra in sources.iter().skip(1) {
            errs.forbidden(&p.child(extra), "may not specify more than 1 volume type");
        }
        validate_volume_source(v, &p, errs);
    }
    by_name
}

fn file_mode(mode: Option<i32>, path: &Path, errs: &mut Errors) {
    if let Some(m) = mode.filter(|m| !(0..=MAX_FILE_MODE).contains(m)) {
        errs.invalid(path, m, "must be a number between 0 and 0777 (octal), both inclusive");
    }
}

fn validate_key_to_paths(items: &[KeyToPath], path: &Path, errs: &mut Errors) {
    for (i, k) in items.iter().enumerate() {
        let p = path.index(i);
        if k.key.is_empty() {
            errs.required(&p.child("key"), "");
        }
        if k.path.is_empty() {
            errs.required(&p.child("path"), "");
        } else {
            local_descending_path(&k.path, &p.child("path"), errs);
        }
        file_mode(k.mode, &p.child("mode"), errs);
    }
}

fn required_str(value: &str, path: &Path, errs: &mut Errors) -> bool {
    if value.is_empty() {
        errs.required(path, "");
        false
    } else {
        true
    }
}

fn absolute_path(value: &str, path: &Path, errs: &mut Errors) {
    if required_str(value, path, errs) && !value.starts_with('/') {
        errs.invalid(path, q(value), "must be an absolute path");
    }
}

fn validate_downward_files(items: &[DownwardApiVolumeFile], path: &Path, errs: &mut Errors) {
    for (i, f) in items.iter().enumerate() {
        let p = path.index(i);
        if required_str(&f.path, &p.child("path"), errs) {
            local_descending_path(&f.path, &p.child("path"), errs);
        }
        file_mode(f.mode, &p.child("mode"), errs);
        match (&f.field_ref, &f.resource_field_ref) {
            (Some(r), None) => validate_field_selector(r, VOLUME_FIELD_PATHS, &p.child("fieldRef"), errs),
            (None, Some(r)) => {
                let rp = p.child("resourceFieldRef");
                if r.container_name.is_empty() {
                    errs.required(&rp.child("containerName"), "");
                }
                if r.resource.is_empty() {
                    errs.required(&rp.child("resource"), "");
                } else if !r.resource.contains(".hugepages-") {
                    errs.one_of(&rp.child("resource"), &r.resource, RESOURCE_FIELDS);
                }
            }
            (Some(_), Some(_)) => errs.invalid(
                &p,
                q("resource"),
                "fieldRef and resourceFieldRef can not be specified simultaneously",
            ),
            (None, None) => errs.required(&p, "one of fieldRef and resourceFieldRef is required"),
        }
    }
}

/// A `hostPath` source (of a pod's volume or a PersistentVolume).
pub(in crate::validation) fn validate_host_path(h: &HostPathVolumeSource, hp: &Path, errs: &mut Errors) {
    absolute_path(&h.path, &hp.child("path"), errs);
    no_backsteps(&h.path, &hp.child("path"), errs);
    if let Some(t) = h.r#type.as_deref() {
        errs.one_of(
            &hp.child("type"),
            t,
            &[
                "",
                "DirectoryOrCreate",
                "Directory",
                "FileOrCreate",
                "File",
                "Socket",
                "CharDevice",
                "BlockDevice",
            ],
        );
    }
}

/// Kubernetes' `validatePathNoBacksteps`.
pub(in crate::validation) fn no_backsteps(v: &str, path: &Path, errs: &mut Errors) {
    if v.split('/').any(|s| s == "..") {
        errs.invalid(path, q(v), "must not contain '..'");
    }
}

/// An `nfs` source (of a pod's volume or a PersistentVolume).
pub(in crate::validation) fn validate_nfs(n: &NfsVolumeSource, np: &Path, errs: &mut Errors) {
    required_str(&n.server, &np.child("server"), errs);
    absolute_path(&n.path, &np.child("path"), errs);
}

fn validate_volume_source(v: &Volume, p: &Path, errs: &mut Errors) {
    if let Some(h) = &v.host_path {
        validate_host_path(h, &p.child("hostPath"), errs);
    }
    if let Some(e) = &v.empty_dir {
        let ep = p.child("emptyDir");
        if !e.medium.starts_with("HugePages-") {
            errs.one_of(&ep.child("medium"), &e.medium, &["", "Memory", "HugePages"]);
        }
        if let Some(s) = e.size_limit.as_ref().filter(|s| !s.string.is_empty()) {
            let sp = ep.child("sizeLimit");
            match quantity::parse(&s.string) {
                Err(err) => errs.syntax(&sp, &s.string, vec![err.to_string()]),
                Ok(a) if a.is_negative() => {
                    errs.invalid(&sp, q(&s.string), "must be greater than or equal to 0")
                }
                Ok(_) => {}
            }
        }
    }
    if let Some(s) = &v.secret {
        let sp = p.child("secret");
        if required_str(&s.secret_name, &sp.child("secretName"), errs) {
            errs.syntax(&sp.child("secretName"), &s.secret_name, names::dns1123_subdomain(&s.secret_name));
        }
        validate_key_to_paths(&s.items, &sp.child("items"), errs);
        file_mode(s.default_mode, &sp.child("defaultMode"), errs);
    }
    if let Some(c) = &v.config_map {
        let cp = p.child("configMap");
        if required_str(&c.name, &cp.child("name"), errs) {
            errs.syntax(&cp.child("name"), &c.name, names::dns1123_subdomain(&c.name));
        }
        validate_key_to_paths(&c.items, &cp.child("items"), errs);
        file_mode(c.default_mode, &cp.child("defaultMode"), errs);
    }
    if let Some(n) = &v.nfs {
        validate_nfs(n, &p.child("nfs"), errs);
    }
    if let Some(c) = &v.persistent_volume_claim {
        required_str(&c.claim_name, &p.child("persistentVolumeClaim").child("claimName"), errs);
    }
    if let Some(d) = &v.downward_api {
        let dp = p.child("downwardAPI");
        validate_downward_files(&d.items, &dp.child("items"), errs);
        file_mode(d.default_mode, &dp.child("defaultMode"), errs);
    }
    if let Some(pr) = &v.projected {
        validate_projected(pr, &p.child("projected"), errs);
    }
    if let Some(c) = &v.csi {
        let dp = p.child("csi").child("driver");
        if required_str(&c.driver, &dp, errs) {
            let lower = c.driver.to_ascii_lowercase();
            let reasons = names::dns1123_subdomain(&lower);
            if c.driver.len() > 63 || !reasons.is_empty() {
                errs.invalid(
                    &dp,
                    q(&c.driver),
                    "a CSI driver name must be at most 63 characters of alphanumerics, '-' or '.', starting and ending with an alphanumeric",
                );
            }
        }
    }
    if let Some(e) = &v.ephemeral {
        let tp = p.child("ephemeral").child("volumeClaimTemplate");
        match &e.volume_claim_template {
            None => errs.required(&tp, ""),
            Some(t) => {
                if let Some(m) = &t.metadata {
                    meta::validate_labels(&m.labels, &tp.child("metadata").child("labels"), errs);
                    meta::validate_annotations(
                        &m.annotations,
                        &tp.child("metadata").child("annotations"),
                        errs,
                    );
                    for (field, set) in [("name", !m.name.is_empty()), ("namespace", !m.namespace.is_empty())]
                    {
                        if set {
                            errs.forbidden(
                                &tp.child("metadata").child(field),
                                "must be empty; it is set from the pod",
                            );
                        }
                    }
                }
                validate_pvc_spec(t.spec.as_ref(), &tp.child("spec"), errs);
            }
        }
    }
    if let Some(i) = &v.iscsi {
        let ip = p.child("iscsi");
        required_str(&i.target_portal, &ip.child("targetPortal"), errs);
        required_str(&i.iqn, &ip.child("iqn"), errs);
        errs.in_range(&ip.child("lun"), i.lun.into(), 0, 255);
    }
    if let Some(i) = &v.image {
        let ip = p.child("image");
        required_str(&i.reference, &ip.child("reference"), errs);
        errs.required_one_of(&ip.child("pullPolicy"), &i.pull_policy, PULL_POLICIES);
    }
    if let Some(g) = &v.git_repo {
        let gp = p.child("gitRepo");
        required_str(&g.repository, &gp.child("repository"), errs);
        if g.directory.starts_with('/') || g.directory.split('/').any(|s| s == "..") {
            errs.invalid(
                &gp.child("directory"),
                q(&g.directory),
                "must be a relative path that does not contain '..'",
            );
        }
    }
    if let Some(f) = &v.fc {
        let fp = p.child("fc");
        if f.target_ww_ns.is_empty() && f.wwids.is_empty() {
            errs.required(&fp.child("targetWWNs"), "must specify either targetWWNs or wwids, but not both");
        } else if !f.target_ww_ns.is_empty() && !f.wwids.is_empty() {
            errs.invalid(
                &fp.child("targetWWNs"),
                q(&f.target_ww_ns.join(",")),
                "targetWWNs and wwids can not be specified simultaneously",
            );
        } else if !f.target_ww_ns.is_empty() {
            match f.lun {
                None => errs.required(&fp.child("lun"), "lun is required if targetWWNs is specified"),
                Some(l) => errs.in_range(&fp.child("lun"), l.into(), 0, 255),
            }
        }
    }
    if v.local.is_some() {
        errs.forbidden(
            &p.child("local"),
            "local volumes are PersistentVolumes only, not a pod volume source",
        );
    }
}

fn validate_projected(pr: &ProjectedVolumeSource, path: &Path, errs: &mut Errors) {
    file_mode(pr.default_mode, &path.child("defaultMode"), errs);
    let mut all_paths: BTreeSet<String> = BTreeSet::new();
    let mut note = |p: &str, at: &Path, errs: &mut Errors| {
        if !p.is_empty() && !all_paths.insert(p.to_string()) {
            errs.invalid(at, q(p), "conflicting duplicate paths");
        }
    };
    for (i, s) in pr.sources.iter().enumerate() {
        let sp = path.child("sources").index(i);
        let kinds: Vec<&str> = [
            (s.secret.is_some(), "secret"),
            (s.downward_api.is_some(), "downwardAPI"),
            (s.config_map.is_some(), "configMap"),
            (s.service_account_token.is_some(), "serviceAccountToken"),
            (s.cluster_trust_bundle.is_some(), "clusterTrustBundle"),
        ]
        .into_iter()
        .filter_map(|(set, name)| set.then_some(name))
        .collect();
        if kinds.is_empty() {
            errs.required(&sp, "must specify exactly 1 projection type");
        }
        for extra in kinds.iter().skip(1) {
            errs.forbidden(&sp.child(extra), "may not specify more than 1 projection type");
        }
        for (items, name, field) in [
            (s.secret.as_ref().map(|x| &x.items), s.secret.as_ref().map(|x| &x.name), "secret"),
            (s.config_map.as_ref().map(|x| &x.items), s.config_map.as_ref().map(|x| &x.name), "configMap"),
        ] {
            let (Some(items), Some(name)) = (items, name) else { continue };
            let fp = sp.child(field);
            required_str(name, &fp.child("name"), errs);
            validate_key_to_paths(items, &fp.child("items"), errs);
            for (j, k) in items.iter().enumerate() {
                note(&k.path, &fp.child("items").index(j).child("path"), errs);
            }
        }
        if let Some(d) = &s.downward_api {
            let dp = sp.child("downwardAPI");
            validate_downward_files(&d.items, &dp.child("items"), errs);
            for (j, f) in d.items.iter().enumerate() {
                note(&f.path, &dp.child("items").index(j).child("path"), errs);
            }
        }
        if let Some(t) = &s.service_account_token {
            let tp = sp.child("serviceAccountToken");
            if required_str(&t.path, &tp.child("path"), errs) {
                local_descending_path(&t.path, &tp.child("path"), errs);
                note(&t.path, &tp.child("path"), errs);
            }
            if let Some(e) = t.expiration_seconds {
                if e < 600 {
                    errs.invalid(
                        &tp.child("expirationSeconds"),
                        e,
                        "may not specify a duration less than 10 minutes",
                    );
                } else if e > 1 << 32 {
                    errs.invalid(
                        &tp.child("expirationSeconds"),
                        e,
                        "may not specify a duration larger than 2^32 seconds",
                    );
                }
            }
        }
        if let Some(b) = &s.cluster_trust_bundle {
            let bp = sp.child("clusterTrustBundle");
            if required_str(&b.path, &bp.child("path"), errs) {
                local_descending_path(&b.path, &bp.child("path"), errs);
                note(&b.path, &bp.child("path"), errs);
            }
            match (b.name.as_deref(), b.signer_name.as_deref()) {
                (Some(_), Some(_)) => errs.invalid(&bp, q(""), "only one of name and signerName may be used"),
                (None, None) => errs.required(&bp, "either name or signerName must be specified"),
                _ => {}
            }
        }
    }
}

/// The access modes of a claim or volume (`spec.accessModes`): each one Kubernetes knows, and
/// ReadWriteOncePod alone. Whether at least one is required (and the detail of that error) is the caller's.
pub(in crate::validation) fn validate_access_modes(modes: &[String], ap: &Path, errs: &mut Errors) {
    let (mut once_pod, mut other) = (false, false);
    for m in modes {
        if !ACCESS_MODES.contains(&m.as_str()) {
            errs.not_supported(ap, m, ACCESS_MODES);
        } else if m == "ReadWriteOncePod" {
            once_pod = true;
        } else {
            other = true;
        }
    }
    if once_pod && other {
        errs.forbidden(ap, "may not use ReadWriteOncePod with other access modes");
    }
}

/// A PersistentVolumeClaim's spec (Kubernetes' `ValidatePersistentVolumeClaimSpec`; claims and ephemeral
/// volumes).
pub(in crate::validation) fn validate_pvc_spec(
    spec: Option<&PersistentVolumeClaimSpec>,
    path: &Path,
    errs: &mut Errors,
) {
    let default = PersistentVolumeClaimSpec::default();
    let spec = spec.unwrap_or(&default);
    let ap = path.child("accessModes");
    if spec.access_modes.is_empty() {
        errs.required(&ap, "at least 1 access mode is required");
    }
    validate_access_modes(&spec.access_modes, &ap, errs);
    let rp = path.child("resources");
    let requests = spec.resources.as_ref().map(|r| &r.requests);
    match requests.and_then(|r| r.get("storage")) {
        None => errs.required(&rp.key("storage"), ""),
        Some(s) => match quantity::parse(&s.string) {
            Err(e) => errs.syntax(&rp.key("storage"), &s.string, vec![e.to_string()]),
            Ok(a) if a.0 <= 0 => errs.invalid(&rp.key("storage"), q(&s.string), "must be greater than zero"),
            Ok(_) => {}
        },
    }
    if let Some(m) = spec.volume_mode.as_deref() {
        errs.one_of(&path.child("volumeMode"), m, &["Block", "Filesystem"]);
    }
    if let Some(sc) = spec.storage_class_name.as_deref().filter(|s| !s.is_empty()) {
        errs.syntax(&path.child("storageClassName"), sc, names::dns1123_subdomain(sc));
    }
    if let Some(s) = &spec.selector {
        meta::validate_label_selector(s, &path.child("selector"), errs);
    }
    validate_data_sources(spec, path, errs);
}

/// `dataSource` and `dataSourceRef`: a name and kind each, a kind of the core group only
/// PersistentVolumeClaim, and the two the same unless the reference names another namespace.
fn validate_data_sources(spec: &PersistentVolumeClaimSpec, path: &Path, errs: &mut Errors) {
    let check = |group: Option<&str>, kind: &str, name: &str, p: &Path, errs: &mut Errors| {
        required_str(name, &p.child("name"), errs);
        required_str(kind, &p.child("kind"), errs);
        match group.unwrap_or("") {
            "" if kind != "PersistentVolumeClaim" => errs.invalid(
                p,
                q(kind),
                "must be 'PersistentVolumeClaim' when referencing the default apiGroup",
            ),
            "" => {}
            g => errs.syntax(&p.child("apiGroup"), g, names::dns1123_subdomain(g)),
        }
    };
    if let Some(d) = &spec.data_source {
        check(d.api_group.as_deref(), &d.kind, &d.name, &path.child("dataSource"), errs);
    }
    if let Some(r) = &spec.data_source_ref {
        let rp = path.child("dataSourceRef");
        check(r.api_group.as_deref(), &r.kind, &r.name, &rp, errs);
        if let Some(ns) = r.namespace.as_deref().filter(|n| !n.is_empty()) {
            errs.syntax(&rp.child("namespace"), ns, names::dns1123_label(ns));
        }
    }
    let ds = path.child("dataSource");
    match (&spec.data_source, &spec.data_source_ref) {
        (Some(_), Some(r)) if r.namespace.as_deref().is_some_and(|n| !n.is_empty()) => {
            errs.invalid(path, &ds, "may not be specified when dataSourceRef.namespace is specified")
        }
        (Some(d), Some(r)) if (&d.api_group, &d.kind, &d.name) != (&r.api_group, &r.kind, &r.name) => {
            errs.invalid(path, &ds, "must match dataSourceRef")
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::assert_edit_errors;
    use crate::validation::testing::*;

    #[test]
    fn invalid_volumes_and_mounts() {
        let c = "spec.containers[0]";
        assert_edit_errors(&[
            (
                "{name: data, mountPath: /data}",
                "{name: cache, mountPath: /data}",
                format!("{c}.volumeMounts[0].name"),
                "Not found: \"cache\"",
            ),
            (
                "{name: data, mountPath: /data}",
                "{name: data}",
                format!("{c}.volumeMounts[0].mountPath"),
                "Required value",
            ),
            (
                "{name: config, mountPath: /etc/app,",
                "{name: config, mountPath: /data,",
                format!("{c}.volumeMounts[1].mountPath"),
                "must be unique",
            ),
            (
                "{name: data, mountPath: /data}",
                "{name: data, mountPath: /data, subPath: ../etc}",
                format!("{c}.volumeMounts[0].subPath"),
                "must not contain '..'",
            ),
            (
                "{name: data, mountPath: /data}",
                "{name: data, mountPath: /data, mountPropagation: Bidirectional}",
                format!("{c}.volumeMounts[0].mountPropagation"),
                "only to privileged containers",
            ),
            (
                "  - name: data\n    emptyDir",
                "  - name: config\n    emptyDir: {}\n  - name: data\n    emptyDir",
                "spec.volumes[2].name".into(),
                "Duplicate value: \"config\"",
            ),
            (
                "  - name: data\n    emptyDir",
                "  - name: Data\n    emptyDir: {}\n  - name: data\n    emptyDir",
                "spec.volumes[0].name".into(),
                "Invalid value: \"Data\": a lowercase RFC 1123 label",
            ),
            (
                "    emptyDir: {sizeLimit: 1Gi}\n",
                "    emptyDir: {sizeLimit: 1Gi}\n    hostPath: {path: /x}\n",
                "spec.volumes[0].emptyDir".into(),
                "Forbidden: may not specify more than 1 volume type",
            ),
            (
                "    emptyDir: {sizeLimit: 1Gi}\n",
                "",
                "spec.volumes[0]".into(),
                "Required value: must specify a volume type",
            ),
            (
                "configMap: {name: app-config,",
                "configMap: {name: '',",
                "spec.volumes[1].configMap.name".into(),
                "Required value",
            ),
            (
                "[{key: app.yaml, path: app.yaml}]",
                "[{key: app.yaml, path: /etc/app.yaml}]",
                "spec.volumes[1].configMap.items[0].path".into(),
                "must be a relative path",
            ),
            (
                "[{key: app.yaml, path: app.yaml}]",
                "[{key: app.yaml, path: app.yaml, mode: 1000}]",
                "spec.volumes[1].configMap.items[0].mode".into(),
                "between 0 and 0777",
            ),
        ]);
    }

    #[test]
    fn volume_sources_validate() {
        let base = "apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: default}\nspec:\n  containers: [{name: a, image: x, volumeMounts: [{name: v, mountPath: /v}]}]\n  volumes:\n  - name: v\n";
        let ok = [
            "    hostPath: {path: /var/log, type: Directory}\n",
            "    secret: {secretName: s, defaultMode: 0400}\n",
            "    persistentVolumeClaim: {claimName: c}\n",
            "    nfs: {server: nfs.example.com, path: /exports}\n",
            "    downwardAPI: {items: [{path: labels, fieldRef: {fieldPath: metadata.labels}}, {path: cpu, resourceFieldRef: {containerName: a, resource: limits.cpu}}]}\n",
            "    projected: {sources: [{serviceAccountToken: {path: token, expirationSeconds: 3600}}, {configMap: {name: ca, items: [{key: ca.crt, path: ca.crt}]}}, {downwardAPI: {items: [{path: ns, fieldRef: {fieldPath: metadata.namespace}}]}}]}\n",
            "    csi: {driver: secrets-store.csi.k8s.io}\n",
            "    ephemeral: {volumeClaimTemplate: {spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}}}}\n",
            "    image: {reference: 'registry.example/data:v1'}\n",
        ];
        for src in ok {
            assert_valid(&format!("{base}{src}"));
        }
        let bad: &[(&str, &str, &str)] = &[
            ("    hostPath: {path: var/log}\n", "spec.volumes[0].hostPath.path", "must be an absolute path"),
            (
                "    hostPath: {path: /x, type: Folder}\n",
                "spec.volumes[0].hostPath.type",
                "Unsupported value: \"Folder\"",
            ),
            ("    secret: {}\n", "spec.volumes[0].secret.secretName", "Required value"),
            (
                "    persistentVolumeClaim: {}\n",
                "spec.volumes[0].persistentVolumeClaim.claimName",
                "Required value",
            ),
            ("    nfs: {server: s, path: exports}\n", "spec.volumes[0].nfs.path", "must be an absolute path"),
            (
                "    downwardAPI: {items: [{path: x, fieldRef: {fieldPath: spec.nodeName}}]}\n",
                "spec.volumes[0].downwardAPI.items[0].fieldRef.fieldPath",
                "Unsupported value: \"spec.nodeName\"",
            ),
            (
                "    downwardAPI: {items: [{path: x, resourceFieldRef: {resource: limits.cpu}}]}\n",
                "spec.volumes[0].downwardAPI.items[0].resourceFieldRef.containerName",
                "Required value",
            ),
            (
                "    projected: {sources: [{serviceAccountToken: {path: t, expirationSeconds: 60}}]}\n",
                "spec.volumes[0].projected.sources[0].serviceAccountToken.expirationSeconds",
                "less than 10 minutes",
            ),
            (
                "    projected: {sources: [{serviceAccountToken: {path: t}}, {serviceAccountToken: {path: t}}]}\n",
                "spec.volumes[0].projected.sources[1].serviceAccountToken.path",
                "conflicting duplicate paths",
            ),
            (
                "    projected: {sources: [{}]}\n",
                "spec.volumes[0].projected.sources[0]",
                "must specify exactly 1 projection type",
            ),
            (
                "    ephemeral: {volumeClaimTemplate: {spec: {resources: {requests: {storage: 1Gi}}}}}\n",
                "spec.volumes[0].ephemeral.volumeClaimTemplate.spec.accessModes",
                "at least 1 access mode is required",
            ),
            (
                "    ephemeral: {volumeClaimTemplate: {spec: {accessModes: [ReadWriteOnce]}}}\n",
                "spec.volumes[0].ephemeral.volumeClaimTemplate.spec.resources[storage]",
                "Required value",
            ),
            ("    local: {path: /mnt}\n", "spec.volumes[0].local", "PersistentVolumes only"),
            ("    csi: {driver: 'bad driver'}\n", "spec.volumes[0].csi.driver", "a CSI driver name"),
        ];
        for (src, path, reason) in bad {
            assert_error(&format!("{base}{src}"), path, reason);
        }
    }
}
