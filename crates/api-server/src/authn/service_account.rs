//! ServiceAccount tokens: issuing them for a TokenRequest with Kubernetes' expiration rules
//! (pkg/registry/core/serviceaccount/storage/token.go) and authenticating them on every request
//! (pkg/serviceaccount/jwt.go and claims.go): the signature, an accepted issuer, an audience in common
//! with the request's, the lifetime, and the ServiceAccount (and the Pod, Secret or Node the token is
//! bound to) still being there with the same uid.
//!
//! The api-server's flags become a [`TokenConfig`]; the objects come from the watch caches through
//! [`BoundObjects`], which the api-server implements.

use std::time::{Duration, SystemTime};

use navarch_api::v1::{ObjectMeta, Pod};

use super::claims::{self, Claims, KubernetesClaims, LEEWAY, ObjectRefClaim};
use super::jwt::{self, UnverifiedToken};
use super::keys::{KeyError, SigningKey, VerifyingKeys};
use super::{AuthError, Authenticated, BindingProblem};

/// A TokenRequest's `spec.expirationSeconds` when it has none.
pub const DEFAULT_EXPIRATION_SECONDS: i64 = 60 * 60;
/// The shortest lifetime a TokenRequest may ask for: 10 minutes.
pub const MIN_EXPIRATION_SECONDS: i64 = 10 * 60;
/// The longest: 2^32 seconds.
pub const MAX_EXPIRATION_SECONDS: i64 = 1 << 32;
/// What the kubelet asks for its projected tokens. A pod-bound token for the api-server's audiences with
/// exactly this lifetime is made valid for [`EXTENDED_EXPIRATION_SECONDS`] instead, its use audited
/// as stale after 3607 s (`--service-account-extend-token-expiration`).
pub const WARN_ONLY_EXPIRATION_SECONDS: i64 = 60 * 60 + 7;
/// A year.
pub const EXTENDED_EXPIRATION_SECONDS: i64 = 24 * 365 * 60 * 60;

/// The api-server's ServiceAccount token flags.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenConfig {
    /// `--service-account-issuer`, which may be repeated: the first is the `iss` of new tokens, all are
    /// accepted (to change the issuer without invalidating tokens in use).
    pub issuers: Vec<String>,
    /// `--api-audiences`: the audiences of tokens meant for the api-server. Empty: the issuers.
    pub api_audiences: Vec<String>,
    /// `--service-account-max-token-expiration`; `None`: no maximum.
    pub max_expiration: Option<Duration>,
    /// `--service-account-extend-token-expiration` (default true).
    pub extend_expiration: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("service-account-issuer is a required flag")]
    NoIssuer,
    #[error("service-account-issuer should not be an empty string")]
    EmptyIssuer,
    #[error("service-account-issuer {0:?} is already specified")]
    DuplicateIssuer(String),
    #[error("the service-account-max-token-expiration must be between 1 hour and 2^32 seconds")]
    MaxExpiration,
}

impl TokenConfig {
    /// Kubernetes' defaults for these issuers: the api-server's audiences are the issuers, no maximum
    /// expiration, the kubelet's tokens extended.
    pub fn new(issuers: Vec<String>) -> TokenConfig {
        TokenConfig { issuers, api_audiences: Vec::new(), max_expiration: None, extend_expiration: true }
    }

    /// The flag checks of kube-apiserver.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.issuers.is_empty() {
            return Err(ConfigError::NoIssuer);
        }
        for (i, issuer) in self.issuers.iter().enumerate() {
            if issuer.is_empty() {
                return Err(ConfigError::EmptyIssuer);
            }
            if self.issuers[..i].contains(issuer) {
                return Err(ConfigError::DuplicateIssuer(issuer.clone()));
            }
        }
        if let Some(max) = self.max_expiration
            && (max < Duration::from_secs(3600) || max > Duration::from_secs(MAX_EXPIRATION_SECONDS as u64))
        {
            return Err(ConfigError::MaxExpiration);
        }
        Ok(())
    }

    /// `--api-audiences`, or the issuers when it is empty.
    pub fn api_audiences(&self) -> &[String] {
        if self.api_audiences.is_empty() { &self.issuers } else { &self.api_audiences }
    }
}

/// The ServiceAccount a token is for.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ServiceAccountRef {
    pub namespace: String,
    pub name: String,
    pub uid: String,
}

