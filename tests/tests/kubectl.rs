//! The real kubectl (1.32, installed on our machines) against a real etcd + api-server: discovery,
//! `get` with server-side Tables and every output format, the seeds' commands, apply/create/replace/
//! delete, patches, scale, errors as Kubernetes prints them, and `get -w`.

use std::time::Duration;

use navarch_tests::{Kubectl, TestEnv, eventually};
use tokio::io::{AsyncBufReadExt, BufReader};

async fn start() -> (TestEnv, Kubectl) {
    let env = TestEnv::start().await;
    let k = Kubectl::new(&env.api_server);
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
    // Every kind that can be listed (the review kinds are only created): kubectl get of it, in every
    // namespace, with its Table.
    let listable = k.ok(&["api-resources", "--verbs=list"]).await;
    assert!(!listable.contains("selfsubjectaccessreviews"), "{listable}");
    for line in listable.lines().skip(1) {
        let name = line.split_whitespace().next().unwrap();
        let out = k.run(&["get", name, "-A"]).await;
        assert_eq!(out.code, 0, "kubectl get {name} -A: {out:?}");
        assert!(
            out.stdout.is_empty() || out.stdout.starts_with("NAMESPACE") || out.stdout.starts_with("NAME"),
            "{name}: {out:?}"
        );
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
    // Beside the api-server's own `kubernetes` Service (columns as wide as their widest cell).
    let row = |name: &str| {
        let line = svc.lines().find(|l| l.split_whitespace().next() == Some(name));
        line.map(|l| l.split_whitespace().take(5).collect::<Vec<_>>()).unwrap_or_default()
    };
    assert_eq!(row("nginx"), ["nginx", "ClusterIP", ip.as_str(), "<none>", "8080/TCP"], "{svc}");
    assert_eq!(row("kubernetes"), ["kubernetes", "ClusterIP", "10.96.0.1", "<none>", "443/TCP"], "{svc}");

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

/// Kubernetes' documentation's ReplicationController (without its selector: defaulted from the labels).
const REPLICATION_CONTROLLER: &str = r#"apiVersion: v1
kind: ReplicationController
metadata:
  name: nginx
spec:
  replicas: 3
  template:
    metadata:
      name: nginx
      labels:
        app: nginx
    spec:
      containers:
      - name: nginx
        image: nginx
        ports:
        - containerPort: 80
"#;

#[tokio::test]
async fn replication_controllers_get_scale_describe() {
    let (_env, k) = start().await;
    let f = k.write("rc.yaml", REPLICATION_CONTROLLER);
    assert_eq!(
        k.ok(&["apply", "-f", f.to_str().unwrap()]).await.trim(),
        "replicationcontroller/nginx created"
    );
    let table = k.ok(&["get", "rc", "-o", "wide"]).await;
    let lines: Vec<Vec<&str>> = table.lines().map(|l| l.split_whitespace().collect()).collect();
    assert_eq!(lines[0], ["NAME", "DESIRED", "CURRENT", "READY", "AGE", "CONTAINERS", "IMAGES", "SELECTOR"]);
    assert_eq!((lines[1][0], lines[1][1], lines[1][7]), ("nginx", "3", "app=nginx"), "{table}");
    assert_eq!(
        k.ok(&["scale", "rc", "nginx", "--replicas=1"]).await.trim(),
        "replicationcontroller/nginx scaled"
    );
    let got = k
        .ok(&[
            "get",
            "replicationcontrollers",
            "nginx",
            "-o",
            "jsonpath={.spec.replicas} {.spec.selector.app}",
        ])
        .await;
    assert_eq!(got, "1 nginx");
    let described = k.ok(&["describe", "rc", "nginx"]).await;
    assert!(described.contains("Selector:") && described.contains("app=nginx"), "{described}");
    let all = k.ok(&["get", "all"]).await;
    assert!(all.contains("replicationcontroller/nginx"), "{all}");
    assert_eq!(k.ok(&["delete", "rc", "nginx"]).await.trim(), "replicationcontroller \"nginx\" deleted");
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

/// client-go's typed clientsets (`kubectl create <kind> …`) POST Kubernetes protobuf bodies, not JSON: the
/// api-server decodes them into the same objects.
#[tokio::test]
async fn create_commands_send_protobuf() {
    let (_env, k) = start().await;
    let commands: [(&[&str], &str); 7] = [
        (&["create", "deployment", "nginx", "--image=nginx", "--port=80"], "deployment.apps/nginx created"),
        (&["create", "namespace", "x"], "namespace/x created"),
        (&["create", "configmap", "c", "--from-literal=a=b"], "configmap/c created"),
        (&["create", "secret", "generic", "s", "--from-literal=p=q"], "secret/s created"),
        (&["create", "service", "clusterip", "s", "--tcp=80:8080"], "service/s created"),
        (&["create", "job", "j", "--image=busybox"], "job.batch/j created"),
        (&["create", "deployment", "zero", "--image=nginx", "--replicas=0"], "deployment.apps/zero created"),
    ];
    for (args, created) in commands {
        assert_eq!(k.ok(args).await.trim(), created, "kubectl {args:?}");
    }
    let get = async |what: &[&str], path: &str| {
        let mut args = vec!["get"];
        args.extend_from_slice(what);
        let jsonpath = format!("jsonpath={path}");
        args.extend_from_slice(&["-o", &jsonpath]);
        k.ok(&args).await
    };
    let c = ".spec.template.spec.containers[0]";
    assert_eq!(
        get(
            &["deploy", "nginx"],
            &format!(
                "{{.metadata.labels.app}} {{.spec.replicas}} {{.spec.selector.matchLabels.app}} \
                 {{{c}.name}} {{{c}.image}} {{{c}.ports[0].containerPort}}"
            )
        )
        .await,
        "nginx 1 nginx nginx nginx 80"
    );
    assert_eq!(get(&["deploy", "zero"], "{.spec.replicas}").await, "0");
    assert_eq!(get(&["namespace", "x"], "{.status.phase}").await, "Active");
    assert_eq!(get(&["configmap", "c"], "{.data.a}").await, "b");
    assert_eq!(get(&["secret", "s"], "{.type} {.data.p}").await, "Opaque cQ==");
    assert_eq!(
        get(
            &["service", "s"],
            "{.spec.type} {.spec.ports[0].port} {.spec.ports[0].targetPort} {.spec.selector.app}"
        )
        .await,
        "ClusterIP 80 8080 s"
    );
    assert_eq!(
        get(&["job", "j"], &format!("{{{c}.image}} {{.spec.template.spec.restartPolicy}}")).await,
        "busybox Never"
    );
    let yaml = k.ok(&["get", "deploy", "nginx", "-o", "yaml"]).await;
    assert!(yaml.starts_with("apiVersion: apps/v1\nkind: Deployment\n"), "{yaml}");

    // Validation answers as for JSON, naming the field.
    let bad = k.fails(&["create", "deployment", "bad", "--image=nginx", "--replicas=-1"]).await;
    assert!(bad.stderr.contains("spec.replicas: Invalid value: -1"), "{bad:?}");
    k.fails(&["get", "deploy", "bad"]).await;
}

/// kubectl's informer-based commands (`wait`, `rollout status`, `delete`'s wait) list and watch with
/// retries: an api-server killed and restarted meanwhile is resumed from, and the final state seen.
/// (`kubectl get -w` itself ends when its watch does, as against Kubernetes.)
#[tokio::test]
async fn wait_resumes_across_an_api_server_restart() {
    let (mut env, k) = start().await;
    k.ok(&["create", "configmap", "flag", "--from-literal=state=waiting"]).await;
    let wait =
        k.command(&["wait", "--for=jsonpath={.data.state}=done", "configmap/flag", "--timeout=90s"]).output();
    let wait = tokio::spawn(wait);
    tokio::time::sleep(Duration::from_secs(2)).await;
    env.api_server.kill9();
    tokio::time::sleep(Duration::from_secs(1)).await;
    env.api_server.restart().await;
    k.ok(&["patch", "configmap", "flag", "--type=merge", "-p", r#"{"data":{"state":"done"}}"#]).await;
    let out = tokio::time::timeout(Duration::from_secs(90), wait)
        .await
        .expect("kubectl wait hung")
        .unwrap()
        .unwrap();
    assert!(
        out.status.success(),
        "kubectl wait: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "configmap/flag condition met");
}

/// Whether `describe` output has a line `<label> <value>` (any spacing).
fn field(text: &str, label: &str, value: &str) -> bool {
    text.lines().any(|l| l.strip_prefix(label).is_some_and(|rest| rest.trim() == value))
}

#[tokio::test]
async fn describe_explain_rollout_and_nodes() {
    let (env, k) = start().await;
    let _cm = navarch_tests::Daemon::start(&env, "controller-manager", "controller-manager", &[]);
    let explain = k.ok(&["explain", "deployment.spec.strategy"]).await;
    assert!(explain.contains("KIND:       Deployment") && explain.contains("rollingUpdate"), "{explain}");
    let f = k.write("web.yaml", DEPLOYMENT);
    k.ok(&["apply", "-f", f.to_str().unwrap()]).await;
    let d = k.ok(&["describe", "deployment", "web"]).await;
    assert!(field(&d, "Name:", "web") && field(&d, "StrategyType:", "RollingUpdate"), "{d}");
    k.ok(&["run", "solo", "--image=busybox"]).await;
    let p = k.ok(&["describe", "pod", "solo"]).await;
    assert!(
        field(&p, "Name:", "solo")
            && field(&p, "Status:", "Pending")
            && field(&p, "QoS Class:", "BestEffort"),
        "{p}"
    );
    k.ok(&["expose", "deployment", "web", "--port=80"]).await;
    let s = k.ok(&["describe", "service", "web"]).await;
    assert!(field(&s, "Type:", "ClusterIP"), "{s}");
    k.ok(&["rollout", "pause", "deployment/web"]).await;
    k.ok(&["rollout", "resume", "deployment/web"]).await;
    k.ok(&["rollout", "restart", "deployment/web"]).await;
    let h = eventually("rollout history of two revisions", Duration::from_secs(30), async || {
        let h = k.run(&["rollout", "history", "deployment/web"]).await.stdout;
        (h.contains("REVISION") && h.lines().any(|l| l.starts_with('2'))).then_some(h)
    })
    .await;
    assert!(h.lines().any(|l| l.starts_with('1')), "{h}");
    // undo: back to the first template (kubectl sends a JSON patch built from the old ReplicaSet).
    k.ok(&["set", "image", "deployment/web", "web=nginx:1.99"]).await;
    eventually("revision 3", Duration::from_secs(30), async || {
        k.run(&["rollout", "history", "deployment/web"])
            .await
            .stdout
            .lines()
            .any(|l| l.starts_with('3'))
            .then_some(())
    })
    .await;
    assert_eq!(k.ok(&["rollout", "undo", "deployment/web"]).await.trim(), "deployment.apps/web rolled back");
    let image =
        k.ok(&["get", "deploy", "web", "-o", "jsonpath={.spec.template.spec.containers[0].image}"]).await;
    assert_eq!(image, "nginx:1.24");
    // A Node registered by hand (no kubelet here): cordon, uncordon, drain.
    let node = "apiVersion: v1\nkind: Node\nmetadata: {name: n1, labels: {kubernetes.io/hostname: n1}}\n";
    k.apply(node, &[]).await;
    assert_eq!(k.ok(&["cordon", "n1"]).await.trim(), "node/n1 cordoned");
    let nodes = k.ok(&["get", "nodes"]).await;
    assert!(nodes.contains("SchedulingDisabled"), "{nodes}");
    assert_eq!(k.ok(&["uncordon", "n1"]).await.trim(), "node/n1 uncordoned");
    // A pod bound to n1, which drain evicts. It has a controller (drain refuses bare pods without --force):
    // a ConfigMap, which no controller acts for, so that the garbage collector keeps the pod and nothing
    // replaces it; and no grace period (no kubelet here to end it).
    k.ok(&["create", "configmap", "owner"]).await;
    let uid = k.ok(&["get", "configmap", "owner", "-o", "jsonpath={.metadata.uid}"]).await;
    let bound = format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: on-n1\n  ownerReferences:\n  - {{apiVersion: v1, \
         kind: ConfigMap, name: owner, uid: {uid}, controller: true}}\nspec: {{nodeName: n1, \
         terminationGracePeriodSeconds: 0, containers: [{{name: c, image: busybox}}]}}\n"
    );
    let applied = k.apply(&bound, &[]).await;
    assert_eq!(applied.code, 0, "{applied:?}");
    let drained = k.run(&["drain", "n1", "--ignore-daemonsets", "--timeout=30s"]).await;
    assert_eq!(drained.code, 0, "{drained:?}");
    assert!(drained.stdout.contains("pod/on-n1 evicted"), "{drained:?}");
    let gone = k.fails(&["get", "pod", "on-n1"]).await;
    assert!(gone.stderr.contains("NotFound"), "{gone:?}");
    let d = k.ok(&["describe", "node", "n1"]).await;
    assert!(field(&d, "Name:", "n1") && field(&d, "Unschedulable:", "true"), "{d}");
    let events = k.run(&["get", "events"]).await;
    assert_eq!(events.code, 0, "{events:?}");
}

/// Every manifest of examples/bad through the default `kubectl apply`: exit 1, a message naming what
/// is wrong, nothing stored.
#[tokio::test]
async fn bad_examples_are_rejected_by_kubectl_apply() {
    let (_env, k) = start().await;
    let dir = navarch_tests::workspace_root().join("examples/bad");
    let cases = [
        ("bad-yaml.yaml", "line 4: did not find expected key", "configmap/broken"),
        (
            "invalid-name.yaml",
            r#"metadata.name: Invalid value: "Not_A_Valid_Name""#,
            "configmap/Not_A_Valid_Name",
        ),
        ("negative-replicas.yaml", "spec.replicas: Invalid value: -1", "deployment/negative"),
        ("unknown-field.yaml", r#"strict decoding error: unknown field "spec.replica""#, "deployment/typo"),
        ("unknown-kind.yaml", r#"no matches for kind "Widget" in version "example.com/v1""#, ""),
        ("wrong-type.yaml", r#"spec.replicas: invalid type: string "three""#, "deployment/wrongtype"),
    ];
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    let mut named: Vec<String> = cases.iter().map(|c| c.0.to_string()).collect();
    named.sort();
    assert_eq!(files, named, "every file of examples/bad has a case here");
    for (file, message, object) in cases {
        let path = dir.join(file);
        let out = k.run(&["apply", "-f", path.to_str().unwrap()]).await;
        assert_eq!(out.code, 1, "{file}: {out:?}");
        assert!(out.stderr.contains(message), "{file}: {out:?}");
        if !object.is_empty() {
            k.fails(&["get", object]).await;
        }
    }
}

/// `kubectl apply -f examples/` (client-side apply, default strict validation): created, then
/// unchanged, then configured after an edit; `diff`, `apply --dry-run=server`, `create`/`replace`/
/// `delete -f` with cascades, and `edit` through `KUBE_EDITOR`.
#[tokio::test]
async fn examples_apply_diff_replace_edit_delete() {
    let (env, k) = start().await;
    // The garbage collector finishes orphan and foreground deletions.
    let _cm = navarch_tests::Daemon::start(&env, "controller-manager", "controller-manager", &[]);
    let examples = navarch_tests::workspace_root().join("examples");
    let dir = examples.to_str().unwrap();
    let first = k.ok(&["apply", "-f", dir]).await;
    assert!(!first.is_empty() && first.lines().all(|l| l.ends_with(" created")), "{first}");
    let second = k.ok(&["apply", "-f", dir]).await;
    // As against Kubernetes: a Secret's stringData (write-only) and a StatefulSet's
    // volumeClaimTemplates (atomic, defaulted by the server) are patched again on every apply.
    let always = [
        "secret/redis-auth configured",
        "statefulset.apps/redis configured",
        "statefulset.apps/web configured",
    ];
    assert!(second.lines().all(|l| l.ends_with(" unchanged") || always.contains(&l)), "{second}");
    assert_eq!(first.lines().count(), second.lines().count());

    let web = std::fs::read_to_string(examples.join("web-deployment.yaml")).unwrap();
    let edited = web.replacen("replicas: 3", "replicas: 4", 1);
    assert_ne!(web, edited, "web-deployment.yaml has replicas: 3");
    let f = k.write("web.yaml", &edited);
    let f = f.to_str().unwrap();
    let diff = k.run(&["diff", "-f", f]).await;
    assert_eq!(diff.code, 1, "kubectl diff exits 1 when something differs: {diff:?}");
    assert!(diff.stdout.contains("-  replicas: 3") && diff.stdout.contains("+  replicas: 4"), "{diff:?}");
    let dry = k.ok(&["apply", "-f", f, "--dry-run=server"]).await;
    assert!(dry.contains("configured (server dry run)"), "{dry}");
    assert_eq!(k.ok(&["get", "deploy", "web", "-o", "jsonpath={.spec.replicas}"]).await, "3");
    assert!(k.ok(&["apply", "-f", f]).await.ends_with("configured\n"));
    assert_eq!(k.ok(&["get", "deploy", "web", "-o", "jsonpath={.spec.replicas}"]).await, "4");

    let cm = k.write("cm.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: plain}\ndata: {a: '1'}\n");
    let cm = cm.to_str().unwrap();
    assert_eq!(k.ok(&["create", "-f", cm]).await.trim(), "configmap/plain created");
    k.fails(&["create", "-f", cm]).await;
    k.write("cm.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: plain}\ndata: {a: '2'}\n");
    assert_eq!(k.ok(&["replace", "-f", cm]).await.trim(), "configmap/plain replaced");
    assert_eq!(k.ok(&["get", "cm", "plain", "-o", "jsonpath={.data.a}"]).await, "2");

    // edit: an editor script that changes the image.
    let editor = k.write(
        "editor.sh",
        "#!/bin/sh\nsed -i 's/image: serve-hostname:1.0/image: serve-hostname:2.0/' \"$1\"\n",
    );
    std::fs::set_permissions(&editor, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let mut edit = k.command(&["edit", "deployment/web"]);
    edit.env("KUBE_EDITOR", &editor);
    let out = edit.output().await.unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "deployment.apps/web edited");
    let image =
        k.ok(&["get", "deploy", "web", "-o", "jsonpath={.spec.template.spec.containers[0].image}"]).await;
    assert_eq!(image, "serve-hostname:2.0");

    assert!(k.ok(&["delete", "-f", f, "--cascade=orphan"]).await.contains("deleted"));
    k.fails(&["get", "deploy", "web"]).await;
    let gone = k.ok(&["delete", "-f", dir, "--cascade=foreground", "--ignore-not-found"]).await;
    assert!(gone.contains("deleted"), "{gone}");
}
