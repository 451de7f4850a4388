//! NodeRestriction (Kubernetes' `plugin/pkg/admission/noderestriction`): the writes the Node
//! authorizer lets a kubelet make, narrowed to its own objects. A node may
//!
//! * create only mirror pods of its own (bound to it, owned by its Node as controller, referencing no
//!   ServiceAccount, secret, configmap, ClusterTrustBundle or PVC), and delete only pods bound to it;
//! * update the status of, and evict, only pods bound to it, without changing their labels or
//!   resource claim statuses;
//! * create and modify only its own Node, never with a `configSource`, never changing its taints, and
//!   setting only the labels kubelets may set (not `node-restriction.kubernetes.io/`, and of the
//!   `kubernetes.io` / `k8s.io` namespaces only the kubelet's well-known ones);
//! * touch only the Lease (in `kube-node-lease`) and CSINode named like itself;
//! * create and delete only PersistentVolumes of navarch's local-path provisioner (annotated
//!   `pv.kubernetes.io/provisioned-by: navarch.io/local-path`) tied to itself by their node affinity
//!   (`kubernetes.io/hostname In [<node>]`), and change none;
//! * ask for ServiceAccount tokens only bound to a pod running on it ([`admit_token_request`]).
//!
//! Refusals are `ApiError::Forbidden` with Kubernetes' messages (`pods "web" is forbidden: node
//! "node-1" can only update pod status for pods with spec.nodeName set to itself`); requests of other
//! users are admitted untouched.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use navarch_api::local_path;
use navarch_api::storage::LOCAL_PATH_PROVISIONER;
use navarch_api::v1::{Node, PersistentVolume, Pod, TokenRequest};
use navarch_api::{Object, Resource};

use crate::authz::attributes::verbs;
use crate::authz::forbidden::forbidden_status_message;
use crate::authz::go_format::quote;
use crate::authz::node::{MIRROR_POD_ANNOTATION, NODE_LEASE_NAMESPACE, PodReferences, node_identity};
use crate::error::ApiError;
use crate::user_info::UserInfo;

/// Finds a stored object admission needs: `(kind, namespace, name)` → the object, for `"Node"` (the
/// owner of a mirror pod) and `"Pod"` (the pod a token is bound to). The api-server answers from
/// its local stores.
pub type Lookup<'a> = dyn Fn(&str, &str, &str) -> Option<Arc<Object>> + 'a;

/// Kubernetes' admission operations (what `unexpected operation` messages print).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Operation {
    Create,
    Update,
    Delete,
}

impl Operation {
    fn of(verb: &str) -> Option<Operation> {
        match verb {
            verbs::CREATE => Some(Operation::Create),
            verbs::UPDATE | verbs::PATCH => Some(Operation::Update),
            verbs::DELETE | verbs::DELETE_COLLECTION => Some(Operation::Delete),
            _ => None,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Operation::Create => "CREATE",
            Operation::Update => "UPDATE",
            Operation::Delete => "DELETE",
        }
    }
}

/// The request as admission sees it.
struct Request<'a> {
    node: &'a str,
    op: Operation,
    new: Option<&'a Object>,
    old: Option<&'a Object>,
}

impl Request<'_> {
    /// The object the request is about: the new one, else the stored one.
    fn object(&self) -> Option<&Object> {
        self.new.or(self.old)
    }

    /// `admission.NewForbidden`: `<resource>[.<group>] "<name>" is forbidden: <reason>`; the name
    /// is the object's (or its generateName, or `Unknown`).
    fn forbidden(&self, reason: impl AsRef<str>) -> ApiError {
        let (group, resource, name) = match self.object() {
            Some(o) => {
                let info = o.info();
                let group = info.api_version.rsplit_once('/').map(|(g, _)| g).unwrap_or_default();
                let m = o.meta();
                let name = if !m.name.is_empty() {
                    m.name.as_str()
                } else if !m.generate_name.is_empty() {
                    m.generate_name.as_str()
                } else {
                    "Unknown"
                };
                (group, info.plural, name)
            }
            None => ("", "", ""),
        };
        ApiError::Forbidden(forbidden_status_message(group, resource, name, reason.as_ref()))
    }

    /// `unexpected type %T` for a missing object (Go prints `<nil>`).
    fn missing(&self) -> ApiError {
        self.forbidden("unexpected type <nil>")
    }
}

