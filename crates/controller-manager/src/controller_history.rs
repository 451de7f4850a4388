//! ControllerRevision history, shared by the DaemonSet and StatefulSet controllers (Kubernetes'
//! `pkg/controller/history` with each controller's `constructHistory`/`getStatefulSetRevisions`,
//! `snapshot`/`newRevision` and `cleanupHistory`/`truncateHistory`): one revision per pod template,
//! named `<owner>-<hash>`, labelled `controller-revision-hash: <hash>`, whose data is the strategic
//! merge patch that restores the template (`{"spec":{"template":{...,"$patch":"replace"}}}`, what
//! `kubectl rollout undo` applies). The revision matching the owner's template is the owner's newest and
//! has the highest number (an old one is renumbered when the template goes back to it); a name taken by
//! another template raises the owner's `status.collisionCount`; old revisions beyond
//! `revisionHistoryLimit` that nothing uses are deleted.

use std::sync::Arc;

use navarch_api::Resource;
use navarch_api::v1::{
    ControllerRevision, DaemonSet, LabelSelector, ObjectMeta, PodTemplateSpec, RawExtension, StatefulSet,
};
use navarch_client::{Client, DeleteParams, Store};
use serde_json::{Value, json};

use crate::deployment::template_hash_with;
use crate::pod_control::{adopt_and_release, claim_objects, controller_ref};

/// The label naming the revision a pod (or a ControllerRevision) belongs to.
pub const REVISION_HASH_LABEL: &str = "controller-revision-hash";
/// Kubernetes' default `revisionHistoryLimit`.
pub const DEFAULT_HISTORY_LIMIT: i32 = 10;

/// An object whose pod templates are recorded as ControllerRevisions.
pub trait HistoryOwner: Resource {
    fn template(&self) -> Option<&PodTemplateSpec>;
    fn collision_count(&self) -> Option<i32>;
    fn set_collision_count(&mut self, count: i32);
    fn history_limit(&self) -> Option<i32>;
}

/// `HistoryOwner` for kinds with `spec.template`, `spec.revisionHistoryLimit` and
/// `status.collisionCount`.
macro_rules! history_owner {
    ($($kind:ty),*) => {$(
        impl HistoryOwner for $kind {
            fn template(&self) -> Option<&PodTemplateSpec> {
                self.spec.as_ref()?.template.as_ref()
            }
            fn collision_count(&self) -> Option<i32> {
                self.status.as_ref()?.collision_count
            }
            fn set_collision_count(&mut self, count: i32) {
                self.status.get_or_insert_with(Default::default).collision_count = Some(count);
            }
            fn history_limit(&self) -> Option<i32> {
                self.spec.as_ref()?.revision_history_limit
            }
        }
    )*};
}

history_owner!(DaemonSet, StatefulSet);

#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    #[error("{0}")]
    Api(#[from] navarch_client::Error),
    #[error("revision {name}: {reason}")]
    Collision { name: String, reason: String },
}

/// The data of the owner's revision: `{"spec":{"template":{...,"$patch":"replace"}}}` (`getPatch`).
pub fn patch_of<O: HistoryOwner>(owner: &O) -> Value {
    let mut template =
        serde_json::to_value(owner.template().cloned().unwrap_or_default()).unwrap_or_else(|_| json!({}));
    if let Value::Object(t) = &mut template {
        t.insert("$patch".into(), "replace".into());
    }
    json!({"spec": {"template": template}})
}

/// The pod template a revision records (its data's `spec.template` without the `$patch` directive).
pub fn template_of(cr: &ControllerRevision) -> Option<PodTemplateSpec> {
    let mut template = cr.data.as_ref().and_then(RawExtension::value)?["spec"]["template"].take();
    template.as_object_mut()?.remove("$patch");
    serde_json::from_value(template).ok()
}

/// Whether `cr` records the owner's current template (`Match`: its data is the same patch).
pub fn matches<O: HistoryOwner>(owner: &O, cr: &ControllerRevision) -> bool {
    cr.data.as_ref().and_then(RawExtension::value).is_some_and(|v| v == patch_of(owner))
}

