//! Bootstrap tokens (plugin/pkg/auth/authenticator/token/bootstrap and k8s.io/cluster-bootstrap): the
//! short-lived `<id>.<secret>` tokens (`[a-z0-9]{6}.[a-z0-9]{16}`) a joining node presents before it
//! has a certificate, each backed by a Secret `kube-system/bootstrap-token-<id>` of type
//! `bootstrap.kubernetes.io/token`. The token authenticates as `system:bootstrap:<id>` in
//! `system:bootstrappers` (plus the Secret's `auth-extra-groups`) while the Secret says
//! `usage-bootstrap-authentication: "true"` and its `expiration` has not passed.

use std::collections::BTreeSet;
use std::fmt;
use std::time::SystemTime;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use navarch_api::v1::{ObjectMeta, Secret};
use rand::Rng;

use super::{AuthError, Authenticated, BootstrapProblem};
use crate::user_info::{AUTHENTICATED_GROUP, UserInfo};

pub const NAMESPACE: &str = "kube-system";
pub const SECRET_NAME_PREFIX: &str = "bootstrap-token-";
pub const SECRET_TYPE: &str = "bootstrap.kubernetes.io/token";
pub const TOKEN_ID_KEY: &str = "token-id";
pub const TOKEN_SECRET_KEY: &str = "token-secret";
pub const EXPIRATION_KEY: &str = "expiration";
pub const DESCRIPTION_KEY: &str = "description";
pub const EXTRA_GROUPS_KEY: &str = "auth-extra-groups";
pub const USAGE_AUTHENTICATION_KEY: &str = "usage-bootstrap-authentication";
pub const USAGE_SIGNING_KEY: &str = "usage-bootstrap-signing";
pub const USER_PREFIX: &str = "system:bootstrap:";
/// Every bootstrap token's group.
pub const BOOTSTRAPPERS_GROUP: &str = "system:bootstrappers";

const ID_LEN: usize = 6;
const SECRET_LEN: usize = 16;
const ALPHABET: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";

/// `(id, secret)` of a well-formed token (`\A([a-z0-9]{6})\.([a-z0-9]{16})\z`).
pub fn parse_token(token: &str) -> Option<(&str, &str)> {
    let (id, secret) = token.split_once('.')?;
    let valid =
        |s: &str, len| s.len() == len && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    (valid(id, ID_LEN) && valid(secret, SECRET_LEN)).then_some((id, secret))
}

/// A bootstrap token. `Display` writes the whole token; `Debug` hides the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct BootstrapToken {
    id: String,
    secret: String,
}

impl fmt::Display for BootstrapToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.id, self.secret)
    }
}

impl fmt::Debug for BootstrapToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BootstrapToken").field("id", &self.id).finish_non_exhaustive()
    }
}

/// What a new token's Secret says besides the token.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TokenSecretSpec {
    pub description: String,
    /// `None`: never expires.
    pub expiration: Option<SystemTime>,
    /// `usage-bootstrap-authentication`.
    pub authentication: bool,
    /// `usage-bootstrap-signing` (the cluster-info ConfigMap's JWS signatures).
    pub signing: bool,
    /// `auth-extra-groups`, each `system:bootstrappers:...`.
    pub extra_groups: Vec<String>,
}

