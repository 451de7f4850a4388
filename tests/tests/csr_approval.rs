//! CertificateSigningRequests' `approval` subresource and Kubernetes' CertificateApproval and
//! CertificateSigning admission against a real etcd + api-server (TLS, RBAC): `kubectl certificate
//! approve` / `deny` (kubectl 1.32 PUTs the request with its condition appended to `.../approval`) and
//! the CONDITION column kubectl prints; `approve` / `sign` on the synthetic `signers` resource (named like
//! the signer, or `<domain>/*`) decide who may approve and who may issue, refused with Kubernetes'
//! messages; an approval takes only the request's conditions; GET, PUT and PATCH on the subresource over
//! REST; gRPC's `UpdateApproval` through the navarch client.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use navarch_api::v1::{CertificateSigningRequest, CertificateSigningRequestCondition};
use navarch_tests::{Kubectl, Rest, TestEnv, eventually};
use serde_json::{Value, json};

/// A new binding is in force once the api-server's RBAC store has it (a watch event away).
const WAIT: Duration = Duration::from_secs(10);
const CLIENT_SIGNER: &str = "kubernetes.io/kube-apiserver-client";
const CSRS: &str = "/apis/certificates.k8s.io/v1/certificatesigningrequests";
const JSON: &str = "application/json";

/// A PEM PKCS#10 request for `CN=<cn>` with a new P-256 key, and a certificate for that key (self-signed:
/// the api-server checks only the shape of what a signer writes).
fn request_and_certificate(cn: &str) -> (String, String) {
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("certificate parameters");
    params.distinguished_name.push(rcgen::DnType::CommonName, cn);
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("a P-256 key");
    let request = params.serialize_request(&key).expect("a request").pem().expect("PEM");
    let certificate = params.self_signed(&key).expect("a certificate").pem();
    (request, certificate)
}

/// Creates the CertificateSigningRequest `name` for `signer` (as the admin, over REST); returns the PEM
/// certificate a signer could issue for it.
async fn create_csr(env: &TestEnv, name: &str, signer: &str) -> String {
    let (request, certificate) = request_and_certificate(name);
    let csr = json!({
        "apiVersion": "certificates.k8s.io/v1",
        "kind": "CertificateSigningRequest",
        "metadata": {"name": name},
        "spec": {"request": BASE64.encode(request), "signerName": signer, "usages": ["client auth"]},
    });
    let (code, body) = env.rest().json("POST", CSRS, JSON, Some(&csr)).await;
    assert_eq!(code, 201, "{body}");
    certificate
}

fn path(name: &str, subresource: &str) -> String {
    if subresource.is_empty() { format!("{CSRS}/{name}") } else { format!("{CSRS}/{name}/{subresource}") }
}

async fn get(rest: &Rest, name: &str) -> Value {
    let (code, body) = rest.json("GET", &path(name, ""), "", None).await;
    assert_eq!(code, 200, "{body}");
    body
}

/// The CONDITION column of `kubectl get csr <name>` (its last).
async fn condition_column(k: &Kubectl, name: &str) -> String {
    let out = k.ok(&["get", "csr", name, "--no-headers"]).await;
    out.split_whitespace().last().unwrap_or_default().to_string()
}

/// PUTs `csr` through `status` with `certificate` (PEM) as its certificate.
async fn issue(rest: &Rest, mut csr: Value, certificate: &str) -> (u16, Value) {
    csr["status"]["certificate"] = json!(BASE64.encode(certificate));
    let name = csr["metadata"]["name"].as_str().unwrap().to_string();
    rest.json("PUT", &path(&name, "status"), JSON, Some(&csr)).await
}

fn approved(mut csr: Value, reason: &str) -> Value {
    let mut conditions = csr["status"]["conditions"].as_array().cloned().unwrap_or_default();
    conditions.push(json!({"type": "Approved", "status": "True", "reason": reason}));
    csr["status"]["conditions"] = json!(conditions);
    csr
}

