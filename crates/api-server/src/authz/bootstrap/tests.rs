//! The default policy: well-formed data, Kubernetes' metadata, the aggregated roles' contents, and what
//! each default identity may and may not do through the authorizer.

use std::collections::HashSet;

use super::*;
use crate::authz::aggregation::aggregate_rules;
use crate::authz::attributes::Attributes;
use crate::authz::rbac::RbacAuthorizer;
use crate::user_info::UserInfo;

fn user(name: &str, groups: &[&str]) -> UserInfo {
    UserInfo {
        name: name.into(),
        groups: groups.iter().map(|g| g.to_string()).collect(),
        ..UserInfo::default()
    }
}

/// The default roles with the aggregated ones filled in, as the aggregation controller would.
fn aggregated_roles() -> Vec<ClusterRole> {
    let mut roles = cluster_roles();
    // view feeds edit feeds admin: three passes reach the fixed point.
    for _ in 0..3 {
        let snapshot = roles.clone();
        for role in &mut roles {
            if let Some(rules) = aggregate_rules(role, &snapshot).expect("default selectors are valid") {
                role.rules = rules;
            }
        }
    }
    roles
}

fn default_authorizer() -> RbacAuthorizer {
    let rbac = RbacAuthorizer::new();
    rbac.replace_all(roles(), aggregated_roles(), role_bindings(), cluster_role_bindings());
    rbac
}

fn role(name: &str) -> ClusterRole {
    aggregated_roles().into_iter().find(|r| r.name == name).unwrap_or_else(|| panic!("no role {name}"))
}

fn can(rbac: &RbacAuthorizer, a: Attributes) -> bool {
    rbac.authorize(&a).is_allowed()
}

#[test]
fn metadata_and_uniqueness() {
    let roles = cluster_roles();
    let bindings = cluster_role_bindings();
    let role_names: HashSet<&str> = roles.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(role_names.len(), roles.len(), "role names are unique");
    let binding_names: HashSet<&str> = bindings.iter().map(|b| b.name.as_str()).collect();
    assert_eq!(binding_names.len(), bindings.len(), "binding names are unique");
    for labels in roles.iter().map(|r| &r.labels).chain(bindings.iter().map(|b| &b.labels)) {
        assert_eq!(labels.get("kubernetes.io/bootstrapping").map(String::as_str), Some("rbac-defaults"));
    }
    for annotations in roles.iter().map(|r| &r.annotations).chain(bindings.iter().map(|b| &b.annotations)) {
        assert_eq!(
            annotations.get("rbac.authorization.kubernetes.io/autoupdate").map(String::as_str),
            Some("true")
        );
    }
    for b in &bindings {
        assert!(role_names.contains(b.role_ref.name.as_str()), "{} binds a default role", b.name);
        assert_eq!(
            (b.role_ref.kind.as_str(), b.role_ref.api_group.as_str()),
            ("ClusterRole", "rbac.authorization.k8s.io")
        );
    }
    for name in [
        "cluster-admin",
        "admin",
        "edit",
        "view",
        "system:basic-user",
        "system:discovery",
        "system:public-info-viewer",
        "system:kube-scheduler",
        "system:volume-scheduler",
        "system:kube-controller-manager",
        "system:node-proxier",
        "system:kubelet-api-admin",
        "system:auth-delegator",
        "system:node-bootstrapper",
        "system:certificates.k8s.io:certificatesigningrequests:nodeclient",
        "system:certificates.k8s.io:certificatesigningrequests:selfnodeclient",
        "navarch:certificatesigningrequests:kubeproxyclient",
        "system:service-account-issuer-discovery",
        "system:monitoring",
        "system:node",
        "system:navarch:cluster-dns",
    ] {
        assert!(role_names.contains(name), "{name}");
    }
}

