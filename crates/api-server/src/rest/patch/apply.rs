//! Server-side apply (`PATCH` with `Content-Type: application/apply-patch+yaml`; JSON is YAML too): reading
//! the applied configuration, merging it into the live object with `navarch_api::managed_fields`, and
//! Kubernetes' errors for it. The write itself (create when absent, else update at the read
//! resourceVersion, retried on a race) is the caller's.
//!
//! The errors are Kubernetes': 422 `PatchOptions ... fieldManager: Required value` without a manager
//! (checked by the caller), 400 `error decoding YAML`, `invalid object type: <gvk>` for another kind or
//! version, `metadata.managedFields must be nil`, a name or namespace that is not the URL's; 500 `failed to
//! create typed patch object (...)` for a field the schema does not have, a wrong type or a repeated list
//! key (Kubernetes answers these with 500 too); 409 `Apply failed with N conflict(s)` with one
//! `FieldManagerConflict` cause per field.

use http::StatusCode;
use navarch_api::managed_fields::{
    self, ApplyRequest, Managed, ManagedFieldsError, ManagerId, Scope, last_applied_allowed, typed,
    with_last_applied,
};
use navarch_api::{KindInfo, Object};
use serde_json::Value;

use crate::rest::status::{Cause, Details, StatusError};

/// The manager whose applies keep kubectl's last-applied annotation up to date.
const KUBECTL: &str = "kubectl";

/// An apply's outcome: the object to write and its managed fields.
pub struct Applied {
    pub object: Object,
    pub managed: Managed,
    pub applier: ManagerId,
}

/// `group/version, Kind=kind`, as Go prints a GroupVersionKind.
fn gvk(api_version: &str, kind: &str) -> String {
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    format!("{group}/{version}, Kind={kind}")
}

/// Reads an apply body as a configuration of kind `info` for the object `namespace/name` of the URL.
pub fn parse(body: &[u8], info: &KindInfo, namespace: &str, name: &str) -> Result<Value, StatusError> {
    let config: Value = serde_yaml::from_slice(body)
        .map_err(|e| StatusError::bad_request(format!("error decoding YAML: {e}")))?;
    let Value::Object(m) = &config else {
        return Err(StatusError::bad_request(
            "error decoding YAML: the apply configuration must be an object",
        ));
    };
    let text = |k: &str| m.get(k).and_then(Value::as_str).unwrap_or("");
    if text("apiVersion") != info.api_version || text("kind") != info.kind {
        return Err(StatusError::bad_request(format!(
            "invalid object type: {}",
            gvk(text("apiVersion"), text("kind"))
        )));
    }
    let meta = &config["metadata"];
    if !meta["managedFields"].is_null() {
        return Err(StatusError::bad_request("metadata.managedFields must be nil"));
    }
    let obj_name = meta["name"].as_str().unwrap_or("");
    if obj_name != name {
        return Err(StatusError::bad_request(format!(
            "the name of the object ({obj_name}) does not match the name on the URL ({name})"
        )));
    }
    let obj_ns = meta["namespace"].as_str().unwrap_or("");
    if info.namespaced && !obj_ns.is_empty() && obj_ns != namespace {
        return Err(StatusError::bad_request(format!(
            "the namespace of the object ({obj_ns}) does not match the namespace on the URL ({namespace})"
        )));
    }
    Ok(config)
}

/// Kubernetes' error for a configuration its schema cannot take.
fn typed_error(info: &KindInfo, config: &Value, reason: impl std::fmt::Display) -> StatusError {
    let meta = &config["metadata"];
    StatusError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "",
        format!(
            "failed to create typed patch object ({}/{}; {}): {reason}",
            meta["namespace"].as_str().unwrap_or(""),
            meta["name"].as_str().unwrap_or(""),
            gvk(info.api_version, info.kind)
        ),
    )
}

/// Checks the configuration against the kind's schema: every field known, of the right type.
fn check_typed(info: &KindInfo, config: &Value) -> Result<(), StatusError> {
    let yaml = serde_yaml::to_value(config).map_err(|e| typed_error(info, config, e))?;
    match Object::from_value(info.kind, yaml) {
        Ok(_) => Ok(()),
        Err(navarch_api::Error::Field { path, reason }) if reason.starts_with("unknown field") => {
            Err(typed_error(info, config, format!(".{path}: field not declared in schema")))
        }
        Err(navarch_api::Error::Field { path, reason }) => {
            Err(typed_error(info, config, format!(".{path}: {reason}")))
        }
        Err(e) => Err(typed_error(info, config, e)),
    }
}

/// 409 with one `FieldManagerConflict` cause per field, so kubectl prints its conflict help.
fn conflict_error(conflicts: &managed_fields::Conflicts) -> StatusError {
    let causes = conflicts
        .0
        .iter()
        .map(|c| Cause {
            reason: "FieldManagerConflict",
            message: format!("conflict with {}", c.manager),
            field: c.path.to_string(),
        })
        .collect();
    StatusError {
        details: Some(Box::new(Details { causes, ..Default::default() })),
        ..StatusError::new(StatusCode::CONFLICT, "Conflict", conflicts.to_string())
    }
}

/// One apply's inputs besides the object and the configuration.
pub struct Options<'a> {
    pub manager: &'a str,
    pub force: bool,
    /// `""` or `"status"`.
    pub subresource: &'a str,
    /// The time of the request (RFC 3339).
    pub now: &'a str,
}

