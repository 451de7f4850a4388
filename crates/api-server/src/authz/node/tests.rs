//! The Node authorizer's decisions, with Kubernetes' reasons.

use std::sync::Arc;

use super::graph_tests::{EVERYTHING, pod};
use super::{NodeAuthorizer, NodeGraph};
use crate::authz::{Attributes, Decision};
use crate::local_store::StoreChange;
use crate::user_info::{NODES_GROUP, UserInfo};

fn node_user(name: &str) -> UserInfo {
    UserInfo { name: format!("system:node:{name}"), groups: vec![NODES_GROUP.into()], ..UserInfo::default() }
}

fn authorizer() -> NodeAuthorizer {
    let graph = Arc::new(NodeGraph::new());
    graph.apply(StoreChange::Upsert(&pod(EVERYTHING)));
    graph.apply(StoreChange::Upsert(&pod(
        "metadata: {name: other, namespace: default, uid: o}\nspec:\n  nodeName: node-2\n  serviceAccountName: other-sa\n  volumes: [{name: s, secret: {secretName: other-secret}}]",
    )));
    NodeAuthorizer::new(graph)
}

/// A request of node-1 on a core resource.
fn req(verb: &str, resource: &str, namespace: &str, name: &str) -> Attributes {
    Attributes::resource(node_user("node-1"), verb, "", resource).namespace(namespace).name(name)
}

fn allowed(d: &Decision) -> bool {
    matches!(d, Decision::Allow(_))
}

fn refused(d: Decision, reason: &str) {
    assert_eq!(d, Decision::NoOpinion(reason.to_string()));
}

const NO_RELATIONSHIP: &str = "no relationship found between node 'node-1' and this object";

#[test]
fn other_users_get_no_opinion() {
    let a = authorizer();
    let alice = UserInfo { name: "alice".into(), ..UserInfo::default() };
    refused(
        a.authorize(
            &Attributes::resource(alice, "get", "", "secrets").namespace("default").name("vol-secret"),
        ),
        "",
    );
    let not_in_group = UserInfo { name: "system:node:node-1".into(), ..UserInfo::default() };
    refused(a.authorize(&Attributes::resource(not_in_group, "get", "", "nodes").name("node-1")), "");
    let unknown =
        UserInfo { name: "system:node:".into(), groups: vec![NODES_GROUP.into()], ..UserInfo::default() };
    refused(
        a.authorize(&Attributes::resource(unknown, "get", "", "nodes").name("x")),
        "unknown node for user \"system:node:\"",
    );
}

#[test]
fn secrets_and_configmaps_only_when_referenced() {
    let a = authorizer();
    for name in ["vol-secret", "env-secret", "proj-secret", "pull", "debug-secret"] {
        assert!(allowed(&a.authorize(&req("get", "secrets", "default", name))), "{name}");
    }
    for name in ["vol-cm", "env-cm", "envfrom-cm", "proj-cm"] {
        assert!(allowed(&a.authorize(&req("get", "configmaps", "default", name))), "{name}");
    }
    // One object by name (a metadata.name field selector) may be listed and watched.
    assert!(allowed(&a.authorize(&req("watch", "secrets", "default", "vol-secret"))));
    assert!(allowed(&a.authorize(&req("list", "configmaps", "default", "vol-cm"))));
    // Another node's, unreferenced, missing, or another namespace's: the same refusal (403, never 404).
    refused(a.authorize(&req("get", "secrets", "default", "other-secret")), NO_RELATIONSHIP);
    refused(a.authorize(&req("get", "secrets", "default", "missing")), NO_RELATIONSHIP);
    refused(a.authorize(&req("get", "secrets", "kube-system", "vol-secret")), NO_RELATIONSHIP);
    refused(a.authorize(&req("get", "configmaps", "default", "vol-secret")), NO_RELATIONSHIP);
    // Collections, writes, subresources, cluster-wide.
    refused(a.authorize(&req("list", "secrets", "default", "")), "No Object name found");
    refused(a.authorize(&req("watch", "configmaps", "default", "")), "No Object name found");
    refused(a.authorize(&req("list", "secrets", "", "")), "can only read namespaced object of this type");
    refused(
        a.authorize(&req("update", "secrets", "default", "vol-secret")),
        "can only read resources of this type",
    );
    refused(
        a.authorize(&req("delete", "configmaps", "default", "vol-cm")),
        "can only read resources of this type",
    );
    refused(
        a.authorize(&req("get", "secrets", "default", "vol-secret").subresource("x")),
        "cannot read subresource",
    );
    // The other node sees its own.
    let b = Attributes::resource(node_user("node-2"), "get", "", "secrets")
        .namespace("default")
        .name("other-secret");
    assert!(allowed(&a.authorize(&b)));
}

