//! The scheduler's cache: the nodes, the pods counted against them (bound, or assumed while their bind
//! is in flight), and an index of those pods by namespace and label, so the inter-pod filters and
//! topology spreading find the pods a selector matches without walking every pod; the placed pods'
//! inter-pod terms grouped by identity ([`TermIndex`]); the Namespaces' labels (for terms'
//! `namespaceSelector`); and what the default topology spread constraints read (the configured
//! defaults, Services' and controllers' selectors).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use navarch_api::selector::{Requirement, Selector};
use navarch_api::v1::{Node, Pod};

use crate::interpod::{Labels, SelectedCounts, TermIndex};
use crate::node_info::{NodeInfo, NodeTable};
use crate::preemption::nominator::Nominator;

/// Nodes and the pods on them.
#[derive(Debug, Default)]
pub struct Cache {
    nodes: NodeTable,
    /// Where each bound or assumed pod is counted.
    placed: HashMap<String, String>,
    /// Every bound, unfinished pod (also those on nodes not seen yet).
    bound: HashMap<String, Arc<Pod>>,
    index: PodIndex,
    /// Pending pods nominated to nodes by preemption.
    nominated: Nominator,
    /// Default topology spread constraints and the Service/controller selectors they use.
    spread_defaults: crate::spread::Defaults,
    /// The placed pods' inter-pod affinity terms.
    terms: TermIndex,
    /// Namespace name → its labels.
    namespaces: HashMap<String, Labels>,
    /// Domain counts of the pods incoming pods' required terms select, shared by identical terms.
    selected: SelectedCounts,
    /// Topology key → the values the nodes have for it (computed when asked, dropped when a node is added,
    /// removed or relabelled).
    domains: std::sync::Mutex<HashMap<String, Arc<Vec<String>>>>,
}

impl Cache {
    pub fn nominated(&self) -> &Nominator {
        &self.nominated
    }

    pub fn nominated_mut(&mut self) -> &mut Nominator {
        &mut self.nominated
    }

    pub fn spread_defaults(&self) -> &crate::spread::Defaults {
        &self.spread_defaults
    }

    pub fn spread_defaults_mut(&mut self) -> &mut crate::spread::Defaults {
        &mut self.spread_defaults
    }

    pub fn nodes(&self) -> &NodeTable {
        &self.nodes
    }

    pub fn node(&self, name: &str) -> Option<&NodeInfo> {
        self.nodes.get(name)
    }

    pub fn index(&self) -> &PodIndex {
        &self.index
    }

    pub fn terms(&self) -> &TermIndex {
        &self.terms
    }

    pub fn selected(&self) -> &SelectedCounts {
        &self.selected
    }

    /// The distinct values the nodes have for label `key`.
    pub fn domains(&self, key: &str) -> Arc<Vec<String>> {
        let mut domains = self.domains.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(d) = domains.get(key) {
            return d.clone();
        }
        let mut values: Vec<String> = self
            .nodes
            .values()
            .filter_map(|n| n.node.metadata.as_ref().and_then(|m| m.labels.get(key)).cloned())
            .collect();
        values.sort();
        values.dedup();
        let values = Arc::new(values);
        domains.insert(key.to_string(), values.clone());
        values
    }

    fn nodes_changed(&mut self) {
        self.domains.get_mut().unwrap_or_else(|e| e.into_inner()).clear();
    }

    /// The labels of the namespace `name`, if it is known.
    pub fn namespace_labels(&self, name: &str) -> Option<&Labels> {
        self.namespaces.get(name)
    }

    /// Every known namespace with its labels.
    pub fn namespaces(&self) -> impl Iterator<Item = (&str, &Labels)> {
        self.namespaces.iter().map(|(n, l)| (n.as_str(), l))
    }

    pub fn upsert_namespace(&mut self, name: &str, labels: Labels) {
        if self.namespaces.get(name) != Some(&labels) {
            self.selected.clear();
        }
        self.namespaces.insert(name.to_string(), labels);
    }

    pub fn remove_namespace(&mut self, name: &str) {
        self.selected.clear();
        self.namespaces.remove(name);
    }

    /// Where the pod `key` is counted (bound or assumed), if anywhere.
    pub fn placed(&self, key: &str) -> Option<&str> {
        self.placed.get(key).map(String::as_str)
    }