#[test]
fn namespaced_defaults() {
    let roles = roles();
    let bindings = role_bindings();
    for b in &bindings {
        assert!(
            roles.iter().any(|r| r.namespace == b.namespace
                && r.name == b.role_ref.name
                && b.role_ref.kind == "Role"),
            "{} binds a default Role of its namespace",
            b.name
        );
        assert_eq!(
            b.annotations.get("rbac.authorization.kubernetes.io/autoupdate").map(String::as_str),
            Some("true")
        );
    }
    for r in &roles {
        assert_eq!(r.labels.get("kubernetes.io/bootstrapping").map(String::as_str), Some("rbac-defaults"));
    }
}

#[test]
fn rules_are_well_formed_like_kubernetes_builder_makes_them() {
    let namespaced =
        roles().into_iter().map(|r| ClusterRole { name: r.name, rules: r.rules, ..ClusterRole::default() });
    for role in cluster_roles().into_iter().chain(namespaced) {
        let mut seen = HashSet::new();
        for rule in &role.rules {
            assert!(seen.insert(rule.clone()), "{}: duplicate rule {rule:?}", role.name);
            assert!(!rule.verbs.is_empty(), "{}: {rule:?}", role.name);
            let is_resource = !rule.resources.is_empty();
            let is_url = !rule.non_resource_urls.is_empty();
            assert!(is_resource != is_url, "{}: exactly one of resources and URLs: {rule:?}", role.name);
            if is_resource {
                assert!(!rule.api_groups.is_empty(), "{}: resource rules need groups", role.name);
            } else {
                assert!(rule.api_groups.is_empty() && rule.resource_names.is_empty(), "{}", role.name);
            }
            for list in [&rule.verbs, &rule.resources, &rule.resource_names, &rule.non_resource_urls] {
                let mut sorted = list.clone();
                sorted.sort();
                sorted.dedup();
                assert_eq!(&sorted, list, "{}: sorted and unique", role.name);
            }
        }
    }
}

#[test]
fn kubernetes_rule_texts() {
    assert_eq!(
        role("system:discovery").rules,
        vec![urls(
            &["get"],
            &[
                "/api",
                "/api/*",
                "/apis",
                "/apis/*",
                "/healthz",
                "/livez",
                "/openapi",
                "/openapi/*",
                "/readyz",
                "/version",
                "/version/"
            ]
        )]
    );
    assert_eq!(role("system:discovery").rules[0].non_resource_urls[0], "/api");
    assert_eq!(
        role("system:node-proxier").rules,
        vec![
            PolicyRule::resource(&["list", "watch"], &[""], &["endpoints", "services"]),
            PolicyRule::resource(&["get", "list", "watch"], &[""], &["nodes"]),
            PolicyRule::resource(&["create", "patch", "update"], &["", "events.k8s.io"], &["events"]),
            PolicyRule::resource(&["list", "watch"], &["discovery.k8s.io"], &["endpointslices"]),
        ]
    );
    assert_eq!(
        role("system:basic-user").rules,
        vec![
            PolicyRule::resource(
                &["create"],
                &["authorization.k8s.io"],
                &["selfsubjectaccessreviews", "selfsubjectrulesreviews"]
            ),
            PolicyRule::resource(&["create"], &["authentication.k8s.io"], &["selfsubjectreviews"]),
        ]
    );
    let admin_role = cluster_roles().into_iter().find(|r| r.name == "admin").expect("admin");
    assert!(admin_role.rules.is_empty(), "aggregated roles start empty");
    let selectors = &admin_role.aggregation_rule.expect("aggregated").cluster_role_selectors;
    assert_eq!(selectors[0].match_labels.get(AGGREGATE_TO_ADMIN).map(String::as_str), Some("true"));
}

