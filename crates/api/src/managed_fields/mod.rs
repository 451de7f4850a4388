//! `metadata.managedFields` and server-side apply, as Kubernetes' field manager
//! (`k8s.io/apimachinery/pkg/util/managedfields`) and structured-merge-diff keep them.
//!
//! Every write records who set which fields: a [`Managed`] holds one entry per manager identity (manager
//! name, operation `Apply` or `Update`, API version for updates, subresource) with its [`FieldSet`] and the
//! time it last changed something. [`update`] records a write of a whole object (create, update, any patch
//! but apply): the fields it changed move to its entry. [`apply`] merges an applied configuration: the
//! applier owns exactly the fields its configuration names, fields it owned before and no longer names are
//! removed from the object unless someone else owns them, and changing a field another manager owns is a
//! [`Conflict`] unless forced.
//!
//! The paths come from the object's JSON and the facts of [`crate::schema`] ([`typed`]); the metadata
//! fields the server owns (name, namespace, uid, resourceVersion, generation, creationTimestamp,
//! managedFields, ...) are never owned, and the object's own writes never own `status` of a kind with a
//! status subresource, nor a status write anything else ([`Scope`]).

pub mod apply;
pub mod fieldset;
pub mod merge;
pub mod typed;
pub mod update;

use std::fmt;
use std::sync::LazyLock;

pub use apply::{ApplyRequest, LAST_APPLIED_ANNOTATION, apply, last_applied_allowed, with_last_applied};
pub use fieldset::{FieldSet, Path, PathElement, Scalar};
pub use update::{UpdateWriter, record_update, update};

use crate::v1::{FieldsV1, ManagedFieldsEntry};

/// The most `Update` entries kept; older ones are merged into `ancient-changes` (Kubernetes' cap).
pub const MAX_UPDATE_MANAGERS: usize = 10;
/// The manager of the fields an object had before its first apply, when nothing recorded them.
pub const BEFORE_FIRST_APPLY: &str = "before-first-apply";
/// The manager the oldest update entries are merged into.
const ANCIENT_CHANGES: &str = "ancient-changes";
/// A field manager name's longest length.
pub const MAX_MANAGER_LENGTH: usize = 128;

/// Why managed fields could not be read, or an apply not done.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ManagedFieldsError {
    /// A value the schema cannot track (`.spec.containers: duplicate entries for key [name="a"]`).
    #[error("{path}: {reason}")]
    Invalid { path: String, reason: String },
    /// A `fieldsV1` that is not a field set.
    #[error("fieldsV1: {0}")]
    FieldsV1(String),
    /// An entry of `metadata.managedFields` that cannot be read.
    #[error("metadata.managedFields[{index}].{field}: {reason}")]
    Entry { index: usize, field: &'static str, reason: String },
    /// An apply would change fields other managers own.
    #[error("{0}")]
    Conflicts(Conflicts),
}

/// The field manager of a request that names none: its User-Agent up to the first `/`, printable characters
/// only, at most [`MAX_MANAGER_LENGTH`] bytes (Kubernetes' `prefixFromUserAgent`): `kubectl/v1.32.4
/// (linux/amd64) kubernetes/4cb5f07` is `kubectl`.
pub fn manager_from_user_agent(user_agent: &str) -> String {
    let product = user_agent.split('/').next().unwrap_or("");
    let mut out = String::new();
    for c in product.chars().filter(|c| !c.is_control()) {
        if out.len() + c.len_utf8() > MAX_MANAGER_LENGTH {
            break;
        }
        out.push(c);
    }
    out
}

/// Why `name` cannot be a field manager, as Kubernetes' `ValidateFieldManager` says it (the field path is
/// the caller's): too long, or a character that is not printable.
pub fn check_manager(name: &str) -> Result<(), String> {
    if name.len() > MAX_MANAGER_LENGTH {
        return Err(format!("Too long: may not be more than {MAX_MANAGER_LENGTH} bytes"));
    }
    match name.char_indices().find(|(_, c)| c.is_control()) {
        Some((i, c)) => Err(format!(
            "Invalid value: {name:?}: invalid character U+{:04X} (at position {i})",
            u32::from(c)
        )),
        None => Ok(()),
    }
}

