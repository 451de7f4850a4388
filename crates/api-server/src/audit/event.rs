//! The audit event, `audit.k8s.io/v1 Event`, serialized exactly as Kubernetes' log backend writes it:
//! one JSON object per line, fields in Kubernetes' order, empty optional fields left out, timestamps in
//! RFC 3339 with microseconds.
//!
//! Also the rules for the logged bodies: `metadata.managedFields` dropped when the policy says so
//! ([`strip_managed_fields`]), and a response's `metav1.Status` reduced to the fields an event keeps
//! ([`ResponseStatus::from_status_body`]).

use std::collections::BTreeMap;
use std::time::SystemTime;

use serde::{Serialize, Serializer};
use serde_json::Value;

use super::attributes::RequestAttributes;
use super::policy::{Level, Stage};
use crate::user_info::UserInfo;

pub const DECISION_ANNOTATION: &str = "authorization.k8s.io/decision";
pub const REASON_ANNOTATION: &str = "authorization.k8s.io/reason";

/// One audit event.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    kind: &'static str,
    api_version: &'static str,
    pub level: Level,
    #[serde(rename = "auditID")]
    pub audit_id: String,
    pub stage: Stage,
    #[serde(rename = "requestURI")]
    pub request_uri: String,
    pub verb: String,
    pub user: EventUser,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub impersonated_user: Option<EventUser>,
    #[serde(rename = "sourceIPs", skip_serializing_if = "Vec::is_empty")]
    pub source_ips: Vec<String>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub user_agent: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub object_ref: Option<ObjectReference>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response_status: Option<ResponseStatus>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_object: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response_object: Option<Value>,
    #[serde(serialize_with = "micro_time")]
    pub request_received_timestamp: SystemTime,
    #[serde(serialize_with = "micro_time")]
    pub stage_timestamp: SystemTime,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

impl Event {
    /// An event at `level` for a request received at `received`, at stage `RequestReceived`.
    pub fn new(level: Level, audit_id: String, received: SystemTime) -> Event {
        Event {
            kind: "Event",
            api_version: super::policy::API_VERSION,
            level,
            audit_id,
            stage: Stage::RequestReceived,
            request_uri: String::new(),
            verb: String::new(),
            user: EventUser::default(),
            impersonated_user: None,
            source_ips: Vec::new(),
            user_agent: String::new(),
            object_ref: None,
            response_status: None,
            request_object: None,
            response_object: None,
            request_received_timestamp: received,
            stage_timestamp: received,
            annotations: BTreeMap::new(),
        }
    }

    /// The verb and, for resource requests, the `objectRef` (keeping a name or namespace already
    /// learned, e.g. from the request body).
    pub fn set_attributes(&mut self, a: &RequestAttributes) {
        self.verb = a.verb.clone();
        if !a.resource_request {
            self.object_ref = None;
            return;
        }
        let old = self.object_ref.take().unwrap_or_default();
        let or_old = |new: &str, old: String| if new.is_empty() { old } else { new.to_string() };
        self.object_ref = Some(ObjectReference {
            resource: a.resource.clone(),
            namespace: or_old(&a.namespace, old.namespace),
            name: or_old(&a.name, old.name),
            uid: old.uid,
            api_group: a.api_group.clone(),
            api_version: a.api_version.clone(),
            resource_version: old.resource_version,
            subresource: a.subresource.clone(),
        });
    }

    /// Fills the `objectRef`'s empty namespace, name, uid and resourceVersion from a logged request
    /// object's metadata, as Kubernetes does.
    pub fn fill_object_ref_from(&mut self, object: &Value) {
        let Some(object_ref) = self.object_ref.as_mut() else { return };
        let meta =
            |key: &str| object.pointer(&format!("/metadata/{key}")).and_then(Value::as_str).unwrap_or("");
        for (field, key) in [
            (&mut object_ref.namespace, "namespace"),
            (&mut object_ref.name, "name"),
            (&mut object_ref.uid, "uid"),
            (&mut object_ref.resource_version, "resourceVersion"),
        ] {
            if field.is_empty() {
                *field = meta(key).to_string();
            }
        }
    }

    /// Records an annotation; the first value of a key stays (Kubernetes warns and keeps it).
    pub fn annotate(&mut self, key: &str, value: &str) {
        self.annotations.entry(key.to_string()).or_insert_with(|| value.to_string());
    }

    /// The event as one log line, newline included.
    pub fn to_line(&self) -> Result<Vec<u8>, serde_json::Error> {
        let mut line = serde_json::to_vec(self)?;
        line.push(b'\n');
        Ok(line)
    }
}

/// `authentication.k8s.io/v1 UserInfo`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct EventUser {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub username: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub uid: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub extra: BTreeMap<String, Vec<String>>,
}

impl From<&UserInfo> for EventUser {
    fn from(u: &UserInfo) -> EventUser {
        EventUser {
            username: u.name.clone(),
            uid: u.uid.clone(),
            groups: u.groups.clone(),
            extra: u.extra.clone(),
        }
    }
}

