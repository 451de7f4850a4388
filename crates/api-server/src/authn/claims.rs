//! The claims of a ServiceAccount token, exactly as Kubernetes writes them (pkg/serviceaccount/
//! claims.go), their time checks with go-jose's one-minute leeway, and the user they name
//! (`ServiceAccountInfo.UserInfo()` of k8s.io/apiserver).
//!
//! ```json
//! {"aud":["https://kubernetes.default.svc.cluster.local"],"exp":1700003607,"iat":1700000000,
//!  "iss":"https://kubernetes.default.svc.cluster.local","jti":"<uuid>",
//!  "kubernetes.io":{"namespace":"default","node":{"name":"n1","uid":"..."},
//!                   "pod":{"name":"web-0","uid":"..."},"serviceaccount":{"name":"default","uid":"..."},
//!                   "warnafter":1700003607},
//!  "nbf":1700000000,"sub":"system:serviceaccount:default:default"}
//! ```
//!
//! Members are written in that (sorted) order, as go-jose's builder writes them; `aud` is always a
//! list and is read as a list or a single string. Times are whole seconds since the epoch.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Deserializer, Serialize};

use super::AuthError;
use crate::user_info::{AUTHENTICATED_GROUP, SERVICE_ACCOUNT_USER_PREFIX, SERVICE_ACCOUNTS_GROUP, UserInfo};

/// go-jose's `jwt.DefaultLeeway`: how far clocks may disagree on `nbf`, `exp` and `iat`, and how long a
/// bound object may have been deleted before its tokens stop working.
pub const LEEWAY: Duration = Duration::from_secs(60);

/// The user's `extra` keys (k8s.io/apiserver/pkg/authentication/serviceaccount).
pub const POD_NAME_KEY: &str = "authentication.kubernetes.io/pod-name";
pub const POD_UID_KEY: &str = "authentication.kubernetes.io/pod-uid";
pub const NODE_NAME_KEY: &str = "authentication.kubernetes.io/node-name";
pub const NODE_UID_KEY: &str = "authentication.kubernetes.io/node-uid";
pub const CREDENTIAL_ID_KEY: &str = "authentication.kubernetes.io/credential-id";
/// The audit annotation of a token used after its `warnafter`.
pub const STALE_TOKEN_ANNOTATION: &str = "authentication.k8s.io/stale-token";
/// The audit annotation of a TokenRequest: the credential id of the token it issued.
pub const ISSUED_CREDENTIAL_ID_ANNOTATION: &str = "authentication.kubernetes.io/issued-credential-id";

/// A token's claims.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    #[serde(deserialize_with = "audience", default)]
    pub aud: Vec<String>,
    pub exp: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<i64>,
    pub iss: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub jti: String,
    #[serde(rename = "kubernetes.io")]
    pub kubernetes: KubernetesClaims,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub sub: String,
}

/// The private claims under `kubernetes.io`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KubernetesClaims {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub namespace: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<ObjectRefClaim>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod: Option<ObjectRefClaim>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<ObjectRefClaim>,
    #[serde(rename = "serviceaccount", default)]
    pub service_account: ObjectRefClaim,
    /// Past this time the token still works, but its use is audited as stale (the kubelet's tokens of
    /// 3607 s, extended to a year).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warnafter: Option<i64>,
}

/// `{"name": ..., "uid": ...}`, each omitted when empty.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectRefClaim {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub uid: String,
}

/// `aud` as go-jose reads it: one string or a list of strings.
fn audience<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Audience {
        One(String),
        Many(Vec<String>),
    }
    Ok(match Audience::deserialize(d)? {
        Audience::One(a) => vec![a],
        Audience::Many(a) => a,
    })
}

impl Claims {
    /// Parses a payload. Unknown members are ignored (other issuers' tokens carry more), duplicate
    /// known ones are errors.
    pub fn from_json(payload: &[u8]) -> Result<Claims, AuthError> {
        if !super::jwt::is_json_object(payload) {
            return Err(AuthError::Claims("not a JSON object".into()));
        }
        serde_json::from_slice(payload).map_err(|e| AuthError::Claims(e.to_string()))
    }

