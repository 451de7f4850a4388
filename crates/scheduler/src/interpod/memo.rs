//! Sharing the incoming pods' term counts: the pods of one Deployment carry identical required terms, so
//! the domain counts of the pods a (resolved) term selects are computed once, kept in the cache and
//! updated as pods are placed and forgotten ([`SelectedCounts`]); and a pod's pre-filter state holds
//! those counts, and the existing pods' grouped counts, by reference ([`Layered`]) rather than copying
//! them, so a decision no longer costs O(selected pods).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use navarch_api::v1::Pod;

use super::term::{Labels, Term};
use super::{Counts, NO_LABELS, adjust, bump, get};
use crate::node_info::terminating;

/// Topology value → count, shared between the cache and the states reading it.
pub type DomainCounts = Arc<HashMap<String, i64>>;

/// Beyond this many distinct terms the memo starts over (pending pods rarely carry more).
const MAX_TERMS: usize = 64;

/// Per resolved term (its canonical form): the term and the domain counts of the placed pods it selects.
/// Topology spreading shares it with `live` counts, which leave terminating pods out (as Kubernetes'
/// PodTopologySpread does; inter-pod affinity counts them).
#[derive(Debug, Default)]
pub struct SelectedCounts {
    terms: Mutex<HashMap<String, Entry>>,
}

#[derive(Debug)]
struct Entry {
    term: Term,
    live: bool,
    counts: DomainCounts,
}

impl SelectedCounts {
    /// The counts of `t` (a resolved term: namespaces by name, or every namespace), from `compute` the
    /// first time it is asked for.
    pub fn get_or_compute(
        &self,
        t: &Term,
        live: bool,
        compute: impl FnOnce() -> HashMap<String, i64>,
    ) -> DomainCounts {
        let key = format!("{live}\n{}", t.canonical());
        let mut terms = self.terms.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(e) = terms.get(&key) {
            return e.counts.clone();
        }
        if terms.len() >= MAX_TERMS {
            terms.clear();
        }
        let counts: DomainCounts = Arc::new(compute());
        terms.insert(key, Entry { term: t.clone(), live, counts: counts.clone() });
        counts
    }

    /// `pod` placed (`by` 1) or gone (`by` -1) on a node with `node_labels`.
    pub fn update(&mut self, pod: &Pod, node_labels: &Labels, by: i64) {
        let terms = self.terms.get_mut().unwrap_or_else(|e| e.into_inner());
        for Entry { term: t, live, counts } in terms.values_mut() {
            if let Some(v) = node_labels.get(&t.topology_key)
                && !(*live && terminating(pod))
                && t.matches_pod(pod, &NO_LABELS)
            {
                adjust(Arc::make_mut(counts), v, by);
            }
        }
    }

    /// Forgets every term (node labels or namespaces changed: domains and resolved terms may differ).
    pub fn clear(&mut self) {
        self.terms.get_mut().unwrap_or_else(|e| e.into_inner()).clear();
    }
}

/// Counts per topology key and value, as shared bases (read-only) plus the changes a preemption's
/// simulation made.
#[derive(Debug, Clone, Default)]
pub struct Layered {
    bases: Vec<(String, DomainCounts)>,
    delta: Counts,
    /// Sum of every count (bases and delta).
    total: i64,
}

impl Layered {
    pub fn add_base(&mut self, key: &str, counts: DomainCounts) {
        if !counts.is_empty() {
            self.total += counts.values().sum::<i64>();
            self.bases.push((key.to_string(), counts));
        }
    }

    pub fn from_counts(counts: Counts) -> Layered {
        let mut l = Layered::default();
        for (k, m) in counts {
            l.add_base(&k, Arc::new(m));
        }
        l
    }

    pub fn get(&self, key: &str, value: &str) -> i64 {
        let base: i64 = self.bases.iter().filter(|(k, _)| k == key).filter_map(|(_, m)| m.get(value)).sum();
        base + get(&self.delta, key, value)
    }

    pub fn bump(&mut self, key: &str, value: &str, by: i64) {
        self.total += by;
        bump(&mut self.delta, key, value, by);
    }

    /// No count anywhere.
    pub fn is_empty(&self) -> bool {
        self.total == 0
    }
}
