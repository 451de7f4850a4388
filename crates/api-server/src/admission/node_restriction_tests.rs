//! NodeRestriction: what nodes may write, with Kubernetes' messages.

use std::sync::Arc;

use navarch_api::Object;
use navarch_api::v1::TokenRequest;

use super::node_restriction::{Lookup, admit, admit_token_request, is_kubelet_label};
use crate::error::ApiError;
use crate::user_info::{NODES_GROUP, UserInfo};

fn node_user(name: &str) -> UserInfo {
    UserInfo { name: format!("system:node:{name}"), groups: vec![NODES_GROUP.into()], ..UserInfo::default() }
}

fn obj(kind: &str, yaml: &str) -> Object {
    let value: serde_yaml::Value = serde_yaml::from_str(yaml).expect("test YAML");
    Object::from_value(kind, value).expect("test object")
}

/// The stored Node `node-1` (uid `n1-uid`) and pods `mine` (on node-1, uid `mine-uid`) and `theirs`
/// (on node-2) in `default`.
fn lookup(kind: &str, namespace: &str, name: &str) -> Option<Arc<Object>> {
    let o = match (kind, namespace, name) {
        ("Node", "", "node-1") => obj("Node", "metadata: {name: node-1, uid: n1-uid}"),
        ("Pod", "default", "mine") => {
            obj("Pod", "metadata: {name: mine, namespace: default, uid: mine-uid}\nspec: {nodeName: node-1}")
        }
        ("Pod", "default", "theirs") => obj(
            "Pod",
            "metadata: {name: theirs, namespace: default, uid: theirs-uid}\nspec: {nodeName: node-2}",
        ),
        _ => return None,
    };
    Some(Arc::new(o))
}

const LOOKUP: &Lookup<'static> = &lookup;

fn forbidden(r: Result<(), ApiError>) -> String {
    match r {
        Err(ApiError::Forbidden(m)) => m,
        other => panic!("expected Forbidden, got {other:?}"),
    }
}

fn node1() -> UserInfo {
    node_user("node-1")
}

const MIRROR: &str = r#"
metadata:
  name: static-web-node-1
  namespace: kube-system
  annotations: {kubernetes.io/config.mirror: abc}
  ownerReferences: [{apiVersion: v1, kind: Node, name: node-1, uid: n1-uid, controller: true}]
spec:
  nodeName: node-1
  containers: [{name: web, image: nginx}]
"#;

fn create_pod(yaml: &str) -> Result<(), ApiError> {
    admit(&node1(), "create", Some(&obj("Pod", yaml)), None, "", LOOKUP)
}

#[test]
fn other_users_are_not_restricted() {
    let alice = UserInfo { name: "alice".into(), ..UserInfo::default() };
    let pod = obj("Pod", "metadata: {name: p, namespace: default}\nspec: {nodeName: node-2}");
    assert!(admit(&alice, "create", Some(&pod), None, "", LOOKUP).is_ok());
    let node2 = obj("Node", "metadata: {name: node-2}");
    assert!(admit(&alice, "update", Some(&node2), Some(&node2), "", LOOKUP).is_ok());
    let unknown =
        UserInfo { name: "system:node:".into(), groups: vec![NODES_GROUP.into()], ..UserInfo::default() };
    assert_eq!(
        forbidden(admit(&unknown, "create", Some(&pod), None, "", LOOKUP)),
        "pods \"p\" is forbidden: could not determine node from user \"system:node:\""
    );
    // Reads are not admission's.
    assert!(admit(&node1(), "get", Some(&pod), None, "", LOOKUP).is_ok());
    // A node's write without the object fails closed.
    assert_eq!(
        forbidden(admit(&node1(), "delete", None, None, "", LOOKUP)),
        "forbidden: unexpected type <nil>"
    );
}

