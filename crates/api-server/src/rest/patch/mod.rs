//! Patches on an object's JSON form: JSON patch (RFC 6902), JSON merge patch (RFC 7386) and
//! Kubernetes' strategic merge patch ([`super::strategic`]); server-side apply is [`apply`].

pub mod apply;

use navarch_api::KindInfo;
use serde_json::Value;

use super::media::PatchType;
use super::status::StatusError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchKind {
    Json,
    Merge,
    StrategicMerge,
}

impl PatchKind {
    pub fn from_type(t: Option<PatchType>) -> Result<PatchKind, StatusError> {
        match t {
            Some(PatchType::Json) => Ok(PatchKind::Json),
            Some(PatchType::Merge) => Ok(PatchKind::Merge),
            Some(PatchType::StrategicMerge) => Ok(PatchKind::StrategicMerge),
            // Served by `apply` on objects and their status; not on other subresources.
            Some(PatchType::Apply) => Err(StatusError::unsupported_media_type(
                "application/apply-patch+yaml (server-side apply is served on objects and their status only)",
            )),
            None => Err(StatusError::unsupported_media_type(
                "a PATCH needs Content-Type application/json-patch+json, application/merge-patch+json or application/strategic-merge-patch+json",
            )),
        }
    }
}

fn invalid(message: String) -> StatusError {
    StatusError::new(http::StatusCode::UNPROCESSABLE_ENTITY, "Invalid", message)
}

/// Applies `doc` to `current`, an object of kind `info`.
pub fn apply(kind: PatchKind, info: &KindInfo, current: Value, doc: &Value) -> Result<Value, StatusError> {
    match kind {
        PatchKind::StrategicMerge => super::strategic::apply(info, current, doc),
        other => apply_untyped(other, current, doc),
    }
}

/// Applies a patch without type information (a strategic merge patch then merges like a merge patch:
/// used for `Scale`, which has no lists).
pub fn apply_untyped(kind: PatchKind, mut current: Value, doc: &Value) -> Result<Value, StatusError> {
    match kind {
        PatchKind::Json => json_patch(current, doc),
        PatchKind::Merge | PatchKind::StrategicMerge => {
            if !doc.is_object() {
                return Err(StatusError::bad_request("a merge patch must be a JSON object"));
            }
            merge(&mut current, doc);
            Ok(current)
        }
    }
}

pub use navarch_api::merge_patch::apply as merge;

/// RFC 6901 pointer → unescaped tokens.
fn tokens(pointer: &str) -> Result<Vec<String>, StatusError> {
    if pointer.is_empty() {
        return Ok(Vec::new());
    }
    if !pointer.starts_with('/') {
        return Err(invalid(format!("invalid JSON pointer {pointer:?}: it must start with '/'")));
    }
    Ok(pointer[1..].split('/').map(|t| t.replace("~1", "/").replace("~0", "~")).collect())
}

fn index(token: &str, len: usize, adding: bool) -> Option<usize> {
    if adding && token == "-" {
        return Some(len);
    }
    if token.len() > 1 && token.starts_with('0') {
        return None;
    }
    let i: usize = token.parse().ok()?;
    let bound = if adding { len } else { len.saturating_sub(1) };
    (i <= bound && (adding || len > 0)).then_some(i)
}

fn parent_mut<'a>(doc: &'a mut Value, toks: &[String], path: &str) -> Result<&'a mut Value, StatusError> {
    let mut cur = doc;
    for t in toks {
        cur = match cur {
            Value::Object(m) => m.get_mut(t),
            Value::Array(a) => index(t, a.len(), false).and_then(|i| a.get_mut(i)),
            _ => None,
        }
        .ok_or_else(|| invalid(format!("path {path:?}: {t:?} does not exist")))?;
    }
    Ok(cur)
}

fn get(doc: &Value, path: &str) -> Result<Value, StatusError> {
    let toks = tokens(path)?;
    let mut cur = doc;
    for t in &toks {
        cur = match cur {
            Value::Object(m) => m.get(t),
            Value::Array(a) => index(t, a.len(), false).and_then(|i| a.get(i)),
            _ => None,
        }
        .ok_or_else(|| invalid(format!("path {path:?} does not exist")))?;
    }
    Ok(cur.clone())
}