    pub fn to_json(&self) -> Vec<u8> {
        // Strings, integers and maps with string keys always serialize.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// go-jose's `Claims.Validate` with the default leeway: not before `nbf`, not after `exp`, not
    /// issued in the future. A token without `exp` does not parse.
    pub fn check_times(&self, now: SystemTime) -> Result<(), AuthError> {
        let now = unix_nanos(now);
        let leeway = LEEWAY.as_nanos() as i128;
        if self.nbf.is_some_and(|nbf| now + leeway < seconds_to_nanos(nbf)) {
            return Err(AuthError::NotYetValid);
        }
        if now - leeway > seconds_to_nanos(self.exp) {
            return Err(AuthError::Expired);
        }
        if self.iat.is_some_and(|iat| now + leeway < seconds_to_nanos(iat)) {
            return Err(AuthError::IssuedInTheFuture);
        }
        Ok(())
    }

    /// `authentication.k8s.io/stale-token` when `now` is past `warnafter`:
    /// `subject: <sub>, seconds after warning threshold: <n>`.
    pub fn stale_token_annotation(&self, now: SystemTime) -> Option<String> {
        let warnafter = self.warnafter_time()?;
        let now_secs = unix_seconds(now);
        (unix_nanos(now) > seconds_to_nanos(warnafter)).then(|| {
            format!(
                "subject: {}, seconds after warning threshold: {}",
                self.sub,
                now_secs.saturating_sub(warnafter)
            )
        })
    }

    fn warnafter_time(&self) -> Option<i64> {
        self.kubernetes.warnafter.filter(|w| *w != 0)
    }

    /// The credential id of the token: `JTI=<jti>`, empty without a `jti`.
    pub fn credential_id(&self) -> String {
        credential_id(&self.jti)
    }

    /// The user the claims name; checking the bindings first is the caller's job.
    pub fn user_info(&self) -> UserInfo {
        let k = &self.kubernetes;
        let mut extra = BTreeMap::new();
        if let Some(pod) = k.pod.as_ref().filter(|p| !p.name.is_empty() && !p.uid.is_empty()) {
            extra.insert(POD_NAME_KEY.to_string(), vec![pod.name.clone()]);
            extra.insert(POD_UID_KEY.to_string(), vec![pod.uid.clone()]);
        }
        let credential_id = self.credential_id();
        if !credential_id.is_empty() {
            extra.insert(CREDENTIAL_ID_KEY.to_string(), vec![credential_id]);
        }
        if let Some(node) = k.node.as_ref().filter(|n| !n.name.is_empty()) {
            extra.insert(NODE_NAME_KEY.to_string(), vec![node.name.clone()]);
            if !node.uid.is_empty() {
                extra.insert(NODE_UID_KEY.to_string(), vec![node.uid.clone()]);
            }
        }
        UserInfo {
            name: service_account_user_name(&k.namespace, &k.service_account.name),
            uid: k.service_account.uid.clone(),
            groups: service_account_groups(&k.namespace),
            extra,
        }
    }
}

/// `system:serviceaccount:<namespace>:<name>`.
pub fn service_account_user_name(namespace: &str, name: &str) -> String {
    format!("{SERVICE_ACCOUNT_USER_PREFIX}{namespace}:{name}")
}

/// `system:serviceaccounts`, `system:serviceaccounts:<namespace>` and `system:authenticated`.
pub fn service_account_groups(namespace: &str) -> Vec<String> {
    vec![
        SERVICE_ACCOUNTS_GROUP.to_string(),
        format!("{SERVICE_ACCOUNTS_GROUP}:{namespace}"),
        AUTHENTICATED_GROUP.to_string(),
    ]
}

/// `JTI=<jti>`; empty for an empty `jti`.
pub fn credential_id(jti: &str) -> String {
    if jti.is_empty() { String::new() } else { format!("JTI={jti}") }
}

/// Whole seconds since the epoch, rounded down (go-jose's `NewNumericDate`); negative before it.
pub fn unix_seconds(t: SystemTime) -> i64 {
    let nanos = unix_nanos(t);
    i64::try_from(nanos.div_euclid(1_000_000_000)).unwrap_or(if nanos < 0 { i64::MIN } else { i64::MAX })
}

/// Nanoseconds since the epoch, exact for any `SystemTime` (i128 holds them all).
pub fn unix_nanos(t: SystemTime) -> i128 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_nanos() as i128,
        Err(e) => -(e.duration().as_nanos() as i128),
    }
}

