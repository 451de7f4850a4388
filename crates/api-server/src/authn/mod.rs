//! Token authentication: who a bearer token says the caller is, as Kubernetes' token authenticators
//! decide it.
//!
//! * [`service_account`]: ServiceAccount tokens — ES256 JWTs ([`jwt`], keys in [`keys`]) issued for a
//!   TokenRequest (`serviceaccounts/<name>/token`) and verified on every request: signature, issuer,
//!   audiences, lifetime, and the binding to a live ServiceAccount (and Pod, Secret or Node) through
//!   [`service_account::BoundObjects`].
//! * [`bootstrap`]: bootstrap tokens (`<id>.<secret>`) checked against `kube-system` Secrets through
//!   [`bootstrap::BootstrapSecrets`], and their generation.
//! * [`oidc`]: the OIDC discovery documents (`/.well-known/openid-configuration`, `/openid/v1/jwks`)
//!   that let others verify ServiceAccount tokens.
//!
//! Nothing here reads requests or objects directly: the api-server's authentication layer takes the
//! token from the request ([`bearer_token`]), calls [`BearerTokenAuthenticator::authenticate`] with
//! its watch caches behind the two traits, and answers a bare `401 Unauthorized` on any
//! [`AuthError`], whose text is for the log only. [`parse_untrusted`] runs every parser over arbitrary
//! bytes, for fuzzing.

pub mod bootstrap;
pub mod claims;
pub mod jwt;
pub mod keys;
pub mod oidc;
pub mod service_account;

#[cfg(test)]
mod fuzz;

use std::time::SystemTime;

use crate::user_info::UserInfo;

pub use bootstrap::{BootstrapAuthenticator, BootstrapSecrets, BootstrapToken};
pub use jwt::JwtError;
pub use keys::{KeyError, SigningKey, VerifyingKey, VerifyingKeys};
pub use service_account::{
    BoundObject, BoundObjects, IssuedToken, LiveObject, LivePod, ObjectRef, ServiceAccountRef,
    TokenAuthenticator, TokenConfig, TokenIssuer, TokenRequest,
};

/// What a client is told whenever a token is refused, whatever the reason.
pub const UNAUTHORIZED: &str = "Unauthorized";

/// A token that authenticated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Authenticated {
    pub user: UserInfo,
    /// The audiences the token is valid for among those asked for (a TokenReview's `status.audiences`).
    pub audiences: Vec<String>,
    /// Annotations for the request's audit event, e.g. `authentication.k8s.io/stale-token`.
    pub audit_annotations: Vec<(&'static str, String)>,
}

/// Why a token was refused. The text is for the log: clients get a bare 401 [`UNAUTHORIZED`] (the
/// reason would help an attacker probe), as Kubernetes answers.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error(transparent)]
    Token(#[from] JwtError),
    #[error("service account token claims: {0}")]
    Claims(String),
    #[error("token issuer is not one this api-server accepts")]
    Issuer,
    #[error("token audiences {token:?} are invalid for the target audiences {target:?}")]
    Audience { token: Vec<String>, target: Vec<String> },
    #[error("service account token has expired")]
    Expired,
    #[error("service account token is not valid yet")]
    NotYetValid,
    #[error("service account token is issued in the future")]
    IssuedInTheFuture,
    #[error("service account token has been invalidated: {kind} {name:?} {problem}")]
    Binding { kind: &'static str, name: String, problem: BindingProblem },
    #[error("not a bootstrap token")]
    NotBootstrapToken,
    #[error("bootstrap token {token_id:?}: {problem}")]
    Bootstrap { token_id: String, problem: BootstrapProblem },
    #[error("this api-server does not accept {0}")]
    Disabled(&'static str),
}

/// Why the object a ServiceAccount token is bound to no longer vouches for it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BindingProblem {
    #[error("not found")]
    NotFound,
    #[error("has uid {live:?}, the token's claim is {claim:?}")]
    UidMismatch { claim: String, live: String },
    #[error("has been deleted")]
    Deleted,
}

/// Why a bootstrap token's Secret does not vouch for it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BootstrapProblem {
    #[error("no Secret kube-system/bootstrap-token-<id>")]
    SecretNotFound,
    #[error("the Secret is deleted and awaiting removal")]
    SecretDeleting,
    #[error("the Secret's type is not bootstrap.kubernetes.io/token")]
    SecretType,
    #[error("wrong token-secret")]
    WrongSecret,
    #[error("the Secret's token-id differs")]
    WrongTokenId,
    #[error("expired (or its expiration is not an RFC 3339 time)")]
    Expired,
    #[error("the Secret is not marked usage-bootstrap-authentication=true")]
    NotForAuthentication,
    #[error("auth-extra-groups: {0}")]
    ExtraGroups(String),
    #[error("none of the target audiences {0:?} is the api-server's")]
    Audience(Vec<String>),
}

impl AuthError {
    /// The token is not of this authenticator's kind (another one may know it), as opposed to one of
    /// its kind that failed a check.
    pub fn is_unrecognized(&self) -> bool {
        match self {
            AuthError::Token(e) => !matches!(e, JwtError::UnknownKey | JwtError::BadSignature),
            AuthError::Issuer | AuthError::NotBootstrapToken | AuthError::Disabled(_) => true,
            _ => false,
        }
    }
}