/// A name and uid.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ObjectRef {
    pub name: String,
    pub uid: String,
}

/// What a token is bound to: it stops working when that object is deleted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BoundObject {
    /// A pod in the ServiceAccount's namespace, and the node it runs on when it is scheduled (the node's
    /// uid empty if the Node object was not found).
    Pod {
        pod: ObjectRef,
        node: Option<ObjectRef>,
    },
    /// A Secret in the ServiceAccount's namespace.
    Secret(ObjectRef),
    Node(ObjectRef),
}

/// A TokenRequest (`POST .../serviceaccounts/<name>/token`), its ServiceAccount and bound object
/// already looked up ([`resolve_bound_object`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TokenRequest {
    pub service_account: ServiceAccountRef,
    pub bound_object: Option<BoundObject>,
    /// `spec.audiences`; empty: the api-server's audiences.
    pub audiences: Vec<String>,
    /// `spec.expirationSeconds`; `None`: [`DEFAULT_EXPIRATION_SECONDS`].
    pub expiration_seconds: Option<i64>,
}

/// A TokenRequest's answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IssuedToken {
    /// `status.token`.
    pub token: String,
    /// `status.expirationTimestamp`: now plus `expiration_seconds` (an extended token is valid longer).
    pub expiration_timestamp: SystemTime,
    /// `spec.expirationSeconds` of the answer, after the maximum expiration applied.
    pub expiration_seconds: i64,
    /// `spec.audiences` of the answer, after defaulting.
    pub audiences: Vec<String>,
    /// `JTI=<jti>`: the audit annotation `authentication.kubernetes.io/issued-credential-id`.
    pub credential_id: String,
    /// For the response's `Warning` headers, e.g. `requested expiration of 7200 seconds shortened to
    /// 3600 seconds`.
    pub warnings: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum IssueError {
    /// A validation error of `spec.expirationSeconds` (422 Invalid).
    #[error("spec.expirationSeconds: Invalid value: {value}: {message}")]
    InvalidExpiration { value: i64, message: &'static str },
    /// 500.
    #[error("failed to generate token: {0}")]
    Signing(#[from] KeyError),
}

/// Signs ServiceAccount tokens.
#[derive(Debug)]
pub struct TokenIssuer {
    key: SigningKey,
    issuer: String,
    api_audiences: Vec<String>,
    max_expiration_seconds: Option<i64>,
    extend_expiration: bool,
}

impl TokenIssuer {
    /// `key` is `--service-account-signing-key-file`.
    pub fn new(key: SigningKey, config: &TokenConfig) -> Result<TokenIssuer, ConfigError> {
        config.validate()?;
        Ok(TokenIssuer {
            key,
            issuer: config.issuers[0].clone(),
            api_audiences: config.api_audiences().to_vec(),
            max_expiration_seconds: config.max_expiration.map(|d| d.as_secs() as i64),
            extend_expiration: config.extend_expiration,
        })
    }

    pub fn signing_key(&self) -> &SigningKey {
        &self.key
    }

    /// Issues the token a TokenRequest asks for, at `now`.
    pub fn issue(&self, request: &TokenRequest, now: SystemTime) -> Result<IssuedToken, IssueError> {
        let requested = request.expiration_seconds.unwrap_or(DEFAULT_EXPIRATION_SECONDS);
        if requested < MIN_EXPIRATION_SECONDS {
            return Err(IssueError::InvalidExpiration {
                value: requested,
                message: "may not specify a duration less than 10 minutes",
            });
        }
        if requested > MAX_EXPIRATION_SECONDS {
            return Err(IssueError::InvalidExpiration {
                value: requested,
                message: "may not specify a duration larger than 2^32 seconds",
            });
        }
        let audiences =
            if request.audiences.is_empty() { self.api_audiences.clone() } else { request.audiences.clone() };
        let mut warnings = Vec::new();
        let mut expiration_seconds = requested;
        if let Some(max) = self.max_expiration_seconds.filter(|max| requested > *max) {
            warnings.push(format!("requested expiration of {requested} seconds shortened to {max} seconds"));
            expiration_seconds = max;
        }
        // The kubelet's tokens: valid for a year, audited as stale after their requested lifetime.
        let pod_bound = matches!(request.bound_object, Some(BoundObject::Pod { .. }));
        let (lifetime, warn_after) = if self.extend_expiration
            && pod_bound
            && expiration_seconds == WARN_ONLY_EXPIRATION_SECONDS
            && audiences.iter().all(|a| self.api_audiences.contains(a))
        {
            (EXTENDED_EXPIRATION_SECONDS, Some(expiration_seconds))
        } else {
            (expiration_seconds, None)
        };

        let issued_at = claims::unix_seconds(now);
        let sa = &request.service_account;
        let jti = uuid::Uuid::new_v4().to_string();
        let claims = Claims {
            aud: audiences.clone(),
            exp: issued_at.saturating_add(lifetime),
            iat: Some(issued_at),
            iss: self.issuer.clone(),
            jti,
            kubernetes: private_claims(
                sa,
                request.bound_object.as_ref(),
                warn_after.map(|w| issued_at.saturating_add(w)),
            ),
            nbf: Some(issued_at),
            sub: claims::service_account_user_name(&sa.namespace, &sa.name),
        };
        let token = jwt::sign(&self.key, &claims.to_json())?;
        // expiration_seconds is within [600, 2^32], which any SystemTime near now can add.
        let expiration_timestamp = now + Duration::from_secs(expiration_seconds.unsigned_abs());
        Ok(IssuedToken {
            token,
            expiration_timestamp,
            expiration_seconds,
            audiences,
            credential_id: claims.credential_id(),
            warnings,
        })
    }
}

fn private_claims(
    sa: &ServiceAccountRef,
    bound: Option<&BoundObject>,
    warnafter: Option<i64>,
) -> KubernetesClaims {
    let claim = |r: &ObjectRef| ObjectRefClaim { name: r.name.clone(), uid: r.uid.clone() };
    let mut k = KubernetesClaims {
        namespace: sa.namespace.clone(),
        service_account: ObjectRefClaim { name: sa.name.clone(), uid: sa.uid.clone() },
        warnafter,
        ..KubernetesClaims::default()
    };
    match bound {
        Some(BoundObject::Pod { pod, node }) => {
            k.pod = Some(claim(pod));
            k.node = node.as_ref().map(claim);
        }
        Some(BoundObject::Secret(secret)) => k.secret = Some(claim(secret)),
        Some(BoundObject::Node(node)) => k.node = Some(claim(node)),
        None => {}
    }
    k
}

/// An object as token checks need it: its uid, and whether and when its deletion began.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LiveObject {
    pub uid: String,
    /// `metadata.deletionTimestamp` (RFC 3339); empty when the object is not being deleted.
    pub deletion_timestamp: String,
}

impl LiveObject {
    pub fn from_meta(meta: &ObjectMeta) -> LiveObject {
        LiveObject { uid: meta.uid.clone(), deletion_timestamp: meta.deletion_timestamp.clone() }
    }

    /// Deleted more than the leeway before `now`. A deletion time that does not parse counts as long
    /// past: the token is refused rather than trusted.
    fn deleted_before(&self, now: SystemTime) -> bool {
        if self.deletion_timestamp.is_empty() {
            return false;
        }
        match navarch_api::rfc3339::parse(&self.deletion_timestamp) {
            Ok(deleted) => claims::unix_nanos(deleted) < claims::unix_nanos(now) - LEEWAY.as_nanos() as i128,
            Err(_) => true,
        }
    }
}

/// A pod as token requests and checks need it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LivePod {
    pub object: LiveObject,
    /// `spec.serviceAccountName`.
    pub service_account_name: String,
    /// `spec.nodeName`; empty while unscheduled.
    pub node_name: String,
}

