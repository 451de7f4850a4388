//! The row of a ResourceQuota (`printResourceQuota` of Kubernetes 1.32): every hard resource as
//! `name: used/hard`, sorted by name, the `limits.*` ones in the Limit column and all others in the
//! Request column.

use serde_json::Value;

use super::at;
use crate::quantity::canonical;

/// A quantity's canonical text (`Quantity.String()`), `0` when absent.
fn quantity(v: &Value) -> String {
    v.as_str().map_or_else(|| "0".to_string(), canonical)
}

pub(super) fn resource_quota(o: &Value, name: Value, age: Value) -> Vec<Value> {
    let hard = at(o, "status.hard").as_object().cloned().unwrap_or_default();
    let used = at(o, "status.used");
    let mut names: Vec<&String> = hard.keys().collect();
    names.sort();
    let (mut request, mut limit) = (Vec::new(), Vec::new());
    for r in names {
        let cell = format!("{r}: {}/{}", quantity(used.get(r).unwrap_or(&Value::Null)), quantity(&hard[r]));
        if r.split('.').next() == Some("limits") && r.contains('.') {
            limit.push(cell)
        } else {
            request.push(cell)
        }
    }
    vec![name, age, Value::String(request.join(", ")), Value::String(limit.join(", "))]
}
