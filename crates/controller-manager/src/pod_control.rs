//! What every controller that owns pods shares (Kubernetes' `controller_utils`): the controller
//! ownerReference, finding the owners to sync when a pod changes, the expectations that keep a
//! controller from acting twice while its pod cache catches up with its own writes, and creating
//! pods in slow-start batches with the `SuccessfulCreate`/`FailedCreate` events.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use navarch_api::Resource;
use navarch_api::selector::Selector;
use navarch_api::v1::{LabelSelector, ObjectMeta, ObjectReference, OwnerReference, Pod};
use navarch_client::{Action, Api, Client, EventRecorder, ObjectRef, Store};

/// How long unmet expectations hold an owner back before it acts anyway (Kubernetes: 5 minutes).
const EXPECTATIONS_TIMEOUT: Duration = Duration::from_secs(300);

/// The controller ownerReference of an object, if any.
pub fn controller_of(m: &ObjectMeta) -> Option<&OwnerReference> {
    m.owner_references.iter().find(|r| r.controller == Some(true))
}

/// The controller ownerReference to the `K` with metadata `m` (blocking its owner's foreground
/// deletion, as Kubernetes' controllers set it).
pub fn controller_ref<K: Resource>(m: &ObjectMeta) -> OwnerReference {
    OwnerReference {
        api_version: K::API_VERSION.into(),
        kind: K::KIND.into(),
        name: m.name.clone(),
        uid: m.uid.clone(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

/// The `K`s to sync when `pod` changes: its controller if that is a `K`, else (an orphan) every `K`
/// of its namespace whose non-empty selector matches it.
pub fn owners_of<K: Resource>(
    owners: &Store<K>,
    pod: &Pod,
    selector: impl Fn(&K) -> Option<LabelSelector>,
) -> Vec<ObjectRef> {
    let m = pod.meta();
    if let Some(owner) = controller_of(m) {
        return if owner.kind == K::KIND { vec![ObjectRef::new(&m.namespace, &owner.name)] } else { vec![] };
    }
    owners
        .state()
        .iter()
        .filter(|o| o.meta().namespace == m.namespace)
        .filter(|o| {
            Selector::from_label_selector(selector(o).as_ref())
                .is_ok_and(|s| !s.is_empty() && s.matches(&m.labels))
        })
        .map(|o| ObjectRef::from_obj(o.as_ref()))
        .collect()
}

/// The objects (pods, ControllerRevisions) of an owner's namespace as its controller sees them.
#[derive(Debug)]
pub struct Claim<'a, K> {
    /// Objects it controls (and orphans it adopts).
    pub mine: Vec<&'a K>,
    /// Orphans matching its selector, to take ownership of.
    pub adopt: Vec<&'a K>,
    /// Objects it controls whose labels no longer match, to let go.
    pub release: Vec<&'a K>,
}

impl<K> Default for Claim<'_, K> {
    fn default() -> Self {
        Claim { mine: Vec::new(), adopt: Vec::new(), release: Vec::new() }
    }
}

/// Sorts `objects` by ownership to the owner with metadata `owner` and `selector` (Kubernetes'
/// `ControllerRefManager`): its own that match are its, its own that stopped matching are released,
/// orphans that match are adopted when `adopting`; objects being deleted are neither adopted nor
/// released. An empty or invalid selector matches nothing.
pub fn claim_objects<'a, K: Resource>(
    owner: &ObjectMeta,
    selector: Option<&LabelSelector>,
    adopting: bool,
    objects: &[&'a K],
) -> Claim<'a, K> {
    let selector = Selector::from_label_selector(selector).ok();
    let mut out = Claim::default();
    for &o in objects {
        let m = o.meta();
        let matches = selector.as_ref().is_some_and(|s| !s.is_empty() && s.matches(&m.labels));
        let deleting = !m.deletion_timestamp.is_empty();
        match controller_of(m) {
            Some(r) if r.uid == owner.uid => {
                if matches {
                    out.mine.push(o);
                } else if !deleting {
                    out.release.push(o);
                }
            }
            Some(_) => {}
            None if matches && adopting && !deleting => {
                out.adopt.push(o);
                out.mine.push(o);
            }
            None => {}
        }
    }
    out
}

/// Takes the orphans `claim` adopts and lets go of those it releases, by the `owner`'s controller
/// ownerReference (each a plain update; a failure is left to the next sync).
pub async fn adopt_and_release<O: Resource, K: Resource>(client: &Client, owner: &O, claim: &Claim<'_, K>) {
    let m = owner.meta();
    let api = client.api::<K>(&m.namespace);
    for o in &claim.adopt {
        let mut o = (*o).clone();
        o.meta_mut().owner_references.push(controller_ref::<O>(m));
        if let Err(e) = api.update(&o).await {
            tracing::debug!(kind = K::KIND, name = %o.meta().name, error = %e, "adopting");
        }
    }
    for o in &claim.release {
        let mut o = (*o).clone();
        o.meta_mut().owner_references.retain(|r| r.uid != m.uid);
        if let Err(e) = api.update(&o).await {
            tracing::debug!(kind = K::KIND, name = %o.meta().name, error = %e, "releasing");
        }
    }
}

/// When a pod owner's sync looks again: at `requeue` if the plan asked, within a second while some pod
/// is ready but not yet available (minReadySeconds: availability changes with time alone), else after
/// 5 minutes, or 5 seconds while expectations are unmet.
pub fn next_sync(satisfied: bool, requeue: Option<Duration>, awaiting_availability: bool) -> Action {
    let second = Duration::from_secs(1);
    let requeue =
        if awaiting_availability { Some(requeue.map_or(second, |r| r.min(second))) } else { requeue };
    let idle = if satisfied { Duration::from_secs(300) } else { Duration::from_secs(5) };
    Action::requeue(requeue.map_or(idle, |r| r.min(idle)))
}

