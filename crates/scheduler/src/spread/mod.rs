//! Topology spreading (Kubernetes' PodTopologySpread plugin): a pod's `topologySpreadConstraints` —
//! `maxSkew`, `whenUnsatisfiable` (DoNotSchedule filters, ScheduleAnyway scores), `minDomains`,
//! `nodeAffinityPolicy`/`nodeTaintsPolicy`, `matchLabelKeys` — and, for pods without their own, the
//! cluster's default constraints with a selector taken from the pod's Services and controller.
//!
//! This module owns the pre-filter [`State`] (matching pods per topology domain of every hard
//! constraint, built from the cache's pod index: O(nodes + matching pods), never O(all pods)), the
//! per-node [`filter`] (O(constraints) map lookups), the normalized [`score`] ([`scoring`]) and the default
//! constraints with their configuration and the Service/ReplicaSet/StatefulSet/ReplicationController
//! selectors they need ([`defaults`]).

mod defaults;
mod scoring;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashMap};

use navarch_api::selector::{Requirement, Selector};
use navarch_api::v1::{Node, Pod, PodSpec, TopologySpreadConstraint};

use crate::cache::{Cache, Namespaces};
use crate::cycle::Cycle;
use crate::node_info::{NodeInfo, terminating};

pub use defaults::{
    DefaultingType, Defaults, SelectorKind, SelectorSource, Source, SourceEvent, SpreadArgs,
    system_default_constraints,
};
pub use scoring::score;

/// Kubernetes' reason when a node would break a DoNotSchedule constraint (Unschedulable: evicting
/// matching pods may help).
pub const REASON_CONSTRAINTS: &str = "node(s) didn't match pod topology spread constraints";
/// The node lacks a DoNotSchedule constraint's topology key (UnschedulableAndUnresolvable).
pub const REASON_MISSING_LABEL: &str =
    "node(s) didn't match pod topology spread constraints (missing required label)";

pub const HOSTNAME: &str = "kubernetes.io/hostname";
pub const ZONE: &str = "topology.kubernetes.io/zone";

const DO_NOT_SCHEDULE: &str = "DoNotSchedule";
const SCHEDULE_ANYWAY: &str = "ScheduleAnyway";

/// One constraint with its selector resolved (Kubernetes' internal `topologySpreadConstraint`).
#[derive(Debug, Clone, PartialEq)]
pub struct Constraint {
    pub max_skew: i32,
    pub topology_key: String,
    pub selector: Selector,
    /// 1 when unset.
    pub min_domains: i32,
    /// `nodeAffinityPolicy: Honor` (the default): only nodes matching the pod's nodeSelector and required
    /// node affinity count.
    pub honor_affinity: bool,
    /// `nodeTaintsPolicy: Honor` (default Ignore): nodes with taints the pod does not tolerate do not count.
    pub honor_taints: bool,
}

/// The constraints of `list` with action `action`, each selector extended by `matchLabelKeys` (the
/// pod's values of those keys). A selector that does not parse (the api-server rejects those) drops the
/// constraint.
pub fn constraints(
    list: &[TopologySpreadConstraint],
    pod_labels: &BTreeMap<String, String>,
    action: &str,
) -> Vec<Constraint> {
    list.iter()
        .filter(|c| c.when_unsatisfiable == action)
        .filter_map(|c| {
            let mut selector = Selector::from_label_selector(c.label_selector.as_ref()).ok()?;
            let mut extra: Vec<Requirement> = c
                .match_label_keys
                .iter()
                .filter_map(|k| pod_labels.get(k).map(|v| Requirement::Equals(k.clone(), v.clone())))
                .collect();
            if !extra.is_empty() {
                extra.append(&mut selector.0);
                selector = Selector(extra);
            }
            Some(Constraint {
                max_skew: c.max_skew,
                topology_key: c.topology_key.clone(),
                selector,
                min_domains: c.min_domains.unwrap_or(1),
                honor_affinity: c.node_affinity_policy.as_deref() != Some("Ignore"),
                honor_taints: c.node_taints_policy.as_deref() == Some("Honor"),
            })
        })
        .collect()
}