/// The object a request is for.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectReference {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub resource: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub namespace: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub uid: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub api_group: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub api_version: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub resource_version: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub subresource: String,
}

/// The event's `responseStatus`: a `metav1.Status` with the code only for successes; with status,
/// reason, message and details for `Status` answers (errors).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ResponseStatus {
    /// Always `{}` (Kubernetes' ListMeta is not optional).
    metadata: BTreeMap<String, Value>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub status: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub message: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub reason: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub details: Option<Value>,
    #[serde(skip_serializing_if = "is_zero")]
    pub code: i32,
}

fn is_zero(code: &i32) -> bool {
    *code == 0
}

impl ResponseStatus {
    pub fn code(code: u16) -> ResponseStatus {
        ResponseStatus { code: i32::from(code), ..ResponseStatus::default() }
    }

    /// A failure with Kubernetes' reason.
    pub fn failure(code: u16, reason: &str, message: impl Into<String>) -> ResponseStatus {
        ResponseStatus {
            status: "Failure".into(),
            message: message.into(),
            reason: reason.into(),
            code: i32::from(code),
            ..ResponseStatus::default()
        }
    }

    /// The fields of a `metav1.Status` response body; `None` when the body is no Status. The HTTP
    /// code stands when the body has none.
    pub fn from_status_body(body: &Value, http_code: u16) -> Option<ResponseStatus> {
        if body.get("kind").and_then(Value::as_str) != Some("Status") {
            return None;
        }
        let text = |key: &str| body.get(key).and_then(Value::as_str).unwrap_or("").to_string();
        let code = body.get("code").and_then(Value::as_i64).and_then(|c| i32::try_from(c).ok());
        Some(ResponseStatus {
            status: text("status"),
            message: text("message"),
            reason: text("reason"),
            details: body.get("details").filter(|d| !d.is_null()).cloned(),
            code: code.filter(|c| *c != 0).unwrap_or(i32::from(http_code)),
            ..ResponseStatus::default()
        })
    }
}

fn micro_time<S: Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&humantime::format_rfc3339_micros(*t))
}

