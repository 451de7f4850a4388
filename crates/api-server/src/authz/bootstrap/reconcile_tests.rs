//! Reconciliation: create, nothing to do, union of rules/subjects/selectors/metadata, protection,
//! roleRef changes, and idempotence over the whole default policy.

use std::collections::BTreeMap;

use super::*;
use crate::authz::bootstrap::{cluster_role_bindings, cluster_roles, role_bindings, roles};
use crate::authz::policy::RoleRef;

fn r(verbs: &[&str], resources: &[&str]) -> PolicyRule {
    PolicyRule::resource(verbs, &[""], resources)
}

fn expected_role() -> ClusterRole {
    ClusterRole {
        name: "system:test".into(),
        labels: BTreeMap::from([("kubernetes.io/bootstrapping".into(), "rbac-defaults".into())]),
        annotations: BTreeMap::from([(AUTO_UPDATE_ANNOTATION.into(), "true".into())]),
        rules: vec![r(&["get", "list"], &["pods"])],
        aggregation_rule: None,
    }
}

fn selector(key: &str) -> LabelSelector {
    LabelSelector {
        match_labels: BTreeMap::from([(key.to_string(), "true".to_string())]),
        ..LabelSelector::default()
    }
}

#[test]
fn absent_role_is_created() {
    let expected = expected_role();
    let result = reconcile_role(&expected, None);
    assert_eq!(result.operation, ReconcileOperation::Create);
    assert_eq!(result.to_write(), Some(&expected));
    assert_eq!(result.missing_rules, expected.rules);
}

#[test]
fn equal_role_needs_nothing() {
    let expected = expected_role();
    let result = reconcile_role(&expected, Some(&expected));
    assert_eq!(result.operation, ReconcileOperation::None);
    assert_eq!(result.to_write(), None);
    assert!(result.missing_rules.is_empty() && result.extra_rules.is_empty());
}

#[test]
fn equivalent_rules_in_another_shape_need_nothing() {
    let expected = expected_role();
    let existing =
        ClusterRole { rules: vec![r(&["list"], &["pods"]), r(&["*"], &["pods"])], ..expected.clone() };
    let result = reconcile_role(&expected, Some(&existing));
    assert_eq!(result.operation, ReconcileOperation::None);
    assert_eq!(result.extra_rules, vec![r(&["*"], &["pods"])], "reported, kept");
}

#[test]
fn missing_rules_are_added_and_extra_kept() {
    let expected = expected_role();
    let existing =
        ClusterRole { rules: vec![r(&["get"], &["pods"]), r(&["delete"], &["secrets"])], ..expected.clone() };
    let result = reconcile_role(&expected, Some(&existing));
    assert_eq!(result.operation, ReconcileOperation::Update);
    assert_eq!(result.missing_rules, vec![r(&["list"], &["pods"])]);
    assert_eq!(result.extra_rules, vec![r(&["delete"], &["secrets"])]);
    assert_eq!(
        result.to_write().map(|role| role.rules.clone()),
        Some(vec![r(&["get"], &["pods"]), r(&["delete"], &["secrets"]), r(&["list"], &["pods"])])
    );
    let again = reconcile_role(&expected, Some(&result.role));
    assert_eq!(again.operation, ReconcileOperation::None, "idempotent");
}

#[test]
fn metadata_is_merged_with_stored_values_winning() {
    let expected = expected_role();
    let mut existing =
        ClusterRole { labels: BTreeMap::new(), annotations: BTreeMap::new(), ..expected.clone() };
    existing.labels.insert("kubernetes.io/bootstrapping".into(), "custom".into());
    existing.labels.insert("team".into(), "a".into());
    let result = reconcile_role(&expected, Some(&existing));
    assert_eq!(result.operation, ReconcileOperation::Update, "the annotation was missing");
    let role = result.to_write().expect("update");
    assert_eq!(role.labels.get("kubernetes.io/bootstrapping").map(String::as_str), Some("custom"));
    assert_eq!(role.labels.get("team").map(String::as_str), Some("a"));
    assert_eq!(role.annotations.get(AUTO_UPDATE_ANNOTATION).map(String::as_str), Some("true"));
}