#[tokio::test(flavor = "multi_thread")]
async fn kubectl_approves_and_denies() {
    let env = TestEnv::start().await;
    let k = Kubectl::new(&env.api_server);
    let certificate = create_csr(&env, "approve-me", CLIENT_SIGNER).await;
    create_csr(&env, "deny-me", CLIENT_SIGNER).await;
    assert_eq!(condition_column(&k, "approve-me").await, "Pending");

    let out = k.ok(&["certificate", "approve", "approve-me"]).await;
    assert_eq!(out, "certificatesigningrequest.certificates.k8s.io/approve-me approved\n");
    assert_eq!(condition_column(&k, "approve-me").await, "Approved");
    let csr = get(&env.rest(), "approve-me").await;
    let condition = &csr["status"]["conditions"][0];
    assert_eq!(
        (&condition["type"], &condition["status"], &condition["reason"]),
        (&json!("Approved"), &json!("True"), &json!("KubectlApprove")),
        "{csr}"
    );
    assert_eq!(condition["message"], "This CSR was approved by kubectl certificate approve.");
    for time in ["lastUpdateTime", "lastTransitionTime"] {
        assert!(condition[time].as_str().is_some_and(|t| t.ends_with('Z')), "{time}: {csr}");
    }
    let entries = csr["metadata"]["managedFields"].as_array().unwrap();
    let approval = entries.iter().find(|e| e["subresource"] == "approval").unwrap_or_else(|| panic!("{csr}"));
    assert_eq!((&approval["manager"], &approval["operation"]), (&json!("kubectl"), &json!("Update")));
    assert!(approval["fieldsV1"]["f:status"].get("f:conditions").is_some(), "{approval}");

    // Approving again changes nothing; a signer's certificate shows as Issued.
    let rv = csr["metadata"]["resourceVersion"].clone();
    k.ok(&["certificate", "approve", "approve-me"]).await;
    assert_eq!(get(&env.rest(), "approve-me").await["metadata"]["resourceVersion"], rv);
    let (code, issued) = issue(&env.rest(), csr, &certificate).await;
    assert_eq!(code, 200, "{issued}");
    assert_eq!(condition_column(&k, "approve-me").await, "Approved,Issued");

    let out = k.ok(&["certificate", "deny", "deny-me"]).await;
    assert_eq!(out, "certificatesigningrequest.certificates.k8s.io/deny-me denied\n");
    assert_eq!(condition_column(&k, "deny-me").await, "Denied");
    // kubectl refuses to approve a denied request itself; the api-server refuses it as well.
    let out = k.fails(&["certificate", "approve", "deny-me"]).await;
    assert!(out.stderr.contains(r#""deny-me" is already Denied"#), "{out:?}");
    let denied = get(&env.rest(), "deny-me").await;
    let (code, refused) =
        env.rest().json("PUT", &path("deny-me", "approval"), JSON, Some(&approved(denied, "Both"))).await;
    assert_eq!(code, 422, "{refused}");
    assert_eq!(
        refused["message"],
        r#"CertificateSigningRequest.certificates.k8s.io "deny-me" is invalid: status.conditions[1].type: Invalid value: "Approved": Approved and Denied conditions are mutually exclusive"#
    );
}

/// Users allowed to read CSRs and write their `approval` and `status`; `carol` also approves and signs for
/// every `kubernetes.io` signer.
const POLICY: &str = "apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: csr-writer}
rules:
- apiGroups: [certificates.k8s.io]
  resources: [certificatesigningrequests]
  verbs: [get, list, watch]
- apiGroups: [certificates.k8s.io]
  resources: [certificatesigningrequests/approval, certificatesigningrequests/status]
  verbs: [update, patch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: kubernetes-io-signer}
rules:
- apiGroups: [certificates.k8s.io]
  resources: [signers]
  resourceNames: ['kubernetes.io/*']
  verbs: [approve, sign]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: csr-writers}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: csr-writer}
subjects:
- {apiGroup: rbac.authorization.k8s.io, kind: User, name: bob}
- {apiGroup: rbac.authorization.k8s.io, kind: User, name: carol}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: kubernetes-io-signers}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: kubernetes-io-signer}
subjects:
- {apiGroup: rbac.authorization.k8s.io, kind: User, name: carol}
";

/// Whether `rest`'s user may `verb` the `signers` named `name` (a SelfSubjectAccessReview).
async fn may(rest: &Rest, verb: &str, resource: &str, subresource: &str, name: &str) -> bool {
    let review = json!({
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SelfSubjectAccessReview",
        "spec": {"resourceAttributes": {
            "group": "certificates.k8s.io", "resource": resource, "subresource": subresource,
            "verb": verb, "name": name,
        }},
    });
    let ssar = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews";
    let (code, answer) = rest.json("POST", ssar, JSON, Some(&review)).await;
    code == 201 && answer["status"]["allowed"] == true
}

