//! rbac.authorization.k8s.io/v1 — Role, ClusterRole, RoleBinding, ClusterRoleBinding: Kubernetes' defaults
//! (`pkg/apis/rbac/v1/defaults.go`: a binding's `roleRef.apiGroup`, a subject's `apiGroup` by kind) and
//! validation (`pkg/apis/rbac/validation`: rules, aggregation selectors, role references that never change,
//! subjects), with Kubernetes' messages. Names of these kinds are any URL path segment (the registry's name
//! rule).

use navarch_api::names;
use navarch_api::v1::{ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding, RoleRef, Subject};

use super::field::{Errors, Path, q};
use super::meta::validate_label_selector;

/// The API group of the RBAC kinds, of role references and of User and Group subjects.
pub const RBAC_GROUP: &str = "rbac.authorization.k8s.io";
pub const USER: &str = "User";
pub const GROUP: &str = "Group";
pub const SERVICE_ACCOUNT: &str = "ServiceAccount";

// ---------------------------------------------------------------------------------------------------------
// Defaults
// ---------------------------------------------------------------------------------------------------------

pub(super) fn default_role_binding(b: &mut RoleBinding) {
    default_binding(&mut b.role_ref, &mut b.subjects);
}

pub(super) fn default_cluster_role_binding(b: &mut ClusterRoleBinding) {
    default_binding(&mut b.role_ref, &mut b.subjects);
}

/// `roleRef.apiGroup` is the RBAC group; a User or Group subject's `apiGroup` too (a ServiceAccount's
/// stays the core group). A binding without a roleRef gets an empty one, as Kubernetes' value field reads,
/// so that validation names what is missing.
fn default_binding(role_ref: &mut Option<RoleRef>, subjects: &mut [Subject]) {
    let role_ref = role_ref.get_or_insert_with(Default::default);
    if role_ref.api_group.is_empty() {
        role_ref.api_group = RBAC_GROUP.to_string();
    }
    for s in subjects {
        if s.api_group.is_empty() && (s.kind == USER || s.kind == GROUP) {
            s.api_group = RBAC_GROUP.to_string();
        }
    }
}

// ---------------------------------------------------------------------------------------------------------
// Validation
// ---------------------------------------------------------------------------------------------------------

pub(super) fn validate_role(role: &Role, errs: &mut Errors) {
    validate_rules(&role.rules, true, errs);
}

pub(super) fn validate_cluster_role(role: &ClusterRole, errs: &mut Errors) {
    validate_rules(&role.rules, false, errs);
    if let Some(rule) = &role.aggregation_rule {
        let path = Path::new("aggregationRule").child("clusterRoleSelectors");
        if rule.cluster_role_selectors.is_empty() {
            errs.required(&path, "at least one clusterRoleSelector required if aggregationRule is non-nil");
        }
        for (i, selector) in rule.cluster_role_selectors.iter().enumerate() {
            validate_label_selector(selector, &path.index(i), errs);
        }
    }
}

pub(super) fn validate_role_binding(b: &RoleBinding, old: Option<&RoleBinding>, errs: &mut Errors) {
    validate_binding(b.role_ref.as_ref(), &b.subjects, true, errs);
    if let Some(old) = old {
        validate_role_ref_unchanged(b.role_ref.as_ref(), old.role_ref.as_ref(), errs);
    }
}

pub(super) fn validate_cluster_role_binding(
    b: &ClusterRoleBinding,
    old: Option<&ClusterRoleBinding>,
    errs: &mut Errors,
) {
    validate_binding(b.role_ref.as_ref(), &b.subjects, false, errs);
    if let Some(old) = old {
        validate_role_ref_unchanged(b.role_ref.as_ref(), old.role_ref.as_ref(), errs);
    }
}

fn validate_rules(rules: &[PolicyRule], namespaced: bool, errs: &mut Errors) {
    for (i, rule) in rules.iter().enumerate() {
        validate_policy_rule(rule, namespaced, &Path::new("rules").index(i), errs);
    }
}

/// `ValidatePolicyRule`: verbs; then either non-resource URLs (ClusterRoles only, alone) or API groups and
/// resources (resource names with one resource only).
fn validate_policy_rule(rule: &PolicyRule, namespaced: bool, path: &Path, errs: &mut Errors) {
    if rule.verbs.is_empty() {
        errs.required(&path.child("verbs"), "verbs must contain at least one value");
    }
    if !rule.non_resource_ur_ls.is_empty() {
        let urls = path.child("nonResourceURLs");
        let value = go_strings(&rule.non_resource_ur_ls);
        if namespaced {
            errs.invalid(&urls, &value, "namespaced rules cannot apply to non-resource URLs");
        }
        if !rule.api_groups.is_empty() || !rule.resources.is_empty() || !rule.resource_names.is_empty() {
            errs.invalid(&urls, &value, "rules cannot apply to both regular resources and non-resource URLs");
        }
        return;
    }
    if rule.api_groups.is_empty() {
        errs.required(&path.child("apiGroups"), "resource rules must supply at least one api group");
    }
    if rule.resources.is_empty() {
        errs.required(&path.child("resources"), "resource rules must supply at least one resource");
    }
    if !rule.resource_names.is_empty() && rule.resources.len() > 1 {
        errs.required(&path.child("resourceNames"), "resource names cannot apply to multiple resources");
    }
}