#[test]
fn mirror_pods_only() {
    assert!(create_pod(MIRROR).is_ok());
    assert_eq!(
        forbidden(create_pod("metadata: {name: web, namespace: default}\nspec: {nodeName: node-1}")),
        "pods \"web\" is forbidden: pod does not have \"kubernetes.io/config.mirror\" annotation, node \"node-1\" can only create mirror pods"
    );
    assert_eq!(
        forbidden(create_pod(&MIRROR.replace("nodeName: node-1", "nodeName: node-2"))),
        "pods \"static-web-node-1\" is forbidden: node \"node-1\" can only create pods with spec.nodeName set to itself"
    );
    let generated =
        "metadata:\n  generateName: gen-\n  namespace: x\n  annotations: {kubernetes.io/config.mirror: a}";
    assert_eq!(
        forbidden(create_pod(generated)),
        "pods \"gen-\" is forbidden: node \"node-1\" can only create pods with spec.nodeName set to itself"
    );
}

#[test]
fn mirror_pod_owner_must_be_the_node() {
    let prefix = "pods \"static-web-node-1\" is forbidden: node \"node-1\" ";
    let no_owner = MIRROR.replace(
        "  ownerReferences: [{apiVersion: v1, kind: Node, name: node-1, uid: n1-uid, controller: true}]\n",
        "",
    );
    assert_eq!(
        forbidden(create_pod(&no_owner)),
        format!("{prefix}can only create pods with an owner reference set to itself")
    );
    let two = MIRROR
        .replace("controller: true}]", "controller: true}, {apiVersion: v1, kind: Node, name: x, uid: y}]");
    assert_eq!(
        forbidden(create_pod(&two)),
        format!("{prefix}can only create pods with a single owner reference set to itself")
    );
    let other_node = MIRROR.replace("name: node-1, uid", "name: node-2, uid");
    assert_eq!(
        forbidden(create_pod(&other_node)),
        format!("{prefix}can only create pods with an owner reference set to itself")
    );
    let not_node = MIRROR.replace("kind: Node", "kind: ReplicaSet");
    assert_eq!(
        forbidden(create_pod(&not_node)),
        format!("{prefix}can only create pods with an owner reference set to itself")
    );
    let not_controller = MIRROR.replace(", controller: true", "");
    assert_eq!(
        forbidden(create_pod(&not_controller)),
        format!("{prefix}can only create pods with a controller owner reference set to itself")
    );
    let blocking = MIRROR.replace("controller: true", "controller: true, blockOwnerDeletion: true");
    assert_eq!(
        forbidden(create_pod(&blocking)),
        format!("{prefix}must not set blockOwnerDeletion on an owner reference")
    );
    let stale = MIRROR.replace("uid: n1-uid", "uid: old-uid");
    assert_eq!(
        forbidden(create_pod(&stale)),
        "pods \"static-web-node-1\" is forbidden: node node-1 UID mismatch: expected old-uid got n1-uid"
    );
    // The node's Node not stored yet: NotFound, as Kubernetes.
    let none: &Lookup<'_> = &|_, _, _| None;
    let r = admit(&node1(), "create", Some(&obj("Pod", MIRROR)), None, "", none);
    assert!(
        matches!(r, Err(ApiError::NotFound { ref plural, ref name }) if plural == "nodes" && name == "node-1")
    );
}

#[test]
fn mirror_pods_reference_nothing() {
    let prefix =
        "pods \"static-web-node-1\" is forbidden: node \"node-1\" can not create pods that reference ";
    let with = |extra: &str| format!("{MIRROR}{extra}");
    assert_eq!(
        forbidden(create_pod(&with("  serviceAccountName: sa\n"))),
        format!("{prefix}a service account")
    );
    assert_eq!(
        forbidden(create_pod(&with("  volumes: [{name: s, secret: {secretName: s}}]\n"))),
        format!("{prefix}secrets")
    );
    assert_eq!(
        forbidden(create_pod(&with("  imagePullSecrets: [{name: pull}]\n"))),
        format!("{prefix}secrets")
    );
    let env = "  initContainers: [{name: i, image: i, env: [{name: A, valueFrom: {configMapKeyRef: {name: c, key: k}}}]}]\n";
    assert_eq!(forbidden(create_pod(&with(env))), format!("{prefix}configmaps"));
    let projected = "  volumes: [{name: p, projected: {sources: [{configMap: {name: c}}]}}]\n";
    assert_eq!(forbidden(create_pod(&with(projected))), format!("{prefix}configmaps"));
    let bundle = "  volumes: [{name: p, projected: {sources: [{clusterTrustBundle: {name: b, path: p}}]}}]\n";
    assert_eq!(forbidden(create_pod(&with(bundle))), format!("{prefix}clustertrustbundles"));
    let claim = "  volumes: [{name: d, persistentVolumeClaim: {claimName: c}}]\n";
    assert_eq!(forbidden(create_pod(&with(claim))), format!("{prefix}persistentvolumeclaims"));
    // Volumes that reference no API object are fine.
    assert!(
        create_pod(&with("  volumes: [{name: e, emptyDir: {}}, {name: h, hostPath: {path: /tmp}}]\n"))
            .is_ok()
    );
}