impl BootstrapToken {
    /// A new random token, every character drawn uniformly from `[a-z0-9]` by the thread's CSPRNG
    /// (ChaCha seeded from the operating system), as kubeadm's `GenerateBootstrapToken` does.
    pub fn generate() -> BootstrapToken {
        let mut rng = rand::rng();
        let mut draw =
            |len| (0..len).map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())])).collect();
        BootstrapToken { id: draw(ID_LEN), secret: draw(SECRET_LEN) }
    }

    pub fn parse(token: &str) -> Option<BootstrapToken> {
        parse_token(token).map(|(id, secret)| BootstrapToken { id: id.into(), secret: secret.into() })
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn secret(&self) -> &str {
        &self.secret
    }

    /// `bootstrap-token-<id>`, in `kube-system`.
    pub fn secret_name(&self) -> String {
        format!("{SECRET_NAME_PREFIX}{}", self.id)
    }

    /// The Secret that makes this token valid, as `kubeadm token create` writes it.
    pub fn to_secret(&self, spec: &TokenSecretSpec) -> Secret {
        let mut data = std::collections::BTreeMap::new();
        let mut put = |key: &str, value: &str| {
            data.insert(key.to_string(), BASE64.encode(value));
        };
        put(TOKEN_ID_KEY, &self.id);
        put(TOKEN_SECRET_KEY, &self.secret);
        if !spec.description.is_empty() {
            put(DESCRIPTION_KEY, &spec.description);
        }
        if let Some(expiration) = spec.expiration {
            put(EXPIRATION_KEY, &humantime::format_rfc3339_seconds(expiration).to_string());
        }
        if spec.authentication {
            put(USAGE_AUTHENTICATION_KEY, "true");
        }
        if spec.signing {
            put(USAGE_SIGNING_KEY, "true");
        }
        if !spec.extra_groups.is_empty() {
            put(EXTRA_GROUPS_KEY, &spec.extra_groups.join(","));
        }
        Secret {
            api_version: "v1".into(),
            kind: "Secret".into(),
            metadata: Some(ObjectMeta {
                name: self.secret_name(),
                namespace: NAMESPACE.into(),
                ..ObjectMeta::default()
            }),
            data,
            r#type: SECRET_TYPE.into(),
            ..Secret::default()
        }
    }
}

/// The `kube-system` Secrets, as the api-server's watch cache has them.
pub trait BootstrapSecrets {
    /// The Secret `kube-system/<name>`, or `None`.
    fn bootstrap_secret(&self, name: &str) -> Option<Secret>;
}

/// Authenticates bootstrap tokens (`--enable-bootstrap-token-auth`).
#[derive(Clone, Debug, Default)]
pub struct BootstrapAuthenticator {
    api_audiences: Vec<String>,
}

impl BootstrapAuthenticator {
    /// `api_audiences`: the api-server's. Bootstrap tokens carry no audience, so (as Kubernetes' wrapper
    /// for audience-agnostic tokens decides) they are only good for requests that target one of them.
    pub fn new(api_audiences: Vec<String>) -> BootstrapAuthenticator {
        BootstrapAuthenticator { api_audiences }
    }

    pub fn authenticate(
        &self,
        token: &str,
        requested_audiences: &[String],
        now: SystemTime,
        secrets: &dyn BootstrapSecrets,
    ) -> Result<Authenticated, AuthError> {
        let (id, token_secret) = parse_token(token).ok_or(AuthError::NotBootstrapToken)?;
        let fail = |problem| AuthError::Bootstrap { token_id: id.to_string(), problem };
        let audiences: Vec<String> =
            requested_audiences.iter().filter(|a| self.api_audiences.contains(a)).cloned().collect();
        if !self.api_audiences.is_empty() && audiences.is_empty() {
            return Err(fail(BootstrapProblem::Audience(requested_audiences.to_vec())));
        }
        let secret = secrets
            .bootstrap_secret(&format!("{SECRET_NAME_PREFIX}{id}"))
            .ok_or_else(|| fail(BootstrapProblem::SecretNotFound))?;
        if secret.metadata.as_ref().is_some_and(|m| !m.deletion_timestamp.is_empty()) {
            return Err(fail(BootstrapProblem::SecretDeleting));
        }
        if secret.r#type != SECRET_TYPE || secret.data.is_empty() {
            return Err(fail(BootstrapProblem::SecretType));
        }
        if !constant_time_eq(&data(&secret, TOKEN_SECRET_KEY), token_secret.as_bytes()) {
            return Err(fail(BootstrapProblem::WrongSecret));
        }
        if data(&secret, TOKEN_ID_KEY) != id.as_bytes() {
            return Err(fail(BootstrapProblem::WrongTokenId));
        }
        if has_expired(&secret, now) {
            return Err(fail(BootstrapProblem::Expired));
        }
        if data(&secret, USAGE_AUTHENTICATION_KEY) != b"true" {
            return Err(fail(BootstrapProblem::NotForAuthentication));
        }
        let mut groups = groups(&secret).map_err(|e| fail(BootstrapProblem::ExtraGroups(e)))?;
        groups.push(AUTHENTICATED_GROUP.to_string());
        let user = UserInfo { name: format!("{USER_PREFIX}{id}"), groups, ..UserInfo::default() };
        Ok(Authenticated { user, audiences, audit_annotations: Vec::new() })
    }
}

