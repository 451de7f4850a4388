//! Field selectors (`spec.nodeName=node-1,status.phase!=Running`): parsing, printing, and matching them
//! against objects of any kind ([`ObjectFields`]), as lists and watches use them.

use std::fmt;

use navarch_api::{Object, Resource};

/// A field selector (`spec.nodeName=node-1,status.phase!=Running`): `(path, value, negated)` terms, all
/// of which must hold. The empty selector matches everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldSelector(pub Vec<(String, String, bool)>);

impl FieldSelector {
    pub fn everything() -> FieldSelector {
        FieldSelector(Vec::new())
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Parses `a=b,c!=d,e==f`. Values may be empty (`spec.nodeName=` selects unscheduled pods); `\,`,
    /// `\=`, `\!` and `\\` escape those characters in values. Empty terms are ignored.
    pub fn parse(s: &str) -> Result<FieldSelector, String> {
        let mut terms = Vec::new();
        for term in split_unescaped(s, ',') {
            if term.trim().is_empty() {
                continue;
            }
            terms.push(parse_field_term(term)?);
        }
        Ok(FieldSelector(terms))
    }

    /// True when every term holds for `obj`. A path the kind does not support never matches (requests
    /// are checked with [`FieldSelector::check_supported`] first).
    pub fn matches(&self, obj: &Object) -> bool {
        self.0.iter().all(|(path, value, negated)| match obj.field(path) {
            Some(v) => (v == *value) != *negated,
            None => false,
        })
    }

    /// The first path that objects of `kind` cannot be selected on (every path when the kind is
    /// unknown).
    pub fn unsupported(&self, kind: &str) -> Option<&str> {
        let probe = Object::decode(kind, &[]).ok();
        self.0
            .iter()
            .map(|(path, _, _)| path.as_str())
            .find(|path| probe.as_ref().is_none_or(|o| o.field(path).is_none()))
    }

    /// `Err("field label not supported: <path>")` when a path is not supported for `kind`.
    pub fn check_supported(&self, kind: &str) -> Result<(), String> {
        match self.unsupported(kind) {
            Some(path) => Err(format!("field label not supported: {path}")),
            None => Ok(()),
        }
    }
}

impl fmt::Display for FieldSelector {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        for (i, (path, value, negated)) in self.0.iter().enumerate() {
            let sep = if i == 0 { "" } else { "," };
            let op = if *negated { "!=" } else { "=" };
            write!(f, "{sep}{path}{op}{}", escape_value(value))?;
        }
        Ok(())
    }
}

/// Splits at every `sep` not preceded by an escaping backslash.
fn split_unescaped(s: &str, sep: char) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        if escaped {
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == sep {
            out.push(&s[start..i]);
            start = i + c.len_utf8();
        }
    }
    out.push(&s[start..]);
    out
}

fn parse_field_term(term: &str) -> Result<(String, String, bool), String> {
    let bad = |why: &str| format!("invalid field selector {:?}: {why}", term.trim());
    // The first unescaped operator; `!=` and `==` before `=` at the same position.
    let mut escaped = false;
    let mut found = None;
    for (i, c) in term.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        if c == '\\' {
            escaped = true;
            continue;
        }
        let rest = &term[i..];
        if let Some(op) = ["!=", "==", "="].into_iter().find(|op| rest.starts_with(op)) {
            found = Some((i, op));
            break;
        }
    }
    let Some((at, op)) = found else {
        return Err(bad("expected `field=value`, `field==value` or `field!=value`"));
    };
    let path = term[..at].trim();
    if path.is_empty() {
        return Err(bad("missing field path"));
    }
    if let Some(c) = path.chars().find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))) {
        return Err(bad(&format!("unexpected {c:?} in field path")));
    }
    let value = unescape_value(term[at + op.len()..].trim()).map_err(|e| bad(&e))?;
    Ok((path.to_string(), value, op == "!="))
}

fn unescape_value(v: &str) -> Result<String, String> {
    let mut out = String::with_capacity(v.len());
    let mut chars = v.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some(e @ ('\\' | ',' | '=' | '!')) => out.push(e),
            Some(e) => return Err(format!("invalid escape sequence \\{e}")),
            None => return Err("trailing backslash".into()),
        }
    }
    Ok(out)
}