#[test]
fn pod_updates_deletes_and_subresources() {
    let mine =
        obj("Pod", "metadata: {name: mine, namespace: default, labels: {a: b}}\nspec: {nodeName: node-1}");
    let theirs = obj("Pod", "metadata: {name: theirs, namespace: default}\nspec: {nodeName: node-2}");
    assert!(admit(&node1(), "delete", None, Some(&mine), "", LOOKUP).is_ok());
    assert_eq!(
        forbidden(admit(&node1(), "delete", None, Some(&theirs), "", LOOKUP)),
        "pods \"theirs\" is forbidden: node \"node-1\" can only delete pods with spec.nodeName set to itself"
    );
    assert_eq!(
        forbidden(admit(&node1(), "update", Some(&mine), Some(&mine), "", LOOKUP)),
        "pods \"mine\" is forbidden: unexpected operation \"UPDATE\", node \"node-1\" can only create and delete mirror pods"
    );
    assert_eq!(
        forbidden(admit(&node1(), "update", Some(&mine), Some(&mine), "ephemeralcontainers", LOOKUP)),
        "pods \"mine\" is forbidden: unexpected pod subresource \"ephemeralcontainers\", only 'status' and 'eviction' are allowed"
    );
    assert_eq!(
        forbidden(admit(&node1(), "create", Some(&mine), None, "binding", LOOKUP)),
        "pods \"mine\" is forbidden: unexpected pod subresource \"binding\", only 'status' and 'eviction' are allowed"
    );
}

#[test]
fn pod_status_of_own_pods_without_label_changes() {
    let old =
        obj("Pod", "metadata: {name: mine, namespace: default, labels: {a: b}}\nspec: {nodeName: node-1}");
    let running = obj(
        "Pod",
        "metadata: {name: mine, namespace: default, labels: {a: b}}\nspec: {nodeName: node-1}\nstatus: {phase: Running}",
    );
    assert!(admit(&node1(), "update", Some(&running), Some(&old), "status", LOOKUP).is_ok());
    assert!(admit(&node1(), "patch", Some(&running), Some(&old), "status", LOOKUP).is_ok());
    let relabelled =
        obj("Pod", "metadata: {name: mine, namespace: default, labels: {a: c}}\nspec: {nodeName: node-1}");
    assert_eq!(
        forbidden(admit(&node1(), "update", Some(&relabelled), Some(&old), "status", LOOKUP)),
        "pods \"mine\" is forbidden: node \"node-1\" cannot update labels through pod status"
    );
    let claims = obj(
        "Pod",
        "metadata: {name: mine, namespace: default, labels: {a: b}}\nspec: {nodeName: node-1}\nstatus: {resourceClaimStatuses: [{name: gpu, resourceClaimName: c}]}",
    );
    assert_eq!(
        forbidden(admit(&node1(), "update", Some(&claims), Some(&old), "status", LOOKUP)),
        "pods \"mine\" is forbidden: node \"node-1\" cannot update resource claim statues"
    );
    let theirs = obj("Pod", "metadata: {name: theirs, namespace: default}\nspec: {nodeName: node-2}");
    assert_eq!(
        forbidden(admit(&node1(), "update", Some(&theirs), Some(&theirs), "status", LOOKUP)),
        "pods \"theirs\" is forbidden: node \"node-1\" can only update pod status for pods with spec.nodeName set to itself"
    );
    assert_eq!(
        forbidden(admit(&node1(), "create", Some(&old), None, "status", LOOKUP)),
        "pods \"mine\" is forbidden: unexpected operation \"CREATE\""
    );
}

