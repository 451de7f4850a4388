//! The garbage collector: ownerReferences as a graph over the kinds that have owners or dependents.
//!
//! * A dependent whose owners are all gone is deleted (background propagation). Before deleting it
//!   the collector asks the api-server for each owner, so a stale cache never deletes anything
//!   that still has an owner.
//! * An owner deleted with `propagationPolicy: Orphan` (finalizer `orphan`) has its dependents'
//!   ownerReferences to it removed, then the finalizer.
//! * An owner deleted with `propagationPolicy: Foreground` (finalizer `foregroundDeletion`) has its
//!   dependents deleted (foreground too), and the finalizer is removed once none remains.
//!
//! The graph is rebuilt from the shared stores of those kinds whenever one changes ([`spawn`]); the
//! decisions ([`decide`]) are pure.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use futures::stream::BoxStream;
use navarch_api::Resource;
use navarch_api::v1::ObjectMeta;
use navarch_client::{Client, DeleteParams, SharedReflector, Store};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::run::Wiring;

pub const FINALIZER_ORPHAN: &str = "orphan";
pub const FINALIZER_FOREGROUND: &str = "foregroundDeletion";

/// One object of the graph.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub kind: &'static str,
    pub namespace: String,
    pub name: String,
    pub meta: ObjectMeta,
}

