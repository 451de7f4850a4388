//! kubectl's description of a LimitRange (`describeLimitRange`): its name and namespace, then one row
//! per item and resource (Type, Resource, Min, Max, Default Request, Default Limit, Max Limit/Request
//! Ratio; `-` where the item sets nothing), quantities in Kubernetes' canonical form. No labels,
//! annotations or events, as kubectl.

use std::collections::BTreeSet;

use navarch_api::quantity;
use navarch_api::table_columns::{at, list_at, str_at};
use serde_json::Value;

use crate::printers::table::tabbed;

/// The description of the LimitRange `o` (its JSON form).
pub fn describe(o: &Value) -> String {
    let mut text =
        format!("Name:\t{}\nNamespace:\t{}\n", str_at(o, "metadata.name"), str_at(o, "metadata.namespace"));
    text.push_str("Type\tResource\tMin\tMax\tDefault Request\tDefault Limit\tMax Limit/Request Ratio\n");
    text.push_str("----\t--------\t---\t---\t---------------\t-------------\t-----------------------\n");
    text.push_str(&rows(at(o, "spec"), ""));
    tabbed(&text)
}

/// The rows of a LimitRange's spec, each line starting with `prefix` (kubectl's
/// `describeLimitRangeSpec`; a namespace's description indents them by one space).
pub fn rows(spec: &Value, prefix: &str) -> String {
    const FIELDS: [&str; 5] = ["min", "max", "defaultRequest", "default", "maxLimitRequestRatio"];
    let mut out = String::new();
    for item in list_at(spec, "limits") {
        let names: BTreeSet<&String> =
            FIELDS.iter().filter_map(|f| item.get(*f)?.as_object()).flat_map(|m| m.keys()).collect();
        for name in names {
            let cells: Vec<String> = FIELDS
                .iter()
                .map(|f| match item.get(*f).and_then(|m| m.get(name.as_str())).and_then(Value::as_str) {
                    Some(q) => quantity::canonical(q),
                    None => "-".to_string(),
                })
                .collect();
            out.push_str(&format!("{prefix}{}\t{name}\t{}\n", str_at(item, "type"), cells.join("\t")));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limit_range_description_like_kubectl() {
        let lr = navarch_api::manifest::parse(
            "apiVersion: v1\nkind: LimitRange\nmetadata: {name: limits, namespace: dev}\nspec:\n  limits:\n  - type: Container\n    max: {cpu: '2', memory: 1Gi}\n    default: {cpu: 500m, memory: 1024Mi}\n    defaultRequest: {cpu: 250m, memory: 256Mi}\n    maxLimitRequestRatio: {cpu: '4'}\n  - type: PersistentVolumeClaim\n    min: {storage: 1Gi}\n",
            "t",
        )
        .unwrap()
        .remove(0);
        let out = describe(&crate::printers::to_value(&lr));
        assert_eq!(
            out,
            "\
Name:                  limits
Namespace:             dev
Type                   Resource  Min  Max  Default Request  Default Limit  Max Limit/Request Ratio
----                   --------  ---  ---  ---------------  -------------  -----------------------
Container              cpu       -    2    250m             500m           4
Container              memory    -    1Gi  256Mi            1Gi            -
PersistentVolumeClaim  storage   1Gi  -    -                -              -
"
        );
    }
}
