//! Server-side apply of a configuration to an object's JSON (structured-merge-diff's `Updater.Apply`, with
//! the layers Kubernetes' field manager adds around it).
//!
//! 1. An object nobody recorded fields of (created before tracking, or reset) first gets its fields
//!    recorded for `before-first-apply`, so applying over them is a conflict like any other.
//! 2. The configuration is merged into the live object ([`super::merge`]).
//! 3. The applier's entry becomes exactly the configuration's fields. What it owned before and no longer
//!    names is removed from the object, unless another manager (or the new configuration) owns it.
//! 4. Fields the result adds or changes that other managers own are conflicts; forced, they move to the
//!    applier. Fields the result removed leave every entry.
//!
//! kubectl's client-side → server-side path: when `kubectl` applies over an object that has the
//! `kubectl.kubernetes.io/last-applied-configuration` annotation, conflicts on fields that annotation
//! names with the live value are allowed ([`last_applied_allowed`]), and the annotation is rewritten to
//! the new configuration ([`with_last_applied`]), so a later client-side apply still works.

use serde_json::Value;

use super::merge;
use super::typed::{self, Ty};
use super::{
    BEFORE_FIRST_APPLY, Conflict, Conflicts, FieldSet, MAX_UPDATE_MANAGERS, Managed, ManagedFieldsError,
    ManagerId, Scope, strip,
};

/// kubectl's client-side apply annotation.
pub const LAST_APPLIED_ANNOTATION: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// One apply.
#[derive(Debug, Clone, Copy)]
pub struct ApplyRequest<'a> {
    /// The object as stored (its JSON, without managed fields); `None` when it does not exist yet.
    pub live: Option<&'a Value>,
    /// The applied configuration: a partial object of the same kind.
    pub config: &'a Value,
    /// The kind's type ([`typed::root`]).
    pub root: Ty,
    pub scope: Scope<'a>,
    pub manager: &'a str,
    /// The kind's API version (`apps/v1`).
    pub api_version: &'a str,
    /// Take fields other managers own instead of failing.
    pub force: bool,
    /// Conflicts that are allowed anyway (from [`last_applied_allowed`]).
    pub allowed: Option<&'a FieldSet>,
    /// The time of the request (RFC 3339), for a `before-first-apply` entry.
    pub now: &'a str,
}

/// Applies `req.config`; returns the merged object and updates `managed`. The applier's entry keeps its
/// previous time: the caller stamps it ([`Managed::touch`]) when the object really changed.
pub fn apply(managed: &mut Managed, req: &ApplyRequest) -> Result<Value, ManagedFieldsError> {
    let root = req.root;
    if managed.is_empty()
        && let Some(live) = req.live
    {
        let existing = strip(req.scope.filter(typed::compare(None, Some(live), root)?.added));
        if !existing.is_empty() {
            let id = ManagerId::update(BEFORE_FIRST_APPLY, req.api_version, req.scope.subresource);
            let e = managed.entry(&id, req.api_version);
            *e.set_mut() = existing;
            e.time = req.now.to_string();
        }
    }
    let mut merged = merge::merge(req.live, req.config, root)?;
    let applier = ManagerId::apply(req.manager, req.scope.subresource);
    let last = managed.get(&applier).map(|e| e.set.clone());
    // The configuration's fields, metadata included, for pruning; stripped when stored.
    let applied = req.scope.filter(typed::field_set(req.config, root, false)?);
    if let Some(last) = last.filter(|l| !l.is_empty()) {
        let mut owned = applied.clone();
        for e in managed.entries.iter().filter(|e| e.id != applier) {
            owned.union_with(&e.set);
        }
        let owned = typed::ensure_named_fields(&owned, root);
        let present = typed::ensure_named_fields(&typed::field_set(&merged, root, true)?, root);
        let gone = typed::ensure_named_fields(&last, root).intersection(&present).difference(&owned);
        merge::remove(&mut merged, &gone, root)?;
    }
    let cmp = typed::compare(req.live, Some(&merged), root)?.filtered(|s| req.scope.filter(s));
    let changed = cmp.changed();
    let mut conflicts = Vec::new();
    for e in managed.entries.iter().filter(|e| e.id != applier) {
        for path in e.set.intersection(&changed).paths() {
            if !req.allowed.is_some_and(|a| a.has(&path.0)) {
                conflicts.push(Conflict { manager: e.id.clone(), path });
            }
        }
    }
    if !conflicts.is_empty() && !req.force {
        conflicts.sort_by(|a, b| a.manager.to_string().cmp(&b.manager.to_string()).then(a.path.cmp(&b.path)));
        return Err(ManagedFieldsError::Conflicts(Conflicts(conflicts)));
    }
    for e in managed.entries.iter_mut().filter(|e| e.id != applier) {
        e.subtract(&changed);
        e.subtract(&cmp.removed);
    }
    let entry = managed.entry(&applier, req.api_version);
    let applied = strip(applied);
    if entry.set != applied {
        *entry.set_mut() = applied;
    }
    entry.api_version = req.api_version.to_string();
    managed.drop_empty();
    managed.cap_update_managers(MAX_UPDATE_MANAGERS);
    Ok(merged)
}

impl Managed {
    /// Stamps `id`'s entry with `now` (an apply that changed the object).
    pub fn touch(&mut self, id: &ManagerId, now: &str) {
        if let Some(e) = self.entries.iter_mut().find(|e| e.id == *id) {
            e.time = now.to_string();
        }
    }
}

/// The last-applied annotation of an object's JSON, if it has a non-empty one.
fn last_applied(obj: &Value) -> Option<&str> {
    obj["metadata"]["annotations"][LAST_APPLIED_ANNOTATION].as_str().filter(|s| !s.is_empty())
}

/// The fields a client-side apply set and the live object still holds with the same value: with the
/// `last-applied-configuration` annotation of `live`, `kubectl` may take them over without conflict
/// (Kubernetes' `lastAppliedManager`). `None` without a readable annotation of the same API version.
pub fn last_applied_allowed(live: &Value, root: Ty, api_version: &str) -> Option<FieldSet> {
    let text = last_applied(live)?;
    let applied: Value = serde_json::from_str(text).ok()?;
    if applied["apiVersion"].as_str() != Some(api_version) {
        return None;
    }
    let Ty::Struct(kind) = root else { return None };
    let applied = typed::canonical(kind.name, &applied)?;
    let set = typed::field_set(&applied, root, true).ok()?;
    let cmp = typed::compare(Some(&applied), Some(live), root).ok()?;
    Some(set.difference(&cmp.modified).difference(&cmp.added).difference(&cmp.removed))
}

/// `merged` with its last-applied annotation, if it has one, set to `config` (without that annotation) as
/// compact JSON: what Kubernetes' `lastAppliedUpdater` does for applies by `kubectl`, so that a client-side
/// apply after a server-side one sees what was applied.
pub fn with_last_applied(mut merged: Value, config: &Value) -> Value {
    if last_applied(&merged).is_none() {
        return merged;
    }
    let mut applied = config.clone();
    if let Some(a) = applied.pointer_mut("/metadata/annotations").and_then(Value::as_object_mut) {
        a.remove(LAST_APPLIED_ANNOTATION);
    }
    let mut text = applied.to_string();
    text.push('\n');
    if let Some(a) = merged.pointer_mut("/metadata/annotations").and_then(Value::as_object_mut) {
        a.insert(LAST_APPLIED_ANNOTATION.to_string(), Value::String(text));
    }
    merged
}