/// Whether the node has every constraint's topology key.
fn has_all_keys(labels: &BTreeMap<String, String>, constraints: &[Constraint]) -> bool {
    constraints.iter().all(|c| labels.contains_key(&c.topology_key))
}

fn node_labels(node: &Node) -> &BTreeMap<String, String> {
    static EMPTY: BTreeMap<String, String> = BTreeMap::new();
    node.metadata.as_ref().map(|m| &m.labels).unwrap_or(&EMPTY)
}

fn pod_labels(pod: &Pod) -> &BTreeMap<String, String> {
    static EMPTY: BTreeMap<String, String> = BTreeMap::new();
    pod.metadata.as_ref().map(|m| &m.labels).unwrap_or(&EMPTY)
}

fn pod_namespace(pod: &Pod) -> &str {
    pod.metadata.as_ref().map(|m| m.namespace.as_str()).unwrap_or("")
}

/// Terminating pods are not counted (Kubernetes #87621).
/// For each constraint, the node of every non-terminating pod in `ns` its selector matches (constraints
/// with equal selectors, like the default hostname and zone pair, share one index lookup).
fn matching_nodes<'c>(cache: &'c Cache, ns: &str, cs: &[Constraint]) -> Vec<Vec<&'c NodeInfo>> {
    let ns = [ns.to_string()];
    let mut out: Vec<Vec<&'c NodeInfo>> = Vec::with_capacity(cs.len());
    for (i, c) in cs.iter().enumerate() {
        let nodes = match cs[..i].iter().position(|o| o.selector == c.selector) {
            Some(j) => out[j].clone(),
            None => cache
                .index()
                .select(Namespaces::These(&ns), &c.selector)
                .filter(|(p, _)| !terminating(p))
                .filter_map(|(_, n)| cache.node(n))
                .collect(),
        };
        out.push(nodes);
    }
    out
}

/// What of the incoming pod decides which nodes a constraint counts: its nodeSelector, required node
/// affinity and tolerations (kept so [`State`] owns everything it needs).
#[derive(Debug, Clone, Default)]
struct NodeInclusion {
    spec: PodSpec,
}

impl NodeInclusion {
    fn of(pod: &Pod) -> NodeInclusion {
        let mut spec = PodSpec::default();
        if let Some(s) = pod.spec.as_ref() {
            spec.node_selector = s.node_selector.clone();
            spec.affinity = s.affinity.clone();
            spec.tolerations = s.tolerations.clone();
        }
        NodeInclusion { spec }
    }

    /// Whether `c` counts every node (no node selector or required affinity honoured, taints ignored).
    fn all_nodes(&self, c: &Constraint) -> bool {
        let affinity_free = self.spec.node_selector.is_empty()
            && self
                .spec
                .affinity
                .as_ref()
                .and_then(|a| a.node_affinity.as_ref())
                .is_none_or(|na| na.required_during_scheduling_ignored_during_execution.is_none());
        (!c.honor_affinity || affinity_free) && !c.honor_taints
    }

    /// Kubernetes' `matchNodeInclusionPolicies`.
    fn includes(&self, c: &Constraint, node: &Node) -> bool {
        if c.honor_affinity && !navarch_api::node_affinity::matches_node(&self.spec, node) {
            return false;
        }
        if c.honor_taints {
            let taints = node.spec.as_ref().map(|s| s.taints.as_slice()).unwrap_or_default();
            if navarch_api::taints::untolerated(&self.spec.tolerations, taints, |t| {
                t.effect == "NoSchedule" || t.effect == "NoExecute"
            })
            .is_some()
            {
                return false;
            }
        }
        true
    }
}

/// One DoNotSchedule constraint's counts: matching pods per eligible topology domain.
#[derive(Debug, Clone)]
struct Hard {
    c: Constraint,
    /// Whether the incoming pod itself matches the selector.
    self_match: bool,
    /// Topology value → matching pods, for every domain with an eligible node.
    counts: HashMap<String, i64>,
    /// Count → how many domains have it: the global minimum is the first key.
    by_count: BTreeMap<i64, usize>,
}

