//! Recording a write that is not an apply (Kubernetes' `Update` operation): create, update, and JSON,
//! merge and strategic merge patches.
//!
//! The fields the write added or changed move to the writer's `Update` entry (taken from whoever owned
//! them); fields it removed leave every entry. A write that changes nothing changes no entry, not even its
//! time. As in Kubernetes, an object without managed fields is only tracked from its creation or its first
//! apply: updating an untracked object records nothing.

use serde_json::Value;

use super::typed::{self, Ty};
use super::{MAX_UPDATE_MANAGERS, Managed, ManagedFieldsError, ManagerId, Scope, is_reset, strip};
use crate::Object;

/// Records, in `managed`, a write by the `Update` manager `id` that turned `old` (`None`: a create) into
/// `new`, both the JSON of an object of type `root`.
pub fn update(
    managed: &mut Managed,
    old: Option<&Value>,
    new: &Value,
    root: Ty,
    scope: &Scope,
    id: &ManagerId,
    now: &str,
) -> Result<(), ManagedFieldsError> {
    let cmp = typed::compare(old, Some(new), root)?;
    let mut changed = scope.filter(cmp.added);
    changed.union_with(&scope.filter(cmp.modified));
    let removed = scope.filter(cmp.removed);
    for e in &mut managed.entries {
        e.subtract(&changed);
        e.subtract(&removed);
    }
    let mine = strip(changed);
    if !mine.is_empty() {
        let entry = managed.entry(id, &id.api_version);
        if entry.set.is_empty() {
            *entry.set_mut() = mine;
        } else {
            entry.set_mut().union_with(&mine);
        }
        entry.time = now.to_string();
    }
    managed.drop_empty();
    managed.cap_update_managers(MAX_UPDATE_MANAGERS);
    Ok(())
}

/// Who makes a write, for [`record_update`].
#[derive(Debug, Clone, Copy)]
pub struct UpdateWriter<'a> {
    /// The field manager (`fieldManager`, or the User-Agent's product); empty is `unknown`.
    pub manager: &'a str,
    /// `""`, `"status"`, `"scale"` or `"approval"`.
    pub subresource: &'a str,
    /// The request sent `metadata.managedFields: []` (an empty list resets them).
    pub reset: bool,
}

/// Records in `new.metadata.managedFields` a write by `w` of `new` over `old` (`None`: a create), as
/// Kubernetes' field manager does on every write but an apply:
///
/// * the managed fields it starts from are the request's when it sent a valid non-empty list, none when it
///   asked for a reset (`[]` or `[{}]`), else `old`'s; a subresource write always starts from `old`'s;
/// * an update of an object that has none records nothing (Kubernetes tracks from creation or the first
///   apply);
/// * otherwise the changed fields are recorded by [`update`] and the result written back, sorted.
///
/// Cheap when nothing but managedFields differs: then no JSON is made. `now` is the time of the write
/// (RFC 3339). Never fails: a value the schema cannot track (say an item without its key) keeps the managed
/// fields it started from, as Kubernetes' `UpdateNoErrors` does.
pub fn record_update(old: Option<&Object>, new: &mut Object, w: &UpdateWriter, now: &str) {
    let requested = std::mem::take(&mut new.meta_mut().managed_fields);
    let live = old.map_or(&[][..], |o| o.meta().managed_fields.as_slice());
    let reset = w.subresource.is_empty() && (w.reset || is_reset(&requested));
    let decode_live = || Managed::decode(live).unwrap_or_default();
    let managed = if reset {
        Managed::default()
    } else if w.subresource.is_empty() && !requested.is_empty() && requested != live {
        match Managed::decode(&requested) {
            Ok(m) if !m.is_empty() => m,
            _ => decode_live(),
        }
    } else if let Some(old) = old {
        if live.is_empty() {
            return; // an untracked object stays untracked
        }
        // Starting from old's: when nothing else changed, old's list is the answer as it is.
        new.meta_mut().managed_fields = old.meta().managed_fields.clone();
        if new == old {
            return;
        }
        new.meta_mut().managed_fields.clear();
        decode_live()
    } else {
        Managed::default()
    };
    if managed.is_empty() && old.is_some() {
        return; // an untracked object stays untracked
    }
    // What the write started from, kept if recording fails (cheap: unchanged entries keep their text).
    let fallback = managed.encode();
    let info = new.info();
    let Some(root) = typed::root(info.kind) else { return };
    let scope = Scope { subresource: w.subresource, has_status: info.has_status };
    let id = ManagerId::update(w.manager, info.api_version, w.subresource);
    let mut managed = managed;
    let result = (|| {
        let old_json = old.map(object_json).transpose()?;
        let new_json = object_json(new)?;
        update(&mut managed, old_json.as_ref(), &new_json, root, &scope, &id, now)
    })();
    new.meta_mut().managed_fields = match result {
        Ok(()) => managed.encode(),
        Err(_) => fallback,
    };
}

/// The JSON of an object, without its managed fields (left out before serializing: writing them is
/// dearer than copying the object).
pub fn object_json(o: &Object) -> Result<Value, ManagedFieldsError> {
    let v = if o.meta().managed_fields.is_empty() {
        serde_json::to_value(o)
    } else {
        let mut bare = o.clone();
        bare.meta_mut().managed_fields.clear();
        serde_json::to_value(&bare)
    };
    v.map_err(|e| ManagedFieldsError::Invalid { path: String::new(), reason: e.to_string() })
}