/// Removes `metadata.managedFields` from an object, from each item of a list and from each row's object
/// of a Table.
pub fn strip_managed_fields(value: &mut Value) {
    fn strip(object: &mut Value) {
        if let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut) {
            meta.remove("managedFields");
        }
    }
    strip(value);
    if let Some(items) = value.get_mut("items").and_then(Value::as_array_mut) {
        items.iter_mut().for_each(strip);
    }
    if let Some(rows) = value.get_mut("rows").and_then(Value::as_array_mut) {
        rows.iter_mut().filter_map(|row| row.get_mut("object")).for_each(strip);
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde_json::json;

    use super::*;

    fn at(micros: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_micros(micros)
    }

    #[test]
    fn minimal_event_shape() {
        let e = Event::new(Level::Metadata, "a1".into(), at(1_700_000_000_123_456));
        let line = String::from_utf8(e.to_line().unwrap()).unwrap();
        assert_eq!(
            line,
            concat!(
                r#"{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":"a1","#,
                r#""stage":"RequestReceived","requestURI":"","verb":"","user":{},"#,
                r#""requestReceivedTimestamp":"2023-11-14T22:13:20.123456Z","#,
                r#""stageTimestamp":"2023-11-14T22:13:20.123456Z"}"#,
                "\n"
            )
        );
    }

    #[test]
    fn full_event_shape() {
        let user = UserInfo {
            name: "alice".into(),
            uid: "u-1".into(),
            groups: vec!["dev".into(), "system:authenticated".into()],
            extra: BTreeMap::from([("scopes".to_string(), vec!["a".to_string()])]),
        };
        let mut e = Event::new(Level::RequestResponse, "id-2".into(), at(0));
        e.stage = Stage::ResponseComplete;
        e.stage_timestamp = at(1_500_000);
        e.request_uri = "/api/v1/namespaces/default/pods?dryRun=All".into();
        e.user = EventUser::from(&user);
        e.impersonated_user = Some(EventUser { username: "bob".into(), ..EventUser::default() });
        e.source_ips = vec!["10.0.0.1".into()];
        e.user_agent = "kubectl/v1.32.0".into();
        e.set_attributes(&RequestAttributes {
            verb: "create".into(),
            resource_request: true,
            api_version: "v1".into(),
            resource: "pods".into(),
            namespace: "default".into(),
            path: "/api/v1/namespaces/default/pods".into(),
            ..RequestAttributes::default()
        });
        e.request_object = Some(json!({"metadata": {"name": "web", "uid": "x"}}));
        e.fill_object_ref_from(
            &json!({"metadata": {"name": "web", "namespace": "other", "resourceVersion": "7"}}),
        );
        e.response_object = Some(json!({"kind": "Pod"}));
        e.response_status = Some(ResponseStatus::code(201));
        e.annotate(DECISION_ANNOTATION, "allow");
        e.annotate(REASON_ANNOTATION, "");
        e.annotate(DECISION_ANNOTATION, "forbid");
        let v: Value = serde_json::from_slice(&e.to_line().unwrap()).unwrap();
        assert_eq!(
            v,
            json!({
                "kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "RequestResponse", "auditID": "id-2",
                "stage": "ResponseComplete", "requestURI": "/api/v1/namespaces/default/pods?dryRun=All",
                "verb": "create",
                "user": {"username": "alice", "uid": "u-1", "groups": ["dev", "system:authenticated"],
                         "extra": {"scopes": ["a"]}},
                "impersonatedUser": {"username": "bob"},
                "sourceIPs": ["10.0.0.1"], "userAgent": "kubectl/v1.32.0",
                "objectRef": {"resource": "pods", "namespace": "default", "name": "web", "apiVersion": "v1",
                              "resourceVersion": "7"},
                "responseStatus": {"metadata": {}, "code": 201},
                "requestObject": {"metadata": {"name": "web", "uid": "x"}},
                "responseObject": {"kind": "Pod"},
                "requestReceivedTimestamp": "1970-01-01T00:00:00.000000Z",
                "stageTimestamp": "1970-01-01T00:00:01.500000Z",
                "annotations": {"authorization.k8s.io/decision": "allow", "authorization.k8s.io/reason": ""},
            })
        );
        // Kubernetes' field order.
        let text = serde_json::to_string(&e).unwrap();
        let order = [
            "\"kind\"",
            "\"level\"",
            "\"auditID\"",
            "\"stage\"",
            "\"requestURI\"",
            "\"verb\"",
            "\"user\"",
            "\"impersonatedUser\"",
            "\"sourceIPs\"",
            "\"userAgent\"",
            "\"objectRef\"",
            "\"responseStatus\"",
            "\"requestObject\"",
            "\"responseObject\"",
            "\"requestReceivedTimestamp\"",
            "\"stageTimestamp\"",
            "\"annotations\"",
        ];
        let positions: Vec<usize> = order.iter().map(|k| text.find(k).unwrap()).collect();
        assert!(positions.windows(2).all(|w| w[0] < w[1]), "{text}");
    }

    #[test]
    fn non_resource_attributes_have_no_object_ref() {
        let mut e = Event::new(Level::Metadata, "x".into(), at(0));
        e.set_attributes(&RequestAttributes {
            verb: "get".into(),
            path: "/healthz".into(),
            ..Default::default()
        });
        assert_eq!((e.verb.as_str(), e.object_ref.is_none()), ("get", true));
        e.fill_object_ref_from(&json!({"metadata": {"name": "n"}}));
        assert!(e.object_ref.is_none());
    }

    #[test]
    fn status_bodies() {
        let body = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": "pods \"x\" not found", "reason": "NotFound",
            "details": {"name": "x", "kind": "pods"}, "code": 404});
        let s = ResponseStatus::from_status_body(&body, 404).unwrap();
        assert_eq!(
            serde_json::to_value(&s).unwrap(),
            json!({"metadata": {}, "status": "Failure", "message": "pods \"x\" not found", "reason": "NotFound",
                   "details": {"name": "x", "kind": "pods"}, "code": 404})
        );
        let s =
            ResponseStatus::from_status_body(&json!({"kind": "Status", "status": "Success"}), 200).unwrap();
        assert_eq!(
            serde_json::to_value(&s).unwrap(),
            json!({"metadata": {}, "status": "Success", "code": 200})
        );
        assert_eq!(ResponseStatus::from_status_body(&json!({"kind": "Pod"}), 200), None);
        assert_eq!(ResponseStatus::from_status_body(&json!([1]), 500), None);
        assert_eq!(
            serde_json::to_value(ResponseStatus::failure(403, "Forbidden", "no")).unwrap(),
            json!({"metadata": {}, "status": "Failure", "message": "no", "reason": "Forbidden", "code": 403})
        );
    }

    #[test]
    fn managed_fields_are_stripped_everywhere() {
        let mf = json!([{"manager": "kubectl"}]);
        let mut obj = json!({"metadata": {"name": "a", "managedFields": mf}});
        strip_managed_fields(&mut obj);
        assert_eq!(obj, json!({"metadata": {"name": "a"}}));
        let mut list = json!({"kind": "PodList", "metadata": {}, "items": [
            {"metadata": {"name": "a", "managedFields": mf}}, {"metadata": {"name": "b"}}, 7]});
        strip_managed_fields(&mut list);
        assert_eq!(list["items"], json!([{"metadata": {"name": "a"}}, {"metadata": {"name": "b"}}, 7]));
        let mut table =
            json!({"kind": "Table", "rows": [{"cells": [], "object": {"metadata": {"managedFields": mf}}}]});
        strip_managed_fields(&mut table);
        assert_eq!(table["rows"][0]["object"], json!({"metadata": {}}));
        let mut scalar = json!("text");
        strip_managed_fields(&mut scalar);
        assert_eq!(scalar, json!("text"));
    }
}