/// Admits a create, update/patch or delete by a node (any other verb, and every request of a user
/// that is not a node, passes). `new` is the object written (create, update), `old` the stored one
/// (update, delete; for `pods/eviction` the pod evicted); a node's write with neither is refused.
/// `subresource` is `""`, `status`, `eviction`, .... `lookup` finds the node's Node when it creates
/// a mirror pod.
pub fn admit(
    user: &UserInfo,
    verb: &str,
    new: Option<&Object>,
    old: Option<&Object>,
    subresource: &str,
    lookup: &Lookup<'_>,
) -> Result<(), ApiError> {
    let Some(node) = node_identity(user) else {
        return Ok(());
    };
    let Some(op) = Operation::of(verb) else {
        return Ok(());
    };
    let r = Request { node, op, new, old };
    if node.is_empty() {
        return Err(r.forbidden(format!("could not determine node from user {}", quote(&user.name))));
    }
    if r.object().is_none() {
        // Fail closed: without the object, whose it is cannot be checked.
        return Err(r.missing());
    }
    match r.object() {
        Some(Object::Pod(_)) => match subresource {
            "" => admit_pod(&r, lookup),
            "status" => admit_pod_status(&r),
            "eviction" => admit_pod_eviction(&r),
            other => Err(r.forbidden(format!(
                "unexpected pod subresource {}, only 'status' and 'eviction' are allowed",
                quote(other)
            ))),
        },
        Some(Object::Node(_)) => admit_node(&r),
        Some(Object::Lease(_)) => admit_lease(&r),
        Some(Object::PersistentVolume(_)) => admit_persistent_volume(&r),
        _ => Ok(()),
    }
}

fn pod_of(o: Option<&Object>) -> Option<&Pod> {
    match o {
        Some(Object::Pod(p)) => Some(p),
        _ => None,
    }
}

fn node_of(o: Option<&Object>) -> Option<&Node> {
    match o {
        Some(Object::Node(n)) => Some(n),
        _ => None,
    }
}

fn node_name_of(pod: &Pod) -> &str {
    pod.spec.as_ref().map(|s| s.node_name.as_str()).unwrap_or_default()
}

/// Pods: a node creates and deletes only its own mirror pods.
fn admit_pod(r: &Request<'_>, lookup: &Lookup<'_>) -> Result<(), ApiError> {
    let node = r.node;
    match r.op {
        Operation::Create => admit_mirror_pod(r, lookup),
        Operation::Delete => {
            let existing = pod_of(r.old).ok_or_else(|| r.missing())?;
            if node_name_of(existing) != node {
                return Err(r.forbidden(format!(
                    "node {} can only delete pods with spec.nodeName set to itself",
                    quote(node)
                )));
            }
            Ok(())
        }
        Operation::Update => Err(r.forbidden(format!(
            "unexpected operation {}, node {} can only create and delete mirror pods",
            quote(r.op.as_str()),
            quote(node)
        ))),
    }
}

