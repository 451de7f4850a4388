//! Kubernetes' strategic merge patch on an object's JSON form. Lists merge by the merge key the model
//! gives them (`containers` by `name`, `ports` by `containerPort`...; `navarch_api::schema`), lists of
//! primitives with strategy `merge` (finalizers) merge as sets, other lists are replaced. Directives:
//! `$patch: replace|delete|merge` (on maps and list items), `$retainKeys`, `$setElementOrder/<list>` and
//! `$deleteFromPrimitiveList/<list>`.

use navarch_api::KindInfo;
use navarch_api::schema::{self, FieldType, Strategy};
use serde_json::{Map, Value};

use super::status::StatusError;

const PATCH: &str = "$patch";
const RETAIN_KEYS: &str = "$retainKeys";
const SET_ORDER: &str = "$setElementOrder/";
const DELETE_FROM_PRIMITIVES: &str = "$deleteFromPrimitiveList/";

fn bad(message: String) -> StatusError {
    StatusError::bad_request(message)
}

/// Applies the strategic merge patch `doc` to `current`, an object of kind `info`.
pub fn apply(info: &KindInfo, mut current: Value, doc: &Value) -> Result<Value, StatusError> {
    let Value::Object(patch) = doc else {
        return Err(bad("a strategic merge patch must be a JSON object".into()));
    };
    merge_map(&mut current, patch, Some(info.kind))?;
    Ok(current)
}

/// How the list `message.field` merges: `Some(key)` by key, `Some(None)` as a set, `None` replaced.
fn list_merge(message: Option<&str>, field: &str) -> Option<Option<&'static str>> {
    let p = schema::patch_strategy(message?, field)?;
    matches!(p.strategy, Strategy::Merge | Strategy::MergeRetainKeys).then_some(p.merge_key)
}

/// The message type of `message.field` (of its items, for a list).
fn field_message(message: Option<&str>, field: &str) -> Option<&'static str> {
    let f = schema::message(message?)?.field(field)?;
    match (f.ty, f.map_value) {
        (FieldType::Message(m), None) => Some(m),
        _ => None,
    }
}

/// Whether `message.field` is a `map<string, V>` (merged key by key, no schema below).
fn is_map_field(message: Option<&str>, field: &str) -> bool {
    message.and_then(schema::message).and_then(|m| m.field(field)).is_some_and(|f| f.map_value.is_some())
}

fn merge_map(
    target: &mut Value,
    patch: &Map<String, Value>,
    message: Option<&str>,
) -> Result<(), StatusError> {
    match patch.get(PATCH).and_then(Value::as_str) {
        Some("replace") => {
            let mut p = patch.clone();
            p.remove(PATCH);
            *target = Value::Object(p);
            return Ok(());
        }
        Some("delete") => {
            *target = Value::Null;
            return Ok(());
        }
        Some("merge") | None => {}
        Some(other) => return Err(bad(format!("unknown patch type: {other:?} in map"))),
    }
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let t = target.as_object_mut().expect("an object");
    if let Some(keep) = patch.get(RETAIN_KEYS) {
        let keep: Vec<&str> = keep
            .as_array()
            .ok_or_else(|| bad(format!("{RETAIN_KEYS} must be a list of field names")))?
            .iter()
            .filter_map(Value::as_str)
            .collect();
        t.retain(|k, _| keep.contains(&k.as_str()) || patch.contains_key(k));
    }
    for (k, v) in patch {
        if k == PATCH || k == RETAIN_KEYS || k.starts_with(SET_ORDER) {
            continue;
        }
        if let Some(field) = k.strip_prefix(DELETE_FROM_PRIMITIVES) {
            let gone = v.as_array().cloned().unwrap_or_default();
            if let Some(Value::Array(items)) = t.get_mut(field) {
                items.retain(|i| !gone.contains(i));
            }
            continue;
        }
        if v.is_null() {
            t.remove(k);
            continue;
        }
        let slot = t.entry(k.clone()).or_insert(Value::Null);
        match v {
            Value::Object(p) if is_map_field(message, k) => {
                super::patch::merge(slot, &Value::Object(p.clone()))
            }
            Value::Object(p) => {
                merge_map(slot, p, field_message(message, k))?;
                if slot.is_null() {
                    t.remove(k);
                }
            }
            Value::Array(items) => merge_list(slot, items, message, k)?,
            other => *slot = other.clone(),
        }
    }
    for (k, order) in patch {
        if let Some(field) = k.strip_prefix(SET_ORDER) {
            let key = list_merge(message, field).flatten();
            if let (Some(Value::Array(items)), Some(order)) = (t.get_mut(field), order.as_array()) {
                reorder(items, order, key);
            }
        }
    }
    Ok(())
}

