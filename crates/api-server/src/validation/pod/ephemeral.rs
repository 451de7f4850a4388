//! Ephemeral containers (`kubectl debug`), as Kubernetes validates them: what `validateEphemeralContainers`
//! adds to the checks every container gets (its target must be one of the pod's other containers; only the
//! fields of Kubernetes' allow-list may be set; no volume subpaths), and what a write through the
//! `pods/<name>/ephemeralcontainers` subresource may change (`ValidatePodEphemeralContainersUpdate`):
//! ephemeral containers may be added, never changed or removed.

use navarch_api::v1::*;
use serde_json::Value;

use super::{PodSpecRules, SpecContext, validate_pod_spec};
use crate::validation::field::{Errors, Path, q};

/// Kubernetes' reason for a field outside the allow-list.
const NOT_ALLOWED: &str = "cannot be set for an Ephemeral Container";

/// The annotation that marks a mirror of a static pod (which cannot have ephemeral containers).
const MIRROR_POD_ANNOTATION: &str = "kubernetes.io/config.mirror";

/// The checks only an ephemeral container gets, after those of every container.
pub(super) fn validate_ephemeral_container(c: &Container, path: &Path, ctx: &SpecContext, errs: &mut Errors) {
    let target = &c.target_container_name;
    if !target.is_empty() && !ctx.has_container(target) {
        errs.not_found(&path.child("targetContainerName"), q(target));
    }
    // Kubernetes checks an allow-list of fields, reporting those outside it that are set in the order of
    // its `EphemeralContainerCommon`; these are the fields outside it.
    for (set, field) in [
        (!c.ports.is_empty(), "ports"),
        (c.resources.as_ref().is_some_and(|r| r != &ResourceRequirements::default()), "resources"),
        (!c.resize_policy.is_empty(), "resizePolicy"),
        (c.restart_policy.is_some(), "restartPolicy"),
        (!c.restart_policy_rules.is_empty(), "restartPolicyRules"),
        (c.liveness_probe.is_some(), "livenessProbe"),
        (c.readiness_probe.is_some(), "readinessProbe"),
        (c.startup_probe.is_some(), "startupProbe"),
        (c.lifecycle.is_some(), "lifecycle"),
    ] {
        if set {
            errs.forbidden(&path.child(field), NOT_ALLOWED);
        }
    }
    // Subpaths are bind mounts kept until the pod ends, and imply the container is part of the workload.
    for (i, m) in c.volume_mounts.iter().enumerate() {
        let p = path.child("volumeMounts").index(i);
        for (value, field) in [(&m.sub_path, "subPath"), (&m.sub_path_expr, "subPathExpr")] {
            if !value.is_empty() {
                errs.forbidden(&p.child(field), NOT_ALLOWED);
            }
        }
    }
}

/// A write through `pods/<name>/ephemeralcontainers`: `new` is the stored pod `old` with the request's
/// ephemeral containers. The whole pod must be valid, and every ephemeral container `old` has must still
/// be there, unchanged (order does not matter: a patch need not keep it).
pub(in crate::validation) fn validate_ephemeral_containers_update(new: &Pod, old: &Pod, errs: &mut Errors) {
    let default = PodSpec::default();
    let spec = new.spec.as_ref().unwrap_or(&default);
    validate_pod_spec(spec, &Path::new("spec"), &PodSpecRules::pod(), errs);
    if old.metadata.as_ref().is_some_and(|m| m.annotations.contains_key(MIRROR_POD_ANNOTATION)) {
        // Kubernetes answers this alone, at the empty path (which it prints `[]`).
        *errs = Errors::default();
        errs.forbidden(&Path::new("[]"), "static pods do not support ephemeral containers");
        return;
    }
    let old_list = old.spec.as_ref().map(|s| s.ephemeral_containers.as_slice()).unwrap_or_default();
    let path = Path::new("spec").child("ephemeralContainers");
    for o in old_list {
        match spec.ephemeral_containers.iter().find(|n| n.name == o.name) {
            None => errs.forbidden(
                &path,
                format!("existing ephemeral containers {} may not be removed\n", q(&o.name)),
            ),
            Some(n) if n != o => errs.forbidden(
                &path.key(&o.name),
                format!("existing ephemeral containers {} may not be changed\n{}", q(&o.name), diff(o, n)),
            ),
            Some(_) => {}
        }
    }
}

/// What changed between two versions of a container, a line per changed field: `-\t<path>: <old>` and
/// `+\t<path>: <new>` (JSON values; Kubernetes prints a Go struct diff here instead).
fn diff(old: &Container, new: &Container) -> String {
    let (Ok(old), Ok(new)) = (serde_json::to_value(old), serde_json::to_value(new)) else {
        return String::new();
    };
    let mut lines = Vec::new();
    diff_values("", &old, &new, &mut lines);
    lines.join("\n")
}