#[test]
fn evictions_of_own_pods() {
    let mine = obj("Pod", "metadata: {name: mine, namespace: default}\nspec: {nodeName: node-1}");
    let theirs = obj("Pod", "metadata: {name: theirs, namespace: default}\nspec: {nodeName: node-2}");
    assert!(admit(&node1(), "create", None, Some(&mine), "eviction", LOOKUP).is_ok());
    assert_eq!(
        forbidden(admit(&node1(), "create", None, Some(&theirs), "eviction", LOOKUP)),
        "pods \"theirs\" is forbidden: node node-1 can only evict pods with spec.nodeName set to itself"
    );
}

#[test]
fn own_node_only() {
    let node2 = obj("Node", "metadata: {name: node-2}");
    assert_eq!(
        forbidden(admit(&node1(), "create", Some(&node2), None, "", LOOKUP)),
        "nodes \"node-2\" is forbidden: node \"node-1\" is not allowed to modify node \"node-2\""
    );
    assert_eq!(
        forbidden(admit(&node1(), "update", Some(&node2), Some(&node2), "status", LOOKUP)),
        "nodes \"node-2\" is forbidden: node \"node-1\" is not allowed to modify node \"node-2\""
    );
    assert!(
        forbidden(admit(&node1(), "delete", None, Some(&node2), "", LOOKUP))
            .contains("not allowed to modify")
    );
    let node1_obj = obj("Node", "metadata: {name: node-1, labels: {kubernetes.io/hostname: node-1}}");
    assert!(admit(&node1(), "create", Some(&node1_obj), None, "", LOOKUP).is_ok());
    assert!(admit(&node1(), "update", Some(&node1_obj), Some(&node1_obj), "status", LOOKUP).is_ok());
}

#[test]
fn node_labels() {
    let create = |labels: &str| {
        let node = obj("Node", &format!("metadata: {{name: node-1, labels: {{{labels}}}}}"));
        admit(&node1(), "create", Some(&node), None, "", LOOKUP)
    };
    let allowed = "kubernetes.io/hostname: h, kubernetes.io/os: linux, kubernetes.io/arch: amd64, \
                   topology.kubernetes.io/zone: z, node.kubernetes.io/instance-type: t, \
                   beta.kubernetes.io/arch: amd64, kubelet.kubernetes.io/x: y, foo.node.kubernetes.io/y: z, \
                   example.com/team: a, plain: b";
    assert!(create(allowed).is_ok());
    assert_eq!(
        forbidden(create(
            "node-restriction.kubernetes.io/secure: 'true', kubernetes.io/role: master, a.k8s.io/b: c, ok: x"
        )),
        "nodes \"node-1\" is forbidden: node \"node-1\" is not allowed to set the following labels: a.k8s.io/b, kubernetes.io/role, node-restriction.kubernetes.io/secure"
    );
    assert!(
        forbidden(create("x.node-restriction.kubernetes.io/y: z"))
            .contains("x.node-restriction.kubernetes.io/y")
    );

    let old = obj(
        "Node",
        "metadata: {name: node-1, labels: {node-restriction.kubernetes.io/pool: a, kubernetes.io/hostname: h}}",
    );
    let update = |labels: &str| {
        let new = obj("Node", &format!("metadata: {{name: node-1, labels: {{{labels}}}}}"));
        admit(&node1(), "update", Some(&new), Some(&old), "", LOOKUP)
    };
    // Unchanged restricted labels are fine; allowed ones may change.
    assert!(update("node-restriction.kubernetes.io/pool: a, kubernetes.io/hostname: h2, custom: c").is_ok());
    assert_eq!(
        forbidden(update("kubernetes.io/hostname: h")),
        "nodes \"node-1\" is forbidden: is not allowed to modify labels: node-restriction.kubernetes.io/pool"
    );
    assert_eq!(
        forbidden(update("node-restriction.kubernetes.io/pool: b, kubernetes.io/hostname: h")),
        "nodes \"node-1\" is forbidden: is not allowed to modify labels: node-restriction.kubernetes.io/pool"
    );
    assert!(is_kubelet_label("kubernetes.io/hostname"));
    assert!(is_kubelet_label("node.kubernetes.io/anything"));
    assert!(!is_kubelet_label("xnode.kubernetes.io/anything"));
    assert!(!is_kubelet_label("kubernetes.io/role"));
}

