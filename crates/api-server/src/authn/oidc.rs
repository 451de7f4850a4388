//! ServiceAccount issuer discovery (pkg/serviceaccount/openidmetadata.go): the OpenID provider
//! configuration at `/.well-known/openid-configuration` and the JSON Web Key Set at `/openid/v1/jwks`,
//! rendered once, byte for byte as Kubernetes renders them, so that others (cloud IAM, Vault) can
//! verify ServiceAccount tokens.
//!
//! ```json
//! {"issuer":"https://kubernetes.default.svc.cluster.local","jwks_uri":"https://10.0.0.1:6443/openid/v1/jwks",
//!  "response_types_supported":["id_token"],"subject_types_supported":["public"],
//!  "id_token_signing_alg_values_supported":["ES256"]}
//! {"keys":[{"use":"sig","kty":"EC","kid":"...","crv":"P-256","alg":"ES256","x":"...","y":"..."}]}
//! ```
//!
//! Both are served with `Cache-Control: public, max-age=3600`; the key set as
//! `application/jwk-set+json`.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;

use super::jwt::ALGORITHM;
use super::keys::VerifyingKeys;

pub const OPENID_CONFIGURATION_PATH: &str = "/.well-known/openid-configuration";
pub const JWKS_PATH: &str = "/openid/v1/jwks";
pub const CONFIGURATION_CONTENT_TYPE: &str = "application/json";
pub const JWKS_CONTENT_TYPE: &str = "application/jwk-set+json";
/// How long clients may cache either document (the static key getter's 3600 s).
pub const CACHE_CONTROL: &str = "public, max-age=3600";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OidcError {
    #[error("empty issuer URL")]
    EmptyIssuer,
    #[error("issuer URL must use https scheme, got: {0}")]
    IssuerScheme(String),
    #[error("issuer URL may not include a query, got: {0}")]
    IssuerQuery(String),
    #[error("issuer URL may not include a fragment, got: {0}")]
    IssuerFragment(String),
    #[error("issuer URL is not a valid URL: {0}")]
    IssuerSyntax(String),
    #[error("jwksURI requires https scheme, parsed as: {0}")]
    JwksScheme(String),
    #[error("either the JWKS URI or the default external address, or both, must be set")]
    NoJwksUri,
    #[error("attempted to build jwks_uri from external address {0}, but could not construct a valid URL")]
    ExternalAddress(String),
    #[error("no keys provided for validating keyset")]
    NoKeys,
}

/// The two discovery documents.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpenIdMetadata {
    configuration: Vec<u8>,
    jwks: Vec<u8>,
}

