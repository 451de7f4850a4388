//! `metav1.Status`: the REST API's one mapping from [`ApiError`] to an HTTP code, a reason and a
//! message, as Kubernetes gives them. Internal details are logged, never sent.

use http::StatusCode;
use navarch_api::KindInfo;
use serde::Serialize;

use crate::error::ApiError;

/// A failed request, as the client sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct StatusError {
    pub code: StatusCode,
    pub reason: &'static str,
    pub message: String,
    /// Boxed: errors travel in `Result`s everywhere, and are rare.
    pub details: Option<Box<Details>>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct Details {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub group: String,
    /// The resource (plural) for not-found and conflict errors, the kind for validation errors.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub kind: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub uid: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub causes: Vec<Cause>,
    /// How long the client should wait before retrying (also the `Retry-After` header); 0: not said.
    #[serde(rename = "retryAfterSeconds", skip_serializing_if = "is_zero")]
    pub retry_after_seconds: i32,
}

fn is_zero(n: &i32) -> bool {
    *n == 0
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Cause {
    pub reason: &'static str,
    pub message: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub field: String,
}

#[derive(Serialize)]
struct StatusBody<'a> {
    kind: &'static str,
    #[serde(rename = "apiVersion")]
    api_version: &'static str,
    metadata: serde_json::Map<String, serde_json::Value>,
    status: &'static str,
    message: &'a str,
    /// Empty for a bare `Failure` (Kubernetes omits it).
    #[serde(skip_serializing_if = "str::is_empty")]
    reason: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    details: Option<&'a Details>,
    code: u16,
}

