//! Scores: among the nodes that fit, which is best? Each plugin gives 0–100 per node; the total is the
//! weighted sum (weights as kube-scheduler's defaults):
//!
//! | plugin | weight | prefers |
//! |---|---|---|
//! | least allocated (cpu, memory) | 1 | emptier nodes |
//! | balanced allocation | 1 | nodes whose cpu and memory use stay even |
//! | preferred node affinity | 2 | nodes matching more preferred terms (by weight) |
//! | taint toleration | 3 | nodes with fewer untolerated `PreferNoSchedule` taints |
//! | pod topology spread | 2 | nodes whose domains have fewer matching pods (the pod's constraints, or the default ones) |

use navarch_api::v1::Pod;

use crate::cycle::Cycle;
use crate::filters::{term_matches, tolerates};
use crate::node_info::NodeInfo;
use crate::resources::Resources;

pub const MAX: i64 = 100;
const W_LEAST: i64 = 1;
const W_BALANCED: i64 = 1;
const W_AFFINITY: i64 = 2;
const W_TAINT: i64 = 3;
const W_SPREAD: i64 = 2;

fn fraction(used: i64, cap: i64) -> f64 {
    if cap <= 0 { 1.0 } else { (used as f64 / cap as f64).min(1.0) }
}

/// 100 on an empty node, 0 on a full one (cpu and memory averaged), after placing the pod.
pub fn least_allocated(req: &Resources, n: &NodeInfo) -> i64 {
    let cpu = 1.0 - fraction(n.requested.milli_cpu + req.milli_cpu, n.allocatable.milli_cpu);
    let mem = 1.0 - fraction(n.requested.memory + req.memory, n.allocatable.memory);
    ((cpu + mem) / 2.0 * MAX as f64).round() as i64
}

/// 100 when cpu and memory would be equally used, less the further apart they are.
pub fn balanced(req: &Resources, n: &NodeInfo) -> i64 {
    let cpu = fraction(n.requested.milli_cpu + req.milli_cpu, n.allocatable.milli_cpu);
    let mem = fraction(n.requested.memory + req.memory, n.allocatable.memory);
    ((1.0 - (cpu - mem).abs()) * MAX as f64).round() as i64
}

/// Sum of the weights of the preferred node-affinity terms the node matches (raw; normalized later).
pub fn preferred_affinity(pod: &Pod, n: &NodeInfo) -> i64 {
    let Some(prefs) = pod
        .spec
        .as_ref()
        .and_then(|s| s.affinity.as_ref())
        .and_then(|a| a.node_affinity.as_ref())
        .map(|na| &na.preferred_during_scheduling_ignored_during_execution)
    else {
        return 0;
    };
    let meta = n.node.metadata.clone().unwrap_or_default();
    prefs
        .iter()
        .filter(|p| p.preference.as_ref().is_some_and(|t| term_matches(t, &meta.labels, &meta.name)))
        .map(|p| p.weight as i64)
        .sum()
}

/// Number of `PreferNoSchedule` taints the pod does not tolerate (raw; fewer is better).
pub fn intolerable_prefer_no_schedule(pod: &Pod, n: &NodeInfo) -> i64 {
    let tolerations = pod.spec.as_ref().map(|s| s.tolerations.as_slice()).unwrap_or_default();
    n.node
        .spec
        .as_ref()
        .map(|s| s.taints.as_slice())
        .unwrap_or_default()
        .iter()
        .filter(|t| t.effect == "PreferNoSchedule" && !tolerations.iter().any(|tol| tolerates(tol, t)))
        .count() as i64
}

/// Scales raw values to 0..=100 across nodes (`higher_is_better` false: inverted).
fn normalize(raw: &[i64], higher_is_better: bool) -> Vec<i64> {
    let max = raw.iter().copied().max().unwrap_or(0);
    raw.iter()
        .map(|&v| {
            if max == 0 {
                if higher_is_better { 0 } else { MAX }
            } else if higher_is_better {
                v * MAX / max
            } else {
                MAX - v * MAX / max
            }
        })
        .collect()
}

/// The weighted total score of each of `nodes` for the cycle's pod.
pub fn score(cycle: &Cycle, nodes: &[&NodeInfo]) -> Vec<i64> {
    let (pod, req) = (cycle.pod, &cycle.req);
    let affinity = normalize(&nodes.iter().map(|n| preferred_affinity(pod, n)).collect::<Vec<_>>(), true);
    let taints =
        normalize(&nodes.iter().map(|n| intolerable_prefer_no_schedule(pod, n)).collect::<Vec<_>>(), false);
    let spread = crate::spread::score(cycle, nodes);
    nodes
        .iter()
        .enumerate()
        .map(|(i, n)| {
            W_LEAST * least_allocated(req, n)
                + W_BALANCED * balanced(req, n)
                + W_AFFINITY * affinity[i]
                + W_TAINT * taints[i]
                + W_SPREAD * spread[i]
        })
        .collect()
}
