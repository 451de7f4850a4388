//! The RBAC authorizer over its index: Kubernetes' `TestAuthorizer` cases, namespace isolation,
//! subjects, incremental updates, errors, rules reviews.

use super::*;
use crate::authz::policy::Subject;

fn user(name: &str, groups: &[&str]) -> UserInfo {
    UserInfo {
        name: name.into(),
        groups: groups.iter().map(|g| g.to_string()).collect(),
        ..UserInfo::default()
    }
}

fn get_pods(u: &UserInfo, namespace: &str) -> Attributes {
    Attributes::resource(u.clone(), "get", "", "pods").namespace(namespace)
}

fn cluster_role(name: &str, rules: Vec<PolicyRule>) -> ClusterRole {
    ClusterRole { name: name.into(), rules, ..ClusterRole::default() }
}

fn role(namespace: &str, name: &str, rules: Vec<PolicyRule>) -> Role {
    Role { namespace: namespace.into(), name: name.into(), rules, ..Role::default() }
}

fn role_binding(namespace: &str, name: &str, role_ref: RoleRef, subjects: Vec<Subject>) -> RoleBinding {
    RoleBinding {
        namespace: namespace.into(),
        name: name.into(),
        role_ref,
        subjects,
        ..RoleBinding::default()
    }
}

fn cluster_binding(name: &str, role: &str, subjects: Vec<Subject>) -> ClusterRoleBinding {
    ClusterRoleBinding {
        name: name.into(),
        role_ref: RoleRef::cluster_role(role),
        subjects,
        ..ClusterRoleBinding::default()
    }
}

fn everything() -> Vec<PolicyRule> {
    vec![PolicyRule::resource(&["*"], &["*"], &["*"]), PolicyRule::non_resource(&["*"], &["*"])]
}

fn allowed(rbac: &RbacAuthorizer, a: &Attributes) -> bool {
    rbac.authorize(a).is_allowed()
}

#[test]
fn deny_by_default() {
    let rbac = RbacAuthorizer::new();
    let anyone = user("alice", &["system:authenticated"]);
    assert_eq!(rbac.authorize(&get_pods(&anyone, "default")), Decision::NoOpinion(String::new()));
    assert!(!allowed(&rbac, &Attributes::non_resource(anyone, "get", "/healthz")));
}

#[test]
fn rolebinding_to_clusterrole_is_namespace_scoped() {
    // Kubernetes' TestAuthorizer case 1.
    let rbac = RbacAuthorizer::new();
    rbac.upsert_cluster_role(cluster_role("admin", everything()));
    rbac.upsert_role_binding(role_binding(
        "ns1",
        "b",
        RoleRef::cluster_role("admin"),
        vec![Subject::user("admin"), Subject::group("admins")],
    ));
    let admin = user("admin", &[]);
    let joe = user("joe", &["group1", "admins"]);
    assert!(allowed(&rbac, &get_pods(&admin, "ns1")));
    assert!(allowed(&rbac, &Attributes::resource(admin.clone(), "watch", "", "Foobar").namespace("ns1")));
    assert!(allowed(&rbac, &get_pods(&joe, "ns1")));
    assert!(!allowed(&rbac, &get_pods(&admin, "ns2")));
    assert!(!allowed(&rbac, &Attributes::resource(admin.clone(), "get", "", "nodes")), "cluster scope");
    assert!(!allowed(&rbac, &Attributes::resource(admin.clone(), "list", "", "pods")), "all namespaces");
    assert!(!allowed(&rbac, &Attributes::resource(admin, "GET", "", "pods").namespace("ns2")));
    assert!(!allowed(&rbac, &Attributes::non_resource(joe, "get", "/apis")), "RoleBindings grant no URLs");
}

