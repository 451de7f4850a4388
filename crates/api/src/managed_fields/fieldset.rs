//! Sets of field paths, as structured-merge-diff's `fieldpath.Set`, and their `FieldsV1` JSON form.
//!
//! A path is a list of [`PathElement`]s: a field name (`f:replicas`), a list item by the values of its keys
//! (`k:{"containerPort":80,"protocol":"TCP"}`), an item of a set by its value (`v:"foreground"`) or an
//! index (`i:0`, never produced here, read for completeness). A [`FieldSet`] is a trie of them: at each
//! node, the elements that are members of the set (the paths that end there) and the children (the paths
//! that go on). A node that is both is written with a `"."` entry in FieldsV1:
//!
//! ```json
//! {"f:spec":{"f:containers":{"k:{\"name\":\"web\"}":{".":{},"f:image":{},"f:name":{}}}}}
//! ```
//!
//! Elements sort as structured-merge-diff sorts them (fields, then keys, then values, then indexes), which
//! is the order FieldsV1 is written in. Paths print as in conflict messages: `.spec.replicas`,
//! `.spec.containers[name="web"].image`, `.metadata.finalizers[="x"]`.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::{self, Write as _};

use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::Value;

use super::ManagedFieldsError;

/// A scalar value in a path: a list key's value or a set item.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scalar {
    Int(i64),
    /// A number that is not an integer, by its bits, ordered by value.
    Float(FloatBits),
    String(String),
    Bool(bool),
    Null,
}

/// An `f64` with a total order (`f64::total_cmp`), so paths can be sorted.
#[derive(Debug, Clone, Copy)]
pub struct FloatBits(pub f64);

impl PartialEq for FloatBits {
    fn eq(&self, other: &Self) -> bool {
        self.0.total_cmp(&other.0).is_eq()
    }
}
impl Eq for FloatBits {}
impl PartialOrd for FloatBits {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for FloatBits {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.total_cmp(&other.0)
    }
}
impl std::hash::Hash for FloatBits {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.to_bits().hash(state);
    }
}

impl Scalar {
    /// The scalar of a JSON value; `None` for arrays and objects.
    pub fn from_json(v: &Value) -> Option<Scalar> {
        Some(match v {
            Value::Null => Scalar::Null,
            Value::Bool(b) => Scalar::Bool(*b),
            Value::String(s) => Scalar::String(s.clone()),
            Value::Number(n) => match n.as_i64() {
                Some(i) => Scalar::Int(i),
                None => Scalar::Float(FloatBits(n.as_f64()?)),
            },
            Value::Array(_) | Value::Object(_) => return None,
        })
    }

    pub fn to_json(&self) -> Value {
        match self {
            Scalar::Int(i) => Value::from(*i),
            Scalar::Float(f) => Value::from(f.0),
            Scalar::String(s) => Value::String(s.clone()),
            Scalar::Bool(b) => Value::Bool(*b),
            Scalar::Null => Value::Null,
        }
    }
}

impl fmt::Display for Scalar {
    /// As structured-merge-diff prints values in paths: strings quoted, the rest as JSON.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scalar::String(s) => write!(f, "{s:?}"),
            other => write!(f, "{}", other.to_json()),
        }
    }
}

/// One step of a path.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PathElement {
    /// A field of an object, or a key of a map.
    Field(String),
    /// An item of a list map, by its keys' values (sorted by key name).
    Key(Vec<(String, Scalar)>),
    /// An item of a set list, by its value.
    Value(Scalar),
    /// An item of a list by position.
    Index(usize),
}

impl PathElement {
    pub fn field(name: impl Into<String>) -> PathElement {
        PathElement::Field(name.into())
    }

    /// Writes the FieldsV1 key of this element (`f:name`, `k:{...}`, `v:...`, `i:0`) as a JSON string.
    fn write_fields_v1_key(&self, out: &mut String) {
        match self {
            PathElement::Field(name) => {
                out.push_str("\"f:");
                push_escaped(out, name);
                out.push('"');
            }
            PathElement::Key(keys) => {
                // Keys are sorted by name, as Kubernetes writes them.
                let mut text = String::from("k:{");
                for (i, (k, v)) in keys.iter().enumerate() {
                    if i > 0 {
                        text.push(',');
                    }
                    text.push_str(&Value::String(k.clone()).to_string());
                    text.push(':');
                    text.push_str(&v.to_json().to_string());
                }
                text.push('}');
                push_json_string(out, &text);
            }
            PathElement::Value(v) => push_json_string(out, &format!("v:{}", v.to_json())),
            PathElement::Index(i) => push_json_string(out, &format!("i:{i}")),
        }
    }

