//! `metadata` of every kind: names (per kind's rule), namespace, labels, annotations, owner references,
//! finalizers; label selectors; what an update may not change.

use std::collections::{BTreeMap, BTreeSet};

use navarch_api::KindInfo;
use navarch_api::names;
use navarch_api::v1::{LabelSelector, ObjectMeta, OwnerReference};

use super::field::{Errors, Path, q};

/// Kubernetes' limit on the total size of an object's annotations (keys and values).
const TOTAL_ANNOTATION_SIZE: usize = 256 * 1024;
/// Finalizers that need no domain prefix.
const STANDARD_FINALIZERS: &[&str] = &["kubernetes", "orphan", "foregroundDeletion"];

/// The syntax a kind's names must follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum NameRule {
    Dns1123Subdomain,
    /// A subdomain of at most this many characters (CronJob: 52, leaving room for the Job suffix).
    Dns1123SubdomainMax(usize),
    Dns1123Label,
    Dns1035Label,
    /// Any single URL path segment (RBAC objects, CertificateSigningRequests).
    PathSegment,
}

impl NameRule {
    fn check(self, v: &str) -> Vec<String> {
        match self {
            NameRule::Dns1123Subdomain => names::dns1123_subdomain(v),
            NameRule::Dns1123SubdomainMax(max) => {
                let mut errs = names::dns1123_subdomain(v);
                if v.len() > max {
                    errs.push(format!("must be no more than {max} characters"));
                }
                errs
            }
            NameRule::Dns1123Label => names::dns1123_label(v),
            NameRule::Dns1035Label => names::dns1035_label(v),
            NameRule::PathSegment => names::path_segment_name(v),
        }
    }
}

/// Validates the metadata of an object being created or updated.
pub(super) fn validate_object_meta(
    m: &ObjectMeta,
    kind: &KindInfo,
    rule: NameRule,
    path: &Path,
    errs: &mut Errors,
) {
    if !m.generate_name.is_empty() {
        // The prefix gets a random suffix: check it as if it ended with an alphanumeric.
        let masked = match m.generate_name.strip_suffix('-') {
            Some(p) => format!("{p}a"),
            None => m.generate_name.clone(),
        };
        let got = format!(", got {}", q(&masked));
        for r in rule.check(&masked) {
            let r = r.strip_suffix(&got).unwrap_or(&r);
            errs.invalid(&path.child("generateName"), q(&m.generate_name), r);
        }
    }
    if m.name.is_empty() {
        if m.generate_name.is_empty() {
            errs.required(&path.child("name"), "name or generateName is required");
        }
    } else {
        errs.syntax(&path.child("name"), &m.name, rule.check(&m.name));
    }

    let ns = path.child("namespace");
    if kind.namespaced {
        if m.namespace.is_empty() {
            errs.required(&ns, "");
        } else {
            errs.syntax(&ns, &m.namespace, names::dns1123_label(&m.namespace));
        }
    } else if !m.namespace.is_empty() {
        errs.forbidden(&ns, "not allowed on this type");
    }

    validate_labels(&m.labels, &path.child("labels"), errs);
    validate_annotations(&m.annotations, &path.child("annotations"), errs);
    validate_owner_references(&m.owner_references, &path.child("ownerReferences"), errs);
    validate_finalizers(&m.finalizers, &path.child("finalizers"), errs);
    if let Some(s) = m.deletion_grace_period_seconds {
        errs.non_negative(&path.child("deletionGracePeriodSeconds"), s);
    }
}

