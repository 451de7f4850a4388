//! `components.schemas`: one schema per navarch message reachable from a group-version's kinds, named as
//! Kubernetes names them (`io.k8s.api.core.v1.PodSpec`, `io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta`),
//! a `<Kind>List` per kind, `DeleteOptions` (the body of every DELETE, a message of its own), and the
//! hand-written shapes that have no proto message (`Time`, `ListMeta`, `Status`, `Patch`, `WatchEvent`,
//! `autoscaling/v1 Scale`).

use navarch_api::schema::{self, Field, FieldType, ListType, Message, StringFormat};
use serde_json::{Map, Value, json};

use super::{GroupVersion, SCALABLE, schema_ref};

/// Kubernetes' package of meta/v1 types.
pub(super) const META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1";
const AUTOSCALING: &str = "io.k8s.api.autoscaling.v1";
pub(super) const STATUS: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.Status";
pub(super) const DELETE_OPTIONS: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions";
pub(super) const PATCH: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.Patch";
pub(super) const WATCH_EVENT: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.WatchEvent";
pub(super) const SCALE: &str = "io.k8s.api.autoscaling.v1.Scale";

/// The schema name of a navarch message. The package comes from the proto file the message is defined in
/// (`meta.proto` → meta/v1; `pod.proto` and `core.proto` → core/v1; `apps.proto` → apps/v1, ...), except
/// for the two types Kubernetes keeps elsewhere.
pub(super) fn schema_name(message: &str) -> String {
    match message {
        "Quantity" => "io.k8s.apimachinery.pkg.api.resource.Quantity".into(),
        "IntOrString" => "io.k8s.apimachinery.pkg.util.intstr.IntOrString".into(),
        "RawExtension" => "io.k8s.apimachinery.pkg.runtime.RawExtension".into(),
        _ => {
            let file = schema::message(message).map_or("core", |m| m.file);
            match file {
                "meta" => format!("{META}.{message}"),
                "pod" | "core" => format!("io.k8s.api.core.v1.{message}"),
                // The resource metrics API's types live in k8s.io/metrics, not k8s.io/api.
                "metrics" => format!("io.k8s.metrics.pkg.apis.metrics.v1beta1.{message}"),
                // autoscaling/v2's shapes; the `V1` ones are autoscaling/v1's under their upstream names.
                "autoscaling" => match message.strip_prefix("HorizontalPodAutoscalerV1") {
                    Some(rest) => format!("{AUTOSCALING}.HorizontalPodAutoscaler{rest}"),
                    None => format!("io.k8s.api.autoscaling.v2.{message}"),
                },
                other => format!("io.k8s.api.{other}.v1.{message}"),
            }
        }
    }
}

/// The schema name of a kind's list (`io.k8s.api.core.v1.PodList`).
pub(super) fn list_schema_name(kind: &str) -> String {
    format!("{}List", schema_name(kind))
}

/// Every schema of `gv`'s document.
pub(super) fn schemas(gv: &GroupVersion) -> Map<String, Value> {
    let mut out = Map::new();
    // Every document has delete operations, whose body is a DeleteOptions.
    let mut todo: Vec<&'static str> = gv.kinds.iter().map(|k| k.kind).chain(["DeleteOptions"]).collect();
    while let Some(name) = todo.pop() {
        let key = schema_name(name);
        if out.contains_key(&key) {
            continue;
        }
        let msg = schema::message(name).unwrap_or_else(|| panic!("{name} is not a navarch.api.v1 message"));
        for f in msg.fields {
            if let FieldType::Message(m) = f.map_value.unwrap_or(f.ty) {
                todo.push(m);
            }
        }
        out.insert(key, message_schema(msg));
    }
    for k in &gv.kinds {
        let kind = out.get_mut(&schema_name(k.kind)).and_then(Value::as_object_mut).expect("inserted above");
        kind.insert("x-kubernetes-group-version-kind".into(), json!([gv.gvk(k.kind)]));
        out.insert(list_schema_name(k.kind), list_schema(gv, k.kind));
    }
    out.extend(meta_schemas());
    if gv.kinds.iter().any(|k| SCALABLE.contains(&k.kind)) {
        out.extend(scale_schemas());
    }
    out
}

