//! `paths`: for each kind its collection (list, create, deletecollection), the list across namespaces, the
//! object (read, replace, patch, delete), and the `status` and `scale` subresources, each operation with
//! Kubernetes' operation id, `x-kubernetes-action` and `x-kubernetes-group-version-kind`.

use navarch_api::KindInfo;
use serde_json::{Map, Value, json};

use super::schemas::{DELETE_OPTIONS, PATCH, SCALE, STATUS, WATCH_EVENT, list_schema_name, schema_name};
use super::{GroupVersion, SCALABLE, schema_ref};

/// The content types PATCH accepts, as Kubernetes lists them.
const PATCH_TYPES: &[&str] = &[
    "application/apply-patch+yaml",
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
];

/// Every path of `gv`'s document.
pub(super) fn paths(gv: &GroupVersion) -> Map<String, Value> {
    let mut out = Map::new();
    for k in &gv.kinds {
        kind_paths(gv, k, &mut out);
    }
    out
}

/// What every operation on one kind shares.
struct Kind<'a> {
    gv: &'a GroupVersion,
    info: &'a KindInfo,
    /// `CoreV1NamespacedPod`, `CoreV1Node`: operation ids are a verb and this.
    ident: String,
    /// Its `x-kubernetes-group-version-kind`.
    gvk: Value,
}

/// An operation being built.
struct Op(Map<String, Value>);

impl Op {
    /// The request body: `schema` as any content type.
    fn body(mut self, schema: &str, required: bool) -> Op {
        self.0.insert(
            "requestBody".into(),
            json!({"required": required, "content": {"*/*": {"schema": schema_ref(schema)}}}),
        );
        self
    }

    /// `responses`: `schema` for each status code.
    fn responses(mut self, codes: &[&str], schema: &str) -> Value {
        let responses: Map<String, Value> =
            codes.iter().map(|c| (c.to_string(), response(c, schema))).collect();
        self.0.insert("responses".into(), Value::Object(responses));
        Value::Object(self.0)
    }
}

impl Kind<'_> {
    /// An operation. `gvk` is the kind the operation takes or returns (the kind itself, or
    /// `autoscaling/v1 Scale`).
    fn op(
        &self,
        action: &str,
        op_id: String,
        description: String,
        gvk: &Value,
        parameters: Vec<Value>,
    ) -> Op {
        let mut op = Map::new();
        op.insert("tags".into(), json!([self.gv.tag()]));
        op.insert("description".into(), json!(description));
        op.insert("operationId".into(), json!(op_id));
        if !parameters.is_empty() {
            op.insert("parameters".into(), Value::Array(parameters));
        }
        op.insert("x-kubernetes-action".into(), json!(action));
        op.insert("x-kubernetes-group-version-kind".into(), gvk.clone());
        Op(op)
    }

    /// GET on a collection: list, or watch with `watch=true`.
    fn list(&self, op_id: String, description: String) -> Value {
        let mut op = self.op("list", op_id, description, &self.gvk, list_parameters()).0;
        let list = schema_ref(&list_schema_name(self.info.kind));
        op.insert(
            "responses".into(),
            json!({"200": {"description": "OK", "content": {
                "application/json": {"schema": list},
                "application/json;stream=watch": {"schema": schema_ref(WATCH_EVENT)},
            }}}),
        );
        Value::Object(op)
    }

    /// GET, PUT and PATCH on an object or one of its subresources, whose body is `schema`. `suffix` (`""`,
    /// `Status`, `Scale`) ends the operation ids.
    fn read_replace_patch(&self, suffix: &str, what: &str, gvk: &Value, schema: &str) -> Map<String, Value> {
        let ident = format!("{}{suffix}", self.ident);
        let mut patch_parameters = write_parameters();
        patch_parameters.push(query(
            "force",
            "boolean",
            "Server-side apply: take over the fields other managers own instead of failing with a conflict. \
             Only for apply patches.",
        ));
        let mut patch = self.op(
            "patch",
            format!("patch{ident}"),
            format!("partially update {what}"),
            gvk,
            patch_parameters,
        );
        let content: Map<String, Value> =
            PATCH_TYPES.iter().map(|t| (t.to_string(), json!({"schema": schema_ref(PATCH)}))).collect();
        patch.0.insert("requestBody".into(), json!({"required": true, "content": content}));
        let mut ops = Map::new();
        ops.insert(
            "get".into(),
            self.op("get", format!("read{ident}"), format!("read {what}"), gvk, vec![])
                .responses(&["200"], schema),
        );
        ops.insert(
            "put".into(),
            self.op("put", format!("replace{ident}"), format!("replace {what}"), gvk, write_parameters())
                .body(schema, true)
                .responses(&["200", "201"], schema),
        );
        ops.insert("patch".into(), patch.responses(&["200", "201"], schema));
        ops
    }
}

