//! The resource metrics API (`metrics.k8s.io/v1beta1`) against a real etcd + api-server, without kubelets:
//! the lists are empty, but discovery finds the group (aggregated and legacy, get and list only), `kubectl
//! top` and `navctl top` say what they say against metrics-server with no metrics yet, NotFound names the
//! missing Pod/Node or its metrics as metrics-server does, writes and watches are 405 MethodNotAllowed
//! (REST) / Unimplemented (gRPC), `pods`/`nodes` still name the core kinds, and RBAC on
//! `pods.metrics.k8s.io` is Kubernetes' (`system:aggregated-metrics-reader`).

use navarch_api::Object;
use navarch_api::v1::{ObjectMeta, PodMetrics};
use navarch_client::ListParams;
use navarch_tests::{Kubectl, TestEnv};
use serde_json::{Value, json};

async fn start() -> (TestEnv, Kubectl) {
    let env = TestEnv::start().await;
    let k = Kubectl::new(&env.api_server);
    (env, k)
}

#[tokio::test]
async fn discovery_lists_the_group_read_only() {
    let (_env, k) = start().await;
    let out = k.ok(&["api-resources", "--api-group=metrics.k8s.io", "--no-headers"]).await;
    let rows: Vec<Vec<&str>> = out.lines().map(|l| l.split_whitespace().collect()).collect();
    assert_eq!(
        rows,
        vec![
            vec!["nodes", "metrics.k8s.io/v1beta1", "false", "NodeMetrics"],
            vec!["pods", "metrics.k8s.io/v1beta1", "true", "PodMetrics"],
        ],
        "{out}"
    );
    let out = k.ok(&["api-resources", "--api-group=metrics.k8s.io", "-o", "wide", "--no-headers"]).await;
    assert!(out.lines().all(|l| l.trim_end().ends_with("get,list") || l.contains("[get list]")), "{out}");
    // Legacy discovery, as the metrics client may read it.
    let raw: Value =
        serde_json::from_str(&k.ok(&["get", "--raw", "/apis/metrics.k8s.io/v1beta1"]).await).unwrap();
    assert_eq!(raw["kind"], "APIResourceList");
    assert_eq!(raw["resources"][1]["name"], "pods");
    assert_eq!(raw["resources"][1]["verbs"], json!(["get", "list"]));
    let raw: Value = serde_json::from_str(&k.ok(&["get", "--raw", "/apis/metrics.k8s.io"]).await).unwrap();
    assert_eq!(raw["preferredVersion"]["groupVersion"], "metrics.k8s.io/v1beta1");
}

#[tokio::test]
async fn top_without_metrics_says_what_kubernetes_says() {
    let (env, k) = start().await;
    // No pods: nothing to say, successfully.
    let out = k.run(&["top", "pod"]).await;
    assert_eq!((out.code, out.stdout.as_str()), (0, ""), "{out:?}");
    assert_eq!(out.stderr, "No resources found in default namespace.\n");
    let out = k.run(&["top", "pod", "-A"]).await;
    assert_eq!((out.code, out.stderr.as_str()), (0, "No resources found\n"), "{out:?}");
    let out = k.fails(&["top", "node"]).await;
    assert_eq!(out.stderr, "error: metrics not available yet\n");
    let out = k.fails(&["top", "node", "nope"]).await;
    assert_eq!(out.stderr, "Error from server (NotFound): nodes \"nope\" not found\n");

    // A new pod (never scheduled here) has no metrics yet.
    k.ok(&["run", "web", "--image=nginx", "--labels=app=web"]).await;
    let out = k.fails(&["top", "pod"]).await;
    assert_eq!(out.stderr, "error: metrics not available yet\n");
    let out = k.fails(&["top", "pod", "-l", "app=web", "--containers", "--sort-by=cpu"]).await;
    assert_eq!(out.stderr, "error: metrics not available yet\n");
    let out = k.fails(&["top", "pod", "web"]).await;
    assert_eq!(
        out.stderr,
        "Error from server (NotFound): podmetrics.metrics.k8s.io \"default/web\" not found\n"
    );
    let out = k.fails(&["top", "pod", "nope"]).await;
    assert_eq!(out.stderr, "Error from server (NotFound): pods \"nope\" not found\n");
    let out = k.fails(&["top", "pod", "--sort-by=disk"]).await;
    assert!(out.stderr.contains("--sort-by accepts only cpu or memory"), "{out:?}");

    // navctl top reads the same API and says the same.
    let (code, out, err) = env.navctl(&["top", "node"]).await;
    assert_eq!((code, out.as_str()), (1, ""), "{err}");
    assert!(err.contains("metrics not available yet"), "{err}");
    let (code, _, err) = env.navctl(&["top", "pod", "--containers", "-l", "app=web"]).await;
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("metrics not available yet"), "{err}");
    let (code, _, err) = env.navctl(&["top", "pod", "web"]).await;
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("podmetrics.metrics.k8s.io \"default/web\" not found"), "{err}");
    let (code, _, err) = env.navctl(&["top", "pod", "-n", "kube-system"]).await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(err, "No resources found in kube-system namespace.\n");

    // `pods` is still the core kind; the metrics kinds are reached by group.
    let out = k.ok(&["get", "pods", "--no-headers"]).await;
    assert!(out.starts_with("web "), "{out}");
    let out = k.run(&["get", "pods.metrics.k8s.io"]).await;
    assert_eq!(
        (out.code, out.stdout.as_str(), out.stderr.as_str()),
        (0, "", "No resources found in default namespace.\n")
    );
    let out = k.run(&["get", "nodes.metrics.k8s.io"]).await;
    assert_eq!((out.code, out.stderr.as_str()), (0, "No resources found\n"), "{out:?}");
    let (code, out, err) = env.navctl(&["get", "pods"]).await;
    assert_eq!(code, 0, "{err}");
    assert!(out.lines().nth(1).is_some_and(|l| l.starts_with("web ")), "{out}");
}