    pub fn upsert_node(&mut self, n: Arc<Node>) {
        let name = n.metadata.as_ref().map(|m| m.name.clone()).unwrap_or_default();
        match self.nodes.get_mut(&name) {
            Some(info) => {
                let relabelled =
                    info.node.metadata.as_ref().map(|m| &m.labels) != n.metadata.as_ref().map(|m| &m.labels);
                info.set_node(n);
                if relabelled {
                    self.selected.clear();
                    self.domains.get_mut().unwrap_or_else(|e| e.into_inner()).clear();
                    // The pods' terms now count in other topology domains.
                    let labels = info.node.metadata.as_ref().map(|m| m.labels.clone()).unwrap_or_default();
                    for (key, pod) in &info.pods {
                        if self.terms.has(key) {
                            self.terms.add(key, pod, &labels);
                        }
                    }
                }
            }
            None => {
                self.nodes_changed();
                self.nodes.insert(NodeInfo::new(n));
                // Pods bound to this node before the node was seen.
                let early: Vec<(String, Arc<Pod>)> = self
                    .bound
                    .iter()
                    .filter(|(_, p)| p.spec.as_ref().is_some_and(|s| s.node_name == name))
                    .map(|(k, p)| (k.clone(), p.clone()))
                    .collect();
                for (key, pod) in early {
                    self.place(key, &name, pod);
                }
            }
        }
    }

    pub fn remove_node(&mut self, name: &str) {
        if let Some(info) = self.nodes.remove(name) {
            self.nodes_changed();
            let none = Labels::new();
            let labels = info.node.metadata.as_ref().map(|m| &m.labels).unwrap_or(&none);
            for (key, pod) in &info.pods {
                self.selected.update(pod, labels, -1);
                self.placed.remove(key);
                self.index.remove(key);
                self.terms.remove(key);
            }
        }
    }

    /// Counts `pod` on `node` (replacing wherever it was counted before).
    fn place(&mut self, key: String, node: &str, pod: Arc<Pod>) {
        self.forget(&key);
        if let Some(info) = self.nodes.get_mut(node) {
            info.add_pod(pod.clone());
            let none = Labels::new();
            let labels = info.node.metadata.as_ref().map(|m| &m.labels).unwrap_or(&none);
            self.terms.add(&key, &pod, labels);
            self.selected.update(&pod, labels, 1);
            self.index.insert(&key, pod, node);
            self.placed.insert(key, node.to_string());
        }
    }

    /// Counts the pod on `node` before its binding is written (so the next decision sees it).
    pub fn assume(&mut self, key: String, node: &str, pod: Arc<Pod>) {
        self.place(key, node, pod);
    }

    /// Stops counting the pod `key` anywhere (a failed bind, a deleted pod).
    pub fn forget(&mut self, key: &str) {
        if let Some(node) = self.placed.remove(key)
            && let Some(info) = self.nodes.get_mut(&node)
            && let Some(pod) = info.remove_pod(key)
            && let Some(labels) = info.node.metadata.as_ref().map(|m| &m.labels)
        {
            self.selected.update(&pod, labels, -1);
        }
        self.index.remove(key);
        self.terms.remove(key);
    }

    /// A pod bound to `node` as the watch shows it: counted there unless it has finished.
    pub fn bound(&mut self, key: String, node: &str, pod: Arc<Pod>, finished: bool) {
        self.forget(&key);
        if finished {
            self.bound.remove(&key);
        } else {
            self.bound.insert(key.clone(), pod.clone());
            self.place(key, node, pod);
        }
    }

    /// The pod is gone.
    pub fn delete(&mut self, key: &str) {
        self.bound.remove(key);
        self.forget(key);
    }
}

/// The placed pods by namespace and label.
#[derive(Debug, Default)]
pub struct PodIndex {
    /// pod key → (pod, node).
    pods: HashMap<String, (Arc<Pod>, String)>,
    /// namespace → pod keys.
    by_namespace: HashMap<String, HashSet<String>>,
    /// (namespace, label key, label value) → pod keys.
    by_label: HashMap<(String, String, String), HashSet<String>>,
}

fn labels(pod: &Pod) -> &BTreeMap<String, String> {
    static EMPTY: BTreeMap<String, String> = BTreeMap::new();
    pod.metadata.as_ref().map(|m| &m.labels).unwrap_or(&EMPTY)
}

fn namespace(pod: &Pod) -> &str {
    pod.metadata.as_ref().map(|m| m.namespace.as_str()).unwrap_or("")
}

/// Which namespaces a lookup covers.
#[derive(Debug, Clone, Copy)]
pub enum Namespaces<'a> {
    All,
    These(&'a [String]),
}

impl PodIndex {
    fn insert(&mut self, key: &str, pod: Arc<Pod>, node: &str) {
        self.remove(key);
        let ns = namespace(&pod).to_string();
        for (k, v) in labels(&pod) {
            self.by_label.entry((ns.clone(), k.clone(), v.clone())).or_default().insert(key.to_string());
        }
        self.by_namespace.entry(ns).or_default().insert(key.to_string());
        self.pods.insert(key.to_string(), (pod, node.to_string()));
    }

