//! An object's JSON as server-side apply sees it: which values are tracked field by field and which are
//! one value, from the facts [`crate::schema`] holds (the same list types and merge keys strategic merge
//! patch uses), and the walks over it: the set of fields a value sets ([`field_set`]), what changed between
//! two values ([`compare`]), and [`ensure_named_fields`].
//!
//! * A message is a struct: its fields are tracked one by one, unless Kubernetes marks the type atomic
//!   (`LabelSelector`, `LocalObjectReference`, ...: [`schema::is_atomic_struct`]). `Quantity`,
//!   `IntOrString` and `FieldsV1` are scalars in JSON.
//! * A `map<string, V>` is tracked key by key (`f:<key>`), unless atomic (`PodSpec.nodeSelector`).
//! * A list is atomic unless it has a list type: `set` (items by value, `v:`), `map` (items by their keys,
//!   `k:{...}`); without a list type, a merge key of its patch strategy makes it a list map on that key
//!   (as Kubernetes' OpenAPI-to-schema conversion does). A missing key takes its declared default
//!   ([`schema::key_default`]: a port's `protocol` is `TCP`).
//!
//! One difference from Kubernetes, which compares Go values: a struct field is never owned as a whole
//! (`"."`) when it appears or disappears, only through its fields; Kubernetes owns the pointer ones
//! (`rollingUpdate`, `securityContext`) that way too. Maps and lists are, unless Kubernetes always writes
//! them (a required field, such as `containers`, is present even when empty in Go).

use std::collections::HashMap;
use std::sync::LazyLock;

use serde_json::{Map, Value};

use super::ManagedFieldsError;
use super::fieldset::{FieldSet, Path, PathElement, Scalar};
use crate::schema::{self, FieldType, ListType, Message, Strategy};

/// The keys of a list map.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keys {
    Declared(&'static [&'static str]),
    /// The merge key of a list that has a patch strategy but no list type.
    MergeKey(&'static str),
}

impl Keys {
    fn names(&self) -> &[&'static str] {
        match self {
            Keys::Declared(k) => k,
            Keys::MergeKey(k) => std::slice::from_ref(k),
        }
    }
}

/// How list items are told apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListKind {
    /// Items are scalars, identified by value.
    Set,
    /// Items are objects, identified by these fields.
    Map(Keys),
}

/// The type of a map's values or a list's items.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Elem {
    Scalar,
    Message(&'static Message),
}

/// How a value is tracked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ty {
    /// One value: a scalar, or an atomic struct, map or list.
    Leaf,
    /// A message tracked field by field.
    Struct(&'static Message),
    /// A map tracked key by key.
    Map(Elem),
    /// A list tracked item by item.
    List(ListKind, Elem),
}

/// A message whose JSON is a scalar.
fn is_scalar_message(name: &str) -> bool {
    matches!(name, "Quantity" | "IntOrString" | "FieldsV1" | "RawExtension")
}

impl Elem {
    fn of(ty: FieldType) -> Elem {
        match ty {
            FieldType::Message(m) if !is_scalar_message(m) => {
                schema::message(m).map_or(Elem::Scalar, Elem::Message)
            }
            _ => Elem::Scalar,
        }
    }

    /// How one value of this type is tracked.
    pub fn ty(self) -> Ty {
        match self {
            Elem::Message(m) if !schema::is_atomic_struct(m.name) => Ty::Struct(m),
            _ => Ty::Leaf,
        }
    }
}

/// Field types by `(message, field)`, built once from the schema.
static FIELDS: LazyLock<HashMap<(&'static str, &'static str), Ty>> = LazyLock::new(|| {
    let mut m = HashMap::new();
    for msg in schema::messages() {
        for f in msg.fields {
            m.insert((msg.name, f.json_name), field_ty(msg, f));
        }
    }
    m
});

