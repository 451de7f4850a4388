//! A node joins with one secret, as with `kubeadm join` / the k3s agent: a bootstrap token (Secret
//! `kube-system/bootstrap-token-<id>`) authenticates as `system:bootstrap:<id>` in `system:bootstrappers`;
//! with it the node asks for its client certificate through a CertificateSigningRequest, which the
//! controller-manager approves (SubjectAccessReview on `certificatesigningrequests/nodeclient`) and signs
//! with the cluster CA; as itself, the node then asks for its serving certificate, approved when the
//! names are those its Node reports. kube-proxy gets `system:kube-proxy` the same way.
//! The last test starts a real kubelet with only the bootstrap kubeconfig (needs root; `make test`).

use std::path::PathBuf;
use std::time::Duration;

use navarch_api::Resource;
use navarch_api::v1::{
    CertificateSigningRequest, Node, NodeAddress, NodeStatus, ObjectMeta, Secret, SelfSubjectReview,
};
use navarch_client::bootstrap::{CertificateAsk, ensure_kubeconfig, request_certificate, still_good};
use navarch_client::{Client, Connection};
use navarch_pki::Leaf;
use navarch_tests::{Containerd, Daemon, Etcd, Kubectl, Kubelet, Registry, TestEnv, eventually, ready_node};

const TOKEN_ID: &str = "abcdef";
const TOKEN: &str = "abcdef.0123456789abcdef";
const WAIT: Duration = Duration::from_secs(30);

