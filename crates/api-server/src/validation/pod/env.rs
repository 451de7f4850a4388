//! Environment variables of containers (`env`, `envFrom`) and the field references they share with
//! downward API volumes (`fieldRef`, `resourceFieldRef`), and the syntax of ConfigMap and Secret keys.

use navarch_api::names;
use navarch_api::v1::*;

use super::SpecContext;
use super::volumes::local_descending_path;
use crate::validation::field::{Errors, Path, q};

/// Kubernetes (since 1.30) allows any printable ASCII character except '=' in variable names.
fn env_name_ok(name: &str) -> bool {
    !name.is_empty() && name.chars().all(|c| (' '..='~').contains(&c) && c != '=')
}

const ENV_NAME_REASON: &str =
    "a valid environment variable name must consist only of printable ASCII characters other than '='";

/// Fields of the pod a `fieldRef` may name in an env var and in a downward API volume.
const ENV_FIELD_PATHS: &[&str] = &[
    "metadata.name",
    "metadata.namespace",
    "metadata.uid",
    "spec.nodeName",
    "spec.serviceAccountName",
    "status.hostIP",
    "status.hostIPs",
    "status.podIP",
    "status.podIPs",
];
pub(super) const VOLUME_FIELD_PATHS: &[&str] =
    &["metadata.annotations", "metadata.labels", "metadata.name", "metadata.namespace", "metadata.uid"];

pub(super) fn validate_env(c: &Container, path: &Path, ctx: &SpecContext, errs: &mut Errors) {
    for (i, e) in c.env.iter().enumerate() {
        let p = path.child("env").index(i);
        if e.name.is_empty() {
            errs.required(&p.child("name"), "");
        } else if !env_name_ok(&e.name) {
            errs.invalid(&p.child("name"), q(&e.name), ENV_NAME_REASON);
        }
        let Some(vf) = &e.value_from else { continue };
        let vp = p.child("valueFrom");
        let sources = [
            vf.field_ref.is_some(),
            vf.resource_field_ref.is_some(),
            vf.config_map_key_ref.is_some(),
            vf.secret_key_ref.is_some(),
            vf.file_key_ref.is_some(),
        ]
        .into_iter()
        .filter(|s| *s)
        .count();
        if !e.value.is_empty() {
            errs.invalid(&vp, q(""), "may not be specified when `value` is not empty");
        }
        match sources {
            0 => errs.invalid(
                &vp,
                q(""),
                "must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef`, `secretKeyRef` or `fileKeyRef`",
            ),
            1 => {}
            _ => errs.invalid(&vp, q(""), "may not have more than one field specified at a time"),
        }
        if let Some(f) = &vf.field_ref {
            validate_field_selector(f, ENV_FIELD_PATHS, &vp.child("fieldRef"), errs);
        }
        if let Some(r) = &vf.resource_field_ref {
            validate_resource_field_selector(r, false, ctx, &vp.child("resourceFieldRef"), errs);
        }
        if let Some(s) = &vf.config_map_key_ref {
            validate_key_selector(&s.name, &s.key, &vp.child("configMapKeyRef"), errs);
        }
        if let Some(s) = &vf.secret_key_ref {
            validate_key_selector(&s.name, &s.key, &vp.child("secretKeyRef"), errs);
        }
        if let Some(f) = &vf.file_key_ref {
            let fp = vp.child("fileKeyRef");
            if f.volume_name.is_empty() {
                errs.required(&fp.child("volumeName"), "");
            } else if ctx.volumes.get(f.volume_name.as_str()).is_none_or(|v| v.empty_dir.is_none()) {
                errs.invalid(
                    &fp.child("volumeName"),
                    q(&f.volume_name),
                    "must reference an emptyDir volume of the pod",
                );
            }
            if f.path.is_empty() {
                errs.required(&fp.child("path"), "");
            } else {
                local_descending_path(&f.path, &fp.child("path"), errs);
            }
            if f.key.is_empty() {
                errs.required(&fp.child("key"), "");
            } else if !env_name_ok(&f.key) {
                errs.invalid(&fp.child("key"), q(&f.key), ENV_NAME_REASON);
            }
        }
    }
    for (i, e) in c.env_from.iter().enumerate() {
        let p = path.child("envFrom").index(i);
        if !e.prefix.is_empty() && !env_name_ok(&e.prefix) {
            errs.invalid(&p.child("prefix"), q(&e.prefix), ENV_NAME_REASON);
        }
        match (&e.config_map_ref, &e.secret_ref) {
            (None, None) => errs.invalid(&p, q(""), "must specify one of: `configMapRef` or `secretRef`"),
            (Some(_), Some(_)) => {
                errs.invalid(&p, q(""), "may not have more than one field specified at a time")
            }
            _ => {}
        }
        for (name, field) in [
            (e.config_map_ref.as_ref().map(|r| &r.name), "configMapRef"),
            (e.secret_ref.as_ref().map(|r| &r.name), "secretRef"),
        ] {
            let Some(name) = name else { continue };
            let np = p.child(field).child("name");
            if name.is_empty() {
                errs.required(&np, "");
            } else {
                errs.syntax(&np, name, names::dns1123_subdomain(name));
            }
        }
    }
}