fn admit_mirror_pod(r: &Request<'_>, lookup: &Lookup<'_>) -> Result<(), ApiError> {
    let node = r.node;
    let qnode = quote(node);
    let pod = pod_of(r.new).ok_or_else(|| r.missing())?;
    let meta = pod.meta();
    if !meta.annotations.contains_key(MIRROR_POD_ANNOTATION) {
        return Err(r.forbidden(format!(
            "pod does not have {} annotation, node {qnode} can only create mirror pods",
            quote(MIRROR_POD_ANNOTATION)
        )));
    }
    if node_name_of(pod) != node {
        return Err(
            r.forbidden(format!("node {qnode} can only create pods with spec.nodeName set to itself"))
        );
    }
    let owner = match meta.owner_references.as_slice() {
        [] => {
            return Err(r.forbidden(format!(
                "node {qnode} can only create pods with an owner reference set to itself"
            )));
        }
        [owner] => owner,
        _ => {
            return Err(r.forbidden(format!(
                "node {qnode} can only create pods with a single owner reference set to itself"
            )));
        }
    };
    if owner.api_version != "v1" || owner.kind != "Node" || owner.name != node {
        return Err(
            r.forbidden(format!("node {qnode} can only create pods with an owner reference set to itself"))
        );
    }
    if owner.controller != Some(true) {
        return Err(r.forbidden(format!(
            "node {qnode} can only create pods with a controller owner reference set to itself"
        )));
    }
    if owner.block_owner_deletion == Some(true) {
        return Err(
            r.forbidden(format!("node {qnode} must not set blockOwnerDeletion on an owner reference"))
        );
    }
    let stored = lookup("Node", "", node);
    let Some(stored) = node_of(stored.as_deref()) else {
        return Err(ApiError::NotFound { plural: "nodes".into(), name: node.into() });
    };
    let uid = stored.meta().uid.as_str();
    if owner.uid != uid {
        return Err(r.forbidden(format!("node {node} UID mismatch: expected {} got {uid}", owner.uid)));
    }
    // A node must not give itself access to other objects by creating a pod that uses them.
    let refs = PodReferences::of(pod);
    let spec = pod.spec.as_ref();
    if spec.is_some_and(|s| !s.service_account_name.is_empty()) {
        return Err(r.forbidden(format!("node {qnode} can not create pods that reference a service account")));
    }
    if !refs.secrets.is_empty() {
        return Err(r.forbidden(format!("node {qnode} can not create pods that reference secrets")));
    }
    if !refs.config_maps.is_empty() {
        return Err(r.forbidden(format!("node {qnode} can not create pods that reference configmaps")));
    }
    let volumes = spec.map(|s| s.volumes.as_slice()).unwrap_or_default();
    let trust_bundles = volumes
        .iter()
        .filter_map(|v| v.projected.as_ref())
        .any(|p| p.sources.iter().any(|s| s.cluster_trust_bundle.is_some()));
    if trust_bundles {
        return Err(
            r.forbidden(format!("node {qnode} can not create pods that reference clustertrustbundles"))
        );
    }
    if volumes.iter().any(|v| v.persistent_volume_claim.is_some()) {
        return Err(
            r.forbidden(format!("node {qnode} can not create pods that reference persistentvolumeclaims"))
        );
    }
    Ok(())
}

/// `pods/status`: only of pods bound to the node, and not their labels or resource claim statuses.
fn admit_pod_status(r: &Request<'_>) -> Result<(), ApiError> {
    let qnode = quote(r.node);
    if r.op != Operation::Update {
        return Err(r.forbidden(format!("unexpected operation {}", quote(r.op.as_str()))));
    }
    let old = pod_of(r.old).ok_or_else(|| r.missing())?;
    if node_name_of(old) != r.node {
        return Err(r.forbidden(format!(
            "node {qnode} can only update pod status for pods with spec.nodeName set to itself"
        )));
    }
    let new = pod_of(r.new).ok_or_else(|| r.missing())?;
    if old.meta().labels != new.meta().labels {
        return Err(r.forbidden(format!("node {qnode} cannot update labels through pod status")));
    }
    let claims = |p: &Pod| p.status.as_ref().map(|s| s.resource_claim_statuses.clone()).unwrap_or_default();
    if claims(old) != claims(new) {
        return Err(r.forbidden(format!("node {qnode} cannot update resource claim statues")));
    }
    Ok(())
}

/// `pods/eviction`: only of pods bound to the node. `old` is the pod evicted.
fn admit_pod_eviction(r: &Request<'_>) -> Result<(), ApiError> {
    if r.op != Operation::Create {
        return Err(r.forbidden(format!("unexpected operation {}", r.op.as_str())));
    }
    let Some(pod) = pod_of(r.old) else {
        return Err(r.forbidden("could not determine pod from request data"));
    };
    if node_name_of(pod) != r.node {
        return Err(
            r.forbidden(format!("node {} can only evict pods with spec.nodeName set to itself", r.node))
        );
    }
    Ok(())
}

