//! What an event records of a response and of logged bodies: the `responseStatus` of a gRPC answer
//! (its `grpc-status`, given the HTTP code and Kubernetes reason REST would give), and bodies read as
//! JSON values whatever they were sent as (JSON, YAML, Kubernetes protobuf).

use http::HeaderMap;
use serde_json::Value;

use super::event::ResponseStatus;
use crate::rest::media::{self, BodyFormat};

/// A failed gRPC answer's status from its headers (a trailers-only answer) or trailers; `None` for
/// success or no status.
pub fn grpc_status(headers: &HeaderMap) -> Option<ResponseStatus> {
    let code: i32 = headers.get("grpc-status")?.to_str().ok()?.trim().parse().ok()?;
    if code == 0 {
        return None;
    }
    let message =
        headers.get("grpc-message").and_then(|v| v.to_str().ok()).map(percent_decode).unwrap_or_default();
    let (http, reason) = http_equivalent(code);
    Some(ResponseStatus::failure(http, reason, message))
}

/// The HTTP code and Kubernetes reason of a gRPC code, as navarch's gRPC door uses the codes
/// (ARCHITECTURE.md: InvalidArgument for validation, Aborted for a stale resourceVersion, OutOfRange
/// for an expired one).
fn http_equivalent(grpc_code: i32) -> (u16, &'static str) {
    match grpc_code {
        1 => (499, ""),                    // Cancelled
        3 => (422, "Invalid"),             // InvalidArgument
        4 => (504, "Timeout"),             // DeadlineExceeded
        5 => (404, "NotFound"),            // NotFound
        6 => (409, "AlreadyExists"),       // AlreadyExists
        7 => (403, "Forbidden"),           // PermissionDenied
        8 => (429, "TooManyRequests"),     // ResourceExhausted
        9 => (400, "BadRequest"),          // FailedPrecondition
        10 => (409, "Conflict"),           // Aborted
        11 => (410, "Expired"),            // OutOfRange
        12 => (405, "MethodNotAllowed"),   // Unimplemented
        14 => (503, "ServiceUnavailable"), // Unavailable
        16 => (401, "Unauthorized"),       // Unauthenticated
        _ => (500, "InternalError"),       // Unknown, Internal, DataLoss, anything else
    }
}

