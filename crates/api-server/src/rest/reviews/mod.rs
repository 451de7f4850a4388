//! The kinds that are asked rather than stored: `authorization.k8s.io/v1` SelfSubjectAccessReview,
//! SubjectAccessReview, LocalSubjectAccessReview and SelfSubjectRulesReview ([`access`]),
//! `authentication.k8s.io/v1` TokenReview and SelfSubjectReview ([`identity`]), and the TokenRequest
//! of a ServiceAccount's `token` subresource ([`token`]). Each is POSTed and answered `201 Created`
//! with the object and its `status` filled in, as kube-apiserver answers; nothing is written to etcd.
//!
//! The logic is protocol-neutral (typed objects in, typed objects or Kubernetes' `Status` errors out),
//! so the REST endpoints here and the gRPC `Review` / `CreateToken` calls ([`crate::service`]) give the
//! same answers. Authorization of the request itself happens before (the REST door authorizes every
//! request from its path; gRPC checks in the service).

pub mod access;
mod go_value;
pub mod identity;
pub mod token;

#[cfg(test)]
mod tests;

use http::{HeaderValue, Method, Response, StatusCode};
use navarch_api::v1::{
    LocalSubjectAccessReview, SelfSubjectAccessReview, SelfSubjectReview, SelfSubjectRulesReview,
    SubjectAccessReview, TokenReview,
};
use serde::Serialize;
use serde_json::{Value, json};

use super::media::{self, BodyFormat, Output};
use super::path::ResourcePath;
use super::status::{Details, StatusError};
use super::{ResponseBody, RestRequest, decode, full};
use crate::error::ApiError;
use crate::state::ApiState;

pub const AUTHORIZATION_GROUP: &str = "authorization.k8s.io";
pub const AUTHENTICATION_GROUP: &str = "authentication.k8s.io";

/// A resource that is only ever created: POSTed, answered, forgotten.
#[derive(Debug, PartialEq, Eq)]
pub struct ReviewResource {
    /// `authorization.k8s.io/v1`.
    pub api_version: &'static str,
    pub group: &'static str,
    pub plural: &'static str,
    pub singular: &'static str,
    pub kind: &'static str,
    pub namespaced: bool,
}

const AUTHENTICATION_V1: &str = "authentication.k8s.io/v1";
const AUTHORIZATION_V1: &str = "authorization.k8s.io/v1";

const fn review(
    api_version: &'static str,
    group: &'static str,
    plural: &'static str,
    singular: &'static str,
    kind: &'static str,
    namespaced: bool,
) -> ReviewResource {
    ReviewResource { api_version, group, plural, singular, kind, namespaced }
}

/// Every review resource, in discovery's order (by group, then name).
pub static REVIEWS: [ReviewResource; 6] = [
    review(
        AUTHENTICATION_V1,
        AUTHENTICATION_GROUP,
        "selfsubjectreviews",
        "selfsubjectreview",
        "SelfSubjectReview",
        false,
    ),
    review(AUTHENTICATION_V1, AUTHENTICATION_GROUP, "tokenreviews", "tokenreview", "TokenReview", false),
    review(
        AUTHORIZATION_V1,
        AUTHORIZATION_GROUP,
        "localsubjectaccessreviews",
        "localsubjectaccessreview",
        "LocalSubjectAccessReview",
        true,
    ),
    review(
        AUTHORIZATION_V1,
        AUTHORIZATION_GROUP,
        "selfsubjectaccessreviews",
        "selfsubjectaccessreview",
        "SelfSubjectAccessReview",
        false,
    ),
    review(
        AUTHORIZATION_V1,
        AUTHORIZATION_GROUP,
        "selfsubjectrulesreviews",
        "selfsubjectrulesreview",
        "SelfSubjectRulesReview",
        false,
    ),
    review(
        AUTHORIZATION_V1,
        AUTHORIZATION_GROUP,
        "subjectaccessreviews",
        "subjectaccessreview",
        "SubjectAccessReview",
        false,
    ),
];

/// The review group-versions, in order.
pub const GROUP_VERSIONS: [&str; 2] = [AUTHENTICATION_V1, AUTHORIZATION_V1];

/// The review resource `plural` of `group_version` (`authorization.k8s.io/v1`).
pub fn find(group_version: &str, plural: &str) -> Option<&'static ReviewResource> {
    REVIEWS.iter().find(|r| r.plural == plural && r.api_version == group_version)
}

