//! PodTopologySpread scoring (Kubernetes' PreScore, Score and NormalizeScore): for the ScheduleAnyway
//! constraints, each node's raw score is Σ over constraints of `matching pods in its domain × ln(domains
//! + 2) + (maxSkew − 1)`, fewer being better; normalized to `100 × (max + min − raw) / max`.

use std::collections::HashMap;

use crate::cycle::Cycle;
use crate::node_info::NodeInfo;

use super::{HOSTNAME, has_all_keys, matching_nodes, node_labels};

const MAX: i64 = 100;

/// Kubernetes' topology normalizing weight: counts of topologies with few domains are not watered down
/// by those with many.
fn weight(domains: usize) -> f64 {
    ((domains + 2) as f64).ln()
}

/// The PodTopologySpread score (0..=100) of each of `nodes` (the nodes that passed the filters) for the
/// cycle's pod; all 0 when the pod has no ScheduleAnyway constraint (Kubernetes skips the plugin).
pub fn score(cycle: &Cycle, nodes: &[&NodeInfo]) -> Vec<i64> {
    let s = &cycle.spread;
    let cache = cycle.cache;
    if s.soft.is_empty() || nodes.is_empty() || cache.nodes().is_empty() {
        return vec![0; nodes.len()];
    }
    let soft = &s.soft;
    // PreScore: the nodes left out of scoring and the domains of the candidate nodes.
    let ignored: Vec<bool> =
        nodes.iter().map(|n| s.soft_require_all_keys && !has_all_keys(node_labels(&n.node), soft)).collect();
    let scored = ignored.iter().filter(|i| !**i).count();
    let mut domains: Vec<HashMap<&str, i64>> = vec![HashMap::new(); soft.len()];
    for (n, _) in nodes.iter().zip(&ignored).filter(|(_, i)| !**i) {
        let labels = node_labels(&n.node);
        for (i, c) in soft.iter().enumerate() {
            if c.topology_key != HOSTNAME {
                domains[i].entry(labels.get(&c.topology_key).map(String::as_str).unwrap_or("")).or_insert(0);
            }
        }
    }
    let weights: Vec<f64> = soft
        .iter()
        .zip(&domains)
        .map(|(c, d)| weight(if c.topology_key == HOSTNAME { scored } else { d.len() }))
        .collect();
    // Matching pods: per domain over every node (as eligible), and per node for hostname constraints.
    let matching = matching_nodes(cache, &s.namespace, soft);
    let mut per_node: Vec<HashMap<&str, i64>> = vec![HashMap::new(); soft.len()];
    for (i, c) in soft.iter().enumerate() {
        for &info in &matching[i] {
            if c.topology_key == HOSTNAME {
                *per_node[i].entry(info.name()).or_insert(0) += 1;
                continue;
            }
            let labels = node_labels(&info.node);
            if (s.soft_require_all_keys && !has_all_keys(labels, soft))
                || !s.inclusion.includes(c, &info.node)
            {
                continue;
            }
            if let Some(n) = domains[i].get_mut(labels.get(&c.topology_key).map(String::as_str).unwrap_or(""))
            {
                *n += 1;
            }
        }
    }
    // Score: raw sums (None: ignored).
    let raw: Vec<Option<i64>> = nodes
        .iter()
        .zip(&ignored)
        .map(|(n, ignored)| {
            if *ignored {
                return None;
            }
            let labels = node_labels(&n.node);
            let mut total = 0.0;
            for (i, c) in soft.iter().enumerate() {
                let Some(value) = labels.get(&c.topology_key) else { continue };
                let count = if c.topology_key == HOSTNAME {
                    per_node[i].get(n.name()).copied().unwrap_or(0)
                } else {
                    domains[i].get(value.as_str()).copied().unwrap_or(0)
                };
                total += count as f64 * weights[i] + (c.max_skew - 1) as f64;
            }
            Some(total.round() as i64)
        })
        .collect();
    normalize(&raw)
}

/// Kubernetes' NormalizeScore: fewer matching pods is better; ignored nodes score 0.
fn normalize(raw: &[Option<i64>]) -> Vec<i64> {
    let min = raw.iter().flatten().copied().min().unwrap_or(0);
    let max = raw.iter().flatten().copied().max().unwrap_or(0).max(0);
    raw.iter()
        .map(|r| match r {
            None => 0,
            Some(_) if max == 0 => MAX,
            Some(v) => MAX * (max + min - v) / max,
        })
        .collect()
}