#[test]
fn aggregation_builds_admin_over_edit_over_view() {
    let (admin, edit, view) = (role("admin"), role("edit"), role("view"));
    let covers = |owner: &ClusterRole, servant: &ClusterRole| {
        crate::authz::rules::covers(&owner.rules, &servant.rules)
    };
    assert_eq!(covers(&edit, &view), Ok(()));
    assert_eq!(covers(&admin, &edit), Ok(()));
    assert!(covers(&view, &edit).is_err());
    assert!(covers(&edit, &admin).is_err());
    let mut view_rules = role("system:aggregate-to-view").rules;
    view_rules.extend(role("system:aggregated-metrics-reader").rules);
    assert_eq!(view.rules, view_rules);
    assert!(in_all_three_resource_metrics());

    let in_ns = |name: &str, verb: &str, group: &str, resource: &str, sub: &str| {
        let requested = PolicyRule::resource(&[verb], &[group], &[&*format!("{resource}{sub}")]);
        crate::authz::rules::covers(&role(name).rules, &[requested]).is_ok()
    };
    assert!(in_ns("view", "get", "", "pods", "/log"));
    assert!(!in_ns("view", "get", "", "secrets", ""), "view cannot read secrets");
    assert!(!in_ns("view", "create", "", "pods", "/exec"));
    assert!(in_ns("edit", "create", "", "pods", "/exec"));
    assert!(in_ns("edit", "get", "", "secrets", ""));
    assert!(in_ns("edit", "create", "", "serviceaccounts", "/token"));
    assert!(in_ns("edit", "create", "", "pods", "/eviction"));
    assert!(in_ns("edit", "update", "coordination.k8s.io", "leases", ""));
    assert!(!in_ns("edit", "patch", "", "pods", "/ephemeralcontainers"), "as in Kubernetes");
    assert!(!in_ns("edit", "create", "rbac.authorization.k8s.io", "rolebindings", ""));
    assert!(!in_ns("edit", "update", "", "endpoints", ""), "endpoints writes left edit in Kubernetes 1.22");
    assert!(in_ns("admin", "create", "rbac.authorization.k8s.io", "rolebindings", ""));
    assert!(in_ns("admin", "delete", "apps", "deployments", ""));
    assert!(!in_ns("admin", "update", "", "pods", "/status"), "status is the system's");
    assert!(!in_ns("admin", "create", "", "namespaces", ""));
}

#[test]
fn cluster_admins() {
    let rbac = default_authorizer();
    for u in [user("root", &["system:masters"]), user("admin@navarch", &["navarch:cluster-admins"])] {
        assert!(can(&rbac, Attributes::resource(u.clone(), "delete", "", "nodes").name("n1")));
        assert!(can(
            &rbac,
            Attributes::resource(u.clone(), "escalate", "rbac.authorization.k8s.io", "clusterroles")
        ));
        assert!(can(&rbac, Attributes::non_resource(u.clone(), "get", "/metrics")));
        assert!(can(
            &rbac,
            Attributes::resource(u, "create", "", "pods").namespace("any").subresource("exec")
        ));
    }
}

