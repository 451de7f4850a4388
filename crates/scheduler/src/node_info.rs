//! What the scheduler knows about one node: the Node, the pods on it (bound or assumed), the sum of
//! their requests against the node's allocatable, and the images the node reports having. What every
//! filter reads of the Node (readiness, unschedulable, taints) is copied out when the Node changes, so
//! filtering thousands of nodes per decision does not chase each Node's conditions and spec.

use std::collections::HashMap;
use std::sync::Arc;

use navarch_api::v1::{Node, Pod, Taint};

use crate::resources::{Resources, node_allocatable, pod_non_zero_requests, pod_requests};
use crate::scores::image::NodeImages;

#[derive(Debug, Clone)]
pub struct NodeInfo {
    pub node: Arc<Node>,
    /// Pods on the node by `namespace/name`.
    pub pods: HashMap<String, Arc<Pod>>,
    pub requested: Resources,
    /// The pods' requests as the resource scores count them ([`pod_non_zero_requests`]).
    pub non_zero_requested: Resources,
    pub allocatable: Resources,
    /// `status.images` by canonical name, for ImageLocality.
    pub images: NodeImages,
    /// The Ready condition is True.
    pub ready: bool,
    /// `spec.unschedulable`.
    pub unschedulable: bool,
    /// `spec.taints`.
    pub taints: Vec<Taint>,
}

fn is_ready(node: &Node) -> bool {
    let conditions = node.status.as_ref().map(|s| s.conditions.as_slice()).unwrap_or_default();
    conditions.iter().find(|c| c.r#type == "Ready").is_some_and(|c| c.status == "True")
}

fn is_unschedulable(node: &Node) -> bool {
    node.spec.as_ref().is_some_and(|s| s.unschedulable)
}

fn taints_of(node: &Node) -> Vec<Taint> {
    node.spec.as_ref().map(|s| s.taints.clone()).unwrap_or_default()
}

pub fn pod_key(p: &Pod) -> String {
    let m = p.metadata.as_ref();
    format!("{}/{}", m.map(|m| m.namespace.as_str()).unwrap_or(""), m.map(|m| m.name.as_str()).unwrap_or(""))
}

/// Whether the pod is being deleted (has a deletionTimestamp).
pub fn terminating(p: &Pod) -> bool {
    p.metadata.as_ref().is_some_and(|m| !m.deletion_timestamp.is_empty())
}

impl NodeInfo {
    pub fn new(node: Arc<Node>) -> NodeInfo {
        let allocatable = node_allocatable(&node);
        let images = NodeImages::of(&node);
        let (ready, unschedulable, taints) = (is_ready(&node), is_unschedulable(&node), taints_of(&node));
        NodeInfo {
            node,
            pods: HashMap::new(),
            requested: Resources::default(),
            non_zero_requested: Resources::default(),
            allocatable,
            images,
            ready,
            unschedulable,
            taints,
        }
    }

    pub fn name(&self) -> &str {
        self.node.metadata.as_ref().map(|m| m.name.as_str()).unwrap_or("")
    }

    /// Replaces the Node object (labels, taints, allocatable may change), keeping the pods.
    pub fn set_node(&mut self, node: Arc<Node>) {
        self.allocatable = node_allocatable(&node);
        if node.status.as_ref().map(|s| &s.images) != self.node.status.as_ref().map(|s| &s.images) {
            self.images = NodeImages::of(&node);
        }
        (self.ready, self.unschedulable, self.taints) =
            (is_ready(&node), is_unschedulable(&node), taints_of(&node));
        self.node = node;
    }

    pub fn add_pod(&mut self, pod: Arc<Pod>) {
        let key = pod_key(&pod);
        if let Some(old) = self.pods.insert(key, pod.clone()) {
            self.requested.sub(&pod_requests(&old));
            self.non_zero_requested.sub(&pod_non_zero_requests(&old));
        }
        self.requested.add(&pod_requests(&pod));
        self.non_zero_requested.add(&pod_non_zero_requests(&pod));
    }

    pub fn remove_pod(&mut self, key: &str) -> Option<Arc<Pod>> {
        let old = self.pods.remove(key)?;
        self.requested.sub(&pod_requests(&old));
        self.non_zero_requested.sub(&pod_non_zero_requests(&old));
        Some(old)
    }
}

/// The nodes by name, kept in one vector so that a decision walks them without chasing a tree (arrival
/// order; a removed node's place is taken by the last one).
#[derive(Debug, Default)]
pub struct NodeTable {
    infos: Vec<NodeInfo>,
    by_name: HashMap<String, usize>,
}

impl NodeTable {
    pub fn len(&self) -> usize {
        self.infos.len()
    }

    pub fn is_empty(&self) -> bool {
        self.infos.is_empty()
    }

    pub fn get(&self, name: &str) -> Option<&NodeInfo> {
        self.by_name.get(name).map(|&i| &self.infos[i])
    }

    pub fn get_mut(&mut self, name: &str) -> Option<&mut NodeInfo> {
        self.by_name.get(name).map(|&i| &mut self.infos[i])
    }

    /// Adds the node (replacing one of the same name).
    pub fn insert(&mut self, info: NodeInfo) {
        match self.by_name.get(info.name()) {
            Some(&i) => self.infos[i] = info,
            None => {
                self.by_name.insert(info.name().to_string(), self.infos.len());
                self.infos.push(info);
            }
        }
    }

    pub fn remove(&mut self, name: &str) -> Option<NodeInfo> {
        let i = self.by_name.remove(name)?;
        let info = self.infos.swap_remove(i);
        if let Some(moved) = self.infos.get(i) {
            self.by_name.insert(moved.name().to_string(), i);
        }
        Some(info)
    }

    pub fn values(&self) -> std::slice::Iter<'_, NodeInfo> {
        self.infos.iter()
    }

    /// (name, node) pairs.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &NodeInfo)> {
        self.infos.iter().map(|n| (n.name(), n))
    }
}

#[cfg(test)]
mod table_tests {
    use super::*;

    fn info(name: &str) -> NodeInfo {
        let mut n = Node::default();
        n.metadata.get_or_insert_with(Default::default).name = name.into();
        NodeInfo::new(Arc::new(n))
    }

    #[test]
    fn removing_moves_the_last_node_into_the_gap() {
        let mut t = NodeTable::default();
        for n in ["a", "b", "c", "d"] {
            t.insert(info(n));
        }
        t.insert(info("b"));
        assert_eq!(t.len(), 4, "a node of the same name is replaced");
        assert_eq!(t.remove("b").map(|i| i.name().to_string()).as_deref(), Some("b"));
        assert!(t.remove("b").is_none());
        let names: Vec<&str> = t.iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["a", "d", "c"]);
        for n in ["a", "c", "d"] {
            assert_eq!(t.get(n).map(|i| i.name()), Some(n));
        }
        t.remove("c");
        t.remove("a");
        assert_eq!(t.get("d").map(|i| i.name()), Some("d"));
        assert_eq!(t.len(), 1);
    }
}