fn kind_paths(gv: &GroupVersion, info: &KindInfo, out: &mut Map<String, Value>) {
    let scope = if info.namespaced { "Namespaced" } else { "" };
    let k =
        Kind { gv, info, ident: format!("{}{scope}{}", gv.op_ident(), info.kind), gvk: gv.gvk(info.kind) };
    let kind = info.kind;
    let kind_schema = schema_name(kind);
    let (collection, mut scope_params) = if info.namespaced {
        (format!("{}/namespaces/{{namespace}}/{}", gv.url_prefix(), info.plural), vec![namespace_parameter()])
    } else {
        (format!("{}/{}", gv.url_prefix(), info.plural), vec![])
    };

    // The collection.
    let mut ops = Map::new();
    ops.insert(
        "get".into(),
        k.list(format!("list{}", k.ident), format!("list or watch objects of kind {kind}")),
    );
    let create =
        k.op("post", format!("create{}", k.ident), format!("create a {kind}"), &k.gvk, write_parameters());
    ops.insert(
        "post".into(),
        create.body(&kind_schema, true).responses(&["200", "201", "202"], &kind_schema),
    );
    // Kubernetes has no deletecollection for namespaces.
    if kind != "Namespace" {
        let mut parameters = list_parameters();
        parameters.extend(delete_parameters());
        let op_id = format!("delete{}Collection{scope}{kind}", gv.op_ident());
        let delete =
            k.op("deletecollection", op_id, format!("delete a collection of {kind}"), &k.gvk, parameters);
        ops.insert("delete".into(), delete.body(DELETE_OPTIONS, false).responses(&["200"], STATUS));
    }
    // The resource metrics kinds are only read (get, list).
    let read_only = |ops: &mut Map<String, Value>| {
        if !info.is_stored() {
            ops.retain(|verb, _| verb == "get");
        }
    };
    read_only(&mut ops);
    insert_path(out, collection.clone(), ops, &scope_params);

    // The list across namespaces.
    if info.namespaced {
        let mut ops = Map::new();
        let op_id = format!("list{}{kind}ForAllNamespaces", gv.op_ident());
        ops.insert(
            "get".into(),
            k.list(op_id, format!("list or watch objects of kind {kind} in all namespaces")),
        );
        insert_path(out, format!("{}/{}", gv.url_prefix(), info.plural), ops, &[]);
    }

    // The object.
    scope_params.insert(0, name_parameter(&format!("name of the {kind}")));
    let item = format!("{collection}/{{name}}");
    let mut ops = k.read_replace_patch("", &format!("the specified {kind}"), &k.gvk, &kind_schema);
    // A pod, and any object still waiting for finalizers, is returned itself; other deleted objects as
    // a Status.
    let deleted = if kind == "Pod" { kind_schema.as_str() } else { STATUS };
    let mut delete = k
        .op("delete", format!("delete{}", k.ident), format!("delete a {kind}"), &k.gvk, delete_parameters())
        .body(DELETE_OPTIONS, false)
        .responses(&["200"], deleted);
    delete["responses"]["202"] = response("202", &kind_schema);
    ops.insert("delete".into(), delete);
    read_only(&mut ops);
    insert_path(out, item.clone(), ops, &scope_params);

    // Subresources.
    if info.has_status {
        let ops =
            k.read_replace_patch("Status", &format!("status of the specified {kind}"), &k.gvk, &kind_schema);
        insert_path(out, format!("{item}/status"), ops, &scope_params);
    }
    if SCALABLE.contains(&kind) {
        let gvk = json!({"group": "autoscaling", "version": "v1", "kind": "Scale"});
        let ops = k.read_replace_patch("Scale", &format!("scale of the specified {kind}"), &gvk, SCALE);
        insert_path(out, format!("{item}/scale"), ops, &scope_params);
    }
}