/// The token of an `Authorization` header value, as Kubernetes' bearer-token authenticator reads it:
/// surrounding white space trimmed, the scheme `Bearer` in any case, one space, then the token up to
/// the next space. `None` when there is no token (the request may still authenticate otherwise).
pub fn bearer_token(authorization: &str) -> Option<&str> {
    let mut parts = authorization.trim().splitn(3, ' ');
    let scheme = parts.next()?;
    let token = parts.next()?;
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// Every token authenticator of the api-server. Bootstrap tokens and JWTs cannot be mistaken for one
/// another (`<id>.<secret>` has one dot, a JWT two), so a token goes to the one whose format it has,
/// which gives what Kubernetes' union of authenticators gives.
pub struct BearerTokenAuthenticator {
    /// `None` when the api-server has no `--service-account-key-file`.
    pub service_accounts: Option<TokenAuthenticator>,
    /// `None` unless `--enable-bootstrap-token-auth`.
    pub bootstrap: Option<BootstrapAuthenticator>,
}

impl BearerTokenAuthenticator {
    /// `requested_audiences`: the api-server's own audiences for a request, a TokenReview's
    /// `spec.audiences` (or the api-server's when it has none) for a review.
    pub fn authenticate(
        &self,
        token: &str,
        requested_audiences: &[String],
        now: SystemTime,
        objects: &dyn BoundObjects,
        secrets: &dyn BootstrapSecrets,
    ) -> Result<Authenticated, AuthError> {
        if bootstrap::parse_token(token).is_some() {
            let Some(bootstrap) = &self.bootstrap else {
                return Err(AuthError::Disabled("bootstrap tokens"));
            };
            return bootstrap.authenticate(token, requested_audiences, now, secrets);
        }
        match &self.service_accounts {
            Some(service_accounts) => service_accounts.authenticate(token, requested_audiences, now, objects),
            None => Err(AuthError::Disabled("service account tokens")),
        }
    }
}

/// Runs every parser that sees untrusted token bytes — the `Authorization` header, the compact JWS
/// and its header, the claims, the bootstrap token format — without any key or object, and reports
/// how far the input got. For fuzzing: it must return, never panic, for any input.
pub fn parse_untrusted(input: &[u8]) -> UntrustedParse {
    if input.len() > jwt::MAX_TOKEN_BYTES + "Bearer ".len() {
        return UntrustedParse::default();
    }
    let token = match std::str::from_utf8(input) {
        Ok(text) => bearer_token(text).unwrap_or(text).as_bytes(),
        Err(_) => input,
    };
    let bootstrap = std::str::from_utf8(token).ok().and_then(bootstrap::parse_token).is_some();
    let (jws, claims) = match jwt::UnverifiedToken::decode(token) {
        Ok(jws) => (true, claims::Claims::from_json(jws.unverified_payload()).is_ok()),
        Err(_) => (false, claims::Claims::from_json(input).is_ok()),
    };
    UntrustedParse { bootstrap, jws, claims }
}

/// How far [`parse_untrusted`] got.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UntrustedParse {
    /// A well-formed bootstrap token.
    pub bootstrap: bool,
    /// A well-formed ES256 compact JWS (signature unchecked).
    pub jws: bool,
    /// ServiceAccount claims that parse (from the JWS payload, or the input itself).
    pub claims: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_tokens() {
        assert_eq!(bearer_token("Bearer abc"), Some("abc"));
        assert_eq!(bearer_token("bearer abc"), Some("abc"));
        assert_eq!(bearer_token("BEARER abc"), Some("abc"));
        assert_eq!(bearer_token("  Bearer abc \t"), Some("abc"));
        assert_eq!(
            bearer_token("Bearer abc def"),
            Some("abc"),
            "the rest after a space is ignored, as in Kubernetes"
        );
        assert_eq!(bearer_token("Bearer  abc"), None, "two spaces: an empty token");
        assert_eq!(bearer_token("Bearer"), None);
        assert_eq!(bearer_token("Bearer "), None);
        assert_eq!(bearer_token("Basic dXNlcjpwYXNz"), None);
        assert_eq!(bearer_token("Bearerabc"), None);
        assert_eq!(bearer_token(""), None);
        assert_eq!(bearer_token("Bearer\tabc"), None);
    }

    #[test]
    fn unrecognized_errors() {
        assert!(AuthError::Token(JwtError::NotCompact).is_unrecognized());
        assert!(AuthError::Issuer.is_unrecognized());
        assert!(!AuthError::Token(JwtError::BadSignature).is_unrecognized());
        assert!(!AuthError::Expired.is_unrecognized());
    }

    #[test]
    fn untrusted_parse_reports_progress() {
        assert_eq!(parse_untrusted(b""), UntrustedParse::default());
        assert!(parse_untrusted(b"Bearer abcdef.0123456789abcdef").bootstrap);
        assert!(parse_untrusted(b"abcdef.0123456789abcdef").bootstrap);
        assert!(!parse_untrusted(b"abcdef.0123456789abcdeF").bootstrap);
    }
}
