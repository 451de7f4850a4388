//! Reading Kubernetes manifests: YAML or JSON, one or many documents, `kind: List` expanded.
//!
//! Every document is checked against its kind's schema: unknown fields, wrong types, a missing or unknown
//! `kind`, or an `apiVersion` not served for the kind are errors naming the document and the field path.

use std::fmt;

use serde::Deserialize;
use serde_yaml::Value;

use crate::error::Error;
use crate::resource::{Object, kind_info};

/// A manifest document that could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestError {
    /// File name or `-`.
    pub source: String,
    /// 1-based index of the document in the file.
    pub document: usize,
    /// `Kind name` when they could be read.
    pub what: Option<String>,
    pub error: Error,
}

impl fmt::Display for ManifestError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "{}: document {}", self.source, self.document)?;
        if let Some(w) = &self.what {
            write!(f, " ({w})")?;
        }
        write!(f, ": {}", self.error)
    }
}

impl std::error::Error for ManifestError {}

/// Reads every document of `text`. Returns all objects, or every error found (one per bad document).
pub fn parse(text: &str, source: &str) -> Result<Vec<Object>, Vec<ManifestError>> {
    let mut objects = Vec::new();
    let mut errors = Vec::new();
    for (i, doc) in serde_yaml::Deserializer::from_str(text).enumerate() {
        let document = i + 1;
        let value = match Value::deserialize(doc) {
            Ok(v) => v,
            Err(e) => {
                errors.push(ManifestError {
                    source: source.to_string(),
                    document,
                    what: None,
                    error: Error::Syntax(e.to_string()),
                });
                // The parser cannot resynchronise after a syntax error.
                break;
            }
        };
        if value.is_null() {
            continue; // an empty document, e.g. a leading or trailing `---`
        }
        match read_document(value, "") {
            Ok(mut objs) => objects.append(&mut objs),
            Err((what, error)) => {
                errors.push(ManifestError { source: source.to_string(), document, what, error })
            }
        }
    }
    if errors.is_empty() { Ok(objects) } else { Err(errors) }
}

type DocError = (Option<String>, Error);

fn read_document(value: Value, prefix: &str) -> Result<Vec<Object>, DocError> {
    let Value::Mapping(map) = &value else {
        return Err((None, Error::field(or_root(prefix), "expected an object (a mapping)")));
    };
    let get_str = |field: &str| -> Result<Option<String>, DocError> {
        match map.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err((None, Error::field(join(prefix, field), "expected a string"))),
        }
    };
    let kind = get_str("kind")?
        .ok_or_else(|| (None, Error::field(join(prefix, "kind"), "required field is missing")))?;
    let api_version = get_str("apiVersion")?;
    let name = map
        .get("metadata")
        .and_then(|m| m.get("name").or_else(|| m.get("generateName")))
        .and_then(Value::as_str)
        .map(str::to_string);
    let what = Some(match &name {
        Some(n) => format!("{kind} {n}"),
        None => kind.clone(),
    });

    if kind == "List" || (kind.ends_with("List") && map.contains_key("items")) {
        let mut out = Vec::new();
        match map.get("items") {
            None | Some(Value::Null) => {}
            Some(Value::Sequence(items)) => {
                for (i, item) in items.iter().enumerate() {
                    let p = format!(
                        "{}items[{i}]",
                        if prefix.is_empty() { String::new() } else { format!("{prefix}.") }
                    );
                    out.append(&mut read_document(item.clone(), &p)?);
                }
            }
            Some(_) => return Err((what, Error::field(join(prefix, "items"), "expected a list"))),
        }
        return Ok(out);
    }

    let Some(info) = kind_info(&kind).filter(|i| i.kind == kind) else {
        return Err((
            what,
            Error::field(
                join(prefix, "kind"),
                format!(
                    "unknown kind {kind:?}{} (see `navctl api-resources`)",
                    api_version.as_deref().map(|v| format!(" in apiVersion {v:?}")).unwrap_or_default()
                ),
            ),
        ));
    };
    match api_version.as_deref() {
        None => {
            return Err((what, Error::field(join(prefix, "apiVersion"), "required field is missing")));
        }
        Some(v) if v != info.api_version => {
            return Err((
                what,
                Error::field(
                    join(prefix, "apiVersion"),
                    format!("{kind} is served as apiVersion {:?}, not {v:?}", info.api_version),
                ),
            ));
        }
        Some(_) => {}
    }
    let obj = Object::from_value(&kind, value.clone()).map_err(|e| match e {
        Error::Field { path, reason } if !prefix.is_empty() => {
            (what.clone(), Error::Field { path: format!("{prefix}.{path}"), reason })
        }
        e => (what.clone(), e),
    })?;
    Ok(vec![obj])
}