/// How a manager set its fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Operation {
    Apply,
    Update,
}

impl Operation {
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Apply => "Apply",
            Operation::Update => "Update",
        }
    }
}

/// Who owns an entry: Kubernetes' manager identifier. Appliers are one manager whatever API version they
/// apply through; updaters are one per API version.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ManagerId {
    pub manager: String,
    pub operation: Operation,
    /// Empty for `Apply`.
    pub api_version: String,
    pub subresource: String,
}

impl ManagerId {
    pub fn apply(manager: &str, subresource: &str) -> ManagerId {
        ManagerId {
            manager: manager_name(manager),
            operation: Operation::Apply,
            api_version: String::new(),
            subresource: subresource.to_string(),
        }
    }

    pub fn update(manager: &str, api_version: &str, subresource: &str) -> ManagerId {
        ManagerId {
            manager: manager_name(manager),
            operation: Operation::Update,
            api_version: api_version.to_string(),
            subresource: subresource.to_string(),
        }
    }
}

/// An empty manager name is `unknown`, as in Kubernetes.
fn manager_name(m: &str) -> String {
    if m.is_empty() { "unknown".into() } else { m.to_string() }
}

impl fmt::Display for ManagerId {
    /// As Kubernetes names a manager in conflicts: `"kubectl"`, `"navctl" using apps/v1`,
    /// `"kubelet" with subresource "status" using v1`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.manager)?;
        if !self.subresource.is_empty() {
            write!(f, " with subresource {:?}", self.subresource)?;
        }
        if self.operation == Operation::Update {
            write!(f, " using {}", self.api_version)?;
        }
        Ok(())
    }
}

/// One manager's fields.
#[derive(Debug, Clone)]
pub struct ManagedEntry {
    pub id: ManagerId,
    /// The API version the fields are in (kept for appliers too).
    pub api_version: String,
    set: FieldSet,
    /// The FieldsV1 text `set` was read from, while it is unchanged (written back as it was).
    raw: Option<Vec<u8>>,
    /// When the manager last changed the object (RFC 3339); empty when unknown.
    pub time: String,
}

impl PartialEq for ManagedEntry {
    fn eq(&self, other: &Self) -> bool {
        (&self.id, &self.api_version, &self.set, &self.time)
            == (&other.id, &other.api_version, &other.set, &other.time)
    }
}

impl ManagedEntry {
    pub fn set(&self) -> &FieldSet {
        &self.set
    }

    /// The set, to change it.
    pub fn set_mut(&mut self) -> &mut FieldSet {
        self.raw = None;
        &mut self.set
    }

    /// Removes `other`'s members from the set.
    fn subtract(&mut self, other: &FieldSet) {
        if self.set.subtract(other) {
            self.raw = None;
        }
    }
}

/// The decoded `metadata.managedFields` of an object.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Managed {
    entries: Vec<ManagedEntry>,
}

/// Whether a request's managedFields ask to reset them: one empty entry (an empty list is the other way,
/// which only the JSON form of a request can tell from an absent one).
pub fn is_reset(list: &[ManagedFieldsEntry]) -> bool {
    matches!(list, [only] if *only == ManagedFieldsEntry::default())
}

impl Managed {
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn entries(&self) -> &[ManagedEntry] {
        &self.entries
    }

    pub fn get(&self, id: &ManagerId) -> Option<&ManagedEntry> {
        self.entries.iter().find(|e| e.id == *id)
    }

    /// The entry of `id`, made empty (no time) if there is none.
    pub fn entry(&mut self, id: &ManagerId, api_version: &str) -> &mut ManagedEntry {
        let i = match self.entries.iter().position(|e| e.id == *id) {
            Some(i) => i,
            None => {
                self.entries.push(ManagedEntry {
                    id: id.clone(),
                    api_version: api_version.to_string(),
                    set: FieldSet::new(),
                    raw: None,
                    time: String::new(),
                });
                self.entries.len() - 1
            }
        };
        &mut self.entries[i]
    }

    /// Removes the entries that own nothing.
    fn drop_empty(&mut self) {
        self.entries.retain(|e| !e.set.is_empty());
    }