fn escape_value(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        if matches!(c, '\\' | ',' | '=' | '!') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Field-selector values of an object of any kind ([`Resource::field`] through the [`Object`] enum).
pub trait ObjectFields {
    /// The value of `path` for field selectors; `None` when the kind does not support it.
    fn field(&self, path: &str) -> Option<String>;
}

macro_rules! object_field {
    ($obj:expr, $path:expr; $($kind:ident),* $(,)?) => {
        match $obj { $(Object::$kind(o) => o.field($path),)* }
    };
}

impl ObjectFields for Object {
    fn field(&self, path: &str) -> Option<String> {
        object_field!(self, path;
            Namespace, Node, Pod, Service, Endpoints, ConfigMap, Secret, ServiceAccount, Event,
            LimitRange, PersistentVolume, PersistentVolumeClaim, ResourceQuota, ReplicaSet, ReplicationController,
            Deployment, DaemonSet, ControllerRevision, StatefulSet, Job, CronJob, HorizontalPodAutoscaler,
            PodDisruptionBudget, StorageClass, PriorityClass, Lease, Role,
            RoleBinding, ClusterRole, ClusterRoleBinding, CertificateSigningRequest, NodeMetrics, PodMetrics)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use navarch_api::v1::{ConfigMap, ObjectMeta, Pod, PodSpec, PodStatus};

    /// A pending pod in `ns` on `node` (empty: unscheduled) with `labels`.
    pub(crate) fn pod(ns: &str, name: &str, node: &str, labels: &[(&str, &str)]) -> Object {
        Object::Pod(Pod {
            metadata: Some(ObjectMeta {
                name: name.into(),
                namespace: ns.into(),
                labels: labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
                ..Default::default()
            }),
            spec: Some(PodSpec { node_name: node.into(), ..Default::default() }),
            status: Some(PodStatus { phase: "Pending".into(), ..Default::default() }),
            ..Default::default()
        })
    }

    pub(crate) fn fields(s: &str) -> FieldSelector {
        FieldSelector::parse(s).unwrap()
    }

    #[test]
    fn field_selector_parse() {
        assert_eq!(
            fields("a=b,c!=d, e==f ,,").0,
            vec![
                ("a".into(), "b".into(), false),
                ("c".into(), "d".into(), true),
                ("e".into(), "f".into(), false)
            ]
        );
        assert!(fields("").is_empty());
        assert_eq!(fields("spec.nodeName=").0, vec![("spec.nodeName".into(), String::new(), false)]);
        assert_eq!(fields(r"a=x\,y\=z\\").0, vec![("a".into(), r"x,y=z\".into(), false)]);
        assert_eq!(fields("a=b=c").0, vec![("a".into(), "b=c".into(), false)]);
        for bad in ["a", "=b", "!=b", r"a=\q", "a=b\\", "a b=c", "a,b=c"] {
            assert!(FieldSelector::parse(bad).is_err(), "{bad:?} should not parse");
        }
        let e = FieldSelector::parse("spec.nodeName").unwrap_err();
        assert!(e.contains("spec.nodeName"), "{e}");
    }

    #[test]
    fn field_selector_display_round_trips() {
        for s in ["a=b,c!=d", r"a=x\,y\=z\\", "spec.nodeName="] {
            let f = fields(s);
            assert_eq!(fields(&f.to_string()), f);
        }
        assert_eq!(fields("a==b").to_string(), "a=b");
    }

    #[test]
    fn field_selector_matches() {
        let p = pod("default", "web", "node-1", &[]);
        assert!(fields("").matches(&p));
        assert!(fields("spec.nodeName=node-1").matches(&p));
        assert!(!fields("spec.nodeName=node-2").matches(&p));
        assert!(fields("spec.nodeName!=node-2,metadata.name=web").matches(&p));
        assert!(!fields("spec.nodeName!=node-1").matches(&p));
        assert!(fields("metadata.namespace=default,status.phase=Pending").matches(&p));
        assert!(fields("spec.nodeName=").matches(&pod("default", "web", "", &[])));
        // Unsupported paths never match.
        assert!(!fields("spec.bogus=x").matches(&p));
        assert!(!fields("spec.bogus!=x").matches(&p));
    }

    #[test]
    fn field_selector_supported_paths() {
        let f = fields("metadata.name=a,spec.nodeName=n");
        assert_eq!(f.unsupported("Pod"), None);
        assert_eq!(f.unsupported("ConfigMap"), Some("spec.nodeName"));
        assert!(f.check_supported("Pod").is_ok());
        assert_eq!(f.check_supported("ConfigMap").unwrap_err(), "field label not supported: spec.nodeName");
        assert_eq!(f.unsupported("NoSuchKind"), Some("metadata.name"));
        assert_eq!(fields("").unsupported("NoSuchKind"), None);
    }

    #[test]
    fn object_fields_dispatch() {
        let cm = Object::ConfigMap(ConfigMap {
            metadata: Some(ObjectMeta { name: "c".into(), namespace: "ns".into(), ..Default::default() }),
            ..Default::default()
        });
        assert_eq!(cm.field("metadata.name").as_deref(), Some("c"));
        assert_eq!(cm.field("metadata.namespace").as_deref(), Some("ns"));
        assert_eq!(cm.field("spec.nodeName"), None);
        assert_eq!(pod("a", "b", "n", &[]).field("spec.nodeName").as_deref(), Some("n"));
    }
}