#[test]
fn autoupdate_false_protects() {
    let expected = expected_role();
    let mut existing = ClusterRole { rules: vec![], ..expected.clone() };
    existing.annotations.insert(AUTO_UPDATE_ANNOTATION.into(), "false".into());
    let result = reconcile_role(&expected, Some(&existing));
    assert!(result.protected);
    assert_eq!(result.operation, ReconcileOperation::Update, "reported as needed");
    assert_eq!(result.to_write(), None, "but not written");
    assert_eq!(result.role.annotations.get(AUTO_UPDATE_ANNOTATION).map(String::as_str), Some("false"));
    // Any other value is not protection.
    existing.annotations.insert(AUTO_UPDATE_ANNOTATION.into(), "False".into());
    assert!(!reconcile_role(&expected, Some(&existing)).protected);
}

#[test]
fn aggregated_roles_keep_their_aggregated_rules() {
    let expected = ClusterRole {
        rules: vec![],
        aggregation_rule: Some(AggregationRule { cluster_role_selectors: vec![selector("a")] }),
        ..expected_role()
    };
    let existing = ClusterRole { rules: vec![r(&["*"], &["*"])], ..expected.clone() };
    let result = reconcile_role(&expected, Some(&existing));
    assert_eq!(result.operation, ReconcileOperation::None);
    assert!(result.extra_rules.is_empty(), "the controller's rules are not extra");

    // A stored role that is not aggregated becomes aggregated; its rules are reported as extra.
    let plain = ClusterRole { aggregation_rule: None, ..existing.clone() };
    let result = reconcile_role(&expected, Some(&plain));
    assert_eq!(result.operation, ReconcileOperation::Update);
    assert_eq!(result.missing_aggregation_selectors, vec![selector("a")]);
    assert_eq!(result.extra_rules, vec![r(&["*"], &["*"])]);
    assert_eq!(result.role.aggregation_rule, expected.aggregation_rule);
}

#[test]
fn selectors_are_unioned_and_unexpected_aggregation_removed() {
    let expected = ClusterRole {
        aggregation_rule: Some(AggregationRule {
            cluster_role_selectors: vec![selector("a"), selector("b")],
        }),
        ..expected_role()
    };
    let existing = ClusterRole {
        aggregation_rule: Some(AggregationRule {
            cluster_role_selectors: vec![selector("c"), selector("a")],
        }),
        ..expected.clone()
    };
    let result = reconcile_role(&expected, Some(&existing));
    assert_eq!(result.operation, ReconcileOperation::Update);
    assert_eq!(result.missing_aggregation_selectors, vec![selector("b")]);
    assert_eq!(result.extra_aggregation_selectors, vec![selector("c")]);
    assert_eq!(
        result.role.aggregation_rule.as_ref().map(|a| a.cluster_role_selectors.clone()),
        Some(vec![selector("c"), selector("a"), selector("b")])
    );
    assert_eq!(reconcile_role(&expected, Some(&result.role)).operation, ReconcileOperation::None);

    let unexpected = ClusterRole { aggregation_rule: existing.aggregation_rule.clone(), ..expected_role() };
    let result = reconcile_role(&expected_role(), Some(&unexpected));
    assert_eq!(result.operation, ReconcileOperation::Update);
    assert_eq!(result.role.aggregation_rule, None);
}

fn expected_binding() -> ClusterRoleBinding {
    ClusterRoleBinding {
        name: "system:test".into(),
        labels: BTreeMap::from([("kubernetes.io/bootstrapping".into(), "rbac-defaults".into())]),
        annotations: BTreeMap::from([(AUTO_UPDATE_ANNOTATION.into(), "true".into())]),
        role_ref: RoleRef::cluster_role("system:test"),
        subjects: vec![Subject::group("a"), Subject::user("b")],
    }
}

#[test]
fn bindings_create_none_and_union() {
    let expected = expected_binding();
    let created = reconcile_binding(&expected, None);
    assert_eq!((created.operation, created.to_write()), (ReconcileOperation::Create, Some(&expected)));
    assert_eq!(reconcile_binding(&expected, Some(&expected)).operation, ReconcileOperation::None);

    let existing = ClusterRoleBinding {
        subjects: vec![Subject::user("b"), Subject::user("extra"), Subject::user("extra")],
        ..expected.clone()
    };
    let result = reconcile_binding(&expected, Some(&existing));
    assert_eq!(result.operation, ReconcileOperation::Update);
    assert_eq!(result.missing_subjects, vec![Subject::group("a")]);
    assert_eq!(result.extra_subjects, vec![Subject::user("extra")], "each once");
    assert_eq!(
        result.binding.subjects,
        vec![Subject::user("b"), Subject::user("extra"), Subject::user("extra"), Subject::group("a")]
    );
    assert_eq!(reconcile_binding(&expected, Some(&result.binding)).operation, ReconcileOperation::None);

    // Subjects compare on every field: a ServiceAccount in another namespace is another subject.
    let sa = ClusterRoleBinding { subjects: vec![Subject::service_account("x", "y")], ..expected.clone() };
    let other_ns =
        ClusterRoleBinding { subjects: vec![Subject::service_account("z", "y")], ..expected.clone() };
    assert_eq!(reconcile_binding(&sa, Some(&other_ns)).operation, ReconcileOperation::Update);
}