    fn remove(&mut self, key: &str) {
        let Some((pod, _)) = self.pods.remove(key) else { return };
        let ns = namespace(&pod).to_string();
        for (k, v) in labels(&pod) {
            let slot = (ns.clone(), k.clone(), v.clone());
            if let Some(set) = self.by_label.get_mut(&slot) {
                set.remove(key);
                if set.is_empty() {
                    self.by_label.remove(&slot);
                }
            }
        }
        if let Some(set) = self.by_namespace.get_mut(&ns) {
            set.remove(key);
            if set.is_empty() {
                self.by_namespace.remove(&ns);
            }
        }
    }

    pub fn len(&self) -> usize {
        self.pods.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pods.is_empty()
    }

    /// Every placed pod with its node.
    pub fn all(&self) -> impl Iterator<Item = (&Arc<Pod>, &str)> {
        self.pods.values().map(|(p, n)| (p, n.as_str()))
    }

    /// The placed pods in `namespaces` whose labels `selector` matches, with their nodes. Costs the size
    /// of the smallest candidate set: the pods with one of the selector's required label values (`=`,
    /// `in`), else the namespace's pods.
    pub fn select<'a>(
        &'a self,
        namespaces: Namespaces<'a>,
        selector: &'a Selector,
    ) -> impl Iterator<Item = (&'a Arc<Pod>, &'a str)> + 'a {
        let ns_list: Vec<&str> = match namespaces {
            Namespaces::These(list) => list.iter().map(String::as_str).collect(),
            Namespaces::All => self.by_namespace.keys().map(String::as_str).collect(),
        };
        let mut keys: Vec<&'a String> = Vec::new();
        for ns in ns_list {
            keys.extend(self.candidates(ns, selector));
        }
        keys.into_iter().filter_map(move |k| {
            let (p, n) = self.pods.get(k)?;
            selector.matches(labels(p)).then_some((p, n.as_str()))
        })
    }

    fn candidates<'a>(&'a self, ns: &str, selector: &Selector) -> Vec<&'a String> {
        let lookup = |k: &str, v: &str| self.by_label.get(&(ns.to_string(), k.to_string(), v.to_string()));
        let mut best: Option<Vec<&'a String>> = None;
        for r in &selector.0 {
            let set: Vec<&'a String> = match r {
                Requirement::Equals(k, v) => lookup(k, v).into_iter().flatten().collect(),
                Requirement::In(k, vs) => {
                    vs.iter().flat_map(|v| lookup(k, v).into_iter().flatten()).collect()
                }
                _ => continue,
            };
            if best.as_ref().is_none_or(|b| set.len() < b.len()) {
                best = Some(set);
            }
        }
        best.unwrap_or_else(|| self.by_namespace.get(ns).into_iter().flatten().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(ns: &str, name: &str, labels: &[(&str, &str)]) -> Arc<Pod> {
        let mut p = Pod::default();
        let m = p.metadata.get_or_insert_with(Default::default);
        m.namespace = ns.into();
        m.name = name.into();
        m.labels = labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Arc::new(p)
    }

    #[test]
    fn select_by_label_and_namespace() {
        let mut i = PodIndex::default();
        i.insert("a/web1", pod("a", "web1", &[("app", "web"), ("tier", "fe")]), "n1");
        i.insert("a/web2", pod("a", "web2", &[("app", "web")]), "n2");
        i.insert("b/web3", pod("b", "web3", &[("app", "web")]), "n2");
        i.insert("a/db", pod("a", "db", &[("app", "db")]), "n1");
        let names = |i: &PodIndex, ns: Namespaces, s: &str| {
            let sel = Selector::parse(s).unwrap();
            let mut v: Vec<String> = i
                .select(ns, &sel)
                .map(|(p, n)| format!("{}@{n}", p.metadata.as_ref().unwrap().name))
                .collect();
            v.sort();
            v
        };
        let a = ["a".to_string()];
        assert_eq!(names(&i, Namespaces::These(&a), "app=web"), ["web1@n1", "web2@n2"]);
        assert_eq!(names(&i, Namespaces::All, "app in (web,db),tier!=fe"), ["db@n1", "web2@n2", "web3@n2"]);
        assert_eq!(names(&i, Namespaces::These(&a), "tier"), ["web1@n1"]);
        assert_eq!(names(&i, Namespaces::These(&a), ""), ["db@n1", "web1@n1", "web2@n2"]);
        i.remove("a/web1");
        assert_eq!(names(&i, Namespaces::All, "app=web"), ["web2@n2", "web3@n2"]);
        i.insert("a/web2", pod("a", "web2", &[("app", "api")]), "n3");
        assert_eq!(names(&i, Namespaces::All, "app=web"), ["web3@n2"]);
        assert_eq!(names(&i, Namespaces::All, "app=api"), ["web2@n3"]);
    }
}
