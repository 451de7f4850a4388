//! ImageLocality: prefers nodes that already have the pod's images, as kube-scheduler scores it. Each
//! container whose image the node reports (`status.images`, which the kubelet fills with its 50 largest
//! images) adds the image's size scaled by how widely the image has spread (nodes having it / all nodes,
//! so one node holding a popular image is not overloaded); the sum, clamped between 23 MiB and
//! 1000 MiB × the number of containers, maps linearly onto 0..=100.
//!
//! Names are compared in their canonical form (`busybox` → `docker.io/library/busybox:latest`, a
//! reference with a digest by its digest), the form the kubelet reports, so a short name in a pod
//! finds the image (Kubernetes only appends `:latest`, and misses these).

use std::collections::HashMap;
use std::sync::Arc;

use navarch_api::v1::{Node, Pod};

use crate::cycle::Cycle;
use crate::node_info::NodeInfo;
use crate::scores::MAX;

const MB: i64 = 1024 * 1024;
/// Below this the node scores 0.
pub const MIN_THRESHOLD: i64 = 23 * MB;
/// Per container: at or above this × containers the node scores 100.
pub const MAX_CONTAINER_THRESHOLD: i64 = 1000 * MB;

/// A node's images: canonical name → size in bytes (shared between clones of the NodeInfo).
#[derive(Debug, Clone, Default)]
pub struct NodeImages(Arc<HashMap<String, i64>>);

impl NodeImages {
    /// Every name of every image in the node's `status.images`.
    pub fn of(node: &Node) -> NodeImages {
        let mut m = HashMap::new();
        for image in node.status.as_ref().map(|s| s.images.as_slice()).unwrap_or_default() {
            for name in &image.names {
                m.insert(canonical(name), image.size_bytes);
            }
        }
        NodeImages(Arc::new(m))
    }

    /// The size of the image `canonical_name` if the node has it.
    pub fn size(&self, canonical_name: &str) -> Option<i64> {
        self.0.get(canonical_name).copied()
    }
}

/// A Docker-style reference in the canonical form containerd records: the `docker.io` registry and its
/// `library/` namespace by default, `:latest` without tag or digest, and only the digest when both are
/// given (nodes report an image by `repo:tag` and `repo@digest`).
pub fn canonical(image: &str) -> String {
    let (rest, digest) = match image.split_once('@') {
        Some((r, d)) => (r, Some(d)),
        None => (image, None),
    };
    let slash = rest.rfind('/').map(|i| i + 1).unwrap_or(0);
    let (name, tag) = match rest[slash..].rfind(':') {
        Some(i) => (&rest[..slash + i], Some(&rest[slash + i + 1..])),
        None => (rest, None),
    };
    let (registry, repository) = match name.split_once('/') {
        Some((first, path)) if first.contains('.') || first.contains(':') || first == "localhost" => {
            (first, path.to_string())
        }
        _ => ("docker.io", name.to_string()),
    };
    let repository = if registry == "docker.io" && !repository.contains('/') {
        format!("library/{repository}")
    } else {
        repository
    };
    match (digest, tag) {
        (Some(d), _) => format!("{registry}/{repository}@{d}"),
        (None, Some(t)) => format!("{registry}/{repository}:{t}"),
        (None, None) => format!("{registry}/{repository}:latest"),
    }
}

fn pod_images(pod: &Pod) -> Vec<String> {
    pod.spec
        .as_ref()
        .map(|s| s.init_containers.iter().chain(&s.containers).map(|c| canonical(&c.image)).collect())
        .unwrap_or_default()
}

/// Kubernetes' `calculatePriority`: the scaled sum clamped and mapped onto 0..=100.
pub fn priority(sum: i64, containers: usize) -> i64 {
    let max = MAX_CONTAINER_THRESHOLD * containers as i64;
    if max <= MIN_THRESHOLD {
        return 0;
    }
    MAX * (sum.clamp(MIN_THRESHOLD, max) - MIN_THRESHOLD) / (max - MIN_THRESHOLD)
}

/// Scores `nodes` for the cycle's pod, 0..=100 (no normalization across nodes, as Kubernetes).
pub fn score(cycle: &Cycle, nodes: &[&NodeInfo]) -> Vec<i64> {
    let images = pod_images(cycle.pod);
    // Most pods land where none of their images is: then nothing is counted across the cluster.
    if !nodes.iter().any(|n| images.iter().any(|i| n.images.size(i).is_some())) {
        return vec![0; nodes.len()];
    }
    let total = cycle.nodes.len().max(1) as f64;
    let mut spread: HashMap<&str, f64> = HashMap::new();
    for i in &images {
        if !spread.contains_key(i.as_str()) {
            let having = cycle.nodes.iter().filter(|n| n.images.size(i).is_some()).count();
            spread.insert(i, having as f64 / total);
        }
    }
    nodes
        .iter()
        .map(|n| {
            let sum: i64 = images
                .iter()
                .filter_map(|i| n.images.size(i).map(|size| (size as f64 * spread[i.as_str()]) as i64))
                .sum();
            priority(sum, images.len())
        })
        .collect()
}
