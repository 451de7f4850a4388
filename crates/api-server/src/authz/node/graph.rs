//! What each node may see: the Node authorizer's graph (Kubernetes' `node.Graph` and its populator),
//! kept incrementally from the api-server's Pod store.
//!
//! Kubernetes keeps a directed graph `secret → pod → node` and walks it; every relationship navarch
//! serves goes through a pod (pod → node; secret, configmap, ServiceAccount and PVC → pod → node), so
//! the graph here is flattened into an index: for each object (type, namespace, name), the nodes it
//! reaches and through how many pods. A decision is one read lock and three hash lookups; a pod change
//! touches only that pod's references. PersistentVolumes reach a node through the claim their `claimRef`
//! names (Kubernetes' `pv → pvc` edge), kept from the api-server's PersistentVolume store
//! ([`NodeGraph::on_volume_change`]) as a map volume → claim and resolved when asked. The secrets of
//! persistent volumes (PV → secret) and VolumeAttachments (→ node) have their types already; they get
//! entries once navarch's volumes use them.
//!
//! Only pods bound to a node (`spec.nodeName` set) count. A mirror pod (annotated
//! `kubernetes.io/config.mirror`) reaches its node but gives it nothing else, as in Kubernetes: a node
//! must never grant itself access to objects by creating a pod.

use std::collections::HashMap;
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use navarch_api::v1::{PersistentVolume, Pod};
use navarch_api::{Object, Resource};

use super::references::PodReferences;
use crate::local_store::{OnChange, StoreChange};

/// `kubernetes.io/config.mirror`: the pod mirrors a static pod of the kubelet.
pub const MIRROR_POD_ANNOTATION: &str = "kubernetes.io/config.mirror";

/// The kinds of objects the graph relates to nodes (Kubernetes' vertex types).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ObjectType {
    Pod,
    Secret,
    ConfigMap,
    ServiceAccount,
    PersistentVolumeClaim,
    PersistentVolume,
    VolumeAttachment,
}

impl ObjectType {
    const COUNT: usize = 7;

    fn index(self) -> usize {
        self as usize
    }

    /// Kubernetes' vertex type name (`secret`, `pvc`, `serviceAccount`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            ObjectType::Pod => "pod",
            ObjectType::Secret => "secret",
            ObjectType::ConfigMap => "configmap",
            ObjectType::ServiceAccount => "serviceAccount",
            ObjectType::PersistentVolumeClaim => "pvc",
            ObjectType::PersistentVolume => "pv",
            ObjectType::VolumeAttachment => "volumeattachment",
        }
    }
}

/// node → number of pods through which the object reaches it.
type Reach = HashMap<Arc<str>, u32>;
/// namespace → name → reach.
type ByName = HashMap<String, HashMap<String, Reach>>;

/// One bound pod as the graph last saw it.
#[derive(Debug, PartialEq, Eq)]
struct PodEntry {
    uid: String,
    node: Arc<str>,
    /// Everything the pod gives its node, the pod itself included.
    edges: Vec<(ObjectType, String)>,
}

#[derive(Default)]
struct Inner {
    /// (namespace, name) → the pod's entry.
    pods: HashMap<(String, String), PodEntry>,
    /// Per [`ObjectType`]: namespace → name → nodes reached.
    reach: [ByName; ObjectType::COUNT],
    /// Interned node names.
    nodes: HashMap<Arc<str>, u32>,
    /// PersistentVolume name → the claim (namespace, name) its `claimRef` names.
    volumes: HashMap<String, (String, String)>,
}

/// The relationships between nodes and the objects their pods use. Cheap to share (`Arc`), safe to
/// read from every request while the Pod store's task updates it.
#[derive(Default)]
pub struct NodeGraph {
    inner: RwLock<Inner>,
}

impl NodeGraph {
    pub fn new() -> NodeGraph {
        NodeGraph::default()
    }