/// The role reference (the RBAC group; a Role — RoleBindings only — or a ClusterRole; a name) and the
/// subjects.
fn validate_binding(role_ref: Option<&RoleRef>, subjects: &[Subject], namespaced: bool, errs: &mut Errors) {
    let default = RoleRef::default();
    let role_ref = role_ref.unwrap_or(&default);
    let path = Path::new("roleRef");
    if role_ref.api_group != RBAC_GROUP {
        errs.not_supported(&path.child("apiGroup"), &role_ref.api_group, &[RBAC_GROUP]);
    }
    let kinds: &[&str] = if namespaced { &["Role", "ClusterRole"] } else { &["ClusterRole"] };
    errs.one_of(&path.child("kind"), &role_ref.kind, kinds);
    let name = path.child("name");
    if role_ref.name.is_empty() {
        errs.required(&name, "");
    } else {
        for reason in names::path_segment_name(&role_ref.name) {
            errs.invalid(&name, q(&role_ref.name), reason);
        }
    }
    for (i, subject) in subjects.iter().enumerate() {
        validate_subject(subject, namespaced, &Path::new("subjects").index(i), errs);
    }
}

/// `validateRoleBindingSubject`: a name; ServiceAccounts with a DNS-subdomain name, the core group and (in
/// ClusterRoleBindings) a namespace; users and groups in the RBAC group.
fn validate_subject(subject: &Subject, namespaced: bool, path: &Path, errs: &mut Errors) {
    let name = path.child("name");
    if subject.name.is_empty() {
        errs.required(&name, "");
    }
    let group = path.child("apiGroup");
    match subject.kind.as_str() {
        SERVICE_ACCOUNT => {
            if !subject.name.is_empty() {
                errs.syntax(&name, &subject.name, names::dns1123_subdomain(&subject.name));
            }
            if !subject.api_group.is_empty() {
                errs.not_supported(&group, &subject.api_group, &[""]);
            }
            if !namespaced && subject.namespace.is_empty() {
                errs.required(&path.child("namespace"), "");
            }
        }
        USER | GROUP => {
            if subject.name.is_empty() {
                let what = if subject.kind == USER { "user" } else { "group" };
                errs.invalid(&name, q(""), format!("{what} name cannot be empty"));
            }
            if subject.api_group != RBAC_GROUP {
                errs.not_supported(&group, &subject.api_group, &[RBAC_GROUP]);
            }
        }
        other => errs.not_supported(&path.child("kind"), other, &[SERVICE_ACCOUNT, USER, GROUP]),
    }
}

/// A binding's role can never change: `roleRef: Invalid value: rbac.RoleRef{...}: cannot change roleRef`.
fn validate_role_ref_unchanged(new: Option<&RoleRef>, old: Option<&RoleRef>, errs: &mut Errors) {
    let default = RoleRef::default();
    let (new, old) = (new.unwrap_or(&default), old.unwrap_or(&default));
    if new != old {
        let value = format!(
            "rbac.RoleRef{{APIGroup:{}, Kind:{}, Name:{}}}",
            q(&new.api_group),
            q(&new.kind),
            q(&new.name)
        );
        errs.invalid(&Path::new("roleRef"), value, "cannot change roleRef");
    }
}

/// Go's `%#v` of a `[]string`: `[]string{"/healthz", "/metrics"}`.
fn go_strings(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| q(s)).collect();
    format!("[]string{{{}}}", quoted.join(", "))
}

#[cfg(test)]
mod tests {
    use navarch_api::Object;

    use super::super::testing::*;
    use super::RBAC_GROUP;

    const ROLE: &str = "apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: pod-reader, namespace: default}
rules:
- apiGroups: ['']
  resources: [pods]
  verbs: [get, list]
";

    const CLUSTER_ROLE: &str = "apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: 'system:monitoring'}
rules:
- nonResourceURLs: [/healthz, /metrics]
  verbs: [get]
- apiGroups: [apps]
  resources: [deployments]
  resourceNames: [web]
  verbs: ['*']
";

