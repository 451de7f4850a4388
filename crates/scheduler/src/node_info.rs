//! What the scheduler knows about one node: the Node, the pods on it (bound or assumed), the sum of
//! their requests against the node's allocatable, and the images the node reports having.

use std::collections::HashMap;
use std::sync::Arc;

use navarch_api::v1::{Node, Pod};

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
        NodeInfo {
            node,
            pods: HashMap::new(),
            requested: Resources::default(),
            non_zero_requested: Resources::default(),
            allocatable,
            images,
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