#[test]
fn claims_get_only() {
    let a = authorizer();
    assert!(allowed(&a.authorize(&req("get", "persistentvolumeclaims", "default", "data-claim"))));
    assert!(allowed(&a.authorize(&req("get", "persistentvolumeclaims", "default", "web-scratch"))));
    refused(a.authorize(&req("get", "persistentvolumeclaims", "default", "nope")), NO_RELATIONSHIP);
    // The local-path provisioner's verbs come from the static rules; writes of claims do not.
    assert!(allowed(&a.authorize(&req("list", "persistentvolumeclaims", "", ""))));
    assert!(allowed(&a.authorize(&req("watch", "persistentvolumeclaims", "", ""))));
    refused(
        a.authorize(&req("create", "persistentvolumeclaims", "default", "data-claim")),
        "can only get individual resources of this type",
    );
    refused(
        a.authorize(&req("delete", "persistentvolumeclaims", "default", "data-claim")),
        "can only get individual resources of this type",
    );
    assert!(allowed(
        &a.authorize(&req("patch", "persistentvolumeclaims", "default", "data-claim").subresource("status"))
    ));
    refused(
        a.authorize(&req("get", "persistentvolumeclaims", "default", "data-claim").subresource("status")),
        "can only get/update/patch this type",
    );
    // A volume is related through the claim its claimRef names.
    refused(a.authorize(&req("get", "persistentvolumes", "", "pv-1")), NO_RELATIONSHIP);
    a.graph().upsert_volume(&volume("pv-1", "default", "data-claim"));
    a.graph().upsert_volume(&volume("pv-2", "default", "other-claim"));
    assert!(allowed(&a.authorize(&req("get", "persistentvolumes", "", "pv-1"))));
    refused(a.authorize(&req("get", "persistentvolumes", "", "pv-2")), NO_RELATIONSHIP);
    for verb in ["list", "watch", "create", "delete"] {
        assert!(allowed(&a.authorize(&req(verb, "persistentvolumes", "", "pv-2"))), "{verb}");
    }
    for verb in ["update", "patch"] {
        refused(
            a.authorize(&req(verb, "persistentvolumes", "", "pv-1")),
            "can only get individual resources of this type",
        );
    }
    let storage = |verb: &str| {
        Attributes::resource(node_user("node-1"), verb, "storage.k8s.io", "storageclasses").name("local-path")
    };
    assert!(allowed(&a.authorize(&storage("get"))));
    assert!(allowed(&a.authorize(&storage("watch"))));
    refused(a.authorize(&storage("delete")), "");
}

fn volume(name: &str, namespace: &str, claim: &str) -> navarch_api::v1::PersistentVolume {
    serde_yaml::from_str(&format!(
        "metadata: {{name: {name}}}\nspec: {{claimRef: {{namespace: {namespace}, name: {claim}}}}}"
    ))
    .expect("test volume")
}

#[test]
fn service_account_tokens_for_accounts_of_own_pods() {
    let a = authorizer();
    let token = |sa: &str| req("create", "serviceaccounts", "default", sa).subresource("token");
    assert!(allowed(&a.authorize(&token("builder"))));
    refused(a.authorize(&token("other-sa")), NO_RELATIONSHIP);
    refused(a.authorize(&token("default")), NO_RELATIONSHIP);
    refused(
        a.authorize(&req("get", "serviceaccounts", "default", "builder")),
        "can only create tokens for individual service accounts",
    );
    refused(
        a.authorize(&req("create", "serviceaccounts", "default", "")),
        "can only create tokens for individual service accounts",
    );
    refused(
        a.authorize(&req("create", "serviceaccounts", "default", "builder")),
        "can only create token subresource of serviceaccount",
    );
}