fn field_ty(msg: &'static Message, f: &'static schema::Field) -> Ty {
    if let Some(value) = f.map_value {
        if schema::is_atomic_map(msg.name, f.json_name) {
            return Ty::Leaf;
        }
        return Ty::Map(Elem::of(value));
    }
    let elem = Elem::of(f.ty);
    if !f.repeated {
        return elem.ty();
    }
    let kind = match schema::list_type(msg.name, f.json_name) {
        Some(ListType::Atomic) => None,
        Some(ListType::Set) => Some(ListKind::Set),
        Some(ListType::Map(keys)) => Some(ListKind::Map(Keys::Declared(keys))),
        None => schema::patch_strategy(msg.name, f.json_name)
            .filter(|p| matches!(p.strategy, Strategy::Merge | Strategy::MergeRetainKeys))
            .and_then(|p| p.merge_key)
            .map(|k| ListKind::Map(Keys::MergeKey(k))),
    };
    match kind {
        Some(kind) => Ty::List(kind, elem),
        None => Ty::Leaf,
    }
}

/// The type of the field `name` of `msg`; `None` for a field the message does not have.
pub fn field_of(msg: &Message, name: &str) -> Option<Ty> {
    let field = msg.field(name)?;
    FIELDS.get(&(msg.name, field.json_name)).copied()
}

/// The type of a kind's whole object (`"Deployment"`).
pub fn root(kind: &str) -> Option<Ty> {
    schema::message(kind).map(Ty::Struct)
}

/// The type of a child of a value of type `ty`: a field of a struct, a value of a map, an item of a list.
fn child(ty: Ty, pe: &PathElement) -> Option<Ty> {
    match (ty, pe) {
        (Ty::Struct(m), PathElement::Field(name)) => field_of(m, name),
        (Ty::Map(elem), PathElement::Field(_)) => Some(elem.ty()),
        (Ty::List(_, elem), PathElement::Key(_) | PathElement::Value(_) | PathElement::Index(_)) => {
            Some(elem.ty())
        }
        _ => None,
    }
}

fn invalid(path: &[PathElement], reason: impl Into<String>) -> ManagedFieldsError {
    ManagedFieldsError::Invalid { path: Path(path.to_vec()).to_string(), reason: reason.into() }
}

/// The path element of one item of a list (`index` for messages).
pub fn item_element(
    kind: ListKind,
    elem: Elem,
    item: &Value,
    index: usize,
    path: &[PathElement],
) -> Result<PathElement, ManagedFieldsError> {
    match kind {
        ListKind::Set => Scalar::from_json(item)
            .map(PathElement::Value)
            .ok_or_else(|| invalid(path, format!("element {index}: the items of a set must be scalars"))),
        ListKind::Map(keys) => {
            let Value::Object(m) = item else {
                return Err(invalid(
                    path,
                    format!("element {index}: associative list with keys may not have non-map elements"),
                ));
            };
            let mut out = Vec::with_capacity(keys.names().len());
            for k in keys.names() {
                let v = match m.get(*k).filter(|v| !v.is_null()) {
                    Some(v) => v.clone(),
                    None => match elem {
                        Elem::Message(msg) => match schema::key_default(msg.name, k) {
                            Some(d) => Value::String(d.to_string()),
                            None => {
                                return Err(invalid(
                                    path,
                                    format!(
                                        "element {index}: associative list with keys has an element that omits key field {k:?} (and doesn't have default value)"
                                    ),
                                ));
                            }
                        },
                        Elem::Scalar => return Err(invalid(path, format!("element {index}: not an object"))),
                    },
                };
                let s = Scalar::from_json(&v).ok_or_else(|| {
                    invalid(path, format!("element {index}: key field {k:?} must be a scalar"))
                })?;
                out.push((k.to_string(), s));
            }
            out.sort();
            Ok(PathElement::Key(out))
        }
    }
}

/// The items of a list value with their path elements, in order; repeated elements are kept only the first
/// time when `allow_duplicates`, else they are an error (an applied configuration may not repeat a key).
pub fn index_items<'v>(
    kind: ListKind,
    elem: Elem,
    items: &'v [Value],
    path: &[PathElement],
    allow_duplicates: bool,
) -> Result<Vec<(PathElement, &'v Value)>, ManagedFieldsError> {
    let mut out: Vec<(PathElement, &Value)> = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let pe = item_element(kind, elem, item, i, path)?;
        if out.iter().any(|(seen, _)| *seen == pe) {
            if allow_duplicates {
                continue;
            }
            return Err(invalid(path, format!("duplicate entries for key {pe}")));
        }
        out.push((pe, item));
    }
    Ok(out)
}

fn object(v: Option<&Value>) -> Option<&Map<String, Value>> {
    v.and_then(Value::as_object)
}

fn array(v: Option<&Value>) -> Option<&Vec<Value>> {
    v.and_then(Value::as_array)
}