impl Hard {
    fn set(&mut self, value: &str, n: i64) {
        let old = self.counts.insert(value.to_string(), n);
        if let Some(old) = old
            && let Some(k) = self.by_count.get_mut(&old)
        {
            *k -= 1;
            if *k == 0 {
                self.by_count.remove(&old);
            }
        }
        *self.by_count.entry(n).or_insert(0) += 1;
    }

    /// The global minimum for the skew: 0 while fewer domains than `minDomains` exist.
    fn min(&self) -> i64 {
        if (self.counts.len() as i64) < self.c.min_domains as i64 {
            return 0;
        }
        self.by_count.keys().next().copied().unwrap_or(i32::MAX as i64)
    }
}

/// The pod's spreading state for one cycle (Kubernetes' PreFilter state of PodTopologySpread, plus the
/// soft constraints PreScore uses).
#[derive(Debug, Clone, Default)]
pub struct State {
    namespace: String,
    inclusion: NodeInclusion,
    hard: Vec<Hard>,
    /// ScheduleAnyway constraints (the pod's, or the defaults).
    soft: Vec<Constraint>,
    /// Scoring ignores nodes missing a soft constraint's key, except under the system defaults (so nodes
    /// without a zone label still get hostname spreading).
    soft_require_all_keys: bool,
}

impl State {
    /// Kubernetes' PreFilter: the pod's constraints (or the defaults) and, for the DoNotSchedule ones, the
    /// matching pods in every eligible domain of `nodes`.
    pub fn new(pod: &Pod, nodes: &[&NodeInfo], cache: &Cache) -> State {
        let own = pod.spec.as_ref().map(|s| s.topology_spread_constraints.as_slice()).unwrap_or_default();
        let labels = pod_labels(pod);
        let (hard, soft, require_all) = if own.is_empty() {
            let d = cache.spread_defaults();
            let (hard, soft) = d.constraints_for(pod);
            (hard, soft, !d.is_system())
        } else {
            (constraints(own, labels, DO_NOT_SCHEDULE), constraints(own, labels, SCHEDULE_ANYWAY), true)
        };
        let mut s = State {
            namespace: pod_namespace(pod).to_string(),
            inclusion: if hard.is_empty() && soft.is_empty() {
                NodeInclusion::default()
            } else {
                NodeInclusion::of(pod)
            },
            hard: hard
                .into_iter()
                .map(|c| Hard {
                    self_match: c.selector.matches(labels),
                    c,
                    counts: HashMap::new(),
                    by_count: BTreeMap::new(),
                })
                .collect(),
            soft,
            soft_require_all_keys: require_all,
        };
        if !s.hard.is_empty() {
            s.count_hard(nodes, cache);
        }
        s
    }

    fn hard_constraints(&self) -> Vec<Constraint> {
        self.hard.iter().map(|h| h.c.clone()).collect()
    }

    fn count_hard(&mut self, nodes: &[&NodeInfo], cache: &Cache) {
        if let [h] = self.hard.as_slice()
            && self.inclusion.all_nodes(&h.c)
        {
            return self.count_one(nodes, cache);
        }
        let all = self.hard_constraints();
        let mut counts: Vec<HashMap<String, i64>> = vec![HashMap::new(); self.hard.len()];
        // Every eligible domain exists, with zero pods until counted.
        for n in nodes {
            let labels = node_labels(&n.node);
            if !has_all_keys(labels, &all) {
                continue;
            }
            for (i, c) in all.iter().enumerate() {
                let v = &labels[&c.topology_key];
                if !counts[i].contains_key(v) && self.inclusion.includes(c, &n.node) {
                    counts[i].insert(v.clone(), 0);
                }
            }
        }
        let matching = matching_nodes(cache, &self.namespace, &all);
        for (i, c) in all.iter().enumerate() {
            for info in &matching[i] {
                let labels = node_labels(&info.node);
                if !has_all_keys(labels, &all) || !self.inclusion.includes(c, &info.node) {
                    continue;
                }
                if let Some(n) = counts[i].get_mut(&labels[&c.topology_key]) {
                    *n += 1;
                }
            }
        }
        for (h, counts) in self.hard.iter_mut().zip(counts) {
            for (v, n) in counts {
                h.set(&v, n);
            }
        }
    }

