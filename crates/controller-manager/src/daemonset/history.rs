//! A DaemonSet's ControllerRevisions (Kubernetes' `constructHistory`, `snapshot`, `cleanupHistory`):
//! one per pod template, named `<ds>-<hash>`, whose data is the strategic merge patch that restores the
//! template. The revision matching the current template is the current one and has the highest
//! revision number; the others are old, and the oldest of those no pod uses go beyond
//! `revisionHistoryLimit`.

use std::collections::HashSet;

use navarch_api::Resource;
use navarch_api::v1::{ControllerRevision, DaemonSet, ObjectMeta, Pod, RawExtension};
use serde_json::{Value, json};

use super::{REVISION_HASH_LABEL, spec_of};
use crate::deployment::template_hash_with;
use crate::pod_control::controller_ref;

/// Kubernetes' default `revisionHistoryLimit`.
pub const DEFAULT_HISTORY_LIMIT: i32 = 10;

/// The data of the DaemonSet's revision: `{"spec":{"template":{...,"$patch":"replace"}}}` (`getPatch`).
pub fn patch_of(ds: &DaemonSet) -> Value {
    let mut template =
        serde_json::to_value(spec_of(ds).template.clone().unwrap_or_default()).unwrap_or_else(|_| json!({}));
    if let Value::Object(t) = &mut template {
        t.insert("$patch".into(), "replace".into());
    }
    json!({"spec": {"template": template}})
}

/// Whether `cr` records the DaemonSet's current template (`Match`: its data is the same patch).
pub fn matches(ds: &DaemonSet, cr: &ControllerRevision) -> bool {
    cr.data.as_ref().and_then(RawExtension::value).is_some_and(|v| v == patch_of(ds))
}

/// The hash of the DaemonSet's template and collision count (its new revision's name suffix).
pub fn hash_of(ds: &DaemonSet) -> String {
    let collisions = ds.status.as_ref().and_then(|s| s.collision_count);
    template_hash_with(&spec_of(ds).template.clone().unwrap_or_default(), collisions)
}

/// A new revision of the DaemonSet's template numbered `revision` (`snapshot`): labelled with the
/// template's labels and the hash, annotated as the DaemonSet, controlled by it.
pub fn snapshot(ds: &DaemonSet, revision: i64) -> ControllerRevision {
    let hash = hash_of(ds);
    let m = ds.meta();
    let mut labels = spec_of(ds)
        .template
        .as_ref()
        .and_then(|t| t.metadata.as_ref())
        .map(|t| t.labels.clone())
        .unwrap_or_default();
    labels.insert(REVISION_HASH_LABEL.into(), hash.clone());
    let mut cr = ControllerRevision {
        metadata: Some(ObjectMeta {
            name: format!("{}-{hash}", m.name),
            namespace: m.namespace.clone(),
            labels,
            annotations: m.annotations.clone(),
            owner_references: vec![controller_ref::<DaemonSet>(m)],
            ..Default::default()
        }),
        data: Some(RawExtension::from_value(&patch_of(ds))),
        revision,
        ..Default::default()
    };
    cr.set_type_meta();
    cr
}

/// What the DaemonSet's revisions need (`constructHistory`).
#[derive(Debug, Default, PartialEq)]
pub struct HistoryPlan {
    /// The current revision's name, when one matches the template (the highest-numbered of those).
    pub current: Option<String>,
    /// A new number for the current revision when it is not the highest (the template went back to it).
    pub renumber: Option<i64>,
    /// Other revisions matching the template (duplicates), to delete.
    pub duplicates: Vec<String>,
    /// Revisions without the hash label, to label with their name.
    pub unlabelled: Vec<String>,
    /// The old revisions (not matching the template).
    pub old: Vec<String>,
    /// The number a new current revision gets when none matches: one more than every old one.
    pub next: i64,
}

/// Sorts the DaemonSet's revisions into current and old.
pub fn plan(ds: &DaemonSet, revisions: &[&ControllerRevision]) -> HistoryPlan {
    let mut out = HistoryPlan::default();
    let mut current: Vec<&ControllerRevision> = Vec::new();
    for &cr in revisions {
        if !cr.meta().labels.contains_key(REVISION_HASH_LABEL) {
            out.unlabelled.push(cr.meta().name.clone());
        }
        if matches(ds, cr) {
            current.push(cr);
        } else {
            out.old.push(cr.meta().name.clone());
        }
    }
    let max_old = revisions.iter().filter(|c| !matches(ds, c)).map(|c| c.revision).max().unwrap_or(0);
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

/// The old revisions to delete (`cleanupHistory`): beyond `revisionHistoryLimit`, oldest first, never
/// one whose hash a pod of the DaemonSet (`pods`, finished ones included) still carries.
pub fn prune(ds: &DaemonSet, old: &[&ControllerRevision], pods: &[&Pod]) -> Vec<String> {
    let limit =
        usize::try_from(spec_of(ds).revision_history_limit.unwrap_or(DEFAULT_HISTORY_LIMIT)).unwrap_or(0);
    let Some(mut excess) = old.len().checked_sub(limit).filter(|n| *n > 0) else { return Vec::new() };
    let live: HashSet<&str> =
        pods.iter().filter_map(|p| p.meta().labels.get(REVISION_HASH_LABEL)).map(String::as_str).collect();
    let mut old = old.to_vec();
    old.sort_by_key(|c| c.revision);
    let mut out = Vec::new();
    for cr in old {
        if excess == 0 {
            break;
        }
        if cr.meta().labels.get(REVISION_HASH_LABEL).is_some_and(|h| live.contains(h.as_str())) {
            continue;
        }
        out.push(cr.meta().name.clone());
        excess -= 1;
    }
    out
}

/// The hash label of the revision named `name` among `revisions` (its name when it has none).
pub fn hash_label(revisions: &[&ControllerRevision], name: &str) -> String {
    revisions
        .iter()
        .find(|c| c.meta().name == name)
        .and_then(|c| c.meta().labels.get(REVISION_HASH_LABEL).cloned())
        .unwrap_or_else(|| name.to_string())
}