impl LivePod {
    pub fn from_pod(pod: &Pod) -> LivePod {
        let spec = pod.spec.as_ref();
        LivePod {
            object: pod.metadata.as_ref().map(LiveObject::from_meta).unwrap_or_default(),
            service_account_name: spec.map(|s| s.service_account_name.clone()).unwrap_or_default(),
            node_name: spec.map(|s| s.node_name.clone()).unwrap_or_default(),
        }
    }
}

/// The objects tokens are bound to, as the api-server's watch caches have them. `None`: not found.
pub trait BoundObjects {
    fn service_account(&self, namespace: &str, name: &str) -> Option<LiveObject>;
    fn pod(&self, namespace: &str, name: &str) -> Option<LivePod>;
    fn secret(&self, namespace: &str, name: &str) -> Option<LiveObject>;
    fn node(&self, name: &str) -> Option<LiveObject>;
}

/// A TokenRequest's `spec.boundObjectRef`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BoundObjectReference<'a> {
    pub kind: &'a str,
    pub api_version: &'a str,
    pub name: &'a str,
    /// Empty: any uid.
    pub uid: &'a str,
}

/// Why a TokenRequest's `boundObjectRef` cannot be honoured.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BindError {
    /// 404, as `<resource> "<name>" not found`.
    #[error("{resource} {name:?} not found")]
    NotFound { resource: &'static str, name: String },
    /// 400.
    #[error("cannot bind token for serviceaccount {0:?} to pod running with different serviceaccount name.")]
    DifferentServiceAccount(String),
    /// 400; the kind as Kubernetes prints a GroupVersionKind (`/v1, Kind=ConfigMap`).
    #[error("cannot bind token to object of type {0}")]
    UnsupportedKind(String),
    /// 409 Conflict on `<kind> "<name>"`.
    #[error(
        "the UID in the bound object reference ({uid}) does not match the UID in record. The object might have been deleted and then recreated"
    )]
    UidMismatch { kind: String, name: String, uid: String },
}