/// Nodes: only its own, without a configSource, its taints untouched, only kubelet labels changed.
fn admit_node(r: &Request<'_>) -> Result<(), ApiError> {
    let qnode = quote(r.node);
    let requested = r.object().map(|o| o.meta().name.as_str()).unwrap_or_default();
    if requested != r.node {
        return Err(r.forbidden(format!("node {qnode} is not allowed to modify node {}", quote(requested))));
    }
    match r.op {
        Operation::Create => {
            let node = node_of(r.new).ok_or_else(|| r.missing())?;
            if node.spec.as_ref().is_some_and(|s| s.config_source.is_some()) {
                return Err(r.forbidden(format!(
                    "node {qnode} is not allowed to create pods with a non-nil configSource"
                )));
            }
            let labels = &node.meta().labels;
            let forbidden = forbidden_labels(modified_labels(labels, &BTreeMap::new()));
            if !forbidden.is_empty() {
                return Err(r.forbidden(format!(
                    "node {qnode} is not allowed to set the following labels: {}",
                    forbidden.join(", ")
                )));
            }
        }
        Operation::Update => {
            let new = node_of(r.new).ok_or_else(|| r.missing())?;
            let old = node_of(r.old).ok_or_else(|| r.missing())?;
            let new_spec = new.spec.clone().unwrap_or_default();
            let old_spec = old.spec.clone().unwrap_or_default();
            if new_spec.config_source.is_some() && new_spec.config_source != old_spec.config_source {
                return Err(r.forbidden(format!(
                    "node {qnode} is not allowed to update configSource to a new non-nil configSource"
                )));
            }
            if new_spec.taints != old_spec.taints {
                return Err(r.forbidden(format!("node {qnode} is not allowed to modify taints")));
            }
            let modified = modified_labels(&new.meta().labels, &old.meta().labels);
            let forbidden = forbidden_labels(modified);
            if !forbidden.is_empty() {
                return Err(r.forbidden(format!("is not allowed to modify labels: {}", forbidden.join(", "))));
            }
        }
        Operation::Delete => {}
    }
    Ok(())
}

fn volume_of(o: Option<&Object>) -> Option<&PersistentVolume> {
    match o {
        Some(Object::PersistentVolume(v)) => Some(v),
        _ => None,
    }
}

/// PersistentVolumes: a node (its local-path provisioner) creates and deletes only the provisioner's
/// volumes tied to itself.
fn admit_persistent_volume(r: &Request<'_>) -> Result<(), ApiError> {
    let qnode = quote(r.node);
    let provisioner = quote(LOCAL_PATH_PROVISIONER);
    let (volume, verb) = match r.op {
        Operation::Create => (volume_of(r.new).ok_or_else(|| r.missing())?, "create"),
        Operation::Delete => (volume_of(r.old).ok_or_else(|| r.missing())?, "delete"),
        Operation::Update => {
            return Err(r.forbidden(format!(
                "unexpected operation {}, node {qnode} can only create and delete persistentvolumes",
                quote(r.op.as_str())
            )));
        }
    };
    if !local_path::provisioned_by_local_path(volume) {
        return Err(r.forbidden(format!(
            "node {qnode} can only {verb} persistentvolumes provisioned by {provisioner}"
        )));
    }
    if local_path::affinity_node(volume) != Some(r.node) {
        return Err(r.forbidden(format!(
            "node {qnode} can only {verb} persistentvolumes with node affinity to itself"
        )));
    }
    Ok(())
}

/// Leases: only the node's own, in `kube-node-lease`.
fn admit_lease(r: &Request<'_>) -> Result<(), ApiError> {
    let Some(lease) = r.object() else {
        return Err(r.missing());
    };
    let meta = lease.meta();
    if meta.namespace != NODE_LEASE_NAMESPACE {
        return Err(r.forbidden(format!(
            "can only access leases in the {} system namespace",
            quote(NODE_LEASE_NAMESPACE)
        )));
    }
    if meta.name != r.node {
        return Err(r.forbidden("can only access node lease with the same name as the requesting node"));
    }
    Ok(())
}

/// The label keys added, removed or changed between `a` and `b`.
fn modified_labels(a: &BTreeMap<String, String>, b: &BTreeMap<String, String>) -> BTreeSet<String> {
    let changed = |x: &BTreeMap<String, String>, y: &BTreeMap<String, String>| {
        x.iter().filter(|(k, v)| y.get(*k) != Some(*v)).map(|(k, _)| k.clone()).collect::<Vec<_>>()
    };
    changed(a, b).into_iter().chain(changed(b, a)).collect()
}

