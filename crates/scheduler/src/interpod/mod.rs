//! Inter-pod affinity and anti-affinity (Kubernetes' InterPodAffinity plugin): the pre-filter state for
//! one pod ([`State`], kept in the [`Cycle`]), the filter with Kubernetes' reasons, and the score.
//!
//! Required terms, on any topology key: the pod's affinity needs, on the node's domain of each term, a
//! pod matching all its terms (or, the first of a self-affine group, none anywhere and the pod matching
//! them itself); its anti-affinity forbids domains holding a matching pod; and an existing pod's required
//! anti-affinity term matching the pod forbids that pod's domain (symmetry). Preferred terms score: the
//! pod's own (weight per matching pod in the domain, minus for anti-affinity), existing pods' preferred
//! terms matching the pod, and existing pods' required affinity terms (weight `hardPodAffinityWeight`, 1).
//! Terms see namespaces by name or by `namespaceSelector` (the cache keeps Namespace labels), and merge
//! the owner's `matchLabelKeys` / `mismatchLabelKeys` into the label selector.
//!
//! Cost: the pod's own terms select pods through the cache's label index; the existing pods' terms are
//! read from [`TermIndex`] (identical terms grouped, with counts per topology domain). Per node, filter
//! and score are map lookups.

mod index;
mod memo;
mod term;

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::sync::LazyLock;

use navarch_api::v1::Pod;

use crate::cache::{Cache, Namespaces};
use crate::config::InterPodAffinityArgs;
use crate::cycle::Cycle;
use crate::node_info::NodeInfo;

pub use index::{Group, TermIndex};
pub use memo::{Layered, SelectedCounts};
pub use term::{Kind, Labels, Term, Weighted, has_terms, terms};

pub const REASON_AFFINITY: &str = "node(s) didn't match pod affinity rules";
pub const REASON_ANTI_AFFINITY: &str = "node(s) didn't match pod anti-affinity rules";
pub const REASON_EXISTING_ANTI_AFFINITY: &str = "node(s) didn't satisfy existing pods anti-affinity rules";

/// The weight of an existing pod's required affinity term matching the incoming pod, in scoring
/// (Kubernetes' `hardPodAffinityWeight` default).
pub const HARD_POD_AFFINITY_WEIGHT: i64 = 1;

static NO_LABELS: LazyLock<Labels> = LazyLock::new(Labels::new);

/// Topology key → topology value → count.
pub type Counts = HashMap<String, HashMap<String, i64>>;

/// Adds `by` to the count of `value`, dropping counts that reach 0 (allocates only for a new value).
pub(crate) fn adjust(values: &mut HashMap<String, i64>, value: &str, by: i64) {
    let c = match values.get_mut(value) {
        Some(c) => c,
        None => values.entry(value.to_string()).or_default(),
    };
    *c += by;
    if *c == 0 {
        values.remove(value);
    }
}

fn bump(counts: &mut Counts, key: &str, value: &str, by: i64) {
    if by == 0 {
        return;
    }
    let values = match counts.get_mut(key) {
        Some(v) => v,
        None => counts.entry(key.to_string()).or_default(),
    };
    adjust(values, value, by);
    if values.is_empty() {
        counts.remove(key);
    }
}

fn get(counts: &Counts, key: &str, value: &str) -> i64 {
    counts.get(key).and_then(|m| m.get(value)).copied().unwrap_or(0)
}

fn node_labels(node: &NodeInfo) -> &Labels {
    node.node.metadata.as_ref().map(|m| &m.labels).unwrap_or(&NO_LABELS)
}

/// The incoming pod's term with its `namespaceSelector` resolved to namespace names (an empty selector,
/// every namespace, is kept), as Kubernetes merges it before looking for pods.
fn resolve(mut t: Term, cache: &Cache) -> Term {
    if let Some(sel) = t.namespace_selector.as_ref().filter(|s| !s.is_empty()) {
        t.namespaces.extend(cache.namespaces().filter(|(_, l)| sel.matches(l)).map(|(n, _)| n.to_string()));
        t.namespace_selector = None;
    }
    t
}

/// Calls `f` with each placed pod a resolved term selects and its node's labels (pods on unknown nodes
/// skipped).
fn for_selected(t: &Term, cache: &Cache, mut f: impl FnMut(&Pod, &Labels)) {
    let Some(sel) = t.selector.as_ref() else { return };
    let ns: Vec<String> = t.namespaces.iter().cloned().collect();
    let scope = if t.namespace_selector.is_some() { Namespaces::All } else { Namespaces::These(&ns) };
    for (p, n) in cache.index().select(scope, sel) {
        if let Some(node) = cache.node(n) {
            f(p, node_labels(node));
        }
    }
}

/// Domain counts of the placed pods one resolved term selects, shared through the cache's memo.
fn selected_counts(t: &Term, cache: &Cache) -> memo::DomainCounts {
    cache.selected().get_or_compute(t, false, || {
        let mut counts = HashMap::new();
        for_selected(t, cache, |_, nl| {
            if let Some(v) = nl.get(&t.topology_key) {
                adjust(&mut counts, v, 1);
            }
        });
        counts
    })
}

