//! The Node authorizer (Kubernetes' `plugin/pkg/auth/authorizer/node`, with
//! `AuthorizeNodeWithSelectors`): what a kubelet, authenticated as `system:node:<name>` in
//! `system:nodes`, may do.
//!
//! * Secrets and ConfigMaps: read (`get`, or `list`/`watch` of one object named by a `metadata.name`
//!   field selector) only when a pod bound to the node references them; PersistentVolumeClaims,
//!   PersistentVolumes and VolumeAttachments: `get` only, likewise (PVC status: `update`/`patch`; a
//!   PersistentVolume is related through the claim its `claimRef` names). Other verbs on claims and
//!   volumes are the static rules' (navarch's local-path provisioner in the kubelet lists and watches
//!   them and creates and deletes volumes; NodeRestriction narrows those writes to its own).
//! * ServiceAccounts: only `create` of `serviceaccounts/token` for an account a pod on the node runs
//!   as (NodeRestriction then requires the token to be bound to such a pod).
//! * Pods: `get` of its own pods, `list`/`watch` only with the field selector `spec.nodeName=<node>`
//!   (or of one own pod by name); `create`/`delete` (mirror pods), `pods/status` `update`/`patch`
//!   and `pods/eviction` `create` are allowed here and narrowed by NodeRestriction; nothing else.
//! * Nodes: `get`/`list`/`watch` of its own Node only; `create`, `update`, `patch` and `nodes/status`
//!   `update`/`patch` are allowed here and narrowed to its own Node by NodeRestriction.
//! * Leases and CSINodes: only the one named like the node (leases in `kube-node-lease`).
//! * Anything else: Kubernetes' static `system:node` rules ([`crate::authz::bootstrap`]).
//!
//! Like Kubernetes, a refusal is `NoOpinion` with the reason (`no relationship found between node
//! 'node-1' and this object`), not `Deny`: the rest of the chain (RBAC) may still grant a node more,
//! and when nothing does the reason ends the 403's message. Users that are not nodes get `NoOpinion`
//! with no reason.
//!
//! Relationships come from [`NodeGraph`], fed by the api-server's Pod store.

pub mod graph;
pub mod references;

#[cfg(test)]
mod graph_tests;
#[cfg(test)]
mod tests;

use std::sync::Arc;

pub use graph::{MIRROR_POD_ANNOTATION, NodeGraph, ObjectType};
pub use references::PodReferences;

use super::attributes::verbs;
use super::bootstrap;
use super::go_format;
use super::policy::PolicyRule;
use super::rules::rule_allows;
use super::{Attributes, Decision};
use crate::authorization::Authorizer;
use crate::field_selector::FieldSelector;
use crate::user_info::{NODE_USER_PREFIX, NODES_GROUP, UserInfo};

/// `kube-node-lease`: the namespace of the nodes' heartbeat Leases.
pub const NODE_LEASE_NAMESPACE: &str = "kube-node-lease";

const CORE: &str = "";
const COORDINATION: &str = "coordination.k8s.io";
const STORAGE: &str = "storage.k8s.io";

/// Kubernetes' `NodeIdentity`: `Some(name)` for `system:node:<name>` in `system:nodes` (the name
/// may be empty: an unidentifiable node), `None` for every other user.
pub fn node_identity(user: &UserInfo) -> Option<&str> {
    let name = user.name.strip_prefix(NODE_USER_PREFIX)?;
    user.in_group(NODES_GROUP).then_some(name)
}

/// The Node authorizer: ask it before RBAC.
pub struct NodeAuthorizer {
    graph: Arc<NodeGraph>,
    node_rules: Vec<PolicyRule>,
}

fn allow() -> Decision {
    Decision::Allow(String::new())
}

fn no_opinion(reason: impl Into<String>) -> Decision {
    Decision::NoOpinion(reason.into())
}

fn no_relationship(node: &str) -> Decision {
    no_opinion(format!("no relationship found between node '{node}' and this object"))
}

