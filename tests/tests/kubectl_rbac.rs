//! The security kinds through the real kubectl (1.32) against a real etcd + api-server: Roles,
//! ClusterRoles and their bindings made with `kubectl create` (protobuf bodies), printed by `get` (`-o
//! wide`, `-o yaml`), refused with Kubernetes' messages (an invalid binding, a changed roleRef), applied
//! from manifests; CertificateSigningRequests created from a manifest, printed, selected by signer and
//! refused when their request is not a signed PEM request; discovery, OpenAPI (`explain`) and navctl for
//! them; and the controller-manager aggregating ClusterRoles.

use std::time::Duration;

use navarch_tests::{Daemon, Kubectl, TestEnv, eventually, workspace_root};
use serde_json::{Value, json};

/// How long the controller-manager may take to bring an aggregated ClusterRole up to date.
const WAIT: Duration = Duration::from_secs(30);

async fn start() -> (TestEnv, Kubectl) {
    let env = TestEnv::start().await;
    let k = Kubectl::new(&env.api_server);
    (env, k)
}

/// The lines of a table, split into cells (two or more spaces apart).
fn table(out: &str) -> Vec<Vec<String>> {
    out.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.split("  ").map(str::trim).filter(|c| !c.is_empty()).map(String::from).collect())
        .collect()
}

/// The row of `name` in a table.
fn row<'a>(rows: &'a [Vec<String>], name: &str) -> &'a [String] {
    rows.iter()
        .find(|r| r.first().is_some_and(|n| n == name))
        .unwrap_or_else(|| panic!("no row {name}: {rows:?}"))
}

async fn json_of(k: &Kubectl, args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.extend(["-o", "json"]);
    serde_json::from_str(&k.ok(&all).await).unwrap()
}

