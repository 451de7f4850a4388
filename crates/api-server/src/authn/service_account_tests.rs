//! Issuing and authenticating ServiceAccount tokens, and every forgery and invalidation.

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::*;
use crate::authn::claims::{CREDENTIAL_ID_KEY, NODE_NAME_KEY, NODE_UID_KEY, POD_NAME_KEY, POD_UID_KEY};
use crate::authn::jwt::{JwtError, forge};
use crate::authn::keys::test_keys;

const ISSUER: &str = "https://kubernetes.default.svc.cluster.local";

#[derive(Default)]
struct Cluster {
    service_accounts: HashMap<(String, String), LiveObject>,
    pods: HashMap<(String, String), LivePod>,
    secrets: HashMap<(String, String), LiveObject>,
    nodes: HashMap<String, LiveObject>,
}

fn key(namespace: &str, name: &str) -> (String, String) {
    (namespace.to_string(), name.to_string())
}

fn live(uid: &str) -> LiveObject {
    LiveObject { uid: uid.into(), deletion_timestamp: String::new() }
}

impl BoundObjects for Cluster {
    fn service_account(&self, namespace: &str, name: &str) -> Option<LiveObject> {
        self.service_accounts.get(&key(namespace, name)).cloned()
    }
    fn pod(&self, namespace: &str, name: &str) -> Option<LivePod> {
        self.pods.get(&key(namespace, name)).cloned()
    }
    fn secret(&self, namespace: &str, name: &str) -> Option<LiveObject> {
        self.secrets.get(&key(namespace, name)).cloned()
    }
    fn node(&self, name: &str) -> Option<LiveObject> {
        self.nodes.get(name).cloned()
    }
}

/// ServiceAccount default/builder, its pod web-0 on node-1, a Secret and a second node.
fn cluster() -> Cluster {
    let mut c = Cluster::default();
    c.service_accounts.insert(key("default", "builder"), live("sa-uid"));
    c.pods.insert(
        key("default", "web-0"),
        LivePod {
            object: live("pod-uid"),
            service_account_name: "builder".into(),
            node_name: "node-1".into(),
        },
    );
    c.pods.insert(
        key("default", "pending"),
        LivePod {
            object: live("pending-uid"),
            service_account_name: "builder".into(),
            node_name: String::new(),
        },
    );
    c.pods.insert(
        key("default", "other"),
        LivePod {
            object: live("other-uid"),
            service_account_name: "default".into(),
            node_name: "node-1".into(),
        },
    );
    c.secrets.insert(key("default", "creds"), live("secret-uid"));
    c.nodes.insert("node-1".into(), live("node-uid"));
    c.nodes.insert("node-2".into(), live("node-2-uid"));
    c
}

struct Setup {
    issuer: TokenIssuer,
    authenticator: TokenAuthenticator,
    config: TokenConfig,
}

fn setup_with(config: TokenConfig) -> Setup {
    let key = test_keys::signing_key();
    let keys = VerifyingKeys::new([key.verifying_key().clone()]);
    Setup {
        issuer: TokenIssuer::new(key, &config).expect("valid config"),
        authenticator: TokenAuthenticator::new(&config, keys),
        config,
    }
}

fn setup() -> Setup {
    setup_with(TokenConfig::new(vec![ISSUER.into()]))
}

fn now() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_700_000_000) + Duration::from_millis(250)
}

fn builder() -> ServiceAccountRef {
    ServiceAccountRef { namespace: "default".into(), name: "builder".into(), uid: "sa-uid".into() }
}

fn pod_bound() -> BoundObject {
    BoundObject::Pod {
        pod: ObjectRef { name: "web-0".into(), uid: "pod-uid".into() },
        node: Some(ObjectRef { name: "node-1".into(), uid: "node-uid".into() }),
    }
}

fn request(bound: Option<BoundObject>) -> TokenRequest {
    TokenRequest { service_account: builder(), bound_object: bound, ..TokenRequest::default() }
}

fn api_audiences() -> Vec<String> {
    vec![ISSUER.to_string()]
}

fn payload_of(token: &str) -> serde_json::Value {
    let payload = token.split('.').nth(1).expect("payload");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).expect("base64")).expect("json")
}

