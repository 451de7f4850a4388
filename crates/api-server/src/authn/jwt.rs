//! Compact JWS with ES256 only: signing, and strict decoding and verification of untrusted tokens.
//!
//! A token is `base64url(header) . base64url(payload) . base64url(signature)`, unpadded. The header
//! must name exactly `"alg":"ES256"`; it may carry `kid` (Kubernetes' key id, which picks the
//! verification key) and `typ` (`JWT`), and nothing else: `none`, the HMAC algorithms (so no HS256
//! keyed with a public key), RSA, `crit`, `jku`, `x5u`, `jwk`, `x5c`, `cty` and every other parameter
//! are refused, as are duplicate members. The signature is the 64-byte `r || s` of RFC 7518. Input is
//! bounded ([`MAX_TOKEN_BYTES`]) and every path returns an error instead of panicking.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;

use super::keys::{KeyError, SigningKey, VerifyingKeys};

/// The largest token accepted. A ServiceAccount token with long names and several audiences is
/// about 1.5 KiB.
pub const MAX_TOKEN_BYTES: usize = 16 * 1024;
/// The only algorithm signed and accepted.
pub const ALGORITHM: &str = "ES256";
/// `r || s`, 32 bytes each.
const SIGNATURE_BYTES: usize = 64;

/// Why a token is not a well-formed ES256 compact JWS, or does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwtError {
    #[error("token is larger than {MAX_TOKEN_BYTES} bytes")]
    TooLarge,
    #[error("not a compact JWS: three non-empty base64url parts separated by '.' are expected")]
    NotCompact,
    #[error("the {0} is not unpadded base64url")]
    Base64(&'static str),
    #[error("header: {0}")]
    Header(String),
    #[error("algorithm {0:?} is not accepted, only ES256")]
    Algorithm(String),
    #[error("the signature is not {SIGNATURE_BYTES} bytes")]
    SignatureLength,
    #[error("no verification key has the token's key id")]
    UnknownKey,
    #[error("invalid signature")]
    BadSignature,
}

/// The protected header. Unknown members (`crit`, `jku`, `x5u`, ...) and duplicates are errors.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Header {
    alg: String,
    #[serde(default)]
    kid: Option<String>,
    #[serde(default)]
    typ: Option<String>,
}

/// A decoded token whose signature has not been checked yet: nothing in it may be trusted.
#[derive(Debug)]
pub struct UnverifiedToken<'a> {
    /// `header . payload`, what the signature covers.
    signing_input: &'a [u8],
    kid: Option<String>,
    payload: Vec<u8>,
    signature: Vec<u8>,
}

impl<'a> UnverifiedToken<'a> {
    /// Splits and decodes a compact JWS and checks its header; the signature is not verified.
    pub fn decode(token: &'a [u8]) -> Result<UnverifiedToken<'a>, JwtError> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(JwtError::TooLarge);
        }
        let mut parts = token.split(|b| *b == b'.');
        let (Some(header), Some(payload), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(JwtError::NotCompact);
        };
        if header.is_empty() || payload.is_empty() || signature.is_empty() {
            return Err(JwtError::NotCompact);
        }
        let signing_input = &token[..header.len() + 1 + payload.len()];
        let header_json = decode_part(header, "header")?;
        if !is_json_object(&header_json) {
            return Err(JwtError::Header("not a JSON object".into()));
        }
        let fields: Header =
            serde_json::from_slice(&header_json).map_err(|e| JwtError::Header(truncated(&e.to_string())))?;
        if fields.alg != ALGORITHM {
            return Err(JwtError::Algorithm(truncated(&fields.alg)));
        }
        if fields.typ.as_deref().is_some_and(|t| !t.eq_ignore_ascii_case("JWT")) {
            return Err(JwtError::Header("typ must be JWT".into()));
        }
        // 64 bytes are 86 base64url characters; refuse anything else before decoding it.
        if signature.len() != SIGNATURE_BYTES.div_ceil(3) * 4 - 2 {
            return Err(JwtError::SignatureLength);
        }
        let signature = decode_part(signature, "signature")?;
        let payload = decode_part(payload, "payload")?;
        // An empty kid is no kid, as in Kubernetes.
        let kid = fields.kid.filter(|k| !k.is_empty());
        Ok(UnverifiedToken { signing_input, kid, payload, signature })
    }

    /// The key id the header names, if any.
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    /// The payload, unverified.
    pub fn unverified_payload(&self) -> &[u8] {
        &self.payload
    }

    /// The payload once one of `keys` (the one the `kid` names; all when there is none) verifies the
    /// signature.
    pub fn verify(self, keys: &VerifyingKeys) -> Result<Vec<u8>, JwtError> {
        let mut candidates = keys.candidates(self.kid.as_deref()).peekable();
        if candidates.peek().is_none() {
            return Err(JwtError::UnknownKey);
        }
        if candidates.any(|key| key.verify(self.signing_input, &self.signature)) {
            Ok(self.payload)
        } else {
            Err(JwtError::BadSignature)
        }
    }
}

