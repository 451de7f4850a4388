//! Who is asking: the first step of every request through either door, before audit, authorization
//! and admission (Kubernetes' union authenticator).
//!
//! 1. A client certificate that rustls verified against `--client-ca-file` during the handshake: its
//!    subject's CN is the user, each O a group.
//! 2. Otherwise an `Authorization: Bearer` token (ServiceAccount or bootstrap tokens: [`crate::authn`]).
//!    A token that does not authenticate is a 401, never anonymous.
//! 3. Otherwise, with `--anonymous-auth` (the default), `system:anonymous` in `system:unauthenticated`.
//!
//! The user goes into the request's extensions as a [`UserInfo`]. A 401 says only "Unauthorized"
//! (REST: a `Status`; gRPC: `UNAUTHENTICATED`); why is logged, never told.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures::future::BoxFuture;
use http::{Request, Response, StatusCode};
use navarch_pki::SubjectNames;

use navarch_api::Object;

use crate::audit::{AuditLayer, ImpersonatedBy};
use crate::authn::{BearerTokenAuthenticator, BootstrapSecrets, BoundObjects, LiveObject, LivePod};
use crate::error::ApiError;
use crate::impersonation;
use crate::local_store::LocalStore;
use crate::request_context;
use crate::rest::{ResponseBody, StatusError, encode};
use crate::state::Security;
use crate::user_info::{AUTHENTICATED_GROUP, UserInfo};

/// What the listener knows about a request's connection, put into every request's extensions.
#[derive(Clone, Debug)]
pub struct ConnectionInfo {
    pub peer: SocketAddr,
    /// The verified client certificate's subject, if the client presented one.
    pub client_cert: Option<SubjectNames>,
}

/// Why a request did not authenticate (for the log only).
#[derive(Debug, thiserror::Error)]
pub enum AuthenticationError {
    #[error("invalid bearer token: {0}")]
    Token(String),
    #[error("the Authorization header is not a bearer token")]
    NotBearer,
    #[error("anonymous requests are disabled")]
    Anonymous,
    #[error("a client certificate without a common name")]
    EmptyCommonName,
}

/// Checks bearer tokens (ServiceAccount JWTs, bootstrap tokens).
pub trait BearerTokens: Send + Sync {
    /// `Ok(None)`: not a token this authenticator knows.
    fn authenticate(&self, token: &str) -> Result<Option<UserInfo>, String>;
}

/// The authentication settings of the api-server.
pub struct Authenticator {
    pub anonymous: bool,
    pub tokens: Vec<Arc<dyn BearerTokens>>,
    /// Checks impersonation (`Impersonate-*` headers); without it they are refused.
    pub security: Option<Arc<Security>>,
    /// Records refused credentials in the audit log.
    pub audit: Option<AuditLayer>,
}

/// The cluster's token authenticators ([`crate::authn`]) over the api-server's local stores: a token
/// is good only while the ServiceAccount (and the pod, secret or node it is bound to) still exists.
pub struct ClusterTokens {
    pub bearer: BearerTokenAuthenticator,
    pub audiences: Vec<String>,
    pub objects: Arc<BoundStores>,
}

impl BearerTokens for ClusterTokens {
    fn authenticate(&self, token: &str) -> Result<Option<UserInfo>, String> {
        let now = std::time::SystemTime::now();
        match self.bearer.authenticate(token, &self.audiences, now, &*self.objects, &*self.objects) {
            Ok(a) => Ok(Some(a.user)),
            Err(e) => Err(e.to_string()),
        }
    }
}

/// The objects tokens are bound to, from the api-server's [`LocalStore`]s.
pub struct BoundStores {
    pub service_accounts: Arc<LocalStore>,
    pub pods: Arc<LocalStore>,
    pub nodes: Arc<LocalStore>,
    pub secrets: Arc<LocalStore>,
    /// Secrets of kube-system (bootstrap tokens).
    pub bootstrap_secrets: Arc<LocalStore>,
}