/// The set of fields `v` (of type `ty`) sets, as structured-merge-diff's `ToFieldSet`: every scalar and
/// atomic value, every list item and map key, and struct fields that are null or empty objects. Fields the
/// schema does not have are left out.
pub fn field_set(v: &Value, ty: Ty, allow_duplicates: bool) -> Result<FieldSet, ManagedFieldsError> {
    walk_set(v, ty, allow_duplicates, &mut Vec::new())
}

/// The paths below `v`, relative to it (the caller decides whether `v` itself is a member).
fn walk_set(
    v: &Value,
    ty: Ty,
    dup: bool,
    path: &mut Vec<PathElement>,
) -> Result<FieldSet, ManagedFieldsError> {
    let mut out = FieldSet::new();
    match ty {
        Ty::Leaf => {}
        Ty::Struct(_) | Ty::Map(_) => {
            for (k, cv) in object(Some(v)).into_iter().flatten() {
                let (cty, member) = match ty {
                    Ty::Struct(msg) => match field_of(msg, k) {
                        Some(cty) => {
                            let empty = cv.is_null() || cv.as_object().is_some_and(Map::is_empty);
                            (cty, empty || cty == Ty::Leaf)
                        }
                        None => continue,
                    },
                    Ty::Map(elem) => (elem.ty(), true),
                    _ => unreachable!("matched above"),
                };
                let pe = PathElement::field(k.as_str());
                path.push(pe);
                let below = walk_set(cv, cty, dup, path)?;
                let pe = path.pop().expect("pushed");
                out.insert_child(&pe, below);
                if member {
                    out.insert_member(pe);
                }
            }
        }
        Ty::List(kind, elem) => {
            let Some(items) = v.as_array() else { return Ok(out) };
            for (pe, item) in index_items(kind, elem, items, path, dup)? {
                path.push(pe);
                let below = walk_set(item, elem.ty(), dup, path)?;
                let pe = path.pop().expect("pushed");
                out.insert_child(&pe, below);
                out.insert_member(pe);
            }
        }
    }
    Ok(out)
}

/// What changed from one value to another.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Comparison {
    /// Paths only the new value has.
    pub added: FieldSet,
    /// Leaves both have, with different values.
    pub modified: FieldSet,
    /// Paths only the old value has.
    pub removed: FieldSet,
}

impl Comparison {
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.modified.is_empty() && self.removed.is_empty()
    }

    /// Added and modified paths: what the new value sets differently.
    pub fn changed(&self) -> FieldSet {
        self.added.union(&self.modified)
    }

    /// The comparison with `filter` applied to each set.
    pub fn filtered(self, filter: impl Fn(FieldSet) -> FieldSet) -> Comparison {
        Comparison {
            added: filter(self.added),
            modified: filter(self.modified),
            removed: filter(self.removed),
        }
    }

    /// Adds `below` under `pe`, and `pe` itself as `change` says.
    fn insert(&mut self, pe: PathElement, below: Comparison, change: Option<Change>) {
        self.added.insert_child(&pe, below.added);
        self.modified.insert_child(&pe, below.modified);
        self.removed.insert_child(&pe, below.removed);
        match change {
            Some(Change::Added) => self.added.insert_member(pe),
            Some(Change::Modified) => self.modified.insert_member(pe),
            Some(Change::Removed) => self.removed.insert_member(pe),
            None => {}
        }
    }
}

/// How one node changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Change {
    Added,
    Modified,
    Removed,
}

/// What changed from `old` to `new` (either absent), as structured-merge-diff's `Compare`: leaves are
/// added, removed or modified; a list item, a map entry or a list or map field that appears or disappears
/// as a whole is added or removed as well (see the module docs for struct fields). Repeated list keys count
/// once.
pub fn compare(old: Option<&Value>, new: Option<&Value>, ty: Ty) -> Result<Comparison, ManagedFieldsError> {
    walk_compare(old, new, ty, false, &mut Vec::new()).map(|(c, _)| c)
}

fn leaf(l: Option<&Value>, r: Option<&Value>) -> Option<Change> {
    match (l, r) {
        (None, Some(_)) => Some(Change::Added),
        (Some(_), None) => Some(Change::Removed),
        (Some(a), Some(b)) if a != b => Some(Change::Modified),
        _ => None,
    }
}

