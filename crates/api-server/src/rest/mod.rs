//! The Kubernetes REST API, the api-server's second front door beside gRPC: same registry, validation
//! and watch caches ([`ApiState`]), Kubernetes' URLs, JSON/YAML bodies, `metav1.Status` errors, Tables,
//! discovery and OpenAPI, so kubectl and client libraries work unchanged.
//!
//! A request goes: [`path::parse`] names the endpoint → discovery/OpenAPI documents, or an object
//! handler ([`objects`]) → [`ApiState`] → an encoded response ([`encode`]). Errors become a
//! [`StatusError`] at one place ([`RestApi::handle`]).

pub mod decode;
pub mod discovery;
pub mod encode;
pub mod logs;
pub mod media;
pub mod objects;
pub mod patch;
pub mod path;
pub mod portforward;
pub mod portforward_channels;
pub mod protobuf;
pub mod query;
pub mod remotecommand;
pub mod reviews;
pub mod status;
pub mod strategic;
pub mod table;
pub mod upgrade;
pub mod watch;
pub mod websocket;

use std::sync::Arc;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, Limited};
use tracing::Instrument;

use crate::audit::{OutcomeRecorder, RequestOutcome};
use crate::error::ApiError;
use crate::request_info;
use crate::state::ApiState;
use crate::user_info::UserInfo;
use path::Target;
use query::Query;
pub use status::StatusError;

/// The body of every response of the api-server's listener (gRPC's and REST's).
pub type ResponseBody = tonic::body::Body;

/// Largest request body accepted (Kubernetes' limit is 3 MiB for objects; patches and lists of
/// manifests stay well below this).
const MAX_BODY_BYTES: usize = 8 << 20;

#[derive(Clone)]
pub struct RestApi {
    state: Arc<ApiState>,
}

/// A request as the handlers see it: method, parsed query, headers and the whole body.
pub struct RestRequest {
    pub method: Method,
    pub query: Query,
    pub headers: http::HeaderMap,
    pub body: Bytes,
    /// Who is asking (the authentication layer's answer; anonymous when it gave none).
    pub user: UserInfo,
}

impl RestApi {
    pub fn new(state: Arc<ApiState>) -> RestApi {
        RestApi { state }
    }