impl Setup {
    fn issue(&self, request: &TokenRequest) -> IssuedToken {
        self.issuer.issue(request, now()).expect("issues")
    }

    fn check(&self, token: &str, at: SystemTime, cluster: &Cluster) -> Result<Authenticated, AuthError> {
        self.authenticator.authenticate(token, &api_audiences(), at, cluster)
    }

    /// Our key over hand-written claims.
    fn sign_claims(&self, claims: &Claims) -> String {
        jwt::sign(self.issuer.signing_key(), &claims.to_json()).expect("signs")
    }
}

#[test]
fn pod_bound_round_trip() {
    let s = setup();
    let issued = s.issue(&request(Some(pod_bound())));
    assert_eq!(issued.expiration_seconds, 3600);
    assert_eq!(issued.expiration_timestamp, now() + Duration::from_secs(3600));
    assert_eq!(issued.audiences, api_audiences());
    assert!(issued.warnings.is_empty());
    let auth = s.check(&issued.token, now(), &cluster()).expect("authenticates");
    assert_eq!(auth.audiences, api_audiences());
    assert!(auth.audit_annotations.is_empty());
    let user = auth.user;
    assert_eq!(user.name, "system:serviceaccount:default:builder");
    assert_eq!(user.uid, "sa-uid");
    assert_eq!(
        user.groups,
        vec!["system:serviceaccounts", "system:serviceaccounts:default", "system:authenticated"]
    );
    assert_eq!(user.extra[POD_NAME_KEY], vec!["web-0"]);
    assert_eq!(user.extra[POD_UID_KEY], vec!["pod-uid"]);
    assert_eq!(user.extra[NODE_NAME_KEY], vec!["node-1"]);
    assert_eq!(user.extra[NODE_UID_KEY], vec!["node-uid"]);
    assert_eq!(user.extra[CREDENTIAL_ID_KEY], vec![issued.credential_id.clone()]);
    assert_eq!(user.extra.len(), 5);
}

#[test]
fn claims_as_kubernetes_writes_them() {
    let s = setup();
    let issued = s.issue(&request(Some(pod_bound())));
    let p = payload_of(&issued.token);
    let keys: Vec<&str> = p.as_object().expect("object").keys().map(String::as_str).collect();
    assert_eq!(keys, ["aud", "exp", "iat", "iss", "jti", "kubernetes.io", "nbf", "sub"]);
    assert_eq!(p["aud"], serde_json::json!([ISSUER]));
    assert_eq!(p["iat"], 1_700_000_000);
    assert_eq!(p["nbf"], 1_700_000_000);
    assert_eq!(p["exp"], 1_700_003_600);
    assert_eq!(p["iss"], ISSUER);
    assert_eq!(p["sub"], "system:serviceaccount:default:builder");
    let jti = p["jti"].as_str().expect("jti");
    assert!(uuid::Uuid::parse_str(jti).is_ok(), "{jti}");
    assert_eq!(issued.credential_id, format!("JTI={jti}"));
    assert_eq!(
        p["kubernetes.io"],
        serde_json::json!({
            "namespace": "default",
            "node": {"name": "node-1", "uid": "node-uid"},
            "pod": {"name": "web-0", "uid": "pod-uid"},
            "serviceaccount": {"name": "builder", "uid": "sa-uid"},
        })
    );
    let header = issued.token.split('.').next().expect("header");
    let header: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).expect("b64")).expect("json");
    assert_eq!(header, serde_json::json!({"alg": "ES256", "kid": s.issuer.signing_key().key_id()}));
    // Two tokens never share a jti.
    assert_ne!(s.issue(&request(None)).credential_id, issued.credential_id);
}