impl BoundObjects for BoundStores {
    fn service_account(&self, namespace: &str, name: &str) -> Option<LiveObject> {
        Some(LiveObject::from_meta(self.service_accounts.get(namespace, name)?.meta()))
    }
    fn pod(&self, namespace: &str, name: &str) -> Option<LivePod> {
        match &*self.pods.get(namespace, name)? {
            Object::Pod(p) => Some(LivePod::from_pod(p)),
            _ => None,
        }
    }
    fn secret(&self, namespace: &str, name: &str) -> Option<LiveObject> {
        Some(LiveObject::from_meta(self.secrets.get(namespace, name)?.meta()))
    }
    fn node(&self, name: &str) -> Option<LiveObject> {
        Some(LiveObject::from_meta(self.nodes.get("", name)?.meta()))
    }
}

impl BootstrapSecrets for BoundStores {
    fn bootstrap_secret(&self, name: &str) -> Option<navarch_api::v1::Secret> {
        match &*self.bootstrap_secrets.get("kube-system", name)? {
            Object::Secret(s) => Some(s.clone()),
            _ => None,
        }
    }
}

fn with_authenticated(mut user: UserInfo) -> UserInfo {
    if !user.in_group(AUTHENTICATED_GROUP) {
        user.groups.push(AUTHENTICATED_GROUP.into());
    }
    user
}

impl Authenticator {
    pub fn authenticate(
        &self,
        headers: &http::HeaderMap,
        connection: Option<&ConnectionInfo>,
    ) -> Result<UserInfo, AuthenticationError> {
        if let Some(cert) = connection.and_then(|c| c.client_cert.as_ref()) {
            if cert.common_name.is_empty() {
                return Err(AuthenticationError::EmptyCommonName);
            }
            return Ok(with_authenticated(UserInfo {
                name: cert.common_name.clone(),
                groups: cert.organizations.clone(),
                ..UserInfo::default()
            }));
        }
        if let Some(value) = headers.get(http::header::AUTHORIZATION) {
            let token = value
                .to_str()
                .ok()
                .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .ok_or(AuthenticationError::NotBearer)?;
            for authenticator in &self.tokens {
                match authenticator.authenticate(token) {
                    Ok(Some(user)) => return Ok(with_authenticated(user)),
                    Ok(None) => continue,
                    Err(reason) => return Err(AuthenticationError::Token(reason)),
                }
            }
            return Err(AuthenticationError::Token("no authenticator knows this token".into()));
        }
        if self.anonymous { Ok(UserInfo::anonymous()) } else { Err(AuthenticationError::Anonymous) }
    }
}

fn is_grpc<B>(req: &Request<B>) -> bool {
    req.headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/grpc"))
}

/// The 401 of either door.
pub fn unauthorized<B>(req: &Request<B>) -> Response<ResponseBody> {
    if is_grpc(req) {
        tonic::Status::unauthenticated("Unauthorized").into_http()
    } else {
        encode::error(&StatusError::new(StatusCode::UNAUTHORIZED, "Unauthorized", "Unauthorized"))
    }
}

/// An error of this layer in the door's format.
fn error_response<B>(req: &Request<B>, e: ApiError) -> Response<ResponseBody> {
    if is_grpc(req) {
        tonic::Status::from(e).into_http()
    } else {
        encode::error(&StatusError::from_api(e, None))
    }
}

/// The service that authenticates, then hands the request (with its [`UserInfo`]) to `inner`.
#[derive(Clone)]
pub struct Authenticate<S> {
    inner: S,
    authenticator: Arc<Authenticator>,
}

impl<S> Authenticate<S> {
    pub fn new(inner: S, authenticator: Arc<Authenticator>) -> Authenticate<S> {
        Authenticate { inner, authenticator }
    }
}