/// `configMapKeyRef` / `secretKeyRef`: a name and a valid key.
fn validate_key_selector(name: &str, key: &str, path: &Path, errs: &mut Errors) {
    if name.is_empty() {
        errs.required(&path.child("name"), "");
    }
    if key.is_empty() {
        errs.required(&path.child("key"), "");
    } else {
        config_key(key, &path.child("key"), errs);
    }
}

/// A ConfigMap or Secret key: `[-._a-zA-Z0-9]+`, at most 253 characters, not `.`/`..`/`..*`.
pub(in crate::validation) fn config_key(key: &str, path: &Path, errs: &mut Errors) {
    if key.len() > 253 {
        errs.invalid(path, q(key), "must be no more than 253 characters");
    }
    if key.is_empty() || !key.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')) {
        errs.invalid(
            path,
            q(key),
            "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name', or \
             'KEY_NAME', or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')",
        );
    }
    if key == "." {
        errs.invalid(path, q(key), "must not be '.'");
    } else if key == ".." {
        errs.invalid(path, q(key), "must not be '..'");
    } else if key.starts_with("..") {
        errs.invalid(path, q(key), "must not start with '..'");
    }
}

pub(super) fn validate_field_selector(
    f: &ObjectFieldSelector,
    supported: &[&str],
    path: &Path,
    errs: &mut Errors,
) {
    errs.required_one_of(&path.child("apiVersion"), &f.api_version, &["v1"]);
    let fp = path.child("fieldPath");
    if f.field_path.is_empty() {
        errs.required(&fp, "");
        return;
    }
    // `metadata.labels['key']` and `metadata.annotations['key']` select one entry.
    if let Some((map, rest)) = f.field_path.split_once('[') {
        let key = rest.strip_suffix("']").and_then(|r| r.strip_prefix('\''));
        match (map, key) {
            ("metadata.labels" | "metadata.annotations", Some(key)) => {
                let reasons = names::qualified_name(&key.to_ascii_lowercase());
                errs.syntax(&fp, &f.field_path, reasons);
            }
            _ => errs.not_supported(&fp, &f.field_path, supported),
        }
        return;
    }
    errs.one_of(&fp, &f.field_path, supported);
}

pub(super) const RESOURCE_FIELDS: &[&str] = &[
    "limits.cpu",
    "limits.memory",
    "limits.ephemeral-storage",
    "requests.cpu",
    "requests.memory",
    "requests.ephemeral-storage",
];

fn validate_resource_field_selector(
    r: &ResourceFieldSelector,
    in_volume: bool,
    ctx: &SpecContext,
    path: &Path,
    errs: &mut Errors,
) {
    let cp = path.child("containerName");
    if r.container_name.is_empty() {
        if in_volume {
            errs.required(&cp, "");
        }
    } else if !ctx.has_container(&r.container_name) {
        errs.invalid(&cp, q(&r.container_name), "must reference a container in the pod");
    }
    let rp = path.child("resource");
    let hugepages =
        r.resource.starts_with("limits.hugepages-") || r.resource.starts_with("requests.hugepages-");
    if r.resource.is_empty() {
        errs.required(&rp, "");
    } else if !hugepages {
        errs.one_of(&rp, &r.resource, RESOURCE_FIELDS);
    }
    if let Some(d) = r.divisor.as_ref().filter(|d| !d.string.is_empty()) {
        let allowed: &[&str] = if r.resource.ends_with(".cpu") {
            &["1m", "1"]
        } else {
            &["1", "1k", "1M", "1G", "1T", "1P", "1E", "1Ki", "1Mi", "1Gi", "1Ti", "1Pi", "1Ei"]
        };
        errs.one_of(&path.child("divisor"), &d.string, allowed);
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::assert_edit_errors;

    #[test]
    fn invalid_env() {
        let c = "spec.containers[0]";
        assert_edit_errors(&[
            (
                "{name: MODE,",
                "{name: A=B,",
                format!("{c}.env[0].name"),
                "printable ASCII characters other than '='",
            ),
            (
                "{name: MODE, value: production}",
                "{name: MODE, value: x, valueFrom: {fieldRef: {fieldPath: metadata.name}}}",
                format!("{c}.env[0].valueFrom"),
                "may not be specified when `value` is not empty",
            ),
            (
                "{fieldRef: {fieldPath: status.podIP}}",
                "{}",
                format!("{c}.env[1].valueFrom"),
                "must specify one of",
            ),
            (
                "{fieldRef: {fieldPath: status.podIP}}",
                "{fieldRef: {fieldPath: status.podIP}, secretKeyRef: {name: a, key: b}}",
                format!("{c}.env[1].valueFrom"),
                "may not have more than one field",
            ),
            (
                "fieldPath: status.podIP",
                "fieldPath: status.phase",
                format!("{c}.env[1].valueFrom.fieldRef.fieldPath"),
                "Unsupported value: \"status.phase\"",
            ),
            (
                "{name: db, key: password}",
                "{name: db, key: 'a/b'}",
                format!("{c}.env[2].valueFrom.secretKeyRef.key"),
                "a valid config key",
            ),
            (
                "divisor: 1m",
                "divisor: 2m",
                format!("{c}.env[3].valueFrom.resourceFieldRef.divisor"),
                "Unsupported value: \"2m\"",
            ),
            (
                "- configMapRef: {name: app-env}",
                "- {prefix: X_}",
                format!("{c}.envFrom[0]"),
                "must specify one of: `configMapRef` or `secretRef`",
            ),
        ]);
    }
}
