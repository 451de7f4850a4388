//! Client-side apply's three-way JSON merge patch (kubectl's algorithm for JSON merge patches).
//!
//! Inputs: `original` (the manifest as last applied, from the live object's annotation), `modified` (the
//! manifest now) and `current` (the live object). The patch
//! - sets every field of `modified` that differs from `current`,
//! - removes (`null`) every field present in `original` but absent from `modified`,
//! - leaves alone fields only `current` has: server defaults, status, fields controllers set.
//!
//! Lists are atomic: a list that differs is replaced as a whole. A list counts as unchanged when it has
//! the same length as the live one and each element is unchanged in the same three-way sense, so
//! defaults the server filled into list elements (a container's `imagePullPolicy`) do not make an
//! unchanged manifest look changed.

use serde_json::{Map, Value};

/// Computes the patch. `None` when nothing would change.
pub fn three_way(original: Option<&Value>, modified: &Value, current: &Value) -> Option<Value> {
    let patch = diff(original, modified, current);
    patch.filter(|p| !is_empty_object(p))
}

fn is_empty_object(v: &Value) -> bool {
    matches!(v, Value::Object(m) if m.is_empty())
}

/// The patch turning `current` into `modified` given `original`, or `None` when no change is needed.
fn diff(original: Option<&Value>, modified: &Value, current: &Value) -> Option<Value> {
    match (modified, current) {
        (Value::Object(m), Value::Object(c)) => {
            let o = original.and_then(Value::as_object);
            let mut patch = Map::new();
            for (key, mv) in m {
                let ov = o.and_then(|o| o.get(key));
                match c.get(key) {
                    None => {
                        patch.insert(key.clone(), mv.clone());
                    }
                    Some(cv) => {
                        if let Some(p) = diff(ov, mv, cv) {
                            patch.insert(key.clone(), p);
                        }
                    }
                }
            }
            // Deletions: applied before, no longer in the manifest, still live.
            if let Some(o) = o {
                for key in o.keys() {
                    if !m.contains_key(key) && c.get(key).is_some_and(|v| !v.is_null()) {
                        patch.insert(key.clone(), Value::Null);
                    }
                }
            }
            (!patch.is_empty()).then_some(Value::Object(patch))
        }
        (Value::Array(m), Value::Array(c)) => {
            let o = original.and_then(Value::as_array).filter(|o| o.len() == m.len());
            let same = m.len() == c.len()
                && m.iter()
                    .zip(c)
                    .enumerate()
                    .all(|(i, (mv, cv))| diff(o.map(|o| &o[i]), mv, cv).is_none_or(|p| is_empty_object(&p)));
            (!same).then(|| modified.clone())
        }
        (m, c) => (m != c).then(|| m.clone()),
    }
}