impl<S, B> tower_service::Service<Request<B>> for Authenticate<S>
where
    S: tower_service::Service<Request<B>, Response = Response<ResponseBody>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = Response<ResponseBody>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response<ResponseBody>, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        let user = self.authenticator.authenticate(req.headers(), req.extensions().get::<ConnectionInfo>());
        match user {
            Ok(user) if impersonation::requested(req.headers()) => {
                let Some(security) = &self.authenticator.security else {
                    let resp =
                        error_response(&req, ApiError::Forbidden("impersonation is not available".into()));
                    return Box::pin(async move { Ok(resp) });
                };
                match impersonation::impersonate(&security.authorization, &user, req.headers()) {
                    Ok(Some(as_user)) => {
                        tracing::debug!(user = %user.name, as_user = %as_user.name, "impersonation");
                        req.extensions_mut().insert(ImpersonatedBy(user));
                        req.extensions_mut().insert(as_user.clone());
                        let mut inner = self.inner.clone();
                        Box::pin(request_context::with_user(as_user, async move { inner.call(req).await }))
                    }
                    Ok(None) => {
                        req.extensions_mut().insert(user.clone());
                        let mut inner = self.inner.clone();
                        Box::pin(request_context::with_user(user, async move { inner.call(req).await }))
                    }
                    Err(e) => {
                        let resp = error_response(&req, e);
                        Box::pin(async move { Ok(resp) })
                    }
                }
            }
            Ok(user) => {
                req.extensions_mut().insert(user.clone());
                let mut inner = self.inner.clone();
                Box::pin(request_context::with_user(user, async move { inner.call(req).await }))
            }
            Err(e) => {
                let peer = req.extensions().get::<ConnectionInfo>().map(|c| c.peer);
                tracing::info!(?peer, path = req.uri().path(), reason = %e, "unauthorized request");
                let audit_id = self
                    .authenticator
                    .audit
                    .as_ref()
                    .and_then(|a| a.record_failed_authentication(&req, "Unauthorized"));
                let mut resp = unauthorized(&req);
                if let Some(id) = audit_id.and_then(|id| http::HeaderValue::from_str(&id).ok()) {
                    resp.headers_mut().insert(crate::audit::AUDIT_ID_HEADER, id);
                }
                Box::pin(async move { Ok(resp) })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fixed;
    impl BearerTokens for Fixed {
        fn authenticate(&self, token: &str) -> Result<Option<UserInfo>, String> {
            match token {
                "good" => Ok(Some(UserInfo { name: "sa".into(), ..UserInfo::default() })),
                "bad" => Err("signature".into()),
                _ => Ok(None),
            }
        }
    }

    fn headers(auth: Option<&str>) -> http::HeaderMap {
        let mut h = http::HeaderMap::new();
        if let Some(a) = auth {
            h.insert(http::header::AUTHORIZATION, a.parse().unwrap());
        }
        h
    }

    #[test]
    fn union_of_authenticators() {
        let a = Authenticator { anonymous: true, tokens: vec![Arc::new(Fixed)], security: None, audit: None };
        let cert = ConnectionInfo {
            peer: "127.0.0.1:1".parse().unwrap(),
            client_cert: Some(SubjectNames {
                common_name: "alice".into(),
                organizations: vec!["devs".into()],
            }),
        };
        let u = a.authenticate(&headers(Some("Bearer bad")), Some(&cert)).unwrap();
        assert_eq!(
            (u.name.as_str(), u.groups.clone()),
            ("alice", vec!["devs".to_string(), AUTHENTICATED_GROUP.into()])
        );
        let u = a.authenticate(&headers(Some("Bearer good")), None).unwrap();
        assert_eq!(u.groups, [AUTHENTICATED_GROUP]);
        assert!(a.authenticate(&headers(Some("Bearer bad")), None).is_err());
        assert!(a.authenticate(&headers(Some("Bearer unknown")), None).is_err());
        assert!(a.authenticate(&headers(Some("Basic eDp5")), None).is_err());
        assert!(a.authenticate(&headers(Some("Bearer ")), None).is_err());
        assert!(a.authenticate(&headers(None), None).unwrap().is_anonymous());
        let strict = Authenticator { anonymous: false, tokens: vec![], security: None, audit: None };
        assert!(strict.authenticate(&headers(None), None).is_err());
    }
}
