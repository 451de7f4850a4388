//! `meta.k8s.io/v1 Table` responses (what `kubectl get` prints): the columns and cells of
//! `navarch_api::table_columns` (the same code navctl prints with), one row per object, each row's
//! `object` as PartialObjectMetadata (the full object with `includeObject=Object`).

use std::time::SystemTime;

use navarch_api::table_columns;
use navarch_api::{KindInfo, Object};
use serde_json::{Value, json};

use super::encode::{IncludeObject, ListMeta, list_meta_value, object_value};

/// The column definitions of `kind`'s Table.
pub fn column_definitions(kind: &str) -> Vec<Value> {
    table_columns::columns(kind).iter().map(|c| json!(c)).collect()
}

/// One row: the cells, and the object as asked.
pub fn row(obj: &Object, include: IncludeObject, now: SystemTime) -> Value {
    let value = object_value(obj.info(), obj);
    let cells = table_columns::cells(obj.kind(), &value, now);
    let object = match include {
        IncludeObject::None => Value::Null,
        IncludeObject::Object => value,
        IncludeObject::Metadata => json!({
            "kind": "PartialObjectMetadata",
            "apiVersion": "meta.k8s.io/v1",
            "metadata": value.get("metadata").cloned().unwrap_or_else(|| json!({})),
        }),
    };
    let mut r = json!({"cells": cells});
    if !object.is_null() {
        r["object"] = object;
    }
    r
}

/// A Table of `items` (of kind `info`). Watch events after the first carry no column definitions, as
/// in Kubernetes.
pub fn table(
    info: &KindInfo,
    items: &[Object],
    meta: &ListMeta,
    include: IncludeObject,
    now: SystemTime,
    with_columns: bool,
) -> Value {
    let columns = if with_columns { column_definitions(info.kind) } else { Vec::new() };
    let rows: Vec<Value> = items.iter().map(|o| row(o, include, now)).collect();
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": list_meta_value(meta),
        "columnDefinitions": columns,
        "rows": rows,
    })
}

#[cfg(test)]
mod tests {
    use navarch_api::kind_info;
    use navarch_api::v1::{ObjectMeta, Pod};

    use super::*;

    #[test]
    fn pod_table_has_kubectl_columns_and_partial_metadata() {
        let pod = Object::Pod(Pod {
            metadata: Some(ObjectMeta {
                name: "web".into(),
                namespace: "default".into(),
                ..Default::default()
            }),
            ..Default::default()
        });
        let t = table(
            kind_info("Pod").unwrap(),
            &[pod],
            &ListMeta::default(),
            IncludeObject::Metadata,
            SystemTime::now(),
            true,
        );
        assert_eq!(t["kind"], "Table");
        let names: Vec<&str> =
            t["columnDefinitions"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
        assert_eq!(&names[..5], &["Name", "Ready", "Status", "Restarts", "Age"]);
        assert_eq!(t["rows"][0]["cells"][0], "web");
        assert_eq!(t["rows"][0]["object"]["kind"], "PartialObjectMetadata");
        assert_eq!(t["rows"][0]["object"]["metadata"]["name"], "web");
    }
}