impl StatusError {
    pub fn new(code: StatusCode, reason: &'static str, message: impl Into<String>) -> StatusError {
        StatusError { code, reason, message: message.into(), details: None }
    }
    pub fn bad_request(message: impl Into<String>) -> StatusError {
        StatusError::new(StatusCode::BAD_REQUEST, "BadRequest", message)
    }
    /// A path that names nothing (Kubernetes' message for it).
    pub fn no_such_path() -> StatusError {
        StatusError::new(
            StatusCode::NOT_FOUND,
            "NotFound",
            "the server could not find the requested resource",
        )
    }
    pub fn method_not_allowed(method: &http::Method) -> StatusError {
        StatusError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            format!("the server does not allow this method on the requested resource ({method})"),
        )
    }
    /// A verb the resource does not serve, as Kubernetes' generic API server answers a route it has no
    /// handler for (a write or watch of `metrics.k8s.io` through metrics-server).
    pub fn method_not_supported() -> StatusError {
        StatusError {
            details: Some(Box::new(Details {
                causes: vec![Cause {
                    reason: "UnexpectedServerResponse",
                    message: "405: Method Not Allowed".into(),
                    field: String::new(),
                }],
                ..Default::default()
            })),
            ..StatusError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "MethodNotAllowed",
                "the server does not allow this method on the requested resource",
            )
        }
    }
    pub fn unsupported_media_type(content_type: &str) -> StatusError {
        StatusError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "UnsupportedMediaType",
            format!(
                "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml (got {content_type:?})"
            ),
        )
    }

    /// The `Status` object as JSON.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(&StatusBody {
            kind: "Status",
            api_version: "v1",
            metadata: Default::default(),
            status: "Failure",
            message: &self.message,
            reason: self.reason,
            details: self.details.as_deref(),
            code: self.code.as_u16(),
        })
        .expect("a Status always serializes")
    }

    /// Maps an error of a request on `info` (the kind the path names, when it names one).
    pub fn from_api(e: ApiError, info: Option<&KindInfo>) -> StatusError {
        let group = info.map(|i| group_of(i.api_version)).unwrap_or("");
        // The resource metrics API names what is missing itself: the Pod or Node (`pods "x" not found`)
        // or its metrics, qualified (`podmetrics.metrics.k8s.io "default/x" not found`), as metrics-server.
        if let (ApiError::NotFound { plural, name }, Some(i)) = (&e, info)
            && !i.is_stored()
        {
            let (resource, group) = plural.split_once('.').unwrap_or((plural, ""));
            return StatusError {
                details: Some(Box::new(Details {
                    name: name.clone(),
                    group: group.to_string(),
                    kind: resource.to_string(),
                    ..Default::default()
                })),
                ..StatusError::new(StatusCode::NOT_FOUND, "NotFound", format!("{plural} {name:?} not found"))
            };
        }
        let qualified =
            |plural: &str| if group.is_empty() { plural.to_string() } else { format!("{plural}.{group}") };
        let details = |name: &str, kind: &str| {
            Some(Box::new(Details {
                name: name.to_string(),
                group: group.to_string(),
                kind: kind.to_string(),
                ..Default::default()
            }))
        };
        match e {
            ApiError::Invalid { kind, name, errors } => {
                let causes: Vec<Cause> = errors.iter().map(|e| cause(e)).collect();
                let what = if group.is_empty() { kind.clone() } else { format!("{kind}.{group}") };
                let list =
                    if errors.len() == 1 { errors[0].clone() } else { format!("[{}]", errors.join(", ")) };
                StatusError {
                    code: StatusCode::UNPROCESSABLE_ENTITY,
                    reason: "Invalid",
                    message: format!("{what} {name:?} is invalid: {list}"),
                    details: Some(Box::new(Details {
                        name,
                        group: group.to_string(),
                        kind,
                        causes,
                        ..Default::default()
                    })),
                }
            }
            ApiError::BadRequest(m) => StatusError::bad_request(m),
            ApiError::NotFound { plural, name } => StatusError {
                details: details(&name, &plural),
                ..StatusError::new(
                    StatusCode::NOT_FOUND,
                    "NotFound",
                    format!("{} {name:?} not found", qualified(&plural)),
                )
            },
            ApiError::AlreadyExists { plural, name } => StatusError {
                details: details(&name, &plural),
                ..StatusError::new(
                    StatusCode::CONFLICT,
                    "AlreadyExists",
                    format!("{} {name:?} already exists", qualified(&plural)),
                )
            },
            ApiError::Conflict { plural, name } => StatusError {
                details: details(&name, &plural),
                ..StatusError::new(
                    StatusCode::CONFLICT,
                    "Conflict",
                    format!(
                        "Operation cannot be fulfilled on {} {name:?}: the object has been modified; please apply your changes to the latest version and try again",
                        qualified(&plural)
                    ),
                )
            },
            ApiError::Precondition(m) => StatusError::new(StatusCode::CONFLICT, "Conflict", m),
            ApiError::Forbidden(m) | ApiError::Denied(m) => {
                StatusError::new(StatusCode::FORBIDDEN, "Forbidden", m)
            }
            ApiError::Exhausted(m) => StatusError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "InternalError",
                format!("Internal error occurred: {m}"),
            ),
            ApiError::Expired(m) => StatusError::new(StatusCode::GONE, "Expired", m),
            ApiError::Unavailable(detail) => {
                tracing::warn!(%detail, "storage unavailable");
                StatusError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "ServiceUnavailable",
                    "storage unavailable, try again",
                )
            }
            ApiError::Internal(detail) => {
                tracing::error!(%detail, "internal error");
                StatusError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "InternalError",
                    "Internal error occurred: internal error",
                )
            }
            ApiError::Backend(m) => {
                StatusError::new(StatusCode::SERVICE_UNAVAILABLE, "ServiceUnavailable", m)
            }
            ApiError::TooManyRequests { message, causes, retry_after_seconds } => StatusError {
                details: Some(Box::new(Details {
                    causes: causes
                        .into_iter()
                        .map(|(reason, message)| Cause { reason, message, field: String::new() })
                        .collect(),
                    retry_after_seconds,
                    ..Default::default()
                })),
                ..StatusError::new(StatusCode::TOO_MANY_REQUESTS, "TooManyRequests", message)
            },
            ApiError::Unsupported(m) => StatusError::new(StatusCode::INTERNAL_SERVER_ERROR, "", m),
            ApiError::MethodNotAllowed(_) => StatusError::method_not_supported(),
            ApiError::Relayed(s) => {
                let (code, reason) = match s.code() {
                    tonic::Code::NotFound => (StatusCode::NOT_FOUND, "NotFound"),
                    tonic::Code::InvalidArgument => (StatusCode::BAD_REQUEST, "BadRequest"),
                    tonic::Code::FailedPrecondition => (StatusCode::BAD_REQUEST, "BadRequest"),
                    tonic::Code::Unavailable => (StatusCode::SERVICE_UNAVAILABLE, "ServiceUnavailable"),
                    _ => (StatusCode::INTERNAL_SERVER_ERROR, "InternalError"),
                };
                StatusError::new(code, reason, s.message())
            }
        }
    }
}

