//! The resource scores, with kube-scheduler's integer arithmetic: NodeResourcesFit's scoring strategies
//! (LeastAllocated, MostAllocated, RequestedToCapacityRatio over weighted resources) and
//! NodeResourcesBalancedAllocation (the standard deviation of the resources' used fractions).
//!
//! For each resource, "requested" is what the node's pods request plus the pod's request, against the
//! node's allocatable. NodeResourcesFit counts cpu and memory as [`pod_non_zero_requests`] does (a
//! container without a request counts 100m / 200Mi); BalancedAllocation counts the real requests and
//! skips pods that request nothing. Resources the scheduler does not account (extended resources) and
//! those the node does not offer are left out, as Kubernetes leaves out a resource with no allocatable.

use navarch_api::v1::Pod;

use crate::node_info::NodeInfo;
use crate::resources::{Resources, pod_non_zero_requests, pod_requests};
use crate::scores::MAX;

/// A resource and its weight in the strategy's weighted average.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceSpec {
    pub name: String,
    pub weight: i64,
}

impl ResourceSpec {
    pub fn new(name: &str, weight: i64) -> ResourceSpec {
        ResourceSpec { name: name.to_string(), weight }
    }
}

/// Kubernetes' default resources: cpu and memory, weight 1 each.
pub fn default_resources() -> Vec<ResourceSpec> {
    vec![ResourceSpec::new("cpu", 1), ResourceSpec::new("memory", 1)]
}

/// How NodeResourcesFit scores a node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Strategy {
    /// Emptier nodes first (spreads load).
    LeastAllocated,
    /// Fuller nodes first (bin packing).
    MostAllocated,
    /// A broken-linear function of utilization: points `(utilization 0..=100, score 0..=100)` sorted by
    /// utilization (the config's scores 0..=10, multiplied by 10).
    RequestedToCapacityRatio(Vec<(i64, i64)>),
}

/// NodeResourcesFit's scoring: a strategy over weighted resources.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FitScoring {
    pub strategy: Strategy,
    pub resources: Vec<ResourceSpec>,
}

impl Default for FitScoring {
    fn default() -> FitScoring {
        FitScoring { strategy: Strategy::LeastAllocated, resources: default_resources() }
    }
}

/// The pod's requests, computed once per cycle.
#[derive(Debug, Clone, Copy)]
pub struct PodRequests {
    pub requested: Resources,
    pub non_zero: Resources,
}

impl PodRequests {
    pub fn of(pod: &Pod) -> PodRequests {
        PodRequests { requested: pod_requests(pod), non_zero: pod_non_zero_requests(pod) }
    }
}

/// `(allocatable, requested with the pod)` of one resource on `node`; `(0, 0)` leaves it out.
fn allocatable_requested(node: &NodeInfo, name: &str, pod: &PodRequests, use_requested: bool) -> (i64, i64) {
    let (used, own) = if use_requested {
        (&node.requested, &pod.requested)
    } else {
        (&node.non_zero_requested, &pod.non_zero)
    };
    let a = &node.allocatable;
    match name {
        "cpu" => (a.milli_cpu, used.milli_cpu + own.milli_cpu),
        "memory" => (a.memory, used.memory + own.memory),
        "ephemeral-storage" => {
            (a.ephemeral_storage, node.requested.ephemeral_storage + pod.requested.ephemeral_storage)
        }
        _ => (0, 0),
    }
}

/// `used * max / capacity` with `used` clamped to `0..=capacity`, without overflow.
fn scaled(used: i64, capacity: i64, max: i64) -> i64 {
    if capacity <= 0 || used <= 0 {
        return 0;
    }
    (used.min(capacity) as i128 * max as i128 / capacity as i128) as i64
}

/// Kubernetes' `BuildBrokenLinearFunction`: linear between the points, flat outside them.
pub fn broken_linear(shape: &[(i64, i64)], p: i64) -> i64 {
    for (i, &(u, s)) in shape.iter().enumerate() {
        if p <= u {
            if i == 0 {
                return s;
            }
            let (pu, ps) = shape[i - 1];
            return ps + (s - ps) * (p - pu) / (u - pu);
        }
    }
    shape.last().map(|&(_, s)| s).unwrap_or(0)
}

impl FitScoring {
    /// NodeResourcesFit's score of `node` for a pod requesting `pod`, 0..=100.
    pub fn score(&self, pod: &PodRequests, node: &NodeInfo) -> i64 {
        let (mut total, mut weights) = (0i64, 0i64);
        for r in &self.resources {
            let (alloc, req) = allocatable_requested(node, &r.name, pod, false);
            if alloc == 0 {
                continue;
            }
            let s = match &self.strategy {
                // Kubernetes' `(capacity - requested) * 100 / capacity`, truncated.
                Strategy::LeastAllocated => scaled(alloc - req, alloc, MAX),
                Strategy::MostAllocated => scaled(req, alloc, MAX),
                Strategy::RequestedToCapacityRatio(shape) => {
                    let s = broken_linear(shape, scaled(req, alloc, 100));
                    // Resources scoring 0 are left out of the average.
                    if s <= 0 {
                        continue;
                    }
                    s
                }
            };
            total += s * r.weight;
            weights += r.weight;
        }
        if weights == 0 {
            return 0;
        }
        match self.strategy {
            Strategy::RequestedToCapacityRatio(_) => (total as f64 / weights as f64).round() as i64,
            _ => total / weights,
        }
    }
}

/// Whether BalancedAllocation skips the pod: it requests none of `resources` (best-effort).
pub fn balanced_skips(resources: &[String], pod: &PodRequests) -> bool {
    resources.iter().all(|r| {
        let own = &pod.requested;
        match r.as_str() {
            "cpu" => own.milli_cpu == 0,
            "memory" => own.memory == 0,
            "ephemeral-storage" => own.ephemeral_storage == 0,
            _ => true,
        }
    })
}

/// NodeResourcesBalancedAllocation: `(1 - std) * 100` of the used fractions (each capped at 1), where
/// `std` of two fractions is half their difference.
pub fn balanced(resources: &[String], pod: &PodRequests, node: &NodeInfo) -> i64 {
    let fractions: Vec<f64> = resources
        .iter()
        .map(|r| allocatable_requested(node, r, pod, true))
        .filter(|(alloc, _)| *alloc != 0)
        .map(|(alloc, req)| (req as f64 / alloc as f64).min(1.0))
        .collect();
    let std = match fractions.len() {
        0 | 1 => 0.0,
        2 => ((fractions[0] - fractions[1]) / 2.0).abs(),
        n => {
            let mean = fractions.iter().sum::<f64>() / n as f64;
            (fractions.iter().map(|f| (f - mean) * (f - mean)).sum::<f64>() / n as f64).sqrt()
        }
    };
    ((1.0 - std) * MAX as f64) as i64
}
