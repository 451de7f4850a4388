//! A deterministic fuzz run of every token parser: two hundred thousand random and mutated inputs
//! through [`parse_untrusted`](super::parse_untrusted), and a thousand through the whole authenticator
//! with real keys, none of which may panic or authenticate unless unchanged. The seed is fixed, so a
//! failure reproduces. A longer run (`make fuzz`): `AUTHN_FUZZ_ITERATIONS=<n>` and optionally
//! `AUTHN_FUZZ_SEED=<u64>`, e.g. `AUTHN_FUZZ_ITERATIONS=20000000 cargo test --release -p api-server
//! --lib authn::fuzz`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::keys::test_keys;
use super::service_account::{
    BoundObject, BoundObjects, LiveObject, LivePod, ObjectRef, ServiceAccountRef, TokenAuthenticator,
    TokenConfig, TokenIssuer, TokenRequest,
};
use super::{VerifyingKeys, parse_untrusted};

const SEED: u64 = 0x6e61_7661_7263_6819;
const PARSE_ITERATIONS: usize = 200_000;
const AUTHENTICATE_ITERATIONS: usize = 1_000;
const ISSUER: &str = "https://kubernetes.default.svc.cluster.local";

/// Bytes that matter to the parsers: separators, padding, JSON syntax, base64url's alphabet edges.
const INTERESTING: &[u8] = b".=-_+/{}[]\":,\\ \0\xff\x80AZaz09eyJ";

struct Everything;

impl BoundObjects for Everything {
    fn service_account(&self, _: &str, _: &str) -> Option<LiveObject> {
        Some(LiveObject { uid: "sa-uid".into(), deletion_timestamp: String::new() })
    }
    fn pod(&self, _: &str, _: &str) -> Option<LivePod> {
        Some(LivePod {
            object: LiveObject { uid: "pod-uid".into(), deletion_timestamp: String::new() },
            service_account_name: "builder".into(),
            node_name: "node-1".into(),
        })
    }
    fn secret(&self, _: &str, _: &str) -> Option<LiveObject> {
        None
    }
    fn node(&self, _: &str) -> Option<LiveObject> {
        Some(LiveObject { uid: "node-uid".into(), deletion_timestamp: String::new() })
    }
}

fn mutate(rng: &mut StdRng, input: &[u8]) -> Vec<u8> {
    let mut out = input.to_vec();
    for _ in 0..rng.random_range(1..=4) {
        let at = if out.is_empty() { 0 } else { rng.random_range(0..out.len()) };
        match rng.random_range(0..8) {
            0 if !out.is_empty() => out[at] ^= 1 << rng.random_range(0..8),
            1 if !out.is_empty() => out[at] = INTERESTING[rng.random_range(0..INTERESTING.len())],
            2 => out.insert(at, INTERESTING[rng.random_range(0..INTERESTING.len())]),
            3 if !out.is_empty() => {
                out.remove(at);
            }
            4 => out.truncate(at),
            5 if !out.is_empty() => {
                // Repeat a slice: long inputs and duplicated members.
                let end = rng.random_range(at..=out.len().min(at + 64));
                let slice = out[at..end].to_vec();
                for _ in 0..rng.random_range(1..=64) {
                    out.splice(at..at, slice.iter().copied());
                }
            }
            6 => out.insert(at, rng.random()),
            _ => {
                let len = rng.random_range(0..32);
                let random: Vec<u8> = (0..len).map(|_| rng.random()).collect();
                out.splice(at..at, random);
            }
        }
    }
    out
}

/// A JWS whose header and payload are mutated JSON, re-encoded as valid base64url so the JSON
/// parsers behind the base64 decoding see the mutations.
fn mutate_json_parts(rng: &mut StdRng, header: &[u8], payload: &[u8], signature: &str) -> Vec<u8> {
    let header = if rng.random_bool(0.3) { mutate(rng, header) } else { header.to_vec() };
    let payload = mutate(rng, payload);
    format!("{}.{}.{signature}", URL_SAFE_NO_PAD.encode(header), URL_SAFE_NO_PAD.encode(payload)).into_bytes()
}