fn insert_path(
    out: &mut Map<String, Value>,
    path: String,
    mut ops: Map<String, Value>,
    parameters: &[Value],
) {
    if !parameters.is_empty() {
        ops.insert("parameters".into(), json!(parameters));
    }
    out.insert(path, Value::Object(ops));
}

fn response(code: &str, schema: &str) -> Value {
    let description = match code {
        "200" => "OK",
        "201" => "Created",
        _ => "Accepted",
    };
    json!({"description": description, "content": {"application/json": {"schema": schema_ref(schema)}}})
}

fn query(name: &str, ty: &str, description: &str) -> Value {
    json!({"name": name, "in": "query", "description": description, "schema": {"type": ty}})
}

fn name_parameter(description: &str) -> Value {
    json!({"name": "name", "in": "path", "required": true, "description": description, "schema": {"type": "string"}})
}

fn namespace_parameter() -> Value {
    json!({
        "name": "namespace",
        "in": "path",
        "required": true,
        "description": "the namespace of the objects",
        "schema": {"type": "string"},
    })
}

/// The parameters of list and watch.
fn list_parameters() -> Vec<Value> {
    vec![
        query(
            "allowWatchBookmarks",
            "boolean",
            "Let a watch send BOOKMARK events, which carry only a newer resourceVersion to resume from.",
        ),
        query(
            "continue",
            "string",
            "The metadata.continue of the previous page of a list cut short by limit: gets the next page.",
        ),
        query(
            "fieldSelector",
            "string",
            "Only objects whose fields have these values (metadata.name=web,spec.nodeName!=n1). Each kind supports a few fields.",
        ),
        query(
            "labelSelector",
            "string",
            "Only objects whose labels match this selector (app=web,tier in (a,b),!canary).",
        ),
        query(
            "limit",
            "integer",
            "At most this many objects; when more remain, the list's metadata.continue gives the next page.",
        ),
        query(
            "resourceVersion",
            "string",
            "For a list, how fresh it must be (unset: the latest); for a watch, the version to start after (every change since is sent).",
        ),
        query("timeoutSeconds", "integer", "End a watch after this many seconds."),
        query(
            "watch",
            "boolean",
            "Instead of a list, a stream of changes (newline-delimited watch events) after resourceVersion.",
        ),
    ]
}

/// The parameters of create, replace and patch.
fn write_parameters() -> Vec<Value> {
    vec![
        dry_run_parameter(),
        query(
            "fieldManager",
            "string",
            "The name of the actor making the change, recorded in metadata.managedFields.",
        ),
        query(
            "fieldValidation",
            "string",
            "What to do with unknown or duplicate fields in the body: Strict (reject the request), Warn (accept it, \
             with a Warning header per field) or Ignore (drop them).",
        ),
    ]
}

/// The parameters of delete and deletecollection (which may also come in the DeleteOptions body).
fn delete_parameters() -> Vec<Value> {
    vec![
        dry_run_parameter(),
        query(
            "gracePeriodSeconds",
            "integer",
            "Seconds before the object is deleted; 0 deletes it now. Unset: the object's own (a pod's \
             terminationGracePeriodSeconds).",
        ),
        query(
            "propagationPolicy",
            "string",
            "What happens to the objects this one owns: Orphan (kept), Background (deleted after it) or \
             Foreground (deleted before it).",
        ),
    ]
}

fn dry_run_parameter() -> Value {
    query("dryRun", "string", "All: validate the request and return the result without storing anything.")
}
