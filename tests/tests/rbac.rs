//! RBAC enforced on both doors, modelled on Kubernetes' TestRBAC: users without bindings are refused
//! with Kubernetes' messages, Roles and bindings grant exactly what they say in their namespace,
//! escalation (binding cluster-admin to oneself, a Role with rights one lacks) is refused, impersonation
//! needs `impersonate`, anonymous requests reach only health and version, and the components' own
//! identities hold their least-privilege roles.

use std::sync::Arc;
use std::time::Duration;

use navarch_api::v1::Pod;
use navarch_tests::{Kubectl, TestEnv, eventually};

/// A new binding is in force once the api-server's RBAC store has it (a watch event away).
const WAIT: Duration = Duration::from_secs(10);

async fn env() -> TestEnv {
    TestEnv::start().await
}

#[tokio::test(flavor = "multi_thread")]
async fn users_get_exactly_what_their_roles_grant() {
    let env = env().await;
    let admin = Kubectl::new(&env.api_server);
    let alice = Kubectl::as_user(&env.api_server, "alice", &["devs"]);

    let out = alice.fails(&["get", "pods"]).await;
    assert!(
        out.stderr.contains(
            r#"pods is forbidden: User "alice" cannot list resource "pods" in API group "" in the namespace "default""#
        ),
        "{out:?}"
    );
    let out = alice.fails(&["get", "nodes"]).await;
    assert!(
        out.stderr.contains(r#"cannot list resource "nodes" in API group "" at the cluster scope"#),
        "{out:?}"
    );

    admin.ok(&["create", "role", "pod-reader", "--verb=get,list,watch", "--resource=pods"]).await;
    admin.ok(&["create", "rolebinding", "alice-reads", "--role=pod-reader", "--user=alice"]).await;
    admin.ok(&["run", "web", "--image=busybox", "--restart=Never"]).await;
    eventually("alice may list pods in default", WAIT, async || alice.run(&["get", "pods"]).await.code == 0)
        .await;
    assert!(alice.ok(&["get", "pod", "web", "-o", "name"]).await.contains("pod/web"));
    let out = alice.fails(&["get", "pods", "-n", "kube-system"]).await;
    assert!(out.stderr.contains(r#"in the namespace "kube-system""#), "{out:?}");
    let out = alice.fails(&["delete", "pod", "web"]).await;
    assert!(
        out.stderr.contains(r#"pods "web" is forbidden: User "alice" cannot delete resource "pods""#),
        "{out:?}"
    );
    assert_eq!(alice.run(&["auth", "can-i", "list", "pods"]).await.stdout.trim(), "yes");
    assert_eq!(alice.run(&["auth", "can-i", "create", "pods"]).await.stdout.trim(), "no");

    // A group binding works as well.
    admin.ok(&["create", "clusterrolebinding", "devs-view", "--clusterrole=view", "--group=devs"]).await;
    eventually("devs may read deployments everywhere", WAIT, async || {
        alice.run(&["get", "deployments", "-A"]).await.code == 0
    })
    .await;
    // view does not include Secrets.
    let out = alice.fails(&["get", "secrets", "-n", "kube-system"]).await;
    assert!(out.stderr.contains("cannot list resource \"secrets\""), "{out:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn escalation_is_refused() {
    let env = env().await;
    let admin = Kubectl::new(&env.api_server);
    let mallory = Kubectl::as_user(&env.api_server, "mallory", &[]);
    // mallory may manage Roles and RoleBindings in default, nothing else.
    admin
        .ok(&[
            "create",
            "role",
            "rbac-manager",
            "--verb=get,list,create,update,delete",
            "--resource=roles,rolebindings",
        ])
        .await;
    admin.ok(&["create", "rolebinding", "mallory-rbac", "--role=rbac-manager", "--user=mallory"]).await;
    eventually("mallory may list rolebindings", WAIT, async || {
        mallory.run(&["get", "rolebindings"]).await.code == 0
    })
    .await;

    let out = mallory
        .fails(&["create", "rolebinding", "pwn", "--clusterrole=cluster-admin", "--user=mallory"])
        .await;
    assert!(
        out.stderr.contains("is attempting to grant RBAC permissions not currently held"),
        "binding cluster-admin to himself: {out:?}"
    );
    let out = mallory.fails(&["create", "role", "secrets", "--verb=get", "--resource=secrets"]).await;
    assert!(
        out.stderr.contains(r#"user "mallory" (groups=["system:authenticated"]) is attempting to grant RBAC permissions not currently held"#),
        "a Role with rights he lacks: {out:?}"
    );
    // What he holds he may grant.
    mallory.ok(&["create", "role", "rbac-reader", "--verb=get,list", "--resource=roles"]).await;
    // Cluster-wide objects are out of reach altogether.
    let out =
        mallory.fails(&["create", "clusterrolebinding", "x", "--clusterrole=view", "--user=mallory"]).await;
    assert!(out.stderr.contains("clusterrolebindings.rbac.authorization.k8s.io is forbidden"), "{out:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn impersonation_needs_the_impersonate_verb() {
    let env = env().await;
    let admin = Kubectl::new(&env.api_server);
    let eve = Kubectl::as_user(&env.api_server, "eve", &[]);
    // The admin may act as anyone, and is then only that one.
    let out = admin.fails(&["get", "pods", "--as", "bob"]).await;
    assert!(out.stderr.contains(r#"User "bob" cannot list resource "pods""#), "{out:?}");
    admin.ok(&["get", "pods", "--as", "bob", "--as-group", "navarch:cluster-admins"]).await;
    // (kubectl 1.32 prints its discovery's 403 as "unknown"; the answer itself is Kubernetes' Status.)
    eve.fails(&["get", "pods", "--as", "kubernetes-admin"]).await;
    let stem = env.pki().user("eve", &[]);
    let r = env.rest_as(&stem).get_with_headers("/api", &[("Impersonate-User", "kubernetes-admin")]).unwrap();
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(
        r.body.contains(r#"users \"kubernetes-admin\" is forbidden: User \"eve\" cannot impersonate resource \"users\" in API group \"\" at the cluster scope"#),
        "{}",
        r.body
    );
    let r = env
        .rest_as(&stem)
        .get_with_headers("/api", &[("Impersonate-User", "system:serviceaccount:default:default")])
        .unwrap();
    assert!(r.body.contains(r#"serviceaccounts \"default\" is forbidden"#), "{}", r.body);
}

#[tokio::test(flavor = "multi_thread")]
async fn anonymous_requests_reach_only_health_and_version() {
    let env = env().await;
    let pki = env.pki().clone();
    let anonymous = navarch_tests::Rest::new(env.api_server_addr(), pki.rustls_config(None, &[b"http/1.1"]));
    let (code, body) = anonymous.get("/version").expect("an answer");
    assert_eq!(code, 200, "{body}");
    for path in ["/api", "/api/v1/namespaces/default/pods", "/apis", "/openapi/v3"] {
        let (code, body) = anonymous.get(path).expect("an answer");
        assert_eq!(code, 403, "{path}: {body}");
        assert!(body.contains("system:anonymous"), "{path}: {body}");
    }
    // A token nobody issued is a bare 401.
    let r = anonymous
        .get_with_headers("/api/v1/pods", &[("Authorization", "Bearer abc.def.ghi")])
        .expect("an answer");
    assert_eq!(r.status, 401, "{}", r.body);
    assert!(r.body.contains(r#""message":"Unauthorized""#), "{}", r.body);

    let strict = TestEnv::start_with(&["--anonymous-auth=false"]).await;
    let anonymous = navarch_tests::Rest::new(strict.api_server_addr(), pki_of(&strict));
    assert_eq!(anonymous.get("/api").expect("an answer").0, 401);
}

fn pki_of(env: &TestEnv) -> Arc<rustls::ClientConfig> {
    env.pki().rustls_config(None, &[b"http/1.1"])
}

#[tokio::test(flavor = "multi_thread")]
async fn both_doors_refuse_the_same_way() {
    let env = env().await;
    let stem = env.pki().user("carol", &[]);
    let carol = env.client_as(&stem).await;
    let err = carol.api::<Pod>("kube-system").list(&Default::default()).await.unwrap_err().to_string();
    assert!(
        err.contains(r#"pods is forbidden: User "carol" cannot list resource "pods" in API group "" in the namespace "kube-system""#),
        "{err}"
    );
    // The components' identities hold what they need and no more.
    let scheduler = Kubectl::with_kubeconfig(&env.pki().kubeconfig("scheduler", &env.api_server_url()));
    assert_eq!(
        scheduler.run(&["auth", "can-i", "create", "pods", "--subresource=binding"]).await.stdout.trim(),
        "yes"
    );
    assert_eq!(scheduler.run(&["auth", "can-i", "get", "secrets"]).await.stdout.trim(), "no");
    let proxy = Kubectl::with_kubeconfig(&env.pki().kubeconfig("kube-proxy", &env.api_server_url()));
    assert_eq!(proxy.run(&["auth", "can-i", "watch", "services"]).await.stdout.trim(), "yes");
    assert_eq!(proxy.run(&["auth", "can-i", "create", "pods"]).await.stdout.trim(), "no");
}

/// A kubelet asks for tokens only of pods bound to it (the Node authorizer's graph, then
/// NodeRestriction on the bound pod), and reads only its pods' Secrets.
#[tokio::test(flavor = "multi_thread")]
async fn a_node_gets_only_its_own_pods_tokens_and_secrets() {
    use navarch_api::v1::{ServiceAccount, TokenRequest};
    let etcd = navarch_tests::Etcd::start().await;
    let pki = etcd.pki().clone();
    let file = |f: &str| pki.path(f).display().to_string();
    let args = [
        format!("--service-account-signing-key-file={}", file("sa.key")),
        format!("--service-account-key-file={}", file("sa.pub")),
    ];
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let api_server = navarch_tests::ApiServer::start_with(&etcd, &args).await;
    let env = TestEnv { api_server, etcd };
    let admin = env.client().await;
    let mut sa = ServiceAccount::default();
    sa.metadata.get_or_insert_default().name = "app".into();
    admin.api::<ServiceAccount>("default").create(&sa).await.unwrap();
    let pod = |name: &str, node: &str, secret: &str| -> Pod {
        serde_yaml::from_str(&format!(
            "metadata: {{name: {name}}}\nspec:\n  nodeName: {node}\n  serviceAccountName: app\n  containers: [{{name: c, image: busybox}}]\n  \
             volumes: [{{name: s, secret: {{secretName: {secret}}}}}]\n"
        ))
        .unwrap()
    };
    let pods = admin.api::<Pod>("default");
    let on1 = pods.create(&pod("on-1", "node-1", "s1")).await.unwrap();
    let on2 = pods.create(&pod("on-2", "node-2", "s2")).await.unwrap();
    pki.node("node-1", &["127.0.0.1".parse().unwrap()]);
    let node1 = env.client_as("nodes/node-1/kubelet-client").await;
    let bound = |p: &Pod| -> TokenRequest {
        let m = p.metadata.as_ref().unwrap();
        serde_yaml::from_str(&format!(
            "spec: {{boundObjectRef: {{kind: Pod, apiVersion: v1, name: {}, uid: {}}}}}",
            m.name, m.uid
        ))
        .unwrap()
    };
    eventually("node-1 gets a token for its own pod", WAIT, async || {
        node1.create_token("default", "app", &bound(&on1)).await.is_ok()
    })
    .await;
    let err = node1.create_token("default", "app", &bound(&on2)).await.unwrap_err().to_string();
    assert!(err.contains("forbidden") || err.contains("Forbidden"), "a token of node-2's pod: {err}");
    // Secrets: its pod's (even before it exists: Forbidden, not NotFound), never another node's.
    let secrets = node1.api::<navarch_api::v1::Secret>("default");
    let err = secrets.get("s2").await.unwrap_err().to_string();
    assert!(err.contains(r#"User "system:node:node-1" cannot get resource "secrets""#), "{err}");
    let err = secrets.get("s1").await.unwrap_err().to_string();
    assert!(err.contains("not found"), "its own pod's Secret is readable (absent here): {err}");
    let err = secrets.list(&Default::default()).await.unwrap_err().to_string();
    assert!(err.contains("forbidden"), "no listing Secrets: {err}");
    // Nor may it touch another node's pod.
    let mut moved = on2.clone();
    moved.metadata.as_mut().unwrap().labels.insert("x".into(), "y".into());
    let err = node1.api::<Pod>("default").update(&moved).await.unwrap_err().to_string();
    assert!(err.contains("forbidden") || err.contains("Forbidden"), "{err}");
}