/// Looks up what a TokenRequest for ServiceAccount `service_account` in `namespace` wants its token
/// bound to: a Pod running as that ServiceAccount (with its node), a Secret, or a Node.
pub fn resolve_bound_object(
    namespace: &str,
    service_account: &str,
    reference: &BoundObjectReference<'_>,
    objects: &dyn BoundObjects,
) -> Result<BoundObject, BindError> {
    let not_found = |resource| BindError::NotFound { resource, name: reference.name.to_string() };
    // schema.FromAPIVersionAndKind: "v1" is the core group; "group/version" names one; anything
    // else has no group.
    let group = match reference.api_version.split('/').collect::<Vec<_>>()[..] {
        [group, _] => group,
        _ => "",
    };
    let (bound, uid) = match (group, reference.kind) {
        ("", "Pod") => {
            let pod = objects.pod(namespace, reference.name).ok_or_else(|| not_found("pods"))?;
            if pod.service_account_name != service_account {
                return Err(BindError::DifferentServiceAccount(service_account.to_string()));
            }
            let node = (!pod.node_name.is_empty()).then(|| ObjectRef {
                uid: objects.node(&pod.node_name).map(|n| n.uid).unwrap_or_default(),
                name: pod.node_name.clone(),
            });
            let uid = pod.object.uid;
            (
                BoundObject::Pod {
                    pod: ObjectRef { name: reference.name.to_string(), uid: uid.clone() },
                    node,
                },
                uid,
            )
        }
        ("", "Node") => {
            let node = objects.node(reference.name).ok_or_else(|| not_found("nodes"))?;
            (
                BoundObject::Node(ObjectRef { name: reference.name.to_string(), uid: node.uid.clone() }),
                node.uid,
            )
        }
        ("", "Secret") => {
            let secret = objects.secret(namespace, reference.name).ok_or_else(|| not_found("secrets"))?;
            (
                BoundObject::Secret(ObjectRef { name: reference.name.to_string(), uid: secret.uid.clone() }),
                secret.uid,
            )
        }
        _ => {
            let version = reference.api_version.rsplit('/').next().unwrap_or_default();
            let gvk = format!("{group}/{version}, Kind={}", reference.kind);
            return Err(BindError::UnsupportedKind(gvk));
        }
    };
    if !reference.uid.is_empty() && reference.uid != uid {
        return Err(BindError::UidMismatch {
            kind: reference.kind.to_string(),
            name: reference.name.to_string(),
            uid: reference.uid.to_string(),
        });
    }
    Ok(bound)
}

/// Authenticates ServiceAccount tokens.
#[derive(Clone, Debug)]
pub struct TokenAuthenticator {
    issuers: Vec<String>,
    keys: VerifyingKeys,
    api_audiences: Vec<String>,
}

impl TokenAuthenticator {
    /// `keys`: `--service-account-key-file` (every key that may have signed a token in use).
    pub fn new(config: &TokenConfig, keys: VerifyingKeys) -> TokenAuthenticator {
        TokenAuthenticator {
            issuers: config.issuers.clone(),
            keys,
            api_audiences: config.api_audiences().to_vec(),
        }
    }

    /// The audiences of tokens meant for the api-server: what to pass as `requested_audiences` for an
    /// ordinary request, and for a TokenReview without `spec.audiences`.
    pub fn api_audiences(&self) -> &[String] {
        &self.api_audiences
    }