#[test]
fn authenticated_and_anonymous_users() {
    let rbac = default_authorizer();
    let alice = user("alice", &["system:authenticated"]);
    let anonymous = UserInfo::anonymous();
    let path = |u: &UserInfo, p: &str| Attributes::non_resource(u.clone(), "get", p);
    for p in ["/healthz", "/livez", "/readyz", "/version", "/version/"] {
        assert!(can(&rbac, path(&alice, p)), "{p}");
        assert!(can(&rbac, path(&anonymous, p)), "anonymous {p}");
    }
    for p in ["/api", "/api/v1", "/apis/apps/v1", "/openapi/v3"] {
        assert!(can(&rbac, path(&alice, p)), "{p}");
        assert!(!can(&rbac, path(&anonymous, p)), "anonymous {p}");
    }
    assert!(!can(&rbac, path(&alice, "/metrics")));
    assert!(!can(&rbac, path(&alice, "/healthz/etcd")), "only system:monitoring sees the checks");
    assert!(!can(&rbac, Attributes::non_resource(alice.clone(), "post", "/healthz")));
    assert!(can(
        &rbac,
        Attributes::resource(alice.clone(), "create", "authorization.k8s.io", "selfsubjectaccessreviews")
    ));
    assert!(can(
        &rbac,
        Attributes::resource(alice.clone(), "create", "authorization.k8s.io", "selfsubjectrulesreviews")
    ));
    assert!(can(
        &rbac,
        Attributes::resource(alice.clone(), "create", "authentication.k8s.io", "selfsubjectreviews")
    ));
    assert!(!can(&rbac, Attributes::resource(alice.clone(), "list", "", "pods").namespace("default")));
    assert!(!can(
        &rbac,
        Attributes::resource(alice, "create", "authorization.k8s.io", "subjectaccessreviews")
    ));
    assert!(!can(
        &rbac,
        Attributes::resource(anonymous, "create", "authorization.k8s.io", "selfsubjectaccessreviews")
    ));
    let monitor = user("prometheus", &["system:monitoring"]);
    assert!(can(&rbac, path(&monitor, "/metrics")));
    assert!(can(&rbac, path(&monitor, "/readyz/etcd")));
}

#[test]
fn scheduler() {
    let rbac = default_authorizer();
    let s = user(SCHEDULER_USER, &["system:authenticated"]);
    let res =
        |verb: &str, group: &str, resource: &str| Attributes::resource(s.clone(), verb, group, resource);
    assert!(can(&rbac, res("create", "", "pods").namespace("ns").name("p").subresource("binding")));
    assert!(can(&rbac, res("watch", "", "pods")));
    assert!(can(&rbac, res("patch", "", "pods").namespace("ns").name("p").subresource("status")));
    assert!(can(&rbac, res("list", "", "nodes")));
    assert!(can(&rbac, res("create", "events.k8s.io", "events").namespace("ns")));
    assert!(can(&rbac, res("create", "coordination.k8s.io", "leases").namespace("kube-system")));
    assert!(can(
        &rbac,
        res("update", "coordination.k8s.io", "leases").namespace("kube-system").name("kube-scheduler")
    ));
    assert!(!can(
        &rbac,
        res("update", "coordination.k8s.io", "leases").namespace("kube-system").name("other")
    ));
    assert!(!can(&rbac, res("create", "", "pods").namespace("ns")));
    assert!(!can(&rbac, res("get", "", "secrets").namespace("ns").name("s")));
    // Volume binding (system:volume-scheduler).
    for resource in ["persistentvolumes", "persistentvolumeclaims"] {
        for verb in ["get", "list", "watch", "update", "patch"] {
            assert!(can(&rbac, res(verb, "", resource).namespace("ns").name("x")), "{verb} {resource}");
        }
    }
    assert!(can(&rbac, res("watch", "storage.k8s.io", "storageclasses")));
    assert!(!can(&rbac, res("update", "storage.k8s.io", "storageclasses").name("x")));
    assert!(!can(&rbac, res("delete", "", "persistentvolumes").name("x")));
}