/// Pods an owner created and deleted that its pod cache does not show yet.
#[derive(Debug, Default)]
struct Pending {
    created: HashSet<String>,
    deleted: HashSet<String>,
    at: Option<Instant>,
}

/// Per owner key, the pod creations and deletions not yet seen in the pod cache.
#[derive(Debug, Default)]
pub struct Expectations {
    pending: Mutex<HashMap<String, Pending>>,
}

impl Expectations {
    /// Whether the pod cache (`pods`, the owner's namespace) shows `key`'s creations (the pod is
    /// there) and deletions (the pod is gone or being deleted), or they timed out; forgets them then.
    pub fn satisfied<'a>(&self, key: &str, pods: impl IntoIterator<Item = &'a Pod>) -> bool {
        let mut all = self.pending.lock().expect("expectations lock");
        let Some(e) = all.get_mut(key) else { return true };
        let shown: HashMap<&str, bool> = pods
            .into_iter()
            .map(|p| (p.meta().name.as_str(), !p.meta().deletion_timestamp.is_empty()))
            .collect();
        e.created.retain(|n| !shown.contains_key(n.as_str()));
        e.deleted.retain(|n| shown.get(n.as_str()) == Some(&false));
        let done = (e.created.is_empty() && e.deleted.is_empty())
            || e.at.is_some_and(|t| t.elapsed() >= EXPECTATIONS_TIMEOUT);
        if done {
            all.remove(key);
        }
        done
    }

    /// Remembers pods `key` created and deleted.
    pub fn expect(&self, key: &str, created: Vec<String>, deleted: Vec<String>) {
        let mut all = self.pending.lock().expect("expectations lock");
        let e = all.entry(key.to_string()).or_default();
        e.created.extend(created);
        e.deleted.extend(deleted);
        e.at = Some(Instant::now());
    }

    /// Forgets owners not in `live`.
    pub fn retain(&self, live: &HashSet<String>) {
        self.pending.lock().expect("expectations lock").retain(|k, _| live.contains(k));
    }
}

/// How often a controller forgets what it remembers of owners that are gone (once a minute), so that
/// memory does not grow with every owner ever seen.
#[derive(Debug)]
pub struct PruneClock {
    last: Mutex<Instant>,
}

impl Default for PruneClock {
    fn default() -> PruneClock {
        PruneClock { last: Mutex::new(Instant::now()) }
    }
}

impl PruneClock {
    const EVERY: Duration = Duration::from_secs(60);

    /// Whether a minute has passed since the last time this said yes (and starts the next minute).
    pub fn due(&self) -> bool {
        let mut last = self.last.lock().expect("prune clock lock");
        if last.elapsed() < Self::EVERY {
            return false;
        }
        *last = Instant::now();
        true
    }
}

/// Creates `pods` for `owner` (its key `key`) in slow-start batches (1, 2, 4, ...) with the
/// `SuccessfulCreate` events, remembering each created pod in `expectations`; stops at the first
/// batch with a failure (a `FailedCreate` event). How many were created, and that failure.
pub async fn create_in_batches(
    api: &Api<Pod>,
    events: &EventRecorder,
    owner: &ObjectReference,
    key: &str,
    expectations: &Expectations,
    pods: Vec<Pod>,
) -> (usize, Option<navarch_client::Error>) {
    let mut created_total = 0;
    let mut done = 0;
    let mut batch = 1;
    while done < pods.len() {
        let chunk = &pods[done..(done + batch).min(pods.len())];
        let results = futures::future::join_all(chunk.iter().map(|p| api.create(p))).await;
        let mut failed = None;
        let mut created = Vec::new();
        for r in results {
            match r {
                Ok(p) => {
                    let name = p.meta().name.clone();
                    events.record(
                        owner.clone(),
                        "Normal",
                        "SuccessfulCreate",
                        format!("Created pod: {name}"),
                    );
                    created.push(name);
                }
                Err(e) => failed = Some(e),
            }
        }
        done += chunk.len();
        created_total += created.len();
        expectations.expect(key, created, vec![]);
        if let Some(e) = failed {
            let message = format!("Error creating: {}", e.server_message());
            events.record(owner.clone(), "Warning", "FailedCreate", message);
            tracing::warn!(owner = %key, error = %e, "creating pods");
            return (created_total, Some(e));
        }
        batch *= 2;
    }
    (created_total, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(name: &str, deleting: bool) -> Pod {
        let mut p = Pod::default();
        p.meta_mut().name = name.into();
        if deleting {
            p.meta_mut().deletion_timestamp = "2026-01-01T00:00:00Z".into();
        }
        p
    }

    #[test]
    fn expectations_wait_for_the_cache() {
        let e = Expectations::default();
        assert!(e.satisfied("ns/a", []), "nothing expected");
        e.expect("ns/a", vec!["p1".into()], vec!["old".into()]);
        let old = pod("old", false);
        assert!(!e.satisfied("ns/a", [&old]), "the creation is not shown");
        let p1 = pod("p1", false);
        assert!(!e.satisfied("ns/a", [&p1, &old]), "the deletion is not shown");
        let old = pod("old", true);
        assert!(e.satisfied("ns/a", [&p1, &old]), "being deleted is enough");
        assert!(e.satisfied("ns/b", [&p1]), "other keys are separate");
    }
}
