//! Server-side apply and managedFields through the real kubectl (1.32) against a real etcd + api-server:
//! `apply --server-side` creating, leaving unchanged and changing objects, conflicts as kubectl prints
//! them, `--force-conflicts`, the client-side → server-side migration kubectl drives, `--show-managed-fields`,
//! and manifests exported with their managedFields applied again.

use navarch_tests::{Kubectl, TestEnv};
use serde_json::Value;

async fn start() -> (TestEnv, Kubectl) {
    let env = TestEnv::start().await;
    let k = Kubectl::new(&env.api_server);
    (env, k)
}

const DEPLOYMENT: &str = r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: {app: web, tier: front}
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
        env:
        - {name: MODE, value: prod}
        resources:
          limits: {cpu: 1, memory: 64Mi}
"#;

/// The deployment `web` as JSON, with its managed fields.
async fn get(k: &Kubectl) -> Value {
    serde_json::from_str(&k.ok(&["get", "deploy", "web", "-o", "json", "--show-managed-fields"]).await)
        .unwrap()
}

fn rv(d: &Value) -> String {
    d["metadata"]["resourceVersion"].as_str().unwrap().to_string()
}

/// The managed fields entry of `manager` with `operation`.
fn entry<'a>(d: &'a Value, manager: &str, operation: &str) -> Option<&'a Value> {
    d["metadata"]["managedFields"]
        .as_array()?
        .iter()
        .find(|e| e["manager"] == manager && e["operation"] == operation)
}