/// Applies [`POLICY`] and waits until it is in force.
async fn with_policy(env: &TestEnv) -> (Rest, Rest) {
    let out = Kubectl::new(&env.api_server).apply(POLICY, &[]).await;
    assert_eq!(out.code, 0, "{out:?}");
    let bob = env.rest_as(&env.pki().user("bob", &[]));
    let carol = env.rest_as(&env.pki().user("carol", &[]));
    eventually("the CSR policy is in force", WAIT, async || {
        may(&bob, "update", "certificatesigningrequests", "approval", "").await
            && may(&carol, "approve", "signers", "", "kubernetes.io/*").await
    })
    .await;
    (bob, carol)
}

#[tokio::test(flavor = "multi_thread")]
async fn approving_and_signing_are_permissions_on_the_signer() {
    let env = TestEnv::start().await;
    let certificate = create_csr(&env, "c1", CLIENT_SIGNER).await;
    create_csr(&env, "other-domain", "example.com/signer").await;
    let (bob_rest, carol_rest) = with_policy(&env).await;
    let bob = Kubectl::as_user(&env.api_server, "bob", &[]);
    let carol = Kubectl::as_user(&env.api_server, "carol", &[]);
    assert!(!may(&bob_rest, "approve", "signers", "", CLIENT_SIGNER).await);

    // bob may write the subresource, not approve for the signer.
    let out = bob.fails(&["certificate", "approve", "c1"]).await;
    assert!(
        out.stderr.contains(r#"Error from server (Forbidden): certificatesigningrequests.certificates.k8s.io "c1" is forbidden: user not permitted to approve requests with signerName "kubernetes.io/kube-apiserver-client""#),
        "{out:?}"
    );
    let (code, refused) = bob_rest
        .json("PUT", &path("c1", "approval"), JSON, Some(&approved(get(&bob_rest, "c1").await, "Bob")))
        .await;
    assert_eq!((code, &refused["reason"]), (403, &json!("Forbidden")), "{refused}");
    assert!(get(&env.rest(), "c1").await["status"].get("conditions").is_none(), "nothing was written");

    // carol approves for `kubernetes.io/*`, not for another domain.
    let out = carol.ok(&["certificate", "approve", "c1"]).await;
    assert_eq!(out, "certificatesigningrequest.certificates.k8s.io/c1 approved\n");
    let out = carol.fails(&["certificate", "approve", "other-domain"]).await;
    assert!(
        out.stderr.contains(r#"user not permitted to approve requests with signerName "example.com/signer""#),
        "{out:?}"
    );

    // Issuing is `sign`'s: bob's certificate is refused, carol's taken.
    let csr = get(&env.rest(), "c1").await;
    let (code, refused) = issue(&bob_rest, csr.clone(), &certificate).await;
    assert_eq!(code, 403, "{refused}");
    assert_eq!(
        refused["message"],
        r#"certificatesigningrequests.certificates.k8s.io "c1" is forbidden: user not permitted to sign requests with signerName "kubernetes.io/kube-apiserver-client""#
    );
    let mut failed = csr.clone();
    failed["status"]["conditions"].as_array_mut().unwrap().push(json!({"type": "Failed", "status": "True"}));
    let (code, refused) = bob_rest.json("PUT", &path("c1", "status"), JSON, Some(&failed)).await;
    assert_eq!(code, 403, "conditions written through status are the signer's too: {refused}");
    let (code, issued) = issue(&carol_rest, csr, &certificate).await;
    assert_eq!(code, 200, "{issued}");
    assert_eq!(condition_column(&Kubectl::new(&env.api_server), "c1").await, "Approved,Issued");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_subresource_over_rest_takes_only_the_conditions() {
    let env = TestEnv::start().await;
    let rest = env.rest();
    create_csr(&env, "c2", CLIENT_SIGNER).await;
    let stored = get(&rest, "c2").await;
    let (code, through_get) = rest.json("GET", &path("c2", "approval"), "", None).await;
    assert_eq!((code, &through_get), (200, &stored));

    // A PUT that also changes the spec and sets a certificate: only the conditions are taken.
    let mut changed = approved(stored.clone(), "ByHand");
    changed["spec"]["usages"] = json!(["server auth"]);
    changed["spec"]["signerName"] = json!("example.com/other");
    changed["status"]["certificate"] = json!(BASE64.encode("not a certificate"));
    let (code, written) = rest.json("PUT", &path("c2", "approval"), JSON, Some(&changed)).await;
    assert_eq!(code, 200, "{written}");
    assert_eq!(written["spec"], stored["spec"]);
    assert!(written["status"].get("certificate").is_none(), "{written}");
    assert_eq!(written["status"]["conditions"][0]["reason"], "ByHand");
    assert_eq!(get(&rest, "c2").await, written);

    // A merge patch through the subresource; server-side apply is not served on it.
    let patch = json!({"status": {"conditions": [
        {"type": "Approved", "status": "True", "reason": "ByHand"},
        {"type": "Example", "status": "False", "reason": "Patched"},
    ]}});
    let (code, patched) =
        rest.json("PATCH", &path("c2", "approval"), "application/merge-patch+json", Some(&patch)).await;
    assert_eq!(code, 200, "{patched}");
    assert_eq!(patched["status"]["conditions"][1]["reason"], "Patched");
    let (code, _) =
        rest.json("PATCH", &path("c2", "approval"), "application/apply-patch+yaml", Some(&patch)).await;
    assert_eq!(code, 415);

    // Through the object the conditions stay as stored.
    let mut denied = patched.clone();
    denied["status"]["conditions"] = json!([{"type": "Denied", "status": "True"}]);
    let (code, kept) = rest.json("PUT", &path("c2", ""), JSON, Some(&denied)).await;
    assert_eq!((code, &kept["status"]), (200, &patched["status"]), "{kept}");

    // Other methods, and other kinds.
    let (code, _) = rest.json("DELETE", &path("c2", "approval"), "", None).await;
    assert_eq!(code, 405);
    let (code, _) = rest.json("GET", "/api/v1/namespaces/default/configmaps/x/approval", "", None).await;
    assert_eq!(code, 404);
    let (code, _) =
        rest.json("PUT", "/api/v1/namespaces/default/pods/x/approval", JSON, Some(&json!({}))).await;
    assert_eq!(code, 404);
}

#[tokio::test(flavor = "multi_thread")]
async fn grpc_update_approval() {
    let env = TestEnv::start().await;
    create_csr(&env, "c3", CLIENT_SIGNER).await;
    let admin = env.client().await;
    let csrs = admin.api::<CertificateSigningRequest>("");
    let approve = |mut csr: CertificateSigningRequest| {
        csr.status.get_or_insert_with(Default::default).conditions.push(CertificateSigningRequestCondition {
            r#type: "Approved".into(),
            status: "True".into(),
            reason: "NavarchClient".into(),
            ..Default::default()
        });
        csr
    };

    // A plain update does not approve; UpdateApproval does.
    let stored = csrs.get("c3").await.unwrap();
    let updated = csrs.update(&approve(stored.clone())).await.unwrap();
    assert!(updated.status.is_none_or(|s| s.conditions.is_empty()));
    let written = csrs.update_approval(&approve(csrs.get("c3").await.unwrap())).await.unwrap();
    let conditions = written.status.unwrap().conditions;
    assert_eq!((conditions[0].r#type.as_str(), conditions[0].reason.as_str()), ("Approved", "NavarchClient"));
    assert!(!conditions[0].last_update_time.is_empty());

    // bob may write the subresource, not approve for the signer: PERMISSION_DENIED.
    with_policy(&env).await;
    create_csr(&env, "c4", CLIENT_SIGNER).await;
    let bob = env.client_as(&env.pki().user("bob", &[])).await;
    let bobs = bob.api::<CertificateSigningRequest>("");
    let err = bobs.update_approval(&approve(bobs.get("c4").await.unwrap())).await.unwrap_err();
    match err {
        navarch_client::Error::Api { code, message } => {
            assert_eq!(code, tonic::Code::PermissionDenied);
            assert!(message.ends_with(r#"user not permitted to approve requests with signerName "kubernetes.io/kube-apiserver-client""#), "{message}");
        }
        e => panic!("{e:?}"),
    }

    // Only CertificateSigningRequests have the subresource.
    let cm = navarch_api::Object::ConfigMap(
        serde_yaml::from_str("{metadata: {name: x, namespace: default}}").unwrap(),
    );
    admin.create(&cm).await.unwrap();
    let err = admin.update_approval(&cm).await.unwrap_err();
    assert!(
        matches!(&err, navarch_client::Error::Invalid(m) if m.contains("only certificatesigningrequests have the approval subresource")),
        "{err:?}"
    );
}