fn now() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_700_000_000)
}

#[test]
fn random_and_mutated_tokens_never_panic() {
    let key = test_keys::signing_key();
    let keys = VerifyingKeys::new([key.verifying_key().clone()]);
    let config = TokenConfig::new(vec![ISSUER.into()]);
    let authenticator = TokenAuthenticator::new(&config, keys);
    let issuer = TokenIssuer::new(key, &config).expect("config");
    let request = TokenRequest {
        service_account: ServiceAccountRef {
            namespace: "default".into(),
            name: "builder".into(),
            uid: "sa-uid".into(),
        },
        bound_object: Some(BoundObject::Pod {
            pod: ObjectRef { name: "web-0".into(), uid: "pod-uid".into() },
            node: Some(ObjectRef { name: "node-1".into(), uid: "node-uid".into() }),
        }),
        ..TokenRequest::default()
    };
    let token = issuer.issue(&request, now()).expect("issues").token;
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(signature)) = (parts.next(), parts.next(), parts.next()) else {
        panic!("a compact JWS")
    };
    let header = URL_SAFE_NO_PAD.decode(header).expect("b64");
    let payload = URL_SAFE_NO_PAD.decode(payload).expect("b64");

    let valid = parse_untrusted(token.as_bytes());
    assert!(valid.jws && valid.claims && !valid.bootstrap);
    assert!(parse_untrusted(format!("Bearer {token}").as_bytes()).claims);
    let audiences = [ISSUER.to_string()];
    assert!(authenticator.authenticate(&token, &audiences, now(), &Everything).is_ok());

    let seeds: Vec<Vec<u8>> = vec![
        token.clone().into_bytes(),
        format!("Bearer {token}").into_bytes(),
        b"abcdef.0123456789abcdef".to_vec(),
        b"Bearer abcdef.0123456789abcdef".to_vec(),
        payload.clone(),
        header.clone(),
        Vec::new(),
    ];
    let from_env = |name: &str| std::env::var(name).ok().and_then(|v| v.parse::<u64>().ok());
    let iterations = from_env("AUTHN_FUZZ_ITERATIONS").map_or(PARSE_ITERATIONS, |n| n as usize);
    let mut rng = StdRng::seed_from_u64(from_env("AUTHN_FUZZ_SEED").unwrap_or(SEED));
    let mut reached_claims = 0usize;
    for i in 0..iterations {
        let input = match i % 4 {
            0 => (0..rng.random_range(0..256)).map(|_| rng.random()).collect(),
            1 => mutate_json_parts(&mut rng, &header, &payload, signature),
            _ => {
                let seed = &seeds[rng.random_range(0..seeds.len())];
                mutate(&mut rng, seed)
            }
        };
        if parse_untrusted(&input).claims {
            reached_claims += 1;
        }
    }
    assert!(reached_claims > iterations / 200, "the mutations reach the claims parser ({reached_claims})");

    for i in 0..AUTHENTICATE_ITERATIONS {
        let input = if i % 2 == 0 {
            mutate(&mut rng, token.as_bytes())
        } else {
            mutate_json_parts(&mut rng, &header, &payload, signature)
        };
        let Ok(text) = std::str::from_utf8(&input) else { continue };
        let result = authenticator.authenticate(text, &audiences, now(), &Everything);
        assert_eq!(result.is_ok(), text == token, "{text}");
    }
}

#[test]
fn huge_inputs_are_refused_quickly() {
    let huge = vec![b'a'; 64 << 20];
    assert_eq!(parse_untrusted(&huge), super::UntrustedParse::default());
    let dots = b".".repeat(1 << 20);
    assert_eq!(parse_untrusted(&dots), super::UntrustedParse::default());
    let nested = format!("{}{}", "[".repeat(5_000), "]".repeat(5_000));
    assert!(!parse_untrusted(nested.as_bytes()).claims, "serde_json's recursion limit holds");
}