/// `apps` of `apps/v1`; empty for the core group.
pub fn group_of(api_version: &str) -> &str {
    api_version.rsplit_once('/').map_or("", |(g, _)| g)
}

/// One validation error (`path: Reason: detail`) as a `StatusCause`.
fn cause(error: &str) -> Cause {
    let (field, message) = error.split_once(": ").unwrap_or(("", error));
    let reason = [
        ("Required value", "FieldValueRequired"),
        ("Invalid value", "FieldValueInvalid"),
        ("Unsupported value", "FieldValueNotSupported"),
        ("Duplicate value", "FieldValueDuplicate"),
        ("Forbidden", "FieldValueForbidden"),
        ("Too long", "FieldValueTooLong"),
        ("Too many", "FieldValueTooMany"),
        ("Not found", "FieldValueNotFound"),
    ]
    .iter()
    .find(|(prefix, _)| message.starts_with(prefix))
    .map_or("FieldValueInvalid", |(_, r)| r);
    Cause { reason, message: message.to_string(), field: field.to_string() }
}

#[cfg(test)]
mod tests {
    use navarch_api::kind_info;

    use super::*;

    #[test]
    fn not_found_names_the_qualified_resource() {
        let e = ApiError::NotFound { plural: "deployments".into(), name: "web".into() };
        let s = StatusError::from_api(e, kind_info("Deployment"));
        assert_eq!(s.code, StatusCode::NOT_FOUND);
        assert_eq!(s.message, r#"deployments.apps "web" not found"#);
        let v: serde_json::Value = serde_json::from_slice(&s.to_json()).unwrap();
        assert_eq!(v["kind"], "Status");
        assert_eq!(v["apiVersion"], "v1");
        assert_eq!(v["reason"], "NotFound");
        assert_eq!(v["code"], 404);
        assert_eq!(v["details"]["kind"], "deployments");
        assert_eq!(v["details"]["group"], "apps");
    }

    #[test]
    fn invalid_carries_causes_with_field_paths() {
        let e = ApiError::Invalid {
            kind: "Deployment".into(),
            name: "web".into(),
            errors: vec![
                "spec.replicas: Invalid value: -1: must be greater than or equal to 0".into(),
                "spec.template.spec.containers[0].image: Required value".into(),
            ],
        };
        let s = StatusError::from_api(e, kind_info("Deployment"));
        assert_eq!(s.code, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(
            s.message.starts_with(r#"Deployment.apps "web" is invalid: [spec.replicas: Invalid value"#),
            "{}",
            s.message
        );
        let causes = &s.details.as_ref().unwrap().causes;
        assert_eq!(causes[0].field, "spec.replicas");
        assert_eq!(causes[0].reason, "FieldValueInvalid");
        assert_eq!(causes[0].message, "Invalid value: -1: must be greater than or equal to 0");
        assert_eq!(causes[1].reason, "FieldValueRequired");
    }

    #[test]
    fn internals_are_not_sent() {
        let s = StatusError::from_api(ApiError::Internal("etcd key /registry/x broke".into()), None);
        assert!(!s.message.contains("etcd"), "{}", s.message);
        let s = StatusError::from_api(ApiError::Unavailable("dial tcp 127.0.0.1:2379".into()), None);
        assert!(!s.message.contains("2379"), "{}", s.message);
        assert_eq!(s.code, StatusCode::SERVICE_UNAVAILABLE);
    }
}