#[test]
fn controller_manager() {
    let rbac = default_authorizer();
    let cm = user(CONTROLLER_MANAGER_USER, &["system:authenticated"]);
    let res =
        |verb: &str, group: &str, resource: &str| Attributes::resource(cm.clone(), verb, group, resource);
    for (verb, group, resource, sub) in [
        ("create", "apps", "replicasets", ""),
        ("update", "apps", "deployments", "status"),
        ("create", "", "pods", ""),
        ("patch", "", "pods", "status"),
        ("delete", "", "nodes", ""),
        ("update", "", "nodes", "status"),
        ("create", "", "endpoints", ""),
        ("update", "", "namespaces", "finalize"),
        ("deletecollection", "apps", "statefulsets", ""),
        ("delete", "batch", "jobs", ""),
        ("update", "batch", "jobs", "status"),
        ("update", "batch", "jobs", "finalizers"),
        ("update", "apps", "daemonsets", "status"),
        ("update", "apps", "daemonsets", "finalizers"),
        ("create", "apps", "controllerrevisions", ""),
        ("update", "apps", "controllerrevisions", ""),
        ("delete", "apps", "controllerrevisions", ""),
        ("create", "", "pods", "binding"),
        ("create", "batch", "jobs", ""),
        ("get", "batch", "cronjobs", ""),
        ("update", "batch", "cronjobs", "status"),
        ("update", "", "pods", ""),
        ("patch", "anything.example.com", "widgets", ""),
        ("create", "", "serviceaccounts", ""),
        ("create", "", "serviceaccounts", "token"),
        ("update", "", "services", "status"),
        ("escalate", "rbac.authorization.k8s.io", "clusterroles", ""),
        ("update", "certificates.k8s.io", "certificatesigningrequests", "approval"),
        ("create", "", "configmaps", ""),
        ("update", "", "configmaps", ""),
        ("create", "events.k8s.io", "events", ""),
        ("watch", "", "secrets", ""),
        ("update", "policy", "poddisruptionbudgets", "status"),
        ("get", "policy", "poddisruptionbudgets", ""),
        ("get", "apps", "deployments", "scale"),
        ("create", "", "persistentvolumeclaims", ""),
        ("delete", "", "persistentvolumeclaims", ""),
        ("update", "", "persistentvolumeclaims", ""),
        ("update", "", "persistentvolumeclaims", "status"),
        ("update", "apps", "statefulsets", "status"),
        ("update", "apps", "statefulsets", "finalizers"),
        ("create", "", "persistentvolumes", ""),
        ("delete", "", "persistentvolumes", ""),
        ("update", "", "persistentvolumes", "status"),
        ("get", "storage.k8s.io", "storageclasses", ""),
        ("create", "storage.k8s.io", "storageclasses", ""),
    ] {
        assert!(
            can(&rbac, res(verb, group, resource).namespace("ns").subresource(sub)),
            "{verb} {group}/{resource}/{sub}"
        );
    }
    assert!(can(
        &rbac,
        res("sign", "certificates.k8s.io", "signers").name("kubernetes.io/kube-apiserver-client")
    ));
    assert!(!can(&rbac, res("sign", "certificates.k8s.io", "signers").name("example.com/custom")));
    for signer in [
        "kubernetes.io/kube-apiserver-client-kubelet",
        "kubernetes.io/kubelet-serving",
        "kubernetes.io/kube-apiserver-client",
    ] {
        assert!(can(&rbac, res("approve", "certificates.k8s.io", "signers").name(signer)), "{signer}");
    }
    assert!(!can(
        &rbac,
        res("approve", "certificates.k8s.io", "signers").name("kubernetes.io/legacy-unknown")
    ));
    assert!(!can(&rbac, res("approve", "certificates.k8s.io", "signers").name("kubernetes.io/*")));
    assert!(can(
        &rbac,
        res("update", "coordination.k8s.io", "leases")
            .namespace("kube-system")
            .name("kube-controller-manager")
    ));
    assert!(!can(&rbac, res("create", "rbac.authorization.k8s.io", "clusterrolebindings")));
    assert!(!can(&rbac, res("create", "", "pods").namespace("ns").name("p").subresource("exec")));
    let cm_rules = role("system:kube-controller-manager").rules;
    let distinct: HashSet<&PolicyRule> = cm_rules.iter().collect();
    assert_eq!(distinct.len(), cm_rules.len(), "the union has no duplicate rules");
}