impl NodeAuthorizer {
    /// An authorizer over `graph` with Kubernetes' `system:node` rules for the resources it does not
    /// subdivide.
    pub fn new(graph: Arc<NodeGraph>) -> NodeAuthorizer {
        let node_rules = bootstrap::cluster_roles()
            .into_iter()
            .find(|r| r.name == "system:node")
            .map(|r| r.rules)
            .unwrap_or_default();
        NodeAuthorizer::with_rules(graph, node_rules)
    }

    /// An authorizer with other static rules.
    pub fn with_rules(graph: Arc<NodeGraph>, node_rules: Vec<PolicyRule>) -> NodeAuthorizer {
        NodeAuthorizer { graph, node_rules }
    }

    pub fn graph(&self) -> &Arc<NodeGraph> {
        &self.graph
    }

    pub fn authorize(&self, a: &Attributes) -> Decision {
        let Some(node) = node_identity(&a.user) else {
            return no_opinion("");
        };
        if node.is_empty() {
            return no_opinion(format!("unknown node for user {}", go_format::quote(&a.user.name)));
        }
        if a.is_resource_request {
            match (a.api_group.as_str(), a.resource.as_str()) {
                (CORE, "secrets") => return self.read_namespaced(node, ObjectType::Secret, a),
                (CORE, "configmaps") => return self.read_namespaced(node, ObjectType::ConfigMap, a),
                (CORE, "persistentvolumeclaims") => {
                    return if a.subresource == "status" {
                        self.status_update(node, ObjectType::PersistentVolumeClaim, a)
                    } else {
                        self.get_or_rules(node, ObjectType::PersistentVolumeClaim, a)
                    };
                }
                (CORE, "persistentvolumes") => {
                    return self.get_or_rules(node, ObjectType::PersistentVolume, a);
                }
                (STORAGE, "volumeattachments") => return self.get(node, ObjectType::VolumeAttachment, a),
                (CORE, "serviceaccounts") => return self.create_token(node, a),
                (COORDINATION, "leases") => return lease(node, a),
                (STORAGE, "csinodes") => return csi_node(node, a),
                (CORE, "nodes") => return node_object(node, a),
                (CORE, "pods") => return self.pod(node, a),
                _ => {}
            }
        }
        if self.node_rules.iter().any(|r| rule_allows(a, r)) { allow() } else { no_opinion("") }
    }

    /// Whether the graph relates the named object to `node`.
    fn related(&self, node: &str, ty: ObjectType, a: &Attributes) -> Decision {
        if a.name.is_empty() {
            return no_opinion("No Object name found");
        }
        if self.graph.has_path(node, ty, &a.namespace, &a.name) { allow() } else { no_relationship(node) }
    }

    /// `get`, `list` and `watch` of one namespaced object.
    fn read_namespaced(&self, node: &str, ty: ObjectType, a: &Attributes) -> Decision {
        if !a.is_read_only() {
            return no_opinion("can only read resources of this type");
        }
        if !a.subresource.is_empty() {
            return no_opinion("cannot read subresource");
        }
        if a.namespace.is_empty() {
            return no_opinion("can only read namespaced object of this type");
        }
        self.related(node, ty, a)
    }

    /// `get` of one object.
    fn get(&self, node: &str, ty: ObjectType, a: &Attributes) -> Decision {
        if a.verb != verbs::GET {
            return no_opinion("can only get individual resources of this type");
        }
        if !a.subresource.is_empty() {
            return no_opinion("cannot get subresource");
        }
        self.related(node, ty, a)
    }

    /// `get` through the graph; any other verb on the object itself as the static rules say.
    fn get_or_rules(&self, node: &str, ty: ObjectType, a: &Attributes) -> Decision {
        if a.verb != verbs::GET
            && a.subresource.is_empty()
            && self.node_rules.iter().any(|r| rule_allows(a, r))
        {
            return allow();
        }
        self.get(node, ty, a)
    }

    /// `update`/`patch` of one object's status.
    fn status_update(&self, node: &str, ty: ObjectType, a: &Attributes) -> Decision {
        if !matches!(a.verb.as_str(), verbs::UPDATE | verbs::PATCH) {
            return no_opinion("can only get/update/patch this type");
        }
        if a.subresource != "status" {
            return no_opinion("can only update status subresource");
        }
        self.related(node, ty, a)
    }