    /// Applies one change of a Pod store: a relist replaces everything, an upsert (re)computes the
    /// pod's references, a delete removes them. Objects of other kinds are ignored.
    pub fn apply(&self, change: StoreChange<'_>) {
        match change {
            StoreChange::Reset(objects) => {
                // Built aside, swapped in: readers are not held up by a relist.
                let mut fresh = Inner::default();
                for o in objects {
                    if let Object::Pod(pod) = o.as_ref() {
                        fresh.upsert(pod);
                    }
                }
                let mut inner = self.write();
                fresh.volumes = std::mem::take(&mut inner.volumes);
                *inner = fresh;
            }
            StoreChange::Upsert(o) => {
                if let Object::Pod(pod) = o.as_ref() {
                    self.write().upsert(pod);
                }
            }
            StoreChange::Delete(o) => {
                if let Object::Pod(pod) = o.as_ref() {
                    let m = pod.meta();
                    self.write().remove(&m.namespace, &m.name);
                }
            }
        }
    }

    /// Applies one change of a PersistentVolume store: a relist replaces every volume → claim edge, an
    /// upsert sets the volume's, a delete removes it. Objects of other kinds are ignored.
    pub fn apply_volumes(&self, change: StoreChange<'_>) {
        match change {
            StoreChange::Reset(objects) => {
                let fresh: HashMap<String, (String, String)> = objects
                    .iter()
                    .filter_map(|o| match o.as_ref() {
                        Object::PersistentVolume(pv) => {
                            volume_edge(pv).map(|claim| (pv.meta().name.clone(), claim))
                        }
                        _ => None,
                    })
                    .collect();
                self.write().volumes = fresh;
            }
            StoreChange::Upsert(o) => {
                if let Object::PersistentVolume(pv) = o.as_ref() {
                    self.upsert_volume(pv);
                }
            }
            StoreChange::Delete(o) => {
                if let Object::PersistentVolume(pv) = o.as_ref() {
                    self.write().volumes.remove(&pv.meta().name);
                }
            }
        }
    }

    /// Adds or updates one PersistentVolume's edge to its claim (none without a `claimRef`).
    pub fn upsert_volume(&self, pv: &PersistentVolume) {
        let name = pv.meta().name.clone();
        let mut inner = self.write();
        match volume_edge(pv) {
            Some(claim) => inner.volumes.insert(name, claim),
            None => inner.volumes.remove(&name),
        };
    }

    /// The callback to hand a PersistentVolume [`crate::local_store::LocalStore`].
    pub fn on_volume_change(self: &Arc<Self>) -> OnChange {
        let graph = self.clone();
        Arc::new(move |change| graph.apply_volumes(change))
    }

    /// Adds or updates one pod (what [`NodeGraph::apply`] does for an upsert).
    pub fn upsert_pod(&self, pod: &Pod) {
        self.write().upsert(pod);
    }

    /// Removes one pod.
    pub fn delete_pod(&self, namespace: &str, name: &str) {
        self.write().remove(namespace, name);
    }

    /// The callback to hand a Pod [`crate::local_store::LocalStore`]:
    /// `LocalStore::start(&state, "Pod", "", Some(graph.on_change()))`.
    pub fn on_change(self: &Arc<Self>) -> OnChange {
        let graph = self.clone();
        Arc::new(move |change| graph.apply(change))
    }

    /// Whether the object reaches `node` through a pod bound to it.
    /// (PersistentVolumes are cluster-scoped: `namespace` is ignored; they reach the nodes of the
    /// claim their `claimRef` names.)
    pub fn has_path(&self, node: &str, object: ObjectType, namespace: &str, name: &str) -> bool {
        let inner = self.read();
        if object == ObjectType::PersistentVolume {
            let Some((claim_namespace, claim)) = inner.volumes.get(name) else { return false };
            return inner.reaches(node, ObjectType::PersistentVolumeClaim, claim_namespace, claim);
        }
        inner.reaches(node, object, namespace, name)
    }

    /// How many bound pods the graph holds.
    pub fn pod_count(&self) -> usize {
        self.read().pods.len()
    }

    /// How many nodes have at least one pod.
    pub fn node_count(&self) -> usize {
        self.read().nodes.len()
    }

    fn read(&self) -> RwLockReadGuard<'_, Inner> {
        self.inner.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, Inner> {
        self.inner.write().unwrap_or_else(|p| p.into_inner())
    }
}