/// The pre-filter state of one pod (Kubernetes' preFilterState of InterPodAffinity).
#[derive(Debug, Clone, Default)]
pub struct State {
    namespace: String,
    labels: Labels,
    /// The labels of the pod's namespace (for existing pods' namespace selectors).
    ns_labels: Labels,
    affinity: Vec<Term>,
    anti_affinity: Vec<Term>,
    /// Domains holding pods that match all the pod's required affinity terms (one per term).
    affinity_counts: Layered,
    /// Domains holding pods that match one of the pod's required anti-affinity terms.
    anti_affinity_counts: Layered,
    /// Domains of existing pods whose required anti-affinity terms match the pod.
    existing_anti_counts: Layered,
}

impl State {
    pub fn new(pod: &Pod, cache: &Cache) -> State {
        let namespace = term::pod_namespace(pod).to_string();
        let labels = term::pod_labels(pod).clone();
        let ns_labels = cache.namespace_labels(&namespace).cloned().unwrap_or_default();
        let mut existing_anti_counts = Layered::default();
        for g in cache.terms().groups(Kind::RequiredAntiAffinity) {
            if g.term.matches(&namespace, &ns_labels, &labels) {
                existing_anti_counts.add_base(&g.term.topology_key, g.counts.clone());
            }
        }
        let own = |kind| terms(pod, kind).into_iter().map(|w| resolve(w.term, cache)).collect::<Vec<_>>();
        let (affinity, anti_affinity) = (own(Kind::RequiredAffinity), own(Kind::RequiredAntiAffinity));
        let affinity_counts = match affinity.as_slice() {
            [] => Layered::default(),
            // One term (the usual case): its counts are shared with every pod carrying it.
            [t] => {
                let mut l = Layered::default();
                l.add_base(&t.topology_key, selected_counts(t, cache));
                l
            }
            [first, ..] => {
                let mut counts = Counts::new();
                for_selected(first, cache, |p, nl| {
                    if affinity.iter().all(|t| t.matches_pod(p, &NO_LABELS)) {
                        for t in &affinity {
                            if let Some(v) = nl.get(&t.topology_key) {
                                bump(&mut counts, &t.topology_key, v, 1);
                            }
                        }
                    }
                });
                Layered::from_counts(counts)
            }
        };
        let mut anti_affinity_counts = Layered::default();
        for t in &anti_affinity {
            anti_affinity_counts.add_base(&t.topology_key, selected_counts(t, cache));
        }
        State {
            namespace,
            labels,
            ns_labels,
            affinity,
            anti_affinity,
            affinity_counts,
            anti_affinity_counts,
            existing_anti_counts,
        }
    }

    /// Counts `pod` as placed on `node` (Kubernetes' AddPod: a nominated pod).
    pub fn add_pod(&mut self, pod: &Pod, node: &NodeInfo) {
        self.update(pod, node, 1);
    }

    /// Stops counting `pod` on `node` (Kubernetes' RemovePod: a preemption victim).
    pub fn remove_pod(&mut self, pod: &Pod, node: &NodeInfo) {
        self.update(pod, node, -1);
    }

    fn update(&mut self, pod: &Pod, node: &NodeInfo, by: i64) {
        let nl = node_labels(node);
        for w in terms(pod, Kind::RequiredAntiAffinity) {
            if w.term.matches(&self.namespace, &self.ns_labels, &self.labels)
                && let Some(v) = nl.get(&w.term.topology_key)
            {
                self.existing_anti_counts.bump(&w.term.topology_key, v, by);
            }
        }
        if !self.affinity.is_empty() && self.affinity.iter().all(|t| t.matches_pod(pod, &NO_LABELS)) {
            for t in &self.affinity {
                if let Some(v) = nl.get(&t.topology_key) {
                    self.affinity_counts.bump(&t.topology_key, v, by);
                }
            }
        }
        for t in &self.anti_affinity {
            if t.matches_pod(pod, &NO_LABELS)
                && let Some(v) = nl.get(&t.topology_key)
            {
                self.anti_affinity_counts.bump(&t.topology_key, v, by);
            }
        }
    }

    /// Whether the filter has anything to check (Kubernetes skips the plugin otherwise).
    pub fn is_empty(&self) -> bool {
        self.affinity.is_empty() && self.anti_affinity.is_empty() && self.existing_anti_counts.is_empty()
    }

    fn satisfies_affinity(&self, nl: &Labels) -> bool {
        let mut pods_exist = true;
        for t in &self.affinity {
            let Some(v) = nl.get(&t.topology_key) else { return false };
            if self.affinity_counts.get(&t.topology_key, v) <= 0 {
                pods_exist = false;
            }
        }
        // The first pod of a group with affinity to itself: no pod anywhere matches its terms, it
        // matches them itself, and the node has every topology key.
        pods_exist
            || (self.affinity_counts.is_empty()
                && self.affinity.iter().all(|t| t.matches(&self.namespace, &self.ns_labels, &self.labels)))
    }