    const BINDING: &str = "apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: read-pods, namespace: default}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: pod-reader}
subjects:
- {kind: User, name: alice}
- {kind: Group, name: devs}
- {kind: ServiceAccount, name: builder}
";

    const CLUSTER_BINDING: &str = "apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: view-all}
roleRef: {kind: ClusterRole, name: view}
subjects:
- {kind: ServiceAccount, name: builder, namespace: ci}
";

    #[test]
    fn valid_objects() {
        for yaml in [ROLE, CLUSTER_ROLE, BINDING, CLUSTER_BINDING] {
            assert_valid(yaml);
        }
        // Names are path segments: upper case, colons and dots are fine.
        assert_valid(&edit(ROLE, "name: pod-reader", "name: 'Pod.Reader:v1'"));
        // A Role without rules grants nothing, but is valid.
        assert_valid(
            "apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata: {name: r, namespace: d}\n",
        );
        let aggregated = "apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: monitoring}
aggregationRule:
  clusterRoleSelectors:
  - matchLabels: {rbac.example.com/aggregate-to-monitoring: 'true'}
  - matchExpressions: [{key: tier, operator: In, values: [a]}]
";
        assert_valid(aggregated);
    }

    #[test]
    fn defaults() {
        let Object::ClusterRoleBinding(b) = defaulted(CLUSTER_BINDING) else { panic!() };
        assert_eq!(b.role_ref.unwrap().api_group, RBAC_GROUP);
        let Object::RoleBinding(b) = defaulted(BINDING) else { panic!() };
        let groups: Vec<&str> = b.subjects.iter().map(|s| s.api_group.as_str()).collect();
        assert_eq!(groups, [RBAC_GROUP, RBAC_GROUP, ""]);
        // A binding without a roleRef is told what it lacks.
        let errs = defaulted_errors(
            "apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata: {name: b, namespace: d}\n",
        );
        assert_eq!(
            render(&errs),
            "  roleRef.kind: Unsupported value: \"\": supported values: \"Role\", \"ClusterRole\"\n  roleRef.name: Required value\n"
        );
    }

    #[test]
    fn names_are_path_segments() {
        assert_edit_errors(
            ROLE,
            &[
                (
                    "name: pod-reader",
                    "name: a/b",
                    "metadata.name",
                    "Invalid value: \"a/b\": may not contain '/'",
                ),
                ("name: pod-reader", "name: '..'", "metadata.name", "Invalid value: \"..\": may not be '..'"),
                ("name: pod-reader", "name: '50%'", "metadata.name", "may not contain '%'"),
            ],
        );
        assert_edit_errors(
            CLUSTER_BINDING,
            &[("name: view}", "name: 'a/b'}", "roleRef.name", "Invalid value: \"a/b\": may not contain '/'")],
        );
    }

    #[test]
    fn rules() {
        assert_edit_errors(
            ROLE,
            &[
                (
                    "verbs: [get, list]",
                    "verbs: []",
                    "rules[0].verbs",
                    "Required value: verbs must contain at least one value",
                ),
                (
                    "apiGroups: ['']",
                    "apiGroups: []",
                    "rules[0].apiGroups",
                    "Required value: resource rules must supply at least one api group",
                ),
                (
                    "resources: [pods]",
                    "resources: []",
                    "rules[0].resources",
                    "Required value: resource rules must supply at least one resource",
                ),
                (
                    "resources: [pods]",
                    "resources: [pods, secrets]\n  resourceNames: [a]",
                    "rules[0].resourceNames",
                    "Required value: resource names cannot apply to multiple resources",
                ),
                (
                    "- apiGroups: ['']\n  resources: [pods]\n",
                    "- nonResourceURLs: [/healthz]\n",
                    "rules[0].nonResourceURLs",
                    "Invalid value: []string{\"/healthz\"}: namespaced rules cannot apply to non-resource URLs",
                ),
            ],
        );
        assert_edit_errors(
            CLUSTER_ROLE,
            &[(
                "- nonResourceURLs: [/healthz, /metrics]\n",
                "- nonResourceURLs: [/healthz, /metrics]\n  resources: [pods]\n",
                "rules[0].nonResourceURLs",
                "Invalid value: []string{\"/healthz\", \"/metrics\"}: rules cannot apply to both regular resources and non-resource URLs",
            )],
        );
        // A rule with nothing at all: every part is named.
        let empty = edit(ROLE, "- apiGroups: ['']\n  resources: [pods]\n  verbs: [get, list]\n", "- {}\n");
        let errs = defaulted_errors(&empty);
        let paths: Vec<&str> = errs.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(paths, ["rules[0].verbs", "rules[0].apiGroups", "rules[0].resources"]);
    }