/// Applies `config` over `current` (`None` when the object does not exist yet): the merged object, as an
/// object of the kind, with the managed fields to write.
pub fn apply(
    info: &KindInfo,
    current: Option<&Object>,
    config: &Value,
    opts: &Options,
) -> Result<Applied, StatusError> {
    check_typed(info, config)?;
    let root = typed::root(info.kind).ok_or_else(|| typed_error(info, config, "no schema for the kind"))?;
    // Compared and merged in the stored form (`cpu: 1` is "1"); the annotation keeps what was sent.
    let canonical = typed::canonical(info.kind, config)
        .ok_or_else(|| typed_error(info, config, "not an object of the kind"))?;
    let internal = |e: ManagedFieldsError| {
        StatusError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalError",
            format!("Internal error occurred: {e}"),
        )
    };
    let live = current.map(managed_fields::update::object_json).transpose().map_err(internal)?;
    let mut managed = match current {
        Some(c) => Managed::decode(&c.meta().managed_fields).map_err(|e| {
            StatusError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "InternalError",
                format!("Internal error occurred: failed to decode managed fields: {e}"),
            )
        })?,
        None => Managed::default(),
    };
    let allowed = live
        .as_ref()
        .filter(|_| opts.manager == KUBECTL)
        .and_then(|l| last_applied_allowed(l, root, info.api_version));
    let req = ApplyRequest {
        live: live.as_ref(),
        config: &canonical,
        root,
        scope: Scope { subresource: opts.subresource, has_status: info.has_status },
        manager: opts.manager,
        api_version: info.api_version,
        force: opts.force,
        allowed: allowed.as_ref(),
        now: opts.now,
    };
    let merged = managed_fields::apply(&mut managed, &req).map_err(|e| match e {
        ManagedFieldsError::Conflicts(c) => conflict_error(&c),
        other => typed_error(info, config, other),
    })?;
    let merged = if opts.manager == KUBECTL { with_last_applied(merged, config) } else { merged };
    let yaml = serde_yaml::to_value(&merged).map_err(|e| typed_error(info, config, e))?;
    let object = Object::from_value(info.kind, yaml).map_err(|e| typed_error(info, config, e))?;
    Ok(Applied { object, managed, applier: ManagerId::apply(opts.manager, opts.subresource) })
}

#[cfg(test)]
mod tests {
    use navarch_api::kind_info;
    use serde_json::json;

    use super::*;

    fn deployment() -> &'static KindInfo {
        kind_info("Deployment").unwrap()
    }

    #[test]
    fn configurations_are_checked_as_kubernetes_does() {
        let info = deployment();
        let ok = br#"{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web"}}"#;
        assert!(parse(ok, info, "default", "web").is_ok());
        let yaml = b"apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  namespace: default\n";
        assert!(parse(yaml, info, "default", "web").is_ok());
        let e = parse(
            br#"{"apiVersion":"v1","kind":"Deployment","metadata":{"name":"web"}}"#,
            info,
            "default",
            "web",
        )
        .err()
        .unwrap();
        assert_eq!(
            (e.code, e.message.as_str()),
            (StatusCode::BAD_REQUEST, "invalid object type: /v1, Kind=Deployment")
        );
        let e = parse(br#"{"metadata":{"name":"web"}}"#, info, "default", "web").err().unwrap();
        assert_eq!(e.message, "invalid object type: /, Kind=");
        let with_mf =
            br#"{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web","managedFields":[]}}"#;
        assert_eq!(
            parse(with_mf, info, "default", "web").err().unwrap().message,
            "metadata.managedFields must be nil"
        );
        let e = parse(ok, info, "default", "other").err().unwrap();
        assert_eq!(e.message, "the name of the object (web) does not match the name on the URL (other)");
        let ns = br#"{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web","namespace":"x"}}"#;
        assert!(
            parse(ns, info, "default", "web").err().unwrap().message.contains("namespace of the object (x)")
        );
        assert!(
            parse(b"{", info, "default", "web").err().unwrap().message.starts_with("error decoding YAML")
        );
    }

    #[test]
    fn typed_errors_and_conflicts() {
        let info = deployment();
        let opts = Options { manager: "a", force: false, subresource: "", now: "2026-01-01T00:00:00Z" };
        let bad = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "default"},
            "spec": {"replicass": 1}});
        let e = apply(info, None, &bad, &opts).err().unwrap();
        assert_eq!(e.code, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(
            e.message,
            "failed to create typed patch object (default/web; apps/v1, Kind=Deployment): .spec.replicass: field not declared in schema"
        );
        let config = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "default"},
            "spec": {"replicas": 1}});
        let created = apply(info, None, &config, &opts).unwrap();
        let mut current = created.object.clone();
        current.meta_mut().managed_fields = created.managed.encode();
        current.meta_mut().uid = "u".into();
        let mut other = config.clone();
        other["spec"]["replicas"] = json!(2);
        let e = apply(info, Some(&current), &other, &Options { manager: "b", ..opts }).err().unwrap();
        assert_eq!(e.code, StatusCode::CONFLICT);
        assert_eq!(e.reason, "Conflict");
        assert_eq!(e.message, r#"Apply failed with 1 conflict: conflict with "a": .spec.replicas"#);
        let v: Value = serde_json::from_slice(&e.to_json()).unwrap();
        assert_eq!(
            v["details"],
            json!({"causes": [{"reason": "FieldManagerConflict", "message": "conflict with \"a\"", "field": ".spec.replicas"}]})
        );
        let forced =
            apply(info, Some(&current), &other, &Options { manager: "b", force: true, ..opts }).unwrap();
        assert!(forced.managed.get(&ManagerId::apply("a", "")).is_none());
    }
}