#[derive(Serialize)]
struct ProviderMetadata<'a> {
    issuer: &'a str,
    jwks_uri: &'a str,
    response_types_supported: [&'a str; 1],
    subject_types_supported: [&'a str; 1],
    id_token_signing_alg_values_supported: [&'a str; 1],
}

/// A public JWK, members in go-jose's order.
#[derive(Serialize)]
struct Jwk {
    #[serde(rename = "use")]
    use_: &'static str,
    kty: &'static str,
    kid: String,
    crv: &'static str,
    alg: &'static str,
    x: String,
    y: String,
}

#[derive(Serialize)]
struct JwkSet {
    keys: Vec<Jwk>,
}

impl OpenIdMetadata {
    /// `issuer`: the first `--service-account-issuer`; `jwks_uri`: `--service-account-jwks-uri`, or
    /// empty for `https://<external_address>/openid/v1/jwks` (`external_address`: the api-server's
    /// advertised `host:port`). Kubernetes logs an error and serves neither document when this fails.
    pub fn new(
        issuer: &str,
        jwks_uri: &str,
        external_address: &str,
        keys: &VerifyingKeys,
    ) -> Result<OpenIdMetadata, OidcError> {
        check_issuer(issuer)?;
        let jwks_uri = if jwks_uri.is_empty() {
            if external_address.is_empty() {
                return Err(OidcError::NoJwksUri);
            }
            if !is_host_port(external_address) {
                return Err(OidcError::ExternalAddress(external_address.to_string()));
            }
            format!("https://{external_address}{JWKS_PATH}")
        } else {
            if !jwks_uri.starts_with("https://") || !is_url_text(jwks_uri) {
                return Err(OidcError::JwksScheme(jwks_uri.to_string()));
            }
            jwks_uri.to_string()
        };
        if keys.is_empty() {
            return Err(OidcError::NoKeys);
        }
        let configuration = go_json(&ProviderMetadata {
            issuer,
            jwks_uri: &jwks_uri,
            response_types_supported: ["id_token"],
            subject_types_supported: ["public"],
            id_token_signing_alg_values_supported: [ALGORITHM],
        });
        Ok(OpenIdMetadata { configuration, jwks: jwks_json(keys) })
    }

    /// The body of `GET /.well-known/openid-configuration`.
    pub fn configuration_json(&self) -> &[u8] {
        &self.configuration
    }

    /// The body of `GET /openid/v1/jwks`.
    pub fn jwks_json(&self) -> &[u8] {
        &self.jwks
    }
}

/// The JSON Web Key Set of the verification keys, in their order.
pub fn jwks_json(keys: &VerifyingKeys) -> Vec<u8> {
    let keys = keys
        .keys()
        .iter()
        .map(|k| Jwk {
            use_: "sig",
            kty: "EC",
            kid: k.key_id().to_string(),
            crv: "P-256",
            alg: ALGORITHM,
            x: URL_SAFE_NO_PAD.encode(k.x()),
            y: URL_SAFE_NO_PAD.encode(k.y()),
        })
        .collect();
    go_json(&JwkSet { keys })
}

/// OIDC's rules for an issuer: an https URL without query or fragment.
fn check_issuer(issuer: &str) -> Result<(), OidcError> {
    if issuer.is_empty() {
        return Err(OidcError::EmptyIssuer);
    }
    if !is_url_text(issuer) {
        return Err(OidcError::IssuerSyntax(issuer.to_string()));
    }
    if !issuer.starts_with("https://") {
        return Err(OidcError::IssuerScheme(issuer.to_string()));
    }
    if issuer.contains('#') {
        return Err(OidcError::IssuerFragment(issuer.to_string()));
    }
    if issuer.contains('?') {
        return Err(OidcError::IssuerQuery(issuer.to_string()));
    }
    Ok(())
}

/// No white space or control characters, which no URL has.
fn is_url_text(s: &str) -> bool {
    !s.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// `host:port` or `[v6]:port` (or a bare host): nothing that would end the authority of a URL.
fn is_host_port(s: &str) -> bool {
    is_url_text(s) && !s.contains(['/', '?', '#', '@', '\\'])
}

/// JSON as Go's `encoding/json` writes it: `<`, `>`, `&`, U+2028 and U+2029 escaped. Those characters
/// can only occur inside strings, so replacing them in the output is exact.
fn go_json(value: &impl Serialize) -> Vec<u8> {
    let text = serde_json::to_string(value).unwrap_or_default();
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::authn::keys::{SigningKey, VerifyingKey, test_keys};

    const ISSUER: &str = "https://kubernetes.default.svc.cluster.local";

    fn keys(n: usize) -> (Vec<SigningKey>, VerifyingKeys) {
        let signing: Vec<SigningKey> = (0..n).map(|_| test_keys::signing_key()).collect();
        let verifying = VerifyingKeys::new(signing.iter().map(|k| k.verifying_key().clone()));
        (signing, verifying)
    }

    #[test]
    fn configuration_document() {
        let (_, keys) = keys(1);
        let metadata = OpenIdMetadata::new(ISSUER, "", "10.0.0.1:6443", &keys).expect("valid");
        assert_eq!(
            std::str::from_utf8(metadata.configuration_json()).expect("utf-8"),
            concat!(
                r#"{"issuer":"https://kubernetes.default.svc.cluster.local","#,
                r#""jwks_uri":"https://10.0.0.1:6443/openid/v1/jwks","#,
                r#""response_types_supported":["id_token"],"subject_types_supported":["public"],"#,
                r#""id_token_signing_alg_values_supported":["ES256"]}"#
            )
        );
        let explicit = OpenIdMetadata::new(ISSUER, "https://issuer.example/keys", "", &keys).expect("valid");
        let doc: serde_json::Value = serde_json::from_slice(explicit.configuration_json()).expect("json");
        assert_eq!(doc["jwks_uri"], "https://issuer.example/keys");
        let v6 = OpenIdMetadata::new(ISSUER, "", "[fd00::1]:6443", &keys).expect("valid");
        let doc: serde_json::Value = serde_json::from_slice(v6.configuration_json()).expect("json");
        assert_eq!(doc["jwks_uri"], "https://[fd00::1]:6443/openid/v1/jwks");
    }

    #[test]
    fn key_set() {
        let (signing, keys) = keys(2);
        let jwks: serde_json::Value = serde_json::from_slice(&jwks_json(&keys)).expect("json");
        let listed = jwks["keys"].as_array().expect("keys");
        assert_eq!(listed.len(), 2);
        for (jwk, key) in listed.iter().zip(&signing) {
            assert_eq!(jwk["kid"], key.key_id());
            // The JWK is the key: rebuild the point from x and y.
            let x = URL_SAFE_NO_PAD.decode(jwk["x"].as_str().expect("x")).expect("b64");
            let y = URL_SAFE_NO_PAD.decode(jwk["y"].as_str().expect("y")).expect("b64");
            assert_eq!((x.len(), y.len()), (32, 32));
            let point = [&[4u8][..], &x, &y].concat();
            assert_eq!(&VerifyingKey::from_point(&point).expect("point"), key.verifying_key());
        }
        // Member order as go-jose writes them.
        let text = String::from_utf8(jwks_json(&keys)).expect("utf-8");
        let first = &text[..text.find('}').expect("object")];
        let order: Vec<usize> = [
            "\"use\":\"sig\"",
            "\"kty\":\"EC\"",
            "\"kid\":",
            "\"crv\":\"P-256\"",
            "\"alg\":\"ES256\"",
            "\"x\":",
            "\"y\":",
        ]
        .iter()
        .map(|m| first.find(m).expect("member"))
        .collect();
        assert!(order.windows(2).all(|w| w[0] < w[1]), "{first}");
        assert!(text.starts_with(r#"{"keys":[{"use":"sig","kty":"EC","kid":""#));
    }

    #[test]
    fn refused_configurations() {
        let (_, keys) = keys(1);
        let new = |issuer, jwks, address| OpenIdMetadata::new(issuer, jwks, address, &keys);
        assert_eq!(new("", "", "a:1"), Err(OidcError::EmptyIssuer));
        assert!(matches!(new("http://insecure", "", "a:1"), Err(OidcError::IssuerScheme(_))));
        assert!(matches!(new("kubernetes/serviceaccount", "", "a:1"), Err(OidcError::IssuerScheme(_))));
        assert!(matches!(new("https://a?b=c", "", "a:1"), Err(OidcError::IssuerQuery(_))));
        assert!(matches!(new("https://a#frag", "", "a:1"), Err(OidcError::IssuerFragment(_))));
        assert!(matches!(new("https://a b", "", "a:1"), Err(OidcError::IssuerSyntax(_))));
        assert_eq!(new(ISSUER, "", ""), Err(OidcError::NoJwksUri));
        assert!(matches!(new(ISSUER, "", "evil.example/path"), Err(OidcError::ExternalAddress(_))));
        assert!(matches!(new(ISSUER, "", "user@host:1"), Err(OidcError::ExternalAddress(_))));
        assert!(matches!(new(ISSUER, "http://plain/jwks", ""), Err(OidcError::JwksScheme(_))));
        assert_eq!(OpenIdMetadata::new(ISSUER, "", "a:1", &VerifyingKeys::default()), Err(OidcError::NoKeys));
    }

    #[test]
    fn go_escaping() {
        assert_eq!(go_json(&"a<b>&\u{2028}\u{2029}é"), r#""a\u003cb\u003e\u0026\u2028\u2029é""#.as_bytes());
        let (_, keys) = keys(1);
        let metadata = OpenIdMetadata::new("https://a/x&y", "", "a:1", &keys).expect("valid");
        assert!(
            std::str::from_utf8(metadata.configuration_json())
                .expect("utf-8")
                .contains(r#""https://a/x\u0026y""#)
        );
    }
}