/// A data value, decoded; empty when absent or not base64 (Kubernetes' `GetData`).
fn data(secret: &Secret, key: &str) -> Vec<u8> {
    secret.data.get(key).and_then(|v| BASE64.decode(v).ok()).unwrap_or_default()
}

/// Expired when `expiration` is at or before `now`, or does not parse; never without one.
fn has_expired(secret: &Secret, now: SystemTime) -> bool {
    let expiration = data(secret, EXPIRATION_KEY);
    if expiration.is_empty() {
        return false;
    }
    match std::str::from_utf8(&expiration).ok().map(navarch_api::rfc3339::parse) {
        Some(Ok(expiration)) => expiration <= now,
        _ => true,
    }
}

/// `system:bootstrappers` and the valid `auth-extra-groups`, sorted and without duplicates
/// (cluster-bootstrap's `GetGroups`); one invalid group refuses them all.
fn groups(secret: &Secret) -> Result<Vec<String>, String> {
    let mut groups = BTreeSet::from([BOOTSTRAPPERS_GROUP.to_string()]);
    let extra = data(secret, EXTRA_GROUPS_KEY);
    if extra.is_empty() {
        return Ok(groups.into_iter().collect());
    }
    let extra = String::from_utf8_lossy(&extra);
    for group in extra.split(',') {
        if !is_bootstrap_group(group) {
            return Err(format!(
                "bootstrap group {group:?} is invalid (must match \\Asystem:bootstrappers:[a-z0-9:-]{{0,255}}[a-z0-9]\\z)"
            ));
        }
        groups.insert(group.to_string());
    }
    Ok(groups.into_iter().collect())
}

/// `\Asystem:bootstrappers:[a-z0-9:-]{0,255}[a-z0-9]\z`.
fn is_bootstrap_group(group: &str) -> bool {
    let Some(rest) = group.strip_prefix("system:bootstrappers:") else { return false };
    let Some(last) = rest.bytes().last() else { return false };
    rest.len() <= 256
        && (last.is_ascii_lowercase() || last.is_ascii_digit())
        && rest.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b':' || b == b'-')
}