#[test]
fn node_taints_and_config_source() {
    let old = obj("Node", "metadata: {name: node-1}\nspec: {taints: [{key: k, effect: NoSchedule}]}");
    let untainted = obj("Node", "metadata: {name: node-1}\nspec: {}");
    assert_eq!(
        forbidden(admit(&node1(), "update", Some(&untainted), Some(&old), "", LOOKUP)),
        "nodes \"node-1\" is forbidden: node \"node-1\" is not allowed to modify taints"
    );
    assert!(admit(&node1(), "patch", Some(&old), Some(&old), "status", LOOKUP).is_ok());
    let with_source =
        "metadata: {name: node-1}\nspec: {configSource: {configMap: {namespace: kube-system, name: c}}}";
    assert_eq!(
        forbidden(admit(&node1(), "create", Some(&obj("Node", with_source)), None, "", LOOKUP)),
        "nodes \"node-1\" is forbidden: node \"node-1\" is not allowed to create pods with a non-nil configSource"
    );
    assert_eq!(
        forbidden(admit(&node1(), "update", Some(&obj("Node", with_source)), Some(&untainted), "", LOOKUP)),
        "nodes \"node-1\" is forbidden: node \"node-1\" is not allowed to update configSource to a new non-nil configSource"
    );
    // Dropping it is allowed (old kubelets drop the field).
    assert!(admit(&node1(), "update", Some(&untainted), Some(&obj("Node", with_source)), "", LOOKUP).is_ok());
}

#[test]
fn own_lease_only() {
    let lease = |ns: &str, name: &str| obj("Lease", &format!("metadata: {{name: {name}, namespace: {ns}}}"));
    assert!(admit(&node1(), "create", Some(&lease("kube-node-lease", "node-1")), None, "", LOOKUP).is_ok());
    let own = lease("kube-node-lease", "node-1");
    assert!(admit(&node1(), "update", Some(&own), Some(&own), "", LOOKUP).is_ok());
    assert_eq!(
        forbidden(admit(&node1(), "create", Some(&lease("kube-node-lease", "node-2")), None, "", LOOKUP)),
        "leases.coordination.k8s.io \"node-2\" is forbidden: can only access node lease with the same name as the requesting node"
    );
    assert_eq!(
        forbidden(admit(&node1(), "delete", None, Some(&lease("default", "node-1")), "", LOOKUP)),
        "leases.coordination.k8s.io \"node-1\" is forbidden: can only access leases in the \"kube-node-lease\" system namespace"
    );
}

#[test]
fn other_kinds_pass() {
    let cm = obj("ConfigMap", "metadata: {name: c, namespace: default}");
    assert!(admit(&node1(), "create", Some(&cm), None, "", LOOKUP).is_ok());
    let event = obj("Event", "metadata: {name: e, namespace: default}");
    assert!(admit(&node1(), "create", Some(&event), None, "", LOOKUP).is_ok());
}

fn token_request(yaml: &str) -> TokenRequest {
    serde_yaml::from_str(yaml).expect("token request")
}

