//! One scheduling cycle's view of the pod being placed: what is computed once for the pod before any
//! node is looked at (Kubernetes' PreFilter and CycleState), so the per-node filters and scores stay
//! cheap. Built from the [`Cache`]; read by [`crate::filters`] and [`crate::scores`].

use navarch_api::v1::Pod;

use crate::cache::Cache;
use crate::node_info::NodeInfo;
use crate::resources::{Resources, pod_requests};
use crate::volumes::PodVolumes;

/// The pod and its pre-computed state for one attempt. Cloned by preemption to simulate removing pods.
#[derive(Clone)]
pub struct Cycle<'a> {
    pub pod: &'a Pod,
    /// The pod's effective request.
    pub req: Resources,
    /// The pod's claims as the volume pre-filter found them (`None`: the pod has none).
    pub vols: Option<&'a PodVolumes>,
    /// Every node in the cache, in name order.
    pub nodes: Vec<&'a NodeInfo>,
    pub cache: &'a Cache,
    /// Topology spreading: matching pods per domain of the pod's DoNotSchedule constraints, and its
    /// ScheduleAnyway constraints.
    pub spread: crate::spread::State,
    /// Inter-pod affinity's pre-filter state.
    pub interpod: crate::interpod::State,
}

impl<'a> Cycle<'a> {
    /// Runs the pre-filters for `pod` against the cache.
    pub fn new(pod: &'a Pod, cache: &'a Cache, vols: Option<&'a PodVolumes>) -> Cycle<'a> {
        Cycle::with_nodes(pod, cache.nodes().values().collect(), cache, vols)
    }

    /// As [`Cycle::new`] on a chosen set of nodes (unit tests build nodes outside a cache).
    pub fn with_nodes(
        pod: &'a Pod,
        nodes: Vec<&'a NodeInfo>,
        cache: &'a Cache,
        vols: Option<&'a PodVolumes>,
    ) -> Cycle<'a> {
        let spread = crate::spread::State::new(pod, &nodes, cache);
        let interpod = crate::interpod::State::new(pod, cache);
        Cycle { pod, req: pod_requests(pod), vols, nodes, cache, spread, interpod }
    }

    /// Counts `pod` on `node` in every pre-filter state (Kubernetes' AddPod extensions).
    pub fn add_pod(&mut self, pod: &Pod, node: &NodeInfo) {
        self.spread.add_pod(pod, node);
        self.interpod.add_pod(pod, node);
    }

    /// Stops counting `pod` on `node` in every pre-filter state (Kubernetes' RemovePod extensions), so
    /// preemption can filter a node as if its victims were gone.
    pub fn remove_pod(&mut self, pod: &Pod, node: &NodeInfo) {
        self.spread.remove_pod(pod, node);
        self.interpod.remove_pod(pod, node);
    }

    pub fn namespace(&self) -> &str {
        self.pod.metadata.as_ref().map(|m| m.namespace.as_str()).unwrap_or("")
    }
}