    /// Reads `metadata.managedFields`, checking each entry as Kubernetes does.
    pub fn decode(list: &[ManagedFieldsEntry]) -> Result<Managed, ManagedFieldsError> {
        let mut m = Managed::default();
        for (index, e) in list.iter().enumerate() {
            let err =
                |field, reason: &str| ManagedFieldsError::Entry { index, field, reason: reason.to_string() };
            let operation = match e.operation.as_str() {
                "Apply" => Operation::Apply,
                "Update" => Operation::Update,
                _ => return Err(err("operation", "must be `Apply` or `Update`")),
            };
            if e.api_version.is_empty() {
                return Err(err("apiVersion", "must not be empty"));
            }
            match e.fields_type.as_str() {
                "FieldsV1" => {}
                "" => return Err(err("fieldsType", "missing fieldsType")),
                _ => return Err(err("fieldsType", "must be `FieldsV1`")),
            }
            if !e.time.is_empty() && humantime::parse_rfc3339_weak(&e.time).is_err() {
                return Err(err("time", "must be an RFC 3339 time"));
            }
            let raw = e.fields_v1.as_ref().map_or(&[][..], |f| f.raw.as_slice());
            let set = FieldSet::from_fields_v1_text(raw).map_err(|x| ManagedFieldsError::Entry {
                index,
                field: "fieldsV1",
                reason: x.to_string(),
            })?;
            let id = ManagerId {
                manager: e.manager.clone(),
                operation,
                api_version: if operation == Operation::Apply {
                    String::new()
                } else {
                    e.api_version.clone()
                },
                subresource: e.subresource.clone(),
            };
            let entry = ManagedEntry {
                id,
                api_version: e.api_version.clone(),
                set,
                raw: Some(raw.to_vec()),
                time: e.time.clone(),
            };
            // A repeated identity: the later entry wins, as in Kubernetes.
            match m.entries.iter_mut().find(|x| x.id == entry.id) {
                Some(x) => *x = entry,
                None => m.entries.push(entry),
            }
        }
        Ok(m)
    }

    /// The entries as `metadata.managedFields`, sorted as Kubernetes sorts them: appliers first, then by
    /// time, manager, API version and subresource.
    pub fn encode(&self) -> Vec<ManagedFieldsEntry> {
        let mut out: Vec<ManagedFieldsEntry> = self
            .entries
            .iter()
            .map(|e| ManagedFieldsEntry {
                manager: e.id.manager.clone(),
                operation: e.id.operation.as_str().to_string(),
                api_version: e.api_version.clone(),
                time: e.time.clone(),
                fields_type: "FieldsV1".to_string(),
                fields_v1: Some(FieldsV1::from_json(match &e.raw {
                    Some(raw) => raw.clone(),
                    None => e.set.to_fields_v1().into_bytes(),
                })),
                subresource: e.id.subresource.clone(),
            })
            .collect();
        out.sort_by(|p, q| {
            p.operation
                .cmp(&q.operation)
                .then_with(|| seconds(&p.time).cmp(&seconds(&q.time)))
                .then_with(|| p.manager.cmp(&q.manager))
                .then_with(|| p.api_version.cmp(&q.api_version))
                .then_with(|| p.subresource.cmp(&q.subresource))
        });
        out
    }

    /// Merges the oldest `Update` entries, per API version, into `ancient-changes` until at most `max`
    /// remain (Kubernetes' `capManagersManager`).
    pub fn cap_update_managers(&mut self, max: usize) {
        let mut updaters: Vec<usize> =
            (0..self.entries.len()).filter(|&i| self.entries[i].id.operation == Operation::Update).collect();
        if updaters.len() <= max {
            return;
        }
        updaters.sort_by(|&a, &b| {
            let (ea, eb) = (&self.entries[a], &self.entries[b]);
            seconds(&ea.time).cmp(&seconds(&eb.time)).then_with(|| ea.id.manager.cmp(&eb.id.manager))
        });
        let ids: Vec<ManagerId> = updaters.iter().map(|&i| self.entries[i].id.clone()).collect();
        let mut first_of_version: Vec<(String, ManagerId)> = Vec::new();
        let mut length = ids.len();
        for id in ids {
            if length <= max {
                break;
            }
            let Some(pos) = self.entries.iter().position(|e| e.id == id) else { continue };
            let version = self.entries[pos].api_version.clone();
            let bucket = ManagerId::update(ANCIENT_CHANGES, &version, "");
            let Some((_, first)) = first_of_version.iter().find(|(v, _)| *v == version) else {
                first_of_version.push((version, id));
                continue;
            };
            if self.get(&bucket).is_none() {
                // The first entry of this version becomes the bucket.
                if let Some(f) = self.entries.iter_mut().find(|e| e.id == *first) {
                    f.id = bucket.clone();
                }
            }
            let merged = self.entries.remove(pos);
            if let Some(b) = self.entries.iter_mut().find(|e| e.id == bucket) {
                b.set_mut().union_with(&merged.set);
                // The merged entry is newer than the bucket's.
                b.time = merged.time;
            }
            length -= 1;
        }
    }
}

