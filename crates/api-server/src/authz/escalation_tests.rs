//! Escalation prevention: Kubernetes' messages, the escalate and bind verbs, system:masters, namespace
//! scoping of the held permissions, aggregation rules.

use navarch_api::v1::LabelSelector;

use super::*;
use crate::authz::policy::{AggregationRule, Subject};

fn user(name: &str, groups: &[&str]) -> UserInfo {
    UserInfo {
        name: name.into(),
        groups: groups.iter().map(|g| g.to_string()).collect(),
        ..UserInfo::default()
    }
}

fn r(verbs: &[&str], groups: &[&str], resources: &[&str]) -> PolicyRule {
    PolicyRule::resource(verbs, groups, resources)
}

fn cluster_role(name: &str, rules: Vec<PolicyRule>) -> ClusterRole {
    ClusterRole { name: name.into(), rules, ..ClusterRole::default() }
}

fn grant_cluster(rbac: &RbacAuthorizer, role: &str, rules: Vec<PolicyRule>, subject: Subject) {
    rbac.upsert_cluster_role(cluster_role(role, rules));
    rbac.upsert_cluster_role_binding(ClusterRoleBinding {
        name: format!("{role}-binding"),
        role_ref: RoleRef::cluster_role(role),
        subjects: vec![subject],
        ..ClusterRoleBinding::default()
    });
}

fn grant_in(rbac: &RbacAuthorizer, namespace: &str, role: &str, rules: Vec<PolicyRule>, subject: Subject) {
    rbac.upsert_role(Role { namespace: namespace.into(), name: role.into(), rules, ..Role::default() });
    rbac.upsert_role_binding(RoleBinding {
        namespace: namespace.into(),
        name: format!("{role}-binding"),
        role_ref: RoleRef::role(role),
        subjects: vec![subject],
        ..RoleBinding::default()
    });
}

#[test]
fn kubernetes_message_format() {
    let alice = user("alice", &["g1", "system:authenticated"]);
    let owner = ResolvedRules::default();
    let err = confirm_no_escalation(&alice, &owner, &[r(&["get"], &[""], &["pods"])]).unwrap_err();
    assert_eq!(
        err.message,
        "user \"alice\" (groups=[\"g1\" \"system:authenticated\"]) is attempting to grant RBAC permissions not currently held:\n{APIGroups:[\"\"], Resources:[\"pods\"], Verbs:[\"get\"]}"
    );
}

#[test]
fn missing_permissions_are_compacted_sorted_and_unique() {
    let u = user("u", &[]);
    let owner = ResolvedRules { rules: vec![r(&["get"], &[""], &["pods"])], errors: vec![] };
    let requested = vec![
        r(&["get", "list", "watch"], &[""], &["pods", "secrets"]),
        r(&["delete"], &["apps"], &["deployments"]).with_names(&["web"]),
        PolicyRule::non_resource(&["get"], &["/metrics"]),
        r(&["list"], &[""], &["secrets"]),
    ];
    let err = confirm_no_escalation(&u, &owner, &requested).unwrap_err();
    assert_eq!(
        err.message,
        "user \"u\" (groups=[]) is attempting to grant RBAC permissions not currently held:\n\
         {APIGroups:[\"\"], Resources:[\"pods\"], Verbs:[\"list\" \"watch\"]}\n\
         {APIGroups:[\"\"], Resources:[\"secrets\"], Verbs:[\"get\" \"list\" \"watch\" \"list\"]}\n\
         {APIGroups:[\"apps\"], Resources:[\"deployments\"], ResourceNames:[\"web\"], Verbs:[\"delete\"]}\n\
         {NonResourceURLs:[\"/metrics\"], Verbs:[\"get\"]}"
    );
    assert_eq!(err.uncovered.len(), 8);
}