#[test]
fn node_components_and_bootstrap() {
    let rbac = default_authorizer();
    let proxy = user(KUBE_PROXY_USER, &["system:authenticated"]);
    assert!(can(&rbac, Attributes::resource(proxy.clone(), "watch", "discovery.k8s.io", "endpointslices")));
    assert!(can(&rbac, Attributes::resource(proxy.clone(), "list", "", "services")));
    assert!(!can(&rbac, Attributes::resource(proxy, "get", "", "secrets").namespace("ns")));

    let dns = user(CLUSTER_DNS_USER, &["system:authenticated"]);
    for resource in ["services", "endpoints", "namespaces"] {
        assert!(can(&rbac, Attributes::resource(dns.clone(), "watch", "", resource)), "{resource}");
    }
    assert!(!can(&rbac, Attributes::resource(dns.clone(), "list", "", "pods")));
    assert!(!can(&rbac, Attributes::resource(dns.clone(), "update", "", "services").namespace("ns")));
    // Its registration as kube-system/kube-dns, and nothing like it elsewhere.
    let in_ns = |verb: &str, resource: &str, ns: &str, name: &str| {
        Attributes::resource(dns.clone(), verb, "", resource).namespace(ns).name(name)
    };
    assert!(can(&rbac, in_ns("get", "namespaces", "", KUBE_SYSTEM)));
    assert!(can(&rbac, in_ns("create", "services", KUBE_SYSTEM, "")));
    assert!(can(&rbac, in_ns("create", "endpoints", KUBE_SYSTEM, "")));
    assert!(can(&rbac, in_ns("update", "endpoints", KUBE_SYSTEM, KUBE_DNS)));
    assert!(!can(&rbac, in_ns("update", "endpoints", KUBE_SYSTEM, "kube-scheduler")));
    assert!(
        !can(&rbac, in_ns("update", "services", KUBE_SYSTEM, KUBE_DNS)),
        "an existing Service is left alone"
    );
    assert!(!can(&rbac, in_ns("create", "services", "default", "")));
    assert!(!can(&rbac, in_ns("create", "namespaces", "", "")));

    let apiserver = user(APISERVER_KUBELET_CLIENT_USER, &["system:authenticated"]);
    for sub in ["proxy", "log", "stats", "metrics"] {
        assert!(can(
            &rbac,
            Attributes::resource(apiserver.clone(), "create", "", "nodes").name("n").subresource(sub)
        ));
    }
    assert!(!can(&rbac, Attributes::resource(apiserver, "delete", "", "nodes").name("n")));

    let bootstrapper = user("system:bootstrap:abcdef", &["system:bootstrappers", "system:authenticated"]);
    let csr = |u: &UserInfo, verb: &str, sub: &str| {
        Attributes::resource(u.clone(), verb, "certificates.k8s.io", "certificatesigningrequests")
            .subresource(sub)
    };
    assert!(can(&rbac, csr(&bootstrapper, "create", "")));
    assert!(can(&rbac, csr(&bootstrapper, "create", "nodeclient")));
    assert!(can(&rbac, csr(&bootstrapper, "create", "kubeproxyclient")));
    assert!(!can(&rbac, csr(&bootstrapper, "create", "selfnodeclient")));
    assert!(!can(&rbac, csr(&bootstrapper, "update", "approval")));
    assert!(!can(&rbac, csr(&bootstrapper, "update", "status")));

    let node = user("system:node:n1", &["system:nodes", "system:authenticated"]);
    assert!(can(&rbac, csr(&node, "create", "selfnodeclient")));
    assert!(!can(&rbac, csr(&node, "create", "kubeproxyclient")), "only bootstrap tokens");
    assert!(!can(&rbac, csr(&node, "update", "approval")));
    assert!(
        !can(&rbac, Attributes::resource(node, "get", "", "pods").namespace("ns")),
        "system:node is bound to nobody: the Node authorizer decides"
    );

    let sa = user(
        "system:serviceaccount:ns:default",
        &["system:serviceaccounts", "system:serviceaccounts:ns", "system:authenticated"],
    );
    assert!(can(&rbac, Attributes::non_resource(sa.clone(), "get", "/openid/v1/jwks")));
    assert!(can(&rbac, Attributes::non_resource(sa.clone(), "get", "/.well-known/openid-configuration")));
    assert!(!can(&rbac, Attributes::resource(sa, "get", "", "pods").namespace("ns")));
}