/// The hash of the owner's template and collision count (its new revision's name suffix).
pub fn hash_of<O: HistoryOwner>(owner: &O) -> String {
    template_hash_with(&owner.template().cloned().unwrap_or_default(), owner.collision_count())
}

/// A new revision of the owner's template numbered `revision` (`NewControllerRevision`): labelled with
/// the template's labels and the hash, annotated as the owner, controlled by it.
pub fn snapshot<O: HistoryOwner>(owner: &O, revision: i64) -> ControllerRevision {
    let hash = hash_of(owner);
    let m = owner.meta();
    let mut labels =
        owner.template().and_then(|t| t.metadata.as_ref()).map(|t| t.labels.clone()).unwrap_or_default();
    labels.insert(REVISION_HASH_LABEL.into(), hash.clone());
    let mut cr = ControllerRevision {
        metadata: Some(ObjectMeta {
            name: format!("{}-{hash}", m.name),
            namespace: m.namespace.clone(),
            labels,
            annotations: m.annotations.clone(),
            owner_references: vec![controller_ref::<O>(m)],
            ..Default::default()
        }),
        data: Some(RawExtension::from_value(&patch_of(owner))),
        revision,
        ..Default::default()
    };
    cr.set_type_meta();
    cr
}

/// What the owner's revisions need.
#[derive(Debug, Default, PartialEq)]
pub struct HistoryPlan {
    /// The name of the revision matching the template, when one does (the highest-numbered of those).
    pub current: Option<String>,
    /// A new number for that revision when it is not the highest (the template went back to it).
    pub renumber: Option<i64>,
    /// Other revisions matching the template (duplicates), to delete.
    pub duplicates: Vec<String>,
    /// Revisions without the hash label, to label with their name.
    pub unlabelled: Vec<String>,
    /// The old revisions (not matching the template).
    pub old: Vec<String>,
    /// The number a new revision gets when none matches: one more than every old one.
    pub next: i64,
}

/// Sorts the owner's revisions into the one matching its template and old ones.
pub fn plan<O: HistoryOwner>(owner: &O, revisions: &[&ControllerRevision]) -> HistoryPlan {
    let mut out = HistoryPlan::default();
    let mut current: Vec<&ControllerRevision> = Vec::new();
    for &cr in revisions {
        if !cr.meta().labels.contains_key(REVISION_HASH_LABEL) {
            out.unlabelled.push(cr.meta().name.clone());
        }
        if matches(owner, cr) {
            current.push(cr);
        } else {
            out.old.push(cr.meta().name.clone());
        }
    }
    let max_old = revisions.iter().filter(|c| !matches(owner, c)).map(|c| c.revision).max().unwrap_or(0);
    out.next = max_old + 1;
    // Keep the highest-numbered match (then the first by name); the rest are duplicates.
    current.sort_by(|a, b| b.revision.cmp(&a.revision).then_with(|| a.meta().name.cmp(&b.meta().name)));
    if let Some((keep, rest)) = current.split_first() {
        out.current = Some(keep.meta().name.clone());
        if keep.revision < out.next {
            out.renumber = Some(out.next);
        }
        out.duplicates = rest.iter().map(|c| c.meta().name.clone()).collect();
    }
    out
}

/// How many old revisions the history limit counts.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Budget {
    /// Every old revision counts; live ones are skipped but not spared from the count (DaemonSets'
    /// `cleanupHistory`).
    AllOld,
    /// Only revisions nothing uses count (StatefulSets' `truncateHistory`).
    NonLive,
}

/// The old revisions to delete, oldest first: beyond the owner's `revisionHistoryLimit` (counted as
/// `budget` says), never a live one.
pub fn prune<O: HistoryOwner>(
    owner: &O,
    old: &[&ControllerRevision],
    is_live: impl Fn(&ControllerRevision) -> bool,
    budget: Budget,
) -> Vec<String> {
    let Ok(limit) = usize::try_from(owner.history_limit().unwrap_or(DEFAULT_HISTORY_LIMIT)) else {
        return Vec::new();
    };
    let mut dead: Vec<&ControllerRevision> = old.iter().copied().filter(|c| !is_live(c)).collect();
    let counted = if budget == Budget::AllOld { old.len() } else { dead.len() };
    let excess = counted.saturating_sub(limit);
    dead.sort_by_key(|c| c.revision);
    dead.into_iter().take(excess).map(|c| c.meta().name.clone()).collect()
}