/// The changes below one node (relative to it), and how the node itself changed.
fn walk_compare(
    l: Option<&Value>,
    r: Option<&Value>,
    ty: Ty,
    mark_self: bool,
    path: &mut Vec<PathElement>,
) -> Result<(Comparison, Option<Change>), ManagedFieldsError> {
    let (l, r) = (l.filter(|v| !v.is_null()), r.filter(|v| !v.is_null()));
    let mut out = Comparison::default();
    match ty {
        Ty::Leaf => return Ok((out, leaf(l, r))),
        Ty::Struct(_) | Ty::Map(_) => {
            let (lm, rm) = (object(l), object(r));
            if lm.is_none_or(Map::is_empty) && rm.is_none_or(Map::is_empty) {
                return Ok((out, leaf(l, r)));
            }
            let pairs =
                lm.into_iter().flatten().map(|(k, lv)| (k, Some(lv), rm.and_then(|m| m.get(k)))).chain(
                    rm.into_iter()
                        .flatten()
                        .filter(|(k, _)| !lm.is_some_and(|m| m.contains_key(*k)))
                        .map(|(k, rv)| (k, None, Some(rv))),
                );
            for (k, lv, rv) in pairs {
                let (cty, cmark) = match ty {
                    Ty::Struct(msg) => match field_of(msg, k) {
                        // A list or map field is owned as a whole when it appears, unless Kubernetes
                        // always writes it (a required field).
                        Some(cty @ (Ty::List(..) | Ty::Map(_))) => (cty, !schema::is_required(msg.name, k)),
                        Some(cty) => (cty, false),
                        None => continue,
                    },
                    Ty::Map(elem) => (elem.ty(), true),
                    _ => unreachable!("matched above"),
                };
                path.push(PathElement::field(k.as_str()));
                let (below, change) = walk_compare(lv, rv, cty, cmark, path)?;
                let pe = path.pop().expect("pushed");
                out.insert(pe, below, change);
            }
        }
        Ty::List(kind, elem) => {
            let (la, ra) = (array(l), array(r));
            if la.is_none_or(Vec::is_empty) && ra.is_none_or(Vec::is_empty) {
                return Ok((out, leaf(l, r)));
            }
            let li = index_items(kind, elem, la.map_or(&[][..], Vec::as_slice), path, true)?;
            let ri = index_items(kind, elem, ra.map_or(&[][..], Vec::as_slice), path, true)?;
            let pairs = li
                .iter()
                .map(|(pe, lv)| (pe, Some(*lv), ri.iter().find(|(p, _)| p == pe).map(|(_, v)| *v)))
                .chain(
                    ri.iter()
                        .filter(|(pe, _)| !li.iter().any(|(p, _)| p == pe))
                        .map(|(pe, rv)| (pe, None, Some(*rv))),
                );
            for (pe, lv, rv) in pairs {
                path.push(pe.clone());
                let (below, change) = walk_compare(lv, rv, elem.ty(), true, path)?;
                let pe = path.pop().expect("pushed");
                out.insert(pe, below, change);
            }
        }
    }
    let change = match (mark_self, l, r) {
        (true, None, Some(_)) => Some(Change::Added),
        (true, Some(_), None) => Some(Change::Removed),
        _ => None,
    };
    Ok((out, change))
}

/// `v`, an object of `kind` as a client wrote it, with each value it gives in the form the api-server
/// stores and writes (`cpu: 1` is `"1"`, a file mode `0644` is `420`), so that it compares with stored
/// objects by meaning. What the value says stays as it is: fields it gives with a zero value, or null, are
/// kept; fields it does not give are not added. `None` when `v` is not an object of `kind`.
pub fn canonical(kind: &str, v: &Value) -> Option<Value> {
    let yaml = serde_yaml::to_value(v).ok()?;
    let object = crate::Object::from_value(kind, yaml).ok()?;
    let stored = serde_json::to_value(&object).ok()?;
    Some(canonical_values(v, Some(&stored)))
}

fn canonical_values(given: &Value, stored: Option<&Value>) -> Value {
    match (given, stored) {
        (Value::Object(g), Some(Value::Object(s))) => {
            Value::Object(g.iter().map(|(k, gv)| (k.clone(), canonical_values(gv, s.get(k)))).collect())
        }
        (Value::Array(g), Some(Value::Array(s))) if g.len() == s.len() => {
            Value::Array(g.iter().zip(s).map(|(gv, sv)| canonical_values(gv, Some(sv))).collect())
        }
        (Value::Null, _) => Value::Null,
        (_, Some(sv)) if !sv.is_object() && !sv.is_array() => sv.clone(),
        (gv, _) => gv.clone(),
    }
}