    #[test]
    fn aggregation_rules() {
        let base = "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {name: agg}\naggregationRule: {clusterRoleSelectors: [SEL]}\n";
        assert_edit_errors(
            base,
            &[
                (
                    "[SEL]",
                    "[]",
                    "aggregationRule.clusterRoleSelectors",
                    "Required value: at least one clusterRoleSelector required",
                ),
                (
                    "SEL",
                    "{matchLabels: {'bad key!': x}}",
                    "aggregationRule.clusterRoleSelectors[0].matchLabels[bad key!]",
                    "Invalid value",
                ),
                (
                    "SEL",
                    "{matchExpressions: [{key: a, operator: In}]}",
                    "aggregationRule.clusterRoleSelectors[0].matchExpressions[0].values",
                    "Required value",
                ),
            ],
        );
    }

    #[test]
    fn role_refs() {
        assert_edit_errors(
            BINDING,
            &[
                (
                    "apiGroup: rbac.authorization.k8s.io,",
                    "apiGroup: example.com,",
                    "roleRef.apiGroup",
                    "Unsupported value: \"example.com\": supported values: \"rbac.authorization.k8s.io\"",
                ),
                (
                    "kind: Role,",
                    "kind: Secret,",
                    "roleRef.kind",
                    "Unsupported value: \"Secret\": supported values: \"Role\", \"ClusterRole\"",
                ),
                ("name: pod-reader}", "name: ''}", "roleRef.name", "Required value"),
            ],
        );
        assert_edit_errors(
            CLUSTER_BINDING,
            &[(
                "kind: ClusterRole,",
                "kind: Role,",
                "roleRef.kind",
                "Unsupported value: \"Role\": supported values: \"ClusterRole\"",
            )],
        );
    }

    #[test]
    fn subjects() {
        assert_edit_errors(
            BINDING,
            &[
                (
                    "{kind: User, name: alice}",
                    "{kind: Robot, name: r2}",
                    "subjects[0].kind",
                    "Unsupported value: \"Robot\": supported values: \"ServiceAccount\", \"User\", \"Group\"",
                ),
                (
                    "{kind: User, name: alice}",
                    "{kind: User, name: alice, apiGroup: v1}",
                    "subjects[0].apiGroup",
                    "Unsupported value: \"v1\": supported values: \"rbac.authorization.k8s.io\"",
                ),
                (
                    "{kind: ServiceAccount, name: builder}",
                    "{kind: ServiceAccount, name: Builder}",
                    "subjects[2].name",
                    "Invalid value: \"Builder\": a lowercase RFC 1123 subdomain",
                ),
                (
                    "{kind: ServiceAccount, name: builder}",
                    "{kind: ServiceAccount, name: builder, apiGroup: rbac.authorization.k8s.io}",
                    "subjects[2].apiGroup",
                    "Unsupported value: \"rbac.authorization.k8s.io\": supported values: \"\"",
                ),
            ],
        );
        // An unnamed user: required, and "user name cannot be empty".
        let errs = defaulted_errors(&edit(BINDING, "{kind: User, name: alice}", "{kind: User}"));
        assert_eq!(
            render(&errs),
            "  subjects[0].name: Required value\n  subjects[0].name: Invalid value: \"\": user name cannot be empty\n"
        );
        // A ServiceAccount in a ClusterRoleBinding needs its namespace; in a RoleBinding it may leave it out.
        assert_edit_errors(
            CLUSTER_BINDING,
            &[(", namespace: ci}", "}", "subjects[0].namespace", "Required value")],
        );
        // Users may have any name, even ones no other object could have.
        assert_valid(&edit(BINDING, "name: alice}", "name: 'Alice Smith <alice@example.com>'}"));
    }

    #[test]
    fn role_ref_cannot_change() {
        let changed = edit(BINDING, "kind: Role, name: pod-reader", "kind: ClusterRole, name: view");
        assert_update_error(
            BINDING,
            &changed,
            "roleRef",
            "Invalid value: rbac.RoleRef{APIGroup:\"rbac.authorization.k8s.io\", Kind:\"ClusterRole\", Name:\"view\"}: cannot change roleRef",
        );
        // Subjects may change; a roleRef that only gains its default group is unchanged.
        assert!(update_errors(BINDING, &edit(BINDING, "- {kind: Group, name: devs}\n", "")).is_empty());
        let implicit = edit(BINDING, "apiGroup: rbac.authorization.k8s.io, ", "");
        assert!(update_errors(BINDING, &implicit).is_empty());
        let renamed = edit(CLUSTER_BINDING, "name: view}", "name: edit}");
        assert_update_error(CLUSTER_BINDING, &renamed, "roleRef", "cannot change roleRef");
    }
}