fn decode_part(part: &[u8], name: &'static str) -> Result<Vec<u8>, JwtError> {
    // The engine refuses padding, characters outside the URL-safe alphabet and non-zero trailing bits.
    URL_SAFE_NO_PAD.decode(part).map_err(|_| JwtError::Base64(name))
}

/// Whether JSON text is an object (serde reads a struct from an array too, `["ES256"]` as
/// `{"alg":"ES256"}`, which a JWS header or claims set must not be).
pub fn is_json_object(json: &[u8]) -> bool {
    json.iter().find(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r')) == Some(&b'{')
}

/// Keeps attacker-chosen text in errors (and so in logs) short.
fn truncated(s: &str) -> String {
    const MAX: usize = 128;
    match s.char_indices().nth(MAX) {
        Some((at, _)) => format!("{}...", &s[..at]),
        None => s.to_string(),
    }
}

/// Signs `payload` (the claims' JSON) with ES256: header `{"alg":"ES256","kid":"<key id>"}`, as
/// Kubernetes' signer writes it.
pub fn sign(key: &SigningKey, payload: &[u8]) -> Result<String, KeyError> {
    let header = serde_json::json!({ "alg": ALGORITHM, "kid": key.key_id() });
    let mut token = URL_SAFE_NO_PAD.encode(header.to_string());
    token.push('.');
    token.push_str(&URL_SAFE_NO_PAD.encode(payload));
    let signature = key.sign(token.as_bytes())?;
    token.push('.');
    token.push_str(&URL_SAFE_NO_PAD.encode(signature));
    Ok(token)
}

#[cfg(test)]
pub(crate) mod forge {
    //! Hand-made tokens for the tests of every layer above.

    use super::*;

    pub fn b64(bytes: impl AsRef<[u8]>) -> String {
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// `header . payload . signature` from raw JSON texts, signed by `key` (or carrying `signature`).
    pub fn token(header: &str, payload: &str, key: Option<&SigningKey>) -> String {
        let input = format!("{}.{}", b64(header), b64(payload));
        let signature = match key {
            Some(key) => key.sign(input.as_bytes()).expect("signs"),
            None => vec![7u8; SIGNATURE_BYTES],
        };
        format!("{input}.{}", b64(signature))
    }

    /// HS256 over the token, keyed with `secret` (the classic attack keys it with the public key).
    pub fn hs256(header: &str, payload: &str, secret: &[u8]) -> String {
        let input = format!("{}.{}", b64(header), b64(payload));
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret);
        let tag = ring::hmac::sign(&key, input.as_bytes());
        format!("{input}.{}", b64(tag.as_ref()))
    }
}

#[cfg(test)]
mod tests {
    use super::forge::*;
    use super::*;
    use crate::authn::keys::test_keys;

    fn keys_of(key: &SigningKey) -> VerifyingKeys {
        VerifyingKeys::new([key.verifying_key().clone()])
    }

    #[test]
    fn round_trip() {
        let key = test_keys::signing_key();
        let token = sign(&key, br#"{"sub":"x"}"#).expect("signs");
        let decoded = UnverifiedToken::decode(token.as_bytes()).expect("decodes");
        assert_eq!(decoded.kid(), Some(key.key_id()));
        assert_eq!(decoded.verify(&keys_of(&key)).expect("verifies"), br#"{"sub":"x"}"#);
        let header = token.split('.').next().expect("header");
        let header = URL_SAFE_NO_PAD.decode(header).expect("base64");
        assert_eq!(header, format!(r#"{{"alg":"ES256","kid":"{}"}}"#, key.key_id()).as_bytes());
    }

    #[test]
    fn rotation_and_missing_kid() {
        let (old, new) = (test_keys::signing_key(), test_keys::signing_key());
        let keys = VerifyingKeys::new([old.verifying_key().clone(), new.verifying_key().clone()]);
        for key in [&old, &new] {
            let token = sign(key, b"{}").expect("signs");
            assert!(UnverifiedToken::decode(token.as_bytes()).expect("decodes").verify(&keys).is_ok());
            // No kid, or an empty one: every key is tried.
            for header in
                [r#"{"alg":"ES256"}"#, r#"{"alg":"ES256","kid":""}"#, r#"{"alg":"ES256","typ":"JWT"}"#]
            {
                let token = forge::token(header, "{}", Some(key));
                assert!(
                    UnverifiedToken::decode(token.as_bytes()).expect("decodes").verify(&keys).is_ok(),
                    "{header}"
                );
            }
        }
    }

    fn rejected(token: &str, keys: &VerifyingKeys) -> JwtError {
        match UnverifiedToken::decode(token.as_bytes()) {
            Err(e) => e,
            Ok(t) => t.verify(keys).expect_err(&format!("must not verify: {token}")),
        }
    }

    #[test]
    fn forged_algorithms() {
        let key = test_keys::signing_key();
        let keys = keys_of(&key);
        let kid = key.key_id();
        let payload = r#"{"sub":"system:serviceaccount:kube-system:admin"}"#;
        // alg none, with and without a signature part.
        let none = format!("{}.{}.", b64(r#"{"alg":"none"}"#), b64(payload));
        assert_eq!(rejected(&none, &keys), JwtError::NotCompact);
        let none_signed = forge::token(r#"{"alg":"none"}"#, payload, None);
        assert_eq!(rejected(&none_signed, &keys), JwtError::Algorithm("none".into()));
        // HS256 keyed with the public key (as PEM and as DER), the algorithm-confusion attack.
        let spki = key.verifying_key().spki_der();
        let pem = test_keys::pem("PUBLIC KEY", &spki);
        for secret in [pem.as_bytes(), &spki[..]] {
            let header = format!(r#"{{"alg":"HS256","kid":"{kid}"}}"#);
            assert_eq!(
                rejected(&hs256(&header, payload, secret), &keys),
                JwtError::Algorithm("HS256".into())
            );
        }
        for alg in ["RS256", "ES384", "ES512", "PS256", "EdDSA", "es256", "ES256 ", ""] {
            let header = format!(r#"{{"alg":"{alg}","kid":"{kid}"}}"#);
            assert_eq!(
                rejected(&forge::token(&header, payload, Some(&key)), &keys),
                JwtError::Algorithm(alg.into())
            );
        }
    }

    #[test]
    fn forbidden_header_members() {
        let key = test_keys::signing_key();
        let keys = keys_of(&key);
        for header in [
            r#"{"alg":"ES256","crit":["exp"]}"#,
            r#"{"alg":"ES256","jku":"https://evil.example/jwks"}"#,
            r#"{"alg":"ES256","x5u":"https://evil.example/cert"}"#,
            r#"{"alg":"ES256","jwk":{"kty":"EC"}}"#,
            r#"{"alg":"ES256","x5c":["AAAA"]}"#,
            r#"{"alg":"ES256","cty":"JWT"}"#,
            r#"{"alg":"ES256","b64":false}"#,
            r#"{"alg":"ES256","alg":"ES256"}"#,
            r#"{"alg":"HS256","alg":"ES256"}"#,
            r#"{"alg":"ES256","typ":"JOSE+JSON"}"#,
            r#"{"alg":"ES256","kid":5}"#,
            r#"{"alg":["ES256"]}"#,
            r#"{"kid":"x"}"#,
            r#"["ES256"]"#,
            r#"{"alg":"ES256"} trailing"#,
            r#" ["ES256"]"#,
        ] {
            let token = forge::token(header, "{}", Some(&key));
            assert!(
                matches!(rejected(&token, &keys), JwtError::Header(_) | JwtError::Algorithm(_)),
                "{header}: {:?}",
                rejected(&token, &keys)
            );
        }
    }

    #[test]
    fn wrong_key_and_signature() {
        let key = test_keys::signing_key();
        let other = test_keys::signing_key();
        let token = sign(&key, b"{}").expect("signs");
        assert_eq!(
            rejected(&token, &keys_of(&other)),
            JwtError::UnknownKey,
            "kid names a key we do not have"
        );
        // A kid naming our key on a token signed by another.
        let header = format!(r#"{{"alg":"ES256","kid":"{}"}}"#, key.key_id());
        assert_eq!(
            rejected(&forge::token(&header, "{}", Some(&other)), &keys_of(&key)),
            JwtError::BadSignature
        );
        // No kid: every key tried, none verifies.
        assert_eq!(
            rejected(&forge::token(r#"{"alg":"ES256"}"#, "{}", Some(&other)), &keys_of(&key)),
            JwtError::BadSignature
        );
        // The payload changed after signing.
        let mut parts: Vec<&str> = token.split('.').collect();
        let changed = b64(br#"{"a":1}"#);
        parts[1] = &changed;
        assert_eq!(rejected(&parts.join("."), &keys_of(&key)), JwtError::BadSignature);
        // Every bit of the signature matters.
        let signature = URL_SAFE_NO_PAD.decode(token.rsplit('.').next().expect("sig")).expect("b64");
        for i in [0, 31, 32, 63] {
            let mut flipped = signature.clone();
            flipped[i] ^= 0x80;
            let forged = format!("{}.{}", &token[..token.rfind('.').expect("dot")], b64(&flipped));
            assert_eq!(rejected(&forged, &keys_of(&key)), JwtError::BadSignature, "byte {i}");
        }
        // An all-zero signature (r = s = 0) and an all-ones one.
        for fill in [0u8, 0xff] {
            let forged = format!("{}.{}", &token[..token.rfind('.').expect("dot")], b64([fill; 64]));
            assert_eq!(rejected(&forged, &keys_of(&key)), JwtError::BadSignature);
        }
        assert_eq!(rejected(&token, &VerifyingKeys::default()), JwtError::UnknownKey);
    }

    #[test]
    fn malformed_shapes() {
        let key = test_keys::signing_key();
        let keys = keys_of(&key);
        let good = sign(&key, b"{}").expect("signs");
        let (h, rest) = good.split_once('.').expect("dot");
        let (p, s) = rest.split_once('.').expect("dot");
        let cases: Vec<(String, JwtError)> = vec![
            (String::new(), JwtError::NotCompact),
            (".".into(), JwtError::NotCompact),
            ("..".into(), JwtError::NotCompact),
            ("...".into(), JwtError::NotCompact),
            (format!("{h}.{p}"), JwtError::NotCompact),
            (format!("{h}.{p}.{s}."), JwtError::NotCompact),
            (format!("{h}.{p}.{s}.{s}"), JwtError::NotCompact),
            (format!("{h}..{s}"), JwtError::NotCompact),
            (format!("{h}=.{p}.{s}"), JwtError::Base64("header")),
            (format!("{h}.{p}=.{s}"), JwtError::Base64("payload")),
            (format!("{h}.{p}+.{s}"), JwtError::Base64("payload")),
            (format!("{h}.{p}.{}", &s[..85]), JwtError::SignatureLength),
            (format!("{h}.{p}.{s}AAAA"), JwtError::SignatureLength),
            (format!("{h}.{p}.{}!", &s[..85]), JwtError::Base64("signature")),
            (format!("{h}.{p}.{}=", &s[..85]), JwtError::Base64("signature")),
            (format!("{}.{p}.{s}", b64([0xff, 0xfe])), JwtError::Header(String::new())),
            (format!("{h}.{p}.{s}").replace('.', "\u{ff0e}"), JwtError::NotCompact),
            ("a".repeat(MAX_TOKEN_BYTES + 1), JwtError::TooLarge),
        ];
        for (token, expected) in cases {
            let got = rejected(&token, &keys);
            match expected {
                JwtError::Header(_) => assert!(matches!(got, JwtError::Header(_)), "{token}: {got:?}"),
                _ => assert_eq!(got, expected, "{token}"),
            }
        }
    }

    #[test]
    fn non_canonical_base64_trailing_bits() {
        // "e30" is "{}"; "e31" has the same 2 bytes with non-zero trailing bits.
        assert_eq!(URL_SAFE_NO_PAD.decode("e30").expect("canonical"), b"{}");
        assert!(decode_part(b"e31", "payload").is_err());
    }

    #[test]
    fn attacker_text_in_errors_is_bounded() {
        let alg = "A".repeat(5000);
        let header = format!(r#"{{"alg":"{alg}"}}"#);
        let JwtError::Algorithm(shown) =
            rejected(&forge::token(&header, "{}", None), &VerifyingKeys::default())
        else {
            panic!("an algorithm error")
        };
        assert!(shown.len() < 200);
    }
}