/// `set` with every struct field that has paths below it made a member too (structured-merge-diff's
/// `EnsureNamedFieldsAreMembers`): owning `spec.strategy.type` then also owns `spec.strategy`, but owning
/// a label does not own `labels`' keys' parent map, nor a list item its list.
pub fn ensure_named_fields(set: &FieldSet, ty: Ty) -> FieldSet {
    let mut out = FieldSet::new();
    for m in set.members() {
        out.insert_member(m.clone());
    }
    for (pe, c) in set.children() {
        let cty = child(ty, pe);
        if let (Ty::Struct(_), PathElement::Field(_), Some(_)) = (ty, pe, cty) {
            out.insert_member(pe.clone());
        }
        let below = match cty {
            Some(cty) => ensure_named_fields(c, cty),
            None => c.clone(),
        };
        out.insert_child(pe, below);
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn deployment() -> Ty {
        root("Deployment").unwrap()
    }

    fn paths(s: &FieldSet) -> Vec<String> {
        s.paths().iter().map(ToString::to_string).collect()
    }

    #[test]
    fn types_come_from_the_schema() {
        let spec = schema::message("PodSpec").unwrap();
        let container = schema::message("Container").unwrap();
        assert_eq!(
            field_of(spec, "containers"),
            Some(Ty::List(ListKind::Map(Keys::Declared(&["name"])), Elem::Message(container)))
        );
        assert_eq!(field_of(spec, "tolerations"), Some(Ty::Leaf), "atomic list");
        assert_eq!(field_of(spec, "nodeSelector"), Some(Ty::Leaf), "atomic map");
        let meta = schema::message("ObjectMeta").unwrap();
        assert_eq!(field_of(meta, "labels"), Some(Ty::Map(Elem::Scalar)));
        assert_eq!(field_of(meta, "finalizers"), Some(Ty::List(ListKind::Set, Elem::Scalar)));
        let ds = schema::message("DeploymentSpec").unwrap();
        assert_eq!(field_of(ds, "selector"), Some(Ty::Leaf), "LabelSelector is atomic");
        assert_eq!(field_of(ds, "replicas"), Some(Ty::Leaf));
        assert_eq!(field_of(ds, "nope"), None);
        let res = schema::message("ResourceRequirements").unwrap();
        assert_eq!(field_of(res, "limits"), Some(Ty::Map(Elem::Scalar)), "Quantity values are scalars");
    }

    #[test]
    fn field_sets_by_merge_key() {
        let d = json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "labels": {"app": "web"}},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}}, "template": {"spec": {
                "containers": [{"name": "web", "image": "nginx",
                    "ports": [{"containerPort": 80}],
                    "env": [{"name": "A", "value": "1"}]}]}}}
        });
        let s = field_set(&d, deployment(), false).unwrap();
        let p = paths(&s);
        for want in [
            ".apiVersion",
            ".metadata.name",
            ".metadata.labels.app",
            ".spec.replicas",
            ".spec.selector",
            r#".spec.template.spec.containers[name="web"]"#,
            r#".spec.template.spec.containers[name="web"].image"#,
            r#".spec.template.spec.containers[name="web"].ports[containerPort=80,protocol="TCP"]"#,
            r#".spec.template.spec.containers[name="web"].ports[containerPort=80,protocol="TCP"].containerPort"#,
            r#".spec.template.spec.containers[name="web"].env[name="A"].value"#,
        ] {
            assert!(p.contains(&want.to_string()), "{want} in {p:#?}");
        }
        assert!(!p.contains(&".metadata.labels".to_string()), "a non-empty map field is not a member");
        assert!(!p.iter().any(|x| x.starts_with(".spec.selector.")), "atomic: {p:#?}");
        // A repeated key in an applied configuration is an error naming the list.
        let dup = json!({"spec": {"template": {"spec": {"containers": [{"name": "a"}, {"name": "a"}]}}}});
        let e = field_set(&dup, deployment(), false).unwrap_err();
        assert_eq!(e.to_string(), r#".spec.template.spec.containers: duplicate entries for key [name="a"]"#);
        assert!(field_set(&dup, deployment(), true).is_ok());
        let keyless = json!({"spec": {"template": {"spec": {"containers": [{"image": "x"}]}}}});
        let e = field_set(&keyless, deployment(), false).unwrap_err();
        assert!(e.to_string().contains(r#"omits key field "name""#), "{e}");
    }

    #[test]
    fn compare_marks_leaves_items_and_new_maps() {
        let old = json!({"metadata": {"name": "web"}, "spec": {"replicas": 1, "template": {"spec": {
            "containers": [{"name": "web", "image": "a"}, {"name": "old", "image": "o"}]}}}});
        let new = json!({"metadata": {"name": "web", "labels": {"x": "y"}}, "spec": {"replicas": 2, "template": {"spec": {
            "containers": [{"name": "web", "image": "a", "env": [{"name": "E", "value": "v"}]}]}}}});
        let c = compare(Some(&old), Some(&new), deployment()).unwrap();
        assert_eq!(paths(&c.modified), [".spec.replicas"]);
        assert_eq!(
            paths(&c.added),
            [
                ".metadata.labels",
                ".metadata.labels.x",
                r#".spec.template.spec.containers[name="web"].env"#,
                r#".spec.template.spec.containers[name="web"].env[name="E"]"#,
                r#".spec.template.spec.containers[name="web"].env[name="E"].name"#,
                r#".spec.template.spec.containers[name="web"].env[name="E"].value"#,
            ]
        );
        assert_eq!(
            paths(&c.removed),
            [
                r#".spec.template.spec.containers[name="old"]"#,
                r#".spec.template.spec.containers[name="old"].image"#,
                r#".spec.template.spec.containers[name="old"].name"#,
            ]
        );
        // A create: everything is added; `containers` (required) is not owned as a whole, `spec` neither.
        let c = compare(None, Some(&new), deployment()).unwrap();
        let added = paths(&c.added);
        assert!(added.contains(&r#".spec.template.spec.containers[name="web"]"#.to_string()));
        assert!(!added.contains(&".spec.template.spec.containers".to_string()));
        assert!(!added.contains(&".spec".to_string()));
        assert!(compare(Some(&new), Some(&new), deployment()).unwrap().is_empty());
        // Empty objects on one side are leaves (`emptyDir: {}`).
        let c =
            compare(Some(&json!({})), Some(&json!({"spec": {"paused": true, "strategy": {}}})), deployment())
                .unwrap();
        assert_eq!(paths(&c.added), [".spec.paused", ".spec.strategy"]);
    }

    #[test]
    fn canonical_forms_keep_what_was_given() {
        let given = json!({"apiVersion": "apps/v1", "kind": "Deployment", "spec": {"paused": false, "replicas": 0,
            "template": {"metadata": {"creationTimestamp": null}, "spec": {"containers": [{"name": "c",
                "resources": {"limits": {"cpu": 1, "memory": "64Mi"}}}],
                "volumes": [{"name": "v", "configMap": {"name": "x", "defaultMode": "0644"}}]}}}});
        let c = canonical("Deployment", &given).unwrap();
        let spec = &c["spec"]["template"]["spec"];
        assert_eq!(spec["containers"][0]["resources"]["limits"], json!({"cpu": "1", "memory": "64Mi"}));
        assert_eq!(spec["volumes"][0]["configMap"]["defaultMode"], 420);
        assert_eq!(c["spec"]["paused"], false, "a given zero value stays");
        assert_eq!(c["spec"]["template"]["metadata"]["creationTimestamp"], Value::Null);
        assert!(spec["containers"][0].get("image").is_none(), "nothing is added");
        assert_eq!(canonical("Deployment", &json!({"spec": {"replicas": "x"}})), None);
    }

    #[test]
    fn named_fields_become_members() {
        let s = FieldSet::from_paths(&[
            Path::fields(&["spec", "strategy", "type"]),
            Path::fields(&["metadata", "labels", "app"]),
        ]);
        let e = ensure_named_fields(&s, deployment());
        let p = paths(&e);
        assert_eq!(
            p,
            [
                ".metadata",
                ".spec",
                ".metadata.labels",
                ".metadata.labels.app",
                ".spec.strategy",
                ".spec.strategy.type"
            ]
        );
    }
}