#[tokio::test]
async fn writes_and_watches_are_refused() {
    let (env, _k) = start().await;
    let rest = env.rest();
    let body =
        json!({"apiVersion": "metrics.k8s.io/v1beta1", "kind": "PodMetrics", "metadata": {"name": "x"}});
    for (method, path) in [
        ("POST", "/apis/metrics.k8s.io/v1beta1/namespaces/default/pods"),
        ("PUT", "/apis/metrics.k8s.io/v1beta1/namespaces/default/pods/x"),
        ("DELETE", "/apis/metrics.k8s.io/v1beta1/nodes/x"),
        ("DELETE", "/apis/metrics.k8s.io/v1beta1/namespaces/default/pods"),
        ("GET", "/apis/metrics.k8s.io/v1beta1/pods?watch=true"),
    ] {
        let (code, status) = rest.json(method, path, "application/json", Some(&body)).await;
        assert_eq!(code, 405, "{method} {path}: {status}");
        assert_eq!(status["kind"], "Status");
        assert_eq!(status["reason"], "MethodNotAllowed", "{method} {path}");
        assert_eq!(status["message"], "the server does not allow this method on the requested resource");
    }
    let (code, list) = rest.json("GET", "/apis/metrics.k8s.io/v1beta1/pods", "", None).await;
    assert_eq!((code, &list["kind"], &list["items"]), (200, &json!("PodMetricsList"), &json!([])), "{list}");
    let (code, list) =
        rest.json("GET", "/apis/metrics.k8s.io/v1beta1/nodes?labelSelector=a%3Db", "", None).await;
    assert_eq!((code, &list["kind"]), (200, &json!("NodeMetricsList")), "{list}");

    // gRPC: list and get work, writes and watches are Unimplemented.
    let c = env.client().await;
    let params = ListParams { namespace: "default".into(), ..Default::default() };
    assert!(c.list("PodMetrics", &params).await.unwrap().items.is_empty());
    assert!(c.list("NodeMetrics", &ListParams::default()).await.unwrap().items.is_empty());
    let pm = PodMetrics {
        metadata: Some(ObjectMeta { name: "x".into(), namespace: "default".into(), ..Default::default() }),
        ..Default::default()
    };
    let e = c.create(&Object::PodMetrics(pm)).await.unwrap_err();
    assert!(e.to_string().contains("read-only"), "{e}");
    let e = c.delete("NodeMetrics", "", "x", &Default::default()).await.unwrap_err();
    assert!(e.to_string().contains("read-only"), "{e}");
    match c.watch("PodMetrics", &Default::default()).await {
        Err(e) => assert!(e.to_string().contains("read-only"), "{e}"),
        Ok(mut events) => {
            let first = futures::StreamExt::next(&mut events).await.expect("an answer");
            assert!(first.is_err_and(|e| e.to_string().contains("read-only")), "a watch of PodMetrics");
        }
    }
    let e = c.get("PodMetrics", "default", "x").await.unwrap_err();
    assert!(e.to_string().contains("pods \"x\" not found"), "{e}");
    // No etcd keys were written for them: the core Pods are untouched.
    assert!(c.list("Pod", &params).await.unwrap().items.is_empty());
}

#[tokio::test]
async fn reading_metrics_needs_rbac_on_the_metrics_group() {
    let (env, k) = start().await;
    let alice = Kubectl::as_user(&env.api_server, "alice", &[]);
    let out = alice.fails(&["get", "--raw", "/apis/metrics.k8s.io/v1beta1/namespaces/default/pods"]).await;
    assert!(
        out.stderr.contains(
            "pods.metrics.k8s.io is forbidden: User \"alice\" cannot list resource \"pods\" in API group \"metrics.k8s.io\" in the namespace \"default\""
        ),
        "{out:?}"
    );
    let out = alice.fails(&["top", "node"]).await;
    assert!(out.stderr.contains("nodes.metrics.k8s.io is forbidden: User \"alice\""), "{out:?}");

    // Metrics-server's reader role, bound to her.
    let role: Value = serde_json::from_str(
        &k.ok(&["get", "clusterrole", "system:aggregated-metrics-reader", "-o", "json"]).await,
    )
    .unwrap();
    assert_eq!(
        role["rules"],
        json!([{"apiGroups": ["metrics.k8s.io"], "resources": ["nodes", "pods"], "verbs": ["get", "list", "watch"]}])
    );
    for label in ["admin", "edit", "view"] {
        assert_eq!(
            role["metadata"]["labels"][format!("rbac.authorization.k8s.io/aggregate-to-{label}")],
            "true"
        );
    }
    k.ok(&[
        "create",
        "clusterrolebinding",
        "alice-metrics",
        "--clusterrole=system:aggregated-metrics-reader",
        "--user=alice",
    ])
    .await;
    navarch_tests::eventually("alice may read metrics", std::time::Duration::from_secs(10), async || {
        alice
            .run(&["get", "--raw", "/apis/metrics.k8s.io/v1beta1/namespaces/default/pods"])
            .await
            .code
            .eq(&0)
            .then_some(())
    })
    .await;
    let out = alice.fails(&["top", "node"]).await;
    assert_eq!(out.stderr, "error: metrics not available yet\n");
    // Metrics, not pods themselves.
    let out = alice.fails(&["get", "pods"]).await;
    assert!(out.stderr.contains("pods is forbidden"), "{out:?}");
}