fn message_schema(msg: &Message) -> Value {
    let mut s = match msg.name {
        "Quantity" => json!({"type": "string"}),
        "IntOrString" => {
            json!({"type": "string", "format": "int-or-string", "x-kubernetes-int-or-string": true})
        }
        // Any JSON object (a trie of field paths), as Kubernetes describes it.
        "FieldsV1" => json!({"type": "object"}),
        // An embedded object of any kind (a ControllerRevision's data), as Kubernetes describes it.
        "RawExtension" => json!({"type": "object"}),
        // A user's extra values: Kubernetes' `[]string`.
        "ExtraValue" => json!({"type": "array", "items": {"type": "string"}}),
        _ => {
            let properties: Map<String, Value> =
                msg.fields.iter().map(|f| (f.json_name.to_string(), field_schema(msg, f))).collect();
            let mut s = json!({"type": "object", "properties": properties});
            let required = schema::required_fields(msg.name);
            if !required.is_empty() {
                s["required"] = json!(required);
            }
            if schema::is_atomic_struct(msg.name) {
                s["x-kubernetes-map-type"] = json!("atomic");
            }
            s
        }
    };
    if !msg.description.is_empty() {
        s["description"] = json!(msg.description);
    }
    s
}

pub(super) fn field_schema(msg: &Message, f: &Field) -> Value {
    let item = element_schema(msg, f);
    let mut s = if f.repeated {
        json!({"type": "array", "items": item})
    } else if f.map_value.is_some() {
        json!({"type": "object", "additionalProperties": item})
    } else {
        item
    };
    let mut extensions = Map::new();
    if let Some(p) = schema::patch_strategy(msg.name, f.json_name) {
        extensions.insert("x-kubernetes-patch-strategy".into(), json!(p.strategy.as_str()));
        if let Some(key) = p.merge_key {
            extensions.insert("x-kubernetes-patch-merge-key".into(), json!(key));
        }
    }
    if schema::is_atomic_map(msg.name, f.json_name) {
        extensions.insert("x-kubernetes-map-type".into(), json!("atomic"));
    }
    if let Some(list_type) = schema::list_type(msg.name, f.json_name) {
        extensions.insert("x-kubernetes-list-type".into(), json!(list_type.as_str()));
        if let ListType::Map(keys) = list_type {
            extensions.insert("x-kubernetes-list-map-keys".into(), json!(keys));
        }
    }
    // Siblings of a `$ref` are ignored in OpenAPI 3.0, so a reference with a description or extensions is
    // wrapped in `allOf`, as Kubernetes does.
    if s.get("$ref").is_some() && (!f.description.is_empty() || !extensions.is_empty()) {
        s = json!({ "allOf": [s] });
    }
    let obj = s.as_object_mut().expect("field schemas are objects");
    if !f.description.is_empty() {
        obj.insert("description".into(), json!(f.description));
    }
    obj.extend(extensions);
    s
}

/// The schema of a field's value, of each item of a list, or of each value of a map.
fn element_schema(msg: &Message, f: &Field) -> Value {
    match f.map_value.unwrap_or(f.ty) {
        FieldType::String => match schema::string_format(msg.name, f.json_name) {
            Some(StringFormat::Time) => schema_ref(&format!("{META}.Time")),
            Some(StringFormat::MicroTime) => schema_ref(&format!("{META}.MicroTime")),
            Some(StringFormat::Byte) => json!({"type": "string", "format": "byte"}),
            None => json!({"type": "string"}),
        },
        FieldType::Bool => json!({"type": "boolean"}),
        FieldType::Int32 => json!({"type": "integer", "format": "int32"}),
        FieldType::Int64 | FieldType::Uint32 => json!({"type": "integer", "format": "int64"}),
        FieldType::Uint64 => json!({"type": "integer"}),
        FieldType::Float => json!({"type": "number", "format": "float"}),
        FieldType::Double => json!({"type": "number", "format": "double"}),
        FieldType::Bytes => json!({"type": "string", "format": "byte"}),
        FieldType::Message(m) => schema_ref(&schema_name(m)),
    }
}

fn list_schema(gv: &GroupVersion, kind: &str) -> Value {
    json!({
        "description": format!("A list of {kind} objects."),
        "type": "object",
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": schema_ref(&format!("{META}.ListMeta")),
            "items": {"type": "array", "items": schema_ref(&schema_name(kind))},
        },
        "required": ["items"],
        "x-kubernetes-group-version-kind": [gv.gvk(&format!("{kind}List"))],
    })
}