/// The review resource of a kind (`SelfSubjectAccessReview`).
pub fn by_kind(kind: &str) -> Option<&'static ReviewResource> {
    REVIEWS.iter().find(|r| r.kind == kind)
}

/// The review resources of a group-version, in order.
pub fn in_group_version(group_version: &str) -> impl Iterator<Item = &'static ReviewResource> + '_ {
    REVIEWS.iter().filter(move |r| r.api_version == group_version)
}

/// Whether `group_version` is one of the review group-versions.
pub fn serves_group_version(group_version: &str) -> bool {
    GROUP_VERSIONS.contains(&group_version)
}

/// What a review path names: the resource, and the namespace of a LocalSubjectAccessReview.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReviewPath {
    pub resource: &'static ReviewResource,
    pub namespace: Option<String>,
}

/// Serves `POST` on a review resource.
pub async fn handle(
    state: &ApiState,
    path: ReviewPath,
    req: RestRequest,
) -> Result<Response<ResponseBody>, StatusError> {
    if req.method != Method::POST {
        return Err(StatusError::method_not_allowed(&req.method));
    }
    let security = state.security().map_err(|e| StatusError::from_api(e, None))?;
    let format = body_format(&req)?;
    let r = path.resource;
    let api_version = r.api_version;
    let authorization = &security.authorization;
    let answer = match r.kind {
        "SelfSubjectAccessReview" => {
            let review: SelfSubjectAccessReview = decode::message(&req.body, format, r.kind, api_version)?;
            to_value(r, &access::self_subject_access_review(authorization, &req.user, review)?)
        }
        "SubjectAccessReview" => {
            let review: SubjectAccessReview = decode::message(&req.body, format, r.kind, api_version)?;
            to_value(r, &access::subject_access_review(authorization, review)?)
        }
        "LocalSubjectAccessReview" => {
            let mut review: LocalSubjectAccessReview =
                decode::message(&req.body, format, r.kind, api_version)?;
            let namespace = path.namespace.as_deref().unwrap_or_default();
            in_request_namespace(&mut review.metadata, namespace)?;
            to_value(r, &access::local_subject_access_review(authorization, review)?)
        }
        "SelfSubjectRulesReview" => {
            let review: SelfSubjectRulesReview = decode::message(&req.body, format, r.kind, api_version)?;
            to_value(r, &access::self_subject_rules_review(authorization, &req.user, review)?)
        }
        "TokenReview" => {
            let review: TokenReview = decode::message(&req.body, format, r.kind, api_version)?;
            to_value(r, &identity::token_review(security.tokens.as_deref(), review)?)
        }
        "SelfSubjectReview" => {
            let _: SelfSubjectReview = decode::message(&req.body, format, r.kind, api_version)?;
            to_value(r, &identity::self_subject_review(&req.user, std::time::SystemTime::now()))
        }
        _ => return Err(StatusError::no_such_path()),
    };
    Ok(respond(StatusCode::CREATED, Output::negotiate(&req.headers), &answer, &[]))
}

/// `POST .../namespaces/<ns>/serviceaccounts/<name>/token`: a TokenRequest.
pub async fn token_request(
    state: &ApiState,
    path: &ResourcePath,
    req: &RestRequest,
) -> Result<Response<ResponseBody>, StatusError> {
    let security = state.security().map_err(|e| StatusError::from_api(e, None))?;
    let format = body_format(req)?;
    let request = decode::message(&req.body, format, "TokenRequest", token::API_VERSION)?;
    let namespace = path.namespace.as_deref().unwrap_or_default();
    let name = path.name.as_deref().unwrap_or_default();
    let issued = token::create(state, security, namespace, name, request).await?;
    let value = token::to_value(&issued.request);
    Ok(respond(StatusCode::CREATED, Output::negotiate(&req.headers), &value, &issued.warnings))
}

fn body_format(req: &RestRequest) -> Result<BodyFormat, StatusError> {
    media::body_format(&req.headers).map_err(|t| StatusError::unsupported_media_type(&t))
}