#[test]
fn unbound_secret_bound_and_node_bound() {
    let s = setup();
    let c = cluster();
    let unbound = s.issue(&request(None));
    let user = s.check(&unbound.token, now(), &c).expect("authenticates").user;
    assert_eq!(user.extra.keys().collect::<Vec<_>>(), vec![CREDENTIAL_ID_KEY]);

    let secret = BoundObject::Secret(ObjectRef { name: "creds".into(), uid: "secret-uid".into() });
    let token = s.issue(&request(Some(secret))).token;
    assert_eq!(
        payload_of(&token)["kubernetes.io"]["secret"],
        serde_json::json!({"name": "creds", "uid": "secret-uid"})
    );
    assert!(s.check(&token, now(), &c).is_ok());
    let mut gone = cluster();
    gone.secrets.clear();
    assert_binding(s.check(&token, now(), &gone), "Secret", BindingProblem::NotFound);

    let node = BoundObject::Node(ObjectRef { name: "node-2".into(), uid: "node-2-uid".into() });
    let token = s.issue(&request(Some(node))).token;
    let user = s.check(&token, now(), &c).expect("authenticates").user;
    assert_eq!(user.extra[NODE_NAME_KEY], vec!["node-2"]);
    assert!(!user.extra.contains_key(POD_NAME_KEY));
    let mut gone = cluster();
    gone.nodes.remove("node-2");
    assert_binding(s.check(&token, now(), &gone), "Node", BindingProblem::NotFound);
    let mut recreated = cluster();
    recreated.nodes.insert("node-2".into(), live("new-uid"));
    assert_binding(
        s.check(&token, now(), &recreated),
        "Node",
        BindingProblem::UidMismatch { claim: "node-2-uid".into(), live: "new-uid".into() },
    );
}

fn assert_binding(result: Result<Authenticated, AuthError>, kind: &str, problem: BindingProblem) {
    match result {
        Err(AuthError::Binding { kind: k, problem: p, .. }) => assert_eq!((k, p), (kind, problem)),
        other => panic!("expected a {kind} binding error, got {other:?}"),
    }
}

#[test]
fn service_account_and_pod_lifecycle() {
    let s = setup();
    let token = s.issue(&request(Some(pod_bound()))).token;

    let mut deleted = cluster();
    deleted.service_accounts.clear();
    assert_binding(s.check(&token, now(), &deleted), "ServiceAccount", BindingProblem::NotFound);

    let mut recreated = cluster();
    recreated.service_accounts.insert(key("default", "builder"), live("another-uid"));
    assert_binding(
        s.check(&token, now(), &recreated),
        "ServiceAccount",
        BindingProblem::UidMismatch { claim: "sa-uid".into(), live: "another-uid".into() },
    );

    let mut pod_gone = cluster();
    pod_gone.pods.remove(&key("default", "web-0"));
    assert_binding(s.check(&token, now(), &pod_gone), "Pod", BindingProblem::NotFound);

    let mut pod_recreated = cluster();
    pod_recreated.pods.get_mut(&key("default", "web-0")).expect("pod").object.uid = "pod-uid-2".into();
    assert_binding(
        s.check(&token, now(), &pod_recreated),
        "Pod",
        BindingProblem::UidMismatch { claim: "pod-uid".into(), live: "pod-uid-2".into() },
    );

    // The node a pod-bound token names is information: its deletion changes nothing.
    let mut node_gone = cluster();
    node_gone.nodes.clear();
    assert!(s.check(&token, now(), &node_gone).is_ok());
}

#[test]
fn deletion_grace_of_one_minute() {
    let s = setup();
    let token = s.issue(&request(Some(pod_bound()))).token;
    let deleting = |at: &str| {
        let mut c = cluster();
        c.pods.get_mut(&key("default", "web-0")).expect("pod").object.deletion_timestamp = at.into();
        c
    };
    // now() is 2023-11-14T22:13:20.25Z.
    assert!(s.check(&token, now(), &deleting("2023-11-14T22:12:30Z")).is_ok(), "50 s ago");
    assert!(s.check(&token, now(), &deleting("2023-11-14T22:12:21Z")).is_ok(), "59.25 s ago");
    assert_binding(s.check(&token, now(), &deleting("2023-11-14T22:12:20Z")), "Pod", BindingProblem::Deleted);
    assert_binding(
        s.check(&token, now(), &deleting("2023-11-14T23:12:00+01:00")),
        "Pod",
        BindingProblem::Deleted,
    );
    assert_binding(s.check(&token, now(), &deleting("yesterday")), "Pod", BindingProblem::Deleted);
    let mut sa_deleting = cluster();
    sa_deleting.service_accounts.get_mut(&key("default", "builder")).expect("sa").deletion_timestamp =
        "2023-11-14T21:00:00Z".into();
    assert_binding(s.check(&token, now(), &sa_deleting), "ServiceAccount", BindingProblem::Deleted);
}