fn merge_list(
    target: &mut Value,
    patch: &[Value],
    message: Option<&str>,
    field: &str,
) -> Result<(), StatusError> {
    let replace = patch.iter().any(|i| i.get(PATCH).and_then(Value::as_str) == Some("replace"));
    let strategy = if replace { None } else { list_merge(message, field) };
    let Some(key) = strategy else {
        // Replaced: the patch's items, without a `{"$patch": "replace"}` marker item.
        let items = patch
            .iter()
            .filter(|i| !(i.get(PATCH).is_some() && i.as_object().is_some_and(|m| m.len() == 1)))
            .map(|i| {
                let mut i = i.clone();
                if let Value::Object(m) = &mut i {
                    m.remove(PATCH);
                }
                i
            })
            .collect();
        *target = Value::Array(items);
        return Ok(());
    };
    if !target.is_array() {
        *target = Value::Array(Vec::new());
    }
    let items = target.as_array_mut().expect("an array");
    let Some(key) = key else {
        // A set of primitives.
        for v in patch {
            if !items.contains(v) {
                items.push(v.clone());
            }
        }
        return Ok(());
    };
    let item_message = field_message(message, field);
    for p in patch {
        let Value::Object(pm) = p else {
            return Err(bad(format!("{field}: the items of a merged list must be objects")));
        };
        let id = pm.get(key).ok_or_else(|| bad(format!("{field}: an item has no merge key {key:?}")))?;
        let pos = items.iter().position(|i| i.get(key) == Some(id));
        match (pm.get(PATCH).and_then(Value::as_str), pos) {
            (Some("delete"), Some(i)) => {
                items.remove(i);
            }
            (Some("delete"), None) => {}
            (Some("replace"), Some(i)) => {
                let mut m = pm.clone();
                m.remove(PATCH);
                items[i] = Value::Object(m);
            }
            (_, Some(i)) => merge_map(&mut items[i], pm, item_message)?,
            (_, None) => {
                let mut fresh = Value::Object(Map::new());
                merge_map(&mut fresh, pm, item_message)?;
                items.push(fresh);
            }
        }
    }
    Ok(())
}

/// Orders `items` as `order` names them (by merge key, or by value for primitives); items `order` does
/// not name keep their relative order after the named ones.
fn reorder(items: &mut [Value], order: &[Value], key: Option<&str>) {
    let rank = |v: &Value| {
        let id = match key {
            Some(k) => v.get(k),
            None => Some(v),
        };
        order
            .iter()
            .position(|o| match key {
                Some(k) => o.get(k) == id,
                None => Some(o) == id,
            })
            .unwrap_or(usize::MAX)
    };
    items.sort_by_key(rank);
}

#[cfg(test)]
mod tests {
    use navarch_api::kind_info;
    use serde_json::json;

    use super::*;

    fn deployment() -> Value {
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "labels": {"app": "web", "tier": "x"}, "finalizers": ["a"]},
            "spec": {"replicas": 2, "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}},
                "template": {"spec": {"containers": [
                    {"name": "web", "image": "nginx:1.24", "ports": [{"containerPort": 80}], "env": [{"name": "A", "value": "1"}]},
                    {"name": "side", "image": "busybox"}
                ]}}}
        })
    }

    #[test]
    fn containers_merge_by_name_with_element_order() {
        let info = kind_info("Deployment").unwrap();
        let patch = json!({"spec": {"template": {"spec": {
            "$setElementOrder/containers": [{"name": "side"}, {"name": "web"}],
            "containers": [{"name": "web", "image": "nginx:1.27"}]
        }}}});
        let out = apply(info, deployment(), &patch).unwrap();
        let cs = &out["spec"]["template"]["spec"]["containers"];
        assert_eq!(cs[0]["name"], "side");
        assert_eq!(cs[1]["image"], "nginx:1.27");
        assert_eq!(cs[1]["ports"], json!([{"containerPort": 80}]), "untouched fields stay");
    }

    #[test]
    fn directives() {
        let info = kind_info("Deployment").unwrap();
        let patch = json!({
            "metadata": {"labels": {"tier": null, "new": "y"}, "finalizers": ["b"]},
            "spec": {
                "strategy": {"$retainKeys": ["type"], "type": "Recreate"},
                "template": {"spec": {"containers": [{"name": "side", "$patch": "delete"}]}}
            }
        });
        let out = apply(info, deployment(), &patch).unwrap();
        assert_eq!(out["metadata"]["labels"], json!({"app": "web", "new": "y"}));
        assert_eq!(out["metadata"]["finalizers"], json!(["a", "b"]));
        assert_eq!(out["spec"]["strategy"], json!({"type": "Recreate"}));
        assert_eq!(out["spec"]["template"]["spec"]["containers"].as_array().unwrap().len(), 1);
        let patch = json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["a"]}});
        let out = apply(info, deployment(), &patch).unwrap();
        assert_eq!(out["metadata"]["finalizers"], json!([]));
        let patch = json!({"spec": {"template": {"spec": {"containers": [{"$patch": "replace"}, {"name": "only", "image": "x"}]}}}});
        let out = apply(info, deployment(), &patch).unwrap();
        assert_eq!(out["spec"]["template"]["spec"]["containers"], json!([{"name": "only", "image": "x"}]));
    }
}