/// Equal bytes, in time that depends only on the lengths.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let difference = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(difference) == 0
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;

    const TOKEN: &str = "abcdef.0123456789abcdef";

    struct Secrets(HashMap<String, Secret>);

    impl BootstrapSecrets for Secrets {
        fn bootstrap_secret(&self, name: &str) -> Option<Secret> {
            self.0.get(name).cloned()
        }
    }

    fn now() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_700_000_000) // 2023-11-14T22:13:20Z
    }

    fn spec() -> TokenSecretSpec {
        TokenSecretSpec {
            description: "join".into(),
            expiration: Some(now() + Duration::from_secs(86400)),
            authentication: true,
            signing: true,
            extra_groups: vec!["system:bootstrappers:kubeadm:default-node-token".into()],
        }
    }

    fn secrets_with(secret: Secret) -> Secrets {
        let name = secret.metadata.as_ref().map(|m| m.name.clone()).unwrap_or_default();
        Secrets(HashMap::from([(name, secret)]))
    }

    fn token_secret(spec: &TokenSecretSpec) -> Secret {
        BootstrapToken::parse(TOKEN).expect("valid").to_secret(spec)
    }

    fn authenticator() -> BootstrapAuthenticator {
        BootstrapAuthenticator::new(vec!["api".into()])
    }

    fn check(secrets: &Secrets) -> Result<Authenticated, AuthError> {
        authenticator().authenticate(TOKEN, &["api".into()], now(), secrets)
    }

    fn problem(result: Result<Authenticated, AuthError>) -> BootstrapProblem {
        match result {
            Err(AuthError::Bootstrap { token_id, problem }) => {
                assert_eq!(token_id, "abcdef");
                problem
            }
            other => panic!("expected a bootstrap problem, got {other:?}"),
        }
    }

    fn with_data(mut secret: Secret, key: &str, value: Option<&str>) -> Secret {
        match value {
            Some(v) => secret.data.insert(key.into(), BASE64.encode(v)),
            None => secret.data.remove(key),
        };
        secret
    }

    #[test]
    fn token_format() {
        assert_eq!(parse_token(TOKEN), Some(("abcdef", "0123456789abcdef")));
        for bad in [
            "",
            ".",
            "abcdef",
            "abcdef.",
            "abcde.0123456789abcdef",
            "abcdefg.0123456789abcdef",
            "abcdef.0123456789abcde",
            "abcdef.0123456789abcdefg",
            "ABCDEF.0123456789abcdef",
            "abcdef.0123456789ABCDEF",
            "abcdef:0123456789abcdef",
            "abcdef.0123456789abcdef\n",
            " abcdef.0123456789abcdef",
            "abcdef.0123456789abcde.",
            "abcdef.0123456789.abcdef",
            "abcdéf.0123456789abcdef",
            "abc-ef.0123456789abcdef",
        ] {
            assert_eq!(parse_token(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn generated_tokens() {
        let mut seen = std::collections::HashSet::new();
        for _ in 0..200 {
            let token = BootstrapToken::generate();
            let text = token.to_string();
            assert_eq!(parse_token(&text), Some((token.id(), token.secret())), "{text}");
            assert!(seen.insert(text));
        }
        let debug = format!("{:?}", BootstrapToken::parse(TOKEN).expect("valid"));
        assert!(debug.contains("abcdef") && !debug.contains("0123456789abcdef"), "{debug}");
    }

    #[test]
    fn generated_secret() {
        let secret = token_secret(&spec());
        let meta = secret.metadata.as_ref().expect("metadata");
        assert_eq!((meta.name.as_str(), meta.namespace.as_str()), ("bootstrap-token-abcdef", "kube-system"));
        assert_eq!(secret.r#type, SECRET_TYPE);
        let decoded: Vec<(&str, String)> = secret
            .data
            .iter()
            .map(|(k, v)| (k.as_str(), String::from_utf8(BASE64.decode(v).expect("b64")).expect("utf-8")))
            .collect();
        assert_eq!(
            decoded,
            vec![
                (EXTRA_GROUPS_KEY, "system:bootstrappers:kubeadm:default-node-token".to_string()),
                (DESCRIPTION_KEY, "join".into()),
                (EXPIRATION_KEY, "2023-11-15T22:13:20Z".into()),
                (TOKEN_ID_KEY, "abcdef".into()),
                (TOKEN_SECRET_KEY, "0123456789abcdef".into()),
                (USAGE_AUTHENTICATION_KEY, "true".into()),
                (USAGE_SIGNING_KEY, "true".into()),
            ]
        );
    }

    #[test]
    fn authenticates() {
        let auth = check(&secrets_with(token_secret(&spec()))).expect("authenticates");
        assert_eq!(auth.user.name, "system:bootstrap:abcdef");
        assert_eq!(auth.user.uid, "");
        assert_eq!(
            auth.user.groups,
            vec![
                "system:bootstrappers",
                "system:bootstrappers:kubeadm:default-node-token",
                "system:authenticated"
            ]
        );
        assert_eq!(auth.audiences, vec!["api"]);
        // Without expiration or extra groups.
        let plain = TokenSecretSpec { authentication: true, ..TokenSecretSpec::default() };
        let auth = check(&secrets_with(token_secret(&plain))).expect("authenticates");
        assert_eq!(auth.user.groups, vec!["system:bootstrappers", "system:authenticated"]);
        // Duplicated and unsorted extra groups come out sorted, once.
        let groups = "system:bootstrappers:z,system:bootstrappers:a,system:bootstrappers:z";
        let secret = with_data(token_secret(&spec()), EXTRA_GROUPS_KEY, Some(groups));
        let auth = check(&secrets_with(secret)).expect("authenticates");
        assert_eq!(
            auth.user.groups,
            vec![
                "system:bootstrappers",
                "system:bootstrappers:a",
                "system:bootstrappers:z",
                "system:authenticated"
            ]
        );
    }

    #[test]
    fn refusals() {
        let good = token_secret(&spec());
        assert_eq!(problem(check(&Secrets(HashMap::new()))), BootstrapProblem::SecretNotFound);
        let wrong_secret = authenticator().authenticate(
            "abcdef.0123456789abcdee",
            &["api".into()],
            now(),
            &secrets_with(good.clone()),
        );
        assert_eq!(problem(wrong_secret), BootstrapProblem::WrongSecret);
        let cases: Vec<(Secret, BootstrapProblem)> = vec![
            (with_data(good.clone(), TOKEN_SECRET_KEY, None), BootstrapProblem::WrongSecret),
            (
                with_data(good.clone(), TOKEN_SECRET_KEY, Some("0123456789abcdef0")),
                BootstrapProblem::WrongSecret,
            ),
            (with_data(good.clone(), TOKEN_ID_KEY, Some("abcdeg")), BootstrapProblem::WrongTokenId),
            (with_data(good.clone(), TOKEN_ID_KEY, None), BootstrapProblem::WrongTokenId),
            (
                with_data(good.clone(), EXPIRATION_KEY, Some("2023-11-14T22:13:20Z")),
                BootstrapProblem::Expired,
            ),
            (
                with_data(good.clone(), EXPIRATION_KEY, Some("2023-11-14T23:13:19+01:00")),
                BootstrapProblem::Expired,
            ),
            (with_data(good.clone(), EXPIRATION_KEY, Some("tomorrow")), BootstrapProblem::Expired),
            (with_data(good.clone(), USAGE_AUTHENTICATION_KEY, None), BootstrapProblem::NotForAuthentication),
            (
                with_data(good.clone(), USAGE_AUTHENTICATION_KEY, Some("TRUE")),
                BootstrapProblem::NotForAuthentication,
            ),
            (
                with_data(good.clone(), USAGE_AUTHENTICATION_KEY, Some("1")),
                BootstrapProblem::NotForAuthentication,
            ),
        ];
        for (secret, expected) in cases {
            assert_eq!(problem(check(&secrets_with(secret.clone()))), expected, "{:?}", secret.data);
        }
        // One second before its expiration the token still works.
        let last_second = with_data(good.clone(), EXPIRATION_KEY, Some("2023-11-14T22:13:21Z"));
        assert!(check(&secrets_with(last_second)).is_ok());

        let mut wrong_type = good.clone();
        wrong_type.r#type = "Opaque".into();
        assert_eq!(problem(check(&secrets_with(wrong_type))), BootstrapProblem::SecretType);
        let mut empty = good.clone();
        empty.data.clear();
        assert_eq!(problem(check(&secrets_with(empty))), BootstrapProblem::SecretType);
        let mut deleting = good.clone();
        deleting.metadata.as_mut().expect("meta").deletion_timestamp = "2023-11-14T22:00:00Z".into();
        assert_eq!(problem(check(&secrets_with(deleting))), BootstrapProblem::SecretDeleting);
        let mut not_base64 = good.clone();
        not_base64.data.insert(TOKEN_SECRET_KEY.into(), "0123456789abcdef".into());
        assert_eq!(problem(check(&secrets_with(not_base64))), BootstrapProblem::WrongSecret);

        for groups in
            ["system:masters", "system:bootstrappers:", "system:bootstrappers:a,", "system:bootstrappers:A"]
        {
            let secret = with_data(good.clone(), EXTRA_GROUPS_KEY, Some(groups));
            assert!(
                matches!(problem(check(&secrets_with(secret))), BootstrapProblem::ExtraGroups(_)),
                "{groups}"
            );
        }
        // Another audience than the api-server's.
        let review =
            authenticator().authenticate(TOKEN, &["vault".into()], now(), &secrets_with(good.clone()));
        assert_eq!(problem(review), BootstrapProblem::Audience(vec!["vault".into()]));
        // Not a bootstrap token at all.
        let jwt = authenticator().authenticate("a.b.c", &["api".into()], now(), &secrets_with(good));
        assert_eq!(jwt.expect_err("not ours"), AuthError::NotBootstrapToken);
    }

    #[test]
    fn group_names() {
        assert!(is_bootstrap_group("system:bootstrappers:a"));
        assert!(is_bootstrap_group("system:bootstrappers:kubeadm:default-node-token"));
        assert!(is_bootstrap_group(&format!("system:bootstrappers:{}", "a".repeat(256))));
        assert!(!is_bootstrap_group(&format!("system:bootstrappers:{}", "a".repeat(257))));
        assert!(!is_bootstrap_group("system:bootstrappers:a-"));
        assert!(!is_bootstrap_group("system:bootstrappers:a:"));
        assert!(!is_bootstrap_group("system:bootstrappers"));
        assert!(!is_bootstrap_group("system:bootstrappers:a b"));
    }

    #[test]
    fn constant_time_comparison() {
        assert!(constant_time_eq(b"", b""));
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
        assert!(!constant_time_eq(b"", b"a"));
    }
}