#[test]
fn lifetime() {
    let s = setup();
    let token = s.issue(&request(None)).token;
    let c = cluster();
    let after = |secs: u64| now() + Duration::from_secs(secs);
    assert!(s.check(&token, after(3600), &c).is_ok());
    assert!(s.check(&token, after(3659), &c).is_ok(), "within the leeway");
    assert_eq!(s.check(&token, after(3661), &c), Err(AuthError::Expired));
    assert!(s.check(&token, now() - Duration::from_secs(59), &c).is_ok(), "clock skew within the leeway");
    assert_eq!(s.check(&token, now() - Duration::from_secs(61), &c), Err(AuthError::NotYetValid));
    // Issued in the future (no nbf, so iat decides).
    let mut claims =
        Claims::from_json(&URL_SAFE_NO_PAD.decode(token.split('.').nth(1).expect("p")).expect("b64"))
            .expect("claims");
    claims.nbf = None;
    claims.iat = Some(1_700_000_500);
    assert_eq!(s.check(&s.sign_claims(&claims), now(), &c), Err(AuthError::IssuedInTheFuture));
}

#[test]
fn audiences() {
    let s = setup();
    let c = cluster();
    let mut req = request(None);
    req.audiences = vec!["vault".into(), ISSUER.into()];
    let token = s.issue(&req).token;
    assert_eq!(payload_of(&token)["aud"], serde_json::json!(["vault", ISSUER]));
    // A request to the api-server: its audiences in common.
    assert_eq!(s.check(&token, now(), &c).expect("ok").audiences, api_audiences());
    // A TokenReview for vault.
    let review = s.authenticator.authenticate(&token, &["vault".into(), "other".into()], now(), &c);
    assert_eq!(review.expect("ok").audiences, vec!["vault"]);
    // A token for vault only is refused by the api-server.
    req.audiences = vec!["vault".into()];
    let vault_only = s.issue(&req).token;
    assert!(matches!(s.check(&vault_only, now(), &c), Err(AuthError::Audience { .. })));
    assert!(matches!(
        s.authenticator.authenticate(&vault_only, &[], now(), &c),
        Err(AuthError::Audience { .. })
    ));
    // A legacy token without aud is for the api-server's audiences.
    let mut claims =
        Claims::from_json(&URL_SAFE_NO_PAD.decode(token.split('.').nth(1).expect("p")).expect("b64"))
            .expect("claims");
    claims.aud.clear();
    let legacy = s.sign_claims(&claims);
    assert_eq!(s.check(&legacy, now(), &c).expect("ok").audiences, api_audiences());
    assert!(s.authenticator.authenticate(&legacy, &["vault".into()], now(), &c).is_err());
}

