//! Scores: among the nodes that fit, which is best? Each score plugin gives every node 0..=100,
//! normalized across the nodes as kube-scheduler normalizes it; the total is the sum weighted by the
//! profile ([`Profile`], from the `profiles` section of the config file). Kubernetes' default weights:
//!
//! | plugin | weight | prefers |
//! |---|---|---|
//! | TaintToleration | 3 | nodes with fewer untolerated `PreferNoSchedule` taints |
//! | NodeAffinity | 2 | nodes matching more preferred terms (by weight) |
//! | NodeResourcesFit | 1 | by its scoring strategy: emptier nodes (LeastAllocated, the default), fuller ones (MostAllocated), or a utilization curve (RequestedToCapacityRatio); see [`fit`] |
//! | PodTopologySpread | 2 | nodes whose topology domains hold fewer matching pods (the pod's constraints, or the defaults); see [`crate::spread`] |
//! | InterPodAffinity | 2 | nodes whose domains hold pods the pod prefers (and pods preferring it), away from those it avoids; see [`crate::interpod`] |
//! | NodeResourcesBalancedAllocation | 1 | nodes whose resources stay evenly used |
//! | ImageLocality | 1 | nodes that already have the pod's images ([`image`]) |

pub mod fit;
pub mod image;

use std::sync::LazyLock;

use navarch_api::v1::Pod;

use crate::config::InterPodAffinityArgs;
use crate::cycle::Cycle;
use crate::filters::{term_matches, tolerates};
use crate::node_info::NodeInfo;
use crate::spread::SpreadArgs;
use fit::{FitScoring, PodRequests};

pub const MAX: i64 = 100;

/// A score plugin, by its name in KubeSchedulerConfiguration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Plugin {
    TaintToleration,
    NodeAffinity,
    NodeResourcesFit,
    PodTopologySpread,
    InterPodAffinity,
    NodeResourcesBalancedAllocation,
    ImageLocality,
}

impl Plugin {
    /// Every score plugin with its default weight, in Kubernetes' order.
    pub const DEFAULTS: [(Plugin, i64); 7] = [
        (Plugin::TaintToleration, 3),
        (Plugin::NodeAffinity, 2),
        (Plugin::NodeResourcesFit, 1),
        (Plugin::PodTopologySpread, 2),
        (Plugin::InterPodAffinity, 2),
        (Plugin::NodeResourcesBalancedAllocation, 1),
        (Plugin::ImageLocality, 1),
    ];

    pub fn name(self) -> &'static str {
        match self {
            Plugin::TaintToleration => "TaintToleration",
            Plugin::NodeAffinity => "NodeAffinity",
            Plugin::NodeResourcesFit => "NodeResourcesFit",
            Plugin::PodTopologySpread => "PodTopologySpread",
            Plugin::InterPodAffinity => "InterPodAffinity",
            Plugin::NodeResourcesBalancedAllocation => "NodeResourcesBalancedAllocation",
            Plugin::ImageLocality => "ImageLocality",
        }
    }

    pub fn from_name(name: &str) -> Option<Plugin> {
        Plugin::DEFAULTS.iter().map(|(p, _)| *p).find(|p| p.name() == name)
    }
}

/// What the scores run with: the enabled plugins and their weights, and the plugins' arguments.
#[derive(Debug, Clone, PartialEq)]
pub struct Profile {
    /// Enabled score plugins with their weights, in order.
    pub plugins: Vec<(Plugin, i64)>,
    /// NodeResourcesFit's `scoringStrategy`.
    pub fit: FitScoring,
    /// NodeResourcesBalancedAllocation's `resources` (their weights are always 1).
    pub balanced: Vec<String>,
    /// InterPodAffinity's args (`hardPodAffinityWeight`, ...), for `interpod::score`.
    pub inter_pod: InterPodAffinityArgs,
    /// PodTopologySpread's args (`defaultConstraints`, `defaultingType`), for the spread pre-filter.
    pub spread: SpreadArgs,
}

impl Default for Profile {
    fn default() -> Profile {
        Profile {
            plugins: Plugin::DEFAULTS.to_vec(),
            fit: FitScoring::default(),
            balanced: vec!["cpu".into(), "memory".into()],
            inter_pod: InterPodAffinityArgs::default(),
            spread: SpreadArgs::default(),
        }
    }
}

static DEFAULT: LazyLock<Profile> = LazyLock::new(Profile::default);

impl Profile {
    /// The weighted total score of each of `nodes` for the cycle's pod.
    pub fn score(&self, cycle: &Cycle, nodes: &[&NodeInfo]) -> Vec<i64> {
        let req = PodRequests::of(cycle.pod);
        let mut total = vec![0i64; nodes.len()];
        for &(plugin, weight) in &self.plugins {
            if let Some(scores) = self.run(plugin, cycle, &req, nodes) {
                for (t, s) in total.iter_mut().zip(scores) {
                    *t += weight * s;
                }
            }
        }
        total
    }

    /// One plugin's normalized scores (0..=100 per node); `None`: the plugin does not score this pod.
    pub fn run(
        &self,
        plugin: Plugin,
        cycle: &Cycle,
        req: &PodRequests,
        nodes: &[&NodeInfo],
    ) -> Option<Vec<i64>> {
        let pod = cycle.pod;
        let each = |f: &dyn Fn(&NodeInfo) -> i64| nodes.iter().map(|n| f(n)).collect::<Vec<_>>();
        Some(match plugin {
            Plugin::TaintToleration => normalize(&each(&|n| intolerable_prefer_no_schedule(pod, n)), false),
            Plugin::NodeAffinity => normalize(&each(&|n| preferred_affinity(pod, n)), true),
            Plugin::NodeResourcesFit => each(&|n| self.fit.score(req, n)),
            Plugin::NodeResourcesBalancedAllocation => {
                if fit::balanced_skips(&self.balanced, req) {
                    return None;
                }
                each(&|n| fit::balanced(&self.balanced, req, n))
            }
            Plugin::ImageLocality => image::score(cycle, nodes),
            Plugin::InterPodAffinity => crate::interpod::score(cycle, nodes, &self.inter_pod),
            Plugin::PodTopologySpread => crate::spread::score(cycle, nodes),
        })
    }
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
    n.taints
        .iter()
        .filter(|t| t.effect == "PreferNoSchedule" && !tolerations.iter().any(|tol| tolerates(tol, t)))
        .count() as i64
}

/// Kubernetes' `DefaultNormalizeScore`: scales raw values to 0..=100 by the largest
/// (`higher_is_better` false: inverted, and all 100 when every value is 0).
pub fn normalize(raw: &[i64], higher_is_better: bool) -> Vec<i64> {
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

/// The weighted total score of each of `nodes` with Kubernetes' default profile.
pub fn score(cycle: &Cycle, nodes: &[&NodeInfo]) -> Vec<i64> {
    DEFAULT.score(cycle, nodes)
}

#[cfg(test)]
mod tests;