#[test]
fn binding_with_another_role_is_recreated_unless_protected() {
    let expected = expected_binding();
    let mut existing = ClusterRoleBinding { role_ref: RoleRef::cluster_role("other"), ..expected.clone() };
    let result = reconcile_binding(&expected, Some(&existing));
    assert_eq!(result.operation, ReconcileOperation::Recreate);
    assert_eq!(result.to_write(), Some(&expected));
    existing.annotations.insert(AUTO_UPDATE_ANNOTATION.into(), "false".into());
    let result = reconcile_binding(&expected, Some(&existing));
    assert!(result.protected);
    assert_eq!(result.to_write(), None);
    // A Role instead of a ClusterRole of the same name is another roleRef too.
    let role_kind = ClusterRoleBinding { role_ref: RoleRef::role("system:test"), ..expected.clone() };
    assert_eq!(reconcile_binding(&expected, Some(&role_kind)).operation, ReconcileOperation::Recreate);
}

#[test]
fn the_default_policy_reconciles_to_a_fixed_point() {
    for expected in cluster_roles() {
        let created = reconcile_role(&expected, None);
        let stored = created.to_write().expect("created").clone();
        assert_eq!(
            reconcile_role(&expected, Some(&stored)).operation,
            ReconcileOperation::None,
            "{}",
            expected.name
        );
        // Rules stripped by someone come back, once.
        let mut stripped = stored.clone();
        stripped.rules.truncate(stripped.rules.len() / 2);
        stripped.annotations.clear();
        let repaired = reconcile_role(&expected, Some(&stripped));
        let written = repaired.to_write().expect("repair").clone();
        assert_eq!(
            reconcile_role(&expected, Some(&written)).operation,
            ReconcileOperation::None,
            "{}",
            expected.name
        );
        assert_eq!(crate::authz::rules::covers(&written.rules, &expected.rules), Ok(()));
    }
    for expected in cluster_role_bindings() {
        let stored = reconcile_binding(&expected, None).binding;
        assert_eq!(
            reconcile_binding(&expected, Some(&stored)).operation,
            ReconcileOperation::None,
            "{}",
            expected.name
        );
        let mut emptied = stored.clone();
        emptied.subjects.clear();
        let repaired = reconcile_binding(&expected, Some(&emptied)).binding;
        assert_eq!(repaired.subjects, expected.subjects);
        assert_eq!(reconcile_binding(&expected, Some(&repaired)).operation, ReconcileOperation::None);
    }
}

#[test]
fn roles_and_role_bindings_reconcile_the_same_way() {
    for expected in roles() {
        let stored = reconcile_role(&expected, None).role;
        assert_eq!(reconcile_role(&expected, Some(&stored)).operation, ReconcileOperation::None);
        let mut stripped = stored.clone();
        stripped.rules.clear();
        stripped.labels.insert("extra".into(), "kept".into());
        let result = reconcile_role(&expected, Some(&stripped));
        assert_eq!(result.operation, ReconcileOperation::Update);
        assert_eq!(result.role.labels.get("extra").map(String::as_str), Some("kept"));
        assert_eq!(crate::authz::rules::covers(&result.role.rules, &expected.rules), Ok(()));
        assert!(result.missing_aggregation_selectors.is_empty(), "Roles have no aggregation");
        let mut protected = stripped;
        protected.annotations.insert(AUTO_UPDATE_ANNOTATION.into(), "false".into());
        assert_eq!(reconcile_role(&expected, Some(&protected)).to_write(), None);
    }
    for expected in role_bindings() {
        let stored = reconcile_binding(&expected, None).binding;
        assert_eq!(reconcile_binding(&expected, Some(&stored)).operation, ReconcileOperation::None);
        let moved = crate::authz::policy::RoleBinding { role_ref: RoleRef::cluster_role("edit"), ..stored };
        assert_eq!(reconcile_binding(&expected, Some(&moved)).operation, ReconcileOperation::Recreate);
    }
}