    /// Parses a FieldsV1 key; `Ok(None)` for a kind of element this version does not know (dropped, as
    /// Kubernetes drops them).
    fn from_fields_v1(key: &str) -> Result<Option<PathElement>, String> {
        let Some((kind, rest)) = key.split_once(':') else {
            return Err(format!("{key:?} is not a path element (no ':')"));
        };
        Ok(Some(match kind {
            "f" => PathElement::Field(rest.to_string()),
            "v" => {
                let v: Value = serde_json::from_str(rest).map_err(|e| format!("{key:?}: {e}"))?;
                PathElement::Value(Scalar::from_json(&v).ok_or_else(|| format!("{key:?}: not a scalar"))?)
            }
            "k" => {
                let v: Value = serde_json::from_str(rest).map_err(|e| format!("{key:?}: {e}"))?;
                let Value::Object(m) = v else { return Err(format!("{key:?}: keys must be an object")) };
                let mut keys = Vec::with_capacity(m.len());
                for (k, v) in m {
                    let s =
                        Scalar::from_json(&v).ok_or_else(|| format!("{key:?}: key {k} is not a scalar"))?;
                    keys.push((k, s));
                }
                keys.sort();
                PathElement::Key(keys)
            }
            "i" => PathElement::Index(rest.parse().map_err(|_| format!("{key:?}: not an index"))?),
            _ => return Ok(None),
        }))
    }
}

impl fmt::Display for PathElement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PathElement::Field(name) => write!(f, ".{name}"),
            PathElement::Key(keys) => {
                f.write_char('[')?;
                for (i, (k, v)) in keys.iter().enumerate() {
                    if i > 0 {
                        f.write_char(',')?;
                    }
                    write!(f, "{k}={v}")?;
                }
                f.write_char(']')
            }
            PathElement::Value(v) => write!(f, "[={v}]"),
            PathElement::Index(i) => write!(f, "[{i}]"),
        }
    }
}

/// Appends `s` as a JSON string.
fn push_json_string(out: &mut String, s: &str) {
    out.push('"');
    push_escaped(out, s);
    out.push('"');
}

/// Appends `s` escaped for the inside of a JSON string.
fn push_escaped(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
}

/// A path from the object's root.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Path(pub Vec<PathElement>);

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|pe| write!(f, "{pe}"))
    }
}

impl Path {
    /// A path of field names (`Path::fields(&["spec", "replicas"])`).
    pub fn fields(names: &[&str]) -> Path {
        Path(names.iter().map(|n| PathElement::field(*n)).collect())
    }
}

/// A set of paths, as a trie.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldSet {
    members: BTreeSet<PathElement>,
    /// Never holds an empty set.
    children: BTreeMap<PathElement, FieldSet>,
}

impl FieldSet {
    pub fn new() -> FieldSet {
        FieldSet::default()
    }