#[tokio::test]
async fn create_get_and_refusals_of_roles_and_bindings() {
    let (_env, k) = start().await;
    let created = |what: &str| format!("{what} created\n");
    // kubectl's typed client sends these as Kubernetes protobuf.
    let out = k.ok(&["create", "role", "pod-reader", "--verb=get,list", "--resource=pods"]).await;
    assert_eq!(out, created("role.rbac.authorization.k8s.io/pod-reader"));
    let out = k
        .ok(&[
            "create",
            "clusterrole",
            "web-watcher",
            "--verb=get,watch",
            "--resource=deployments.apps",
            "--resource-name=web",
        ])
        .await;
    assert_eq!(out, created("clusterrole.rbac.authorization.k8s.io/web-watcher"));
    let out = k.ok(&["create", "clusterrole", "healthz", "--verb=get", "--non-resource-url=/healthz"]).await;
    assert_eq!(out, created("clusterrole.rbac.authorization.k8s.io/healthz"));
    let out = k
        .ok(&[
            "create",
            "rolebinding",
            "read-pods",
            "--role=pod-reader",
            "--user=alice",
            "--serviceaccount=default:sa",
        ])
        .await;
    assert_eq!(out, created("rolebinding.rbac.authorization.k8s.io/read-pods"));
    let out =
        k.ok(&["create", "clusterrolebinding", "devs-view", "--clusterrole=view", "--group=devs"]).await;
    assert_eq!(out, created("clusterrolebinding.rbac.authorization.k8s.io/devs-view"));

    // Tables, as kubectl prints the api-server's: roles have only a creation time, bindings their role
    // and, wide, their subjects.
    let out = k.ok(&["get", "roles,rolebindings", "-o", "wide"]).await;
    let rows = table(&out);
    assert_eq!(rows[0], ["NAME", "CREATED AT"], "{out}");
    let reader = row(&rows, "role.rbac.authorization.k8s.io/pod-reader");
    assert!(reader[1].ends_with('Z') && reader[1].contains('T'), "an RFC 3339 time: {out}");
    assert!(
        rows.iter().any(|r| r == &["NAME", "ROLE", "AGE", "USERS", "GROUPS", "SERVICEACCOUNTS"]),
        "{out}"
    );
    let binding = row(&rows, "rolebinding.rbac.authorization.k8s.io/read-pods");
    assert_eq!(binding[1], "Role/pod-reader", "{out}");
    assert_eq!(binding[3..], ["alice", "default/sa"], "{out}");
    let out = k.ok(&["get", "clusterrolebinding", "devs-view", "-o", "wide"]).await;
    let rows = table(&out);
    assert_eq!(rows[0], ["NAME", "ROLE", "AGE", "USERS", "GROUPS", "SERVICEACCOUNTS"], "{out}");
    let devs = row(&rows, "devs-view");
    assert_eq!((devs[1].as_str(), devs[3].as_str()), ("ClusterRole/view", "devs"), "{out}");
    let out = k.ok(&["get", "clusterroles", "healthz", "web-watcher"]).await;
    assert_eq!(table(&out)[0], ["NAME", "CREATED AT"], "{out}");

    // The objects' JSON is Kubernetes' shape.
    let role = json_of(&k, &["get", "role", "pod-reader"]).await;
    assert_eq!(
        (role["apiVersion"].as_str(), role["kind"].as_str()),
        (Some("rbac.authorization.k8s.io/v1"), Some("Role"))
    );
    assert_eq!(role["rules"], json!([{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}]));
    let watcher = json_of(&k, &["get", "clusterrole", "web-watcher"]).await;
    assert_eq!(
        watcher["rules"],
        json!([{"apiGroups": ["apps"], "resources": ["deployments"], "resourceNames": ["web"], "verbs": ["get", "watch"]}])
    );
    let healthz = json_of(&k, &["get", "clusterrole", "healthz"]).await;
    assert_eq!(healthz["rules"], json!([{"nonResourceURLs": ["/healthz"], "verbs": ["get"]}]));
    let binding = json_of(&k, &["get", "rolebinding", "read-pods"]).await;
    assert_eq!(
        binding["roleRef"],
        json!({"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "pod-reader"})
    );
    assert_eq!(
        binding["subjects"],
        json!([
            {"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "alice"},
            {"kind": "ServiceAccount", "name": "sa", "namespace": "default"},
        ])
    );
    let yaml = k.ok(&["get", "clusterrolebinding", "devs-view", "-o", "yaml"]).await;
    let crb: Value = serde_yaml::from_str(&yaml).unwrap();
    assert_eq!(
        crb["subjects"],
        json!([{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "devs"}])
    );
    assert!(crb["metadata"].get("namespace").is_none(), "cluster-scoped: {yaml}");

    // An invalid binding, refused with Kubernetes' message.
    let bad = "apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: bad}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Secret, name: x}
subjects: [{kind: Robot, name: r2}]
";
    let out = k.run_stdin(&["create", "-f", "-"], Some(bad)).await;
    assert_ne!(out.code, 0);
    assert!(
        out.stderr.contains(r#"The RoleBinding "bad" is invalid: "#)
            && out.stderr.contains(r#"roleRef.kind: Unsupported value: "Secret": supported values: "Role", "ClusterRole""#)
            && out.stderr.contains(r#"subjects[0].kind: Unsupported value: "Robot": supported values: "ServiceAccount", "User", "Group""#),
        "{out:?}"
    );
    let urls = "apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: urls}
rules: [{verbs: [get], nonResourceURLs: [/healthz]}]
";
    let out = k.apply(urls, &[]).await;
    assert!(
        out.stderr.contains(r#"rules[0].nonResourceURLs: Invalid value: []string{"/healthz"}: namespaced rules cannot apply to non-resource URLs"#),
        "{out:?}"
    );

    // A binding's role never changes.
    let out = k
        .fails(&[
            "patch",
            "rolebinding",
            "read-pods",
            "--type=merge",
            "-p",
            r#"{"roleRef":{"kind":"ClusterRole","name":"view"}}"#,
        ])
        .await;
    assert!(
        out.stderr.contains(r#"The RoleBinding "read-pods" is invalid: roleRef: Invalid value: rbac.RoleRef{APIGroup:"rbac.authorization.k8s.io", Kind:"ClusterRole", Name:"view"}: cannot change roleRef"#),
        "{out:?}"
    );
    // Its subjects may.
    k.ok(&[
        "patch",
        "rolebinding",
        "read-pods",
        "--type=json",
        "-p",
        r#"[{"op":"remove","path":"/subjects/1"}]"#,
    ])
    .await;
    let binding = json_of(&k, &["get", "rolebinding", "read-pods"]).await;
    assert_eq!(binding["subjects"].as_array().map(Vec::len), Some(1));

    let out = k.ok(&["delete", "role", "pod-reader"]).await;
    assert_eq!(out, "role.rbac.authorization.k8s.io \"pod-reader\" deleted\n");
    let out = k.fails(&["get", "role", "pod-reader"]).await;
    assert!(out.stderr.contains(r#"roles.rbac.authorization.k8s.io "pod-reader" not found"#), "{out:?}");
}

const MANIFESTS: &str = "apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata:
  name: config-reader
  namespace: default
rules:
- apiGroups: ['']
  resources: [configmaps]
  verbs: [get, list, watch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: monitoring
  labels: {rbac.example.com/aggregate-to-monitoring: 'true'}
rules:
- nonResourceURLs: [/metrics]
  verbs: [get]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: config-readers
  namespace: default
subjects:
- kind: ServiceAccount
  name: app
- kind: User
  name: bob
  apiGroup: rbac.authorization.k8s.io
roleRef:
  kind: Role
  name: config-reader
  apiGroup: rbac.authorization.k8s.io
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: prometheus
subjects:
- kind: ServiceAccount
  name: prometheus
  namespace: monitoring
roleRef:
  kind: ClusterRole
  name: monitoring
  apiGroup: rbac.authorization.k8s.io
";

#[tokio::test]
async fn apply_of_all_four_kinds() {
    let (_env, k) = start().await;
    let out = k.apply(MANIFESTS, &[]).await;
    assert_eq!(
        out.stdout,
        "role.rbac.authorization.k8s.io/config-reader created\n\
         clusterrole.rbac.authorization.k8s.io/monitoring created\n\
         rolebinding.rbac.authorization.k8s.io/config-readers created\n\
         clusterrolebinding.rbac.authorization.k8s.io/prometheus created\n",
        "{out:?}"
    );
    let out = k.apply(MANIFESTS, &[]).await;
    assert!(
        out.stdout.lines().all(|l| l.ends_with(" unchanged")) && out.stdout.lines().count() == 4,
        "{out:?}"
    );
    let changed = MANIFESTS.replace("verbs: [get, list, watch]", "verbs: [get]");
    let out = k.apply(&changed, &[]).await;
    assert!(out.stdout.contains("role.rbac.authorization.k8s.io/config-reader configured"), "{out:?}");
    let role = json_of(&k, &["get", "role", "config-reader"]).await;
    assert_eq!(role["rules"][0]["verbs"], json!(["get"]));
    // Server-side apply of the same manifests takes them over.
    let out = k.apply(&changed, &["--server-side", "--force-conflicts"]).await;
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.lines().all(|l| l.ends_with(" serverside-applied")), "{out:?}");
    // The roleRef of an applied binding cannot be changed by applying either.
    let other_role =
        changed.replace("  kind: Role\n  name: config-reader", "  kind: ClusterRole\n  name: view");
    let out = k.apply(&other_role, &[]).await;
    assert!(out.stderr.contains("cannot change roleRef"), "{out:?}");
    let out = k.run_stdin(&["delete", "-f", "-"], Some(MANIFESTS)).await;
    assert_eq!(out.stdout.lines().filter(|l| l.ends_with(" deleted")).count(), 4, "{out:?}");
    let out = k.ok(&["get", "roles,rolebindings"]).await;
    assert!(out.is_empty(), "{out}");
}

/// A PEM certificate request (P-256, CN=alice, O=devs) made with openssl.
fn request_pem() -> Vec<u8> {
    let path = workspace_root().join("crates/api-server/src/validation/certificates/testdata/p256.csr");
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Standard base64 with padding (as Kubernetes writes `[]byte` fields in JSON).
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |acc, (i, b)| acc | u32::from(*b) << (16 - 8 * i));
        for i in 0..4 {
            let sextet = (n >> (18 - 6 * i)) & 0x3f;
            out.push(if i <= chunk.len() { char::from(ALPHABET[sextet as usize]) } else { '=' });
        }
    }
    out
}

fn csr_manifest(name: &str, request: &[u8], signer: &str) -> String {
    format!(
        "apiVersion: certificates.k8s.io/v1
kind: CertificateSigningRequest
metadata:
  name: {name}
spec:
  request: {}
  signerName: {signer}
  expirationSeconds: 86400
  usages: [client auth, digital signature, key encipherment]
",
        base64(request)
    )
}

#[tokio::test]
async fn certificate_signing_request_from_a_manifest() {
    let (_env, k) = start().await;
    let manifest = csr_manifest("alice", &request_pem(), "kubernetes.io/kube-apiserver-client");
    let out = k.run_stdin(&["create", "-f", "-"], Some(&manifest)).await;
    assert_eq!(out.stdout, "certificatesigningrequest.certificates.k8s.io/alice created\n", "{out:?}");
    k.run_stdin(&["create", "-f", "-"], Some(&csr_manifest("other", &request_pem(), "example.com/signer")))
        .await;

    let out = k.ok(&["get", "csr"]).await;
    let rows = table(&out);
    assert_eq!(
        rows[0],
        ["NAME", "AGE", "SIGNERNAME", "REQUESTOR", "REQUESTEDDURATION", "CONDITION"],
        "{out}"
    );
    let alice = row(&rows, "alice");
    assert_eq!(alice[2], "kubernetes.io/kube-apiserver-client", "{out}");
    assert_eq!(alice[alice.len() - 2..], ["24h", "Pending"], "{out}");

    let csr = json_of(&k, &["get", "csr", "alice"]).await;
    let wanted: Value = serde_yaml::from_str(&manifest).unwrap();
    assert_eq!(csr["spec"]["request"], wanted["spec"]["request"], "the request's bytes, base64 in JSON");
    assert_eq!(csr["spec"]["usages"], json!(["client auth", "digital signature", "key encipherment"]));
    assert_eq!(csr["spec"]["expirationSeconds"], 86400);
    assert_eq!(base64(b"hi\n"), "aGkK");

    // Lists select on spec.signerName.
    let names = |v: Value| -> Vec<String> {
        v["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["metadata"]["name"].as_str().unwrap().to_string())
            .collect()
    };
    let selected = json_of(&k, &["get", "csr", "--field-selector=spec.signerName=example.com/signer"]).await;
    assert_eq!(names(selected), ["other"]);
    let out = k.ok(&["get", "csr", "--field-selector=spec.signerName=example.com/none"]).await;
    assert!(out.is_empty(), "{out}");

    // A request that is not a PEM certificate request is refused; so is a bad signer.
    let bad = csr_manifest("bad", b"hi\n", "kubernetes.io/kube-apiserver-client");
    let out = k.run_stdin(&["create", "-f", "-"], Some(&bad)).await;
    assert!(
        out.stderr.contains(r#"The CertificateSigningRequest "bad" is invalid: spec.request: Invalid value: []byte{0x68, 0x69, 0xa}: PEM block type must be CERTIFICATE REQUEST"#),
        "{out:?}"
    );
    let bad = csr_manifest("bad", &request_pem(), "signer");
    let out = k.run_stdin(&["create", "-f", "-"], Some(&bad)).await;
    assert!(
        out.stderr.contains(r#"spec.signerName: Invalid value: "signer": must be a fully qualified domain and path of the form 'example.com/signer-name'"#),
        "{out:?}"
    );

    k.ok(&["delete", "csr", "alice", "other"]).await;
    let out = k.ok(&["get", "csr"]).await;
    assert!(out.is_empty(), "{out}");
}

#[tokio::test]
async fn discovery_openapi_and_navctl_serve_the_new_kinds() {
    let (env, k) = start().await;
    let out = k.ok(&["api-resources", "--api-group=rbac.authorization.k8s.io", "--no-headers"]).await;
    let names: Vec<&str> = out.lines().filter_map(|l| l.split_whitespace().next()).collect();
    assert_eq!(names, ["clusterrolebindings", "clusterroles", "rolebindings", "roles"], "{out}");
    let out = k.ok(&["api-resources", "--api-group=certificates.k8s.io"]).await;
    assert!(out.contains("certificatesigningrequests") && out.contains(" csr "), "{out}");
    let out = k.ok(&["explain", "clusterrole.aggregationRule.clusterRoleSelectors"]).await;
    assert!(out.contains("KIND:       ClusterRole") && out.contains("matchLabels"), "{out}");
    let out = k.ok(&["explain", "csr.spec.request"]).await;
    assert!(out.contains("FIELD: request <string>"), "{out}");
    let out = k.ok(&["explain", "csr.spec.extra"]).await;
    assert!(out.contains("extra"), "{out}");

    k.apply(MANIFESTS, &[]).await;
    let (code, out, err) = env.navctl(&["get", "rolebindings", "-o", "wide"]).await;
    assert_eq!(code, 0, "{err}");
    let rows = table(&out);
    assert_eq!(rows[0], ["NAME", "ROLE", "AGE", "USERS", "GROUPS", "SERVICEACCOUNTS"], "{out}");
    assert_eq!(row(&rows, "config-readers")[1], "Role/config-reader", "{out}");
    let (code, out, err) = env.navctl(&["get", "clusterrole", "monitoring", "-o", "yaml"]).await;
    assert_eq!(code, 0, "{err}");
    let role: Value = serde_yaml::from_str(&out).unwrap();
    assert_eq!(role["rules"], json!([{"nonResourceURLs": ["/metrics"], "verbs": ["get"]}]), "{out}");
}

const AGGREGATED: &str = "apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: monitoring-all
aggregationRule:
  clusterRoleSelectors:
  - matchLabels: {rbac.example.com/aggregate-to-monitoring: 'true'}
rules: []
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: pods-reader
  labels: {rbac.example.com/aggregate-to-monitoring: 'true'}
rules:
- apiGroups: ['']
  resources: [pods]
  verbs: [get, list, watch]
";

/// The rules of ClusterRole `name`, as JSON.
async fn rules(k: &Kubectl, name: &str) -> Value {
    json_of(k, &["get", "clusterrole", name]).await["rules"].clone()
}

#[tokio::test]
async fn the_controller_manager_aggregates_cluster_roles() {
    let (env, k) = start().await;
    let _cm = Daemon::start(&env, "controller-manager", "controller-manager", &[]);
    let out = k.apply(AGGREGATED, &[]).await;
    assert_eq!(out.code, 0, "{out:?}");
    let pods = json!({"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]});
    eventually("the selected role's rules are aggregated", WAIT, async || {
        rules(&k, "monitoring-all").await == json!([pods])
    })
    .await;

    // A role joining the selection adds its rules (once, after those of roles sorted before it), one
    // whose labels leave takes its rules away, and rules changed directly are put back.
    k.apply(MANIFESTS, &[]).await; // monitoring (/metrics) carries the label
    let metrics = json!({"nonResourceURLs": ["/metrics"], "verbs": ["get"]});
    eventually("a second role is aggregated", WAIT, async || {
        rules(&k, "monitoring-all").await == json!([metrics, pods])
    })
    .await;
    k.ok(&["label", "clusterrole", "pods-reader", "rbac.example.com/aggregate-to-monitoring-"]).await;
    eventually("a role leaving the selection is dropped", WAIT, async || {
        rules(&k, "monitoring-all").await == json!([metrics])
    })
    .await;
    k.ok(&["patch", "clusterrole", "monitoring-all", "--type=merge", "-p", r#"{"rules":[]}"#]).await;
    eventually("rules changed by hand are restored", WAIT, async || {
        rules(&k, "monitoring-all").await == json!([metrics])
    })
    .await;
}