fn add(doc: &mut Value, path: &str, value: Value) -> Result<(), StatusError> {
    let toks = tokens(path)?;
    let Some((last, parents)) = toks.split_last() else {
        *doc = value;
        return Ok(());
    };
    match parent_mut(doc, parents, path)? {
        Value::Object(m) => {
            m.insert(last.clone(), value);
        }
        Value::Array(a) => {
            let i = index(last, a.len(), true)
                .ok_or_else(|| invalid(format!("path {path:?}: index out of range")))?;
            a.insert(i, value);
        }
        _ => return Err(invalid(format!("path {path:?}: the parent is not an object or array"))),
    }
    Ok(())
}

fn remove(doc: &mut Value, path: &str) -> Result<Value, StatusError> {
    let toks = tokens(path)?;
    let Some((last, parents)) = toks.split_last() else {
        return Err(invalid("cannot remove the whole document".into()));
    };
    let missing = || invalid(format!("path {path:?} does not exist"));
    match parent_mut(doc, parents, path)? {
        Value::Object(m) => m.remove(last).ok_or_else(missing),
        Value::Array(a) => {
            let i = index(last, a.len(), false).ok_or_else(missing)?;
            Ok(a.remove(i))
        }
        _ => Err(missing()),
    }
}

/// RFC 6902: add, remove, replace, move, copy, test — all or nothing.
fn json_patch(mut doc: Value, patch: &Value) -> Result<Value, StatusError> {
    let ops = patch
        .as_array()
        .ok_or_else(|| StatusError::bad_request("a JSON patch must be an array of operations"))?;
    for (i, op) in ops.iter().enumerate() {
        let field = |k: &str| -> Result<&str, StatusError> {
            op.get(k)
                .and_then(Value::as_str)
                .ok_or_else(|| invalid(format!("operation {i}: {k:?} is missing")))
        };
        let value = || {
            op.get("value").cloned().ok_or_else(|| invalid(format!("operation {i}: \"value\" is missing")))
        };
        let path = field("path")?;
        match field("op")? {
            "add" => add(&mut doc, path, value()?)?,
            "remove" => {
                remove(&mut doc, path)?;
            }
            "replace" => {
                remove(&mut doc, path)?;
                add(&mut doc, path, value()?)?;
            }
            "move" => {
                let from = field("from")?;
                let v = remove(&mut doc, from)?;
                add(&mut doc, path, v)?;
            }
            "copy" => {
                let v = get(&doc, field("from")?)?;
                add(&mut doc, path, v)?;
            }
            "test" => {
                if get(&doc, path)? != value()? {
                    return Err(invalid(format!("operation {i}: test failed at {path:?}")));
                }
            }
            other => return Err(invalid(format!("operation {i}: unknown op {other:?}"))),
        }
    }
    Ok(doc)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn merge_patch_rfc7386() {
        let mut t = json!({"a": "b", "c": {"d": "e", "f": "g"}, "l": [1, 2]});
        merge(&mut t, &json!({"a": "z", "c": {"f": null}, "l": [3]}));
        assert_eq!(t, json!({"a": "z", "c": {"d": "e"}, "l": [3]}));
    }

    #[test]
    fn json_patch_rfc6902() {
        let doc = json!({"spec": {"replicas": 1, "list": ["a", "b"]}, "metadata": {"labels": {"a/b": "x"}}});
        let p = json!([
            {"op": "replace", "path": "/spec/replicas", "value": 4},
            {"op": "add", "path": "/spec/list/-", "value": "c"},
            {"op": "add", "path": "/spec/list/0", "value": "z"},
            {"op": "remove", "path": "/metadata/labels/a~1b"},
            {"op": "copy", "from": "/spec/replicas", "path": "/spec/copied"},
            {"op": "test", "path": "/spec/copied", "value": 4},
        ]);
        let out = json_patch(doc.clone(), &p).unwrap();
        assert_eq!(
            out,
            json!({"spec": {"replicas": 4, "copied": 4, "list": ["z", "a", "b", "c"]}, "metadata": {"labels": {}}})
        );
        assert!(
            json_patch(doc.clone(), &json!([{"op": "test", "path": "/spec/replicas", "value": 2}])).is_err()
        );
        assert!(json_patch(doc.clone(), &json!([{"op": "remove", "path": "/spec/nope"}])).is_err());
        assert!(
            json_patch(doc.clone(), &json!([{"op": "replace", "path": "/spec/list/5", "value": 1}])).is_err()
        );
        assert!(json_patch(doc, &json!({"op": "add"})).is_err());
    }
}