    fn satisfies_anti_affinity(&self, nl: &Labels) -> bool {
        self.anti_affinity_counts.is_empty()
            || !self.anti_affinity.iter().any(|t| {
                nl.get(&t.topology_key).is_some_and(|v| self.anti_affinity_counts.get(&t.topology_key, v) > 0)
            })
    }

    fn satisfies_existing_anti_affinity(&self, nl: &Labels) -> bool {
        self.existing_anti_counts.is_empty()
            || !nl.iter().any(|(k, v)| self.existing_anti_counts.get(k, v) > 0)
    }
}

/// Why the cycle's pod cannot go to `node` for inter-pod (anti-)affinity, in Kubernetes' words (the first
/// failing check, as Kubernetes reports one), or `None`.
pub fn filter(cycle: &Cycle, node: &NodeInfo) -> Option<&'static str> {
    check(&cycle.interpod, node)
}

/// [`filter`] against a given state (preemption checks a state with victims removed).
pub fn check(s: &State, node: &NodeInfo) -> Option<&'static str> {
    if s.is_empty() {
        return None;
    }
    let nl = node_labels(node);
    if !s.satisfies_affinity(nl) {
        Some(REASON_AFFINITY)
    } else if !s.satisfies_anti_affinity(nl) {
        Some(REASON_ANTI_AFFINITY)
    } else if !s.satisfies_existing_anti_affinity(nl) {
        Some(REASON_EXISTING_ANTI_AFFINITY)
    } else {
        None
    }
}

/// Whether the pod has a term with a `namespaceSelector` (a Namespace's labels changing may change where
/// it fits).
pub fn selects_namespaces_by_label(pod: &Pod) -> bool {
    Kind::ALL.iter().any(|&k| terms(pod, k).iter().any(|w| w.term.namespace_selector.is_some()))
}

/// Topology key → value → raw score of a node in that domain (Kubernetes' PreScore of InterPodAffinity),
/// with the plugin's args (`hardPodAffinityWeight`, `ignorePreferredTermsOfExistingPods`).
pub fn topology_scores(pod: &Pod, cache: &Cache, args: &InterPodAffinityArgs) -> Counts {
    let ns = term::pod_namespace(pod);
    let labels = term::pod_labels(pod);
    let ns_labels = cache.namespace_labels(ns).unwrap_or(&NO_LABELS);
    let mut scores = Counts::new();
    // The pod's preferred terms, against the pods they select.
    for (kind, sign) in [(Kind::PreferredAffinity, 1), (Kind::PreferredAntiAffinity, -1)] {
        for w in terms(pod, kind) {
            let t = resolve(w.term, cache);
            for_selected(&t, cache, |_, nl| {
                if let Some(v) = nl.get(&t.topology_key) {
                    bump(&mut scores, &t.topology_key, v, sign * w.weight);
                }
            });
        }
    }
    // Existing pods' terms that select the pod.
    let hard = i64::from(args.hard_pod_affinity_weight);
    for (kind, sign) in
        [(Kind::RequiredAffinity, hard), (Kind::PreferredAffinity, 1), (Kind::PreferredAntiAffinity, -1)]
    {
        if sign == 0 || (kind != Kind::RequiredAffinity && args.ignore_preferred_terms_of_existing_pods) {
            continue;
        }
        for g in cache.terms().groups(kind) {
            if g.term.matches(ns, ns_labels, labels) {
                let w = if kind == Kind::RequiredAffinity { sign } else { sign * g.weight };
                for (v, c) in g.counts.iter() {
                    bump(&mut scores, &g.term.topology_key, v, w * c);
                }
            }
        }
    }
    scores
}

/// Each node's InterPodAffinity score, normalized as Kubernetes does: `100 × (raw − min) / (max − min)`
/// over `nodes` (all 0 when they are equal).
pub fn score(cycle: &Cycle, nodes: &[&NodeInfo], args: &InterPodAffinityArgs) -> Vec<i64> {
    let scores = topology_scores(cycle.pod, cycle.cache, args);
    let raw: Vec<i64> = nodes
        .iter()
        .map(|n| {
            let nl = node_labels(n);
            scores.iter().map(|(k, vals)| nl.get(k).and_then(|v| vals.get(v)).copied().unwrap_or(0)).sum()
        })
        .collect();
    normalize(&raw)
}

/// Kubernetes' NormalizeScore of InterPodAffinity.
pub fn normalize(raw: &[i64]) -> Vec<i64> {
    let (Some(&min), Some(&max)) = (raw.iter().min(), raw.iter().max()) else { return Vec::new() };
    raw.iter()
        .map(|&s| {
            if max > min {
                (crate::scores::MAX as f64 * ((s - min) as f64 / (max - min) as f64)) as i64
            } else {
                0
            }
        })
        .collect()
}