/// What an update may not change in metadata.
pub(super) fn validate_object_meta_update(
    new: &ObjectMeta,
    old: &ObjectMeta,
    path: &Path,
    errs: &mut Errors,
) {
    if new.name != old.name {
        errs.immutable(&path.child("name"));
    }
    if new.namespace != old.namespace {
        errs.immutable(&path.child("namespace"));
    }
    if !new.uid.is_empty() && new.uid != old.uid {
        errs.immutable(&path.child("uid"));
    }
    if !old.deletion_timestamp.is_empty() {
        let added: Vec<&String> = new.finalizers.iter().filter(|f| !old.finalizers.contains(f)).collect();
        if !added.is_empty() {
            let detail = format!(
                "no new finalizers can be added if the object is being deleted, found new finalizers {added:?}"
            );
            errs.forbidden(&path.child("finalizers"), detail);
        }
    }
}

/// Label keys are qualified names, values label values; errors name the key (`labels[app]`).
pub(super) fn validate_labels(labels: &BTreeMap<String, String>, path: &Path, errs: &mut Errors) {
    for (k, v) in labels {
        let p = path.key(k);
        errs.syntax(&p, k, names::qualified_name(k));
        errs.syntax(&p, v, names::label_value(v));
    }
}

/// Annotation keys are qualified names; keys and values together at most 256 KiB.
pub(super) fn validate_annotations(annotations: &BTreeMap<String, String>, path: &Path, errs: &mut Errors) {
    let mut total = 0;
    for (k, v) in annotations {
        errs.syntax(&path.key(k), k, names::qualified_name(&k.to_ascii_lowercase()));
        total += k.len() + v.len();
    }
    if total > TOTAL_ANNOTATION_SIZE {
        errs.too_long(path, TOTAL_ANNOTATION_SIZE);
    }
}

/// Template metadata (pod templates, job templates): only labels and annotations matter.
pub(super) fn validate_template_meta(m: Option<&ObjectMeta>, path: &Path, errs: &mut Errors) {
    if let Some(m) = m {
        validate_labels(&m.labels, &path.child("labels"), errs);
        validate_annotations(&m.annotations, &path.child("annotations"), errs);
    }
}

fn validate_owner_references(refs: &[OwnerReference], path: &Path, errs: &mut Errors) {
    let mut controllers = Vec::new();
    for (i, r) in refs.iter().enumerate() {
        let p = path.index(i);
        let version = r.api_version.rsplit('/').next().unwrap_or_default();
        if version.is_empty() {
            errs.invalid(&p.child("apiVersion"), q(&r.api_version), "version must not be empty");
        }
        if r.kind.is_empty() {
            errs.invalid(&p.child("kind"), q(&r.kind), "kind must not be empty");
        }
        if r.name.is_empty() {
            errs.invalid(&p.child("name"), q(&r.name), "name must not be empty");
        }
        if r.uid.is_empty() {
            errs.invalid(&p.child("uid"), q(&r.uid), "uid must not be empty");
        }
        if r.api_version == "v1" && r.kind == "Event" {
            errs.invalid(&p, q("v1, Kind=Event"), "v1, Kind=Event is disallowed from being an owner");
        }
        if r.controller == Some(true) {
            controllers.push(format!("{}/{}", r.kind, r.name));
        }
    }
    if controllers.len() > 1 {
        errs.invalid(
            path,
            q(&controllers.join(", ")),
            format!(
                "Only one reference can have Controller set to true. Found \"true\" in references for {}",
                controllers.join(" and ")
            ),
        );
    }
}

fn validate_finalizers(finalizers: &[String], path: &Path, errs: &mut Errors) {
    for (i, f) in finalizers.iter().enumerate() {
        let p = path.index(i);
        let reasons = names::qualified_name(f);
        if !reasons.is_empty() {
            errs.syntax(&p, f, reasons);
        } else if !f.contains('/') && !STANDARD_FINALIZERS.contains(&f.as_str()) {
            errs.invalid(&p, q(f), "name is neither a standard finalizer name nor is it fully qualified");
        }
    }
    let has = |f: &str| finalizers.iter().any(|x| x == f);
    if has("orphan") && has("foregroundDeletion") {
        errs.invalid(path, q("orphan"), "finalizer orphan and foregroundDeletion cannot be both set");
    }
}