/// The meta/v1 shapes navarch serves that have no proto message.
fn meta_schemas() -> Map<String, Value> {
    let string = json!({"type": "string"});
    let schemas = [
        (
            "Time",
            json!({
                "description": "A point in time in RFC 3339 form, to the second, in UTC (2006-01-02T15:04:05Z).",
                "type": "string",
                "format": "date-time",
            }),
        ),
        (
            "MicroTime",
            json!({
                "description": "A point in time in RFC 3339 form with microseconds, in UTC.",
                "type": "string",
                "format": "date-time",
            }),
        ),
        (
            "ListMeta",
            json!({
                "description": "The metadata of a list.",
                "type": "object",
                "properties": {
                    "resourceVersion": {
                        "description": "The version of the collection the list was read at; a watch started from it misses no change.",
                        "type": "string",
                    },
                    "continue": {
                        "description": "Set when the list was cut short by limit: pass it as the continue parameter to get the next page.",
                        "type": "string",
                    },
                    "remainingItemCount": {
                        "description": "How many objects the following pages hold, when known.",
                        "type": "integer",
                        "format": "int64",
                    },
                    "selfLink": {"description": "Unused; kept for compatibility.", "type": "string"},
                },
            }),
        ),
        (
            "Status",
            json!({
                "description": "The outcome of a request that returns no object: an error, or a deletion.",
                "type": "object",
                "properties": {
                    "apiVersion": string,
                    "kind": string,
                    "metadata": schema_ref(&format!("{META}.ListMeta")),
                    "status": {"description": "Success or Failure.", "type": "string"},
                    "message": {"description": "What happened, for people.", "type": "string"},
                    "reason": {"description": "What happened, for programs (NotFound, AlreadyExists, Conflict, Invalid, ...).", "type": "string"},
                    "details": {"allOf": [schema_ref(&format!("{META}.StatusDetails"))], "description": "The object the status is about, and the causes of an error."},
                    "code": {"description": "The HTTP status code.", "type": "integer", "format": "int32"},
                },
                "x-kubernetes-group-version-kind": [{"group": "", "kind": "Status", "version": "v1"}],
            }),
        ),
        (
            "StatusDetails",
            json!({
                "description": "The object a Status is about, and the causes of an error.",
                "type": "object",
                "properties": {
                    "name": string,
                    "group": string,
                    "kind": string,
                    "uid": string,
                    "causes": {"type": "array", "items": schema_ref(&format!("{META}.StatusCause"))},
                    "retryAfterSeconds": {"type": "integer", "format": "int32"},
                },
            }),
        ),
        (
            "StatusCause",
            json!({
                "description": "One cause of an error, such as one invalid field.",
                "type": "object",
                "properties": {
                    "reason": {"description": "FieldValueRequired, FieldValueInvalid, FieldValueNotSupported, ...", "type": "string"},
                    "message": string,
                    "field": {"description": "The path of the field at fault, such as spec.containers[0].image.", "type": "string"},
                },
            }),
        ),
        (
            "Patch",
            json!({
                "description": "A patch: a JSON patch, a JSON merge patch, a strategic merge patch or an apply configuration, by Content-Type.",
                "type": "object",
            }),
        ),
        (
            "WatchEvent",
            json!({
                "description": "One change in a watch stream.",
                "type": "object",
                "properties": {
                    "type": {"description": "ADDED, MODIFIED, DELETED, BOOKMARK or ERROR.", "type": "string"},
                    "object": {"description": "The object after the change (a Status for ERROR).", "type": "object"},
                },
                "required": ["type", "object"],
            }),
        ),
    ];
    schemas.into_iter().map(|(name, s)| (format!("{META}.{name}"), s)).collect()
}

/// `autoscaling/v1 Scale`, the body of the `scale` subresource.
fn scale_schemas() -> Map<String, Value> {
    let schemas = [
        (
            "Scale",
            json!({
                "description": "The replica count of a scalable object (the scale subresource).",
                "type": "object",
                "properties": {
                    "apiVersion": {"type": "string"},
                    "kind": {"type": "string"},
                    "metadata": schema_ref(&schema_name("ObjectMeta")),
                    "spec": {"allOf": [schema_ref(&format!("{AUTOSCALING}.ScaleSpec"))], "description": "The desired replica count."},
                    "status": {"allOf": [schema_ref(&format!("{AUTOSCALING}.ScaleStatus"))], "description": "The current replica count."},
                },
                "x-kubernetes-group-version-kind": [{"group": "autoscaling", "kind": "Scale", "version": "v1"}],
            }),
        ),
        (
            "ScaleSpec",
            json!({
                "type": "object",
                "properties": {"replicas": {"description": "The desired number of replicas.", "type": "integer", "format": "int32"}},
            }),
        ),
        (
            "ScaleStatus",
            json!({
                "type": "object",
                "properties": {
                    "replicas": {"description": "The number of replicas observed.", "type": "integer", "format": "int32"},
                    "selector": {"description": "The label selector of the replicas, in its text form.", "type": "string"},
                },
                "required": ["replicas"],
            }),
        ),
    ];
    schemas.into_iter().map(|(name, s)| (format!("{AUTOSCALING}.{name}"), s)).collect()
}