    /// [`State::count_hard`] for one constraint counting every node (the usual case): the matching pods'
    /// domain counts are shared through the cache's memo by every pod with the same selector, so only the
    /// domains are walked.
    fn count_one(&mut self, nodes: &[&NodeInfo], cache: &Cache) {
        let c = self.hard[0].c.clone();
        let term = crate::interpod::Term {
            selector: Some(c.selector.clone()),
            namespaces: [self.namespace.clone()].into(),
            namespace_selector: None,
            topology_key: c.topology_key.clone(),
        };
        let matched = cache.selected().get_or_compute(&term, true, || {
            let mut counts = HashMap::new();
            for info in matching_nodes(cache, &self.namespace, std::slice::from_ref(&c)).remove(0) {
                if let Some(v) = node_labels(&info.node).get(&c.topology_key) {
                    crate::interpod::adjust(&mut counts, v, 1);
                }
            }
            counts
        });
        let h = &mut self.hard[0];
        if nodes.len() == cache.nodes().len() {
            // Every node (a real cycle): the cache keeps the domains.
            for d in cache.domains(&c.topology_key).iter() {
                h.set(d, matched.get(d).copied().unwrap_or(0));
            }
            return;
        }
        let mut domains: std::collections::HashSet<&str> = std::collections::HashSet::new();
        for n in nodes {
            if let Some(v) = node_labels(&n.node).get(&c.topology_key) {
                domains.insert(v);
            }
        }
        for d in domains {
            h.set(d, matched.get(d).copied().unwrap_or(0));
        }
    }

    /// Whether the pod has DoNotSchedule constraints (the filter has something to check).
    pub fn has_hard(&self) -> bool {
        !self.hard.is_empty()
    }

    /// Counts `pod` on `node` (Kubernetes' AddPod extension: preemption re-adding a reprieved victim).
    pub fn add_pod(&mut self, pod: &Pod, node: &NodeInfo) {
        self.update(pod, node, 1);
    }

    /// Stops counting `pod` on `node` (Kubernetes' RemovePod extension: a preemption victim).
    pub fn remove_pod(&mut self, pod: &Pod, node: &NodeInfo) {
        self.update(pod, node, -1);
    }

    fn update(&mut self, pod: &Pod, node: &NodeInfo, delta: i64) {
        if self.hard.is_empty() || pod_namespace(pod) != self.namespace {
            return;
        }
        let labels = node_labels(&node.node);
        if !self.hard.iter().all(|h| labels.contains_key(&h.c.topology_key)) {
            return;
        }
        let pod_labels = pod_labels(pod);
        for h in &mut self.hard {
            if !h.c.selector.matches(pod_labels) || !self.inclusion.includes(&h.c, &node.node) {
                continue;
            }
            let v = &labels[&h.c.topology_key];
            let n = h.counts.get(v).copied().unwrap_or(0) + delta;
            h.set(v, n);
        }
    }

    /// The matching pods counted in domain `value` of hard constraint `i` (tests).
    #[cfg(test)]
    fn count(&self, i: usize, value: &str) -> Option<i64> {
        self.hard[i].counts.get(value).copied()
    }
}

/// Kubernetes' PodTopologySpread Filter: `None` when every DoNotSchedule constraint holds on `node`
/// (matching pods in its domain + 1 if the pod matches itself − the global minimum ≤ maxSkew).
pub fn filter(cycle: &Cycle, node: &NodeInfo) -> Option<&'static str> {
    let s = &cycle.spread;
    let labels = node_labels(&node.node);
    for h in &s.hard {
        let Some(value) = labels.get(&h.c.topology_key) else { return Some(REASON_MISSING_LABEL) };
        let matching = h.counts.get(value).copied().unwrap_or(0);
        let skew = matching + h.self_match as i64 - h.min();
        if skew > h.c.max_skew as i64 {
            return Some(REASON_CONSTRAINTS);
        }
    }
    None
}