/// A structured label selector: label syntax and the operator/values rules of `matchExpressions`.
pub(super) fn validate_label_selector(sel: &LabelSelector, path: &Path, errs: &mut Errors) {
    validate_labels(&sel.match_labels, &path.child("matchLabels"), errs);
    for (i, e) in sel.match_expressions.iter().enumerate() {
        let p = path.child("matchExpressions").index(i);
        match e.operator.as_str() {
            "In" | "NotIn" => {
                if e.values.is_empty() {
                    errs.required(&p.child("values"), "must be specified when `operator` is 'In' or 'NotIn'");
                }
            }
            "Exists" | "DoesNotExist" => {
                if !e.values.is_empty() {
                    errs.forbidden(
                        &p.child("values"),
                        "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
                    );
                }
            }
            op => errs.not_supported(&p.child("operator"), op, &["In", "NotIn", "Exists", "DoesNotExist"]),
        }
        errs.syntax(&p.child("key"), &e.key, names::qualified_name(&e.key));
        for (j, v) in e.values.iter().enumerate() {
            errs.syntax(&p.child("values").index(j), v, names::label_value(v));
        }
    }
}

/// A label map as Kubernetes prints it in reasons: `{"app":"web"}`.
pub(super) fn show_labels(labels: &BTreeMap<String, String>) -> String {
    let parts: Vec<String> = labels.iter().map(|(k, v)| format!("{}:{}", q(k), q(v))).collect();
    format!("{{{}}}", parts.join(","))
}

/// Names that must be unique in a list: reports `Duplicate value` for the second and later uses.
#[derive(Default)]
pub(super) struct Unique<'a>(BTreeSet<&'a str>);