fn diff_values(path: &str, old: &Value, new: &Value, lines: &mut Vec<String>) {
    if old == new {
        return;
    }
    if let (Value::Object(a), Value::Object(b)) = (old, new) {
        let mut keys: Vec<&String> = a.keys().collect();
        keys.extend(b.keys().filter(|k| !a.contains_key(*k)));
        for k in keys {
            let p = if path.is_empty() { k.clone() } else { format!("{path}.{k}") };
            diff_values(&p, a.get(k).unwrap_or(&Value::Null), b.get(k).unwrap_or(&Value::Null), lines);
        }
        return;
    }
    for (sign, v) in [('-', old), ('+', new)] {
        if !v.is_null() {
            lines.push(format!("{sign}\t{path}: {v}"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::POD;
    use crate::validation::testing::*;
    use crate::validation::{FieldError, validate_ephemeral_containers_update};

    /// The test pod with these ephemeral containers (YAML list items at the spec's indentation).
    fn with_ephemeral(items: &str) -> String {
        edit(POD, "  volumes:\n", &format!("  ephemeralContainers:\n{items}  volumes:\n"))
    }

    const DEBUG: &str =
        "  - {name: debug, image: busybox:1.36, stdin: true, tty: true, targetContainerName: app}\n";

    fn update(old: &str, new: &str) -> Vec<FieldError> {
        validate_ephemeral_containers_update(&defaulted(new), &defaulted(old))
    }

    fn assert_update_single(old: &str, new: &str, path: &str, reason: &str) {
        assert_single(&update(old, new), path, reason, new);
    }

    #[test]
    fn adding_one_is_allowed_and_changing_or_removing_is_not() {
        let one = with_ephemeral(DEBUG);
        assert!(update(POD, &one).is_empty(), "{}", render(&update(POD, &one)));
        let two = with_ephemeral(&format!("{DEBUG}  - {{name: debug2, image: busybox:1.36}}\n"));
        assert!(update(&one, &two).is_empty(), "{}", render(&update(&one, &two)));
        // A patch may reorder them.
        let reordered = with_ephemeral(&format!("  - {{name: debug2, image: busybox:1.36}}\n{DEBUG}"));
        assert!(update(&two, &reordered).is_empty());

        assert_update_single(
            &one,
            POD,
            "spec.ephemeralContainers",
            "Forbidden: existing ephemeral containers \"debug\" may not be removed\n",
        );
        let changed = edit(&one, "image: busybox:1.36, stdin", "image: busybox:1.37, stdin");
        let errs = update(&one, &changed);
        assert_single(
            &errs,
            "spec.ephemeralContainers[debug]",
            "Forbidden: existing ephemeral containers \"debug\" may not be changed\n",
            &changed,
        );
        assert!(
            errs[0].reason.ends_with("-\timage: \"busybox:1.36\"\n+\timage: \"busybox:1.37\""),
            "{}",
            errs[0].reason
        );
    }

    #[test]
    fn the_whole_pod_is_validated_and_static_pods_refuse() {
        let duplicate = with_ephemeral("  - {name: app, image: busybox:1.36}\n");
        assert_update_single(POD, &duplicate, "spec.ephemeralContainers[0].name", "Duplicate value: \"app\"");
        let no_image = with_ephemeral("  - {name: debug}\n");
        assert_update_single(POD, &no_image, "spec.ephemeralContainers[0].image", "Required value");
        let mirror = edit(
            POD,
            "labels: {app: web}",
            "labels: {app: web}\n  annotations: {kubernetes.io/config.mirror: x}",
        );
        let new = edit(
            &with_ephemeral(DEBUG),
            "labels: {app: web}",
            "labels: {app: web}\n  annotations: {kubernetes.io/config.mirror: x}",
        );
        assert_update_single(
            &mirror,
            &new,
            "[]",
            "Forbidden: static pods do not support ephemeral containers",
        );
    }

    /// On a plain update of the pod, ephemeral containers are a field like any other: not to be changed.
    #[test]
    fn a_pod_update_may_not_add_them() {
        assert_update_error(
            POD,
            &with_ephemeral(DEBUG),
            "spec.ephemeralContainers",
            "Forbidden: pod updates may not change fields other than",
        );
    }

    #[test]
    fn fields_ephemeral_containers_may_not_set() {
        let e = "spec.ephemeralContainers[0]";
        let cases = [
            ("ports: [{containerPort: 80}]", "ports"),
            ("resources: {limits: {cpu: 100m}}", "resources"),
            ("resizePolicy: [{resourceName: cpu, restartPolicy: NotRequired}]", "resizePolicy"),
            ("restartPolicy: Always", "restartPolicy"),
            ("livenessProbe: {exec: {command: ['true']}}", "livenessProbe"),
            ("readinessProbe: {exec: {command: ['true']}}", "readinessProbe"),
            ("startupProbe: {exec: {command: ['true']}}", "startupProbe"),
            ("lifecycle: {preStop: {exec: {command: ['true']}}}", "lifecycle"),
            ("volumeMounts: [{name: data, mountPath: /d, subPath: x}]", "volumeMounts[0].subPath"),
            ("volumeMounts: [{name: data, mountPath: /d, subPathExpr: x}]", "volumeMounts[0].subPathExpr"),
        ];
        for (field, path) in cases {
            let new = with_ephemeral(&format!("  - {{name: debug, image: busybox:1.36, {field}}}\n"));
            assert_update_single(
                POD,
                &new,
                &format!("{e}.{path}"),
                "Forbidden: cannot be set for an Ephemeral Container",
            );
        }
        // What they may set: a shell, its environment, mounts, a security context, stdio.
        let allowed = with_ephemeral(
            "  - name: debug\n    image: busybox:1.36\n    command: [sh]\n    args: [-l]\n    workingDir: /\n    env: [{name: A, value: b}]\n    volumeMounts: [{name: data, mountPath: /data}]\n    securityContext: {privileged: true}\n    stdin: true\n    stdinOnce: true\n    tty: true\n    targetContainerName: init\n    resources: {}\n",
        );
        assert!(update(POD, &allowed).is_empty(), "{}", render(&update(POD, &allowed)));
        let nowhere = with_ephemeral("  - {name: debug, image: busybox:1.36, targetContainerName: nope}\n");
        assert_update_single(POD, &nowhere, &format!("{e}.targetContainerName"), "Not found: \"nope\"");
    }
}
