//! The review kinds and ServiceAccount tokens through the real kubectl (1.32), raw REST, navctl and the
//! gRPC client, against a real etcd + api-server: `auth can-i` (yes / no and its exit status, `--list`
//! as kubectl's table, `--as`), `auth whoami`, SubjectAccessReviews for another user, Kubernetes'
//! validation errors, `create token` and the token used alone (a kubeconfig with only it and the CA),
//! TokenReviews of good, forged and unknown tokens, tokens bound to a pod dying with it, and discovery
//! of the review resources and `serviceaccounts/token`.

use std::time::Duration;

use navarch_api::v1::{
    ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec, TokenRequest, TokenRequestSpec,
};
use navarch_tests::{ApiServer, Etcd, Kubectl, TestEnv, eventually};
use serde_json::{Value, json};

/// The api-server's audience (its issuer, the default).
const AUDIENCE: &str = "https://kubernetes.default.svc.cluster.local";
/// A new binding is in force once the api-server's RBAC index has it (a watch event away).
const WAIT: Duration = Duration::from_secs(10);

/// etcd and an api-server that signs and accepts ServiceAccount tokens.
async fn token_env() -> TestEnv {
    let etcd = Etcd::start().await;
    let pki = etcd.pki().clone();
    let file = |f: &str| pki.path(f).display().to_string();
    let args = [
        format!("--service-account-signing-key-file={}", file("sa.key")),
        format!("--service-account-key-file={}", file("sa.pub")),
    ];
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let api_server = ApiServer::start_with(&etcd, &args).await;
    TestEnv { api_server, etcd }
}

/// A kubeconfig with nothing but the cluster CA and `token`.
fn token_kubeconfig(env: &TestEnv, token: &str) -> String {
    let ca = env.pki().path("ca.crt").display().to_string();
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: navarch\n  cluster:\n    server: {}\n    certificate-authority: {ca}\n\
         users:\n- name: token\n  user:\n    token: {token}\ncontexts:\n- name: token\n  context:\n    cluster: navarch\n    user: token\n    namespace: default\n\
         current-context: token\n",
        env.api_server_url()
    )
}

/// The lines of a table, split into cells (two or more spaces apart).
fn table(out: &str) -> Vec<Vec<String>> {
    out.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.split("  ").map(str::trim).filter(|c| !c.is_empty()).map(String::from).collect())
        .collect()
}

/// The value of `attribute` in `auth whoami`'s table.
fn attribute(out: &str, attribute: &str) -> String {
    let line =
        out.lines().find(|l| l.starts_with(&format!("{attribute} "))).unwrap_or_else(|| panic!("{out}"));
    line[attribute.len()..].trim().to_string()
}

async fn post(env: &TestEnv, stem: &str, path: &str, body: Value) -> (u16, Value) {
    env.rest_as(stem).json("POST", path, "application/json", Some(&body)).await
}

const SAR: &str = "/apis/authorization.k8s.io/v1/subjectaccessreviews";
const SSAR: &str = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews";
const TOKEN_REVIEWS: &str = "/apis/authentication.k8s.io/v1/tokenreviews";