    /// `create` of `serviceaccounts/token` for an account a pod on the node uses.
    fn create_token(&self, node: &str, a: &Attributes) -> Decision {
        if a.verb != verbs::CREATE || a.name.is_empty() {
            return no_opinion("can only create tokens for individual service accounts");
        }
        if a.subresource != "token" {
            return no_opinion("can only create token subresource of serviceaccount");
        }
        self.related(node, ObjectType::ServiceAccount, a)
    }

    fn pod(&self, node: &str, a: &Attributes) -> Decision {
        match (a.subresource.as_str(), a.verb.as_str()) {
            ("", verbs::GET) => self.get(node, ObjectType::Pod, a),
            ("", verbs::LIST | verbs::WATCH) => {
                if selects_node(&a.field_selector, node) {
                    allow()
                } else if !a.name.is_empty() {
                    self.related(node, ObjectType::Pod, a)
                } else {
                    no_opinion("can only list/watch pods with spec.nodeName field selector")
                }
            }
            // Mirror pods; NodeRestriction limits them to the node's own.
            ("", verbs::CREATE | verbs::DELETE) => allow(),
            // NodeRestriction limits these to pods bound to the node.
            ("status", verbs::UPDATE | verbs::PATCH) | ("eviction", verbs::CREATE) => allow(),
            _ => no_opinion(""),
        }
    }
}

impl Authorizer for NodeAuthorizer {
    fn authorize(&self, attributes: &Attributes) -> Decision {
        NodeAuthorizer::authorize(self, attributes)
    }
}

/// Whether the field selector holds `spec.nodeName=<node>` (`=` or `==`).
fn selects_node(field_selector: &str, node: &str) -> bool {
    if field_selector.is_empty() {
        return false;
    }
    FieldSelector::parse(field_selector).is_ok_and(|s| {
        s.0.iter().any(|(path, value, negated)| path == "spec.nodeName" && !negated && value == node)
    })
}

/// Nodes: read only its own; writes are NodeRestriction's to narrow.
fn node_object(node: &str, a: &Attributes) -> Decision {
    match (a.subresource.as_str(), a.verb.as_str()) {
        ("", verbs::CREATE | verbs::UPDATE | verbs::PATCH) => allow(),
        // By name rather than through the graph: a kubelet reads its Node before it exists.
        ("", verbs::GET | verbs::LIST | verbs::WATCH) => {
            if a.name == node {
                allow()
            } else if a.name.is_empty() {
                no_opinion(format!("node '{node}' cannot read all nodes, only its own Node object"))
            } else {
                no_opinion(format!("node '{node}' cannot read '{}', only its own Node object", a.name))
            }
        }
        ("status", verbs::UPDATE | verbs::PATCH) => allow(),
        _ => no_opinion(""),
    }
}

/// Leases: the node's own in `kube-node-lease` (on create the name is NodeRestriction's to check).
fn lease(node: &str, a: &Attributes) -> Decision {
    if !matches!(a.verb.as_str(), verbs::GET | verbs::CREATE | verbs::UPDATE | verbs::PATCH | verbs::DELETE) {
        return no_opinion("can only get, create, update, patch, or delete a node lease");
    }
    if a.namespace != NODE_LEASE_NAMESPACE {
        return no_opinion(format!(
            "can only access leases in the {} system namespace",
            go_format::quote(NODE_LEASE_NAMESPACE)
        ));
    }
    if a.verb != verbs::CREATE && a.name != node {
        return no_opinion("can only access node lease with the same name as the requesting node");
    }
    allow()
}

/// CSINodes: the node's own (on create the name is NodeRestriction's to check).
fn csi_node(node: &str, a: &Attributes) -> Decision {
    if !matches!(a.verb.as_str(), verbs::GET | verbs::CREATE | verbs::UPDATE | verbs::PATCH | verbs::DELETE) {
        return no_opinion("can only get, create, update, patch, or delete a CSINode");
    }
    if !a.subresource.is_empty() {
        return no_opinion("cannot authorize CSINode subresources");
    }
    if a.verb != verbs::CREATE && a.name != node {
        return no_opinion("can only access CSINode with the same name as the requesting node");
    }
    allow()
}