#[test]
fn clusterrolebinding_applies_everywhere() {
    let rbac = RbacAuthorizer::new();
    rbac.upsert_cluster_role(cluster_role(
        "reader",
        vec![PolicyRule::resource(&["get", "list"], &[""], &["pods"])],
    ));
    rbac.upsert_cluster_role_binding(cluster_binding("readers", "reader", vec![Subject::group("readers")]));
    let u = user("bob", &["readers"]);
    assert!(allowed(&rbac, &get_pods(&u, "a")));
    assert!(allowed(&rbac, &get_pods(&u, "b")));
    assert!(allowed(&rbac, &Attributes::resource(u.clone(), "list", "", "pods")), "across namespaces");
    assert!(!allowed(&rbac, &Attributes::resource(u, "delete", "", "pods").namespace("a")));
}

#[test]
fn non_resource_urls_through_cluster_role_bindings() {
    // Kubernetes' TestAuthorizer non-resource-url case.
    let rbac = RbacAuthorizer::new();
    rbac.upsert_cluster_role(cluster_role("getter", vec![PolicyRule::non_resource(&["get"], &["/apis"])]));
    rbac.upsert_cluster_role(cluster_role("any", vec![PolicyRule::non_resource(&["*"], &["/apis"])]));
    rbac.upsert_cluster_role(cluster_role("prefix", vec![PolicyRule::non_resource(&["get"], &["/apis/*"])]));
    rbac.upsert_cluster_role_binding(cluster_binding(
        "g",
        "getter",
        vec![Subject::user("foo"), Subject::group("bar")],
    ));
    rbac.upsert_cluster_role_binding(cluster_binding(
        "a",
        "any",
        vec![Subject::user("admin"), Subject::group("admin")],
    ));
    rbac.upsert_cluster_role_binding(cluster_binding("p", "prefix", vec![Subject::user("prefixed")]));
    let path = |u: UserInfo, verb: &str, p: &str| Attributes::non_resource(u, verb, p);
    assert!(allowed(&rbac, &path(user("foo", &[]), "get", "/apis")));
    assert!(allowed(&rbac, &path(user("", &["bar"]), "get", "/apis")));
    assert!(allowed(&rbac, &path(user("admin", &[]), "watch", "/apis")));
    assert!(allowed(&rbac, &path(user("", &["admin"]), "watch", "/apis")));
    assert!(allowed(&rbac, &path(user("prefixed", &[]), "get", "/apis/v1/foobar")));
    assert!(!allowed(&rbac, &path(user("foo", &[]), "watch", "/apis")));
    assert!(!allowed(&rbac, &path(user("foo", &[]), "get", "/api/v1")));
    assert!(!allowed(&rbac, &path(user("admin", &[]), "get", "/api/v1")));
    assert!(!allowed(&rbac, &path(user("prefixed", &[]), "get", "/api/v1")));
}