    /// A set of the given paths.
    pub fn from_paths<'a>(paths: impl IntoIterator<Item = &'a Path>) -> FieldSet {
        let mut s = FieldSet::new();
        for p in paths {
            s.insert(&p.0);
        }
        s
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty() && self.children.is_empty()
    }

    /// Adds `path` (an empty path adds nothing).
    pub fn insert(&mut self, path: &[PathElement]) {
        match path {
            [] => {}
            [last] => {
                self.members.insert(last.clone());
            }
            [first, rest @ ..] => match self.children.get_mut(first) {
                Some(c) => c.insert(rest),
                None => {
                    let mut c = FieldSet::new();
                    c.insert(rest);
                    self.children.insert(first.clone(), c);
                }
            },
        }
    }

    /// Whether `path` is a member.
    pub fn has(&self, path: &[PathElement]) -> bool {
        match path {
            [] => false,
            [last] => self.members.contains(last),
            [first, rest @ ..] => self.children.get(first).is_some_and(|c| c.has(rest)),
        }
    }

    /// The members right below this node.
    pub fn members(&self) -> impl Iterator<Item = &PathElement> {
        self.members.iter()
    }

    /// Whether `pe` is a member right below this node.
    pub fn has_member(&self, pe: &PathElement) -> bool {
        self.members.contains(pe)
    }

    /// The paths below `pe`, relative to it.
    pub fn child(&self, pe: &PathElement) -> Option<&FieldSet> {
        self.children.get(pe)
    }

    /// The nodes below this one that have paths going on.
    pub fn children(&self) -> impl Iterator<Item = (&PathElement, &FieldSet)> {
        self.children.iter()
    }

    /// Adds `pe` as a member right below this node.
    pub fn insert_member(&mut self, pe: PathElement) {
        self.members.insert(pe);
    }

    /// Adds `child` below `pe`.
    pub fn insert_child(&mut self, pe: &PathElement, child: FieldSet) {
        if child.is_empty() {
            return;
        }
        match self.children.get_mut(pe) {
            Some(c) => c.union_with(&child),
            None => {
                self.children.insert(pe.clone(), child);
            }
        }
    }

    /// Every member, in order (this node's members before its children's).
    pub fn paths(&self) -> Vec<Path> {
        let mut out = Vec::new();
        self.collect(&mut Vec::new(), &mut out);
        out
    }

    fn collect(&self, prefix: &mut Vec<PathElement>, out: &mut Vec<Path>) {
        for m in &self.members {
            let mut p = prefix.clone();
            p.push(m.clone());
            out.push(Path(p));
        }
        for (pe, c) in &self.children {
            prefix.push(pe.clone());
            c.collect(prefix, out);
            prefix.pop();
        }
    }

    /// How many members.
    pub fn len(&self) -> usize {
        self.members.len() + self.children.values().map(FieldSet::len).sum::<usize>()
    }

    pub fn union_with(&mut self, other: &FieldSet) {
        self.members.extend(other.members.iter().cloned());
        for (pe, c) in &other.children {
            match self.children.get_mut(pe) {
                Some(mine) => mine.union_with(c),
                None => {
                    self.children.insert(pe.clone(), c.clone());
                }
            }
        }
    }

    pub fn union(&self, other: &FieldSet) -> FieldSet {
        let mut s = self.clone();
        s.union_with(other);
        s
    }

    /// The members of this set that `other` does not have.
    pub fn difference(&self, other: &FieldSet) -> FieldSet {
        let members = self.members.difference(&other.members).cloned().collect();
        let mut children = BTreeMap::new();
        for (pe, c) in &self.children {
            let d = match other.children.get(pe) {
                Some(o) => c.difference(o),
                None => c.clone(),
            };
            if !d.is_empty() {
                children.insert(pe.clone(), d);
            }
        }
        FieldSet { members, children }
    }

    /// The members both sets have.
    pub fn intersection(&self, other: &FieldSet) -> FieldSet {
        let members = self.members.intersection(&other.members).cloned().collect();
        let mut children = BTreeMap::new();
        for (pe, c) in &self.children {
            if let Some(o) = other.children.get(pe) {
                let i = c.intersection(o);
                if !i.is_empty() {
                    children.insert(pe.clone(), i);
                }
            }
        }
        FieldSet { members, children }
    }

    /// Removes every member of `other` from this set; whether that removed anything.
    pub fn subtract(&mut self, other: &FieldSet) -> bool {
        if self.is_empty() {
            return false;
        }
        let mut removed = false;
        for m in &other.members {
            removed |= self.members.remove(m);
        }
        for (pe, o) in &other.children {
            if let Some(c) = self.children.get_mut(pe) {
                removed |= c.subtract(o);
                if c.is_empty() {
                    self.children.remove(pe);
                }
            }
        }
        removed
    }

    /// Removes the member `pe` right below this node (not what is below it).
    pub fn remove_member(&mut self, pe: &PathElement) {
        self.members.remove(pe);
    }

    /// The node below `pe`, to change it (`None` when nothing is below it).
    pub fn child_mut(&mut self, pe: &PathElement) -> Option<&mut FieldSet> {
        self.children.get_mut(pe)
    }

    /// Removes an emptied node below `pe`.
    pub fn prune_child(&mut self, pe: &PathElement) {
        if self.children.get(pe).is_some_and(FieldSet::is_empty) {
            self.children.remove(pe);
        }
    }

    /// The set without `pe` and every path below it (a top-level filter: `status` of the main resource).
    pub fn without_subtree(mut self, pe: &PathElement) -> FieldSet {
        self.members.remove(pe);
        self.children.remove(pe);
        self
    }

    /// Only `pe` and the paths below it.
    pub fn only_subtree(mut self, pe: &PathElement) -> FieldSet {
        let mut s = FieldSet::new();
        if let Some(m) = self.members.take(pe) {
            s.members.insert(m);
        }
        if let Some((k, c)) = self.children.remove_entry(pe) {
            s.children.insert(k, c);
        }
        s
    }

    /// The FieldsV1 JSON text of the set.
    pub fn to_fields_v1(&self) -> String {
        let mut out = String::with_capacity(64);
        self.write_fields_v1(false, &mut out);
        out
    }

    fn write_fields_v1(&self, include_self: bool, out: &mut String) {
        out.push('{');
        let mut first = true;
        let mut sep = |out: &mut String| {
            if !std::mem::take(&mut first) {
                out.push(',');
            }
        };
        if include_self {
            sep(out);
            out.push_str("\".\":{}");
        }
        let mut members = self.members.iter().peekable();
        let mut children = self.children.iter().peekable();
        loop {
            let order = match (members.peek(), children.peek()) {
                (None, None) => break,
                (Some(_), None) => Ordering::Less,
                (None, Some(_)) => Ordering::Greater,
                (Some(m), Some((c, _))) => m.cmp(c),
            };
            let (pe, child, member) = match order {
                Ordering::Less => (members.next().expect("peeked"), None, true),
                Ordering::Greater => {
                    let (pe, s) = children.next().expect("peeked");
                    (pe, Some(s), false)
                }
                Ordering::Equal => {
                    members.next();
                    let (pe, s) = children.next().expect("peeked");
                    (pe, Some(s), true)
                }
            };
            sep(out);
            pe.write_fields_v1_key(out);
            out.push(':');
            match child {
                Some(c) => c.write_fields_v1(member, out),
                None => out.push_str("{}"),
            }
        }
        out.push('}');
    }

    /// Reads a FieldsV1 JSON value. Keys of an unknown element kind are dropped, as Kubernetes drops them.
    pub fn from_fields_v1(v: &Value) -> Result<FieldSet, ManagedFieldsError> {
        Node::deserialize(v).map(Node::into_set).map_err(|e| ManagedFieldsError::FieldsV1(e.to_string()))
    }

    /// Reads a FieldsV1 JSON text (straight from the bytes, without a JSON value in between).
    pub fn from_fields_v1_text(raw: &[u8]) -> Result<FieldSet, ManagedFieldsError> {
        if raw.is_empty() {
            return Ok(FieldSet::new());
        }
        serde_json::from_slice::<Node>(raw)
            .map(Node::into_set)
            .map_err(|e| ManagedFieldsError::FieldsV1(e.to_string()))
    }
}