/// `grpc-message` is percent-encoded; invalid escapes are kept as they are.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |at: usize| bytes.get(at).and_then(|b| (*b as char).to_digit(16));
        match (bytes[i], hex(i + 1), hex(i + 2)) {
            (b'%', Some(hi), Some(lo)) => {
                out.push((hi * 16 + lo) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A request body as a JSON value, read by its Content-Type; a Kubernetes protobuf body needs the kind
/// it holds. `None` when it cannot be read (the door will refuse it anyway) or is empty.
pub fn request_body_value(headers: &HeaderMap, body: &[u8], kind: Option<&str>) -> Option<Value> {
    if body.is_empty() {
        return None;
    }
    match media::body_format(headers) {
        Ok(BodyFormat::Json) => serde_json::from_slice(body).ok(),
        Ok(BodyFormat::Yaml) => serde_yaml::from_slice(body).ok(),
        Ok(BodyFormat::Protobuf) => crate::rest::protobuf::decode_message(kind?, body).ok(),
        // Patches: JSON, merge and strategic merge patches are JSON; apply patches YAML (or JSON).
        Err(_) => serde_json::from_slice(body).ok().or_else(|| serde_yaml::from_slice(body).ok()),
    }
}

/// The format of a response body that can be logged: JSON (Tables and Status included) or YAML.
fn response_format(headers: &HeaderMap) -> Option<BodyFormat> {
    let content_type = headers.get(http::header::CONTENT_TYPE)?.to_str().ok()?;
    match content_type.split(';').next().unwrap_or("").trim() {
        media::JSON => Some(BodyFormat::Json),
        media::YAML => Some(BodyFormat::Yaml),
        _ => None,
    }
}

/// Whether a response's body is of a type that is logged (see [`response_body_value`]).
pub fn logged_media(headers: &HeaderMap) -> bool {
    response_format(headers).is_some()
}

/// A response body as a JSON value: the api-server answers JSON (Tables included) or YAML.
pub fn response_body_value(headers: &HeaderMap, body: &[u8]) -> Option<Value> {
    match response_format(headers)? {
        BodyFormat::Json => serde_json::from_slice(body).ok(),
        BodyFormat::Yaml => serde_yaml::from_slice(body).ok(),
        BodyFormat::Protobuf => None,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn grpc_statuses() {
        assert_eq!(grpc_status(&headers(&[])), None);
        assert_eq!(grpc_status(&headers(&[("grpc-status", "0")])), None);
        assert_eq!(grpc_status(&headers(&[("grpc-status", "x")])), None);
        let s =
            grpc_status(&headers(&[("grpc-status", "5"), ("grpc-message", "pods%20%22web%22 not found")]))
                .unwrap();
        assert_eq!(s, ResponseStatus::failure(404, "NotFound", "pods \"web\" not found"));
        let s = grpc_status(&headers(&[("grpc-status", "7")])).unwrap();
        assert_eq!((s.code, s.reason.as_str(), s.message.as_str()), (403, "Forbidden", ""));
        assert_eq!(grpc_status(&headers(&[("grpc-status", "13")])).unwrap().code, 500);
        assert_eq!(grpc_status(&headers(&[("grpc-status", "11")])).unwrap().reason, "Expired");
        assert_eq!(percent_decode("100%25 %zz %4"), "100% %zz %4");
        assert_eq!(percent_decode("%E2%9C%93"), "✓");
    }

    #[test]
    fn request_bodies() {
        let none = HeaderMap::new();
        assert_eq!(request_body_value(&none, br#"{"a":1}"#, None), Some(json!({"a": 1})));
        assert_eq!(request_body_value(&none, b"", None), None);
        assert_eq!(request_body_value(&none, b"{not json", None), None);
        let yaml = headers(&[("content-type", "application/yaml")]);
        assert_eq!(request_body_value(&yaml, b"a: 1\nb: [x]\n", None), Some(json!({"a": 1, "b": ["x"]})));
        let apply = headers(&[("content-type", "application/apply-patch+yaml")]);
        assert_eq!(
            request_body_value(&apply, b"metadata:\n  name: web\n", None),
            Some(json!({"metadata": {"name": "web"}}))
        );
        let json_patch = headers(&[("content-type", "application/json-patch+json")]);
        assert_eq!(
            request_body_value(&json_patch, br#"[{"op":"remove","path":"/a"}]"#, None),
            Some(json!([{"op": "remove", "path": "/a"}]))
        );
        let protobuf = headers(&[("content-type", "application/vnd.kubernetes.protobuf")]);
        assert_eq!(request_body_value(&protobuf, b"k8s\0garbage", Some("Pod")), None);
        assert_eq!(request_body_value(&protobuf, b"k8s\0", None), None, "no kind, no decoding");
    }

    #[test]
    fn response_bodies() {
        let json_h = headers(&[("content-type", "application/json")]);
        assert_eq!(response_body_value(&json_h, br#"{"kind":"Pod"}"#), Some(json!({"kind": "Pod"})));
        let table = headers(&[("content-type", "application/json;as=Table;v=v1;g=meta.k8s.io")]);
        assert_eq!(response_body_value(&table, br#"{"kind":"Table"}"#), Some(json!({"kind": "Table"})));
        let yaml = headers(&[("content-type", "application/yaml")]);
        assert_eq!(response_body_value(&yaml, b"kind: Pod\n"), Some(json!({"kind": "Pod"})));
        let octets = headers(&[("content-type", "application/octet-stream")]);
        assert_eq!(response_body_value(&octets, b"{}"), None);
        assert_eq!(response_body_value(&HeaderMap::new(), b"{}"), None);
        assert!(logged_media(&json_h) && logged_media(&table) && logged_media(&yaml));
        assert!(!logged_media(&octets) && !logged_media(&HeaderMap::new()));
    }
}