#[test]
fn node_join_bindings_are_kubeadms_and_navarchs() {
    let bindings = cluster_role_bindings();
    let bound = |name: &str| {
        let b = bindings.iter().find(|b| b.name == name).unwrap_or_else(|| panic!("no binding {name}"));
        let subjects: Vec<(&str, &str)> =
            b.subjects.iter().map(|s| (s.kind.as_str(), s.name.as_str())).collect();
        (b.role_ref.name.as_str(), subjects)
    };
    assert_eq!(
        bound("navarch:kubelet-bootstrap"),
        ("system:node-bootstrapper", vec![("Group", "system:bootstrappers")])
    );
    assert_eq!(
        bound("navarch:node-autoapprove-bootstrap"),
        (
            "system:certificates.k8s.io:certificatesigningrequests:nodeclient",
            vec![("Group", "system:bootstrappers")]
        )
    );
    assert_eq!(
        bound("navarch:node-autoapprove-certificate-rotation"),
        (
            "system:certificates.k8s.io:certificatesigningrequests:selfnodeclient",
            vec![("Group", "system:nodes")]
        )
    );
    assert_eq!(
        bound("navarch:kube-proxy-autoapprove-bootstrap"),
        (
            "navarch:certificatesigningrequests:kubeproxyclient",
            vec![("Group", "system:bootstrappers"), ("User", "system:kube-proxy")]
        )
    );
    assert_eq!(
        bound("navarch:kube-proxy-certificate-rotation"),
        ("system:node-bootstrapper", vec![("User", "system:kube-proxy")])
    );
    assert_eq!(
        role("navarch:certificatesigningrequests:kubeproxyclient").rules,
        vec![PolicyRule::resource(
            &["create"],
            &["certificates.k8s.io"],
            &["certificatesigningrequests/kubeproxyclient"]
        )]
    );
}

#[test]
fn escalation_with_the_default_policy() {
    let rbac = default_authorizer();
    let admin = user("admin@navarch", &["navarch:cluster-admins"]);
    for role in aggregated_roles() {
        assert_eq!(rbac.check_cluster_role_write(&admin, &role, None), Ok(()), "{}", role.name);
    }
    let dns = user(CLUSTER_DNS_USER, &["system:authenticated"]);
    let dns_role = role(CLUSTER_DNS_USER);
    assert_eq!(rbac.check_cluster_role_write(&dns, &dns_role, None), Ok(()), "exactly what it holds");
    let narrower =
        ClusterRole { rules: vec![PolicyRule::resource(&["get"], &[""], &["services"])], ..dns_role.clone() };
    assert_eq!(rbac.check_cluster_role_write(&dns, &narrower, None), Ok(()), "a subset of what it holds");
    let mut wider = dns_role;
    wider.rules.push(PolicyRule::resource(&["list"], &[""], &["secrets"]));
    let err = rbac.check_cluster_role_write(&dns, &wider, None).unwrap_err();
    assert!(err.to_string().ends_with(r#"{APIGroups:[""], Resources:["secrets"], Verbs:["list"]}"#), "{err}");
}

/// view, edit and admin read `metrics.k8s.io` through `system:aggregated-metrics-reader`.
fn in_all_three_resource_metrics() -> bool {
    ["view", "edit", "admin"].iter().all(|name| {
        let requested = [
            PolicyRule::resource(&["list"], &["metrics.k8s.io"], &["pods"]),
            PolicyRule::resource(&["get"], &["metrics.k8s.io"], &["nodes"]),
        ];
        crate::authz::rules::covers(&role(name).rules, &requested).is_ok()
    })
}