/// What the collector should do.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// Delete this dependent (all its owners are gone), or as part of a foreground deletion.
    Delete { kind: &'static str, namespace: String, name: String, uid: String, foreground: bool },
    /// Remove the ownerReference to `owner_uid` from this dependent (its owner is orphaning it).
    Unown { kind: &'static str, namespace: String, name: String, owner_uid: String },
    /// Remove `finalizer` from this owner: its dependents are dealt with.
    Finish { kind: &'static str, namespace: String, name: String, finalizer: &'static str },
}

impl Step {
    fn delete(n: &Node, foreground: bool) -> Step {
        let (kind, namespace, name, uid) = (n.kind, n.namespace.clone(), n.name.clone(), n.meta.uid.clone());
        Step::Delete { kind, namespace, name, uid, foreground }
    }
}

/// The steps for a graph (uid → node).
pub fn decide(graph: &HashMap<String, Node>) -> Vec<Step> {
    let mut steps = Vec::new();
    let mut dependents: HashMap<&str, Vec<&Node>> = HashMap::new();
    for n in graph.values() {
        for r in &n.meta.owner_references {
            dependents.entry(r.uid.as_str()).or_default().push(n);
        }
    }
    for (uid, n) in graph {
        let deleting = !n.meta.deletion_timestamp.is_empty();
        let mine = dependents.get(uid.as_str()).cloned().unwrap_or_default();
        // An owner being deleted with the orphan or foreground finalizer: deal with its dependents
        // first (orphan: drop their reference to it; foreground: delete them), then drop the finalizer.
        let finalizer = [FINALIZER_ORPHAN, FINALIZER_FOREGROUND]
            .into_iter()
            .find(|f| deleting && n.meta.finalizers.iter().any(|x| x == f));
        if let Some(finalizer) = finalizer {
            if mine.is_empty() {
                let (kind, namespace, name) = (n.kind, n.namespace.clone(), n.name.clone());
                steps.push(Step::Finish { kind, namespace, name, finalizer });
            }
            for d in &mine {
                let (kind, namespace, name) = (d.kind, d.namespace.clone(), d.name.clone());
                if finalizer == FINALIZER_ORPHAN {
                    steps.push(Step::Unown { kind, namespace, name, owner_uid: uid.clone() });
                } else if d.meta.deletion_timestamp.is_empty() {
                    steps.push(Step::delete(d, true));
                }
            }
        }
        // Owners all gone (absent from the graph): the dependent goes.
        if !deleting
            && !n.meta.owner_references.is_empty()
            && n.meta.owner_references.iter().all(|r| !graph.contains_key(&r.uid))
        {
            steps.push(Step::delete(n, false));
        }
    }
    steps
}

/// One kind's nodes, once its store is listed.
type Reader = Box<dyn Fn() -> Option<Vec<Node>> + Send + Sync>;

/// The stores of every kind in the graph.
pub struct Graph {
    readers: Vec<Reader>,
}

fn reader<K: Resource>(store: Store<K>) -> Reader {
    Box::new(move || {
        if !store.is_ready() {
            return None;
        }
        Some(
            store
                .state()
                .iter()
                .map(|o| {
                    let m = o.meta();
                    Node {
                        kind: K::KIND,
                        namespace: m.namespace.clone(),
                        name: m.name.clone(),
                        meta: m.clone(),
                    }
                })
                .collect(),
        )
    })
}

impl Graph {
    /// The whole graph, once every kind has been listed.
    pub fn snapshot(&self) -> Option<HashMap<String, Node>> {
        let mut out = HashMap::new();
        for r in &self.readers {
            for n in r()? {
                out.insert(n.meta.uid.clone(), n);
            }
        }
        Some(out)
    }
}

/// Whether the owner named by `r` (in `namespace`) still exists with the same uid.
async fn owner_exists(
    client: &Client,
    namespace: &str,
    r: &navarch_api::v1::OwnerReference,
) -> Result<bool, navarch_client::Error> {
    let scoped = navarch_api::kind_info(&r.kind).is_some_and(|k| k.namespaced);
    match client.get(&r.kind, if scoped { namespace } else { "" }, &r.name).await {
        Ok(o) => Ok(o.meta().uid == r.uid),
        Err(navarch_client::Error::NotFound(_)) => Ok(false),
        Err(e) => Err(e),
    }
}

async fn apply(
    client: &Client,
    graph: &HashMap<String, Node>,
    step: &Step,
) -> Result<(), navarch_client::Error> {
    match step {
        Step::Delete { kind, namespace, name, uid, foreground } => {
            if !foreground {
                // Confirm with the api-server that every owner is really gone.
                let node = graph.get(uid).expect("step from this graph");
                for r in &node.meta.owner_references {
                    if owner_exists(client, namespace, r).await? {
                        return Ok(());
                    }
                }
            }
            let params = DeleteParams {
                precondition_uid: uid.clone(),
                propagation_policy: if *foreground { "Foreground".into() } else { "Background".into() },
                ..Default::default()
            };
            tracing::info!(%kind, %namespace, %name, foreground, "garbage-collecting");
            match client.delete(kind, namespace, name, &params).await {
                Ok(_) | Err(navarch_client::Error::NotFound(_)) | Err(navarch_client::Error::Conflict(_)) => {
                    Ok(())
                }
                Err(e) => Err(e),
            }
        }
        Step::Unown { kind, namespace, name, owner_uid } => {
            let mut o = match client.get(kind, namespace, name).await {
                Ok(o) => o,
                Err(navarch_client::Error::NotFound(_)) => return Ok(()),
                Err(e) => return Err(e),
            };
            o.meta_mut().owner_references.retain(|r| &r.uid != owner_uid);
            client.update(&o).await.map(|_| ())
        }
        Step::Finish { kind, namespace, name, finalizer } => {
            let mut o = match client.get(kind, namespace, name).await {
                Ok(o) => o,
                Err(navarch_client::Error::NotFound(_)) => return Ok(()),
                Err(e) => return Err(e),
            };
            o.meta_mut().finalizers.retain(|f| f != finalizer);
            client.update(&o).await.map(|_| ())
        }
    }
}

/// A graph reader of `K`'s shared store, and its changes.
fn follow<K: Resource>(r: &SharedReflector<K>) -> (Reader, BoxStream<'static, ()>) {
    (reader(r.store()), r.subscribe().map(|_| ()).boxed())
}

/// Runs the collector on the shared reflectors of every kind in the graph: any change of any of them
/// (a relist included) wakes it.
pub fn spawn(w: &mut Wiring) {
    let inf = &w.informers;
    let (readers, changes): (Vec<Reader>, Vec<BoxStream<'static, ()>>) = [
        follow(&inf.pods),
        follow(&inf.replicasets),
        follow(&inf.deployments),
        follow(&inf.daemonsets),
        follow(&inf.statefulsets),
        follow(&inf.controller_revisions),
        follow(&inf.persistent_volume_claims),
        follow(&inf.jobs),
        follow(&inf.cronjobs),
        follow(&inf.services),
        follow(&inf.endpoints),
        follow(&inf.configmaps),
        follow(&inf.secrets),
    ]
    .into_iter()
    .unzip();
    let changed = Arc::new(Notify::new());
    let poke = changed.clone();
    // Ends with the reflectors.
    w.spawn(futures::stream::select_all(changes).for_each(move |()| {
        poke.notify_one();
        futures::future::ready(())
    }));
    w.spawn(run(w.client.clone(), Graph { readers }, changed, w.stop.clone()));
}

/// Runs the collector until `shutdown`, looking at `graph` whenever `changed` is poked.
pub async fn run(client: Client, graph: Graph, changed: Arc<Notify>, shutdown: CancellationToken) {
    // Steps already carried out and not yet reflected in the stores are not repeated.
    let mut done: HashSet<String> = HashSet::new();
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = changed.notified() => {}
            _ = tokio::time::sleep(Duration::from_secs(30)) => done.clear(),
        }
        // Let a burst of events land first.
        tokio::time::sleep(Duration::from_millis(50)).await;
        let Some(snapshot) = graph.snapshot() else { continue };
        let steps = decide(&snapshot);
        let wanted: HashSet<String> = steps.iter().map(|s| format!("{s:?}")).collect();
        done.retain(|k| wanted.contains(k));
        for step in steps {
            let key = format!("{step:?}");
            if done.contains(&key) {
                continue;
            }
            match apply(&client, &snapshot, &step).await {
                Ok(()) => {
                    done.insert(key);
                }
                Err(e) => {
                    tracing::warn!(?step, error = %e, "garbage collection step failed; retrying");
                    changed.notify_one();
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use navarch_api::v1::OwnerReference;

    fn node(
        kind: &'static str,
        name: &str,
        uid: &str,
        owners: &[&str],
        deleting: bool,
        finalizers: &[&str],
    ) -> (String, Node) {
        let meta = ObjectMeta {
            name: name.into(),
            namespace: "ns".into(),
            uid: uid.into(),
            owner_references: owners
                .iter()
                .map(|o| OwnerReference {
                    kind: "ReplicaSet".into(),
                    name: "x".into(),
                    uid: o.to_string(),
                    ..Default::default()
                })
                .collect(),
            deletion_timestamp: if deleting { "2026-01-01T00:00:00Z".into() } else { String::new() },
            finalizers: finalizers.iter().map(|f| f.to_string()).collect(),
            ..Default::default()
        };
        (uid.to_string(), Node { kind, namespace: "ns".into(), name: name.into(), meta })
    }

    /// The steps for a graph of these nodes.
    fn decide_on<const N: usize>(nodes: [(String, Node); N]) -> Vec<Step> {
        decide(&HashMap::from(nodes))
    }

    fn delete(name: &str, uid: &str, foreground: bool) -> Step {
        Step::Delete { kind: "Pod", namespace: "ns".into(), name: name.into(), uid: uid.into(), foreground }
    }

    fn finish(finalizer: &'static str) -> Step {
        Step::Finish { kind: "ReplicaSet", namespace: "ns".into(), name: "x".into(), finalizer }
    }

    #[test]
    fn dependents_of_missing_owners_are_deleted() {
        let steps = decide_on([
            node("Pod", "a", "p1", &["gone"], false, &[]),
            node("Pod", "b", "p2", &["rs1"], false, &[]),
            node("ReplicaSet", "x", "rs1", &[], false, &[]),
        ]);
        assert_eq!(steps, vec![delete("a", "p1", false)]);
    }

    #[test]
    fn orphan_then_finish() {
        let steps = decide_on([
            node("ReplicaSet", "x", "rs1", &[], true, &["orphan"]),
            node("Pod", "a", "p1", &["rs1"], false, &[]),
        ]);
        let unown =
            Step::Unown { kind: "Pod", namespace: "ns".into(), name: "a".into(), owner_uid: "rs1".into() };
        assert_eq!(steps, vec![unown]);
        let steps = decide_on([node("ReplicaSet", "x", "rs1", &[], true, &["orphan"])]);
        assert_eq!(steps, vec![finish("orphan")]);
    }

    #[test]
    fn foreground_deletes_dependents_first() {
        let steps = decide_on([
            node("ReplicaSet", "x", "rs1", &[], true, &["foregroundDeletion"]),
            node("Pod", "a", "p1", &["rs1"], false, &[]),
            node("Pod", "b", "p2", &["rs1"], true, &[]),
        ]);
        assert_eq!(steps, vec![delete("a", "p1", true)]);
        let steps = decide_on([node("ReplicaSet", "x", "rs1", &[], true, &["foregroundDeletion"])]);
        assert_eq!(steps, vec![finish("foregroundDeletion")]);
    }
}