pub use navarch_api::merge_patch::apply as apply_patch;

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn patched(original: Option<Value>, modified: Value, current: Value) -> (Option<Value>, Value) {
        let patch = three_way(original.as_ref(), &modified, &current);
        let mut result = current.clone();
        if let Some(p) = &patch {
            apply_patch(&mut result, p);
        }
        (patch, result)
    }

    #[test]
    fn adds_a_field() {
        let (patch, result) = patched(
            Some(json!({"data": {"a": "1"}})),
            json!({"data": {"a": "1", "b": "2"}}),
            json!({"data": {"a": "1"}, "metadata": {"uid": "u"}}),
        );
        assert_eq!(patch, Some(json!({"data": {"b": "2"}})));
        assert_eq!(result, json!({"data": {"a": "1", "b": "2"}, "metadata": {"uid": "u"}}));
    }

    #[test]
    fn changes_a_field() {
        let (patch, result) = patched(
            Some(json!({"spec": {"replicas": 1}})),
            json!({"spec": {"replicas": 3}}),
            json!({"spec": {"replicas": 1, "paused": false}}),
        );
        assert_eq!(patch, Some(json!({"spec": {"replicas": 3}})));
        assert_eq!(result, json!({"spec": {"replicas": 3, "paused": false}}));
    }

    #[test]
    fn removes_a_field_dropped_from_the_manifest() {
        let (patch, result) = patched(
            Some(json!({"metadata": {"labels": {"a": "1", "b": "2"}}})),
            json!({"metadata": {"labels": {"a": "1"}}}),
            json!({"metadata": {"labels": {"a": "1", "b": "2", "added-by-hand": "x"}}}),
        );
        assert_eq!(patch, Some(json!({"metadata": {"labels": {"b": null}}})));
        assert_eq!(result, json!({"metadata": {"labels": {"a": "1", "added-by-hand": "x"}}}));
    }

    #[test]
    fn removes_a_whole_nested_object() {
        let (_, result) = patched(
            Some(json!({"spec": {"strategy": {"type": "Recreate"}, "replicas": 2}})),
            json!({"spec": {"replicas": 2}}),
            json!({"spec": {"strategy": {"type": "Recreate"}, "replicas": 2}}),
        );
        assert_eq!(result, json!({"spec": {"replicas": 2}}));
    }

    #[test]
    fn nested_change_keeps_siblings() {
        let (patch, result) = patched(
            Some(json!({"spec": {"template": {"spec": {"hostNetwork": true}}}})),
            json!({"spec": {"template": {"spec": {"hostNetwork": true, "dnsPolicy": "Default"}}}}),
            json!({"spec": {"template": {"spec": {"hostNetwork": true, "schedulerName": "default-scheduler"}}}}),
        );
        assert_eq!(patch, Some(json!({"spec": {"template": {"spec": {"dnsPolicy": "Default"}}}})));
        assert_eq!(
            result,
            json!({"spec": {"template": {"spec": {"hostNetwork": true, "schedulerName": "default-scheduler", "dnsPolicy": "Default"}}}})
        );
    }

    #[test]
    fn keeps_server_set_fields() {
        let live = json!({
            "metadata": {"name": "web", "uid": "u1", "resourceVersion": "42", "creationTimestamp": "t"},
            "spec": {"clusterIP": "10.96.0.10", "ports": [{"port": 80, "protocol": "TCP"}], "nodeName": "n1"},
            "status": {"phase": "Running"}
        });
        let manifest = json!({"metadata": {"name": "web"}, "spec": {"ports": [{"port": 80}]}});
        let (patch, result) = patched(Some(manifest.clone()), manifest, live.clone());
        assert_eq!(patch, None, "defaults inside list elements do not count as changes");
        assert_eq!(result, live);
    }

    #[test]
    fn lists_are_replaced_whole() {
        let (patch, result) = patched(
            Some(json!({"spec": {"ports": [{"port": 80}]}})),
            json!({"spec": {"ports": [{"port": 80}, {"port": 443}]}}),
            json!({"spec": {"ports": [{"port": 80, "protocol": "TCP"}]}}),
        );
        assert_eq!(patch, Some(json!({"spec": {"ports": [{"port": 80}, {"port": 443}]}})));
        assert_eq!(result, json!({"spec": {"ports": [{"port": 80}, {"port": 443}]}}));

        // A field removed from a list element replaces the list.
        let (patch, _) = patched(
            Some(json!({"c": [{"name": "a", "env": [{"name": "X"}]}]})),
            json!({"c": [{"name": "a"}]}),
            json!({"c": [{"name": "a", "env": [{"name": "X"}], "imagePullPolicy": "Always"}]}),
        );
        assert_eq!(patch, Some(json!({"c": [{"name": "a"}]})));

        // Scalar lists compare exactly.
        let (patch, _) = patched(None, json!({"args": ["a", "b"]}), json!({"args": ["a"]}));
        assert_eq!(patch, Some(json!({"args": ["a", "b"]})));
    }

    #[test]
    fn unchanged_detection() {
        let m =
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}, "data": {"k": "v"}});
        let live = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x", "uid": "u", "resourceVersion": "5"}, "data": {"k": "v"}});
        assert_eq!(three_way(Some(&m), &m, &live), None);
        // Without a last-applied configuration nothing is removed, and an equal manifest is unchanged.
        assert_eq!(three_way(None, &m, &live), None);
    }

    #[test]
    fn field_changed_by_hand_is_reset_to_the_manifest() {
        let (patch, _) = patched(
            Some(json!({"data": {"k": "v"}})),
            json!({"data": {"k": "v"}}),
            json!({"data": {"k": "edited"}}),
        );
        assert_eq!(patch, Some(json!({"data": {"k": "v"}})));
    }

    #[test]
    fn deleting_what_is_already_gone_is_no_change() {
        assert_eq!(three_way(Some(&json!({"a": 1, "b": 2})), &json!({"a": 1}), &json!({"a": 1})), None);
    }

    #[test]
    fn merge_patch_rfc7386() {
        let mut t = json!({"a": "b", "c": {"d": "e", "f": "g"}});
        apply_patch(&mut t, &json!({"a": "z", "c": {"f": null}}));
        assert_eq!(t, json!({"a": "z", "c": {"d": "e"}}));
        let mut t = json!({"a": [1, 2]});
        apply_patch(&mut t, &json!({"a": [3]}));
        assert_eq!(t, json!({"a": [3]}));
        let mut t = json!({"a": "x"});
        apply_patch(&mut t, &json!({"a": {"b": "c"}}));
        assert_eq!(t, json!({"a": {"b": "c"}}));
    }
}
