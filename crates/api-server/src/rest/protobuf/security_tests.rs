//! The security kinds' protobuf bodies: what kubectl 1.32.4 sends for `create role|clusterrole|rolebinding|
//! clusterrolebinding`, `auth can-i` (`--list`), `auth whoami`, `create token` and `certificate approve|deny`
//! (testdata/*.pb, captured byte for byte from `kubectl -v=10` hex dumps against navarch's api-server), and
//! hand-encoded bodies for what kubectl never sends (SubjectAccessReviews with `extra`, TokenReviews).

use navarch_api::v1::{
    CertificateSigningRequest, SelfSubjectAccessReview, SelfSubjectReview, SelfSubjectRulesReview,
    SubjectAccessReview, TokenRequest, TokenReview,
};
use navarch_api::{Object, kind_info};
use serde_json::json;

use super::*;
use crate::rest::decode;
use crate::rest::media::BodyFormat;

fn testdata(name: &str) -> Vec<u8> {
    let path = format!("{}/src/rest/protobuf/testdata/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// A stored kind's body, decoded and read as the kind.
fn kind_body(name: &str, kind: &str) -> Value {
    let v = decode(kind_info(kind).unwrap(), &testdata(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
    Object::from_value(kind, serde_yaml::to_value(&v).unwrap()).unwrap_or_else(|e| panic!("{name}: {e}"));
    v
}

/// A review's (or TokenRequest's) body, decoded and read as `T` through [`decode::message`].
fn message_body<T: serde::de::DeserializeOwned + serde::Serialize>(
    name: &str,
    kind: &str,
    api_version: &str,
) -> Value {
    let typed: T = decode::message(&testdata(name), BodyFormat::Protobuf, kind, api_version)
        .unwrap_or_else(|e| panic!("{name}: {}", e.message));
    let mut v = serde_json::to_value(&typed).unwrap();
    // The typed object says nothing of an absent apiVersion/kind; the decoded JSON has the envelope's.
    let raw = decode_message(kind, &testdata(name)).unwrap();
    assert_eq!((raw["apiVersion"].as_str(), raw["kind"].as_str()), (Some(api_version), Some(kind)));
    v.as_object_mut().unwrap().retain(|k, _| k != "apiVersion" && k != "kind");
    v
}

#[test]
fn kubectl_create_rbac_bodies() {
    let meta = |name: &str| json!({"name": name});
    let group = "rbac.authorization.k8s.io/v1";
    // kubectl create role pod-reader --verb=get,list --resource=pods --resource-name=p1
    assert_eq!(
        kind_body("role.pb", "Role"),
        json!({"apiVersion": group, "kind": "Role", "metadata": meta("pod-reader"),
               "rules": [{"verbs": ["get", "list"], "apiGroups": [""], "resources": ["pods"], "resourceNames": ["p1"]}]})
    );
    // kubectl create clusterrole agg --aggregation-rule=a=b
    assert_eq!(
        kind_body("clusterrole-aggregation.pb", "ClusterRole"),
        json!({"apiVersion": group, "kind": "ClusterRole", "metadata": meta("agg"),
               "aggregationRule": {"clusterRoleSelectors": [{"matchLabels": {"a": "b"}}]}})
    );
    // kubectl create clusterrole urls --verb=get --non-resource-url=/healthz --non-resource-url=/metrics
    assert_eq!(
        kind_body("clusterrole-urls.pb", "ClusterRole"),
        json!({"apiVersion": group, "kind": "ClusterRole", "metadata": meta("urls"),
               "rules": [{"verbs": ["get"], "nonResourceURLs": ["/healthz", "/metrics"]}]})
    );
    // kubectl create rolebinding rb --clusterrole=view --user=alice --group=devs --serviceaccount=ns1:sa
    let view = json!({"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"});
    let sa = json!({"kind": "ServiceAccount", "name": "sa", "namespace": "ns1"});
    assert_eq!(
        kind_body("rolebinding.pb", "RoleBinding"),
        json!({"apiVersion": group, "kind": "RoleBinding", "metadata": meta("rb"), "roleRef": view,
        "subjects": [
            {"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "alice"},
            {"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "devs"},
            sa,
        ]})
    );
    // kubectl create clusterrolebinding crb --clusterrole=view --serviceaccount=ns1:sa
    assert_eq!(
        kind_body("clusterrolebinding.pb", "ClusterRoleBinding"),
        json!({"apiVersion": group, "kind": "ClusterRoleBinding", "metadata": meta("crb"), "roleRef": view,
               "subjects": [sa]})
    );
}

#[test]
fn kubectl_auth_bodies() {
    let authz = "authorization.k8s.io/v1";
    let ssar = |name: &str| message_body::<SelfSubjectAccessReview>(name, "SelfSubjectAccessReview", authz);
    // kubectl auth can-i create pods
    assert_eq!(
        ssar("selfsubjectaccessreview.pb"),
        json!({"metadata": {}, "spec": {"resourceAttributes": {"namespace": "default", "verb": "create", "resource": "pods"}},
               "status": {"allowed": false}})
    );
    // kubectl auth can-i delete deployments.apps/web
    assert_eq!(
        ssar("selfsubjectaccessreview-name.pb")["spec"],
        json!({"resourceAttributes": {"namespace": "default", "verb": "delete", "group": "apps", "resource": "deployments", "name": "web"}})
    );
    // kubectl auth can-i get pods/log --subresource=log -n kube-system
    assert_eq!(
        ssar("selfsubjectaccessreview-subresource.pb")["spec"]["resourceAttributes"],
        json!({"namespace": "kube-system", "verb": "get", "resource": "pods", "subresource": "log", "name": "log"})
    );
    // kubectl auth can-i get /healthz
    assert_eq!(
        ssar("selfsubjectaccessreview-url.pb")["spec"],
        json!({"nonResourceAttributes": {"path": "/healthz", "verb": "get"}})
    );
    // kubectl auth can-i --list -n default
    let ssrr =
        message_body::<SelfSubjectRulesReview>("selfsubjectrulesreview.pb", "SelfSubjectRulesReview", authz);
    assert_eq!(ssrr["spec"], json!({"namespace": "default"}));
    // kubectl auth whoami (its first try, authentication.k8s.io/v1)
    let whoami = message_body::<SelfSubjectReview>(
        "selfsubjectreview.pb",
        "SelfSubjectReview",
        "authentication.k8s.io/v1",
    );
    assert_eq!(whoami, json!({"metadata": {}, "status": {"userInfo": {}}}));
}

#[test]
fn kubectl_create_token_bodies() {
    let authn = "authentication.k8s.io/v1";
    // kubectl create token default
    let token = message_body::<TokenRequest>("tokenrequest.pb", "TokenRequest", authn);
    assert_eq!(token["spec"], json!({"audiences": []}));
    // kubectl create token builder --audience=a --audience=b --duration=1h --bound-object-kind=Pod
    //   --bound-object-name=p --bound-object-uid=u-1
    let token = message_body::<TokenRequest>("tokenrequest-bound.pb", "TokenRequest", authn);
    assert_eq!(
        token["spec"],
        json!({"audiences": ["a", "b"], "expirationSeconds": 3600,
               "boundObjectRef": {"kind": "Pod", "apiVersion": "v1", "name": "p", "uid": "u-1"}})
    );
    let typed: TokenRequest =
        decode::message(&testdata("tokenrequest-bound.pb"), BodyFormat::Protobuf, "TokenRequest", authn)
            .unwrap();
    assert_eq!(typed.spec.unwrap().expiration_seconds, Some(3600));
}

#[test]
fn kubectl_certificate_approve_and_deny_bodies() {
    for (name, ty, reason) in
        [("csr-approve.pb", "Approved", "KubectlApprove"), ("csr-deny.pb", "Denied", "KubectlDeny")]
    {
        let v = kind_body(name, "CertificateSigningRequest");
        let condition = &v["status"]["conditions"][0];
        assert_eq!(
            (condition["type"].as_str(), condition["reason"].as_str()),
            (Some(ty), Some(reason)),
            "{name}"
        );
        assert_eq!(condition["status"], "True");
        assert!(condition["lastUpdateTime"].as_str().is_some_and(|t| t.ends_with('Z')), "{name}: a time");
        // The request's bytes come back as the base64 they were sent as.
        let request = STANDARD.decode(v["spec"]["request"].as_str().unwrap()).unwrap();
        assert!(request.starts_with(b"-----BEGIN CERTIFICATE REQUEST-----"), "{name}");
        assert_eq!(v["spec"]["usages"], json!(["client auth"]));
        assert_eq!(v["metadata"]["managedFields"][0]["fieldsV1"]["f:spec"]["f:request"], json!({}));
        let typed: CertificateSigningRequest = serde_json::from_value(v).unwrap();
        assert_eq!(typed.spec.unwrap().expiration_seconds, Some(86_400));
    }
}

// A tiny encoder for hand-made bodies.
fn varint(mut v: u64) -> Vec<u8> {
    let mut out = Vec::new();
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
    out
}

/// Length-delimited field `n`.
fn ld(n: u32, bytes: impl AsRef<[u8]>) -> Vec<u8> {
    let bytes = bytes.as_ref();
    [varint(u64::from(n) << 3 | 2), varint(bytes.len() as u64), bytes.to_vec()].concat()
}

/// Varint field `n`.
fn vi(n: u32, v: u64) -> Vec<u8> {
    [varint(u64::from(n) << 3), varint(v)].concat()
}

fn body(api_version: &str, kind: &str, raw: &[u8]) -> Vec<u8> {
    let type_meta = [ld(1, api_version), ld(2, kind)].concat();
    [MAGIC.to_vec(), ld(1, type_meta), ld(2, raw)].concat()
}

/// `extra` entries: key, then the values of its ExtraValue (`items` = 1); no values at all leaves the
/// entry's value out.
fn extra(n: u32, entries: &[(&str, &[&str])]) -> Vec<u8> {
    entries
        .iter()
        .flat_map(|(key, values)| {
            let items: Vec<u8> = values.iter().flat_map(|v| ld(1, v)).collect();
            let value = if values.is_empty() { Vec::new() } else { ld(2, items) };
            ld(n, [ld(1, key), value].concat())
        })
        .collect()
}

#[test]
fn subject_access_reviews_with_extra() {
    // spec: resourceAttributes (1), user (3), groups (4), extra (5), uid (6); status: allowed (1),
    // reason (2), evaluationError (3), denied (4).
    let attributes = [
        ld(1, "ns"),
        ld(2, "get"),
        ld(3, "apps"),
        ld(4, "v1"),
        ld(5, "deployments"),
        ld(6, "scale"),
        ld(7, "web"),
    ]
    .concat();
    let spec = [
        ld(1, attributes),
        ld(3, "alice"),
        ld(4, "devs"),
        ld(4, "system:authenticated"),
        extra(5, &[("scopes", &["a", "b"]), ("empty", &[])]),
        ld(6, "u-1"),
    ]
    .concat();
    let status = [vi(1, 0), ld(2, "no"), vi(4, 1)].concat();
    let raw = [ld(1, ld(1, "")), ld(2, spec), ld(3, status)].concat();
    let sar: SubjectAccessReview = decode::message(
        &body("authorization.k8s.io/v1", "SubjectAccessReview", &raw),
        BodyFormat::Protobuf,
        "SubjectAccessReview",
        "authorization.k8s.io/v1",
    )
    .unwrap();
    let v = serde_json::to_value(&sar).unwrap();
    assert_eq!(
        v["spec"],
        json!({
            "resourceAttributes": {"namespace": "ns", "verb": "get", "group": "apps", "version": "v1",
                                   "resource": "deployments", "subresource": "scale", "name": "web"},
            "user": "alice", "groups": ["devs", "system:authenticated"],
            "extra": {"empty": [], "scopes": ["a", "b"]}, "uid": "u-1",
        })
    );
    assert_eq!(v["status"], json!({"allowed": false, "denied": true, "reason": "no"}));
    // The same review as JSON reads the same.
    let json_body = serde_json::to_vec(&v).unwrap();
    let again: SubjectAccessReview =
        decode::message(&json_body, BodyFormat::Json, "SubjectAccessReview", "authorization.k8s.io/v1")
            .unwrap();
    assert_eq!(again, sar);
}

#[test]
fn token_reviews_and_user_info() {
    // spec: token (1), audiences (2); status: authenticated (1), user (2), error (3), audiences (4).
    let user = [
        ld(1, "system:serviceaccount:default:builder"),
        ld(2, "u-9"),
        ld(3, "system:serviceaccounts"),
        extra(4, &[("authentication.kubernetes.io/pod-name", &["web-1"])]),
    ]
    .concat();
    let raw = [
        ld(2, [ld(1, "eyJ.x.y"), ld(2, "api")].concat()),
        ld(3, [vi(1, 1), ld(2, user), ld(4, "api")].concat()),
    ]
    .concat();
    let v = decode_message("TokenReview", &body("authentication.k8s.io/v1", "TokenReview", &raw)).unwrap();
    assert_eq!(
        v,
        json!({
            "apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview",
            "spec": {"token": "eyJ.x.y", "audiences": ["api"]},
            "status": {"authenticated": true, "audiences": ["api"], "user": {
                "username": "system:serviceaccount:default:builder", "uid": "u-9", "groups": ["system:serviceaccounts"],
                "extra": {"authentication.kubernetes.io/pod-name": ["web-1"]},
            }},
        })
    );
    let typed: TokenReview = serde_json::from_value(v).unwrap();
    assert!(typed.status.unwrap().authenticated);
}

#[test]
fn review_bodies_of_the_wrong_kind_or_shape_are_refused() {
    let ssar = testdata("selfsubjectaccessreview.pb");
    let err = decode::message::<SubjectAccessReview>(
        &ssar,
        BodyFormat::Protobuf,
        "SubjectAccessReview",
        "authorization.k8s.io/v1",
    )
    .err()
    .unwrap();
    assert!(err.message.contains("does not match the kind of the request"), "{}", err.message);
    let wrong_version =
        br#"{"apiVersion": "authorization.k8s.io/v1beta1", "kind": "SelfSubjectAccessReview", "spec": {}}"#;
    let err = decode::message::<SelfSubjectAccessReview>(
        wrong_version,
        BodyFormat::Json,
        "SelfSubjectAccessReview",
        "authorization.k8s.io/v1",
    )
    .err()
    .unwrap();
    assert!(err.message.contains("does not match the expected API version"), "{}", err.message);
    let unknown = br#"{"spec": {"resourceAttributes": {"verb": "get", "colour": "red"}}}"#;
    let err = decode::message::<SelfSubjectAccessReview>(
        unknown,
        BodyFormat::Json,
        "SelfSubjectAccessReview",
        "authorization.k8s.io/v1",
    )
    .err()
    .unwrap();
    assert!(
        err.message.starts_with(
            "SelfSubjectAccessReview in version \"v1\" cannot be handled as a SelfSubjectAccessReview: "
        ) && err.message.contains("colour"),
        "{}",
        err.message
    );
    let bad_extra = br#"{"spec": {"extra": {"a": "not-a-list"}}}"#;
    assert!(
        decode::message::<SubjectAccessReview>(
            bad_extra,
            BodyFormat::Json,
            "SubjectAccessReview",
            "authorization.k8s.io/v1"
        )
        .is_err()
    );
    // Upstream's ExtraValue has only `items`.
    let raw = ld(2, ld(5, [ld(1, "k"), ld(2, ld(2, "x"))].concat()));
    let err =
        decode_message("SubjectAccessReview", &body("authorization.k8s.io/v1", "SubjectAccessReview", &raw))
            .unwrap_err();
    assert!(err.to_string().contains("unknown field 2 of an ExtraValue"), "{err}");
}