#[test]
fn pods_own_only_and_list_by_node_selector() {
    let a = authorizer();
    assert!(allowed(&a.authorize(&req("get", "pods", "default", "web"))));
    refused(a.authorize(&req("get", "pods", "default", "other")), NO_RELATIONSHIP);
    refused(a.authorize(&req("get", "pods", "default", "missing")), NO_RELATIONSHIP);
    let list = |selector: &str| req("list", "pods", "", "").field_selector(selector);
    assert!(allowed(&a.authorize(&list("spec.nodeName=node-1"))));
    assert!(allowed(&a.authorize(&list("spec.nodeName==node-1"))));
    assert!(allowed(&a.authorize(&list("status.phase!=Failed,spec.nodeName=node-1"))));
    assert!(allowed(
        &a.authorize(&req("watch", "pods", "default", "").field_selector("spec.nodeName=node-1"))
    ));
    let reason = "can only list/watch pods with spec.nodeName field selector";
    refused(a.authorize(&list("")), reason);
    refused(a.authorize(&list("spec.nodeName=node-2")), reason);
    refused(a.authorize(&list("spec.nodeName!=node-1")), reason);
    refused(a.authorize(&list("spec.nodeName=node-10")), reason);
    refused(a.authorize(&list("metadata.name=web")), reason);
    refused(a.authorize(&list("spec.nodeName")), reason);
    // One pod by name.
    assert!(allowed(&a.authorize(&req("watch", "pods", "default", "web"))));
    refused(a.authorize(&req("watch", "pods", "default", "other")), NO_RELATIONSHIP);
    // Writes NodeRestriction narrows; nothing else.
    assert!(allowed(&a.authorize(&req("create", "pods", "default", ""))));
    assert!(allowed(&a.authorize(&req("delete", "pods", "default", "other"))));
    assert!(allowed(&a.authorize(&req("update", "pods", "default", "web").subresource("status"))));
    assert!(allowed(&a.authorize(&req("patch", "pods", "default", "other").subresource("status"))));
    assert!(allowed(&a.authorize(&req("create", "pods", "default", "web").subresource("eviction"))));
    refused(a.authorize(&req("update", "pods", "default", "web")), "");
    refused(a.authorize(&req("patch", "pods", "default", "web")), "");
    refused(a.authorize(&req("deletecollection", "pods", "default", "")), "");
    refused(a.authorize(&req("get", "pods", "default", "web").subresource("log")), "");
    refused(a.authorize(&req("create", "pods", "default", "web").subresource("binding")), "");
    refused(a.authorize(&req("get", "pods", "default", "web").subresource("status")), "");
}

#[test]
fn nodes_read_own_write_narrowed_by_admission() {
    let a = authorizer();
    assert!(allowed(&a.authorize(&req("get", "nodes", "", "node-1"))));
    assert!(allowed(&a.authorize(&req("watch", "nodes", "", "node-1"))));
    refused(
        a.authorize(&req("get", "nodes", "", "node-2")),
        "node 'node-1' cannot read 'node-2', only its own Node object",
    );
    refused(
        a.authorize(&req("list", "nodes", "", "")),
        "node 'node-1' cannot read all nodes, only its own Node object",
    );
    for verb in ["create", "update", "patch"] {
        assert!(allowed(&a.authorize(&req(verb, "nodes", "", "node-2"))), "{verb}");
    }
    assert!(allowed(&a.authorize(&req("patch", "nodes", "", "node-1").subresource("status"))));
    refused(a.authorize(&req("delete", "nodes", "", "node-1")), "");
    refused(a.authorize(&req("get", "nodes", "", "node-1").subresource("status")), "");
    refused(a.authorize(&req("get", "nodes", "", "node-1").subresource("proxy")), "");
}

#[test]
fn a_node_unknown_to_the_graph_still_reads_its_node() {
    let a = NodeAuthorizer::new(Arc::new(NodeGraph::new()));
    let fresh = Attributes::resource(node_user("node-9"), "get", "", "nodes").name("node-9");
    assert!(allowed(&a.authorize(&fresh)));
    let secret =
        Attributes::resource(node_user("node-9"), "get", "", "secrets").namespace("default").name("s");
    refused(a.authorize(&secret), "no relationship found between node 'node-9' and this object");
}

#[test]
fn leases_own_in_node_lease_namespace() {
    let a = authorizer();
    let lease = |verb: &str, ns: &str, name: &str| {
        Attributes::resource(node_user("node-1"), verb, "coordination.k8s.io", "leases")
            .namespace(ns)
            .name(name)
    };
    for verb in ["get", "update", "patch", "delete"] {
        assert!(allowed(&a.authorize(&lease(verb, "kube-node-lease", "node-1"))), "{verb}");
    }
    assert!(allowed(&a.authorize(&lease("create", "kube-node-lease", ""))), "the name is NodeRestriction's");
    refused(
        a.authorize(&lease("get", "kube-node-lease", "node-2")),
        "can only access node lease with the same name as the requesting node",
    );
    refused(
        a.authorize(&lease("get", "default", "node-1")),
        "can only access leases in the \"kube-node-lease\" system namespace",
    );
    refused(
        a.authorize(&lease("list", "kube-node-lease", "")),
        "can only get, create, update, patch, or delete a node lease",
    );
}