    /// The user a token names, checked as Kubernetes does, in its order: an accepted issuer (a JWT of
    /// another issuer is not this authenticator's), the signature, an audience in common with
    /// `requested_audiences`, the lifetime, then the bound objects — the ServiceAccount must exist with
    /// the token's uid, and so must a bound Secret, Pod or (without a pod) Node; an object deleted more
    /// than a minute ago no longer vouches for the token.
    pub fn authenticate(
        &self,
        token: &str,
        requested_audiences: &[String],
        now: SystemTime,
        objects: &dyn BoundObjects,
    ) -> Result<Authenticated, AuthError> {
        let jws = UnverifiedToken::decode(token.as_bytes())?;
        if !self.has_accepted_issuer(jws.unverified_payload()) {
            return Err(AuthError::Issuer);
        }
        let payload = jws.verify(&self.keys)?;
        let claims = Claims::from_json(&payload)?;
        if !self.issuers.contains(&claims.iss) {
            return Err(AuthError::Issuer);
        }
        // A token without audiences (a legacy token) is for the api-server.
        let token_audiences = if claims.aud.is_empty() { &self.api_audiences } else { &claims.aud };
        let audiences: Vec<String> =
            requested_audiences.iter().filter(|a| token_audiences.contains(a)).cloned().collect();
        if audiences.is_empty() && !self.api_audiences.is_empty() {
            return Err(AuthError::Audience {
                token: token_audiences.clone(),
                target: requested_audiences.to_vec(),
            });
        }
        claims.check_times(now)?;
        check_bindings(&claims.kubernetes, now, objects)?;
        let audit_annotations = claims
            .stale_token_annotation(now)
            .map(|a| (claims::STALE_TOKEN_ANNOTATION, a))
            .into_iter()
            .collect();
        Ok(Authenticated { user: claims.user_info(), audiences, audit_annotations })
    }

    /// Kubernetes' `hasCorrectIssuer`: the unverified `iss`, to leave other issuers' JWTs alone.
    fn has_accepted_issuer(&self, unverified_payload: &[u8]) -> bool {
        #[derive(serde::Deserialize)]
        struct Issuer {
            iss: String,
        }
        serde_json::from_slice::<Issuer>(unverified_payload).is_ok_and(|i| self.issuers.contains(&i.iss))
    }
}

fn check_bindings(
    k: &KubernetesClaims,
    now: SystemTime,
    objects: &dyn BoundObjects,
) -> Result<(), AuthError> {
    let namespace = &k.namespace;
    let sa = &k.service_account;
    let live = (!namespace.is_empty() && !sa.name.is_empty())
        .then(|| objects.service_account(namespace, &sa.name))
        .flatten();
    check_live("ServiceAccount", namespace, &sa.name, &sa.uid, live.as_ref(), now)?;
    if let Some(secret) = &k.secret {
        let live = objects.secret(namespace, &secret.name);
        check_live("Secret", namespace, &secret.name, &secret.uid, live.as_ref(), now)?;
    }
    if let Some(pod) = &k.pod {
        let live = objects.pod(namespace, &pod.name).map(|p| p.object);
        check_live("Pod", namespace, &pod.name, &pod.uid, live.as_ref(), now)?;
    }
    // A node next to a pod is where the pod ran when the token was issued: information only. A node
    // alone is the binding.
    if let (Some(node), None) = (&k.node, &k.pod) {
        let live = objects.node(&node.name);
        check_live("Node", "", &node.name, &node.uid, live.as_ref(), now)?;
    }
    Ok(())
}

fn check_live(
    kind: &'static str,
    namespace: &str,
    name: &str,
    claimed_uid: &str,
    live: Option<&LiveObject>,
    now: SystemTime,
) -> Result<(), AuthError> {
    let problem = match live {
        None => BindingProblem::NotFound,
        Some(live) if live.uid != claimed_uid => {
            BindingProblem::UidMismatch { claim: claimed_uid.to_string(), live: live.uid.clone() }
        }
        Some(live) if live.deleted_before(now) => BindingProblem::Deleted,
        Some(_) => return Ok(()),
    };
    let name = if namespace.is_empty() { name.to_string() } else { format!("{namespace}/{name}") };
    Err(AuthError::Binding { kind, name, problem })
}

#[cfg(test)]
#[path = "service_account_tests.rs"]
mod tests;
