//! The real kubectl (1.32, installed on our machines) against a real etcd + api-server: discovery,
//! `get` with server-side Tables and every output format, the seeds' commands, apply/create/replace/
//! delete, patches, scale, errors as Kubernetes prints them, and `get -w`.

use std::time::Duration;

use navarch_tests::{Kubectl, TestEnv, eventually};
use tokio::io::{AsyncBufReadExt, BufReader};

async fn start() -> (TestEnv, Kubectl) {
    let env = TestEnv::start().await;
    let k = Kubectl::new(env.api_server_addr());
    (env, k)
}

const DEPLOYMENT: &str = r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: {app: web}
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: nginx:1.24
        ports:
        - containerPort: 80
"#;

#[tokio::test]
async fn version_and_discovery() {
    let (_env, k) = start().await;
    let v = k.ok(&["version"]).await;
    assert!(v.contains("Server Version: v1.32.0"), "{v}");
    let r = k.ok(&["api-resources"]).await;
    let line = r.lines().find(|l| l.starts_with("deployments ")).unwrap_or_else(|| panic!("{r}"));
    let cols: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(cols, ["deployments", "deploy", "apps/v1", "true", "Deployment"], "{r}");
    assert!(r.lines().any(|l| l.starts_with("nodes ") && l.contains("false")), "{r}");
    let v = k.ok(&["api-versions"]).await;
    for gv in ["v1", "apps/v1", "batch/v1", "coordination.k8s.io/v1"] {
        assert!(v.lines().any(|l| l == gv), "{gv} in {v}");
    }
    let all = k.ok(&["get", "all"]).await;
    assert!(all.contains("service/") || all.is_empty() || all.contains("No resources"), "{all}");
}

#[tokio::test]
async fn seed_commands_and_get_formats() {
    let (_env, k) = start().await;
    assert_eq!(k.ok(&["run", "nginx", "--image=nginx", "--port=80"]).await.trim(), "pod/nginx created");
    assert_eq!(
        k.ok(&["expose", "pod", "nginx", "--port=8080", "--target-port=80"]).await.trim(),
        "service/nginx exposed"
    );
    let ip = k.ok(&["get", "svc", "nginx", "--template={{.spec.clusterIP}}"]).await;
    assert!(ip.starts_with("10.") && ip.parse::<std::net::Ipv4Addr>().is_ok(), "{ip:?}");

    let svc = k.ok(&["get", "svc"]).await;
    let header: Vec<&str> = svc.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(header, ["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE"], "{svc}");
    assert!(svc.contains(&format!("nginx   ClusterIP   {ip}   <none>        8080/TCP")), "{svc}");

    let wide = k.ok(&["get", "pods", "-o", "wide"]).await;
    let header: Vec<&str> = wide.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        [
            "NAME",
            "READY",
            "STATUS",
            "RESTARTS",
            "AGE",
            "IP",
            "NODE",
            "NOMINATED",
            "NODE",
            "READINESS",
            "GATES"
        ],
        "{wide}"
    );
    assert!(wide.contains("nginx   0/1     Pending"), "{wide}");
    assert_eq!(k.ok(&["get", "pods", "-o", "name"]).await.trim(), "pod/nginx");
    assert_eq!(
        k.ok(&["get", "pod", "nginx", "-o", "jsonpath={.spec.containers[0].ports[0].containerPort}"]).await,
        "80"
    );
    let cc =
        k.ok(&["get", "pods", "-o", "custom-columns=N:.metadata.name,IMG:.spec.containers[0].image"]).await;
    assert_eq!(cc.lines().nth(1).unwrap().split_whitespace().collect::<Vec<_>>(), ["nginx", "nginx"], "{cc}");
    let yaml = k.ok(&["get", "pod", "nginx", "-o", "yaml"]).await;
    assert!(yaml.starts_with("apiVersion: v1\nkind: Pod\n"), "{yaml}");
    let json: serde_json::Value = serde_json::from_str(&k.ok(&["get", "pods", "-o", "json"]).await).unwrap();
    assert_eq!(json["kind"], "List");
    assert_eq!(json["items"][0]["kind"], "Pod");

    k.ok(&["label", "pod", "nginx", "tier=frontend"]).await;
    k.ok(&["annotate", "pod", "nginx", "note=hello"]).await;
    let labels = k.ok(&["get", "pods", "--show-labels"]).await;
    assert!(labels.contains("run=nginx,tier=frontend"), "{labels}");
    assert!(k.ok(&["get", "pods", "-l", "tier=frontend", "-o", "name"]).await.contains("pod/nginx"));
    assert!(k.ok(&["get", "pods", "-l", "tier=backend"]).await.is_empty());
    let all_ns = k.ok(&["get", "pods", "-A"]).await;
    assert!(all_ns.starts_with("NAMESPACE"), "{all_ns}");
    k.ok(&["run", "alpha", "--image=busybox"]).await;
    let sorted = k.ok(&["get", "pods", "--sort-by=.metadata.name", "-o", "name"]).await;
    assert_eq!(sorted, "pod/alpha\npod/nginx\n");
    let nodes = k.run(&["get", "nodes"]).await;
    assert!(nodes.stderr.contains("No resources found"), "{nodes:?}");
}

