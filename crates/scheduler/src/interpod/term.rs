//! One pod affinity term as the scheduler evaluates it (Kubernetes' `framework.AffinityTerm`): the label
//! selector with the owner's `matchLabelKeys` / `mismatchLabelKeys` merged in, the namespaces it looks in
//! and its namespace selector, and the topology key; plus reading a pod's four kinds of terms.

use std::collections::{BTreeMap, BTreeSet};

use navarch_api::selector::{Requirement, Selector};
use navarch_api::v1::{
    LabelSelector, LabelSelectorRequirement, Pod, PodAffinityTerm, WeightedPodAffinityTerm,
};

pub type Labels = BTreeMap<String, String>;

/// The four places a pod carries inter-pod terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    RequiredAffinity = 0,
    RequiredAntiAffinity = 1,
    PreferredAffinity = 2,
    PreferredAntiAffinity = 3,
}

impl Kind {
    pub const ALL: [Kind; 4] = [
        Kind::RequiredAffinity,
        Kind::RequiredAntiAffinity,
        Kind::PreferredAffinity,
        Kind::PreferredAntiAffinity,
    ];
}

/// A processed `PodAffinityTerm`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Term {
    /// `None`: the term has no (or an invalid) label selector and matches no pod.
    pub selector: Option<Selector>,
    /// Namespaces listed by name (or the owner's own when neither `namespaces` nor `namespaceSelector` is set).
    pub namespaces: BTreeSet<String>,
    /// `None` matches no namespace; an empty selector matches every namespace.
    pub namespace_selector: Option<Selector>,
    pub topology_key: String,
}

fn labels_of(pod: &Pod) -> &Labels {
    static EMPTY: Labels = BTreeMap::new();
    pod.metadata.as_ref().map(|m| &m.labels).unwrap_or(&EMPTY)
}

fn namespace_of(pod: &Pod) -> &str {
    pod.metadata.as_ref().map(|m| m.namespace.as_str()).unwrap_or("")
}

impl Term {
    /// The term as `owner` declares it. The owner's values of `matchLabelKeys` are added as `key in (value)`
    /// and of `mismatchLabelKeys` as `key notin (value)` (keys the owner lacks are ignored; a term without a
    /// label selector stays match-nothing), as Kubernetes' api-server merges them at pod creation.
    pub fn new(owner: &Pod, t: &PodAffinityTerm) -> Term {
        let own = labels_of(owner);
        let selector = t.label_selector.as_ref().and_then(|ls| {
            let mut ls: LabelSelector = ls.clone();
            for (keys, op) in [(&t.match_label_keys, "In"), (&t.mismatch_label_keys, "NotIn")] {
                for k in keys {
                    if let Some(v) = own.get(k) {
                        ls.match_expressions.push(LabelSelectorRequirement {
                            key: k.clone(),
                            operator: op.into(),
                            values: vec![v.clone()],
                        });
                    }
                }
            }
            Selector::from_label_selector(Some(&ls)).ok()
        });
        let namespaces = if t.namespaces.is_empty() && t.namespace_selector.is_none() {
            BTreeSet::from([namespace_of(owner).to_string()])
        } else {
            t.namespaces.iter().cloned().collect()
        };
        let namespace_selector =
            t.namespace_selector.as_ref().and_then(|s| Selector::from_label_selector(Some(s)).ok());
        Term { selector, namespaces, namespace_selector, topology_key: t.topology_key.clone() }
    }

    /// Whether the term selects a pod in namespace `ns` (whose labels are `ns_labels`) with `labels`.
    pub fn matches(&self, ns: &str, ns_labels: &Labels, labels: &Labels) -> bool {
        let in_ns = self.namespaces.contains(ns)
            || self.namespace_selector.as_ref().is_some_and(|s| s.matches(ns_labels));
        in_ns && self.selector.as_ref().is_some_and(|s| s.matches(labels))
    }

    /// As [`Term::matches`] for a pod.
    pub fn matches_pod(&self, pod: &Pod, ns_labels: &Labels) -> bool {
        self.matches(namespace_of(pod), ns_labels, labels_of(pod))
    }

    /// A string equal for equal terms (requirements in a canonical order): the key grouping identical terms.
    pub fn canonical(&self) -> String {
        let sorted = |s: &Selector| {
            let mut parts: Vec<String> =
                s.0.iter()
                    .map(|r| match r {
                        Requirement::In(k, vs) | Requirement::NotIn(k, vs) => {
                            let mut vs = vs.clone();
                            vs.sort();
                            vs.dedup();
                            let r = if matches!(r, Requirement::In(..)) {
                                Requirement::In(k.clone(), vs)
                            } else {
                                Requirement::NotIn(k.clone(), vs)
                            };
                            r.to_string()
                        }
                        r => r.to_string(),
                    })
                    .collect();
            parts.sort();
            parts.dedup();
            parts.join(",")
        };
        let opt = |s: &Option<Selector>| {
            s.as_ref().map(|s| format!("[{}]", sorted(s))).unwrap_or_else(|| "-".into())
        };
        let ns: Vec<&str> = self.namespaces.iter().map(String::as_str).collect();
        format!(
            "{}\n{}\n{}\n{}",
            self.topology_key,
            ns.join(","),
            opt(&self.namespace_selector),
            opt(&self.selector)
        )
    }
}

/// A term with its weight (required terms weigh 1 where they are counted).
#[derive(Debug, Clone)]
pub struct Weighted {
    pub weight: i64,
    pub term: Term,
}

fn affinity(pod: &Pod) -> Option<&navarch_api::v1::Affinity> {
    pod.spec.as_ref().and_then(|s| s.affinity.as_ref())
}

/// Whether the pod declares any inter-pod term at all.
pub fn has_terms(pod: &Pod) -> bool {
    affinity(pod).is_some_and(|a| a.pod_affinity.is_some() || a.pod_anti_affinity.is_some())
}

/// The pod's terms of `kind`, processed (required ones with weight 1).
pub fn terms(pod: &Pod, kind: Kind) -> Vec<Weighted> {
    let Some(a) = affinity(pod) else { return Vec::new() };
    let (aff, anti) = (a.pod_affinity.as_ref(), a.pod_anti_affinity.as_ref());
    let required = |ts: Option<&Vec<PodAffinityTerm>>| -> Vec<Weighted> {
        ts.into_iter().flatten().map(|t| Weighted { weight: 1, term: Term::new(pod, t) }).collect()
    };
    let preferred = |ts: Option<&Vec<WeightedPodAffinityTerm>>| -> Vec<Weighted> {
        ts.into_iter()
            .flatten()
            .filter_map(|w| {
                let t = w.pod_affinity_term.as_ref()?;
                Some(Weighted { weight: w.weight as i64, term: Term::new(pod, t) })
            })
            .collect()
    };
    match kind {
        Kind::RequiredAffinity => {
            required(aff.map(|p| &p.required_during_scheduling_ignored_during_execution))
        }
        Kind::RequiredAntiAffinity => {
            required(anti.map(|p| &p.required_during_scheduling_ignored_during_execution))
        }
        Kind::PreferredAffinity => {
            preferred(aff.map(|p| &p.preferred_during_scheduling_ignored_during_execution))
        }
        Kind::PreferredAntiAffinity => {
            preferred(anti.map(|p| &p.preferred_during_scheduling_ignored_during_execution))
        }
    }
}

pub(crate) fn pod_labels(pod: &Pod) -> &Labels {
    labels_of(pod)
}

pub(crate) fn pod_namespace(pod: &Pod) -> &str {
    namespace_of(pod)
}