/// The controller-manager, signing with the cluster CA, with `extra` flags.
fn controller_manager_with(env: &TestEnv, extra: &[&str]) -> Daemon {
    let pki = env.pki();
    let file = |f: &str| pki.path(f).display().to_string();
    let mut args = vec![
        "--leader-elect=false".to_string(),
        format!("--cluster-signing-cert-file={}", file("ca.crt")),
        format!("--cluster-signing-key-file={}", file("ca.key")),
    ];
    args.extend(extra.iter().map(|a| a.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    Daemon::start(env, "controller-manager", "controller-manager", &args)
}

fn controller_manager(env: &TestEnv) -> Daemon {
    controller_manager_with(env, &[])
}

/// The token's Secret, as `kubectl create secret generic bootstrap-token-abcdef --type
/// bootstrap.kubernetes.io/token --from-literal ...` makes it.
async fn create_token(admin: &Client, id: &str, secret: &str, expiration: Option<&str>) {
    let mut string_data: std::collections::BTreeMap<String, String> = [
        ("token-id", id),
        ("token-secret", secret),
        ("usage-bootstrap-authentication", "true"),
        ("description", "join token of the node_join test"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    if let Some(e) = expiration {
        string_data.insert("expiration".into(), e.into());
    }
    let mut s = Secret {
        metadata: Some(ObjectMeta {
            name: format!("bootstrap-token-{id}"),
            namespace: "kube-system".into(),
            ..Default::default()
        }),
        r#type: "bootstrap.kubernetes.io/token".into(),
        string_data,
        ..Default::default()
    };
    s.set_type_meta();
    admin.api::<Secret>("kube-system").create(&s).await.unwrap();
}

/// A bootstrap kubeconfig with `token`, as `navarch-pki bootstrap-kubeconfig` writes it.
fn bootstrap_kubeconfig(env: &TestEnv, token: &str) -> PathBuf {
    let text =
        navarch_pki::cluster::token_kubeconfig("navarch", &env.api_server_url(), &env.pki().ca_pem(), token);
    env.pki().write_kubeconfig(&format!("bootstrap-{}", token.replace('.', "-")), &text)
}

async fn whoami(kubeconfig: &std::path::Path) -> (String, Vec<String>) {
    let (conn, _) = Connection::from_kubeconfig(kubeconfig).unwrap();
    let client = Client::connect_lazy(&conn).unwrap();
    let review = client.review(&SelfSubjectReview::default()).await.unwrap();
    let user = review.status.and_then(|s| s.user_info).unwrap_or_default();
    (user.username, user.groups)
}

fn node_client(name: &str) -> CertificateAsk {
    CertificateAsk::node_client(name)
}

fn node_serving(name: &str, ip: &str) -> CertificateAsk {
    CertificateAsk::node_serving(name, ip.parse().unwrap())
}

#[tokio::test]
async fn a_node_and_its_kube_proxy_join_with_the_token() {
    let env = TestEnv::start().await;
    let _cm = controller_manager(&env);
    let admin = env.client().await;
    create_token(&admin, TOKEN_ID, "0123456789abcdef", None).await;
    let bootstrap = bootstrap_kubeconfig(&env, TOKEN);
    // The api-server learns of the token's Secret through its watch.
    let (user, groups) = eventually("the token authenticates", WAIT, async || {
        let (conn, _) = Connection::from_kubeconfig(&bootstrap).unwrap();
        let client = Client::connect_lazy(&conn).unwrap();
        client.review(&SelfSubjectReview::default()).await.map(|r| {
            let u = r.status.and_then(|s| s.user_info).unwrap_or_default();
            (u.username, u.groups)
        })
    })
    .await;
    assert_eq!(user, format!("system:bootstrap:{TOKEN_ID}"));
    assert!(groups.contains(&"system:bootstrappers".to_string()), "{groups:?}");

    // The client certificate, from the token alone.
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubelet.kubeconfig");
    let asked = ensure_kubeconfig(&kubeconfig, &bootstrap, "", &node_client("node-9"), WAIT).await.unwrap();
    assert!(asked);
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&kubeconfig).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600, "the kubeconfig holds a key");
    let (user, groups) = whoami(&kubeconfig).await;
    assert_eq!(user, "system:node:node-9");
    assert!(groups.contains(&"system:nodes".to_string()), "{groups:?}");
    // Kept while good.
    assert!(!ensure_kubeconfig(&kubeconfig, &bootstrap, "", &node_client("node-9"), WAIT).await.unwrap());

    // As itself, the node registers and asks for its serving certificate.
    let (conn, _) = Connection::from_kubeconfig(&kubeconfig).unwrap();
    let node_api = Client::connect_lazy(&conn).unwrap();
    let mut node = Node {
        metadata: Some(ObjectMeta { name: "node-9".into(), ..Default::default() }),
        ..Default::default()
    };
    node.set_type_meta();
    node_api.api::<Node>("").create(&node).await.unwrap();
    // The node lifecycle controller writes the Node too: read, change, write until it sticks.
    eventually("the Node's addresses written", WAIT, async || {
        let mut current = node_api.api::<Node>("").get("node-9").await?;
        current.status.get_or_insert_with(NodeStatus::default).addresses = vec![
            NodeAddress { r#type: "InternalIP".into(), address: "10.250.0.19".into() },
            NodeAddress { r#type: "Hostname".into(), address: "node-9".into() },
        ];
        node_api.api::<Node>("").update_status(&current).await.map(|_| ())
    })
    .await;
    let serving = node_serving("node-9", "10.250.0.19");
    let issued = request_certificate(&node_api, &serving, WAIT).await.unwrap();
    assert!(still_good(&env.pki().ca_pem(), issued.cert_pem.as_bytes(), &serving.leaf));

    // Not approved: a serving certificate for another node's address, or asked for with the token.
    let wrong_ip = node_serving("node-9", "10.250.0.12");
    let e = request_certificate(&node_api, &wrong_ip, Duration::from_secs(8)).await.unwrap_err().to_string();
    assert!(e.contains("no certificate after"), "{e}");
    let bootstrap_client = Client::connect_lazy(&Connection::from_kubeconfig(&bootstrap).unwrap().0).unwrap();
    let e = request_certificate(
        &bootstrap_client,
        &node_serving("node-9", "10.250.0.19"),
        Duration::from_secs(6),
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(e.contains("no certificate after"), "{e}");
    // A node client certificate in another group (system:masters) is not one the approver gives.
    let masters = CertificateAsk {
        leaf: Leaf::client("system:node:node-9", &["system:masters"]),
        ..node_client("node-9")
    };
    let e = request_certificate(&bootstrap_client, &masters, Duration::from_secs(6))
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("no certificate after"), "{e}");
    // The token may not approve its own request.
    let csrs = admin.api::<CertificateSigningRequest>("").list(&Default::default()).await.unwrap().items;
    let pending: Vec<&CertificateSigningRequest> =
        csrs.iter().filter(|c| c.status.as_ref().is_none_or(|s| s.conditions.is_empty())).collect();
    assert_eq!(pending.len(), 3, "{csrs:#?}");
    let mut approve = pending[0].clone();
    approve.status.get_or_insert_with(Default::default).conditions.push(
        navarch_api::v1::CertificateSigningRequestCondition {
            r#type: "Approved".into(),
            status: "True".into(),
            reason: "SelfApproved".into(),
            ..Default::default()
        },
    );
    let e =
        bootstrap_client.api::<CertificateSigningRequest>("").update_approval(&approve).await.unwrap_err();
    assert!(e.to_string().contains("forbidden") || e.to_string().contains("Forbidden"), "{e}");

    // kube-proxy: system:kube-proxy from the same token, and what it may do.
    let proxy_kubeconfig = dir.path().join("kube-proxy.kubeconfig");
    let proxy = CertificateAsk::kube_proxy();
    ensure_kubeconfig(&proxy_kubeconfig, &bootstrap, "", &proxy, WAIT).await.unwrap();
    assert_eq!(whoami(&proxy_kubeconfig).await.0, "system:kube-proxy");
    // Any other user of that signer is not approved by the controller.
    let alice = CertificateAsk { leaf: Leaf::client("alice", &["navarch:cluster-admins"]), ..proxy.clone() };
    let e =
        request_certificate(&bootstrap_client, &alice, Duration::from_secs(6)).await.unwrap_err().to_string();
    assert!(e.contains("no certificate after"), "{e}");

    // kubectl shows them as Kubernetes does; an admin may approve by hand, and the signer issues.
    let kubectl = Kubectl::new(&env.api_server);
    let out = kubectl.ok(&["get", "csr"]).await;
    assert!(
        out.contains("SIGNERNAME") && out.contains("Approved,Issued") && out.contains("Pending"),
        "{out}"
    );
    assert!(out.contains(&format!("system:bootstrap:{TOKEN_ID}")), "{out}");
    let alice_csr = admin
        .api::<CertificateSigningRequest>("")
        .list(&Default::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .find(|c| {
            use base64::Engine as _;
            let req = c.spec.as_ref().map(|s| s.request.as_str()).unwrap_or_default();
            let pem = base64::engine::general_purpose::STANDARD.decode(req).unwrap_or_default();
            navarch_pki::csr::CertificateRequest::from_pem(&pem)
                .is_ok_and(|r| r.subject.common_name == "alice")
        })
        .unwrap();
    let name = alice_csr.meta().name.clone();
    kubectl.ok(&["certificate", "approve", &name]).await;
    eventually("alice's certificate issued", WAIT, async || {
        let c = admin.api::<CertificateSigningRequest>("").get(&name).await.unwrap();
        c.status.is_some_and(|s| !s.certificate.is_empty()).then_some(())
    })
    .await;
}

#[tokio::test]
async fn a_wrong_or_expired_token_gets_nothing() {
    let env = TestEnv::start().await;
    let _cm = controller_manager(&env);
    let admin = env.client().await;
    create_token(&admin, "expird", "0123456789abcdef", Some("2020-01-01T00:00:00Z")).await;
    let dir = tempfile::tempdir().unwrap();
    for token in ["expird.0123456789abcdef", "abcdef.0123456789abcdef", "abcdef.wrongwrongwrong0"] {
        let bootstrap = bootstrap_kubeconfig(&env, token);
        let kubeconfig = dir.path().join("kubelet.kubeconfig");
        let e =
            ensure_kubeconfig(&kubeconfig, &bootstrap, "", &node_client("node-8"), Duration::from_secs(3))
                .await
                .unwrap_err()
                .to_string();
        assert!(e.contains("Unauthorized") || e.contains("Unauthenticated"), "{token}: {e}");
        assert!(!kubeconfig.exists());
    }
}

/// A real kubelet with only the bootstrap kubeconfig: it gets its client certificate, registers, gets
/// its serving certificate, and the api-server reaches its API (pod logs through the relay, which
/// verifies the serving certificate).
#[tokio::test]
async fn a_kubelet_joins_with_only_the_token() {
    let etcd = Etcd::start().await;
    let api_server = navarch_tests::ApiServer::start(&etcd).await;
    let env = TestEnv { api_server, etcd };
    let _cm = controller_manager(&env);
    let admin = env.client().await;
    create_token(&admin, TOKEN_ID, "0123456789abcdef", None).await;
    let bootstrap = bootstrap_kubeconfig(&env, TOKEN);
    let containerd = Containerd::start().await;
    let registry = Registry::with_test_images();
    let kubelet = Kubelet::join(&env.api_server, &containerd, &registry, &bootstrap).await;
    ready_node(&admin, &kubelet).await;
    // Its serving certificate was asked for and issued.
    let csrs = admin.api::<CertificateSigningRequest>("").list(&Default::default()).await.unwrap().items;
    let signers: Vec<String> =
        csrs.iter().filter_map(|c| c.spec.as_ref().map(|s| s.signer_name.clone())).collect();
    assert!(signers.contains(&"kubernetes.io/kube-apiserver-client-kubelet".to_string()), "{signers:?}");
    assert!(signers.contains(&"kubernetes.io/kubelet-serving".to_string()), "{signers:?}");
    // The relay to its API works (TLS verified against the cluster CA).
    let kubectl = Kubectl::new(&env.api_server);
    let overrides = format!("{{\"spec\":{{\"nodeName\":\"{}\"}}}}", kubelet.node_name);
    kubectl
        .ok(&[
            "run",
            "hello",
            "--image=busybox",
            "--restart=Never",
            &format!("--overrides={overrides}"),
            "--",
            "sh",
            "-c",
            "echo joined; sleep 3600",
        ])
        .await;
    eventually(kubelet.with_log("the pod's log through the relay"), Duration::from_secs(90), async || {
        let out = kubectl.run(&["logs", "hello"]).await;
        out.stdout.contains("joined").then_some(()).ok_or(out.stderr)
    })
    .await;
    kubectl.ok(&["delete", "pod", "hello", "--grace-period=0", "--force"]).await;
}

/// Certificates shorter-lived than a day (`--cluster-signing-duration=10m`) are renewed at the next
/// start by the node and kube-proxy as themselves, once the join token is gone: the node through
/// `selfnodeclient`, kube-proxy through `kubeproxyclient`.
#[tokio::test]
async fn short_lived_certificates_are_renewed_as_themselves() {
    let env = TestEnv::start().await;
    let _cm = controller_manager_with(&env, &["--cluster-signing-duration=10m"]);
    let admin = env.client().await;
    create_token(&admin, TOKEN_ID, "0123456789abcdef", None).await;
    let bootstrap = bootstrap_kubeconfig(&env, TOKEN);
    let dir = tempfile::tempdir().unwrap();
    let proxy = CertificateAsk::kube_proxy();
    let (node_kubeconfig, proxy_kubeconfig) =
        (dir.path().join("kubelet.kubeconfig"), dir.path().join("kube-proxy.kubeconfig"));
    // The token authenticates once the api-server has seen its Secret: ensure_kubeconfig waits.
    assert!(ensure_kubeconfig(&node_kubeconfig, &bootstrap, "", &node_client("node-7"), WAIT).await.unwrap());
    assert!(ensure_kubeconfig(&proxy_kubeconfig, &bootstrap, "", &proxy, WAIT).await.unwrap());
    admin
        .api::<Secret>("kube-system")
        .delete(&format!("bootstrap-token-{TOKEN_ID}"), &Default::default())
        .await
        .unwrap();
    // Without the token, a second start renews each as itself.
    let first = std::fs::read(&node_kubeconfig).unwrap();
    assert!(ensure_kubeconfig(&node_kubeconfig, &bootstrap, "", &node_client("node-7"), WAIT).await.unwrap());
    assert_ne!(first, std::fs::read(&node_kubeconfig).unwrap(), "a new certificate");
    assert_eq!(whoami(&node_kubeconfig).await.0, "system:node:node-7");
    assert!(ensure_kubeconfig(&proxy_kubeconfig, &bootstrap, "", &proxy, WAIT).await.unwrap());
    assert_eq!(whoami(&proxy_kubeconfig).await.0, "system:kube-proxy");
    let requesters: Vec<String> = admin
        .api::<CertificateSigningRequest>("")
        .list(&Default::default())
        .await
        .unwrap()
        .items
        .iter()
        .filter_map(|c| c.spec.as_ref().map(|s| s.username.clone()))
        .collect();
    assert!(requesters.contains(&"system:node:node-7".to_string()), "{requesters:?}");
    assert!(requesters.contains(&"system:kube-proxy".to_string()), "{requesters:?}");
}