/// One node of a FieldsV1 trie being read: the paths below it, and whether the node itself is a member
/// (an empty object, or one with `"."`).
struct Node {
    below: Option<FieldSet>,
    member: bool,
}

impl Node {
    fn into_set(self) -> FieldSet {
        self.below.unwrap_or_default()
    }
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Node, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Node;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a FieldsV1 object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
                let mut below: Option<FieldSet> = None;
                let mut member = false;
                while let Some(key) = map.next_key::<String>()? {
                    if key == "." {
                        map.next_value::<IgnoredAny>()?;
                        member = true;
                        continue;
                    }
                    let Some(pe) = PathElement::from_fields_v1(&key).map_err(de::Error::custom)? else {
                        map.next_value::<IgnoredAny>()?;
                        continue;
                    };
                    let child: Node = map.next_value()?;
                    let set = below.get_or_insert_with(FieldSet::new);
                    if let Some(b) = child.below.filter(|b| !b.is_empty()) {
                        set.children.insert(pe.clone(), b);
                    }
                    if child.member {
                        set.members.insert(pe);
                    }
                }
                // An object with nothing known in it is a leaf: a member.
                Ok(Node { member: member || below.is_none(), below })
            }
        }
        d.deserialize_map(V)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn f(name: &str) -> PathElement {
        PathElement::field(name)
    }

    fn key(pairs: &[(&str, Value)]) -> PathElement {
        let mut k: Vec<(String, Scalar)> =
            pairs.iter().map(|(n, v)| (n.to_string(), Scalar::from_json(v).unwrap())).collect();
        k.sort();
        PathElement::Key(k)
    }

    #[test]
    fn fields_v1_round_trip_in_kubernetes_order() {
        let mut s = FieldSet::new();
        let web = key(&[("name", json!("web"))]);
        let port = key(&[("protocol", json!("TCP")), ("containerPort", json!(80))]);
        for p in [
            vec![f("spec"), f("replicas")],
            vec![f("spec"), f("containers"), web.clone()],
            vec![f("spec"), f("containers"), web.clone(), f("image")],
            vec![f("spec"), f("containers"), web.clone(), f("ports"), port.clone()],
            vec![f("spec"), f("containers"), web.clone(), f("ports"), port.clone(), f("containerPort")],
            vec![f("metadata"), f("finalizers"), PathElement::Value(Scalar::String("a".into()))],
        ] {
            s.insert(&p);
        }
        let text = s.to_fields_v1();
        assert_eq!(
            text,
            r#"{"f:metadata":{"f:finalizers":{"v:\"a\"":{}}},"f:spec":{"f:containers":{"k:{\"name\":\"web\"}":{".":{},"f:image":{},"f:ports":{"k:{\"containerPort\":80,\"protocol\":\"TCP\"}":{".":{},"f:containerPort":{}}}}},"f:replicas":{}}}"#
        );
        let back = FieldSet::from_fields_v1_text(text.as_bytes()).unwrap();
        assert_eq!(back, s);
        assert_eq!(back.len(), 6);
        assert!(back.has(&[f("spec"), f("containers"), web.clone()]));
        assert!(!back.has(&[f("spec"), f("containers")]));
        // Unknown element kinds are dropped; a broken key is an error.
        let odd = FieldSet::from_fields_v1(&json!({"f:a": {}, "x:b": {}})).unwrap();
        assert_eq!(odd.paths(), vec![Path::fields(&["a"])]);
        assert!(FieldSet::from_fields_v1(&json!({"k:{": {}})).is_err());
        assert!(FieldSet::from_fields_v1(&json!([])).is_err());
    }

    #[test]
    fn set_operations() {
        let a = FieldSet::from_paths(&[
            Path::fields(&["spec", "replicas"]),
            Path::fields(&["spec", "paused"]),
            Path::fields(&["metadata", "labels", "app"]),
        ]);
        let b = FieldSet::from_paths(&[Path::fields(&["spec", "replicas"]), Path::fields(&["spec", "x"])]);
        assert_eq!(a.intersection(&b).paths(), vec![Path::fields(&["spec", "replicas"])]);
        assert_eq!(
            a.difference(&b).paths(),
            vec![Path::fields(&["metadata", "labels", "app"]), Path::fields(&["spec", "paused"])]
        );
        assert_eq!(a.union(&b).len(), 4);
        assert!(a.difference(&a).is_empty());
        assert_eq!(a.clone().without_subtree(&f("spec")).len(), 1);
        assert_eq!(a.clone().only_subtree(&f("spec")).len(), 2);
        let mut c = a.clone();
        c.subtract(&b);
        assert_eq!(c, a.difference(&b));
    }

    #[test]
    fn paths_print_as_in_conflict_messages() {
        let p = Path(vec![
            f("spec"),
            f("containers"),
            key(&[("name", json!("web"))]),
            f("ports"),
            key(&[("containerPort", json!(80)), ("protocol", json!("TCP"))]),
        ]);
        assert_eq!(p.to_string(), r#".spec.containers[name="web"].ports[containerPort=80,protocol="TCP"]"#);
        let v = Path(vec![f("metadata"), f("finalizers"), PathElement::Value(Scalar::String("x".into()))]);
        assert_eq!(v.to_string(), r#".metadata.finalizers[="x"]"#);
    }
}