#[tokio::test]
async fn apply_patch_scale_and_delete() {
    let (_env, k) = start().await;
    let f = k.write("web.yaml", DEPLOYMENT);
    let f = f.to_str().unwrap();
    assert_eq!(k.ok(&["apply", "-f", f]).await.trim(), "deployment.apps/web created");
    assert_eq!(k.ok(&["apply", "-f", f]).await.trim(), "deployment.apps/web unchanged");
    k.write("web.yaml", &DEPLOYMENT.replace("nginx:1.24", "nginx:1.27"));
    assert_eq!(k.ok(&["apply", "-f", f]).await.trim(), "deployment.apps/web configured");
    let image =
        k.ok(&["get", "deploy", "web", "-o", "jsonpath={.spec.template.spec.containers[0].image}"]).await;
    assert_eq!(image, "nginx:1.27");
    let deploy = k.ok(&["get", "deploy", "-o", "wide"]).await;
    let header: Vec<&str> = deploy.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE", "CONTAINERS", "IMAGES", "SELECTOR"]
    );

    k.ok(&["scale", "deploy", "web", "--replicas=3"]).await;
    k.ok(&["set", "image", "deploy/web", "web=nginx:1.28"]).await;
    let got = k
        .ok(&[
            "get",
            "deploy",
            "web",
            "-o",
            "jsonpath={.spec.replicas} {.spec.template.spec.containers[0].image}",
        ])
        .await;
    assert_eq!(got, "3 nginx:1.28");
    k.ok(&[
        "patch",
        "deploy",
        "web",
        "--type=json",
        "-p",
        r#"[{"op":"replace","path":"/spec/replicas","value":4}]"#,
    ])
    .await;
    k.ok(&["patch", "deploy", "web", "--type=merge", "-p", r#"{"metadata":{"labels":{"patched":"merge"}}}"#])
        .await;
    k.ok(&[
        "patch",
        "deploy",
        "web",
        "-p",
        r#"{"spec":{"template":{"spec":{"containers":[{"name":"web","image":"nginx:1.29"}]}}}}"#,
    ])
    .await;
    let got = k.ok(&["get", "deploy", "web", "-o", "jsonpath={.spec.replicas} {.metadata.labels.patched} {.spec.template.spec.containers[0].image} {.spec.template.spec.containers[0].ports[0].containerPort}"]).await;
    assert_eq!(got, "4 merge nginx:1.29 80", "strategic merge kept the port");

    let dry = k.ok(&["delete", "deploy", "web", "--dry-run=server"]).await;
    assert!(dry.contains("(server dry run)"), "{dry}");
    k.ok(&["get", "deploy", "web"]).await;
    assert_eq!(k.ok(&["delete", "-f", f]).await.trim(), "deployment.apps \"web\" deleted");
    let gone = k.fails(&["get", "deploy", "web"]).await;
    assert!(
        gone.stderr.contains(r#"Error from server (NotFound): deployments.apps "web" not found"#),
        "{gone:?}"
    );
}

#[tokio::test]
async fn errors_name_the_field_and_store_nothing() {
    let (_env, k) = start().await;
    let bad = DEPLOYMENT.replace("replicas: 2", "replicas: -1");
    let out = k.apply(&bad, &[]).await;
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stderr.contains(r#"The Deployment "web" is invalid"#), "{out:?}");
    assert!(out.stderr.contains("spec.replicas: Invalid value: -1"), "{out:?}");
    k.fails(&["get", "deploy", "web"]).await;

    let unknown = DEPLOYMENT.replace("  replicas: 2", "  replicas: 2\n  bogus: true");
    let out = k.apply(&unknown, &[]).await;
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stderr.contains("bogus"), "{out:?}");
    k.fails(&["get", "deploy", "web"]).await;

    let out = k.apply(&unknown, &["--validate=warn"]).await;
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stderr.contains(r#"unknown field "spec.bogus""#), "{out:?}");
    assert_eq!(k.ok(&["get", "deploy", "web", "-o", "jsonpath={.spec.replicas}"]).await, "2");

    let missing = k.fails(&["get", "pod", "nope"]).await;
    assert_eq!(missing.stderr.trim(), r#"Error from server (NotFound): pods "nope" not found"#);
    k.ok(&["run", "dup", "--image=x"]).await;
    let dup = k.fails(&["run", "dup", "--image=x"]).await;
    assert_eq!(dup.stderr.trim(), r#"Error from server (AlreadyExists): pods "dup" already exists"#);
}

#[tokio::test]
async fn get_watch_sees_changes() {
    let (_env, k) = start().await;
    k.ok(&["run", "first", "--image=busybox"]).await;
    let mut watch = k.spawn(&["get", "pods", "-w"]);
    let mut lines = BufReader::new(watch.stdout.take().unwrap()).lines();
    let header =
        tokio::time::timeout(Duration::from_secs(30), lines.next_line()).await.unwrap().unwrap().unwrap();
    assert!(header.starts_with("NAME"), "{header}");
    k.ok(&["run", "second", "--image=busybox"]).await;
    let seen = eventually("second in kubectl get -w", Duration::from_secs(30), async || {
        let line = lines.next_line().await.ok().flatten()?;
        line.starts_with("second ").then_some(line)
    })
    .await;
    assert!(seen.contains("Pending"), "{seen}");
    let _ = watch.kill().await;
}