    /// Serves one request. Never fails: errors are `Status` responses.
    pub async fn handle<B>(&self, req: Request<B>) -> Response<ResponseBody>
    where
        B: hyper::body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        // Authorization, from the path alone, before anything is read or routed.
        let user = req.extensions().get::<UserInfo>().cloned().unwrap_or_else(UserInfo::anonymous);
        let attributes =
            request_info::rest_attributes(user, req.method(), req.uri().path(), req.uri().query());
        let decided = self.state.security().map(|s| s.authorization.authorize(&attributes));
        if let Some(recorder) = req.extensions().get::<OutcomeRecorder>() {
            recorder.record(RequestOutcome {
                attributes: Some((&attributes).into()),
                authorization: decided.as_ref().ok().map(Into::into),
                annotations: Vec::new(),
            });
        }
        match decided {
            Ok(d) if d.is_allowed() => {}
            Ok(d) => {
                let status = crate::authz::forbidden(&attributes, d.reason());
                return encode::error(&StatusError::from_api(ApiError::Denied(status.message), None));
            }
            Err(e) => return encode::error(&StatusError::from_api(e, None)),
        }
        let target = match path::parse(req.uri().path()) {
            // exec, attach and port-forward take over the connection: routed before the body is read.
            Ok(Target::Resource(r)) if upgrade::streaming_subresource(&r).is_some() => {
                let span = tracing::debug_span!("rest", method = %req.method(), path = req.uri().path());
                return upgrade::serve(self.state.clone(), r, req)
                    .instrument(span)
                    .await
                    .unwrap_or_else(|e| encode::error(&e));
            }
            other => other,
        };
        let (parts, body) = req.into_parts();
        // The whole body is read before answering, so a keep-alive connection never sees an unread body
        // as the next request (kubectl sends DELETE bodies).
        let body = match Limited::new(body, MAX_BODY_BYTES).collect().await {
            Ok(b) => b.to_bytes(),
            Err(e) => {
                return encode::error(&StatusError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "RequestEntityTooLarge",
                    format!("reading the request body: {e}"),
                ));
            }
        };
        let req = RestRequest {
            method: parts.method,
            query: Query::parse(parts.uri.query()),
            headers: parts.headers,
            body,
            user: parts.extensions.get::<UserInfo>().cloned().unwrap_or_else(UserInfo::anonymous),
        };
        let span = tracing::debug_span!("rest", method = %req.method, path = parts.uri.path());
        let result = match target {
            Ok(t) => self.route(t, req).instrument(span).await,
            Err(_) => Err(StatusError::no_such_path()),
        };
        result.unwrap_or_else(|e| encode::error(&e))
    }

    async fn route(&self, target: Target, req: RestRequest) -> Result<Response<ResponseBody>, StatusError> {
        let read_only = matches!(req.method, Method::GET | Method::HEAD);
        match target {
            Target::Resource(r) => objects::handle(&self.state, r, req).await,
            Target::Review(r) => reviews::handle(&self.state, r, req).await,
            _ if !read_only => Err(StatusError::method_not_allowed(&req.method)),
            Target::Version => Ok(encode::json(StatusCode::OK, &discovery::version())),
            Target::CoreGroup | Target::Groups => {
                let core = target == Target::CoreGroup;
                Ok(match media::aggregated_discovery(&req.headers) {
                    Some(v) => {
                        let content_type =
                            if v == "v2" { media::DISCOVERY_V2 } else { media::DISCOVERY_V2BETA1 };
                        encode::with_type(StatusCode::OK, content_type, &discovery::aggregated(core, v))
                    }
                    None if core => encode::json(StatusCode::OK, &discovery::core_versions()),
                    None => encode::json(StatusCode::OK, &discovery::groups()),
                })
            }
            Target::CustomResourceDefinitions => Ok(encode::json(
                StatusCode::OK,
                &serde_json::json!({
                    "kind": "CustomResourceDefinitionList",
                    "apiVersion": "apiextensions.k8s.io/v1",
                    "metadata": {},
                    "items": [],
                }),
            )),
            Target::Group(g) => Ok(encode::json(StatusCode::OK, &discovery::group(&g))),
            Target::GroupVersion(gv) => Ok(encode::json(StatusCode::OK, &discovery::resource_list(&gv))),
            // The protobuf encoding of an empty OpenAPI v2 `Document` is zero bytes.
            Target::OpenApiV2 => Ok(full(StatusCode::OK, "application/octet-stream", Bytes::new())),
            Target::OpenApiIndex => Ok(encode::json(StatusCode::OK, crate::openapi::index())),
            Target::OpenApiDocument(gv) => {
                let doc = crate::openapi::document(&gv).ok_or_else(StatusError::no_such_path)?;
                let mut resp = full(StatusCode::OK, media::JSON, doc.json.clone());
                // A document named by its hash never changes: clients may cache it for good.
                let cache = if req.query.get("hash") == Some(doc.hash.as_str()) {
                    "public, immutable"
                } else {
                    "no-cache, private"
                };
                resp.headers_mut().insert(header::CACHE_CONTROL, http::HeaderValue::from_static(cache));
                resp.headers_mut().insert(
                    header::ETAG,
                    http::HeaderValue::from_str(&format!("\"{}\"", doc.hash)).expect("a hex hash"),
                );
                Ok(resp)
            }
        }
    }
}

/// A response with a complete body.
pub fn full(code: StatusCode, content_type: &str, body: impl Into<Bytes>) -> Response<ResponseBody> {
    Response::builder()
        .status(code)
        .header(header::CONTENT_TYPE, content_type)
        .body(ResponseBody::new(Full::new(body.into())))
        .expect("a valid response")
}
