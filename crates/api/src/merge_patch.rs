//! JSON merge patch (RFC 7386), shared by navctl's client-side apply and the api-server's
//! `application/merge-patch+json` (and strategic merge's plain maps).

use serde_json::{Map, Value};

/// Applies `patch` to `target`: objects merge recursively, `null` removes a key, anything else replaces.
pub fn apply(target: &mut Value, patch: &Value) {
    let Value::Object(p) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let t = target.as_object_mut().expect("made an object above");
    for (key, pv) in p {
        if pv.is_null() {
            t.remove(key);
        } else {
            apply(t.entry(key.clone()).or_insert(Value::Null), pv);
        }
    }
}
