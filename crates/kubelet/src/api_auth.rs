//! Who may use the kubelet API, decided as Kubernetes' kubelet does with `--authentication-token-webhook`
//! and `--authorization-mode=Webhook`: the caller is its verified client certificate (CN = user, O =
//! groups) or its bearer token, checked by the api-server (TokenReview); no anonymous access. What it
//! may do is asked of the api-server too (SubjectAccessReview on `nodes/<this node>` with the
//! subresource of the call: `proxy` for logs, exec, attach and port-forward, `stats` for usage). Answers
//! are cached (allowed 5 min, denied 30 s; tokens 2 min), so the api-server is asked once per caller
//! and kind of call, not per request.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use navarch_api::v1::{
    ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec, TokenReview, TokenReviewSpec,
};
use navarch_client::Client;
use tonic::{Request, Status};

const ALLOWED_TTL: Duration = Duration::from_secs(300);
const DENIED_TTL: Duration = Duration::from_secs(30);
const TOKEN_TTL: Duration = Duration::from_secs(120);
/// Entries kept at most; the cache is cleared when full (a flood of distinct callers costs reviews,
/// not memory).
const CACHE_LIMIT: usize = 10_000;

/// A caller: user name and groups.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Caller {
    pub user: String,
    pub groups: Vec<String>,
}

/// A cache: key → (when it was decided, the answer).
type Cache<K, V> = Mutex<HashMap<K, (Instant, V)>>;

/// (caller, verb, subresource).
type DecisionKey = (Caller, &'static str, &'static str);

pub struct ApiAuth {
    client: Client,
    node_name: String,
    decisions: Cache<DecisionKey, bool>,
    tokens: Cache<String, Option<Caller>>,
}

fn bearer<T>(req: &Request<T>) -> Option<String> {
    let value = req.metadata().get("authorization")?.to_str().ok()?;
    let token = value.strip_prefix("Bearer ").or_else(|| value.strip_prefix("bearer "))?.trim();
    (!token.is_empty()).then(|| token.to_string())
}

fn cached<K: Eq + std::hash::Hash, V: Clone>(
    map: &Mutex<HashMap<K, (Instant, V)>>,
    key: &K,
    ttl: impl Fn(&V) -> Duration,
) -> Option<V> {
    let map = map.lock().unwrap_or_else(|p| p.into_inner());
    map.get(key).filter(|(at, v)| at.elapsed() < ttl(v)).map(|(_, v)| v.clone())
}

fn remember<K: Eq + std::hash::Hash, V>(map: &Cache<K, V>, key: K, value: V) {
    let mut map = map.lock().unwrap_or_else(|p| p.into_inner());
    if map.len() >= CACHE_LIMIT {
        map.clear();
    }
    map.insert(key, (Instant::now(), value));
}

impl ApiAuth {
    pub fn new(client: Client, node_name: String) -> ApiAuth {
        ApiAuth { client, node_name, decisions: Mutex::default(), tokens: Mutex::default() }
    }

    /// The caller of a request, or 401.
    async fn authenticate<T>(&self, req: &Request<T>) -> Result<Caller, Status> {
        if let Some(cert) = req.peer_certs().and_then(|c| c.first().cloned()) {
            let names =
                navarch_pki::subject_names(&cert).map_err(|_| Status::unauthenticated("Unauthorized"))?;
            if names.common_name.is_empty() {
                return Err(Status::unauthenticated("Unauthorized"));
            }
            return Ok(Caller { user: names.common_name, groups: names.organizations });
        }
        let Some(token) = bearer(req) else { return Err(Status::unauthenticated("Unauthorized")) };
        if let Some(known) = cached(&self.tokens, &token, |_| TOKEN_TTL) {
            return known.ok_or_else(|| Status::unauthenticated("Unauthorized"));
        }
        let review = TokenReview {
            spec: Some(TokenReviewSpec { token: token.clone(), audiences: Vec::new() }),
            ..TokenReview::default()
        };
        let answer = self.client.review(&review).await.map_err(|e| {
            tracing::warn!(error = %e, "TokenReview for a kubelet API call");
            Status::unavailable("cannot check credentials now")
        })?;
        let caller = answer
            .status
            .filter(|s| s.authenticated)
            .and_then(|s| s.user)
            .map(|u| Caller { user: u.username, groups: u.groups });
        remember(&self.tokens, token, caller.clone());
        caller.ok_or_else(|| Status::unauthenticated("Unauthorized"))
    }

    /// Checks that the caller of `req` may `verb` `nodes/<this node>/<subresource>`: 401 without
    /// credentials, 403 (Kubernetes' message) when refused.
    pub async fn check<T>(
        &self,
        req: &Request<T>,
        verb: &'static str,
        subresource: &'static str,
    ) -> Result<(), Status> {
        let caller = self.authenticate(req).await?;
        let key = (caller.clone(), verb, subresource);
        let allowed =
            match cached(&self.decisions, &key, |allowed| if *allowed { ALLOWED_TTL } else { DENIED_TTL }) {
                Some(a) => a,
                None => {
                    let review = SubjectAccessReview {
                        spec: Some(SubjectAccessReviewSpec {
                            user: caller.user.clone(),
                            groups: caller.groups.clone(),
                            resource_attributes: Some(ResourceAttributes {
                                verb: verb.into(),
                                resource: "nodes".into(),
                                subresource: subresource.into(),
                                name: self.node_name.clone(),
                                version: "v1".into(),
                                ..ResourceAttributes::default()
                            }),
                            ..SubjectAccessReviewSpec::default()
                        }),
                        ..SubjectAccessReview::default()
                    };
                    let answer = self.client.review(&review).await.map_err(|e| {
                        tracing::warn!(error = %e, "SubjectAccessReview for a kubelet API call");
                        Status::unavailable("cannot check permissions now")
                    })?;
                    let allowed = answer.status.is_some_and(|s| s.allowed);
                    remember(&self.decisions, key, allowed);
                    allowed
                }
            };
        if allowed {
            return Ok(());
        }
        tracing::info!(user = %caller.user, verb, subresource, "kubelet API call refused");
        Err(Status::permission_denied(format!(
            "Forbidden (user={}, verb={verb}, resource=nodes, subresource={subresource})",
            caller.user
        )))
    }
}