#[test]
fn roles_only_in_their_namespace() {
    let rbac = RbacAuthorizer::new();
    rbac.upsert_role(role("ns1", "reader", vec![PolicyRule::resource(&["get"], &[""], &["pods"])]));
    rbac.upsert_role(role("ns2", "reader", vec![PolicyRule::resource(&["get"], &[""], &["secrets"])]));
    rbac.upsert_role_binding(role_binding("ns1", "b", RoleRef::role("reader"), vec![Subject::user("u")]));
    let u = user("u", &[]);
    assert!(allowed(&rbac, &get_pods(&u, "ns1")));
    assert!(
        !allowed(&rbac, &Attributes::resource(u.clone(), "get", "", "secrets").namespace("ns1")),
        "ns2's role"
    );
    assert!(!allowed(&rbac, &get_pods(&u, "ns2")));
    // A binding to a Role of another namespace finds nothing: it resolves in its own namespace.
    rbac.upsert_role_binding(role_binding("ns3", "b", RoleRef::role("reader"), vec![Subject::user("u")]));
    let decision = rbac.authorize(&get_pods(&u, "ns3"));
    assert_eq!(
        decision,
        Decision::NoOpinion(r#"RBAC: role.rbac.authorization.k8s.io "reader" not found"#.into())
    );
}

#[test]
fn allow_reasons_name_binding_role_and_first_applying_subject() {
    let rbac = RbacAuthorizer::new();
    rbac.upsert_cluster_role(cluster_role("cluster-admin", everything()));
    rbac.upsert_cluster_role_binding(cluster_binding(
        "cluster-admin",
        "cluster-admin",
        vec![Subject::user("other"), Subject::group("system:masters"), Subject::user("root")],
    ));
    let root = user("root", &["system:masters"]);
    assert_eq!(
        rbac.authorize(&get_pods(&root, "x")),
        Decision::Allow(
            r#"RBAC: allowed by ClusterRoleBinding "cluster-admin" of ClusterRole "cluster-admin" to Group "system:masters""#
                .into()
        )
    );
    rbac.upsert_role(role("web", "deployer", vec![PolicyRule::resource(&["get"], &[""], &["pods"])]));
    rbac.upsert_role_binding(role_binding(
        "web",
        "ci",
        RoleRef::role("deployer"),
        vec![Subject { namespace: String::new(), ..Subject::service_account("", "builder") }],
    ));
    let sa = user("system:serviceaccount:web:builder", &["system:serviceaccounts"]);
    assert_eq!(
        rbac.authorize(&get_pods(&sa, "web")),
        Decision::Allow(
            r#"RBAC: allowed by RoleBinding "ci/web" of Role "deployer" to ServiceAccount "builder/web""#
                .into()
        )
    );
}

#[test]
fn service_account_subjects() {
    let rbac = RbacAuthorizer::new();
    rbac.upsert_cluster_role(cluster_role("view", vec![PolicyRule::resource(&["get"], &[""], &["pods"])]));
    // Explicit namespace, in a RoleBinding of another namespace.
    rbac.upsert_role_binding(role_binding(
        "a",
        "b1",
        RoleRef::cluster_role("view"),
        vec![Subject::service_account("ci", "bot")],
    ));
    // Defaulted namespace.
    rbac.upsert_role_binding(role_binding(
        "c",
        "b2",
        RoleRef::cluster_role("view"),
        vec![Subject::service_account("", "bot")],
    ));
    // A ClusterRoleBinding's ServiceAccount without a namespace never matches.
    rbac.upsert_cluster_role_binding(cluster_binding(
        "b3",
        "view",
        vec![Subject::service_account("", "bot")],
    ));
    let ci_bot = user("system:serviceaccount:ci:bot", &[]);
    let c_bot = user("system:serviceaccount:c:bot", &[]);
    assert!(allowed(&rbac, &get_pods(&ci_bot, "a")));
    assert!(!allowed(&rbac, &get_pods(&ci_bot, "c")));
    assert!(allowed(&rbac, &get_pods(&c_bot, "c")));
    assert!(!allowed(&rbac, &get_pods(&c_bot, "a")));
    assert!(!allowed(&rbac, &get_pods(&c_bot, "other")), "b3 applies to nobody");
    // Lookalikes: the user name must be exactly system:serviceaccount:<ns>:<name>.
    for name in
        ["system:serviceaccount:ci:bot2", "system:serviceaccount:ci:", "system:serviceaccounts:ci:bot", "bot"]
    {
        assert!(!allowed(&rbac, &get_pods(&user(name, &[]), "a")), "{name}");
    }
}

#[test]
fn other_subject_kinds_and_empty_names() {
    let rbac = RbacAuthorizer::new();
    rbac.upsert_cluster_role(cluster_role("all", everything()));
    let odd = |kind: &str, name: &str| Subject { kind: kind.into(), name: name.into(), ..Subject::default() };
    rbac.upsert_cluster_role_binding(cluster_binding(
        "odd",
        "all",
        vec![odd("user", "alice"), odd("Robot", "alice")],
    ));
    assert!(!allowed(&rbac, &get_pods(&user("alice", &[]), "x")), "kinds are exact");
    // A User subject's apiGroup is not checked (as in Kubernetes).
    let any_group = Subject { api_group: "whatever".into(), ..Subject::user("carol") };
    rbac.upsert_cluster_role_binding(cluster_binding("g", "all", vec![any_group]));
    assert!(allowed(&rbac, &get_pods(&user("carol", &[]), "x")));
    // The empty user name is matched literally by an empty User subject.
    rbac.upsert_cluster_role_binding(cluster_binding("empty", "all", vec![Subject::user("")]));
    assert!(allowed(&rbac, &get_pods(&user("", &[]), "x")));
    assert!(!allowed(&rbac, &get_pods(&user("dave", &[""]), "x")), "an empty group is not an empty user");
}

#[test]
fn incremental_updates() {
    let rbac = RbacAuthorizer::new();
    let u = user("u", &["g"]);
    rbac.upsert_cluster_role(cluster_role("r", vec![PolicyRule::resource(&["get"], &[""], &["pods"])]));
    rbac.upsert_role_binding(role_binding("ns", "b", RoleRef::cluster_role("r"), vec![Subject::user("u")]));
    assert!(allowed(&rbac, &get_pods(&u, "ns")));

    // The binding moves to another subject.
    rbac.upsert_role_binding(role_binding("ns", "b", RoleRef::cluster_role("r"), vec![Subject::user("v")]));
    assert!(!allowed(&rbac, &get_pods(&u, "ns")));
    assert!(allowed(&rbac, &get_pods(&user("v", &[]), "ns")));

    // Then to the group, and the role changes.
    rbac.upsert_role_binding(role_binding("ns", "b", RoleRef::cluster_role("r"), vec![Subject::group("g")]));
    assert!(allowed(&rbac, &get_pods(&u, "ns")));
    rbac.upsert_cluster_role(cluster_role("r", vec![PolicyRule::resource(&["list"], &[""], &["pods"])]));
    assert!(!allowed(&rbac, &get_pods(&u, "ns")));
    assert!(allowed(&rbac, &Attributes::resource(u.clone(), "list", "", "pods").namespace("ns")));

    // Removing the role leaves a dangling binding (an error, still no permission).
    rbac.remove_cluster_role("r");
    assert_eq!(
        rbac.authorize(&get_pods(&u, "ns")),
        Decision::NoOpinion(r#"RBAC: clusterrole.rbac.authorization.k8s.io "r" not found"#.into())
    );
    rbac.remove_role_binding("ns", "b");
    assert_eq!(rbac.authorize(&get_pods(&u, "ns")), Decision::NoOpinion(String::new()));
    assert_eq!(
        rbac.counts(),
        IndexCounts { roles: 0, cluster_roles: 0, role_bindings: 0, cluster_role_bindings: 0 }
    );

    // Removing what does not exist is harmless.
    rbac.remove_role_binding("ns", "b");
    rbac.remove_role("nowhere", "nothing");
    rbac.remove_cluster_role_binding("nothing");
}

#[test]
fn cluster_role_binding_updates_and_removal() {
    let rbac = RbacAuthorizer::new();
    rbac.upsert_cluster_role(cluster_role("all", everything()));
    rbac.upsert_cluster_role_binding(cluster_binding(
        "b",
        "all",
        vec![Subject::user("a"), Subject::user("a")],
    ));
    assert!(allowed(&rbac, &get_pods(&user("a", &[]), "x")));
    rbac.upsert_cluster_role_binding(cluster_binding("b", "all", vec![Subject::user("b")]));
    assert!(!allowed(&rbac, &get_pods(&user("a", &[]), "x")), "the old subjects are gone");
    rbac.remove_cluster_role_binding("b");
    assert!(!allowed(&rbac, &get_pods(&user("b", &[]), "x")));
    assert_eq!(rbac.counts().cluster_role_bindings, 0);
}

#[test]
fn role_binding_without_namespace_is_ignored() {
    let rbac = RbacAuthorizer::new();
    rbac.upsert_cluster_role(cluster_role("all", everything()));
    rbac.upsert_role_binding(role_binding("", "b", RoleRef::cluster_role("all"), vec![Subject::user("a")]));
    assert!(!allowed(&rbac, &get_pods(&user("a", &[]), "x")));
    assert!(!allowed(&rbac, &Attributes::resource(user("a", &[]), "get", "", "nodes")));
}

#[test]
fn errors_are_aggregated_and_do_not_hide_allows() {
    let rbac = RbacAuthorizer::new();
    let subjects = || vec![Subject::user("u")];
    rbac.upsert_role_binding(role_binding("ns", "b1", RoleRef::cluster_role("gone"), subjects()));
    rbac.upsert_role_binding(role_binding("ns", "b2", RoleRef::role("gone-too"), subjects()));
    let bad_kind = RoleRef { kind: "Nonsense".into(), ..RoleRef::cluster_role("x") };
    rbac.upsert_role_binding(role_binding("ns", "b3", bad_kind, subjects()));
    let u = user("u", &[]);
    let Decision::NoOpinion(reason) = rbac.authorize(&get_pods(&u, "ns")) else { panic!("not allowed") };
    assert!(reason.starts_with("RBAC: ["), "{reason}");
    for part in [
        r#"clusterrole.rbac.authorization.k8s.io "gone" not found"#,
        r#"role.rbac.authorization.k8s.io "gone-too" not found"#,
        r#"unsupported role reference kind: "Nonsense""#,
    ] {
        assert!(reason.contains(part), "{reason}");
    }
    rbac.upsert_cluster_role(cluster_role("ok", vec![PolicyRule::resource(&["get"], &[""], &["pods"])]));
    rbac.upsert_role_binding(role_binding("ns", "b4", RoleRef::cluster_role("ok"), subjects()));
    assert!(allowed(&rbac, &get_pods(&u, "ns")));
}

#[test]
fn replace_all_swaps_everything() {
    let rbac = RbacAuthorizer::new();
    rbac.upsert_cluster_role(cluster_role("all", everything()));
    rbac.upsert_cluster_role_binding(cluster_binding("old", "all", vec![Subject::user("old")]));
    rbac.replace_all(
        [role("ns", "r", vec![PolicyRule::resource(&["get"], &[""], &["pods"])])],
        [cluster_role("all", everything())],
        [role_binding("ns", "b", RoleRef::role("r"), vec![Subject::user("new")])],
        [cluster_binding("c", "all", vec![Subject::group("admins")])],
    );
    assert!(!allowed(&rbac, &get_pods(&user("old", &[]), "ns")));
    assert!(allowed(&rbac, &get_pods(&user("new", &[]), "ns")));
    assert!(allowed(&rbac, &Attributes::resource(user("x", &["admins"]), "delete", "", "nodes")));
    assert_eq!(
        rbac.counts(),
        IndexCounts { roles: 1, cluster_roles: 1, role_bindings: 1, cluster_role_bindings: 1 }
    );
}

#[test]
fn rules_for_and_review() {
    let rbac = RbacAuthorizer::new();
    let pods = PolicyRule::resource(&["get"], &[""], &["pods"]);
    let health = PolicyRule::non_resource(&["get"], &["/healthz"]);
    let mixed = PolicyRule {
        verbs: vec!["get".into()],
        api_groups: vec!["".into()],
        resources: vec!["secrets".into()],
        resource_names: vec!["s".into()],
        non_resource_urls: vec!["/mixed".into()],
    };
    rbac.upsert_cluster_role(cluster_role("pods", vec![pods.clone()]));
    rbac.upsert_cluster_role(cluster_role("health", vec![health.clone(), mixed.clone()]));
    rbac.upsert_cluster_role_binding(cluster_binding(
        "h",
        "health",
        vec![Subject::group("system:authenticated")],
    ));
    // The same role through a user and a group binding, and a binding naming the user twice.
    rbac.upsert_role_binding(role_binding(
        "ns",
        "b1",
        RoleRef::cluster_role("pods"),
        vec![Subject::user("u"), Subject::group("g")],
    ));
    rbac.upsert_role_binding(role_binding(
        "ns",
        "b2",
        RoleRef::cluster_role("pods"),
        vec![Subject::group("g")],
    ));
    rbac.upsert_role_binding(role_binding(
        "ns",
        "b3",
        RoleRef::cluster_role("missing"),
        vec![Subject::user("u")],
    ));
    let u = user("u", &["g", "system:authenticated"]);

    let resolved = rbac.rules_for(&u, "ns");
    assert_eq!(
        resolved.rules,
        vec![health.clone(), mixed.clone(), pods.clone(), pods.clone()],
        "b1 once, b2 once"
    );
    assert_eq!(
        resolved.errors,
        vec![r#"clusterrole.rbac.authorization.k8s.io "missing" not found"#.to_string()]
    );
    assert_eq!(rbac.rules_for(&u, "").rules, vec![health.clone(), mixed.clone()], "cluster scope only");
    assert_eq!(rbac.rules_for(&u, "other").rules, vec![health.clone(), mixed.clone()]);

    let review = rbac.rules_review(&u, "ns");
    assert_eq!(
        review.resource_rules,
        vec![PolicyRule { non_resource_urls: vec![], ..mixed.clone() }, pods.clone()],
        "duplicates listed once"
    );
    assert_eq!(review.non_resource_rules, vec![health, PolicyRule::non_resource(&["get"], &["/mixed"])]);
    assert!(!review.incomplete);
    assert_eq!(review.evaluation_error, r#"clusterrole.rbac.authorization.k8s.io "missing" not found"#);
}

#[test]
fn role_ref_rules_for_the_registry() {
    let rbac = RbacAuthorizer::new();
    rbac.upsert_role(role("ns", "r", vec![PolicyRule::resource(&["get"], &[""], &["pods"])]));
    assert_eq!(rbac.role_ref_rules(&RoleRef::role("r"), "ns").map(|r| r.len()), Ok(1));
    assert_eq!(
        rbac.role_ref_rules(&RoleRef::role("r"), "other").map_err(|e| e.to_string()),
        Err(r#"roles.rbac.authorization.k8s.io "r" not found"#.to_string())
    );
    assert_eq!(
        rbac.role_ref_rules(&RoleRef::cluster_role("c"), "").map_err(|e| e.to_string()),
        Err(r#"clusterroles.rbac.authorization.k8s.io "c" not found"#.to_string())
    );
    let odd = RoleRef { kind: "Thing".into(), ..RoleRef::role("r") };
    assert_eq!(
        rbac.role_ref_rules(&odd, "ns").map_err(|e| e.to_string()),
        Err(r#"unsupported role reference kind: "Thing""#.to_string())
    );
}

#[test]
fn many_groups_and_duplicates_in_the_user() {
    let rbac = RbacAuthorizer::new();
    rbac.upsert_cluster_role(cluster_role("r", vec![PolicyRule::resource(&["get"], &[""], &["pods"])]));
    rbac.upsert_role_binding(role_binding(
        "ns",
        "b",
        RoleRef::cluster_role("r"),
        vec![Subject::group("g-999")],
    ));
    let groups: Vec<String> = (0..1000).map(|i| format!("g-{i}")).chain(["g-999".to_string()]).collect();
    let u = UserInfo { name: "u".into(), groups, ..UserInfo::default() };
    assert!(allowed(&rbac, &get_pods(&u, "ns")));
    assert_eq!(
        rbac.rules_for(&u, "ns").rules.len(),
        1,
        "a binding found through a repeated group counts once"
    );
}

#[test]
fn concurrent_readers_and_a_writer() {
    let rbac = std::sync::Arc::new(RbacAuthorizer::new());
    rbac.upsert_cluster_role(cluster_role("r", vec![PolicyRule::resource(&["get"], &[""], &["pods"])]));
    rbac.upsert_role_binding(role_binding(
        "ns",
        "keep",
        RoleRef::cluster_role("r"),
        vec![Subject::user("u")],
    ));
    let readers: Vec<_> = (0..4)
        .map(|_| {
            let rbac = rbac.clone();
            std::thread::spawn(move || {
                let u = user("u", &[]);
                (0..2000).all(|_| rbac.authorize(&get_pods(&u, "ns")).is_allowed())
            })
        })
        .collect();
    for i in 0..2000 {
        let name = format!("churn-{}", i % 10);
        rbac.upsert_role_binding(role_binding(
            "ns",
            &name,
            RoleRef::cluster_role("r"),
            vec![Subject::user("v")],
        ));
        rbac.remove_role_binding("ns", &name);
    }
    for reader in readers {
        assert!(reader.join().expect("reader thread"), "the untouched binding always allows");
    }
}