fn seconds_to_nanos(seconds: i64) -> i128 {
    i128::from(seconds) * 1_000_000_000
}

/// The time `seconds` after the epoch, or `None` if a `SystemTime` cannot hold it.
pub fn from_unix_seconds(seconds: i64) -> Option<SystemTime> {
    if seconds >= 0 {
        UNIX_EPOCH.checked_add(Duration::from_secs(seconds.unsigned_abs()))
    } else {
        UNIX_EPOCH.checked_sub(Duration::from_secs(seconds.unsigned_abs()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> SystemTime {
        from_unix_seconds(seconds).expect("representable")
    }

    fn sample() -> Claims {
        Claims {
            aud: vec!["https://kubernetes.default.svc.cluster.local".into(), "k3s".into()],
            exp: 1_700_003_607,
            iat: Some(1_700_000_000),
            iss: "https://kubernetes.default.svc.cluster.local".into(),
            jti: "8a7b3c1e-0000-4000-8000-000000000001".into(),
            kubernetes: KubernetesClaims {
                namespace: "default".into(),
                node: Some(ObjectRefClaim { name: "node-1".into(), uid: "node-uid".into() }),
                pod: Some(ObjectRefClaim { name: "web-0".into(), uid: "pod-uid".into() }),
                secret: None,
                service_account: ObjectRefClaim { name: "builder".into(), uid: "sa-uid".into() },
                warnafter: Some(1_700_003_607),
            },
            nbf: Some(1_700_000_000),
            sub: "system:serviceaccount:default:builder".into(),
        }
    }

    #[test]
    fn serialized_exactly_as_kubernetes_writes_it() {
        let json = String::from_utf8(sample().to_json()).expect("utf-8");
        assert_eq!(
            json,
            concat!(
                r#"{"aud":["https://kubernetes.default.svc.cluster.local","k3s"],"exp":1700003607,"iat":1700000000,"#,
                r#""iss":"https://kubernetes.default.svc.cluster.local","jti":"8a7b3c1e-0000-4000-8000-000000000001","#,
                r#""kubernetes.io":{"namespace":"default","node":{"name":"node-1","uid":"node-uid"},"#,
                r#""pod":{"name":"web-0","uid":"pod-uid"},"serviceaccount":{"name":"builder","uid":"sa-uid"},"#,
                r#""warnafter":1700003607},"nbf":1700000000,"sub":"system:serviceaccount:default:builder"}"#
            )
        );
        assert_eq!(Claims::from_json(json.as_bytes()).expect("round trip"), sample());
        // A node ref without uid (the pod's node was not found at issue time).
        let mut c = sample();
        c.kubernetes.node = Some(ObjectRefClaim { name: "node-1".into(), uid: String::new() });
        assert!(String::from_utf8(c.to_json()).expect("utf-8").contains(r#""node":{"name":"node-1"}"#));
    }

    #[test]
    fn parsing_shapes() {
        let base =
            r#""exp":1,"iss":"i","kubernetes.io":{"namespace":"n","serviceaccount":{"name":"s","uid":"u"}}"#;
        let single = Claims::from_json(format!(r#"{{"aud":"one",{base}}}"#).as_bytes()).expect("single aud");
        assert_eq!(single.aud, vec!["one"]);
        let none = Claims::from_json(format!("{{{base}}}").as_bytes()).expect("no aud");
        assert!(none.aud.is_empty());
        let unknown =
            Claims::from_json(format!(r#"{{"extra":{{"x":[1]}},{base}}}"#).as_bytes()).expect("unknown");
        assert_eq!(unknown.kubernetes.service_account.name, "s");
        let nulls = format!(r#"{{"pod":null,"nbf":null,{base}}}"#);
        assert!(Claims::from_json(nulls.as_bytes()).is_ok());
        for bad in [
            format!(r#"{{"aud":5,{base}}}"#),
            format!(r#"{{"aud":["a",5],{base}}}"#),
            format!(r#"{{"exp":2,{base}}}"#),
            format!(r#"{{"iss":"other",{base}}}"#),
            r#"{"exp":1,"iss":"i"}"#.to_string(),
            r#"{"iss":"i","kubernetes.io":{}}"#.to_string(),
            format!(r#"{{"nbf":1.5,{base}}}"#),
            format!(r#"{{"nbf":"1",{base}}}"#),
            format!(r#"{{"nbf":1e400,{base}}}"#),
            r#"{"exp":99999999999999999999,"iss":"i","kubernetes.io":{}}"#.to_string(),
            format!("[{base}]"),
            r#"[[],1,null,"i","",{"namespace":"n"}]"#.to_string(),
            String::new(),
            "null".into(),
            "{".into(),
        ] {
            assert!(Claims::from_json(bad.as_bytes()).is_err(), "{bad}");
        }
    }

    #[test]
    fn times_with_one_minute_leeway() {
        let c = Claims { exp: 1000, nbf: Some(500), iat: Some(500), ..sample() };
        assert_eq!(c.check_times(at(700)), Ok(()));
        assert_eq!(c.check_times(at(1060)), Ok(()), "exp plus the leeway");
        assert_eq!(c.check_times(at(1061)), Err(AuthError::Expired));
        assert_eq!(c.check_times(at(1060) + Duration::from_nanos(1)), Err(AuthError::Expired));
        assert_eq!(c.check_times(at(440)), Ok(()), "nbf minus the leeway");
        assert_eq!(c.check_times(at(439)), Err(AuthError::NotYetValid));
        let future = Claims { exp: 1000, nbf: None, iat: Some(900), ..sample() };
        assert_eq!(future.check_times(at(839)), Err(AuthError::IssuedInTheFuture));
        let extreme = Claims { exp: i64::MIN, nbf: Some(i64::MAX), iat: Some(i64::MAX), ..sample() };
        assert_eq!(extreme.check_times(at(0)), Err(AuthError::NotYetValid));
        let expired = Claims { exp: i64::MIN, nbf: None, iat: None, ..sample() };
        assert_eq!(expired.check_times(UNIX_EPOCH - Duration::from_secs(5)), Err(AuthError::Expired));
    }

    #[test]
    fn stale_tokens() {
        let c = sample();
        assert_eq!(c.stale_token_annotation(at(1_700_003_607)), None);
        assert_eq!(
            c.stale_token_annotation(at(1_700_003_707)).as_deref(),
            Some("subject: system:serviceaccount:default:builder, seconds after warning threshold: 100")
        );
        let mut none = sample();
        none.kubernetes.warnafter = Some(0);
        assert_eq!(none.stale_token_annotation(at(i64::from(u32::MAX))), None);
    }

    #[test]
    fn user_info() {
        let user = sample().user_info();
        assert_eq!(user.name, "system:serviceaccount:default:builder");
        assert_eq!(user.uid, "sa-uid");
        assert_eq!(
            user.groups,
            vec!["system:serviceaccounts", "system:serviceaccounts:default", "system:authenticated"]
        );
        let extra: Vec<(&str, &str)> = user.extra.iter().map(|(k, v)| (k.as_str(), v[0].as_str())).collect();
        assert_eq!(
            extra,
            vec![
                (CREDENTIAL_ID_KEY, "JTI=8a7b3c1e-0000-4000-8000-000000000001"),
                (NODE_NAME_KEY, "node-1"),
                (NODE_UID_KEY, "node-uid"),
                (POD_NAME_KEY, "web-0"),
                (POD_UID_KEY, "pod-uid"),
            ]
        );
        assert_eq!(user.service_account(), Some(("default", "builder")));
        let mut bare = sample();
        bare.jti.clear();
        bare.kubernetes.pod = None;
        bare.kubernetes.node = Some(ObjectRefClaim { name: "node-1".into(), uid: String::new() });
        let user = bare.user_info();
        assert_eq!(user.extra.keys().collect::<Vec<_>>(), vec![NODE_NAME_KEY]);
    }

    #[test]
    fn seconds_conversions() {
        assert_eq!(unix_seconds(at(5) + Duration::from_millis(999)), 5);
        assert_eq!(unix_seconds(UNIX_EPOCH - Duration::from_millis(1)), -1);
        assert_eq!(from_unix_seconds(-3).map(unix_seconds), Some(-3));
        assert_eq!(credential_id(""), "");
        assert_eq!(credential_id("x"), "JTI=x");
    }
}