fn managers(d: &Value) -> Vec<String> {
    d["metadata"]["managedFields"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|e| format!("{}/{}", e["manager"].as_str().unwrap(), e["operation"].as_str().unwrap()))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn server_side_apply_creates_leaves_unchanged_and_changes() {
    let (_env, k) = start().await;
    let f = k.write("web.yaml", DEPLOYMENT);
    let f = f.to_str().unwrap();
    let out = k.ok(&["apply", "--server-side", "-f", f]).await;
    assert_eq!(out.trim(), "deployment.apps/web serverside-applied");
    let created = get(&k).await;
    assert_eq!(managers(&created), ["kubectl/Apply"], "{created}");
    let kubectl = entry(&created, "kubectl", "Apply").unwrap();
    assert_eq!(kubectl["apiVersion"], "apps/v1");
    assert_eq!(kubectl["fieldsType"], "FieldsV1");
    let fields = &kubectl["fieldsV1"];
    assert_eq!(fields["f:spec"]["f:replicas"], serde_json::json!({}));
    assert!(
        fields["f:spec"]["f:template"]["f:spec"]["f:containers"]["k:{\"name\":\"web\"}"]["f:ports"]
            ["k:{\"containerPort\":80,\"protocol\":\"TCP\"}"]
            .is_object(),
        "{fields}"
    );
    assert!(fields["f:metadata"].get("f:name").is_none(), "name is never owned: {fields}");

    // The same manifest again: nothing is written.
    assert_eq!(
        k.ok(&["apply", "--server-side", "-f", f]).await.trim(),
        "deployment.apps/web serverside-applied"
    );
    let again = get(&k).await;
    assert_eq!(rv(&again), rv(&created), "a no-op apply writes nothing");
    assert_eq!(again["metadata"]["managedFields"], created["metadata"]["managedFields"]);

    // A changed manifest, dropping a label and the env list: changed, and the dropped fields are gone.
    let changed = DEPLOYMENT
        .replace("replicas: 2", "replicas: 3")
        .replace(", tier: front", "")
        .replace("        env:\n        - {name: MODE, value: prod}\n", "");
    k.write("web.yaml", &changed);
    k.ok(&["apply", "--server-side", "-f", f]).await;
    let after = get(&k).await;
    assert_ne!(rv(&after), rv(&created));
    assert_eq!(after["spec"]["replicas"], 3);
    assert!(after["metadata"]["labels"].get("tier").is_none(), "{}", after["metadata"]);
    assert!(after["spec"]["template"]["spec"]["containers"][0].get("env").is_none());

    // Dry run: nothing stored.
    k.write("web.yaml", &changed.replace("replicas: 3", "replicas: 9"));
    let dry = k.ok(&["apply", "--server-side", "--dry-run=server", "-f", f]).await;
    assert_eq!(dry.trim(), "deployment.apps/web serverside-applied (server dry run)");
    assert_eq!(get(&k).await["spec"]["replicas"], 3);
}

#[tokio::test]
async fn conflicts_print_kubectls_message_and_force_takes_the_fields() {
    let (_env, k) = start().await;
    let f = k.write("web.yaml", DEPLOYMENT);
    let f = f.to_str().unwrap();
    k.ok(&["apply", "--server-side", "-f", f]).await;
    k.ok(&["patch", "deploy", "web", "--type=merge", "-p", r#"{"spec":{"replicas":5}}"#]).await;
    let patched = get(&k).await;
    let patch = entry(&patched, "kubectl-patch", "Update").expect("kubectl patch recorded");
    assert_eq!(patch["fieldsV1"], serde_json::json!({"f:spec": {"f:replicas": {}}}));
    assert!(entry(&patched, "kubectl", "Apply").unwrap()["fieldsV1"]["f:spec"].get("f:replicas").is_none());

    k.write("web.yaml", &DEPLOYMENT.replace("replicas: 2", "replicas: 4"));
    let out = k.fails(&["apply", "--server-side", "-f", f]).await;
    assert!(
        out.stderr.starts_with(
            r#"error: Apply failed with 1 conflict: conflict with "kubectl-patch" using apps/v1: .spec.replicas"#
        ),
        "{out:?}"
    );
    assert!(out.stderr.contains("--force-conflicts"), "kubectl's conflict help: {out:?}");
    assert_eq!(get(&k).await["spec"]["replicas"], 5, "nothing applied");

    let forced = k.ok(&["apply", "--server-side", "--force-conflicts", "-f", f]).await;
    assert_eq!(forced.trim(), "deployment.apps/web serverside-applied");
    let after = get(&k).await;
    assert_eq!(after["spec"]["replicas"], 4);
    assert!(entry(&after, "kubectl-patch", "Update").is_none(), "it owned nothing else: {after}");
    assert_eq!(
        entry(&after, "kubectl", "Apply").unwrap()["fieldsV1"]["f:spec"]["f:replicas"],
        serde_json::json!({})
    );
    // kubectl scale writes through the scale subresource: its conflict names it.
    k.ok(&["scale", "deploy", "web", "--replicas=7"]).await;
    let out = k.fails(&["apply", "--server-side", "-f", f]).await;
    assert!(
        out.stderr.starts_with(
            r#"error: Apply failed with 1 conflict: conflict with "kubectl" with subresource "scale" using apps/v1: .spec.replicas"#
        ),
        "{out:?}"
    );
}

#[tokio::test]
async fn client_side_then_server_side_apply_migrates_ownership() {
    let (_env, k) = start().await;
    let f = k.write("web.yaml", DEPLOYMENT);
    let f = f.to_str().unwrap();
    assert_eq!(k.ok(&["apply", "-f", f]).await.trim(), "deployment.apps/web created");
    let csa = get(&k).await;
    assert_eq!(managers(&csa), ["kubectl-client-side-apply/Update"]);

    // Server-side with a changed field: no conflict with the client-side apply (its last-applied
    // annotation says it set that value), and kubectl migrates the client-side manager's fields.
    k.write("web.yaml", &DEPLOYMENT.replace("replicas: 2", "replicas: 3"));
    let out = k.run(&["apply", "--server-side", "-f", f]).await;
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(out.stdout.trim(), "deployment.apps/web serverside-applied");
    assert!(!out.stderr.contains("Warning"), "the migration worked: {out:?}");
    let ssa = get(&k).await;
    assert_eq!(ssa["spec"]["replicas"], 3);
    let mut m = managers(&ssa);
    m.sort();
    assert_eq!(m, ["kubectl-last-applied/Apply", "kubectl/Apply"], "{ssa}");
    let annotation =
        ssa["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"].as_str().unwrap();
    let last: Value = serde_json::from_str(annotation).unwrap();
    assert_eq!(last["spec"]["replicas"], 3, "the annotation follows server-side applies: {annotation}");

    // The migrated fields are kubectl's now: dropping one from the manifest removes it.
    k.write("web.yaml", &DEPLOYMENT.replace("replicas: 2", "replicas: 3").replace(", tier: front", ""));
    k.ok(&["apply", "--server-side", "-f", f]).await;
    let dropped = get(&k).await;
    assert!(dropped["metadata"]["labels"].get("tier").is_none(), "{}", dropped["metadata"]);

    // And client-side apply still works after it.
    k.write("web.yaml", &DEPLOYMENT.replace("replicas: 2", "replicas: 1"));
    let out = k.ok(&["apply", "-f", f]).await;
    assert_eq!(out.trim(), "deployment.apps/web configured");
    assert_eq!(get(&k).await["spec"]["replicas"], 1);
}

#[tokio::test]
async fn managed_fields_are_hidden_unless_asked_for_and_every_writer_is_recorded() {
    let (_env, k) = start().await;
    k.ok(&["create", "-f", k.write("web.yaml", DEPLOYMENT).to_str().unwrap()]).await;
    let yaml = k.ok(&["get", "deploy", "web", "-o", "yaml"]).await;
    assert!(!yaml.contains("managedFields"), "{yaml}");
    let shown = k.ok(&["get", "deploy", "web", "-o", "yaml", "--show-managed-fields"]).await;
    assert!(shown.contains("managedFields:") && shown.contains("manager: kubectl-create"), "{shown}");
    k.ok(&["label", "deploy", "web", "team=a"]).await;
    k.ok(&["scale", "deploy", "web", "--replicas=4"]).await;
    let d = get(&k).await;
    let label = entry(&d, "kubectl-label", "Update").expect("kubectl label recorded");
    assert_eq!(label["fieldsV1"], serde_json::json!({"f:metadata": {"f:labels": {"f:team": {}}}}));
    let scale = d["metadata"]["managedFields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["subresource"] == "scale")
        .expect("the scale subresource write");
    assert_eq!(scale["manager"], "kubectl");
    assert!(scale["time"].as_str().unwrap().ends_with('Z'));
    let explain = k.ok(&["explain", "deployment.metadata.managedFields"]).await;
    assert!(explain.contains("fieldsV1") && explain.contains("manager"), "{explain}");
}

#[tokio::test]
async fn manifests_exported_with_managed_fields_apply_again() {
    let (_env, k) = start().await;
    let f = k.write("web.yaml", DEPLOYMENT);
    k.ok(&["apply", "--server-side", "-f", f.to_str().unwrap()]).await;
    k.ok(&["label", "deploy", "web", "team=a"]).await;
    let exported = k.ok(&["get", "deploy", "web", "-o", "yaml", "--show-managed-fields"]).await;
    let before = get(&k).await;
    let e = k.write("exported.yaml", &exported);
    let e = e.to_str().unwrap();
    // Replaced as it is (strict validation knows fieldsV1): the managed fields stay as exported.
    assert_eq!(k.ok(&["replace", "-f", e]).await.trim(), "deployment.apps/web replaced");
    let replaced = get(&k).await;
    assert_eq!(replaced["metadata"]["managedFields"], before["metadata"]["managedFields"]);
    // Client-side apply of the export (strict validation) works too.
    let out = k.run(&["apply", "-f", e]).await;
    assert_eq!(out.code, 0, "{out:?}");
    // Server-side apply refuses managedFields in the configuration, as Kubernetes does.
    let out = k.fails(&["apply", "--server-side", "-f", e]).await;
    assert!(out.stderr.contains("metadata.managedFields must be nil"), "{out:?}");
    // An empty list resets them.
    k.ok(&["patch", "deploy", "web", "--type=merge", "-p", r#"{"metadata":{"managedFields":[]}}"#]).await;
    assert!(get(&k).await["metadata"].get("managedFields").is_none());
}