/// Seconds since the epoch of an RFC 3339 time; 0 when empty or unreadable.
fn seconds(t: &str) -> u64 {
    humantime::parse_rfc3339_weak(t)
        .ok()
        .and_then(|s| s.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_secs())
}

/// What a write goes through, which decides the fields it may own: the object itself never owns `status`
/// of a kind with a status subresource; a status write owns only `status`; a CertificateSigningRequest's
/// `approval` write owns what it changed (its conditions, maybe metadata: the registry keeps the spec and
/// the certificate as stored).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scope<'a> {
    /// `""`, `"status"`, `"scale"`, `"approval"`.
    pub subresource: &'a str,
    pub has_status: bool,
}

impl Scope<'_> {
    /// The paths of `set` this scope may own.
    pub fn filter(&self, set: FieldSet) -> FieldSet {
        let status = PathElement::field("status");
        match self.subresource {
            "status" => set.only_subtree(&status),
            "approval" => set,
            _ if self.has_status => set.without_subtree(&status),
            _ => set,
        }
    }
}

/// Metadata and type fields nobody owns (Kubernetes' `stripMetaManager`): removed from a manager's set
/// after each operation.
static STRIPPED: LazyLock<FieldSet> = LazyLock::new(|| {
    let mut s = FieldSet::from_paths(&[
        Path::fields(&["apiVersion"]),
        Path::fields(&["kind"]),
        Path::fields(&["metadata"]),
    ]);
    for f in [
        "name",
        "namespace",
        "creationTimestamp",
        "selfLink",
        "uid",
        "clusterName",
        "generation",
        "managedFields",
        "resourceVersion",
    ] {
        s.insert(&Path::fields(&["metadata", f]).0);
    }
    s
});

/// `set` without the fields nobody owns (only those paths: what is below `metadata` stays).
pub fn strip(mut set: FieldSet) -> FieldSet {
    set.subtract(&STRIPPED);
    set
}

/// One field another manager owns and an apply would change.
#[derive(Debug, Clone, PartialEq)]
pub struct Conflict {
    pub manager: ManagerId,
    pub path: Path,
}

/// The conflicts of an apply, sorted by manager, then path.
#[derive(Debug, Clone, PartialEq)]
pub struct Conflicts(pub Vec<Conflict>);

impl fmt::Display for Conflicts {
    /// Kubernetes' message: `Apply failed with 1 conflict: conflict with "navctl" using apps/v1:
    /// .spec.replicas`, or for several, `Apply failed with 2 conflicts: conflicts with "m":\n- .a\n- .b`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let [c] = self.0.as_slice() {
            return write!(f, "Apply failed with 1 conflict: conflict with {}: {}", c.manager, c.path);
        }
        let mut managers: Vec<String> = self.0.iter().map(|c| c.manager.to_string()).collect();
        managers.sort();
        managers.dedup();
        let mut lines = Vec::new();
        for m in &managers {
            lines.push(format!("conflicts with {m}:"));
            for c in self.0.iter().filter(|c| c.manager.to_string() == *m) {
                lines.push(format!("- {}", c.path));
            }
        }
        write!(f, "Apply failed with {} conflicts: {}", self.0.len(), lines.join("\n"))
    }
}

#[cfg(test)]
mod tests;