fn sar(user: &str, verb: &str, resource: &str, namespace: &str) -> Value {
    json!({
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SubjectAccessReview",
        "spec": {"user": user, "resourceAttributes": {"verb": verb, "resource": resource, "namespace": namespace}},
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn can_i_whoami_and_access_reviews() {
    let env = TestEnv::start().await;
    let admin = Kubectl::new(&env.api_server);
    let alice = Kubectl::as_user(&env.api_server, "alice", &["devs"]);

    // The admin may do anything; kubectl sends these reviews as Kubernetes protobuf.
    assert_eq!(admin.ok(&["auth", "can-i", "create", "pods"]).await, "yes\n");
    assert_eq!(admin.ok(&["auth", "can-i", "*", "*", "--all-namespaces"]).await, "yes\n");
    assert_eq!(admin.ok(&["auth", "can-i", "get", "/healthz"]).await, "yes\n");
    let out = admin.ok(&["auth", "can-i", "list", "nodes"]).await;
    assert_eq!(out, "yes\n");
    let list = admin.ok(&["auth", "can-i", "--list"]).await;
    let rows = table(&list);
    assert_eq!(rows[0], ["Resources", "Non-Resource URLs", "Resource Names", "Verbs"]);
    assert!(rows.iter().any(|r| r == &["*.*", "[]", "[]", "[*]"]), "{list}");
    assert!(rows.iter().any(|r| r == &["[*]", "[]", "[*]"]), "the non-resource row: {list}");

    // A user without bindings: `no` and exit status 1; what the default policy gives every user.
    let out = alice.run(&["auth", "can-i", "create", "pods"]).await;
    assert_eq!((out.code, out.stdout.as_str()), (1, "no\n"), "{out:?}");
    let out = alice.run(&["auth", "can-i", "create", "pods", "-q"]).await;
    assert_eq!((out.code, out.stdout.as_str()), (1, ""), "{out:?}");
    let list = alice.ok(&["auth", "can-i", "--list"]).await;
    let rows = table(&list);
    assert!(
        rows.iter().any(|r| r == &["selfsubjectaccessreviews.authorization.k8s.io", "[]", "[]", "[create]"]),
        "{list}"
    );
    assert!(!rows.iter().any(|r| r[0] == "*.*"), "{list}");
    let out = alice.ok(&["auth", "whoami"]).await;
    assert!(out.starts_with("ATTRIBUTE "), "{out}");
    assert_eq!(attribute(&out, "Username"), "alice");
    assert_eq!(attribute(&out, "Groups"), "[devs system:authenticated]");
    let out = admin.ok(&["auth", "whoami"]).await;
    assert_eq!(attribute(&out, "Username"), "kubernetes-admin");
    assert_eq!(attribute(&out, "Groups"), "[navarch:cluster-admins system:authenticated]");
    let whoami: Value = serde_json::from_str(&alice.ok(&["auth", "whoami", "-o", "json"]).await).unwrap();
    assert_eq!(whoami["kind"], "SelfSubjectReview");
    assert_eq!(whoami["status"]["userInfo"]["username"], "alice");

    // Another user's permissions: a SubjectAccessReview (the admin may create them, alice may not).
    let (code, answer) = post(&env, "admin", SAR, sar("alice", "list", "pods", "dev")).await;
    assert_eq!(code, 201, "{answer}");
    assert_eq!(answer["status"], json!({"allowed": false}));
    assert_eq!(answer["metadata"], json!({"creationTimestamp": null}));
    assert_eq!(answer["spec"]["user"], "alice");
    admin.ok(&["create", "namespace", "dev"]).await;
    admin
        .ok(&["create", "rolebinding", "alice-view", "--clusterrole=view", "--user=alice", "-n", "dev"])
        .await;
    let (_, answer) = eventually("alice's binding in force", WAIT, async || {
        let (code, answer) = post(&env, "admin", SAR, sar("alice", "list", "pods", "dev")).await;
        (answer["status"]["allowed"] == true).then_some((code, answer))
    })
    .await;
    assert_eq!(
        answer["status"]["reason"],
        r#"RBAC: allowed by RoleBinding "alice-view/dev" of ClusterRole "view" to User "alice""#
    );
    assert_eq!(alice.ok(&["auth", "can-i", "list", "pods", "-n", "dev"]).await, "yes\n");
    assert_eq!(alice.run(&["auth", "can-i", "delete", "pods", "-n", "dev"]).await.stdout, "no\n");
    let alice_stem = env.pki().user("alice", &["devs"]);
    let (code, answer) = post(&env, &alice_stem, SAR, sar("bob", "get", "pods", "dev")).await;
    assert_eq!(code, 403, "{answer}");
    assert_eq!(
        answer["message"],
        r#"subjectaccessreviews.authorization.k8s.io is forbidden: User "alice" cannot create resource "subjectaccessreviews" in API group "authorization.k8s.io" at the cluster scope"#
    );

    // kubectl create -f of a review prints what the server answered.
    let file = admin.write("sar.json", &sar("alice", "get", "pods", "dev").to_string());
    let out = admin.ok(&["create", "-f", file.to_str().unwrap(), "--validate=false", "-o", "json"]).await;
    let created: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(created["status"]["allowed"], true, "{out}");

    // A namespace's own review; Kubernetes' refusals.
    let local = json!({
        "kind": "LocalSubjectAccessReview", "apiVersion": "authorization.k8s.io/v1",
        "spec": {"user": "alice", "resourceAttributes": {"verb": "get", "resource": "pods", "namespace": "dev"}},
    });
    let path = "/apis/authorization.k8s.io/v1/namespaces/dev/localsubjectaccessreviews";
    let (code, answer) = post(&env, "admin", path, local.clone()).await;
    assert_eq!(
        (code, &answer["status"]["allowed"], &answer["metadata"]["namespace"]),
        (201, &json!(true), &json!("dev"))
    );
    let other = "/apis/authorization.k8s.io/v1/namespaces/default/localsubjectaccessreviews";
    let (code, answer) = post(&env, "admin", other, local).await;
    assert_eq!(code, 422, "{answer}");
    assert_eq!(
        answer["message"],
        r#"LocalSubjectAccessReview.authorization.k8s.io "" is invalid: spec.resourceAttributes.namespace: Invalid value: "dev": must match metadata.namespace"#
    );
    let (code, answer) = post(&env, "admin", SSAR, json!({"spec": {}})).await;
    assert_eq!(code, 422, "{answer}");
    assert_eq!(answer["reason"], "Invalid");
    assert_eq!(
        answer["message"],
        r#"SelfSubjectAccessReview.authorization.k8s.io "" is invalid: spec.resourceAttributes: Invalid value: "null": exactly one of nonResourceAttributes or resourceAttributes must be specified"#
    );
    assert_eq!(answer["details"]["causes"][0]["field"], "spec.resourceAttributes");
    let both = json!({"spec": {"resourceAttributes": {"verb": "get"}, "nonResourceAttributes": {"path": "/x", "verb": "get"}}});
    let (code, answer) = post(&env, "admin", SSAR, both).await;
    assert_eq!(code, 422, "{answer}");
    assert!(
        answer["message"]
            .as_str()
            .unwrap()
            .ends_with("cannot be specified in combination with resourceAttributes")
    );
    let (code, answer) =
        post(&env, "admin", SAR, json!({"spec": {"resourceAttributes": {"verb": "get"}}})).await;
    assert_eq!(code, 422);
    assert!(answer["message"].as_str().unwrap().ends_with("at least one of user or group must be specified"));
    let (code, _) = env.rest().json("GET", SSAR, "", None).await;
    assert_eq!(code, 405);

    // Discovery: the review kinds with only `create`, and the token subresource.
    let out = admin.ok(&["api-resources", "--api-group=authorization.k8s.io", "-o", "wide"]).await;
    let rows = table(&out);
    let row = rows.iter().find(|r| r[0] == "selfsubjectaccessreviews").unwrap_or_else(|| panic!("{out}"));
    assert_eq!(row[1..], ["authorization.k8s.io/v1", "false", "SelfSubjectAccessReview", "create"]);
    let row = rows.iter().find(|r| r[0] == "localsubjectaccessreviews").unwrap_or_else(|| panic!("{out}"));
    assert_eq!(row[2], "true");
    let (_, core) = env.rest().json("GET", "/api/v1", "", None).await;
    let token = core["resources"].as_array().unwrap().iter().find(|r| r["name"] == "serviceaccounts/token");
    assert_eq!(token.unwrap()["kind"], "TokenRequest");

    // navctl and the gRPC client ask the same questions.
    let (code, out, err) = env.navctl(&["auth", "can-i", "create", "pods"]).await;
    assert_eq!((code, out.as_str()), (0, "yes\n"), "{err}");
    let (code, out, err) = env.navctl(&["auth", "can-i", "list", "nodes"]).await;
    assert_eq!((code, out.as_str()), (0, "yes\n"), "{err}");
    assert_eq!(err, "Warning: resource 'nodes' is not namespace scoped\n\n");
    let (code, out, _) = env.navctl(&["auth", "can-i", "--list"]).await;
    assert_eq!(code, 0);
    assert!(table(&out).iter().any(|r| r == &["*.*", "[]", "[]", "[*]"]), "{out}");
    let (code, out, _) = env.navctl(&["auth", "whoami"]).await;
    assert_eq!((code, attribute(&out, "Username")), (0, "kubernetes-admin".to_string()));
    let client = env.client().await;
    let review = SubjectAccessReview {
        spec: Some(SubjectAccessReviewSpec {
            user: "alice".into(),
            resource_attributes: Some(ResourceAttributes {
                verb: "delete".into(),
                resource: "pods".into(),
                namespace: "dev".into(),
                ..ResourceAttributes::default()
            }),
            ..SubjectAccessReviewSpec::default()
        }),
        ..SubjectAccessReview::default()
    };
    let answer = client.review(&review).await.unwrap();
    assert!(!answer.status.unwrap().allowed);
    let alice_client = env.client_as(&alice_stem).await;
    let e = alice_client.review(&review).await.unwrap_err();
    assert!(e.to_string().contains("cannot create resource \"subjectaccessreviews\""), "{e}");
}

#[tokio::test(flavor = "multi_thread")]
async fn impersonation_answers_for_someone_else() {
    let env = TestEnv::start().await;
    let admin = Kubectl::new(&env.api_server);
    let out = admin.run(&["auth", "can-i", "create", "pods", "--as", "alice"]).await;
    assert_eq!((out.code, out.stdout.as_str()), (1, "no\n"), "{out:?}");
    let out = admin
        .ok(&["auth", "can-i", "create", "pods", "--as", "alice", "--as-group", "navarch:cluster-admins"])
        .await;
    assert_eq!(out, "yes\n");
    let out = admin.ok(&["auth", "whoami", "--as", "alice", "--as-group", "devs"]).await;
    assert_eq!(attribute(&out, "Username"), "alice");
    assert_eq!(attribute(&out, "Groups"), "[devs system:authenticated]");
    let (code, out, err) = env.navctl(&["--as", "alice", "auth", "can-i", "create", "pods"]).await;
    assert_eq!((code, out.as_str()), (1, "no\n"), "{err}");
    let (code, out, err) = env.navctl(&["auth", "whoami", "--as", "alice", "--as-group", "devs"]).await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(attribute(&out, "Groups"), "[devs system:authenticated]");
    let (code, _, err) = env.navctl(&["auth", "whoami", "--as-group", "devs"]).await;
    assert_eq!(code, 1);
    assert!(err.contains("without impersonating a user"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn tokens_are_issued_reviewed_and_used() {
    let env = token_env().await;
    let admin = Kubectl::new(&env.api_server);
    admin.ok(&["create", "serviceaccount", "default"]).await;
    let sa_uid = admin.ok(&["get", "serviceaccount", "default", "-o", "jsonpath={.metadata.uid}"]).await;

    // `create token` prints the bare token (no newline: not a terminal).
    let token = admin.ok(&["create", "token", "default"]).await;
    assert!(!token.is_empty() && !token.ends_with('\n') && token.split('.').count() == 3, "{token:?}");
    let as_sa = Kubectl::with_kubeconfig(&token_kubeconfig(&env, &token));
    let out = as_sa.ok(&["auth", "whoami"]).await;
    assert_eq!(attribute(&out, "Username"), "system:serviceaccount:default:default");
    assert_eq!(attribute(&out, "UID"), sa_uid);
    assert_eq!(
        attribute(&out, "Groups"),
        "[system:serviceaccounts system:serviceaccounts:default system:authenticated]"
    );
    assert!(
        attribute(&out, "Extra: authentication.kubernetes.io/credential-id").starts_with("[JTI="),
        "{out}"
    );
    let out = as_sa.run(&["auth", "can-i", "list", "secrets"]).await;
    assert_eq!((out.code, out.stdout.as_str()), (1, "no\n"), "{out:?}");

    // TokenReview: the good token, a forged one (another signature), an unknown one.
    let review = |t: &str| json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": {"token": t}});
    let (code, answer) = post(&env, "admin", TOKEN_REVIEWS, review(&token)).await;
    assert_eq!(code, 201, "{answer}");
    let status = &answer["status"];
    assert_eq!(status["authenticated"], true, "{answer}");
    assert_eq!(status["user"]["username"], "system:serviceaccount:default:default");
    assert_eq!(status["user"]["uid"], sa_uid.as_str());
    assert_eq!(status["audiences"], json!([AUDIENCE]));
    let mut forged = token.clone();
    let last = forged.pop().unwrap();
    forged.push(if last == 'A' { 'B' } else { 'A' });
    let (code, answer) = post(&env, "admin", TOKEN_REVIEWS, review(&forged)).await;
    assert_eq!(code, 201);
    assert_eq!(answer["status"]["authenticated"], Value::Null, "{answer}");
    assert_eq!(answer["status"]["user"], json!({}));
    assert!(!answer["status"]["error"].as_str().unwrap_or("").is_empty(), "{answer}");
    let (_, answer) = post(&env, "admin", TOKEN_REVIEWS, review("not-a-token")).await;
    assert_eq!(answer["status"]["error"], "invalid bearer token");
    let (code, answer) = post(&env, "admin", TOKEN_REVIEWS, json!({"spec": {"audiences": ["x"]}})).await;
    assert_eq!(
        (code, &answer["message"]),
        (400, &json!("token is required for TokenReview in authentication"))
    );
    let (_, answer) =
        post(&env, "admin", TOKEN_REVIEWS, json!({"spec": {"token": token, "audiences": ["other"]}})).await;
    assert_ne!(answer["status"]["authenticated"], true, "{answer}");
    let out = Kubectl::with_kubeconfig(&token_kubeconfig(&env, &forged)).fails(&["auth", "whoami"]).await;
    assert!(out.stderr.contains("Unauthorized"), "{out:?}");

    // The TokenRequest as Kubernetes answers it.
    let path = "/api/v1/namespaces/default/serviceaccounts/default/token";
    let (code, answer) = post(&env, "admin", path, json!({"spec": {"expirationSeconds": 7200}})).await;
    assert_eq!(code, 201, "{answer}");
    assert_eq!(answer["kind"], "TokenRequest");
    assert_eq!(answer["apiVersion"], "authentication.k8s.io/v1");
    assert_eq!(
        (&answer["metadata"]["name"], &answer["metadata"]["namespace"]),
        (&json!("default"), &json!("default"))
    );
    assert!(answer["metadata"]["creationTimestamp"].is_string());
    assert_eq!(answer["spec"], json!({"audiences": [AUDIENCE], "expirationSeconds": 7200}));
    assert!(answer["status"]["token"].as_str().is_some_and(|t| t.len() > 100));
    assert!(answer["status"]["expirationTimestamp"].as_str().is_some_and(|t| t.ends_with('Z')));
    let out = admin.fails(&["create", "token", "default", "--duration", "5m"]).await;
    assert_eq!(
        out.stderr,
        "error: failed to create token: TokenRequest.authentication.k8s.io \"\" is invalid: spec.expirationSeconds: Invalid value: 300: may not specify a duration less than 10 minutes\n"
    );
    let out = admin.fails(&["create", "token", "nope"]).await;
    assert_eq!(out.stderr, "error: failed to create token: serviceaccounts \"nope\" not found\n");

    // A token bound to a pod names it, and dies with it.
    let pod = "apiVersion: v1\nkind: Pod\nmetadata: {name: web}\nspec:\n  serviceAccountName: default\n  containers: [{name: c, image: busybox}]\n";
    let out = admin.apply(pod, &[]).await;
    assert_eq!(out.code, 0, "{out:?}");
    let bound = admin
        .ok(&["create", "token", "default", "--bound-object-kind", "Pod", "--bound-object-name", "web"])
        .await;
    let as_pod = Kubectl::with_kubeconfig(&token_kubeconfig(&env, &bound));
    let out = as_pod.ok(&["auth", "whoami"]).await;
    assert_eq!(attribute(&out, "Extra: authentication.kubernetes.io/pod-name"), "[web]");
    let out = admin
        .fails(&["create", "token", "default", "--bound-object-kind", "Pod", "--bound-object-name", "gone"])
        .await;
    assert_eq!(out.stderr, "error: failed to create token: pods \"gone\" not found\n");
    admin.ok(&["delete", "pod", "web", "--grace-period=0", "--force"]).await;
    eventually("the pod-bound token refused", WAIT, async || {
        let out = as_pod.run(&["auth", "whoami"]).await;
        (out.code != 0 && out.stderr.contains("Unauthorized")).then_some(())
    })
    .await;

    // navctl and the gRPC client.
    let (code, navctl_token, err) = env.navctl(&["create", "token", "default", "--audience", "vault"]).await;
    assert_eq!(code, 0, "{err}");
    let (_, answer) =
        post(&env, "admin", TOKEN_REVIEWS, json!({"spec": {"token": navctl_token, "audiences": ["vault"]}}))
            .await;
    assert_eq!(answer["status"]["authenticated"], true, "{answer}");
    assert_eq!(answer["status"]["audiences"], json!(["vault"]));
    let (code, _, err) = env.navctl(&["create", "token", "default", "--duration", "5m"]).await;
    assert_eq!(code, 1);
    assert!(err.contains("may not specify a duration less than 10 minutes"), "{err}");
    let client = env.client().await;
    let request = TokenRequest {
        spec: Some(TokenRequestSpec { expiration_seconds: Some(1200), ..TokenRequestSpec::default() }),
        ..TokenRequest::default()
    };
    let answer = client.create_token("default", "default", &request).await.unwrap();
    assert_eq!(answer.spec.as_ref().unwrap().audiences, [AUDIENCE]);
    assert_eq!(answer.spec.as_ref().unwrap().expiration_seconds, Some(1200));
    let issued = answer.status.unwrap();
    assert!(!issued.token.is_empty() && issued.expiration_timestamp.ends_with('Z'));
    let e = client.create_token("default", "nope", &request).await.unwrap_err();
    assert!(matches!(e, navarch_client::Error::NotFound(_)), "{e}");
}