/// What a bound pod gives its node: the pod, and unless it is a mirror pod its ServiceAccount,
/// secrets, configmaps and claims.
fn edges(pod: &Pod, name: &str) -> Vec<(ObjectType, String)> {
    let mut edges = vec![(ObjectType::Pod, name.to_string())];
    let mirror = pod.metadata.as_ref().is_some_and(|m| m.annotations.contains_key(MIRROR_POD_ANNOTATION));
    if mirror {
        return edges;
    }
    let refs = PodReferences::of(pod);
    if let Some(sa) = refs.service_account {
        edges.push((ObjectType::ServiceAccount, sa));
    }
    edges.extend(refs.secrets.into_iter().map(|s| (ObjectType::Secret, s)));
    edges.extend(refs.config_maps.into_iter().map(|c| (ObjectType::ConfigMap, c)));
    edges.extend(refs.claims.into_iter().map(|c| (ObjectType::PersistentVolumeClaim, c)));
    edges
}

/// The claim (namespace, name) a volume's `claimRef` names, if it names one.
fn volume_edge(pv: &PersistentVolume) -> Option<(String, String)> {
    let r = pv.spec.as_ref()?.claim_ref.as_ref()?;
    (!r.name.is_empty() && !r.namespace.is_empty()).then(|| (r.namespace.clone(), r.name.clone()))
}

impl Inner {
    fn reaches(&self, node: &str, object: ObjectType, namespace: &str, name: &str) -> bool {
        self.reach[object.index()]
            .get(namespace)
            .and_then(|names| names.get(name))
            .is_some_and(|reach| reach.contains_key(node))
    }

    fn upsert(&mut self, pod: &Pod) {
        let Some(meta) = pod.metadata.as_ref() else {
            return;
        };
        let node_name = pod.spec.as_ref().map(|s| s.node_name.as_str()).unwrap_or_default();
        let key = (meta.namespace.clone(), meta.name.clone());
        if node_name.is_empty() {
            // Not bound (yet): it gives no node anything. (A bound pod cannot become unbound; a pod
            // recreated under the same name is.)
            self.remove(&key.0, &key.1);
            return;
        }
        let new_edges = edges(pod, &meta.name);
        if let Some(old) = self.pods.get(&key)
            && old.uid == meta.uid
            && &*old.node == node_name
            && old.edges == new_edges
        {
            // Status updates, the common case: nothing the graph holds changed.
            return;
        }
        self.remove(&key.0, &key.1);
        let node = self.intern(node_name);
        for (ty, name) in &new_edges {
            let reach =
                self.reach[ty.index()].entry(key.0.clone()).or_default().entry(name.clone()).or_default();
            *reach.entry(node.clone()).or_insert(0) += 1;
        }
        self.pods.insert(key, PodEntry { uid: meta.uid.clone(), node, edges: new_edges });
    }

    fn remove(&mut self, namespace: &str, name: &str) {
        let Some(entry) = self.pods.remove(&(namespace.to_string(), name.to_string())) else {
            return;
        };
        for (ty, object) in &entry.edges {
            let by_ns = &mut self.reach[ty.index()];
            let Some(names) = by_ns.get_mut(namespace) else {
                continue;
            };
            if let Some(reach) = names.get_mut(object.as_str()) {
                if let Some(count) = reach.get_mut(&entry.node) {
                    *count -= 1;
                    if *count == 0 {
                        reach.remove(&entry.node);
                    }
                }
                if reach.is_empty() {
                    names.remove(object.as_str());
                }
            }
            if names.is_empty() {
                by_ns.remove(namespace);
            }
        }
        self.release(&entry.node);
    }

    /// The shared name of `node`, counting one more pod on it.
    fn intern(&mut self, node: &str) -> Arc<str> {
        let name = match self.nodes.get_key_value(node) {
            Some((name, _)) => name.clone(),
            None => Arc::from(node),
        };
        *self.nodes.entry(name.clone()).or_insert(0) += 1;
        name
    }

    fn release(&mut self, node: &str) {
        if let Some(pods) = self.nodes.get_mut(node) {
            *pods -= 1;
            if *pods == 0 {
                self.nodes.remove(node);
            }
        }
    }
}