/// The generic create handler's check: a namespaced object's namespace is the request's, or empty (then
/// it becomes the request's).
fn in_request_namespace(
    metadata: &mut Option<navarch_api::v1::ObjectMeta>,
    namespace: &str,
) -> Result<(), StatusError> {
    let meta = metadata.get_or_insert_with(Default::default);
    if meta.namespace.is_empty() {
        meta.namespace = namespace.to_string();
    } else if meta.namespace != namespace {
        return Err(StatusError::bad_request(
            "the namespace of the provided object does not match the namespace sent on the request",
        ));
    }
    Ok(())
}

/// An answer's JSON form as Kubernetes writes it: `kind` and `apiVersion` set, and `metadata` always
/// there, with `creationTimestamp: null` when it has none.
pub fn to_value(r: &ReviewResource, object: &impl Serialize) -> Value {
    with_type_meta(serde_json::to_value(object).unwrap_or_else(|_| json!({})), r.kind, r.api_version)
}

fn with_type_meta(mut v: Value, kind: &str, api_version: &str) -> Value {
    if let Value::Object(m) = &mut v {
        m.insert("kind".into(), json!(kind));
        m.insert("apiVersion".into(), json!(api_version));
        let meta = m.entry("metadata").or_insert_with(|| json!({}));
        if let Value::Object(meta) = meta {
            meta.entry("creationTimestamp").or_insert(Value::Null);
        }
    }
    v
}

/// The response: JSON (or YAML when asked; a Table is not offered for these), with a `Warning` header
/// per warning.
fn respond(code: StatusCode, output: Output, value: &Value, warnings: &[String]) -> Response<ResponseBody> {
    let mut resp = match output {
        Output::Yaml => {
            full(code, media::YAML, serde_yaml::to_string(value).unwrap_or_default().into_bytes())
        }
        Output::Json | Output::Table => {
            full(code, media::JSON, serde_json::to_vec(value).unwrap_or_default())
        }
    };
    for w in warnings {
        let text = format!("299 - {}", serde_json::to_string(w).unwrap_or_default());
        if let Ok(v) = HeaderValue::from_str(&text) {
            resp.headers_mut().append(http::header::WARNING, v);
        }
    }
    resp
}

/// `<Kind>.<group> "<name>" is invalid: <errors>` (422), each error a `<field>: <detail>` string;
/// `api_version` is the kind's (`authorization.k8s.io/v1`).
pub(crate) fn invalid(api_version: &'static str, kind: &str, name: &str, errors: Vec<String>) -> StatusError {
    let info = navarch_api::KindInfo {
        kind: "",
        api_version,
        plural: "",
        singular: String::new(),
        short_names: &[],
        namespaced: false,
        has_status: false,
    };
    StatusError::from_api(
        ApiError::Invalid { kind: kind.to_string(), name: name.to_string(), errors },
        Some(&info),
    )
}

/// `Operation cannot be fulfilled on <resource> "<name>": <message>` (409).
pub(crate) fn conflict(group: &str, resource: &str, name: &str, message: &str) -> StatusError {
    let qualified = if group.is_empty() { resource.to_string() } else { format!("{resource}.{group}") };
    StatusError {
        details: Some(Box::new(Details {
            name: name.to_string(),
            group: group.to_string(),
            kind: resource.to_string(),
            ..Details::default()
        })),
        ..StatusError::new(
            StatusCode::CONFLICT,
            "Conflict",
            format!("Operation cannot be fulfilled on {qualified} {}: {message}", go_value::quote(name)),
        )
    }
}

/// A review error as a gRPC status: the HTTP code's counterpart, Kubernetes' message.
pub fn grpc_status(e: &StatusError) -> tonic::Status {
    let code = match e.code {
        StatusCode::BAD_REQUEST | StatusCode::UNPROCESSABLE_ENTITY | StatusCode::UNSUPPORTED_MEDIA_TYPE => {
            tonic::Code::InvalidArgument
        }
        StatusCode::NOT_FOUND => tonic::Code::NotFound,
        StatusCode::CONFLICT => tonic::Code::Aborted,
        StatusCode::FORBIDDEN => tonic::Code::PermissionDenied,
        StatusCode::UNAUTHORIZED => tonic::Code::Unauthenticated,
        StatusCode::SERVICE_UNAVAILABLE => tonic::Code::Unavailable,
        StatusCode::METHOD_NOT_ALLOWED => tonic::Code::Unimplemented,
        _ => tonic::Code::Internal,
    };
    tonic::Status::new(code, e.message.clone())
}
