//! Nominated pods: pods that preempted others and wait for room on their node
//! (`status.nominatedNodeName`), counted on that node when pods of lower or equal priority are
//! filtered, so the room freed for them is not taken (Kubernetes' PodNominator). Rebuilt from the pods'
//! status after a restart; set in memory as soon as this scheduler nominates a pod.

use std::collections::HashMap;
use std::sync::Arc;

use navarch_api::v1::Pod;

/// The nominated pods of each node.
#[derive(Debug, Default, Clone)]
pub struct Nominator {
    /// node → (pod key, pod).
    by_node: HashMap<String, Vec<(String, Arc<Pod>)>>,
    /// pod key → node.
    node_of: HashMap<String, String>,
}

/// The node a pod's status nominates, if any.
pub fn status_nomination(pod: &Pod) -> Option<&str> {
    pod.status.as_ref().map(|s| s.nominated_node_name.as_str()).filter(|n| !n.is_empty())
}

impl Nominator {
    pub fn is_empty(&self) -> bool {
        self.node_of.is_empty()
    }

    /// Where the pod `key` is nominated.
    pub fn node_of(&self, key: &str) -> Option<&str> {
        self.node_of.get(key).map(String::as_str)
    }

    /// The pods nominated to `node`, with their keys.
    pub fn pods_on(&self, node: &str) -> &[(String, Arc<Pod>)] {
        self.by_node.get(node).map(Vec::as_slice).unwrap_or_default()
    }

    /// Nominates `pod` to `node` (replacing any earlier nomination).
    pub fn nominate(&mut self, key: &str, pod: Arc<Pod>, node: &str) {
        self.remove(key);
        self.by_node.entry(node.to_string()).or_default().push((key.to_string(), pod));
        self.node_of.insert(key.to_string(), node.to_string());
    }

    /// Drops the pod's nomination; returns the node it was nominated to.
    pub fn remove(&mut self, key: &str) -> Option<String> {
        let node = self.node_of.remove(key)?;
        if let Some(list) = self.by_node.get_mut(&node) {
            list.retain(|(k, _)| k != key);
            if list.is_empty() {
                self.by_node.remove(&node);
            }
        }
        Some(node)
    }

    /// A pending pod as the watch shows it: nominated where its status says; a status without a
    /// nomination keeps the one made in memory (the write may not have been seen yet) with the newer pod.
    pub fn update(&mut self, key: &str, pod: Arc<Pod>) {
        let node = match status_nomination(&pod) {
            Some(n) => n.to_string(),
            None => match self.node_of(key) {
                Some(n) => n.to_string(),
                None => return,
            },
        };
        self.nominate(key, pod, &node);
    }
}
