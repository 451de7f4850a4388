//! The placed pods' inter-pod terms, grouped: pods carrying an identical term (a Deployment's replicas)
//! share one [`Group`] holding, per value of the term's topology key, how many of them sit in that
//! domain. A decision then walks the distinct terms, not the pods — the existing pods' required
//! anti-affinity (filter) and their affinity terms (score) cost O(groups × domains).

use std::collections::HashMap;
use std::sync::Arc;

use navarch_api::v1::Pod;

use super::adjust;
use super::term::{Kind, Labels, Term, has_terms, terms};

/// Identical terms of one kind and weight, and where their owners are.
#[derive(Debug, Clone)]
pub struct Group {
    pub term: Term,
    pub weight: i64,
    /// Topology value (of `term.topology_key` on the owner's node) → how many terms sit there. Owners on
    /// nodes without the key are not counted, as Kubernetes ignores them.
    pub counts: Arc<HashMap<String, i64>>,
    /// Terms in the group, wherever they are.
    members: usize,
}

/// Every placed pod's terms, grouped by kind and identity.
#[derive(Debug, Default)]
pub struct TermIndex {
    /// By [`Kind`] as index: canonical key → group.
    groups: [HashMap<String, Group>; 4],
    /// Pod key → (kind, group key, topology value it counts under) for each of its terms.
    by_pod: HashMap<String, Vec<(Kind, String, Option<String>)>>,
}

impl TermIndex {
    /// The groups of `kind`.
    pub fn groups(&self, kind: Kind) -> impl Iterator<Item = &Group> {
        self.groups[kind as usize].values()
    }

    /// Counts `pod`'s terms (`key` is the pod's key) on a node with `node_labels`, replacing earlier ones.
    pub fn add(&mut self, key: &str, pod: &Pod, node_labels: &Labels) {
        self.remove(key);
        if !has_terms(pod) {
            return;
        }
        let mut mine = Vec::new();
        for kind in Kind::ALL {
            for w in terms(pod, kind) {
                let gkey = format!("{}\n{}", w.weight, w.term.canonical());
                let value = node_labels.get(&w.term.topology_key).cloned();
                let g = self.groups[kind as usize].entry(gkey.clone()).or_insert_with(|| Group {
                    term: w.term,
                    weight: w.weight,
                    counts: Arc::default(),
                    members: 0,
                });
                g.members += 1;
                if let Some(v) = &value {
                    adjust(Arc::make_mut(&mut g.counts), v, 1);
                }
                mine.push((kind, gkey, value));
            }
        }
        if !mine.is_empty() {
            self.by_pod.insert(key.to_string(), mine);
        }
    }

    /// Stops counting the pod `key`'s terms.
    pub fn remove(&mut self, key: &str) {
        let Some(mine) = self.by_pod.remove(key) else { return };
        for (kind, gkey, value) in mine {
            let groups = &mut self.groups[kind as usize];
            let Some(g) = groups.get_mut(&gkey) else { continue };
            g.members -= 1;
            if let Some(v) = value
                && g.counts.contains_key(&v)
            {
                adjust(Arc::make_mut(&mut g.counts), &v, -1);
            }
            if g.members == 0 {
                groups.remove(&gkey);
            }
        }
    }

    /// Whether the pod `key` has terms counted.
    pub fn has(&self, key: &str) -> bool {
        self.by_pod.contains_key(key)
    }
}