fn join(prefix: &str, field: &str) -> String {
    if prefix.is_empty() { field.to_string() } else { format!("{prefix}.{field}") }
}

fn or_root(prefix: &str) -> String {
    if prefix.is_empty() { "(document)".to_string() } else { prefix.to_string() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multi_document_and_nulls() {
        let text = "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n  creationTimestamp: null\ndata:\n  k: v\n---\n---\napiVersion: v1\nkind: Namespace\nmetadata: {name: b}\n";
        let objs = parse(text, "t.yaml").unwrap();
        assert_eq!(objs.len(), 2);
        assert_eq!(objs[0].kind(), "ConfigMap");
        assert_eq!(objs[1].meta().name, "b");
    }

    #[test]
    fn unknown_field_has_path() {
        let text = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n  labelz: {}\n";
        let errs = parse(text, "t.yaml").unwrap_err();
        assert_eq!(errs.len(), 1);
        let msg = errs[0].to_string();
        assert!(
            msg.starts_with("t.yaml: document 1 (ConfigMap a): metadata.labelz: unknown field `labelz`"),
            "{msg}"
        );
    }

    #[test]
    fn wrong_type_has_path() {
        let text = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n  labels:\n    x: [1]\n";
        let msg = parse(text, "t.yaml").unwrap_err()[0].to_string();
        assert!(msg.contains("metadata.labels.x: invalid type: sequence, expected a string"), "{msg}");
    }

    #[test]
    fn unknown_kind_and_bad_api_version() {
        let msg = parse("apiVersion: v1\nkind: Foo\nmetadata: {name: a}\n", "f").unwrap_err()[0].to_string();
        assert!(msg.contains("kind: unknown kind \"Foo\""), "{msg}");
        let msg =
            parse("apiVersion: v2\nkind: ConfigMap\nmetadata: {name: a}\n", "f").unwrap_err()[0].to_string();
        assert!(msg.contains("apiVersion: ConfigMap is served as apiVersion \"v1\", not \"v2\""), "{msg}");
        let msg = parse("kind: ConfigMap\n", "f").unwrap_err()[0].to_string();
        assert!(msg.contains("apiVersion: required"), "{msg}");
    }

    #[test]
    fn list_is_expanded_with_paths() {
        let text = "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: ConfigMap\n  metadata: {name: a}\n- apiVersion: v1\n  kind: ConfigMap\n  metadata: {name: b}\n  bogus: 1\n";
        let msg = parse(text, "f").unwrap_err()[0].to_string();
        assert!(msg.contains("items[1].bogus: unknown field"), "{msg}");
    }

    #[test]
    fn syntax_error() {
        let msg = parse("a: b: c\n", "f").unwrap_err()[0].to_string();
        assert!(msg.contains("invalid YAML"), "{msg}");
    }

    #[test]
    fn json_input() {
        let objs =
            parse(r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"j"},"data":{"a":"1"}}"#, "f")
                .unwrap();
        assert_eq!(objs[0].meta().name, "j");
    }
}