#[test]
fn csinodes_own_only() {
    let a = authorizer();
    let csi = |verb: &str, name: &str| {
        Attributes::resource(node_user("node-1"), verb, "storage.k8s.io", "csinodes").name(name)
    };
    assert!(allowed(&a.authorize(&csi("get", "node-1"))));
    assert!(allowed(&a.authorize(&csi("create", ""))));
    refused(
        a.authorize(&csi("get", "node-2")),
        "can only access CSINode with the same name as the requesting node",
    );
    refused(a.authorize(&csi("list", "")), "can only get, create, update, patch, or delete a CSINode");
}

#[test]
fn everything_else_by_the_static_node_rules() {
    let a = authorizer();
    assert!(allowed(&a.authorize(&req("list", "services", "", ""))));
    assert!(allowed(&a.authorize(&req("create", "events", "default", ""))));
    assert!(allowed(&a.authorize(&req("get", "endpoints", "default", "kubernetes"))));
    let csr = Attributes::resource(
        node_user("node-1"),
        "create",
        "certificates.k8s.io",
        "certificatesigningrequests",
    );
    assert!(allowed(&a.authorize(&csr)));
    let review = Attributes::resource(node_user("node-1"), "create", "authentication.k8s.io", "tokenreviews");
    assert!(allowed(&a.authorize(&review)));
    // Not in the rules: no opinion, RBAC decides.
    refused(a.authorize(&req("list", "endpoints", "", "")), "");
    refused(a.authorize(&req("delete", "namespaces", "", "default")), "");
    let deployments = Attributes::resource(node_user("node-1"), "list", "apps", "deployments");
    refused(a.authorize(&deployments), "");
    refused(a.authorize(&Attributes::non_resource(node_user("node-1"), "get", "/healthz")), "");
}

#[test]
fn decisions_follow_pod_changes() {
    let graph = Arc::new(NodeGraph::new());
    let a = NodeAuthorizer::new(graph.clone());
    let get = req("get", "secrets", "default", "vol-secret");
    refused(a.authorize(&get), NO_RELATIONSHIP);
    let p = pod(EVERYTHING);
    graph.apply(StoreChange::Upsert(&p));
    assert!(allowed(&a.authorize(&get)));
    graph.apply(StoreChange::Delete(&p));
    refused(a.authorize(&get), NO_RELATIONSHIP);
}

#[test]
fn through_the_authorization_chain() {
    use crate::authorization::{Authorization, Authorizer};
    use crate::authz::RbacAuthorizer;
    let node: Arc<dyn Authorizer> = Arc::new(authorizer());
    let chain = Authorization::new(Arc::new(RbacAuthorizer::default()), vec![node]);
    assert!(chain.check(&req("get", "secrets", "default", "vol-secret")).is_ok());
    let err = chain.check(&req("get", "secrets", "default", "missing")).expect_err("refused");
    assert_eq!(
        err.to_string(),
        "secrets \"missing\" is forbidden: User \"system:node:node-1\" cannot get resource \"secrets\" in API group \"\" in the namespace \"default\": no relationship found between node 'node-1' and this object"
    );
}

#[test]
fn authorization_modes_build_the_chain() {
    use crate::authorization::{Authorization, Authorizer, Mode};
    use crate::authz::RbacAuthorizer;
    let node: Arc<dyn Authorizer> = Arc::new(authorizer());
    let rbac = Arc::new(RbacAuthorizer::default());
    let chain = |modes: &[Mode]| Authorization::with_modes(modes, rbac.clone(), node.clone());
    let (related, missing) =
        (req("get", "secrets", "default", "vol-secret"), req("get", "secrets", "default", "missing"));
    assert!(chain(&[Mode::AlwaysAllow]).check(&missing).is_ok());
    assert!(chain(&[Mode::Node, Mode::Rbac]).check(&missing).is_err());
    // The Node authorizer has no opinion on an unrelated Secret: the next mode decides.
    assert!(chain(&[Mode::Node, Mode::Rbac, Mode::AlwaysAllow]).check(&missing).is_ok());
    assert!(chain(&[Mode::AlwaysDeny, Mode::Node]).check(&related).is_err());
    assert!(chain(&[Mode::Node, Mode::AlwaysDeny]).check(&related).is_ok());
    assert!(chain(&[Mode::Rbac]).check(&related).is_err());
}
