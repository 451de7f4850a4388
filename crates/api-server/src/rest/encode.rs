//! Encoding responses: objects and lists as JSON or YAML (with `kind` and `apiVersion`), Tables, and
//! `Status` errors.

use std::time::SystemTime;

use http::{Response, StatusCode};
use navarch_api::{KindInfo, Object};
use serde::Serialize;
use serde_json::{Value, json};

use super::media::{self, Output};
use super::status::StatusError;
use super::{ResponseBody, full, table};

pub fn json(code: StatusCode, value: &impl Serialize) -> Response<ResponseBody> {
    with_type(code, media::JSON, value)
}

pub fn with_type(code: StatusCode, content_type: &str, value: &impl Serialize) -> Response<ResponseBody> {
    full(code, content_type, serde_json::to_vec(value).expect("API values always serialize"))
}

/// A `Status` error; with a suggested wait, also the `Retry-After` header, as Kubernetes sends it.
pub fn error(e: &StatusError) -> Response<ResponseBody> {
    let mut resp = full(e.code, media::JSON, e.to_json());
    if let Some(wait) = e.details.as_ref().map(|d| d.retry_after_seconds).filter(|s| *s > 0)
        && let Ok(v) = http::HeaderValue::from_str(&wait.to_string())
    {
        resp.headers_mut().insert(http::header::RETRY_AFTER, v);
    }
    resp
}

/// An object's JSON form with `kind` and `apiVersion` set, at the version `info` names (the stored one, or
/// one the kind is also served at: `navarch_api::versions` converts).
pub fn object_value(info: &KindInfo, obj: &Object) -> Value {
    let mut v = serde_json::to_value(obj).expect("API objects always serialize");
    if let Value::Object(m) = &mut v {
        let stored = obj.info();
        m.insert("kind".into(), json!(stored.kind));
        m.insert("apiVersion".into(), json!(stored.api_version));
    }
    navarch_api::versions::from_stored(info, v)
}

/// What a list answers besides its items.
#[derive(Debug, Clone, Default)]
pub struct ListMeta {
    pub resource_version: String,
    pub continue_token: String,
    pub remaining: i64,
}

impl ListMeta {
    fn value(&self) -> Value {
        let mut m = json!({"resourceVersion": self.resource_version});
        if !self.continue_token.is_empty() {
            m["continue"] = json!(self.continue_token);
            if self.remaining > 0 {
                m["remainingItemCount"] = json!(self.remaining);
            }
        }
        m
    }
}

/// Options of a Table response (`includeObject`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IncludeObject {
    None,
    Metadata,
    Object,
}

impl IncludeObject {
    /// The `includeObject` query parameter (default: metadata only, as Kubernetes).
    pub fn from_query(q: &super::query::Query) -> IncludeObject {
        match q.get("includeObject") {
            Some("Object") => IncludeObject::Object,
            Some("None") => IncludeObject::None,
            _ => IncludeObject::Metadata,
        }
    }
}

fn encoded(code: StatusCode, output: Output, value: &Value) -> Response<ResponseBody> {
    match output {
        Output::Yaml => {
            full(code, media::YAML, serde_yaml::to_string(value).expect("values serialize as YAML"))
        }
        Output::Json | Output::Table => json(code, value),
    }
}

/// One object, as JSON, YAML or a one-row Table, at `info`'s version.
pub fn object(
    code: StatusCode,
    output: Output,
    include: IncludeObject,
    info: &KindInfo,
    obj: &Object,
) -> Response<ResponseBody> {
    if output == Output::Table {
        let t = table::table(
            obj.info(),
            std::slice::from_ref(obj),
            &ListMeta::default(),
            include,
            SystemTime::now(),
            true,
        );
        return with_type(code, media::TABLE, &t);
    }
    encoded(code, output, &object_value(info, obj))
}

/// A list (`PodList`...), as JSON, YAML or a Table. `items` is never null.
pub fn list(
    info: &KindInfo,
    output: Output,
    include: IncludeObject,
    items: &[Object],
    meta: &ListMeta,
) -> Response<ResponseBody> {
    if output == Output::Table {
        let t = table::table(info, items, meta, include, SystemTime::now(), true);
        return with_type(StatusCode::OK, media::TABLE, &t);
    }
    let items: Vec<Value> = items.iter().map(|o| object_value(info, o)).collect();
    let v = json!({
        "kind": format!("{}List", info.kind),
        "apiVersion": info.api_version,
        "metadata": meta.value(),
        "items": items,
    });
    encoded(StatusCode::OK, output, &v)
}

/// `Status` `Success` for a deleted object (what Kubernetes answers when it does not return the object).
pub fn deleted(info: &KindInfo, obj: &Object) -> Response<ResponseBody> {
    let group = super::status::group_of(info.api_version);
    json(
        StatusCode::OK,
        &json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Success",
            "details": {"name": obj.meta().name, "group": group, "kind": info.plural, "uid": obj.meta().uid},
        }),
    )
}

pub(super) fn list_meta_value(meta: &ListMeta) -> Value {
    meta.value()
}