#[test]
fn resolution_errors_are_appended() {
    let u = user("u", &["g"]);
    let owner = ResolvedRules {
        rules: vec![],
        errors: vec![r#"clusterrole.rbac.authorization.k8s.io "x" not found"#.into()],
    };
    let err = confirm_no_escalation(&u, &owner, &[r(&["get"], &[""], &["pods"])]).unwrap_err();
    assert!(
        err.message.ends_with(
            "Verbs:[\"get\"]}; resolution errors: [clusterrole.rbac.authorization.k8s.io \"x\" not found]"
        ),
        "{}",
        err.message
    );
    assert_eq!(confirm_no_escalation(&u, &owner, &[]), Ok(()), "nothing requested, nothing missing");
}

#[test]
fn role_write_within_held_permissions() {
    let rbac = RbacAuthorizer::new();
    let alice = user("alice", &["system:authenticated"]);
    grant_in(&rbac, "dev", "pod-admin", vec![r(&["*"], &[""], &["pods"])], Subject::user("alice"));
    let ok = Role {
        namespace: "dev".into(),
        name: "reader".into(),
        rules: vec![r(&["get", "list"], &[""], &["pods"])],
        ..Role::default()
    };
    assert_eq!(rbac.check_role_write(&alice, &ok), Ok(()));

    // The same role in another namespace, where alice holds nothing.
    let elsewhere = Role { namespace: "prod".into(), ..ok.clone() };
    let err = rbac.check_role_write(&alice, &elsewhere).unwrap_err();
    assert_eq!(
        err.to_string(),
        "roles.rbac.authorization.k8s.io \"reader\" is forbidden: user \"alice\" (groups=[\"system:authenticated\"]) is attempting to grant RBAC permissions not currently held:\n{APIGroups:[\"\"], Resources:[\"pods\"], Verbs:[\"get\" \"list\"]}"
    );
    let RbacWriteError::Forbidden { resource, name, .. } = err else { panic!("forbidden") };
    assert_eq!((resource, name.as_str()), ("roles", "reader"));

    // More than held in its namespace.
    let wider = Role { rules: vec![r(&["get"], &[""], &["secrets"])], ..ok };
    assert!(rbac.check_role_write(&alice, &wider).is_err());
}

#[test]
fn escalate_verb_and_system_masters_bypass() {
    let rbac = RbacAuthorizer::new();
    let big = Role {
        namespace: "dev".into(),
        name: "big".into(),
        rules: vec![r(&["*"], &["*"], &["*"])],
        ..Role::default()
    };
    let master = user("root", &["system:masters"]);
    assert_eq!(rbac.check_role_write(&master, &big), Ok(()), "system:masters needs no bindings");

    let bob = user("bob", &[]);
    assert!(rbac.check_role_write(&bob, &big).is_err());
    // escalate on that one role name only.
    grant_in(
        &rbac,
        "dev",
        "escalator",
        vec![r(&["escalate"], &["rbac.authorization.k8s.io"], &["roles"]).with_names(&["big"])],
        Subject::user("bob"),
    );
    assert_eq!(rbac.check_role_write(&bob, &big), Ok(()));
    let other = Role { name: "other".into(), ..big.clone() };
    assert!(rbac.check_role_write(&bob, &other).is_err());
    // escalate on roles does not extend to clusterroles.
    let cluster = cluster_role("big", big.rules.clone());
    assert!(rbac.check_cluster_role_write(&bob, &cluster, None).is_err());
    grant_cluster(
        &rbac,
        "cluster-escalator",
        vec![r(&["escalate"], &["rbac.authorization.k8s.io"], &["clusterroles"])],
        Subject::user("bob"),
    );
    assert_eq!(rbac.check_cluster_role_write(&bob, &cluster, None), Ok(()));
}

#[test]
fn cluster_role_writes_use_cluster_wide_permissions_only() {
    let rbac = RbacAuthorizer::new();
    let carol = user("carol", &[]);
    grant_in(&rbac, "dev", "pods", vec![r(&["get"], &[""], &["pods"])], Subject::user("carol"));
    let role = cluster_role("pod-reader", vec![r(&["get"], &[""], &["pods"])]);
    let err = rbac.check_cluster_role_write(&carol, &role, None).unwrap_err();
    assert!(
        err.to_string().starts_with(
            "clusterroles.rbac.authorization.k8s.io \"pod-reader\" is forbidden: user \"carol\""
        )
    );
    grant_cluster(&rbac, "cluster-pods", vec![r(&["get"], &[""], &["pods"])], Subject::user("carol"));
    assert_eq!(rbac.check_cluster_role_write(&carol, &role, None), Ok(()));
}

#[test]
fn aggregation_rules_need_full_authority() {
    let rbac = RbacAuthorizer::new();
    let dave = user("dave", &[]);
    grant_cluster(&rbac, "lots", vec![r(&["*"], &[""], &["*"])], Subject::user("dave"));
    let selector = LabelSelector::default();
    let aggregated = ClusterRole {
        aggregation_rule: Some(AggregationRule { cluster_role_selectors: vec![selector] }),
        ..cluster_role("agg", vec![])
    };
    let err = rbac.check_cluster_role_write(&dave, &aggregated, None).unwrap_err();
    assert_eq!(
        err.to_string(),
        "clusterroles.rbac.authorization.k8s.io \"agg\" is forbidden: must have cluster-admin privileges to use the aggregationRule"
    );
    // Removing an aggregation rule is checked through the old object.
    let plain = cluster_role("agg", vec![]);
    assert!(rbac.check_cluster_role_write(&dave, &plain, Some(&aggregated)).is_err());
    assert_eq!(rbac.check_cluster_role_write(&dave, &plain, Some(&plain)), Ok(()));
    // An aggregation rule without selectors is no aggregation rule.
    let empty = ClusterRole { aggregation_rule: Some(AggregationRule::default()), ..plain.clone() };
    assert_eq!(rbac.check_cluster_role_write(&dave, &empty, None), Ok(()));
    // With full authority it is allowed.
    grant_cluster(&rbac, "everything", full_authority(), Subject::user("dave"));
    assert_eq!(rbac.check_cluster_role_write(&dave, &aggregated, None), Ok(()));
}

#[test]
fn bindings_need_the_roles_permissions_or_bind() {
    let rbac = RbacAuthorizer::new();
    rbac.upsert_cluster_role(cluster_role("admin", vec![r(&["*"], &["*"], &["*"])]));
    rbac.upsert_cluster_role(cluster_role("view", vec![r(&["get", "list"], &[""], &["pods"])]));
    let erin = user("erin", &["team"]);
    grant_in(&rbac, "dev", "viewer", vec![r(&["get", "list"], &[""], &["pods"])], Subject::group("team"));
    let binding = |role: &str, namespace: &str| RoleBinding {
        namespace: namespace.into(),
        name: "b".into(),
        role_ref: RoleRef::cluster_role(role),
        subjects: vec![Subject::user("frank")],
        ..RoleBinding::default()
    };
    assert_eq!(rbac.check_role_binding_write(&erin, &binding("view", "dev")), Ok(()), "holds view in dev");
    let err = rbac.check_role_binding_write(&erin, &binding("view", "prod")).unwrap_err();
    assert!(err.to_string().starts_with("rolebindings.rbac.authorization.k8s.io \"b\" is forbidden: user \"erin\" (groups=[\"team\"]) is attempting to grant"));
    assert!(rbac.check_role_binding_write(&erin, &binding("admin", "dev")).is_err());

    // bind on the admin ClusterRole in dev only.
    grant_in(
        &rbac,
        "dev",
        "binder",
        vec![r(&["bind"], &["rbac.authorization.k8s.io"], &["clusterroles"]).with_names(&["admin"])],
        Subject::user("erin"),
    );
    assert_eq!(rbac.check_role_binding_write(&erin, &binding("admin", "dev")), Ok(()));
    assert!(rbac.check_role_binding_write(&erin, &binding("admin", "prod")).is_err());
    let crb = ClusterRoleBinding {
        name: "cb".into(),
        role_ref: RoleRef::cluster_role("admin"),
        ..ClusterRoleBinding::default()
    };
    assert!(
        rbac.check_cluster_role_binding_write(&erin, &crb).is_err(),
        "bind in dev is not bind cluster-wide"
    );
    assert_eq!(rbac.check_cluster_role_binding_write(&user("root", &["system:masters"]), &crb), Ok(()));
}

#[test]
fn bindings_to_missing_or_odd_roles() {
    let rbac = RbacAuthorizer::new();
    let u = user("u", &[]);
    let to = |role_ref: RoleRef| RoleBinding {
        namespace: "ns".into(),
        name: "b".into(),
        role_ref,
        ..RoleBinding::default()
    };
    assert_eq!(
        rbac.check_role_binding_write(&u, &to(RoleRef::role("nope"))).unwrap_err().to_string(),
        "roles.rbac.authorization.k8s.io \"nope\" not found"
    );
    assert_eq!(
        rbac.check_role_binding_write(&u, &to(RoleRef::cluster_role("nope"))).unwrap_err(),
        RbacWriteError::RoleRef(RoleRefError::NotFound { resource: "clusterroles", name: "nope".into() })
    );
    let odd = RoleRef { kind: "Secret".into(), ..RoleRef::role("x") };
    assert_eq!(
        rbac.check_role_binding_write(&u, &to(odd)).unwrap_err().to_string(),
        "unsupported role reference kind: \"Secret\""
    );
    // Binding an existing role without rules grants nothing: always allowed.
    rbac.upsert_role(Role { namespace: "ns".into(), name: "empty".into(), ..Role::default() });
    assert_eq!(rbac.check_role_binding_write(&u, &to(RoleRef::role("empty"))), Ok(()));
}

#[test]
fn bind_uses_the_role_refs_api_group() {
    let rbac = RbacAuthorizer::new();
    let u = user("u", &[]);
    grant_cluster(
        &rbac,
        "binder",
        vec![r(&["bind"], &["rbac.authorization.k8s.io"], &["roles"])],
        Subject::user("u"),
    );
    assert!(rbac.binding_authorized(&u, &RoleRef::role("any"), "ns"));
    let other_group = RoleRef { api_group: "elsewhere".into(), ..RoleRef::role("any") };
    assert!(!rbac.binding_authorized(&u, &other_group, "ns"));
    let bad_kind = RoleRef { kind: "Group".into(), ..RoleRef::role("any") };
    assert!(!rbac.binding_authorized(&u, &bad_kind, "ns"));
}