#[test]
fn tokens_bound_to_own_pods_only() {
    let bound = |name: &str, uid: &str| {
        token_request(&format!(
            "spec: {{audiences: [api], boundObjectRef: {{kind: Pod, apiVersion: v1, name: {name}, uid: {uid}}}}}"
        ))
    };
    let admit_tr = |tr: &TokenRequest| admit_token_request(&node1(), "default", "builder", tr, LOOKUP);
    assert!(admit_tr(&bound("mine", "mine-uid")).is_ok());
    let prefix = "serviceaccounts \"builder\" is forbidden: ";
    assert_eq!(
        forbidden(admit_tr(&bound("theirs", "theirs-uid"))),
        format!("{prefix}node requested token bound to a pod scheduled on a different node")
    );
    assert_eq!(
        forbidden(admit_tr(&bound("mine", "old-uid"))),
        format!(
            "{prefix}the UID in the bound object reference (old-uid) does not match the UID in record. The object might have been deleted and then recreated"
        )
    );
    assert_eq!(
        forbidden(admit_tr(&token_request(
            "spec: {boundObjectRef: {kind: Pod, apiVersion: v1, name: mine}}"
        ))),
        format!("{prefix}node requested token with a pod binding without a uid")
    );
    for unbound in [
        "spec: {audiences: [api]}",
        "spec: {boundObjectRef: {kind: Secret, apiVersion: v1, name: s, uid: u}}",
        "spec: {boundObjectRef: {kind: Pod, apiVersion: v2, name: mine, uid: mine-uid}}",
        "spec: {boundObjectRef: {kind: Pod, apiVersion: v1, uid: mine-uid}}",
    ] {
        assert_eq!(
            forbidden(admit_tr(&token_request(unbound))),
            format!("{prefix}node requested token not bound to a pod"),
            "{unbound}"
        );
    }
    let gone = admit_tr(&bound("gone", "u"));
    assert!(
        matches!(gone, Err(ApiError::NotFound { ref plural, ref name }) if plural == "pods" && name == "gone")
    );
    // Other users are not restricted here.
    let alice = UserInfo { name: "alice".into(), ..UserInfo::default() };
    assert!(admit_token_request(&alice, "default", "builder", &token_request("spec: {}"), LOOKUP).is_ok());
}

/// A local-path volume: provisioned by `by`, tied to `node`.
fn local_volume(by: &str, node: &str) -> Object {
    obj(
        "PersistentVolume",
        &format!(
            "metadata: {{name: pvc-1, annotations: {{pv.kubernetes.io/provisioned-by: {by}}}}}\n\
             spec: {{hostPath: {{path: /var/lib/navarch/kubelet/local-path/pvc-1_default_data}}, \
             nodeAffinity: {{required: {{nodeSelectorTerms: [{{matchExpressions: [{{key: \
             kubernetes.io/hostname, operator: In, values: [{node}]}}]}}]}}}}}}"
        ),
    )
}

#[test]
fn local_path_volumes_of_its_own_only() {
    let mine = local_volume("navarch.io/local-path", "node-1");
    assert!(admit(&node1(), "create", Some(&mine), None, "", LOOKUP).is_ok());
    assert!(admit(&node1(), "delete", None, Some(&mine), "", LOOKUP).is_ok());
    let theirs = local_volume("navarch.io/local-path", "node-2");
    assert_eq!(
        forbidden(admit(&node1(), "create", Some(&theirs), None, "", LOOKUP)),
        "persistentvolumes \"pvc-1\" is forbidden: node \"node-1\" can only create persistentvolumes with node affinity to itself"
    );
    assert_eq!(
        forbidden(admit(&node1(), "delete", None, Some(&theirs), "", LOOKUP)),
        "persistentvolumes \"pvc-1\" is forbidden: node \"node-1\" can only delete persistentvolumes with node affinity to itself"
    );
    let foreign = local_volume("example.com/nfs", "node-1");
    assert_eq!(
        forbidden(admit(&node1(), "delete", None, Some(&foreign), "", LOOKUP)),
        "persistentvolumes \"pvc-1\" is forbidden: node \"node-1\" can only delete persistentvolumes provisioned by \"navarch.io/local-path\""
    );
    let bare = obj("PersistentVolume", "metadata: {name: pvc-1}\nspec: {hostPath: {path: /etc}}");
    assert_eq!(
        forbidden(admit(&node1(), "create", Some(&bare), None, "", LOOKUP)),
        "persistentvolumes \"pvc-1\" is forbidden: node \"node-1\" can only create persistentvolumes provisioned by \"navarch.io/local-path\""
    );
    assert_eq!(
        forbidden(admit(&node1(), "update", Some(&mine), Some(&mine), "", LOOKUP)),
        "persistentvolumes \"pvc-1\" is forbidden: unexpected operation \"UPDATE\", node \"node-1\" can only create and delete persistentvolumes"
    );
    // Other users are not NodeRestriction's business.
    let admin = UserInfo { name: "admin".into(), ..UserInfo::default() };
    assert!(admit(&admin, "create", Some(&bare), None, "", LOOKUP).is_ok());
}