#[test]
fn forged_tokens() {
    let s = setup();
    let c = cluster();
    let good = s.issue(&request(None)).token;
    let payload = String::from_utf8(URL_SAFE_NO_PAD.decode(good.split('.').nth(1).expect("p")).expect("b64"))
        .expect("utf-8");
    let key = s.issuer.signing_key();
    let kid = key.key_id();

    let none = forge::token(r#"{"alg":"none"}"#, &payload, None);
    assert_eq!(s.check(&none, now(), &c), Err(AuthError::Token(JwtError::Algorithm("none".into()))));
    let none_empty_signature = format!("{}.{}.", forge::b64(r#"{"alg":"none"}"#), forge::b64(&payload));
    assert!(s.check(&none_empty_signature, now(), &c).is_err());

    let spki = key.verifying_key().spki_der();
    let pem = test_keys::pem("PUBLIC KEY", &spki);
    let hs256 = forge::hs256(&format!(r#"{{"alg":"HS256","kid":"{kid}"}}"#), &payload, pem.as_bytes());
    assert_eq!(s.check(&hs256, now(), &c), Err(AuthError::Token(JwtError::Algorithm("HS256".into()))));

    let rs256 = forge::token(&format!(r#"{{"alg":"RS256","kid":"{kid}"}}"#), &payload, None);
    assert_eq!(s.check(&rs256, now(), &c), Err(AuthError::Token(JwtError::Algorithm("RS256".into()))));

    let wrong_kid = forge::token(r#"{"alg":"ES256","kid":"c29tZS1vdGhlci1rZXk"}"#, &payload, Some(key));
    assert_eq!(s.check(&wrong_kid, now(), &c), Err(AuthError::Token(JwtError::UnknownKey)));

    let attacker = test_keys::signing_key();
    let other_key = forge::token(&format!(r#"{{"alg":"ES256","kid":"{kid}"}}"#), &payload, Some(&attacker));
    assert_eq!(s.check(&other_key, now(), &c), Err(AuthError::Token(JwtError::BadSignature)));
    let attackers_own_kid = jwt::sign(&attacker, payload.as_bytes()).expect("signs");
    assert_eq!(s.check(&attackers_own_kid, now(), &c), Err(AuthError::Token(JwtError::UnknownKey)));

    // The payload swapped for another ServiceAccount's under the original signature.
    let escalated = payload.replace("builder", "admin");
    let parts: Vec<&str> = good.split('.').collect();
    let swapped = format!("{}.{}.{}", parts[0], forge::b64(&escalated), parts[2]);
    assert_eq!(s.check(&swapped, now(), &c), Err(AuthError::Token(JwtError::BadSignature)));

    // Signed by our key, but for another issuer: not ours to judge.
    let foreign = payload.replace(ISSUER, "https://evil.example");
    let foreign = forge::token(&format!(r#"{{"alg":"ES256","kid":"{kid}"}}"#), &foreign, Some(key));
    assert_eq!(s.check(&foreign, now(), &c), Err(AuthError::Issuer));
    assert!(AuthError::Issuer.is_unrecognized());

    // Valid signature over claims that do not parse.
    for bad in [r#"{"iss":"https://kubernetes.default.svc.cluster.local"}"#, "[]", "not json"] {
        let token = forge::token(&format!(r#"{{"alg":"ES256","kid":"{kid}"}}"#), bad, Some(key));
        assert!(matches!(s.check(&token, now(), &c), Err(AuthError::Claims(_) | AuthError::Issuer)), "{bad}");
    }
    // Empty namespace or name: nothing to look up.
    let mut claims = Claims::from_json(payload.as_bytes()).expect("claims");
    claims.kubernetes.namespace.clear();
    assert_binding(s.check(&s.sign_claims(&claims), now(), &c), "ServiceAccount", BindingProblem::NotFound);
}

#[test]
fn issuer_and_key_rotation() {
    let old = setup_with(TokenConfig::new(vec!["https://old.example".into()]));
    let old_token = old.issue(&request(None)).token;
    // The new api-server signs as a new issuer with a new key, and still accepts the old ones.
    let new_key = test_keys::signing_key();
    let config = TokenConfig {
        api_audiences: vec!["https://old.example".into()],
        ..TokenConfig::new(vec!["https://new.example".into(), "https://old.example".into()])
    };
    let keys = VerifyingKeys::new([
        new_key.verifying_key().clone(),
        old.issuer.signing_key().verifying_key().clone(),
    ]);
    let authenticator = TokenAuthenticator::new(&config, keys);
    let issuer = TokenIssuer::new(new_key, &config).expect("config");
    let c = cluster();
    let audiences = config.api_audiences().to_vec();
    assert!(authenticator.authenticate(&old_token, &audiences, now(), &c).is_ok());
    let new_token = issuer.issue(&request(None), now()).expect("issues").token;
    assert_eq!(payload_of(&new_token)["iss"], "https://new.example");
    assert!(authenticator.authenticate(&new_token, &audiences, now(), &c).is_ok());
    // The old api-server does not know the new issuer.
    assert_eq!(old.check(&new_token, now(), &c), Err(AuthError::Issuer));
}

#[test]
fn expiration_rules() {
    let s = setup();
    let with = |seconds: i64| TokenRequest { expiration_seconds: Some(seconds), ..request(None) };
    for bad in [0, -1, 599, i64::MIN] {
        assert!(
            matches!(s.issuer.issue(&with(bad), now()), Err(IssueError::InvalidExpiration { .. })),
            "{bad}"
        );
    }
    let err = s.issuer.issue(&with((1 << 32) + 1), now()).expect_err("too long");
    assert_eq!(
        err.to_string(),
        "spec.expirationSeconds: Invalid value: 4294967297: may not specify a duration larger than 2^32 seconds"
    );
    let longest = s.issue(&with(1 << 32));
    assert_eq!(payload_of(&longest.token)["exp"], 1_700_000_000i64 + (1i64 << 32));
    let shortest = s.issue(&with(600));
    assert_eq!(payload_of(&shortest.token)["exp"], 1_700_000_600);

    let capped = setup_with(TokenConfig {
        max_expiration: Some(Duration::from_secs(7200)),
        ..TokenConfig::new(vec![ISSUER.into()])
    });
    let issued = capped.issue(&with(86400));
    assert_eq!(issued.expiration_seconds, 7200);
    assert_eq!(issued.expiration_timestamp, now() + Duration::from_secs(7200));
    assert_eq!(payload_of(&issued.token)["exp"], 1_700_007_200);
    assert_eq!(issued.warnings, vec!["requested expiration of 86400 seconds shortened to 7200 seconds"]);
    assert!(capped.issue(&with(7200)).warnings.is_empty());
}

#[test]
fn kubelet_tokens_are_extended() {
    let s = setup();
    let kubelet = TokenRequest { expiration_seconds: Some(3607), ..request(Some(pod_bound())) };
    let issued = s.issue(&kubelet);
    assert_eq!(issued.expiration_seconds, 3607);
    assert_eq!(issued.expiration_timestamp, now() + Duration::from_secs(3607));
    let p = payload_of(&issued.token);
    assert_eq!(p["exp"], 1_700_000_000i64 + EXTENDED_EXPIRATION_SECONDS);
    assert_eq!(p["kubernetes.io"]["warnafter"], 1_700_003_607);
    let c = cluster();
    let auth = s.check(&issued.token, now() + Duration::from_secs(3600), &c).expect("fresh");
    assert!(auth.audit_annotations.is_empty());
    let stale = s.check(&issued.token, now() + Duration::from_secs(7200), &c).expect("still valid");
    assert_eq!(
        stale.audit_annotations,
        vec![(
            claims::STALE_TOKEN_ANNOTATION,
            "subject: system:serviceaccount:default:builder, seconds after warning threshold: 3593"
                .to_string()
        )]
    );

    let not_extended = |req: &TokenRequest, setup: &Setup| {
        let p = payload_of(&setup.issue(req).token);
        assert_eq!(p["exp"], 1_700_003_607, "{req:?}");
        assert!(p["kubernetes.io"].get("warnafter").is_none());
    };
    not_extended(&TokenRequest { expiration_seconds: Some(3607), ..request(None) }, &s);
    not_extended(&TokenRequest { audiences: vec!["vault".into()], ..kubelet.clone() }, &s);
    let off = setup_with(TokenConfig { extend_expiration: false, ..TokenConfig::new(vec![ISSUER.into()]) });
    not_extended(&kubelet, &off);
    // A maximum below 3607 makes the request 3600, which is not extended.
    let capped = setup_with(TokenConfig {
        max_expiration: Some(Duration::from_secs(3600)),
        ..TokenConfig::new(vec![ISSUER.into()])
    });
    let p = payload_of(&capped.issue(&kubelet).token);
    assert_eq!(p["exp"], 1_700_003_600);
}

#[test]
fn resolving_bound_objects() {
    let c = cluster();
    let reference = |kind, api_version, name, uid| BoundObjectReference { kind, api_version, name, uid };
    let resolve = |r: BoundObjectReference<'_>| resolve_bound_object("default", "builder", &r, &c);
    assert_eq!(resolve(reference("Pod", "v1", "web-0", "")), Ok(pod_bound()));
    assert_eq!(resolve(reference("Pod", "v1", "web-0", "pod-uid")), Ok(pod_bound()));
    assert_eq!(
        resolve(reference("Pod", "v1", "pending", "")),
        Ok(BoundObject::Pod {
            pod: ObjectRef { name: "pending".into(), uid: "pending-uid".into() },
            node: None
        })
    );
    let mut no_node = cluster();
    no_node.nodes.clear();
    assert_eq!(
        resolve_bound_object("default", "builder", &reference("Pod", "v1", "web-0", ""), &no_node),
        Ok(BoundObject::Pod {
            pod: ObjectRef { name: "web-0".into(), uid: "pod-uid".into() },
            node: Some(ObjectRef { name: "node-1".into(), uid: String::new() }),
        })
    );
    assert_eq!(
        resolve(reference("Pod", "v1", "other", "")),
        Err(BindError::DifferentServiceAccount("builder".into()))
    );
    assert_eq!(
        resolve(reference("Pod", "v1", "missing", "")),
        Err(BindError::NotFound { resource: "pods", name: "missing".into() })
    );
    let mismatch = resolve(reference("Pod", "v1", "web-0", "stale-uid")).expect_err("conflict");
    assert_eq!(
        mismatch.to_string(),
        "the UID in the bound object reference (stale-uid) does not match the UID in record. The object might have been deleted and then recreated"
    );
    assert_eq!(
        resolve(reference("Secret", "v1", "creds", "")),
        Ok(BoundObject::Secret(ObjectRef { name: "creds".into(), uid: "secret-uid".into() }))
    );
    assert_eq!(
        resolve(reference("Node", "v1", "node-2", "node-2-uid")),
        Ok(BoundObject::Node(ObjectRef { name: "node-2".into(), uid: "node-2-uid".into() }))
    );
    assert_eq!(
        resolve(reference("Node", "v1", "node-9", "")),
        Err(BindError::NotFound { resource: "nodes", name: "node-9".into() })
    );
    assert_eq!(
        resolve(reference("ConfigMap", "v1", "x", "")),
        Err(BindError::UnsupportedKind("/v1, Kind=ConfigMap".into()))
    );
    assert_eq!(
        resolve(reference("Pod", "apps/v1", "web-0", "")),
        Err(BindError::UnsupportedKind("apps/v1, Kind=Pod".into()))
    );
    assert_eq!(
        resolve(reference("Deployment", "apps/v1", "web", "")).expect_err("unsupported").to_string(),
        "cannot bind token to object of type apps/v1, Kind=Deployment"
    );
    // Kubernetes reads an unparseable apiVersion as the core group.
    assert!(resolve(reference("Pod", "a/b/c", "web-0", "")).is_ok());
}

#[test]
fn config_checks() {
    assert_eq!(TokenConfig::new(vec![]).validate(), Err(ConfigError::NoIssuer));
    assert_eq!(TokenConfig::new(vec![String::new()]).validate(), Err(ConfigError::EmptyIssuer));
    assert_eq!(
        TokenConfig::new(vec!["a".into(), "a".into()]).validate(),
        Err(ConfigError::DuplicateIssuer("a".into()))
    );
    for (max, ok) in [(3599, false), (3600, true), (1 << 32, true), ((1 << 32) + 1, false)] {
        let config = TokenConfig {
            max_expiration: Some(Duration::from_secs(max)),
            ..TokenConfig::new(vec!["a".into()])
        };
        assert_eq!(config.validate().is_ok(), ok, "{max}");
    }
    let s = setup();
    assert_eq!(s.config.api_audiences(), &[ISSUER.to_string()], "the issuers by default");
    let explicit = TokenConfig { api_audiences: vec!["api".into()], ..TokenConfig::new(vec!["a".into()]) };
    assert_eq!(explicit.api_audiences(), &["api".to_string()]);
}

#[test]
fn live_objects_from_the_api_types() {
    use navarch_api::v1::{ObjectMeta, Pod, PodSpec};
    let pod = Pod {
        metadata: Some(ObjectMeta {
            uid: "u".into(),
            deletion_timestamp: "2024-01-01T00:00:00Z".into(),
            ..ObjectMeta::default()
        }),
        spec: Some(PodSpec {
            service_account_name: "sa".into(),
            node_name: "n".into(),
            ..PodSpec::default()
        }),
        ..Pod::default()
    };
    let live = LivePod::from_pod(&pod);
    assert_eq!(live.object.uid, "u");
    assert_eq!(live.object.deletion_timestamp, "2024-01-01T00:00:00Z");
    assert_eq!((live.service_account_name.as_str(), live.node_name.as_str()), ("sa", "n"));
    assert_eq!(LivePod::from_pod(&Pod::default()), LivePod::default());
}