/// The hash label of a revision (its name when it has none).
pub fn hash_label(cr: &ControllerRevision) -> String {
    cr.meta().labels.get(REVISION_HASH_LABEL).cloned().unwrap_or_else(|| cr.meta().name.clone())
}

/// Claims the owner's revisions among `store`'s (those of its namespace its `selector` matches: orphans
/// adopted, its own that stopped matching released), then brings them up to date as [`construct`] does.
pub async fn claim_and_construct<O: HistoryOwner>(
    client: &Client,
    store: &Store<ControllerRevision>,
    owner: &O,
    selector: Option<&LabelSelector>,
) -> Result<(ControllerRevision, Vec<ControllerRevision>), HistoryError> {
    let m = owner.meta();
    let all: Vec<Arc<ControllerRevision>> =
        store.state().into_iter().filter(|c| c.meta().namespace == m.namespace).collect();
    let refs: Vec<&ControllerRevision> = all.iter().map(AsRef::as_ref).collect();
    let owned = claim_objects(m, selector, true, &refs);
    adopt_and_release(client, owner, &owned).await;
    construct(client, owner, &owned.mine).await
}

/// Brings the owner's revisions (`revisions`, those it controls) up to date: labels unlabelled ones,
/// deletes duplicates of the current template, renumbers or creates the revision of the current
/// template. Returns that revision and the old ones.
pub async fn construct<O: HistoryOwner>(
    client: &Client,
    owner: &O,
    revisions: &[&ControllerRevision],
) -> Result<(ControllerRevision, Vec<ControllerRevision>), HistoryError> {
    let api = client.api::<ControllerRevision>(&owner.meta().namespace);
    let HistoryPlan { current, renumber, duplicates, unlabelled, old, next } = plan(owner, revisions);
    let by_name = |n: &str| revisions.iter().find(|c| c.meta().name == n).map(|c| (*c).clone());
    for name in &unlabelled {
        if let Some(mut cr) = by_name(name) {
            cr.meta_mut().labels.insert(REVISION_HASH_LABEL.into(), name.clone());
            api.update(&cr).await?;
        }
    }
    for name in &duplicates {
        match api.delete(name, &DeleteParams::default()).await {
            Ok(_) | Err(navarch_client::Error::NotFound(_)) => {}
            Err(e) => return Err(e.into()),
        }
    }
    let current = match current.and_then(|n| by_name(&n)) {
        Some(mut cr) => {
            if let Some(n) = renumber {
                cr.revision = n;
                cr = api.update(&cr).await?;
                tracing::debug!(revision = %cr.meta().name, number = n, "current revision renumbered");
            }
            cr
        }
        None => create(client, owner, next).await?,
    };
    let old = old.iter().filter_map(|n| by_name(n)).collect();
    Ok((current, old))
}

/// Creates the revision of the owner's template numbered `number`; on a name taken by another
/// template, raises the owner's collisionCount (the next sync hashes anew).
async fn create<O: HistoryOwner>(
    client: &Client,
    owner: &O,
    number: i64,
) -> Result<ControllerRevision, HistoryError> {
    let api = client.api::<ControllerRevision>(&owner.meta().namespace);
    let cr = snapshot(owner, number);
    let name = cr.meta().name.clone();
    match api.create(&cr).await {
        Ok(cr) => {
            tracing::debug!(revision = %name, number, "revision created");
            Ok(cr)
        }
        Err(navarch_client::Error::AlreadyExists(_)) => {
            let existing = api.get(&name).await?;
            if matches(owner, &existing) {
                return Ok(existing);
            }
            let owners = client.api::<O>(&owner.meta().namespace);
            let mut latest = owners.get(&owner.meta().name).await?;
            let count = latest.collision_count();
            if count != owner.collision_count() {
                return Err(HistoryError::Collision { name, reason: "stale collisionCount".into() });
            }
            latest.set_collision_count(count.unwrap_or(0) + 1);
            owners.update_status(&latest).await?;
            Err(HistoryError::Collision { name, reason: "hash collision; collisionCount raised".into() })
        }
        Err(e) => Err(e.into()),
    }
}