/// `node-restriction.kubernetes.io`: labels only administrators set, so workloads can trust them.
pub const NODE_RESTRICTION_LABEL_NAMESPACE: &str = "node-restriction.kubernetes.io";

/// The labels a kubelet may set on its Node in the `kubernetes.io` and `k8s.io` namespaces
/// (`k8s.io/kubelet/pkg/apis.KubeletLabels`).
pub const KUBELET_LABELS: &[&str] = &[
    "kubernetes.io/hostname",
    "topology.kubernetes.io/zone",
    "topology.kubernetes.io/region",
    "failure-domain.beta.kubernetes.io/zone",
    "failure-domain.beta.kubernetes.io/region",
    "beta.kubernetes.io/instance-type",
    "node.kubernetes.io/instance-type",
    "kubernetes.io/os",
    "kubernetes.io/arch",
    "beta.kubernetes.io/os",
    "beta.kubernetes.io/arch",
];

/// Label namespaces (and their subdomains) a kubelet may use freely.
pub const KUBELET_LABEL_NAMESPACES: &[&str] = &["kubelet.kubernetes.io", "node.kubernetes.io"];

fn label_namespace(key: &str) -> &str {
    key.split_once('/').map(|(ns, _)| ns).unwrap_or_default()
}

fn in_namespace(namespace: &str, domain: &str) -> bool {
    namespace == domain || namespace.strip_suffix(domain).is_some_and(|rest| rest.ends_with('.'))
}

/// Whether a kubelet may set the label `key` on its own Node.
pub fn is_kubelet_label(key: &str) -> bool {
    KUBELET_LABELS.contains(&key)
        || KUBELET_LABEL_NAMESPACES.iter().any(|d| in_namespace(label_namespace(key), d))
}

fn is_kubernetes_label(key: &str) -> bool {
    let namespace = label_namespace(key);
    in_namespace(namespace, "kubernetes.io") || in_namespace(namespace, "k8s.io")
}

/// Of the modified label keys, those a node may not add, remove or change (sorted).
fn forbidden_labels(modified: BTreeSet<String>) -> Vec<String> {
    modified
        .into_iter()
        .filter(|key| {
            in_namespace(label_namespace(key), NODE_RESTRICTION_LABEL_NAMESPACE)
                || (is_kubernetes_label(key) && !is_kubelet_label(key))
        })
        .collect()
}

/// Admits a node's `create` of `serviceaccounts/<service_account>/token` in `namespace`: the token
/// must be bound to a pod (by name and uid) that is bound to the node. `lookup` finds the pod.
/// Other users pass.
pub fn admit_token_request(
    user: &UserInfo,
    namespace: &str,
    service_account: &str,
    request: &TokenRequest,
    lookup: &Lookup<'_>,
) -> Result<(), ApiError> {
    let Some(node) = node_identity(user) else {
        return Ok(());
    };
    let forbidden = |reason: &str| {
        ApiError::Forbidden(forbidden_status_message("", "serviceaccounts", service_account, reason))
    };
    if node.is_empty() {
        return Err(forbidden(&format!("could not determine node from user {}", quote(&user.name))));
    }
    let bound = request.spec.as_ref().and_then(|s| s.bound_object_ref.as_ref());
    let Some(bound) = bound.filter(|b| b.api_version == "v1" && b.kind == "Pod" && !b.name.is_empty()) else {
        return Err(forbidden("node requested token not bound to a pod"));
    };
    if bound.uid.is_empty() {
        return Err(forbidden("node requested token with a pod binding without a uid"));
    }
    let stored = lookup("Pod", namespace, &bound.name);
    let Some(pod) = pod_of(stored.as_deref()) else {
        return Err(ApiError::NotFound { plural: "pods".into(), name: bound.name.clone() });
    };
    let uid = pod.meta().uid.as_str();
    if bound.uid != uid {
        return Err(forbidden(&format!(
            "the UID in the bound object reference ({}) does not match the UID in record. The object might have been deleted and then recreated",
            bound.uid
        )));
    }
    if node_name_of(pod) != node {
        return Err(forbidden("node requested token bound to a pod scheduled on a different node"));
    }
    Ok(())
}