impl<'a> Unique<'a> {
    /// Records `v`; false (and a `Duplicate value` error) when it was seen before.
    pub(super) fn check(&mut self, v: &'a str, path: &Path, errs: &mut Errors) -> bool {
        if self.0.insert(v) {
            true
        } else {
            errs.duplicate(path, q(v));
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;

    const CM: &str = "\
apiVersion: v1
kind: ConfigMap
metadata:
  name: app-config
  namespace: default
  labels:
    app.kubernetes.io/name: web
    tier: frontend
  annotations:
    example.com/owner: team-a
  ownerReferences:
  - apiVersion: apps/v1
    kind: Deployment
    name: web
    uid: 1234-5678
    controller: true
  finalizers: [example.com/cleanup, kubernetes]
";

    #[test]
    fn valid_meta() {
        assert_valid(CM);
        assert_valid(&edit(CM, "  name: app-config\n", "  generateName: app-config-\n"));
        assert_valid("apiVersion: v1\nkind: Namespace\nmetadata: {name: team-a}\n");
        assert_valid("apiVersion: v1\nkind: Node\nmetadata: {name: node-1.example.com}\n");
    }

    #[test]
    fn invalid_meta() {
        let cases: &[(&str, &str, &str, &str)] = &[
            (
                "  name: app-config\n",
                "  name: App_Config\n",
                "metadata.name",
                "Invalid value: \"App_Config\": a lowercase RFC 1123 subdomain",
            ),
            ("  name: app-config\n", "", "metadata.name", "Required value: name or generateName is required"),
            (
                "  name: app-config\n",
                "  generateName: Bad_\n",
                "metadata.generateName",
                "Invalid value: \"Bad_\"",
            ),
            ("  namespace: default\n", "", "metadata.namespace", "Required value"),
            (
                "  namespace: default\n",
                "  namespace: Default\n",
                "metadata.namespace",
                "a lowercase RFC 1123 label",
            ),
            (
                "    tier: frontend\n",
                "    tier: -frontend\n",
                "metadata.labels[tier]",
                "Invalid value: \"-frontend\": a valid label must be",
            ),
            (
                "    tier: frontend\n",
                "    bad key: x\n",
                "metadata.labels[bad key]",
                "Invalid value: \"bad key\": name part must consist",
            ),
            (
                "    tier: frontend\n",
                "    /tier: x\n",
                "metadata.labels[/tier]",
                "prefix part must be non-empty",
            ),
            (
                "    example.com/owner: team-a\n",
                "    example.com/bad owner: x\n",
                "metadata.annotations[example.com/bad owner]",
                "name part",
            ),
            (
                "    uid: 1234-5678\n",
                "",
                "metadata.ownerReferences[0].uid",
                "Invalid value: \"\": uid must not be empty",
            ),
            (
                "  - apiVersion: apps/v1\n",
                "  - apiVersion: \"\"\n",
                "metadata.ownerReferences[0].apiVersion",
                "version must not be empty",
            ),
            ("    kind: Deployment\n", "", "metadata.ownerReferences[0].kind", "kind must not be empty"),
            ("    name: web\n", "", "metadata.ownerReferences[0].name", "name must not be empty"),
            (
                "[example.com/cleanup, kubernetes]",
                "[cleanup]",
                "metadata.finalizers[0]",
                "neither a standard finalizer name nor is it fully qualified",
            ),
            (
                "[example.com/cleanup, kubernetes]",
                "[orphan, foregroundDeletion]",
                "metadata.finalizers",
                "cannot be both set",
            ),
        ];
        assert_edit_errors(CM, cases);
    }

    #[test]
    fn two_controllers() {
        let yaml = edit(
            CM,
            "    controller: true\n",
            "    controller: true\n  - {apiVersion: v1, kind: Pod, name: p, uid: u, controller: true}\n",
        );
        assert_error(&yaml, "metadata.ownerReferences", "Only one reference can have Controller set to true");
    }

    #[test]
    fn annotations_total_size() {
        let big = "x".repeat(256 * 1024);
        let yaml = edit(CM, "    example.com/owner: team-a\n", &format!("    example.com/owner: {big}\n"));
        assert_error(&yaml, "metadata.annotations", "Too long: must have at most 262144 bytes");
    }

    #[test]
    fn names_per_kind() {
        assert_error(
            "apiVersion: v1\nkind: Namespace\nmetadata: {name: a.b}\n",
            "metadata.name",
            "a lowercase RFC 1123 label",
        );
        assert_error(
            "apiVersion: v1\nkind: Namespace\nmetadata: {name: a, namespace: default}\n",
            "metadata.namespace",
            "Forbidden: not allowed on this type",
        );
        assert_error(
            "apiVersion: v1\nkind: Service\nmetadata: {name: 1web, namespace: default}\nspec: {ports: [{port: 80}]}\n",
            "metadata.name",
            "a DNS-1035 label",
        );
    }

    #[test]
    fn update_rules() {
        let renamed = edit(CM, "  name: app-config\n", "  name: other\n");
        assert_update_error(CM, &renamed, "metadata.name", "field is immutable");
        let moved = edit(CM, "  namespace: default\n", "  namespace: other\n");
        assert_update_error(CM, &moved, "metadata.namespace", "field is immutable");
        let with_uid = edit(CM, "  namespace: default\n", "  namespace: default\n  uid: a\n");
        let other_uid = edit(CM, "  namespace: default\n", "  namespace: default\n  uid: b\n");
        assert_update_error(&with_uid, &other_uid, "metadata.uid", "field is immutable");
        let deleting = edit(
            CM,
            "  namespace: default\n",
            "  namespace: default\n  deletionTimestamp: \"2024-01-01T00:00:00Z\"\n",
        );
        let more = edit(
            &deleting,
            "[example.com/cleanup, kubernetes]",
            "[example.com/cleanup, kubernetes, example.com/x]",
        );
        assert_update_error(&deleting, &more, "metadata.finalizers", "no new finalizers can be added");
        assert!(update_errors(CM, CM).is_empty());
    }
}