/// Deletes the revisions named `names` (already gone is fine).
pub async fn delete(client: &Client, namespace: &str, names: &[String]) {
    let api = client.api::<ControllerRevision>(namespace);
    for name in names {
        match api.delete(name, &DeleteParams::default()).await {
            Ok(_) | Err(navarch_client::Error::NotFound(_)) => {}
            Err(e) => tracing::warn!(revision = %name, error = %e, "pruning a revision"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ds(image: &str, limit: Option<i32>) -> DaemonSet {
        let limit = limit.map(|l| format!(", revisionHistoryLimit: {l}")).unwrap_or_default();
        serde_yaml::from_str(&format!(
            "{{metadata: {{name: agent, namespace: ns, uid: ds-uid}}, spec: {{selector: {{matchLabels: {{app: agent}}}}, \
             template: {{metadata: {{labels: {{app: agent}}}}, spec: {{containers: [{{name: c, image: '{image}'}}]}}}}{limit}}}}}"
        ))
        .unwrap()
    }

    #[test]
    fn history_matches_reuses_and_prunes() {
        let v1 = ds("busybox:1.36", None);
        let v2 = ds("busybox:1.37", None);
        let r1 = snapshot(&v1, 1);
        assert_eq!(r1.meta().name, format!("agent-{}", hash_of(&v1)));
        let data = r1.data.as_ref().unwrap().value().unwrap();
        assert_eq!(data["spec"]["template"]["$patch"], "replace");
        assert_eq!(data["spec"]["template"]["spec"]["containers"][0]["image"], "busybox:1.36");
        assert_eq!(template_of(&r1).unwrap().spec.unwrap().containers[0].image, "busybox:1.36");
        assert_eq!(r1.meta().labels.get("app").map(String::as_str), Some("agent"));
        assert_eq!(r1.meta().owner_references[0].kind, "DaemonSet");

        // A new template: no match, the next number.
        let p = plan(&v2, &[&r1]);
        assert_eq!((p.current.clone(), p.next, p.old.clone()), (None, 2, vec![r1.meta().name.clone()]));
        // Back to the first template: reused, renumbered above the others.
        let r2 = snapshot(&v2, 2);
        let p = plan(&v1, &[&r1, &r2]);
        assert_eq!(p.current, Some(r1.meta().name.clone()));
        assert_eq!(p.renumber, Some(3));
        // Already the highest: nothing to renumber; a duplicate is deleted.
        let mut dup = snapshot(&v1, 0);
        dup.meta_mut().name = "agent-dup".into();
        let p = plan(&v1, &[&r1, &dup]);
        assert_eq!((p.renumber, p.duplicates.clone()), (None, vec!["agent-dup".to_string()]));

        // Pruning beyond the limit, oldest first, never a live one.
        let limited = ds("busybox:1.36", Some(1));
        let olds: Vec<ControllerRevision> = (1..=3)
            .map(|i| {
                let mut r = snapshot(&v1, i);
                r.meta_mut().name = format!("r{i}");
                r.meta_mut().labels.insert(REVISION_HASH_LABEL.into(), format!("h{i}"));
                r
            })
            .collect();
        let refs: Vec<&ControllerRevision> = olds.iter().collect();
        let h1_live = |c: &ControllerRevision| hash_label(c) == "h1";
        // DaemonSets: 3 old, limit 1 → two go; r1 is live, so r2 and r3.
        assert_eq!(prune(&limited, &refs, h1_live, Budget::AllOld), ["r2", "r3"]);
        assert_eq!(prune(&limited, &refs, |_| false, Budget::AllOld), ["r1", "r2"]);
        // StatefulSets: only the 2 non-live count → one goes, the oldest of them.
        assert_eq!(prune(&limited, &refs, h1_live, Budget::NonLive), ["r2"]);
        assert!(prune(&v1, &refs, |_| false, Budget::AllOld).is_empty(), "default limit 10");
    }
}
